/**
 * Wrapper: one retry when the connection failed before any answer (refused, or reset before a byte came back) —
 * only for operations without side effects, only while the retry budget allows, so a struggling APIM is never
 * hammered and nothing is ever done twice.
 */
import type { ApimResult, ApimWrapper } from '../dispatch.js';
import type { RetryBudget } from '../rate-limiter.js';
import { UpstreamError } from '../upstream.js';

export function connectionRetry(budget: RetryBudget): ApimWrapper {
  return (next) => (call) => {
    budget.call();
    let first: Promise<ApimResult>;
    try {
      first = next(call);
    } catch (e) {
      first = Promise.reject(e);
    }
    return first.catch((e: unknown) => {
      const retryable = e instanceof UpstreamError && e.retryable && !call.signal?.aborted;
      if (!retryable || !call.endpoint.readOnly || !budget.allowRetry()) throw e;
      return next(call);
    });
  };
}
