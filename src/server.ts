/**
 * The HTTP server: one fastify instance, and one plugin per surface — the legacy API (`/ers-api/...`), the CIS2
 * sign-in page (`/login`), the admin pages (`/admin`); health and metrics have a listener of their own
 * (src/ops/server.ts). What no surface answers, and what the HTTP parser or fastify refuse before any surface sees
 * it, still gets a legacy-shaped answer.
 */

import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, LogController } from 'fastify';
import type { Logger } from 'pino';
import { adminFactsOf } from './admin/facts.js';
import { Metrics } from './admin/metrics.js';
import { adminPlugin } from './admin/routes.js';
import { KNOWN_DIFFERENCES } from './comparison/presets.js';
import { addressKey } from './http/client-address.js';
import { ENDPOINTS } from './legacy/endpoints.js';
import { LegacyError } from './legacy/errors.js';
import { identify } from './legacy/identify.js';
import { legacyPlugin, sendAnswer } from './legacy/plugin.js';
import { HTTP_FAULTS, internalError, rawHttpAnswer, renderOutcome } from './pipeline/faults.js';
import { newTransactionId } from './pipeline/flow.js';
import { refusalOf } from './pipeline/steps.js';
import { fromTrustedProxy, hostAllowed, type ListenerSettings } from './runtime/listener.js';
import type { Runtime, RuntimeHolder } from './runtime/runtime.js';
import { signInPlugin } from './signin/routes.js';
import { type IncomingHeaders, legacyHeader } from './translation/request.js';

export type { RuntimeHolder } from './runtime/runtime.js';

export interface ServerOptions {
  logger: Logger;
  /** The process's metrics; a fresh registry when absent. */
  metrics?: Metrics;
}

/** TLS options for the legacy listener: the server certificate, and the client certificates it asks for. */
function tlsOptionsOf(tls: NonNullable<ListenerSettings['tls']>): SecureContextOptions & TlsOptions {
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.ca ? { ca: tls.ca } : {}),
    minVersion: tls.minVersion,
    requestCert: tls.clientCertificates !== 'off',
    // required: no handshake without a certificate from the CA; optional: asked for, checked per ASID binding.
    rejectUnauthorized: tls.clientCertificates === 'required',
  };
}

let requestCounter = 0;
function nextRequestId(): string {
  requestCounter = (requestCounter + 1) % Number.MAX_SAFE_INTEGER;
  return `req-${requestCounter.toString(36)}`;
}

export async function buildServer(holder: RuntimeHolder, options: ServerOptions): Promise<FastifyInstance> {
  const log = options.logger;
  const metrics = options.metrics ?? new Metrics({ processMetrics: false });
  const { limits } = holder.current.rules.server;
  const tls = holder.current.listener.tls;
  const app = Fastify({
    ...(tls ? { https: tlsOptionsOf(tls) } : {}),
    loggerInstance: log as FastifyBaseLogger,
    // ers-bridge logs one line per call itself (the record step), so fastify's own request lines are off.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    // Fastify's request id only labels its own log lines (the legacy calls carry their correlation id instead): a
    // counter costs nothing per call, a UUID a CSPRNG read.
    genReqId: nextRequestId,
    // No child logger per legacy call: the record step writes the call's one line with every field it needs, and a
    // pino child per request is measurable garbage (issue 15). Admin and sign-in keep theirs (they log by request).
    childLoggerFactory: (logger, bindings, opts, rawReq) =>
      rawReq.url?.startsWith('/ers-api') ? logger : logger.child(bindings, opts),
    return503OnClosing: true,
    exposeHeadRoutes: false,
    bodyLimit: holder.current.rules.server.maxRequestBodyBytes,
    // Fastify leaves Node's request timeout off; bounds protect against clients that never finish a request or
    // hold connections open (server.limits; the header timeout is set on the server below).
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Requests Node's HTTP parser refuses (smuggling attempts, oversized or invalid headers, bad framing) still get
    // a legacy-shaped answer, and the connection is closed.
    clientErrorHandler: (err, socket) => answerClientError(err as NodeJS.ErrnoException, socket),
    // The router refuses some URLs (bad percent-escapes) before any handler: answer those legacy-shaped too,
    // without echoing the path.
    frameworkErrors: (err, req, reply) => {
      const status = (err as { statusCode?: number }).statusCode;
      void sendAnswer(reply, ownAnswer(HTTP_FAULTS.framework(err.code, status), req));
    },
  });

  applyListenerSettings(app, holder.current);
  limitConnectionsPerAddress(
    app.server,
    () => holder.current.rules.server.limits.connectionsPerAddress,
    // A trusted proxy carries many clients' connections: its own are not one client's.
    (address) => fromTrustedProxy(holder.current.listener, address),
  );
  // Only the names ers-bridge is published under: nothing is built from any other Host (DNS rebinding).
  // A callback hook, not an async one: no promise per request for a synchronous check.
  app.addHook('onRequest', (req, reply, done) => {
    if (hostAllowed(holder.current.listener, req.headers.host)) return done();
    sendAnswer(reply, ownAnswer(misdirected(), req));
  });

  // Outside the legacy routes: `//ers-api/...` (a base URL ending in / joined to a path) is named as the operation it
  // would be (identify); anything else is an unknown path.
  app.setNotFoundHandler((req, reply) => {
    const refusal = refusalOf(identify(req.method, req.raw.url ?? '/')) ?? refusalOf({ kind: 'not-legacy' })!;
    return sendAnswer(reply, ownAnswer(refusal, req));
  });
  app.setErrorHandler((e, req, reply) => {
    if (e instanceof LegacyError) return sendAnswer(reply, ownAnswer(e, req));
    const err = e instanceof Error ? e : new Error(String(e));
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) {
      log.error({ err: { type: err.name, message: err.message, stack: err.stack } }, 'internal error');
    }
    return sendAnswer(reply, ownAnswer(status >= 500 ? internalError() : HTTP_FAULTS.status(status), req));
  });

  await app.register(legacyPlugin, { prefix: '/ers-api', holder, log, metrics });
  await app.register(signInPlugin, { holder });
  await app.register(adminPlugin, {
    prefix: '/admin',
    token: () => holder.current.adminToken,
    open: () => holder.current.rules.admin?.open === true,
    // Every replica's figures when sessions are on Redis, else this process's (src/comparison/store.ts view()).
    comparisons: () => holder.current.comparisons?.view(),
    facts: () => adminFactsOf(holder.current.rules, KNOWN_DIFFERENCES, holder.current.comparisons?.replica),
    trustedProxy: (address) => fromTrustedProxy(holder.current.listener, address),
    names: Object.fromEntries(ENDPOINTS.map((e) => [e.code, e.name.replace(/ \(versioned\)$/, '')])),
    clock: holder.current.shared.clock,
  });
  return app;
}

/**
 * What a reload may change on a listening server: its certificates (a new secure context for new handshakes), its
 * timeouts and its connection bound. TLS on or off and the client-certificate mode need a restart (reload.ts).
 */
export function applyListenerSettings(app: FastifyInstance, rt: Runtime): void {
  const server = app.server as Server & { setSecureContext?: (o: SecureContextOptions) => void };
  const { limits } = rt.rules.server;
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.connections;
  if (rt.listener.tls && server.setSecureContext) server.setSecureContext(tlsOptionsOf(rt.listener.tls));
}

/** Connections from one client address at most; beyond it new ones are closed at once. */
function limitConnectionsPerAddress(server: Server, max: () => number, exempt: (address: string) => boolean): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const peer = socket.remoteAddress ?? '';
    if (exempt(peer)) return;
    const address = addressKey(peer); // IPv6 by /64, IPv4-mapped as IPv4: as the other per-address limits count
    const n = (open.get(address) ?? 0) + 1;
    if (n > max()) {
      socket.destroy();
      return;
    }
    open.set(address, n);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

function misdirected(): LegacyError {
  return new LegacyError(
    'MISDIRECTED_REQUEST',
    'This ers-bridge does not serve the host named in the Host header. Call it by the name it is published under.',
  );
}

/** An error answer ers-bridge makes itself, outside the flow (the router, fastify), echoing a safe correlation id. */
function ownAnswer(error: LegacyError, req: FastifyRequest) {
  const answer = renderOutcome(error, { correlationId: safeCorrelation(req) });
  answer.headers['X_ERS_TRANSACTION_ID'] = newTransactionId();
  return answer;
}

/** A legacy-shaped answer for a request the HTTP parser refused; the connection is then closed. */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const code = err.code ?? '';
  if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(rawHttpAnswer(HTTP_FAULTS.parser(code)));
}

function safeCorrelation(req: FastifyRequest): string | undefined {
  try {
    const v = legacyHeader(req.headers as IncomingHeaders, 'x-correlation-id');
    return v && /^[A-Za-z0-9._:@-]{1,128}$/.test(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
