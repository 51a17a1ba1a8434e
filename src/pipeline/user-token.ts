/**
 * The token step for user-restricted sessions: the session's APIM access token, renewed with its refresh token
 * shortly before it expires, or at once when APIM has just refused it.
 *
 * Refresh tokens are single-use, so a session is renewed by one request at a time: one flight per session inside a
 * process, and across replicas a short store lock. Whoever does not get the lock waits for the holder's result.
 * The store is always read again first: a renewal that already happened is used, never repeated with the spent
 * refresh token. When the refresh window has ended or a refresh fails, the session ends and the client is told to
 * sign in to CIS2 again.
 */
import { TokenUnavailableError } from '../auth/apim-oauth.js';
import { LegacyError } from '../legacy/errors.js';
import type { AsidRuntime, Runtime } from '../runtime.js';
import { type Session, sessionKeyHash } from '../sessions/session.js';

/** Renew this long before the access token expires (APIM issues them for 599 s). */
const RENEW_MARGIN_MS = 30_000;

/** How long a replica may hold a session's renewal lock (the refresh call itself times out sooner). */
const LOCK_MS = 20_000;
/** How long a request waits for another replica's renewal before giving up with a 503. */
const WAIT_MS = 15_000;
const POLL_MS = 50;

function signInAgain(why: string): LegacyError {
  return new LegacyError(
    'SESSION_SIGN_IN_AGAIN',
    `${why} Sign in to CIS2 again (ers-bridge's /login page, or a fresh CIS2 ID token), create a new session with A001 and select a role with A002.`,
  );
}

export async function obtainUserToken(
  rt: Runtime,
  asid: AsidRuntime,
  key: string,
  session: Session,
  rejected?: string,
): Promise<string> {
  const t = session.apim;
  if (!t) throw signInAgain('This session holds no APIM token.');
  if (rejected === undefined && rt.now() < t.accessExpiresAt - RENEW_MARGIN_MS) return t.accessToken;
  const id = `${asid.asid}|${sessionKeyHash(key)}`;
  const running = rt.renewals.get(id);
  if (running) return running;
  const bad = rejected ?? t.accessToken;
  const p = renewOnce(rt, asid, key, bad).finally(() => rt.renewals.delete(id));
  rt.renewals.set(id, p);
  return p;
}

/** The stored token, when another request or replica has renewed it already. */
async function renewedMeanwhile(rt: Runtime, key: string, bad: string): Promise<string | undefined> {
  const current = await rt.store.get(key);
  if (!current?.apim) throw signInAgain('The session has ended.');
  const c = current.apim;
  return c.accessToken !== bad && rt.now() < c.accessExpiresAt - RENEW_MARGIN_MS ? c.accessToken : undefined;
}

async function renewOnce(rt: Runtime, asid: AsidRuntime, key: string, bad: string): Promise<string> {
  const already = await renewedMeanwhile(rt, key, bad);
  if (already) return already;
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const release = await rt.store.lock(key, LOCK_MS);
    if (release) {
      try {
        // The holder before us may have finished just now.
        return (await renewedMeanwhile(rt, key, bad)) ?? (await refresh(rt, asid, key));
      } finally {
        await release();
      }
    }
    // Another replica is renewing this session: wait for its result rather than spend the token twice.
    await new Promise((r) => setTimeout(r, POLL_MS));
    const theirs = await renewedMeanwhile(rt, key, bad);
    if (theirs) return theirs;
    if (Date.now() > deadline) {
      throw new LegacyError(
        'TOKEN_ENDPOINT_UNAVAILABLE',
        "Renewing this session's APIM token is taking too long; try again shortly.",
        { headers: { 'retry-after': '5' } },
      );
    }
  }
}

async function refresh(rt: Runtime, asid: AsidRuntime, key: string): Promise<string> {
  const current = await rt.store.get(key);
  if (!current?.apim) throw signInAgain('The session has ended.');
  const now = rt.now();
  const c = current.apim;
  if (now >= c.refreshExpiresAt) {
    await rt.store.delete(key);
    throw signInAgain('The CIS2 sign-in behind this session has reached the end of its 12-hour refresh window.');
  }
  if (!asid.userTokens) throw signInAgain('This ASID has no APIM application for user tokens.');
  let fresh: Awaited<ReturnType<typeof asid.userTokens.refresh>>;
  try {
    fresh = await asid.userTokens.refresh(c.refreshToken);
  } catch (e) {
    if (e instanceof TokenUnavailableError && e.notSent) {
      // The refresh token never left ers-bridge: the session survives; the client may retry.
      throw new LegacyError(
        'TOKEN_ENDPOINT_UNAVAILABLE',
        `APIM's token service could not be reached (${e.detail}); try again shortly.`,
        {
          headers: { 'retry-after': '5' },
        },
      );
    }
    await rt.store.delete(key);
    throw signInAgain('APIM did not renew the access token of this session.');
  }
  const updated: Session = { ...current, apim: fresh };
  if (!(await rt.store.update(key, updated))) throw signInAgain('The session ended while its token was being renewed.');
  return fresh.accessToken;
}
