/**
 * A001 (create session) calls per ASID: a token bucket (`sessions.a001PerSecondPerAsid`: rate per second, burst),
 * checked before any other work of the A001 — no body read, no store write, no CIS2 or APIM call. Beyond it the
 * call is refused at once with the seconds until a token is back (a legacy 429 with Retry-After).
 *
 * One bucket per configured ASID (it lives on the Caller), so there are never more buckets than ASIDs in the rules,
 * whatever XAPI_ASID values arrive. Per process: with several replicas each counts its own A001s.
 */
import type { Clock } from '../runtime/clock.js';

export interface CreateRateLimit {
  /** Tokens per second. */
  rate: number;
  /** The bucket's size: A001s allowed at once after a quiet spell. */
  burst: number;
}

/** Too many A001s for this ASID just now. */
export class SessionRateLimited extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super(`too many A001 calls; retry after ${retryAfterSeconds} s`);
    this.name = 'SessionRateLimited';
  }
}

export class CreateRate {
  private tokens: number;
  private last: number;

  constructor(
    readonly limit: CreateRateLimit,
    private readonly clock: Clock,
  ) {
    this.tokens = limit.burst;
    this.last = clock.now();
  }

  /** Takes one token, or throws SessionRateLimited. */
  take(): void {
    const now = this.clock.now();
    // A clock stepped back adds nothing (and takes nothing away).
    const elapsed = Math.max(0, now - this.last);
    this.tokens = Math.min(this.limit.burst, this.tokens + (elapsed / 1000) * this.limit.rate);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return;
    }
    throw new SessionRateLimited(Math.max(1, Math.ceil((1 - this.tokens) / this.limit.rate)));
  }
}
