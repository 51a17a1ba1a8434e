/**
 * The comparisons shared by every replica, on the Redis of the session store: each replica's comparison store
 * (store.ts) mirrors its records and call counts here, and the admin pages of every replica read them from here, so
 * they all show the same figures, whichever replica answered.
 *
 * Keys, under `<sessions.redis.keyPrefix>cmp:` — every one bounded and expiring:
 *
 *   b5:<start>, b60:<start>   the figures of a 5-minute / 1-hour bucket (buckets.ts), a hash written by one Lua
 *                             script (atomic, with its bounds); expire 26 hours / `comparison.retentionDays` after
 *   idx5, idx60               sorted sets of the bucket starts, trimmed to the same times on every write
 *   s:<A-code>                the latest records of an A-code (a list capped at `samplesPerCode`)
 *   replicas                  hash: process (hostname:pid) → when it last counted (pruned after the retention)
 *   meta                      hash: since (the first record after the last reset), resetAt
 *   reset-token:<sha256>      a reset confirmation, single-use (GETDEL), 10 minutes
 *
 * On Redis Cluster the prefix is `<sessions.redis.keyPrefix>{cmp}:`: one hash tag for them all, so each pipeline
 * and transaction below (several keys at once) is in one slot, on one node. Their traffic is small (counts written
 * once a second, reads by the admin pages), so one slot for them is no hot spot.
 *
 * Plain JSON, not sealed as sessions are: everything here has been redacted by the comparison store first (no NHS
 * number, name, date of birth, address, token or session key), exactly what the comparison file holds on disk, and
 * an operator may read it with redis-cli. Sessions are sealed because they hold APIM tokens and user names.
 *
 * Writes are fire-and-forget (never in a legacy call's way); call counts are coalesced and written once a second.
 * When Redis cannot be read, the pages fall back to this process's own figures and say so.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { RedisConnection } from '../sessions/redis-store.js';
import {
  APPLY_ENTITIES_LUA,
  type BucketLimits,
  COARSE_MS,
  callEntities,
  type Entity,
  entityArgs,
  FINE_MS,
  FINE_RETENTION_MS,
  Figures,
  recordEntities,
  summarise,
  tierFor,
  trendOf,
} from './buckets.js';
import { type ComparisonMirror, type ComparisonStore, failedOnApim, hashToken, RESET_TOKEN_TTL_MS } from './store.js';
import type { ComparisonReader, ComparisonRecord, ComparisonSummary, ComparisonTrend, TimeWindow } from './types.js';

export interface RedisComparisonsOptions {
  /** The key prefix of the comparisons (`<sessions.redis.keyPrefix>cmp:`). */
  keyPrefix: string;
  /** Figures older than this are dropped (Redis expires them). */
  retentionMs: number;
  samplesPerCode: number;
  limits: BucketLimits;
  appRestricted: (aCode: string) => boolean;
  codeName: (aCode: string) => string | undefined;
  /** This process (hostname:pid). */
  replica: string;
  /** This process's own store: the pages fall back to it when Redis cannot be read. */
  local: ComparisonStore;
  now?: () => number;
  logger?: Logger;
  /** How often coalesced call counts are written (default 1000 ms). */
  flushMs?: number;
}

/** The comparisons' key prefix under the session store's (one hash tag on a cluster, see above). */
export function comparisonKeyPrefix(sessionsKeyPrefix: string, cluster: boolean): string {
  return cluster ? `${sessionsKeyPrefix}{cmp}:` : `${sessionsKeyPrefix}cmp:`;
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

export class RedisComparisons implements ComparisonReader, ComparisonMirror {
  private readonly now: () => number;
  private readonly inFlight = new Set<Promise<void>>();
  private pendingCalls = new Map<string, Map<string, number>>();
  private timer: NodeJS.Timeout | undefined;
  private lastWarn = 0;
  private closed = false;
  /** Writes Redis refused or could not take (the records are still in this process's figures and file). */
  writeErrors = 0;

  constructor(
    private readonly conn: RedisConnection,
    private readonly o: RedisComparisonsOptions,
  ) {
    this.now = o.now ?? Date.now;
  }

  private key(name: string): string {
    return `${this.o.keyPrefix}${name}`;
  }

  reader(): ComparisonReader {
    return this;
  }

  // ---- writing

  private track(p: Promise<unknown>): void {
    const done: Promise<void> = p.then(
      () => undefined,
      (e: unknown) => {
        this.writeErrors++;
        const now = Date.now();
        if (now - this.lastWarn > 10_000) {
          this.lastWarn = now;
          this.o.logger?.warn(
            { err: { message: (e as Error).message } },
            'shared comparisons (Redis): a write failed; this replica keeps its own figures',
          );
        }
      },
    );
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  /** The commands that add entities at a time to both tiers (the 5-minute one while recent). */
  private bucketWrites(
    pipe: ReturnType<RedisConnection['client']['pipeline']>,
    t: number,
    entities: readonly Entity[],
  ): void {
    const now = this.now();
    if (t < now - this.o.retentionMs) return;
    const args = entityArgs(entities);
    const tiers: Array<[number, string, number]> = [[COARSE_MS, '60', this.o.retentionMs + COARSE_MS]];
    if (t >= now - FINE_RETENTION_MS) tiers.push([FINE_MS, '5', FINE_RETENTION_MS + FINE_MS]);
    for (const [width, name, ttl] of tiers) {
      const start = Math.floor(t / width) * width;
      const idx = this.key(`idx${name}`);
      pipe.eval(APPLY_ENTITIES_LUA, 1, this.key(`b${name}:${start}`), ttl, ...args);
      pipe.zadd(idx, start, String(start));
      pipe.zremrangebyscore(idx, '-inf', `(${now - ttl}`);
      pipe.pexpire(idx, ttl);
    }
    pipe.hset(this.key('replicas'), this.o.replica, String(now));
    pipe.pexpire(this.key('replicas'), this.o.retentionMs + COARSE_MS);
  }

  private exec(build: (pipe: ReturnType<RedisConnection['client']['pipeline']>) => void): Promise<void> {
    return this.conn.run(async (r) => {
      const pipe = r.pipeline();
      build(pipe);
      const results = (await pipe.exec()) ?? [];
      const failed = results.find(([err]) => err);
      if (failed?.[0]) throw failed[0];
    });
  }

  /** Mirrors one (redacted) record: its figures, and its place among the latest samples of its A-code. */
  add(r: ComparisonRecord): void {
    if (this.closed) return;
    const parsed = Date.parse(r.at);
    const t = Number.isFinite(parsed) ? parsed : this.now();
    const entities = recordEntities(r, this.o.limits, failedOnApim);
    const samples = this.key(`s:${r.aCode}`);
    this.track(
      this.exec((pipe) => {
        this.bucketWrites(pipe, t, entities);
        pipe.lpush(samples, JSON.stringify(r));
        pipe.ltrim(samples, 0, Math.max(0, this.o.samplesPerCode - 1));
        pipe.pexpire(samples, this.o.retentionMs);
        pipe.hsetnx(this.key('meta'), 'since', r.at);
        pipe.pexpire(this.key('meta'), this.o.retentionMs);
      }),
    );
  }

  /** Counts a call (coalesced: written within `flushMs`). */
  recordCall(asid: string, aCode: string): void {
    if (this.closed) return;
    const a = this.pendingCalls.get(asid) ?? new Map<string, number>();
    a.set(aCode, (a.get(aCode) ?? 0) + 1);
    this.pendingCalls.set(asid, a);
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.writeCalls();
      }, this.o.flushMs ?? 1000);
      this.timer.unref();
    }
  }

  private writeCalls(): void {
    if (this.pendingCalls.size === 0) return;
    const pending = this.pendingCalls;
    this.pendingCalls = new Map();
    const entities: Entity[] = [];
    for (const [asid, codes] of pending) {
      for (const [aCode, n] of codes) entities.push(...callEntities(asid, aCode, n, this.o.limits));
    }
    const t = this.now();
    this.track(this.exec((pipe) => this.bucketWrites(pipe, t, entities)));
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.writeCalls();
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  // ---- reading

  /** The buckets of the tier a window is read from, as [start, counters]. */
  private async buckets(
    window: TimeWindow | undefined,
  ): Promise<{ width: number; buckets: Array<[number, Array<[string, string]>]> }> {
    const width = tierFor(window, this.now());
    const idx = this.key(width === FINE_MS ? 'idx5' : 'idx60');
    const name = width === FINE_MS ? '5' : '60';
    const starts = await this.conn.run((r) =>
      window ? r.zrangebyscore(idx, String(window.from - width), `(${window.to}`) : r.zrange(idx, '0', '-1'),
    );
    const buckets: Array<[number, Array<[string, string]>]> = [];
    for (let i = 0; i < starts.length; i += 500) {
      const chunk = starts.slice(i, i + 500);
      const hashes = await this.conn.run(async (r) => {
        const pipe = r.pipeline();
        for (const s of chunk) pipe.hgetall(this.key(`b${name}:${s}`));
        return (await pipe.exec()) ?? [];
      });
      chunk.forEach((s, j) => {
        const [err, h] = hashes[j] ?? [null, {}];
        if (!err && h && typeof h === 'object') buckets.push([Number(s), Object.entries(h as Record<string, string>)]);
      });
    }
    return { width, buckets };
  }

  private async replicas(): Promise<Map<string, number>> {
    const all = await this.conn.run((r) => r.hgetall(this.key('replicas')));
    const out = new Map<string, number>();
    const oldest = this.now() - this.o.retentionMs;
    const stale: string[] = [];
    for (const [id, at] of Object.entries(all)) {
      const t = Number(at);
      if (Number.isFinite(t) && t >= oldest) out.set(id, t);
      else stale.push(id);
    }
    if (stale.length > 0) await this.conn.run((r) => r.hdel(this.key('replicas'), ...stale)).catch(() => undefined);
    return out;
  }

  private fallback(window: TimeWindow | undefined, e: unknown): ComparisonSummary {
    this.o.logger?.warn(
      { err: { message: (e as Error).message } },
      'shared comparisons (Redis) could not be read: the admin page shows this replica only',
    );
    const own = this.o.local.summary(window);
    return { ...own, scope: 'process', sharedUnavailable: true };
  }

  async summary(window?: TimeWindow): Promise<ComparisonSummary> {
    try {
      await this.flush();
      const [{ width, buckets }, replicas, meta] = await Promise.all([
        this.buckets(window),
        this.replicas(),
        this.conn.run((r) => r.hgetall(this.key('meta'))),
      ]);
      const fig = new Figures();
      for (const [start, entries] of buckets) {
        if (!window || (start + width > window.from && start < window.to)) fig.add(entries, start, width);
      }
      const out = summarise(fig, {
        since: window ? new Date(window.from).toISOString() : (meta['since'] ?? new Date(this.now()).toISOString()),
        maxFieldsPerCode: this.o.limits.maxFieldsPerCode,
        appRestricted: this.o.appRestricted,
        codeName: this.o.codeName,
      });
      if (window) out.window = { from: new Date(window.from).toISOString(), to: new Date(window.to).toISOString() };
      out.scope = 'shared';
      const counted = new Map((out.replicas ?? []).map((r) => [r.id, r.records]));
      const ids = new Set([
        ...counted.keys(),
        ...[...replicas.entries()].filter(([, t]) => !window || t >= window.from).map(([id]) => id),
      ]);
      out.replicas = [...ids].sort().map((id) => ({
        id,
        records: counted.get(id) ?? 0,
        ...(replicas.has(id) ? { lastSeen: new Date(replicas.get(id)!).toISOString() } : {}),
      }));
      if (meta['resetAt']) out.resetAt = meta['resetAt'];
      return out;
    } catch (e) {
      return this.fallback(window, e);
    }
  }

  async trend(window: TimeWindow, maxPoints?: number): Promise<ComparisonTrend> {
    try {
      await this.flush();
      const { width, buckets } = await this.buckets(window);
      return trendOf(buckets, width, window, maxPoints);
    } catch {
      return this.o.local.trend(window, maxPoints);
    }
  }

  async samples(aCode: string, limit?: number, window?: TimeWindow): Promise<ComparisonRecord[]> {
    let raw: string[];
    try {
      await this.flush();
      raw = await this.conn.run((r) => r.lrange(this.key(`s:${aCode}`), 0, Math.max(0, this.o.samplesPerCode - 1)));
    } catch {
      return this.o.local.samples(aCode, limit, window);
    }
    let all: ComparisonRecord[] = [];
    for (const line of raw) {
      try {
        all.push(JSON.parse(line) as ComparisonRecord);
      } catch {
        // not a record
      }
    }
    if (window) {
      all = all.filter((r) => {
        const t = Date.parse(r.at);
        return t >= window.from && t < window.to;
      });
    }
    return limit === undefined ? all : all.slice(0, Math.max(0, Math.floor(limit)));
  }

  /** Deletes every shared comparison key (SCAN, never KEYS) and this replica's own figures; notes when. */
  async reset(): Promise<void> {
    await this.flush();
    const match = `${globEscape(this.o.keyPrefix)}*`;
    // SCAN walks one node: on a cluster, every primary's (the keys are all on one, whichever owns the tag's slot).
    for (const node of this.conn.primaries()) {
      let cursor = '0';
      do {
        const [next, keys] = await this.conn.run(() => node.scan(cursor, 'MATCH', match, 'COUNT', 500));
        cursor = next;
        if (keys.length > 0) await this.conn.run((r) => r.unlink(...keys));
      } while (cursor !== '0');
    }
    const at = new Date(this.now()).toISOString();
    await this.conn.run((r) =>
      r.multi().hset(this.key('meta'), 'resetAt', at, 'since', at).pexpire(this.key('meta'), this.o.retentionMs).exec(),
    );
    this.o.local.reset();
  }

  async issueResetToken(): Promise<string> {
    const token = randomBytes(24).toString('base64url');
    await this.conn.run((r) => r.set(this.key(`reset-token:${hashToken(token)}`), '1', 'PX', RESET_TOKEN_TTL_MS));
    return token;
  }

  async consumeResetToken(token: string): Promise<boolean> {
    const v = await this.conn.run((r) => r.getdel(this.key(`reset-token:${hashToken(token)}`)));
    return v !== null;
  }
}
