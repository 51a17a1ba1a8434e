/**
 * Short-lived single-use records: sign-ins in progress (by OAuth state) and one-time sign-in codes. `take` reads
 * and removes in one step, so a record can be used once only. In memory for one node; a shared implementation
 * comes with the Redis session store.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

export interface EphemeralStore<T extends object> {
  put(key: string, value: T, ttlMs: number): Promise<void>;
  /** Returns the record and removes it, or undefined when unknown, expired or already taken. */
  take(key: string): Promise<T | undefined>;
  close(): Promise<void>;
}

export class MemoryEphemeralStore<T extends object> implements EphemeralStore<T> {
  private readonly cache: LRUCache<string, T>;

  constructor(max: number, now: () => number = Date.now) {
    this.cache = new LRUCache<string, T>({ max, ttl: 60_000, ttlResolution: 0, perf: { now } });
  }

  async put(key: string, value: T, ttlMs: number): Promise<void> {
    this.cache.set(hash(key), value, { ttl: ttlMs });
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
