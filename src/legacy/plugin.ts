/**
 * The legacy surface, `/ers-api/...`, as a fastify plugin: every call runs the flow (src/pipeline/flow.ts) and the
 * answer it returns is sent as it is; the record step runs once the answer is out, or once the client has gone.
 *
 * Fastify's body parsing is switched off here: bodies stay raw streams, so files stream to APIM and every limit and
 * error is ers-bridge's own, legacy-shaped.
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Metrics } from '../admin/metrics.js';
import { runLegacyCall } from '../pipeline/flow.js';
import { type CallEnd, recordCall } from '../pipeline/record.js';
import type { CallRecord, LegacyAnswer, LegacyRequest } from '../pipeline/types.js';
import { BoundedPer } from '../runtime/once-per.js';
import type { Runtime, RuntimeHolder } from '../runtime/runtime.js';
import type { IncomingHeaders } from '../translation/request.js';
import { clientCertificateOf, dropForwardedCertificate } from './client-identity.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];

export interface LegacySurfaceOptions {
  holder: RuntimeHolder;
  log: Logger;
  metrics: Metrics;
}

/** One call between its arrival and its record: the record is written when both the flow and the answer are done. */
interface CallInFlight {
  rt: Runtime;
  started: number;
  record?: CallRecord;
  end?: CallEnd;
  recorded: boolean;
}

/** The legacy surface; register it with `{ prefix: '/ers-api' }`. */
export async function legacyPlugin(app: FastifyInstance, options: LegacySurfaceOptions): Promise<void> {
  const { holder, log, metrics } = options;

  // Bodies stay raw streams: the flow reads them with its own limits.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
  // An empty Content-Type is treated as absent (legacy clients sent JSON sessions without one), not refused.
  // Hooks here take a callback rather than being async: no promise per call for what is synchronous work.
  app.addHook('onRequest', (req, _reply, done) => {
    const type = req.headers['content-type'];
    if (type !== undefined && type.trim() === '') delete req.headers['content-type'];
    done();
  });

  const calls = new WeakMap<FastifyRequest, CallInFlight>();

  /** Records the call once its flow has returned and its answer has ended one way or the other. */
  const settle = (req: FastifyRequest, call: CallInFlight) => {
    if (call.recorded || !call.record || !call.end) return;
    call.recorded = true;
    // Out of the map as soon as it is recorded: an entry whose request is gone is still held by every scavenge until
    // a full GC, so V8 saw every call object survive and made them old from birth, with each call's record reachable
    // from them: ≈ 800 B a call promoted to the old generation, half of all that was (issue 15).
    calls.delete(req);
    call.rt.inFlight--;
    const sinks = { log, metrics, callers: call.rt.callers };
    recordCall(sinks, call.record, req.method, call.end, performance.now() - call.started);
  };
  const ended = (req: FastifyRequest, end: CallEnd) => {
    const call = calls.get(req);
    if (!call || call.end) return;
    call.end = end;
    settle(req, call);
  };

  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    const rt = holder.current; // the rules this request started with
    rt.inFlight++;
    const call: CallInFlight = { rt, started: performance.now(), recorded: false };
    calls.set(req, call);
    let outcome: Awaited<ReturnType<typeof runLegacyCall>> | undefined;
    try {
      outcome = await runLegacyCall(rt, legacyRequestOf(rt, req), log);
    } finally {
      // The flow answers every fault itself; a record is kept even if it ever did not.
      call.record = outcome?.record ?? { aCode: '-', route: '-', reason: 'INTERNAL_ERROR' };
      settle(req, call);
    }
    return writeAnswer(reply, outcome.answer);
  };

  // The record step: fastify fires onResponse once an answer is out, and onRequestAbort instead when the client
  // leaves first (mid-upload, or while APIM is still answering).
  app.addHook('onResponse', (req, reply, done) => {
    ended(req, { status: reply.statusCode });
    done();
  });
  app.addHook('onRequestAbort', (req, done) => {
    ended(req, { aborted: true });
    done();
  });

  app.route({ method: METHODS, url: '/', handler: handle });
  app.route({ method: METHODS, url: '/*', handler: handle });
}

/** The call as the flow takes it: who presented which certificate, and the headers without forwarded ones. */
function legacyRequestOf(rt: Runtime, req: FastifyRequest): LegacyRequest {
  const headers = req.headers as IncomingHeaders;
  const clientCertificate = clientCertificateOf(rt.listener, req.raw.socket, headers, rt.shared.clock.now());
  const rawHeaders = dropForwardedCertificate(headers, req.raw.rawHeaders);
  return {
    method: req.method,
    rawUrl: req.raw.url ?? '/',
    headers,
    rawHeaders,
    body: req.raw as Readable,
    legacyBase: legacyBaseFor(rt, req),
    ...(clientCertificate ? { clientCertificate } : {}),
  };
}

/** The legacy base URL as this client reaches ers-bridge: configured, or from the request's Host. */
function legacyBaseFor(rt: Runtime, req: FastifyRequest): string {
  if (rt.rules.legacy.publicBaseUrl) return rt.rules.legacy.publicBaseUrl;
  const host = req.headers.host ?? '';
  const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true;
  return BASES_BY_HOST.of(rt, `${encrypted ? 'https' : 'http'}://${host}`);
}

/** The legacy base per scheme and Host a runtime is reached by (few: only allowed hosts get this far). */
const BASES_BY_HOST = new BoundedPer<Runtime, string>(64, (rt, origin) => {
  const at = origin.indexOf('://');
  const proto = origin.slice(0, at);
  const host = origin.slice(at + 3);
  const safeHost =
    host && /^[A-Za-z0-9.\-[\]:]{1,255}$/.test(host) ? host : `${rt.rules.server.host}:${rt.rules.server.port}`;
  return `${proto}://${safeHost}/ers-api`;
});

/**
 * Writes the flow's answer on the raw response: status and headers in one writeHead, the body in one write. Fastify's
 * reply.send would parse the content type, lower-case each name and merge two header lists again on every call
 * (issue 15); the flow's answers need none of that. A streamed body (a file) still goes through reply.send, which
 * pipes it and handles its errors. The onResponse hook (the record step) still runs: fastify listens for the end.
 */
export function writeAnswer(reply: FastifyReply, answer: LegacyAnswer): FastifyReply {
  const body = answer.body;
  if (body !== undefined && !Buffer.isBuffer(body)) return sendAnswer(reply, answer);
  const status = answer.status;
  // No body for 1xx, 204 and 304 (RFC 9110 §8.6), so neither a length nor a type.
  const bodiless = status < 200 || status === 204 || status === 304;
  const headers: string[] = [];
  let hasType = false;
  let givenLength: string | undefined;
  for (const name in answer.headers) {
    const value = answer.headers[name];
    if (value === undefined) continue;
    if (name === 'content-length') {
      givenLength = value; // a HEAD answer's; otherwise computed below from what is sent
      continue;
    }
    if (name === 'content-type') {
      if (bodiless) continue;
      hasType = true;
    }
    headers.push(name, value);
  }
  if (!bodiless) {
    if (body !== undefined && !hasType) headers.push('content-type', 'application/octet-stream');
    // A HEAD answer keeps the length it was given (its GET's); nothing is written (Node sends no body for HEAD).
    if (body !== undefined) headers.push('content-length', String(body.length));
    else if (reply.request.method !== 'HEAD') headers.push('content-length', '0');
    else if (givenLength !== undefined) headers.push('content-length', givenLength);
  }
  const res = reply.raw;
  // Throws on a header Node refuses, before anything is sent: fastify's error handler then answers instead.
  res.writeHead(status, headers);
  reply.hijack();
  if (body === undefined || bodiless) res.end();
  else res.end(body);
  return reply;
}

/**
 * Sends a legacy answer through fastify (answers made outside the flow: the router's, the hooks', the error
 * handler's, and streamed bodies). The transaction id keeps its exact legacy spelling: fastify lower-cases names given to
 * reply.header(), Node keeps the case given to setHeader(), and a legacy client may look the name up as spelt.
 */
export function sendAnswer(reply: FastifyReply, answer: LegacyAnswer): FastifyReply {
  reply.code(answer.status);
  const headers = answer.headers;
  for (const name in headers) {
    const value = headers[name];
    if (name !== 'X_ERS_TRANSACTION_ID') reply.header(name, value);
    else if (value) reply.raw.setHeader(name, value);
  }
  return answer.body === undefined ? reply.send() : reply.send(answer.body);
}
