/**
 * Who may ask the CIS2 stand-in for an ID token without signing in (`GET /demo/id-token`): only this machine. The
 * TCP peer must be a loopback address, and the Host header must name a loopback host, so that a web page the user
 * visits cannot read a token through a DNS name rebound to 127.0.0.1 (the browser would send that name as Host).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { isLoopbackHost } from '../rules/trust.js';

/** True for 127.0.0.0/8, ::1 and IPv4-mapped 127.x (`::ffff:127.0.0.1`); false for anything else or nothing. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.replace(/%.*$/, '').toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  const v4 = mapped ? mapped[1]! : a;
  if (isIPv4(v4)) return v4.split('.')[0] === '127';
  return isIPv6(a) && /^(0{0,4}:){7}0{0,3}1$|^::1$/.test(a);
}

/** True when a Host header value names a loopback host (127.x, [::1], localhost), with or without a port. */
export function isLoopbackHostHeader(host: string | undefined): boolean {
  // A name, an IPv4 address or a bracketed IPv6 address, and an optional port: nothing a URL parser could reinterpret.
  if (host === undefined || !/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host)) return false;
  let hostname: string;
  try {
    hostname = new URL(`http://${host}`).hostname;
  } catch {
    return false;
  }
  return isLoopbackHost(hostname);
}
