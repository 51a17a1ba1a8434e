/**
 * Sign-ins in progress counted on Redis (src/sessions/signin-slots.ts), shared by every replica: caps per address
 * and per ASID, release on take, expiry by the runtime clock, bounded keys with a TTL, no address in a key name;
 * and the runtime uses these slots whenever its sessions are on Redis. Real Redis (127.0.0.1:6379 or
 * ERS_BRIDGE_TEST_REDIS), a key prefix of its own, removed afterwards.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime, closeRuntime } from '../../src/runtime/runtime.js';
import { connectRedis, type RedisConnection } from '../../src/sessions/redis-store.js';
import { RedisSignInSlots, type SlotClaim } from '../../src/sessions/signin-slots.js';
import { ManualClock } from '../helpers/manual-clock.js';
import {
  connectTestRedisOrFail,
  deleteKeysUnder,
  keysUnder,
  TEST_REDIS_URL,
  uniqueKeyPrefix,
} from '../helpers/redis-replicas.js';
import { rulesFor } from '../helpers/rules.js';

const TTL = 600_000;
const prefix = uniqueKeyPrefix();
let admin: Redis;
const connections: RedisConnection[] = [];
const clock = new ManualClock(Date.parse('2025-03-01T08:00:00Z'));

/** Slots as one replica holds them: a connection of its own. */
function replica(): RedisSignInSlots {
  const conn = connectRedis(TEST_REDIS_URL, 2000);
  connections.push(conn);
  return new RedisSignInSlots(conn, `${prefix}signin-slots:`, clock);
}

const claim = (asid: string, address: string, slot = randomUUID()): SlotClaim => ({
  asid,
  address,
  slot,
  ttlMs: TTL,
  perAsid: 30,
  perAddress: 5,
});

beforeAll(async () => {
  admin = await connectTestRedisOrFail();
});
afterAll(async () => {
  for (const c of connections) await c.close();
  if (admin) {
    await deleteKeysUnder(admin, prefix);
    admin.disconnect();
  }
});

describe('RedisSignInSlots', () => {
  it('caps per address across replicas; release and expiry free slots; Retry-After from the oldest', async () => {
    const [one, two] = [replica(), replica()];
    const first = claim('999000000010', '203.0.113.5');
    expect(await one.claim(first)).toEqual({ ok: true });
    await clock.advance(1_000);
    for (let i = 1; i < 5; i++) {
      expect((await (i % 2 ? two : one).claim(claim('999000000010', '203.0.113.5'))).ok).toBe(true);
    }
    expect(await two.claim(claim('999000000011', '203.0.113.5'))).toEqual({
      ok: false,
      limit: 'address',
      retryAfterMs: TTL - 1_000,
    });
    await two.release('999000000010', '203.0.113.5', first.slot); // taken on the other replica
    expect((await one.claim(claim('999000000010', '203.0.113.5'))).ok).toBe(true);
    expect((await one.claim(claim('999000000010', '203.0.113.5'))).ok).toBe(false);
    await clock.advance(TTL);
    expect((await two.claim(claim('999000000010', '203.0.113.5'))).ok, 'expired slots drop out').toBe(true);
  });

  it('caps per ASID whatever the addresses; another ASID is not affected', async () => {
    const slots = replica();
    let held = 0;
    for (let i = 0; i < 100; i++) {
      if ((await slots.claim(claim('999000000020', `198.51.100.${i}`))).ok) held++;
    }
    expect(held).toBe(30);
    expect(await slots.claim(claim('999000000020', '198.51.100.200'))).toMatchObject({ ok: false, limit: 'asid' });
    expect((await slots.claim(claim('999000000021', '198.51.100.200'))).ok).toBe(true);
  });

  it('keeps bounded sorted sets with a TTL, named without the address', async () => {
    const slots = replica();
    for (let i = 0; i < 10; i++) await slots.claim(claim('999000000030', '192.0.2.77'));
    const keys = (await keysUnder(admin, prefix)).filter((k) => k.includes('999000000030') || k.includes('address:'));
    for (const k of keys) {
      expect(k).not.toContain('192.0.2.77');
      expect(await admin.type(k)).toBe('zset');
      const ttl = await admin.pttl(k);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(TTL);
    }
    expect(await admin.zcard(`${prefix}signin-slots:asid:999000000030`)).toBe(5);
  });
});

describe('the runtime on Redis sessions', () => {
  it('counts sign-ins in progress on Redis, shared by every replica', async () => {
    const rules = rulesFor({
      apim: { baseUrl: 'http://127.0.0.1:9/referrals/FHIR', auth: 'none' },
      asids: { '999000000001': { apim: false } },
      sessions: {
        store: 'redis',
        redis: { url: 'env:REDIS_URL', keyPrefix: prefix },
        encryption: { current: 'k1', keys: { k1: 'env:K1' } },
      },
    });
    const rt = await buildRuntime('rules.yaml', rules, {
      resolveSecret: secretResolver({ REDIS_URL: TEST_REDIS_URL, K1: randomBytes(32).toString('base64') }),
      clock,
    });
    try {
      expect(rt.shared.signInSlots).toBeInstanceOf(RedisSignInSlots);
      expect((await rt.shared.signInSlots.claim(claim('999000000040', '192.0.2.1'))).ok).toBe(true);
      expect(await admin.zcard(`${prefix}signin-slots:asid:999000000040`)).toBe(1);
    } finally {
      await closeRuntime(rt);
    }
  });
});
