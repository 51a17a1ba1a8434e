/**
 * The APIM rate budget shared in Redis (src/apim/shared-rate.ts) against a real Redis: the GCRA script's burst and
 * steady rate, one budget for two instances (two replicas), the local queue within maxWaitMs, APIM's pause shared,
 * bounded key TTLs under one hash tag, and the fallback to a per-process share when Redis stops (and back).
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RateLimit, RateLimited } from '../../src/apim/rate-limiter.js';
import { MEMBER_TTL_MS, rateKeys, SharedRateBudget } from '../../src/apim/shared-rate.js';
import { systemClock } from '../../src/runtime/clock.js';
import { connectRedis, type RedisConnection } from '../../src/sessions/redis-store.js';
import {
  connectTestRedisOrFail,
  dedicatedRedis,
  deleteKeysUnder,
  loggerInto,
  sleep,
  TEST_REDIS_URL,
  uniqueKeyPrefix,
} from '../helpers/redis-replicas.js';

let admin: Redis;
let conn: RedisConnection;
const prefix = uniqueKeyPrefix();
let n = 0;

beforeAll(async () => {
  admin = await connectTestRedisOrFail();
  conn = connectRedis(TEST_REDIS_URL, 1000);
});

afterAll(async () => {
  await conn?.close();
  await deleteKeysUnder(admin, prefix);
  admin.disconnect();
});

function budget(limit: RateLimit, application: string, member: string, connection = conn, extra = {}) {
  return new SharedRateBudget({
    connection,
    keyPrefix: prefix,
    application,
    limit,
    member,
    clock: systemClock,
    ...extra,
  });
}

/** Settles every acquire: 'ok' or the Retry-After of a RateLimited (anything else is thrown). */
async function outcomes(calls: Array<Promise<void>>): Promise<Array<'ok' | number>> {
  return Promise.all(
    calls.map((c) =>
      c.then(
        () => 'ok' as const,
        (e) => {
          if (e instanceof RateLimited) return e.retryAfterSeconds;
          throw e;
        },
      ),
    ),
  );
}

const app = () => `app${++n}`;

describe('SharedRateBudget on Redis', () => {
  it('admits the burst at once, then the steady rate; refuses the rest with a Retry-After', async () => {
    const b = budget({ requestsPerSecond: 10, burst: 5, maxQueue: 0, maxWaitMs: 0 }, app(), 'm1');
    const first = await outcomes(Array.from({ length: 20 }, () => b.acquire()));
    expect(first.filter((o) => o === 'ok')).toHaveLength(5);
    expect(first.filter((o) => o === 1)).toHaveLength(15);
    await sleep(1000);
    const later = await outcomes(Array.from({ length: 20 }, () => b.acquire()));
    // 1 s refills 10 slots, capped at the burst of 5.
    expect(later.filter((o) => o === 'ok')).toHaveLength(5);
    let admitted = 0;
    const start = Date.now();
    while (Date.now() - start < 1000) {
      if ((await outcomes([b.acquire()]))[0] === 'ok') admitted++;
      await sleep(5);
    }
    expect(admitted).toBeGreaterThanOrEqual(9);
    expect(admitted).toBeLessThanOrEqual(11);
  });

  it('is one budget for two instances (two replicas) of the same application, and none for another', async () => {
    const tag = app();
    const limit = { requestsPerSecond: 10, burst: 4, maxQueue: 0, maxWaitMs: 0 };
    const a = budget(limit, tag, 'a');
    const b = budget(limit, tag, 'b');
    const other = budget(limit, app(), 'a');
    const both = await outcomes(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).acquire()));
    expect(both.filter((o) => o === 'ok')).toHaveLength(4);
    const separate = await outcomes(Array.from({ length: 10 }, () => other.acquire()));
    expect(separate.filter((o) => o === 'ok')).toHaveLength(4);
    // Both heartbeat into the members set.
    expect(await admin.zcard(rateKeys(prefix, tag).members)).toBe(2);
  });

  it('queues within maxWaitMs (FIFO, evenly spaced with spike arrest) and refuses beyond it or the queue', async () => {
    const b = budget({ requestsPerSecond: 10, burst: 1, maxQueue: 50, maxWaitMs: 1000 }, app(), 'm');
    const start = Date.now();
    const at: number[] = [];
    const all = await outcomes(
      Array.from({ length: 20 }, () =>
        b.acquire().then(() => {
          at.push(Date.now() - start);
        }),
      ),
    );
    const ok = all.filter((o) => o === 'ok').length;
    expect(ok).toBeGreaterThanOrEqual(10);
    expect(ok).toBeLessThanOrEqual(12);
    // Refused at once, told when the next slot is free (1 or 2 s: the queue holds 1 s of calls).
    expect(all.filter((o) => o !== 'ok').every((o) => o === 1 || o === 2)).toBe(true);
    for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(80);
    expect(Math.max(...at)).toBeLessThanOrEqual(1000 + 150);

    const small = budget({ requestsPerSecond: 10, burst: 1, maxQueue: 2, maxWaitMs: 5000 }, app(), 'm');
    const queued = await outcomes(Array.from({ length: 6 }, () => small.acquire()));
    // One at once and at most two in the queue (calls asking Redis count against its room, so maybe only one).
    const served = queued.filter((o) => o === 'ok').length;
    expect(served).toBeGreaterThanOrEqual(2);
    expect(served).toBeLessThanOrEqual(3);
  });

  it("APIM's pause told to one instance holds the other, then lets one call at a time", async () => {
    const tag = app();
    const limit = { requestsPerSecond: 10, burst: 5, maxQueue: 10, maxWaitMs: 500 };
    const a = budget(limit, tag, 'a');
    const b = budget(limit, tag, 'b');
    a.pause(2);
    await sleep(50);
    const during = await outcomes([b.acquire(), b.acquire()]);
    expect(during).toEqual([2, 2]);
    const keys = rateKeys(prefix, tag);
    const pttl = await admin.pttl(keys.pause);
    expect(pttl).toBeGreaterThan(1500);
    expect(pttl).toBeLessThanOrEqual(2000);
    await sleep(2000);
    const after = await outcomes(Array.from({ length: 5 }, () => b.acquire()));
    expect(after[0]).toBe('ok');
    // Not the whole burst at once after a pause: the first goes, the rest are spaced (queued within 500 ms).
    expect(after.filter((o) => o === 'ok').length).toBeLessThanOrEqual(5);
  });

  it("a waiting call at another instance does not go out during APIM's pause", async () => {
    const tag = app();
    const limit = { requestsPerSecond: 2, burst: 1, maxQueue: 10, maxWaitMs: 3000 };
    const a = budget(limit, tag, 'a');
    const b = budget(limit, tag, 'b');
    await b.acquire();
    const start = Date.now();
    const waiting = b.acquire().then(() => Date.now() - start); // reserved in ≈ 500 ms
    await sleep(100);
    a.pause(1);
    const wentAfter = await waiting;
    expect(wentAfter).toBeGreaterThanOrEqual(1000);
  });

  it('keys share one hash tag (cluster-safe) and expire: the TAT within its horizon, members within 15 s', async () => {
    const tag = app();
    const b = budget({ requestsPerSecond: 10, burst: 10, maxQueue: 0, maxWaitMs: 0 }, tag, 'm');
    await outcomes(Array.from({ length: 10 }, () => b.acquire()));
    b.pause(3);
    await sleep(50);
    const keys = rateKeys(prefix, tag);
    for (const k of [keys.tat, keys.pause, keys.members]) {
      expect(k.match(/\{[^}]*\}/)?.[0]).toBe(`{rate:${tag}}`);
      expect(k.startsWith(prefix)).toBe(true);
    }
    const tatTtl = await admin.pttl(keys.tat);
    expect(tatTtl).toBeGreaterThan(0);
    expect(tatTtl).toBeLessThanOrEqual(3000 + 900 + 1000);
    const memberTtl = await admin.pttl(keys.members);
    expect(memberTtl).toBeGreaterThan(0);
    expect(memberTtl).toBeLessThanOrEqual(MEMBER_TTL_MS);
    b.clearPause();
    await sleep(50);
    expect(await admin.exists(keys.pause, keys.tat)).toBe(0);
  });
});

describe('SharedRateBudget when Redis stops', () => {
  it('falls back to its share (rate ÷ the replicas last seen), logs it once, never throws else, and shares again after', async () => {
    const server = await dedicatedRedis({ appendOnly: false });
    await server.start();
    const lines: string[] = [];
    const own = connectRedis(server.url, 300);
    const sources: string[] = [];
    try {
      const limit = { requestsPerSecond: 10, burst: 2, maxQueue: 0, maxWaitMs: 0 };
      const tag = app();
      const a = budget(limit, tag, 'a', own, { logger: loggerInto(lines), onSource: (s: string) => sources.push(s) });
      const b = budget(limit, tag, 'b', own);
      await outcomes([a.acquire()]);
      await outcomes([b.acquire()]);
      await sleep(1000); // a heartbeats at most once a second: its next call sees b
      await outcomes([a.acquire()]);
      expect(a.replicas).toBe(2);
      expect(a.source).toBe('shared');

      await server.stop();
      const counted: Array<'ok' | number> = [];
      const start = Date.now();
      while (Date.now() - start < 2000) {
        counted.push(...(await outcomes([a.acquire()])));
        await sleep(10);
      }
      expect(a.source).toBe('local');
      expect(a.localShare).toBe(5);
      // 5/s for 2 s plus a burst of 1 (2 ÷ 2): at most 11, and some.
      const ok = counted.filter((o) => o === 'ok').length;
      expect(ok).toBeGreaterThanOrEqual(8);
      expect(ok).toBeLessThanOrEqual(11);
      expect(counted.every((o) => o === 'ok' || o === 1)).toBe(true);
      const warned = lines.filter((l) => l.includes('falls back to its share'));
      expect(warned).toHaveLength(1);
      expect(JSON.parse(warned[0]!)).toMatchObject({ application: tag, replicas: 2, requestsPerSecond: 5 });

      await server.start();
      const back = Date.now();
      while (a.source !== 'shared' && Date.now() - back < 8000) {
        await outcomes([a.acquire()]);
        await sleep(50);
      }
      expect(a.source).toBe('shared');
      expect(sources).toEqual(['shared', 'local', 'shared']);
      expect(lines.some((l) => l.includes('shared in Redis again'))).toBe(true);
    } finally {
      await own.close();
      await server.destroy();
    }
  }, 30_000);
});
