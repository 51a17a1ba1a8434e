/**
 * Explicit trust at the command line, in a real child process: `serve` checks the rules again for the address it
 * really binds (--host may open ers-bridge wider than the rules' server.host), and `rules check` refuses rules that
 * name a non-loopback host for an ASID nobody authenticates. Exit 2 with the loader's one line; nothing listens.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { APP_ASID, keepForScan } from '../helpers/harness.js';
import { rulesText } from '../helpers/rules.js';

const BIN = fileURLToPath(new URL('../../bin/ers-bridge.js', import.meta.url));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, ERS_BRIDGE_FROM_SOURCE: '1', LOG_LEVEL: 'info' }, timeout: 20_000 },
      (err, stdout, stderr) => {
        keepForScan(`${stdout}${stderr}`);
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
      },
    );
  });
}

describe('ers-bridge serve --host and rules check: explicit trust', () => {
  let dir: string;
  let loopback: string;
  let exposed: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ers-bridge-trust-cli-'));
    // Loopback rules (valid as they are), with the Host names an exposed ers-bridge needs, and no callerAuth.
    const text = rulesText({
      apim: { baseUrl: 'http://127.0.0.1:9/referrals/FHIR', tokenUrl: 'http://127.0.0.1:9/oauth2/token' },
      server: { allowedHosts: ['ers-bridge.trust.nhs.uk'], port: 0 },
      asids: { [APP_ASID]: {} },
    });
    loopback = join(dir, 'loopback.yaml');
    writeFileSync(loopback, text);
    const doc = parse(text);
    doc.server.host = '0.0.0.0';
    exposed = join(dir, 'exposed.yaml');
    writeFileSync(exposed, stringify(doc));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const CALLER_AUTH = (file: string) =>
    new RegExp(
      `^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: asids\\."${APP_ASID}"\\.callerAuth: expected a certificate binding \\(certificates\\), an A001 secret \\(a001Secret\\) or networkOnly with the reason: ers-bridge listens on 0\\.0\\.0\\.0`,
    );

  it('serve --host 0.0.0.0 with loopback rules and an unauthenticated ASID exits 2 with one line, before listening', async () => {
    const { code, stdout, stderr } = await run([
      'serve',
      '--rules',
      loopback,
      '--host',
      '0.0.0.0',
      '--port',
      '0',
      '--ops-port',
      '0',
    ]);
    expect(code).toBe(2);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(CALLER_AUTH(loopback));
    expect(`${stdout}${stderr}`).not.toMatch(/serving|listening/i);
  });

  it('rules check on the same rules naming host 0.0.0.0 exits 2 with that line; the loopback file is ok', async () => {
    const bad = await run(['rules', 'check', exposed]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toMatch(CALLER_AUTH(exposed));
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    const good = await run(['rules', 'check', loopback]);
    expect(good).toMatchObject({ code: 0, stdout: `ok ${loopback}\n` });
  });
});
