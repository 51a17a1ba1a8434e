/**
 * Wrapper: one retry when the connection failed before any answer (refused, or reset before a byte came back) —
 * only for operations without side effects, only while the retry budget allows, so a struggling APIM is never
 * hammered and nothing is ever done twice.
 */
import type { ApimWrapper } from '../dispatch.js';
import type { RetryBudget } from '../rate-limiter.js';
import { UpstreamError } from '../upstream.js';

export function connectionRetry(budget: RetryBudget): ApimWrapper {
  return (next) => async (call) => {
    budget.call();
    try {
      return await next(call);
    } catch (e) {
      const retryable = e instanceof UpstreamError && e.retryable && !call.signal?.aborted;
      if (!retryable || !call.endpoint.readOnly || !budget.allowRetry()) throw e;
      return next(call);
    }
  };
}
