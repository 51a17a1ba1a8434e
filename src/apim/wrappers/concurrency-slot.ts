/**
 * Wrapper: a slot among the calls in flight to this APIM application (its concurrency cap), held until APIM's answer
 * headers are in. Beyond the cap and its bounded queue: ApplicationBusy, a legacy 503 with Retry-After.
 */
import type { ConcurrencySlots } from '../concurrency.js';
import type { ApimWrapper } from '../dispatch.js';

export function concurrencySlot(slots: ConcurrencySlots): ApimWrapper {
  return (next) => async (call) => {
    // A free slot is taken at once (no promise to wait on); otherwise the call waits for one (or is refused).
    const release = slots.tryAcquire() ?? (await slots.acquire());
    try {
      return await next(call);
    } finally {
      release();
    }
  };
}
