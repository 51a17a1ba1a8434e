/**
 * The clock everything that waits or expires reads: the rate limiter, the retry budget, the lock loops, token
 * renewal deadlines, sessions and the stand-ins. One interface, so tests drive time by hand instead of sleeping.
 * Latencies are measured with performance.now() instead: they are durations, not points in time.
 */

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms` of this clock's time. */
  sleep(ms: number): Promise<void>;
  /** Runs `fn` after `ms`; the timer never keeps the process alive on its own. */
  after(ms: number, fn: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

/** A clock that reads `now` from the given function and waits in real time (tests that fix only the date). */
export function clockAt(now: () => number): Clock {
  return { ...systemClock, now };
}
