/**
 * The APIM OAuth token endpoint (`POST /oauth2/token`), as strict as NHS England's identity service
 * (`NHSDigital/identity-service-api`): same checks, same `error`/`error_description` texts, same statuses.
 *
 * Grants are dispatched through {@link GRANT_HANDLERS}. Only `client_credentials` with a signed-JWT client
 * assertion (application-restricted access) exists today; token exchange
 * (`urn:ietf:params:oauth:grant-type:token-exchange`, CIS2 ID token + the same client assertion) and
 * `refresh_token` (client_secret_post) are added as further entries, reusing {@link verifyClientAssertion} and
 * {@link TokenStore.issue}.
 */
import { type CryptoKey, compactVerify, importJWK, type JWK } from 'jose';
import { OAuthError, type StandInReply } from './responses.js';
import { type StandInState, tokenUrl } from './state.js';
import type { StandInApp } from './types.js';

export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** APIM's `seconds_remaining` limit: 5 minutes plus 10 s for edge cases. */
export const MAX_ASSERTION_LIFETIME_SECONDS = 310;

/** The exact texts of the identity service (IDS `validate-client-assertion-claims.js`, RaiseFault policies, e2e tests). */
export const TOKEN_ERRORS = {
  contentType: 'Content-Type header must be application/x-www-form-urlencoded',
  grantTypeMissing: 'grant_type is missing',
  grantTypeInvalid: 'grant_type is invalid',
  assertionType: `Missing or invalid client_assertion_type - must be '${JWT_BEARER_ASSERTION_TYPE}'`,
  assertionMissing: 'Missing client_assertion',
  assertionMalformed: 'Malformed JWT in client_assertion',
  algMissing: "Missing 'alg' header in client_assertion JWT",
  algInvalid: "Invalid 'alg' header in client_assertion JWT - unsupported JWT algorithm - must be 'RS512'",
  kidMissing: "Missing 'kid' header in client_assertion JWT",
  kidNoMatch: "Invalid 'kid' header in client_assertion JWT - no matching public key",
  typInvalid: "Invalid 'typ' header in client_assertion JWT - must be 'JWT'",
  issSubMismatch: "Missing or non-matching 'iss'/'sub' claims in client_assertion JWT",
  issSubUnknown: "Invalid 'iss'/'sub' claims in client_assertion JWT",
  audInvalid: "Missing or invalid 'aud' claim in client_assertion JWT",
  jtiMissing: "Missing 'jti' claim in client_assertion JWT",
  jtiInvalid: "Invalid 'jti' claim in client_assertion JWT - must be a unique string value such as a GUID",
  jtiReused: "Non-unique 'jti' claim in client_assertion JWT",
  expMissing: "Missing 'exp' claim in client_assertion JWT",
  expNotInteger: "Invalid 'exp' claim in client_assertion JWT - must be an integer",
  expExpired: "Invalid 'exp' claim in client_assertion JWT - JWT has expired",
  expTooLong: "Invalid 'exp' claim in client_assertion JWT - more than 5 minutes in future",
  noPublicKey:
    'You need to register a public key to use this authentication method - please contact support to configure',
  signature: 'JWT signature verification failed',
  unauthorizedClient:
    'you have tried to request authorization but your application is not configured to use this authorization grant type',
  /** Not an APIM text (APIM's is not published): a `client_id` form field that differs from the API key. */
  clientIdMismatch: "Invalid client_id - must match the 'iss'/'sub' claims in client_assertion JWT (the API key)",
} as const;

const invalidRequest = (description: string, status = 400) => new OAuthError(status, 'invalid_request', description);

export interface GrantContext {
  form: URLSearchParams;
  state: StandInState;
  /** ms since the epoch */
  now: number;
}

export type GrantHandler = (ctx: GrantContext) => Promise<StandInReply>;

/** The grant types the stand-in's token endpoint serves; anything else is `unsupported_grant_type`. */
export const GRANT_HANDLERS: ReadonlyMap<string, GrantHandler> = new Map<string, GrantHandler>([
  ['client_credentials', clientCredentialsGrant],
]);

/** Answers one token endpoint request. Never throws. */
export async function handleTokenRequest(
  method: string,
  contentType: string | undefined,
  body: Buffer,
  state: StandInState,
): Promise<StandInReply> {
  try {
    if (method !== 'POST') {
      return new OAuthError(405, 'invalid_request', 'The token endpoint only accepts POST').toReply();
    }
    // IDS Flow.PostTokenInvalidMediaType compares the whole header value: a charset parameter is a 415 too.
    if (contentType !== FORM_CONTENT_TYPE) throw invalidRequest(TOKEN_ERRORS.contentType, 415);
    const form = new URLSearchParams(body.toString('utf8'));
    const grantType = form.get('grant_type');
    if (grantType === null || grantType === '') throw invalidRequest(TOKEN_ERRORS.grantTypeMissing);
    const handler = GRANT_HANDLERS.get(grantType);
    if (handler === undefined) throw new OAuthError(400, 'unsupported_grant_type', TOKEN_ERRORS.grantTypeInvalid);
    return await handler({ form, state, now: Date.now() });
  } catch (err) {
    if (err instanceof OAuthError) return err.toReply();
    throw err;
  }
}

interface DecodedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

function decodeSegment(segment: string): Record<string, unknown> | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(segment)) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function decodeJwt(jwt: string): DecodedJwt | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3 || parts[2] === '') return undefined;
  const header = decodeSegment(parts[0]!);
  const payload = decodeSegment(parts[1]!);
  return header && payload ? { header, payload } : undefined;
}

const isMissing = (v: unknown) => v === undefined || v === null || v === '';

function audienceMatches(aud: unknown, expected: string): boolean {
  if (typeof aud === 'string') return aud === expected;
  return Array.isArray(aud) && aud.includes(expected);
}

const keyCache = new WeakMap<object, Promise<CryptoKey | Uint8Array>>();

function importPublicKey(jwk: object): Promise<CryptoKey | Uint8Array> {
  let key = keyCache.get(jwk);
  if (key === undefined) {
    key = importJWK(jwk as JWK, 'RS512');
    keyCache.set(jwk, key);
  }
  return key;
}

/**
 * Validates a signed-JWT client assertion exactly as APIM does for client credentials and token exchange, records
 * its `jti`, and returns the app it authenticates. Throws {@link OAuthError}.
 */
export async function verifyClientAssertion(
  form: URLSearchParams,
  state: StandInState,
  now: number,
): Promise<StandInApp> {
  if (form.get('client_assertion_type') !== JWT_BEARER_ASSERTION_TYPE) throw invalidRequest(TOKEN_ERRORS.assertionType);
  const assertion = form.get('client_assertion');
  if (assertion === null || assertion === '') throw invalidRequest(TOKEN_ERRORS.assertionMissing);
  const jwt = decodeJwt(assertion);
  if (jwt === undefined) throw invalidRequest(TOKEN_ERRORS.assertionMalformed);
  const { header, payload } = jwt;

  if (isMissing(header.alg)) throw invalidRequest(TOKEN_ERRORS.algMissing);
  if (header.alg !== 'RS512') throw invalidRequest(TOKEN_ERRORS.algInvalid);
  if (isMissing(header.kid)) throw invalidRequest(TOKEN_ERRORS.kidMissing);
  if (typeof header.typ !== 'string' || header.typ.toLowerCase() !== 'jwt')
    throw invalidRequest(TOKEN_ERRORS.typInvalid);

  const { iss, sub, jti, exp } = payload;
  if (typeof iss !== 'string' || iss === '' || iss !== sub) throw invalidRequest(TOKEN_ERRORS.issSubMismatch);
  if (isMissing(jti)) throw invalidRequest(TOKEN_ERRORS.jtiMissing);
  if (typeof jti !== 'string') throw invalidRequest(TOKEN_ERRORS.jtiInvalid);
  if (isMissing(exp)) throw invalidRequest(TOKEN_ERRORS.expMissing);
  if (typeof exp !== 'number' || !Number.isInteger(exp)) throw invalidRequest(TOKEN_ERRORS.expNotInteger);
  if (now > exp * 1000) throw invalidRequest(TOKEN_ERRORS.expExpired);
  if (exp - Math.floor(now / 1000) > MAX_ASSERTION_LIFETIME_SECONDS) throw invalidRequest(TOKEN_ERRORS.expTooLong);

  // As APIM (LookupCache/PopulateCache.JTIClaim before VerifyAPIKey and VerifyJWT): a jti is spent once its claims
  // pass, even if a later check (key, audience, signature) fails.
  let seen = state.usedJtis.get(iss);
  if (seen === undefined) {
    seen = new Set();
    state.usedJtis.set(iss, seen);
  }
  if (seen.has(jti)) throw invalidRequest(TOKEN_ERRORS.jtiReused);
  seen.add(jti);

  const app = state.apps.get(iss);
  if (app === undefined) throw invalidRequest(TOKEN_ERRORS.issSubUnknown, 401);
  const clientId = form.get('client_id');
  if (clientId !== null && clientId !== app.apiKey) {
    throw new OAuthError(401, 'invalid_client', TOKEN_ERRORS.clientIdMismatch);
  }

  if (app.jwks.keys.length === 0) throw new OAuthError(403, 'public_key error', TOKEN_ERRORS.noPublicKey);
  const jwk = app.jwks.keys.find((k) => k.kid === header.kid);
  if (jwk === undefined) throw invalidRequest(TOKEN_ERRORS.kidNoMatch, 401);
  try {
    const key = await importPublicKey(jwk);
    await compactVerify(assertion, key, { algorithms: ['RS512'] });
  } catch {
    throw new OAuthError(401, 'public_key error', TOKEN_ERRORS.signature);
  }
  if (!audienceMatches(payload.aud, tokenUrl(state))) throw invalidRequest(TOKEN_ERRORS.audInvalid, 401);
  return app;
}

/** `_access_token_expiry_ms` (an APIM test parameter) may shorten, never lengthen, the token lifetime. */
function ttlSeconds(form: URLSearchParams, state: StandInState): number {
  const override = form.get('_access_token_expiry_ms');
  if (override !== null && /^\d+$/.test(override)) {
    const seconds = Math.floor(Number(override) / 1000);
    if (seconds < state.accessTokenTtlSeconds) return seconds;
  }
  return state.accessTokenTtlSeconds;
}

/** Application-restricted access: `grant_type=client_credentials` with a signed-JWT client assertion. */
async function clientCredentialsGrant({ form, state, now }: GrantContext): Promise<StandInReply> {
  const app = await verifyClientAssertion(form, state, now);
  if (app.accessMode !== 'application-restricted') {
    throw new OAuthError(401, 'unauthorized_client', TOKEN_ERRORS.unauthorizedClient);
  }
  const ttl = ttlSeconds(form, state);
  const issued = state.tokens.issue({
    apiKey: app.apiKey,
    accessMode: 'application-restricted',
    grantType: 'client_credentials',
    ttlSeconds: ttl,
    now,
  });
  const body = {
    access_token: issued.accessToken,
    expires_in: String(ttl),
    token_type: 'Bearer',
    issued_at: String(issued.issuedAt),
  };
  return {
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify(body), 'utf8'),
  };
}
