/**
 * JSON paths and path globs for the comparison engine.
 *
 * A path names one place in a JSON document: `entry[0].resource.meta.lastUpdated`. Object keys are joined with `.`
 * when they are plain (letters, digits, `_`, `$`, `-`, `@`, `:`) and written `["odd key"]` (a JSON string) otherwise;
 * array indexes are written `[n]`. The document root is `$`. Flattening maps every leaf to its path; a leaf is a
 * string, number, boolean, null, or an empty object / array (`{}` / `[]`).
 *
 * Path globs (`ignorePaths`): written like paths, with two wildcards. `*` (as a key, or `[*]`) matches exactly one
 * segment (a key or an index); `**` matches any number of segments, including none. Everything else is literal, so
 * `value*` is the key "value*", not a prefix. Examples: `**.lastUpdated`, `entry[*].fullUrl`, `meta.*`, `**`.
 *
 * Name globs (`headers`, `ignoreHeaders`): a flat, case-insensitive name where `*` matches any run of characters
 * (`x-*`).
 */

/** One step of a path: an object key (string) or an array index (number). */
export type PathSegment = string | number;

/** The path of the document root. */
export const ROOT_PATH = '$';

const PLAIN_KEY = /^[A-Za-z0-9_$@:-]+$/;

/** A key as it appears in a path after its parent: `.key` when plain, `["odd key"]` otherwise. */
export function formatKey(key: string): string {
  return PLAIN_KEY.test(key) && key !== '$' ? `.${key}` : `[${JSON.stringify(key)}]`;
}

/** Joins segments into a path string; `[]` is the root `$`. */
export function formatPath(segments: readonly PathSegment[]): string {
  if (segments.length === 0) return ROOT_PATH;
  let out = '';
  for (const s of segments) out = appendSegment(out, s);
  return out;
}

/** Appends one segment to a path string ('' or `$` for the root). */
export function appendSegment(path: string, segment: PathSegment): string {
  const base = path === ROOT_PATH ? '' : path;
  if (typeof segment === 'number') return `${base}[${segment}]`;
  const k = formatKey(segment);
  // The first key of a path has no leading dot.
  return base === '' && k.startsWith('.') ? k.slice(1) : base + k;
}

/** Tokens of a path or glob: keys, indexes, and (globs only) the two wildcards. */
type Token =
  | { k: 'key'; v: string }
  | { k: 'index'; v: number }
  | { k: 'star' }
  | { k: 'starIndex' }
  | { k: 'globstar' };

/**
 * Splits a path or glob into tokens. In globs (`glob: true`) a bare `*` / `**` key and `[*]` are wildcards; in paths
 * they are ordinary keys. Throws on malformed input (unclosed bracket, empty key).
 */
function tokenize(text: string, glob: boolean): Token[] {
  if (text === ROOT_PATH) return [];
  const tokens: Token[] = [];
  let i = 0;
  let expectKey = true; // at the start, or right after a dot
  while (i < text.length) {
    const c = text[i];
    if (c === '[') {
      const close = findBracketEnd(text, i);
      const inner = text.slice(i + 1, close);
      if (glob && inner === '*') tokens.push({ k: 'starIndex' });
      else if (/^\d+$/.test(inner)) tokens.push({ k: 'index', v: Number(inner) });
      else if (inner.startsWith('"')) tokens.push({ k: 'key', v: JSON.parse(inner) as string });
      else throw new Error(`Bad bracket "[${inner}]" in path "${text}"`);
      i = close + 1;
      expectKey = false;
      continue;
    }
    if (c === '.') {
      if (expectKey) throw new Error(`Empty key in path "${text}"`);
      i++;
      expectKey = true;
      if (i >= text.length) throw new Error(`Path "${text}" ends with a dot`);
      continue;
    }
    if (!expectKey) throw new Error(`Expected "." or "[" at ${i} in path "${text}"`);
    let j = i;
    while (j < text.length && text[j] !== '.' && text[j] !== '[') j++;
    const key = text.slice(i, j);
    if (glob && key === '**') tokens.push({ k: 'globstar' });
    else if (glob && key === '*') tokens.push({ k: 'star' });
    else tokens.push({ k: 'key', v: key });
    i = j;
    expectKey = false;
  }
  return tokens;
}

/** The index of the `]` closing the bracket at `open`, skipping over a quoted JSON string. */
function findBracketEnd(text: string, open: number): number {
  let i = open + 1;
  if (text[i] === '"') {
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
  }
  const close = text.indexOf(']', i);
  if (close < 0) throw new Error(`Unclosed "[" in path "${text}"`);
  return close;
}

/** Parses a path string into segments (`$` → `[]`). Throws on a malformed path. */
export function parsePath(path: string): PathSegment[] {
  // Without `glob`, tokenize only yields keys and indexes.
  return tokenize(path, false).map((t) => (t as { v: PathSegment }).v);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True for the values flattening stops at: primitives and empty objects / arrays. */
export function isLeaf(v: unknown): boolean {
  if (Array.isArray(v)) return v.length === 0;
  if (isPlainObject(v)) return Object.keys(v).length === 0;
  return true;
}

/**
 * Flattens a JSON value to `Map<path, leaf>`, in document order. `prefix` roots the paths (default: the root).
 * A primitive root flattens to `{ "$" → value }`.
 */
export function flatten(value: unknown, prefix: string = ROOT_PATH): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const visit = (v: unknown, path: string): void => {
    if (isLeaf(v)) {
      out.set(path === '' ? ROOT_PATH : path, v);
      return;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) visit(v[i], appendSegment(path, i));
    } else for (const [k, item] of Object.entries(v as Record<string, unknown>)) visit(item, appendSegment(path, k));
  };
  visit(value, prefix);
  return out;
}

/** A compiled path glob: tests a path string or its segments. */
export type PathMatcher = (path: string | readonly PathSegment[]) => boolean;

/**
 * Compiles a path glob (see the file comment). The match is anchored at both ends: `meta.*` matches `meta.versionId`
 * but neither `meta.profile[0]` nor `entry[0].resource.meta.versionId`. Throws on a malformed glob.
 */
export function globToMatcher(glob: string): PathMatcher {
  const pattern = tokenize(glob.trim(), true);
  return (path) => {
    let segments: readonly PathSegment[];
    if (typeof path === 'string') {
      try {
        segments = parsePath(path);
      } catch {
        return false;
      }
    } else segments = path;
    return matchTokens(pattern, segments);
  };
}

/**
 * Glob matching by dynamic programming over (pattern position, segment position): `ok[p][s]` says whether
 * pattern[p..] matches segments[s..]. Linear in pattern × path length, no backtracking blow-up.
 */
function matchTokens(pattern: readonly Token[], segments: readonly PathSegment[]): boolean {
  const P = pattern.length;
  const S = segments.length;
  let next: boolean[] = new Array(S + 1).fill(false); // row p + 1
  next[S] = true; // empty pattern matches the empty rest
  for (let p = P - 1; p >= 0; p--) {
    const t = pattern[p]!;
    const row: boolean[] = new Array(S + 1).fill(false);
    for (let s = S; s >= 0; s--) {
      if (t.k === 'globstar') {
        // zero segments, or one segment and stay on `**`
        row[s] = next[s]! || (s < S && row[s + 1]!);
        continue;
      }
      if (s === S) continue;
      const seg = segments[s]!;
      const one =
        t.k === 'star' ||
        (t.k === 'starIndex' && typeof seg === 'number') ||
        (t.k === 'key' && seg === t.v) ||
        (t.k === 'index' && seg === t.v);
      row[s] = one && next[s + 1]!;
    }
    next = row;
  }
  return next[0]!;
}

const NAME_MATCHERS = new Map<string, (name: string) => boolean>();

/** Compiles a name glob (headers): case-insensitive, `*` matches any run of characters, the rest is literal. */
export function nameGlobToMatcher(glob: string): (name: string) => boolean {
  let matcher = NAME_MATCHERS.get(glob);
  if (!matcher) {
    const parts = glob.trim().toLowerCase().split('*');
    const re = new RegExp(`^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    matcher = (name) => re.test(name.toLowerCase());
    // Globs come from the rules and the defaults: few. Compiled once each, not per comparison (issue 15).
    if (NAME_MATCHERS.size >= 256) NAME_MATCHERS.clear();
    NAME_MATCHERS.set(glob, matcher);
  }
  return matcher;
}
