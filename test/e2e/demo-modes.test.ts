/**
 * `ers-bridge demo --mode shadow|canary` as the README walks it: the real CLI in a child process starts the APIM
 * stand-in, the legacy stand-in and ers-bridge with the demo rules' legacy side pointed at the legacy stand-in. In
 * shadow mode the README's curls (A001 → A002 → A005 → A003) fill the comparisons at once: GET /admin/compare and
 * the report page, open on the loopback demo. In canary mode half of the sessions stay on each side.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { keepForScan } from '../helpers/harness.js';

const BIN = fileURLToPath(new URL('../../bin/ers-bridge.js', import.meta.url));
const ASID = '999000000001'; // rules/local.yaml
const TYPE_INFO = 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession';
const A005 = '/ers-api/STU3/v1/ReferralRequest/000000070000';

interface Demo {
  child: ChildProcess;
  base: string;
  legacyBase: string;
  output: () => string;
}

async function startDemo(mode: string): Promise<Demo> {
  const ports = ['--port', '0', '--ops-port', '0', '--apim-port', '0', '--legacy-port', '0', '--cis2-port', '0'];
  const args = ['demo', '--mode', mode, ...ports];
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ERS_BRIDGE_FROM_SOURCE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (d: Buffer) => {
    output += d.toString();
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const [base, legacyBase] = await new Promise<[string, string]>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // never left running when it did not start
      reject(new Error(`demo did not start:\n${output}`));
    }, 20_000);
    const check = () => {
      const bridge = /^ers-bridge:\s+(http:\/\/127\.0\.0\.1:\d+)\/ers-api/m.exec(output);
      const legacy = /^legacy:\s+(http:\/\/127\.0\.0\.1:\d+\/ers-api)\s/m.exec(output);
      if (bridge && legacy && /Ctrl-C stops/.test(output)) {
        clearTimeout(timer);
        resolve([bridge[1]!, legacy[1]!]);
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => reject(new Error(`demo exited with ${code}:\n${output}`)));
  });
  return { child, base, legacyBase, output: () => output };
}

async function stopDemo(demo: Demo | undefined): Promise<number | null> {
  if (!demo) return null;
  if (demo.child.exitCode === null) {
    const exited = new Promise<number | null>((resolve) => demo.child.on('exit', (code) => resolve(code)));
    demo.child.kill('SIGINT');
    await exited;
  }
  keepForScan(demo.output());
  return demo.child.exitCode;
}

async function call(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  const res = await request(url, {
    method: (init.method ?? 'GET') as 'GET',
    ...(init.headers ? { headers: init.headers } : {}),
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
}

/** The README's A001 and A002: a session with the demo ASID's role selected. */
async function readmeSession(base: string): Promise<string> {
  const a001 = await call(`${base}/ers-api/v1/ProfessionalSession`, {
    method: 'POST',
    headers: { XAPI_ASID: ASID, 'Content-Type': 'application/json' },
    body: JSON.stringify({ typeInfo: TYPE_INFO, token: 'demo' }),
  });
  expect(a001.status, a001.text).toBe(201);
  const session = a001.json().id as string;
  const a002 = await call(`${base}/ers-api/v1/ProfessionalSession/${session}`, {
    method: 'PUT',
    headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: session, 'Content-Type': 'application/json' },
    body: JSON.stringify({
      typeInfo: TYPE_INFO,
      token: 'demo',
      permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' },
    }),
  });
  expect(a002.status, a002.text).toBe(200);
  return session;
}

const a005 = (base: string, session: string) =>
  call(`${base}${A005}`, { headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: session } });

describe('ers-bridge demo --mode shadow', () => {
  let demo: Demo | undefined;
  beforeAll(async () => {
    demo = await startDemo('shadow');
  }, 40_000);
  afterAll(async () => {
    if (demo?.child.exitCode === null) demo.child.kill('SIGKILL');
  });

  it('prints the legacy stand-in and where the comparisons are', () => {
    expect(demo!.output()).toMatch(/^legacy: .*mode shadow: the legacy stand-in answers; APIM gets a copy/m);
    expect(demo!.output()).toContain(`comparisons:   ${demo!.base}/admin/compare/ui`);
  });

  it("fills the comparisons from the README's curls: A001 → A002 → A005 → A003, then GET /admin/compare", async () => {
    const { base } = demo!;
    const before = await call(`${base}/admin/compare`);
    expect(before.status).toBe(200);
    expect(before.json().records).toBe(0);

    const session = await readmeSession(base);
    const referral = await a005(base, session);
    expect(referral.status, referral.text).toBe(200);
    // The legacy stand-in answered (its Content-Disposition quirk), through ers-bridge, with links to ers-bridge.
    expect(referral.headers['content-disposition']).toBe('inline;filename=f.txt');
    expect(referral.headers['etag']).toBe('W/"5"');
    expect(referral.json()).toMatchObject({ resourceType: 'ReferralRequest', id: '000000070000' });
    const a003 = await call(`${base}/ers-api/v1/ProfessionalSession/${session}`, {
      method: 'DELETE',
      headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: session },
    });
    expect(a003.status).toBe(204);

    // The copy to APIM is compared after the answer: the record appears a moment later.
    const summary = await vi.waitUntil(
      async () => {
        const s = (await call(`${base}/admin/compare`)).json();
        return s.records > 0 ? s : undefined;
      },
      { timeout: 10_000, interval: 50 },
    );
    const code = summary.codes.find((c: { aCode: string }) => c.aCode === 'A005');
    expect(code).toMatchObject({ aCode: 'A005', compared: 1, statusMismatches: 0, secondaryErrors: 0 });
    // What a migration team learns at once: the legacy API's Content-Disposition quirk, which APIM does not send.
    expect(code.topFields.map((f: { path: string }) => f.path)).toContain('header:content-disposition');
    expect(summary.asids).toEqual([
      expect.objectContaining({ asid: ASID, codes: [expect.objectContaining({ aCode: 'A005', calls: 1 })] }),
    ]);

    const page = await call(`${base}/admin/compare/ui`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('A005');
    expect(page.text).toContain(ASID);
  });

  it('stops on Ctrl-C (SIGINT) with exit code 0', async () => {
    expect(await stopDemo(demo)).toBe(0);
    expect(demo!.output()).not.toMatch(/PRIVATE KEY/);
  });
});

describe('ers-bridge demo --mode canary', () => {
  let demo: Demo | undefined;
  beforeAll(async () => {
    demo = await startDemo('canary');
  }, 40_000);
  afterAll(async () => {
    await stopDemo(demo);
  });

  it('answers about half of the sessions from APIM and the rest from the legacy stand-in, each session on one side', async () => {
    const { base } = demo!;
    const sides: string[] = [];
    for (let i = 0; i < 20; i++) {
      const session = await readmeSession(base);
      const first = await a005(base, session);
      const again = await a005(base, session);
      expect(first.status, first.text).toBe(200);
      expect(again.status).toBe(200);
      const side = (r: typeof first) =>
        r.headers['content-disposition'] === 'inline;filename=f.txt' ? 'legacy' : 'apim';
      expect(side(again)).toBe(side(first)); // sticky
      sides.push(side(first));
    }
    // 50% by session: with 20 sessions, both sides are all but certain to be used (a miss is 2 in a million).
    expect(sides).toContain('legacy');
    expect(sides).toContain('apim');
  });
});
