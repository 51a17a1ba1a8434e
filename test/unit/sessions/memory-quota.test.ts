/**
 * What one caller may hold of the in-memory store: a quota per ASID (its own least recently used sessions end
 * beyond it), an overall bound that never ends another ASID's session, and a size bound on every record.
 */
import { describe, expect, it } from 'vitest';
import { MemorySessionStore } from '../../../src/sessions/memory-store.js';
import { newSessionKey, type Session } from '../../../src/sessions/session.js';
import { SessionStoreFull, SessionTooLarge } from '../../../src/sessions/store.js';
import { appSession, HOUR, rejectionOf } from '../pipeline/fakes.js';

const T0 = Date.parse('2025-03-01T08:00:00Z');
const A = '200000000001';
const B = '200000000002';
const C = '200000000003';

function setup(o: { maxSessions?: number; maxPerAsid?: number; maxRecordBytes?: number } = {}) {
  const clock = { t: T0 };
  const store = new MemorySessionStore({
    idleTimeoutSeconds: 60,
    maxSessions: o.maxSessions ?? 1000,
    limits: { maxPerAsid: o.maxPerAsid ?? 1000, maxRecordBytes: o.maxRecordBytes ?? 32_768 },
    now: () => clock.t,
  });
  return { clock, store };
}

/** Creates `n` sessions for the ASID, one millisecond apart; returns their keys, oldest first. */
async function fill(s: ReturnType<typeof setup>, asid: string, n: number): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = newSessionKey();
    s.clock.t += 1;
    await s.store.create(key, appSession(s.clock.t, { asid, expiresAt: s.clock.t + HOUR }));
    keys.push(key);
  }
  return keys;
}

async function alive(store: MemorySessionStore, keys: string[]): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const k of keys) out.push((await store.get(k)) !== undefined);
  return out;
}

describe('memory store: quota per ASID', () => {
  it("beyond maxPerAsid the ASID's own least recently used sessions end, and only its own", async () => {
    const s = setup({ maxPerAsid: 3 });
    const others = await fill(s, B, 3);
    const mine = await fill(s, A, 3);
    await s.store.get(mine[0]!); // the oldest is now the most recently used: the second goes first
    const more = await fill(s, A, 2);
    expect(await alive(s.store, mine)).toEqual([true, false, false]);
    expect(await alive(s.store, more)).toEqual([true, true]);
    expect(await alive(s.store, others)).toEqual([true, true, true]);
    expect(await s.store.sizeOf(A)).toBe(3);
    expect(await s.store.sizeOf(B)).toBe(3);
    expect(await s.store.size()).toBe(6);
  });

  it('a flood of one ASID leaves every other ASID its sessions, and the store at most the quota larger', async () => {
    const s = setup({ maxPerAsid: 50, maxSessions: 10_000 });
    const b = await fill(s, B, 20);
    const c = await fill(s, C, 20);
    await fill(s, A, 5_000);
    expect(await s.store.size()).toBe(90);
    expect((await alive(s.store, b)).every(Boolean)).toBe(true);
    expect((await alive(s.store, c)).every(Boolean)).toBe(true);
  });

  it("the overall bound never ends another ASID's session: the creating ASID gives up its own", async () => {
    // maxPerAsid above maxSessions: the overall bound is what the flood meets.
    const s = setup({ maxPerAsid: 100, maxSessions: 10 });
    const b = await fill(s, B, 4);
    const mine = await fill(s, A, 6); // the store is full
    const more = await fill(s, A, 3);
    expect(await s.store.size()).toBe(10);
    expect(await alive(s.store, b)).toEqual([true, true, true, true]);
    expect(await alive(s.store, mine)).toEqual([false, false, false, true, true, true]);
    expect(await alive(s.store, more)).toEqual([true, true, true]);
  });

  it('a full store refuses an ASID that holds no session of its own (SessionStoreFull), ending none', async () => {
    const s = setup({ maxPerAsid: 100, maxSessions: 5 });
    const b = await fill(s, B, 5);
    const e = await rejectionOf(s.store.create(newSessionKey(), appSession(s.clock.t, { asid: C })));
    expect(e).toBeInstanceOf(SessionStoreFull);
    expect((e as SessionStoreFull).maxSessions).toBe(5);
    expect(await alive(s.store, b)).toEqual([true, true, true, true, true]);
    // Once sessions idle out there is room again.
    s.clock.t += 61_000;
    await s.store.create(newSessionKey(), appSession(s.clock.t, { asid: C, expiresAt: s.clock.t + HOUR }));
    expect(await s.store.size()).toBe(1);
  });

  it("at the overall bound, other ASIDs' idle sessions make room before the creator gives up a live one", async () => {
    const s = setup({ maxPerAsid: 100, maxSessions: 6 });
    await fill(s, B, 3);
    s.clock.t += 30_000;
    const mine = await fill(s, A, 3); // full
    s.clock.t += 30_500; // B's sessions are idle now, A's are not
    const more = await fill(s, A, 2);
    expect(await alive(s.store, [...mine, ...more])).toEqual([true, true, true, true, true]);
    expect(await s.store.sizeOf(B)).toBe(0);
  });

  it('size() ends the idle sessions of every ASID', async () => {
    const s = setup();
    await fill(s, A, 3);
    await fill(s, B, 2);
    expect(await s.store.size()).toBe(5);
    s.clock.t += 60_001;
    expect(await s.store.size()).toBe(0);
    expect(await s.store.sizeOf(A)).toBe(0);
  });

  it('a reload lowers the quota: the next create trims the ASID to it', async () => {
    const s = setup({ maxPerAsid: 10 });
    const keys = await fill(s, A, 6);
    s.store.setLimits({ maxPerAsid: 2, maxRecordBytes: 32_768 });
    const last = await fill(s, A, 1);
    expect(await alive(s.store, [...keys, ...last])).toEqual([false, false, false, false, false, true, true]);
  });
});

describe('memory store: order of use without a Map rewrite per read', () => {
  // A read moves a session to the end of its ASID's map at most once per 1% of the idle timeout (600 ms here): the
  // order is kept exactly all the same, for idle expiry and for eviction.
  it('idle expiry stays exact when a session was read again without moving', async () => {
    const s = setup();
    const [first, second] = await fill(s, A, 2);
    s.clock.t += 10;
    expect(await s.store.get(first!)).toBeDefined(); // read 10 ms after its creation: not moved
    s.clock.t += 60_000 - 5; // the second is now idle, the first (read 10 ms later) is not yet
    expect(await s.store.sizeOf(A)).toBe(1);
    expect(await alive(s.store, [first!, second!])).toEqual([true, false]);
    s.clock.t += 60_001;
    expect(await s.store.sizeOf(A)).toBe(0);
  });

  it('eviction finds the least recently used session among reads a millisecond apart', async () => {
    const s = setup({ maxPerAsid: 4 });
    const keys = await fill(s, A, 4);
    for (const k of [keys[2]!, keys[0]!, keys[3]!]) {
      s.clock.t += 1;
      await s.store.get(k);
    }
    await fill(s, A, 1); // keys[1] was used least recently
    await fill(s, A, 1); // then keys[2], read before keys[0] and keys[3]
    expect(await alive(s.store, keys)).toEqual([true, false, false, true]);
  });
});

describe('memory store: record size', () => {
  const big = (bytes: number): Session => appSession(T0, { legacyToken: 'x'.repeat(bytes) });

  it('refuses a create whose JSON is over maxRecordBytes, storing nothing', async () => {
    const s = setup({ maxRecordBytes: 2048 });
    const key = newSessionKey();
    const e = await rejectionOf(s.store.create(key, big(4000)));
    expect(e).toBeInstanceOf(SessionTooLarge);
    expect((e as SessionTooLarge).limit).toBe(2048);
    expect((e as SessionTooLarge).bytes).toBe(Buffer.byteLength(JSON.stringify(big(4000))));
    expect(await s.store.get(key)).toBeUndefined();
    expect(await s.store.size()).toBe(0);
  });

  it('counts UTF-8 bytes, not characters', async () => {
    const s = setup({ maxRecordBytes: 2048 });
    const session = appSession(T0, { legacyToken: '€'.repeat(600) }); // 600 characters, 1800 bytes
    expect(JSON.stringify(session).length).toBeLessThan(2048);
    expect(await rejectionOf(s.store.create(newSessionKey(), session))).toBeInstanceOf(SessionTooLarge);
    await s.store.create(newSessionKey(), appSession(T0, { legacyToken: '€'.repeat(400) }));
  });

  it('refuses an update over the limit and keeps the session as it was', async () => {
    const s = setup({ maxRecordBytes: 2048 });
    const key = newSessionKey();
    const session = appSession(T0);
    await s.store.create(key, session);
    expect(await rejectionOf(s.store.update(key, big(4000)))).toBeInstanceOf(SessionTooLarge);
    expect(await s.store.get(key)).toEqual(session);
  });
});
