/**
 * Translate step (response side), pure: from APIM's answer to what a legacy client expects.
 *
 * Response headers are also forwarded by allow-list. APIM's `X-Request-ID` (the e-RS transaction id) becomes the
 * legacy `X_ERS_TRANSACTION_ID`. Absolute APIM URLs inside JSON bodies and in `Location` are rewritten to the legacy
 * base ers-bridge serves, so links keep working for the legacy client.
 */
import { LRUCache } from 'lru-cache';
import { OncePer } from '../runtime/once-per.js';

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
  // Stryker disable next-line ConditionalExpression: replaceAll without a match gives the same text; the check only spares the call
  for (const r of replacements) if (out.includes(r.from)) out = out.replaceAll(r.from, r.to);
  return out;
}

interface ByteReplacement {
  from: Buffer;
  to: Buffer;
}

/**
 * Replacements on bytes, with an anchor: a run of bytes every pattern contains (the APIM host, which a JSON `\/`
 * escape leaves as it is), and where it sits in each. The body is scanned once, for the anchor; each pattern is then
 * checked only where its anchor is. Without a common anchor, each pattern is searched for.
 */
interface ByteRewrite {
  replacements: readonly ByteReplacement[];
  anchor?: { bytes: Buffer; offsets: readonly number[] };
}

/**
 * The same replacements on bytes: every pattern is ASCII, so searching the UTF-8 bytes finds exactly what the string
 * search finds, without decoding the answer and encoding it again. A body without any pattern is returned as it is
 * (no copy); one with some is copied once.
 */
function replaceAllBytes(body: Buffer, rewrite: ByteRewrite): Buffer {
  const { replacements, anchor } = rewrite;
  if (!anchor) return replaceEach(body, replacements);
  let at = body.indexOf(anchor.bytes);
  // Stryker disable next-line ConditionalExpression: without the anchor the loop below never runs and returns the body as well
  if (at < 0) return body;
  const parts: Buffer[] = [];
  let size = 0;
  let pos = 0;
  while (at >= 0) {
    let next = at + 1;
    for (let j = 0; j < replacements.length; j++) {
      const r = replacements[j]!;
      const start = at - anchor.offsets[j]!;
      const end = start + r.from.length;
      if (start < pos || end > body.length || body.compare(r.from, 0, r.from.length, start, end) !== 0) continue;
      // Stryker disable next-line ConditionalExpression,EqualityOperator: at start === pos the slice is empty and adds no byte
      if (start > pos) parts.push(body.subarray(pos, start));
      parts.push(r.to);
      size += start - pos + r.to.length;
      pos = end;
      next = end;
      break;
    }
    at = body.indexOf(anchor.bytes, next);
  }
  if (parts.length === 0) return body;
  // Stryker disable next-line ConditionalExpression,EqualityOperator: at pos === body.length the tail is empty and adds no byte
  if (pos < body.length) {
    parts.push(body.subarray(pos));
    size += body.length - pos;
  }
  return Buffer.concat(parts, size);
}

/** Without an anchor: where each pattern occurs next, searched again only once passed; the leftmost goes first. */
function replaceEach(body: Buffer, replacements: readonly ByteReplacement[]): Buffer {
  const next = replacements.map((r) => body.indexOf(r.from));
  if (next.every((i) => i < 0)) return body;
  const parts: Buffer[] = [];
  let size = 0;
  let pos = 0;
  for (;;) {
    let k = -1;
    // Stryker disable next-line EqualityOperator: next[next.length] is undefined, never >= 0, so one more turn picks nothing
    for (let j = 0; j < next.length; j++) {
      const at = next[j]!;
      if (at >= 0 && (k < 0 || at < next[k]!)) k = j;
    }
    if (k < 0) break;
    const at = next[k]!;
    const r = replacements[k]!;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: at at === pos the slice is empty and adds no byte
    if (at > pos) {
      parts.push(body.subarray(pos, at));
      size += at - pos;
    }
    parts.push(r.to);
    size += r.to.length;
    pos = at + r.from.length;
    // Stryker disable next-line EqualityOperator: next[next.length] is undefined, never >= 0, so one more turn changes nothing
    for (let j = 0; j < next.length; j++) {
      // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: searching again from pos a pattern that is absent, or already at or past pos, finds the same place
      if (next[j]! >= 0 && next[j]! < pos) next[j] = body.indexOf(replacements[j]!.from, pos);
    }
  }
  // Stryker disable next-line ConditionalExpression,EqualityOperator: at pos === body.length the tail is empty and adds no byte
  if (pos < body.length) {
    parts.push(body.subarray(pos));
    size += body.length - pos;
  }
  return Buffer.concat(parts, size);
}

/** The longest run between `/` or `\` separators of the first pattern that every pattern holds (6 bytes or more). */
function anchorOf(patterns: readonly string[]): string | undefined {
  const [first] = patterns;
  // Stryker disable next-line ConditionalExpression: every list has four patterns or more, so first is never undefined
  if (first === undefined) return undefined;
  const runs = first
    .split(/[/\\]/)
    .filter((t) => t.length >= 6)
    .sort((a, b) => b.length - a.length);
  return runs.find((t) => patterns.every((p) => p.includes(t)));
}

function asBytes(list: readonly Replacement[]): ByteRewrite {
  // Stryker disable next-line StringLiteral: Buffer.from reads a string as UTF-8 when the encoding is ''
  const replacements = list.map((r) => ({ from: Buffer.from(r.from, 'utf8'), to: Buffer.from(r.to, 'utf8') }));
  const anchor = anchorOf(list.map((r) => r.from));
  if (anchor === undefined) return { replacements };
  return {
    replacements,
    anchor: {
      // Stryker disable next-line StringLiteral: Buffer.from reads a string as UTF-8 when the encoding is ''
      bytes: Buffer.from(anchor, 'utf8'),
      offsets: list.map((r) => Buffer.byteLength(r.from.slice(0, r.from.indexOf(anchor)))),
    },
  };
}

/**
 * Replacement lists are built once per pair of bases (there are few: one APIM base, a few legacy bases), and at most
 * 1000 pairs are kept.
 */
const TO_LEGACY = new LRUCache<string, { text: Replacement[]; bytes: ByteRewrite }>({ max: 1000 });
const TO_APIM = new LRUCache<string, { text: Replacement[]; bytes: ByteRewrite }>({ max: 1000 });

/** The lists of a BaseUrls object the request path shares between calls (flow.ts), found by identity. */
const TO_LEGACY_BY_URLS = new OncePer<BaseUrls, { text: Replacement[]; bytes: ByteRewrite }>(toLegacyListByKey);

function toLegacyList(urls: BaseUrls): { text: Replacement[]; bytes: ByteRewrite } {
  return TO_LEGACY_BY_URLS.of(urls);
}

function toLegacyListByKey(urls: BaseUrls): { text: Replacement[]; bytes: ByteRewrite } {
  const key = `${urls.apimBase}|${urls.legacyBase}`;
  let list = TO_LEGACY.get(key);
  // Stryker disable next-line ConditionalExpression: building the list again gives the same list (the cache only saves the work)
  if (!list) {
    const text = [
      ...pairs(urls.apimBase, urls.legacyBase, '/STU3/', '/STU3/v1/'),
      ...pairs(urls.apimBase, urls.legacyBase, '/R4/', '/R4/v1/'),
    ];
    list = { text, bytes: asBytes(text) };
    TO_LEGACY.set(key, list);
  }
  return list;
}

function toApimList(urls: BaseUrls): { text: Replacement[]; bytes: ByteRewrite } {
  // Stryker disable next-line StringLiteral: the key part for no HSCN base need only differ from real bases, whatever its text
  const key = `${urls.apimBase}|${urls.legacyBase}|${urls.hscnBase ?? ''}`;
  let list = TO_APIM.get(key);
  // Stryker disable next-line ConditionalExpression: building the list again gives the same list (the cache only saves the work)
  if (!list) {
    const bases = [urls.legacyBase, ...(urls.hscnBase ? [urls.hscnBase] : [])];
    const text = bases.flatMap((b) => [
      ...pairs(b, urls.apimBase, '/STU3/v1/', '/STU3/'),
      ...pairs(b, urls.apimBase, '/R4/v1/', '/R4/'),
    ]);
    list = { text, bytes: asBytes(text) };
    TO_APIM.set(key, list);
  }
  return list;
}

/** APIM → legacy: `<apimBase>/STU3/X` → `<legacyBase>/STU3/v1/X`, and `<apimBase>/R4/X` → `<legacyBase>/R4/v1/X`. */
export function rewriteApimUrls(text: string, urls: BaseUrls): string {
  return replaceAll(text, toLegacyList(urls).text);
}

/** {@link rewriteApimUrls} on a UTF-8 body: the same bytes back (no copy) when it holds no APIM link. */
export function rewriteApimUrlsIn(body: Buffer, urls: BaseUrls): Buffer {
  return replaceAllBytes(body, toLegacyList(urls).bytes);
}

/** Legacy → APIM, for JSON request bodies: links to ers-bridge or to the old HSCN host become APIM links. */
export function rewriteLegacyUrls(text: string, urls: BaseUrls): string {
  return replaceAll(text, toApimList(urls).text);
}

/** {@link rewriteLegacyUrls} on a UTF-8 body: the same bytes back (no copy) when it holds no legacy link. */
export function rewriteLegacyUrlsIn(body: Buffer, urls: BaseUrls): Buffer {
  return replaceAllBytes(body, toApimList(urls).bytes);
}
