/**
 * The stand-ins as the CLI starts them: the demo's CIS2 stand-in for a rules file's `cis2` block, the APIM stand-in's
 * CIS2 settings from `emulate-apim --cis2-issuer/--cis2-jwks`, its TLS from `--cert/--key`, and where `emulate-apim`
 * listens by default.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { StandInCis2Options, StandInTls, StandInUser } from '../apim-standin/index.js';
import { publicJwkFromPrivatePem } from '../auth/keys.js';
import {
  apimUsersOf,
  type Cis2StandIn,
  type Cis2StandInClientAuth,
  DEMO_CIS2_USER,
  startCis2StandIn,
} from '../cis2-standin/index.js';
import { RulesError } from '../rules/load.js';
import type { Rules } from '../rules/schema.js';
import { secretResolver } from '../rules/secrets.js';

/** Thrown for a bad command-line value; the CLI turns it into its usage error (exit 2). */
export class StandInUsageError extends Error {}

/** The APIM stand-in's CIS2 users: the CIS2 stand-in's test user, with the roles A030 answers. */
export function standInUsers(): Record<string, StandInUser> {
  return apimUsersOf([DEMO_CIS2_USER]);
}

/**
 * The secrets rules/local.yaml's user-restricted ASID and CIS2 client reference, fresh for this run (the demo hands
 * them over in memory, as it does the application-restricted ASID's).
 */
export function demoUserSecrets(): Record<string, string> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ERS_DEMO_USER_API_KEY: randomBytes(16).toString('hex'),
    ERS_DEMO_USER_API_SECRET: randomBytes(24).toString('base64url'),
    ERS_DEMO_USER_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    ERS_DEMO_CIS2_SECRET: randomBytes(24).toString('base64url'),
  };
}

/** The port the rules' CIS2 issuer names (the demo's CIS2 stand-in listens there by default), else 9001. */
export function cis2PortOf(rules: Rules): number {
  const port = rules.cis2 ? new URL(rules.cis2.issuer).port : '';
  return port ? Number(port) : 9001;
}

/**
 * The demo's CIS2 stand-in, on loopback, with ers-bridge registered as the rules' `cis2` client (its client
 * authentication resolved from `env`) and the test user; the rules' issuer is pointed at where it really listens.
 * The redirect URI is the rules' until `registerCallback` is called with the one ers-bridge really listens on.
 */
export async function startDemoCis2(
  file: string,
  settings: NonNullable<Rules['cis2']>,
  env: NodeJS.ProcessEnv,
  port: number,
): Promise<Cis2StandIn> {
  const resolve = secretResolver(env);
  const auth = settings.clientAuth;
  let clientAuth: Cis2StandInClientAuth;
  try {
    clientAuth =
      auth.method === 'private_key_jwt'
        ? { method: auth.method, jwks: { keys: [publicJwkFromPrivatePem(await resolve(auth.privateKey), auth.keyId)] } }
        : { method: auth.method, secret: await resolve(auth.secret) };
  } catch (e) {
    throw new RulesError(file, 'cis2.clientAuth', (e as Error).message);
  }
  const cis2 = await startCis2StandIn({
    host: '127.0.0.1',
    port,
    clients: [{ clientId: settings.clientId, redirectUris: [settings.redirectUri], auth: clientAuth }],
    users: [DEMO_CIS2_USER],
  });
  settings.issuer = cis2.issuer;
  return cis2;
}

/** What the demo prints about signing in as a CIS2 user: the stand-in, the sign-in page, an ID token for scripts. */
export function demoCis2Lines(rules: Rules, cis2: Cis2StandIn, bridgeAddress: string): string[] {
  const asid = Object.entries(rules.asids).find(([, a]) => a.accessMode === 'user-restricted')?.[0];
  const user = DEMO_CIS2_USER;
  return [
    `CIS2 stand-in: ${cis2.origin}  (issuer ${cis2.issuer}; test user ${user.givenName} ${user.familyName}, ${user.sub}, IAL${user.idAssuranceLevel}/AAL${user.authenticationAssuranceLevel})`,
    ...(asid
      ? [
          `CIS2 users:    ${bridgeAddress}/login?asid=${asid}  (user-restricted demo ASID ${asid}: sign in in a browser, type the code as the A001 token)`,
          `               or, in a script, A001 with an ID token: TOKEN=$(curl -s ${cis2.demoIdTokenUrl})`,
        ]
      : []),
  ];
}

/** Points the rules' CIS2 callback, and the client registered with the CIS2 stand-in, at ers-bridge's address. */
export function registerCallback(rules: Rules, cis2: Cis2StandIn, bridgeAddress: string): void {
  if (!rules.cis2) return;
  rules.cis2.redirectUri = `${bridgeAddress}/login/callback`;
  cis2.setRedirectUris(rules.cis2.clientId, [rules.cis2.redirectUri]);
}

/** The APIM stand-in's CIS2 settings for a CIS2 stand-in: its issuer, keys through its discovery document. */
export function standInCis2For(cis2: Pick<Cis2StandIn, 'issuer'>): StandInCis2Options {
  return { issuer: cis2.issuer, discoveryUri: `${cis2.issuer}/.well-known/openid-configuration` };
}

/**
 * `emulate-apim --cis2-issuer <url> [--cis2-jwks <url|file>]`: the issuer whose ID tokens token exchange accepts, and
 * its keys — from the issuer's discovery document, a JWKS URL, or a JWKS file. Undefined without --cis2-issuer.
 */
export function cis2OptionsFrom(issuer: string | undefined, jwks: string | undefined): StandInCis2Options | undefined {
  if (issuer === undefined) {
    if (jwks !== undefined) {
      throw new StandInUsageError(
        'emulate-apim: --cis2-jwks needs --cis2-issuer (the issuer ID tokens must name as iss)',
      );
    }
    return undefined;
  }
  if (!/^https?:\/\//.test(issuer) || !URL.canParse(issuer)) {
    throw new StandInUsageError(`emulate-apim: --cis2-issuer: expected an http(s) URL, got ${issuer}`);
  }
  if (jwks === undefined)
    return { issuer, discoveryUri: `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration` };
  if (/^https?:\/\//.test(jwks) && URL.canParse(jwks)) return { issuer, jwksUri: jwks };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(jwks, 'utf8'));
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? 'not JSON';
    throw new StandInUsageError(`emulate-apim: --cis2-jwks: cannot read ${jwks} as a URL or a JSON file (${why})`);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new StandInUsageError(`emulate-apim: --cis2-jwks: ${jwks} is not a JWKS ({"keys": [...]})`);
  }
  return { issuer, jwks: { keys } };
}

/**
 * Where `emulate-apim` serves a rules file by default: the port of the token URL (client assertions are addressed to
 * the token URL, so that is the address that must be right), else of the base URL, else 9000; and the rules' paths.
 */
export function standInLayoutFor(rules: Rules): { port: number; tokenUrlPath?: string; basePath: string } {
  const token = rules.apim.tokenUrl ? new URL(rules.apim.tokenUrl) : undefined;
  const base = new URL(rules.apim.baseUrl);
  const port = token ? token.port : base.port;
  return {
    port: port ? Number(port) : 9000,
    ...(token ? { tokenUrlPath: token.pathname } : {}),
    basePath: base.pathname.replace(/\/+$/, ''),
  };
}

/**
 * `emulate-apim --cert/--key`: the stand-in's TLS certificate (PEM chain) and key, each a file or `env:NAME` (an
 * environment variable holding the PEM, as the Docker Compose trial passes them from deploy/.env). Both or neither.
 */
export function standInTlsFrom(
  cert: string | undefined,
  key: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): StandInTls | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined)
    throw new StandInUsageError('emulate-apim: --cert and --key go together');
  const read = (value: string, flag: string) => {
    if (value.startsWith('env:')) {
      const pem = env[value.slice(4)];
      if (!pem)
        throw new StandInUsageError(
          `emulate-apim: ${flag} ${value}: environment variable ${value.slice(4)} is not set`,
        );
      return pem;
    }
    try {
      return readFileSync(value, 'utf8');
    } catch (e) {
      throw new StandInUsageError(
        `emulate-apim: ${flag}: cannot read ${value} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  };
  return { cert: read(cert, '--cert'), key: read(key, '--key') };
}
