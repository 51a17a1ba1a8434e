/**
 * The client certificate a legacy system called with — its Spine endpoint certificate, as HSCN required — read from
 * ers-bridge's own TLS connection, or forwarded by a trusted TLS-terminating proxy (Envoy's
 * `X-Forwarded-Client-Cert`, ingress-nginx's `ssl-client-cert`). Only what identifies it is kept: the SHA-256
 * fingerprint, the subject CN, the SAN DNS names and the issuer, for matching and for telling a refused caller which
 * certificate was seen. Nothing here is secret.
 */

import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';

export interface PresentedCertificate {
  /** Where it came from: ers-bridge's own handshake, or a trusted proxy's header. */
  source: 'tls' | 'proxy';
  /** It chains to a configured CA (and is within its validity): only then can it identify a caller. */
  verified: boolean;
  /** Why it is not verified, when it is not (for the caller's diagnostics). */
  problem?: string;
  /** SHA-256 of the DER certificate, upper-case hex pairs separated by colons, as openssl prints it. */
  sha256: string;
  subjectCn: string | undefined;
  dnsNames: string[];
  issuer: string | undefined;
}

/** The canonical form of a SHA-256 fingerprint: upper-case hex pairs joined by colons. */
export function normaliseFingerprint(value: string): string {
  const hex = value
    .replace(/^sha256:/i, '')
    .replace(/[^0-9a-f]/gi, '')
    .toUpperCase();
  return hex.match(/.{2}/g)?.join(':') ?? '';
}

function dnsNamesOf(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  return subjectAltName
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
}

/**
 * The CN attribute of a certificate's subject or issuer, from OpenSSL's own parse — never by searching the printed
 * name, where another attribute's value may contain ", CN=" or "/CN=" (an O of "Evil, CN=<bound name>" must not
 * pass for that CN). None when absent or repeated.
 */
function cnOfCertificate(cert: X509Certificate, which: 'subject' | 'issuer'): string | undefined {
  let cn: unknown;
  try {
    cn = cert.toLegacyObject()[which]?.CN;
  } catch {
    return undefined;
  }
  return typeof cn === 'string' ? cn : undefined;
}

/**
 * The CN of an RFC 4514 distinguished name (Envoy's `Subject="CN=…,O=…"`): split at the unescaped `,` and `+` only,
 * escapes (`\,`, `\2C`) honoured, so a CN inside another attribute's value is never taken for one. None when absent
 * or repeated.
 */
export function cnOfDn(dn: string | undefined): string | undefined {
  if (!dn) return undefined;
  const attributes: string[] = [];
  let current = '';
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i]!;
    if (c === '\\' && i + 1 < dn.length) {
      current += c + dn[++i];
    } else if (c === ',' || c === '+') {
      attributes.push(current);
      current = '';
    } else current += c;
  }
  attributes.push(current);
  const cns = attributes
    .map((a) => {
      const eq = a.indexOf('=');
      return eq > 0 && a.slice(0, eq).trim().toUpperCase() === 'CN'
        ? unescapeDnValue(a.slice(eq + 1).trim())
        : undefined;
    })
    .filter((v): v is string => v !== undefined);
  return cns.length === 1 ? cns[0] : undefined;
}

/** An RFC 4514 attribute value with its escapes undone (`\,` → `,`; `\C3\A9` → é). */
function unescapeDnValue(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && /^[0-9A-Fa-f]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c === '\\' && i + 1 < value.length) {
      bytes.push(...Buffer.from(value[++i]!, 'utf8'));
    } else bytes.push(...Buffer.from(c, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The certificate of ers-bridge's own TLS connection; undefined when the client presented none. */
export function fromTlsPeer(
  peer: PeerCertificate | undefined,
  authorized: boolean,
  authorizationError: Error | string | null | undefined,
): PresentedCertificate | undefined {
  if (!peer?.raw || peer.raw.length === 0) return undefined;
  const problem = authorized ? undefined : String(authorizationError ?? 'not verified against the configured CA');
  return {
    source: 'tls',
    verified: authorized,
    ...(problem ? { problem } : {}),
    sha256: normaliseFingerprint(peer.fingerprint256),
    subjectCn: typeof peer.subject?.CN === 'string' ? peer.subject.CN.toLowerCase() : undefined,
    dnsNames: dnsNamesOf(peer.subjectaltname),
    issuer: typeof peer.issuer?.CN === 'string' ? peer.issuer.CN : undefined,
  };
}

/** Whether `cert` is issued by one of `cas` (signature and issuer name) and valid at `now`. */
function chainProblem(cert: X509Certificate, cas: readonly X509Certificate[], now: number): string | undefined {
  if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) return 'outside its validity period';
  const issuer = cas.find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
  return issuer ? undefined : 'not issued by a CA in server.tls.clientCa (or server.trustedProxies.clientCa)';
}

/**
 * A certificate a trusted proxy forwarded as PEM. The proxy verified it; when ers-bridge has a client CA bundle too
 * it checks the chain and the dates again, so a misconfigured proxy cannot widen what is accepted.
 */
export function fromForwardedPem(
  pem: string,
  cas: readonly X509Certificate[] | undefined,
  now: number,
): PresentedCertificate | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return undefined;
  }
  const problem = cas && cas.length > 0 ? chainProblem(cert, cas, now) : undefined;
  return {
    source: 'proxy',
    verified: problem === undefined,
    ...(problem ? { problem } : {}),
    sha256: normaliseFingerprint(cert.fingerprint256),
    subjectCn: cnOfCertificate(cert, 'subject')?.toLowerCase(),
    dnsNames: dnsNamesOf(cert.subjectAltName),
    issuer: cnOfCertificate(cert, 'issuer'),
  };
}

/**
 * One element of Envoy's `X-Forwarded-Client-Cert` (`By=…;Hash=…;Cert="…";Subject="…";DNS=…`), the one the proxy
 * nearest to ers-bridge appended (the last). Values may be quoted; Cert is the URL-encoded PEM.
 */
export function parseXfcc(value: string): { cert?: string; hash?: string; subject?: string; dns: string[] } {
  const elements = splitOutsideQuotes(value, ',');
  const last = elements.at(-1) ?? '';
  const out: { cert?: string; hash?: string; subject?: string; dns: string[] } = { dns: [] };
  for (const pair of splitOutsideQuotes(last, ';')) {
    const i = pair.indexOf('=');
    if (i <= 0) continue;
    const key = pair.slice(0, i).trim().toLowerCase();
    const raw = pair.slice(i + 1).trim();
    const v = raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1).replace(/\\"/g, '"') : raw;
    if (key === 'cert') out.cert = safeDecode(v);
    else if (key === 'hash') out.hash = v;
    else if (key === 'subject') out.subject = v;
    else if (key === 'dns') out.dns.push(v.toLowerCase());
  }
  return out;
}

/** The certificate in Envoy's header: from its PEM when forwarded (Cert), else from Hash, Subject and DNS. */
export function fromXfcc(
  value: string,
  cas: readonly X509Certificate[] | undefined,
  now: number,
): PresentedCertificate | undefined {
  const x = parseXfcc(value);
  if (x.cert) return fromForwardedPem(x.cert, cas, now);
  if (!x.hash || !/^[0-9a-f]{64}$/i.test(x.hash)) return undefined;
  return {
    source: 'proxy',
    // Without the certificate itself ers-bridge cannot check the chain: the proxy's verification is all there is.
    verified: !(cas && cas.length > 0),
    ...(cas && cas.length > 0
      ? { problem: 'the proxy forwarded no certificate (Cert) to check against clientCa' }
      : {}),
    sha256: normaliseFingerprint(x.hash),
    subjectCn: cnOfDn(x.subject)?.toLowerCase(),
    dnsNames: x.dns,
    issuer: undefined,
  };
}

/** ingress-nginx's `ssl-client-cert` (URL-encoded PEM), trusted only with `ssl-client-verify: SUCCESS`. */
export function fromNginx(
  cert: string,
  verify: string | undefined,
  cas: readonly X509Certificate[] | undefined,
  now: number,
): PresentedCertificate | undefined {
  const presented = fromForwardedPem(safeDecode(cert), cas, now);
  if (!presented) return undefined;
  if (verify?.trim().toUpperCase() === 'SUCCESS') return presented;
  return {
    ...presented,
    verified: false,
    problem: `the proxy did not verify it (ssl-client-verify: ${verify ?? 'absent'})`,
  };
}

/** The certificates of a PEM bundle (a CA chain). */
export function certificatesOf(bundle: string): X509Certificate[] {
  const blocks = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

function safeDecode(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

function splitOutsideQuotes(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && quoted && i + 1 < s.length) {
      cur += c + s[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === sep && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (cur !== '') out.push(cur);
  return out;
}
