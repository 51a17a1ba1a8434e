/**
 * A legacy STU3 data call, as an ordered pipeline of named steps:
 *
 *   identify endpoint → session → policy → token → rewrite request → forward → rewrite response → record
 *
 * The deciding steps are pure (steps.ts, translation/*); this module runs them in order and does the I/O at the
 * edges (reading the client's body, the upstream call, the answer).
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { RateLimited } from '../apim/rate-limiter.js';
import type { UpstreamBody } from '../apim/upstream.js';
import { TokenRejectedError, TokenUnavailableError } from '../auth/application-token.js';
import type { EndpointDef } from '../legacy/endpoints.js';
import { LegacyError, operationOutcome } from '../legacy/errors.js';
import { callLegacy } from '../legacy-host/legacy-call.js';
import type { AsidRuntime, Runtime } from '../runtime.js';
import { type Session, sessionKeyTag } from '../sessions/session.js';
import { checkDeclaredLength, ReplayableBody, readBounded } from '../translation/body.js';
import { buildApimRequest, type IncomingHeaders } from '../translation/request.js';
import {
  type BaseUrls,
  isJsonContentType,
  legacyResponseHeaders,
  rewriteApimUrls,
  rewriteLegacyUrls,
} from '../translation/response.js';
import { decideMode } from './mode.js';
import { captureAnswer, launchShadow, planShadow } from './shadow.js';
import { checkApimPolicy, checkAsidPolicy, loadSession, requireAsid } from './steps.js';
import { obtainUserToken } from './user-token.js';

export interface DataCallInput {
  rt: Runtime;
  endpoint: EndpointDef;
  params: Record<string, string>;
  query: string;
  headers: IncomingHeaders;
  /** Header names and values as received (for passthrough, which forwards them unchanged). */
  rawHeaders: readonly string[];
  /** The request target as received, under /ers-api. */
  rawUrl: string;
  body: Readable;
  correlationId: string;
  legacyBase: string;
  /**
   * Ends the upstream call early (replay and shadow use a timeout). Absent for client calls: a client that goes away
   * leaves the upstream call to finish within its timeouts, which costs less than watching every connection.
   */
  signal?: AbortSignal;
  log?: Logger;
}

export interface LegacyAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer | Readable | undefined;
}

/** What the record step logs and counts. Never a token, a raw session key, a path value or a body. */
export interface CallRecord {
  aCode: string;
  route: string;
  asid?: string;
  session?: string;
  upstreamStatus?: number;
  upstreamMs?: number;
  tokenRenewed?: boolean;
  transactionId?: string;
  mode?: string;
  /** The side that answered: apim or legacy. */
  side?: string;
  /** Whether a copy went to the other side, or why not. */
  shadow?: string;
}

const ERROR_BODY_LIMIT = 1024 * 1024;

/** Step: an access token for the ASID's APIM application (none for the open-access sandbox). */
export async function obtainToken(asid: AsidRuntime): Promise<string | undefined> {
  if (!asid.tokens) return undefined;
  try {
    return await asid.tokens.get();
  } catch (e) {
    throw tokenError(e, asid.asid);
  }
}

function tokenError(e: unknown, asid: string): LegacyError {
  if (e instanceof TokenRejectedError) {
    return new LegacyError(
      'TOKEN_REJECTED_BY_APIM',
      `APIM refused ers-bridge's credentials for the APIM application of ASID ${asid}: ${e.errorDescription} (${e.error}). ers-bridge operators: check the API key, the key id (kid) and the public key registered for that application.`,
    );
  }
  if (e instanceof TokenUnavailableError) {
    return new LegacyError(
      'TOKEN_ENDPOINT_UNAVAILABLE',
      `APIM's token service could not be reached (${e.detail}); try again shortly.`,
      { headers: { 'retry-after': '5' } },
    );
  }
  return new LegacyError('INTERNAL_ERROR', 'ers-bridge could not obtain an APIM access token.');
}

/** The request body as each side needs it: APIM gets JSON links rewritten; the legacy host gets it unchanged. */
interface Bodies {
  apim: { first: UpstreamBody; replay?: () => Promise<Buffer | undefined>; length?: number };
  legacy: { first: UpstreamBody; length?: number };
}

/**
 * Step: read the request body (bounded). FHIR JSON is read whole (its links are rewritten for APIM); files stream to
 * the one side that takes them, kept for a retry — or are read whole when a copy must also go to the other side.
 */
async function prepareBodies(input: DataCallInput, urls: BaseUrls, copyNeeded: boolean): Promise<Bodies> {
  const { endpoint, headers, rt } = input;
  const limit = rt.rules.server.maxRequestBodyBytes;
  const declared = typeof headers['content-length'] === 'string' ? headers['content-length'] : undefined;
  if (endpoint.requestBody === 'none') return { apim: { first: undefined }, legacy: { first: undefined } };
  checkDeclaredLength(declared, limit);
  if (endpoint.requestBody === 'fhir-json' || copyNeeded) {
    const raw = await readBounded(input.body, limit);
    const forApim =
      endpoint.requestBody === 'fhir-json' ? Buffer.from(rewriteLegacyUrls(raw.toString('utf8'), urls), 'utf8') : raw;
    return {
      apim: { first: forApim, replay: async () => forApim, length: forApim.length },
      legacy: { first: raw, length: raw.length },
    };
  }
  const replayable = new ReplayableBody(input.body, limit);
  const length = declared !== undefined ? Number(declared) : undefined;
  return {
    apim: { first: replayable.live(), replay: () => replayable.whole(), ...(length !== undefined ? { length } : {}) },
    legacy: { first: replayable.live(), ...(length !== undefined ? { length } : {}) },
  };
}

/** Everything a side needs to answer this call. */
interface CallContext {
  input: DataCallInput;
  asid: AsidRuntime;
  key: string;
  session: Session;
  urls: BaseUrls;
}

/** The APIM side: policy → token → rewrite → forward (one renewal and retry after a 401) → rewrite back. */
async function callApim(
  ctx: CallContext,
  body: Bodies['apim'],
  correlationId: string,
  signal: AbortSignal | undefined,
  record: CallRecord,
): Promise<LegacyAnswer> {
  const { input, asid, key, session, urls } = ctx;
  const { rt, endpoint, headers } = input;
  checkApimPolicy(endpoint, asid, session);
  const isUser = session.accessMode === 'user-restricted';
  const tokenFor = (rejected?: string) =>
    isUser ? obtainUserToken(rt, asid, key, session, rejected) : obtainToken(asid);
  let token = await tokenFor();
  const user =
    isUser && session.permission
      ? {
          odsCode: session.permission.orgIdentifier,
          businessFunction: session.permission.businessFunction,
          ...(session.onBehalfOf ? { onBehalfOfUserId: session.onBehalfOf } : {}),
        }
      : undefined;
  const plan = (accessToken: string | undefined) =>
    buildApimRequest({
      endpoint,
      params: input.params,
      query: input.query,
      headers,
      apimBasePath: rt.apimBase.pathname.replace(/\/+$/, ''),
      accessToken,
      correlationId,
      ...(user ? { user } : {}),
      ...(body.length !== undefined ? { bodyLength: body.length } : {}),
    });
  await acquireSlot(asid);
  const started = performance.now();
  let res = await forwardRetrying(rt, endpoint, () => plan(token), body, signal);
  if (res.statusCode === 401 && token) {
    await res.body.dump();
    asid.tokens?.invalidate(token);
    token = await tokenFor(token);
    record.tokenRenewed = true;
    res = await forward(rt, plan(token), body.replay ? await body.replay() : undefined, signal);
    if (res.statusCode === 401) {
      await res.body.dump();
      throw new LegacyError(
        'ACCESS_TOKEN_REFUSED',
        `APIM refused a freshly issued access token for the APIM application of ASID ${asid.asid}. ers-bridge operators: check that the application is approved and subscribed to the e-RS API product.`,
      );
    }
  }
  record.upstreamStatus = res.statusCode;
  record.upstreamMs = Math.round((performance.now() - started) * 1000) / 1000;
  if (res.statusCode === 429) asid.limiter.pause(retryAfterSeconds(res.headers['retry-after']));
  return answerFromApim(rt, endpoint, res, urls, correlationId, record);
}

/** The legacy side: the call unchanged (but for the session key), to the legacy host. */
async function callLegacySide(
  ctx: CallContext,
  body: Bodies['legacy'],
  correlationId: string,
  signal: AbortSignal | undefined,
  record: CallRecord,
): Promise<LegacyAnswer> {
  const { input, key, session } = ctx;
  const started = performance.now();
  const answer = await callLegacy({
    rt: input.rt,
    host: input.rt.legacy,
    key,
    session,
    rawUrl: input.rawUrl,
    method: input.endpoint.method,
    rawHeaders: input.rawHeaders,
    body: body.first,
    ...(body.length !== undefined ? { bodyLength: body.length } : {}),
    correlationId,
    signal,
  });
  record.upstreamStatus = answer.status;
  record.upstreamMs = Math.round((performance.now() - started) * 1000) / 1000;
  if (answer.headers['X_ERS_TRANSACTION_ID']) record.transactionId = answer.headers['X_ERS_TRANSACTION_ID'];
  return answer;
}

export async function runDataCall(input: DataCallInput, record: CallRecord): Promise<LegacyAnswer> {
  const { rt, endpoint, headers } = input;

  // session → policy → mode
  const asid = requireAsid(rt, headers);
  record.asid = asid.asid;
  const { key, session } = await loadSession(rt.store, headers, asid.asid, {
    requireRole: true,
    userRestricted: asid.config.accessMode === 'user-restricted',
  });
  record.session = sessionKeyTag(key);
  checkAsidPolicy(endpoint, asid);
  const decision = decideMode(rt.rules.modes, endpoint, { sessionKey: key, asid: asid.asid });
  record.mode = decision.mode;
  record.side = decision.primary;
  if (decision.primary === 'apim') checkApimPolicy(endpoint, asid, session); // before reading any body
  rt.comparisons?.recordCall(asid.asid, endpoint.code);

  const urls: BaseUrls = {
    apimBase: rt.apimBase.href.replace(/\/+$/, ''),
    legacyBase: input.legacyBase,
    hscnBase: `https://${rt.rules.legacy.host}/ers-api`,
  };
  const shadow = planShadow(rt, decision, endpoint, { asid, session });
  if (shadow.skipped) record.shadow = shadow.skipped;
  const recording = rt.recorder?.wants(endpoint.code) === true;
  const bodies = await prepareBodies(input, urls, shadow.plan !== undefined || recording);
  const ctx: CallContext = { input, asid, key, session, urls };

  // forward to the primary side → rewrite back
  const primary = () =>
    decision.primary === 'apim'
      ? callApim(ctx, bodies.apim, input.correlationId, input.signal, record)
      : callLegacySide(ctx, bodies.legacy, input.correlationId, input.signal, record);
  if (!shadow.plan && !recording) return primary();

  // shadow and record: the primary's answer is kept; the copy runs after it, never holding it up
  const started = performance.now();
  const answer = await primary();
  const captured = await captureAnswer(answer, decision.primary, rt.rules.server.maxResponseRewriteBytes, started);
  if (recording) {
    rt.recorder!.record({
      aCode: endpoint.code,
      method: endpoint.method,
      path: input.rawUrl,
      asid: asid.asid,
      legacyBase: input.legacyBase,
      requestHeaders: headers,
      requestBody: Buffer.isBuffer(bodies.legacy.first) ? bodies.legacy.first : undefined,
      side: decision.primary,
      status: captured.answer.status,
      answerHeaders: captured.answer.headers,
      answerBody: captured.captured.body,
    });
  }
  if (!shadow.plan) return captured.answer;
  record.shadow = 'sent';
  const plan = shadow.plan;
  launchShadow(rt, {
    endpoint,
    asid: asid.asid,
    correlationId: input.correlationId,
    primary: captured.captured,
    primarySide: decision.primary,
    secondarySide: plan.secondary,
    settings: plan.settings,
    baseUrls: [input.legacyBase, urls.hscnBase!, rt.legacy.baseUrl.href.replace(/\/+$/, '')],
    callSide: (side, signal) => {
      const r: CallRecord = { aCode: endpoint.code, route: endpoint.legacyPath };
      const id = `${input.correlationId}.${side}`;
      return side === 'apim'
        ? callApim(ctx, bodies.apim, id, signal, r)
        : callLegacySide(ctx, bodies.legacy, id, signal, r);
    },
    log: input.log,
  });
  return captured.answer;
}

/** Step: a slot under the APIM application's rate limit (waiting in a bounded queue), or a legacy 429. */
async function acquireSlot(asid: AsidRuntime): Promise<void> {
  try {
    await asid.limiter.acquire();
  } catch (e) {
    if (!(e instanceof RateLimited)) throw e;
    throw new LegacyError(
      'RATE_LIMITED_LOCALLY',
      `Too many calls for this system's APIM application just now (APIM allows only so many a second); wait ${e.retryAfterSeconds} seconds and try again.`,
      { headers: { 'retry-after': String(e.retryAfterSeconds) } },
    );
  }
}

/** APIM's Retry-After, in seconds (a number or an HTTP date); 1 when absent or unreadable. */
export function retryAfterSeconds(value: string | string[] | undefined): number {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return 1;
  const n = Number(v);
  if (Number.isFinite(n) && n >= 0) return Math.min(Math.ceil(n), 3600);
  const date = Date.parse(v);
  return Number.isNaN(date) ? 1 : Math.min(Math.max(1, Math.ceil((date - Date.now()) / 1000)), 3600);
}

/**
 * Forward, retrying once when the connection failed before any answer — only for operations without side effects,
 * and only within the retry budget, so a struggling APIM is not hammered.
 */
async function forwardRetrying(
  rt: Runtime,
  endpoint: EndpointDef,
  plan: () => ReturnType<typeof buildApimRequest>,
  body: Bodies['apim'],
  signal: AbortSignal | undefined,
): Promise<Dispatcher.ResponseData> {
  rt.retryBudget.call();
  try {
    return await forward(rt, plan(), body.first, signal);
  } catch (e) {
    const retryable = e instanceof LegacyError && e.retryable && !signal?.aborted;
    if (!retryable || !endpoint.readOnly || !rt.retryBudget.allowRetry()) throw e;
    return forward(rt, plan(), body.replay ? await body.replay() : undefined, signal);
  }
}

async function forward(
  rt: Runtime,
  plan: ReturnType<typeof buildApimRequest>,
  body: Buffer | AsyncIterable<Buffer> | undefined,
  signal: AbortSignal | undefined,
): Promise<Dispatcher.ResponseData> {
  return rt.upstream.request({
    method: plan.method,
    path: plan.path,
    headers: plan.headers,
    body,
    ...(signal ? { signal } : {}),
  });
}

async function answerFromApim(
  rt: Runtime,
  endpoint: EndpointDef,
  res: Dispatcher.ResponseData,
  urls: BaseUrls,
  correlationId: string,
  record: CallRecord,
): Promise<LegacyAnswer> {
  const headers = legacyResponseHeaders(res.headers, urls, correlationId);
  if (headers['X_ERS_TRANSACTION_ID']) record.transactionId = headers['X_ERS_TRANSACTION_ID'];
  if (res.statusCode === 429) headers['retry-after'] ??= '1'; // legacy clients should always know when to retry
  const status = res.statusCode;
  const contentType = headers['content-type'];

  if (status >= 400) {
    const raw = await readUpstreamBody(res, ERROR_BODY_LIMIT, rt);
    if (raw.length === 0 || !isJsonContentType(contentType)) {
      return emptyErrorAnswer(status, headers, raw, endpoint);
    }
    return { status, headers, body: Buffer.from(rewriteApimUrls(raw.toString('utf8'), urls), 'utf8') };
  }
  if (endpoint.method === 'HEAD' || status === 204 || status === 304) {
    await res.body.dump();
    return { status, headers, body: undefined };
  }
  if (isJsonContentType(contentType)) {
    const raw = await readUpstreamBody(res, rt.rules.server.maxResponseRewriteBytes, rt);
    return { status, headers, body: Buffer.from(rewriteApimUrls(raw.toString('utf8'), urls), 'utf8') };
  }
  // Files (PDFs, attachments) stream straight through.
  const length = res.headers['content-length'];
  if (typeof length === 'string') headers['content-length'] = length;
  return { status, headers, body: res.body };
}

async function readUpstreamBody(res: Dispatcher.ResponseData, limit: number, rt: Runtime): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        res.body.destroy();
        throw new LegacyError(
          'UPSTREAM_BAD_RESPONSE',
          `APIM's answer is larger than ${limit} bytes, more than ers-bridge will translate. Narrow the request (e.g. filter the worklist).`,
        );
      }
      chunks.push(chunk as Buffer);
    }
  } catch (e) {
    if (e instanceof LegacyError) throw e;
    throw rt.upstream.transportError(e);
  }
  return Buffer.concat(chunks, size);
}

/** APIM sometimes answers errors with no body (STU3 401/429, app-restricted 403): give the client a legacy one. */
function emptyErrorAnswer(
  status: number,
  headers: Record<string, string>,
  raw: Buffer,
  endpoint: EndpointDef,
): LegacyAnswer {
  const text = raw
    .toString('utf8')
    .replace(/[^\x20-\x7e]/g, ' ')
    .trim()
    .slice(0, 200);
  const said = text ? ` APIM said: "${text}".` : '';
  let error: LegacyError;
  if (status === 429) {
    const after = headers['retry-after'];
    error = new LegacyError(
      'UPSTREAM_RATE_LIMITED',
      `APIM's rate limit for this application was reached; wait ${after ? `${after} seconds` : 'a few seconds'} and try again.`,
    );
  } else {
    error = new LegacyError(
      'UPSTREAM_EMPTY_ERROR',
      `APIM refused ${endpoint.code} (${endpoint.name}) with HTTP ${status} and no explanation.${said} Check the request; if it persists, give the ers-bridge operators the X_ERS_TRANSACTION_ID or X-Correlation-ID of this answer.`,
      { status },
    );
  }
  const out: Record<string, string> = { ...headers, 'content-type': 'application/fhir+json' };
  delete out['content-disposition'];
  return { status, headers: out, body: Buffer.from(JSON.stringify(operationOutcome(error.reason, error.diagnostics))) };
}
