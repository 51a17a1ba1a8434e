import { describe, expect, it } from 'vitest';
import { MemorySessionStore } from '../../src/sessions/memory-store.js';
import {
  newSessionKey,
  SESSION_KEY_PREFIX,
  SESSION_TYPE_INFO,
  type Session,
  sessionBody,
  sessionKeyHash,
  sessionKeyTag,
} from '../../src/sessions/session.js';

const KEY_FORMAT = /^pro-api-session:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A realistic epoch (ms) for the injected clock. */
const T0 = Date.UTC(2025, 0, 6, 9, 0, 0);
const IDLE_S = 60;

/**
 * Lets real time pass between steps of a test that moves the injected clock more than once. The store's cache
 * memoises its clock reading for about 1 ms of real time (see the dedicated test below); waiting here keeps the
 * other tests about the behaviour they name.
 */
const realTick = () => new Promise((r) => setTimeout(r, 3));

function session(over: Partial<Session> = {}): Session {
  return {
    asid: '200000000220',
    accessMode: 'application-restricted',
    legacyToken: 'cis1-sso-ticket',
    user: {
      identifier: '555000000001',
      firstName: 'Demo',
      lastName: 'User',
      middleName: null,
      permissions: [{ businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69', orgName: 'TRUST' }],
    },
    permission: null,
    createdAt: T0,
    lastUsedAt: T0,
    expiresAt: T0 + 12 * 3600_000,
    ...over,
  };
}

function clockedStore(maxSessions = 100) {
  const clock = { t: T0 };
  const store = new MemorySessionStore({ idleTimeoutSeconds: IDLE_S, maxSessions, now: () => clock.t });
  return { clock, store };
}

/** The keys the store's cache holds (white-box: the store indexes an lru-cache by key hash). */
function heldKeys(store: MemorySessionStore): string[] {
  const cache = (store as unknown as { cache: { keys(): Iterable<string> } }).cache;
  return [...cache.keys()];
}

describe('newSessionKey', () => {
  it('has the legacy format pro-api-session:<uuid-shaped 128 random bits>', () => {
    const k = newSessionKey();
    expect(k).toMatch(KEY_FORMAT);
    expect(k.startsWith(SESSION_KEY_PREFIX)).toBe(true);
  });

  it('10 000 keys: all well-formed and all distinct', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const k = newSessionKey();
      expect(KEY_FORMAT.test(k)).toBe(true);
      keys.add(k);
    }
    expect(keys.size).toBe(10_000);
  });

  it('the UUID version nibble is random too (all 128 bits random)', () => {
    const versionNibbles = new Set<string>();
    for (let i = 0; i < 500; i++)
      versionNibbles.add(newSessionKey().slice(SESSION_KEY_PREFIX.length + 14, SESSION_KEY_PREFIX.length + 15));
    expect(versionNibbles.size).toBeGreaterThan(8);
  });
});

describe('sessionKeyHash / sessionKeyTag / sessionBody', () => {
  it('the hash is deterministic, base64url SHA-256, and not the key', () => {
    const k = newSessionKey();
    expect(sessionKeyHash(k)).toBe(sessionKeyHash(k));
    expect(sessionKeyHash(k)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(sessionKeyHash(k)).not.toContain(k.slice(SESSION_KEY_PREFIX.length));
    expect(sessionKeyHash(k)).not.toBe(sessionKeyHash(newSessionKey()));
  });

  it('the tag is a 10-character prefix of the hash', () => {
    const k = newSessionKey();
    expect(sessionKeyTag(k)).toBe(sessionKeyHash(k).slice(0, 10));
    expect(sessionKeyTag(k)).toHaveLength(10);
  });

  it('sessionBody is the legacy ProfessionalSession shape with the key as id', () => {
    const k = newSessionKey();
    const s = session({
      permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69', orgName: 'T' },
    });
    expect(sessionBody(k, s)).toEqual({
      typeInfo: SESSION_TYPE_INFO,
      id: k,
      token: 'cis1-sso-ticket',
      user: s.user,
      permission: s.permission,
    });
    expect(SESSION_TYPE_INFO).toBe('uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession');
  });
});

describe('MemorySessionStore', () => {
  it('create, get, delete', async () => {
    const { store } = clockedStore();
    const k = newSessionKey();
    await store.create(k, session());
    expect(await store.get(k)).toEqual(session());
    expect(await store.size()).toBe(1);
    expect(await store.delete(k)).toBe(true);
    expect(await store.get(k)).toBeUndefined();
    expect(await store.delete(k)).toBe(false);
    expect(await store.size()).toBe(0);
  });

  it('an unknown key is undefined', async () => {
    const { store } = clockedStore();
    expect(await store.get(newSessionKey())).toBeUndefined();
  });

  it('idle expiry: alive just before the idle timeout, gone just after', async () => {
    const a = clockedStore();
    const k = newSessionKey();
    await a.store.create(k, session());
    a.clock.t = T0 + IDLE_S * 1000 - 1;
    expect(await a.store.get(k)).toBeDefined();

    const b = clockedStore();
    await b.store.create(k, session());
    b.clock.t = T0 + IDLE_S * 1000 + 1;
    expect(await b.store.get(k)).toBeUndefined();
  });

  it('get refreshes the idle time', async () => {
    const { clock, store } = clockedStore();
    const k = newSessionKey();
    await store.create(k, session());
    for (let i = 1; i <= 5; i++) {
      await realTick();
      clock.t = T0 + i * (IDLE_S * 1000 - 1000); // 59 s after each previous read: 295 s in all
      expect(await store.get(k), `read ${i}`).toBeDefined();
    }
    await realTick();
    clock.t += IDLE_S * 1000 + 1;
    expect(await store.get(k)).toBeUndefined();
  });

  it('idle expiry with the injected clock is decided by that clock, even within one real millisecond', async () => {
    const { clock, store } = clockedStore();
    const k = newSessionKey();
    await store.create(k, session());
    clock.t = T0 + 30_000;
    expect(await store.get(k)).toBeDefined(); // refreshes: idle until T0 + 90 s
    clock.t = T0 + 30_000 + IDLE_S * 1000 + 1;
    expect(await store.get(k)).toBeUndefined();
  });

  it('absolute expiry via expiresAt, whatever the activity', async () => {
    const { clock, store } = clockedStore();
    const k = newSessionKey();
    await store.create(k, session({ expiresAt: T0 + 100_000 }));
    for (const t of [T0 + 40_000, T0 + 80_000, T0 + 99_999]) {
      await realTick();
      clock.t = t;
      expect(await store.get(k), `at +${t - T0} ms`).toBeDefined();
    }
    await realTick();
    clock.t = T0 + 100_000;
    expect(await store.get(k)).toBeUndefined();
    // and it is really gone, not just hidden
    clock.t = T0;
    expect(await store.get(k)).toBeUndefined();
  });

  it('update replaces a live session and returns true', async () => {
    const { store } = clockedStore();
    const k = newSessionKey();
    await store.create(k, session());
    const permission = { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69', orgName: 'TRUST' };
    expect(await store.update(k, session({ permission }))).toBe(true);
    expect((await store.get(k))?.permission).toEqual(permission);
  });

  it('update of a deleted session returns false and does not bring it back', async () => {
    const { store } = clockedStore();
    const k = newSessionKey();
    await store.create(k, session());
    await store.delete(k);
    expect(await store.update(k, session())).toBe(false);
    expect(await store.get(k)).toBeUndefined();
  });

  it('update of a never-created key returns false', async () => {
    const { store } = clockedStore();
    expect(await store.update(newSessionKey(), session())).toBe(false);
    expect(await store.size()).toBe(0);
  });

  it('update of an idle-expired session returns false', async () => {
    const { clock, store } = clockedStore();
    const k = newSessionKey();
    await store.create(k, session());
    clock.t = T0 + IDLE_S * 1000 + 1;
    expect(await store.update(k, session())).toBe(false);
    expect(await store.get(k)).toBeUndefined();
  });

  it('maxSessions evicts the least recently used session', async () => {
    const { clock, store } = clockedStore(3);
    const [a, b, c, d] = [newSessionKey(), newSessionKey(), newSessionKey(), newSessionKey()];
    await store.create(a, session({ legacyToken: 'a' }));
    await store.create(b, session({ legacyToken: 'b' }));
    await store.create(c, session({ legacyToken: 'c' }));
    clock.t += 1000;
    expect(await store.get(a)).toBeDefined(); // a is now the most recently used; b the least
    await store.create(d, session({ legacyToken: 'd' }));
    expect(await store.size()).toBe(3);
    expect(await store.get(b)).toBeUndefined();
    expect((await store.get(a))?.legacyToken).toBe('a');
    expect((await store.get(c))?.legacyToken).toBe('c');
    expect((await store.get(d))?.legacyToken).toBe('d');
  });

  it('size() counts only live sessions', async () => {
    const { clock, store } = clockedStore();
    await store.create(newSessionKey(), session());
    await store.create(newSessionKey(), session());
    expect(await store.size()).toBe(2);
    await realTick();
    clock.t = T0 + IDLE_S * 1000 + 1;
    expect(await store.size()).toBe(0);
  });

  it('never holds the raw key: the cache is indexed by sessionKeyHash', async () => {
    const { store } = clockedStore();
    const keys = [newSessionKey(), newSessionKey(), newSessionKey()];
    for (const k of keys) await store.create(k, session());
    const held = heldKeys(store);
    expect(held.sort()).toEqual(keys.map(sessionKeyHash).sort());
    for (const k of keys) {
      expect(held).not.toContain(k);
      for (const h of held) expect(h).not.toContain(k.slice(SESSION_KEY_PREFIX.length, SESSION_KEY_PREFIX.length + 8));
    }
    // nor in the stored values
    for (const k of keys) expect(JSON.stringify(await store.get(k))).not.toContain(k);
  });

  it('close() empties the store', async () => {
    const { store } = clockedStore();
    const k = newSessionKey();
    await store.create(k, session());
    await store.close();
    expect(await store.get(k)).toBeUndefined();
    expect(await store.size()).toBe(0);
  });

  it('without an injected clock it uses real time', async () => {
    const store = new MemorySessionStore({ idleTimeoutSeconds: 3600, maxSessions: 10 });
    const k = newSessionKey();
    await store.create(k, session({ expiresAt: Date.now() + 60_000 }));
    expect(await store.get(k)).toBeDefined();
    await store.create(k, session({ expiresAt: Date.now() - 1 }));
    expect(await store.get(k)).toBeUndefined();
  });
});
