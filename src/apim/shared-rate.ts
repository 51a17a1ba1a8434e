/**
 * One APIM application's rate budget shared by every replica and worker through the Redis session store (issue 17):
 * GCRA in one Lua script per admitted call, on Redis's own clock (TIME), so replicas with skewed clocks agree.
 *
 * Keys (one hash tag per application, so all three are in one slot and the script works on Redis Cluster too):
 * - `<prefix>{rate:<tag>}`: the theoretical arrival time (TAT, ms of Redis time), PX until it has passed;
 * - `<prefix>{rate:<tag>}:pause`: APIM's 429 pause, PX = the pause (one replica told to back off, all do);
 * - `<prefix>{rate:<tag>}:members`: the processes that called lately (sorted by their last call, trimmed to 15 s):
 *   how many share the budget, for the fallback.
 *
 * A call the script cannot admit at once but can within maxWaitMs (and while the local queue has room) reserves
 * the next free slot: it waits here, FIFO, then goes without asking again — unless APIM's pause began meanwhile.
 * Beyond that it is refused at once (RateLimited: legacy 429 with Retry-After). While Redis is unreachable the
 * process falls back to an in-process RateLimiter at its share of the rate (rate ÷ the processes last seen, or
 * `localShareFloor` if higher), logs it once per outage, and asks Redis again at most once a second.
 */
import type { Logger } from 'pino';
import type { Clock, Timer } from '../runtime/clock.js';
import type { RedisConnection } from '../sessions/redis-store.js';
import { StoreUnavailableError } from '../sessions/store.js';
import { type RateBudget, type RateLimit, RateLimited, RateLimiter, type RateOutcome } from './rate-limiter.js';

/** Where the budget's source is: Redis (every replica's), this process's fallback share, or (memory store) its own. */
export type RateSource = 'shared' | 'local' | 'process';

/**
 * KEYS: TAT, pause, members. ARGV: emission interval T (ms), tolerance tau (ms), the longest wait this call may
 * reserve (ms), the member to heartbeat ('' none), the members' TTL (ms).
 * Answers {0, 0, n}: go now; {1, ms, n}: a slot is reserved in ms; {2, ms, n}: refused, free in ms. n: the members
 * (-1 when not heartbeating).
 */
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local maxWait = tonumber(ARGV[3])
local members = -1
if ARGV[4] ~= '' then
  local ttl = tonumber(ARGV[5])
  redis.call('ZADD', KEYS[3], now, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
  members = redis.call('ZCARD', KEYS[3])
end
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local wait = tat - tau - now
if wait < 0 then wait = 0 end
if wait > maxWait then return {2, math.ceil(wait), members} end
local nextTat = tat + T
redis.call('SET', KEYS[1], string.format('%.3f', nextTat), 'PX', math.ceil(nextTat - now) + 1000)
if wait == 0 then return {0, 0, members} end
return {1, math.ceil(wait), members}
`;

/**
 * KEYS: TAT, pause. ARGV: the pause (ms), tau (ms). Sets the pause (never shortening one) and moves the TAT past it,
 * so that no call is admitted before it ends and then only one slot at a time.
 */
const PAUSE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[2]) < ms then redis.call('SET', KEYS[2], '1', 'PX', ms) end
local tat = tonumber(redis.call('GET', KEYS[1])) or 0
local after = now + ms + tau
if tat < after then redis.call('SET', KEYS[1], string.format('%.3f', after), 'PX', math.ceil(ms + tau) + 1000) end
return 1
`;

/** How long a process counts among the members after its last call. */
export const MEMBER_TTL_MS = 15_000;
const HEARTBEAT_MS = 1_000;
const PROBE_MS = 1_000;

export interface RateKeys {
  tat: string;
  pause: string;
  members: string;
}

/** The application's keys: one hash tag, `{rate:<tag>}` (the prefix holds no brace). */
export function rateKeys(keyPrefix: string, application: string): RateKeys {
  const base = `${keyPrefix}{rate:${application}}`;
  return { tat: base, pause: `${base}:pause`, members: `${base}:members` };
}

export interface SharedRateOptions {
  connection: RedisConnection;
  /** The session store's key prefix. */
  keyPrefix: string;
  /** The application's tag (applicationTag). */
  application: string;
  /** The limit, burst resolved (1 with spike arrest). */
  limit: RateLimit;
  /** This process among the members (hostname:pid). */
  member: string;
  /** The lowest fallback share, requests/s. */
  localShareFloor?: number | undefined;
  clock: Clock;
  logger?: Logger | undefined;
  onOutcome?: (outcome: RateOutcome, source: RateSource) => void;
  /** Told when the source changes (and once at start: shared). */
  onSource?: (source: RateSource) => void;
}

interface Waiter {
  deadline: number;
  timer: Timer | undefined;
  reject: (e: Error) => void;
}

export class SharedRateBudget implements RateBudget {
  private readonly keys: RateKeys;
  private readonly intervalMs: number;
  private readonly toleranceMs: number;
  private lastBeat = Number.NEGATIVE_INFINITY;
  /** The processes sharing the budget, as Redis last said (1 until it has). */
  replicas = 1;
  /** The fallback limiter while Redis is unreachable. */
  private local: RateLimiter | undefined;
  private nextProbe = 0;
  private probing = false;
  /** APIM's pause as this process knows it (told here, or found on waking). */
  private pausedUntil = 0;
  private readonly waiters = new Set<Waiter>();
  private reserving = 0;

  constructor(private readonly o: SharedRateOptions) {
    this.keys = rateKeys(o.keyPrefix, o.application);
    this.intervalMs = 1000 / o.limit.requestsPerSecond;
    this.toleranceMs = (o.limit.burst - 1) * this.intervalMs;
    o.onSource?.('shared');
  }

  /** Which budget calls are under now. */
  get source(): RateSource {
    return this.local ? 'local' : 'shared';
  }

  /** The fallback share of this process, requests/s. */
  get localShare(): number {
    const rate = this.o.limit.requestsPerSecond;
    return Math.min(rate, Math.max(this.o.localShareFloor ?? 0, rate / Math.max(1, this.replicas)));
  }

  acquire(): Promise<void> {
    const now = this.o.clock.now();
    if (this.pausedUntil - now > this.o.limit.maxWaitMs) return this.refuse(this.pausedUntil - now, this.source);
    if (this.local) {
      if (this.probing || now < this.nextProbe) return this.local.acquire();
      this.probing = true;
    }
    return this.shared(now);
  }

  private async shared(now: number): Promise<void> {
    // Calls whose script is in flight may reserve a slot too: they count against the local queue's room.
    const full = this.waiters.size + this.reserving >= this.o.limit.maxQueue;
    const maxWait = full ? 0 : Math.max(0, this.o.limit.maxWaitMs);
    if (!full) this.reserving++;
    const beat = now - this.lastBeat >= HEARTBEAT_MS;
    let answer: [number, number, number];
    try {
      answer = (await this.o.connection.run((r) =>
        r.eval(
          ACQUIRE,
          3,
          this.keys.tat,
          this.keys.pause,
          this.keys.members,
          this.intervalMs,
          this.toleranceMs,
          maxWait,
          beat ? this.o.member : '',
          MEMBER_TTL_MS,
        ),
      )) as [number, number, number];
    } catch (e) {
      if (!(e instanceof StoreUnavailableError)) throw e;
      return this.fallBack(e).acquire();
    } finally {
      this.probing = false;
      if (!full) this.reserving--;
    }
    if (beat) this.lastBeat = now;
    const [code, ms, members] = answer;
    if (members > 0) this.replicas = members;
    if (this.local) this.recovered();
    if (code === 0) {
      this.o.onOutcome?.('admitted', 'shared');
      return;
    }
    if (code === 2) return this.refuse(ms, 'shared');
    this.o.onOutcome?.('queued', 'shared');
    await this.wait(ms, this.o.clock.now() + this.o.limit.maxWaitMs);
    await this.afterPause();
    this.o.onOutcome?.('admitted', 'shared');
  }

  /** Waits for a reserved slot in the local queue; rejected at once if APIM's pause outlasts its deadline. */
  private wait(ms: number, deadline: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { deadline, timer: undefined, reject };
      w.timer = this.o.clock.after(ms, () => {
        this.waiters.delete(w);
        resolve();
      });
      this.waiters.add(w);
    });
  }

  /** A call that waited checks APIM's pause, which may have begun at another replica meanwhile. */
  private async afterPause(): Promise<void> {
    let left = this.pausedUntil - this.o.clock.now();
    if (left <= 0) {
      left = await this.o.connection.run((r) => r.pttl(this.keys.pause)).catch(() => 0);
      if (left > 0) this.pausedUntil = this.o.clock.now() + left;
    }
    if (left <= 0) return;
    // The slot was the call's; APIM's pause is longer than it may still wait? Refused now, else after the pause.
    if (left > this.o.limit.maxWaitMs) {
      this.o.onOutcome?.('refused', 'shared');
      throw new RateLimited(Math.max(1, Math.ceil(left / 1000)));
    }
    await this.o.clock.sleep(left);
  }

  pause(seconds: number): void {
    const ms = seconds * 1000;
    const now = this.o.clock.now();
    this.pausedUntil = Math.max(this.pausedUntil, now + ms);
    for (const w of this.waiters) {
      if (w.deadline < this.pausedUntil) {
        w.timer?.cancel();
        this.waiters.delete(w);
        this.o.onOutcome?.('refused', 'shared');
        w.reject(new RateLimited(Math.max(1, Math.ceil((this.pausedUntil - now) / 1000))));
      }
    }
    this.local?.pause(seconds);
    this.o.connection
      .run((r) => r.eval(PAUSE, 2, this.keys.tat, this.keys.pause, ms, this.toleranceMs))
      .catch(() => this.fallBack(undefined).pause(seconds));
  }

  clearPause(): void {
    this.pausedUntil = 0;
    this.local?.clearPause();
    this.o.connection.run((r) => r.del(this.keys.pause, this.keys.tat)).catch(() => undefined);
  }

  private refuse(ms: number, source: RateSource): Promise<never> {
    this.o.onOutcome?.('refused', source);
    return Promise.reject(new RateLimited(Math.max(1, Math.ceil(ms / 1000))));
  }

  /** Redis did not answer: this process's share from now on (until Redis answers again). */
  private fallBack(e: Error | undefined): RateLimiter {
    this.nextProbe = this.o.clock.now() + PROBE_MS;
    if (this.local) return this.local;
    const share = this.localShare;
    const replicas = Math.max(1, this.replicas);
    const limit: RateLimit = {
      ...this.o.limit,
      requestsPerSecond: share,
      burst: Math.max(1, Math.floor(this.o.limit.burst / replicas)),
    };
    const onOutcome = this.o.onOutcome;
    this.local = new RateLimiter(limit, this.o.clock, onOutcome ? (outcome) => onOutcome(outcome, 'local') : undefined);
    const pauseLeft = this.pausedUntil - this.o.clock.now();
    if (pauseLeft > 0) this.local.pause(pauseLeft / 1000);
    this.o.logger?.warn(
      {
        application: this.o.application,
        replicas,
        requestsPerSecond: share,
        ...(e ? { err: { message: e.message } } : {}),
      },
      'APIM rate budget: Redis unreachable, this process falls back to its share of the rate',
    );
    this.o.onSource?.('local');
    return this.local;
  }

  private recovered(): void {
    this.local = undefined;
    this.o.logger?.info({ application: this.o.application }, 'APIM rate budget: shared in Redis again');
    this.o.onSource?.('shared');
  }
}
