/**
 * `ers-bridge emulate-legacy`, as a migration team runs it: the real CLI in a child process, answering the session
 * flow A001 → A002 → A005 → A003 as the HSCN API did, over plain HTTP and over mutual TLS (a client certificate of
 * the given CA required: without one the TLS handshake fails). And the product module's bounds, which keep a
 * long-running stand-in's memory flat.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_TYPE_INFO, startLegacyStandIn } from '../../src/legacy-standin/index.js';
import { keepForScan } from '../helpers/harness.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';

const BIN = fileURLToPath(new URL('../../bin/ers-bridge.js', import.meta.url));
const ASID = '200000000220';
const TICKET = 'AQIC5wM2LY4Sfcyw62EbAOsRpdfbGYUOyvkfZ4M6U7W52lM=@AAJTSQACMDE=#';
const TRANSACTION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-1$/;

interface Running {
  child: ChildProcess;
  base: string;
  output: () => string;
}

/** `ers-bridge emulate-legacy <args>` in a child process, once it has printed where it listens. */
async function emulateLegacy(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [BIN, 'emulate-legacy', '--port', '0', ...args], {
    env: { ...process.env, ERS_BRIDGE_FROM_SOURCE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => {
    output += d.toString();
  });
  child.stderr!.on('data', (d) => {
    output += d.toString();
  });
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // never left running when it did not start
      reject(new Error(`emulate-legacy did not start:\n${output}`));
    }, 15_000);
    const check = () => {
      const m = /^legacy stand-in \(HSCN e-RS API\) on (https?:\/\/127\.0\.0\.1:\d+\/ers-api)/m.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => reject(new Error(`emulate-legacy exited with ${code}:\n${output}`)));
  });
  return { child, base, output: () => output };
}

async function stop(r: Running | undefined): Promise<number | null> {
  if (!r || r.child.exitCode !== null) return r?.child.exitCode ?? null;
  const exited = new Promise<number | null>((resolve) => r.child.on('exit', (code) => resolve(code)));
  r.child.kill('SIGINT');
  const code = await exited;
  keepForScan(r.output());
  return code;
}

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: () => any;
  text: string;
}

async function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; dispatcher?: Agent } = {},
): Promise<Res> {
  const res = await request(url, {
    method: (init.method ?? 'GET') as 'GET',
    ...(init.headers ? { headers: init.headers } : {}),
    ...(init.body !== undefined ? { body: init.body } : {}),
    ...(init.dispatcher ? { dispatcher: init.dispatcher } : {}),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
}

/** The README's walk against the legacy host: A001 → A002 → A005 → A003, as a legacy client sent them. */
async function walk(base: string, dispatcher?: Agent): Promise<void> {
  const d = dispatcher ? { dispatcher } : {};
  const a001 = await call(`${base}/v1/ProfessionalSession`, {
    method: 'POST',
    headers: { XAPI_ASID: ASID, 'Content-Type': 'application/json' },
    body: JSON.stringify({ typeInfo: SESSION_TYPE_INFO, token: TICKET }),
    ...d,
  });
  expect(a001.status, a001.text).toBe(201);
  expect(a001.headers['content-type']).toMatch(/^application\/json/);
  expect(a001.headers['x_ers_transaction_id']).toMatch(TRANSACTION_ID);
  const session = a001.json();
  expect(session).toMatchObject({ typeInfo: SESSION_TYPE_INFO, token: TICKET, permission: null });
  expect(session.id).toMatch(/^pro-api-session:[0-9a-f-]{36}$/);
  expect(session.user.permissions).toContainEqual({
    businessFunction: 'SERVICE_PROVIDER_CLINICIAN',
    orgIdentifier: 'R69',
    orgName: 'BTL NHS TRUST R69',
  });
  const key = session.id as string;

  // Before A002 the session cannot be used.
  const early = await call(`${base}/STU3/v1/ReferralRequest/000000070000`, {
    headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: key },
    ...d,
  });
  expect(early.status).toBe(403);
  expect(early.json().issue[0].details.coding[0].code).toBe('NO_ACCESS');

  const a002 = await call(`${base}/v1/ProfessionalSession/${key}`, {
    method: 'PUT',
    headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/json' },
    body: JSON.stringify({
      ...session,
      permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' },
    }),
    ...d,
  });
  expect(a002.status, a002.text).toBe(200);
  expect(a002.json().permission).toEqual({
    businessFunction: 'SERVICE_PROVIDER_CLINICIAN',
    orgIdentifier: 'R69',
    orgName: 'BTL NHS TRUST R69',
  });

  const a005 = await call(`${base}/STU3/v1/ReferralRequest/000000070000`, {
    headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: key, Accept: 'application/fhir+json' },
    ...d,
  });
  expect(a005.status, a005.text).toBe(200);
  expect(a005.headers['etag']).toBe('W/"5"');
  expect(a005.headers['content-type']).toMatch(/^application\/fhir\+json/);
  expect(a005.headers['content-disposition']).toBe('inline;filename=f.txt');
  expect(a005.headers['x_ers_transaction_id']).toMatch(TRANSACTION_ID);
  expect(a005.json()).toMatchObject({ resourceType: 'ReferralRequest', id: '000000070000' });
  // Links point at the legacy host itself, under /STU3/v1/, as the HSCN API's did.
  expect(a005.text).toContain(`${base}/STU3/v1/CodeSystem/`);
  expect(a005.text).not.toContain('_baseUrl_');

  const a003 = await call(`${base}/v1/ProfessionalSession/${key}`, {
    method: 'DELETE',
    headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: key },
    ...d,
  });
  expect(a003.status).toBe(204);
  expect(a003.text).toBe('');

  const after = await call(`${base}/STU3/v1/ReferralRequest/000000070000`, {
    headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: key },
    ...d,
  });
  expect(after.status).toBe(403);
}

describe('ers-bridge emulate-legacy over HTTP', () => {
  let r: Running | undefined;
  beforeAll(async () => {
    r = await emulateLegacy(['--asid', ASID]);
  }, 30_000);
  afterAll(async () => {
    await stop(r);
  });

  it('prints where it listens and how to point ers-bridge at it', () => {
    expect(r!.base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ers-api$/);
    expect(r!.output()).toContain(`legacy.baseUrl: ${r!.base}`);
    expect(r!.output()).toMatch(/^Try: curl -i -X POST /m);
  });

  it('answers A001 → A002 → A005 → A003 as the HSCN API did', async () => {
    await walk(r!.base);
  });

  it('refuses an ASID it was not given, as HSCN refused unknown ASIDs', async () => {
    const res = await call(`${r!.base}/v1/ProfessionalSession`, {
      method: 'POST',
      headers: { XAPI_ASID: '999000000099', 'Content-Type': 'application/json' },
      body: JSON.stringify({ typeInfo: SESSION_TYPE_INFO, token: TICKET }),
    });
    expect(res.status).toBe(403);
    expect(res.json().issue[0].diagnostics).toMatch(/ASID 999000000099 is not valid/);
  });

  it('stops on Ctrl-C (SIGINT) with exit code 0', async () => {
    expect(await stop(r)).toBe(0);
    r = undefined;
  });
});

describe('ers-bridge emulate-legacy over mutual TLS', () => {
  let pki: TestPki;
  let r: Running | undefined;
  let dir: string | undefined;
  const agents: Agent[] = [];
  const agent = (connect: Record<string, string>) => {
    const a = new Agent({ connect });
    agents.push(a);
    return a;
  };

  beforeAll(async () => {
    pki = makeTestPki();
    const folder = mkdtempSync(join(tmpdir(), 'ers-bridge-emulate-legacy-'));
    dir = folder;
    const file = (name: string, pem: string) => {
      writeFileSync(join(folder, name), pem, { mode: 0o600 });
      return join(folder, name);
    };
    r = await emulateLegacy([
      '--cert',
      file('server.pem', pki.serverCertPem),
      '--key',
      file('server-key.pem', pki.serverKeyPem),
      '--mtls-ca',
      file('ca.pem', pki.caPem),
    ]);
  }, 30_000);
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await stop(r);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('says client certificates are required', () => {
    expect(r!.base).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/ers-api$/);
    expect(r!.output()).toMatch(/\(mutual TLS: client certificates required\)/);
  });

  it('answers A001 → A002 → A005 → A003 to a client presenting an endpoint certificate of the CA', async () => {
    await walk(r!.base, agent({ ca: pki.caPem, cert: pki.clientCertPem, key: pki.clientKeyPem }));
  });

  it('fails the TLS handshake without a client certificate, or with one of another CA', async () => {
    const tries: Array<Record<string, string>> = [
      { ca: pki.caPem },
      { ca: pki.caPem, cert: pki.otherClientCertPem, key: pki.otherClientKeyPem },
    ];
    for (const connect of tries) {
      const failure = await call(`${r!.base}/v1/ProfessionalSession`, {
        method: 'POST',
        headers: { XAPI_ASID: ASID, 'Content-Type': 'application/json' },
        body: JSON.stringify({ typeInfo: SESSION_TYPE_INFO, token: TICKET }),
        dispatcher: agent(connect),
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(failure).toBeInstanceOf(Error);
    }
  });
});

describe('the legacy stand-in module: bounded for long runs', () => {
  it('keeps at most maxSessions sessions (A001 ends the oldest) and maxRecorded requests', async () => {
    const s = await startLegacyStandIn({ maxSessions: 2, maxRecorded: 3 });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await call(`${s.baseUrl}/v1/ProfessionalSession`, {
          method: 'POST',
          headers: { XAPI_ASID: ASID, 'Content-Type': 'application/json' },
          body: JSON.stringify({ typeInfo: SESSION_TYPE_INFO, token: `${TICKET}${i}` }),
        });
        expect(res.status).toBe(201);
        ids.push(res.json().id);
      }
      expect([...s.sessions.keys()]).toEqual(ids.slice(1));
      const gone = await call(`${s.baseUrl}/v1/ProfessionalSession/${ids[0]}`, {
        method: 'DELETE',
        headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: ids[0]! },
      });
      expect(gone.status).toBe(403);
      expect(s.received).toHaveLength(3);
      expect(s.received.at(-1)?.method).toBe('DELETE');
    } finally {
      await s.close();
    }
  });

  it('keeps no records with maxRecorded 0 (what the CLI runs)', async () => {
    const s = await startLegacyStandIn({ maxRecorded: 0 });
    try {
      const res = await call(`${s.baseUrl}/v1/ProfessionalSession`, { method: 'POST', headers: { XAPI_ASID: ASID } });
      expect(res.status).toBe(422);
      expect(s.received).toEqual([]);
    } finally {
      await s.close();
    }
  });
});
