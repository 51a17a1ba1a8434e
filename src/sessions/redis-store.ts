/**
 * Sessions on Redis, shared by every replica.
 *
 * - Keys: `<prefix>session:<sha256(session key)>`: the raw session key is never stored.
 * - Values: the whole session sealed with AES-256-GCM (crypto.ts), so tokens, names and roles are never in clear.
 * - Expiry by Redis itself: each write and each read sets the TTL to the idle timeout, capped by the absolute
 *   lifetime; A003's DEL ends the session for every replica at once.
 * - A quota per ASID: `<prefix>asid-sessions:<ASID>` is a sorted set of that ASID's session-key hashes scored by
 *   creation time, written by the same Lua script as the session itself (atomic), which then pops and deletes the
 *   ASID's oldest sessions beyond `maxPerAsid` — only that ASID's. The index stays bounded: never more than
 *   `maxPerAsid` members (the script trims it on every create), members older than the absolute lifetime are dropped
 *   by every create (their sessions are gone), A003 and the absolute-expiry delete remove their member, and the
 *   index key itself expires an absolute lifetime after the ASID's last create. A session that ended by idling keeps
 *   its member until one of those removes it: it still counts toward the quota meanwhile (the quota errs on the
 *   side of fewer sessions, never more). `<prefix>session-asids` lists the ASIDs with an index, so `size()` is one
 *   ZCARD per ASID instead of a SCAN of every key.
 * - Records larger than `maxRecordBytes` (the session's JSON, before sealing) are refused: SessionTooLarge.
 * - Locks: `SET NX PX` with a random owner token, released by compare-and-delete.
 * - Failures: with no offline queue and one retry, a call fails fast with StoreUnavailableError (a legacy 503 with
 *   Retry-After) while ioredis keeps reconnecting in the background; nothing crashes and it recovers by itself.
 */
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Keyring } from './crypto.js';
import type { EphemeralStore } from './ephemeral-store.js';
import { type Session, sessionKeyHash } from './session.js';
import {
  checkRecordSize,
  DEFAULT_SESSION_LIMITS,
  type HeldWrite,
  type SessionLimits,
  type SessionStore,
  StoreUnavailableError,
} from './store.js';

const RELEASE_LOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * A001's write, atomic: the sealed session with its TTL, its member in the ASID's index, then the index trimmed —
 * members past the absolute lifetime dropped, and the ASID's oldest beyond the quota popped and their sessions
 * deleted. KEYS: session, index, list of indexed ASIDs. ARGV: sealed record, TTL ms, member (key hash), score
 * (creation time), oldest live score, quota, session key prefix, index TTL ms (never shortened), ASID. Returns the
 * sessions evicted.
 * The evicted sessions' keys are built from the prefix (a single Redis, not a cluster: the keys are not declared).
 */
const CREATE_SESSION = `
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('zadd', KEYS[2], ARGV[4], ARGV[3])
redis.call('zremrangebyscore', KEYS[2], '-inf', '(' .. ARGV[5])
local over = redis.call('zcard', KEYS[2]) - tonumber(ARGV[6])
local evicted = 0
if over > 0 then
  local oldest = redis.call('zpopmin', KEYS[2], over)
  for i = 1, #oldest, 2 do evicted = evicted + redis.call('del', ARGV[7] .. oldest[i]) end
end
if redis.call('pttl', KEYS[2]) < tonumber(ARGV[8]) then redis.call('pexpire', KEYS[2], ARGV[8]) end
redis.call('sadd', KEYS[3], ARGV[9])
return evicted
`;

/**
 * size(): the members of every ASID index listed, and ASIDs whose index has expired struck off the list — in one
 * script, so a create (which lists its ASID with its index, atomically) cannot slip in between. KEYS: the list.
 * ARGV: the index key prefix.
 */
const COUNT_SESSIONS = `
local n = 0
for _, asid in ipairs(redis.call('smembers', KEYS[1])) do
  local c = redis.call('zcard', ARGV[1] .. asid)
  if c == 0 then redis.call('srem', KEYS[1], asid) end
  n = n + c
end
return n
`;

/** The longest absolute lifetime the rules allow (7 days): the index's bound when the store is not told its own. */
const MAX_LIFETIME_MS = 7 * 86_400_000;

/** A Redis primary found through Redis Sentinel (the rules' `sessions.redis.sentinel`, secrets resolved). */
export interface SentinelTarget {
  sentinels: Array<{ host: string; port: number }>;
  masterName: string;
  username?: string;
  password?: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
  tls: boolean;
}

/** Where the store is: one node (a redis:// or rediss:// URL), or the primary Sentinel names. */
export type RedisTarget = string | SentinelTarget;

export interface RedisStoreOptions {
  keyPrefix: string;
  keyring: Keyring;
  idleTimeoutSeconds: number;
  /** Sessions' absolute lifetime: index members older than it are dropped (default the rules' maximum, 7 days). */
  absoluteTimeoutSeconds?: number;
  /** Per-ASID quota and record size (default: the rules' defaults). */
  limits?: Partial<SessionLimits>;
  logger?: Logger;
  now?: () => number;
  /** Milliseconds to wait for a connection or an answer before failing a call (default 2000). */
  timeoutMs?: number;
  /** Replicas that must hold a write that has to survive a failover, and how long to wait for them (WAIT). */
  acknowledgement?: { replicas: number; timeoutMs: number } | undefined;
}

/**
 * One connection per process, shared by the session store and the ephemeral stores. Until it has connected once,
 * calls wait for it (bounded by the timeout); after that a call during an outage fails at once rather than queue.
 * With `heldWrites`, a second connection carries the writes that wait for replicas (WAIT blocks its connection).
 */
export class RedisConnection {
  private readonly main: RedisLink;
  private readonly held: RedisLink | undefined;

  constructor(
    target: RedisTarget,
    readonly timeoutMs: number,
    logger?: Logger,
    options: { heldWrites?: boolean } = {},
  ) {
    const retry = (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 3000);
    const base: RedisOptions = {
      lazyConnect: false,
      enableOfflineQueue: false, // fail fast while disconnected instead of queueing requests
      maxRetriesPerRequest: 1,
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs,
      enableReadyCheck: true,
      retryStrategy: retry,
      reconnectOnError: () => true,
    };
    const open = () =>
      typeof target === 'string' ? new Redis(target, base) : new Redis(sentinelOptions(target, base, retry));
    const sentinelMaster = typeof target === 'string' ? undefined : target.masterName;
    this.main = new RedisLink(open(), timeoutMs, logger, sentinelMaster, 'session store (Redis)');
    this.held = options.heldWrites
      ? new RedisLink(open(), timeoutMs, logger, sentinelMaster, 'session store (Redis, writes held by replicas)')
      : undefined;
  }

  get client(): Redis {
    return this.main.client;
  }

  /** Whether Redis has been ready at least once since this connection was opened. */
  get everConnected(): boolean {
    return this.main.everReady;
  }

  /** Runs a command; StoreUnavailableError when Redis cannot answer. */
  run<T>(f: (redis: Redis) => Promise<T>): Promise<T> {
    return this.main.run(f);
  }

  /** Runs a command on the connection for held writes (the shared one when there is none). */
  runHeld<T>(f: (redis: Redis) => Promise<T>): Promise<T> {
    return (this.held ?? this.main).run(f);
  }

  async close(): Promise<void> {
    await Promise.all([this.main.close(), this.held?.close()]);
  }
}

/** One ioredis client: its outage warnings (at most one per 10 s), its "connected" line, its first-ready wait. */
class RedisLink {
  everReady = false;
  private readonly firstReady: Promise<void>;

  constructor(
    readonly client: Redis,
    private readonly timeoutMs: number,
    logger: Logger | undefined,
    sentinelMaster: string | undefined,
    what: string,
  ) {
    let lastWarn = 0;
    // Without an 'error' listener ioredis would raise unhandled errors; log, at most every 10 s.
    client.on('error', (e: Error) => {
      const now = Date.now();
      if (now - lastWarn > 10_000) {
        lastWarn = now;
        logger?.warn({ err: { message: e.message, code: (e as NodeJS.ErrnoException).code } }, `${what} unavailable`);
      }
    });
    this.firstReady = new Promise((resolve) => client.once('ready', () => resolve()));
    client.on('ready', () => {
      this.everReady = true;
      const stream = client.stream;
      // Which node answers: after a Sentinel failover, ops see the new primary here.
      logger?.info(
        {
          node: stream?.remoteAddress ? `${stream.remoteAddress}:${stream.remotePort}` : undefined,
          ...(sentinelMaster !== undefined ? { sentinelMaster } : {}),
        },
        `${what} connected`,
      );
    });
  }

  async run<T>(f: (redis: Redis) => Promise<T>): Promise<T> {
    if (!this.everReady) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), this.timeoutMs);
      });
      const first = await Promise.race([this.firstReady.then(() => 'ready' as const), timedOut]);
      clearTimeout(timer);
      if (first === 'timeout') throw new StoreUnavailableError('no connection to Redis yet');
    }
    try {
      return await f(this.client);
    } catch (e) {
      throw new StoreUnavailableError(e instanceof Error ? e.message : 'Redis error');
    }
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}

/**
 * ioredis's Sentinel options: the sentinels are asked for the primary on every (re)connection, and the failover
 * detector drops the connection as soon as a sentinel announces a new primary, so calls move to it within about a
 * second instead of waiting for the old one to time out. The connection to the primary fails fast as for one node.
 */
function sentinelOptions(t: SentinelTarget, base: RedisOptions, retry: (times: number) => number): RedisOptions {
  return {
    ...base,
    sentinels: t.sentinels,
    name: t.masterName,
    role: 'master',
    failoverDetector: true,
    sentinelRetryStrategy: retry,
    sentinelCommandTimeout: base.commandTimeout,
    ...(t.username ? { username: t.username } : {}),
    ...(t.password ? { password: t.password } : {}),
    ...(t.sentinelUsername ? { sentinelUsername: t.sentinelUsername } : {}),
    ...(t.sentinelPassword ? { sentinelPassword: t.sentinelPassword } : {}),
    ...(t.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
  };
}

/** Opens the process's Redis connection (see RedisConnection). */
export function connectRedis(
  target: RedisTarget,
  timeoutMs: number,
  logger?: Logger,
  options: { heldWrites?: boolean } = {},
): RedisConnection {
  return new RedisConnection(target, timeoutMs, logger, options);
}

/** Held writes (updateHeld) waiting at once: per ASID, and in all. */
const HELD_PER_ASID = 4;
const HELD_IN_ALL = 64;

export class RedisSessionStore implements SessionStore {
  private readonly now: () => number;
  private limits: SessionLimits;
  private readonly lifetimeMs: number;

  constructor(
    private readonly conn: RedisConnection,
    private readonly options: RedisStoreOptions,
    private readonly ownsConnection = true,
  ) {
    this.now = options.now ?? Date.now;
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...options.limits };
    this.lifetimeMs =
      options.absoluteTimeoutSeconds !== undefined ? options.absoluteTimeoutSeconds * 1000 : MAX_LIFETIME_MS;
  }

  setLimits(limits: SessionLimits): void {
    this.limits = { ...limits };
  }

  private get sessionPrefix(): string {
    return `${this.options.keyPrefix}session:`;
  }

  private keyOf(key: string, hash = sessionKeyHash(key)): string {
    return `${this.sessionPrefix}${hash}`;
  }

  /** The ASID's index: its sessions' key hashes by creation time. */
  private indexOf(asid: string): string {
    return `${this.options.keyPrefix}asid-sessions:${asid}`;
  }

  private get asidsKey(): string {
    return `${this.options.keyPrefix}session-asids`;
  }

  /** TTL for a session now: the idle timeout, but never past its absolute end. */
  private ttlMs(session: Session): number {
    return Math.max(1, Math.min(this.options.idleTimeoutSeconds * 1000, session.expiresAt - this.now()));
  }

  /** The sealed record; SessionTooLarge when the session's JSON is over the limit. */
  private seal(id: string, session: Session): string {
    const json = JSON.stringify(session);
    checkRecordSize(json, this.limits);
    return JSON.stringify(this.options.keyring.seal(json, id));
  }

  async create(key: string, session: Session): Promise<void> {
    const id = this.keyOf(key);
    const sealed = this.seal(id, session);
    const now = this.now();
    const lifetimeMs = Math.max(this.lifetimeMs, session.expiresAt - session.createdAt);
    await this.conn.run((r) =>
      r.eval(
        CREATE_SESSION,
        3,
        id,
        this.indexOf(session.asid),
        this.asidsKey,
        sealed,
        this.ttlMs(session),
        sessionKeyHash(key),
        session.createdAt,
        now - lifetimeMs,
        this.limits.maxPerAsid,
        this.sessionPrefix,
        lifetimeMs,
        session.asid,
      ),
    );
  }

  async get(key: string, hash?: string): Promise<Session | undefined> {
    const id = this.keyOf(key, hash);
    const idleMs = this.options.idleTimeoutSeconds * 1000;
    const raw = await this.conn.run((r) => r.getex(id, 'PX', idleMs));
    if (raw === null) return undefined;
    let session: Session;
    try {
      session = JSON.parse(this.options.keyring.open(JSON.parse(raw), id)) as Session;
    } catch (e) {
      // A record nobody can open is as good as none; say why in the log (no content).
      this.options.logger?.warn({ reason: (e as Error).message }, 'unreadable session record ignored');
      return undefined;
    }
    const remaining = session.expiresAt - this.now();
    if (remaining <= 0) {
      await this.conn.run((r) => r.multi().del(id).zrem(this.indexOf(session.asid), sessionKeyHash(key)).exec());
      return undefined;
    }
    if (remaining < idleMs) await this.conn.run((r) => r.pexpire(id, remaining));
    return session;
  }

  async update(key: string, session: Session): Promise<boolean> {
    return this.replace(key, session, (f) => this.conn.run(f));
  }

  /** Replaces a live session's record (SET … XX) over the given connection; false when it no longer exists. */
  private async replace(
    key: string,
    session: Session,
    via: (f: (redis: Redis) => Promise<unknown>) => Promise<unknown>,
  ): Promise<boolean> {
    const id = this.keyOf(key);
    const sealed = this.seal(id, session);
    return (await via((r) => r.set(id, sealed, 'PX', this.ttlMs(session), 'XX'))) === 'OK';
  }

  /**
   * `update`, then WAIT for the replicas the rules ask for. Both go on a connection of their own: WAIT blocks the
   * connection it is sent on until the replicas hold that connection's writes, and the shared one carries every
   * other call. At most HELD_PER_ASID of these per ASID and HELD_IN_ALL in all wait at once (each up to the
   * acknowledgement's timeout), so one caller's renewals cannot hold up another's; beyond that, 'not-held'.
   */
  async updateHeld(key: string, session: Session): Promise<HeldWrite> {
    const want = this.options.acknowledgement;
    if (!want || want.replicas === 0) return (await this.update(key, session)) ? 'held' : 'gone';
    const asid = session.asid;
    const mine = this.heldInFlight.get(asid) ?? 0;
    if (mine >= HELD_PER_ASID || this.heldInAll >= HELD_IN_ALL) return 'not-held';
    this.heldInFlight.set(asid, mine + 1);
    this.heldInAll++;
    try {
      if (!(await this.replace(key, session, (f) => this.conn.runHeld(f)))) return 'gone';
      const replicas = await this.conn.runHeld((r) => r.call('WAIT', want.replicas, want.timeoutMs));
      return Number(replicas) >= want.replicas ? 'held' : 'not-held';
    } catch {
      return 'not-held';
    } finally {
      const left = (this.heldInFlight.get(asid) ?? 1) - 1;
      if (left === 0) this.heldInFlight.delete(asid);
      else this.heldInFlight.set(asid, left);
      this.heldInAll--;
    }
  }

  private readonly heldInFlight = new Map<string, number>();
  private heldInAll = 0;

  async delete(key: string): Promise<boolean> {
    const id = this.keyOf(key);
    const raw = await this.conn.run((r) => r.getdel(id));
    if (raw === null) return false;
    // The record names its ASID, whose index loses the member; a record nobody can open is pruned there later.
    let asid: string | undefined;
    try {
      asid = (JSON.parse(this.options.keyring.open(JSON.parse(raw), id)) as Session).asid;
    } catch {
      asid = undefined;
    }
    if (asid !== undefined) {
      const index = this.indexOf(asid);
      // Best effort: the session is gone already; a member left behind only counts until it is trimmed.
      await this.conn.run((r) => r.zrem(index, sessionKeyHash(key))).catch(() => undefined);
    }
    return true;
  }

  async lock(key: string, ttlMs: number): Promise<(() => Promise<void>) | undefined> {
    const id = `${this.options.keyPrefix}lock:${sessionKeyHash(key)}`;
    const owner = randomUUID();
    const r = await this.conn.run((r) => r.set(id, owner, 'PX', ttlMs, 'NX'));
    if (r !== 'OK') return undefined;
    return async () => {
      await this.conn.run((r) => r.eval(RELEASE_LOCK, 1, id, owner)).catch(() => undefined);
    };
  }

  everReached(): boolean {
    return this.conn.everConnected;
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.conn.run((r) => r.ping())) === 'PONG';
    } catch {
      return false;
    }
  }

  /**
   * The sessions the ASID indexes hold: one ZCARD per ASID that has created sessions, not a SCAN of the key space.
   * Approximate: a session that ended by idling counts until its member is trimmed (see the quota above).
   */
  async size(): Promise<number> {
    return Number(await this.conn.run((r) => r.eval(COUNT_SESSIONS, 1, this.asidsKey, this.indexOf(''))));
  }

  /** The sessions one ASID's index holds (the quota's count). */
  async sizeOf(asid: string): Promise<number> {
    return this.conn.run((r) => r.zcard(this.indexOf(asid)));
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await this.conn.close();
  }
}

/** Single-use records (sign-ins in progress, one-time codes) on Redis: sealed, with GETDEL for take-once. */
export class RedisEphemeralStore<T extends object> implements EphemeralStore<T> {
  constructor(
    private readonly conn: RedisConnection,
    private readonly keyPrefix: string,
    private readonly keyring: Keyring,
  ) {}

  private keyOf(key: string): string {
    return `${this.keyPrefix}${sessionKeyHash(key)}`;
  }

  async put(key: string, value: T, ttlMs: number): Promise<void> {
    const id = this.keyOf(key);
    const sealed = JSON.stringify(this.keyring.seal(JSON.stringify(value), id));
    await this.conn.run((r) => r.set(id, sealed, 'PX', Math.max(1, ttlMs)));
  }

  async take(key: string): Promise<T | undefined> {
    const id = this.keyOf(key);
    const raw = await this.conn.run((r) => r.getdel(id));
    if (raw === null) return undefined;
    try {
      return JSON.parse(this.keyring.open(JSON.parse(raw), id)) as T;
    } catch {
      return undefined;
    }
  }

  async close(): Promise<void> {
    // The connection belongs to the session store.
  }
}
