/**
 * Short-lived single-use records: sign-ins in progress (by OAuth state and browser) and one-time sign-in codes.
 * `take` reads and removes in one step, so a record can be used once only. In memory for one node; the Redis
 * implementation is in redis-store.ts.
 *
 * The memory store is bounded, and when it is full it refuses a new record (EphemeralStoreFull) rather than evict a
 * live one: a flood of sign-ins started by strangers must not push out sign-ins that people are completing. Records
 * past their time are dropped first.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { StoreUnavailableError } from './store.js';

export interface EphemeralStore<T extends object> {
  put(key: string, value: T, ttlMs: number): Promise<void>;
  /** Returns the record and removes it, or undefined when unknown, expired or already taken. */
  take(key: string): Promise<T | undefined>;
  close(): Promise<void>;
}

/** The memory store holds as many live records as it may: nothing new until some are taken or expire. */
export class EphemeralStoreFull extends StoreUnavailableError {
  constructor(readonly max: number) {
    super(`${max} records held, none expired`);
    this.name = 'EphemeralStoreFull';
  }
}

/** How often, at most, a full store looks for expired records to drop (it is a walk over all of them). */
const PURGE_INTERVAL_MS = 1_000;

export class MemoryEphemeralStore<T extends object> implements EphemeralStore<T> {
  private readonly cache: LRUCache<string, T>;
  private lastPurge = Number.NEGATIVE_INFINITY;

  constructor(
    readonly max: number,
    private readonly now: () => number = Date.now,
  ) {
    this.cache = new LRUCache<string, T>({ max, ttl: 60_000, ttlResolution: 0, perf: { now } });
  }

  async put(key: string, value: T, ttlMs: number): Promise<void> {
    const h = hash(key);
    if (this.cache.size >= this.max && !this.cache.has(h)) {
      // The cache would evict its least recently used record, live or not: drop the expired ones, or refuse.
      const now = this.now();
      if (now - this.lastPurge >= PURGE_INTERVAL_MS) {
        this.lastPurge = now;
        this.cache.purgeStale();
      }
      if (this.cache.size >= this.max) throw new EphemeralStoreFull(this.max);
    }
    this.cache.set(h, value, { ttl: ttlMs });
  }

  async take(key: string): Promise<T | undefined> {
    const h = hash(key);
    const v = this.cache.get(h);
    if (v !== undefined) this.cache.delete(h);
    return v;
  }

  async close(): Promise<void> {
    this.cache.clear();
  }
}

/** Keys are kept hashed: a sign-in code or state is a bearer credential while it lives. */
function hash(key: string): string {
  return createHash('sha256').update(key).digest('base64url');
}
