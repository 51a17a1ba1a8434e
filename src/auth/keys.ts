/**
 * Private keys for client assertions. APIM wants RS512 signatures; openid-client derives the JWS `alg` from the
 * CryptoKey, so keys are imported as RSASSA-PKCS1-v1_5 with SHA-512. PKCS#1 PEMs (`BEGIN RSA PRIVATE KEY`) are
 * converted to PKCS#8 first because WebCrypto only imports PKCS#8 (and `KeyObject.toCryptoKey` is absent on Node 20).
 */
import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject, webcrypto } from 'node:crypto';

export class KeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyError';
  }
}

/** Imports an RSA private key PEM as a non-extractable RS512 signing key. The message never includes key material. */
export async function importRs512PrivateKey(pem: string, what: string): Promise<webcrypto.CryptoKey> {
  return importRsaSigningKey(pem, what, 'SHA-512');
}

/**
 * The RSA private key in a PEM, checked as APIM needs it: RSA (PKCS#1 v1.5 signatures: not EC, EdDSA or RSA-PSS)
 * and at least 2048 bits. Throws KeyError naming `what` and the problem; the message never includes key material.
 */
export function rsaPrivateKeyFromPem(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new KeyError(`${what}: expected a PEM RSA private key (PKCS#8 or PKCS#1); it could not be parsed`);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new KeyError(`${what}: expected an RSA private key, got ${key.asymmetricKeyType ?? 'an unknown key type'}`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 2048) {
    throw new KeyError(`${what}: expected an RSA key of at least 2048 bits (4096 recommended), got ${bits}`);
  }
  return key;
}

/** Imports an RSA private key PEM for RS256 or RS512 signatures (the JWS alg follows the hash). */
export async function importRsaSigningKey(
  pem: string,
  what: string,
  hash: 'SHA-256' | 'SHA-512',
): Promise<webcrypto.CryptoKey> {
  const der = rsaPrivateKeyFromPem(pem, what).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, { name: 'RSASSA-PKCS1-v1_5', hash }, false, ['sign']);
}

/**
 * The public JWK for a private key PEM, as published in the JWKS registered with APIM. Refuses (KeyError) what
 * ers-bridge could not sign with: a key that is not RSA, or shorter than 2048 bits.
 */
export function publicJwkFromPrivatePem(
  pem: string,
  kid: string,
  what = 'private key',
): JsonWebKey & { kid: string; use: 'sig'; alg: 'RS512' } {
  const jwk = createPublicKey(rsaPrivateKeyFromPem(pem, what)).export({ format: 'jwk' });
  return { kty: jwk.kty, n: jwk.n, e: jwk.e, kid, use: 'sig', alg: 'RS512' };
}
