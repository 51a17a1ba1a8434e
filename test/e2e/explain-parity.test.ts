/**
 * `ers-bridge explain` refuses what the live path refuses: for each policy rule, the same call is run through the
 * live flow (runLegacyCall, with a real runtime and session) and through explain, and the two must agree on the
 * reason. Calls the policy allows go on to an upstream that refuses connections (port 9 on loopback), so they fail
 * later, for a reason that is no policy's.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain } from '../../src/cli/explain.js';
import { runLegacyCall } from '../../src/pipeline/flow.js';
import { parseRules } from '../../src/rules/load.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime, closeRuntime, type Runtime } from '../../src/runtime/runtime.js';
import { newSessionKey, type Session } from '../../src/sessions/session.js';

const LIMITED = '999000000101';
const OPEN = '999000000102';
const USER = '999000000103';
const NOWHERE = 'http://127.0.0.1:9';

const RULES = `
environment: parity
legacy: { host: api.int1.ers.ncrs.nhs.uk, baseUrl: "${NOWHERE}/ers-api" }
apim:
  baseUrl: ${NOWHERE}/referrals/FHIR
  tokenUrl: ${NOWHERE}/oauth2/token
  timeouts: { connectMs: 500, headersMs: 1000, bodyMs: 1000 }
cis2:
  issuer: ${NOWHERE}/cis2
  clientId: ers-bridge-parity
  clientAuth: { method: client_secret_post, secret: "env:API_SECRET" }
  redirectUri: http://127.0.0.1:8080/login/callback
modes:
  routes:
    A010: passthrough
asids:
  "${LIMITED}":
    accessMode: application-restricted
    apim: { apiKey: "env:API_KEY", keyId: k1, privateKey: "env:PRIVATE_KEY" }
    organisation: { odsCode: R69, name: TEST TRUST }
    businessFunction: SERVICE_PROVIDER_CLINICIAN
    allowedCodes: [A004, A005, A010]
  "${OPEN}":
    accessMode: application-restricted
    apim: { apiKey: "env:API_KEY", keyId: k1, privateKey: "env:PRIVATE_KEY" }
    organisation: { odsCode: R69, name: TEST TRUST }
    businessFunction: SERVICE_PROVIDER_CLINICIAN
  "${USER}":
    accessMode: user-restricted
    apim: { apiKey: "env:API_KEY", apiSecret: "env:API_SECRET", keyId: k1, privateKey: "env:PRIVATE_KEY" }
`;

const POLICY_REASONS = [
  'ASID_UNKNOWN',
  'ENDPOINT_NOT_ALLOWED_FOR_ASID',
  'ENDPOINT_NOT_APP_RESTRICTED',
  'BUSINESS_FUNCTION_NOT_ALLOWED',
];

const rules = parseRules(RULES, 'parity.yaml');
let rt: Runtime;
const keys = new Map<string, string>();

function session(asid: string, businessFunction: string): Session {
  const now = Date.now();
  const permission = { businessFunction, orgIdentifier: 'R69', orgName: 'TEST TRUST' };
  const user = {
    identifier: '555000000101',
    firstName: 'A',
    lastName: 'B',
    middleName: null,
    permissions: [permission],
  };
  const accessMode = asid === USER ? 'user-restricted' : 'application-restricted';
  return {
    asid,
    accessMode,
    legacyToken: 'parity',
    user,
    permission,
    ...(accessMode === 'user-restricted'
      ? {
          apim: {
            accessToken: 'a',
            accessExpiresAt: now + 600_000,
            refreshToken: 'r',
            refreshExpiresAt: now + 3600_000,
          },
        }
      : {}),
    createdAt: now,
    lastUsedAt: now,
    expiresAt: now + 3600_000,
  };
}

beforeAll(async () => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const env = {
    API_KEY: randomBytes(8).toString('hex'),
    API_SECRET: randomBytes(8).toString('hex'),
    PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
  rt = await buildRuntime('parity.yaml', rules, { resolveSecret: secretResolver(env), tokenRetries: 0 });
  for (const [asid, bf] of [
    [LIMITED, 'SERVICE_PROVIDER_CLINICIAN'],
    [OPEN, 'SERVICE_PROVIDER_CLINICIAN'],
    [USER, 'REFERRING_CLINICIAN'],
  ] as const) {
    const key = newSessionKey();
    await rt.shared.store.create(key, session(asid, bf));
    keys.set(asid, key);
  }
});
afterAll(async () => closeRuntime(rt));

/** The reason the live flow answered with, and whether explain refused, and for which reason. */
async function both(method: string, path: string, asid: string, role?: string) {
  const headers: Record<string, string> = { xapi_asid: asid, 'content-type': 'application/fhir+json' };
  const key = keys.get(asid);
  if (key) headers['http_x_session_key'] = key;
  const body = method === 'POST' || method === 'PUT' ? ['{"resourceType":"Parameters"}'] : [];
  const live = await runLegacyCall(rt, {
    method,
    rawUrl: path,
    headers,
    rawHeaders: Object.entries(headers).flat(),
    body: Readable.from(body.map((b) => Buffer.from(b))),
    legacyBase: 'http://127.0.0.1:8080/ers-api',
  });
  const explained = explain(rules, method, path, { xapi_asid: asid }, role ? { businessFunction: role } : {});
  const explainReason = POLICY_REASONS.find((r) => explained.text.includes(`(403 ${r})`));
  const liveReason = live.record.reason;
  return { liveReason, livePolicy: POLICY_REASONS.find((r) => r === liveReason), explainReason, explained };
}

const A005 = '/ers-api/STU3/v1/ReferralRequest/000000070000';
const A010 = '/ers-api/STU3/v1/HealthcareService/$ers.searchHealthcareServicesForPatient';
const A011 = '/ers-api/STU3/v1/ReferralRequest/$ers.createReferral';
const A036 = '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.cancelReferral';

describe('explain and the live path agree on every policy rule', () => {
  it('an ASID not in the rules: both refuse with ASID_UNKNOWN', async () => {
    const r = await both('GET', A005, '111111111111');
    expect(r.liveReason).toBe('ASID_UNKNOWN');
    expect(r.explainReason).toBe('ASID_UNKNOWN');
  });

  it("an operation outside the ASID's allowedCodes: both refuse with ENDPOINT_NOT_ALLOWED_FOR_ASID", async () => {
    const r = await both('POST', A036, LIMITED);
    expect(r.liveReason).toBe('ENDPOINT_NOT_ALLOWED_FOR_ASID');
    expect(r.explainReason).toBe('ENDPOINT_NOT_ALLOWED_FOR_ASID');
  });

  it('a user-only operation for an application-restricted ASID: both refuse with ENDPOINT_NOT_APP_RESTRICTED', async () => {
    const r = await both('POST', A011, OPEN);
    expect(r.liveReason).toBe('ENDPOINT_NOT_APP_RESTRICTED');
    expect(r.explainReason).toBe('ENDPOINT_NOT_APP_RESTRICTED');
  });

  it('a role whose business function the operation does not take: both refuse with BUSINESS_FUNCTION_NOT_ALLOWED', async () => {
    // A013 (accept referral) is for providers; this user's role is REFERRING_CLINICIAN.
    const A013 = '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.acceptReferral';
    const r = await both('POST', A013, USER, 'REFERRING_CLINICIAN');
    expect(r.liveReason).toBe('BUSINESS_FUNCTION_NOT_ALLOWED');
    expect(r.explainReason).toBe('BUSINESS_FUNCTION_NOT_ALLOWED');
  });

  it('a route in passthrough: APIM access rules do not apply, and neither refuses on policy', async () => {
    const r = await both('POST', A010, LIMITED);
    expect(r.livePolicy).toBeUndefined();
    expect(r.liveReason).toBeDefined(); // it failed later: the legacy host at port 9 refuses connections
    expect(r.explainReason).toBeUndefined();
  });

  it('an allowed call: neither refuses on policy', async () => {
    for (const [path, asid] of [
      [A005, LIMITED],
      [A005, OPEN],
      [A011, USER],
    ] as const) {
      const r = await both(
        path === A011 ? 'POST' : 'GET',
        path,
        asid,
        asid === USER ? 'REFERRING_CLINICIAN' : undefined,
      );
      expect(r.livePolicy, `${asid} ${path}`).toBeUndefined();
      expect(r.explainReason, `${asid} ${path}`).toBeUndefined();
      expect(r.explained.text).toMatch(/policy: allowed for ASID/);
    }
  });
});
