/**
 * A Clock (src/runtime/clock.ts) that only moves when a test says so: `await clock.advance(ms)` runs the timers and
 * sleeps that fall due, in time order (timers scheduled by timers included), and lets pending promise callbacks run
 * before, between and after them. No real time passes, so tests of waits and timeouts are instant and exact.
 *
 *   const clock = new ManualClock(Date.parse('2025-01-01T00:00:00Z'));
 *   const done = thingThatWaits(clock);   // e.g. clock.sleep(50) inside
 *   await clock.advance(50);              // the sleep resolves, and what awaited it runs
 */
import type { Clock, Timer } from '../../src/runtime/clock.js';

// Taken at load, so a test that installs vi fake timers does not stop the clock from letting promises run.
const realSetImmediate = globalThis.setImmediate;

/** Lets queued microtasks, nextTicks and the callbacks they chain run to completion. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => realSetImmediate(resolve));
}

interface Scheduled {
  at: number;
  seq: number;
  fn: () => void;
}

export class ManualClock implements Clock {
  private current: number;
  private seq = 0;
  private readonly timers: Scheduled[] = [];

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.after(ms, resolve);
    });
  }

  after(ms: number, fn: () => void): Timer {
    const timer: Scheduled = { at: this.current + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return {
      cancel: () => {
        const i = this.timers.indexOf(timer);
        if (i >= 0) this.timers.splice(i, 1);
      },
    };
  }

  /** Moves time forward by `ms`, running every timer due by then, earliest first (ties in scheduling order). */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new Error(`ManualClock.advance: expected ms >= 0, got ${ms}`);
    const target = this.current + ms;
    await settle();
    for (;;) {
      const next = this.nextDue(target);
      if (!next) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.current = next.at;
      next.fn();
      await settle();
    }
    this.current = target;
    await settle();
  }

  /** Timers and sleeps not yet run. */
  pending(): number {
    return this.timers.length;
  }

  private nextDue(until: number): Scheduled | undefined {
    let best: Scheduled | undefined;
    for (const t of this.timers) {
      if (t.at > until) continue;
      if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }
}
