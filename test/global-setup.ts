/**
 * Suite-wide log scan: every log line written by an ers-bridge during the test run (in-process servers and child
 * processes) is kept in a temporary folder, and after the last test it is scanned for what must never be logged —
 * private keys, bearer tokens, JWTs (ID tokens, client assertions), raw session keys, and the NHS numbers of the
 * example patients. A hit fails the run, naming the file and line, never the secret.
 *
 * It is the root config's global setup, so it runs once per run whichever projects are selected. A run of the unit
 * project alone captures no log line, and that is expected: "no line captured" fails the run only when a project
 * whose tests run ers-bridge servers took part (test/helpers/logs-expected.ts says so).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOGS_EXPECTED } from './helpers/logs-expected.js';

function fixtureNhsNumbers(): Set<string> {
  const root = new URL('../fixtures/ers-api/examples/', import.meta.url);
  const found = new Set<string>();
  const walk = (dir: URL) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(new URL(`${e.name}/`, dir));
      else if (e.name.endsWith('.json')) {
        const text = readFileSync(new URL(e.name, dir), 'utf8');
        for (const m of text.matchAll(/nhs-number"[^}]*?"value":\s*"(\d{10})"/g)) found.add(m[1]!);
      }
    }
  };
  walk(root);
  return found;
}

/**
 * Where in a log line a forbidden value sits: the line's message and the JSON paths of the fields that hold it, never
 * the value, so a failed scan can be traced to the code that logged it.
 */
export function whereIn(line: string, holds: (text: string) => boolean): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return '(not a JSON line)';
  }
  const paths: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (typeof v === 'string' || typeof v === 'number') {
      if (holds(String(v))) paths.push(path || '(the whole line)');
    } else if (v && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) walk(child, path ? `${path}.${k}` : k);
    }
  };
  walk(parsed, '');
  const msg = (parsed as { msg?: unknown })?.msg;
  const said = typeof msg === 'string' && !holds(msg) ? `msg "${msg.slice(0, 80)}"` : 'msg withheld';
  return `${said}; in ${paths.length > 0 ? paths.join(', ') : 'no single field'}`;
}

/**
 * Whether a line holds NHS number `n` as a number of its own: a run of exactly its ten digits. A float's digits
 * (a responseTime of 6.118251000000001 holds "1000000001"), a fraction's or a longer id's is not a patient identifier.
 */
export function holdsNhsNumber(text: string, n: string): boolean {
  const digit = (c: number) => c >= 48 && c <= 57;
  for (let at = text.indexOf(n); at !== -1; at = text.indexOf(n, at + 1)) {
    const before = text.charCodeAt(at - 1);
    const after = text.charCodeAt(at + n.length);
    const fraction = before === 46 && digit(text.charCodeAt(at - 2)); // the digits after a decimal point
    if (!digit(before) && !digit(after) && !fraction) return true;
  }
  return false;
}

const FORBIDDEN: Array<[string, RegExp]> = [
  ['a private key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
  ['a bearer token', /Bearer [A-Za-z0-9._~+/-]{16,}/],
  ['a JWT', /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/],
  ['a raw session key', /pro-api-session:[0-9a-f]{8}-[0-9a-f]{4}-/],
];

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'ers-bridge-test-logs-'));
  process.env['ERS_BRIDGE_TEST_LOG_DIR'] = dir;
  return () => {
    const nhs = fixtureNhsNumbers();
    const problems: string[] = [];
    let lines = 0;
    for (const f of readdirSync(dir)) {
      const text = readFileSync(join(dir, f), 'utf8').split('\n');
      text.forEach((line, i) => {
        if (!line) return;
        lines++;
        for (const [what, re] of FORBIDDEN) {
          if (re.test(line)) problems.push(`${f}:${i + 1} contains ${what} (${whereIn(line, (t) => re.test(t))})`);
        }
        for (const n of nhs) {
          if (holdsNhsNumber(line, n)) {
            problems.push(`${f}:${i + 1} contains an NHS number (${whereIn(line, (t) => holdsNhsNumber(t, n))})`);
          }
        }
      });
    }
    // ERS_BRIDGE_KEEP_TEST_LOGS=1 keeps the folder to read after a failed scan (it may hold what the scan found).
    if (process.env['ERS_BRIDGE_KEEP_TEST_LOGS'] === '1') console.log(`log scan: the test logs are kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
    // Vitest only reports errors thrown at teardown; the exit code is what makes CI fail.
    if (problems.length > 0) {
      console.error(
        `log scan FAILED: ${problems.length} forbidden values in test logs:\n${problems.slice(0, 20).join('\n')}`,
      );
      process.exitCode = 1;
      return;
    }
    if (lines === 0) {
      if (!process.env[LOGS_EXPECTED]) {
        console.log('log scan: nothing to check (only the unit project ran: no ers-bridge logged)');
        return;
      }
      console.error('log scan FAILED: no log line was captured; the capture is broken');
      process.exitCode = 1;
      return;
    }
    console.log(`log scan: ${lines} log lines from the test run checked; no secret, session key or NHS number`);
  };
}
