/** Wrapper: how long APIM took, all attempts included (from after the rate-limit slot to the answer's headers). */
import type { ApimWrapper } from '../dispatch.js';

export function timing(): ApimWrapper {
  return (next) => (call) => {
    const started = performance.now();
    return next(call).then((result) => {
      // Set on the result the inner wrappers made for this call (a copy of it per call was measurable: issue 15).
      result.upstreamMs = Math.round((performance.now() - started) * 1000) / 1000;
      return result;
    });
  };
}
