/**
 * Calls in flight to APIM for one APIM application: at most `max` at once, `maxQueue` more waiting (first come,
 * first served, each at most `maxWaitMs`), the rest refused at once. With its own pool partition this is what keeps
 * one application whose calls hang at APIM from holding up every other application.
 */
import { type Clock, systemClock, type Timer } from '../runtime/clock.js';

export interface ConcurrencyLimit {
  perApplication: number;
  maxQueue: number;
  maxWaitMs: number;
}

/** No slot for this application now: too many of its calls are in flight or waiting. */
export class ApplicationBusy extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super(`too many calls in flight for this APIM application; retry after ${retryAfterSeconds} s`);
    this.name = 'ApplicationBusy';
  }
}

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (e: Error) => void;
  timer: Timer;
}

export class ConcurrencySlots {
  private inFlight = 0;
  private readonly waiting: Waiter[] = [];

  constructor(
    private readonly limit: ConcurrencyLimit,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Calls in flight now, and waiting. */
  get load(): { inFlight: number; waiting: number } {
    return { inFlight: this.inFlight, waiting: this.waiting.length };
  }

  /** A slot (call the returned function once when done), or ApplicationBusy. */
  /** A slot now, without a promise, when one is free and nobody waits (the usual case); else undefined. */
  tryAcquire(): (() => void) | undefined {
    if (this.inFlight >= this.limit.perApplication || this.waiting.length !== 0) return undefined;
    this.inFlight++;
    return this.releaser();
  }

  acquire(): Promise<() => void> {
    if (this.inFlight < this.limit.perApplication && this.waiting.length === 0) {
      this.inFlight++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.limit.maxQueue || this.limit.maxWaitMs === 0) {
      return Promise.reject(new ApplicationBusy(1));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: this.clock.after(this.limit.maxWaitMs, () => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new ApplicationBusy(Math.max(1, Math.ceil(this.limit.maxWaitMs / 1000))));
        }),
      };
      this.waiting.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) {
        next.timer.cancel();
        next.resolve(this.releaser()); // the slot passes straight to the next in line
      } else this.inFlight--;
    };
  }
}
