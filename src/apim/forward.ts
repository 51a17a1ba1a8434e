/** The forward step: the call, as the wrappers left it, sent to APIM through the application's pool partition. */
import type { ApimDispatch } from './dispatch.js';
import type { Upstream } from './upstream.js';

export function forwardTo(upstream: Upstream, partition?: string): ApimDispatch {
  return async (call) => ({
    response: await upstream.request({
      method: call.request.method,
      path: call.request.path,
      headers: call.request.headers,
      body: await call.body.next(),
      ...(call.signal ? { signal: call.signal } : {}),
      ...(partition ? { partition } : {}),
    }),
  });
}
