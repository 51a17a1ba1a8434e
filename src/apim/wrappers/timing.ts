/** Wrapper: how long APIM took, all attempts included (from after the rate-limit slot to the answer's headers). */
import type { ApimWrapper } from '../dispatch.js';

export function timing(): ApimWrapper {
  return (next) => async (call) => {
    const started = performance.now();
    const result = await next(call);
    // Set on the result the inner wrappers made for this call (a copy of it per call was measurable: issue 15).
    result.upstreamMs = Math.round((performance.now() - started) * 1000) / 1000;
    return result;
  };
}
