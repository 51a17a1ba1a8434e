/**
 * Who is on the other end of a legacy call: the client certificate of ers-bridge's own TLS connection, or the one a
 * trusted TLS-terminating proxy verified and forwarded. Forwarded-certificate headers count only from the proxies
 * in `server.trustedProxies`; from anyone else they are dropped and ignored, and they never travel further (not to
 * APIM, not to the legacy host).
 */
import type { TLSSocket } from 'node:tls';
import { fromNginx, fromTlsPeer, fromXfcc, type PresentedCertificate } from '../auth/client-certificate.js';
import { fromTrustedProxy, type ListenerSettings } from '../runtime/listener.js';
import type { IncomingHeaders } from '../translation/request.js';

/** Headers proxies use to forward a client certificate and its verification (lower-case). */
const FORWARDED_CERTIFICATE = new Set([
  'x-forwarded-client-cert',
  'ssl-client-cert',
  'ssl-client-verify',
  'ssl-client-subject-dn',
  'ssl-client-issuer-dn',
  'ssl-client-escaped-cert',
]);

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/** The caller's certificate, if it presented one ers-bridge can see. Reads the headers before they are dropped. */
export function clientCertificateOf(
  settings: ListenerSettings,
  socket: TLSSocket | { encrypted?: undefined; remoteAddress?: string | undefined },
  headers: IncomingHeaders,
  now: number,
): PresentedCertificate | undefined {
  if (socket.encrypted && settings.tls && settings.tls.clientCertificates !== 'off') {
    const tls = socket as TLSSocket;
    const own = fromTlsPeer(tls.getPeerCertificate(), tls.authorized, tls.authorizationError);
    if (own) return own;
  }
  if (!settings.trustedProxies || !fromTrustedProxy(settings, socket.remoteAddress)) return undefined;
  const cas = settings.clientCas;
  if (settings.trustedProxies.header === 'x-forwarded-client-cert') {
    const xfcc = one(headers['x-forwarded-client-cert']);
    return xfcc ? fromXfcc(xfcc, cas, now) : undefined;
  }
  const cert = one(headers['ssl-client-cert']);
  return cert ? fromNginx(cert, one(headers['ssl-client-verify']), cas, now) : undefined;
}

/**
 * The request's headers without any forwarded-certificate header (removed in place), and its raw header list
 * likewise (a new list only when there was something to remove): passthrough forwards raw headers unchanged.
 */
export function dropForwardedCertificate(headers: IncomingHeaders, rawHeaders: readonly string[]): readonly string[] {
  let found = false;
  for (const name of FORWARDED_CERTIFICATE) {
    if (headers[name] !== undefined) {
      delete headers[name];
      found = true;
    }
  }
  if (!found) return rawHeaders;
  const kept: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (!FORWARDED_CERTIFICATE.has(rawHeaders[i]!.toLowerCase())) kept.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return kept;
}
