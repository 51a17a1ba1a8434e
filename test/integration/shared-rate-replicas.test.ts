/**
 * Issue 17 end to end: three real ers-bridge processes (`serve`, one of them `--workers 2`) on one Redis (the test
 * Redis, a key prefix of this file's own), one APIM application limited to 10 requests/s with a burst of 5, driven
 * together at 50 calls/s for 10 s. Measured at the APIM stand-in: at most 10 + 5 arrivals in every second; every
 * other call got a legacy 429 with Retry-After at once, or was served within maxWaitMs. Then APIM answers one
 * replica 429 with Retry-After: the other replicas hold their calls too.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { type BuiltApimStandIn, buildApimStandIn } from '../../src/apim-standin/index.js';
import { newApimApp } from '../helpers/apim-app.js';
import { expectLegacyOutcome, type LegacyResponse } from '../helpers/harness.js';
import {
  A005_PATH,
  type BridgeProcess,
  callBridge,
  connectTestRedisOrFail,
  deleteKeysUnder,
  keysUnder,
  openSelectedSession,
  redisSessionsFor,
  sleep,
  spawnBridges,
  TEST_REDIS_URL,
  uniqueKeyPrefix,
} from '../helpers/redis-replicas.js';
import { rulesText } from '../helpers/rules.js';

const ASID = '999000000001';
const RATE = 10;
const BURST = 5;
const MAX_WAIT_MS = 1000;
const DRIVE_PER_SECOND = 50;
const DRIVE_SECONDS = 10;

let admin: Redis;
const prefix = uniqueKeyPrefix();
let standIn: BuiltApimStandIn | undefined;
let dir: string | undefined;
let replicas: BridgeProcess[] = [];
let sessionKey: string;
/** While set, the stand-in answers e-RS calls 429 with this Retry-After (seconds), as APIM's spike arrest does. */
let answer429: number | undefined;

function dumpOnFailure(): void {
  onTestFailed(() => {
    for (const p of replicas) console.error(`--- output of ers-bridge ${p.name} (${p.url}) ---\n${p.output()}`);
  });
}

const a005 = (p: BridgeProcess): Promise<LegacyResponse> =>
  callBridge(p.url, 'GET', A005_PATH, { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: sessionKey });

/** The stand-in's A005 arrivals since `from`, counted per whole second after it. */
function arrivalsPerSecond(from: number, seconds: number): number[] {
  const counts = Array<number>(seconds).fill(0);
  for (const r of standIn!.received) {
    if (!r.url.includes('/ReferralRequest/') || r.at < from) continue;
    const s = Math.floor((r.at - from) / 1000);
    if (s < seconds) counts[s]!++;
  }
  return counts;
}

beforeAll(async () => {
  admin = await connectTestRedisOrFail();
  const app = await newApimApp({ asid: ASID });
  standIn = await buildApimStandIn({ apps: [app.standInApp] });
  standIn.app.addHook('onRequest', async (req, reply) => {
    if (answer429 !== undefined && req.url.includes('/ReferralRequest/')) {
      return reply
        .code(429)
        .header('retry-after', String(answer429))
        .type('application/fhir+json')
        .send({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'throttled' }] });
    }
  });
  await standIn.listen();
  dir = mkdtempSync(join(tmpdir(), 'ers-bridge-shared-rate-'));
  const rulesFile = join(dir, 'shared-rate.yaml');
  const onRedis = redisSessionsFor({ url: TEST_REDIS_URL, keyPrefix: prefix }, app.env);
  writeFileSync(
    rulesFile,
    rulesText({
      file: 'shared-rate.yaml',
      environment: 'test-shared-rate',
      apim: {
        baseUrl: standIn.baseUrl,
        tokenUrl: standIn.tokenUrl,
        rateLimit: { requestsPerSecond: RATE, burst: BURST, maxQueue: 20, maxWaitMs: MAX_WAIT_MS },
      },
      sessions: onRedis.sessions,
      asids: { [ASID]: { apim: app.apim } },
    }),
  );
  replicas = await spawnBridges(rulesFile, onRedis.env, [
    { name: 'replica-1' },
    { name: 'replica-2' },
    { name: 'replica-3 (--workers 2)', args: ['--workers', '2'] },
  ]);
  sessionKey = await openSelectedSession(replicas[0]!.url, ASID);
  // Both workers of replica 3 listening (each logs its own line), so the drive reaches four processes.
  const start = Date.now();
  while ((replicas[2]!.output().match(/Server listening at/g)?.length ?? 0) < 2 && Date.now() - start < 15_000) {
    await sleep(50);
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(replicas.map((p) => p.stop()));
  await standIn?.close();
  if (admin) {
    await deleteKeysUnder(admin, prefix);
    admin.disconnect();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('one APIM application rate budget shared by three ers-bridge processes on one Redis', () => {
  it('driven at 50/s for 10 s, APIM receives at most rate + burst in every second; the rest are 429 or wait', async () => {
    dumpOnFailure();
    await sleep(1100); // the session's calls' burst spent: the drive starts from a full bucket
    const from = Date.now();
    const calls: Array<Promise<{ res: LegacyResponse; ms: number }>> = [];
    for (let i = 0; i < DRIVE_PER_SECOND * DRIVE_SECONDS; i++) {
      const due = from + (i * 1000) / DRIVE_PER_SECOND;
      const ahead = due - Date.now();
      if (ahead > 0) await sleep(ahead);
      const p = replicas[i % replicas.length]!;
      const sent = Date.now();
      calls.push(a005(p).then((res) => ({ res, ms: Date.now() - sent })));
    }
    const results = await Promise.all(calls);
    const took = Date.now() - from;
    const perSecond = arrivalsPerSecond(from, DRIVE_SECONDS + 2);
    const ok = results.filter((r) => r.res.status === 200);
    const refused = results.filter((r) => r.res.status === 429);
    console.info(
      `shared rate: ${results.length} calls in ${took} ms; APIM arrivals per second ${JSON.stringify(perSecond)}; ` +
        `200: ${ok.length} (slowest ${Math.max(...ok.map((r) => r.ms))} ms), 429: ${refused.length}`,
    );
    for (const n of perSecond) expect(n).toBeLessThanOrEqual(RATE + BURST);
    expect(ok.length + refused.length).toBe(results.length);
    // The budget was used, not starved: about 10/s over the drive (+ the burst).
    expect(ok.length).toBeGreaterThanOrEqual(RATE * DRIVE_SECONDS * 0.85);
    expect(ok.length).toBeLessThanOrEqual(RATE * DRIVE_SECONDS + BURST + RATE * 2);
    for (const r of ok) expect(r.ms).toBeLessThanOrEqual(MAX_WAIT_MS + 1000);
    for (const r of refused) {
      expectLegacyOutcome(r.res, 429, 'RATE_LIMITED_LOCALLY');
      expect(Number(r.res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    // Every process took part: each answered some calls, admitted and refused.
    for (let k = 0; k < replicas.length; k++) {
      const mine = results.filter((_, i) => i % replicas.length === k);
      expect(mine.some((r) => r.res.status === 200)).toBe(true);
      expect(mine.some((r) => r.res.status === 429)).toBe(true);
    }
    // Each process counts its outcomes by application (its tag) and says where the budget is kept.
    const metrics = await (await fetch(`${replicas[0]!.opsUrl}/metrics`)).text();
    for (const outcome of ['admitted', 'queued', 'refused']) {
      expect(metrics).toMatch(
        new RegExp(
          `ers_bridge_apim_rate_total\\{application="[0-9a-f]{8}",outcome="${outcome}",source="shared"\\} [1-9]`,
        ),
      );
    }
    expect(metrics).toMatch(/ers_bridge_apim_rate_source\{application="[0-9a-f]{8}",source="shared"\} 1/);
    expect(metrics).toMatch(/ers_bridge_apim_rate_source\{application="[0-9a-f]{8}",source="local"\} 0/);
    // The budget's keys are under one hash tag of the application, with a TTL.
    const keys = await keysUnder(admin, prefix);
    const rateKeys = keys.filter((k) => k.includes('{rate:'));
    expect(rateKeys.length).toBeGreaterThanOrEqual(2);
    for (const k of rateKeys) expect(await admin.pttl(k)).toBeGreaterThan(0);
    // Four processes (replica 3's two workers among them) are members of the budget.
    const members = rateKeys.find((k) => k.endsWith(':members'))!;
    expect(await admin.zcard(members)).toBe(4);
  }, 40_000);

  it("APIM's 429 to one replica pauses the others: their calls are refused at once, none reaches APIM", async () => {
    dumpOnFailure();
    await sleep(1100);
    answer429 = 3;
    const first = await a005(replicas[0]!);
    answer429 = undefined;
    expect(first.status).toBe(429); // APIM's answer, passed on
    const pausedAt = Date.now();
    const before = standIn!.received.length;
    const others = await Promise.all([a005(replicas[1]!), a005(replicas[2]!), a005(replicas[1]!)]);
    for (const r of others) {
      expectLegacyOutcome(r, 429, 'RATE_LIMITED_LOCALLY');
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(2);
    }
    expect(Date.now() - pausedAt).toBeLessThan(1000);
    expect(standIn!.received.length).toBe(before);
    await sleep(3100 - (Date.now() - pausedAt));
    const after = await a005(replicas[2]!);
    expect(after.status).toBe(200);
  }, 20_000);
});
