/**
 * The HTTP server: one fastify instance, and one plugin per surface — the legacy API (`/ers-api/...`), the CIS2
 * sign-in page (`/login`), the admin pages (`/admin`), and health and metrics. What no surface answers, and what the
 * HTTP parser or fastify refuse before any surface sees it, still gets a legacy-shaped answer.
 */

import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, LogController } from 'fastify';
import type { Logger } from 'pino';
import { Metrics } from './admin/metrics.js';
import { adminPlugin } from './admin/routes.js';
import { ENDPOINTS } from './legacy/endpoints.js';
import { LegacyError } from './legacy/errors.js';
import { legacyPlugin, sendAnswer } from './legacy/plugin.js';
import { opsPlugin } from './ops/plugin.js';
import { HTTP_FAULTS, internalError, rawHttpAnswer, renderOutcome } from './pipeline/faults.js';
import { newTransactionId } from './pipeline/flow.js';
import { refusalOf } from './pipeline/steps.js';
import type { RuntimeHolder } from './runtime/runtime.js';
import { signInPlugin } from './signin/routes.js';
import { type IncomingHeaders, legacyHeader } from './translation/request.js';

export type { RuntimeHolder } from './runtime/runtime.js';

export interface ServerOptions {
  logger: Logger;
  /** The process's metrics; a fresh registry when absent. */
  metrics?: Metrics;
}

export async function buildServer(holder: RuntimeHolder, options: ServerOptions): Promise<FastifyInstance> {
  const log = options.logger;
  const metrics = options.metrics ?? new Metrics({ processMetrics: false });
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // ers-bridge logs one line per call itself (the record step), so fastify's own request lines are off.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    exposeHeadRoutes: false,
    bodyLimit: holder.current.rules.server.maxRequestBodyBytes,
    // Fastify leaves Node's request timeout off; a bound protects against clients that never finish a request.
    requestTimeout: 300_000,
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

  app.setNotFoundHandler((req, reply) => sendAnswer(reply, ownAnswer(refusalOf({ kind: 'not-legacy' })!, req)));
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
    comparisons: () => holder.current.comparisons,
    names: Object.fromEntries(ENDPOINTS.map((e) => [e.code, e.name.replace(/ \(versioned\)$/, '')])),
  });
  await app.register(opsPlugin, { holder, metrics });
  return app;
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
