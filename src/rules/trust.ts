/**
 * Explicit trust: what a rules file must say before ers-bridge may listen where others can reach it. An ASID is a
 * header, not a credential; HSCN itself required each system's Spine endpoint certificate. So outside loopback every
 * application-restricted ASID (whose calls ers-bridge signs with the APIM application's key) needs a certificate
 * binding or an A001 secret — or a written reason why the network alone is trusted — and the legacy port answers
 * only the Host names it is given. Checked when rules load, and again by `serve` for the address it really binds.
 */
import { sendsToLegacyHost } from './modes.js';
import type { Rules } from './schema.js';

export interface TrustProblem {
  /** The field, as a path into the rules file. */
  path: Array<string | number>;
  message: string;
}

/** Addresses only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Whether any client certificate can reach ers-bridge's checks: its own TLS asks for one, or a trusted proxy forwards it. */
function certificatesCanArrive(rules: Rules): boolean {
  return (rules.server.tls?.clientCertificates ?? 'off') !== 'off' || rules.server.trustedProxies !== undefined;
}

/** The problems with these rules if ers-bridge listens on `listenHost`; none means they may be served there. */
export function trustProblems(rules: Rules, listenHost: string = rules.server.host): TrustProblem[] {
  const problems: TrustProblem[] = [];
  const exposed = !isLoopbackHost(listenHost);
  const tls = rules.server.tls;
  if (tls && tls.clientCertificates !== 'off' && !tls.clientCa) {
    problems.push({
      path: ['server', 'tls', 'clientCa'],
      message: `expected clientCa (the CA certificates client certificates must chain to) because clientCertificates is ${tls.clientCertificates}`,
    });
  }
  if (exposed && !rules.server.allowedHosts && !rules.legacy.publicBaseUrl) {
    problems.push({
      path: ['server', 'allowedHosts'],
      message: `expected allowedHosts (or legacy.publicBaseUrl) because ers-bridge listens on ${listenHost}, not loopback: it answers only the Host names it is given`,
    });
  }
  for (const [asid, cfg] of Object.entries(rules.asids)) {
    const auth = cfg.callerAuth;
    const path = ['asids', asid, 'callerAuth'];
    const secret = cfg.accessMode === 'application-restricted' ? cfg.callerAuth?.a001Secret : undefined;
    if (auth?.networkOnly && (auth.certificates || secret)) {
      problems.push({ path, message: 'expected networkOnly alone: it says no caller authentication is wanted' });
    }
    if (auth?.certificates && !certificatesCanArrive(rules)) {
      problems.push({
        path: [...path, 'certificates'],
        message:
          'expected server.tls with clientCertificates required or optional, or server.trustedProxies: without either no client certificate ever arrives, so this ASID could never be used',
      });
    }
    if (secret !== undefined && sendsToLegacyHost(rules.modes)) {
      problems.push({
        path: [...path, 'a001Secret'],
        message:
          'expected a certificate binding instead: the rules send calls to the legacy host (passthrough, shadow or canary), which needs the A001 token as the CIS1 ticket, and an A001 secret takes its place',
      });
    }
    const verified = auth?.certificates !== undefined || secret !== undefined || auth?.networkOnly !== undefined;
    if (exposed && rules.apim.auth === 'signed-jwt' && cfg.accessMode === 'application-restricted' && !verified) {
      problems.push({
        path,
        message: `expected a certificate binding (certificates), an A001 secret (a001Secret) or networkOnly with the reason: ers-bridge listens on ${listenHost}, and an ASID alone is no credential`,
      });
    }
  }
  return problems;
}
