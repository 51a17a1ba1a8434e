/**
 * The HTTP server: the legacy surface (`/ers-api/...`) and the admin surface (`/healthz`, `/readyz`).
 *
 * Fastify's body parsing is switched off for the legacy surface: bodies stay raw streams so that files stream to
 * APIM and every limit and error is ers-bridge's own, legacy-shaped. Every error path ends in an OperationOutcome.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Readable } from 'node:stream';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { Metrics } from './admin/metrics.js';
import { registerAdmin } from './admin/routes.js';
import { ENDPOINTS } from './legacy/endpoints.js';
import { FHIR_JSON, LegacyError } from './legacy/errors.js';
import { type Identified, identify } from './legacy/identify.js';
import { createSession, deleteSession, type SessionCallResult, selectRole } from './legacy/session-api.js';
import { type CallRecord, type LegacyAnswer, runDataCall } from './pipeline/data-call.js';
import type { Runtime } from './runtime.js';
import { sessionKeyTag } from './sessions/session.js';
import { StoreUnavailableError } from './sessions/store.js';
import { registerSignIn } from './signin/routes.js';
import { readBounded } from './translation/body.js';
import { correlationIdFor, type IncomingHeaders, legacyHeader } from './translation/request.js';

/** Holds the current runtime; a rules reload swaps `current`, requests keep the one they started with. */
export interface RuntimeHolder {
  current: Runtime;
}

export interface ServerOptions {
  logger: Logger;
  /** The process's metrics; a fresh registry when absent. */
  metrics?: Metrics;
}

const SESSION_BODY_LIMIT = 64 * 1024;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

function transactionId(): string {
  return `${randomUUID()}-1`;
}

/**
 * Sets the legacy transaction id header with its exact legacy spelling. Fastify lower-cases names given to
 * reply.header(); Node keeps the case given to setHeader(), and a legacy client may look the name up as spelt.
 */
function setTransactionId(reply: FastifyReply, id: string): void {
  reply.raw.setHeader('X_ERS_TRANSACTION_ID', id);
}

/** The legacy base URL as this client reaches ers-bridge: configured, or from the request's Host. */
function legacyBaseFor(rt: Runtime, req: FastifyRequest): string {
  if (rt.rules.legacy.publicBaseUrl) return rt.rules.legacy.publicBaseUrl;
  const host = req.headers.host;
  const safeHost =
    host && /^[A-Za-z0-9.\-[\]:]{1,255}$/.test(host) ? host : `${rt.rules.server.host}:${rt.rules.server.port}`;
  const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  return `${proto}://${safeHost}/ers-api`;
}

function sendOutcome(reply: FastifyReply, error: LegacyError, correlationId?: string): FastifyReply {
  reply.code(error.status).header('content-type', FHIR_JSON);
  // The rest of an over-long body is not read: close the connection once the answer is out.
  if (error.reason === 'BODY_TOO_LARGE') reply.header('connection', 'close');
  for (const [k, v] of Object.entries(error.headers)) reply.header(k, v);
  if (correlationId) reply.header('x-correlation-id', correlationId);
  setTransactionId(reply, transactionId());
  return reply.send(JSON.stringify(error.toOutcome()));
}

function identifiedError(id: Identified): LegacyError | undefined {
  switch (id.kind) {
    case 'not-found':
    case 'not-legacy':
      return new LegacyError(
        'UNKNOWN_ENDPOINT',
        'No e-RS operation is served at this path. Legacy STU3 calls look like /ers-api/STU3/v1/ReferralRequest/{ubrn}; sessions are /ers-api/v1/ProfessionalSession. Check the path against the e-RS endpoint catalogue.',
      );
    case 'method-not-allowed':
      return new LegacyError(
        'METHOD_NOT_ALLOWED',
        `This path (${id.codes.join(', ')}) takes ${id.allow.join(' or ')}, not the method sent.`,
        { headers: { allow: id.allow.join(', ') } },
      );
    case 'bad-param':
      return new LegacyError(
        'BAD_PATH_PARAMETER',
        `${id.code}: the {${id.param}} part of the path must be ${id.expected}.`,
      );
    case 'bad-path':
      return new LegacyError('BAD_PATH', `The request path is not acceptable: ${id.reason}.`);
    case 'dstu2':
      return new LegacyError(
        'DSTU2_WITHDRAWN',
        `The DSTU2 API (/ers-api/v1/${id.resource}) was withdrawn in August 2024 and has no APIM equivalent. Use the STU3 call instead — ${id.replacement}.`,
      );
    default:
      return undefined;
  }
}

function isJsonOrAbsent(ct: string | undefined): boolean {
  if (ct === undefined || ct === '') return true;
  const media = ct.split(';')[0]!.trim().toLowerCase();
  return media === 'application/json' || media.endsWith('+json') || media === 'text/json';
}

async function readSessionBody(req: FastifyRequest, what: string): Promise<Buffer> {
  if (!isJsonOrAbsent(req.headers['content-type'])) {
    throw new LegacyError('UNSUPPORTED_MEDIA_TYPE', `${what} takes a JSON body: send Content-Type: application/json.`);
  }
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > SESSION_BODY_LIMIT) {
    throw new LegacyError('BODY_TOO_LARGE', `The ${what} body is larger than ${SESSION_BODY_LIMIT} bytes.`);
  }
  return readBounded(req.raw as Readable, SESSION_BODY_LIMIT).catch((e: unknown) => {
    if (e instanceof LegacyError && e.reason === 'BODY_TOO_LARGE') {
      throw new LegacyError('BODY_TOO_LARGE', `The ${what} body is larger than ${SESSION_BODY_LIMIT} bytes.`);
    }
    throw e;
  });
}

async function runSessionCall(
  rt: Runtime,
  id: Extract<Identified, { kind: 'session' }>,
  req: FastifyRequest,
  now: number,
  correlationId: string,
): Promise<SessionCallResult> {
  const headers = req.headers as IncomingHeaders;
  switch (id.op) {
    case 'A001':
      return createSession(rt, headers, await readSessionBody(req, 'A001'), now, correlationId);
    case 'A002':
      return selectRole(rt, headers, id.sessionKeyInPath!, await readSessionBody(req, 'A002'), now);
    case 'A003':
      return deleteSession(rt, headers, id.sessionKeyInPath!);
  }
}

export async function buildServer(holder: RuntimeHolder, options: ServerOptions): Promise<FastifyInstance> {
  const log = options.logger;
  const rules = holder.current.rules;
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // ers-bridge logs one line per call itself (the record step), so fastify's own request lines are off.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    exposeHeadRoutes: false,
    bodyLimit: rules.server.maxRequestBodyBytes,
    // Fastify leaves Node's request timeout off; a bound protects against clients that never finish a request.
    requestTimeout: 300_000,
    // Requests Node's HTTP parser refuses (smuggling attempts, oversized or invalid headers, bad framing) still get
    // a legacy-shaped answer, and the connection is closed.
    clientErrorHandler: (err, socket) => answerClientError(err as NodeJS.ErrnoException, socket),
    // The router refuses some URLs (bad percent-escapes) before any handler: answer those legacy-shaped too,
    // without echoing the path.
    frameworkErrors: (err, req, reply) => {
      const error =
        err.code === 'FST_ERR_BAD_URL'
          ? new LegacyError('BAD_PATH', 'The request path contains an invalid percent-encoding; encode it correctly.')
          : new LegacyError(
              'MALFORMED_REQUEST',
              'The request could not be read as an HTTP request ers-bridge accepts.',
              {
                status: (err as { statusCode?: number }).statusCode ?? 400,
              },
            );
      void sendOutcome(reply, error, safeCorrelation(req));
    },
  });

  // Bodies stay raw streams: the pipeline reads them with its own limits.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
  // An empty Content-Type is treated as absent (legacy clients sent JSON sessions without one), not refused.
  app.addHook('onRequest', async (req) => {
    if (req.headers['content-type'] !== undefined && req.headers['content-type'].trim() === '') {
      delete req.headers['content-type'];
    }
  });

  const metrics = options.metrics ?? new Metrics({ processMetrics: false });
  metrics.liveSessions = () => holder.current.store.size();
  interface Entry {
    record: CallRecord;
    started: number;
    correlationId: string | undefined;
    rt: Runtime;
    reason: string | undefined;
  }
  const records = new WeakMap<FastifyRequest, Entry>();

  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    const rt = holder.current; // the rules this request started with
    rt.inFlight++;
    let reason: string | undefined;
    const started = performance.now();
    const headers = req.headers as IncomingHeaders;
    const record: CallRecord = { aCode: '-', route: '-' };
    let correlationId: string | undefined;
    try {
      correlationId = correlationIdFor(headers, randomUUID);
      const id = identify(req.method, req.raw.url ?? '/');
      const refusal = identifiedError(id);
      if (refusal) throw refusal;
      if (id.kind === 'session') {
        record.aCode = id.op;
        record.route = id.op === 'A001' ? '/v1/ProfessionalSession' : '/v1/ProfessionalSession/{sessionKey}';
        const result = await runSessionCall(rt, id, req, rt.now(), correlationId);
        record.asid = result.asid;
        if (result.sessionKey) record.session = sessionKeyTag(result.sessionKey);
        reply.code(result.status);
        setTransactionId(reply, transactionId());
        reply.header('x-correlation-id', correlationId);
        if (result.body === undefined) return reply.send();
        return reply.header('content-type', 'application/json').send(JSON.stringify(result.body));
      }
      if (id.kind !== 'endpoint') throw new LegacyError('UNKNOWN_ENDPOINT', 'Unknown endpoint.');
      record.aCode = id.endpoint.code;
      record.route = id.endpoint.legacyPath;
      const answer: LegacyAnswer = await runDataCall(
        {
          rt,
          endpoint: id.endpoint,
          params: id.params,
          query: id.query,
          headers,
          rawHeaders: req.raw.rawHeaders,
          rawUrl: req.raw.url ?? '/',
          body: req.raw as Readable,
          correlationId,
          legacyBase: legacyBaseFor(rt, req),
          log,
        },
        record,
      );
      const { X_ERS_TRANSACTION_ID: txId, ...headersOut } = answer.headers;
      reply.code(answer.status).headers(headersOut);
      if (txId) setTransactionId(reply, txId);
      return reply.send(answer.body);
    } catch (e) {
      const error =
        e instanceof LegacyError
          ? e
          : e instanceof StoreUnavailableError
            ? storeUnavailable()
            : internalError(e, log, record);
      reason = error.reason;
      return sendOutcome(reply, error, correlationId);
    } finally {
      records.set(req, { record, started, correlationId, rt, reason });
    }
  };

  // record: one line per call once the answer is sent; never a token, raw session key, path value or body.
  app.addHook('onResponse', async (req, reply) => {
    const entry = records.get(req);
    if (!entry) return;
    const { record, started, correlationId, rt } = entry;
    rt.inFlight--;
    countCall(metrics, rt, req.method, reply.statusCode, entry, performance.now() - started);
    if (!log.isLevelEnabled('info')) return; // do not build a line nobody will write
    log.info(
      {
        aCode: record.aCode,
        route: record.route,
        method: req.method,
        asid: record.asid,
        session: record.session,
        status: reply.statusCode,
        upstreamStatus: record.upstreamStatus,
        upstreamMs: record.upstreamMs,
        tokenRenewed: record.tokenRenewed,
        mode: record.mode,
        side: record.side,
        shadow: record.shadow,
        ms: Math.round((performance.now() - started) * 1000) / 1000,
        correlationId,
        transactionId: record.transactionId,
      },
      'legacy call',
    );
  });

  app.route({ method: [...METHODS], url: '/ers-api', handler: handle });
  app.route({ method: [...METHODS], url: '/ers-api/*', handler: handle });

  registerSignIn(app, holder);
  const adminToken = holder.current.adminToken;
  registerAdmin(app, {
    ...(adminToken ? { token: adminToken } : {}),
    open: holder.current.rules.admin?.open === true,
    comparisons: () => holder.current.comparisons,
    names: Object.fromEntries(ENDPOINTS.map((e) => [e.code, e.name.replace(/ \(versioned\)$/, '')])),
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const rt = holder.current;
    const [store, tokens] = await Promise.all([rt.store.ping(), tokenReadiness(rt)]);
    const ready = store && tokens.every((t) => t.ok);
    const body = {
      status: ready ? 'ready' : 'unready',
      environment: rt.rules.environment,
      rulesFile: rt.file,
      checks: {
        rules: 'loaded',
        sessionStore: store ? 'reachable' : 'unreachable',
        apimTokens: tokens.map((t) => ({ application: t.application, status: t.ok ? 'ok' : 'unobtainable' })),
      },
    };
    return reply.code(ready ? 200 : 503).send(body);
  });

  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics()),
  );

  app.setNotFoundHandler((req, reply) => {
    const error = identifiedError({ kind: 'not-found', path: req.url })!;
    return sendOutcome(reply, error, safeCorrelation(req));
  });

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof LegacyError) return sendOutcome(reply, err, safeCorrelation(req));
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status === 413) {
      return sendOutcome(
        reply,
        new LegacyError('BODY_TOO_LARGE', 'The request body is too large.'),
        safeCorrelation(req),
      );
    }
    if (status === 415) {
      return sendOutcome(
        reply,
        new LegacyError(
          'UNSUPPORTED_MEDIA_TYPE',
          'The Content-Type header is not a valid media type; send application/fhir+json for FHIR bodies, application/json for sessions, or the file type for uploads.',
        ),
        safeCorrelation(req),
      );
    }
    if (status >= 400 && status < 500) {
      return sendOutcome(
        reply,
        new LegacyError('MALFORMED_REQUEST', 'The request could not be read as an HTTP request ers-bridge accepts.', {
          status,
        }),
        safeCorrelation(req),
      );
    }
    return sendOutcome(reply, internalError(err, log, { aCode: '-', route: '-' }), safeCorrelation(req));
  });

  return app;
}

/** A legacy-shaped answer for a request the HTTP parser refused; the connection is then closed. */
function answerClientError(
  err: NodeJS.ErrnoException,
  socket: import('node:net').Socket | import('node:stream').Duplex,
): void {
  const code = err.code ?? '';
  if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
    socket.destroy();
    return;
  }
  const error =
    code === 'HPE_HEADER_OVERFLOW'
      ? new LegacyError(
          'HEADERS_TOO_LARGE',
          'The request headers are larger than ers-bridge accepts (16 KB); send fewer or shorter headers.',
        )
      : code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new LegacyError('MALFORMED_REQUEST', 'The request was not completed in time.', { status: 408 })
        : new LegacyError(
            'MALFORMED_REQUEST',
            'The request is not well-formed HTTP (for example conflicting Content-Length and Transfer-Encoding, an invalid header, or bad chunking); it was refused.',
          );
  const body = JSON.stringify(error.toOutcome());
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\nContent-Type: application/fhir+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Counts one answered call in the metrics. */
function countCall(
  metrics: Metrics,
  rt: Runtime,
  method: string,
  status: number,
  entry: { record: CallRecord; reason: string | undefined },
  ms: number,
): void {
  const { record } = entry;
  const asid = record.asid && rt.asids.has(record.asid) ? record.asid : 'unknown';
  const session = record.aCode === 'A001' || record.aCode === 'A002' || record.aCode === 'A003';
  metrics.requests.inc({
    a_code: record.aCode,
    method,
    status: String(status),
    mode: record.mode ?? (session ? 'session' : 'none'),
    asid,
  });
  metrics.requestDuration.observe({ a_code: record.aCode }, ms / 1000);
  if (record.upstreamMs !== undefined) {
    metrics.upstreamDuration.observe({ side: record.side ?? 'apim', a_code: record.aCode }, record.upstreamMs / 1000);
  }
  if (record.aCode === 'A001' && status === 201) {
    metrics.sessionsCreated.inc({ access_mode: rt.asids.get(asid)?.config.accessMode ?? 'unknown' });
  }
  if (record.aCode === 'A003' && status === 204) metrics.sessionsEnded.inc({ reason: 'deleted' });
  if (entry.reason === 'SESSION_UNKNOWN') metrics.sessionsEnded.inc({ reason: 'unknown_or_expired' });
  if (entry.reason === 'SESSION_SIGN_IN_AGAIN') metrics.sessionsEnded.inc({ reason: 'sign_in_again' });
}

/** Whether each APIM application's token is held or can be had now (bounded wait; failures are remembered briefly). */
async function tokenReadiness(rt: Runtime): Promise<Array<{ application: string; ok: boolean }>> {
  return Promise.all(
    [...new Set(rt.tokenProviders.values())].map(async (p) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), 3000);
      });
      const ok = await Promise.race([
        p.get().then(
          () => true,
          () => false,
        ),
        timeout,
      ]);
      clearTimeout(timer);
      return { application: p.application, ok };
    }),
  );
}

export function storeUnavailable(): LegacyError {
  return new LegacyError(
    'STORE_UNAVAILABLE',
    'ers-bridge cannot reach its session store just now; nothing was changed. Try again in a few seconds.',
    { headers: { 'retry-after': '2' } },
  );
}

function safeCorrelation(req: FastifyRequest): string | undefined {
  try {
    const v = legacyHeader(req.headers as IncomingHeaders, 'x-correlation-id');
    return v && /^[A-Za-z0-9._:@-]{1,128}$/.test(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** An unexpected failure: logged with its stack (server side only), answered with a plain legacy 500. */
function internalError(e: unknown, log: Logger, record: CallRecord): LegacyError {
  const err = e instanceof Error ? e : new Error(String(e));
  log.error({ err: { type: err.name, message: err.message, stack: err.stack }, aCode: record.aCode }, 'internal error');
  return new LegacyError(
    'INTERNAL_ERROR',
    'ers-bridge failed unexpectedly while handling this call; the request may not have reached e-RS. Try again; if it persists, give the ers-bridge operators the X-Correlation-ID of this answer.',
  );
}
