/**
 * Work on a session under its store lock, so that concurrent writers on different replicas (A002 selecting a role,
 * a token renewal, opening the legacy session) never overwrite each other's changes, e.g. put back a spent refresh
 * token. One lock-and-poll loop serves them all.
 */
import { type Clock, systemClock } from '../runtime/clock.js';
import type { Session } from './session.js';
import { type HeldPurpose, type SessionStore, StoreUnavailableError } from './store.js';

export interface LockWait<T> {
  /** How long the lock is held at most (it expires by itself after that, should this replica die). */
  lockMs: number;
  /** How long to wait for another holder before giving up with `onTimeout()`. */
  waitMs: number;
  pollMs: number;
  clock?: Clock;
  /** Between tries: the other holder's result, when it makes our work unnecessary. */
  whileWaiting?: () => Promise<T | undefined>;
  onTimeout: () => Error;
  /** The session's ASID (a store on Redis Cluster locks, reads and writes a session under its ASID). */
  asid?: string;
}

/** Runs `work` while holding the session's lock, waiting (bounded) for another holder to let go. */
export async function withSessionLock<T>(
  store: SessionStore,
  key: string,
  wait: LockWait<T>,
  work: () => Promise<T>,
): Promise<T> {
  const clock = wait.clock ?? systemClock;
  const deadline = clock.now() + wait.waitMs;
  for (;;) {
    // The ASID only where there is one (the stores that ignore it are called as before).
    const release = await (wait.asid !== undefined
      ? store.lock(key, wait.lockMs, wait.asid)
      : store.lock(key, wait.lockMs));
    if (release) {
      try {
        return await work();
      } finally {
        await release();
      }
    }
    await clock.sleep(wait.pollMs);
    const theirs = await wait.whileWaiting?.();
    if (theirs !== undefined) return theirs;
    if (clock.now() > deadline) throw wait.onTimeout();
  }
}

/**
 * Reads the session afresh under its lock, lets `change` derive the new one, and writes it. Resolves with the
 * written session, or undefined when the session no longer exists. `asid`: the session's (see SessionStore).
 */
export function updateLocked(
  store: SessionStore,
  key: string,
  change: (current: Session) => Session | Promise<Session>,
  clock: Clock = systemClock,
  asid?: string,
  /** A write that should be on a replica before this resolves (SessionStore.update's `hold`). */
  hold?: HeldPurpose,
): Promise<Session | undefined> {
  const wait = {
    lockMs: 20_000,
    waitMs: 5_000,
    pollMs: 25,
    clock,
    onTimeout: () => new StoreUnavailableError('the session is busy (locked by another update)'),
    ...(asid !== undefined ? { asid } : {}),
  };
  return withSessionLock(store, key, wait, async () => {
    const current = await store.get(key, undefined, asid);
    if (!current) return undefined;
    const next = await change(current);
    return (await (hold ? store.update(key, next, hold) : store.update(key, next))) ? next : undefined;
  });
}
