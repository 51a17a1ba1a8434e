import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest';
import { type ApimStandIn, startApimStandIn } from '../../src/apim-standin/index.js';
import { newApimApp } from '../helpers/apim-app.js';
import { APP_ASID, expectLegacyOutcome, type LegacyResponse, type listenBridge } from '../helpers/harness.js';
import {
  A005_PATH,
  adminOn,
  bridgeOnRedis,
  callBridge,
  dedicatedRedis,
  expectStatus,
  openSelectedSession,
  type RedisServerProcess,
  sleep,
} from '../helpers/redis-replicas.js';

const MASTER = 'ers-sessions';
const SESSIONS = 20;

let primary: RedisServerProcess | undefined;
let replica: RedisServerProcess | undefined;
const sentinels: RedisServerProcess[] = [];
let standIn: ApimStandIn | undefined;
let bridge: Awaited<ReturnType<typeof listenBridge>> | undefined;
let base: string;
const runtimeLogs: string[] = [];
const keys: string[] = [];

function dumpOnFailure(): void {
  onTestFailed(() => {
    console.error(`--- ers-bridge logs ---\n${[...runtimeLogs, ...(bridge?.logs ?? [])].join('\n')}`);
    for (const [name, p] of [
      ['primary', primary],
      ['replica', replica],
      ...sentinels.map((s, i) => [`sentinel ${i}`, s]),
    ] as const) {
      console.error(`--- ${name} ---\n${(p as RedisServerProcess | undefined)?.output().slice(-4000) ?? ''}`);
    }
  });
}

const admin = adminOn;

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

const openSession = () => openSelectedSession(base, APP_ASID);

const a005 = (key: string) => callBridge(base, 'GET', A005_PATH, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });

/** A call during the failover may succeed or be refused as a legacy 503 with Retry-After: nothing else. */
function expectSuccessOr503(res: LegacyResponse, what: string): 'ok' | 'refused' {
  if (res.status === 200) return 'ok';
  expectLegacyOutcome(res, 503, 'STORE_UNAVAILABLE');
  expect(res.headers['retry-after'], `${what}: Retry-After`).toMatch(/^\d+$/);
  return 'refused';
}

beforeAll(async () => {
  primary = await dedicatedRedis({ appendOnly: false });
  await primary.start();
  replica = await dedicatedRedis({ appendOnly: false, args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  await replica.start();
  for (let i = 0; i < 3; i++) {
    const s = await dedicatedRedis({ sentinelOf: { masterName: MASTER, port: primary.port, quorum: 2 } });
    await s.start();
    sentinels.push(s);
  }
  // The replica has synced, and every sentinel knows it and the other sentinels (else no quorum for a failover).
  await vi.waitFor(
    async () => {
      const info = await admin(replica!.port, (r) => r.info('replication'));
      expect(infoField(info, 'master_link_status')).toBe('up');
      for (const s of sentinels) {
        const replicas = (await admin(s.port, (r) => r.call('SENTINEL', 'REPLICAS', MASTER))) as unknown[];
        expect(replicas.length).toBe(1);
        const others = (await admin(s.port, (r) => r.call('SENTINEL', 'SENTINELS', MASTER))) as unknown[];
        expect(others.length).toBe(2);
      }
    },
    { timeout: 30_000, interval: 250 },
  );

  const app = await newApimApp({ asid: APP_ASID });
  standIn = await startApimStandIn({ apps: [app.standInApp] });
  bridge = await bridgeOnRedis(
    standIn,
    app,
    { sentinel: { sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`), masterName: MASTER } },
    'sentinel.yaml',
    runtimeLogs,
  );
  base = bridge.bridgeUrl;
}, 60_000);

afterAll(async () => {
  await bridge?.close();
  await standIn?.close();
  for (const p of [primary, replica, ...sentinels]) await p?.destroy();
}, 30_000);

describe('Redis Sentinel: the primary killed under 20 live sessions', () => {
  it('serves sessions through the primary the sentinels name', async () => {
    dumpOnFailure();
    for (let i = 0; i < SESSIONS; i++) keys.push(await openSession());
    for (const key of keys) expectStatus(await a005(key), 200, 'A005 before the failover');
    // Connected to the primary, as the sentinels named it.
    const connected = runtimeLogs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'session store (Redis) connected');
    expect(connected.at(-1)).toMatchObject({ node: `127.0.0.1:${primary!.port}`, sentinelMaster: MASTER });
    // Every session is on the replica before the primary dies (replication is asynchronous).
    await vi.waitFor(
      async () => {
        const p = await admin(primary!.port, (r) => r.info('replication'));
        const r = await admin(replica!.port, (r) => r.info('replication'));
        expect(Number(infoField(r, 'slave_repl_offset'))).toBe(Number(infoField(p, 'master_repl_offset')));
      },
      { timeout: 10_000, interval: 100 },
    );
  });

  it('follows the failover without a restart: meanwhile only successes or legacy 503s, afterwards every session works', async () => {
    dumpOnFailure();
    const killedAt = performance.now();
    await primary!.kill();
    const outcomes = { ok: 0, refused: 0 };
    let recoveredAt: number | undefined;
    // Call every session over and over until all of them succeed in one pass.
    while (recoveredAt === undefined) {
      expect(performance.now() - killedAt, 'the sessions work again within 30 s of the primary dying').toBeLessThan(
        30_000,
      );
      const pass = await Promise.all(keys.map(async (key) => expectSuccessOr503(await a005(key), 'A005')));
      for (const o of pass) outcomes[o]++;
      if (pass.every((o) => o === 'ok')) recoveredAt = performance.now();
      else await sleep(100);
    }
    const seconds = (recoveredAt - killedAt) / 1000;
    console.info(
      `Sentinel failover: ${outcomes.refused} calls refused (legacy 503 + Retry-After), ${outcomes.ok} served; ` +
        `every session working again ${seconds.toFixed(1)} s after the primary was killed`,
    );
    // ers-bridge now talks to the promoted replica.
    const connected = runtimeLogs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'session store (Redis) connected');
    expect(connected.at(-1)).toMatchObject({ node: `127.0.0.1:${replica!.port}` });
    const role = await admin(replica!.port, (r) => r.info('replication'));
    expect(infoField(role, 'role')).toBe('master');
    // New sessions can be made on the new primary, and nothing was logged as an internal error.
    expectStatus(await a005(await openSession()), 200, 'A005 with a session made after the failover');
    const lines = [...runtimeLogs, ...bridge!.logs].map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.msg === 'internal error')).toEqual([]);
    expect([...runtimeLogs, ...bridge!.logs].join('\n')).not.toContain(keys[0]!);
  }, 60_000);
});
