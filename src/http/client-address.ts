/**
 * Who sent a request, for the limits kept per client address: sign-ins started and in progress (src/signin), failed
 * admin token attempts (src/admin).
 *
 * This is the one place that decides it: the TCP peer (fastify's `request.ip`; its `trustProxy` stays off), unless
 * the peer is one of the proxies in `server.trustedProxies` — then the nearest address in their X-Forwarded-For that
 * is not itself a trusted proxy. X-Forwarded-For from anyone else is never read: any client can send it.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { FastifyRequest } from 'fastify';

/** The client's address as the limits count it (see the file comment), grouped by addressKey. */
export function clientAddress(req: FastifyRequest, isTrustedProxy: (address: string) => boolean = () => false): string {
  const peer = req.socket.remoteAddress ?? req.ip;
  if (!isTrustedProxy(peer)) return addressKey(req.ip);
  const forwarded = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? ''))
    .split(',')
    .map((h) => h.trim())
    .filter((h) => isIPv4(h) || isIPv6(h));
  // The rightmost hop was added by the proxy nearest to ers-bridge; walk left past the proxies ers-bridge trusts.
  for (let i = hops.length - 1; i >= 0; i--) if (!isTrustedProxy(hops[i]!)) return addressKey(hops[i]!);
  return addressKey(req.ip);
}

/**
 * The key an address is counted under: an IPv4 address as it is (IPv4-mapped IPv6 too), an IPv6 address by its /64
 * (one user, or one site, usually has a whole /64 to pick addresses from), anything else as given.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  const bare = address.replace(/%.*$/, ''); // a zone id (fe80::1%eth0) says nothing about the sender
  if (!isIPv6(bare)) return address;
  const groups = expandIPv6(bare);
  return `${groups.slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, in lower-case hex without leading zeros. */
function expandIPv6(address: string): string[] {
  let text = address.toLowerCase();
  // A trailing dotted quad (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) is two groups.
  const quad = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const middle = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((g) => Number.parseInt(g, 16).toString(16));
}

/**
 * Whether the request reached ers-bridge over TLS (fastify's `request.protocol`: the socket, as long as `trustProxy`
 * is off). Behind a TLS-terminating proxy this is false; the sign-in cookie also looks at the callback URL's scheme.
 */
export function cameOverTls(req: FastifyRequest): boolean {
  return req.protocol === 'https';
}
