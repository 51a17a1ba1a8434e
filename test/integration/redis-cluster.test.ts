/**
 * The Redis session store on a Redis Cluster of the test's own (issue 16): three primaries with a replica each, on
 * free loopback ports. The session store contract, the cluster key layout (one hash slot per ASID, ASIDs spread over
 * the nodes), locks, the per-ASID quota with eviction, sign-in codes and slots, a CIS2 token renewal whose mark is
 * held by a replica (WAIT on the slot's node), and a primary killed: its replica takes over and every session
 * survives; calls meanwhile either answer or fail with StoreUnavailableError.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApimStandIn, startApimStandIn } from '../../src/apim-standin/index.js';
import type { ApimUserTokens } from '../../src/auth/user-token.js';
import { comparisonKeyPrefix, RedisComparisons } from '../../src/comparison/redis-comparisons.js';
import { ComparisonStore } from '../../src/comparison/store.js';
import { createLogger } from '../../src/logging.js';
import { obtainUserToken } from '../../src/pipeline/user-token.js';
import { systemClock } from '../../src/runtime/clock.js';
import { Keyring } from '../../src/sessions/crypto.js';
import { updateLocked } from '../../src/sessions/locking.js';
import {
  type ClusterTarget,
  connectRedis,
  type RedisConnection,
  RedisEphemeralStore,
  RedisSessionStore,
} from '../../src/sessions/redis-store.js';
import { newSessionKey, type Session } from '../../src/sessions/session.js';
import { RedisSignInSlots } from '../../src/sessions/signin-slots.js';
import { type SessionStore, StoreUnavailableError } from '../../src/sessions/store.js';
import { newApimApp } from '../helpers/apim-app.js';
import { APP_ASID, captureLogs, expectLegacyOutcome, OTHER_ASID } from '../helpers/harness.js';
import {
  A005_PATH,
  adminOn,
  bridgeOnRedis,
  callBridge,
  dedicatedRedisCluster,
  expectStatus,
  keysUnder,
  openSelectedSession,
  type RedisClusterProcesses,
  SESSION_PATH,
  sleep,
} from '../helpers/redis-replicas.js';
import { clock, IDLE_S, session, sessionStoreContract } from '../helpers/session-store-contract.js';

const prefix = `ers-bridge-test:${randomBytes(6).toString('hex')}:`;
const keyring = new Keyring({ k1: randomBytes(32).toString('base64') }, 'k1');
/** The contract's sessions are all of this ASID (test/helpers/session-store-contract.ts). */
const CONTRACT_ASID = session().asid;
const ASIDS = Array.from({ length: 12 }, (_, i) => `9990000001${String(i).padStart(2, '0')}`);

let cluster: RedisClusterProcesses;
const connections: RedisConnection[] = [];
/** ers-bridge's log lines (kept for the suite's log scan as well). */
const { logs, destination } = captureLogs();
const logger = createLogger({ level: 'info', destination });

function target(): ClusterTarget {
  // Two seeds: the store learns the other nodes from them.
  return { nodes: cluster.seeds.slice(0, 2), tls: false };
}

function connect(heldWrites = false): RedisConnection {
  const conn = connectRedis(target(), 2000, logger, { heldWrites });
  connections.push(conn);
  return conn;
}

function storeOn(conn: RedisConnection, extra: Partial<ConstructorParameters<typeof RedisSessionStore>[1]> = {}) {
  return new RedisSessionStore(
    conn,
    { keyPrefix: prefix, keyring, idleTimeoutSeconds: IDLE_S, now: () => clock.now, logger, ...extra },
    false,
  );
}

/**
 * The contract names sessions by key alone; on a cluster the store finds them under their ASID, which ers-bridge's
 * callers always pass. This passes the contract's one ASID where the contract passes none.
 */
function underContractAsid(store: RedisSessionStore, conn: RedisConnection): SessionStore {
  return {
    create: (key, s) => store.create(key, s),
    get: (key, hash, asid = CONTRACT_ASID) => store.get(key, hash, asid),
    update: (key, s) => store.update(key, s),
    delete: (key, asid = CONTRACT_ASID) => store.delete(key, asid),
    lock: (key, ttlMs, asid = CONTRACT_ASID) => store.lock(key, ttlMs, asid),
    ping: () => store.ping(),
    updateHeld: (key, s) => store.updateHeld(key, s),
    size: () => store.size(),
    close: () => conn.close(),
  };
}

/** CLUSTER KEYSLOT of a key, asked of a live node. */
async function slotOf(key: string): Promise<number> {
  const port = (await cluster.primaries())[0]!;
  return Number(await adminOn(port, (r) => r.call('CLUSTER', 'KEYSLOT', key)));
}

/** Every key under the test's prefix, with the port of the primary holding it. */
async function keysByNode(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const port of await cluster.primaries()) {
    for (const k of await adminOn(port, (r) => keysUnder(r, prefix))) out.set(k, port);
  }
  return out;
}

/** Until every replica of the primary has its writes (so a kill loses nothing the test wrote), bounded. */
async function replicated(primaryPort: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const info = await adminOn(primaryPort, (r) => r.info('replication'));
    const own = Number(/master_repl_offset:(\d+)/.exec(info)?.[1]);
    const theirs = [...info.matchAll(/slave\d+:.*offset=(\d+)/g)].map((m) => Number(m[1]));
    if (theirs.length > 0 && theirs.every((o) => o >= own)) return;
    if (Date.now() > deadline) throw new Error(`the replicas of ${primaryPort} did not catch up:\n${info}`);
    await sleep(50);
  }
}

beforeAll(async () => {
  cluster = await dedicatedRedisCluster(3, 1);
}, 40_000);

afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await cluster?.destroy();
});

sessionStoreContract([
  {
    name: 'redis cluster',
    make: async () => {
      const conn = connect();
      return underContractAsid(storeOn(conn), conn);
    },
    advance: async (ms) => {
      clock.now += ms;
    },
    expireLocks: async (ms) => {
      await sleep(ms);
      clock.now += ms;
    },
  },
]);

describe('ers-bridge on Redis Cluster: A001, A002, a data call, A003', () => {
  let standIn: ApimStandIn | undefined;
  let bridge: Awaited<ReturnType<typeof bridgeOnRedis>> | undefined;
  const runtimeLogs: string[] = [];

  afterAll(async () => {
    await bridge?.close();
    await standIn?.close();
  });

  it('every call that names a session finds it under the calling ASID; another ASID’s call does not', async () => {
    const app = await newApimApp({ asid: APP_ASID });
    standIn = await startApimStandIn({ apps: [app.standInApp] });
    const nodes = cluster.seeds.slice(0, 2).map((n) => `${n.host}:${n.port}`);
    bridge = await bridgeOnRedis(standIn, app, { cluster: { nodes } }, 'cluster.yaml', runtimeLogs);
    const base = bridge.bridgeUrl;
    const key = await openSelectedSession(base, APP_ASID);
    const headers = { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key };
    expectStatus(await callBridge(base, 'GET', A005_PATH, headers), 200, 'A005');
    const foreign = await callBridge(base, 'GET', A005_PATH, { XAPI_ASID: OTHER_ASID, HTTP_X_SESSION_KEY: key });
    expectLegacyOutcome(foreign, 403, 'SESSION_UNKNOWN');
    expectStatus(await callBridge(base, 'DELETE', `${SESSION_PATH}/${key}`, headers), 204, 'A003');
    expectLegacyOutcome(await callBridge(base, 'GET', A005_PATH, headers), 403, 'SESSION_UNKNOWN');
    const lines = [...runtimeLogs, ...bridge.logs].map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect([...runtimeLogs, ...bridge.logs].join('\n')).not.toContain(key);
  });
});

describe('the session store on Redis Cluster', () => {
  let conn: RedisConnection;
  let store: RedisSessionStore;
  /** Sessions made before the failover, to read after it. */
  const before: Array<{ key: string; session: Session }> = [];

  beforeAll(() => {
    conn = connect(true);
    store = storeOn(conn, { acknowledgement: { replicas: 1, timeoutMs: 500 } });
  });

  it("keeps each ASID's keys in one hash slot, and spreads ASIDs over the primaries", async () => {
    for (const asid of ASIDS) {
      const key = newSessionKey();
      const s = session({ asid });
      await store.create(key, s);
      before.push({ key, session: s });
      expect(await store.get(key, undefined, asid)).toEqual(s);
    }
    const release = await store.lock(before[0]!.key, 10_000, ASIDS[0]);
    const byNode = await keysByNode();
    const slotsOfAsid = new Map<string, Set<number>>();
    for (const k of byNode.keys()) {
      const asid = /\{asid:(\d+)\}/.exec(k)?.[1];
      if (!asid) continue;
      const slots = slotsOfAsid.get(asid) ?? new Set();
      slots.add(await slotOf(k));
      slotsOfAsid.set(asid, slots);
    }
    for (const asid of ASIDS) expect(slotsOfAsid.get(asid)?.size, asid).toBe(1);
    const locked = [...byNode.keys()].filter((k) => k.includes(`{asid:${ASIDS[0]}}:lock:`));
    expect(locked).toHaveLength(1);
    expect(await slotOf(locked[0]!)).toBe(await slotOf(`${prefix}{asid:${ASIDS[0]}}:index`));
    // Different ASIDs, different nodes: the twelve ASIDs' sessions are on more than one primary.
    const nodesUsed = new Set([...byNode].filter(([k]) => k.includes(':session:')).map(([, port]) => port));
    expect(nodesUsed.size).toBeGreaterThanOrEqual(2);
    // The connection learnt the three primaries from two seeds.
    expect(logs.some((l) => /"primaries":3/.test(l) && /Redis Cluster\) connected/.test(l))).toBe(true);
    // The one-node layout is not used on a cluster.
    expect([...byNode.keys()].some((k) => k.startsWith(`${prefix}session:`))).toBe(false);
    await release!();
    // Without the ASID the cluster store cannot place a session: a mistake in ers-bridge, said so.
    await expect(store.get(before[0]!.key)).rejects.toThrow('the session store on Redis Cluster needs the ASID');
    // A session is found under its own ASID only (another ASID's key is another slot's).
    expect(await store.get(before[0]!.key, undefined, ASIDS[1])).toBeUndefined();
  });

  it('size() counts every ASID’s sessions across the slots', async () => {
    const n = await store.size();
    expect(n).toBeGreaterThanOrEqual(ASIDS.length);
    const key = newSessionKey();
    await store.create(key, session({ asid: ASIDS[3]! }));
    expect(await store.size()).toBe(n + 1);
    expect(await store.delete(key, ASIDS[3])).toBe(true);
    expect(await store.size()).toBe(n);
  });

  it('the per-ASID quota evicts that ASID’s oldest sessions only, in one script on its node', async () => {
    const quota = storeOn(conn, { limits: { maxPerAsid: 3 } });
    const asid = '999000000200';
    const keys: string[] = [];
    for (let i = 0; i < 5; i++) {
      const key = newSessionKey();
      keys.push(key);
      await quota.create(key, session({ asid, createdAt: clock.now + i }));
    }
    expect(await quota.get(keys[0]!, undefined, asid)).toBeUndefined();
    expect(await quota.get(keys[1]!, undefined, asid)).toBeUndefined();
    for (const k of keys.slice(2)) expect(await quota.get(k, undefined, asid)).toBeDefined();
    expect(await quota.sizeOf(asid)).toBe(3);
    // Another ASID's sessions are untouched.
    for (const b of before) expect(await store.get(b.key, undefined, b.session.asid)).toBeDefined();
  });

  it('locked updates on different replicas never lose each other’s change', async () => {
    const { key, session: s } = before[1]!;
    const bump = (c: Session) => ({ ...c, lastUsedAt: c.lastUsedAt + 1 });
    const other = storeOn(connect());
    await Promise.all([
      updateLocked(store, key, bump, systemClock, s.asid),
      updateLocked(other, key, bump, systemClock, s.asid),
    ]);
    expect((await store.get(key, undefined, s.asid))?.lastUsedAt).toBe(s.lastUsedAt + 2);
    before[1] = { key, session: (await store.get(key, undefined, s.asid))! };
  });

  it('sign-in codes are taken once', async () => {
    const codes = new RedisEphemeralStore<{ sub: string }>(conn, `${prefix}code:`, keyring);
    await codes.put('code-1', { sub: 'u1' }, 10_000);
    expect(await codes.take('code-1')).toEqual({ sub: 'u1' });
    expect(await codes.take('code-1')).toBeUndefined();
  });

  it('sign-in slots: both caps hold, and a claim the ASID refuses gives its address slot back', async () => {
    const slots = new RedisSignInSlots(conn, `${prefix}signin-slots:`, { now: () => Date.now() });
    const claim = (asid: string, address: string, slot: string) =>
      slots.claim({ asid, address, slot, ttlMs: 60_000, perAsid: 2, perAddress: 1 });
    expect(await claim('999000000300', '10.0.0.1', 's1')).toEqual({ ok: true });
    expect(await claim('999000000300', '10.0.0.1', 's2')).toMatchObject({ ok: false, limit: 'address' });
    expect(await claim('999000000300', '10.0.0.2', 's3')).toEqual({ ok: true });
    expect(await claim('999000000300', '10.0.0.3', 's4')).toMatchObject({ ok: false, limit: 'asid' });
    // 10.0.0.3's slot was given back: it may sign in for another ASID.
    expect(await claim('999000000301', '10.0.0.3', 's5')).toEqual({ ok: true });
    await slots.release('999000000300', '10.0.0.1', 's1');
    expect(await claim('999000000300', '10.0.0.4', 's6')).toEqual({ ok: true });
  });

  it("a CIS2 token renewal: the mark is held by the slot's replica (WAIT on its node), then the new tokens stored", async () => {
    const asid = ASIDS[5]!;
    const key = newSessionKey();
    const s = session({ asid });
    const apim = s.apim!;
    await store.create(key, { ...s, apim: { ...apim, accessExpiresAt: Date.now() - 1 } });
    expect(await store.updateHeld(newSessionKey(), session({ asid }))).toBe('gone');
    const sent: string[] = [];
    const userTokens = {
      refresh: async (refreshToken: string) => {
        // The mark is in the store before the single-use token is sent.
        expect((await store.get(key, undefined, asid))?.apim?.refreshSpending).toBe(true);
        sent.push(refreshToken);
        return {
          ...apim,
          accessToken: 'at-renewed',
          refreshToken: 'rt-renewed',
          accessExpiresAt: Date.now() + 599_000,
        };
      },
    } as unknown as ApimUserTokens;
    const current = (await store.get(key, undefined, asid))!;
    const token = await obtainUserToken(
      { store, renewals: new Map(), clock: systemClock },
      { asid, userTokens, key, session: current },
    );
    expect(token).toBe('at-renewed');
    expect(sent).toEqual([apim.refreshToken]);
    const stored = await store.get(key, undefined, asid);
    expect(stored?.apim).toMatchObject({ accessToken: 'at-renewed', refreshToken: 'rt-renewed' });
    expect(stored?.apim?.refreshSpending).toBeFalsy();
    before.push({ key, session: stored! });
  });

  it('the shared comparisons: one hash tag for all their keys, so their pipelines and the reset work on a cluster', async () => {
    const local = new ComparisonStore();
    const cmpPrefix = comparisonKeyPrefix(prefix, true);
    const shared = new RedisComparisons(conn, {
      keyPrefix: cmpPrefix,
      retentionMs: 86_400_000,
      samplesPerCode: 10,
      limits: local.limits,
      appRestricted: () => true,
      codeName: () => undefined,
      replica: 'test-host:1',
      local,
    });
    shared.recordCall('999000000400', 'A005');
    shared.recordCall('999000000401', 'A005');
    const summary = await shared.summary();
    expect(shared.writeErrors).toBe(0);
    expect(summary.scope).toBe('shared');
    expect(summary.sharedUnavailable).toBeUndefined();
    expect(summary.asids.map((a) => a.asid).sort()).toEqual(['999000000400', '999000000401']);
    const cmpKeys = [...(await keysByNode()).keys()].filter((k) => k.startsWith(cmpPrefix));
    expect(cmpKeys.length).toBeGreaterThan(1);
    expect(new Set(await Promise.all(cmpKeys.map(slotOf))).size).toBe(1);
    await shared.reset();
    const left = [...(await keysByNode()).keys()].filter((k) => k.startsWith(cmpPrefix));
    expect(left.every((k) => k === `${cmpPrefix}meta`)).toBe(true);
    expect((await shared.summary()).asids).toEqual([]);
    await shared.close();
  });

  it('a primary killed: its replica takes over, every session survives, calls meanwhile answer or fail as unavailable', async () => {
    const byNode = await keysByNode();
    const victim = before.find((b) => [...byNode].some(([k]) => k.includes(`{asid:${b.session.asid}}:session:`)))!;
    const victimPort = [...byNode].find(([k]) => k.includes(`{asid:${victim.session.asid}}:session:`))![1];
    const onVictim = before.filter((b) =>
      [...byNode].some(([k, port]) => port === victimPort && k.includes(`{asid:${b.session.asid}}:session:`)),
    );
    expect(onVictim.length).toBeGreaterThan(0);
    for (const port of await cluster.primaries()) await replicated(port);

    const node = cluster.nodes.find((n) => n.port === victimPort)!;
    // Traffic meanwhile: every 100 ms a read of each session made before (on every node) and an A001 write.
    const outcome = { calls: 0, failed: 0, failedOnOthers: 0, unexpected: [] as unknown[] };
    const call = async (p: Promise<unknown>, onVictim: boolean) => {
      outcome.calls++;
      try {
        await p;
      } catch (e) {
        if (!(e instanceof StoreUnavailableError)) outcome.unexpected.push(e);
        else if (onVictim) outcome.failed++;
        else outcome.failedOnOthers++;
      }
    };
    const inFlight: Array<Promise<void>> = [];
    const victimAsids = new Set(onVictim.map((b) => b.session.asid));
    let traffic = true;
    const load = (async () => {
      while (traffic) {
        for (const b of before) {
          inFlight.push(call(store.get(b.key, undefined, b.session.asid), victimAsids.has(b.session.asid)));
        }
        const asid = ASIDS[outcome.calls % ASIDS.length]!;
        inFlight.push(call(store.create(newSessionKey(), session({ asid })), victimAsids.has(asid)));
        await sleep(100);
      }
    })();
    const killedAt = Date.now();
    await node.kill();
    let recoveredAt: number | undefined;
    while (Date.now() < killedAt + 20_000) {
      const got = await store.get(victim.key, undefined, victim.session.asid).catch((e: unknown) => {
        if (!(e instanceof StoreUnavailableError)) outcome.unexpected.push(e);
        return undefined;
      });
      if (got) {
        recoveredAt = Date.now();
        break;
      }
      await sleep(50);
    }
    traffic = false;
    await load;
    await Promise.all(inFlight);
    expect(outcome.unexpected).toEqual([]);
    expect(recoveredAt, 'the slot answered again within 20 s').toBeDefined();
    const seconds = ((recoveredAt ?? Date.now()) - killedAt) / 1000;
    console.log(
      `redis cluster failover: the killed primary's slots answered again after ${seconds.toFixed(1)} s; ` +
        `of ${outcome.calls} calls meanwhile, ${outcome.failed} to its slots and ${outcome.failedOnOthers} to the other primaries' failed (StoreUnavailableError), none otherwise`,
    );
    expect(await cluster.primaries()).not.toContain(victimPort);
    for (const b of before) {
      const got = await store.get(b.key, undefined, b.session.asid);
      expect(got, `session of ${b.session.asid}`).toEqual(b.session);
    }
    for (const asid of ASIDS) {
      const key = newSessionKey();
      await store.create(key, session({ asid }));
      expect(await store.get(key, undefined, asid)).toBeDefined();
    }
  }, 30_000);
});
