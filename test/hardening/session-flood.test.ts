/**
 * One caller cannot exhaust what all share (memory store, real sockets): a flood of A001s with 8 KB tokens from one
 * ASID leaves ers-bridge's memory where it was, and every other ASID's sessions alive; beyond the A001 rate an ASID
 * is refused with a legacy 429, and the others are not.
 *
 * The harness runs ers-bridge in this process, so the RSS measured is the bridge's (with the test's client): taken
 * after full GCs (test/helpers/gc.ts), once a warm-up flood (2 000 of the same A001s) has grown V8's heap spaces and
 * the allocator's arenas to their working size, so that what is left to see is what the sessions hold. RSS still
 * carries the allocator's slack (freed memory it keeps: 7–16 MiB across runs here), so the heap after a full GC is
 * checked too, with a tighter bound. The harness's own capture of the log
 * lines (one per call, kept in an array for assertions) is emptied before the second reading: it is the test's
 * memory, not the bridge's (the lines still go to the suite-wide log scan).
 */
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fullGc } from '../helpers/gc.js';
import {
  APP_ASID,
  expectLegacyOutcome,
  type Harness,
  LIMITED_ASID,
  legacyCall,
  OTHER_ASID,
  openSession,
  startHarness,
} from '../helpers/harness.js';

const SESSION_PATH = '/ers-api/v1/ProfessionalSession';
const A005 = '/ers-api/STU3/v1/ReferralRequest/000000070000';
const TYPE_INFO = 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession';
const FLOOD = 20_000;
const WARM_UP = 2_000;
const MAX_PER_ASID = 5_000;
/** Below the others' sessions + the quota: the flood meets the overall bound before its quota. */
const MAX_SESSIONS = 10_000;
const BULK_PER_OTHER = 3_500;
const MiB = 1024 * 1024;

const a001Body = (token: string) => JSON.stringify({ typeInfo: TYPE_INFO, token });

/** `count` A001s for the ASID over `connections` keep-alive connections; the statuses counted, the keys kept. */
async function a001s(h: Harness, asid: string, count: number, token: string, connections = 16) {
  const pool = new Pool(h.bridgeUrl, { connections, pipelining: 1 });
  const body = a001Body(token);
  const statuses: Record<number, number> = {};
  const keys: string[] = [];
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (next < count) {
          next++;
          const res = await pool.request({
            method: 'POST',
            path: SESSION_PATH,
            headers: { XAPI_ASID: asid, 'content-type': 'application/json' },
            body,
          });
          const text = await res.body.text();
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
          if (res.statusCode === 201 && keys.length < 200) keys.push((JSON.parse(text) as { id: string }).id);
        }
      }),
    );
  } finally {
    await pool.close();
  }
  return { statuses, keys };
}

/** RSS and V8 heap in use, MiB. */
function memory(): { rss: number; heap: number } {
  const m = process.memoryUsage();
  return { rss: m.rss / MiB, heap: m.heapUsed / MiB };
}

describe('an A001 flood with 8 KB tokens from one ASID (memory store)', () => {
  let h: Harness;
  const others: Array<{ asid: string; key: string }> = [];
  const bulk: string[] = [];
  let before = { rss: 0, heap: 0 };
  let after = { rss: 0, heap: 0 };
  let flood: Awaited<ReturnType<typeof a001s>>;

  beforeAll(async () => {
    h = await startHarness({
      rules: {
        sessions: {
          maxSessions: MAX_SESSIONS,
          maxPerAsid: MAX_PER_ASID,
          // The flood must reach the store, not be refused at the door: that is the rate test below.
          a001PerSecondPerAsid: { rate: 100_000, burst: 1_000_000 },
        },
      },
    });
    for (const asid of [OTHER_ASID, LIMITED_ASID]) {
      for (let i = 0; i < 3; i++) others.push({ asid, key: await openSession(h, asid) });
    }
    // Enough sessions of the others that the flood meets the overall bound (maxSessions): under a shared LRU it
    // would push them out; here the flooding ASID gives up its own.
    for (const asid of [OTHER_ASID, LIMITED_ASID]) {
      const { statuses, keys } = await a001s(h, asid, BULK_PER_OTHER, 'other-ticket', 8);
      expect(statuses).toEqual({ 201: BULK_PER_OTHER });
      bulk.push(...keys);
    }
    expect(await h.runtime.shared.store.size()).toBe(6 + 2 * BULK_PER_OTHER);

    const token = 'T'.repeat(8192);
    await a001s(h, APP_ASID, WARM_UP, token);
    h.logs.length = 0;
    expect(fullGc(), 'a full GC is needed to read what is held').toBe(true);
    before = memory();
    flood = await a001s(h, APP_ASID, FLOOD, token);
    h.logs.length = 0;
    fullGc();
    after = memory();
    console.info(
      `around ${FLOOD} A001 with 8 KB tokens: RSS ${before.rss.toFixed(1)} → ${after.rss.toFixed(1)} MiB, ` +
        `V8 heap used ${before.heap.toFixed(1)} → ${after.heap.toFixed(1)} MiB`,
    );
  }, 120_000);

  afterAll(async () => {
    await h?.close();
  });

  it('every A001 of the flood was answered 201 (the store made room from the flooding ASID itself)', () => {
    expect(flood.statuses).toEqual({ 201: FLOOD });
  });

  it('leaves RSS within 30 MB of where it started, and the V8 heap within 5 MB', () => {
    expect(after.rss - before.rss).toBeLessThan(30_000_000 / MiB);
    // The heap after a full GC is what the sessions hold, without the allocator's slack that RSS carries: the
    // ~1 000 sessions the flood adds to the warm-up's are a few hundred KB; had they kept their tokens, 8 MB.
    expect(after.heap - before.heap).toBeLessThan(5_000_000 / MiB);
  });

  it('the store is at its overall bound, all the room left taken by the flooding ASID', async () => {
    const store = h.runtime.shared.store as unknown as { sizeOf(asid: string): Promise<number> };
    expect(await h.runtime.shared.store.size()).toBe(MAX_SESSIONS);
    expect(await store.sizeOf(APP_ASID)).toBe(MAX_SESSIONS - 6 - 2 * BULK_PER_OTHER);
    expect(MAX_SESSIONS - 6 - 2 * BULK_PER_OTHER).toBeLessThan(MAX_PER_ASID);
  });

  it("every other ASID's sessions are alive and still answer A005", async () => {
    for (const { asid, key } of others) {
      const res = await legacyCall(h, 'GET', A005, { XAPI_ASID: asid, HTTP_X_SESSION_KEY: key });
      expect(res.status, `${asid}: ${res.body.toString().slice(0, 200)}`).toBe(200);
    }
    const store = h.runtime.shared.store as unknown as { sizeOf(asid: string): Promise<number> };
    expect(await store.sizeOf(OTHER_ASID)).toBe(3 + BULK_PER_OTHER);
    expect(await store.sizeOf(LIMITED_ASID)).toBe(3 + BULK_PER_OTHER);
    for (const key of bulk) expect(await h.runtime.shared.store.get(key)).toBeDefined();
  });
});

describe('the A001 rate per ASID', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ rules: { sessions: { a001PerSecondPerAsid: { rate: 1, burst: 5 } } } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('beyond the burst an ASID gets a legacy 429 with Retry-After, nothing stored; other calls are not held back', async () => {
    const a001 = () =>
      legacyCall(
        h,
        'POST',
        SESSION_PATH,
        { XAPI_ASID: APP_ASID, 'Content-Type': 'application/json' },
        a001Body('ticket'),
      );
    const first = await a001();
    expect(first.status).toBe(201);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await a001()).status);
    expect(statuses).toEqual([201, 201, 201, 201]);
    const size = await h.runtime.shared.store.size();
    const refused = await a001();
    expectLegacyOutcome(refused, 429, 'SESSION_RATE_LIMITED');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(await h.runtime.shared.store.size()).toBe(size);
    // A002 and data calls of the same ASID are not counted.
    const session = first.json();
    const a002 = await legacyCall(
      h,
      'PUT',
      `${SESSION_PATH}/${session.id}`,
      { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/json' },
      JSON.stringify({ ...session, permission: session.user.permissions[0] }),
    );
    expect(a002.status).toBe(200);
    const a005 = await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: session.id });
    expect(a005.status).toBe(200);
    // Another ASID has its own bucket.
    const key = await openSession(h, OTHER_ASID);
    const res = await legacyCall(h, 'GET', A005, { XAPI_ASID: OTHER_ASID, HTTP_X_SESSION_KEY: key });
    expect(res.status).toBe(200);
  });
});
