/**
 * One contract, two stores: everything ers-bridge relies on from a session store, run against the in-memory store
 * and against the Redis store on a real Redis (127.0.0.1:6379, its own key prefix, cleaned up afterwards).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keyring } from '../../src/sessions/crypto.js';
import { MemoryEphemeralStore } from '../../src/sessions/ephemeral-store.js';
import { MemorySessionStore } from '../../src/sessions/memory-store.js';
import { connectRedis, RedisEphemeralStore, RedisSessionStore } from '../../src/sessions/redis-store.js';
import { newSessionKey, type Session, sessionKeyHash } from '../../src/sessions/session.js';
import type { SessionStore } from '../../src/sessions/store.js';

const REDIS_URL = process.env['ERS_BRIDGE_TEST_REDIS'] ?? 'redis://127.0.0.1:6379';
const IDLE_S = 60;

/** A clock the test moves; Redis TTLs use real time, so Redis expiry is tested with short real waits instead. */
let clock = Date.now();

function session(overrides: Partial<Session> = {}): Session {
  return {
    asid: '999000000001',
    accessMode: 'user-restricted',
    legacyToken: 'legacy-ticket',
    user: {
      identifier: '555000000101',
      firstName: 'Alex',
      lastName: 'Example',
      middleName: null,
      permissions: [{ businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'R68', orgName: 'PRACTICE' }],
    },
    permission: null,
    apim: {
      accessToken: `at-${randomUUID()}`,
      accessExpiresAt: clock + 599_000,
      refreshToken: `rt-${randomUUID()}`,
      refreshExpiresAt: clock + 43_199_000,
    },
    onBehalfOf: null,
    createdAt: clock,
    lastUsedAt: clock,
    expiresAt: clock + 3_600_000,
    ...overrides,
  };
}

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

interface Subject {
  name: string;
  make(): Promise<SessionStore>;
  /** Lets real time pass for stores that expire by real time (Redis), or moves the test clock (memory). */
  advance(ms: number): Promise<void>;
  cleanup(): Promise<void>;
}

const prefix = `ers-bridge-test:${randomBytes(6).toString('hex')}:`;
let admin: Redis;
const keyring = new Keyring({ k1: randomBytes(32).toString('base64') }, 'k1');

const subjects: Subject[] = [
  {
    name: 'memory',
    make: async () => new MemorySessionStore({ idleTimeoutSeconds: IDLE_S, maxSessions: 1000, now: () => clock }),
    advance: async (ms) => {
      clock += ms;
    },
    cleanup: async () => undefined,
  },
  {
    name: 'redis',
    make: async () =>
      new RedisSessionStore(connectRedis(REDIS_URL, 2000), {
        url: REDIS_URL,
        keyPrefix: prefix,
        keyring,
        idleTimeoutSeconds: IDLE_S,
        now: () => clock,
      }),
    // Redis expiry is Redis's own clock: for TTL checks the tests read PTTL instead of waiting.
    advance: async (ms) => {
      clock += ms;
    },
    cleanup: async () => {
      const keys = await admin.keys(`${prefix}*`);
      if (keys.length) await admin.del(...keys);
    },
  },
];

beforeAll(async () => {
  admin = await redisOrFail();
});
afterAll(async () => {
  for (const s of subjects) await s.cleanup();
  admin?.disconnect();
});

describe.each(subjects)('session store contract: $name', (subject) => {
  let store: SessionStore;
  beforeAll(async () => {
    store = await subject.make();
  });
  afterAll(async () => {
    await store.close();
  });

  it('create, get, update, delete', async () => {
    const key = newSessionKey();
    const s = session();
    await store.create(key, s);
    expect(await store.get(key)).toEqual(s);
    const updated = { ...s, permission: s.user.permissions[0]! };
    expect(await store.update(key, updated)).toBe(true);
    expect(await store.get(key)).toEqual(updated);
    expect(await store.delete(key)).toBe(true);
    expect(await store.get(key)).toBeUndefined();
    expect(await store.delete(key)).toBe(false);
  });

  it('update of an unknown or deleted session returns false and does not create it', async () => {
    const key = newSessionKey();
    expect(await store.update(key, session())).toBe(false);
    expect(await store.get(key)).toBeUndefined();
  });

  it('a session past its absolute lifetime is gone, whatever the activity', async () => {
    const key = newSessionKey();
    await store.create(key, session({ expiresAt: clock + 5_000 }));
    expect(await store.get(key)).toBeDefined();
    await subject.advance(6_000);
    expect(await store.get(key)).toBeUndefined();
  });

  it('keys are independent, and a similar key is not the same session', async () => {
    const a = newSessionKey();
    const b = `${a.slice(0, -1)}${a.endsWith('0') ? '1' : '0'}`;
    await store.create(a, session());
    expect(await store.get(b)).toBeUndefined();
  });

  it('lock: exclusive until released or expired', async () => {
    const key = newSessionKey();
    const release = await store.lock(key, 10_000);
    expect(release).toBeTypeOf('function');
    expect(await store.lock(key, 10_000)).toBeUndefined();
    await release!();
    const again = await store.lock(key, 10_000);
    expect(again).toBeTypeOf('function');
    await again!();
  });

  it("lock: a release by a former holder does not free a newer holder's lock", async () => {
    const key = newSessionKey();
    const first = (await store.lock(key, 50))!;
    await new Promise((r) => setTimeout(r, 80));
    await subject.advance(80);
    const second = (await store.lock(key, 10_000))!; // the first expired
    expect(second).toBeTypeOf('function');
    await first(); // late release: must not remove the second holder's lock
    expect(await store.lock(key, 10_000)).toBeUndefined();
    await second();
  });

  it('ping answers', async () => {
    expect(await store.ping()).toBe(true);
  });

  it('size counts live sessions', async () => {
    const before = await store.size();
    const keys = [newSessionKey(), newSessionKey(), newSessionKey()];
    for (const k of keys) await store.create(k, session());
    expect(await store.size()).toBe(before + 3);
    for (const k of keys) await store.delete(k);
    expect(await store.size()).toBe(before);
  });
});

describe('redis store specifics', () => {
  let store: RedisSessionStore;
  beforeAll(async () => {
    store = new RedisSessionStore(connectRedis(REDIS_URL, 2000), {
      url: REDIS_URL,
      keyPrefix: prefix,
      keyring,
      idleTimeoutSeconds: IDLE_S,
      now: () => clock,
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
    await store.create(key, session({ expiresAt: clock + 3_600_000 }));
    const ttl = await admin.pttl(redisKey);
    expect(ttl).toBeGreaterThan((IDLE_S - 2) * 1000);
    expect(ttl).toBeLessThanOrEqual(IDLE_S * 1000);
    await admin.pexpire(redisKey, 5_000); // as if idle for 55 s
    await store.get(key);
    expect(await admin.pttl(redisKey)).toBeGreaterThan(50_000); // the read renewed the idle timer
    const shortKey = newSessionKey();
    await store.create(shortKey, session({ expiresAt: clock + 10_000 }));
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
      url: REDIS_URL,
      keyPrefix: p,
      keyring: new Keyring({ k1 }, 'k1'),
      idleTimeoutSeconds: IDLE_S,
      now: () => clock,
    });
    const rotated = new RedisSessionStore(connectRedis(REDIS_URL, 2000), {
      url: REDIS_URL,
      keyPrefix: p,
      keyring: new Keyring({ k1, k2 }, 'k2'),
      idleTimeoutSeconds: IDLE_S,
      now: () => clock,
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

describe('memory ephemeral store', () => {
  it('takes once and expires by its clock', async () => {
    let now = 1_000_000;
    const eph = new MemoryEphemeralStore<{ v: number }>(10, () => now);
    await eph.put('a', { v: 1 }, 1000);
    await eph.put('b', { v: 2 }, 1000);
    expect(await eph.take('a')).toEqual({ v: 1 });
    expect(await eph.take('a')).toBeUndefined();
    now += 1001;
    expect(await eph.take('b')).toBeUndefined();
  });
});
