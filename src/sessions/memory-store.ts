/**
 * In-memory session store (one node). Sessions are indexed by the hash of their key and kept, per ASID, in order of
 * last use (a list per ASID: a read moves the session to the end), so that
 *
 * - idle expiry is a walk from the front of each ASID's list, which holds the least recently used sessions, and stops
 *   at the first live one: `size()` costs the sessions that expired plus one step per ASID, never a walk over all;
 * - absolute expiry is checked against each session's `expiresAt` on every read;
 * - each ASID holds at most `maxPerAsid` sessions: beyond it that ASID's own least recently used session ends;
 * - the overall bound `maxSessions` never ends another ASID's session: when it is reached, the creating ASID gives up
 *   its own least recently used session, and an ASID holding none is refused (SessionStoreFull) until sessions end.
 *   So one caller's flood can only ever cost that caller's sessions. (Size `maxSessions` at least ASIDs ×
 *   `maxPerAsid` and the refusal never happens.)
 * - every record is at most `maxRecordBytes` as JSON (SessionTooLarge).
 *
 * Each session is a row ({@link SessionRows}): its numbers and links in typed arrays, its object fields as pointers
 * to objects the sessions of an ASID share, and its key hash in an index outside the heap ({@link KeyIndex}). An
 * application-restricted session (which keeps no legacy token in translate mode) costs about 150 B, none of it an
 * object of its own, where a record, its key string and two Map entries cost about 270 B (issue 15's 100,000
 * sessions). `get` builds the Session it returns from the row, as the Redis store builds one from JSON: a caller
 * changes a session with `update`, never by mutating what it read.
 */
import { KeyIndex } from './key-index.js';
import type { Session } from './session.js';
import { sessionKeyHash } from './session.js';
import { AsidSessions, EXPIRES_AT, MOVED_AT, MOVED_SEQ, NONE, SessionRows, USED_AT, USED_SEQ } from './session-rows.js';
import {
  checkRecordSize,
  DEFAULT_SESSION_LIMITS,
  type HeldWrite,
  type SessionLimits,
  type SessionStore,
  SessionStoreFull,
} from './store.js';

export interface MemoryStoreOptions {
  idleTimeoutSeconds: number;
  maxSessions: number;
  /** Per-ASID quota and record size (default: the rules' defaults). */
  limits?: Partial<SessionLimits>;
  now?: () => number;
}

/**
 * A session moves to the end of its ASID's list at most once per this much of the idle timeout (and at most once a
 * minute, so a read writes only its own row, not its neighbours' links; when the order was a Map, each move also left
 * a deleted entry behind until the Map was rebuilt: ≈ 70 B per session (issue 15). The order is by last move, at most
 * this far behind the last use, so idle expiry and eviction are exact to within it; every read still checks the
 * session's own idle and absolute expiry exactly.
 */
const MOVE_SHARE_OF_IDLE = 0.01;
const MOVE_AT_MOST_EVERY_MS = 60_000;
/** The most entries an eviction looks at to find the least recently used session. */
const EVICTION_WALK = 64;

export class MemorySessionStore implements SessionStore {
  /** Every session's row, by key hash. */
  private readonly cache = new KeyIndex();
  /** Per ASID, its sessions' rows in order of last move (least recent first). */
  private readonly byAsid = new Map<string, AsidSessions>();
  private readonly rows = new SessionRows();
  private seq = 0;
  private readonly now: () => number;
  private readonly idleMs: number;
  private readonly moveEveryMs: number;
  private readonly maxSessions: number;
  private limits: SessionLimits;

  constructor(options: MemoryStoreOptions) {
    this.now = options.now ?? Date.now;
    this.idleMs = options.idleTimeoutSeconds * 1000;
    this.moveEveryMs = Math.min(this.idleMs * MOVE_SHARE_OF_IDLE, MOVE_AT_MOST_EVERY_MS);
    this.maxSessions = options.maxSessions;
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...options.limits };
  }

  setLimits(limits: SessionLimits): void {
    this.limits = { ...limits };
  }

  private idle(row: number, now: number): boolean {
    return now - this.rows.numbers.get(row, USED_AT) > this.idleMs;
  }

  private remove(row: number): void {
    const own = this.rows.group(row);
    this.cache.remove(row);
    this.rows.unlink(own, row);
    this.rows.give(row);
    if (own.size === 0) this.byAsid.delete(own.asid);
  }

  /**
   * Ends the idle sessions at the front of an ASID's list (the least recently moved), up to the first one that moved
   * too recently to be idle: every session behind it moved later, so none of them can be idle either (to within
   * the move interval).
   */
  private purgeIdle(own: AsidSessions, now: number): void {
    const n = this.rows.numbers;
    for (let row = own.head; row !== NONE; ) {
      const next = this.rows.next(row);
      if (this.idle(row, now)) {
        this.remove(row);
        row = next;
        continue;
      }
      if (now - n.get(row, MOVED_AT) <= this.idleMs) return;
      // Used lately but not moved since (within the move interval): it goes to the end now, and the walk goes on.
      // It counts as used now for eviction order, which keeps the list in order of the counter.
      this.rows.markUsed(row, n.get(row, USED_AT), ++this.seq);
      this.move(own, row, now);
      row = next;
    }
  }

  private purgeAllIdle(now: number): void {
    for (const own of [...this.byAsid.values()]) this.purgeIdle(own, now);
  }

  /**
   * Ends the ASID's least recently used session. The list is in order of last move, and a session is used no earlier
   * than it moved, so the least recently used one is among the first entries that moved before the earliest use
   * seen so far (uses ordered by the store's counter): the walk stops at the first entry that moved later (or after
   * EVICTION_WALK entries, so a caller cannot make eviction cost a walk over its whole quota).
   */
  private evictOldest(own: AsidSessions): void {
    const n = this.rows.numbers;
    let oldest = NONE;
    let walked = 0;
    for (let row = own.head; row !== NONE; row = this.rows.next(row)) {
      if (oldest !== NONE && (n.get(row, MOVED_SEQ) > n.get(oldest, USED_SEQ) || ++walked > EVICTION_WALK)) break;
      if (oldest === NONE || n.get(row, USED_SEQ) < n.get(oldest, USED_SEQ)) oldest = row;
    }
    if (oldest !== NONE) this.remove(oldest);
  }

  /** The row of the live session held under this hash (expired ones are removed on the way), without touching it. */
  private live(hash: string, now: number): number {
    const row = this.cache.find(hash);
    if (row === NONE) return NONE;
    if (this.idle(row, now) || this.rows.numbers.get(row, EXPIRES_AT) <= now) {
      this.remove(row);
      return NONE;
    }
    return row;
  }

  /** Marks a session used now; it moves to the end of its ASID's list once its last move is old enough. */
  private touch(row: number, now: number): void {
    this.rows.markUsed(row, now, ++this.seq);
    if (now - this.rows.numbers.get(row, MOVED_AT) < this.moveEveryMs) return;
    this.move(this.rows.group(row), row, now);
  }

  private move(own: AsidSessions, row: number, now: number): void {
    this.rows.markMoved(row, now);
    this.rows.unlink(own, row);
    this.rows.append(own, row);
  }

  async create(key: string, session: Session): Promise<void> {
    checkRecordSize(JSON.stringify(session), this.limits);
    const now = this.now();
    const hash = sessionKeyHash(key);
    const previous = this.cache.find(hash);
    if (previous !== NONE) this.remove(previous);
    let own = this.byAsid.get(session.asid);
    if (own) this.purgeIdle(own, now);
    while (own && own.size >= this.limits.maxPerAsid) this.evictOldest(own);
    if (this.cache.size >= this.maxSessions) {
      this.purgeAllIdle(now);
      if (this.cache.size >= this.maxSessions) {
        // Only the creating ASID's own sessions may make room: never another ASID's.
        own = this.byAsid.get(session.asid);
        if (!own) throw new SessionStoreFull(this.maxSessions);
        this.evictOldest(own);
      }
    }
    own = this.byAsid.get(session.asid);
    if (!own) {
      own = new AsidSessions(session.asid);
      this.byAsid.set(session.asid, own);
    }
    const row = this.rows.take(own, session);
    this.rows.markUsed(row, now, ++this.seq);
    this.rows.markMoved(row, now);
    this.cache.add(hash, row);
    this.rows.append(own, row);
  }

  async get(key: string, hash = sessionKeyHash(key)): Promise<Session | undefined> {
    const now = this.now();
    const row = this.live(hash, now);
    if (row === NONE) return undefined;
    this.touch(row, now);
    return this.rows.sessionOf(row);
  }

  async update(key: string, session: Session): Promise<boolean> {
    const now = this.now();
    const hash = sessionKeyHash(key);
    const row = this.live(hash, now);
    if (row === NONE) return false;
    checkRecordSize(JSON.stringify(session), this.limits);
    if (session.asid !== this.rows.group(row).asid) {
      // A session never changes ASID; should one, it moves to that ASID's list (and counts there).
      this.remove(row);
      await this.create(key, session);
      return true;
    }
    this.rows.hold(row, session);
    this.touch(row, now);
    return true;
  }

  /** A store in this process has no replica: a write is held as soon as it is made. */
  async updateHeld(key: string, session: Session): Promise<HeldWrite> {
    return (await this.update(key, session)) ? 'held' : 'gone';
  }

  async delete(key: string): Promise<boolean> {
    const row = this.cache.find(sessionKeyHash(key));
    if (row === NONE) return false;
    this.remove(row);
    return true;
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
    this.purgeAllIdle(this.now());
    return this.cache.size;
  }

  /** Live sessions of one ASID (after ending its idle ones). */
  async sizeOf(asid: string): Promise<number> {
    const own = this.byAsid.get(asid);
    if (!own) return 0;
    this.purgeIdle(own, this.now());
    return own.size;
  }

  async close(): Promise<void> {
    this.cache.clear();
    this.byAsid.clear();
    this.rows.clear();
  }
}
