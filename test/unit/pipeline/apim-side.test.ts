import { Readable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { bufferBody } from '../../../src/apim/dispatch.js';
import { RateLimited, RateLimiter, RetryBudget } from '../../../src/apim/rate-limiter.js';
import { type Upstream, UpstreamError } from '../../../src/apim/upstream.js';
import type { TokenSource } from '../../../src/apim/wrappers/bearer-token.js';
import type { OperationOutcome } from '../../../src/legacy/errors.js';
import { apimDispatch, callApim, rewriteBack, rewriteForApim, userContextOf } from '../../../src/pipeline/apim-side.js';
import { knownFault } from '../../../src/pipeline/faults.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { apimResponse, appSession, endpoint, legacyRejection, rejectionOf, URLS, userSession } from './fakes.js';

const APIM_BASE = new URL('https://apim.test/referrals/FHIR/');
const A005 = endpoint('/STU3/v1/ReferralRequest/{ubrn}');
const A010 = endpoint('A010');
const outcome = (body: unknown) => JSON.parse((body as Buffer).toString('utf8')) as OperationOutcome;

describe('userContextOf', () => {
  it('application-restricted sessions carry no user headers', () => {
    expect(userContextOf(appSession())).toBeUndefined();
  });

  it('user-restricted with a role: the ODS code and the business function', () => {
    expect(userContextOf(userSession())).toEqual({ odsCode: 'RCD', businessFunction: 'SERVICE_PROVIDER_CLINICIAN' });
  });

  it('onBehalfOf only when set', () => {
    expect(userContextOf(userSession(0, { onBehalfOf: '123456789012' }))).toEqual({
      odsCode: 'RCD',
      businessFunction: 'SERVICE_PROVIDER_CLINICIAN',
      onBehalfOfUserId: '123456789012',
    });
    expect(userContextOf(userSession(0, { onBehalfOf: null }))).not.toHaveProperty('onBehalfOfUserId');
  });

  it('user-restricted without a role selected: none', () => {
    expect(userContextOf(userSession(0, { permission: null }))).toBeUndefined();
  });
});

describe('rewriteForApim', () => {
  const input = {
    endpoint: A005,
    params: { ubrn: '000000070000' },
    query: '_format=json',
    headers: { authorization: 'Bearer client-token', xapi_asid: '200000000001', 'user-agent': 'legacy/1.0' },
    apimBase: APIM_BASE,
    correlationId: 'corr-1',
    session: appSession(),
    body: bufferBody(undefined),
  };

  it('the path under the APIM base path, the query kept, no client Authorization, no session headers', () => {
    const call = rewriteForApim(input);
    expect(call.endpoint).toBe(A005);
    expect(call.request.method).toBe('GET');
    expect(call.request.path).toBe('/referrals/FHIR/STU3/ReferralRequest/000000070000?_format=json');
    expect(call.request.headers).toEqual({
      accept: 'application/fhir+json',
      'user-agent': 'legacy/1.0',
      'x-correlation-id': 'corr-1',
    });
    expect(call.body).toBe(input.body);
    expect(call.signal).toBeUndefined();
  });

  it('content-length from a body of known length', () => {
    const body = bufferBody(Buffer.from('{"resourceType":"Parameters"}'));
    const call = rewriteForApim({ ...input, endpoint: A010, params: {}, query: '', body });
    expect(call.request.headers['content-length']).toBe(String(body.length));
    expect(call.request.headers['content-type']).toBe('application/fhir+json');
  });

  it("a user session's role headers; the signal passed along", () => {
    const signal = new AbortController().signal;
    const call = rewriteForApim({ ...input, session: userSession(0, { onBehalfOf: '123456789012' }), signal });
    expect(call.request.headers).toMatchObject({
      'NHSD-End-User-Organisation-ODS': 'RCD',
      'NHSD-eRS-Business-Function': 'SERVICE_PROVIDER_CLINICIAN',
      'NHSD-eRS-On-Behalf-Of-User-ID': '123456789012',
    });
    expect(call.signal).toBe(signal);
  });
});

describe('rewriteBack', () => {
  const LIMIT = 1000;
  const back = (res: ReturnType<typeof apimResponse>, ep = A005) => rewriteBack(ep, res, URLS, 'corr-1', LIMIT);
  const fhir = { 'content-type': 'application/fhir+json' };

  it('JSON 200: links rewritten APIM → legacy, X-Request-ID → X_ERS_TRANSACTION_ID, headers by allow-list', async () => {
    const json = JSON.stringify({
      fullUrl: `${URLS.apimBase}/STU3/ReferralRequest/000000070000`,
      r4: `${URLS.apimBase}/R4/HealthcareService/svc-1`,
    });
    const res = apimResponse(
      200,
      { ...fhir, 'x-request-id': 'abc-123', etag: 'W/"3"', 'set-cookie': 'a=b', 'content-length': '999' },
      [Buffer.from(json.slice(0, 10)), Buffer.from(json.slice(10))],
    );
    const answer = await back(res);
    expect(answer.status).toBe(200);
    expect(answer.headers).toEqual({
      'content-type': 'application/fhir+json',
      etag: 'W/"3"',
      X_ERS_TRANSACTION_ID: 'abc-123',
      'x-correlation-id': 'corr-1',
    });
    expect(JSON.parse((answer.body as Buffer).toString())).toEqual({
      fullUrl: `${URLS.legacyBase}/STU3/v1/ReferralRequest/000000070000`,
      r4: `${URLS.legacyBase}/R4/v1/HealthcareService/svc-1`,
    });
  });

  it('a file streams through unread, with its content-length', async () => {
    const res = apimResponse(200, { 'content-type': 'application/pdf', 'content-length': '8' }, '%PDF-1.7');
    const answer = await back(res, endpoint('A006'));
    expect(answer.body).toBe(res.body);
    expect(answer.headers['content-length']).toBe('8');
    expect(answer.headers['content-type']).toBe('application/pdf');
    expect(res.body.dump).not.toHaveBeenCalled();
  });

  it('HEAD, 204 and 304: no body, and what APIM sent is dumped', async () => {
    const cases: Array<[number, ReturnType<typeof endpoint>]> = [
      [200, endpoint('A037')],
      [204, A005],
      [304, A005],
    ];
    for (const [status, ep] of cases) {
      const res = apimResponse(status, fhir, '');
      const answer = await back(res, ep);
      expect(answer.status).toBe(status);
      expect(answer.body).toBeUndefined();
      expect(res.body.dump).toHaveBeenCalledTimes(1);
    }
  });

  it('a 4xx JSON error: status kept, its links rewritten', async () => {
    const body = JSON.stringify({ resourceType: 'OperationOutcome', link: `${URLS.apimBase}/STU3/Slot` });
    const answer = await back(apimResponse(422, { ...fhir, 'x-request-id': 'tx-9' }, body));
    expect(answer.status).toBe(422);
    expect(answer.headers['X_ERS_TRANSACTION_ID']).toBe('tx-9');
    expect(JSON.parse((answer.body as Buffer).toString()).link).toBe(`${URLS.legacyBase}/STU3/v1/Slot`);
  });

  it('an empty 401 → a legacy UPSTREAM_EMPTY_ERROR outcome, status 401, keeping the transaction id', async () => {
    const answer = await back(apimResponse(401, { 'x-request-id': 'tx-1', 'content-length': '0' }));
    expect(answer.status).toBe(401);
    expect(answer.headers).toMatchObject({
      'content-type': 'application/fhir+json',
      X_ERS_TRANSACTION_ID: 'tx-1',
      'x-correlation-id': 'corr-1',
    });
    expect(answer.headers).not.toHaveProperty('content-length');
    const o = outcome(answer.body);
    expect(o.issue[0]!.details.coding[1]!.code).toBe('UPSTREAM_EMPTY_ERROR');
    expect(o.issue[0]!.diagnostics).toContain(`APIM refused A005 (${A005.name}) with HTTP 401 and no explanation.`);
  });

  it('a 4xx whose body is not an OperationOutcome → the same legacy answer, never the upstream text', async () => {
    const answer = await back(apimResponse(403, { 'content-type': 'text/plain' }, 'Forbidden\n\u0007 here'));
    expect(answer.status).toBe(403);
    const diagnostics = outcome(answer.body).issue[0]!.diagnostics;
    expect(diagnostics).toContain('an answer that is not an e-RS OperationOutcome (not passed on)');
    expect(diagnostics).not.toContain('Forbidden');
    const html = await back(apimResponse(502, { 'content-type': 'text/html' }, '<h1>nginx</h1> at /srv/app.js:12'));
    expect(html.body!.toString()).not.toContain('nginx');
    const json = await back(apimResponse(400, { 'content-type': 'application/json' }, '{"error":"stack at x.js:1:2"}'));
    expect(outcome(json.body).issue[0]!.details.coding[1]!.code).toBe('UPSTREAM_EMPTY_ERROR');
    expect(json.body!.toString()).not.toContain('stack');
  });

  it('an empty 429 → UPSTREAM_RATE_LIMITED 429 with retry-after 1 when APIM gave none', async () => {
    const answer = await back(apimResponse(429, {}));
    expect(answer.status).toBe(429);
    expect(answer.headers['retry-after']).toBe('1');
    const o = outcome(answer.body);
    expect(o.issue[0]!.details.coding[1]!.code).toBe('UPSTREAM_RATE_LIMITED');
    expect(o.issue[0]!.diagnostics).toContain('wait 1 seconds');
    const given = await back(apimResponse(429, { 'retry-after': '7' }));
    expect(given.headers['retry-after']).toBe('7');
    expect(outcome(given.body).issue[0]!.diagnostics).toContain('wait 7 seconds');
  });

  it('a JSON answer over the limit → UpstreamError too-large (translate), and the body is destroyed', async () => {
    const res = apimResponse(200, fhir, [Buffer.alloc(600, 'a'), Buffer.alloc(600, 'a')]);
    const e = await rejectionOf(back(res));
    expect(e).toBeInstanceOf(UpstreamError);
    expect((e as UpstreamError).kind).toBe('too-large');
    expect((e as UpstreamError).limit).toEqual({ bytes: LIMIT, purpose: 'translate' });
    expect(knownFault(e)!.diagnostics).toContain('more than ers-bridge will translate');
    expect(res.body.destroyed).toBe(true);
  });

  it('a body that fails while read → UpstreamError by its code (reset, body-timeout, unreadable)', async () => {
    const cases: Array<[string, string]> = [
      ['ECONNRESET', 'reset'],
      ['UND_ERR_BODY_TIMEOUT', 'body-timeout'],
      ['EWHATEVER', 'unreadable'],
    ];
    for (const [code, kind] of cases) {
      const res = apimResponse(200, fhir);
      const failing = new Readable({
        read() {
          this.destroy(Object.assign(new Error('socket'), { code }));
        },
      });
      (res as { body: unknown }).body = Object.assign(failing, { dump: res.body.dump });
      const e = (await rejectionOf(back(res))) as UpstreamError;
      expect([code, e.kind, e.code]).toEqual([code, kind, code]);
    }
  });
});

describe('apimDispatch and callApim', () => {
  function route(responses: Array<ReturnType<typeof apimResponse>>) {
    const clock = new ManualClock(Date.parse('2025-03-01T12:00:00Z'));
    const request = vi.fn(async (_req: { headers: Record<string, string> }) => {
      const r = responses.shift();
      if (!r) throw new Error('no more answers');
      return r;
    });
    const tokens: TokenSource & { renew: ReturnType<typeof vi.fn> } = {
      current: async () => 'token-1',
      renew: vi.fn(async () => 'token-2'),
    };
    const limiter = new RateLimiter(undefined, clock);
    const upstream = { request } as unknown as Upstream;
    const dispatch = apimDispatch({ upstream, limiter, retryBudget: new RetryBudget(), tokens, clock });
    return { dispatch, request, tokens, clock };
  }
  const call = () =>
    rewriteForApim({
      endpoint: A005,
      params: { ubrn: '000000070000' },
      query: '',
      headers: {},
      apimBase: APIM_BASE,
      correlationId: 'corr-1',
      session: appSession(),
      body: bufferBody(undefined),
    });

  it('a 401 then a 200: the token renewed, the call resent, timed', async () => {
    const first = apimResponse(401);
    const { dispatch, request, tokens } = route([
      first,
      apimResponse(200, { 'content-type': 'application/fhir+json' }),
    ]);
    const result = await dispatch(call());
    expect(result.response.statusCode).toBe(200);
    expect(result.tokenRenewed).toBe(true);
    expect(result.upstreamMs).toBeGreaterThanOrEqual(0);
    expect(request.mock.calls.map(([r]) => r.headers['authorization'])).toEqual(['Bearer token-1', 'Bearer token-2']);
    expect(tokens.renew).toHaveBeenCalledWith('token-1');
    expect(first.body.dump).toHaveBeenCalled();
  });

  it('upstreamMs covers every attempt (the 401 and the resend), not only the last', async () => {
    let fakeNow = 1000;
    const now = vi.spyOn(performance, 'now').mockImplementation(() => fakeNow);
    try {
      const { dispatch, request } = route([apimResponse(401), apimResponse(200)]);
      request.mockImplementation(async () => {
        fakeNow += 10; // each attempt takes 10 ms
        return [apimResponse(401), apimResponse(200)][request.mock.calls.length - 1]!;
      });
      const result = await dispatch(call());
      expect(result.tokenRenewed).toBe(true);
      expect(result.upstreamMs).toBe(20);
    } finally {
      now.mockRestore();
    }
  });

  it("APIM's 429 pauses the application: the next call is refused locally without reaching APIM", async () => {
    const { dispatch, request, clock } = route([apimResponse(429, { 'retry-after': '2' }), apimResponse(200)]);
    expect((await dispatch(call())).response.statusCode).toBe(429);
    const e = await rejectionOf(dispatch(call()));
    expect(e).toBeInstanceOf(RateLimited);
    expect((e as RateLimited).retryAfterSeconds).toBe(2);
    expect(request).toHaveBeenCalledTimes(1);
    await clock.advance(2000);
    expect((await dispatch(call())).response.statusCode).toBe(200);
  });

  it('a refused connection on a read-only call is retried once', async () => {
    const { dispatch, request } = route([apimResponse(200)]);
    const refused = new UpstreamError('unreachable', 'APIM', 'https://apim.test', 'ECONNREFUSED', true);
    request.mockRejectedValueOnce(refused);
    expect((await dispatch(call())).response.statusCode).toBe(200);
    expect(request).toHaveBeenCalledTimes(2);
  });

  it('callApim: the legacy answer and the facts for the record', async () => {
    const body = JSON.stringify({ link: `${URLS.apimBase}/STU3/Slot` });
    const { dispatch } = route([
      apimResponse(401),
      apimResponse(200, { 'content-type': 'application/fhir+json', 'x-request-id': 'tx-5' }, body),
    ]);
    const side = await callApim(dispatch, call(), URLS, 1000);
    expect(side.answer.status).toBe(200);
    expect((side.answer.body as Buffer).toString()).toBe(JSON.stringify({ link: `${URLS.legacyBase}/STU3/v1/Slot` }));
    expect(side.facts).toMatchObject({ upstreamStatus: 200, tokenRenewed: true, transactionId: 'tx-5' });
    expect(side.facts.upstreamMs).toBeGreaterThanOrEqual(0);
  });

  it('callApim: an answer over the limit rejects, with the fault table saying so', async () => {
    const { dispatch } = route([apimResponse(200, { 'content-type': 'application/json' }, 'x'.repeat(50))]);
    const e = await rejectionOf(callApim(dispatch, call(), URLS, 10));
    expect(knownFault(e)!.reason).toBe('UPSTREAM_BAD_RESPONSE');
  });

  it('a FreshTokenRefused surfaces as ACCESS_TOKEN_REFUSED', async () => {
    const { dispatch } = route([apimResponse(401), apimResponse(401)]);
    const e = await rejectionOf(dispatch(call()));
    expect(knownFault(e, { asid: '1' })!.reason).toBe('ACCESS_TOKEN_REFUSED');
  });

  it('rewriteForApim refuses bad legacy headers before anything is sent', async () => {
    const e = await legacyRejection(
      (async () =>
        rewriteForApim({
          endpoint: A005,
          params: { ubrn: '000000070000' },
          query: '',
          headers: { 'if-match': '"5"' },
          apimBase: APIM_BASE,
          correlationId: 'c',
          session: appSession(),
          body: bufferBody(undefined),
        }))(),
    );
    expect(e.reason).toBe('BAD_HEADER');
  });
});
