/**
 * User-restricted APIM tokens (CIS2 separate authentication): a CIS2 ID token is exchanged at APIM's token
 * endpoint for an access token and a refresh token; the refresh grant renews them.
 *
 * Refresh tokens are single-use at APIM. This client sends each refresh token at most once and never retries a
 * refresh: whether a failed call spent the token cannot be known, except when it never left ers-bridge.
 */
import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import {
  assertionConfig,
  classifyTokenError,
  secondsOf,
  secretPostConfig,
  TokenRejectedError,
  TokenUnavailableError,
} from './apim-oauth.js';

export interface UserTokenSet {
  accessToken: string;
  accessExpiresAt: number;
  refreshToken: string;
  refreshExpiresAt: number;
}

export interface ApimUserTokenOptions {
  tokenUrl: string;
  apiKey: string;
  apiSecret: string;
  keyId: string;
  privateKeyPem: string;
  now?: () => number;
  timeoutSeconds?: number;
  /** Extra CA certificates (PEM) to trust for the token endpoint (the rules' `apim.ca`). */
  ca?: string | undefined;
  /** Told how each token exchange and refresh ended (for metrics). */
  onOutcome?: (grant: 'exchange' | 'refresh', outcome: UserTokenOutcome) => void;
}

/**
 * How a token exchange or refresh ended: ok; rejected (APIM refused it); unavailable (APIM could not be reached or
 * answered badly); already_used (a refresh token this process has sent once already: refused before sending).
 */
export type UserTokenOutcome = 'ok' | 'rejected' | 'unavailable' | 'already_used';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
/** APIM's CIS2 refresh window is 12 hours; used only when a response omits refresh_token_expires_in. */
const DEFAULT_REFRESH_WINDOW_S = 43_199;

export class ApimUserTokens {
  private exchangeConfig: Promise<oidc.Configuration> | undefined;
  private readonly refreshConfig: oidc.Configuration;
  private readonly now: () => number;
  /** Refresh tokens already sent, by hash: the last guard against ever sending one twice from this process. */
  private readonly spent = new Set<string>();
  exchanges = 0;
  refreshes = 0;

  constructor(private readonly options: ApimUserTokenOptions) {
    this.now = options.now ?? Date.now;
    this.refreshConfig = secretPostConfig(options);
  }

  /** Exchanges a CIS2 ID token for APIM tokens. Safe to retry: an ID token is not single-use. */
  async exchange(idToken: string): Promise<UserTokenSet> {
    this.exchangeConfig ??= assertionConfig(this.options);
    const config = await this.exchangeConfig;
    this.exchanges++;
    try {
      const r = await oidc.genericGrantRequest(config, TOKEN_EXCHANGE, {
        subject_token: idToken,
        subject_token_type: ID_TOKEN_TYPE,
      });
      const set = this.tokenSet(r);
      this.options.onOutcome?.('exchange', 'ok');
      return set;
    } catch (e) {
      const err = classifyTokenError(e, 'token-exchange');
      this.options.onOutcome?.('exchange', outcomeOf(err));
      throw err;
    }
  }

  /** Renews with a refresh token, sending it exactly once. */
  async refresh(refreshToken: string): Promise<UserTokenSet> {
    const id = fingerprint(refreshToken);
    if (this.spent.has(id)) {
      this.options.onOutcome?.('refresh', 'already_used');
      throw new TokenRejectedError(
        400,
        'invalid_grant',
        'ers-bridge already used this refresh token once',
        'refresh_token',
      );
    }
    this.spent.add(id);
    if (this.spent.size > 100_000) this.spent.delete(this.spent.values().next().value!);
    this.refreshes++;
    try {
      const set = this.tokenSet(await oidc.refreshTokenGrant(this.refreshConfig, refreshToken));
      this.options.onOutcome?.('refresh', 'ok');
      return set;
    } catch (e) {
      const err = classifyTokenError(e, 'refresh_token');
      this.options.onOutcome?.('refresh', outcomeOf(err));
      // A call that never left ers-bridge did not spend the token: it may be sent later.
      if (err instanceof TokenUnavailableError && err.notSent) this.spent.delete(id);
      throw err;
    }
  }

  private tokenSet(r: oidc.TokenEndpointResponse): UserTokenSet {
    const access = secondsOf(r.expires_in);
    const refreshIn = secondsOf((r as Record<string, unknown>)['refresh_token_expires_in']) ?? DEFAULT_REFRESH_WINDOW_S;
    if (!r.access_token || !access || typeof r.refresh_token !== 'string' || r.refresh_token === '') {
      throw new TokenUnavailableError('APIM answered without access_token, expires_in and refresh_token');
    }
    const now = this.now();
    return {
      accessToken: r.access_token,
      accessExpiresAt: now + access * 1000,
      refreshToken: r.refresh_token,
      refreshExpiresAt: now + refreshIn * 1000,
    };
  }
}

function outcomeOf(err: TokenRejectedError | TokenUnavailableError): UserTokenOutcome {
  return err instanceof TokenRejectedError ? 'rejected' : 'unavailable';
}

function fingerprint(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
