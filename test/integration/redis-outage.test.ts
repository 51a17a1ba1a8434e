import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest';
import { type ApimStandIn, startApimStandIn } from '../../src/apim-standin/index.js';
import { newApimApp } from '../helpers/apim-app.js';
import { freePort } from '../helpers/free-port.js';
import { APP_ASID, expectLegacyOutcome, type listenBridge } from '../helpers/harness.js';
import {
  A005_PATH,
  a001At,
  bridgeOnRedis,
  callBridge,
  dedicatedRedis,
  expectStatus,
  openSelectedSession,
  type RedisServerProcess,
} from '../helpers/redis-replicas.js';

let redis: RedisServerProcess | undefined;
let standIn: ApimStandIn | undefined;
let bridge: Awaited<ReturnType<typeof listenBridge>> | undefined;
let base: string;
/** The ops surface (/healthz, /readyz). */
let opsBase: string;
/** Log lines of the runtime (the Redis connection's warnings) and of the server. */
const runtimeLogs: string[] = [];
const crashes: Array<[string, unknown]> = [];
const onRejection = (e: unknown) => crashes.push(['unhandledRejection', e]);
const onException = (e: unknown) => crashes.push(['uncaughtException', e]);
let sessionKey: string;
/** A second bridge on the same Redis with `server.readyDuringStoreOutage: false`. */
let strict: Awaited<ReturnType<typeof listenBridge>> | undefined;

function dumpOnFailure(): void {
  onTestFailed(() => {
    console.error(`--- ers-bridge logs ---\n${[...runtimeLogs, ...(bridge?.logs ?? [])].join('\n')}`);
    console.error(`--- redis-server output ---\n${redis?.output() ?? ''}`);
  });
}

const openSession = () => openSelectedSession(base, APP_ASID);

const a001 = (at: string) => a001At(at, APP_ASID);

const a005 = (key: string) => callBridge(base, 'GET', A005_PATH, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });

beforeAll(async () => {
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  redis = await dedicatedRedis();
  await redis.start();

  const app = await newApimApp({ asid: APP_ASID });
  standIn = await startApimStandIn({ apps: [app.standInApp] });
  bridge = await bridgeOnRedis(standIn, app, { url: redis.url }, 'outage.yaml', runtimeLogs);
  base = bridge.bridgeUrl;
  opsBase = bridge.opsUrl;
  strict = await bridgeOnRedis(standIn, app, { url: redis.url }, 'outage-strict.yaml', [], (rules) => {
    rules.server.readyDuringStoreOutage = false;
  });
}, 30_000);

afterAll(async () => {
  process.off('unhandledRejection', onRejection);
  process.off('uncaughtException', onException);
  await bridge?.close();
  await strict?.close();
  await standIn?.close();
  await redis?.destroy();
}, 30_000);

describe('Redis stopped and restarted under a running ers-bridge', () => {
  it('works while Redis is up', async () => {
    dumpOnFailure();
    sessionKey = await openSession();
    const res = expectStatus(await a005(sessionKey), 200, 'A005');
    expect(res.json()).toMatchObject({ resourceType: 'ReferralRequest', id: '000000070000' });
    const ready = await callBridge(opsBase, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', checks: { sessionStore: 'reachable' } });
    expect((await callBridge(strict!.opsUrl, 'GET', '/readyz')).status).toBe(200);
  });

  it('answers 503 STORE_UNAVAILABLE with Retry-After while Redis is down, and keeps serving', async () => {
    dumpOnFailure();
    await redis!.stop();

    const data = await a005(sessionKey);
    expectLegacyOutcome(data, 503, 'STORE_UNAVAILABLE');
    expect(data.headers['retry-after']).toMatch(/^\d+$/);

    const refused = await a001(base);
    expectLegacyOutcome(refused, 503, 'STORE_UNAVAILABLE');
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);

    // Redis is every replica's: this replica stays in service (degraded), so clients keep getting the legacy 503.
    const ready = await callBridge(opsBase, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'degraded', checks: { sessionStore: 'unreachable' } });
    expect((await callBridge(opsBase, 'GET', '/healthz')).status).toBe(200);
    // …unless the rules say otherwise.
    const strictReady = await callBridge(strict!.opsUrl, 'GET', '/readyz');
    expect(strictReady.status).toBe(503);
    expect(strictReady.json()).toMatchObject({ status: 'unready', checks: { sessionStore: 'unreachable' } });

    // Calls that need no session are unaffected; the same call again is again a clean 503.
    expectLegacyOutcome(
      await callBridge(base, 'GET', '/ers-api/v1/ReferralRequest/000000070000'),
      410,
      'DSTU2_WITHDRAWN',
    );
    expectLegacyOutcome(await a005(sessionKey), 503, 'STORE_UNAVAILABLE');

    expect(crashes).toEqual([]);
    const lines = [...runtimeLogs, ...bridge!.logs].map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.msg === 'internal error')).toEqual([]);
    // The outage is logged once a reconnection attempt has failed (ioredis retries after a short backoff).
    await vi.waitFor(
      () => expect(runtimeLogs.some((l) => JSON.parse(l).msg === 'session store (Redis) unavailable')).toBe(true),
      { timeout: 5_000, interval: 100 },
    );
    expect(lines.filter((l) => l.msg === 'legacy call' && l.status === 503).length).toBeGreaterThanOrEqual(3);
    expect([...runtimeLogs, ...bridge!.logs].join('\n')).not.toContain(sessionKey);
  });

  it('recovers by itself once Redis is back: ready again, the old session works, new ones can be made', async () => {
    dumpOnFailure();
    await redis!.start(); // same arguments: the append-only file brings the data back

    await vi.waitFor(
      async () => {
        expect(
          (await callBridge(opsBase, 'GET', '/readyz')).json().status,
          'ready within 10 s of Redis restarting',
        ).toBe('ready');
        expect((await callBridge(strict!.opsUrl, 'GET', '/readyz')).status).toBe(200);
      },
      { timeout: 10_000, interval: 200 },
    );

    const old = expectStatus(await a005(sessionKey), 200, 'A005 with the session from before the outage');
    expect(old.json()).toMatchObject({ resourceType: 'ReferralRequest', id: '000000070000' });
    const fresh = await openSession();
    expectStatus(await a005(fresh), 200, 'A005 with a new session');
    expect(crashes).toEqual([]);
    // Connected at start, and again after the restart.
    expect(runtimeLogs.filter((l) => JSON.parse(l).msg === 'session store (Redis) connected').length).toBe(2);
  });
});

describe('a replica that has never reached its Redis (a wrong address or password)', () => {
  it('is unready, so a rolling update stops there, and answers calls with the legacy 503', async () => {
    const app = await newApimApp({ asid: APP_ASID });
    const lonelyStandIn = await startApimStandIn({ apps: [app.standInApp] });
    // A loopback port nothing listens on.
    const nowhere = `redis://127.0.0.1:${await freePort()}`;
    const logs: string[] = [];
    const lonely = await bridgeOnRedis(lonelyStandIn, app, { url: nowhere }, 'never.yaml', logs);
    try {
      const ready = await callBridge(lonely.opsUrl, 'GET', '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.json()).toMatchObject({ status: 'unready', checks: { sessionStore: 'never reached' } });
      // Nothing of the machine in what readiness says.
      expect(ready.body.toString('utf8')).not.toContain('127.0.0.1');
      const refused = await a001(lonely.bridgeUrl);
      expectLegacyOutcome(refused, 503, 'STORE_UNAVAILABLE');
      expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    } finally {
      await lonely.close();
      await lonelyStandIn.close();
    }
  }, 30_000);
});
