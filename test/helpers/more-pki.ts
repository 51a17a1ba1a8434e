/**
 * A second throw-away PKI for the caller-authentication tests, made with the `openssl` CLI the way pki.ts makes its
 * own (RSA 2048, SHA-256, two days, in a temporary directory removed afterwards; nothing is committed). It has what
 * pki.ts cannot give, because pki.ts keeps no CA key: several client certificates from the SAME CA.
 *
 * - `ca`: the CA ers-bridge is told to trust for client certificates ("ers-bridge caller test CA");
 * - `server`, `server2`: two server certificates for 127.0.0.1 / localhost from `ca` (a reload swaps one for the other);
 * - `client`: CN {@link LEGACY_CLIENT_CN} from `ca` (the certificate the bound ASID accepts);
 * - `otherSystem`: CN {@link OTHER_SYSTEM_CN} from `ca` (a real system, but not this ASID's);
 * - `sanClient`: CN `box-17.internal`, SAN DNS:{@link LEGACY_CLIENT_CN}, from `ca` (matched by its SAN);
 * - `foreign`: CN {@link LEGACY_CLIENT_CN} — the same name — from another CA that nobody trusts;
 * - `expired`: CN {@link LEGACY_CLIENT_CN} from `ca`, already expired;
 * - `craftedO`, `craftedSlash`: from `ca`, with the bound name only inside the Organisation (`O=Evil, CN=…`,
 *   `O=Evil/CN=…`), which must never pass for a CN.
 *
 * Generated once per process and cached.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const LEGACY_CLIENT_CN = 'legacy-client.example.nhs.uk';
export const OTHER_SYSTEM_CN = 'other-system.example.nhs.uk';
export const SAN_CLIENT_CN = 'box-17.internal';
export const CRAFTED_CN = 'attacker.example.org';

/** A certificate and its key (PEM), with the SHA-256 fingerprint as `X509Certificate#fingerprint256` gives it. */
export interface Pair {
  cert: string;
  key: string;
  /** Upper-case hex pairs joined by colons. */
  sha256: string;
}

export interface CallerPki {
  caPem: string;
  otherCaPem: string;
  server: Pair;
  server2: Pair;
  client: Pair;
  otherSystem: Pair;
  sanClient: Pair;
  foreign: Pair;
  /** From `ca`: O="Evil, CN=<LEGACY_CLIENT_CN>", CN={@link CRAFTED_CN} — the bound name only inside another attribute. */
  craftedO: Pair;
  /** From `ca`: O="Evil/CN=<LEGACY_CLIENT_CN>" and no CN at all. */
  craftedSlash: Pair;
  /** From `ca`, CN {@link LEGACY_CLIENT_CN}, but expired (valid only the second it was made). */
  expired: Pair;
}

const CNF = `
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
[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ san_client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:${LEGACY_CLIENT_CN}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

const KEYS = [
  'ca',
  'other-ca',
  'server',
  'server2',
  'client',
  'other-system',
  'san-client',
  'foreign',
  'crafted-o',
  'crafted-slash',
  'expired',
] as const;

/** RSA 2048 keys (PKCS#8 PEM), made concurrently in a child Node process, as pki.ts does. */
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
  execFileSync(process.execPath, ['-e', script, JSON.stringify(KEYS)], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function serial(): string {
  const bytes = randomBytes(8);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return `0x${bytes.toString('hex')}`;
}

function selfSignedCa(dir: string, name: string, cn: string): void {
  openssl(dir, [
    'req',
    '-x509',
    '-config',
    'openssl.cnf',
    '-key',
    `${name}.key`,
    '-sha256',
    '-days',
    '2',
    '-set_serial',
    serial(),
    '-subj',
    `/CN=${cn}`,
    '-extensions',
    'ca_ext',
    '-out',
    `${name}.pem`,
  ]);
}

/** `<name>.pem` for `<name>.key`, signed by `<ca>`; `subject` is a CN, or a whole `-subj` when it starts with `/`. */
function issued(dir: string, ca: string, name: string, subject: string, extensions: string, days = '2'): void {
  const subj = subject.startsWith('/') ? subject : `/CN=${subject}`;
  openssl(dir, ['req', '-new', '-config', 'openssl.cnf', '-key', `${name}.key`, '-subj', subj, '-out', `${name}.csr`]);
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
    days,
    '-extfile',
    'openssl.cnf',
    '-extensions',
    extensions,
    '-out',
    `${name}.pem`,
  ]);
}

let cached: CallerPki | undefined;

/** The process's caller PKI, generated on first use. */
export function makeCallerPki(): CallerPki {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'ers-bridge-caller-pki-'));
  try {
    writeFileSync(join(dir, 'openssl.cnf'), CNF);
    generateKeys(dir);
    selfSignedCa(dir, 'ca', 'ers-bridge caller test CA');
    selfSignedCa(dir, 'other-ca', 'an untrusted CA');
    issued(dir, 'ca', 'server', '127.0.0.1', 'server_ext');
    issued(dir, 'ca', 'server2', '127.0.0.1', 'server_ext');
    issued(dir, 'ca', 'client', LEGACY_CLIENT_CN, 'client_ext');
    issued(dir, 'ca', 'other-system', OTHER_SYSTEM_CN, 'client_ext');
    issued(dir, 'ca', 'san-client', SAN_CLIENT_CN, 'san_client_ext');
    issued(dir, 'other-ca', 'foreign', LEGACY_CLIENT_CN, 'client_ext');
    issued(dir, 'ca', 'crafted-o', `/O=Evil, CN=${LEGACY_CLIENT_CN}/CN=${CRAFTED_CN}`, 'client_ext');
    issued(dir, 'ca', 'crafted-slash', `/O=Evil\\/CN=${LEGACY_CLIENT_CN}`, 'client_ext');
    // -days 0: valid until the second it was made, so expired by the time any test uses it
    issued(dir, 'ca', 'expired', LEGACY_CLIENT_CN, 'client_ext', '0');
    const read = (f: string) => readFileSync(join(dir, f), 'utf8');
    const pair = (name: string): Pair => {
      const cert = read(`${name}.pem`);
      return { cert, key: read(`${name}.key`), sha256: new X509Certificate(cert).fingerprint256 };
    };
    cached = {
      caPem: read('ca.pem'),
      otherCaPem: read('other-ca.pem'),
      server: pair('server'),
      server2: pair('server2'),
      client: pair('client'),
      otherSystem: pair('other-system'),
      sanClient: pair('san-client'),
      foreign: pair('foreign'),
      craftedO: pair('crafted-o'),
      craftedSlash: pair('crafted-slash'),
      expired: pair('expired'),
    };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
