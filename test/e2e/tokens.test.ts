/**
 * Application-restricted tokens through ers-bridge: shared and cached, renewed before expiry, renewed once after an
 * APIM 401, and refused or unavailable token endpoints turned into legacy-shaped answers without secrets.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  APP_ASID,
  expectLegacyOutcome,
  type Harness,
  legacyCall,
  legacyFixture,
  openSession,
  startHarness,
} from '../helpers/harness.js';

const A005 = '/ers-api/STU3/v1/ReferralRequest/000000070000';

let h: Harness | undefined;
const servers: Server[] = [];
afterEach(async () => {
  await h?.close();
  h = undefined;
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A real loopback HTTP server with a fixed behaviour, standing in for a misbehaving APIM. */
async function fakeUpstream(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('application-restricted tokens', () => {
  it('200 concurrent first requests cause exactly one token call', async () => {
    h = await startHarness();
    const key = await openSession(h);
    const harness = h;
    const results = await Promise.all(
      Array.from({ length: 200 }, () =>
        legacyCall(harness, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(200).fill(200));
    expect(h.standIn.tokenRequests).toHaveLength(1);
    expect(h.standIn.received).toHaveLength(200);
  });

  it('a token is renewed before it expires', async () => {
    let clock = Date.now();
    h = await startHarness({ runtime: { now: () => clock } });
    const key = await openSession(h);
    const call = () => legacyCall(h!, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
    expect((await call()).status).toBe(200);
    expect((await call()).status).toBe(200);
    expect(h.standIn.tokenRequests).toHaveLength(1);
    clock += 600_000; // past expires_in (599 s)
    expect((await call()).status).toBe(200);
    expect(h.standIn.tokenRequests).toHaveLength(2);
    const [first, second] = h.standIn.received.slice(-2).map((r) => r.headers['authorization']);
    expect(second).not.toBe(first);
  });

  it('a token past 90% of its life is renewed in the background while still served', async () => {
    let clock = Date.now();
    h = await startHarness({ runtime: { now: () => clock } });
    const key = await openSession(h);
    const call = () => legacyCall(h!, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
    await call();
    clock += 560_000; // past renewal point (≈539 s), before expiry (599 s)
    expect((await call()).status).toBe(200);
    // The renewal runs in the background, after the answer: wait for it to reach the token endpoint.
    await vi.waitFor(() => expect(h!.standIn.tokenRequests).toHaveLength(2), { timeout: 2_000, interval: 10 });
  });

  it('an APIM 401 causes one renewal and one retry, invisible to the client', async () => {
    h = await startHarness();
    const key = await openSession(h);
    const call = () => legacyCall(h!, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
    expect((await call()).status).toBe(200);
    h.standIn.revokeAccessTokens();
    const before = h.standIn.received.length;
    const res = await call();
    expect(res.status).toBe(200);
    expect(res.json()).toEqual(legacyFixture('stu3/retrieveReferralRequest/responses/Unbooked.json', h.legacyBase));
    expect(h.standIn.received.length - before).toBe(2); // the refused call and the retry
    expect(h.standIn.tokenRequests).toHaveLength(2);
    const line = h.logs.map((l) => JSON.parse(l)).findLast((l) => l.msg === 'legacy call');
    expect(line.tokenRenewed).toBe(true);
  });

  it('APIM refusing a fresh token as well gives a legacy 502 after exactly one retry', async () => {
    let hits = 0;
    const upstream = await fakeUpstream((_req, res) => {
      hits++;
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
    });
    h = await startHarness({ rules: { apim: { baseUrl: `${upstream}/referrals/FHIR` } } });
    const key = await openSession(h);
    const res = await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
    const issue = expectLegacyOutcome(res, 502, 'ACCESS_TOKEN_REFUSED');
    expect(issue.diagnostics).toContain(APP_ASID);
    expect(hits).toBe(2);
    expect(h.standIn.tokenRequests).toHaveLength(2);
  });

  it("a token endpoint refusal (4xx) is passed on with APIM's error_description and no secret", async () => {
    h = await startHarness({ keyIdAtStandIn: 'a-different-kid' });
    const key = await openSession(h);
    const res = await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
    const issue = expectLegacyOutcome(res, 502, 'TOKEN_REJECTED_BY_APIM');
    expect(issue.diagnostics).toContain("Invalid 'kid' header in client_assertion JWT - no matching public key");
    const text = res.body.toString('utf8');
    expect(text).not.toContain(h.secrets.apiKey);
    expect(text).not.toContain('PRIVATE KEY');
    expect(h.standIn.received).toHaveLength(0);
    // A refusal is remembered briefly: a second call does not hammer the token endpoint.
    await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
    expect(h.standIn.tokenRequests).toHaveLength(1);
  });

  it('an unreachable token endpoint is retried with backoff, then a legacy 503 with Retry-After', async () => {
    let calls = 0;
    const tokenServer = await fakeUpstream((_req, res) => {
      calls++;
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"unavailable"}');
    });
    h = await startHarness({ rules: { apim: { tokenUrl: `${tokenServer}/oauth2/token` } } });
    const key = await openSession(h);
    const res = await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
    expectLegacyOutcome(res, 503, 'TOKEN_ENDPOINT_UNAVAILABLE');
    expect(res.headers['retry-after']).toBe('5');
    expect(calls).toBe(2); // the first try and one retry (harness sets retries: 1)
  });
});
