/**
 * Read-modify-write of a session under its store lock, so that concurrent writers on different replicas (A002
 * selecting a role, a token renewal) never overwrite each other's changes, e.g. put back a spent refresh token.
 */
import type { Session } from './session.js';
import { type SessionStore, StoreUnavailableError } from './store.js';

const LOCK_MS = 20_000;
const POLL_MS = 25;

/**
 * Takes the session's lock (waiting up to `waitMs` for another holder), reads the session afresh, lets `change`
 * derive the new one, writes it, and releases the lock. Resolves with the written session, or undefined when the
 * session no longer exists.
 */
export async function updateLocked(
  store: SessionStore,
  key: string,
  change: (current: Session) => Session | Promise<Session>,
  waitMs = 5_000,
): Promise<Session | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const release = await store.lock(key, LOCK_MS);
    if (release) {
      try {
        const current = await store.get(key);
        if (!current) return undefined;
        const next = await change(current);
        return (await store.update(key, next)) ? next : undefined;
      } finally {
        await release();
      }
    }
    if (Date.now() > deadline) throw new StoreUnavailableError('the session is busy (locked by another update)');
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
