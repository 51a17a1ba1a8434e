/**
 * Global setup of the projects whose tests run ers-bridge servers (integration, soak): it only records that they
 * are part of this run, so that the log scan (test/global-setup.ts) can tell "no log line because only pure tests
 * ran" from "no log line because the capture is broken".
 */
export const LOGS_EXPECTED = 'ERS_BRIDGE_TEST_LOGS_EXPECTED';

export default function setup(): void {
  process.env[LOGS_EXPECTED] = '1';
}
