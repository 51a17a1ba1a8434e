/**
 * A bounded soak: ers-bridge and the APIM stand-in in-process, legacy clients churning sessions at a moderate rate,
 * memory and handles sampled, growth bounded.
 *
 * ERS_BRIDGE_SOAK_SECONDS — how long the load runs, in seconds (default 120; 0 skips the soak). The test timeout is
 * the duration plus 90 s. Example: `ERS_BRIDGE_SOAK_SECONDS=30 npx vitest run test/hardening/soak.test.ts`.
 *
 * Load: about 40 requests/s in total from 8 virtual clients. Each client loops: A001, A002, 5–10 data calls mixing
 * A004, A005, A007 and A008, A003; about 5% of the calls are invalid on purpose (unknown session, another ASID's
 * session, a bad path or UBRN, a missing If-Match) and must get a 4xx. Every valid call must succeed, and no answer
 * may be a 5xx.
 *
 * Every 5 s: RSS, heap used and `process.getActiveResourcesInfo().length` (after `global.gc()` when node runs with
 * --expose-gc; without it the bounds are loose enough for garbage not yet collected). After a warm-up of 20% of the
 * duration: RSS growth ≤ 60 MB, heap growth ≤ 30 MB, active handles ≤ warm-up level + 10; at the end the session
 * store is back near its starting size. The test harness's own recorders (captured log lines, the stand-in's list
 * of received requests) are emptied at each sample so that they do not count as ers-bridge's growth.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  APP_ASID,
  fixtureBytes,
  type Harness,
  type LegacyResponse,
  legacyCall,
  OTHER_ASID,
  startHarness,
} from '../helpers/harness.js';
import { prng } from '../unit/support.js'; // seeded, so a run's mix can be repeated

const SECONDS = Number(process.env['ERS_BRIDGE_SOAK_SECONDS'] ?? 120);
const RATE = 40; // requests per second, all clients together
const CLIENTS = 8;
const SAMPLE_MS = 5000;
const MB = 1024 * 1024;

const SESSION_PATH = '/ers-api/v1/ProfessionalSession';
const A001_BODY = JSON.stringify({ typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession', token: 'soak' });
const WORKLIST = fixtureBytes('stu3/retrieveWorklist/requests/MinimalReferralsForReview.json');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Sample {
  at: number;
  rss: number;
  heapUsed: number;
  handles: number;
}

describe.skipIf(!(SECONDS > 0))('soak', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it(
    `${SECONDS} s of session churn at ~${RATE} requests/s: no 5xx, bounded memory and handles, sessions cleaned up`,
    async () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      const storeAtStart = await h.runtime.shared.store.size();
      const started = performance.now();
      const deadline = started + SECONDS * 1000;
      const warmUpEnd = started + SECONDS * 200; // 20%
      const maxRequests = Math.ceil(SECONDS * RATE * 1.5) + 100; // a hard bound besides the clock

      const latencies: number[] = [];
      const problems: string[] = [];
      const byStatus = new Map<number, number>();
      let requests = 0;
      let fiveHundreds = 0;
      let invalidSent = 0;

      // Global pacing: one slot every 1000/RATE ms, shared by all clients.
      let nextSlot = performance.now();
      const pace = async () => {
        const slot = Math.max(nextSlot, performance.now());
        nextSlot = slot + 1000 / RATE;
        const wait = slot - performance.now();
        if (wait > 0) await sleep(wait);
      };

      const call = async (
        what: string,
        expectation: 'ok' | '4xx',
        method: string,
        path: string,
        headers: Record<string, string>,
        body?: string | Buffer,
      ): Promise<LegacyResponse | undefined> => {
        await pace();
        requests++;
        const t0 = performance.now();
        let res: LegacyResponse;
        try {
          res = await legacyCall(h, method, path, headers, body);
        } catch (e) {
          problems.push(`${what}: no answer (${(e as Error).message})`);
          return undefined;
        }
        latencies.push(performance.now() - t0);
        byStatus.set(res.status, (byStatus.get(res.status) ?? 0) + 1);
        if (res.status >= 500) fiveHundreds++;
        const ok = expectation === 'ok' ? res.status < 300 : res.status >= 400 && res.status < 500;
        if (!ok && problems.length < 20) problems.push(`${what}: ${res.status} ${res.body.toString().slice(0, 200)}`);
        return res;
      };

      const samples: Sample[] = [];
      const sample = () => {
        gc?.();
        const m = process.memoryUsage();
        samples.push({
          at: performance.now() - started,
          rss: m.rss,
          heapUsed: m.heapUsed,
          handles: process.getActiveResourcesInfo().length,
        });
        // The harness's recorders are the test's memory, not ers-bridge's.
        h.logs.length = 0;
        h.standIn.received.length = 0;
        h.standIn.tokenRequests.length = 0;
      };
      sample();
      const sampler = setInterval(sample, SAMPLE_MS);
      let warmUpSample: Sample | undefined;
      const warmUpTimer = setTimeout(
        () => {
          sample();
          warmUpSample = samples.at(-1);
        },
        Math.max(0, warmUpEnd - performance.now()),
      );

      const invalidCall = async (rand: () => number, key: string) => {
        invalidSent++;
        const pick = Math.floor(rand() * 5);
        const hdr = { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key };
        switch (pick) {
          case 0:
            return call('invalid: unknown session', '4xx', 'GET', '/ers-api/STU3/v1/CodeSystem/SPECIALTY', {
              XAPI_ASID: APP_ASID,
              HTTP_X_SESSION_KEY: `pro-api-session:00000000-0000-4000-8000-${String(requests).padStart(12, '0')}`,
            });
          case 1:
            return call('invalid: another ASID', '4xx', 'GET', '/ers-api/STU3/v1/ReferralRequest/000000070000', {
              XAPI_ASID: OTHER_ASID,
              HTTP_X_SESSION_KEY: key,
            });
          case 2:
            return call('invalid: bad path', '4xx', 'GET', '/ers-api/STU3/v1/ReferralRequest/000000070000%2fR4', hdr);
          case 3:
            return call('invalid: bad UBRN', '4xx', 'GET', '/ers-api/STU3/v1/ReferralRequest/12345', hdr);
          default:
            return call(
              'invalid: no If-Match',
              '4xx',
              'POST',
              '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.acceptReferral',
              hdr,
            );
        }
      };

      const dataCall = async (rand: () => number, key: string) => {
        const hdr = { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key };
        switch (Math.floor(rand() * 4)) {
          case 0:
            return call('A004', 'ok', 'GET', '/ers-api/STU3/v1/CodeSystem/SPECIALTY', hdr);
          case 1:
            return call('A005', 'ok', 'GET', '/ers-api/STU3/v1/ReferralRequest/000000070000', hdr);
          case 2:
            return call('A007', 'ok', 'POST', '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.generateCRI', hdr);
          default:
            return call(
              'A008',
              'ok',
              'POST',
              '/ers-api/STU3/v1/ReferralRequest/$ers.fetchworklist',
              { ...hdr, 'Content-Type': 'application/fhir+json' },
              WORKLIST,
            );
        }
      };

      const client = async (id: number) => {
        const rand = prng(0x5eed + id);
        while (performance.now() < deadline && requests < maxRequests) {
          const a001 = await call(
            'A001',
            'ok',
            'POST',
            SESSION_PATH,
            { XAPI_ASID: APP_ASID, 'Content-Type': 'application/json' },
            A001_BODY,
          );
          if (a001?.status !== 201) continue;
          const session = a001.json();
          const key: string = session.id;
          await call(
            'A002',
            'ok',
            'PUT',
            `${SESSION_PATH}/${key}`,
            { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/json' },
            JSON.stringify({ ...session, permission: session.user.permissions[0] }),
          );
          const n = 5 + Math.floor(rand() * 6);
          for (let i = 0; i < n && performance.now() < deadline && requests < maxRequests; i++) {
            if (rand() < 0.05) await invalidCall(rand, key);
            else await dataCall(rand, key);
          }
          // Always end the session, even when the time is up.
          await call('A003', 'ok', 'DELETE', `${SESSION_PATH}/${key}`, {
            XAPI_ASID: APP_ASID,
            HTTP_X_SESSION_KEY: key,
          });
        }
      };

      try {
        await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
      } finally {
        clearInterval(sampler);
        clearTimeout(warmUpTimer);
      }
      const elapsed = (performance.now() - started) / 1000;
      await sleep(200); // let the last answers' sockets and timers settle
      sample();
      const last = samples.at(-1)!;
      const first = samples[0]!;
      const base = warmUpSample ?? samples.find((s) => s.at >= SECONDS * 200) ?? first;
      const storeAtEnd = await h.runtime.shared.store.size();

      const sorted = [...latencies].sort((a, b) => a - b);
      const statuses = [...byStatus]
        .sort(([a], [b]) => a - b)
        .map(([s, n]) => `${s}×${n}`)
        .join(' ');
      console.log(
        `soak: ${requests} requests in ${elapsed.toFixed(1)} s (${(requests / elapsed).toFixed(1)} rps; ${invalidSent} invalid on purpose; ${statuses}), ` +
          `p50 ${percentile(sorted, 50).toFixed(2)} ms, p99 ${percentile(sorted, 99).toFixed(2)} ms, ` +
          `RSS ${(first.rss / MB).toFixed(1)} → ${(base.rss / MB).toFixed(1)} (after warm-up) → ${(last.rss / MB).toFixed(1)} MB, ` +
          `heap ${(base.heapUsed / MB).toFixed(1)} → ${(last.heapUsed / MB).toFixed(1)} MB, ` +
          `handles ${base.handles} → ${last.handles}, sessions ${storeAtStart} → ${storeAtEnd}, gc ${gc ? 'exposed' : 'not exposed'}`,
      );

      expect(problems).toEqual([]);
      expect(fiveHundreds).toBe(0);
      expect(requests).toBeGreaterThan(SECONDS * RATE * 0.5); // the load really ran
      expect((last.rss - base.rss) / MB).toBeLessThanOrEqual(60);
      expect((last.heapUsed - base.heapUsed) / MB).toBeLessThanOrEqual(30);
      expect(last.handles).toBeLessThanOrEqual(base.handles + 10);
      expect(storeAtEnd).toBeLessThanOrEqual(storeAtStart + 2);
    },
    SECONDS * 1000 + 90_000,
  );
});
