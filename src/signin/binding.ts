/**
 * Binds a sign-in to the browser that started it, so that a callback URL (CIS2's code and our state) is worth nothing
 * in any other browser: an attacker who reads it from a log, a history or a shoulder, or who starts a sign-in and
 * lures someone else through CIS2, cannot complete it.
 *
 * /login makes a random browser secret, sets it in a cookie, and keeps the pending sign-in under `state.secret`
 * (hashed, like every ephemeral key: src/sessions/ephemeral-store.ts). The callback reads the cookie and takes
 * `state.secret`: without the cookie, or with another one, there is no such record, so the callback is refused
 * and consumes nothing — the real browser can still complete its sign-in.
 *
 * One cookie per sign-in, named after its state (`ers-signin-<16 characters of sha256(state)>`), so that two sign-ins
 * started in two tabs of one browser both work; each is cleared by its callback and lives no longer than the
 * sign-in. The cookie is HttpOnly, SameSite=Lax (CIS2's redirect back is a top-level GET, which Lax allows), Path=/.
 *
 * Secure and the `__Host-` prefix (host-only, Path=/, Secure: no sibling host or plain-HTTP page can plant or
 * overwrite it) when the browser is on https: the request came over TLS, or the callback URL is https (TLS ended at
 * an ingress in front of ers-bridge). On plain HTTP — only ever loopback, the demo: the schema allows an http
 * callback on loopback only — it is a plain `ers-signin-…` cookie without Secure. Tested in Chromium 156 on
 * http://127.0.0.1: a `__Host-` cookie without Secure is refused; with Secure it is kept (loopback counts as a
 * potentially trustworthy origin), but a Secure cookie from plain HTTP is refused on any other host name, and
 * keeping one on loopback is a choice each browser makes (only Chromium is tested here). So the demo uses the plain
 * cookie, which every browser keeps; nothing but the machine itself sees loopback traffic. The callback reads only
 * the name of its own mode, so a plain cookie never stands in for a `__Host-` one.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { cameOverTls } from '../http/client-address.js';

const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** A new browser secret: 256 random bits, base64url. */
export function newBrowserSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** The key the pending sign-in is kept under: its state and the browser's secret together. */
export function pendingKey(state: string, browserSecret: string): string {
  return `${state}.${browserSecret}`;
}

/** Whether the browser is on https for this sign-in (see the file comment). */
export function secureBinding(req: FastifyRequest, redirectUri: string): boolean {
  return cameOverTls(req) || redirectUri.startsWith('https:');
}

/** The cookie's name for a sign-in's state. */
export function bindingCookieName(state: string, secure: boolean): string {
  const id = createHash('sha256').update(state).digest('base64url').slice(0, 16);
  return `${secure ? '__Host-' : ''}ers-signin-${id}`;
}

function attributes(maxAgeSeconds: number, secure: boolean): string {
  return `Max-Age=${maxAgeSeconds}; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/** The Set-Cookie value that binds the sign-in to this browser for `maxAgeSeconds`. */
export function bindingCookie(state: string, browserSecret: string, secure: boolean, maxAgeSeconds: number): string {
  return `${bindingCookieName(state, secure)}=${browserSecret}; ${attributes(maxAgeSeconds, secure)}`;
}

/** The Set-Cookie value that removes the sign-in's cookie. */
export function clearedBindingCookie(state: string, secure: boolean): string {
  return `${bindingCookieName(state, secure)}=; ${attributes(0, secure)}`;
}

/** The browser secret the Cookie header holds for the sign-in, or undefined (absent or not one we could have set). */
export function browserSecretOf(cookieHeader: string | undefined, state: string, secure: boolean): string | undefined {
  if (typeof cookieHeader !== 'string' || cookieHeader.length > 16_384) return undefined;
  const name = bindingCookieName(state, secure);
  for (const pair of cookieHeader.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
    const value = pair.slice(eq + 1).trim();
    if (SECRET_PATTERN.test(value)) return value;
  }
  return undefined;
}
