/**
 * The APIM OAuth token endpoint (`POST /oauth2/token`), as strict as NHS England's identity service
 * (`NHSDigital/identity-service-api`): same checks in the same order, same `error`/`error_description` texts, same
 * statuses. Grants are dispatched through {@link GRANT_HANDLERS}:
 *
 * - `client_credentials` + signed-JWT client assertion: application-restricted access;
 * - `urn:ietf:params:oauth:grant-type:token-exchange` + the same client assertion + a CIS2 ID token as subject token:
 *   user-restricted access (CIS2 separate authentication), with a refresh token;
 * - `refresh_token` + `client_id`/`client_secret` form fields (client_secret_post): single-use refresh tokens within
 *   an absolute window counted from the token exchange.
 */
import { type CryptoKey, compactVerify, importJWK, type JWK } from 'jose';
import { JwksUnavailableError } from './cis2.js';
import { OAuthError, type StandInReply } from './responses.js';
import { type StandInState, tokenUrl } from './state.js';
import type { TokenUser } from './tokens.js';
import type { StandInApp } from './types.js';

export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** APIM's CIS2 refresh window (`refresh_tokens_validity_ms`, observed as 12 h). */
export const DEFAULT_REFRESH_WINDOW_SECONDS = 43_200;
/** Subject-token algorithms APIM accepts (IDS `VerifyJWT.SubjectToken`: CIS2 signs with RS256). */
export const SUBJECT_TOKEN_ALGORITHMS = ['RS256', 'RS512'];
/** e-RS user-restricted products carry `aal2` and `aal3` scopes only (IDS `FilterScopesTokenExchange.js`). */
export const ACCEPTED_AUTHENTICATION_ASSURANCE_LEVELS = [2, 3];
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

  // Token exchange: subject token (IDS e2e `test_token_exchange.py`, `validate-subject-token-claims.js`,
  // `SelectIdTokenIssuer.js`, `AssignMessage.*SubjectToken*`).
  subjectTokenType: `missing or invalid subject_token_type - must be '${ID_TOKEN_TYPE}'`,
  subjectTokenMissing: 'Missing subject_token',
  subjectTokenMalformed: 'Malformed JWT in subject_token',
  subjectKidMissing: "Missing 'kid' header in subject_token JWT",
  subjectTypInvalid: "Invalid 'typ' header in subject_token JWT - must be 'JWT'",
  subjectAlgMissing: "Missing 'alg' header in subject_token JWT",
  subjectExpMissing: "Missing 'exp' claim in subject_token JWT",
  subjectExpNotInteger: "Invalid 'exp' claim in subject_token JWT - must be an integer",
  subjectExpExpired: "Invalid 'exp' claim in subject_token JWT - JWT has expired",
  subjectIssMissing: "Missing 'iss' claim in subject_token JWT",
  subjectIssMismatch: "Missing or non-matching 'iss' claim in subject_token JWT",
  subjectAudMissing: "Missing 'aud' claim in subject_token JWT",
  subjectKidNoMatch: "Invalid 'kid' header in subject_token JWT - no matching public key",
  /** IDS `AssignMessage.InvalidJWTSignature` (401 `invalid_request`); that it is the subject-token fault is inferred. */
  subjectSignature: 'JWT signature verification failed due to invalid token',
  /** IDS `AssignMessage.FailedToRetrieveIdentityProviderJWKS` (500 `unknown_error`). */
  jwksUnavailable:
    'An unknown error occurred processing this request. Contact us for assistance diagnosing this issue: https://digital.nhs.uk/developer/help-and-support quoting Message ID',

  // Refresh (IDS `Flow.PostRefreshToken`, `AssignMessage.MissingApiKey`, `AssignMessage.InvalidApiKeyOrSecret`,
  // `RaiseFault.MissingClientSecret`, `RaiseFault.MissingRefreshToken`, `AssignMessage.InvalidRefreshToken`).
  clientIdMissing: 'client_id is missing',
  /**
   * Unknown `client_id` or wrong `client_secret`: 401 `invalid_client`, as IDS `AssignMessage.InvalidApiKeyOrSecret`
   * and the IDS refresh-token e2e cases. (One IDS revision answers a wrong secret with `invalid_request` /
   * `client_secret is invalid` from `RaiseFault.InvalidClientSecret`; the stand-in uses the e2e-asserted form.)
   */
  clientIdOrSecretInvalid: 'client_id or client_secret is invalid',
  clientSecretMissing: 'client_secret is missing',
  refreshTokenMissing: 'refresh_token is missing',
  refreshTokenInvalid: 'refresh_token is invalid',
  refreshPeriodExpired: 'refresh token refresh period has expired',

  /**
   * Not an APIM text: a stand-in started without a CIS2 issuer cannot verify subject tokens. Real APIM is always
   * paired with a CIS2 environment; said plainly here so it does not read like a bad ID token.
   */
  cis2NotConfigured:
    "this APIM stand-in has no CIS2 issuer configured, so it cannot verify CIS2 ID tokens for token exchange: start it with --cis2-issuer <the CIS2 issuer URL> (ers-bridge emulate-apim; the JWKS comes from the issuer's discovery document, or give --cis2-jwks <url|file>), or pass the cis2 option to startApimStandIn",
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
  [TOKEN_EXCHANGE_GRANT_TYPE, tokenExchangeGrant],
  ['refresh_token', refreshTokenGrant],
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
    return await handler({ form, state, now: state.now() });
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
  const { issued, ttl } = issueAccessToken({ form, state, now }, app.apiKey, 'client_credentials');
  return tokenResponse({
    access_token: issued.accessToken,
    expires_in: String(ttl),
    token_type: 'Bearer',
    issued_at: String(issued.issuedAt),
  });
}

/** An access token for an application (and, user-restricted, its user), with the lifetime the request may ask for. */
function issueAccessToken(
  { form, state, now }: GrantContext,
  apiKey: string,
  grantType: string,
  user?: Parameters<StandInState['tokens']['issue']>[0]['user'],
) {
  const ttl = ttlSeconds(form, state);
  const accessMode = user ? 'user-restricted' : 'application-restricted';
  const issued = state.tokens.issue({ apiKey, accessMode, grantType, ttlSeconds: ttl, ...(user ? { user } : {}), now });
  return { issued, ttl };
}

function tokenResponse(body: Record<string, string>): StandInReply {
  return {
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify(body), 'utf8'),
  };
}

/** `authentication_assurance_level` / `id_assurance_level`: a number or a numeric string (CIS2 mocks send either). */
function assuranceLevel(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^\d+$/.test(value.trim())) return Number(value.trim());
  return undefined;
}

const signatureKeyCache = new WeakMap<object, Map<string, Promise<CryptoKey | Uint8Array>>>();

function importSubjectKey(jwk: object, alg: string): Promise<CryptoKey | Uint8Array> {
  let byAlg = signatureKeyCache.get(jwk);
  if (byAlg === undefined) {
    byAlg = new Map();
    signatureKeyCache.set(jwk, byAlg);
  }
  let key = byAlg.get(alg);
  if (key === undefined) {
    key = importJWK(jwk as JWK, alg);
    // A key that cannot be imported for this alg is a verification failure, not a cached rejection.
    key.catch(() => byAlg.delete(alg));
    byAlg.set(alg, key);
  }
  return key;
}

/**
 * Validates a CIS2 ID token presented as `subject_token`, in APIM's order (IDS `Flow.PostTokenTokenExchange`:
 * `DecodeJWT.FromSubjectTokenFormParam`, `validate-subject-token-claims.js`, `SelectIdTokenIssuer.js`, JWKS lookup,
 * `VerifyJWT.SubjectToken`), and returns the user it names. Throws {@link OAuthError}.
 */
export async function verifySubjectToken(form: URLSearchParams, state: StandInState, now: number): Promise<TokenUser> {
  const subjectToken = form.get('subject_token');
  if (subjectToken === null || subjectToken === '') throw invalidRequest(TOKEN_ERRORS.subjectTokenMissing);
  const jwt = decodeJwt(subjectToken);
  if (jwt === undefined) throw invalidRequest(TOKEN_ERRORS.subjectTokenMalformed);
  const { header, payload } = jwt;

  if (isMissing(header.kid) || typeof header.kid !== 'string') throw invalidRequest(TOKEN_ERRORS.subjectKidMissing);
  // Relaxed on purpose: APIM requires `typ` = JWT (case-insensitive), but oidc-provider (our test OP, and other
  // OPs) omit `typ` from ID tokens. An absent `typ` is accepted; one that is present must still be JWT.
  if (header.typ !== undefined && (typeof header.typ !== 'string' || header.typ.toLowerCase() !== 'jwt')) {
    throw invalidRequest(TOKEN_ERRORS.subjectTypInvalid);
  }
  if (isMissing(header.alg)) throw invalidRequest(TOKEN_ERRORS.subjectAlgMissing);
  const { exp, iss, aud } = payload;
  if (isMissing(exp) || exp === 0) throw invalidRequest(TOKEN_ERRORS.subjectExpMissing);
  if (typeof exp !== 'number' || !Number.isInteger(exp)) throw invalidRequest(TOKEN_ERRORS.subjectExpNotInteger);
  if (now > exp * 1000) throw invalidRequest(TOKEN_ERRORS.subjectExpExpired);
  if (isMissing(iss)) throw invalidRequest(TOKEN_ERRORS.subjectIssMissing);
  if (isMissing(aud) || (Array.isArray(aud) && aud.length === 0)) {
    throw invalidRequest(TOKEN_ERRORS.subjectAudMissing, 401);
  }
  const cis2 = state.cis2;
  if (cis2 === undefined || !cis2.issuerMatches(iss)) throw invalidRequest(TOKEN_ERRORS.subjectIssMismatch);

  let jwk: object | undefined;
  try {
    jwk = await cis2.keyFor(header.kid);
  } catch (err) {
    if (err instanceof JwksUnavailableError) throw new OAuthError(500, 'unknown_error', TOKEN_ERRORS.jwksUnavailable);
    throw err;
  }
  if (jwk === undefined) throw invalidRequest(TOKEN_ERRORS.subjectKidNoMatch, 401);
  try {
    const alg = String(header.alg);
    if (!SUBJECT_TOKEN_ALGORITHMS.includes(alg)) throw new Error(`alg ${alg} not accepted`);
    const key = await importSubjectKey(jwk, alg);
    await compactVerify(subjectToken, key, { algorithms: SUBJECT_TOKEN_ALGORITHMS });
  } catch {
    throw invalidRequest(TOKEN_ERRORS.subjectSignature, 401);
  }

  return {
    sub: typeof payload.sub === 'string' ? payload.sub : String(payload.sub ?? ''),
    idAssuranceLevel: assuranceLevel(payload.id_assurance_level) ?? 0,
    authenticationAssuranceLevel: assuranceLevel(payload.authentication_assurance_level) ?? 0,
  };
}

/** ms since the epoch at which the refresh window that started at `firstIssuedAt` closes. */
function refreshWindowEnd(firstIssuedAt: number, state: StandInState): number {
  return firstIssuedAt + state.refreshWindowSeconds * 1000;
}

/** Whole seconds left in the refresh window (never negative). */
function refreshSecondsLeft(firstIssuedAt: number, state: StandInState, now: number): number {
  return Math.max(0, Math.floor((refreshWindowEnd(firstIssuedAt, state) - now) / 1000));
}

/**
 * User-restricted access, CIS2 separate authentication: `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`
 * with the client assertion of client credentials and a CIS2 ID token as `subject_token`.
 */
async function tokenExchangeGrant({ form, state, now }: GrantContext): Promise<StandInReply> {
  // APIM routes to its token-exchange flow on subject_token_type, so a wrong one fails before anything else.
  if (form.get('subject_token_type') !== ID_TOKEN_TYPE) throw invalidRequest(TOKEN_ERRORS.subjectTokenType);
  const app = await verifyClientAssertion(form, state, now);
  // The stand-in's own refusal, before any subject-token check: without an issuer none could pass.
  if (state.cis2 === undefined) throw invalidRequest(TOKEN_ERRORS.cis2NotConfigured);
  const user = await verifySubjectToken(form, state, now);
  // As APIM (`FilterUserRestrictedScopes` + `RaiseFault.VerifyAccessLevel`, after the subject token is verified):
  // no user-restricted scope at the ID token's AAL — an app-restricted app, or an AAL e-RS does not accept.
  if (
    app.accessMode !== 'user-restricted' ||
    !ACCEPTED_AUTHENTICATION_ASSURANCE_LEVELS.includes(user.authenticationAssuranceLevel)
  ) {
    throw new OAuthError(401, 'unauthorized_client', TOKEN_ERRORS.unauthorizedClient);
  }
  const { issued, ttl } = issueAccessToken({ form, state, now }, app.apiKey, TOKEN_EXCHANGE_GRANT_TYPE, user);
  const refresh = state.tokens.issueRefreshToken({ apiKey: app.apiKey, user, firstIssuedAt: now, count: 0 });
  return tokenResponse({
    access_token: issued.accessToken,
    expires_in: String(ttl),
    token_type: 'Bearer',
    issued_token_type: ACCESS_TOKEN_TYPE,
    refresh_token: refresh.refreshToken,
    refresh_token_expires_in: String(refreshSecondsLeft(now, state, now)),
    refresh_count: String(refresh.count),
  });
}

/**
 * `grant_type=refresh_token` with `client_id` (API key) and `client_secret` (API secret) form fields, in APIM's order
 * (IDS `Flow.PostRefreshToken`). Refresh tokens are single-use; the window never extends.
 */
async function refreshTokenGrant({ form, state, now }: GrantContext): Promise<StandInReply> {
  const clientId = form.get('client_id');
  if (clientId === null || clientId === '') throw invalidRequest(TOKEN_ERRORS.clientIdMissing, 401);
  const app = state.apps.get(clientId);
  if (app === undefined) throw new OAuthError(401, 'invalid_client', TOKEN_ERRORS.clientIdOrSecretInvalid);
  const secret = form.get('client_secret');
  if (secret === null) throw invalidRequest(TOKEN_ERRORS.clientSecretMissing, 401);
  if (app.apiSecret === undefined || app.apiSecret === '' || secret !== app.apiSecret) {
    throw new OAuthError(401, 'invalid_client', TOKEN_ERRORS.clientIdOrSecretInvalid);
  }
  const presented = form.get('refresh_token');
  if (presented === null || presented === '') throw invalidRequest(TOKEN_ERRORS.refreshTokenMissing);
  const record = state.tokens.lookupRefreshToken(presented);
  if (record === undefined || record.used || record.apiKey !== app.apiKey) {
    throw new OAuthError(401, 'invalid_grant', TOKEN_ERRORS.refreshTokenInvalid);
  }
  if (now >= refreshWindowEnd(record.firstIssuedAt, state)) {
    throw new OAuthError(401, 'invalid_grant', TOKEN_ERRORS.refreshPeriodExpired);
  }
  record.used = true;
  const { issued, ttl } = issueAccessToken({ form, state, now }, app.apiKey, 'refresh_token', record.user);
  const next = state.tokens.issueRefreshToken({
    apiKey: app.apiKey,
    user: record.user,
    firstIssuedAt: record.firstIssuedAt,
    count: record.count + 1,
  });
  return tokenResponse({
    access_token: issued.accessToken,
    expires_in: String(ttl),
    refresh_token: next.refreshToken,
    refresh_token_expires_in: String(refreshSecondsLeft(record.firstIssuedAt, state, now)),
    refresh_count: String(next.count),
    token_type: 'Bearer',
  });
}
