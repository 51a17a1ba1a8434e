/**
 * The tokens the stand-in has issued, like the Apigee OAuthV2 token store behind APIM: opaque random access tokens
 * mapped to the app, the access mode, the user (user-restricted only) and the expiry; and opaque single-use refresh
 * tokens (user-restricted only) carrying the user and the start of their absolute refresh window.
 */
import { randomBytes } from 'node:crypto';
import type { AccessMode } from './types.js';

/** The CIS2 user behind a user-restricted token, taken from the exchanged ID token. */
export interface TokenUser {
  /** ID token `sub`: the CIS2 user id. */
  sub: string;
  /** ID token `id_assurance_level` (0 when absent or not numeric). */
  idAssuranceLevel: number;
  /** ID token `authentication_assurance_level`. */
  authenticationAssuranceLevel: number;
}

export interface IssuedToken {
  accessToken: string;
  apiKey: string;
  accessMode: AccessMode;
  /** The grant that produced it (`client_credentials`, token exchange, `refresh_token`). */
  grantType: string;
  issuedAt: number;
  expiresAt: number;
  /** Set for user-restricted tokens; the e-RS gateway refuses user-restricted tokens without one (IAL unknown). */
  user?: TokenUser;
  /**
   * Attributes the token carries into the e-RS proxy flow, named as APIM names them. User-restricted tokens carry
   * `id_token-subject`, `id_token-id-assurance-level` and `id_token-authentication_assurance_level` (copies of
   * {@link user}, which is what the gateway reads).
   */
  attributes: Record<string, string>;
}

export interface IssueOptions {
  apiKey: string;
  accessMode: AccessMode;
  grantType: string;
  ttlSeconds: number;
  user?: TokenUser;
  attributes?: Record<string, string>;
  now?: number;
}

/** A refresh token: single use, valid until the end of the window that started with the token exchange. */
export interface RefreshTokenRecord {
  refreshToken: string;
  apiKey: string;
  user: TokenUser;
  /** ms since the epoch of the token exchange that started this chain of refreshes. */
  firstIssuedAt: number;
  /** How many refreshes produced this token (0 for the one the token exchange issued). */
  count: number;
  /** Set once it has been redeemed; a used refresh token is `invalid_grant`. */
  used: boolean;
}

export interface RefreshIssueOptions {
  apiKey: string;
  user: TokenUser;
  firstIssuedAt: number;
  count: number;
}

const opaqueToken = () => randomBytes(32).toString('base64url');

function userAttributes(user: TokenUser | undefined): Record<string, string> {
  if (user === undefined) return {};
  return {
    'id_token-subject': user.sub,
    'id_token-id-assurance-level': String(user.idAssuranceLevel),
    'id_token-authentication_assurance_level': String(user.authenticationAssuranceLevel),
  };
}

export class TokenStore {
  private readonly tokens = new Map<string, IssuedToken>();
  private readonly refreshTokens = new Map<string, RefreshTokenRecord>();

  issue(options: IssueOptions): IssuedToken {
    const issuedAt = options.now ?? Date.now();
    const token: IssuedToken = {
      accessToken: opaqueToken(),
      apiKey: options.apiKey,
      accessMode: options.accessMode,
      grantType: options.grantType,
      issuedAt,
      expiresAt: issuedAt + options.ttlSeconds * 1000,
      attributes: { ...userAttributes(options.user), ...(options.attributes ?? {}) },
    };
    if (options.user !== undefined) token.user = { ...options.user };
    this.tokens.set(token.accessToken, token);
    return token;
  }

  /** The live token for this string, or undefined when unknown, revoked or expired. */
  lookup(accessToken: string, now = Date.now()): IssuedToken | undefined {
    const token = this.tokens.get(accessToken);
    if (token === undefined) return undefined;
    if (now >= token.expiresAt) {
      this.tokens.delete(accessToken);
      return undefined;
    }
    return token;
  }

  issueRefreshToken(options: RefreshIssueOptions): RefreshTokenRecord {
    const record: RefreshTokenRecord = {
      refreshToken: opaqueToken(),
      apiKey: options.apiKey,
      user: { ...options.user },
      firstIssuedAt: options.firstIssuedAt,
      count: options.count,
      used: false,
    };
    this.refreshTokens.set(record.refreshToken, record);
    return record;
  }

  /** The refresh token record, used or not (the caller decides); undefined when never issued. */
  lookupRefreshToken(refreshToken: string): RefreshTokenRecord | undefined {
    return this.refreshTokens.get(refreshToken);
  }

  /** Invalidates every access token. Refresh tokens stay valid, as a client would expect after an APIM 401. */
  revokeAll(): void {
    this.tokens.clear();
  }

  get size(): number {
    return this.tokens.size;
  }
}
