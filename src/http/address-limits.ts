/**
 * Limits kept per client address (src/http/client-address.ts), in memory, by the runtime's Clock:
 *
 * - StartRate: a token bucket per address (e.g. sign-ins started per minute);
 * - FailureWindows: failures per address in fixed windows; beyond the allowance the address is refused until its
 *   window ends (e.g. wrong admin tokens).
 *
 * Memory is bounded: each keeps at most `maxAddresses` addresses (an LRU; an address idle for a whole window is
 * dropped). An address pushed out by many newer ones starts afresh, which gains an attacker nothing he could not get
 * from the newer addresses themselves.
 */
import { LRUCache } from 'lru-cache';

interface NowSource {
  now(): number;
}

const MINUTE_MS = 60_000;

interface Bucket {
  tokens: number;
  at: number;
}

/** A token bucket per address: `perMinute` at once, refilled at `perMinute` a minute. */
export class StartRate {
  private readonly buckets: LRUCache<string, Bucket>;

  constructor(
    private readonly clock: NowSource,
    maxAddresses = 10_000,
  ) {
    // A bucket left alone for a minute is full again: as good as none.
    this.buckets = new LRUCache<string, Bucket>({
      max: maxAddresses,
      ttl: MINUTE_MS,
      ttlResolution: 0,
      perf: { now: () => clock.now() },
    });
  }

  /** Takes one start for the address: 0 when allowed, otherwise the milliseconds until the next one is. */
  take(address: string, perMinute: number): number {
    const now = this.clock.now();
    const ratePerMs = perMinute / MINUTE_MS;
    const b = this.buckets.get(address) ?? { tokens: perMinute, at: now };
    const tokens = Math.min(perMinute, b.tokens + Math.max(0, now - b.at) * ratePerMs);
    if (tokens >= 1) {
      this.buckets.set(address, { tokens: tokens - 1, at: now });
      return 0;
    }
    this.buckets.set(address, { tokens, at: now });
    return Math.max(1, Math.ceil((1 - tokens) / ratePerMs));
  }
}

interface Window {
  start: number;
  failures: number;
}

/** What `fail` tells the caller. */
export interface FailureOutcome {
  /** Failures counted in the address's current window. */
  failures: number;
  /** Milliseconds the address stays refused (0: not refused). */
  refusedMs: number;
  /** This failure is the one that got the address refused: log it (once per window). */
  newlyRefused: boolean;
}

/** Failures per address in fixed windows of `windowMs`: more than `allowed` in one, and it is refused until its end. */
export class FailureWindows {
  private readonly windows: LRUCache<string, Window>;

  constructor(
    private readonly clock: NowSource,
    readonly allowed: number,
    readonly windowMs: number,
    maxAddresses = 10_000,
  ) {
    this.windows = new LRUCache<string, Window>({
      max: maxAddresses,
      ttl: windowMs,
      ttlResolution: 0,
      perf: { now: () => clock.now() },
      // The TTL runs from the window's start, not from the last failure.
      noUpdateTTL: true,
    });
  }

  private current(address: string, now: number): Window | undefined {
    const w = this.windows.get(address);
    return w && now - w.start < this.windowMs ? w : undefined;
  }

  /** Milliseconds the address is still refused for (0: it is not). */
  refusedFor(address: string): number {
    const now = this.clock.now();
    const w = this.current(address, now);
    return w && w.failures > this.allowed ? w.start + this.windowMs - now : 0;
  }

  /** Counts one failure for the address. */
  fail(address: string): FailureOutcome {
    const now = this.clock.now();
    let w = this.current(address, now);
    if (!w) {
      w = { start: now, failures: 0 };
      this.windows.delete(address); // a window just past its end: the new one gets a TTL of its own
      this.windows.set(address, w);
    }
    w.failures++;
    const refused = w.failures > this.allowed;
    return {
      failures: w.failures,
      refusedMs: refused ? w.start + this.windowMs - now : 0,
      newlyRefused: refused && w.failures === this.allowed + 1,
    };
  }
}
