/**
 * In-memory session store on lru-cache: idle expiry is the cache TTL (refreshed on every read), absolute expiry is
 * checked against each session's `expiresAt`, and `max` bounds memory (the least recently used session goes first).
 */
import { LRUCache } from 'lru-cache';
import { type Session, sessionKeyHash } from './session.js';
import type { SessionStore } from './store.js';

export interface MemoryStoreOptions {
  idleTimeoutSeconds: number;
  maxSessions: number;
  now?: () => number;
}

export class MemorySessionStore implements SessionStore {
  private readonly cache: LRUCache<string, Session>;
  private readonly now: () => number;

  constructor(options: MemoryStoreOptions) {
    this.now = options.now ?? Date.now;
    this.cache = new LRUCache<string, Session>({
      max: options.maxSessions,
      ttl: options.idleTimeoutSeconds * 1000,
      updateAgeOnGet: true,
      ttlAutopurge: false,
      // Ask the clock on every check: lru-cache otherwise reuses a reading for 1 ms, which an injected clock defeats.
      ttlResolution: 0,
      perf: { now: () => this.now() },
    });
  }

  async create(key: string, session: Session): Promise<void> {
    this.cache.set(sessionKeyHash(key), session);
  }

  async get(key: string): Promise<Session | undefined> {
    const h = sessionKeyHash(key);
    const s = this.cache.get(h);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.cache.delete(h);
      return undefined;
    }
    return s;
  }

  async update(key: string, session: Session): Promise<boolean> {
    const h = sessionKeyHash(key);
    if (!this.cache.has(h)) return false;
    this.cache.set(h, session);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return this.cache.delete(sessionKeyHash(key));
  }

  private readonly locks = new Map<string, number>();

  async lock(key: string, ttlMs: number): Promise<(() => Promise<void>) | undefined> {
    const h = sessionKeyHash(key);
    const now = this.now();
    const until = this.locks.get(h);
    if (until !== undefined && until > now) return undefined;
    const mine = now + ttlMs;
    this.locks.set(h, mine);
    return async () => {
      if (this.locks.get(h) === mine) this.locks.delete(h);
    };
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async size(): Promise<number> {
    this.cache.purgeStale();
    return this.cache.size;
  }

  async close(): Promise<void> {
    this.cache.clear();
  }
}
