/**
 * The fault table: every error any layer throws, mapped to the legacy answer a client gets. Adapters (the upstream
 * pools, APIM's token endpoint, CIS2, the session store, the legacy host, the rate limiter) throw their own typed
 * errors and write no user-facing text; this module alone decides the reason, the status and the diagnostics, and
 * renders the OperationOutcome — for the legacy surface's replies, the raw-socket answer to malformed HTTP, APIM's
 * empty error answers and replay alike. The model is the FaultRules block of NHS APIM's own e-RS proxy.
 */
import { STATUS_CODES } from 'node:http';
import { ApplicationBusy } from '../apim/concurrency.js';
import { FreshTokenRefused } from '../apim/errors.js';
import { ObjectStoreError } from '../apim/object-store.js';
import { RolesLookupFailed } from '../apim/practitioner-roles.js';
import { RateLimited } from '../apim/rate-limiter.js';
import { UpstreamError } from '../apim/upstream.js';
import { TokenRejectedError, TokenUnavailableError } from '../auth/apim-oauth.js';
import { Cis2Unavailable, type IdTokenProblem, IdTokenRejected } from '../auth/cis2-identity.js';
import { ClientAborted } from '../http/errors.js';
import { FHIR_JSON, LegacyError, operationOutcome } from '../legacy/errors.js';
import { LegacySessionRefused, LegacyTokenMissing } from '../legacy-host/host.js';
import { SessionRateLimited } from '../sessions/create-rate.js';
import { SessionEnded, SessionStoreFull, SessionTooLarge, StoreUnavailableError } from '../sessions/store.js';
import { objectStoreFault, SuccessorIncomplete, successorIncompleteFault } from './successor-faults.js';
import type { LegacyAnswer } from './types.js';

/** What the flow knows about the call when something fails: it fills in the texts. */
export interface FaultContext {
  asid?: string;
}

type Rule<E extends Error> = [new (...args: never[]) => E, (e: E, ctx: FaultContext) => LegacyError];
const rule = <E extends Error>(type: Rule<E>[0], map: Rule<E>[1]): Rule<Error> => [type, map as Rule<Error>[1]];

const RETRY_SOON = { headers: { 'retry-after': '5' } };

/** Ordered like APIM's FaultRules: the first rule whose error type matches answers. */
const FAULTS: Rule<Error>[] = [
  rule(LegacyError, (e) => e),
  rule(UpstreamError, upstreamFault),
  rule(TokenRejectedError, (e, ctx) =>
    e.grant === 'token-exchange'
      ? new LegacyError(
          'TOKEN_EXCHANGE_REFUSED',
          `APIM refused to exchange the CIS2 sign-in for an e-RS token: ${e.errorDescription} (${e.error}). Sign in again; if it persists, ask the ers-bridge operators to check the APIM application of ASID ${ctx.asid ?? '(unknown)'}.`,
        )
      : new LegacyError(
          'TOKEN_REJECTED_BY_APIM',
          `APIM refused ers-bridge's credentials for the APIM application of ASID ${ctx.asid ?? '(unknown)'}: ${e.errorDescription} (${e.error}). ers-bridge operators: check the API key, the key id (kid) and the public key registered for that application.`,
        ),
  ),
  rule(
    TokenUnavailableError,
    (e) =>
      new LegacyError(
        'TOKEN_ENDPOINT_UNAVAILABLE',
        `APIM's token service could not be reached (${e.detail}); try again shortly.`,
        RETRY_SOON,
      ),
  ),
  rule(
    FreshTokenRefused,
    (_e, ctx) =>
      new LegacyError(
        'ACCESS_TOKEN_REFUSED',
        `APIM refused a freshly issued access token for the APIM application of ASID ${ctx.asid ?? '(unknown)'}. ers-bridge operators: check that the application is approved and subscribed to the e-RS API product.`,
      ),
  ),
  rule(
    RateLimited,
    (e) =>
      new LegacyError(
        'RATE_LIMITED_LOCALLY',
        `Too many calls for this system's APIM application just now (APIM allows only so many a second); wait ${e.retryAfterSeconds} seconds and try again.`,
        { headers: { 'retry-after': String(e.retryAfterSeconds) } },
      ),
  ),
  rule(
    ApplicationBusy,
    (e) =>
      new LegacyError(
        'APPLICATION_BUSY',
        `Too many calls for this system's APIM application are waiting for APIM just now; wait ${e.retryAfterSeconds} seconds and try again.`,
        { headers: { 'retry-after': String(e.retryAfterSeconds) } },
      ),
  ),
  rule(IdTokenRejected, (e) => idTokenFault(e.problem)),
  rule(Cis2Unavailable, (e) =>
    e.part === 'keys'
      ? new LegacyError('CIS2_UNAVAILABLE', "CIS2's signing keys could not be fetched; try again shortly.")
      : new LegacyError('CIS2_UNAVAILABLE', 'CIS2 could not be reached to check the sign-in; try again shortly.', {
          headers: { 'retry-after': '10' },
        }),
  ),
  rule(RolesLookupFailed, (e) =>
    e.status === 'not-json'
      ? new LegacyError('UPSTREAM_BAD_RESPONSE', "APIM's list of the user's e-RS roles (A030) was not JSON.")
      : new LegacyError(
          'TOKEN_EXCHANGE_REFUSED',
          `APIM refused to list the user's e-RS roles (A030 answered HTTP ${e.status}); the user may not be registered for e-RS.`,
        ),
  ),
  rule(
    LegacySessionRefused,
    (e) =>
      new LegacyError(
        'LEGACY_SESSION_FAILED',
        `The legacy e-RS host refused ers-bridge's ${e.step} for this session (HTTP ${e.status}${e.said ? `: ${e.said}` : ''}). The A001 token must be one the legacy host accepts (a CIS1 ticket). Create a new session with A001 and retry.`,
        { status: e.status >= 400 && e.status < 500 ? 403 : 502 },
      ),
  ),
  rule(
    SessionEnded,
    (e) => new LegacyError('SESSION_UNKNOWN', `The session ended while ${e.during}; create a new one with A001.`),
  ),
  rule(
    LegacyTokenMissing,
    () =>
      new LegacyError(
        'LEGACY_SESSION_FAILED',
        'This session was created while ers-bridge sent no calls to the legacy e-RS host, so it kept no A001 token (CIS1 ticket) to open a session there. Create a new session with A001 and retry.',
      ),
  ),
  rule(
    SessionRateLimited,
    (e, ctx) =>
      new LegacyError(
        'SESSION_RATE_LIMITED',
        `Too many sessions created (A001) for ASID ${ctx.asid ?? '(unknown)'} just now; wait ${e.retryAfterSeconds} seconds and try again. Keep a session and reuse it for many calls rather than creating one per call.`,
        { headers: { 'retry-after': String(e.retryAfterSeconds) } },
      ),
  ),
  rule(
    SessionTooLarge,
    (e) =>
      new LegacyError(
        'SESSION_TOO_LARGE',
        `The session would take ${e.bytes} bytes, more than the ${e.limit} ers-bridge holds for one session; nothing was stored. Send a shorter A001 token; ers-bridge operators: see sessions.maxRecordBytes.`,
      ),
  ),
  rule(
    SessionStoreFull,
    (e) =>
      new LegacyError(
        'SESSION_STORE_FULL',
        `ers-bridge holds as many sessions as it may (${e.maxSessions}) and none of them is this system's to give up; try again later. ers-bridge operators: raise sessions.maxSessions to at least the ASIDs × sessions.maxPerAsid.`,
        { headers: { 'retry-after': '30' } },
      ),
  ),
  rule(StoreUnavailableError, () => storeUnavailable()),
  // successors of retired operations (src/pipeline/successor-faults.ts words them)
  rule(ObjectStoreError, objectStoreFault),
  rule(SuccessorIncomplete, successorIncompleteFault),
  rule(
    ClientAborted,
    () =>
      new LegacyError('MALFORMED_REQUEST', 'The client closed the connection before its request was complete.', {
        status: 400,
      }),
  ),
];

/** The legacy error for anything thrown, or undefined when it is not a known fault (a bug: see internalError). */
export function knownFault(e: unknown, ctx: FaultContext = {}): LegacyError | undefined {
  for (const [type, map] of FAULTS) if (e instanceof type) return map(e, ctx);
  return undefined;
}

/** The legacy error for anything thrown; an unknown error becomes a plain INTERNAL_ERROR. */
export function faultFor(e: unknown, ctx: FaultContext = {}): LegacyError {
  return knownFault(e, ctx) ?? internalError();
}

export function storeUnavailable(): LegacyError {
  return new LegacyError(
    'STORE_UNAVAILABLE',
    'ers-bridge cannot reach its session store just now; nothing was changed. Try again in a few seconds.',
    { headers: { 'retry-after': '2' } },
  );
}

/** An unexpected failure: the client learns only that it happened and what to give the operators. */
export function internalError(): LegacyError {
  return new LegacyError(
    'INTERNAL_ERROR',
    'ers-bridge failed unexpectedly while handling this call; the request may not have reached e-RS. Try again; if it persists, give the ers-bridge operators the X-Correlation-ID of this answer.',
  );
}

function upstreamFault(e: UpstreamError): LegacyError {
  const name = e.upstream;
  switch (e.kind) {
    case 'connect-timeout':
      return new LegacyError(
        'UPSTREAM_TIMEOUT',
        `${name} did not accept a connection in time; try again shortly. If it persists, check the network path from ers-bridge to ${e.origin}.`,
      );
    case 'headers-timeout':
      return new LegacyError(
        'UPSTREAM_TIMEOUT',
        `${name} did not answer in time; the request may or may not have been processed. Check its state before repeating a change.`,
      );
    case 'body-timeout':
      return new LegacyError('UPSTREAM_TIMEOUT', `${name} stopped sending its answer part-way; try again.`);
    case 'timeout':
      return new LegacyError('UPSTREAM_TIMEOUT', `${name} did not answer within the time allowed.`);
    case 'tls-unverified':
      return new LegacyError(
        'UPSTREAM_UNREACHABLE',
        `The TLS certificate of ${name} could not be verified (${e.code}); ers-bridge never sends requests to an unverified server. Check the CA configuration.`,
      );
    case 'unreachable':
      return new LegacyError(
        'UPSTREAM_UNREACHABLE',
        `${name} could not be reached (${e.code}); try again shortly. If it persists, check ers-bridge's network and DNS.`,
      );
    case 'reset':
      return new LegacyError(
        'UPSTREAM_UNREACHABLE',
        `The connection to ${name} was closed before it answered; the request may or may not have been processed.`,
      );
    case 'aborted':
      return new LegacyError('UPSTREAM_UNREACHABLE', 'The request was abandoned because the client went away.');
    case 'too-large':
      return e.limit?.purpose === 'compare'
        ? new LegacyError(
            'UPSTREAM_BAD_RESPONSE',
            `The answer is larger than ${e.limit.bytes} bytes, more than ers-bridge will compare.`,
          )
        : new LegacyError(
            'UPSTREAM_BAD_RESPONSE',
            `${name}'s answer is larger than ${e.limit?.bytes ?? 0} bytes, more than ers-bridge will translate. Narrow the request (e.g. filter the worklist).`,
          );
    case 'unreadable':
      return new LegacyError(
        'UPSTREAM_BAD_RESPONSE',
        `${name} answered in a way ers-bridge could not read (${e.code || 'invalid response'}).`,
      );
  }
}

function idTokenFault(p: IdTokenProblem): LegacyError {
  switch (p.kind) {
    case 'no-sub':
      return new LegacyError('ID_TOKEN_INVALID', 'The CIS2 ID token has no sub (user id).');
    case 'identity-assurance':
      return new LegacyError(
        'ASSURANCE_TOO_LOW',
        `The CIS2 identity is verified to level ${p.level || 'unknown'} (IAL); e-RS needs IAL3. Contact your local Registration Authority.`,
      );
    case 'authentication-assurance':
      return new LegacyError(
        'ASSURANCE_TOO_LOW',
        `The CIS2 sign-in used an authentication method of level ${p.level || 'unknown'} (AAL); e-RS needs AAL2 or AAL3. Sign in with your smartcard or another AAL2/AAL3 method.`,
      );
    case 'expired':
      return new LegacyError(
        'ID_TOKEN_EXPIRED',
        'The CIS2 ID token has expired. Sign in to CIS2 again and send the new ID token.',
      );
    case 'wrong-issuer':
      return new LegacyError(
        'ID_TOKEN_WRONG_ISSUER',
        'The ID token was not issued by the CIS2 environment this ers-bridge environment uses. Sign in to the matching CIS2 environment.',
      );
    case 'wrong-audience':
      return new LegacyError(
        'ID_TOKEN_WRONG_AUDIENCE',
        'The ID token was issued to a CIS2 client that ers-bridge does not accept (aud). Ask the operators to add it to cis2.acceptedAudiences.',
      );
    case 'claim':
      return new LegacyError('ID_TOKEN_INVALID', `The CIS2 ID token's ${p.claim} claim is not acceptable.`);
    case 'signature':
      return new LegacyError(
        'ID_TOKEN_INVALID',
        'The CIS2 ID token is not signed by a key of the configured CIS2 issuer.',
      );
    case 'malformed':
      return new LegacyError('ID_TOKEN_INVALID', 'The A001 token is not a valid CIS2 ID token.');
    case 'sign-in-failed':
      return new LegacyError('ID_TOKEN_INVALID', `CIS2 sign-in could not be completed: ${p.detail}`);
    case 'no-id-token':
      return new LegacyError('ID_TOKEN_INVALID', 'CIS2 returned no ID token.');
  }
}

/** HTTP-level refusals that happen before any step runs (the HTTP parser, the router, fastify's own checks). */
export const HTTP_FAULTS = {
  /** Node's HTTP parser refused the request (code from the parser or the socket). */
  parser(code: string): LegacyError {
    if (code === 'HPE_HEADER_OVERFLOW') {
      return new LegacyError(
        'HEADERS_TOO_LARGE',
        'The request headers are larger than ers-bridge accepts (16 KB); send fewer or shorter headers.',
      );
    }
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      return new LegacyError('MALFORMED_REQUEST', 'The request was not completed in time.', { status: 408 });
    }
    return new LegacyError(
      'MALFORMED_REQUEST',
      'The request is not well-formed HTTP (for example conflicting Content-Length and Transfer-Encoding, an invalid header, or bad chunking); it was refused.',
    );
  },
  /** The router refused the URL before any handler (bad percent-escapes), or fastify refused the request. */
  framework(code: string | undefined, status: number | undefined): LegacyError {
    if (code === 'FST_ERR_BAD_URL') {
      return new LegacyError('BAD_PATH', 'The request path contains an invalid percent-encoding; encode it correctly.');
    }
    return HTTP_FAULTS.status(status ?? 400);
  },
  /** An HTTP status fastify raised on its own (body limit, media type, malformed request). */
  status(status: number): LegacyError {
    if (status === 413) return new LegacyError('BODY_TOO_LARGE', 'The request body is too large.');
    if (status === 415) {
      return new LegacyError(
        'UNSUPPORTED_MEDIA_TYPE',
        'The Content-Type header is not a valid media type; send application/fhir+json for FHIR bodies, application/json for sessions, or the file type for uploads.',
      );
    }
    if (status >= 400 && status < 500) {
      return new LegacyError(
        'MALFORMED_REQUEST',
        'The request could not be read as an HTTP request ers-bridge accepts.',
        { status },
      );
    }
    return internalError();
  },
};

/**
 * The one rendering of an ers-bridge error: its status, its headers, and the eRS OperationOutcome. `base` carries
 * headers of the answer it replaces (APIM's empty error answers keep their transaction id and Retry-After).
 */
export function renderOutcome(
  error: LegacyError,
  extra: { correlationId?: string | undefined; base?: Record<string, string> } = {},
): LegacyAnswer {
  const headers: Record<string, string> = { ...extra.base, 'content-type': FHIR_JSON };
  delete headers['content-disposition'];
  delete headers['content-length'];
  // The rest of an over-long body is not read: close the connection once the answer is out.
  if (error.reason === 'BODY_TOO_LARGE') headers['connection'] = 'close';
  Object.assign(headers, error.headers);
  if (extra.correlationId) headers['x-correlation-id'] = extra.correlationId;
  return {
    status: error.status,
    headers,
    body: Buffer.from(JSON.stringify(operationOutcome(error.reason, error.diagnostics))),
  };
}

/** The same answer as raw HTTP/1.1 bytes, for a socket the HTTP parser gave up on; the connection then closes. */
export function rawHttpAnswer(error: LegacyError): string {
  const { status, headers, body } = renderOutcome(error);
  const text = (body as Buffer).toString('utf8');
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: ${headers['content-type']}\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`;
}
