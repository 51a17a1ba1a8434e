import { type KeyObject, randomUUID, sign } from 'node:crypto';
import { request } from 'undici';
import type { StandInState } from '../../src/apim-standin/index.js';
import type { SigningKey } from '../helpers/apim-app.js';

/** Every value of `NHSD-eRS-Business-Function` (e-RS specification). */
export const ALL_BUSINESS_FUNCTIONS = [
  'REFERRING_CLINICIAN',
  'REFERRING_CLINICIAN_ADMIN',
  'REFERRING_ADMIN',
  'COMMISSIONER',
  'SERVICE_PROVIDER_CLINICIAN_ADMIN',
  'SERVICE_PROVIDER_CLINICIAN',
  'SERVICE_PROVIDER_ADMIN',
  'INFORMATION_ANALYST',
  'BOOKING_MANAGER',
  'ADDITIONAL_REQUIREMENTS_MANAGER',
];

/**
 * A user-restricted access token issued straight into the store (as token exchange would, without the CIS2 round
 * trip), for tests about the e-RS endpoints rather than about authentication.
 */
export function issueUserToken(state: StandInState, apiKey: string, sub: string, idAssuranceLevel = 3): string {
  return state.tokens.issue({
    apiKey,
    accessMode: 'user-restricted',
    grantType: 'test',
    ttlSeconds: 599,
    user: { sub, idAssuranceLevel, authenticationAssuranceLevel: 3 },
  }).accessToken;
}

/** Builds and RS512-signs a compact JWT from exactly the header and payload given (no defaults, no validation). */
function signJwt(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject): string {
  const h = Buffer.from(JSON.stringify(header)).toString('base64url');
  const p = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const signature = sign('sha512', Buffer.from(`${h}.${p}`), key).toString('base64url');
  return `${h}.${p}.${signature}`;
}

/** Header/claim overrides: a value replaces, `undefined` removes. */
export type Overrides = Record<string, unknown>;

function apply(base: Record<string, unknown>, overrides: Overrides): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

export function clientAssertion(
  opts: { apiKey: string; tokenUrl: string; key: SigningKey },
  headerOverrides: Overrides = {},
  claimOverrides: Overrides = {},
  signingKey: KeyObject = opts.key.privateKey,
): string {
  const now = Math.floor(Date.now() / 1000);
  const header = apply({ alg: 'RS512', typ: 'JWT', kid: opts.key.kid }, headerOverrides);
  const claims = apply(
    { iss: opts.apiKey, sub: opts.apiKey, aud: opts.tokenUrl, jti: randomUUID(), exp: now + 300 },
    claimOverrides,
  );
  return signJwt(header, claims, signingKey);
}

export function tokenForm(assertion: string, overrides: Overrides = {}): string {
  const fields = apply(
    {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    },
    overrides,
  );
  return new URLSearchParams(fields as Record<string, string>).toString();
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json: () => unknown;
}

export async function http(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<HttpResult> {
  const res = await request(url, {
    method: (init.method ?? 'GET') as 'GET',
    headers: init.headers,
    body: init.body,
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  const text = body.toString('utf8');
  return { status: res.statusCode, headers: res.headers, body, text, json: () => JSON.parse(text) };
}

export async function postToken(tokenUrl: string, form: string, contentType = 'application/x-www-form-urlencoded') {
  return http(tokenUrl, { method: 'POST', headers: { 'content-type': contentType }, body: form });
}

export async function getAccessToken(opts: { apiKey: string; tokenUrl: string; key: SigningKey }): Promise<string> {
  const res = await postToken(opts.tokenUrl, tokenForm(clientAssertion(opts)));
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${res.text}`);
  return (res.json() as { access_token: string }).access_token;
}

/** The OperationOutcome's first issue, flattened for assertions. */
export function firstIssue(body: unknown): {
  code?: string;
  errorCode?: string;
  system?: string;
  diagnostics?: string;
} {
  const issue = (body as { issue?: Array<Record<string, unknown>> }).issue?.[0] ?? {};
  const coding = (issue.details as { coding?: Array<{ code?: string; system?: string }> } | undefined)?.coding?.[0];
  return {
    code: issue.code as string | undefined,
    errorCode: coding?.code,
    system: coding?.system,
    diagnostics: issue.diagnostics as string | undefined,
  };
}
