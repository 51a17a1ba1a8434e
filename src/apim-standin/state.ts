import type { CompiledRoute } from './catalogue.js';
import type { Cis2Keys } from './cis2.js';
import type { FixtureView } from './fixtures.js';
import type { TokenStore } from './tokens.js';
import type { RecordedRequest, StandInApp, StandInUser } from './types.js';

/** A file the fake object store serves once A042 has redirected to it. */
export interface ObjectStoreEntry {
  rel: string;
  filename: string;
  contentType: string;
}

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
  readonly objectStore: Map<string, ObjectStoreEntry>;
}

export function tokenUrl(state: StandInState): string {
  return state.origin + state.tokenUrlPath;
}

export function baseUrl(state: StandInState): string {
  return state.origin + state.basePath;
}
