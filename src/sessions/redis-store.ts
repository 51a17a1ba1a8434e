/**
 * Sessions on Redis, shared by every replica: one node, a Sentinel-found primary, or a Redis Cluster.
 *
 * - Keys: `<prefix>session:<sha256(session key)>`: the raw session key is never stored. On a cluster every key of
 *   one ASID carries that ASID's hash tag instead (one slot per ASID, so each script below stays on one node); both
 *   layouts are in redis-keys.ts, and the names below are the one-node layout's.
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
import { type ChainableCommander, Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Keyring } from './crypto.js';
import type { EphemeralStore } from './ephemeral-store.js';
import { clusterKeys, type SessionKeys, singleNodeKeys } from './redis-keys.js';
import { type Session, sessionKeyHash } from './session.js';
import {
  checkRecordSize,
  DEFAULT_SESSION_LIMITS,
  type HeldPurpose,
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
 * The evicted sessions' keys are built from the prefix (they cannot be declared: the script finds them). On a
 * cluster that prefix carries the ASID's hash tag, so they are in the declared keys' slot (redis-keys.ts).
 */
const CREATE_BODY = `
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
`;
const CREATE_SESSION = `${CREATE_BODY}redis.call('sadd', KEYS[3], ARGV[9])
return evicted
`;
/** CREATE_SESSION on a cluster: KEYS session and index only (one slot); the ASID is listed by a call of its own. */
const CREATE_SESSION_IN_SLOT = `${CREATE_BODY}return evicted
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

/** A Redis Cluster found through a few of its nodes (the rules' `sessions.redis.cluster`, secrets resolved). */
export interface ClusterTarget {
  nodes: Array<{ host: string; port: number }>;
  username?: string;
  password?: string;
  tls: boolean;
}

/** Where the store is: one node (a redis:// or rediss:// URL), the primary Sentinel names, or a Redis Cluster. */
export type RedisTarget = string | SentinelTarget | ClusterTarget;

/** A client of one node (or a Sentinel-found primary) or of a cluster: the same commands, routed by key. */
export type RedisClient = Redis | Cluster;

function isClusterTarget(target: RedisTarget): target is ClusterTarget {
  return typeof target !== 'string' && 'nodes' in target;
}

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
  /** Told of each write that should have been on a replica and was not confirmed (for the metrics). */
  onUnacknowledged?: (purpose: HeldPurpose) => void;
}

/**
 * One connection per process, shared by the session store and the ephemeral stores. Until it has connected once,
 * calls wait for it (bounded by the timeout); after that a call during an outage fails at once rather than queue.
 * With `heldWrites`, a second connection carries the writes that wait for replicas (WAIT blocks its connection).
 */
export class RedisConnection {
  private readonly main: RedisLink;
  private readonly held: RedisLink | undefined;
  /** A Redis Cluster: keys that must be together share a hash tag (redis-keys.ts), and no operation spans slots. */
  readonly cluster: boolean;

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
    this.cluster = isClusterTarget(target);
    const open = (): RedisClient =>
      typeof target === 'string'
        ? new Redis(target, base)
        : isClusterTarget(target)
          ? new Cluster(target.nodes, clusterOptions(target, base, retry))
          : new Redis(sentinelOptions(target, base, retry));
    const sentinelMaster = typeof target === 'string' || isClusterTarget(target) ? undefined : target.masterName;
    const what = this.cluster ? 'session store (Redis Cluster)' : 'session store (Redis)';
    this.main = new RedisLink(open(), timeoutMs, logger, sentinelMaster, what);
    this.held = options.heldWrites
      ? new RedisLink(open(), timeoutMs, logger, sentinelMaster, `${what}, writes held by replicas`)
      : undefined;
  }

  get client(): RedisClient {
    return this.main.client;
  }

  /** The clients of every primary (one node: the client itself), for commands that walk one node (SCAN). */
  primaries(): Redis[] {
    const client = this.main.client;
    return client instanceof Cluster ? client.nodes('master') : [client];
  }

  /** Whether Redis has been ready at least once since this connection was opened. */
  get everConnected(): boolean {
    return this.main.everReady;
  }

  /** Runs a command; StoreUnavailableError when Redis cannot answer. */
  run<T>(f: (redis: RedisClient) => Promise<T>): Promise<T> {
    return this.main.run(f);
  }

  /** Runs a command on the connection for held writes (the shared one when there is none). */
  runHeld<T>(f: (redis: RedisClient) => Promise<T>): Promise<T> {
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
    readonly client: RedisClient,
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
      if (client instanceof Cluster) {
        // A cluster is many nodes: say how many primaries serve the slots (each node's address is in CLUSTER NODES).
        logger?.info({ primaries: client.nodes('master').length }, `${what} connected`);
        return;
      }
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

  async run<T>(f: (redis: RedisClient) => Promise<T>): Promise<T> {
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
      return await (this.client instanceof Cluster ? this.bounded(f(this.client)) : f(this.client));
    } catch (e) {
      throw new StoreUnavailableError(e instanceof Error ? e.message : 'Redis error');
    }
  }

  /**
   * A cluster call within the timeout in all: ioredis retries a call that meets a failover (MOVED, CLUSTERDOWN, a
   * closed node) after refreshing the slot map, and each try has its own command timeout.
   */
  private async bounded<T>(call: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from the cluster in ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      return await Promise.race([call, timedOut]);
    } finally {
      clearTimeout(timer);
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

/**
 * ioredis's Cluster options: the slot map is learnt from the seed nodes and refreshed on MOVED and on a failover;
 * calls go to primaries only (a replica may lag: a session read there could be stale). A call to a node that is down
 * is retried after the map is refreshed (the replica promoted), within the connection's timeout (RedisLink); while
 * no node answers, calls fail at once as for one node. Hostnames are kept as given (dnsLookup), so TLS verifies the
 * name the certificate carries (managed clusters announce their nodes by name).
 */
function clusterOptions(t: ClusterTarget, base: RedisOptions, retry: (times: number) => number): ClusterOptions {
  return {
    enableOfflineQueue: false,
    enableReadyCheck: true,
    scaleReads: 'master',
    clusterRetryStrategy: retry,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: base.connectTimeout ?? 2000,
    dnsLookup: (address, callback) => callback(null, address),
    redisOptions: {
      connectTimeout: base.connectTimeout,
      commandTimeout: base.commandTimeout,
      maxRetriesPerRequest: base.maxRetriesPerRequest,
      // No reconnectOnError: a node's error replies (MOVED, CLUSTERDOWN) are the cluster client's to follow; a
      // reconnection on each would drop that node's other calls.
      ...(t.username ? { username: t.username } : {}),
      ...(t.password ? { password: t.password } : {}),
      ...(t.tls ? { tls: {} } : {}),
    },
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
  /** The key layout: the original one, or the cluster's with a hash slot per ASID (redis-keys.ts). */
  private readonly keys: SessionKeys;

  constructor(
    private readonly conn: RedisConnection,
    private readonly options: RedisStoreOptions,
    private readonly ownsConnection = true,
  ) {
    this.now = options.now ?? Date.now;
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...options.limits };
    this.lifetimeMs =
      options.absoluteTimeoutSeconds !== undefined ? options.absoluteTimeoutSeconds * 1000 : MAX_LIFETIME_MS;
    this.keys = conn.cluster ? clusterKeys(options.keyPrefix) : singleNodeKeys(options.keyPrefix);
  }

  setLimits(limits: SessionLimits): void {
    this.limits = { ...limits };
  }

  /**
   * The session's key. The cluster layout finds a session only under its ASID: a caller that does not pass one is a
   * mistake in ers-bridge, not a client's (every path that names a session knows the calling ASID).
   */
  private keyOf(key: string, asid: string | undefined, hash = sessionKeyHash(key)): string {
    if (asid === undefined && this.keys.byAsid) throw new Error('the session store on Redis Cluster needs the ASID');
    return this.keys.session(asid ?? '', hash);
  }

  /** The ASID's index: its sessions' key hashes by creation time. */
  private indexOf(asid: string): string {
    return this.keys.index(asid);
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

  async create(key: string, session: Session, hold?: HeldPurpose): Promise<void> {
    const id = this.keyOf(key, session.asid);
    const sealed = this.seal(id, session);
    const now = this.now();
    const lifetimeMs = Math.max(this.lifetimeMs, session.expiresAt - session.createdAt);
    const inSlot = this.keys.byAsid;
    // On a cluster the list is in another slot: the ASID is listed first, so the list never misses a live index
    // (a create that fails after it leaves an ASID listed with nothing, which counts 0).
    if (inSlot) await this.conn.run((r) => r.sadd(this.keys.asids, session.asid));
    const args = [
      inSlot ? CREATE_SESSION_IN_SLOT : CREATE_SESSION,
      inSlot ? 2 : 3,
      id,
      this.indexOf(session.asid),
      ...(inSlot ? [] : [this.keys.asids]),
      sealed,
      this.ttlMs(session),
      sessionKeyHash(key),
      session.createdAt,
      now - lifetimeMs,
      this.limits.maxPerAsid,
      this.keys.sessionPrefix(session.asid),
      lifetimeMs,
      session.asid,
    ] as const;
    if (hold && (await this.writeAcknowledged(session.asid, hold, (p) => p.eval(...args))) !== undefined) return;
    await this.conn.run((r) => r.eval(...args));
  }

  async get(key: string, hash?: string, asid?: string): Promise<Session | undefined> {
    const id = this.keyOf(key, asid, hash);
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

  async update(key: string, session: Session, hold?: HeldPurpose): Promise<boolean> {
    const id = this.keyOf(key, session.asid);
    const sealed = this.seal(id, session);
    const ttl = this.ttlMs(session);
    if (hold) {
      const written = await this.writeAcknowledged(session.asid, hold, (p) => p.set(id, sealed, 'PX', ttl, 'XX'));
      if (written !== undefined) return written === 'OK';
    }
    return (await this.conn.run((r) => r.set(id, sealed, 'PX', ttl, 'XX'))) === 'OK';
  }

  /**
   * `update`, then WAIT for the replicas the rules ask for, strictly: 'held' only once they hold the write (the mark
   * that a refresh token is being spent must survive a failover before the token is sent). At most HELD_PER_ASID of
   * these per ASID and HELD_IN_ALL in all wait at once (each up to the acknowledgement's timeout), so one caller's
   * renewals cannot hold up another's; beyond that, and on any failure, 'not-held'.
   */
  async updateHeld(key: string, session: Session): Promise<HeldWrite> {
    const want = this.options.acknowledgement;
    if (!want || want.replicas === 0) return (await this.update(key, session)) ? 'held' : 'gone';
    const asid = session.asid;
    if (!this.takeHeldSlot(asid, HELD_IN_ALL)) return 'not-held';
    try {
      const id = this.keyOf(key, asid);
      const sealed = this.seal(id, session);
      const { written, replicas } = await this.writeThenWait(want, (p) =>
        p.set(id, sealed, 'PX', this.ttlMs(session), 'XX'),
      );
      if (written !== 'OK') return 'gone';
      return replicas >= want.replicas ? 'held' : 'not-held';
    } catch {
      return 'not-held';
    } finally {
      this.releaseHeldSlot(asid);
    }
  }

  /**
   * A write that should be on a replica before its caller is answered (a new session, a selected role, renewed
   * CIS2 tokens: a failover right after would otherwise lose it and send the user back to sign in), best effort:
   * it waits up to the acknowledgement's timeout, and when no replica confirms in time the write still stands, is
   * counted (onUnacknowledged) and logged (at most once per 10 s), and for the next 5 s such writes do not wait —
   * a replica that is down must not slow every A001 by the timeout. Returns the write's reply, or undefined when it
   * was not made here (no acknowledgement asked, replicas lagging, or no held-write slot free: the caller writes as
   * usual). These writes take at most half of the HELD_IN_ALL slots, so the strict marks always find room.
   */
  private async writeAcknowledged(
    asid: string,
    purpose: HeldPurpose,
    write: (p: ChainableCommander) => ChainableCommander,
  ): Promise<unknown> {
    const want = this.options.acknowledgement;
    if (!want || want.replicas === 0) return undefined;
    if (this.now() < this.replicasLaggingUntil || !this.takeHeldSlot(asid, HELD_IN_ALL / 2)) {
      this.unacknowledged(purpose, 'not waited for');
      return undefined;
    }
    try {
      const { written, replicas } = await this.writeThenWait(want, write);
      if (replicas < want.replicas) {
        this.replicasLaggingUntil = this.now() + 5_000;
        this.unacknowledged(purpose, `not on ${want.replicas} replica(s) within ${want.timeoutMs} ms`);
      }
      return written;
    } finally {
      this.releaseHeldSlot(asid);
    }
  }

  /**
   * The write and a WAIT as one pipeline on the held-writes connection: WAIT blocks the connection it is sent on
   * until the replicas hold that connection's writes, and the shared one carries every other call. On a cluster
   * ioredis sends the pipeline to the node owning the key's slot, and WAIT counts that node's replicas. A failed
   * write throws (StoreUnavailableError); a failed WAIT counts as no replica.
   */
  private async writeThenWait(
    want: { replicas: number; timeoutMs: number },
    write: (p: ChainableCommander) => ChainableCommander,
  ): Promise<{ written: unknown; replicas: number }> {
    const results = await this.conn.runHeld((r) =>
      write(r.pipeline()).call('WAIT', want.replicas, want.timeoutMs).exec(),
    );
    const [done, waited] = results ?? [];
    if (!done || done[0]) throw new StoreUnavailableError(done?.[0]?.message ?? 'no answer to the write');
    return { written: done[1], replicas: !waited || waited[0] ? 0 : Number(waited[1]) };
  }

  private unacknowledged(purpose: HeldPurpose, why: string): void {
    this.options.onUnacknowledged?.(purpose);
    const now = this.now();
    if (now - this.lastUnacknowledgedLog < 10_000) return;
    this.lastUnacknowledgedLog = now;
    this.options.logger?.warn(
      { write: purpose, why },
      'session write not confirmed by a Redis replica: a failover now could lose it (the user would sign in again)',
    );
  }

  private takeHeldSlot(asid: string, inAll: number): boolean {
    const mine = this.heldInFlight.get(asid) ?? 0;
    if (mine >= HELD_PER_ASID || this.heldInAll >= inAll) return false;
    this.heldInFlight.set(asid, mine + 1);
    this.heldInAll++;
    return true;
  }

  private releaseHeldSlot(asid: string): void {
    const left = (this.heldInFlight.get(asid) ?? 1) - 1;
    if (left === 0) this.heldInFlight.delete(asid);
    else this.heldInFlight.set(asid, left);
    this.heldInAll--;
  }

  private readonly heldInFlight = new Map<string, number>();
  private heldInAll = 0;
  private replicasLaggingUntil = 0;
  private lastUnacknowledgedLog = Number.NEGATIVE_INFINITY;

  async delete(key: string, asid?: string): Promise<boolean> {
    const id = this.keyOf(key, asid);
    const raw = await this.conn.run((r) => r.getdel(id));
    if (raw === null) return false;
    // The record names its ASID, whose index loses the member; a record nobody can open is pruned there later.
    let owner: string | undefined;
    try {
      owner = (JSON.parse(this.options.keyring.open(JSON.parse(raw), id)) as Session).asid;
    } catch {
      owner = undefined;
    }
    if (owner !== undefined) {
      const index = this.indexOf(owner);
      // Best effort: the session is gone already; a member left behind only counts until it is trimmed.
      await this.conn.run((r) => r.zrem(index, sessionKeyHash(key))).catch(() => undefined);
    }
    return true;
  }

  async lock(key: string, ttlMs: number, asid?: string): Promise<(() => Promise<void>) | undefined> {
    if (asid === undefined && this.keys.byAsid) throw new Error('the session store on Redis Cluster needs the ASID');
    const id = this.keys.lock(asid ?? '', sessionKeyHash(key));
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
    if (this.keys.byAsid) return this.sizeInCluster();
    return Number(await this.conn.run((r) => r.eval(COUNT_SESSIONS, 1, this.keys.asids, this.indexOf(''))));
  }

  /**
   * size() on a cluster: the ASIDs listed, then one ZCARD per ASID (sent together; each goes to its own node). No
   * ASID is struck off the list here: a script cannot see the list and an index in another slot at once, and a strike
   * racing a create would hide that ASID's sessions from the count. The list stays small: only ASIDs the rules let
   * call A001 are ever listed. size() feeds the live-sessions gauge, nothing that refuses or ends a session.
   */
  private async sizeInCluster(): Promise<number> {
    const asids = await this.conn.run((r) => r.smembers(this.keys.asids));
    let n = 0;
    for (let i = 0; i < asids.length; i += 100) {
      const counts = await this.conn.run((r) =>
        Promise.all(asids.slice(i, i + 100).map((a) => r.zcard(this.indexOf(a)))),
      );
      for (const c of counts) n += c;
    }
    return n;
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
