/**
 * The memory store's sessions as rows, so that a session is no object of its own on the JS heap (issue 15):
 *
 * - its numbers (five times, two use counters) in a {@link NumberSlab}, outside the heap;
 * - its place in its ASID's order of last move, as two links (previous, next row) in an Int32Array;
 * - its object fields (its ASID's group, access mode, user, role, the fields few sessions have) in plain arrays by
 *   row. Those hold pointers to objects the sessions share: an ASID's application user and that user's permissions,
 *   one group and one ASID string per ASID.
 *
 * So 100,000 application-restricted sessions are a few large arrays the collector traces in one go, where they
 * were 100,000 records, strings and Map entries (≈ 270 B and three objects a session).
 */
import { grownTo, NumberSlab } from './number-slab.js';
import type { AccessMode, ProfessionalPermission, ProfessionalUser, Session, SessionApimTokens } from './session.js';

/** No row (the end of an order). */
export const NONE = -1;

/** One ASID's sessions: the ends of their order of last move (least recent first), and how many there are. */
export class AsidSessions {
  head = NONE;
  tail = NONE;
  size = 0;
  constructor(readonly asid: string) {}
}

/** The session fields most sessions lack (user-restricted tokens and role, the legacy host's session and token). */
interface RareFields {
  apim: SessionApimTokens | undefined;
  onBehalfOf: string | null | undefined;
  legacySession: { key: string } | null | undefined;
  legacyToken: string | undefined;
}

/** A row's numbers. */
export const CREATED_AT = 0;
export const LAST_USED_AT = 1;
export const EXPIRES_AT = 2;
/** When the store last saw the session used (idle expiry runs from there), and when it last moved to the end. */
export const USED_AT = 3;
export const MOVED_AT = 4;
/** The store's use counter at the session's last use, and at its last move: the order of uses within a millisecond. */
export const USED_SEQ = 5;
export const MOVED_SEQ = 6;
const NUMBERS = 7;

const PREVIOUS = 0;
const NEXT = 1;

export class SessionRows {
  readonly numbers: NumberSlab;
  /** Per row, the previous and next row in its ASID's order (NONE at the ends). */
  private links: Int32Array;
  private readonly groups: (AsidSessions | undefined)[] = [];
  private readonly accessModes: (AccessMode | undefined)[] = [];
  private readonly users: (ProfessionalUser | undefined)[] = [];
  private readonly permissions: (ProfessionalPermission | null | undefined)[] = [];
  private readonly rares: (RareFields | undefined)[] = [];

  constructor(private readonly initialRows = 1024) {
    this.numbers = new NumberSlab(NUMBERS, initialRows);
    this.links = new Int32Array(initialRows * 2);
  }

  /** A row for a new session of `group`'s ASID, holding the session's own fields (not yet its times). */
  take(group: AsidSessions, session: Session): number {
    const row = this.numbers.take();
    if (row * 2 >= this.links.length) this.links = grownTo(this.links, row * 2 + 2);
    if (row === this.groups.length) {
      // A new row past the end: the arrays grow by one, staying packed (freed rows are reused before this).
      this.groups.push(group);
      this.accessModes.push(undefined);
      this.users.push(undefined);
      this.permissions.push(undefined);
      this.rares.push(undefined);
    } else {
      this.groups[row] = group;
    }
    this.hold(row, session);
    return row;
  }

  /** The session's own fields into its row (at creation, and when an update replaces the session). */
  hold(row: number, session: Session): void {
    this.accessModes[row] = session.accessMode;
    this.users[row] = session.user;
    this.permissions[row] = session.permission;
    this.rares[row] = rareFieldsOf(session);
    this.numbers.set(row, CREATED_AT, session.createdAt);
    this.numbers.set(row, LAST_USED_AT, session.lastUsedAt);
    this.numbers.set(row, EXPIRES_AT, session.expiresAt);
  }

  /** The session was used now: idle expiry runs from `now`, eviction orders uses by `seq`. */
  markUsed(row: number, now: number, seq: number): void {
    this.numbers.set(row, USED_AT, now);
    this.numbers.set(row, USED_SEQ, seq);
  }

  /** The session moved to the end of its ASID's order now, as of its last use. */
  markMoved(row: number, now: number): void {
    this.numbers.set(row, MOVED_AT, now);
    this.numbers.set(row, MOVED_SEQ, this.numbers.get(row, USED_SEQ));
  }

  /** Gives a row back (unlinked already); what it pointed at is let go. */
  give(row: number): void {
    this.groups[row] = undefined;
    this.accessModes[row] = undefined;
    this.users[row] = undefined;
    this.permissions[row] = undefined;
    this.rares[row] = undefined;
    this.numbers.give(row);
  }

  group(row: number): AsidSessions {
    return this.groups[row]!;
  }

  /** The Session a row holds: a new object each time; a field the session lacks is absent, not undefined. */
  sessionOf(row: number): Session {
    const n = this.numbers;
    const session: Session = {
      asid: this.groups[row]!.asid,
      accessMode: this.accessModes[row]!,
      user: this.users[row]!,
      permission: this.permissions[row]!,
      createdAt: n.get(row, CREATED_AT),
      lastUsedAt: n.get(row, LAST_USED_AT),
      expiresAt: n.get(row, EXPIRES_AT),
    };
    const rare = this.rares[row];
    if (rare === undefined) return session;
    if (rare.apim !== undefined) session.apim = rare.apim;
    if (rare.onBehalfOf !== undefined) session.onBehalfOf = rare.onBehalfOf;
    if (rare.legacySession !== undefined) session.legacySession = rare.legacySession;
    if (rare.legacyToken !== undefined) session.legacyToken = rare.legacyToken;
    return session;
  }

  /** The row after `row` in its ASID's order, or NONE. */
  next(row: number): number {
    return this.links[row * 2 + NEXT]!;
  }

  /** Puts `row` last in its group's order. */
  append(group: AsidSessions, row: number): void {
    this.links[row * 2 + PREVIOUS] = group.tail;
    this.links[row * 2 + NEXT] = NONE;
    if (group.tail === NONE) group.head = row;
    else this.links[group.tail * 2 + NEXT] = row;
    group.tail = row;
    group.size++;
  }

  /** Takes `row` out of its group's order. */
  unlink(group: AsidSessions, row: number): void {
    const previous = this.links[row * 2 + PREVIOUS]!;
    const next = this.links[row * 2 + NEXT]!;
    if (previous === NONE) group.head = next;
    else this.links[previous * 2 + NEXT] = next;
    if (next === NONE) group.tail = previous;
    else this.links[next * 2 + PREVIOUS] = previous;
    group.size--;
  }

  clear(): void {
    this.numbers.clear(this.initialRows);
    this.links = new Int32Array(this.initialRows * 2);
    for (const column of [this.groups, this.accessModes, this.users, this.permissions, this.rares]) column.length = 0;
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
