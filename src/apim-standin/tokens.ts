/**
 * The access tokens the stand-in has issued: opaque random strings mapped to the app, the access mode and the expiry,
 * like the Apigee OAuthV2 token store behind APIM.
 */
import { randomBytes } from 'node:crypto';
import type { AccessMode } from './types.js';

export interface IssuedToken {
  accessToken: string;
  apiKey: string;
  accessMode: AccessMode;
  /** The grant that produced it (`client_credentials`, later token exchange / refresh). */
  grantType: string;
  issuedAt: number;
  expiresAt: number;
  /**
   * Attributes the token carries into the e-RS proxy flow. For user-restricted tokens (token exchange, a later
   * issue) this is where the ID-token subject and assurance levels go (`id_token-subject`, …).
   */
  attributes: Record<string, string>;
}

export interface IssueOptions {
  apiKey: string;
  accessMode: AccessMode;
  grantType: string;
  ttlSeconds: number;
  attributes?: Record<string, string>;
  now?: number;
}

export class TokenStore {
  private readonly tokens = new Map<string, IssuedToken>();

  issue(options: IssueOptions): IssuedToken {
    const issuedAt = options.now ?? Date.now();
    const token: IssuedToken = {
      accessToken: randomBytes(32).toString('base64url'),
      apiKey: options.apiKey,
      accessMode: options.accessMode,
      grantType: options.grantType,
      issuedAt,
      expiresAt: issuedAt + options.ttlSeconds * 1000,
      attributes: { ...(options.attributes ?? {}) },
    };
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

  revokeAll(): void {
    this.tokens.clear();
  }

  get size(): number {
    return this.tokens.size;
  }
}
