/**
 * The session store contract (test/helpers/session-store-contract.ts) on the in-memory store, and the in-memory
 * ephemeral store; both run on a clock the tests move. The Redis store runs the same contract in the integration
 * project (test/integration/session-store-contract.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { MemoryEphemeralStore } from '../../src/sessions/ephemeral-store.js';
import { MemorySessionStore } from '../../src/sessions/memory-store.js';
import { clock, IDLE_S, sessionStoreContract } from '../helpers/session-store-contract.js';

sessionStoreContract([
  {
    name: 'memory',
    make: async () => new MemorySessionStore({ idleTimeoutSeconds: IDLE_S, maxSessions: 1000, now: () => clock.now }),
    advance: async (ms) => {
      clock.now += ms;
    },
    expireLocks: async (ms) => {
      clock.now += ms;
    },
  },
]);

describe('memory ephemeral store', () => {
  it('takes once and expires by its clock', async () => {
    let now = 1_000_000;
    const eph = new MemoryEphemeralStore<{ v: number }>(10, () => now);
    await eph.put('a', { v: 1 }, 1000);
    await eph.put('b', { v: 2 }, 1000);
    expect(await eph.take('a')).toEqual({ v: 1 });
    expect(await eph.take('a')).toBeUndefined();
    now += 1001;
    expect(await eph.take('b')).toBeUndefined();
  });
});
