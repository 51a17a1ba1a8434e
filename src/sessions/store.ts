/**
 * The session store interface. Implementations: in memory (one node, the default) and Redis (several replicas).
 * Keys passed in are raw session keys; implementations index by their hash and never keep the raw key.
 */
import type { Session } from './session.js';

export interface SessionStore {
  /** Stores a new session. */
  create(key: string, session: Session): Promise<void>;
  /** Returns the live session and refreshes its idle timer, or undefined when unknown or expired. */
  get(key: string): Promise<Session | undefined>;
  /** Replaces a live session; returns false when it no longer exists. */
  update(key: string, session: Session): Promise<boolean>;
  /** Removes a session (for every replica at once); returns whether one existed. */
  delete(key: string): Promise<boolean>;
  /**
   * Takes a short exclusive lock on a session (e.g. to spend its single-use refresh token). Returns the release
   * function, or undefined when someone else holds the lock. The lock expires by itself after `ttlMs`.
   */
  lock(key: string, ttlMs: number): Promise<(() => Promise<void>) | undefined>;
  /** Whether the store answers (readiness). Never throws. */
  ping(): Promise<boolean>;
  /** Live sessions held (approximate for shared stores). */
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface SessionTimeouts {
  idleTimeoutSeconds: number;
  absoluteTimeoutSeconds: number;
}

/** The store cannot be reached: callers answer 503 with Retry-After, and nothing is lost. */
export class StoreUnavailableError extends Error {
  constructor(detail: string) {
    super(`session store unavailable: ${detail}`);
    this.name = 'StoreUnavailableError';
  }
}

/** The session ended (expired, or deleted on another replica) while a change to it was being made. */
export class SessionEnded extends Error {
  constructor(
    /** What was being done, e.g. "the role was being selected". */
    readonly during: string,
  ) {
    super(`the session ended while ${during}`);
    this.name = 'SessionEnded';
  }
}
