import { describe, expect, it } from 'vitest';
import { FreshTokenRefused } from '../../../src/apim/errors.js';
import { RolesLookupFailed } from '../../../src/apim/practitioner-roles.js';
import { RateLimited } from '../../../src/apim/rate-limiter.js';
import { UpstreamError, type UpstreamFailure } from '../../../src/apim/upstream.js';
import { TokenRejectedError, TokenUnavailableError } from '../../../src/auth/apim-oauth.js';
import { Cis2Unavailable, type IdTokenProblem, IdTokenRejected } from '../../../src/auth/cis2.js';
import { ClientAborted } from '../../../src/http/errors.js';
import {
  BRIDGE_ERROR_SYSTEM,
  ERS_ERROR_SYSTEM,
  ERS_OUTCOME_PROFILE,
  LegacyError,
  type OperationOutcome,
} from '../../../src/legacy/errors.js';
import { LegacySessionRefused } from '../../../src/legacy-host/host.js';
import { faultFor, HTTP_FAULTS, knownFault, rawHttpAnswer, renderOutcome } from '../../../src/pipeline/faults.js';
import { SessionEnded, StoreUnavailableError } from '../../../src/sessions/store.js';

const UPSTREAM_CASES: Array<[UpstreamFailure, string, number, string]> = [
  ['connect-timeout', 'UPSTREAM_TIMEOUT', 504, 'check the network path from ers-bridge to https://apim.test'],
  ['headers-timeout', 'UPSTREAM_TIMEOUT', 504, 'may or may not have been processed'],
  ['body-timeout', 'UPSTREAM_TIMEOUT', 504, 'stopped sending its answer part-way'],
  ['timeout', 'UPSTREAM_TIMEOUT', 504, 'did not answer within the time allowed'],
  ['tls-unverified', 'UPSTREAM_UNREACHABLE', 502, 'could not be verified (ECODE)'],
  ['unreachable', 'UPSTREAM_UNREACHABLE', 502, 'could not be reached (ECODE)'],
  ['reset', 'UPSTREAM_UNREACHABLE', 502, 'closed before it answered'],
  ['aborted', 'UPSTREAM_UNREACHABLE', 502, 'the client went away'],
  ['unreadable', 'UPSTREAM_BAD_RESPONSE', 502, 'could not read (ECODE)'],
];

const ID_TOKEN_CASES: Array<[IdTokenProblem, string, number, string]> = [
  [{ kind: 'no-sub' }, 'ID_TOKEN_INVALID', 422, 'no sub'],
  [{ kind: 'identity-assurance', level: 2 }, 'ASSURANCE_TOO_LOW', 403, 'level 2 (IAL)'],
  [{ kind: 'identity-assurance', level: 0 }, 'ASSURANCE_TOO_LOW', 403, 'level unknown (IAL)'],
  [{ kind: 'authentication-assurance', level: 1 }, 'ASSURANCE_TOO_LOW', 403, 'level 1 (AAL)'],
  [{ kind: 'expired' }, 'ID_TOKEN_EXPIRED', 403, 'has expired'],
  [{ kind: 'wrong-issuer' }, 'ID_TOKEN_WRONG_ISSUER', 403, 'not issued by the CIS2 environment'],
  [{ kind: 'wrong-audience' }, 'ID_TOKEN_WRONG_AUDIENCE', 403, 'cis2.acceptedAudiences'],
  [{ kind: 'claim', claim: 'nbf' }, 'ID_TOKEN_INVALID', 422, "token's nbf claim"],
  [{ kind: 'signature' }, 'ID_TOKEN_INVALID', 422, 'not signed by a key'],
  [{ kind: 'malformed' }, 'ID_TOKEN_INVALID', 422, 'not a valid CIS2 ID token'],
  [{ kind: 'sign-in-failed', detail: 'state mismatch' }, 'ID_TOKEN_INVALID', 422, 'completed: state mismatch'],
  [{ kind: 'no-id-token' }, 'ID_TOKEN_INVALID', 422, 'returned no ID token'],
];

const upstreamKinds = UPSTREAM_CASES.map(([kind]) => kind);
const idTokenProblems = ID_TOKEN_CASES.map(([p]) => p);

function fault(e: unknown, ctx = {}): LegacyError {
  const f = knownFault(e, ctx);
  if (!f) throw new Error(`not a known fault: ${String(e)}`);
  return f;
}

describe('the fault table', () => {
  it('a LegacyError passes through unchanged', () => {
    const e = new LegacyError('BAD_HEADER', 'bad', { headers: { x: '1' } });
    expect(fault(e)).toBe(e);
  });

  it.each(UPSTREAM_CASES)('UpstreamError %s → %s %i', (kind, reason, status, fragment) => {
    const f = fault(new UpstreamError(kind, 'APIM', 'https://apim.test', 'ECODE'));
    expect(f.reason).toBe(reason);
    expect(f.status).toBe(status);
    expect(f.diagnostics).toContain(fragment);
  });

  it('UpstreamError names the upstream it was about', () => {
    const f = fault(new UpstreamError('unreachable', 'the legacy e-RS host', 'https://legacy.test', 'ENOTFOUND'));
    expect(f.diagnostics).toMatch(/^the legacy e-RS host could not be reached \(ENOTFOUND\)/);
  });

  it('UpstreamError unreadable without a code says "invalid response"', () => {
    expect(fault(new UpstreamError('unreadable', 'APIM', '', '')).diagnostics).toContain('(invalid response)');
  });

  it('UpstreamError too-large: translate and compare bounds are told apart', () => {
    const translate = fault(new UpstreamError('too-large', 'APIM', '', '', false, { bytes: 10, purpose: 'translate' }));
    expect(translate.reason).toBe('UPSTREAM_BAD_RESPONSE');
    expect(translate.status).toBe(502);
    expect(translate.diagnostics).toContain(
      "APIM's answer is larger than 10 bytes, more than ers-bridge will translate",
    );
    const compare = fault(new UpstreamError('too-large', 'legacy', '', '', false, { bytes: 20, purpose: 'compare' }));
    expect(compare.diagnostics).toBe('The answer is larger than 20 bytes, more than ers-bridge will compare.');
  });

  it('TokenRejectedError for client credentials → TOKEN_REJECTED_BY_APIM 502 with the ASID', () => {
    const f = fault(new TokenRejectedError(401, 'invalid_client', 'bad kid'), { asid: '200000000001' });
    expect(f.reason).toBe('TOKEN_REJECTED_BY_APIM');
    expect(f.status).toBe(502);
    expect(f.diagnostics).toContain('ASID 200000000001: bad kid (invalid_client)');
  });

  it('TokenRejectedError for token exchange → TOKEN_EXCHANGE_REFUSED 403 with the ASID', () => {
    const f = fault(new TokenRejectedError(400, 'invalid_grant', 'expired', 'token-exchange'), { asid: '2000' });
    expect(f.reason).toBe('TOKEN_EXCHANGE_REFUSED');
    expect(f.status).toBe(403);
    expect(f.diagnostics).toContain('expired (invalid_grant)');
    expect(f.diagnostics).toContain('APIM application of ASID 2000');
  });

  it('no ASID in the context → "(unknown)"', () => {
    expect(fault(new TokenRejectedError(401, 'e', 'd')).diagnostics).toContain('ASID (unknown)');
  });

  it('TokenUnavailableError → TOKEN_ENDPOINT_UNAVAILABLE 503, retry-after 5', () => {
    const f = fault(new TokenUnavailableError('ECONNREFUSED'));
    expect(f.reason).toBe('TOKEN_ENDPOINT_UNAVAILABLE');
    expect(f.status).toBe(503);
    expect(f.headers).toEqual({ 'retry-after': '5' });
    expect(f.diagnostics).toContain('(ECONNREFUSED)');
  });

  it('FreshTokenRefused → ACCESS_TOKEN_REFUSED 502 with the ASID', () => {
    const f = fault(new FreshTokenRefused(), { asid: '200000000001' });
    expect(f.reason).toBe('ACCESS_TOKEN_REFUSED');
    expect(f.status).toBe(502);
    expect(f.diagnostics).toContain('ASID 200000000001');
  });

  it('RateLimited → RATE_LIMITED_LOCALLY 429 with its retry-after', () => {
    const f = fault(new RateLimited(7));
    expect(f.reason).toBe('RATE_LIMITED_LOCALLY');
    expect(f.status).toBe(429);
    expect(f.headers).toEqual({ 'retry-after': '7' });
    expect(f.diagnostics).toContain('wait 7 seconds');
  });

  it.each(ID_TOKEN_CASES)('IdTokenRejected %o → %s %i', (problem, reason, status, fragment) => {
    const f = fault(new IdTokenRejected(problem));
    expect(f.reason).toBe(reason);
    expect(f.status).toBe(status);
    expect(f.diagnostics).toContain(fragment);
  });

  it('Cis2Unavailable: the service (retry-after 10) and the keys (no retry-after)', () => {
    const service = fault(new Cis2Unavailable('ECONNREFUSED'));
    expect(service.reason).toBe('CIS2_UNAVAILABLE');
    expect(service.status).toBe(503);
    expect(service.headers).toEqual({ 'retry-after': '10' });
    expect(service.diagnostics).toContain('could not be reached');
    const keys = fault(new Cis2Unavailable('jwks 500', 'keys'));
    expect(keys.reason).toBe('CIS2_UNAVAILABLE');
    expect(keys.headers).toEqual({});
    expect(keys.diagnostics).toContain('signing keys');
  });

  it('RolesLookupFailed: an HTTP status → TOKEN_EXCHANGE_REFUSED; not JSON → UPSTREAM_BAD_RESPONSE', () => {
    const refused = fault(new RolesLookupFailed(403));
    expect(refused.reason).toBe('TOKEN_EXCHANGE_REFUSED');
    expect(refused.diagnostics).toContain('A030 answered HTTP 403');
    const notJson = fault(new RolesLookupFailed('not-json'));
    expect(notJson.reason).toBe('UPSTREAM_BAD_RESPONSE');
    expect(notJson.status).toBe(502);
    expect(notJson.diagnostics).toContain('was not JSON');
  });

  it('LegacySessionRefused: 4xx → 403, 5xx → 502, with what the host said', () => {
    const client = fault(new LegacySessionRefused('A001', 401, 'ticket expired'));
    expect(client.reason).toBe('LEGACY_SESSION_FAILED');
    expect(client.status).toBe(403);
    expect(client.diagnostics).toContain("ers-bridge's A001 for this session (HTTP 401: ticket expired)");
    const server = fault(new LegacySessionRefused('A002', 503, ''));
    expect(server.status).toBe(502);
    expect(server.diagnostics).toContain('(HTTP 503)');
    expect(fault(new LegacySessionRefused('A001', 500, 'x')).status).toBe(502);
    expect(fault(new LegacySessionRefused('A001', 400, 'x')).status).toBe(403);
  });

  it('SessionEnded → SESSION_UNKNOWN saying what was being done', () => {
    const f = fault(new SessionEnded('the role was being selected'));
    expect(f.reason).toBe('SESSION_UNKNOWN');
    expect(f.status).toBe(403);
    expect(f.diagnostics).toBe('The session ended while the role was being selected; create a new one with A001.');
  });

  it('StoreUnavailableError → STORE_UNAVAILABLE 503, retry-after 2; its detail is not told', () => {
    const f = fault(new StoreUnavailableError('redis at 10.0.0.5:6379 refused'));
    expect(f.reason).toBe('STORE_UNAVAILABLE');
    expect(f.status).toBe(503);
    expect(f.headers).toEqual({ 'retry-after': '2' });
    expect(f.diagnostics).not.toContain('10.0.0.5');
  });

  it('ClientAborted (the client left mid-request) → MALFORMED_REQUEST 400, not an internal error', () => {
    const f = fault(new ClientAborted());
    expect(f.reason).toBe('MALFORMED_REQUEST');
    expect(f.status).toBe(400);
    expect(f.diagnostics).toContain('closed the connection before its request was complete');
  });

  it('a plain Error is not a known fault; faultFor makes it INTERNAL_ERROR 500 without its message', () => {
    const e = new Error('secret internals at /srv/app.js');
    expect(knownFault(e)).toBeUndefined();
    expect(knownFault('a string')).toBeUndefined();
    const f = faultFor(e);
    expect(f.reason).toBe('INTERNAL_ERROR');
    expect(f.status).toBe(500);
    expect(f.diagnostics).not.toContain('secret internals');
    expect(f.diagnostics).toContain('X-Correlation-ID');
  });

  it('faultFor passes a known fault and the context through', () => {
    expect(faultFor(new FreshTokenRefused(), { asid: '42' }).diagnostics).toContain('ASID 42');
  });
});

describe('renderOutcome', () => {
  const parse = (body: unknown) => JSON.parse((body as Buffer).toString('utf8')) as OperationOutcome;

  it('the status, FHIR JSON content type, and an eRS OperationOutcome with both codings', () => {
    const answer = renderOutcome(new LegacyError('SESSION_UNKNOWN', 'Gone away.'));
    expect(answer.status).toBe(403);
    expect(answer.headers).toEqual({ 'content-type': 'application/fhir+json' });
    expect(parse(answer.body)).toEqual({
      resourceType: 'OperationOutcome',
      meta: { profile: [ERS_OUTCOME_PROFILE] },
      issue: [
        {
          severity: 'error',
          code: 'login',
          details: {
            coding: [
              { system: ERS_ERROR_SYSTEM, code: 'NO_ACCESS', display: 'No access' },
              { system: BRIDGE_ERROR_SYSTEM, code: 'SESSION_UNKNOWN' },
            ],
          },
          diagnostics: 'Gone away.',
        },
      ],
    });
  });

  it('keeps the base headers but content-disposition and content-length; the error headers win', () => {
    const answer = renderOutcome(new LegacyError('UPSTREAM_RATE_LIMITED', 'x', { headers: { 'retry-after': '9' } }), {
      base: {
        'content-type': 'application/pdf',
        'content-disposition': 'attachment; filename=a.pdf',
        'content-length': '12345',
        'retry-after': '1',
        X_ERS_TRANSACTION_ID: 'tx-1',
      },
      correlationId: 'corr-1',
    });
    expect(answer.headers).toEqual({
      'content-type': 'application/fhir+json',
      'retry-after': '9',
      X_ERS_TRANSACTION_ID: 'tx-1',
      'x-correlation-id': 'corr-1',
    });
  });

  it('BODY_TOO_LARGE closes the connection; other errors do not', () => {
    expect(renderOutcome(new LegacyError('BODY_TOO_LARGE', 'x')).headers['connection']).toBe('close');
    expect(renderOutcome(new LegacyError('BAD_HEADER', 'x')).headers['connection']).toBeUndefined();
  });

  it('an error status override (APIM empty errors) is kept', () => {
    expect(renderOutcome(new LegacyError('UPSTREAM_EMPTY_ERROR', 'x', { status: 401 })).status).toBe(401);
  });

  it('no correlation id → no x-correlation-id header', () => {
    expect(renderOutcome(new LegacyError('BAD_HEADER', 'x'), { correlationId: undefined }).headers).not.toHaveProperty(
      'x-correlation-id',
    );
  });
});

describe('rawHttpAnswer', () => {
  it('a whole HTTP/1.1 answer: status line, FHIR content type, exact byte length, Connection: close', () => {
    // DSTU2_WITHDRAWN's text has an em dash: its byte length differs from its length in characters.
    const error = new LegacyError('DSTU2_WITHDRAWN', 'Withdrawn — use STU3.');
    const raw = rawHttpAnswer(error);
    const [head, body] = raw.split('\r\n\r\n') as [string, string];
    const lines = head.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 410 Gone');
    expect(lines).toContain('Content-Type: application/fhir+json');
    expect(lines).toContain('Connection: close');
    expect(lines).toContain(`Content-Length: ${Buffer.byteLength(body)}`);
    expect(Buffer.byteLength(body)).toBeGreaterThan(body.length);
    expect(JSON.parse(body).issue[0].diagnostics).toBe('Withdrawn — use STU3.');
  });

  it('a status without a standard text says Error', () => {
    expect(rawHttpAnswer(new LegacyError('BAD_HEADER', 'x', { status: 499 }))).toMatch(/^HTTP\/1\.1 499 Error\r\n/);
  });
});

describe('HTTP_FAULTS', () => {
  it('parser: header overflow → 431, request timeout → 408, anything else → 400 MALFORMED_REQUEST', () => {
    const overflow = HTTP_FAULTS.parser('HPE_HEADER_OVERFLOW');
    expect([overflow.reason, overflow.status]).toEqual(['HEADERS_TOO_LARGE', 431]);
    const slow = HTTP_FAULTS.parser('ERR_HTTP_REQUEST_TIMEOUT');
    expect([slow.reason, slow.status]).toEqual(['MALFORMED_REQUEST', 408]);
    const other = HTTP_FAULTS.parser('HPE_INVALID_CHUNK_SIZE');
    expect([other.reason, other.status]).toEqual(['MALFORMED_REQUEST', 400]);
  });

  it('framework: a bad URL → BAD_PATH; otherwise by status (400 when none)', () => {
    const badUrl = HTTP_FAULTS.framework('FST_ERR_BAD_URL', 400);
    expect([badUrl.reason, badUrl.status]).toEqual(['BAD_PATH', 400]);
    expect(HTTP_FAULTS.framework('FST_ERR_CTP_BODY_TOO_LARGE', 413).reason).toBe('BODY_TOO_LARGE');
    const none = HTTP_FAULTS.framework(undefined, undefined);
    expect([none.reason, none.status]).toEqual(['MALFORMED_REQUEST', 400]);
  });

  it('status: 413, 415, other 4xx keep their status, 5xx → INTERNAL_ERROR 500', () => {
    const cases: Array<[number, string, number]> = [
      [413, 'BODY_TOO_LARGE', 413],
      [415, 'UNSUPPORTED_MEDIA_TYPE', 415],
      [400, 'MALFORMED_REQUEST', 400],
      [404, 'MALFORMED_REQUEST', 404],
      [431, 'MALFORMED_REQUEST', 431],
      [500, 'INTERNAL_ERROR', 500],
      [503, 'INTERNAL_ERROR', 500],
    ];
    for (const [status, reason, answered] of cases) {
      const e = HTTP_FAULTS.status(status);
      expect([status, e.reason, e.status]).toEqual([status, reason, answered]);
    }
  });
});

describe('diagnostics', () => {
  /** One error of every kind the table knows (each built with `new`, so each carries a stack of its own). */
  const samples: unknown[] = [
    new LegacyError('BAD_HEADER', 'bad'),
    ...upstreamKinds.map((kind) => new UpstreamError(kind, 'APIM', 'https://apim.test', 'ECODE', false)),
    new UpstreamError('too-large', 'APIM', '', '', false, { bytes: 1, purpose: 'translate' }),
    new UpstreamError('too-large', 'APIM', '', '', false, { bytes: 1, purpose: 'compare' }),
    new TokenRejectedError(401, 'invalid_client', 'bad kid'),
    new TokenRejectedError(400, 'invalid_grant', 'expired', 'token-exchange'),
    new TokenUnavailableError('ECONNREFUSED', true),
    new FreshTokenRefused(),
    new RateLimited(3),
    ...idTokenProblems.map((p) => new IdTokenRejected(p)),
    new Cis2Unavailable('down'),
    new Cis2Unavailable('down', 'keys'),
    new RolesLookupFailed(403),
    new RolesLookupFailed('not-json'),
    new LegacySessionRefused('A001', 401, 'no'),
    new LegacySessionRefused('A001', 502, ''),
    new SessionEnded('the role was being selected'),
    new StoreUnavailableError('down'),
    new ClientAborted(),
    new Error('a bug'),
  ];

  it('no rule puts a stack trace or a source location into a client-facing text', () => {
    const texts = [
      ...samples.map((e) => faultFor(e, { asid: '200000000001' }).diagnostics),
      ...['HPE_HEADER_OVERFLOW', 'ERR_HTTP_REQUEST_TIMEOUT', 'HPE_X'].map((c) => HTTP_FAULTS.parser(c).diagnostics),
      HTTP_FAULTS.framework('FST_ERR_BAD_URL', 400).diagnostics,
      ...[400, 413, 415, 500].map((s) => HTTP_FAULTS.status(s).diagnostics),
    ];
    expect(texts.length).toBeGreaterThan(40);
    for (const text of texts) {
      expect(text).not.toMatch(/\n\s+at /);
      expect(text).not.toMatch(/\.(ts|js):\d+/);
    }
  });
});
