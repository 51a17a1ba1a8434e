/**
 * The session store interface. Implementations: in memory (one node, the default) and Redis (several replicas).
 * Keys passed in are raw session keys; implementations index by their hash and never keep the raw key.
 *
 * `asid`: the ASID the caller acts for. A store that places sessions by ASID (Redis Cluster: one hash slot per ASID)
 * finds a session only under its own ASID, so it needs it, and another ASID's session is not found there; the other
 * stores ignore it. Every caller that names a session knows the calling ASID, so it always passes it.
 */
import type { Session } from './session.js';

export interface SessionStore {
  /**
   * Stores a new session. `hold`: wait (bounded, best effort) for the replicas the rules ask for before resolving,
   * so a failover right after does not lose it; the write stands whether or not they confirm in time.
   */
  create(key: string, session: Session, hold?: HeldPurpose): Promise<void>;
  /**
   * Returns the live session and refreshes its idle timer, or undefined when unknown or expired. `hash` is
   * sessionKeyHash(key) when the caller has it already (the key is then not hashed again).
   */
  get(key: string, hash?: string, asid?: string): Promise<Session | undefined>;
  /** Replaces a live session; returns false when it no longer exists. `hold`: as for `create`. */
  update(key: string, session: Session, hold?: HeldPurpose): Promise<boolean>;
  /** Removes a session (for every replica at once); returns whether one existed. */
  delete(key: string, asid?: string): Promise<boolean>;
  /**
   * Takes a short exclusive lock on a session (e.g. to spend its single-use refresh token). Returns the release
   * function, or undefined when someone else holds the lock. The lock expires by itself after `ttlMs`.
   */
  lock(key: string, ttlMs: number, asid?: string): Promise<(() => Promise<void>) | undefined>;
  /** Whether the store answers (readiness). Never throws. */
  ping(): Promise<boolean>;
  /**
   * Replaces a live session like `update`, and says whether the write is held where a failover cannot undo it: by
   * the replicas the rules ask for (Redis WAIT, bounded by its timeout), or at once where none are asked for.
   * 'gone': the session no longer exists. 'not-held': it may or may not have been written, and may not survive a
   * failover (no replica confirmed in time, or the store failed while it waited). Where no replica is asked for it
   * is `update`, and fails as `update` does.
   */
  updateHeld(key: string, session: Session): Promise<HeldWrite>;
  /**
   * Whether the store has answered at least once since the process started (readiness tells a store lost from one
   * never reached: a new replica with a wrong address or password). Absent: a store in this process, always reached.
   */
  everReached?(): boolean;
  /** Live sessions held (approximate for shared stores); cheap: never a walk over every session. */
  size(): Promise<number>;
  /** New limits from a reloaded rules file (they apply to the next write). */
  setLimits?(limits: SessionLimits): void;
  close(): Promise<void>;
}

/**
 * What one store holds at most (rules `sessions`): every record's size, and each ASID's live sessions — beyond the
 * quota that ASID's own oldest sessions end first, so one caller's flood never ends another caller's sessions.
 */
export interface SessionLimits {
  /** Live sessions per ASID (`sessions.maxPerAsid`). */
  maxPerAsid: number;
  /** The largest session record, as JSON bytes (`sessions.maxRecordBytes`). */
  maxRecordBytes: number;
}

/** The rules' defaults, for stores made without limits (tests, tools). */
export const DEFAULT_SESSION_LIMITS: SessionLimits = { maxPerAsid: 20_000, maxRecordBytes: 32_768 };

/** The limits of the rules' `sessions` block. */
export function sessionLimitsOf(sessions: SessionLimits): SessionLimits {
  return { maxPerAsid: sessions.maxPerAsid, maxRecordBytes: sessions.maxRecordBytes };
}

/** The size a record is judged by: the session as JSON, in UTF-8 bytes. Throws SessionTooLarge beyond the limit. */
export function checkRecordSize(json: string, limits: SessionLimits): void {
  // A string of n UTF-16 units is at most 3n UTF-8 bytes: only a long one needs counting.
  if (json.length * 3 <= limits.maxRecordBytes) return;
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > limits.maxRecordBytes) throw new SessionTooLarge(bytes, limits.maxRecordBytes);
}

export interface SessionTimeouts {
  idleTimeoutSeconds: number;
  absoluteTimeoutSeconds: number;
}

/** What `updateHeld` could promise about a write. */
export type HeldWrite = 'held' | 'not-held' | 'gone';

/**
 * A write that should be on a replica before its caller is answered (with `sessions.redis.acknowledgement`), and
 * what it is, for the metrics: A001's new session, A002's role, a CIS2 user's renewed tokens.
 */
export type HeldPurpose = 'create' | 'select-role' | 'renewed-tokens';

/** The store cannot be reached: callers answer 503 with Retry-After, and nothing is lost. */
export class StoreUnavailableError extends Error {
  constructor(detail: string) {
    super(`session store unavailable: ${detail}`);
    this.name = 'StoreUnavailableError';
  }
}

/** A session record larger than `sessions.maxRecordBytes`: nothing was stored (or the stored one was kept). */
export class SessionTooLarge extends Error {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`session record of ${bytes} bytes is larger than the ${limit} allowed`);
    this.name = 'SessionTooLarge';
  }
}

/**
 * The in-memory store is full (`sessions.maxSessions`) and the creating ASID holds no session of its own to give up:
 * a new session never ends another ASID's.
 */
export class SessionStoreFull extends Error {
  constructor(readonly maxSessions: number) {
    super(`session store full (${maxSessions} sessions)`);
    this.name = 'SessionStoreFull';
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
