/** The forward step: the call, as the wrappers left it, sent to APIM through the application's pool partition. */
import type { ApimCall, ApimDispatch, ApimResult } from './dispatch.js';
import type { Upstream, UpstreamBody, UpstreamRequest } from './upstream.js';

export function forwardTo(upstream: Upstream, partition?: string): ApimDispatch {
  return (call) => {
    // Most calls (GETs) have no body: nothing to wait for.
    if (call.body.empty) return send(upstream, call, undefined, partition);
    return call.body.next().then((body) => send(upstream, call, body, partition));
  };
}

function send(upstream: Upstream, call: ApimCall, body: UpstreamBody, partition?: string): Promise<ApimResult> {
  const request: UpstreamRequest = {
    method: call.request.method,
    path: call.request.path,
    headers: call.request.headers,
    body,
  };
  if (call.signal) request.signal = call.signal;
  if (partition) request.partition = partition;
  return upstream.request(request).then(asResult);
}

function asResult(response: ApimResult['response']): ApimResult {
  return { response };
}
