/**
 * Wrapper: a slot among the calls in flight to this APIM application (its concurrency cap), held until APIM's answer
 * headers are in. Beyond the cap and its bounded queue: ApplicationBusy, a legacy 503 with Retry-After.
 */
import type { ConcurrencySlots } from '../concurrency.js';
import type { ApimCall, ApimDispatch, ApimResult, ApimWrapper } from '../dispatch.js';

export function concurrencySlot(slots: ConcurrencySlots): ApimWrapper {
  return (next) => (call) => {
    // A free slot is taken at once (no promise to wait on); otherwise the call waits for one (or is refused).
    const release = slots.tryAcquire();
    if (release) return holding(next, call, release);
    return slots.acquire().then((r) => holding(next, call, r));
  };
}

/** The call with the slot held until its answer (or failure), then given back: exactly once either way. */
function holding(next: ApimDispatch, call: ApimCall, release: () => void): Promise<ApimResult> {
  let answer: Promise<ApimResult>;
  try {
    answer = next(call);
  } catch (e) {
    release();
    return Promise.reject(e);
  }
  return answer.then(
    (result) => {
      release();
      return result;
    },
    (e: unknown) => {
      release();
      throw e;
    },
  );
}
