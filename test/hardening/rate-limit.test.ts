/**
 * Hardening: ers-bridge's own rate limit per APIM application (`apim.rateLimit`) and APIM's 429 pauses.
 *
 * - Unit: RateLimiter (token bucket, bounded FIFO queue, APIM pause) and RetryBudget, on fake timers and an injected
 *   clock.
 * - End to end: a burst of legacy calls against the APIM stand-in — refused ones get a local 429 at once and never
 *   reach APIM, queued ones are smoothed to the configured rate; APIM's own 429 pauses the application.
 */
import type { Server } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type RateLimit, RateLimited, RateLimiter, RetryBudget } from '../../src/apim/rate-limiter.js';
import { clockAt, systemClock } from '../../src/runtime/clock.js';
import { expectLegacyOutcome, type Harness, openSession, startHarness } from '../helpers/harness.js';
import { A005, apimAt, type FakeServer, fakeHttp, referral, sleep, timedCall } from './support.js';

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

  // BUG (src/apim/rate-limiter.ts, pause() and drain()): a call admitted to the queue because its expected wait was
  // within maxWaitMs is not re-checked when APIM's pause arrives afterwards. It waits for the whole pause (APIM's
  // Retry-After, up to 3600 s), and drain() then refuses it as past its deadline, with Retry-After 1, at the very
  // moment a slot is free.
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

describe('apim.rateLimit end to end', () => {
  let h: Harness | undefined;
  let fake: FakeServer<Server> | undefined;
  afterEach(async () => {
    await h?.close();
    await fake?.close();
    h = undefined;
    fake = undefined;
  });

  it('30 concurrent calls: burst + queue served and smoothed to 5/s, the rest a local 429 at once', async () => {
    h = await startHarness({
      rulesExtra: (rules) => {
        rules.apim.rateLimit = { ...LIMIT };
      },
    });
    const key = await openSession(h);
    expect((await timedCall(h, key, 'GET', A005())).res.status).toBe(200); // token fetched, one slot used
    await sleep(400); // the bucket refills to its burst
    const receivedBefore = h.standIn.received.length;
    const started = Date.now();
    const harness = h;
    const results = await Promise.all(
      Array.from({ length: 30 }, () => timedCall(harness, key, 'GET', A005(), {}, 5_000)),
    );
    const ok = results.filter((r) => r.res.status === 200);
    const refused = results.filter((r) => r.res.status !== 200);
    // exactly burst + maxQueue, give or take what the bucket refills while the burst arrives
    expect(ok.length).toBeGreaterThanOrEqual(LIMIT.burst + LIMIT.maxQueue);
    expect(ok.length).toBeLessThanOrEqual(LIMIT.burst + LIMIT.maxQueue + 2);
    for (const r of refused) {
      expectLegacyOutcome(r.res, 429, 'RATE_LIMITED_LOCALLY');
      expect(String(r.res.headers['retry-after'])).toMatch(/^[1-9]\d*$/);
      expect(r.ms, 'refused at once, not after queuing').toBeLessThan(500);
    }
    // no upstream call for the refused ones
    const burst = h.standIn.received.slice(receivedBefore);
    expect(burst).toHaveLength(ok.length);
    // smoothed: after the first `burst`, no faster than 5/s (one every 200 ms), with 80 ms of tolerance
    const at = burst.map((r) => r.at).sort((a, b) => a - b);
    const t0 = at[0]!;
    expect(t0 - started).toBeLessThan(500);
    expect(at[LIMIT.burst - 1]! - t0).toBeLessThan(200);
    for (let i = LIMIT.burst; i < at.length; i++) {
      const floor = (i - LIMIT.burst + 1) * (1000 / LIMIT.requestsPerSecond) - 80;
      expect(at[i]! - t0, `call ${i + 1} reached APIM too early`).toBeGreaterThanOrEqual(floor);
    }
    expect(at.at(-1)! - t0).toBeLessThanOrEqual(LIMIT.maxWaitMs + 400);
  });

  it("APIM's 429 with Retry-After: 2 pauses the application: held back locally, then through again", async () => {
    let first429At = 0;
    fake = await fakeHttp((_req, res) => {
      if (fake!.hits.length === 1) {
        first429At = Date.now();
        res.writeHead(429, { 'retry-after': '2' }).end();
        return;
      }
      const body = referral('000000070000');
      res.writeHead(200, { 'content-type': 'application/fhir+json', etag: 'W/"5"' }).end(body);
    });
    const url = fake.url;
    h = await startHarness({
      rulesExtra: (rules) => {
        rules.apim.baseUrl = apimAt(url);
        rules.apim.rateLimit = { ...LIMIT };
      },
    });
    const key = await openSession(h);
    const first = await timedCall(h, key, 'GET', A005());
    expectLegacyOutcome(first.res, 429, 'UPSTREAM_RATE_LIMITED');
    expect(first.res.headers['retry-after']).toBe('2');

    // The next calls within the pause (more than maxWaitMs of it left) are refused locally, at once.
    for (let i = 0; i < 3; i++) {
      const { res, ms } = await timedCall(h, key, 'GET', A005());
      expectLegacyOutcome(res, 429, 'RATE_LIMITED_LOCALLY');
      expect(res.headers['retry-after']).toBe('2');
      expect(ms).toBeLessThan(300);
    }
    expect(fake.hits).toHaveLength(1);

    // With less than maxWaitMs of the pause left, a call waits for its end and only then reaches APIM.
    await sleep(Math.max(0, first429At + 800 - Date.now()));
    const held = await timedCall(h, key, 'GET', A005());
    expect(held.res.status).toBe(200);
    expect(fake.hits).toHaveLength(2);
    expect(fake.hits[1]!.at - first429At).toBeGreaterThanOrEqual(2_000 - 20);

    // After the pause: straight through.
    const after = await timedCall(h, key, 'GET', A005());
    expect(after.res.status).toBe(200);
    expect(after.ms).toBeLessThan(300);
    expect(fake.hits).toHaveLength(3);
  });

  // BUG (see the unit test above), as a legacy client sees it: calls queued under apim.rateLimit when APIM's 429
  // arrives hang for APIM's whole Retry-After instead of at most maxWaitMs, then get a local 429 anyway.
  it('calls queued when APIM answers 429 are answered within maxWaitMs, not held for the whole pause', async () => {
    fake = await fakeHttp((_req, res) => {
      if (fake!.hits.length === 1) {
        setTimeout(() => res.writeHead(429, { 'retry-after': '4' }).end(), 100);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/fhir+json' }).end(referral('000000070000'));
    });
    const url = fake.url;
    h = await startHarness({
      rulesExtra: (rules) => {
        rules.apim.baseUrl = apimAt(url);
        rules.apim.rateLimit = { ...LIMIT };
      },
    });
    const key = await openSession(h);
    await h.runtime.callers.get('999000000001')!.tokens!.get(); // the token first, so the burst is only the burst
    const harness = h;
    // Every call is awaited (so nothing is left in flight), then judged by how long its client waited.
    const results = await Promise.all(
      Array.from({ length: 10 }, () => timedCall(harness, key, 'GET', A005(), {}, 10_000)),
    );
    const bound = LIMIT.maxWaitMs + 700;
    const slow = results.filter((r) => r.ms > bound);
    const detail = slow.map(
      (r) => `${r.res.status} Retry-After ${r.res.headers['retry-after']} after ${Math.round(r.ms)} ms`,
    );
    expect(detail, `legacy calls that waited longer than maxWaitMs (${LIMIT.maxWaitMs} ms) + 700 ms`).toEqual([]);
  });
});
