/**
 * The README's demo, as a newcomer runs it: `npm start` (= `ers-bridge demo`) in a real child process, then the
 * README's curl walk-through A001 → A002 → A005 → A003, then Ctrl-C. Ports are chosen free (0) so the test never
 * collides with anything on the machine.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keepForScan } from '../helpers/harness.js';

const BIN = fileURLToPath(new URL('../../bin/ers-bridge.js', import.meta.url));
const ASID = '999000000001'; // rules/local.yaml

describe('npm start (ers-bridge demo)', () => {
  let child: ChildProcess;
  let base: string;
  let output = '';

  beforeAll(async () => {
    child = spawn(
      process.execPath,
      [BIN, 'demo', '--port', '0', '--ops-port', '0', '--apim-port', '0', '--cis2-port', '0'],
      {
        env: { ...process.env, LOG_LEVEL: 'warn', ERS_BRIDGE_FROM_SOURCE: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout!.on('data', (d) => {
      output += d.toString();
    });
    child.stderr!.on('data', (d) => {
      output += d.toString();
    });
    base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo did not start:\n${output}`)), 15_000);
      const check = () => {
        const m = /ers-bridge:\s+(http:\/\/127\.0\.0\.1:\d+)\/ers-api/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      child.stdout!.on('data', check);
      child.on('exit', (code) => reject(new Error(`demo exited with ${code}:\n${output}`)));
    });
  }, 30_000);

  afterAll(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('walks A001 → A002 → A005 → A003 as the README shows', async () => {
    const a001 = await request(`${base}/ers-api/v1/ProfessionalSession`, {
      method: 'POST',
      headers: { XAPI_ASID: ASID, 'Content-Type': 'application/json' },
      body: JSON.stringify({ typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession', token: 'demo' }),
    });
    expect(a001.statusCode).toBe(201);
    const session = (await a001.body.json()) as { id: string; user: { permissions: unknown[] } };

    const a002 = await request(`${base}/ers-api/v1/ProfessionalSession/${session.id}`, {
      method: 'PUT',
      headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...session, permission: session.user.permissions[0] }),
    });
    expect(a002.statusCode).toBe(200);
    await a002.body.dump();

    const a005 = await request(`${base}/ers-api/STU3/v1/ReferralRequest/000000070000`, {
      headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: session.id },
    });
    expect(a005.statusCode).toBe(200);
    expect(a005.headers['x_ers_transaction_id']).toMatch(/-1$/);
    const referral = (await a005.body.json()) as { resourceType: string; id: string };
    expect(referral).toMatchObject({ resourceType: 'ReferralRequest', id: '000000070000' });
    expect(JSON.stringify(referral)).toContain(`${base}/ers-api/STU3/v1/CodeSystem/`);

    const a003 = await request(`${base}/ers-api/v1/ProfessionalSession/${session.id}`, {
      method: 'DELETE',
      headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: session.id },
    });
    expect(a003.statusCode).toBe(204);
    await a003.body.dump();
  });

  it('prints its ops port (--ops-port 0 picked a free one): /healthz and /readyz there, not on the legacy port', async () => {
    const ops = /^ops:\s+(http:\/\/127\.0\.0\.1:\d+)\s/m.exec(output)?.[1];
    expect(ops, output).toBeDefined();
    expect(ops).not.toBe(base);
    for (const path of ['/healthz', '/readyz']) {
      const res = await request(`${ops}${path}`);
      expect(res.statusCode, path).toBe(200);
      await res.body.dump();
      const legacy = await request(`${base}${path}`);
      expect(legacy.statusCode, path).toBe(404);
      await legacy.body.dump();
    }
  });

  it('stops cleanly on Ctrl-C (SIGINT) with exit code 0', async () => {
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output).not.toMatch(/PRIVATE KEY/);
    keepForScan(output);
  });
});
