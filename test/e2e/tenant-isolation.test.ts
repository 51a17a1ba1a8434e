/**
 * Per-application isolation (issue 12): one APIM application cannot lock out, slow down or learn about another —
 * APIM's 429 pause is capped and ends with a reload, hung calls of one application hold only its own slots and pool,
 * one client address holds only so many connections — and the smaller defects: another ASID's session answered
 * exactly like an unknown one, APIM error texts that are not OperationOutcomes never passed on, and a UTF-8 file
 * name reaching APIM byte for byte. Real sockets: the APIM stand-in (tokens), fake APIMs on loopback, raw sockets.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime, closeRuntime } from '../../src/runtime/runtime.js';
import { rawRequest } from '../hardening/raw-http.js';
import { A005, answered, apimAt, type FakeServer, fakeHttp, referral } from '../hardening/support.js';
import { newApimApp } from '../helpers/apim-app.js';
import { type CallerBridge, startCallerBridge } from '../helpers/caller-bridge.js';
import {
  APP_ASID,
  expectLegacyOutcome,
  type Harness,
  legacyCall,
  OTHER_ASID,
  openSession,
  startHarness,
} from '../helpers/harness.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { CLINICIAN, startUserHarness, USER_ASID, type UserHarness } from '../helpers/user-harness.js';

const SESSION_PATH = '/ers-api/v1/ProfessionalSession';

describe("APIM's 429: the pause is capped at apim.maxPauseSeconds, and a reload ends it", () => {
  let fake: FakeServer;
  let throttled = 0;
  let b: CallerBridge;
  let clock: ManualClock;
  let key: string;
  beforeAll(async () => {
    fake = await fakeHttp((req, res) => {
      if (throttled > 0) {
        throttled--;
        res.writeHead(429, { 'retry-after': '99999999' }).end();
        return;
      }
      const ubrn = /ReferralRequest\/(\d{12})/.exec(req.url ?? '')?.[1] ?? '000000070000';
      res.writeHead(200, { 'content-type': 'application/fhir+json' }).end(referral(ubrn));
    });
    clock = new ManualClock(Date.now());
    b = await startCallerBridge({ rules: { apim: { baseUrl: apimAt(fake.url) } }, runtime: { clock } });
    key = await openSession(b);
  }, 30_000);
  afterAll(async () => {
    await b?.close();
    await fake?.close();
  });

  const a005 = () => legacyCall(b, 'GET', A005(), { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });

  it("the client is told Retry-After 60, not APIM's 99999999; the next calls wait locally, and after 60 s go through", async () => {
    throttled = 1;
    const hits = fake.hits.length;
    const first = await a005();
    expectLegacyOutcome(first, 429, 'UPSTREAM_RATE_LIMITED');
    expect(first.headers['retry-after']).toBe('60');
    expect(first.body.toString()).not.toContain('99999999');
    expect(fake.hits.length).toBe(hits + 1);

    const local = await a005();
    expectLegacyOutcome(local, 429, 'RATE_LIMITED_LOCALLY');
    expect(Number(local.headers['retry-after'])).toBeGreaterThanOrEqual(59);
    expect(Number(local.headers['retry-after'])).toBeLessThanOrEqual(60);
    await clock.advance(59_000);
    const later = await a005();
    expectLegacyOutcome(later, 429, 'RATE_LIMITED_LOCALLY');
    expect(Number(later.headers['retry-after'])).toBeLessThanOrEqual(1);
    expect(fake.hits.length).toBe(hits + 1);

    await clock.advance(1_001);
    expect((await a005()).status).toBe(200);
    expect(fake.hits.length).toBe(hits + 2);
  });

  it('a rules reload (a new runtime over the old one) clears the pause at once', async () => {
    throttled = 1;
    expect((await a005()).status).toBe(429);
    expect((await a005()).status).toBe(429); // paused locally
    const hits = fake.hits.length;
    const old = b.holder.current;
    b.holder.current = await buildRuntime('test.yaml', old.rules, {
      resolveSecret: secretResolver(b.env),
      previous: old,
    });
    await closeRuntime(old, false);
    const res = await a005();
    expect(res.status).toBe(200);
    expect(fake.hits.length).toBe(hits + 1);
  });
});

describe.each([
  ['the concurrency cap', { perApplication: 2, maxQueue: 0 }],
  ['the pool partitions alone (no cap reached)', { perApplication: 16, maxQueue: 16 }],
])('per-application isolation by %s: one application’s hung calls never hold up another', (_by, concurrency) => {
  const HANG = '000000070001';
  const capped = concurrency.perApplication === 2;
  let fake: FakeServer;
  const hanging: ServerResponse[] = [];
  let b: CallerBridge;
  beforeAll(async () => {
    fake = await fakeHttp((req, res) => {
      if (req.url?.includes(HANG)) {
        hanging.push(res); // answered only when the test ends
        return;
      }
      res.writeHead(200, { 'content-type': 'application/fhir+json' }).end(referral('000000070000'));
    });
    const appB = await newApimApp({ asid: OTHER_ASID, envPrefix: 'APP_B', kid: 'b-1' });
    b = await startCallerBridge({
      apps: [appB],
      rules: {
        apim: {
          baseUrl: apimAt(fake.url),
          connections: 2,
          concurrency,
          timeouts: { connectMs: 2_000, headersMs: 30_000, bodyMs: 5_000 },
        },
        asids: { [OTHER_ASID]: { apim: appB.apim } },
      },
    });
  }, 30_000);
  afterAll(async () => {
    for (const res of hanging.splice(0)) res.destroy();
    await b?.close();
    await fake?.close();
  });

  it("A's third call waits (in A's own pool) or is refused at once (the cap); B's call → 200 promptly", async () => {
    const keyA = await openSession(b, APP_ASID);
    const keyB = await openSession(b, OTHER_ASID);
    const callA = (ubrn: string) => legacyCall(b, 'GET', A005(ubrn), { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: keyA });
    const stuck = [callA(HANG), callA(HANG)];
    await vi.waitFor(() => expect(hanging).toHaveLength(2), { timeout: 5_000, interval: 10 });

    const started = performance.now();
    let queued: Promise<number> | undefined;
    if (capped) {
      const third = await answered(callA('000000070000'), 2_000, "A's third call");
      const issue = expectLegacyOutcome(third, 503, 'APPLICATION_BUSY');
      expect(third.headers['retry-after']).toBe('1');
      expect(issue.diagnostics).toMatch(/wait 1 seconds/);
    } else {
      // No slot refuses it: it waits for one of A's two connections, both held by the hung calls.
      queued = callA('000000070000').then((r) => r.status);
      await vi.waitFor(() => expect(b.holder.current.upstream.stats().pending).toBe(1), {
        timeout: 2_000,
        interval: 10,
      });
    }
    const other = await answered(
      legacyCall(b, 'GET', A005(), { XAPI_ASID: OTHER_ASID, HTTP_X_SESSION_KEY: keyB }),
      2_000,
      "B's call",
    );
    expect(other.status).toBe(200);
    expect(other.json()).toMatchObject({ resourceType: 'ReferralRequest', id: '000000070000' });
    expect(performance.now() - started).toBeLessThan(2_000);
    // A's third call has not reached APIM (refused, or still waiting): only the two hung ones and B's did.
    expect(fake.hits.filter((h) => h.url.includes('000000070000'))).toHaveLength(1);

    // The hung calls end; A's slots and connections are free again.
    for (const res of hanging.splice(0))
      res.writeHead(200, { 'content-type': 'application/fhir+json' }).end(referral(HANG));
    expect((await Promise.all(stuck)).map((r) => r.status)).toEqual([200, 200]);
    if (queued) expect(await answered(queued, 2_000, "A's queued call")).toBe(200);
    expect((await answered(callA('000000070000'), 2_000, "A's call after")).status).toBe(200);
  });
});

describe('connections per client address (server.limits.connectionsPerAddress)', () => {
  let b: CallerBridge;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    b = await startCallerBridge({ rules: { server: { limits: { connectionsPerAddress: 3 } } } });
  }, 30_000);
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await b?.close();
  });

  /** An idle TCP connection to the bridge; `closed` resolves when the server (or anyone) closes it. */
  function open(): Promise<{ socket: Socket; closed: Promise<void> }> {
    const port = Number(new URL(b.bridgeUrl).port);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      sockets.push(socket);
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      socket.on('error', () => {});
      socket.once('connect', () => resolve({ socket, closed }));
      socket.once('error', reject);
    });
  }
  const serverConnections = () =>
    new Promise<number>((resolve, reject) => b.bridge.server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
  const within = (p: Promise<void>, ms: number) =>
    Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

  it('three idle sockets stay open; the fourth is closed by the server at once; a freed place is taken again', async () => {
    const three = [await open(), await open(), await open()];
    await vi.waitFor(async () => expect(await serverConnections()).toBe(3), { timeout: 2_000, interval: 10 });
    const fourth = await open();
    expect(await within(fourth.closed, 2_000)).toBe(true);
    expect(await within(Promise.race(three.map((c) => c.closed)), 300)).toBe(false);
    expect(await serverConnections()).toBe(3);

    // One of the three leaves: a new connection is accepted, and is served.
    three[0]!.socket.destroy();
    await three[0]!.closed;
    await vi.waitFor(async () => expect(await serverConnections()).toBe(2), { timeout: 2_000, interval: 10 });
    const again = await open();
    expect(await within(again.closed, 300)).toBe(false);
    const res = await rawRequest(
      Number(new URL(b.bridgeUrl).port),
      'GET /ers-api/STU3/v1/ReferralRequest/000000070000 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
    );
    // That was a fourth connection again: closed unanswered.
    expect(res.answered).toBe(false);
    again.socket.destroy();
    await again.closed;
    await vi.waitFor(async () => expect(await serverConnections()).toBe(2), { timeout: 2_000, interval: 10 });
    const served = await rawRequest(
      Number(new URL(b.bridgeUrl).port),
      'GET /ers-api/STU3/v1/ReferralRequest/000000070000 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
    );
    expectLegacyOutcome(served, 403, 'ASID_MISSING');
  });
});

describe('another ASID’s session is answered exactly like an unknown one', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  }, 30_000);
  afterAll(async () => {
    await h?.close();
  });

  const metric = async (name: string, labels: string) => {
    const text = await (await request(`${h.opsUrl}/metrics`)).body.text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };

  it('A005, A002 and A003: status, headers that matter and body byte for byte the same', async () => {
    const key = await openSession(h, APP_ASID);
    const unknownKey = `pro-api-session:${randomUUID()}`;
    const before = h.standIn.received.length;
    const calls: Array<[string, (k: string) => string, string | undefined]> = [
      ['GET', () => A005(), undefined],
      [
        'PUT',
        (k) => `${SESSION_PATH}/${k}`,
        JSON.stringify({ permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' } }),
      ],
      ['DELETE', (k) => `${SESSION_PATH}/${k}`, undefined],
    ];
    for (const [method, path, body] of calls) {
      const as = (k: string) =>
        legacyCall(
          h,
          method,
          path(k),
          {
            XAPI_ASID: OTHER_ASID,
            HTTP_X_SESSION_KEY: k,
            'X-Correlation-ID': 'same-correlation-id',
            ...(body ? { 'Content-Type': 'application/json' } : {}),
          },
          body,
        );
      const foreign = await as(key);
      const unknown = await as(unknownKey);
      const issue = expectLegacyOutcome(foreign, 403, 'SESSION_UNKNOWN');
      expect(issue).toEqual(expectLegacyOutcome(unknown, 403, 'SESSION_UNKNOWN'));
      expect(foreign.body.equals(unknown.body), method).toBe(true);
      expect(foreign.headers['content-type']).toBe(unknown.headers['content-type']);
      expect(foreign.body.toString()).not.toMatch(/ASID_MISMATCH|another ASID|999000000001/);
    }
    expect(h.standIn.received.length).toBe(before);
    // The owner's session was neither used nor deleted by the foreign A003.
    expect((await legacyCall(h, 'GET', A005(), { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key })).status).toBe(200);
  });

  it('metrics tell the two apart: only the unknown key counts as unknown_or_expired', async () => {
    const key = await openSession(h, APP_ASID);
    const counted = () => metric('ers_bridge_sessions_ended_total', 'reason="unknown_or_expired"');
    const start = await counted();
    await legacyCall(h, 'GET', A005(), { XAPI_ASID: OTHER_ASID, HTTP_X_SESSION_KEY: key });
    expect(await counted()).toBe(start);
    await legacyCall(h, 'GET', A005(), {
      XAPI_ASID: OTHER_ASID,
      HTTP_X_SESSION_KEY: `pro-api-session:${randomUUID()}`,
    });
    expect(await counted()).toBe(start + 1);
  });

  it('the log line of the foreign call says reason SESSION_ASID_MISMATCH', async () => {
    const key = await openSession(h, APP_ASID);
    const correlation = `mismatch-${randomUUID()}`;
    await legacyCall(h, 'GET', A005(), {
      XAPI_ASID: OTHER_ASID,
      HTTP_X_SESSION_KEY: key,
      'X-Correlation-ID': correlation,
    });
    await vi.waitFor(() => expect(h.logs.some((l) => l.includes(correlation))).toBe(true), { timeout: 2_000 });
    const line = JSON.parse(h.logs.find((l) => l.includes(correlation))!);
    expect(line).toMatchObject({ msg: 'legacy call', status: 403, asid: OTHER_ASID, reason: 'SESSION_ASID_MISMATCH' });
  });
});

describe('APIM error answers that are not OperationOutcomes never reach the client', () => {
  const SECRET_TEXT = 'upstream-internal-detail-7f3a';
  let fake: FakeServer;
  let h: Harness;
  let key: string;
  beforeAll(async () => {
    fake = await fakeHttp((req, res) => {
      const ubrn = /ReferralRequest\/(\d{12})/.exec(req.url ?? '')?.[1];
      switch (ubrn) {
        case '000000070001':
          res
            .writeHead(502, { 'content-type': 'text/html' })
            .end(`<html><body><h1>502 Bad Gateway</h1>${SECRET_TEXT}</body></html>`);
          return;
        case '000000070002':
          res
            .writeHead(500, { 'content-type': 'application/json' })
            .end(JSON.stringify({ error: 'boom', trace: SECRET_TEXT }));
          return;
        case '000000070003':
          res
            .writeHead(400, { 'content-type': 'application/fhir+json' })
            .end(JSON.stringify({ resourceType: 'Bundle', note: `OperationOutcome ${SECRET_TEXT}` }));
          return;
        case '000000070004':
          res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '5' }).end(`${SECRET_TEXT}\n`);
          return;
        default:
          res.writeHead(422, { 'content-type': 'application/fhir+json' }).end(
            JSON.stringify({
              resourceType: 'OperationOutcome',
              issue: [{ severity: 'error', code: 'business-rule', diagnostics: 'e-RS said no (passed on)' }],
            }),
          );
      }
    });
    h = await startHarness({ rules: { apim: { baseUrl: apimAt(fake.url) } } });
    key = await openSession(h);
  }, 30_000);
  afterAll(async () => {
    await h?.close();
    await fake?.close();
  });
  afterEach(() => {
    expect(h.logs.join('\n')).not.toContain(SECRET_TEXT);
  });

  it.each([
    ['text/html 502', '000000070001', 502],
    ['JSON without resourceType', '000000070002', 500],
    ['JSON of another resourceType that mentions OperationOutcome', '000000070003', 400],
    ['text/plain 503', '000000070004', 503],
  ])('%s → legacy UPSTREAM_EMPTY_ERROR with APIM’s status, the upstream text absent', async (_what, ubrn, status) => {
    const res = await legacyCall(h, 'GET', A005(ubrn), { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
    const issue = expectLegacyOutcome(res, status, 'UPSTREAM_EMPTY_ERROR');
    expect(issue.diagnostics).toContain('not an e-RS OperationOutcome (not passed on)');
    expect(res.body.toString()).not.toContain(SECRET_TEXT);
    expect(res.body.toString()).not.toMatch(/Bad Gateway|boom|Bundle/);
  });

  it('an OperationOutcome is passed on, as it is; the same status without one is not', async () => {
    const res = await legacyCall(h, 'GET', A005('000000070009'), { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
    expect(res.status).toBe(422);
    expect(res.json()).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ diagnostics: 'e-RS said no (passed on)' }],
    });
    const plain = await legacyCall(h, 'GET', A005('000000070003'), { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
    expect(plain.json().resourceType).toBe('OperationOutcome');
    expect(plain.body.toString()).not.toContain(SECRET_TEXT);
  });
});

describe('A020: a UTF-8 file name reaches APIM byte for byte', () => {
  let h: UserHarness;
  beforeAll(async () => {
    h = await startUserHarness();
  }, 30_000);
  afterAll(async () => {
    await h?.close();
  });

  it('X-ERS-XAPI-META-FILE_NAME: Résumé.pdf (UTF-8 bytes on the wire) → NHSD-eRS-File-Name with the same bytes', async () => {
    const idToken = await h.cis2.mintIdToken({
      sub: CLINICIAN,
      given_name: 'Alex',
      family_name: 'Example',
      id_assurance_level: 3,
      authentication_assurance_level: 3,
    });
    const a001 = await legacyCall(
      h,
      'POST',
      SESSION_PATH,
      { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
      JSON.stringify({ typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession', token: idToken }),
    );
    expect(a001.status).toBe(201);
    const key = a001.json().id as string;
    const a002 = await legacyCall(
      h,
      'PUT',
      `${SESSION_PATH}/${key}`,
      { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/json' },
      JSON.stringify({
        token: 't',
        permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' },
      }),
    );
    expect(a002.status).toBe(200);

    const name = Buffer.from('Résumé.pdf', 'utf8');
    expect(name.length).toBe(12); // two 2-byte characters
    const file = Buffer.from('%PDF-1.4\n% a test file\n%%EOF\n');
    const head = Buffer.concat([
      Buffer.from(
        'POST /ers-api/STU3/v1/Binary HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n' +
          `XAPI_ASID: ${USER_ASID}\r\nHTTP_X_SESSION_KEY: ${key}\r\nContent-Type: application/pdf\r\n` +
          `Content-Length: ${file.length}\r\nX-ERS-XAPI-META-FILE_NAME: `,
        'latin1',
      ),
      name,
      Buffer.from('\r\n\r\n', 'latin1'),
    ]);
    const before = h.standIn.received.length;
    const res = await rawRequest(Number(new URL(h.bridgeUrl).port), head, { body: [file] });
    expect(res.status, res.body.toString()).toBe(201);
    const upload = h.standIn.received.slice(before).find((r) => r.method === 'POST' && r.url.endsWith('/STU3/Binary'));
    expect(upload).toBeDefined();
    const sent = upload!.rawHeaders.filter(([n]) => n.toLowerCase() === 'nhsd-ers-file-name');
    expect(sent).toHaveLength(1);
    // Node's HTTP parser gives header values as latin1 strings: their latin1 bytes are the bytes on the wire.
    expect(Buffer.from(sent[0]![1], 'latin1').toString('hex')).toBe(name.toString('hex'));
    expect(upload!.body.equals(file)).toBe(true);
  });
});
