/**
 * Writes held by replicas (sessions.redis.acknowledgement), against real redis-server processes on loopback: a
 * primary and a replica per test. Before a CIS2 user's single-use refresh token is sent, its session is marked as
 * spending it and the mark is held by a replica, so a failover half-way through a renewal never brings back a
 * refresh token that is then sent a second time.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startApimStandIn } from '../../src/apim-standin/index.js';
import type { ApimUserTokens, UserTokenSet } from '../../src/auth/user-token.js';
import { knownFault } from '../../src/pipeline/faults.js';
import { obtainUserToken } from '../../src/pipeline/user-token.js';
import { systemClock } from '../../src/runtime/clock.js';
import { Keyring } from '../../src/sessions/crypto.js';
import {
  connectRedis,
  type RedisConnection,
  RedisSessionStore,
  type RedisStoreOptions,
} from '../../src/sessions/redis-store.js';
import type { HeldPurpose } from '../../src/sessions/store.js';
import { newApimApp } from '../helpers/apim-app.js';
import { APP_ASID } from '../helpers/harness.js';
import {
  A005_PATH,
  adminOn,
  bridgeOnRedis,
  callBridge,
  dedicatedRedis,
  expectStatus,
  openSelectedSession,
  type RedisServerProcess,
  uniqueKeyPrefix,
} from '../helpers/redis-replicas.js';
import { userSession } from '../unit/pipeline/fakes.js';

const KEY = 'pro-api-session:11111111-2222-3333-4444-555555555555';
const ASID = '200000000002';
const ACK = { replicas: 1, timeoutMs: 300 };

const started: RedisServerProcess[] = [];
const connections: RedisConnection[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) await c.close();
  for (const p of started.splice(0)) await p.destroy();
});

const admin = adminOn;

/** A primary and a replica in sync. */
async function pair(): Promise<{ primary: RedisServerProcess; replica: RedisServerProcess }> {
  // No delay before the first full sync (Redis waits 5 s by default for more replicas to share it).
  const primary = await dedicatedRedis({ appendOnly: false, args: ['--repl-diskless-sync-delay', '0'] });
  started.push(primary);
  await primary.start();
  const replica = await dedicatedRedis({ appendOnly: false, args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  started.push(replica);
  await replica.start();
  await vi.waitFor(
    async () => {
      expect(await admin(replica.port, (r) => r.info('replication'))).toMatch(/master_link_status:up/);
      expect(await admin(primary.port, (r) => r.info('replication'))).toMatch(/slave0:.*state=online/);
      // A replica just synced may take up to a second to answer its first acknowledgement request: wait for it, so
      // the tests see a replica as established as a production one.
      const acked = await admin(primary.port, async (r) => {
        await r.set('warm-up', '1');
        return r.call('WAIT', 1, 100);
      });
      expect(acked).toBe(1);
    },
    { timeout: 10_000, interval: 50 },
  );
  return { primary, replica };
}

const keyring = new Keyring({ k1: randomBytes(32).toString('base64') }, 'k1');

/** A session store on one node; `acknowledgement` false: none configured. */
function storeOn(
  port: number,
  prefix: string,
  ack: typeof ACK | false = ACK,
  more: Partial<RedisStoreOptions> = {},
): RedisSessionStore {
  const acknowledgement = ack === false ? undefined : ack;
  const conn = connectRedis(`redis://127.0.0.1:${port}`, 2000, undefined, {
    heldWrites: acknowledgement !== undefined,
  });
  connections.push(conn);
  return new RedisSessionStore(conn, {
    keyPrefix: prefix,
    keyring,
    idleTimeoutSeconds: 3600,
    timeoutMs: 2000,
    acknowledgement,
    ...more,
  });
}

/** How many WAITs the node has run since its statistics were last reset. */
async function waitsOn(port: number): Promise<number> {
  const stats = await admin(port, (r) => r.info('commandstats'));
  return Number(/^cmdstat_wait:calls=(\d+)/m.exec(stats)?.[1] ?? 0);
}

function tokenSet(n: number): UserTokenSet {
  const now = Date.now();
  return {
    accessToken: `access-${n}`,
    accessExpiresAt: now + 599_000,
    refreshToken: `refresh-${n}`,
    refreshExpiresAt: now + 12 * 3_600_000,
  };
}

describe('updateHeld on Redis', () => {
  it('is held once the replica has the write', async () => {
    const { primary } = await pair();
    const store = storeOn(primary.port, uniqueKeyPrefix());
    const session = userSession(Date.now());
    await store.create(KEY, session);
    expect(await store.updateHeld(KEY, { ...session, permission: null })).toBe('held');
    expect(await store.updateHeld('pro-api-session:00000000-0000-0000-0000-000000000000', session)).toBe('gone');
  });

  it('is not held when no replica confirms in time, and the shared connection is not held up meanwhile', async () => {
    const { primary, replica } = await pair();
    const store = storeOn(primary.port, uniqueKeyPrefix());
    const session = userSession(Date.now());
    await store.create(KEY, session);
    await replica.kill();
    const t0 = performance.now();
    let heldAt = 0;
    const held = store.updateHeld(KEY, session).then((r) => {
      heldAt = performance.now() - t0;
      return r;
    });
    // WAIT blocks its own connection only: every other call still goes through at once.
    await new Promise((r) => setTimeout(r, 20));
    expect(await store.get(KEY)).toBeDefined();
    const readAt = performance.now() - t0;
    expect(await held).toBe('not-held');
    expect(readAt).toBeLessThan(heldAt);
    expect(heldAt).toBeGreaterThanOrEqual(ACK.timeoutMs - 20);
    expect(heldAt).toBeLessThan(2000);
  });

  it('without acknowledgement configured, a write is held at once (one node)', async () => {
    const primary = await dedicatedRedis({ appendOnly: false });
    started.push(primary);
    await primary.start();
    const store = storeOn(primary.port, uniqueKeyPrefix(), false);
    const session = userSession(Date.now());
    await store.create(KEY, session);
    expect(await store.updateHeld(KEY, session)).toBe('held');
  });
});

describe('a new session, a selected role and renewed tokens wait for a replica (best effort)', () => {
  it('waits for the replica before resolving: one WAIT per held write, none for the others', async () => {
    const { primary, replica } = await pair();
    const unacknowledged: HeldPurpose[] = [];
    const store = storeOn(primary.port, uniqueKeyPrefix(), ACK, { onUnacknowledged: (w) => unacknowledged.push(w) });
    const session = userSession(Date.now());
    await admin(primary.port, (r) => r.config('RESETSTAT'));
    await store.create(KEY, session, 'create');
    expect(await waitsOn(primary.port)).toBe(1);
    // WAIT answered: the replica holds the session already.
    expect(await admin(replica.port, (r) => r.keys('*session:*'))).toHaveLength(1);
    expect(await store.update(KEY, { ...session, permission: null }, 'select-role')).toBe(true);
    expect(await store.update(KEY, session)).toBe(true); // not a held write: no WAIT
    expect(await store.update('pro-api-session:00000000-0000-0000-0000-000000000000', session, 'renewed-tokens')).toBe(
      false,
    );
    expect(await waitsOn(primary.port)).toBe(3);
    expect(unacknowledged).toEqual([]);
  });

  it('with the replica down: the write stands after the timeout, is counted and logged once, and the next ones do not wait', async () => {
    const { primary, replica } = await pair();
    const unacknowledged: HeldPurpose[] = [];
    const warnings: unknown[] = [];
    const logger = { warn: (o: unknown, msg: string) => warnings.push({ ...(o as object), msg }) } as never;
    const store = storeOn(primary.port, uniqueKeyPrefix(), ACK, {
      onUnacknowledged: (w) => unacknowledged.push(w),
      logger,
    });
    await replica.kill();
    await admin(primary.port, (r) => r.config('RESETSTAT'));
    const session = userSession(Date.now());
    const t0 = performance.now();
    await store.create(KEY, session, 'create');
    const first = performance.now() - t0;
    expect(first).toBeGreaterThanOrEqual(ACK.timeoutMs - 20);
    expect(await store.get(KEY)).toBeDefined();
    // Replicas lagging: for the next 5 s held writes go straight through, counted as not confirmed.
    const t1 = performance.now();
    expect(await store.update(KEY, { ...session, permission: null }, 'select-role')).toBe(true);
    expect(performance.now() - t1).toBeLessThan(ACK.timeoutMs / 2);
    expect(await waitsOn(primary.port)).toBe(1);
    expect(unacknowledged).toEqual(['create', 'select-role']);
    expect(warnings).toEqual([
      expect.objectContaining({ write: 'create', why: `not on 1 replica(s) within ${ACK.timeoutMs} ms` }),
    ]);
    // The strict mark still waits, and is not held.
    expect(await store.updateHeld(KEY, session)).toBe('not-held');
    expect(await waitsOn(primary.port)).toBe(2);
  });

  it('one ASID waits in at most 4 writes at once; its others go straight through', async () => {
    const { primary, replica } = await pair();
    const unacknowledged: HeldPurpose[] = [];
    const store = storeOn(primary.port, uniqueKeyPrefix(), ACK, { onUnacknowledged: (w) => unacknowledged.push(w) });
    await replica.kill();
    await admin(primary.port, (r) => r.config('RESETSTAT'));
    const session = userSession(Date.now());
    const keys = Array.from({ length: 6 }, (_, i) => `pro-api-session:00000000-0000-4000-8000-00000000000${i}`);
    await Promise.all(keys.map((k) => store.create(k, session, 'create')));
    expect(await waitsOn(primary.port)).toBe(4);
    for (const k of keys) expect(await store.get(k)).toBeDefined();
    expect(unacknowledged).toHaveLength(6);
  });

  it('through ers-bridge: A001 and A002 answer once the replica is lost, and the metrics count what no replica holds', async () => {
    const { primary, replica } = await pair();
    const app = await newApimApp({ asid: APP_ASID });
    const standIn = await startApimStandIn({ apps: [app.standInApp] });
    const logs: string[] = [];
    const bridge = await bridgeOnRedis(
      standIn,
      app,
      { url: `redis://127.0.0.1:${primary.port}`, acknowledgement: ACK },
      'held-writes.yaml',
      logs,
    );
    try {
      const metric = async () => (await (await fetch(`${bridge.opsUrl}/metrics`)).text()).split('\n');
      const counted = (lines: string[]) =>
        lines.filter((l) => l.startsWith('ers_bridge_session_writes_unacknowledged_total{'));
      await openSelectedSession(bridge.bridgeUrl, APP_ASID);
      expect(counted(await metric())).toEqual([]);
      await replica.kill();
      const key = await openSelectedSession(bridge.bridgeUrl, APP_ASID);
      expectStatus(
        await callBridge(bridge.bridgeUrl, 'GET', A005_PATH, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key }),
        200,
        'A005 on the session made while no replica confirmed',
      );
      expect(counted(await metric()).sort()).toEqual([
        'ers_bridge_session_writes_unacknowledged_total{write="create"} 1',
        'ers_bridge_session_writes_unacknowledged_total{write="select-role"} 1',
      ]);
      const warned = logs.map((l) => JSON.parse(l)).filter((l) => l.msg.startsWith('session write not confirmed'));
      expect(warned).toHaveLength(1);
      expect(logs.join('\n')).not.toContain(key);
    } finally {
      await bridge.close();
      await standIn.close();
    }
  });

  it('without acknowledgement configured, nothing waits and nothing is counted', async () => {
    const primary = await dedicatedRedis({ appendOnly: false });
    started.push(primary);
    await primary.start();
    const unacknowledged: HeldPurpose[] = [];
    const store = storeOn(primary.port, uniqueKeyPrefix(), false, { onUnacknowledged: (w) => unacknowledged.push(w) });
    await admin(primary.port, (r) => r.config('RESETSTAT'));
    await store.create(KEY, userSession(Date.now()), 'create');
    expect(await waitsOn(primary.port)).toBe(0);
    expect(unacknowledged).toEqual([]);
  });
});

describe('a failover in the middle of a CIS2 token renewal', () => {
  it('never sends the spent refresh token again: the promoted replica holds the mark, the session ends', async () => {
    const { primary, replica } = await pair();
    const prefix = uniqueKeyPrefix();
    const before = storeOn(primary.port, prefix);
    const session = userSession(Date.now(), {
      apim: { ...userSession(Date.now()).apim!, accessExpiresAt: Date.now() - 1 },
    });
    await before.create(KEY, session);
    const sent: string[] = [];
    // APIM renews the token, but the primary dies before the renewed tokens are stored: the replica is promoted.
    const refresh = vi.fn(async (token: string) => {
      sent.push(token);
      await admin(replica.port, (r) => r.call('REPLICAOF', 'NO', 'ONE'));
      await primary.kill();
      return tokenSet(2);
    });
    const userTokens = { refresh } as unknown as ApimUserTokens;
    const who = { asid: ASID, userTokens, key: KEY, session };
    const first = await obtainUserToken({ store: before, renewals: new Map(), clock: systemClock }, who).catch(
      (e) => e,
    );
    expect(knownFault(first)?.status).toBe(503); // the renewed tokens could not be stored

    // ers-bridge now reaches the promoted replica, which holds the session as it was before APIM was called.
    const after = storeOn(replica.port, prefix);
    const found = await after.get(KEY);
    expect(found?.apim).toMatchObject({ refreshToken: 'refresh-1', refreshSpending: true });
    // The renewal's lock came over too; it ends by its TTL (20 s), which the test does not wait for.
    await admin(replica.port, async (r) => {
      const locks = await r.keys(`${prefix}lock:*`);
      expect(locks.length).toBe(1);
      await r.del(...locks);
    });
    const again = await obtainUserToken(
      { store: after, renewals: new Map(), clock: systemClock },
      { ...who, session: found! },
    ).catch((e) => e);
    expect(knownFault(again)).toMatchObject({ reason: 'SESSION_SIGN_IN_AGAIN' });
    expect(sent).toEqual(['refresh-1']); // sent once, never again
    expect(await after.get(KEY)).toBeUndefined();
  }, 30_000);

  it('with no replica to hold the mark, the refresh token is not sent at all', async () => {
    const { primary, replica } = await pair();
    const store = storeOn(primary.port, uniqueKeyPrefix());
    const session = userSession(Date.now(), {
      apim: { ...userSession(Date.now()).apim!, accessExpiresAt: Date.now() - 1 },
    });
    await store.create(KEY, session);
    await replica.kill();
    const refresh = vi.fn(async () => tokenSet(2));
    const who = { asid: ASID, userTokens: { refresh } as unknown as ApimUserTokens, key: KEY, session };
    const e = await obtainUserToken({ store, renewals: new Map(), clock: systemClock }, who).catch((x) => x);
    expect(knownFault(e)).toMatchObject({ reason: 'STORE_UNAVAILABLE', status: 503 });
    expect(refresh).not.toHaveBeenCalled();
    expect((await store.get(KEY))!.apim).not.toHaveProperty('refreshSpending');
  }, 30_000);
});
