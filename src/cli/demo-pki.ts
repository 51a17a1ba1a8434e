/**
 * The demo's throw-away PKI for `ers-bridge demo --mtls`, made with the `openssl` command: a demo CA, a server
 * certificate for 127.0.0.1 / localhost, a client certificate for the demo ASID's system (its "Spine endpoint
 * certificate", CN {@link DEMO_CLIENT_FQDN}) and one for a system the ASID is not bound to. RSA 2048, SHA-256,
 * valid for 30 days. Written to a folder of the user's choosing; private keys readable by the owner only.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEMO_CLIENT_FQDN = 'demo-pas.example.nhs.uk';
export const DEMO_OTHER_FQDN = 'other-system.example.nhs.uk';

export interface DemoPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  client: string;
  clientKey: string;
  other: string;
  otherKey: string;
}

/** A config of its own, so nothing depends on the system's openssl.cnf. */
const CONFIG = `
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`;

export class DemoPkiError extends Error {}

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') {
      throw new DemoPkiError(
        'demo --mtls needs the openssl command to make its certificates (apt-get install openssl)',
      );
    }
    throw new DemoPkiError(`openssl ${args[0]} failed: ${err.stderr?.toString().trim().split('\n')[0] ?? err.message}`);
  }
}

/** One certificate signed by the demo CA: `<name>.pem` and `<name>-key.pem`. */
function signed(dir: string, name: string, cn: string, extension: string): void {
  openssl(dir, ['genrsa', '-out', `${name}-key.pem`, '2048']);
  openssl(dir, [
    'req',
    '-new',
    '-config',
    'openssl.cnf',
    '-key',
    `${name}-key.pem`,
    '-subj',
    `/CN=${cn}`,
    '-out',
    `${name}.csr`,
  ]);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca-key.pem',
    '-CAcreateserial',
    '-days',
    '30',
    '-sha256',
    '-extfile',
    'openssl.cnf',
    '-extensions',
    extension,
    '-out',
    `${name}.pem`,
  ]);
  chmodSync(join(dir, `${name}-key.pem`), 0o600);
}

/** Makes the demo PKI in `dir` (created if needed), replacing any earlier one. */
export function makeDemoPki(dir: string): DemoPki {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'openssl.cnf'), CONFIG);
  openssl(dir, ['genrsa', '-out', 'ca-key.pem', '2048']);
  chmodSync(join(dir, 'ca-key.pem'), 0o600);
  openssl(dir, [
    'req',
    '-new',
    '-x509',
    '-config',
    'openssl.cnf',
    '-key',
    'ca-key.pem',
    '-subj',
    '/CN=ers-bridge demo CA',
    '-days',
    '30',
    '-sha256',
    '-extensions',
    'ca_ext',
    '-out',
    'ca.pem',
  ]);
  signed(dir, 'server', 'localhost', 'server_ext');
  signed(dir, 'client', DEMO_CLIENT_FQDN, 'client_ext');
  signed(dir, 'other', DEMO_OTHER_FQDN, 'client_ext');
  const at = (f: string) => join(dir, f);
  return {
    dir,
    ca: at('ca.pem'),
    serverCert: at('server.pem'),
    serverKey: at('server-key.pem'),
    client: at('client.pem'),
    clientKey: at('client-key.pem'),
    other: at('other.pem'),
    otherKey: at('other-key.pem'),
  };
}
