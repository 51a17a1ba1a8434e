import type { JsonWebKey } from 'node:crypto';
import type { Clock } from '../runtime/clock.js';

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
  /**
   * The app's API secret: the `client_secret` of the refresh grant (client_secret_post, as APIM). A user-restricted
   * app without one cannot refresh.
   */
  apiSecret?: string;
}

/** One organisation at which a CIS2 user holds e-RS business functions (what A030 returns as a PractitionerRole). */
export interface StandInUserRole {
  /** ODS code: the value of `NHSD-End-User-Organisation-ODS`. */
  odsCode: string;
  orgName: string;
  /** Values of `NHSD-eRS-Business-Function`, e.g. `REFERRING_CLINICIAN`. */
  businessFunctions: string[];
}

/** A healthcare worker known to the stand-in, by CIS2 user id (the ID token `sub`). */
export interface StandInUser {
  roles: StandInUserRole[];
}

/** The CIS2 identity provider whose ID tokens the token exchange grant accepts as subject tokens. */
export interface StandInCis2Options {
  /** Compared with the ID token `iss` in `new URL(x).href` form, so `https://host:443/path` matches `https://host/path`. */
  issuer: string;
  /** Fetched with `fetch()` on first use and cached; fetched again (once per request) when a `kid` is unknown. */
  jwksUri?: string;
  /** Keys known without fetching (checked before the fetched ones). */
  jwks?: { keys: JsonWebKey[] };
  /**
   * The issuer's OpenID discovery document (`<issuer>/.well-known/openid-configuration`): without `jwksUri`, its
   * `jwks_uri` is the JWKS, read on first use (and again whenever the JWKS is fetched again).
   */
  discoveryUri?: string;
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
  /**
   * The origin clients use to reach the stand-in (e.g. `http://apim-standin:9000`), when it differs from the
   * address it listens on. Token URLs (the `aud` of client assertions) and links in bodies use it. Default: the
   * bound address, or `http://127.0.0.1:<port>` when bound to every interface (0.0.0.0, ::).
   */
  publicUrl?: string;
  apps: StandInApp[];
  /** Default 599; issued as the string form, as APIM does. */
  accessTokenTtlSeconds?: number;
  /** Default `/oauth2/token`. */
  tokenUrlPath?: string;
  /** Default `/referrals/FHIR`. */
  basePath?: string;
  /** Default false. */
  logger?: boolean;
  /** Enables token exchange: subject tokens are CIS2 ID tokens verified against this issuer's keys. */
  cis2?: StandInCis2Options;
  /** CIS2 users by user id (the ID token `sub`): their organisations and business functions. */
  users?: Record<string, StandInUser>;
  /**
   * Absolute refresh window in seconds, counted from the token exchange that started the chain (default 43200, the
   * 12 h APIM uses for CIS2). `refresh_token_expires_in` is the number of seconds left in it.
   */
  refreshWindowSeconds?: number;
  /**
   * The stand-in's time: a Clock (the one ers-bridge runs on, in tests) or a function giving milliseconds since the
   * epoch (default `Date.now`). Tests move it forward instead of waiting.
   */
  clock?: Clock | (() => number);
  /**
   * Operations APIM has removed, by A-code (e.g. `['A006', 'A021', 'A032']`, as NHS retired them): they answer as
   * any path APIM does not serve, 404 with an OperationOutcome (`emulate-apim --retire`).
   */
  retire?: string[];
  /**
   * For tests of failures part-way: operations (by A-code) that answer this e-RS error, after every gateway check,
   * instead of their example.
   */
  failWith?: Record<string, { status: number; code: string; diagnostics?: string }>;
  /** How long an A042 download link works, by the stand-in's clock (default 60 s); each works once. */
  objectStoreLinkTtlSeconds?: number;
  /**
   * Serve HTTPS with this certificate (PEM chain) and key, the object store too: for clients that reach the stand-in
   * by a name rather than loopback (the Docker Compose trial), which must then trust its CA (`apim.ca`).
   */
  tls?: StandInTls;
}

export interface StandInTls {
  cert: string;
  key: string;
}

/** The object store A042 redirects to: its own loopback origin. */
export interface StandInObjectStoreView {
  /** `http://127.0.0.1:<port>`, once listening. */
  readonly origin: string;
  /** Every download link A042 handed out, in order. */
  readonly issued: readonly string[];
  /** The object ids downloaded (each link works once). */
  readonly served: readonly string[];
}

export interface ApimStandIn {
  /** `http://127.0.0.1:<port>` (`https://` with `tls`) */
  origin: string;
  /** origin + basePath */
  baseUrl: string;
  /** origin + tokenUrlPath */
  tokenUrl: string;
  /** Every e-RS (non-token) request, in order. */
  received: RecordedRequest[];
  /** Every token endpoint request (accepted or not). */
  tokenRequests: RecordedRequest[];
  /** The object store A042 redirects to. */
  objectStore: StandInObjectStoreView;
  /** Makes every issued access token invalid (tests use it to force APIM 401s). */
  revokeAccessTokens(): void;
  addApp(app: StandInApp): void;
  /** Adds or replaces a CIS2 user (by ID token `sub`); takes effect for tokens already issued. */
  addUser(sub: string, user: StandInUser): void;
  close(): Promise<void>;
}
