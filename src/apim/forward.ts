/** The forward step: the call, as the wrappers left it, sent to APIM through the application's pool partition. */
import type { ApimDispatch } from './dispatch.js';
import type { Upstream, UpstreamRequest } from './upstream.js';

export function forwardTo(upstream: Upstream, partition?: string): ApimDispatch {
  return async (call) => {
    // Most calls (GETs) have no body: nothing to wait for.
    const body = call.body.empty ? undefined : await call.body.next();
    const request: UpstreamRequest = {
      method: call.request.method,
      path: call.request.path,
      headers: call.request.headers,
      body,
    };
    if (call.signal) request.signal = call.signal;
    if (partition) request.partition = partition;
    return { response: await upstream.request(request) };
  };
}
