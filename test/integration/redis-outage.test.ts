/**
 * Redis stopped mid-test: ers-bridge (in this process, logs captured) on a dedicated redis-server with an
 * append-only file. While Redis is down every call that needs a session answers a legacy 503 with Retry-After,
 * readiness says so, liveness does not, and nothing crashes; once Redis is back (same data), ers-bridge recovers
 * by itself: the old session works again and new ones can be made.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest';
import { type ApimStandIn, startApimStandIn } from '../../src/apim-standin/index.js';
import { createLogger } from '../../src/logging.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime } from '../../src/runtime/runtime.js';
import { newApimApp } from '../helpers/apim-app.js';
import { APP_ASID, expectLegacyOutcome, harnessRules, listenBridge } from '../helpers/harness.js';
import {
  A005_PATH,
  a001Body,
  callBridge,
  dedicatedRedis,
  expectStatus,
  type RedisServerProcess,
  SESSION_PATH,
  uniqueKeyPrefix,
} from '../helpers/redis-replicas.js';
import { rulesFor } from '../helpers/rules.js';

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

function dumpOnFailure(): void {
  onTestFailed(() => {
    console.error(`--- ers-bridge logs ---\n${[...runtimeLogs, ...(bridge?.logs ?? [])].join('\n')}`);
    console.error(`--- redis-server output ---\n${redis?.output() ?? ''}`);
  });
}

async function openSession(): Promise<string> {
  const a001 = expectStatus(
    await callBridge(
      base,
      'POST',
      SESSION_PATH,
      { XAPI_ASID: APP_ASID, 'Content-Type': 'application/json' },
      a001Body('legacy-ticket'),
    ),
    201,
    'A001',
  );
  const session = a001.json();
  expectStatus(
    await callBridge(
      base,
      'PUT',
      `${SESSION_PATH}/${session.id}`,
      { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/json' },
      JSON.stringify({ ...session, permission: session.user.permissions[0] }),
    ),
    200,
    'A002',
  );
  return session.id as string;
}

const a005 = (key: string) => callBridge(base, 'GET', A005_PATH, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });

beforeAll(async () => {
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  redis = await dedicatedRedis();
  await redis.start();

  const app = await newApimApp({ asid: APP_ASID });
  standIn = await startApimStandIn({ apps: [app.standInApp] });
  const rules = rulesFor({
    ...harnessRules(standIn, {
      sessions: {
        store: 'redis',
        redis: { url: redis.url, keyPrefix: uniqueKeyPrefix(), timeoutMs: 1000 },
        encryption: { current: 'k1', keys: { k1: 'env:SESSION_KEY_1' } },
      },
    }),
    file: 'outage.yaml',
  });
  const env = { SESSION_KEY_1: randomBytes(32).toString('base64'), ...app.env };
  const logger = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk, _enc, cb) {
        runtimeLogs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        cb();
      },
    }),
  });
  const runtime = await buildRuntime('outage.yaml', rules, {
    resolveSecret: secretResolver(env),
    env: {}, // no ERS_BRIDGE_SESSION_STORE from the test run's environment
    logger,
    tokenRetries: 1,
    tokenBackoffMs: 20,
  });
  bridge = await listenBridge(runtime);
  base = bridge.bridgeUrl;
  opsBase = bridge.opsUrl;
}, 30_000);

afterAll(async () => {
  process.off('unhandledRejection', onRejection);
  process.off('uncaughtException', onException);
  await bridge?.close();
  await standIn?.close();
  await redis?.destroy();
}, 30_000);

describe('Redis stopped and restarted under a running ers-bridge', () => {
  it('works while Redis is up', async () => {
    dumpOnFailure();
    sessionKey = await openSession();
    const res = expectStatus(await a005(sessionKey), 200, 'A005');
    expect(res.json()).toMatchObject({ resourceType: 'ReferralRequest', id: '000000070000' });
    expect((await callBridge(opsBase, 'GET', '/readyz')).status).toBe(200);
  });

  it('answers 503 STORE_UNAVAILABLE with Retry-After while Redis is down, and keeps serving', async () => {
    dumpOnFailure();
    await redis!.stop();

    const data = await a005(sessionKey);
    expectLegacyOutcome(data, 503, 'STORE_UNAVAILABLE');
    expect(data.headers['retry-after']).toMatch(/^\d+$/);

    const a001 = await callBridge(
      base,
      'POST',
      SESSION_PATH,
      { XAPI_ASID: APP_ASID, 'Content-Type': 'application/json' },
      a001Body('legacy-ticket'),
    );
    expectLegacyOutcome(a001, 503, 'STORE_UNAVAILABLE');
    expect(a001.headers['retry-after']).toMatch(/^\d+$/);

    const ready = await callBridge(opsBase, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.json().checks).toMatchObject({ sessionStore: 'unreachable' });
    expect((await callBridge(opsBase, 'GET', '/healthz')).status).toBe(200);

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
      async () =>
        expect((await callBridge(opsBase, 'GET', '/readyz')).status, '/readyz within 10 s of Redis restarting').toBe(
          200,
        ),
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
