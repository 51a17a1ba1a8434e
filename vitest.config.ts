import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Three projects, by folder, run one after the other (sequence.groupOrder):
 * - unit: test/unit/** — pure tests: no sockets, no child processes, no Redis, no browser (`npm run test:unit`);
 * - integration: every other test file — real servers on loopback, child processes, Redis, Chromium;
 * - soak: test/hardening/soak.test.ts alone (ERS_BRIDGE_SOAK_SECONDS sets its length, 0 skips it).
 * `vitest run` (and so `npm test`) runs all three. The root's global setup (the suite-wide log scan) runs once per
 * run, whichever projects are selected; the projects do not inherit it, so it never runs twice.
 */
const UNIT = 'test/unit/**/*.test.ts';
const SOAK = 'test/hardening/soak.test.ts';

const shared = {
  testTimeout: 20_000,
  hookTimeout: 30_000,
  pool: 'forks',
} as const;

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    projects: [
      {
        test: {
          ...shared,
          name: 'unit',
          include: [UNIT],
          // Pure and CPU-light: at least two workers even on a two-core machine (the default would be one).
          maxWorkers: Math.max(2, availableParallelism() - 1),
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, UNIT, SOAK],
          globalSetup: ['test/helpers/logs-expected.ts'],
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          ...shared,
          name: 'soak',
          include: [SOAK],
          globalSetup: ['test/helpers/logs-expected.ts'],
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
