/**
 * A client-side rate limiter per APIM application: APIM allows about 10 requests a second per application in
 * production (less on the path to live) and answers 429 beyond. A token bucket smooths bursts; callers beyond the
 * rate wait in a bounded FIFO queue; when the queue is full, or the wait would be too long, the call is refused at
 * once with a Retry-After. When APIM itself answers 429, the limiter pauses for its Retry-After.
 */
import { type Clock, systemClock, type Timer } from '../runtime/clock.js';

export interface RateLimit {
  requestsPerSecond: number;
  burst: number;
  maxQueue: number;
  maxWaitMs: number;
}

export class RateLimited extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super(`rate limited; retry after ${retryAfterSeconds} s`);
    this.name = 'RateLimited';
  }
}

/** What `acquire()` answers when the slot is granted at once: one settled promise, shared (rateSlot goes straight on). */
export const SLOT_GRANTED: Promise<void> = Promise.resolve();

/**
 * What the rate-slot and apim-pause wrappers need of an APIM application's budget: this process's RateLimiter, or
 * the budget every replica shares in Redis (shared-rate.ts).
 */
export interface RateBudget {
  /** Resolves when the call may go out; rejects with RateLimited (SLOT_GRANTED when granted at once). */
  acquire(): Promise<void>;
  /** APIM said 429 with Retry-After: hold every call to this application for `seconds`. */
  pause(seconds: number): void;
  /** Forgets APIM's pause (a rules reload). */
  clearPause(): void;
}

/** How a call fared at the limiter: admitted at once or after waiting (queued, then admitted), or refused. */
export type RateOutcome = 'admitted' | 'queued' | 'refused';

export class RateLimiter implements RateBudget {
  private tokens: number;
  private last: number;
  private pausedUntil = 0;
  private readonly queue: Array<{ resolve: () => void; reject: (e: Error) => void; deadline: number }> = [];
  private timer: Timer | undefined;
  /** Calls refused locally (queue full, wait too long, or APIM's pause). */
  refused = 0;

  constructor(
    private readonly limit: RateLimit | undefined,
    private readonly clock: Clock = systemClock,
    /** Told of each outcome (metrics); a queued call is told `queued`, then `admitted` or `refused`. */
    private readonly onOutcome?: (outcome: RateOutcome) => void,
  ) {
    this.tokens = limit?.burst ?? 0;
    this.last = clock.now();
  }

  private now(): number {
    return this.clock.now();
  }

  private refill(): void {
    // Stryker disable next-line ConditionalExpression: refill runs only with a limit (acquire returns first without one; schedule, hence drain, needs one)
    if (!this.limit) return;
    const now = this.now();
    this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.last) / 1000) * this.limit.requestsPerSecond);
    this.last = now;
  }

  /** Waits for a slot, or rejects with RateLimited. */
  acquire(): Promise<void> {
    const now = this.now();
    const maxWait = this.limit?.maxWaitMs ?? 0;
    // Stryker disable next-line EqualityOperator,ConditionalExpression: when not paused the wait is <= 0, never over a maxWaitMs (>= 0 by the rules schema)
    if (this.pausedUntil > now) {
      const wait = this.pausedUntil - now;
      if (wait > maxWait) return this.refuse(wait);
    }
    // Without a limit maxWait is 0, so a pause still running was refused just above.
    if (!this.limit) return SLOT_GRANTED;
    this.refill();
    if (this.queue.length === 0 && this.tokens >= 1 && this.pausedUntil <= now) {
      this.tokens -= 1;
      this.onOutcome?.('admitted');
      return SLOT_GRANTED;
    }
    const ahead = this.queue.length + 1 - Math.floor(this.tokens);
    const expectedWait = Math.max(this.pausedUntil - now, (ahead / this.limit.requestsPerSecond) * 1000);
    if (this.queue.length >= this.limit.maxQueue || expectedWait > maxWait) return this.refuse(expectedWait);
    this.onOutcome?.('queued');
    return new Promise((resolve, reject) => {
      this.queue.push({ resolve, reject, deadline: now + maxWait });
      this.schedule();
    });
  }

  /** APIM said 429 with Retry-After: hold every call to this application until then. */
  pause(seconds: number): void {
    const now = this.now();
    this.pausedUntil = Math.max(this.pausedUntil, now + seconds * 1000);
    // Calls already queued that cannot be served before their own deadline are answered now, not after the pause.
    const keep: typeof this.queue = [];
    for (const q of this.queue) {
      if (q.deadline < this.pausedUntil) {
        this.refused++;
        this.onOutcome?.('refused');
        q.reject(new RateLimited(Math.max(1, Math.ceil((this.pausedUntil - now) / 1000))));
      } else keep.push(q);
    }
    this.queue.splice(0, this.queue.length, ...keep);
  }

  /** Forgets APIM's pause (a rules reload starts afresh: an operator may be reacting to a wrong Retry-After). */
  clearPause(): void {
    this.pausedUntil = 0;
    if (this.queue.length > 0) {
      // Stryker disable next-line OptionalChaining: a non-empty queue always has its timer (every push and every drain that leaves calls schedules one)
      this.timer?.cancel();
      this.timer = undefined;
      this.schedule();
    }
  }

  private refuse(waitMs: number): Promise<never> {
    this.refused++;
    this.onOutcome?.('refused');
    return Promise.reject(new RateLimited(Math.max(1, Math.ceil(waitMs / 1000))));
  }

  private schedule(): void {
    // Stryker disable next-line ConditionalExpression: schedule is called only with a limit (after the queue has a call, which needs one)
    if (this.timer || !this.limit) return;
    const now = this.now();
    // Stryker disable next-line EqualityOperator,ConditionalExpression: with a whole token the other branch is <= 0, and the delay is at least 0 anyway
    const untilToken = this.tokens >= 1 ? 0 : ((1 - this.tokens) / this.limit.requestsPerSecond) * 1000;
    const delay = Math.max(untilToken, this.pausedUntil - now, 0);
    this.timer = this.clock.after(Math.ceil(delay), () => {
      this.timer = undefined;
      this.drain();
    });
  }

  private drain(): void {
    this.refill();
    const now = this.now();
    while (this.queue.length > 0 && this.tokens >= 1 && this.pausedUntil <= now) {
      const next = this.queue.shift()!;
      if (next.deadline < now) {
        this.refused++;
        this.onOutcome?.('refused');
        next.reject(new RateLimited(1));
        continue;
      }
      this.tokens -= 1;
      this.onOutcome?.('admitted');
      next.resolve();
    }
    if (this.queue.length > 0) this.schedule();
  }
}

/**
 * A budget for retries: at most `ratio` of recent calls (and at least `floor` in each window) may be retries, so a
 * failing upstream is never hit with a storm of repeats.
 */
export class RetryBudget {
  private windowStart: number;
  private calls = 0;
  private retries = 0;

  constructor(
    private readonly ratio = 0.1,
    private readonly floor = 3,
    private readonly windowMs = 10_000,
    private readonly clock: Clock = systemClock,
  ) {
    this.windowStart = clock.now();
  }

  private roll(): void {
    const now = this.clock.now();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.calls = 0;
      this.retries = 0;
    }
  }

  call(): void {
    this.roll();
    this.calls++;
  }

  /** Takes a retry from the budget if there is one left. */
  allowRetry(): boolean {
    this.roll();
    if (this.retries >= Math.max(this.floor, this.calls * this.ratio)) return false;
    this.retries++;
    return true;
  }
}
