/**
 * An APIM developer application for tests: an RSA key pair and an API key made at test time (an API secret too for
 * a user-restricted one), the app as the APIM stand-in registers it, the rules' `apim` block that refers to its
 * secrets, and the environment that holds them.
 *
 *   const app = await newApimApp();                    // 999000000001, application-restricted, kid test-1
 *   const standIn = await startApimStandIn({ apps: [app.standInApp] });
 *   const rules = rulesFor({ apim: { ... }, asids: { [app.asid]: { apim: app.apim } } });
 *   buildRuntime(file, rules, { resolveSecret: secretResolver(app.env) });
 */
import { generateKeyPair, type JsonWebKey, type KeyObject, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { AccessMode, StandInApp } from '../../src/apim-standin/index.js';
import { type ApimKeyRefs, keyEnvNames, keyRefs } from './rules.js';

/** An RSA signing key: the private half as a KeyObject and as PEM, the public half as the JWK APIM would fetch. */
export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  /** PKCS#8 PEM, what a rules file's `privateKey` secret holds. */
  privateKeyPem: string;
  publicJwk: JsonWebKey & { kid: string; use: 'sig' };
}

const generateRsa = promisify(generateKeyPair);

/** A fresh RSA 2048 key pair (made on libuv's thread pool, so several can be made at once). */
export async function newSigningKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateRsa('rsa', { modulusLength: 2048 });
  return {
    kid,
    privateKey,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, use: 'sig' },
  };
}

export interface ApimAppOptions {
  /** Default 999000000001. */
  asid?: string;
  /** Default application-restricted. */
  accessMode?: AccessMode;
  /** The kid the rules name; default test-1 (application-restricted) or user-1 (user-restricted). */
  kid?: string;
  /** Registers the public key at the stand-in under another kid (to provoke token refusals). */
  kidAtStandIn?: string;
  /** Default random. */
  apiKey?: string;
  /** Default random for a user-restricted app; none for an application-restricted one unless given. */
  apiSecret?: string;
  /** An existing key pair instead of a new one (its kid is used unless `kid` is given). */
  key?: SigningKey;
  /** Application-restricted attributes at the stand-in; default R69 and SERVICE_PROVIDER_CLINICIAN. */
  odsCode?: string;
  businessFunction?: string;
  /** The names of the secrets in `env`; default TEST (TEST_API_KEY, TEST_PRIVATE_KEY, TEST_API_SECRET). */
  envPrefix?: string;
}

export interface ApimApp {
  asid: string;
  accessMode: AccessMode;
  apiKey: string;
  apiSecret?: string;
  kid: string;
  privateKeyPem: string;
  key: SigningKey;
  /** The app as the APIM stand-in registers it. */
  standInApp: StandInApp;
  /** The rules' `apim` block of the ASID: env: references to the secrets in `env`. */
  apim: ApimKeyRefs;
  /** The secrets by environment variable name, for `secretResolver(env)` or a child process's environment. */
  env: Record<string, string>;
}

export async function newApimApp(options: ApimAppOptions = {}): Promise<ApimApp> {
  const accessMode = options.accessMode ?? 'application-restricted';
  const user = accessMode === 'user-restricted';
  const kid = options.kid ?? options.key?.kid ?? (user ? 'user-1' : 'test-1');
  const key = options.key ?? (await newSigningKey(kid));
  const asid = options.asid ?? '999000000001';
  const apiKey = options.apiKey ?? randomBytes(16).toString('hex');
  const apiSecret = options.apiSecret ?? (user ? randomBytes(16).toString('hex') : undefined);
  const jwk = { ...key.publicJwk, kid: options.kidAtStandIn ?? kid };
  const standInApp: StandInApp = {
    apiKey,
    asid,
    jwks: { keys: [jwk] },
    accessMode,
    ...(apiSecret !== undefined ? { apiSecret } : {}),
    ...(user
      ? {}
      : {
          odsCode: options.odsCode ?? 'R69',
          businessFunction: options.businessFunction ?? 'SERVICE_PROVIDER_CLINICIAN',
        }),
  };
  const names = keyEnvNames(options.envPrefix);
  const env: Record<string, string> = { [names.apiKey]: apiKey, [names.privateKey]: key.privateKeyPem };
  if (apiSecret !== undefined) env[names.apiSecret] = apiSecret;
  return {
    asid,
    accessMode,
    apiKey,
    ...(apiSecret !== undefined ? { apiSecret } : {}),
    kid,
    privateKeyPem: key.privateKeyPem,
    key,
    standInApp,
    apim: keyRefs({ ...(options.envPrefix ? { prefix: options.envPrefix } : {}), kid, withSecret: user }),
    env,
  };
}
