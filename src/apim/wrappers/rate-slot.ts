/**
 * Wrapper: a slot under the APIM application's rate limit before the call goes out (waiting in a bounded queue).
 * Beyond the queue the limiter throws RateLimited, which the fault table answers as a legacy 429 with Retry-After.
 */
import type { ApimWrapper } from '../dispatch.js';
import type { RateLimiter } from '../rate-limiter.js';

export function rateSlot(limiter: RateLimiter): ApimWrapper {
  return (next) => async (call) => {
    await limiter.acquire();
    return next(call);
  };
}
