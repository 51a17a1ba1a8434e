/**
 * The APIM side of a call: the request rewritten for APIM (pure), sent through the APIM wrappers around the
 * forward step, and APIM's answer rewritten back for the legacy client.
 *
 *   rate-limit slot → concurrency slot → APIM 429 pause → timing → bearer token (one renewal on 401)
 *     → connection retry → forward (the application's pool partition)
 */
import type { Dispatcher } from 'undici';
import type { ConcurrencySlots } from '../apim/concurrency.js';
import { type ApimCall, type ApimDispatch, composeApim, type RequestBody } from '../apim/dispatch.js';
import { forwardTo } from '../apim/forward.js';
import type { RateBudget, RetryBudget } from '../apim/rate-limiter.js';
import type { Upstream } from '../apim/upstream.js';
import { classifyTransport, UpstreamError } from '../apim/upstream.js';
import { apimPause, retryAfterSeconds } from '../apim/wrappers/apim-pause.js';
import { bearerToken, type TokenSource } from '../apim/wrappers/bearer-token.js';
import { concurrencySlot } from '../apim/wrappers/concurrency-slot.js';
import { connectionRetry } from '../apim/wrappers/connection-retry.js';
import { rateSlot } from '../apim/wrappers/rate-slot.js';
import { timing } from '../apim/wrappers/timing.js';
import { readWhole } from '../http/bounded.js';
import { isJsonContentType } from '../http/media-type.js';
import type { EndpointDef } from '../legacy/endpoints.js';
import { LegacyError } from '../legacy/errors.js';
import type { Clock } from '../runtime/clock.js';
import { OncePer } from '../runtime/once-per.js';
import type { Session } from '../sessions/session.js';
import { buildApimRequest, type IncomingHeaders, type UserContextHeaders } from '../translation/request.js';
import { type BaseUrls, legacyResponseHeaders, rewriteApimUrlsIn } from '../translation/response.js';
import { renderOutcome } from './faults.js';
import type { LegacyAnswer, SideAnswer } from './types.js';

/** APIM's error bodies are small; this bounds what ers-bridge reads of one. */
const ERROR_BODY_LIMIT = 1024 * 1024;

/** What the APIM side of one call is sent through: the APIM application's limiter and slots, its tokens, the pool. */
export interface ApimRoute {
  upstream: Upstream;
  /** The APIM application's pool partition. */
  partition?: string;
  limiter: RateBudget;
  slots?: ConcurrencySlots;
  maxPauseSeconds?: number;
  retryBudget: RetryBudget;
  tokens: TokenSource;
  clock: Clock;
}

/** The APIM side's dispatch for one call: the wrappers, outermost first, around the forward step. */
export function apimDispatch(route: ApimRoute): ApimDispatch {
  return composeApim(
    [
      rateSlot(route.limiter),
      ...(route.slots ? [concurrencySlot(route.slots)] : []),
      apimPause(route.limiter, route.clock, route.maxPauseSeconds),
      timing(),
      bearerToken(route.tokens),
      connectionRetry(route.retryBudget),
    ],
    forwardTo(route.upstream, route.partition),
  );
}

/** The headers of a user-restricted session's selected role (none for application-restricted sessions). */
export function userContextOf(session: Session): UserContextHeaders | undefined {
  if (session.accessMode !== 'user-restricted' || !session.permission) return undefined;
  return {
    odsCode: session.permission.orgIdentifier,
    businessFunction: session.permission.businessFunction,
    ...(session.onBehalfOf ? { onBehalfOfUserId: session.onBehalfOf } : {}),
  };
}

export interface ApimCallInput {
  endpoint: EndpointDef;
  params: Record<string, string>;
  query: string;
  headers: IncomingHeaders;
  apimBase: URL;
  correlationId: string;
  session: Session;
  body: RequestBody;
  signal?: AbortSignal | undefined;
}

/** The APIM base URL's path without its trailing slashes, worked out once per URL (a runtime has one). */
const BASE_PATHS = new OncePer<URL, string>((base) => base.pathname.replace(/\/+$/, ''));
function basePathOf(base: URL): string {
  return BASE_PATHS.of(base);
}

/** Step (pure): the call APIM receives — path, query, renamed headers and the role headers; no token yet. */
export function rewriteForApim(input: ApimCallInput): ApimCall {
  const user = userContextOf(input.session);
  const request = buildApimRequest({
    endpoint: input.endpoint,
    params: input.params,
    query: input.query,
    headers: input.headers,
    apimBasePath: basePathOf(input.apimBase),
    correlationId: input.correlationId,
    ...(user ? { user } : {}),
    ...(input.body.length !== undefined ? { bodyLength: input.body.length } : {}),
  });
  return { endpoint: input.endpoint, request, body: input.body, signal: input.signal };
}

/** The APIM side: rewrite → the wrappers and forward → rewrite back. */
export async function callApim(
  dispatch: ApimDispatch,
  call: ApimCall,
  urls: BaseUrls,
  answerLimit: number,
  retryAfterCap?: { seconds: number; now: number },
): Promise<SideAnswer> {
  const result = await dispatch(call);
  const correlationId = call.request.headers['x-correlation-id']!;
  const answer = await rewriteBack(call.endpoint, result.response, urls, correlationId, answerLimit, retryAfterCap);
  const facts: SideAnswer['facts'] = { upstreamStatus: result.response.statusCode, upstreamMs: result.upstreamMs ?? 0 };
  if (result.tokenRenewed) facts.tokenRenewed = true;
  const transactionId = answer.headers['X_ERS_TRANSACTION_ID'];
  if (transactionId) facts.transactionId = transactionId;
  return { answer, facts };
}

/**
 * Step (rewrite back): APIM's answer in legacy terms. Headers by allow-list, X-Request-ID → X_ERS_TRANSACTION_ID;
 * JSON bodies read (bounded) and their links rewritten; files streamed through; APIM's empty error answers given a
 * legacy OperationOutcome.
 */
export async function rewriteBack(
  endpoint: EndpointDef,
  res: Dispatcher.ResponseData,
  urls: BaseUrls,
  correlationId: string,
  answerLimit: number,
  retryAfterCap?: { seconds: number; now: number },
): Promise<LegacyAnswer> {
  const headers = legacyResponseHeaders(res.headers, urls, correlationId);
  if (res.statusCode === 429) headers['retry-after'] ??= '1'; // legacy clients should always know when to retry
  // The client is told the wait ers-bridge will really hold the application for, never APIM's extreme values.
  if (headers['retry-after'] !== undefined && retryAfterCap) {
    const asked = retryAfterSeconds(headers['retry-after'], retryAfterCap.now);
    headers['retry-after'] = String(Math.min(asked, retryAfterCap.seconds));
  }
  const status = res.statusCode;
  const contentType = headers['content-type'];

  if (status >= 400) {
    // Only an OperationOutcome (APIM's and e-RS's own error answer) reaches the client; any other text an upstream
    // sends (a gateway's HTML page, a stack trace) is replaced by ers-bridge's own legacy answer.
    const raw = await readApimBody(res, ERROR_BODY_LIMIT);
    const text = isJsonContentType(contentType) ? raw.toString('utf8') : '';
    if (!isOperationOutcome(text)) return unexplainedErrorAnswer(status, headers, raw.length === 0, endpoint);
    return { status, headers, body: rewriteApimUrlsIn(raw, urls) };
  }
  if (endpoint.method === 'HEAD' || status === 204 || status === 304) {
    await res.body.dump();
    return { status, headers, body: undefined };
  }
  if (isJsonContentType(contentType)) {
    // Links rewritten on the bytes: no decode and encode of the whole answer; untouched when it has no APIM link.
    return { status, headers, body: rewriteApimUrlsIn(await readApimBody(res, answerLimit), urls) };
  }
  // Files (PDFs, attachments) stream straight through.
  const length = res.headers['content-length'];
  if (typeof length === 'string') headers['content-length'] = length;
  return { status, headers, body: res.body };
}

function readApimBody(res: Dispatcher.ResponseData, limit: number): Promise<Buffer> {
  return readWhole(res.body, {
    limit,
    onOverflow: 'destroy',
    tooLarge: () => new UpstreamError('too-large', 'APIM', '', '', false, { bytes: limit, purpose: 'translate' }),
    onSourceError: (e) => classifyTransport(e, 'APIM', ''),
  });
}

function isOperationOutcome(text: string): boolean {
  if (!text.includes('OperationOutcome')) return false;
  try {
    const body = JSON.parse(text) as { resourceType?: unknown };
    return body?.resourceType === 'OperationOutcome';
  } catch {
    return false;
  }
}

/**
 * APIM sometimes answers errors with no body (STU3 401/429, app-restricted 403), and anything in front of it may
 * answer with something that is not an OperationOutcome: the client gets a legacy one of ers-bridge's own.
 */
function unexplainedErrorAnswer(
  status: number,
  headers: Record<string, string>,
  empty: boolean,
  endpoint: EndpointDef,
): LegacyAnswer {
  const said = empty ? ' and no explanation.' : ' and an answer that is not an e-RS OperationOutcome (not passed on).';
  const error =
    status === 429
      ? new LegacyError(
          'UPSTREAM_RATE_LIMITED',
          `APIM's rate limit for this application was reached; wait ${headers['retry-after'] ? `${headers['retry-after']} seconds` : 'a few seconds'} and try again.`,
        )
      : new LegacyError(
          'UPSTREAM_EMPTY_ERROR',
          `APIM refused ${endpoint.code} (${endpoint.name}) with HTTP ${status}${said} Check the request; if it persists, give the ers-bridge operators the X_ERS_TRANSACTION_ID or X-Correlation-ID of this answer.`,
          { status },
        );
  return { ...renderOutcome(error, { base: headers }), status };
}
