/**
 * The client-side rate limit per APIM application, as units: RateLimiter (token bucket, bounded FIFO queue, APIM's
 * pause) on fake timers, and RetryBudget on an injected clock. test/hardening/rate-limit.test.ts has the same limits
 * end to end, through a real ers-bridge.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type RateLimit, RateLimited, RateLimiter, RetryBudget } from '../../src/apim/rate-limiter.js';
import { clockAt, systemClock } from '../../src/runtime/clock.js';

const LIMIT: RateLimit = { requestsPerSecond: 5, burst: 5, maxQueue: 5, maxWaitMs: 1500 };

interface Settled {
  state: 'pending' | 'resolved' | 'rejected';
  at: number;
  error?: unknown;
}

/** Observes when (on the fake clock) a limiter promise settles. */
function watch(p: Promise<void>): Settled {
  const s: Settled = { state: 'pending', at: -1 };
  p.then(
    () => Object.assign(s, { state: 'resolved', at: Date.now() }),
    (error: unknown) => Object.assign(s, { state: 'rejected', at: Date.now(), error }),
  );
  return s;
}

describe('RateLimiter (unit, fake timers)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  const limiter = (limit: RateLimit | undefined) => {
    vi.useFakeTimers({ now: 0 });
    return new RateLimiter(limit, systemClock);
  };

  it('a burst: `burst` calls at once, `maxQueue` queued, the rest refused at once with Retry-After', async () => {
    const l = limiter(LIMIT);
    const calls = Array.from({ length: 8 + 5 + 2 }, () => watch(l.acquire()));
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.slice(0, 5).map((c) => c.state)).toEqual(Array(5).fill('resolved'));
    expect(calls.slice(5, 10).map((c) => c.state)).toEqual(Array(5).fill('pending'));
    const refused = calls.slice(10);
    expect(refused.map((c) => c.state)).toEqual(Array(5).fill('rejected'));
    for (const r of refused) {
      expect(r.error).toBeInstanceOf(RateLimited);
      // six ahead at 5/s: 1.2 s → Retry-After 2
      expect((r.error as RateLimited).retryAfterSeconds).toBe(2);
    }
    expect(l.refused).toBe(5);
  });

  it('queued calls are released one every 1/rate seconds, in order', async () => {
    const l = limiter(LIMIT);
    for (let i = 0; i < 5; i++) await l.acquire();
    const queued = Array.from({ length: 5 }, () => watch(l.acquire()));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(queued.map((q) => q.state)).toEqual(Array(5).fill('resolved'));
    expect(queued.map((q) => q.at)).toEqual([200, 400, 600, 800, 1000]);
  });

  it('a call whose expected wait exceeds maxWaitMs is refused even with room in the queue', async () => {
    const l = limiter({ ...LIMIT, maxQueue: 100 });
    for (let i = 0; i < 5; i++) await l.acquire();
    const queued = Array.from({ length: 7 }, () => watch(l.acquire())); // waits 200 … 1400 ms
    const late = watch(l.acquire()); // 1600 ms > 1500
    await vi.advanceTimersByTimeAsync(0);
    expect(late.state).toBe('rejected');
    expect((late.error as RateLimited).retryAfterSeconds).toBe(2);
    await vi.advanceTimersByTimeAsync(1_400);
    expect(queued.every((q) => q.state === 'resolved')).toBe(true);
  });

  it('idle time refills the bucket, capped at burst', async () => {
    const l = limiter(LIMIT);
    for (let i = 0; i < 5; i++) await l.acquire();
    await vi.advanceTimersByTimeAsync(10_000);
    const next = Array.from({ length: 6 }, () => watch(l.acquire()));
    await vi.advanceTimersByTimeAsync(0);
    expect(next.map((n) => n.state)).toEqual([...Array(5).fill('resolved'), 'pending']);
  });

  it("APIM's pause: refused at once while the wait exceeds maxWaitMs; within it, held until the pause ends", async () => {
    const l = limiter(LIMIT);
    l.pause(2);
    const early = watch(l.acquire());
    await vi.advanceTimersByTimeAsync(0);
    expect(early.state).toBe('rejected');
    expect((early.error as RateLimited).retryAfterSeconds).toBe(2);
    await vi.advanceTimersByTimeAsync(600); // 1.4 s of pause left ≤ maxWaitMs
    const held = watch(l.acquire());
    await vi.advanceTimersByTimeAsync(1_399);
    expect(held.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(held).toMatchObject({ state: 'resolved', at: 2_000 });
  });

  it('without a configured limit, a pause refuses every call until it ends, then lets all through', async () => {
    const l = limiter(undefined);
    l.pause(3);
    const during = watch(l.acquire());
    await vi.advanceTimersByTimeAsync(0);
    expect(during.state).toBe('rejected');
    expect((during.error as RateLimited).retryAfterSeconds).toBe(3);
    await vi.advanceTimersByTimeAsync(3_000);
    const after = Array.from({ length: 50 }, () => watch(l.acquire()));
    await vi.advanceTimersByTimeAsync(0);
    expect(after.every((a) => a.state === 'resolved')).toBe(true);
  });

  // APIM's pause re-judges calls already queued: they settle within maxWaitMs of queuing, not after the pause.
  it('a call already queued when APIM pauses is settled within maxWaitMs of queuing, not held for the pause', async () => {
    const l = limiter({ ...LIMIT, burst: 1 });
    await l.acquire();
    const queued = watch(l.acquire()); // expected wait 200 ms, deadline 1500 ms
    await vi.advanceTimersByTimeAsync(50);
    l.pause(4); // APIM answered an earlier call with 429, Retry-After: 4
    await vi.advanceTimersByTimeAsync(LIMIT.maxWaitMs - 50);
    expect(queued.state, 'still waiting after maxWaitMs').not.toBe('pending');
    expect(queued.at).toBeLessThanOrEqual(LIMIT.maxWaitMs);
    if (queued.state === 'rejected') {
      // refused because of the pause: it should say how long the pause still lasts
      expect((queued.error as RateLimited).retryAfterSeconds).toBeGreaterThanOrEqual(3);
    }
  });
});

describe('RetryBudget (unit, injected clock)', () => {
  const budget = () => {
    let clock = 0;
    const b = new RetryBudget(
      0.1,
      3,
      10_000,
      clockAt(() => clock),
    );
    return { b, advance: (ms: number) => (clock += ms) };
  };

  it('the floor: at least 3 retries in a window, even with few calls', () => {
    const { b } = budget();
    b.call();
    expect([b.allowRetry(), b.allowRetry(), b.allowRetry(), b.allowRetry()]).toEqual([true, true, true, false]);
  });

  it.each([10, 20, 30, 40, 60, 100, 200])('%i calls in a window: at most max(3, a tenth of the calls) retries', (n) => {
    const { b } = budget();
    let allowed = 0;
    for (let i = 0; i < n; i++) {
      b.call();
      if (b.allowRetry()) allowed++;
    }
    expect(allowed).toBe(Math.max(3, n / 10));
  });

  it('a new window starts with a fresh budget', () => {
    const { b, advance } = budget();
    for (let i = 0; i < 20; i++) {
      b.call();
      b.allowRetry(); // 3 retries: the floor
    }
    b.call();
    advance(9_999);
    expect(b.allowRetry()).toBe(false);
    advance(1);
    b.call();
    expect(b.allowRetry()).toBe(true);
  });
});
