/**
 * The memory store holds each session as a compact record (its fields flattened, its times in a slab) and builds the
 * Session it returns from that record: what comes back must be exactly what went in, for every kind of session, and
 * a slot given back by an ended session must never leak another session's times.
 */
import { describe, expect, it } from 'vitest';
import { MemorySessionStore } from '../../../src/sessions/memory-store.js';
import { NumberSlab } from '../../../src/sessions/number-slab.js';
import { newSessionKey, type Session, sessionWith } from '../../../src/sessions/session.js';
import { appSession, HOUR, userSession } from '../pipeline/fakes.js';

const T0 = Date.parse('2025-03-01T08:00:00Z');

function setup(maxSessions = 1000) {
  const clock = { t: T0 };
  const store = new MemorySessionStore({ idleTimeoutSeconds: 60, maxSessions, now: () => clock.t });
  return { clock, store };
}

describe('memory store: what is read back is what was stored', () => {
  it('an application-restricted session without the rare fields comes back without them (absent, not undefined)', async () => {
    const { store } = setup();
    const key = newSessionKey();
    const { legacyToken: _dropped, ...session } = appSession(T0);
    await store.create(key, session);
    const read = (await store.get(key))!;
    expect(read).toStrictEqual(session);
    expect(Object.keys(read).sort()).toEqual(Object.keys(session).sort());
  });

  it('a user-restricted session keeps its APIM tokens, its null onBehalfOf, its legacy session and token', async () => {
    const { store } = setup();
    const key = newSessionKey();
    const session: Session = {
      ...userSession(T0),
      onBehalfOf: null,
      legacySession: { key: 'legacy-session-1' },
      legacyToken: 'cis1-ticket',
    };
    await store.create(key, session);
    expect(await store.get(key)).toStrictEqual(session);
    const later = sessionWith(session, { onBehalfOf: '555000000002', legacySession: null, lastUsedAt: T0 + 5 });
    expect(await store.update(key, later)).toBe(true);
    const read = (await store.get(key))!;
    expect(read.onBehalfOf).toBe('555000000002');
    expect(read.legacySession).toBeNull();
    expect(read.lastUsedAt).toBe(T0 + 5);
    expect(read.apim).toEqual(session.apim);
  });

  it('times come back exactly, fractional and far-future ones too', async () => {
    const { store } = setup();
    const key = newSessionKey();
    const session = appSession(T0, { createdAt: T0 + 0.125, lastUsedAt: T0 + 0.3, expiresAt: 8.64e15 });
    await store.create(key, session);
    const read = (await store.get(key))!;
    expect([read.createdAt, read.lastUsedAt, read.expiresAt]).toEqual([T0 + 0.125, T0 + 0.3, 8.64e15]);
  });

  it('changing what get returned changes nothing stored: sessions change only through update', async () => {
    const { store } = setup();
    const key = newSessionKey();
    await store.create(key, appSession(T0));
    const read = (await store.get(key))!;
    read.permission = null;
    read.expiresAt = 0;
    const again = (await store.get(key))!;
    expect(again.permission).toEqual(appSession(T0).permission);
    expect(again.expiresAt).toBe(appSession(T0).expiresAt);
  });

  it('sessions created with equal ASID strings (separate string objects) are held as one ASID', async () => {
    const { store } = setup();
    const a = newSessionKey();
    const b = newSessionKey();
    await store.create(a, appSession(T0, { asid: ['2000', '00000001'].join('') }));
    await store.create(b, appSession(T0, { asid: ['200000', '000001'].join('') }));
    expect((await store.get(a))!.asid).toBe('200000000001');
    expect((await store.get(b))!.asid).toBe('200000000001');
    expect(await store.sizeOf('200000000001')).toBe(2);
  });

  it("a slot freed by an ended session is reused with the new session's own times", async () => {
    const s = setup(2);
    const first = newSessionKey();
    await s.store.create(first, appSession(T0, { expiresAt: T0 + HOUR }));
    expect(await s.store.delete(first)).toBe(true);
    const second = newSessionKey();
    s.clock.t += 10;
    await s.store.create(second, appSession(s.clock.t, { expiresAt: s.clock.t + 2 * HOUR }));
    const read = (await s.store.get(second))!;
    expect(read.createdAt).toBe(T0 + 10);
    expect(read.expiresAt).toBe(T0 + 10 + 2 * HOUR);
    expect(await s.store.get(first)).toBeUndefined();
  });

  it('thousands of sessions, created, ended and created again, each read back with its own times', async () => {
    const { store } = setup(10_000);
    const keys: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const key = newSessionKey();
      keys.push(key);
      await store.create(key, appSession(T0, { createdAt: T0 - i, expiresAt: T0 + HOUR + i }));
    }
    for (let i = 0; i < 5000; i += 2) await store.delete(keys[i]!);
    for (let i = 0; i < 5000; i += 2) {
      await store.create(keys[i]!, appSession(T0, { createdAt: T0 - 7 * i, expiresAt: T0 + HOUR + 7 * i }));
    }
    for (let i = 0; i < 5000; i++) {
      const read = (await store.get(keys[i]!))!;
      const k = i % 2 === 0 ? 7 * i : i;
      expect([read.createdAt, read.expiresAt], `session ${i}`).toEqual([T0 - k, T0 + HOUR + k]);
    }
    expect(await store.size()).toBe(5000);
  });
});

describe('NumberSlab', () => {
  it('grows past its first size keeping every value, and reuses given-back rows before growing', () => {
    const slab = new NumberSlab(3, 2);
    const slots = Array.from({ length: 10 }, () => slab.take());
    expect(slots).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const s of slots) for (let f = 0; f < 3; f++) slab.set(s, f, s * 10 + f + 0.5);
    for (const s of slots) for (let f = 0; f < 3; f++) expect(slab.get(s, f)).toBe(s * 10 + f + 0.5);
    slab.give(4);
    slab.give(7);
    expect([slab.take(), slab.take(), slab.take()]).toEqual([7, 4, 10]);
    slab.clear();
    expect(slab.take()).toBe(0);
  });
});
