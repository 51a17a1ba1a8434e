/**
 * The token step for user-restricted sessions: the session's APIM access token, renewed with its refresh token
 * shortly before it expires, or at once when APIM has just refused it.
 *
 * Refresh tokens are single-use, so a session is renewed by one request at a time: one flight per session inside a
 * process, and across replicas a short store lock. Whoever does not get the lock waits for the holder's result.
 * The store is always read again first: a renewal that already happened is used, never repeated with the spent
 * refresh token. Before a refresh token is sent, the session is marked as spending it, and that mark is held by the
 * store's replicas (sessions.redis.acknowledgement): a renewal cut off by a restart or a failover leaves the mark,
 * and a marked session is ended, never renewed with a token that may be spent. When the refresh window has ended or a refresh fails, the session ends and the client is told to
 * sign in to CIS2 again.
 */
import { TokenUnavailableError } from '../auth/apim-oauth.js';
import type { ApimUserTokens } from '../auth/user-token.js';
import { LegacyError } from '../legacy/errors.js';
import type { Clock } from '../runtime/clock.js';
import { withSessionLock } from '../sessions/locking.js';
import { type Session, sessionKeyHash, sessionWith } from '../sessions/session.js';
import { type SessionStore, StoreUnavailableError } from '../sessions/store.js';

/** Renew this long before the access token expires (APIM issues them for 599 s). */
const RENEW_MARGIN_MS = 30_000;

/** How long a replica may hold a session's renewal lock (the refresh call itself times out sooner). */
const LOCK_MS = 20_000;
/** How long a request waits for another replica's renewal before giving up with a 503. */
const WAIT_MS = 15_000;
const POLL_MS = 50;

/** What the user token step works with: the store, this process's renewals in flight, and the clock. */
export interface UserTokenDeps {
  store: SessionStore;
  /** Renewals in flight in this process, by ASID and session (one at a time per session). */
  renewals: Map<string, Promise<string>>;
  clock: Clock;
}

/** The session whose token is wanted, and the APIM application that renews it. */
export interface UserTokenSubject {
  asid: string;
  userTokens: ApimUserTokens | undefined;
  key: string;
  session: Session;
}

function signInAgain(why: string): LegacyError {
  return new LegacyError(
    'SESSION_SIGN_IN_AGAIN',
    `${why} Sign in to CIS2 again (ers-bridge's /login page, or a fresh CIS2 ID token), create a new session with A001 and select a role with A002.`,
  );
}

/** The session's access token: the stored one while it is fresh (and not `rejected`), else a renewed one. */
export async function obtainUserToken(deps: UserTokenDeps, who: UserTokenSubject, rejected?: string): Promise<string> {
  const t = who.session.apim;
  if (!t) throw signInAgain('This session holds no APIM token.');
  if (rejected === undefined && deps.clock.now() < t.accessExpiresAt - RENEW_MARGIN_MS) return t.accessToken;
  const id = `${who.asid}|${sessionKeyHash(who.key)}`;
  const running = deps.renewals.get(id);
  if (running) return running;
  const bad = rejected ?? t.accessToken;
  const p = renewOnce(deps, who, bad).finally(() => deps.renewals.delete(id));
  deps.renewals.set(id, p);
  return p;
}

/** The stored token, when another request or replica has renewed it already. */
async function renewedMeanwhile(deps: UserTokenDeps, who: UserTokenSubject, bad: string): Promise<string | undefined> {
  const current = await deps.store.get(who.key, undefined, who.asid);
  if (!current?.apim) throw signInAgain('The session has ended.');
  const c = current.apim;
  return c.accessToken !== bad && deps.clock.now() < c.accessExpiresAt - RENEW_MARGIN_MS ? c.accessToken : undefined;
}

async function renewOnce(deps: UserTokenDeps, who: UserTokenSubject, bad: string): Promise<string> {
  const already = await renewedMeanwhile(deps, who, bad);
  if (already) return already;
  const wait = {
    lockMs: LOCK_MS,
    waitMs: WAIT_MS,
    pollMs: POLL_MS,
    clock: deps.clock,
    asid: who.asid,
    // Another replica is renewing this session: wait for its result rather than spend the token twice.
    whileWaiting: () => renewedMeanwhile(deps, who, bad),
    onTimeout: () =>
      new LegacyError(
        'TOKEN_ENDPOINT_UNAVAILABLE',
        "Renewing this session's APIM token is taking too long; try again shortly.",
        {
          headers: { 'retry-after': '5' },
        },
      ),
  };
  // The holder before us may have finished just now.
  return withSessionLock(
    deps.store,
    who.key,
    wait,
    async () => (await renewedMeanwhile(deps, who, bad)) ?? (await refresh(deps, who)),
  );
}

async function refresh(deps: UserTokenDeps, who: UserTokenSubject): Promise<string> {
  const { store } = deps;
  const current = await store.get(who.key, undefined, who.asid);
  if (!current?.apim) throw signInAgain('The session has ended.');
  const c = current.apim;
  if (deps.clock.now() >= c.refreshExpiresAt) {
    await store.delete(who.key, who.asid);
    throw signInAgain('The CIS2 sign-in behind this session has reached the end of its 12-hour refresh window.');
  }
  if (!who.userTokens) throw signInAgain('This ASID has no APIM application for user tokens.');
  if (c.refreshSpending) {
    // A renewal stopped half-way (a restart, a store failover): its refresh token may be spent. Never send it twice.
    await store.delete(who.key, who.asid);
    throw signInAgain(
      "This session's token renewal was cut off half-way, after its single-use refresh token may have been spent.",
    );
  }
  // The mark goes first, held by the store's replicas: after a failover a spent token is known to be spent.
  const marked = await store.updateHeld(who.key, sessionWith(current, { apim: { ...c, refreshSpending: true } }));
  if (marked === 'gone') throw signInAgain('The session ended while its token was being renewed.');
  if (marked === 'not-held') {
    // Not spent: the session stays as it was (best effort: the store may be down), and the client retries.
    await store.update(who.key, current).catch(() => undefined);
    throw new StoreUnavailableError("no replica held the session's renewal mark in time");
  }
  let fresh: Awaited<ReturnType<ApimUserTokens['refresh']>>;
  try {
    fresh = await who.userTokens.refresh(c.refreshToken);
  } catch (e) {
    // The refresh token never left ers-bridge: the session survives unmarked; the client may retry.
    if (e instanceof TokenUnavailableError && e.notSent) {
      await store.update(who.key, current).catch(() => undefined);
      throw e;
    }
    await store.delete(who.key, who.asid);
    throw signInAgain('APIM did not renew the access token of this session.');
  }
  const updated: Session = sessionWith(current, { apim: fresh });
  // Held: the renewed tokens replace the mark; were a failover to lose them, the session would end (sign in again).
  if (!(await store.update(who.key, updated, 'renewed-tokens')))
    throw signInAgain('The session ended while its token was being renewed.');
  return fresh.accessToken;
}
