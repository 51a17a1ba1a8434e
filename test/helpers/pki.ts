/**
 * A throw-away PKI for mutual-TLS tests, made with the `openssl` CLI in a temporary directory:
 *
 * - a test CA ("ers-bridge test CA");
 * - a server certificate for 127.0.0.1 (subjectAltName IP:127.0.0.1, DNS:localhost) signed by the CA;
 * - a client "Spine endpoint" certificate, CN `legacy-client.example.nhs.uk`, signed by the CA;
 * - a client certificate signed by a *different* CA (which the servers do not trust);
 * - a self-signed server certificate for 127.0.0.1 (which no client trusts).
 *
 * RSA 2048, SHA-256, valid for two days. Generated once per process and cached; nothing is committed.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  /** The CA the servers and clients trust. */
  caPem: string;
  /** Server certificate for 127.0.0.1 / localhost, signed by the CA. */
  serverCertPem: string;
  serverKeyPem: string;
  /** Client (Spine endpoint) certificate, CN {@link CLIENT_CERT_CN}, signed by the CA. */
  clientCertPem: string;
  clientKeyPem: string;
  /** Client certificate signed by a different CA (CN {@link OTHER_CLIENT_CERT_CN}). */
  otherClientCertPem: string;
  otherClientKeyPem: string;
  /** Self-signed server certificate for 127.0.0.1 / localhost that nobody trusts. */
  selfSignedCertPem: string;
  selfSignedKeyPem: string;
}

export const CLIENT_CERT_CN = 'legacy-client.example.nhs.uk';
const OTHER_CLIENT_CERT_CN = 'intruder.example.org';
const TEST_CA_CN = 'ers-bridge test CA';

const VALIDITY_DAYS = '2';

/** A self-contained config, so nothing depends on the system's openssl.cnf. */
const OPENSSL_CNF = `
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
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ self_signed_server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

let cached: TestPki | undefined;

const KEY_NAMES = ['ca', 'other-ca', 'server', 'client', 'other-client', 'self-signed'] as const;

/**
 * Writes `<name>.key` (RSA 2048, PKCS#8 PEM) for every certificate. RSA key generation is most of the cost, so the
 * keys are made concurrently on libuv's thread pool in a child Node process (this function stays synchronous).
 */
function generateKeys(dir: string): void {
  const script = `
    const { generateKeyPair } = require('node:crypto');
    const { writeFileSync } = require('node:fs');
    const names = JSON.parse(process.argv[1]);
    Promise.all(names.map((name) => new Promise((resolve, reject) =>
      generateKeyPair('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        publicKeyEncoding: { type: 'spki', format: 'pem' } }, (err, _pub, key) => {
        if (err) return reject(err);
        writeFileSync(name + '.key', key, { mode: 0o600 });
        resolve();
      })))).catch((err) => { console.error(err); process.exit(1); });
  `;
  execFileSync(process.execPath, ['-e', script, JSON.stringify(KEY_NAMES)], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function serial(): string {
  // A positive, non-zero 64-bit serial.
  const bytes = randomBytes(8);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return `0x${bytes.toString('hex')}`;
}

/** A self-signed certificate (`-x509`) for `<name>.key`: `<name>.pem`. */
function selfSigned(dir: string, name: string, cn: string, extensions: string): void {
  openssl(dir, [
    'req',
    '-x509',
    '-config',
    'openssl.cnf',
    '-key',
    `${name}.key`,
    '-sha256',
    '-days',
    VALIDITY_DAYS,
    '-set_serial',
    serial(),
    '-subj',
    `/CN=${cn}`,
    '-extensions',
    extensions,
    '-out',
    `${name}.pem`,
  ]);
}

/** A certificate for `<name>.key` signed by `<ca>.pem`/`<ca>.key`: `<name>.pem`. */
function issued(dir: string, ca: string, name: string, cn: string, extensions: string): void {
  openssl(dir, [
    'req',
    '-new',
    '-config',
    'openssl.cnf',
    '-key',
    `${name}.key`,
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
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-set_serial',
    serial(),
    '-sha256',
    '-days',
    VALIDITY_DAYS,
    '-extfile',
    'openssl.cnf',
    '-extensions',
    extensions,
    '-out',
    `${name}.pem`,
  ]);
}

function generate(dir: string): TestPki {
  writeFileSync(join(dir, 'openssl.cnf'), OPENSSL_CNF);
  generateKeys(dir);
  selfSigned(dir, 'ca', TEST_CA_CN, 'ca_ext');
  selfSigned(dir, 'other-ca', 'some other CA', 'ca_ext');
  issued(dir, 'ca', 'server', '127.0.0.1', 'server_ext');
  issued(dir, 'ca', 'client', CLIENT_CERT_CN, 'client_ext');
  issued(dir, 'other-ca', 'other-client', OTHER_CLIENT_CERT_CN, 'client_ext');
  selfSigned(dir, 'self-signed', '127.0.0.1', 'self_signed_server_ext');
  const read = (file: string) => readFileSync(join(dir, file), 'utf8');
  return {
    caPem: read('ca.pem'),
    serverCertPem: read('server.pem'),
    serverKeyPem: read('server.key'),
    clientCertPem: read('client.pem'),
    clientKeyPem: read('client.key'),
    otherClientCertPem: read('other-client.pem'),
    otherClientKeyPem: read('other-client.key'),
    selfSignedCertPem: read('self-signed.pem'),
    selfSignedKeyPem: read('self-signed.key'),
  };
}

const FILE_NAMES: Record<keyof TestPki, string> = {
  caPem: 'ca.pem',
  serverCertPem: 'server.pem',
  serverKeyPem: 'server.key',
  clientCertPem: 'client.pem',
  clientKeyPem: 'client.key',
  otherClientCertPem: 'other-client.pem',
  otherClientKeyPem: 'other-client.key',
  selfSignedCertPem: 'self-signed.pem',
  selfSignedKeyPem: 'self-signed.key',
};

/**
 * The process's test PKI, generated on first use. Without `dir` the work happens in a temporary directory that is
 * removed afterwards; with `dir` the PEM files (`ca.pem`, `server.pem`, `server.key`, `client.pem`, `client.key`,
 * `other-client.pem`, `other-client.key`, `self-signed.pem`, `self-signed.key`) are left there — also when the PKI
 * was already cached, in which case the cached PEMs are written to it.
 */
export function makeTestPki(dir?: string): TestPki {
  if (cached === undefined) {
    const work = mkdtempSync(join(tmpdir(), 'ers-bridge-pki-'));
    try {
      cached = generate(work);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  if (dir !== undefined) {
    mkdirSync(dir, { recursive: true });
    for (const [key, file] of Object.entries(FILE_NAMES) as Array<[keyof TestPki, string]>) {
      writeFileSync(join(dir, file), cached[key], { mode: 0o600 });
    }
  }
  return cached;
}
