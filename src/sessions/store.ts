/**
 * The session store interface. Implementations: in-memory (single node, the default) and — later — Redis for
 * several replicas. Keys passed in are raw session keys; implementations index by their hash.
 */
import type { Session } from './session.js';

export interface SessionStore {
  /** Stores a new session. */
  create(key: string, session: Session): Promise<void>;
  /** Returns the live session and refreshes its idle timer, or undefined when unknown or expired. */
  get(key: string): Promise<Session | undefined>;
  /** Replaces a live session; returns false when it no longer exists. */
  update(key: string, session: Session): Promise<boolean>;
  /** Removes a session; returns whether one existed. */
  delete(key: string): Promise<boolean>;
  /** Live sessions held by this store (approximate for shared stores). */
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface SessionTimeouts {
  idleTimeoutSeconds: number;
  absoluteTimeoutSeconds: number;
}
