/**
 * Translate step (response side), pure: from APIM's answer to what a legacy client expects.
 *
 * Response headers are also forwarded by allow-list. APIM's `X-Request-ID` (the e-RS transaction id) becomes the
 * legacy `X_ERS_TRANSACTION_ID`. Absolute APIM URLs inside JSON bodies and in `Location` are rewritten to the legacy
 * base ers-bridge serves, so links keep working for the legacy client.
 */

const PASS_THROUGH = [
  'content-type',
  'content-disposition',
  'content-language',
  'etag',
  'cache-control',
  'expires',
  'last-modified',
  'retry-after',
  'pragma',
] as const;

export interface BaseUrls {
  /** APIM e-RS base, e.g. `https://int.api.service.nhs.uk/referrals/FHIR`. */
  apimBase: string;
  /** Legacy base as the client sees ers-bridge, e.g. `https://ers-bridge.trust.nhs.uk/ers-api`. */
  legacyBase: string;
  /** The HSCN base the client may still have hard-coded, e.g. `https://api.int1.ers.ncrs.nhs.uk/ers-api`. */
  hscnBase?: string;
}

export type UpstreamHeaders = Record<string, string | string[] | undefined>;

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Legacy response headers from APIM's. `content-length` is left to the sender (bodies may be rewritten). */
export function legacyResponseHeaders(
  upstream: UpstreamHeaders,
  urls: BaseUrls,
  correlationId: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PASS_THROUGH) {
    const v = first(upstream[name]);
    if (v !== undefined) out[name] = v;
  }
  const location = first(upstream['location']);
  if (location !== undefined) out['location'] = rewriteApimUrls(location, urls);
  const transactionId = first(upstream['x-request-id']);
  if (transactionId !== undefined && /^[A-Za-z0-9-]{1,100}$/.test(transactionId)) {
    out['X_ERS_TRANSACTION_ID'] = transactionId;
  }
  out['x-correlation-id'] = correlationId;
  return out;
}

interface Replacement {
  from: string;
  to: string;
}

function pairs(fromBase: string, toBase: string, fromSuffix: string, toSuffix: string): Replacement[] {
  const from = `${fromBase}${fromSuffix}`;
  const to = `${toBase}${toSuffix}`;
  // JSON may escape "/" as "\/": rewrite both spellings.
  return [
    { from, to },
    { from: from.replaceAll('/', '\\/'), to: to.replaceAll('/', '\\/') },
  ];
}

function replaceAll(text: string, replacements: Replacement[]): string {
  let out = text;
  for (const r of replacements) if (out.includes(r.from)) out = out.replaceAll(r.from, r.to);
  return out;
}

/** Replacement lists are built once per pair of bases (there are few: one APIM base, a few legacy bases). */
const TO_LEGACY = new Map<string, Replacement[]>();
const TO_APIM = new Map<string, Replacement[]>();

/** APIM → legacy: `<apimBase>/STU3/X` → `<legacyBase>/STU3/v1/X`, and `<apimBase>/R4/X` → `<legacyBase>/R4/v1/X`. */
export function rewriteApimUrls(text: string, urls: BaseUrls): string {
  const key = `${urls.apimBase}|${urls.legacyBase}`;
  let list = TO_LEGACY.get(key);
  if (!list) {
    list = [
      ...pairs(urls.apimBase, urls.legacyBase, '/STU3/', '/STU3/v1/'),
      ...pairs(urls.apimBase, urls.legacyBase, '/R4/', '/R4/v1/'),
    ];
    if (TO_LEGACY.size < 1000) TO_LEGACY.set(key, list);
  }
  return replaceAll(text, list);
}

/** Legacy → APIM, for JSON request bodies: links to ers-bridge or to the old HSCN host become APIM links. */
export function rewriteLegacyUrls(text: string, urls: BaseUrls): string {
  const key = `${urls.apimBase}|${urls.legacyBase}|${urls.hscnBase ?? ''}`;
  let list = TO_APIM.get(key);
  if (!list) {
    const bases = [urls.legacyBase, ...(urls.hscnBase ? [urls.hscnBase] : [])];
    list = bases.flatMap((b) => [
      ...pairs(b, urls.apimBase, '/STU3/v1/', '/STU3/'),
      ...pairs(b, urls.apimBase, '/R4/v1/', '/R4/'),
    ]);
    if (TO_APIM.size < 1000) TO_APIM.set(key, list);
  }
  return replaceAll(text, list);
}
