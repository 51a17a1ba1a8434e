/**
 * The CIS2 side of token exchange: the issuer APIM expects in subject tokens and the keys it verifies them with.
 *
 * As APIM (IDS `Flow.PostTokenTokenExchange`: `LookupCache.TokenExchangeJWKS`, `ServiceCallout.cis2GetJWKS`), the
 * JWKS is fetched on first use and cached, and fetched again when a subject token names a `kid` the cached set lacks
 * (at most once per request, so an unknown `kid` costs one fetch, then `no matching public key`). The JWKS is given
 * by URL, or found through the issuer's discovery document (`ers-bridge emulate-apim --cis2-issuer`).
 */
import type { JsonWebKey } from 'node:crypto';
import type { StandInCis2Options } from './types.js';

/** The JWKS could not be fetched or was not a JWKS. */
export class JwksUnavailableError extends Error {}

/** JWKS fetches give up after this long. */
export const JWKS_FETCH_TIMEOUT_MS = 5000;

/** `new URL(x).href` (so `https://host:443/p` equals `https://host/p`), or the string itself when not a URL. */
export function normaliseIssuer(issuer: string): string {
  try {
    return new URL(issuer).href;
  } catch {
    return issuer;
  }
}

function isKeyList(value: unknown): value is { keys: JsonWebKey[] } {
  const keys = (value as { keys?: unknown } | null)?.keys;
  return Array.isArray(keys) && keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k));
}

export class Cis2Keys {
  /** The configured issuer in normalised form. */
  readonly issuer: string;
  private readonly staticKeys: JsonWebKey[];
  private fetched: JsonWebKey[] | undefined;
  private inFlight: Promise<JsonWebKey[]> | undefined;
  /** How many times the JWKS has been fetched (for diagnostics and tests). */
  fetchCount = 0;

  constructor(private readonly options: StandInCis2Options) {
    if (typeof options.issuer !== 'string' || options.issuer === '') {
      throw new Error('apim-standin: cis2.issuer must be a non-empty string');
    }
    if (options.jwksUri === undefined && options.jwks === undefined && options.discoveryUri === undefined) {
      throw new Error('apim-standin: cis2 needs jwksUri, jwks or discoveryUri');
    }
    if (options.discoveryUri !== undefined && !URL.canParse(options.discoveryUri)) {
      throw new Error(`apim-standin: cis2.discoveryUri is not a URL (${options.discoveryUri})`);
    }
    if (options.jwks !== undefined && !isKeyList(options.jwks)) {
      throw new Error('apim-standin: cis2.jwks needs a keys array');
    }
    if (options.jwksUri !== undefined && !URL.canParse(options.jwksUri)) {
      throw new Error(`apim-standin: cis2.jwksUri is not a URL (${options.jwksUri})`);
    }
    this.issuer = normaliseIssuer(options.issuer);
    this.staticKeys = options.jwks?.keys ?? [];
  }

  /** True when `iss` names the configured issuer. */
  issuerMatches(iss: unknown): boolean {
    return typeof iss === 'string' && normaliseIssuer(iss) === this.issuer;
  }

  /**
   * The key with this `kid`: configured keys first, then the cached JWKS (fetched if never fetched), then — when the
   * `kid` is still unknown and the cache predates this call — one fresh fetch. Throws {@link JwksUnavailableError}.
   */
  async keyFor(kid: string): Promise<JsonWebKey | undefined> {
    const find = (keys: JsonWebKey[]) => keys.find((k) => k.kid === kid);
    const configured = find(this.staticKeys);
    if (configured !== undefined || (this.options.jwksUri ?? this.options.discoveryUri) === undefined)
      return configured;
    const fresh = this.fetched === undefined;
    const cached = find(fresh ? await this.refetch() : this.fetched!);
    if (cached !== undefined || fresh) return cached;
    return find(await this.refetch());
  }

  private refetch(): Promise<JsonWebKey[]> {
    // Concurrent requests share one fetch.
    this.inFlight ??= this.fetchJwks().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async fetchJwks(): Promise<JsonWebKey[]> {
    const uri = this.options.jwksUri ?? (await this.jwksUriFromDiscovery());
    this.fetchCount += 1;
    const body = await getJson(uri);
    if (!isKeyList(body)) throw new JwksUnavailableError(`GET ${uri} did not return a JWKS`);
    this.fetched = body.keys;
    return body.keys;
  }

  /** The discovery document's `jwks_uri`; the document must name the configured issuer. */
  private async jwksUriFromDiscovery(): Promise<string> {
    const uri = this.options.discoveryUri!;
    const doc = (await getJson(uri)) as { issuer?: unknown; jwks_uri?: unknown } | null;
    if (typeof doc?.issuer !== 'string' || normaliseIssuer(doc.issuer) !== this.issuer) {
      throw new JwksUnavailableError(`GET ${uri}: the discovery document does not name the issuer ${this.issuer}`);
    }
    if (typeof doc.jwks_uri !== 'string' || !URL.canParse(doc.jwks_uri)) {
      throw new JwksUnavailableError(`GET ${uri}: the discovery document has no jwks_uri`);
    }
    return doc.jwks_uri;
  }
}

async function getJson(uri: string): Promise<unknown> {
  try {
    const res = await fetch(uri, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(JWKS_FETCH_TIMEOUT_MS),
    });
    if (!res.ok) throw new JwksUnavailableError(`GET ${uri} answered ${res.status}`);
    return await res.json();
  } catch (err) {
    if (err instanceof JwksUnavailableError) throw err;
    throw new JwksUnavailableError(`GET ${uri} failed: ${(err as Error).message}`);
  }
}
