import type { CompiledRoute } from './catalogue.js';
import type { Cis2Keys } from './cis2.js';
import type { FixtureView } from './fixtures.js';
import type { StandInObjectStore } from './object-store.js';
import type { TokenStore } from './tokens.js';
import type { RecordedRequest, StandInApp, StandInUser } from './types.js';

/** Everything one stand-in instance holds. Shared by the token endpoint and the e-RS gateway. */
export interface StandInState {
  /** Set once the server listens; until then derived from the options. */
  origin: string;
  readonly basePath: string;
  readonly tokenUrlPath: string;
  readonly accessTokenTtlSeconds: number;
  /** Absolute refresh window (seconds) from the token exchange that started a refresh chain. */
  readonly refreshWindowSeconds: number;
  /** ms since the epoch; every expiry and window decision uses it. */
  readonly now: () => number;
  readonly apps: Map<string, StandInApp>;
  /** CIS2 users by ID token `sub`. */
  readonly users: Map<string, StandInUser>;
  /** The CIS2 issuer and its keys; undefined when token exchange is not configured. */
  readonly cis2: Cis2Keys | undefined;
  readonly tokens: TokenStore;
  /** `jti` values already presented, per API key (APIM caches them for 30 days; we keep them for the process). */
  readonly usedJtis: Map<string, Set<string>>;
  readonly received: RecordedRequest[];
  readonly tokenRequests: RecordedRequest[];
  readonly routes: CompiledRoute[];
  readonly fixtures: FixtureView;
  /** The object store A042 redirects to (a loopback server of its own). */
  readonly objectStore: StandInObjectStore;
  /** Operations removed (`retire`): their routes are gone from `routes`. */
  readonly retired: ReadonlySet<string>;
  /** Operations answering a scripted e-RS error (`failWith`, tests only). */
  readonly failWith: ReadonlyMap<string, { status: number; code: string; diagnostics?: string }>;
}

export function tokenUrl(state: StandInState): string {
  return state.origin + state.tokenUrlPath;
}

export function baseUrl(state: StandInState): string {
  return state.origin + state.basePath;
}
