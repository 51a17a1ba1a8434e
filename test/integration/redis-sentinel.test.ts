import { randomBytes } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest';
import { type ApimStandIn, startApimStandIn } from '../../src/apim-standin/index.js';
import { newApimApp } from '../helpers/apim-app.js';
import { cis2Login, launchChromium } from '../helpers/browser.js';
import { APP_ASID, expectLegacyOutcome, type LegacyResponse, type listenBridge } from '../helpers/harness.js';
import {
  A005_PATH,
  adminOn,
  bridgeOnRedis,
  callBridge,
  dedicatedRedis,
  expectStatus,
  loggerInto,
  openSelectedSession,
  type RedisServerProcess,
  SESSION_PATH,
  sleep,
  uniqueKeyPrefix,
} from '../helpers/redis-replicas.js';
import { CLINICIAN, startUserHarness, USER_ASID, type UserHarness } from '../helpers/user-harness.js';

const MASTER = 'ers-sessions';
/** 20 live sessions: half application-restricted, half CIS2 users' (each signed in through the browser). */
const APP_SESSIONS = 10;
const USER_SESSIONS = 10;

let primary: RedisServerProcess | undefined;
let replica: RedisServerProcess | undefined;
const sentinels: RedisServerProcess[] = [];
let standIn: ApimStandIn | undefined;
let bridge: Awaited<ReturnType<typeof listenBridge>> | undefined;
let base: string;
/** ers-bridge for the CIS2 users' ASID, on the same Sentinel-managed Redis. */
let users: UserHarness | undefined;
let browser: Browser | undefined;
const runtimeLogs: string[] = [];
const userLogs: string[] = [];
const keys: string[] = [];
const userKeys: string[] = [];

function dumpOnFailure(): void {
  onTestFailed(() => {
    console.error(`--- ers-bridge logs ---\n${[...runtimeLogs, ...(bridge?.logs ?? [])].join('\n')}`);
    console.error(`--- ers-bridge (CIS2 users) logs ---\n${[...userLogs, ...(users?.logs ?? [])].join('\n')}`);
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
const userA005 = (key: string) =>
  callBridge(users!.bridgeUrl, 'GET', A005_PATH, { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key });

/** A CIS2 user's session: sign-in in the browser, the one-time code to A001, then A002 with a provider role. */
async function signInUser(): Promise<string> {
  const context = await browser!.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${users!.bridgeUrl}/login?asid=${USER_ASID}`);
    await cis2Login(page, CLINICIAN);
    await page.waitForURL(`${users!.bridgeUrl}/login/callback**`, { timeout: 10_000 });
    const code = (await page.locator('#sign-in-code').innerText()).trim();
    const typeInfo = 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession';
    const json = { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' };
    const a001 = await callBridge(
      users!.bridgeUrl,
      'POST',
      SESSION_PATH,
      json,
      JSON.stringify({ typeInfo, token: code }),
    );
    expectStatus(a001, 201, 'A001 with the sign-in code');
    const session = a001.json();
    const permission = { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' };
    const a002 = await callBridge(
      users!.bridgeUrl,
      'PUT',
      `${SESSION_PATH}/${session.id}`,
      { ...json, HTTP_X_SESSION_KEY: session.id },
      JSON.stringify({ ...session, permission }),
    );
    expectStatus(a002, 200, 'A002 (the provider role)');
    return session.id as string;
  } finally {
    await context.close();
  }
}

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
  users = await startUserHarness({
    sessions: {
      store: 'redis',
      redis: {
        sentinel: { sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`), masterName: MASTER },
        keyPrefix: uniqueKeyPrefix(),
        timeoutMs: 1000,
      },
      encryption: { current: 'k1', keys: { k1: 'env:SESSION_KEY_1' } },
    },
    env: { SESSION_KEY_1: randomBytes(32).toString('base64') },
    logger: loggerInto(userLogs),
  });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await users?.close();
  await bridge?.close();
  await standIn?.close();
  for (const p of [primary, replica, ...sentinels]) await p?.destroy();
}, 30_000);

describe('Redis Sentinel: the primary killed under 20 live sessions (10 of them CIS2 users)', () => {
  it('serves sessions through the primary the sentinels name', async () => {
    dumpOnFailure();
    for (let i = 0; i < APP_SESSIONS; i++) keys.push(await openSession());
    for (let i = 0; i < USER_SESSIONS; i++) userKeys.push(await signInUser());
    for (const key of keys) expectStatus(await a005(key), 200, 'A005 before the failover');
    for (const key of userKeys)
      expectStatus(await userA005(key), 200, "A005 in a CIS2 user's session before the failover");
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
      const pass = await Promise.all([
        ...keys.map(async (key) => expectSuccessOr503(await a005(key), 'A005')),
        ...userKeys.map(async (key) => expectSuccessOr503(await userA005(key), "A005 in a CIS2 user's session")),
      ]);
      for (const o of pass) outcomes[o]++;
      if (pass.every((o) => o === 'ok')) recoveredAt = performance.now();
      else await sleep(100);
    }
    const seconds = (recoveredAt - killedAt) / 1000;
    console.info(
      `Sentinel failover: ${outcomes.refused} calls refused (legacy 503 + Retry-After), ${outcomes.ok} served; ` +
        `every session working again ${seconds.toFixed(1)} s after the primary was killed`,
    );
    // Both ers-bridges now talk to the promoted replica.
    for (const logs of [runtimeLogs, userLogs]) {
      const connected = logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'session store (Redis) connected');
      expect(connected.at(-1)).toMatchObject({ node: `127.0.0.1:${replica!.port}` });
    }
    const role = await admin(replica!.port, (r) => r.info('replication'));
    expect(infoField(role, 'role')).toBe('master');
    // New sessions can be made on the new primary, and nothing was logged as an internal error.
    expectStatus(await a005(await openSession()), 200, 'A005 with a session made after the failover');
    expectStatus(await userA005(await signInUser()), 200, 'A005 for a CIS2 user signed in after the failover');
    const all = [...runtimeLogs, ...bridge!.logs, ...userLogs, ...users!.logs];
    expect(all.map((l) => JSON.parse(l)).filter((l) => l.msg === 'internal error')).toEqual([]);
    for (const key of [keys[0]!, userKeys[0]!]) expect(all.join('\n')).not.toContain(key);
  }, 60_000);
});
