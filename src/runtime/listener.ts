/**
 * What the legacy listener needs from a rules file, resolved: its TLS material and client-certificate policy, the
 * CA bundle client certificates must chain to, the proxies whose forwarded certificate is trusted, and the Host
 * names it answers. Built with each runtime, so a reload brings new certificates and names.
 */

import type { X509Certificate } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { certificatesOf } from '../auth/client-certificate.js';
import { RulesError } from '../rules/load.js';
import type { Rules } from '../rules/schema.js';
import type { SecretResolver } from '../rules/secrets.js';
import { isLoopbackHost } from '../rules/trust.js';
import { secret } from './process-state.js';

export type ClientCertificateMode = 'required' | 'optional' | 'off';

export interface ListenerSettings {
  tls?: {
    cert: string;
    key: string;
    ca?: string;
    minVersion: 'TLSv1.2' | 'TLSv1.3';
    clientCertificates: ClientCertificateMode;
  };
  /** The CAs client certificates (direct or forwarded) must chain to. */
  clientCas?: X509Certificate[];
  trustedProxies?: { addresses: BlockList; header: 'x-forwarded-client-cert' | 'ssl-client-cert' };
  /** Host values answered, lower-case, as `host` (any port) or `host:port`. */
  allowedHosts: ReadonlySet<string>;
  /** Loopback names are answered too (unless server.allowedHosts lists exactly what is answered). */
  loopbackHosts: boolean;
}

export async function buildListenerSettings(
  file: string,
  rules: Rules,
  resolve: SecretResolver,
): Promise<ListenerSettings> {
  const explicit = rules.server.allowedHosts;
  const hosts = explicit ?? (rules.legacy.publicBaseUrl ? [new URL(rules.legacy.publicBaseUrl).host] : []);
  const out: ListenerSettings = {
    allowedHosts: new Set(hosts.map((h) => h.toLowerCase())),
    loopbackHosts: explicit === undefined,
  };
  const tls = rules.server.tls;
  if (tls) {
    const cert = await secret(resolve, file, 'server.tls.certificate', tls.certificate);
    const key = await secret(resolve, file, 'server.tls.privateKey', tls.privateKey);
    const ca = tls.clientCa ? await secret(resolve, file, 'server.tls.clientCa', tls.clientCa) : undefined;
    out.tls = {
      cert,
      key,
      ...(ca ? { ca } : {}),
      minVersion: tls.minVersion,
      clientCertificates: tls.clientCertificates,
    };
    if (ca) out.clientCas = parseCas(file, ca);
  }
  const proxies = rules.server.trustedProxies;
  if (proxies?.clientCa) {
    const pem = await secret(resolve, file, 'server.trustedProxies.clientCa', proxies.clientCa);
    out.clientCas = [...(out.clientCas ?? []), ...parseCas(file, pem, 'server.trustedProxies.clientCa')];
  }
  if (proxies) {
    const list = new BlockList();
    proxies.addresses.forEach((a, i) => {
      addAddress(list, a, file, `server.trustedProxies.addresses[${i}]`);
    });
    out.trustedProxies = { addresses: list, header: proxies.clientCertificateHeader };
  }
  return out;
}

function parseCas(file: string, pem: string, path = 'server.tls.clientCa'): X509Certificate[] {
  let cas: X509Certificate[];
  try {
    cas = certificatesOf(pem);
  } catch {
    throw new RulesError(file, path, 'expected PEM CA certificates');
  }
  if (cas.length === 0) throw new RulesError(file, path, 'expected at least one PEM CA certificate');
  return cas;
}

function addAddress(list: BlockList, value: string, file: string, path: string): void {
  const parts = value.split('/');
  const [address, bits] = parts;
  const family = isIP(address ?? '');
  const maxBits = family === 6 ? 128 : 32;
  // One address, or one address and a prefix length the family allows (BlockList throws a RangeError beyond it).
  if (family === 0 || parts.length > 2 || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > maxBits))) {
    throw new RulesError(file, path, 'expected an IP address or a CIDR range such as 10.0.0.0/8');
  }
  const type = family === 6 ? 'ipv6' : 'ipv4';
  if (bits === undefined) list.addAddress(address!, type);
  else list.addSubnet(address!, Number(bits), type);
}

/**
 * Whether the legacy port answers this Host. Listed names match exactly (with their port, or any port when listed
 * without one). Unless server.allowedHosts lists them all, loopback names are answered too: they cannot be made to
 * point elsewhere (DNS rebinding), and the demo and tests call 127.0.0.1 on whatever port they got.
 */
export function hostAllowed(settings: ListenerSettings, host: string | undefined): boolean {
  if (!host || host.length > 300) return false;
  const h = host.toLowerCase();
  const name = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.replace(/:\d+$/, '');
  if (settings.allowedHosts.has(h) || settings.allowedHosts.has(name)) return true;
  return settings.loopbackHosts && isLoopbackHost(name);
}

/** Whether a TCP peer is one of the trusted proxies. */
export function fromTrustedProxy(settings: ListenerSettings, remoteAddress: string | undefined): boolean {
  const proxies = settings.trustedProxies;
  if (!proxies || !remoteAddress) return false;
  const addr = remoteAddress.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress;
  return proxies.addresses.check(addr, isIP(addr) === 6 ? 'ipv6' : 'ipv4');
}
