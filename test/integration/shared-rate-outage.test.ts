/**
 * Issue 17, the shared APIM rate budget while its Redis is down, end to end: two real ers-bridge processes (`serve`)
 * on a redis-server of the test's own, one APIM application limited to 10 requests/s, driven at 30 calls/s; Redis
 * is stopped for 2 s mid-run and started again. No call crashes or hangs: each is served, refused as a legacy 429
 * (the budget) or a legacy 503 with Retry-After (the store); the processes stay up and serve again when Redis is
 * back; APIM never gets more than rate + burst in a second. Calls need their session from the same Redis, so while
 * it is down they stop at the session step (503) before the budget: the fallback to a per-process share itself is
 * measured against a stopped redis-server in test/integration/shared-rate-redis.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { type BuiltApimStandIn, buildApimStandIn } from '../../src/apim-standin/index.js';
import { newApimApp } from '../helpers/apim-app.js';
import { expectLegacyOutcome, type LegacyResponse } from '../helpers/harness.js';
import {
  A005_PATH,
  type BridgeProcess,
  callBridge,
  dedicatedRedis,
  openSelectedSession,
  type RedisServerProcess,
  redisSessionsFor,
  sleep,
  spawnBridges,
  uniqueKeyPrefix,
} from '../helpers/redis-replicas.js';
import { rulesText } from '../helpers/rules.js';

const ASID = '999000000001';
const RATE = 10;
const BURST = 5;
const DRIVE_PER_SECOND = 30;
const DRIVE_SECONDS = 6;

let redis: RedisServerProcess | undefined;
let standIn: BuiltApimStandIn | undefined;
let dir: string | undefined;
let replicas: BridgeProcess[] = [];
let sessionKey: string;

beforeAll(async () => {
  // Its data kept across the restart (append-only file), as a Redis with persistence keeps the sessions.
  redis = await dedicatedRedis({ appendOnly: true });
  await redis.start();
  const app = await newApimApp({ asid: ASID });
  standIn = await buildApimStandIn({ apps: [app.standInApp] });
  await standIn.listen();
  dir = mkdtempSync(join(tmpdir(), 'ers-bridge-shared-rate-outage-'));
  const rulesFile = join(dir, 'shared-rate-outage.yaml');
  const onRedis = redisSessionsFor({ url: redis.url, keyPrefix: uniqueKeyPrefix(), timeoutMs: 500 }, app.env);
  writeFileSync(
    rulesFile,
    rulesText({
      file: 'shared-rate-outage.yaml',
      environment: 'test-shared-rate-outage',
      apim: {
        baseUrl: standIn.baseUrl,
        tokenUrl: standIn.tokenUrl,
        rateLimit: { requestsPerSecond: RATE, burst: BURST, maxQueue: 20, maxWaitMs: 1000 },
      },
      sessions: onRedis.sessions,
      asids: { [ASID]: { apim: app.apim } },
    }),
  );
  replicas = await spawnBridges(rulesFile, onRedis.env, [{ name: 'replica-1' }, { name: 'replica-2' }]);
  sessionKey = await openSelectedSession(replicas[0]!.url, ASID);
}, 60_000);

afterAll(async () => {
  await Promise.all(replicas.map((p) => p.stop()));
  await standIn?.close();
  await redis?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('the shared rate budget while its Redis is stopped and started again', () => {
  it('every call is served, a legacy 429 or a legacy 503 with Retry-After; the processes stay up and serve again', async () => {
    onTestFailed(() => {
      for (const p of replicas) console.error(`--- output of ers-bridge ${p.name} ---\n${p.output()}`);
    });
    await sleep(1100);
    const from = Date.now();
    const calls: Array<Promise<{ res: LegacyResponse; at: number }>> = [];
    let stopped: Promise<void> | undefined;
    let restarted: Promise<void> | undefined;
    for (let i = 0; i < DRIVE_PER_SECOND * DRIVE_SECONDS; i++) {
      const due = from + (i * 1000) / DRIVE_PER_SECOND;
      const ahead = due - Date.now();
      if (ahead > 0) await sleep(ahead);
      // Redis down from 2 s to 4 s into the drive.
      if (!stopped && Date.now() - from >= 2000) stopped = redis!.stop();
      if (stopped && !restarted && Date.now() - from >= 4000) restarted = stopped.then(() => redis!.start());
      const sent = Date.now() - from;
      calls.push(a005(replicas[i % replicas.length]!).then((res) => ({ res, at: sent })));
    }
    await restarted;
    const results = await Promise.all(calls);
    const byStatus: Record<number, number> = {};
    for (const { res } of results) byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
    const perSecond = Array<number>(DRIVE_SECONDS + 2).fill(0);
    for (const r of standIn!.received) {
      if (!r.url.includes('/ReferralRequest/') || r.at < from) continue;
      const s = Math.floor((r.at - from) / 1000);
      if (s < perSecond.length) perSecond[s]!++;
    }
    console.info(
      `shared rate, Redis stopped 2–4 s into the drive: ${JSON.stringify(byStatus)}; APIM arrivals per second ${JSON.stringify(perSecond)}`,
    );
    for (const { res } of results) {
      if (res.status === 200) continue;
      if (res.status === 429) expectLegacyOutcome(res, 429, 'RATE_LIMITED_LOCALLY');
      else expectLegacyOutcome(res, 503, 'STORE_UNAVAILABLE');
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    expect(byStatus[503] ?? 0, 'the outage was seen').toBeGreaterThan(0);
    expect(byStatus[200] ?? 0).toBeGreaterThan(0);
    for (const n of perSecond) expect(n).toBeLessThanOrEqual(RATE + BURST);
    // Both processes are up, and serve the same session from the restarted Redis.
    for (const p of replicas) {
      expect(p.child.exitCode, p.name).toBeNull();
      let res = await a005(p);
      for (let tries = 0; res.status !== 200 && tries < 20; tries++) {
        await sleep(250);
        res = await a005(p);
      }
      expect(res.status, `${p.name} after the restart`).toBe(200);
    }
    const logs = replicas.map((p) => p.output()).join('\n');
    expect(logs).not.toMatch(/"msg":"internal error"|unhandled|Uncaught/i);
    expect(logs).not.toContain(sessionKey);
  }, 40_000);
});

function a005(p: BridgeProcess): Promise<LegacyResponse> {
  return callBridge(p.url, 'GET', A005_PATH, { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: sessionKey });
}
