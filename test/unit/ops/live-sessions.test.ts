/**
 * The live-sessions gauge's cache (src/ops/live-sessions.ts), on a manual clock and a store that counts its counts:
 * at most one `size()` per 15 s of the runtime's clock, shared by concurrent scrapes, failures remembered as long.
 */
import { describe, expect, it } from 'vitest';
import { cachedLiveSessions, LIVE_SESSIONS_MAX_AGE_MS } from '../../../src/ops/live-sessions.js';
import type { Runtime, RuntimeHolder } from '../../../src/runtime/runtime.js';
import { ManualClock } from '../../helpers/manual-clock.js';

/** A holder whose runtime has only what the cache reads: the clock and a store whose size() the test answers. */
function fixture() {
  const clock = new ManualClock(Date.parse('2025-01-01T00:00:00Z'));
  const pending: Array<{ resolve: (n: number) => void; reject: (e: Error) => void }> = [];
  const store = {
    calls: 0,
    size(): Promise<number> {
      store.calls++;
      return new Promise<number>((resolve, reject) => pending.push({ resolve, reject }));
    },
  };
  const holder = { current: { shared: { clock, store } } as unknown as Runtime } satisfies RuntimeHolder;
  return { clock, store, pending, holder, live: cachedLiveSessions(holder) };
}

describe('cachedLiveSessions', () => {
  it('is 15 s by default', () => {
    expect(LIVE_SESSIONS_MAX_AGE_MS).toBe(15_000);
  });

  it('concurrent reads share one count in flight', async () => {
    const { store, pending, live } = fixture();
    const reads = Array.from({ length: 16 }, () => live());
    expect(store.calls).toBe(1);
    pending[0]!.resolve(7);
    expect(await Promise.all(reads)).toEqual(Array(16).fill(7));
  });

  it('serves the last count until 15 s of the clock have passed, then counts once more', async () => {
    const { clock, store, pending, live } = fixture();
    const first = live();
    pending[0]!.resolve(3);
    expect(await first).toBe(3);
    await clock.advance(14_999);
    expect(await live()).toBe(3);
    expect(store.calls).toBe(1);
    await clock.advance(1);
    const second = live();
    expect(store.calls).toBe(2);
    pending[1]!.resolve(5);
    expect(await second).toBe(5);
    expect(await live()).toBe(5);
    expect(store.calls).toBe(2);
  });

  it('a failed count is remembered as long as a good one (an unreachable store is not asked on every scrape)', async () => {
    const { clock, store, pending, live } = fixture();
    const first = live();
    pending[0]!.reject(new Error('store unreachable'));
    await expect(first).rejects.toThrow('store unreachable');
    await expect(live()).rejects.toThrow('store unreachable');
    expect(store.calls).toBe(1);
    await clock.advance(LIVE_SESSIONS_MAX_AGE_MS);
    const again = live();
    pending[1]!.resolve(2);
    expect(await again).toBe(2);
    expect(store.calls).toBe(2);
  });

  it('reads the clock and the store of the current runtime (a reload swaps them)', async () => {
    const a = fixture();
    const b = fixture();
    const first = a.live();
    a.pending[0]!.resolve(1);
    expect(await first).toBe(1);
    a.holder.current = b.holder.current;
    // Runtime b's clock is where a's started: within 15 s of the last count, so nothing is asked of b's store.
    expect(await a.live()).toBe(1);
    expect(b.store.calls).toBe(0);
    await b.clock.advance(LIVE_SESSIONS_MAX_AGE_MS);
    const next = a.live();
    b.pending[0]!.resolve(9);
    expect(await next).toBe(9);
  });

  it('a clock that goes back counts as stale, never as fresh for longer', async () => {
    const { store, pending, holder, live } = fixture();
    const first = live();
    pending[0]!.resolve(4);
    await first;
    const behind = new ManualClock(Date.parse('2024-12-31T00:00:00Z'));
    holder.current.shared.clock = behind;
    const next = live();
    expect(store.calls).toBe(2);
    pending[1]!.resolve(6);
    expect(await next).toBe(6);
  });
});
