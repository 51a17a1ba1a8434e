/**
 * The bodies step: the client's request body, bounded, as each side needs it. FHIR JSON is read whole (its links
 * are rewritten for APIM; the legacy host gets it unchanged). Files stream to the one side that takes them, kept for
 * a resend — or are read whole when a copy must also go to the other side, or be recorded.
 */
import type { Readable } from 'node:stream';
import { bufferBody, type RequestBody } from '../apim/dispatch.js';
import type { UpstreamBody } from '../apim/upstream.js';
import { withoutUtf8Bom } from '../http/media-type.js';
import type { EndpointDef } from '../legacy/endpoints.js';
import { checkDeclaredLength, ReplayableBody, readBounded } from '../translation/body.js';
import type { IncomingHeaders } from '../translation/request.js';
import { type BaseUrls, rewriteLegacyUrlsIn } from '../translation/response.js';

export interface Bodies {
  apim: RequestBody;
  legacy: { first: UpstreamBody; length?: number };
  /** The body as the client sent it, when it was read whole (for the recorder). */
  whole?: Buffer;
}

export async function prepareBodies(
  endpoint: EndpointDef,
  headers: IncomingHeaders,
  source: Readable,
  limit: number,
  urls: BaseUrls,
  readWhole: boolean,
): Promise<Bodies> {
  if (endpoint.requestBody === 'none') return { apim: bufferBody(undefined), legacy: { first: undefined } };
  const declared = typeof headers['content-length'] === 'string' ? headers['content-length'] : undefined;
  checkDeclaredLength(declared, limit);
  if (endpoint.requestBody === 'fhir-json' || readWhole) {
    const read = await readBounded(source, limit);
    // A UTF-8 BOM goes before anything reads a FHIR JSON body (APIM refuses it; the legacy host, the recorder and
    // comparisons get the same JSON without it). Files keep every byte.
    const raw = endpoint.requestBody === 'fhir-json' ? withoutUtf8Bom(read) : read;
    const forApim = endpoint.requestBody === 'fhir-json' ? rewriteLegacyUrlsIn(raw, urls) : raw;
    return { apim: bufferBody(forApim), legacy: { first: raw, length: raw.length }, whole: raw };
  }
  const replayable = new ReplayableBody(source, limit);
  const length = declared !== undefined ? Number(declared) : undefined;
  const sized = length !== undefined ? { length } : {};
  return {
    apim: { next: () => replayable.next(), ...sized },
    legacy: { first: replayable.live(), ...sized },
  };
}
