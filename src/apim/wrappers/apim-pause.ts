/**
 * Wrapper: when APIM answers 429, every call to that APIM application waits for APIM's Retry-After (the limiter
 * pauses; calls already queued that cannot wait that long are answered at once) — but never longer than
 * `maxPauseSeconds`: one answer with a huge Retry-After must not lock an application out for an hour.
 */
import { type Clock, systemClock } from '../../runtime/clock.js';
import type { ApimWrapper } from '../dispatch.js';
import type { RateBudget } from '../rate-limiter.js';

/** Pure: APIM's Retry-After in seconds (a number or an HTTP date); 1 when absent or unreadable; at most an hour. */
export function retryAfterSeconds(value: string | string[] | undefined, now: number): number {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return 1;
  const n = Number(v);
  if (Number.isFinite(n) && n >= 0) return Math.min(Math.ceil(n), 3600);
  const date = Date.parse(v);
  return Number.isNaN(date) ? 1 : Math.min(Math.max(1, Math.ceil((date - now) / 1000)), 3600);
}

export function apimPause(limiter: RateBudget, clock: Clock = systemClock, maxPauseSeconds = 3600): ApimWrapper {
  return (next) => (call) =>
    next(call).then((result) => {
      if (result.response.statusCode === 429) {
        const asked = retryAfterSeconds(result.response.headers['retry-after'], clock.now());
        limiter.pause(Math.min(asked, maxPauseSeconds));
      }
      return result;
    });
}
