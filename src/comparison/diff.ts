/**
 * Compares two captured answers to the same call — the primary side's and the secondary side's — field by field.
 *
 *  - status: a difference at path `status` when the statuses differ.
 *  - headers: the chosen headers (default content-type, etag, location, content-disposition; globs allowed), minus
 *    `ignoreHeaders`; at path `header:<name>`. Content-type compares the media type only (case-insensitive, no
 *    charset or other parameters). Base URLs are folded in header values too (`location`).
 *  - body, by kind:
 *      json   — either side's content-type is JSON (`application/json`, `…+json`), or both bodies parse as JSON. Both
 *               documents are walked together: a leaf that differs is `changed`; a leaf (or empty `{}`/`[]`) on one
 *               side only is `only-primary` / `only-secondary` (so array length differences show as the extra
 *               elements' leaves); values of different JSON types at the same path (string vs number, object vs
 *               array, object vs string) are one `type` difference at that path.
 *      binary — a non-text content-type (PDF, octet-stream) or bytes that are not UTF-8 text: equal iff the sha256
 *               digests are equal; sizes and digests are reported.
 *      text   — equal iff identical after base-URL folding; a difference shows a redacted excerpt from each side
 *               around the first differing character.
 *      empty  — both bodies empty.
 *    A body on one side only is a difference at path `body` (`only-primary` / `only-secondary`).
 *  - `baseUrls`: each is replaced by `<base>` in every string (longest first, only where followed by `/`, `?`, `#`,
 *    a quote, space or the end), so each side's own host in links is not a difference.
 *  - `ignorePaths`: path globs (see paths.ts); ignoring a path ignores everything under it.
 *  - `noisePaths`: differences at these paths (or under them) go to `noise`, not `differences`.
 *  - `presets`: known differences (presets.ts) matched last, on the differences found: they go to
 *    `ignoredByPreset` and leave the answers equal if nothing else differs.
 *  - an answer that failed without HTTP (`error` set, status 0) is compared on status only.
 *
 * Only redacted values leave this module (redact.ts): the comparison runs on the real values, and the values in
 * `differences` are taken from a redacted copy of each document (with the same paths), long strings shortened.
 */

import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { isJsonMediaType, mediaTypeOf } from '../http/media-type.js';
import { OncePer } from '../runtime/once-per.js';
import {
  appendSegment,
  globToMatcher,
  nameGlobToMatcher,
  type PathMatcher,
  type PathSegment,
  ROOT_PATH,
} from './paths.js';
import { splitByPresets } from './presets.js';
import { redactJson, redactText } from './redact.js';
import type { CapturedAnswer, ComparisonOptions, ComparisonResult, FieldDifference } from './types.js';

/** The headers compared when `options.headers` is not given. */
export const DEFAULT_HEADERS: readonly string[] = ['content-type', 'etag', 'location', 'content-disposition'];
/** At most this many differences are listed per comparison unless `options.maxDifferences` says otherwise. */
export const DEFAULT_MAX_DIFFERENCES = 1000;
/** Strings longer than this are shortened in differences (after redaction). */
const MAX_VALUE_CHARS = 256;
const KEEP_VALUE_CHARS = 200;
/** Characters of context shown around the first difference of two text bodies. */
const TEXT_BEFORE = 40;
const TEXT_AFTER = 80;

/** Shortens long strings (idempotent: a shortened string is never shortened again). */
export function clipValue(v: unknown): unknown {
  if (typeof v === 'string' && v.length > MAX_VALUE_CHARS) {
    return `${v.slice(0, KEEP_VALUE_CHARS)}…[+${v.length - KEEP_VALUE_CHARS} chars]`;
  }
  return v;
}

/** The lower-case media type of a content-type value, without parameters (`charset`); '' when there is none. */
export function mediaType(contentType: string | undefined): string {
  return mediaTypeOf(contentType) ?? '';
}

const isJsonType = isJsonMediaType;

function isTextType(mt: string): boolean {
  return (
    mt.startsWith('text/') ||
    isJsonType(mt) ||
    mt === 'application/xml' ||
    mt.endsWith('+xml') ||
    mt === 'application/javascript' ||
    mt === 'application/x-www-form-urlencoded'
  );
}

export function sha256Hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Folders by their bases: one regular expression per set of bases, not one per comparison (issue 15). */
const FOLDERS = new Map<string, (s: string) => string>();

/**
 * Returns a function replacing each base URL by `<base>` (case-insensitive, trailing slashes ignored, longest base
 * first, only where the base ends at a boundary so `http://h:8080` does not fold `http://h:80801`).
 */
export function baseUrlFolder(baseUrls: readonly string[] | undefined): (s: string) => string {
  // Stryker disable next-line ArrayDeclaration: with no bases only the cache key changes, to one no real list of bases has
  const key = (baseUrls ?? []).join('\n');
  let folder = FOLDERS.get(key);
  if (!folder) {
    folder = newBaseUrlFolder(baseUrls);
    // The bases are a runtime's few (APIM, legacy, HSCN): the cache stays small; cleared if it ever is not.
    if (FOLDERS.size >= 64) FOLDERS.clear();
    FOLDERS.set(key, folder);
  }
  return folder;
}

function newBaseUrlFolder(baseUrls: readonly string[] | undefined): (s: string) => string {
  // Stryker disable next-line ArrayDeclaration: a placeholder base folds only its own literal text, which no answer carries
  const bases = [...new Set((baseUrls ?? []).map((b) => b.trim().replace(/\/+$/, '')).filter((b) => b.length > 0))];
  if (bases.length === 0) return (s) => s;
  bases.sort((a, b) => b.length - a.length);
  const re = new RegExp(`(?:${bases.map(escapeRegExp).join('|')})(?=$|[/?#\\s"'<>),])`, 'gi');
  return (s) => s.replace(re, '<base>');
}

function foldJson(v: unknown, fold: (s: string) => string): unknown {
  if (typeof v === 'string') return fold(v);
  if (Array.isArray(v)) return v.map((x) => foldJson(x, fold));
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = foldJson(x, fold);
    return out;
  }
  return v;
}

type JsonKind = 'object' | 'array' | 'string' | 'number' | 'boolean' | 'null';

function jsonKind(v: unknown): JsonKind {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v as JsonKind;
}

/** A value as shown in a difference: primitives as they are, non-empty containers summarised. */
function shown(v: unknown): unknown {
  if (Array.isArray(v)) return v.length === 0 ? [] : `[${v.length} items]`;
  if (typeof v === 'object' && v !== null) {
    const n = Object.keys(v).length;
    return n === 0 ? {} : `{${n} keys}`;
  }
  return clipValue(v);
}

function getAt(v: unknown, segments: readonly PathSegment[]): unknown {
  let cur = v;
  for (const s of segments) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[s];
  }
  return cur;
}

/** What one comparison collects before the result is assembled. */
class Collector {
  readonly differences: FieldDifference[] = [];
  readonly noise = new Set<string>();
  /** Every path found to differ (ignored ones excluded), raw — for the noise baseline. */
  readonly allPaths = new Set<string>();
  omitted = 0;
  /** Bound on `allPaths`, so a noise baseline over a huge document stays small. */
  static readonly MAX_ALL_PATHS = 10_000;
  constructor(
    private readonly noisePaths: ReadonlySet<string>,
    private readonly max: number,
  ) {}

  isNoise(path: string): boolean {
    return this.noisePaths.has(path);
  }

  /** `noisy`: the path or an ancestor is a noise path (the caller knows, walking down). */
  add(d: FieldDifference, noisy = this.isNoise(d.path)): void {
    if (this.allPaths.size < Collector.MAX_ALL_PATHS) this.allPaths.add(d.path);
    if (noisy) {
      if (this.noise.size < this.max) this.noise.add(redactText(d.path));
      return;
    }
    if (this.differences.length >= this.max) {
      this.omitted++;
      return;
    }
    this.differences.push({ ...d, path: redactText(d.path) });
  }
}

interface BodyOutcome {
  bodyKind: ComparisonResult['bodyKind'];
  binary?: { primarySize: number; secondarySize: number; primarySha256: string; secondarySha256: string };
}

type Parsed = { ok: true; value: unknown } | { ok: false };

function parseJson(b: Buffer): Parsed {
  // Stryker disable next-line ConditionalExpression: a shortcut; JSON.parse('') throws and is caught below, with the same result
  if (b.length === 0) return { ok: false };
  try {
    let text = b.toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function isText(b: Buffer): boolean {
  return isUtf8(b) && !b.includes(0);
}

function sideOnly(primaryEmpty: boolean): 'only-primary' | 'only-secondary' {
  return primaryEmpty ? 'only-secondary' : 'only-primary';
}

function compareBodies(
  p: CapturedAnswer,
  s: CapturedAnswer,
  options: ComparisonOptions,
  fold: (s: string) => string,
  out: Collector,
): BodyOutcome {
  const pe = p.body.length === 0;
  const se = s.body.length === 0;
  if (pe && se) return { bodyKind: 'empty' };
  const pmt = mediaType(p.headers['content-type']);
  const smt = mediaType(s.headers['content-type']);
  const pText = isText(p.body);
  const sText = isText(s.body);
  const binaryType = (mt: string) => mt !== '' && !isTextType(mt);

  // Fast path: most answers of a route are the same once each side's base URL is folded — then there is nothing
  // to flatten or walk (this is what keeps shadowing cheap on the primary's machine).
  if (!p.truncated && !s.truncated && pText && sText && !binaryType(pmt) && !binaryType(smt)) {
    if (p.body.equals(s.body) || fold(p.body.toString('utf8')) === fold(s.body.toString('utf8'))) {
      const json = isJsonType(pmt) || isJsonType(smt) || parseJson(p.body).ok;
      return { bodyKind: json ? 'json' : 'text' };
    }
  }

  if (!p.truncated && !s.truncated) {
    const pj = parseJson(p.body);
    const sj = parseJson(s.body);
    const jsonTyped = isJsonType(pmt) || isJsonType(smt);
    const bothParse = (pe || pj.ok) && (se || sj.ok) && !binaryType(pmt) && !binaryType(smt);
    if (jsonTyped || bothParse) {
      if (pj.ok && sj.ok) {
        compareJson(pj.value, sj.value, options, fold, out);
      } else if (pe || se) {
        out.add({
          path: 'body',
          kind: sideOnly(pe),
          primary: `${p.body.length} bytes`,
          secondary: `${s.body.length} bytes`,
        });
      } else if (pj.ok !== sj.ok) {
        const describe = (ok: boolean, b: Buffer, mt: string) =>
          (ok ? 'JSON' : `not JSON (${mt || 'no content-type'})`) + `, ${b.length} bytes`;
        out.add({
          path: 'body',
          kind: 'type',
          primary: describe(pj.ok, p.body, pmt),
          secondary: describe(sj.ok, s.body, smt),
        });
      } else {
        // JSON was announced but neither side parses: compare what was sent as text.
        compareText(p.body, s.body, fold, out);
        return { bodyKind: 'text' };
      }
      return { bodyKind: 'json' };
    }
  }

  if (binaryType(pmt) || binaryType(smt) || !pText || !sText) {
    const primarySha256 = sha256Hex(p.body);
    const secondarySha256 = sha256Hex(s.body);
    if (primarySha256 !== secondarySha256) {
      out.add({
        path: 'body',
        kind: pe || se ? sideOnly(pe) : 'changed',
        primary: `${p.body.length} bytes`,
        secondary: `${s.body.length} bytes`,
      });
    }
    return {
      bodyKind: 'binary',
      binary: { primarySize: p.body.length, secondarySize: s.body.length, primarySha256, secondarySha256 },
    };
  }
  compareText(p.body, s.body, fold, out);
  return { bodyKind: 'text' };
}

function compareText(pb: Buffer, sb: Buffer, fold: (s: string) => string, out: Collector): void {
  const pt = fold(pb.toString('utf8'));
  const st = fold(sb.toString('utf8'));
  if (pt === st) return;
  if (pt.length === 0 || st.length === 0) {
    out.add({
      path: 'body',
      kind: sideOnly(pt.length === 0),
      primary: `${pb.length} bytes`,
      secondary: `${sb.length} bytes`,
    });
    return;
  }
  // Excerpts come from the redacted texts, so a cut never leaves part of a personal value behind.
  const pr = redactText(pt);
  const sr = redactText(st);
  let i = 0;
  // Stryker disable next-line ConditionalExpression,EqualityOperator,LogicalOperator: past either end pr[i] !== sr[i] (or both are past and i resets to 0), so each single bound change stops at the same i
  while (i < pr.length && i < sr.length && pr[i] === sr[i]) i++;
  if (i === pr.length && i === sr.length) i = 0; // the difference was inside redacted values
  const excerpt = (t: string) => {
    const from = Math.max(0, i - TEXT_BEFORE);
    const to = Math.min(t.length, i + TEXT_AFTER);
    return (from > 0 ? '…' : '') + t.slice(from, to) + (to < t.length ? '…' : '');
  };
  out.add({ path: 'body', kind: 'changed', primary: excerpt(pr), secondary: excerpt(sr) });
}

function compareJson(
  primaryRaw: unknown,
  secondaryRaw: unknown,
  options: ComparisonOptions,
  fold: (s: string) => string,
  out: Collector,
): void {
  // Stryker disable next-line ArrayDeclaration: a placeholder glob matches no path an answer has
  const ignore: PathMatcher[] = (options.ignorePaths ?? []).map(globToMatcher);
  // Strings are compared folded (base URLs made alike) where they differ, not by folding both trees up front: most
  // answers are equal, and then no copy of either is made (issue 15). Values shown come from folded, redacted
  // copies, made at the first difference; folding and redaction keep the structure, so the paths are the same.
  let redacted: [unknown, unknown] | undefined;
  const valueAt = (which: 0 | 1, segments: readonly PathSegment[]) => {
    redacted ??= [redactJson(foldJson(primaryRaw, fold)), redactJson(foldJson(secondaryRaw, fold))];
    return shown(getAt(redacted[which], segments));
  };
  const sameLeaf = (a: unknown, b: unknown) =>
    a === b || (typeof a === 'string' && typeof b === 'string' && fold(a) === fold(b));
  // The path so far as segments: one stack pushed and popped while walking (read only synchronously below).
  const segments: PathSegment[] = [];
  // Stryker disable next-line ConditionalExpression,EqualityOperator: a shortcut; some() of no matchers is false anyway
  const ignored = () => ignore.length > 0 && ignore.some((m) => m(segments));

  const emit = (kind: FieldDifference['kind'], path: string, noisy: boolean) => {
    const d: FieldDifference = { path, kind };
    if (kind !== 'only-secondary') d.primary = valueAt(0, segments);
    if (kind !== 'only-primary') d.secondary = valueAt(1, segments);
    out.add(d, noisy);
  };

  // A subtree present on one side only: each of its leaves is a difference.
  const oneSide = (kind: 'only-primary' | 'only-secondary', v: unknown, path: string, noisy: boolean) => {
    if (ignored()) return;
    const isNoisy = noisy || out.isNoise(path);
    const children: Array<[PathSegment, unknown]> = Array.isArray(v)
      ? v.map((x, i) => [i, x])
      : typeof v === 'object' && v !== null
        ? Object.entries(v)
        : [];
    if (children.length === 0) {
      emit(kind, path, isNoisy);
      return;
    }
    for (const [k, x] of children) {
      segments.push(k);
      oneSide(kind, x, appendSegment(path, k), isNoisy);
      segments.pop();
    }
  };

  const walk = (a: unknown, b: unknown, path: string, noisy: boolean): void => {
    if (ignored()) return;
    const isNoisy = noisy || out.isNoise(path);
    const ka = jsonKind(a);
    const kb = jsonKind(b);
    if (ka !== kb) {
      emit('type', path, isNoisy);
      return;
    }
    if (ka === 'array') {
      const aa = a as unknown[];
      const bb = b as unknown[];
      for (let i = 0; i < Math.max(aa.length, bb.length); i++) {
        segments.push(i);
        const childPath = appendSegment(path, i);
        if (i >= bb.length) oneSide('only-primary', aa[i], childPath, isNoisy);
        else if (i >= aa.length) oneSide('only-secondary', bb[i], childPath, isNoisy);
        else walk(aa[i], bb[i], childPath, isNoisy);
        segments.pop();
      }
      return;
    }
    if (ka === 'object') {
      const ao = a as Record<string, unknown>;
      const bo = b as Record<string, unknown>;
      const keys = [...Object.keys(ao), ...Object.keys(bo).filter((k) => !Object.hasOwn(ao, k))];
      for (const k of keys) {
        segments.push(k);
        const childPath = appendSegment(path, k);
        if (!Object.hasOwn(bo, k)) oneSide('only-primary', ao[k], childPath, isNoisy);
        else if (!Object.hasOwn(ao, k)) oneSide('only-secondary', bo[k], childPath, isNoisy);
        else walk(ao[k], bo[k], childPath, isNoisy);
        segments.pop();
      }
      return;
    }
    if (!sameLeaf(a, b)) emit('changed', path, isNoisy);
  };

  walk(primaryRaw, secondaryRaw, ROOT_PATH, false);
}

/** Header-name globs as matchers, per list (the rules' lists live as long as their runtime; every copy asks). */
const HEADER_MATCHERS = new OncePer<readonly string[], ReadonlyArray<(name: string) => boolean>>((globs) =>
  globs.map(nameGlobToMatcher),
);
const NO_MATCHERS: ReadonlyArray<(name: string) => boolean> = [];

function compareHeaders(
  p: CapturedAnswer,
  s: CapturedAnswer,
  options: ComparisonOptions,
  fold: (s: string) => string,
  out: Collector,
): void {
  const chosen = HEADER_MATCHERS.of(options.headers ?? DEFAULT_HEADERS);
  const ignored = options.ignoreHeaders ? HEADER_MATCHERS.of(options.ignoreHeaders) : NO_MATCHERS;
  // Only the compared headers are kept (by lower-case name): an answer carries many more than are compared.
  const compared = (h: Record<string, string>) => {
    const m = new Map<string, string>();
    for (const k in h) {
      if (!Object.hasOwn(h, k)) continue;
      const n = k.toLowerCase();
      if (chosen.some((c) => c(n)) && !ignored.some((i) => i(n))) m.set(n, String(h[k]));
    }
    return m;
  };
  const ph = compared(p.headers);
  const sh = compared(s.headers);
  const names = [...new Set([...ph.keys(), ...sh.keys()])].sort();
  const normal = (name: string, v: string | undefined) =>
    v === undefined ? undefined : name === 'content-type' ? mediaType(v) : fold(v.trim());
  for (const name of names) {
    const pv = normal(name, ph.get(name));
    const sv = normal(name, sh.get(name));
    if (pv === sv) continue;
    const d: FieldDifference = {
      path: `header:${name}`,
      kind: pv === undefined ? 'only-secondary' : sv === undefined ? 'only-primary' : 'changed',
    };
    if (pv !== undefined) d.primary = clipValue(redactText(pv));
    if (sv !== undefined) d.secondary = clipValue(redactText(sv));
    out.add(d);
  }
}

function run(primary: CapturedAnswer, secondary: CapturedAnswer, options: ComparisonOptions) {
  const out = new Collector(options.noisePaths ?? new Set(), options.maxDifferences ?? DEFAULT_MAX_DIFFERENCES);
  const fold = baseUrlFolder(options.baseUrls);
  const statusEqual = primary.status === secondary.status;
  if (!statusEqual) out.add({ path: 'status', kind: 'changed', primary: primary.status, secondary: secondary.status });
  let body: BodyOutcome = { bodyKind: 'empty' };
  // An answer that never came (timeout, refused) has nothing else to compare.
  if (!primary.error && !secondary.error) {
    compareHeaders(primary, secondary, options, fold, out);
    body = compareBodies(primary, secondary, options, fold, out);
  }
  // Known differences (presets) are split off last, from the differences alone, as `compare report` does later.
  const split = splitByPresets(out.differences, options.presets ?? []);
  const result: ComparisonResult = {
    equal: statusEqual && split.differences.length === 0 && out.omitted === 0,
    statusEqual,
    primaryStatus: primary.status,
    secondaryStatus: secondary.status,
    bodyKind: body.bodyKind,
    differences: split.differences,
    noise: [...out.noise],
    ...(body.binary ?? {}),
  };
  if (primary.truncated || secondary.truncated) result.truncated = true;
  if (out.omitted > 0) result.omittedDifferences = out.omitted;
  if (split.ignored.length > 0) result.ignoredByPreset = split.ignored;
  return { result, allPaths: out.allPaths };
}

/** Compares the primary side's answer with the secondary side's (see the file comment). */
export function compareAnswers(
  primary: CapturedAnswer,
  secondary: CapturedAnswer,
  options: ComparisonOptions = {},
): ComparisonResult {
  return run(primary, secondary, options).result;
}

/**
 * Diffy's noise baseline: the paths that differ between two answers of the same side to the same call (timestamps,
 * generated ids). Pass the set as `noisePaths` when comparing with the other side. Honours `ignorePaths`,
 * `ignoreHeaders`, `headers` and `baseUrls`; `noisePaths` in `options` is not used.
 */
export function noisePathsBetween(a: CapturedAnswer, b: CapturedAnswer, options: ComparisonOptions = {}): Set<string> {
  const { noisePaths: _unused, ...rest } = options;
  return run(a, b, rest).allPaths;
}
