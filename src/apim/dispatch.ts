/**
 * The APIM side as composed wrappers, after undici's interceptors: each wrapper takes the next `dispatch` and returns
 * one that does one job around it (a rate-limit slot, APIM's 429 pause, timing, the bearer token, one retry after a
 * refused connection). `composeApim` puts them together around the forward step, outermost first.
 */
import type { Dispatcher } from 'undici';
import type { EndpointDef } from '../legacy/endpoints.js';
import type { ApimRequestPlan } from '../translation/request.js';
import type { UpstreamBody } from './upstream.js';

/** A request body that can be sent more than once: the first send may stream, later ones replay the bytes. */
export interface RequestBody {
  /** What to send on the next attempt. */
  next(): Promise<UpstreamBody>;
  /** Its length, when known before sending. */
  length?: number;
  /** There is no body at all (so `next()` need not be awaited). */
  empty?: boolean;
}

/** One call to APIM, as the wrappers see it. */
export interface ApimCall {
  endpoint: EndpointDef;
  /** The rewritten request: method, path and headers, without the bearer token (a wrapper adds it). */
  request: ApimRequestPlan;
  body: RequestBody;
  signal?: AbortSignal | undefined;
}

/** APIM's answer (any status) and what the wrappers learnt on the way. */
export interface ApimResult {
  response: Dispatcher.ResponseData;
  /** A 401 made ers-bridge renew the token and send the call again. */
  tokenRenewed?: boolean;
  /** From after the rate-limit slot to APIM's answer headers, all attempts included. */
  upstreamMs?: number;
}

export type ApimDispatch = (call: ApimCall) => Promise<ApimResult>;
export type ApimWrapper = (next: ApimDispatch) => ApimDispatch;

/** `composeApim([a, b, c], forward)` is `a(b(c(forward)))`: the first wrapper sees the call first. */
export function composeApim(wrappers: readonly ApimWrapper[], forward: ApimDispatch): ApimDispatch {
  return wrappers.reduceRight<ApimDispatch>((next, wrap) => wrap(next), forward);
}

/** A body sent once or replayed: a buffer (or nothing) is the same every time. */
export function bufferBody(bytes: Buffer | undefined): RequestBody {
  if (bytes === undefined) return NO_BODY;
  return { next: async () => bytes, length: bytes.length };
}

/** The body of a call that has none (most are GETs): one shared object, not one a call. */
const NO_BODY: RequestBody = Object.freeze({ next: async () => undefined, empty: true });
