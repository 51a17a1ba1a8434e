/**
 * CIS2 (NHS Care Identity Service 2), the OpenID Provider healthcare workers sign in with (smartcards still work
 * through it). ers-bridge runs the authorization-code flow for legacy desktop clients that cannot (discovery,
 * PKCE, state, nonce, max_age, acr_values), and verifies ID tokens that partly upgraded clients bring themselves.
 *
 * Before any ID token is exchanged at APIM it must pass the checks APIM would apply, so that a user gets a clear
 * A001 answer instead of an opaque APIM refusal: signature, issuer, audience, expiry, IAL ≥ 3 and AAL ≥ 2.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import type { Cis2Config } from '../rules/schema.js';
import type { SecretResolver } from '../rules/secrets.js';
import {
  type Cis2Identity,
  Cis2Unavailable,
  IdTokenRejected,
  identityFromClaims,
  type PendingSignIn,
} from './cis2-identity.js';
import { importRsaSigningKey } from './keys.js';

/** How long a discovery document is kept (CIS2 allows caching it for up to an hour). */
const DISCOVERY_TTL_MS = 55 * 60 * 1000;

export {
  type Cis2Identity,
  Cis2Unavailable,
  type IdTokenProblem,
  IdTokenRejected,
  identityFromClaims,
  type PendingSignIn,
} from './cis2-identity.js';

export class Cis2Client {
  private config: { value: Promise<oidc.Configuration>; at: number } | undefined;
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

  constructor(
    readonly settings: Cis2Config,
    private readonly resolveSecret: SecretResolver,
    private readonly now: () => number = Date.now,
  ) {}

  private async clientAuth(): Promise<oidc.ClientAuth> {
    const a = this.settings.clientAuth;
    if (a.method === 'private_key_jwt') {
      const pem = await this.resolveSecret(a.privateKey);
      const key = await importRsaSigningKey(pem, 'CIS2 client key', a.signingAlg === 'RS256' ? 'SHA-256' : 'SHA-512');
      return oidc.PrivateKeyJwt({ key, kid: a.keyId });
    }
    const secret = await this.resolveSecret(a.secret);
    return a.method === 'client_secret_post' ? oidc.ClientSecretPost(secret) : oidc.ClientSecretBasic(secret);
  }

  /** The discovered configuration, cached for up to an hour; a failed discovery is retried on the next call. */
  configuration(): Promise<oidc.Configuration> {
    if (this.config && this.now() - this.config.at < DISCOVERY_TTL_MS) return this.config.value;
    const issuer = new URL(this.settings.issuer);
    const value = (async () => {
      const auth = await this.clientAuth();
      try {
        return await oidc.discovery(
          issuer,
          this.settings.clientId,
          { redirect_uris: [this.settings.redirectUri], response_types: ['code'] },
          auth,
          { execute: issuer.protocol === 'http:' ? [oidc.allowInsecureRequests] : [], timeout: 10 },
        );
      } catch (e) {
        throw new Cis2Unavailable(e instanceof Error ? e.message : 'discovery failed');
      }
    })();
    this.config = { value, at: this.now() };
    value.catch(() => {
      if (this.config?.value === value) this.config = undefined;
    });
    return value;
  }

  /** Starts a sign-in: the CIS2 authorization URL and what the callback will need to finish it. */
  async begin(asid: string, returnTo?: string): Promise<{ url: URL; state: string; pending: PendingSignIn }> {
    const config = await this.configuration();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.settings.redirectUri,
      scope: this.settings.scope,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      max_age: String(this.settings.maxAgeSeconds),
      acr_values: this.settings.acrValues,
    });
    return {
      url,
      state,
      pending: { asid, codeVerifier, nonce, ...(returnTo ? { returnTo } : {}), startedAt: this.now() },
    };
  }

  /**
   * Finishes a sign-in from the callback's query string: exchanges the code (PKCE), checks state, nonce and
   * max_age, then the assurance levels. Returns the ID token (for APIM) and the identity.
   */
  async complete(
    query: URLSearchParams,
    state: string,
    pending: PendingSignIn,
  ): Promise<{ idToken: string; identity: Cis2Identity }> {
    const config = await this.configuration();
    const callback = new URL(this.settings.redirectUri);
    callback.search = query.toString();
    let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    try {
      tokens = await oidc.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: state,
        expectedNonce: pending.nonce,
        maxAge: this.settings.maxAgeSeconds,
        idTokenExpected: true,
      });
    } catch (e) {
      if (
        e instanceof oidc.ResponseBodyError ||
        e instanceof oidc.ClientError ||
        e instanceof oidc.AuthorizationResponseError
      ) {
        throw new IdTokenRejected({ kind: 'sign-in-failed', detail: e.message });
      }
      throw new Cis2Unavailable(e instanceof Error ? e.message : 'token request failed');
    }
    const claims = tokens.claims();
    if (!claims || !tokens.id_token) throw new IdTokenRejected({ kind: 'no-id-token' });
    let userinfo: Record<string, unknown> | undefined;
    if (!claims['family_name'] && tokens.access_token) {
      // Names come with the profile scope from userinfo when the ID token does not carry them.
      userinfo = (await oidc.fetchUserInfo(config, tokens.access_token, claims.sub).catch(() => undefined)) as
        | Record<string, unknown>
        | undefined;
    }
    return { idToken: tokens.id_token, identity: identityFromClaims(claims, userinfo) };
  }

  /** Verifies an ID token a partly upgraded client obtained itself (A001 with a raw CIS2 ID token). */
  async verifyIdToken(idToken: string): Promise<Cis2Identity> {
    const config = await this.configuration();
    const meta = config.serverMetadata();
    if (!meta.jwks_uri) throw new Cis2Unavailable('the discovery document has no jwks_uri');
    this.jwks ??= createRemoteJWKSet(new URL(meta.jwks_uri), { timeoutDuration: 10_000 });
    try {
      const { payload } = await jwtVerify(idToken, this.jwks, {
        issuer: meta.issuer,
        audience: [this.settings.clientId, ...this.settings.acceptedAudiences],
        algorithms: ['RS256', 'RS512'],
        clockTolerance: 30,
        currentDate: new Date(this.now()),
        requiredClaims: ['exp', 'sub'],
      });
      return identityFromClaims(payload);
    } catch (e) {
      if (e instanceof IdTokenRejected) throw e;
      throw idTokenError(e);
    }
  }
}

/** What jose's verification failure says about the token (or about CIS2, when its keys could not be fetched). */
function idTokenError(e: unknown): IdTokenRejected | Cis2Unavailable {
  if (e instanceof joseErrors.JWTExpired) return new IdTokenRejected({ kind: 'expired' });
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'iss') return new IdTokenRejected({ kind: 'wrong-issuer' });
    if (e.claim === 'aud') return new IdTokenRejected({ kind: 'wrong-audience' });
    return new IdTokenRejected({ kind: 'claim', claim: e.claim });
  }
  if (e instanceof joseErrors.JWKSNoMatchingKey || e instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new IdTokenRejected({ kind: 'signature' });
  }
  // A timeout or a network failure fetching CIS2's keys is not the token's fault.
  if (e instanceof joseErrors.JWKSTimeout || !(e instanceof joseErrors.JOSEError)) {
    return new Cis2Unavailable(e instanceof Error ? e.message : 'signing keys unavailable', 'keys');
  }
  return new IdTokenRejected({ kind: 'malformed' });
}
