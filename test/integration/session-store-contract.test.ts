/**
 * The session store contract (test/helpers/session-store-contract.ts) on the Redis store over a real Redis
 * (127.0.0.1:6379, its own key prefix, cleaned up afterwards), and what only the Redis store does: records sealed
 * under hashed keys, Redis's own expiry, tampering, key rotation, ephemeral records. The same contract runs on the
 * in-memory store in the unit project.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keyring } from '../../src/sessions/crypto.js';
import { connectRedis, RedisEphemeralStore, RedisSessionStore } from '../../src/sessions/redis-store.js';
import { newSessionKey, sessionKeyHash } from '../../src/sessions/session.js';
import { clock, IDLE_S, session, sessionStoreContract } from '../helpers/session-store-contract.js';

const REDIS_URL = process.env['ERS_BRIDGE_TEST_REDIS'] ?? 'redis://127.0.0.1:6379';

async function redisOrFail(): Promise<Redis> {
  const probe = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    enableOfflineQueue: false,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    await probe.ping();
    return probe;
  } catch {
    probe.disconnect();
    throw new Error(
      `Redis is not answering at ${REDIS_URL}: start one (redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "") or set ERS_BRIDGE_TEST_REDIS. .ci/run starts it.`,
    );
  }
}

const prefix = `ers-bridge-test:${randomBytes(6).toString('hex')}:`;
let admin: Redis;
const keyring = new Keyring({ k1: randomBytes(32).toString('base64') }, 'k1');

beforeAll(async () => {
  admin = await redisOrFail();
});
afterAll(async () => {
  if (!admin) return;
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length) await admin.del(...keys);
  admin.disconnect();
});

sessionStoreContract([
  {
    name: 'redis',
    make: async () =>
      new RedisSessionStore(connectRedis(REDIS_URL, 2000), {
        keyPrefix: prefix,
        keyring,
        idleTimeoutSeconds: IDLE_S,
        now: () => clock.now,
      }),
    // Redis expiry is Redis's own clock: for TTL checks the tests read PTTL instead of waiting.
    advance: async (ms) => {
      clock.now += ms;
    },
    // A lock's PX runs on Redis's clock: real time has to pass.
    expireLocks: async (ms) => {
      await new Promise((r) => setTimeout(r, ms));
      clock.now += ms;
    },
  },
]);

describe('redis store specifics', () => {
  let store: RedisSessionStore;
  beforeAll(async () => {
    store = new RedisSessionStore(connectRedis(REDIS_URL, 2000), {
      keyPrefix: prefix,
      keyring,
      idleTimeoutSeconds: IDLE_S,
      now: () => clock.now,
    });
  });
  afterAll(async () => {
    await store.close();
  });

  it('stores the session sealed under the hash of its key: no token, name or raw key in Redis', async () => {
    const key = newSessionKey();
    const s = session();
    await store.create(key, s);
    const redisKey = `${prefix}session:${sessionKeyHash(key)}`;
    const raw = (await admin.get(redisKey))!;
    expect(raw).toBeTruthy();
    for (const secret of [
      s.apim!.accessToken,
      s.apim!.refreshToken,
      key,
      'Alex',
      'Example',
      'legacy-ticket',
      '555000000101',
    ]) {
      expect(raw).not.toContain(secret);
    }
    expect(Object.keys(JSON.parse(raw)).sort()).toEqual(['ct', 'iv', 'kid', 'tag', 'v']);
    expect((await admin.keys(`${prefix}*`)).some((k) => k.includes(key))).toBe(false);
  });

  it('Redis expires sessions itself: TTL = idle timeout, capped by the absolute lifetime, renewed on read', async () => {
    const key = newSessionKey();
    const redisKey = `${prefix}session:${sessionKeyHash(key)}`;
    await store.create(key, session({ expiresAt: clock.now + 3_600_000 }));
    const ttl = await admin.pttl(redisKey);
    expect(ttl).toBeGreaterThan((IDLE_S - 2) * 1000);
    expect(ttl).toBeLessThanOrEqual(IDLE_S * 1000);
    await admin.pexpire(redisKey, 5_000); // as if idle for 55 s
    await store.get(key);
    expect(await admin.pttl(redisKey)).toBeGreaterThan(50_000); // the read renewed the idle timer
    const shortKey = newSessionKey();
    await store.create(shortKey, session({ expiresAt: clock.now + 10_000 }));
    expect(await admin.pttl(`${prefix}session:${sessionKeyHash(shortKey)}`)).toBeLessThanOrEqual(10_000);
  });

  it('a tampered or moved record is treated as no session', async () => {
    const a = newSessionKey();
    const b = newSessionKey();
    await store.create(a, session());
    await store.create(b, session());
    const ka = `${prefix}session:${sessionKeyHash(a)}`;
    const kb = `${prefix}session:${sessionKeyHash(b)}`;
    // Move a's record under b's key: the key is authenticated data, so it no longer opens.
    await admin.set(kb, (await admin.get(ka))!);
    expect(await store.get(b)).toBeUndefined();
    const rec = JSON.parse((await admin.get(ka))!);
    rec.ct = Buffer.from(`${Buffer.from(rec.ct, 'base64').toString('latin1')}x`, 'latin1').toString('base64');
    await admin.set(ka, JSON.stringify(rec));
    expect(await store.get(a)).toBeUndefined();
  });

  it('key rotation: records sealed with the old key still open; new writes use the new key', async () => {
    const k1 = randomBytes(32).toString('base64');
    const k2 = randomBytes(32).toString('base64');
    const p = `${prefix}rot:`;
    const old = new RedisSessionStore(connectRedis(REDIS_URL, 2000), {
      keyPrefix: p,
      keyring: new Keyring({ k1 }, 'k1'),
      idleTimeoutSeconds: IDLE_S,
      now: () => clock.now,
    });
    const rotated = new RedisSessionStore(connectRedis(REDIS_URL, 2000), {
      keyPrefix: p,
      keyring: new Keyring({ k1, k2 }, 'k2'),
      idleTimeoutSeconds: IDLE_S,
      now: () => clock.now,
    });
    try {
      const key = newSessionKey();
      const s = session();
      await old.create(key, s);
      expect(await rotated.get(key)).toEqual(s);
      await rotated.update(key, { ...s, onBehalfOf: '555000000999' });
      const rec = JSON.parse((await admin.get(`${p}session:${sessionKeyHash(key)}`))!);
      expect(rec.kid).toBe('k2');
      expect(await old.get(key)).toBeUndefined(); // the old keyring cannot open k2 records
    } finally {
      await old.close();
      await rotated.close();
    }
  });

  it('ephemeral records are sealed, taken once, and expire', async () => {
    const redis = connectRedis(REDIS_URL, 2000);
    const eph = new RedisEphemeralStore<{ secret: string }>(redis, `${prefix}code:`, keyring);
    try {
      await eph.put('ABCDE12345', { secret: 'refresh-token-value' }, 10_000);
      const raw = await admin.get(`${prefix}code:${sessionKeyHash('ABCDE12345')}`);
      expect(raw).not.toContain('refresh-token-value');
      expect(await eph.take('ABCDE12345')).toEqual({ secret: 'refresh-token-value' });
      expect(await eph.take('ABCDE12345')).toBeUndefined();
      await eph.put('SHORT', { secret: 'x' }, 30);
      await new Promise((r) => setTimeout(r, 80));
      expect(await eph.take('SHORT')).toBeUndefined();
    } finally {
      await redis.close();
    }
  });
});
