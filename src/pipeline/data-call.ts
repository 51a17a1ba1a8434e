/**
 * A legacy STU3 data call, as an ordered pipeline of named steps:
 *
 *   identify endpoint → session → policy → token → rewrite request → forward → rewrite response → record
 *
 * The deciding steps are pure (steps.ts, translation/*); this module runs them in order and does the I/O at the
 * edges (reading the client's body, the upstream call, the answer).
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { TokenRejectedError, TokenUnavailableError } from '../auth/application-token.js';
import type { EndpointDef } from '../legacy/endpoints.js';
import { LegacyError, operationOutcome } from '../legacy/errors.js';
import type { AsidRuntime, Runtime } from '../runtime.js';
import { sessionKeyTag } from '../sessions/session.js';
import { checkDeclaredLength, ReplayableBody, readBounded } from '../translation/body.js';
import { buildApimRequest, type IncomingHeaders } from '../translation/request.js';
import {
  type BaseUrls,
  isJsonContentType,
  legacyResponseHeaders,
  rewriteApimUrls,
  rewriteLegacyUrls,
} from '../translation/response.js';
import { checkPolicy, loadSession, requireAsid } from './steps.js';
import { obtainUserToken } from './user-token.js';

export interface DataCallInput {
  rt: Runtime;
  endpoint: EndpointDef;
  params: Record<string, string>;
  query: string;
  headers: IncomingHeaders;
  body: Readable;
  correlationId: string;
  legacyBase: string;
  signal: AbortSignal;
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

export async function runDataCall(input: DataCallInput, record: CallRecord): Promise<LegacyAnswer> {
  const { rt, endpoint, headers } = input;

  // session → policy
  const asid = requireAsid(rt, headers);
  record.asid = asid.asid;
  const { key, session } = await loadSession(rt.store, headers, asid.asid, {
    requireRole: true,
    userRestricted: asid.config.accessMode === 'user-restricted',
  });
  record.session = sessionKeyTag(key);
  checkPolicy(endpoint, asid, session);

  const urls: BaseUrls = {
    apimBase: rt.apimBase.href.replace(/\/+$/, ''),
    legacyBase: input.legacyBase,
    hscnBase: `https://${rt.rules.legacy.host}/ers-api`,
  };

  // request body (read, bounded; JSON links rewritten; files streamed and kept for a retry)
  const limit = rt.rules.server.maxRequestBodyBytes;
  let firstBody: Buffer | AsyncIterable<Buffer> | undefined;
  let replay: (() => Promise<Buffer | undefined>) | undefined;
  let bodyLength: number | undefined;
  const declared = headers['content-length'];
  if (endpoint.requestBody === 'fhir-json') {
    checkDeclaredLength(typeof declared === 'string' ? declared : undefined, limit);
    const raw = await readBounded(input.body, limit);
    const rewritten = Buffer.from(rewriteLegacyUrls(raw.toString('utf8'), urls), 'utf8');
    firstBody = rewritten;
    bodyLength = rewritten.length;
    replay = async () => rewritten;
  } else if (endpoint.requestBody === 'file') {
    checkDeclaredLength(typeof declared === 'string' ? declared : undefined, limit);
    const replayable = new ReplayableBody(input.body, limit);
    firstBody = replayable.live();
    if (typeof declared === 'string') bodyLength = Number(declared);
    replay = () => replayable.whole();
  }

  // token → rewrite → forward (one renewal and one retry after an APIM 401)
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
      correlationId: input.correlationId,
      ...(user ? { user } : {}),
      ...(bodyLength !== undefined ? { bodyLength } : {}),
    });
  const started = performance.now();
  const first = plan(token);
  let res = await forward(rt, first, firstBody, input.signal);
  if (res.statusCode === 401 && token) {
    await res.body.dump();
    asid.tokens?.invalidate(token);
    token = await tokenFor(token);
    record.tokenRenewed = true;
    res = await forward(rt, plan(token), replay ? await replay() : undefined, input.signal);
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

  // rewrite back
  return answerFromApim(rt, endpoint, res, urls, input.correlationId, record);
}

async function forward(
  rt: Runtime,
  plan: ReturnType<typeof buildApimRequest>,
  body: Buffer | AsyncIterable<Buffer> | undefined,
  signal: AbortSignal,
): Promise<Dispatcher.ResponseData> {
  return rt.upstream.request({ method: plan.method, path: plan.path, headers: plan.headers, body, signal });
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
