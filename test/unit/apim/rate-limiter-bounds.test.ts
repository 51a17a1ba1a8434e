/**
 * The rate limiter and retry budget at their edges: a token exactly at the refill interval and not a millisecond
 * before, the queue and the wait exactly at their limits and one over, APIM's pause ending exactly now, queued calls
 * re-judged by a pause, timers that fire late, and each Retry-After to the second. A clock that fires its timers only
 * when told shows exactly which delays the limiter asks for.
 */
import { describe, expect, it } from 'vitest';
import {
  type RateLimit,
  RateLimited,
  RateLimiter,
  type RateOutcome,
  RetryBudget,
  SLOT_GRANTED,
} from '../../../src/apim/rate-limiter.js';
import type { Clock, Timer } from '../../../src/runtime/clock.js';
import { ManualClock } from '../../helpers/manual-clock.js';

/** Lets settled promises' callbacks run. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A clock whose timers fire only when the test says, at the time it says (on time, late or early). */
class StepClock implements Clock {
  private readonly timers: Array<{ ms: number; fn: () => void; live: boolean }> = [];
  constructor(public t = 0) {}
  now(): number {
    return this.t;
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.after(ms, resolve);
    });
  }
  after(ms: number, fn: () => void): Timer {
    const timer = { ms, fn, live: true };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.live = false;
      },
    };
  }
  /** The delays asked for by the timers neither fired nor cancelled. */
  waiting(): number[] {
    return this.timers.filter((x) => x.live).map((x) => x.ms);
  }
  /** Moves to `t` and fires the timers waiting then. */
  async fireAt(t: number): Promise<void> {
    this.t = t;
    for (const x of this.timers.filter((y) => y.live)) {
      x.live = false;
      x.fn();
    }
    await flush();
  }
}

interface Watched {
  state: 'pending' | 'resolved' | 'rejected';
  at: number;
  error?: RateLimited;
  promise: Promise<void>;
}

function watch(clock: Clock, promise: Promise<void>): Watched {
  const w: Watched = { state: 'pending', at: -1, promise };
  promise.then(
    () => Object.assign(w, { state: 'resolved', at: clock.now() }),
    (error: RateLimited) => Object.assign(w, { state: 'rejected', at: clock.now(), error }),
  );
  return w;
}

/** A limiter on a StepClock at `t`, telling its outcomes to `seen`. */
function setup(limit: RateLimit | undefined, t = 0) {
  const clock = new StepClock(t);
  const seen: RateOutcome[] = [];
  const limiter = new RateLimiter(limit, clock, (o) => seen.push(o));
  const acquire = () => watch(clock, limiter.acquire());
  return { clock, seen, limiter, acquire };
}

async function refusal(p: Promise<void>): Promise<RateLimited> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(RateLimited);
    return e as RateLimited;
  }
  throw new Error('expected RateLimited');
}

const retryAfter = async (p: Promise<void>) => (await refusal(p)).retryAfterSeconds;

describe('RateLimited', () => {
  it('an Error named RateLimited saying the Retry-After', () => {
    const e = new RateLimited(7);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('RateLimited');
    expect(e.message).toBe('rate limited; retry after 7 s');
    expect(e.retryAfterSeconds).toBe(7);
  });
});

describe('RateLimiter: the bucket', () => {
  const ONE: RateLimit = { requestsPerSecond: 5, burst: 1, maxQueue: 0, maxWaitMs: 0 };

  it('the last token is granted at once, as SLOT_GRANTED; the next is refused with Retry-After 1', async () => {
    const { limiter, seen } = setup(ONE);
    expect(limiter.acquire()).toBe(SLOT_GRANTED);
    expect(await retryAfter(limiter.acquire())).toBe(1);
    expect(seen).toEqual(['admitted', 'refused']);
    expect(limiter.refused).toBe(1);
  });

  it('no burst configured means no tokens at first', async () => {
    const { limiter } = setup({ ...ONE, burst: 0 });
    expect(await retryAfter(limiter.acquire())).toBe(1);
  });

  it('a token comes back exactly one interval (1/rate s) later, not a millisecond before', async () => {
    const at = (ms: number) => {
      const { clock, limiter } = setup(ONE, 1_000_000);
      expect(limiter.acquire()).toBe(SLOT_GRANTED);
      clock.t += ms;
      return limiter.acquire();
    };
    expect(at(200)).toBe(SLOT_GRANTED);
    expect(await retryAfter(at(199))).toBe(1);
  });

  it('the time a token was counted is not counted again', async () => {
    const { clock, limiter } = setup(ONE, 1_000_000);
    limiter.acquire();
    clock.t += 200;
    expect(limiter.acquire()).toBe(SLOT_GRANTED);
    expect(await retryAfter(limiter.acquire())).toBe(1);
    clock.t += 200;
    expect(limiter.acquire()).toBe(SLOT_GRANTED);
  });

  it('a part of the interval refills that part: 4/s, 3 tokens used, 500 ms later 2 are back', async () => {
    const { clock, limiter } = setup({ requestsPerSecond: 4, burst: 3, maxQueue: 0, maxWaitMs: 0 });
    for (let i = 0; i < 3; i++) expect(limiter.acquire()).toBe(SLOT_GRANTED);
    clock.t = 500;
    expect([limiter.acquire(), limiter.acquire()]).toEqual([SLOT_GRANTED, SLOT_GRANTED]);
    expect(await retryAfter(limiter.acquire())).toBe(1);
  });

  it('idle time refills up to burst, no more', async () => {
    const { clock, limiter } = setup({ requestsPerSecond: 5, burst: 2, maxQueue: 0, maxWaitMs: 0 });
    limiter.acquire();
    limiter.acquire();
    clock.t = 60_000;
    expect([limiter.acquire(), limiter.acquire()]).toEqual([SLOT_GRANTED, SLOT_GRANTED]);
    expect(await retryAfter(limiter.acquire())).toBe(1);
    expect(limiter.refused).toBe(1);
  });

  it('without onOutcome, every path still works', async () => {
    const clock = new StepClock();
    const limiter = new RateLimiter({ requestsPerSecond: 5, burst: 1, maxQueue: 1, maxWaitMs: 1000 }, clock);
    expect(limiter.acquire()).toBe(SLOT_GRANTED);
    const queued = watch(clock, limiter.acquire());
    expect(await retryAfter(limiter.acquire())).toBe(1);
    await clock.fireAt(200);
    expect(queued.state).toBe('resolved');
    const late = watch(clock, limiter.acquire());
    await clock.fireAt(1_300);
    expect(late.state).toBe('rejected');
    expect(limiter.acquire()).toBe(SLOT_GRANTED);
    const held = watch(clock, limiter.acquire());
    limiter.pause(5);
    await flush();
    expect(held.state).toBe('rejected');
    expect(limiter.refused).toBe(3);
  });
});

describe('RateLimiter: the queue and the wait', () => {
  it('queued while the expected wait is at most maxWaitMs (exactly it included); one over is refused', async () => {
    const { limiter, acquire, seen } = setup({ requestsPerSecond: 5, burst: 1, maxQueue: 100, maxWaitMs: 1000 });
    limiter.acquire();
    const queued = Array.from({ length: 5 }, acquire); // expected waits 200 … 1000 ms
    const over = acquire(); // 1200 ms
    await flush();
    expect(queued.map((q) => q.state)).toEqual(Array(5).fill('pending'));
    expect(over.state).toBe('rejected');
    expect(over.error?.retryAfterSeconds).toBe(2);
    expect(seen).toEqual(['admitted', 'queued', 'queued', 'queued', 'queued', 'queued', 'refused']);
  });

  it('an expected wait exactly maxWaitMs is queued; a millisecond more is refused', async () => {
    const exactly = setup({ requestsPerSecond: 5, burst: 1, maxQueue: 10, maxWaitMs: 200 });
    exactly.limiter.acquire();
    const q = exactly.acquire();
    await flush();
    expect(q.state).toBe('pending');
    const under = setup({ requestsPerSecond: 5, burst: 1, maxQueue: 10, maxWaitMs: 199 });
    under.limiter.acquire();
    expect(await retryAfter(under.limiter.acquire())).toBe(1);
  });

  it('the queue holds exactly maxQueue calls; one more is refused, with the wait it would have had', async () => {
    const { limiter, acquire, seen } = setup({ requestsPerSecond: 5, burst: 1, maxQueue: 2, maxWaitMs: 60_000 });
    limiter.acquire();
    const [a, b] = [acquire(), acquire()];
    const c = acquire(); // three ahead: 600 ms
    await flush();
    expect([a.state, b.state, c.state]).toEqual(['pending', 'pending', 'rejected']);
    expect(c.error?.retryAfterSeconds).toBe(1);
    expect(seen).toEqual(['admitted', 'queued', 'queued', 'refused']);
  });

  it('a full queue with a long line ahead says so in Retry-After (rounded up)', async () => {
    const { limiter, acquire } = setup({ requestsPerSecond: 2, burst: 1, maxQueue: 3, maxWaitMs: 60_000 });
    limiter.acquire();
    for (let i = 0; i < 3; i++) acquire();
    // four ahead at 2/s: 2 s
    expect(await retryAfter(limiter.acquire())).toBe(2);
    const r = setup({ requestsPerSecond: 2, burst: 1, maxQueue: 4, maxWaitMs: 60_000 });
    r.limiter.acquire();
    for (let i = 0; i < 4; i++) r.acquire();
    // five ahead at 2/s: 2.5 s → 3
    expect(await retryAfter(r.limiter.acquire())).toBe(3);
  });

  it('asks for one timer, for exactly the time until the next token (rounded up), and none when nothing waits', async () => {
    const { clock, limiter, acquire } = setup({ requestsPerSecond: 3, burst: 1, maxQueue: 10, maxWaitMs: 5000 });
    limiter.acquire();
    clock.t = 100; // 0.3 of a token back: 0.7 to go at 3/s = 233.3 ms
    const a = acquire();
    const b = acquire();
    expect(clock.waiting()).toEqual([234]);
    await clock.fireAt(334);
    expect(a).toMatchObject({ state: 'resolved', at: 334 });
    expect(b.state).toBe('pending');
    // 1.002 tokens by now, but the bucket holds one (burst): taken, a whole token to go = 333.3 ms
    expect(clock.waiting()).toEqual([334]);
    await clock.fireAt(668);
    expect(b).toMatchObject({ state: 'resolved', at: 668 });
    expect(clock.waiting()).toEqual([]);
  });

  it('first in, first out: a call made while others wait queues behind them even if a token is back', async () => {
    const { clock, limiter, acquire, seen } = setup({ requestsPerSecond: 5, burst: 2, maxQueue: 10, maxWaitMs: 500 });
    limiter.acquire();
    limiter.acquire();
    const order: string[] = [];
    const a = acquire();
    a.promise.then(() => order.push('a'));
    clock.t = 400; // two tokens are back, but the timer has not fired yet
    const bp = limiter.acquire();
    expect(bp).not.toBe(SLOT_GRANTED);
    const b = watch(clock, bp);
    b.promise.then(() => order.push('b'));
    await flush();
    expect(b.state).toBe('pending');
    await clock.fireAt(400);
    expect(order).toEqual(['a', 'b']);
    expect(seen).toEqual(['admitted', 'admitted', 'queued', 'queued', 'admitted', 'admitted']);
  });

  it('a queued call is admitted exactly at its deadline', async () => {
    const { clock, limiter, acquire } = setup({ requestsPerSecond: 5, burst: 1, maxQueue: 10, maxWaitMs: 200 });
    limiter.acquire();
    const a = acquire();
    expect(clock.waiting()).toEqual([200]);
    await clock.fireAt(200);
    expect(a).toMatchObject({ state: 'resolved', at: 200 });
  });

  it('a timer that fires after a queued call’s deadline refuses it (Retry-After 1) and admits the next', async () => {
    const { clock, limiter, acquire, seen } = setup({ requestsPerSecond: 5, burst: 1, maxQueue: 10, maxWaitMs: 1000 });
    limiter.acquire();
    const a = acquire(); // deadline 1000
    clock.t = 500;
    const b = acquire(); // deadline 1500
    await clock.fireAt(1_200);
    expect(a).toMatchObject({ state: 'rejected', at: 1_200 });
    expect(a.error?.retryAfterSeconds).toBe(1);
    expect(b).toMatchObject({ state: 'resolved', at: 1_200 });
    expect(limiter.refused).toBe(1);
    expect(seen).toEqual(['admitted', 'queued', 'queued', 'refused', 'admitted']);
    expect(clock.waiting()).toEqual([]);
  });

  it('two queued calls reached exactly at their deadline are both admitted by one timer', async () => {
    const { clock, limiter, acquire, seen } = setup({ requestsPerSecond: 5, burst: 2, maxQueue: 10, maxWaitMs: 1000 });
    limiter.acquire();
    limiter.acquire();
    const a = acquire(); // deadline 1000
    const b = acquire(); // deadline 1000
    await clock.fireAt(1_000);
    expect([a.state, b.state]).toEqual(['resolved', 'resolved']);
    expect(seen.slice(-2)).toEqual(['admitted', 'admitted']);
  });
});

describe("RateLimiter: APIM's pause", () => {
  const LIMIT: RateLimit = { requestsPerSecond: 5, burst: 5, maxQueue: 10, maxWaitMs: 1500 };

  it('a pause exactly maxWaitMs long holds the call; a millisecond longer refuses it', async () => {
    const { clock, limiter, acquire, seen } = setup(LIMIT);
    limiter.pause(1.5);
    const held = acquire();
    expect(clock.waiting()).toEqual([1500]);
    await clock.fireAt(1_500);
    expect(held).toMatchObject({ state: 'resolved', at: 1_500 });
    expect(seen).toEqual(['queued', 'admitted']);
    const longer = setup(LIMIT);
    longer.limiter.pause(1.501);
    expect(await retryAfter(longer.limiter.acquire())).toBe(2);
  });

  it('a pause that ends exactly now no longer holds anything', async () => {
    const { clock, limiter, seen } = setup(LIMIT);
    limiter.pause(1);
    clock.t = 1_000;
    expect(limiter.acquire()).toBe(SLOT_GRANTED);
    expect(seen).toEqual(['admitted']);
    const last = setup(LIMIT);
    last.limiter.pause(3);
    last.clock.t = 999;
    expect(await retryAfter(last.limiter.acquire())).toBe(3);
  });

  it('a longer pause is not shortened by a shorter one', async () => {
    const { limiter } = setup(LIMIT);
    limiter.pause(5);
    limiter.pause(1);
    expect(await retryAfter(limiter.acquire())).toBe(5);
  });

  it('a full queue during a pause: Retry-After is the pause, not the line', async () => {
    const { limiter } = setup({ ...LIMIT, maxQueue: 0, maxWaitMs: 5000 });
    limiter.pause(3);
    expect(await retryAfter(limiter.acquire())).toBe(3);
  });

  it('a pause started while a call waits for a token holds it until the pause ends', async () => {
    const { clock, limiter, acquire } = setup({ ...LIMIT, burst: 1, maxWaitMs: 1000 });
    limiter.acquire();
    const a = acquire(); // token at 200, deadline 1000
    clock.t = 100;
    limiter.pause(0.5); // until 600
    await clock.fireAt(200);
    expect(a.state).toBe('pending');
    expect(clock.waiting()).toEqual([400]);
    await clock.fireAt(600);
    expect(a).toMatchObject({ state: 'resolved', at: 600 });
  });

  it('re-judges the queue: a deadline before the pause ends is refused now, with the pause left; one at its end stays', async () => {
    const { clock, limiter, acquire, seen } = setup({ ...LIMIT, burst: 1, maxWaitMs: 1500 });
    limiter.acquire();
    const a = acquire(); // deadline 1500
    clock.t = 100;
    const b = acquire(); // deadline 1600
    clock.t = 400;
    limiter.pause(1.2); // until 1600: a's deadline is before it, b's is at it
    await flush();
    expect(a).toMatchObject({ state: 'rejected', at: 400 });
    expect(a.error?.retryAfterSeconds).toBe(2); // 1.2 s left → 2
    expect(b.state).toBe('pending');
    expect(limiter.refused).toBe(1);
    expect(seen).toEqual(['admitted', 'queued', 'queued', 'refused']);
    await clock.fireAt(1_600);
    expect(b).toMatchObject({ state: 'resolved', at: 1_600 });
    // the refused call left the queue: it is neither refused again nor given a token
    expect(limiter.refused).toBe(1);
    expect(seen).toEqual(['admitted', 'queued', 'queued', 'refused', 'admitted']);
  });

  it('a pause at exactly a queued call’s deadline keeps it', async () => {
    const { clock, limiter, acquire } = setup({ ...LIMIT, burst: 1, maxWaitMs: 1500 });
    limiter.acquire();
    const a = acquire(); // deadline 1500
    limiter.pause(1.5);
    await flush();
    expect(a.state).toBe('pending');
    await clock.fireAt(1_500);
    expect(a).toMatchObject({ state: 'resolved', at: 1_500 });
  });

  it('keeps the order of the calls it keeps', async () => {
    const { clock, limiter, acquire } = setup({ ...LIMIT, burst: 1, maxWaitMs: 3000 });
    limiter.acquire();
    const a = acquire(); // deadline 3000
    clock.t = 1_000;
    const b = acquire(); // deadline 4000
    const c = acquire(); // deadline 4000
    limiter.pause(2.5); // until 3500: a goes, b and c stay
    const order: string[] = [];
    b.promise.then(() => order.push('b'));
    c.promise.then(() => order.push('c'));
    await flush();
    expect([a.state, b.state, c.state]).toEqual(['rejected', 'pending', 'pending']);
    await clock.fireAt(3_500);
    await clock.fireAt(3_700);
    expect(order).toEqual(['b', 'c']);
    expect(limiter.refused).toBe(1);
    expect(clock.waiting()).toEqual([]);
  });

  it('a call past its deadline when a zero pause re-judges the queue is refused with Retry-After 1', async () => {
    const { clock, limiter, acquire } = setup({ ...LIMIT, burst: 1, maxWaitMs: 1000 });
    limiter.acquire();
    const a = acquire(); // deadline 1000
    clock.t = 1_600; // the timer has not fired
    limiter.pause(0);
    await flush();
    expect(a).toMatchObject({ state: 'rejected', at: 1_600 });
    expect(a.error?.retryAfterSeconds).toBe(1);
  });

  it('clearPause: a call held by the pause goes at its token time instead', async () => {
    const { clock, limiter, acquire } = setup({ ...LIMIT, burst: 1, maxWaitMs: 5000 });
    limiter.acquire();
    limiter.pause(4);
    const a = acquire();
    expect(clock.waiting()).toEqual([4000]);
    limiter.clearPause();
    expect(clock.waiting()).toEqual([200]);
    await clock.fireAt(200);
    expect(a).toMatchObject({ state: 'resolved', at: 200 });
    expect(clock.waiting()).toEqual([]);
  });

  it('clearPause with nothing queued asks for no timer, and calls go at once', () => {
    const { clock, limiter } = setup(LIMIT);
    limiter.pause(10);
    limiter.clearPause();
    expect(clock.waiting()).toEqual([]);
    expect(limiter.acquire()).toBe(SLOT_GRANTED);
  });
});

describe('RateLimiter without a limit', () => {
  it('grants every call at once, as SLOT_GRANTED, telling no outcome', () => {
    const { limiter, seen, clock } = setup(undefined);
    expect(Array.from({ length: 20 }, () => limiter.acquire()).every((p) => p === SLOT_GRANTED)).toBe(true);
    expect(seen).toEqual([]);
    expect(clock.waiting()).toEqual([]);
  });

  it('a pause refuses until exactly its end (Retry-After rounded up), then grants at once', async () => {
    const { clock, limiter, seen } = setup(undefined);
    limiter.pause(2);
    clock.t = 999;
    expect(await retryAfter(limiter.acquire())).toBe(2);
    clock.t = 1_999;
    expect(await retryAfter(limiter.acquire())).toBe(1);
    clock.t = 2_000;
    expect(limiter.acquire()).toBe(SLOT_GRANTED);
    expect(seen).toEqual(['refused', 'refused']);
    expect(limiter.refused).toBe(2);
  });

  it('on a real-time-style clock too (ManualClock at a real date)', async () => {
    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
    const limiter = new RateLimiter(undefined, clock);
    limiter.pause(1);
    expect(await retryAfter(limiter.acquire())).toBe(1);
    await clock.advance(1000);
    expect(limiter.acquire()).toBe(SLOT_GRANTED);
  });
});

describe('RetryBudget at its edges', () => {
  const START = 1_700_000_000_000;
  const budget = (...args: [number?, number?, number?]) => {
    const clock = new StepClock(START);
    return { b: new RetryBudget(args[0], args[1], args[2], clock), clock };
  };
  const retries = (b: RetryBudget, n: number) => Array.from({ length: n }, () => b.allowRetry());

  it('defaults: a floor of 3, a tenth of the calls, a 10 s window', () => {
    const { b, clock } = budget();
    expect(retries(b, 4)).toEqual([true, true, true, false]);
    for (let i = 0; i < 50; i++) b.call();
    expect(retries(b, 3)).toEqual([true, true, false]); // 5 of 50
    clock.t = START + 9_999;
    expect(b.allowRetry()).toBe(false);
    clock.t = START + 10_000;
    expect(retries(b, 4)).toEqual([true, true, true, false]);
  });

  it('the ratio and floor given', () => {
    const { b } = budget(0.5, 1);
    expect(retries(b, 2)).toEqual([true, false]);
    for (let i = 0; i < 6; i++) b.call();
    expect(retries(b, 3)).toEqual([true, true, false]); // 3 of 6
  });

  it("a new window forgets the old window's calls and retries, and starts when it was rolled", () => {
    const { b, clock } = budget(0.1, 3, 1000);
    for (let i = 0; i < 100; i++) b.call();
    expect(retries(b, 11).filter(Boolean)).toHaveLength(10);
    clock.t = START + 1000;
    b.call();
    expect(retries(b, 4)).toEqual([true, true, true, false]);
    clock.t = START + 1999; // still the second window
    expect(b.allowRetry()).toBe(false);
    b.call();
    expect(b.allowRetry()).toBe(false);
    clock.t = START + 2000;
    expect(b.allowRetry()).toBe(true);
  });
});
