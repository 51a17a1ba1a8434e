/**
 * In-memory session store (one node). Sessions are indexed by the hash of their key and kept, per ASID, in order of
 * last use (a Map per ASID: a read moves the session to the end), so that
 *
 * - idle expiry is a walk from the front of each ASID's map, which holds the least recently used sessions, and stops
 *   at the first live one: `size()` costs the sessions that expired plus one step per ASID, never a walk over all;
 * - absolute expiry is checked against each session's `expiresAt` on every read;
 * - each ASID holds at most `maxPerAsid` sessions: beyond it that ASID's own least recently used session ends;
 * - the overall bound `maxSessions` never ends another ASID's session: when it is reached, the creating ASID gives up
 *   its own least recently used session, and an ASID holding none is refused (SessionStoreFull) until sessions end.
 *   So one caller's flood can only ever cost that caller's sessions. (Size `maxSessions` at least ASIDs ×
 *   `maxPerAsid` and the refusal never happens.)
 * - every record is at most `maxRecordBytes` as JSON (SessionTooLarge).
 *
 * Each session is held as one small record: the session's fields flattened into it (the ASID string shared by all of
 * that ASID's sessions, the application user shared per ASID, the fields few sessions have in one side object, or
 * none), its five times in a Float64Array slab ({@link TimeSlab}), and its key hash in two Map entries. An
 * application-restricted session (which keeps no legacy token in translate mode) costs about 270 B in all, where a
 * Session object in a record cost about 400 B (issue 15's 100,000 sessions). `get` builds the Session it returns
 * from the record, as the Redis store builds one from JSON: a caller changes a session with `update`, never by
 * mutating what it read.
 */
import type { AccessMode, ProfessionalPermission, ProfessionalUser, Session, SessionApimTokens } from './session.js';
import { sessionKeyHash } from './session.js';
import {
  checkRecordSize,
  DEFAULT_SESSION_LIMITS,
  type SessionLimits,
  type SessionStore,
  SessionStoreFull,
} from './store.js';
import { TimeSlab } from './time-slab.js';

export interface MemoryStoreOptions {
  idleTimeoutSeconds: number;
  maxSessions: number;
  /** Per-ASID quota and record size (default: the rules' defaults). */
  limits?: Partial<SessionLimits>;
  now?: () => number;
}

/** One ASID's sessions by key hash, in order of last move (least recent first), and the ASID's string they share. */
class AsidSessions {
  readonly held = new Map<string, Held>();
  constructor(readonly asid: string) {}
}

/** The session fields most sessions lack (user-restricted tokens and role, the legacy host's session and token). */
interface RareFields {
  apim: SessionApimTokens | undefined;
  onBehalfOf: string | null | undefined;
  legacySession: { key: string } | null | undefined;
  legacyToken: string | undefined;
}

/** The fields of a slot in the store's time slab. */
const CREATED_AT = 0;
const LAST_USED_AT = 1;
const EXPIRES_AT = 2;
/** When the store last saw the session used (idle expiry runs from there), and when it last moved to the end. */
const USED_AT = 3;
const MOVED_AT = 4;
const TIME_FIELDS = 5;

/** A session as held: its own fields (its times are in the store's slab), and the store's order of use. */
class Held {
  accessMode!: AccessMode;
  user!: ProfessionalUser;
  permission!: ProfessionalPermission | null;
  rare: RareFields | undefined;
  /** The store's use counter at its last use, and at its last move: the order of uses, even within a millisecond. */
  usedSeq: number;
  movedSeq: number;

  constructor(
    readonly group: AsidSessions,
    session: Session,
    /** Its slot in the time slab. */
    readonly slot: number,
    seq: number,
  ) {
    this.take(session);
    this.usedSeq = seq;
    this.movedSeq = seq;
  }

  /** The session's own fields (at creation, and when an update replaces the session). */
  take(session: Session): void {
    this.accessMode = session.accessMode;
    this.user = session.user;
    this.permission = session.permission;
    this.rare = rareFieldsOf(session);
  }
}

function rareFieldsOf(s: Session): RareFields | undefined {
  if (
    s.apim === undefined &&
    s.onBehalfOf === undefined &&
    s.legacySession === undefined &&
    s.legacyToken === undefined
  ) {
    return undefined;
  }
  return { apim: s.apim, onBehalfOf: s.onBehalfOf, legacySession: s.legacySession, legacyToken: s.legacyToken };
}

/**
 * A session moves to the end of its ASID's map at most once per this much of the idle timeout (and at most once a
 * minute). Moving on every read (a Map delete and set) left a deleted entry behind each time until the Map was
 * rebuilt: ≈ 70 B per session and a Map rewrite per call (issue 15). The order is then by last move, which is at most
 * this far behind the last use, so idle expiry and eviction are exact to within it; every read still checks the
 * session's own idle and absolute expiry exactly.
 */
const MOVE_SHARE_OF_IDLE = 0.01;
const MOVE_AT_MOST_EVERY_MS = 60_000;
/** The most entries an eviction looks at to find the least recently used session. */
const EVICTION_WALK = 64;

export class MemorySessionStore implements SessionStore {
  /** Every session, by key hash. */
  private readonly cache = new Map<string, Held>();
  /** Per ASID, the same sessions in order of last move (least recent first). */
  private readonly byAsid = new Map<string, AsidSessions>();
  private readonly times = new TimeSlab(TIME_FIELDS);
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

  private idle(held: Held, now: number): boolean {
    return now - this.times.get(held.slot, USED_AT) > this.idleMs;
  }

  private remove(hash: string, held: Held): void {
    this.cache.delete(hash);
    this.times.give(held.slot);
    const own = held.group;
    own.held.delete(hash);
    if (own.held.size === 0) this.byAsid.delete(own.asid);
  }

  /**
   * Ends the idle sessions at the front of an ASID's map (the least recently moved), up to the first one that moved
   * too recently to be idle: every session behind it moved later, so none of them can be idle either (to within
   * the move interval).
   */
  private purgeIdle(own: AsidSessions, now: number): void {
    for (const [hash, held] of own.held) {
      if (this.idle(held, now)) {
        this.remove(hash, held);
        continue;
      }
      if (now - this.times.get(held.slot, MOVED_AT) <= this.idleMs) return;
      // Used lately but not moved since (within the move interval): it goes to the end now, and the walk goes on.
      // It counts as used now for eviction order, which keeps the map in order of the counter.
      held.usedSeq = ++this.seq;
      this.move(hash, held, now);
    }
  }

  private purgeAllIdle(now: number): void {
    for (const own of [...this.byAsid.values()]) this.purgeIdle(own, now);
  }

  /**
   * Ends the ASID's least recently used session. The map is in order of last move, and a session is used no earlier
   * than it moved, so the least recently used one is among the first entries that moved before the earliest use
   * seen so far (uses ordered by the store's counter): the walk stops at the first entry that moved later (or after
   * EVICTION_WALK entries, so a caller cannot make eviction cost a walk over its whole quota).
   */
  private evictOldest(own: AsidSessions): void {
    let oldest: [string, Held] | undefined;
    let walked = 0;
    for (const entry of own.held) {
      const held = entry[1];
      if (oldest && (held.movedSeq > oldest[1].usedSeq || ++walked > EVICTION_WALK)) break;
      if (!oldest || held.usedSeq < oldest[1].usedSeq) oldest = entry;
    }
    if (oldest) this.remove(oldest[0], oldest[1]);
  }

  /** The live session held under this hash (expired ones are removed on the way), without touching it. */
  private live(hash: string, now: number): Held | undefined {
    const held = this.cache.get(hash);
    if (!held) return undefined;
    if (this.idle(held, now) || this.times.get(held.slot, EXPIRES_AT) <= now) {
      this.remove(hash, held);
      return undefined;
    }
    return held;
  }

  /** Marks a session used now; it moves to the end of its ASID's map once its last move is old enough. */
  private touch(hash: string, held: Held, now: number): void {
    this.times.set(held.slot, USED_AT, now);
    held.usedSeq = ++this.seq;
    if (now - this.times.get(held.slot, MOVED_AT) < this.moveEveryMs) return;
    this.move(hash, held, now);
  }

  private move(hash: string, held: Held, now: number): void {
    this.times.set(held.slot, MOVED_AT, now);
    held.movedSeq = held.usedSeq;
    held.group.held.delete(hash);
    held.group.held.set(hash, held);
  }

  /** The session's own times into its record's slot. */
  private holdTimes(slot: number, session: Session): void {
    this.times.set(slot, CREATED_AT, session.createdAt);
    this.times.set(slot, LAST_USED_AT, session.lastUsedAt);
    this.times.set(slot, EXPIRES_AT, session.expiresAt);
  }

  /**
   * The Session a record holds: a new object each time. A field the session lacks is absent, not undefined (as in a
   * session read back from JSON), so the common session is one literal of one shape.
   */
  private sessionOf(held: Held): Session {
    const slot = held.slot;
    const session: Session = {
      asid: held.group.asid,
      accessMode: held.accessMode,
      user: held.user,
      permission: held.permission,
      createdAt: this.times.get(slot, CREATED_AT),
      lastUsedAt: this.times.get(slot, LAST_USED_AT),
      expiresAt: this.times.get(slot, EXPIRES_AT),
    };
    const rare = held.rare;
    if (rare === undefined) return session;
    if (rare.apim !== undefined) session.apim = rare.apim;
    if (rare.onBehalfOf !== undefined) session.onBehalfOf = rare.onBehalfOf;
    if (rare.legacySession !== undefined) session.legacySession = rare.legacySession;
    if (rare.legacyToken !== undefined) session.legacyToken = rare.legacyToken;
    return session;
  }

  async create(key: string, session: Session): Promise<void> {
    checkRecordSize(JSON.stringify(session), this.limits);
    const now = this.now();
    const hash = sessionKeyHash(key);
    const previous = this.cache.get(hash);
    if (previous) this.remove(hash, previous);
    let own = this.byAsid.get(session.asid);
    if (own) this.purgeIdle(own, now);
    while (own && own.held.size >= this.limits.maxPerAsid) this.evictOldest(own);
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
    const held = new Held(own, session, this.times.take(), ++this.seq);
    this.holdTimes(held.slot, session);
    this.times.set(held.slot, USED_AT, now);
    this.times.set(held.slot, MOVED_AT, now);
    this.cache.set(hash, held);
    own.held.set(hash, held);
  }

  async get(key: string, hash = sessionKeyHash(key)): Promise<Session | undefined> {
    const now = this.now();
    const held = this.live(hash, now);
    if (!held) return undefined;
    this.touch(hash, held, now);
    return this.sessionOf(held);
  }

  async update(key: string, session: Session): Promise<boolean> {
    const now = this.now();
    const hash = sessionKeyHash(key);
    const held = this.live(hash, now);
    if (!held) return false;
    checkRecordSize(JSON.stringify(session), this.limits);
    if (session.asid !== held.group.asid) {
      // A session never changes ASID; should one, it moves to that ASID's map (and counts there).
      this.remove(hash, held);
      await this.create(key, session);
      return true;
    }
    held.take(session);
    this.holdTimes(held.slot, session);
    this.touch(hash, held, now);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    const hash = sessionKeyHash(key);
    const held = this.cache.get(hash);
    if (!held) return false;
    this.remove(hash, held);
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
    return own.held.size;
  }

  async close(): Promise<void> {
    this.cache.clear();
    this.byAsid.clear();
    this.times.clear();
  }
}
