/**
 * What a successor's steps share: the call's context, and one APIM call of a successor built as any APIM call is.
 */
import { type ApimCall, type ApimDispatch, bufferBody } from '../apim/dispatch.js';
import { ENDPOINTS, type EndpointDef } from '../legacy/endpoints.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Session } from '../sessions/session.js';
import type { IncomingHeaders } from '../translation/request.js';
import type { BaseUrls } from '../translation/response.js';
import { rewriteForApim } from './apim-side.js';
import type { Bodies } from './bodies.js';

/** Everything a successor needs of the call: the APIM side's dispatch and what the flow decided. */
export interface SuccessorContext {
  dispatch: ApimDispatch;
  rt: Runtime;
  endpoint: EndpointDef;
  params: Record<string, string>;
  headers: IncomingHeaders;
  session: Session;
  urls: BaseUrls;
  bodies: Bodies;
  correlationId: string;
  signal: AbortSignal | undefined;
}

/** The operation of an A-code as APIM offers it (the unversioned path where there are two). */
export function operation(code: string): EndpointDef {
  const found = ENDPOINTS.find((e) => e.code === code);
  if (!found) throw new Error(`no endpoint ${code}`);
  return found;
}

/**
 * One APIM call of a successor, rewritten as any call is (the user's role headers, the correlation id) from the
 * headers given — only those the step needs: If-Match only where the successor takes the client's, and no Accept of
 * the client's (it asked for A006's file or A021's JSON, not for what A042 or A016 answer with).
 */
export function successorCall(
  ctx: SuccessorContext,
  endpoint: EndpointDef,
  params: Record<string, string>,
  options: { body?: Buffer; ifMatch?: string } = {},
): ApimCall {
  const pick = (name: string) => (typeof ctx.headers[name] === 'string' ? { [name]: ctx.headers[name] } : {});
  const headers: IncomingHeaders = {
    ...pick('user-agent'),
    ...pick('accept-language'),
    ...(options.body ? { 'content-type': 'application/fhir+json' } : {}),
    ...(options.ifMatch ? { 'if-match': options.ifMatch } : {}),
  };
  return rewriteForApim({
    endpoint,
    params,
    query: '',
    headers,
    apimBase: ctx.rt.apimBase,
    correlationId: ctx.correlationId,
    session: ctx.session,
    body: bufferBody(options.body),
    signal: ctx.signal,
  });
}
