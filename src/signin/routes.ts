/**
 * ers-bridge's own CIS2 sign-in, for legacy desktop clients that cannot run an OIDC flow:
 *
 *   GET /login?asid=…[&return_to=…]  → starts the CIS2 authorization-code flow (PKCE, state, nonce, max_age)
 *   GET /login/callback              → completes it, exchanges the ID token at APIM, lists the user's e-RS roles
 *                                      (A030), and shows a one-time code to type into the legacy client (or
 *                                      redirects to a registered return_to with it: exact match, no open redirect)
 *
 * The code is single-use, short-lived and bound to the ASID; A001 with it creates the legacy session. A fastify
 * plugin; it reads the current runtime per request, so a rules reload applies at once.
 *
 * Defences (the numbers are the rules' `cis2.limits`, per client address as src/http/client-address.ts counts it):
 * - the sign-in is bound to the browser that started it (a cookie: src/signin/binding.ts); a callback without that
 *   browser's cookie gets the start-again page and consumes nothing;
 * - /login starts at most `loginsPerMinutePerAddress` sign-ins a minute per address (a token bucket in this
 *   process), beyond which it answers 429 with Retry-After;
 * - at most `pendingPerAddress` sign-ins in progress per address and `pendingPerAsid` per ASID (shared through Redis
 *   when sessions are: src/sessions/signin-slots.ts), beyond which /login answers 429 (the address's cap) or 503
 *   (the ASID's) with Retry-After; and the store of sign-ins in progress refuses when full rather than evict. So a
 *   flood of /login cannot push out the sign-ins people are completing.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Cis2Unavailable, type PendingSignIn } from '../auth/cis2-identity.js';
import { grantForIdToken } from '../auth/sign-in-grant.js';
import { StartRate } from '../http/address-limits.js';
import { clientAddress } from '../http/client-address.js';
import { PAGE_SECURITY_HEADERS, sendPage } from '../http/page.js';
import { knownFault } from '../pipeline/faults.js';
import { fromTrustedProxy } from '../runtime/listener.js';
import { grantTargetOf, type RuntimeHolder } from '../runtime/runtime.js';
import { EphemeralStoreFull } from '../sessions/ephemeral-store.js';
import { formatSignInCode, newSignInCode } from '../sessions/session.js';
import { StoreUnavailableError } from '../sessions/store.js';
import {
  bindingCookie,
  browserSecretOf,
  clearedBindingCookie,
  newBrowserSecret,
  pendingKey,
  secureBinding,
} from './binding.js';
import {
  busyPage,
  cancelledPage,
  codePage,
  expiredPage,
  problemPage,
  STYLE_CSS,
  signInsFullPage,
  tooManyInProgressPage,
  tooManyStartsPage,
  unavailablePage,
} from './pages.js';

/** How long a started sign-in may take before its callback is refused (and its browser cookie lives). */
export const PENDING_TTL_MS = 10 * 60 * 1000;

/** A sign-in in progress as /login keeps it: with the address and slot it counts against (released on take). */
interface StartedSignIn extends PendingSignIn {
  address?: string;
  slot?: string;
}

function retryAfter(reply: FastifyReply, ms: number): number {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  reply.header('retry-after', String(seconds));
  return seconds;
}

function one(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The sign-in surface: `/login`, `/login/callback`, `/login/style.css`. */
export async function signInPlugin(app: FastifyInstance, options: { holder: RuntimeHolder }): Promise<void> {
  const { holder } = options;
  // Per process, like the clock it runs on (the runtime's: tests move it by hand).
  const starts = new StartRate(holder.current.shared.clock);
  app.get('/login/style.css', async (_req, reply) =>
    reply
      .headers({ 'cache-control': 'public, max-age=3600', 'x-content-type-options': 'nosniff' })
      .type('text/css')
      .send(STYLE_CSS),
  );

  app.get('/login', async (req, reply) => {
    const rt = holder.current;
    const q = req.query as Record<string, unknown>;
    const asid = one(q['asid']);
    const returnTo = one(q['return_to']);
    if (!rt.cis2) {
      return sendPage(
        reply,
        404,
        problemPage('Sign-in is not available here', 'CIS2 sign-in is not set up for this e-RS environment.'),
      );
    }
    const caller = asid && /^\d{1,20}$/.test(asid) ? rt.callers.get(asid) : undefined;
    if (!asid || !caller || caller.config.accessMode !== 'user-restricted') {
      return sendPage(
        reply,
        400,
        problemPage(
          'Your referral system did not start this sign-in correctly',
          'The link must name a system (ASID) that ers-bridge lets users sign in for. Start the sign-in again from your referral system, or contact your IT service desk.',
        ),
      );
    }
    if (returnTo !== undefined && !rt.cis2.settings.returnTo.includes(returnTo)) {
      // Exact match only: anything else could send the code to a stranger.
      return sendPage(
        reply,
        400,
        problemPage(
          'Your referral system asked to return somewhere unknown',
          'The return address in this link is not registered with ers-bridge, so the sign-in was stopped to keep your code safe. Contact your IT service desk.',
        ),
      );
    }
    const limits = rt.cis2.settings.limits;
    const address = clientAddress(req, (a) => fromTrustedProxy(rt.listener, a));
    const wait = starts.take(address, limits.loginsPerMinutePerAddress);
    if (wait > 0) return sendPage(reply, 429, tooManyStartsPage(retryAfter(reply, wait), asid));
    try {
      const { url, state, pending } = await rt.cis2.begin(asid, returnTo);
      const slot = randomUUID();
      const claim = await rt.shared.signInSlots.claim({
        asid,
        address,
        slot,
        ttlMs: PENDING_TTL_MS,
        perAsid: limits.pendingPerAsid,
        perAddress: limits.pendingPerAddress,
      });
      if (!claim.ok) {
        req.log.warn({ asid, address, limit: claim.limit }, 'sign-in refused: too many sign-ins in progress');
        const seconds = retryAfter(reply, claim.retryAfterMs);
        return claim.limit === 'address'
          ? sendPage(reply, 429, tooManyInProgressPage(seconds, asid))
          : sendPage(reply, 503, signInsFullPage(seconds, asid));
      }
      const browser = newBrowserSecret();
      const started: StartedSignIn = { ...pending, address, slot };
      try {
        await rt.shared.pendingSignIns.put(pendingKey(state, browser), started, PENDING_TTL_MS);
      } catch (e) {
        await rt.shared.signInSlots.release(asid, address, slot).catch(() => undefined);
        throw e;
      }
      const secure = secureBinding(req, rt.cis2.settings.redirectUri);
      return reply
        .headers(PAGE_SECURITY_HEADERS)
        .header('set-cookie', bindingCookie(state, browser, secure, PENDING_TTL_MS / 1000))
        .redirect(url.href, 302);
    } catch (e) {
      if (e instanceof Cis2Unavailable) {
        req.log.warn({ err: { message: e.message } }, 'CIS2 unavailable at sign-in start');
        return sendPage(reply, 503, unavailablePage(asid));
      }
      if (e instanceof EphemeralStoreFull) {
        req.log.warn({ asid, max: e.max }, 'sign-in refused: the store of sign-ins in progress is full');
        return sendPage(reply, 503, signInsFullPage(retryAfter(reply, 60_000), asid));
      }
      if (e instanceof StoreUnavailableError) return sendPage(reply, 503, busyPage(asid));
      throw e;
    }
  });

  app.get('/login/callback', async (req, reply) => {
    const rt = holder.current;
    const q = new URLSearchParams(req.raw.url?.split('?')[1] ?? '');
    const state = q.get('state');
    if (!rt.cis2 || !state) return sendPage(reply, 400, expiredPage());
    const secure = secureBinding(req, rt.cis2.settings.redirectUri);
    const browser = browserSecretOf(req.headers.cookie, state, secure);
    if (!browser) {
      // Another browser, or one that lost the cookie (expired with the sign-in, or cleared): nothing is consumed,
      // so the browser that started this sign-in can still complete it. /login on another host name than the
      // callback's also ends here (the cookie is the host's).
      req.log.info('sign-in callback without the cookie of the browser that started it; refused');
      return sendPage(reply, 400, expiredPage());
    }
    let pending: StartedSignIn | undefined;
    try {
      pending = await rt.shared.pendingSignIns.take(pendingKey(state, browser));
    } catch (e) {
      if (e instanceof StoreUnavailableError) return sendPage(reply, 503, busyPage());
      throw e;
    }
    // Used or not, this sign-in's cookie has served.
    reply.header('set-cookie', clearedBindingCookie(state, secure));
    if (!pending) return sendPage(reply, 400, expiredPage());
    if (pending.slot !== undefined && pending.address !== undefined) {
      await rt.shared.signInSlots.release(pending.asid, pending.address, pending.slot).catch(() => undefined);
    }
    if (q.has('error')) {
      const error = q.get('error');
      req.log.info({ error, asid: pending.asid }, 'CIS2 sign-in not completed');
      if (error === 'access_denied' || error === 'login_required' || error === 'consent_required') {
        return sendPage(reply, 200, cancelledPage(pending.asid));
      }
      return sendPage(
        reply,
        502,
        problemPage('CIS2 could not sign you in', 'CIS2 reported a problem with this sign-in.', pending.asid),
      );
    }
    const caller = rt.callers.get(pending.asid);
    if (!caller) return sendPage(reply, 400, expiredPage());
    try {
      const { idToken, identity } = await rt.cis2.complete(q, state, pending);
      const grant = await grantForIdToken(grantTargetOf(rt, caller), idToken, identity, randomUUID());
      const code = newSignInCode();
      const ttl = rt.cis2.settings.signInCodeTtlSeconds;
      await rt.shared.signInCodes.put(code, grant, ttl * 1000);
      req.log.info(
        { asid: pending.asid, roles: grant.permissions.length },
        'CIS2 sign-in completed; one-time code issued',
      );
      if (pending.returnTo) {
        const back = new URL(pending.returnTo);
        back.searchParams.set('code', formatSignInCode(code));
        return reply.headers(PAGE_SECURITY_HEADERS).redirect(back.href, 303);
      }
      const who = `${grant.user.firstName} ${grant.user.lastName}`.trim() || grant.user.identifier;
      return sendPage(reply, 200, codePage(formatSignInCode(code), pending.asid, Math.round(ttl / 60), who));
    } catch (e) {
      if (e instanceof Cis2Unavailable) return sendPage(reply, 503, unavailablePage(pending.asid));
      if (e instanceof StoreUnavailableError) return sendPage(reply, 503, busyPage(pending.asid));
      const known = knownFault(e, { asid: pending.asid });
      if (!known) throw e;
      const title =
        known.reason === 'ASSURANCE_TOO_LOW'
          ? 'Your sign-in is not strong enough for e-RS'
          : known.reason === 'NO_ERS_ROLES'
            ? 'You have no e-RS role'
            : known.reason === 'TOKEN_ENDPOINT_UNAVAILABLE' || known.reason === 'CIS2_UNAVAILABLE'
              ? 'e-RS sign-in is not available'
              : 'We could not sign you in to e-RS';
      req.log.warn({ reason: known.reason, asid: pending.asid }, 'CIS2 sign-in refused');
      return sendPage(reply, known.status >= 500 ? 503 : 403, problemPage(title, known.diagnostics, pending.asid));
    }
  });
}
