/**
 * Sessions on Redis, shared by every replica.
 *
 * - Keys: `<prefix>session:<sha256(session key)>`: the raw session key is never stored.
 * - Values: the whole session sealed with AES-256-GCM (crypto.ts), so tokens, names and roles are never in clear.
 * - Expiry by Redis itself: each write and each read sets the TTL to the idle timeout, capped by the absolute
 *   lifetime; A003's DEL ends the session for every replica at once.
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
import { type SessionStore, StoreUnavailableError } from './store.js';

const RELEASE_LOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export interface RedisStoreOptions {
  url: string;
  keyPrefix: string;
  keyring: Keyring;
  idleTimeoutSeconds: number;
  logger?: Logger;
  now?: () => number;
  /** Milliseconds to wait for a connection or an answer before failing a call (default 2000). */
  timeoutMs?: number;
}

/**
 * One connection per process, shared by the session store and the ephemeral stores. Until it has connected once,
 * calls wait for it (bounded by the timeout); after that a call during an outage fails at once rather than queue.
 */
export class RedisConnection {
  readonly client: Redis;
  private everReady = false;
  private readonly firstReady: Promise<void>;

  constructor(
    url: string,
    readonly timeoutMs: number,
    logger?: Logger,
  ) {
    const options: RedisOptions = {
      lazyConnect: false,
      enableOfflineQueue: false, // fail fast while disconnected instead of queueing requests
      maxRetriesPerRequest: 1,
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs,
      enableReadyCheck: true,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 3000),
      reconnectOnError: () => true,
    };
    this.client = new Redis(url, options);
    let lastWarn = 0;
    // Without an 'error' listener ioredis would raise unhandled errors; log, at most every 10 s.
    this.client.on('error', (e: Error) => {
      const now = Date.now();
      if (now - lastWarn > 10_000) {
        lastWarn = now;
        logger?.warn(
          { err: { message: e.message, code: (e as NodeJS.ErrnoException).code } },
          'session store (Redis) unavailable',
        );
      }
    });
    this.firstReady = new Promise((resolve) => this.client.once('ready', () => resolve()));
    this.client.on('ready', () => {
      this.everReady = true;
      logger?.info('session store (Redis) connected');
    });
  }

  /** Runs a command; StoreUnavailableError when Redis cannot answer. */
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

/** Opens the process's Redis connection (see RedisConnection). */
export function connectRedis(url: string, timeoutMs: number, logger?: Logger): RedisConnection {
  return new RedisConnection(url, timeoutMs, logger);
}

export class RedisSessionStore implements SessionStore {
  private readonly now: () => number;

  constructor(
    private readonly conn: RedisConnection,
    private readonly options: RedisStoreOptions,
    private readonly ownsConnection = true,
  ) {
    this.now = options.now ?? Date.now;
  }

  private keyOf(key: string): string {
    return `${this.options.keyPrefix}session:${sessionKeyHash(key)}`;
  }

  /** TTL for a session now: the idle timeout, but never past its absolute end. */
  private ttlMs(session: Session): number {
    return Math.max(1, Math.min(this.options.idleTimeoutSeconds * 1000, session.expiresAt - this.now()));
  }

  private seal(id: string, session: Session): string {
    return JSON.stringify(this.options.keyring.seal(JSON.stringify(session), id));
  }

  async create(key: string, session: Session): Promise<void> {
    const id = this.keyOf(key);
    await this.conn.run((r) => r.set(id, this.seal(id, session), 'PX', this.ttlMs(session)));
  }

  async get(key: string): Promise<Session | undefined> {
    const id = this.keyOf(key);
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
      await this.conn.run((r) => r.del(id));
      return undefined;
    }
    if (remaining < idleMs) await this.conn.run((r) => r.pexpire(id, remaining));
    return session;
  }

  async update(key: string, session: Session): Promise<boolean> {
    const id = this.keyOf(key);
    const r = await this.conn.run((r) => r.set(id, this.seal(id, session), 'PX', this.ttlMs(session), 'XX'));
    return r === 'OK';
  }

  async delete(key: string): Promise<boolean> {
    return (await this.conn.run((r) => r.del(this.keyOf(key)))) > 0;
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

  async ping(): Promise<boolean> {
    try {
      return (await this.conn.run((r) => r.ping())) === 'PONG';
    } catch {
      return false;
    }
  }

  async size(): Promise<number> {
    let n = 0;
    let cursor = '0';
    do {
      const [next, keys] = await this.conn.run((r) =>
        r.scan(cursor, 'MATCH', `${this.options.keyPrefix}session:*`, 'COUNT', 1000),
      );
      cursor = next;
      n += keys.length;
    } while (cursor !== '0');
    return n;
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
