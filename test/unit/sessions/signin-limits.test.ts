/**
 * Sign-ins in progress, bounded without evicting: the slots per ASID and per address (memory), the pending store that
 * refuses when full, and a many-address flood run through the same pieces /login uses, which leaves a sign-in
 * already in progress to complete.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { StartRate } from '../../../src/http/address-limits.js';
import { EphemeralStoreFull, MemoryEphemeralStore } from '../../../src/sessions/ephemeral-store.js';
import { MemorySignInSlots, pendingStoreCapacity, type SlotClaim } from '../../../src/sessions/signin-slots.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { rulesFor } from '../../helpers/rules.js';

const TTL = 600_000;
const LIMITS = { perAsid: 1000, perAddress: 20 };
const claim = (asid: string, address: string, slot = randomUUID()): SlotClaim => ({
  asid,
  address,
  slot,
  ttlMs: TTL,
  ...LIMITS,
});

describe('MemorySignInSlots', () => {
  it('caps sign-ins in progress per address, then per ASID; release and expiry free slots', async () => {
    const clock = new ManualClock(Date.parse('2025-03-01T08:00:00Z'));
    const slots = new MemorySignInSlots(clock);
    const first = claim('A', '10.0.0.1');
    expect(await slots.claim(first)).toEqual({ ok: true });
    await clock.advance(1_000);
    for (let i = 1; i < 20; i++) expect((await slots.claim(claim('A', '10.0.0.1'))).ok).toBe(true);
    expect(await slots.claim(claim('A', '10.0.0.1'))).toEqual({
      ok: false,
      limit: 'address',
      retryAfterMs: TTL - 1_000,
    });
    expect((await slots.claim(claim('B', '10.0.0.1'))).ok, 'the address cap spans ASIDs').toBe(false);
    expect((await slots.claim(claim('A', '10.0.0.2'))).ok).toBe(true);
    await slots.release('A', '10.0.0.1', first.slot);
    expect((await slots.claim(claim('A', '10.0.0.1'))).ok).toBe(true);
    expect((await slots.claim(claim('A', '10.0.0.1'))).ok).toBe(false);
    await clock.advance(TTL);
    expect(slots.held('address', '10.0.0.1')).toBe(0);
    expect((await slots.claim(claim('A', '10.0.0.1'))).ok).toBe(true);

    for (let i = 0; slots.held('asid', 'A') < 1000; i++) await slots.claim(claim('A', `10.1.${i >> 8}.${i & 255}`));
    const full = await slots.claim(claim('A', '10.9.9.9'));
    expect(full).toMatchObject({ ok: false, limit: 'asid' });
    expect((await slots.claim(claim('B', '10.9.9.9'))).ok, 'another ASID is not affected').toBe(true);
  });

  it('memory stays bounded: expired sets of addresses that never return are swept', async () => {
    const clock = new ManualClock(0);
    const slots = new MemorySignInSlots(clock);
    for (let i = 0; i < 900; i++) await slots.claim(claim('A', `10.2.${i >> 8}.${i & 255}`));
    await clock.advance(TTL);
    await slots.claim(claim('A', '10.3.0.1'));
    const inside = slots as unknown as { byAddress: Map<string, unknown>; byAsid: Map<string, Map<string, number>> };
    expect(inside.byAddress.size).toBe(1);
    expect(inside.byAsid.get('A')?.size).toBe(1);
  });
});

describe('MemoryEphemeralStore when full', () => {
  it('refuses a new record instead of evicting a live one (today: the oldest was evicted)', async () => {
    const clock = new ManualClock(0);
    const store = new MemoryEphemeralStore<{ n: number }>(100, () => clock.now());
    for (let n = 0; n < 100; n++) await store.put(`k${n}`, { n }, TTL);
    await expect(store.put('one-too-many', { n: 100 }, TTL)).rejects.toBeInstanceOf(EphemeralStoreFull);
    expect(await store.take('k0')).toEqual({ n: 0 });
    await store.put('one-too-many', { n: 100 }, TTL); // the take made room
    await expect(store.put('and-another', { n: 101 }, TTL)).rejects.toBeInstanceOf(EphemeralStoreFull);
    await store.put('k5', { n: 5 }, TTL); // replacing a record it holds is fine
  });

  it('drops expired records to make room', async () => {
    const clock = new ManualClock(Date.parse('2025-03-01T08:00:00Z'));
    const store = new MemoryEphemeralStore<{ n: number }>(10, () => clock.now());
    for (let n = 0; n < 10; n++) await store.put(`k${n}`, { n }, n < 5 ? 1_000 : TTL);
    await clock.advance(1_001);
    for (let n = 10; n < 15; n++) await store.put(`k${n}`, { n }, TTL);
    expect(await store.take('k9')).toEqual({ n: 9 });
    expect(await store.take('k14')).toEqual({ n: 14 });
  });

  it('is sized for every user-restricted ASID at its cap', () => {
    const rules = (users: number, pendingPerAsid: number) =>
      rulesFor({
        apim: { baseUrl: 'http://127.0.0.1:9/referrals/FHIR', tokenUrl: 'http://127.0.0.1:9/oauth2/token' },
        cis2: {
          issuer: 'http://127.0.0.1:9',
          clientId: 'c',
          clientAuth: { method: 'client_secret_post', secret: 'env:S' },
          redirectUri: 'http://127.0.0.1:9/login/callback',
          limits: { pendingPerAsid },
        },
        asids: Object.fromEntries(
          Array.from({ length: users }, (_, i) => [`99900000010${i}`, { accessMode: 'user-restricted' as const }]),
        ),
      });
    expect(pendingStoreCapacity(rules(2, 1000))).toBe(10_000);
    expect(pendingStoreCapacity(rules(4, 5000))).toBe(20_000);
    expect(pendingStoreCapacity(rules(5, 1_000_000))).toBe(100_000);
  });
});

describe('a flood of /login from many addresses, through the pieces /login uses', () => {
  it('is refused by the caps, and a sign-in already in progress still completes', async () => {
    const clock = new ManualClock(Date.parse('2025-03-01T08:00:00Z'));
    const rate = new StartRate(clock);
    const slots = new MemorySignInSlots(clock);
    const pending = new MemoryEphemeralStore<{ asid: string; address: string; slot: string }>(10_000, () =>
      clock.now(),
    );
    /** What /login does after its checks: rate, slot, record; true when the sign-in started. */
    const start = async (key: string, asid: string, address: string): Promise<boolean> => {
      if (rate.take(address, 30) > 0) return false;
      const slot = randomUUID();
      if (!(await slots.claim(claim(asid, address, slot))).ok) return false;
      await pending.put(key, { asid, address, slot }, TTL);
      return true;
    };
    expect(await start('victim', 'A', '198.51.100.1')).toBe(true);
    await clock.advance(1_000);

    let started = 0;
    // 10 000 from one address, then 10 000 spread over 500 addresses (20 each), all for ASID A.
    for (let i = 0; i < 10_000; i++) if (await start(`one-${i}`, 'A', '203.0.113.9')) started++;
    expect(started).toBe(20);
    for (let i = 0; i < 10_000; i++) {
      if (await start(`many-${i}`, 'A', `10.4.${(i % 500) >> 8}.${(i % 500) & 255}`)) started++;
    }
    expect(started).toBe(999); // ASID A's cap, the victim's slot included
    expect(await start('other-asid', 'B', '198.51.100.2')).toBe(true);

    const victim = await pending.take('victim');
    expect(victim).toMatchObject({ asid: 'A', address: '198.51.100.1' });
    await slots.release(victim!.asid, victim!.address, victim!.slot);
    expect(await start('next', 'A', '198.51.100.3'), 'the slot it gave back is free for the next user').toBe(true);
  });
});
