/**
 * The token step for user-restricted sessions: the session's APIM access token, renewed with its refresh token
 * shortly before it expires, or at once when APIM has just refused it.
 *
 * Refresh tokens are single-use, so a session is renewed by one request at a time (an in-process single flight per
 * session), and the store is read again first: a renewal that already happened is used, never repeated with the
 * spent refresh token. When the refresh window has ended or a refresh fails, the session ends and the client is
 * told to sign in to CIS2 again.
 */
import { TokenUnavailableError } from '../auth/apim-oauth.js';
import { LegacyError } from '../legacy/errors.js';
import type { AsidRuntime, Runtime } from '../runtime.js';
import { type Session, sessionKeyHash } from '../sessions/session.js';

/** Renew this long before the access token expires (APIM issues them for 599 s). */
const RENEW_MARGIN_MS = 30_000;

const inFlight = new Map<string, Promise<string>>();

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
  const running = inFlight.get(id);
  if (running) return running;
  const bad = rejected ?? t.accessToken;
  const p = renew(rt, asid, key, bad).finally(() => inFlight.delete(id));
  inFlight.set(id, p);
  return p;
}

async function renew(rt: Runtime, asid: AsidRuntime, key: string, bad: string): Promise<string> {
  const current = await rt.store.get(key);
  if (!current?.apim) throw signInAgain('The session has ended.');
  const now = rt.now();
  const c = current.apim;
  // Renewed meanwhile (by another request, or another replica): use it.
  if (c.accessToken !== bad && now < c.accessExpiresAt - RENEW_MARGIN_MS) return c.accessToken;
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
