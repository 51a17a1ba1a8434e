/**
 * Application-restricted access tokens (signed JWT, client_credentials) for one APIM application.
 *
 * One token per application, shared by every session and request of every ASID mapped to it: APIM's token
 * endpoint allows about 300 calls a minute per application, so tokens are cached until shortly before expiry and
 * concurrent callers share one in-flight fetch. Network errors and 5xx are retried with backoff; a 4xx is final and
 * its APIM `error_description` is passed on (it never contains a secret).
 */
import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import { type Clock, systemClock } from '../runtime/clock.js';
import { assertionConfig, classifyTokenError, TokenRejectedError, TokenUnavailableError } from './apim-oauth.js';

export { TokenRejectedError, TokenUnavailableError } from './apim-oauth.js';

export interface ApplicationTokenOptions {
  tokenUrl: string;
  /** APIM API key: the client_id, and iss/sub of the client assertion. */
  apiKey: string;
  keyId: string;
  privateKeyPem: string;
  /** Renew when this share of the lifetime has passed (default 0.9) and at least `minMarginMs` before expiry. */
  renewAtShare?: number;
  minMarginMs?: number;
  /** Retries after a network error or 5xx (default 3), with exponential backoff from `backoffMs` (default 250). */
  retries?: number;
  backoffMs?: number;
  /** Seconds before a token call is abandoned (default 15, as the API platform team recommends 15–30 s). */
  timeoutSeconds?: number;
  /** Extra CA certificates (PEM) to trust for the token endpoint (the rules' `apim.ca`). */
  ca?: string | undefined;
  /** How long a refusal (4xx) is remembered, so a misconfigured app does not hammer APIM (default 5 s). */
  failureMemoryMs?: number;
  clock?: Clock;
  onFetch?: (outcome: 'ok' | 'rejected' | 'unavailable', ms: number) => void;
}

interface CachedToken {
  accessToken: string;
  renewAt: number;
  expiresAt: number;
}

export class ApplicationTokenProvider {
  private current: CachedToken | undefined;
  private inFlight: Promise<CachedToken> | undefined;
  private lastFailure: { error: Error; until: number } | undefined;
  private config: Promise<oidc.Configuration> | undefined;
  private readonly clock: Clock;
  /** Count of calls made to the token endpoint (for metrics and tests). */
  fetches = 0;

  /** A short hash of the API key, naming the application in metrics and readiness. */
  readonly application: string;

  constructor(private readonly options: ApplicationTokenOptions) {
    this.clock = options.clock ?? systemClock;
    this.application = createHash('sha256').update(options.apiKey).digest('hex').slice(0, 8);
  }

  /** A valid access token, from the cache when possible. */
  async get(): Promise<string> {
    const t = this.current;
    const now = this.clock.now();
    if (t && now < t.renewAt) return t.accessToken;
    if (t && now < t.expiresAt - 1000) {
      // Past its renewal point but still valid: serve it and renew in the background, so no caller waits.
      this.renew().catch(() => undefined);
      return t.accessToken;
    }
    return (await this.renew()).accessToken;
  }

  /** The cached token while it is fresh (before its renewal point), at once; else undefined (call get()). */
  ready(): string | undefined {
    const t = this.current;
    return t && this.clock.now() < t.renewAt ? t.accessToken : undefined;
  }

  /** Forgets `token` if it is the cached one (APIM answered 401 with it), so the next get() fetches a new one. */
  invalidate(token: string): void {
    if (this.current?.accessToken === token) this.current = undefined;
  }

  /** When the cached token expires (epoch ms), if any. */
  get expiresAt(): number | undefined {
    return this.current?.expiresAt;
  }

  private renew(): Promise<CachedToken> {
    if (this.inFlight) return this.inFlight;
    const failure = this.lastFailure;
    if (failure && this.clock.now() < failure.until) return Promise.reject(failure.error);
    const p = this.fetchWithRetries().then(
      (token) => {
        this.current = token;
        this.lastFailure = undefined;
        return token;
      },
      (error: Error) => {
        const memory = error instanceof TokenRejectedError ? (this.options.failureMemoryMs ?? 5000) : 1000;
        this.lastFailure = { error, until: this.clock.now() + memory };
        throw error;
      },
    );
    this.inFlight = p.finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async fetchWithRetries(): Promise<CachedToken> {
    const retries = this.options.retries ?? 3;
    const backoff = this.options.backoffMs ?? 250;
    let lastError: Error = new TokenUnavailableError('no attempt made');
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await this.clock.sleep(backoff * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5));
      const started = this.clock.now();
      try {
        const token = await this.fetchOnce();
        this.options.onFetch?.('ok', this.clock.now() - started);
        return token;
      } catch (e) {
        if (e instanceof TokenRejectedError) {
          this.options.onFetch?.('rejected', this.clock.now() - started);
          throw e;
        }
        this.options.onFetch?.('unavailable', this.clock.now() - started);
        lastError = classifyTokenError(e);
      }
    }
    throw lastError;
  }

  private configuration(): Promise<oidc.Configuration> {
    this.config ??= assertionConfig({ ...this.options, timeoutSeconds: this.options.timeoutSeconds ?? 15 });
    return this.config;
  }

  private async fetchOnce(): Promise<CachedToken> {
    const config = await this.configuration();
    let response: oidc.TokenEndpointResponse;
    try {
      response = await oidc.clientCredentialsGrant(config);
    } catch (e) {
      throw classifyTokenError(e);
    }
    const lifetimeS = Number(response.expires_in);
    if (!response.access_token || !Number.isFinite(lifetimeS) || lifetimeS <= 0) {
      throw new TokenUnavailableError('the token endpoint answered without a usable access_token/expires_in');
    }
    const issued = this.clock.now();
    const lifetimeMs = lifetimeS * 1000;
    const share = this.options.renewAtShare ?? 0.9;
    const margin = Math.min(this.options.minMarginMs ?? 30_000, lifetimeMs * (1 - share));
    return {
      accessToken: response.access_token,
      renewAt: issued + Math.min(lifetimeMs * share, lifetimeMs - margin),
      expiresAt: issued + lifetimeMs,
    };
  }
}
