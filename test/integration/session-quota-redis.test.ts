/**
 * The per-ASID session quota on the Redis store, over a real Redis (127.0.0.1:6379, a key prefix of its own, removed
 * afterwards): beyond `maxPerAsid` the ASID's oldest sessions (by creation) end — only that ASID's — atomically with
 * the write; the index holds key hashes only, A003 and expiry keep it tidy, `size()` reads it, and records over
 * `maxRecordBytes` are refused.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keyring } from '../../src/sessions/crypto.js';
import { connectRedis, RedisSessionStore } from '../../src/sessions/redis-store.js';
import { newSessionKey, SESSION_KEY_PREFIX, sessionKeyHash } from '../../src/sessions/session.js';
import { SessionTooLarge } from '../../src/sessions/store.js';
import { appSession, rejectionOf } from '../unit/pipeline/fakes.js';

const REDIS_URL = process.env['ERS_BRIDGE_TEST_REDIS'] ?? 'redis://127.0.0.1:6379';
const A = '200000000001';
const B = '200000000002';
const HOUR = 3_600_000;

const prefix = `ers-bridge-test:${randomBytes(6).toString('hex')}:`;
const keyring = new Keyring({ k1: randomBytes(32).toString('base64') }, 'k1');
let admin: Redis;
const clock = { now: Date.parse('2025-03-01T08:00:00Z') };

beforeAll(async () => {
  admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 0, connectTimeout: 1000 });
  await admin.ping();
});
afterAll(async () => {
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length) await admin.del(...keys);
  admin.disconnect();
});

function store(p: string, o: { maxPerAsid?: number; maxRecordBytes?: number; absoluteTimeoutSeconds?: number } = {}) {
  return new RedisSessionStore(connectRedis(REDIS_URL, 2000), {
    keyPrefix: p,
    keyring,
    idleTimeoutSeconds: 3600,
    ...(o.absoluteTimeoutSeconds !== undefined ? { absoluteTimeoutSeconds: o.absoluteTimeoutSeconds } : {}),
    limits: { maxPerAsid: o.maxPerAsid ?? 3, maxRecordBytes: o.maxRecordBytes ?? 32_768 },
    now: () => clock.now,
  });
}

/** Creates `n` sessions for the ASID, created one second apart (the index's order); keys oldest first. */
async function create(s: RedisSessionStore, asid: string, n: number, lifetimeMs = HOUR): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    clock.now += 1000;
    const key = newSessionKey();
    await s.create(key, appSession(clock.now, { asid, expiresAt: clock.now + lifetimeMs }));
    keys.push(key);
  }
  return keys;
}

async function alive(s: RedisSessionStore, keys: string[]): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const k of keys) out.push((await s.get(k)) !== undefined);
  return out;
}

describe('redis store: the per-ASID quota', () => {
  it("evicts the ASID's oldest sessions first, and only that ASID's", async () => {
    const p = `${prefix}q1:`;
    const s = store(p, { maxPerAsid: 3 });
    try {
      const b = await create(s, B, 2);
      const a = await create(s, A, 3);
      await s.get(a[0]!); // use does not matter on Redis: the order is creation
      const later = await create(s, A, 2);
      expect(await alive(s, a)).toEqual([false, false, true]);
      expect(await alive(s, later)).toEqual([true, true]);
      expect(await alive(s, b)).toEqual([true, true]);
      // The evicted sessions' records are gone from Redis, not only from the index.
      expect(await admin.exists(`${p}session:${sessionKeyHash(a[0]!)}`)).toBe(0);
      // The index: the ASID's remaining sessions by creation, as key hashes only.
      const members = await admin.zrange(`${p}asid-sessions:${A}`, '0', '-1');
      expect(members).toEqual([a[2]!, ...later].map(sessionKeyHash));
      expect(await s.size()).toBe(5);
      expect(await s.sizeOf(A)).toBe(3);
      expect(await s.sizeOf(B)).toBe(2);
    } finally {
      await s.close();
    }
  });

  it('a flood of one ASID leaves the others alone and Redis at most the quota larger', async () => {
    const p = `${prefix}q2:`;
    const s = store(p, { maxPerAsid: 20 });
    try {
      const b = await create(s, B, 10);
      await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          s.create(newSessionKey(), appSession(clock.now + i, { asid: A, expiresAt: clock.now + HOUR })),
        ),
      );
      expect((await alive(s, b)).every(Boolean)).toBe(true);
      expect((await admin.keys(`${p}session:*`)).length).toBe(30);
      expect(await s.sizeOf(A)).toBe(20);
      expect(await s.size()).toBe(30);
    } finally {
      await s.close();
    }
  });

  it('the index names no raw session key, and the ASID list only ASIDs', async () => {
    const p = `${prefix}q3:`;
    const s = store(p);
    try {
      const keys = await create(s, A, 2);
      const everything = [
        ...(await admin.keys(`${p}*`)),
        ...(await admin.zrange(`${p}asid-sessions:${A}`, '0', '-1')),
        ...(await admin.smembers(`${p}session-asids`)),
      ].join('\n');
      for (const k of keys) expect(everything).not.toContain(k.slice(SESSION_KEY_PREFIX.length));
      expect(await admin.smembers(`${p}session-asids`)).toEqual([A]);
    } finally {
      await s.close();
    }
  });

  it('A003 and the absolute-expiry delete remove their member; the index expires after the lifetime', async () => {
    const p = `${prefix}q4:`;
    const s = store(p, { absoluteTimeoutSeconds: 600 });
    try {
      const [k1, k2] = await create(s, A, 2, 600_000);
      const short = await create(s, A, 1, 5_000);
      expect(await s.sizeOf(A)).toBe(3);
      expect(await s.delete(k1!)).toBe(true);
      expect(await s.sizeOf(A)).toBe(2);
      clock.now += 6_000;
      expect(await s.get(short[0]!)).toBeUndefined(); // past its absolute lifetime: deleted, member too
      expect(await admin.zrange(`${p}asid-sessions:${A}`, '0', '-1')).toEqual([sessionKeyHash(k2!)]);
      const ttl = await admin.pttl(`${p}asid-sessions:${A}`);
      expect(ttl).toBeGreaterThan(590_000);
      expect(ttl).toBeLessThanOrEqual(600_000);
    } finally {
      await s.close();
    }
  });

  it('members older than the absolute lifetime are dropped by the next create (their sessions ended)', async () => {
    const p = `${prefix}q5:`;
    const s = store(p, { absoluteTimeoutSeconds: 600, maxPerAsid: 3 });
    try {
      const old = await create(s, A, 2, 600_000);
      await admin.del(...old.map((k) => `${p}session:${sessionKeyHash(k)}`)); // as if they had idled out
      clock.now += 601_000;
      const fresh = await create(s, A, 3, 600_000);
      // The quota counts the 3 live sessions only: none of them was evicted for the dead ones.
      expect(await alive(s, fresh)).toEqual([true, true, true]);
      expect(await admin.zcard(`${p}asid-sessions:${A}`)).toBe(3);
    } finally {
      await s.close();
    }
  });

  it('size() forgets an ASID whose index expired', async () => {
    const p = `${prefix}q6:`;
    const s = store(p);
    try {
      await create(s, A, 1);
      await create(s, B, 2);
      expect(await s.size()).toBe(3);
      await admin.del(`${p}asid-sessions:${A}`);
      expect(await s.size()).toBe(2);
      expect(await admin.smembers(`${p}session-asids`)).toEqual([B]);
    } finally {
      await s.close();
    }
  });

  it('a reload lowers the quota: the next create trims the ASID to it', async () => {
    const p = `${prefix}q7:`;
    const s = store(p, { maxPerAsid: 10 });
    try {
      const a = await create(s, A, 5);
      s.setLimits({ maxPerAsid: 2, maxRecordBytes: 32_768 });
      const last = await create(s, A, 1);
      expect(await alive(s, [...a, ...last])).toEqual([false, false, false, false, true, true]);
    } finally {
      await s.close();
    }
  });
});

describe('redis store: record size', () => {
  it('refuses a record over maxRecordBytes: no record, no index member', async () => {
    const p = `${prefix}r1:`;
    const s = store(p, { maxRecordBytes: 2048 });
    try {
      const key = newSessionKey();
      const e = await rejectionOf(s.create(key, appSession(clock.now, { asid: A, legacyToken: 'x'.repeat(4000) })));
      expect(e).toBeInstanceOf(SessionTooLarge);
      expect(await admin.keys(`${p}*`)).toEqual([]);
      await s.create(key, appSession(clock.now, { asid: A, expiresAt: clock.now + HOUR }));
      expect(
        await rejectionOf(s.update(key, appSession(clock.now, { asid: A, legacyToken: 'x'.repeat(4000) }))),
      ).toBeInstanceOf(SessionTooLarge);
      expect((await s.get(key))?.legacyToken).toBe('legacy-token');
    } finally {
      await s.close();
    }
  });
});
