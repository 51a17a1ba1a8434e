/**
 * openid-client configurations for APIM's token endpoint, and the classification of its failures.
 *
 * APIM has no discovery document, so the metadata is given by hand. Two gaps of openid-client against APIM are
 * closed here: the client assertion needs `typ: JWT` and `aud` = the exact token URL, and APIM compares the
 * request Content-Type exactly (openid-client would add `;charset=UTF-8`).
 */
import * as oidc from 'openid-client';
import { Agent, type RequestInit as UndiciInit, fetch as undiciFetch } from 'undici';
import { importRs512PrivateKey } from './keys.js';

const FORM = 'application/x-www-form-urlencoded';

/** The grant a token call made: what the fault table tells the client depends on it. */
export type TokenGrant = 'client_credentials' | 'token-exchange' | 'refresh_token';

/** APIM refused the request (4xx): a configuration or grant problem that retrying will not fix. */
export class TokenRejectedError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly errorDescription: string,
    readonly grant: TokenGrant = 'client_credentials',
  ) {
    super(`APIM token endpoint refused the request (${status} ${error}): ${errorDescription}`);
    this.name = 'TokenRejectedError';
  }
}

/** The token endpoint could not be reached or kept failing (network, timeout, 5xx). */
export class TokenUnavailableError extends Error {
  constructor(
    readonly detail: string,
    /** True when the request certainly never reached APIM (so a single-use credential was not spent). */
    readonly notSent = false,
  ) {
    super(`APIM token endpoint unavailable: ${detail}`);
    this.name = 'TokenUnavailableError';
  }
}

/** One connection pool per extra CA (`apim.ca`): the token endpoint verified against it, as the e-RS calls are. */
const agents = new Map<string, Agent>();
function agentFor(ca: string): Agent {
  let agent = agents.get(ca);
  if (!agent) {
    agent = new Agent({ connect: { ca } });
    agents.set(ca, agent);
  }
  return agent;
}

function exactFormContentType(config: oidc.Configuration, timeoutSeconds: number, tokenUrl: string, ca?: string): void {
  config.timeout = timeoutSeconds;
  config[oidc.customFetch] = (url, init) => {
    const headers = { ...(init.headers as Record<string, string>), 'content-type': FORM };
    if (ca === undefined) return fetch(url, { ...init, headers });
    // undici's own fetch with its Agent (Node's built-in fetch cannot take this undici's dispatcher).
    return undiciFetch(url, {
      ...(init as UndiciInit),
      headers,
      dispatcher: agentFor(ca),
    }) as unknown as Promise<Response>;
  };
  if (new URL(tokenUrl).protocol === 'http:') oidc.allowInsecureRequests(config); // loopback only (rules schema)
}

export interface AssertionClient {
  tokenUrl: string;
  apiKey: string;
  keyId: string;
  privateKeyPem: string;
  timeoutSeconds?: number;
  /** Extra CA certificates (PEM) to trust for the token endpoint: the rules' `apim.ca`. */
  ca?: string | undefined;
}

/** A configuration that authenticates with an RS512 signed-JWT client assertion (client_credentials, token exchange). */
export async function assertionConfig(c: AssertionClient): Promise<oidc.Configuration> {
  const key = await importRs512PrivateKey(c.privateKeyPem, `private key for API key ${c.apiKey.slice(0, 4)}…`);
  const config = new oidc.Configuration(
    { issuer: new URL(c.tokenUrl).origin, token_endpoint: c.tokenUrl },
    c.apiKey,
    undefined,
    oidc.PrivateKeyJwt(
      { key, kid: c.keyId },
      {
        [oidc.modifyAssertion]: (header, payload) => {
          header.typ = 'JWT';
          payload.aud = c.tokenUrl;
        },
      },
    ),
  );
  exactFormContentType(config, c.timeoutSeconds ?? 15, c.tokenUrl, c.ca);
  return config;
}

/** A configuration that authenticates with client_secret_post (APIM's refresh grant). */
export function secretPostConfig(c: {
  tokenUrl: string;
  apiKey: string;
  apiSecret: string;
  timeoutSeconds?: number;
  ca?: string | undefined;
}) {
  const config = new oidc.Configuration(
    { issuer: new URL(c.tokenUrl).origin, token_endpoint: c.tokenUrl },
    c.apiKey,
    undefined,
    oidc.ClientSecretPost(c.apiSecret),
  );
  exactFormContentType(config, c.timeoutSeconds ?? 15, c.tokenUrl, c.ca);
  return config;
}

const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Turns whatever openid-client or fetch threw into TokenRejectedError or TokenUnavailableError. */
export function classifyTokenError(
  e: unknown,
  grant: TokenGrant = 'client_credentials',
): TokenRejectedError | TokenUnavailableError {
  if (e instanceof TokenRejectedError || e instanceof TokenUnavailableError) return e;
  if (e instanceof oidc.ResponseBodyError) {
    if (e.status >= 400 && e.status < 500) {
      return new TokenRejectedError(e.status, e.error, e.error_description ?? '(no error_description)', grant);
    }
    return new TokenUnavailableError(`HTTP ${e.status} ${e.error}`);
  }
  if (e instanceof oidc.ClientError) {
    const status = (e.cause as Response | undefined)?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return new TokenRejectedError(status, 'invalid_response', `HTTP ${status} without an OAuth error body`, grant);
    }
    if (typeof status === 'number') return new TokenUnavailableError(`HTTP ${status}`);
    return new TokenUnavailableError(e.message);
  }
  if (e instanceof Error) {
    if (e.name === 'TimeoutError' || e.name === 'AbortError')
      return new TokenUnavailableError('the token call timed out');
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const code = cause?.code ?? '';
    return new TokenUnavailableError(code || cause?.message || e.message, NOT_SENT.has(code));
  }
  return new TokenUnavailableError('unknown error');
}

/** Seconds from a token response field that APIM sends as a string ("599"). */
export function secondsOf(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
  return Number.isFinite(n) && n > 0 ? n : undefined;
}
