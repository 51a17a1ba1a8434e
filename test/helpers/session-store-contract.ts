/**
 * One contract for every session store: everything ers-bridge relies on from a store. The unit project runs it on
 * the in-memory store (test/unit/session-store-contract.test.ts), the integration project on the Redis store over a
 * real Redis (test/integration/session-store-contract.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newSessionKey, type Session } from '../../src/sessions/session.js';
import type { SessionStore } from '../../src/sessions/store.js';

export const IDLE_S = 60;

/** The time the stores are given (their `now`); the tests move it. Redis TTLs run on Redis's own clock. */
export const clock = { now: Date.now() };

export function session(overrides: Partial<Session> = {}): Session {
  return {
    asid: '999000000001',
    accessMode: 'user-restricted',
    legacyToken: 'legacy-ticket',
    user: {
      identifier: '555000000101',
      firstName: 'Alex',
      lastName: 'Example',
      middleName: null,
      permissions: [{ businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'R68', orgName: 'PRACTICE' }],
    },
    permission: null,
    apim: {
      accessToken: `at-${randomUUID()}`,
      accessExpiresAt: clock.now + 599_000,
      refreshToken: `rt-${randomUUID()}`,
      refreshExpiresAt: clock.now + 43_199_000,
    },
    onBehalfOf: null,
    createdAt: clock.now,
    lastUsedAt: clock.now,
    expiresAt: clock.now + 3_600_000,
    ...overrides,
  };
}

export interface Subject {
  name: string;
  make(): Promise<SessionStore>;
  /** Moves the stores' clock (session lifetimes are judged by it, in every store). */
  advance(ms: number): Promise<void>;
  /**
   * Lets `ms` pass for locks: the stores' clock, and for a store whose locks expire by real time (Redis's PX) real
   * time as well.
   */
  expireLocks(ms: number): Promise<void>;
}

/** Defines the contract's tests, once per subject. */
export function sessionStoreContract(subjects: Subject[]): void {
  describe.each(subjects)('session store contract: $name', (subject) => {
    let store: SessionStore;
    beforeAll(async () => {
      store = await subject.make();
    });
    afterAll(async () => {
      await store.close();
    });

    it('create, get, update, delete', async () => {
      const key = newSessionKey();
      const s = session();
      await store.create(key, s);
      expect(await store.get(key)).toEqual(s);
      const updated = { ...s, permission: s.user.permissions[0]! };
      expect(await store.update(key, updated)).toBe(true);
      expect(await store.get(key)).toEqual(updated);
      expect(await store.delete(key)).toBe(true);
      expect(await store.get(key)).toBeUndefined();
      expect(await store.delete(key)).toBe(false);
    });

    it('update of an unknown or deleted session returns false and does not create it', async () => {
      const key = newSessionKey();
      expect(await store.update(key, session())).toBe(false);
      expect(await store.get(key)).toBeUndefined();
    });

    it('a session past its absolute lifetime is gone, whatever the activity', async () => {
      const key = newSessionKey();
      await store.create(key, session({ expiresAt: clock.now + 5_000 }));
      expect(await store.get(key)).toBeDefined();
      await subject.advance(6_000);
      expect(await store.get(key)).toBeUndefined();
    });

    it('keys are independent, and a similar key is not the same session', async () => {
      const a = newSessionKey();
      const b = `${a.slice(0, -1)}${a.endsWith('0') ? '1' : '0'}`;
      await store.create(a, session());
      expect(await store.get(b)).toBeUndefined();
    });

    it('lock: exclusive until released or expired', async () => {
      const key = newSessionKey();
      const release = await store.lock(key, 10_000);
      expect(release).toBeTypeOf('function');
      expect(await store.lock(key, 10_000)).toBeUndefined();
      await release!();
      const again = await store.lock(key, 10_000);
      expect(again).toBeTypeOf('function');
      await again!();
    });

    it("lock: a release by a former holder does not free a newer holder's lock", async () => {
      const key = newSessionKey();
      const first = (await store.lock(key, 50))!;
      await subject.expireLocks(80);
      const second = (await store.lock(key, 10_000))!; // the first expired
      expect(second).toBeTypeOf('function');
      await first(); // late release: must not remove the second holder's lock
      expect(await store.lock(key, 10_000)).toBeUndefined();
      await second();
    });

    it('ping answers', async () => {
      expect(await store.ping()).toBe(true);
    });

    it('size counts live sessions', async () => {
      const before = await store.size();
      const keys = [newSessionKey(), newSessionKey(), newSessionKey()];
      for (const k of keys) await store.create(k, session());
      expect(await store.size()).toBe(before + 3);
      for (const k of keys) await store.delete(k);
      expect(await store.size()).toBe(before);
    });
  });
}
