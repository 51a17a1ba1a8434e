/**
 * What both stand-ins (APIM's and the legacy host's) do with every request before answering it: keep its body raw
 * (they parse forms, compare JSON and take files themselves) and record it as it arrived, header case and all, so
 * tests and integrators can see exactly what ers-bridge sent.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RecordedRequest } from './types.js';

/** The largest body a stand-in reads (e-RS files are at most 5 MB). */
export const BODY_LIMIT_BYTES = 6 * 1024 * 1024;

/** The request's headers as sent: names in their original case, repeats kept (the stand-ins record them so). */
export function rawHeaderPairs(raw: IncomingMessage): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.rawHeaders.length; i += 2) pairs.push([raw.rawHeaders[i]!, raw.rawHeaders[i + 1]!]);
  return pairs;
}

/** Every body as a raw Buffer, whatever its Content-Type. */
export function keepRawBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT_BYTES }, (_req, body, done) => {
    done(null, body);
  });
}

/** The record of a request as it arrived; its body is filled in once read. */
export function recordOf(req: FastifyRequest): RecordedRequest {
  return {
    method: req.method,
    url: req.url,
    rawHeaders: rawHeaderPairs(req.raw),
    headers: { ...req.headers },
    body: Buffer.alloc(0),
    at: Date.now(),
  };
}
