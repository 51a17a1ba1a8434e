/**
 * Wrapper: a slot under the APIM application's rate limit before the call goes out (waiting in a bounded queue).
 * Beyond the queue the limiter throws RateLimited, which the fault table answers as a legacy 429 with Retry-After.
 */
import type { ApimWrapper } from '../dispatch.js';
import { type RateBudget, SLOT_GRANTED } from '../rate-limiter.js';

export function rateSlot(limiter: RateBudget): ApimWrapper {
  return (next) => (call) => {
    const slot = limiter.acquire();
    // A slot granted at once (the usual case) goes straight on, without waiting a promise turn.
    return slot === SLOT_GRANTED ? next(call) : slot.then(() => next(call));
  };
}
