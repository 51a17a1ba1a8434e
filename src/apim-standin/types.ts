import type { JsonWebKey } from 'node:crypto';

/** The access modes an APIM application can have for the e-RS API products. */
export type AccessMode = 'application-restricted' | 'user-restricted';

/** An APIM developer application registered on the stand-in. */
export interface StandInApp {
  /** APIM application API key = client_id = `iss`/`sub` of client assertions. */
  apiKey: string;
  /** The ASID registered on the app (APIM custom attribute `asid`). */
  asid: string;
  /** Public keys (RSA, each with `kid`) registered for the app (what APIM fetches from `jwks-resource-url`). */
  jwks: { keys: JsonWebKey[] };
  accessMode: AccessMode;
  /** App-restricted attribute `app-restricted-ods-code`. */
  odsCode?: string;
  /** App-restricted attribute `app-restricted-business-function` (APIM default `PROVIDER_AUTHORISED_APPLICATION`). */
  businessFunction?: string;
  /** For later: refresh tokens use client_secret_post. Accepted and stored, not used yet. */
  apiSecret?: string;
}

/** One HTTP request as the stand-in received it, recorded before it was answered. */
export interface RecordedRequest {
  method: string;
  /** Path + query as received. */
  url: string;
  /** Names in the case received, in order (from `req.raw.rawHeaders`). */
  rawHeaders: Array<[string, string]>;
  /** Lower-cased node headers. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  at: number;
}

export interface StandInOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (an ephemeral port). */
  port?: number;
  apps: StandInApp[];
  /** Default 599; issued as the string form, as APIM does. */
  accessTokenTtlSeconds?: number;
  /** Default `/oauth2/token`. */
  tokenUrlPath?: string;
  /** Default `/referrals/FHIR`. */
  basePath?: string;
  /** Default false. */
  logger?: boolean;
}

export interface ApimStandIn {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** origin + basePath */
  baseUrl: string;
  /** origin + tokenUrlPath */
  tokenUrl: string;
  /** Every e-RS (non-token) request, in order. */
  received: RecordedRequest[];
  /** Every token endpoint request (accepted or not). */
  tokenRequests: RecordedRequest[];
  /** Makes every issued access token invalid (tests use it to force APIM 401s). */
  revokeAccessTokens(): void;
  addApp(app: StandInApp): void;
  close(): Promise<void>;
}
