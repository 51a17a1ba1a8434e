/**
 * Harness for user-restricted (CIS2) tests: the CIS2 stand-in (oidc-provider), the APIM stand-in with token
 * exchange, refresh and per-user roles, and ers-bridge with a user-restricted ASID — all on loopback, keys and
 * secrets generated at test time.
 */
import type { Logger } from 'pino';
import { Metrics } from '../../src/admin/metrics.js';
import { type ApimStandIn, type StandInOptions, startApimStandIn } from '../../src/apim-standin/index.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime, type Runtime } from '../../src/runtime/runtime.js';
import { newApimApp } from './apim-app.js';
import { type Cis2StandIn, type Cis2User, startCis2 } from './cis2.js';
import { type Harness, listenBridge } from './harness.js';
import { rulesFor } from './rules.js';

export const USER_ASID = '999000000010';
export const OTHER_USER_ASID = '999000000011';
/** Referring clinician at R68 and service provider clinician (and admin) at R69. */
export const CLINICIAN = '555000000101';
/** Identity verified only to IAL2: e-RS refuses it. */
export const IAL2_USER = '555000000102';
/** Signed in with an AAL1 method: e-RS refuses it. */
export const AAL1_USER = '555000000103';
export const RETURN_TO = 'http://127.0.0.1:1/legacy-client/signed-in';

const CIS2_USERS: Record<string, Cis2User> = {
  [CLINICIAN]: { given_name: 'Alex', family_name: 'Example', id_assurance_level: 3, authentication_assurance_level: 3 },
  [IAL2_USER]: { given_name: 'Ira', family_name: 'Lowe', id_assurance_level: 2, authentication_assurance_level: 3 },
  [AAL1_USER]: { given_name: 'Al', family_name: 'One', id_assurance_level: 3, authentication_assurance_level: 1 },
};

export interface UserHarness extends Harness {
  cis2: Cis2StandIn;
  runtime: Runtime;
}

export interface UserHarnessOptions {
  now?: () => number;
  /** The APIM stand-in's clock (default Date.now). */
  standInNow?: () => number;
  refreshWindowSeconds?: number;
  accessTokenTtlSeconds?: number;
  /** Stand-in options besides the harness's: operations it has retired, scripted e-RS errors. */
  standIn?: Pick<StandInOptions, 'retire' | 'failWith'>;
  /** Rules besides the harness's `apim` block (e.g. `{ successors: { A021: 'gone' } }`). */
  apim?: Record<string, unknown>;
  /** Rules besides the harness's `sessions` block (e.g. a Redis store), with the secrets they reference. */
  sessions?: Record<string, unknown>;
  env?: Record<string, string>;
  /** Where the runtime logs (default: nowhere). */
  logger?: Logger;
}

export async function startUserHarness(options: UserHarnessOptions = {}): Promise<UserHarness> {
  const cis2 = await startCis2(CIS2_USERS);
  const app = await newApimApp({ asid: USER_ASID, accessMode: 'user-restricted' });
  const standIn: ApimStandIn = await startApimStandIn({
    apps: [app.standInApp],
    cis2: { issuer: cis2.issuer, jwks: cis2.jwks as never },
    users: {
      [CLINICIAN]: {
        roles: [
          { odsCode: 'R68', orgName: 'REFERRING PRACTICE', businessFunctions: ['REFERRING_CLINICIAN'] },
          {
            odsCode: 'R69',
            orgName: 'PROVIDER TRUST',
            businessFunctions: ['SERVICE_PROVIDER_CLINICIAN', 'SERVICE_PROVIDER_CLINICIAN_ADMIN'],
          },
        ],
      },
    },
    ...(options.refreshWindowSeconds !== undefined ? { refreshWindowSeconds: options.refreshWindowSeconds } : {}),
    ...(options.accessTokenTtlSeconds !== undefined ? { accessTokenTtlSeconds: options.accessTokenTtlSeconds } : {}),
    ...(options.standInNow ? { clock: options.standInNow } : {}),
    ...options.standIn,
  });
  const rules = rulesFor({
    file: 'test-users.yaml',
    environment: 'test-users',
    apim: { baseUrl: standIn.baseUrl, tokenUrl: standIn.tokenUrl, ...options.apim },
    cis2: {
      issuer: cis2.issuer,
      clientId: cis2.clientId,
      clientAuth: { method: 'client_secret_post', secret: 'env:CIS2_SECRET' },
      redirectUri: 'http://127.0.0.1:1/login/callback',
      returnTo: [RETURN_TO],
      organisationNames: { R68: 'REFERRING PRACTICE', R69: 'PROVIDER TRUST' },
    },
    sessions: { idleTimeoutSeconds: 86400, absoluteTimeoutSeconds: 172800, ...options.sessions },
    asids: {
      [USER_ASID]: { accessMode: 'user-restricted', apim: app.apim },
      [OTHER_USER_ASID]: { accessMode: 'user-restricted', apim: app.apim },
    },
  });
  const env = { CIS2_SECRET: cis2.clientSecret, ...app.env, ...options.env };
  const runtime = await buildRuntime('test-users.yaml', rules, {
    resolveSecret: secretResolver(env),
    tokenRetries: 1,
    tokenBackoffMs: 20,
    // The process's metrics, served on the harness's ops port (user token exchanges and refreshes are counted there).
    metrics: new Metrics({ processMetrics: false }),
    ...(options.now ? { now: options.now } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    // A store chosen here is not overridden by ERS_BRIDGE_SESSION_STORE from the test run's environment.
    ...(options.sessions ? { env: {} } : {}),
  });
  const bridge = await listenBridge(runtime);
  const address = bridge.bridgeUrl;
  // The callback URL is known only now: register it with "CIS2" and in the rules.
  rules.cis2!.redirectUri = `${address}/login/callback`;
  cis2.setRedirectUri(rules.cis2!.redirectUri);
  return {
    ...bridge,
    cis2,
    standIn,
    runtime,
    secrets: { apiKey: app.apiKey, privateKeyPem: app.privateKeyPem },
    env,
    async close() {
      await bridge.close();
      await standIn.close();
      await cis2.close();
    },
  };
}
