import { describe, expect, it, vi } from 'vitest';
import { type LockWait, updateLocked, withSessionLock } from '../../../src/sessions/locking.js';
import { StoreUnavailableError } from '../../../src/sessions/store.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { appSession, memoryStore, rejectionOf } from '../pipeline/fakes.js';

const KEY = 'pro-api-session:12121212-3434-5656-7878-909090909090';

function setup() {
  const clock = new ManualClock(Date.parse('2025-03-01T08:00:00Z'));
  const store = memoryStore(clock);
  const wait: LockWait<string> = {
    lockMs: 20_000,
    waitMs: 200,
    pollMs: 50,
    clock,
    onTimeout: () => new Error('gave up waiting'),
  };
  return { clock, store, wait };
}

/** Whether someone holds the lock (takes it and gives it back at once when not). */
async function isLocked(store: ReturnType<typeof memoryStore>): Promise<boolean> {
  const release = await store.lock(KEY, 1000);
  if (!release) return true;
  await release();
  return false;
}

describe('withSessionLock', () => {
  it('runs the work while holding the lock, with the lock time asked for, and releases it', async () => {
    const { store, wait } = setup();
    const lock = vi.spyOn(store, 'lock');
    const result = await withSessionLock(store, KEY, wait, async () => {
      expect(await isLocked(store)).toBe(true);
      return 'done';
    });
    expect(result).toBe('done');
    expect(lock.mock.calls[0]).toEqual([KEY, 20_000]);
    expect(await isLocked(store)).toBe(false);
  });

  it('releases the lock when the work throws, and rethrows', async () => {
    const { store, wait } = setup();
    const boom = new Error('work failed');
    expect(await rejectionOf(withSessionLock(store, KEY, wait, async () => Promise.reject(boom)))).toBe(boom);
    expect(await isLocked(store)).toBe(false);
  });

  it('waits for another holder, polling on the clock, then runs the work', async () => {
    const { clock, store, wait } = setup();
    const release = (await store.lock(KEY, 20_000))!;
    const work = vi.fn(async () => 'mine');
    const p = withSessionLock(store, KEY, wait, work);
    await clock.advance(100);
    expect(work).not.toHaveBeenCalled();
    expect(clock.pending()).toBe(1); // one poll asleep
    await release();
    await clock.advance(50);
    expect(await p).toBe('mine');
    expect(work).toHaveBeenCalledTimes(1);
  });

  it("whileWaiting's result ends the wait without the work", async () => {
    const { clock, store, wait } = setup();
    await store.lock(KEY, 20_000);
    const whileWaiting = vi.fn<() => Promise<string | undefined>>().mockResolvedValueOnce(undefined);
    whileWaiting.mockResolvedValue('theirs');
    const work = vi.fn(async () => 'mine');
    const p = withSessionLock(store, KEY, { ...wait, whileWaiting }, work);
    await clock.advance(50);
    expect(whileWaiting).toHaveBeenCalledTimes(1);
    await clock.advance(50);
    expect(await p).toBe('theirs');
    expect(whileWaiting).toHaveBeenCalledTimes(2);
    expect(work).not.toHaveBeenCalled();
  });

  it('gives up with onTimeout() once the wait is over', async () => {
    const { clock, store, wait } = setup();
    await store.lock(KEY, 20_000);
    const work = vi.fn(async () => 'mine');
    let settled = false;
    const caught = rejectionOf(withSessionLock(store, KEY, wait, work)).finally(() => (settled = true));
    await clock.advance(200);
    expect(settled).toBe(false);
    await clock.advance(50);
    expect(((await caught) as Error).message).toBe('gave up waiting');
    expect(work).not.toHaveBeenCalled();
    expect(clock.pending()).toBe(0);
  });

  it('a lock whose holder died expires by itself, and the waiter gets it', async () => {
    const { clock, store, wait } = setup();
    await store.lock(KEY, 120); // never released
    const p = withSessionLock(store, KEY, wait, async () => 'mine');
    await clock.advance(150);
    expect(await p).toBe('mine');
  });
});

describe('updateLocked', () => {
  it('writes the change derived from the stored session, and resolves with it', async () => {
    const { clock, store } = setup();
    await store.create(KEY, appSession(clock.now(), { permission: null }));
    const permission = { businessFunction: 'REFERRING_ADMIN', orgIdentifier: 'R1', orgName: 'Org' };
    const written = await updateLocked(store, KEY, (current) => ({ ...current, permission }), clock);
    expect(written?.permission).toEqual(permission);
    expect((await store.get(KEY))!.permission).toEqual(permission);
    expect(await isLocked(store)).toBe(false);
  });

  it('reads the session afresh under the lock (not a copy from before)', async () => {
    const { clock, store } = setup();
    await store.create(KEY, appSession(clock.now(), { legacyToken: 'v1' }));
    const release = (await store.lock(KEY, 20_000))!;
    const change = vi.fn((current) => ({ ...current, lastUsedAt: 42 }));
    const p = updateLocked(store, KEY, change, clock);
    await store.update(KEY, { ...(await store.get(KEY))!, legacyToken: 'v2' });
    await release();
    await clock.advance(25);
    expect((await p)?.legacyToken).toBe('v2');
    expect(change).toHaveBeenCalledTimes(1);
  });

  it('undefined when the session is gone, and nothing is written', async () => {
    const { clock, store } = setup();
    const change = vi.fn((s) => s);
    expect(await updateLocked(store, KEY, change, clock)).toBeUndefined();
    expect(change).not.toHaveBeenCalled();
    expect(await store.get(KEY)).toBeUndefined();
  });

  it('undefined when the session ends during the change', async () => {
    const { clock, store } = setup();
    await store.create(KEY, appSession(clock.now()));
    const result = await updateLocked(
      store,
      KEY,
      async (current) => {
        await store.delete(KEY);
        return current;
      },
      clock,
    );
    expect(result).toBeUndefined();
    expect(await store.get(KEY)).toBeUndefined();
  });

  it('a lock held past 5 s → StoreUnavailableError', async () => {
    const { clock, store } = setup();
    await store.create(KEY, appSession(clock.now()));
    await store.lock(KEY, 20_000);
    const caught = rejectionOf(updateLocked(store, KEY, (s) => s, clock));
    await clock.advance(5_100);
    expect(await caught).toBeInstanceOf(StoreUnavailableError);
  });
});
