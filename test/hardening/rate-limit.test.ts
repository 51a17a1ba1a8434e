/**
 * Hardening: ers-bridge's own rate limit per APIM application (`apim.rateLimit`) and APIM's 429 pauses, end to end:
 * a burst of legacy calls against the APIM stand-in — refused ones get a local 429 at once and never reach APIM,
 * queued ones are smoothed to the configured rate; APIM's own 429 pauses the application. The limiter itself is
 * tested as a unit in test/unit/rate-limiter.test.ts.
 */
import type { Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { RateLimit } from '../../src/apim/rate-limiter.js';
import { clockAt } from '../../src/runtime/clock.js';
import { expectLegacyOutcome, type Harness, openSession, startHarness } from '../helpers/harness.js';
import { A005, apimAt, type FakeServer, fakeHttp, referral, sleep, timedCall } from './support.js';

const LIMIT: RateLimit = { requestsPerSecond: 5, burst: 5, maxQueue: 5, maxWaitMs: 1500 };

describe('apim.rateLimit end to end', () => {
  let h: Harness | undefined;
  let fake: FakeServer<Server> | undefined;
  afterEach(async () => {
    await h?.close();
    await fake?.close();
    h = undefined;
    fake = undefined;
  });

  it('30 concurrent calls: burst + queue served and smoothed to 5/s, the rest a local 429 at once', async () => {
    let ahead = 0; // how far the runtime's clock is ahead of real time
    h = await startHarness({
      rules: { apim: { rateLimit: { ...LIMIT } } },
      runtime: { clock: clockAt(() => Date.now() + ahead) },
    });
    const key = await openSession(h);
    expect((await timedCall(h, key, 'GET', A005())).res.status).toBe(200); // token fetched, one slot used
    ahead += 400; // the bucket refills to its burst, at once
    const receivedBefore = h.standIn.received.length;
    const started = Date.now();
    const harness = h;
    const results = await Promise.all(
      Array.from({ length: 30 }, () => timedCall(harness, key, 'GET', A005(), {}, 5_000)),
    );
    const ok = results.filter((r) => r.res.status === 200);
    const refused = results.filter((r) => r.res.status !== 200);
    // exactly burst + maxQueue, give or take what the bucket refills while the burst arrives
    expect(ok.length).toBeGreaterThanOrEqual(LIMIT.burst + LIMIT.maxQueue);
    expect(ok.length).toBeLessThanOrEqual(LIMIT.burst + LIMIT.maxQueue + 2);
    for (const r of refused) {
      expectLegacyOutcome(r.res, 429, 'RATE_LIMITED_LOCALLY');
      expect(String(r.res.headers['retry-after'])).toMatch(/^[1-9]\d*$/);
      expect(r.ms, 'refused at once, not after queuing').toBeLessThan(500);
    }
    // no upstream call for the refused ones
    const burst = h.standIn.received.slice(receivedBefore);
    expect(burst).toHaveLength(ok.length);
    // smoothed: after the first `burst`, no faster than 5/s (one every 200 ms), with 80 ms of tolerance
    const at = burst.map((r) => r.at).sort((a, b) => a - b);
    const t0 = at[0]!;
    expect(t0 - started).toBeLessThan(500);
    expect(at[LIMIT.burst - 1]! - t0).toBeLessThan(200);
    for (let i = LIMIT.burst; i < at.length; i++) {
      const floor = (i - LIMIT.burst + 1) * (1000 / LIMIT.requestsPerSecond) - 80;
      expect(at[i]! - t0, `call ${i + 1} reached APIM too early`).toBeGreaterThanOrEqual(floor);
    }
    expect(at.at(-1)! - t0).toBeLessThanOrEqual(LIMIT.maxWaitMs + 400);
  });

  it("APIM's 429 with Retry-After: 2 pauses the application: held back locally, then through again", async () => {
    let first429At = 0;
    fake = await fakeHttp((_req, res) => {
      if (fake!.hits.length === 1) {
        first429At = Date.now();
        res.writeHead(429, { 'retry-after': '2' }).end();
        return;
      }
      const body = referral('000000070000');
      res.writeHead(200, { 'content-type': 'application/fhir+json', etag: 'W/"5"' }).end(body);
    });
    const url = fake.url;
    h = await startHarness({ rules: { apim: { baseUrl: apimAt(url), rateLimit: { ...LIMIT } } } });
    const key = await openSession(h);
    const first = await timedCall(h, key, 'GET', A005());
    expectLegacyOutcome(first.res, 429, 'UPSTREAM_RATE_LIMITED');
    expect(first.res.headers['retry-after']).toBe('2');

    // The next calls within the pause (more than maxWaitMs of it left) are refused locally, at once.
    for (let i = 0; i < 3; i++) {
      const { res, ms } = await timedCall(h, key, 'GET', A005());
      expectLegacyOutcome(res, 429, 'RATE_LIMITED_LOCALLY');
      expect(res.headers['retry-after']).toBe('2');
      expect(ms).toBeLessThan(300);
    }
    expect(fake.hits).toHaveLength(1);

    // With less than maxWaitMs of the pause left, a call waits for its end and only then reaches APIM.
    await sleep(Math.max(0, first429At + 800 - Date.now()));
    const held = await timedCall(h, key, 'GET', A005());
    expect(held.res.status).toBe(200);
    expect(fake.hits).toHaveLength(2);
    expect(fake.hits[1]!.at - first429At).toBeGreaterThanOrEqual(2_000 - 20);

    // After the pause: straight through.
    const after = await timedCall(h, key, 'GET', A005());
    expect(after.res.status).toBe(200);
    expect(after.ms).toBeLessThan(300);
    expect(fake.hits).toHaveLength(3);
  });

  // As a legacy client sees it: calls queued when APIM's 429 arrives get their answer within maxWaitMs.
  it('calls queued when APIM answers 429 are answered within maxWaitMs, not held for the whole pause', async () => {
    fake = await fakeHttp((_req, res) => {
      if (fake!.hits.length === 1) {
        setTimeout(() => res.writeHead(429, { 'retry-after': '4' }).end(), 100);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/fhir+json' }).end(referral('000000070000'));
    });
    const url = fake.url;
    h = await startHarness({ rules: { apim: { baseUrl: apimAt(url), rateLimit: { ...LIMIT } } } });
    const key = await openSession(h);
    await h.runtime.callers.get('999000000001')!.tokens!.get(); // the token first, so the burst is only the burst
    const harness = h;
    // Every call is awaited (so nothing is left in flight), then judged by how long its client waited.
    const results = await Promise.all(
      Array.from({ length: 10 }, () => timedCall(harness, key, 'GET', A005(), {}, 10_000)),
    );
    const bound = LIMIT.maxWaitMs + 700;
    const slow = results.filter((r) => r.ms > bound);
    const detail = slow.map(
      (r) => `${r.res.status} Retry-After ${r.res.headers['retry-after']} after ${Math.round(r.ms)} ms`,
    );
    expect(detail, `legacy calls that waited longer than maxWaitMs (${LIMIT.maxWaitMs} ms) + 700 ms`).toEqual([]);
  });
});
