/**
 * Step 1 of the request path: identify the endpoint (A-code) of a legacy call from its method and raw URL.
 * Pure: no I/O. Refuses anything that is not an exact, well-formed match, so that no upstream path is ever built
 * from unchecked input.
 */
import {
  DSTU2_REPLACEMENTS,
  ENDPOINTS,
  type EndpointDef,
  type HttpMethod,
  PARAM_DESCRIPTIONS,
  PARAM_PATTERNS,
} from './endpoints.js';

export const LEGACY_PREFIX = '/ers-api';

type Segment = { literal: string } | { param: string };

interface CompiledRoute {
  endpoint: EndpointDef;
  segments: Segment[];
  /** How many segments are literal: the more, the more specific the route. */
  literals: number;
}

export type Identified =
  | { kind: 'endpoint'; endpoint: EndpointDef; params: Record<string, string>; query: string }
  | { kind: 'session'; op: 'A001' | 'A002' | 'A003'; sessionKeyInPath?: string }
  | { kind: 'not-found'; path: string }
  | { kind: 'method-not-allowed'; allow: string[]; codes: string[] }
  | { kind: 'bad-param'; code: string; param: string; expected: string }
  | { kind: 'bad-path'; reason: string }
  | { kind: 'dstu2'; resource: string; replacement: string }
  | { kind: 'not-legacy' };

function compile(pattern: string): Segment[] {
  return pattern
    .split('/')
    .slice(1)
    .map((s) => (s.startsWith('{') && s.endsWith('}') ? { param: s.slice(1, -1) } : { literal: s }));
}

const ROUTES: CompiledRoute[] = ENDPOINTS.flatMap((endpoint) =>
  [endpoint.legacyPath, ...(endpoint.legacyAliases ?? [])].map((p) => {
    const segments = compile(p);
    return { endpoint, segments, literals: segments.filter((s) => 'literal' in s).length };
  }),
);

/** The routes by their number of segments (a route matches only paths of its length), each list in ROUTES order. */
const ROUTES_BY_LENGTH = new Map<number, CompiledRoute[]>();
for (const route of ROUTES) {
  const list = ROUTES_BY_LENGTH.get(route.segments.length) ?? [];
  list.push(route);
  ROUTES_BY_LENGTH.set(route.segments.length, list);
}
const NO_ROUTES: readonly CompiledRoute[] = [];

const EMPTY_SEGMENT = 'the path contains an empty segment (//)';
/** A segment with no escape, backslash or control character: it decodes to itself. */
const PLAIN_SEGMENT = /^[A-Za-z0-9._~$-]+$/;

/**
 * Splits and decodes a raw request target into path segments. Returns a reason string when the target is not a
 * plain path: encoded slashes or backslashes, dot segments (also encoded), empty segments, NULs or bad escapes.
 */
export function decodePathSegments(rawPath: string): string[] | string {
  if (!rawPath.startsWith('/')) return 'the path must start with /';
  const parts = rawPath.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === '') return EMPTY_SEGMENT;
    // Most segments are plain (letters, digits, "-", "_", "$", "."): nothing to decode or check further.
    if (PLAIN_SEGMENT.test(part) && part !== '.' && part !== '..') {
      out.push(part);
      continue;
    }
    if (/%(2f|5c|00)/i.test(part) || part.includes('\\')) {
      return 'the path contains an encoded slash, backslash or NUL';
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(part);
    } catch {
      return 'the path contains an invalid percent-encoding';
    }
    if (decoded === '.' || decoded === '..') return 'the path contains a dot segment (. or ..)';
    if (/[\u0000-\u001f\u007f]/.test(decoded)) return 'the path contains a control character';
    out.push(decoded);
  }
  return out;
}

function matchRoute(route: CompiledRoute, segments: string[]): Record<string, string> | undefined {
  if (route.segments.length !== segments.length) return undefined;
  // Literals first, so the routes that do not match (most of them) cost no object.
  for (let i = 0; i < segments.length; i++) {
    const pattern = route.segments[i]!;
    if ('literal' in pattern && pattern.literal !== segments[i]) return undefined;
  }
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const pattern = route.segments[i]!;
    if ('param' in pattern) params[pattern.param] = segments[i]!;
  }
  return params;
}

/**
 * Identifies a legacy call. `rawUrl` is the request target as received (path and query, still encoded).
 *
 * Slashes, which the legacy documentation leaves open (nhsconnect/digital-referrals, `pages/endpoints/`: no
 * published path has a trailing slash or an empty segment, and no page says what either gets):
 * - **A trailing slash is ignored**: `…/ReferralRequest/000000070000/` is A005. Real clients build paths from
 *   prefixes that end in one (a C# referrals hub's `RegistrationPath: "/ers-api/STU3/v1/ReferralRequest/"` and
 *   `ProfessionalSessionSelectRolePath: "/ers-api/v1/ProfessionalSession/"`), and the HSCN API's backend was, by
 *   its published Swagger UI, Spring MVC, which matched `/x/` as `/x` by default (an inference). Nothing is lost:
 *   no segment goes away, the APIM path is built from the endpoint table, and the legacy host gets the path as sent.
 *   When the path without the slash takes a value there (`…/ReferralRequest/`, an empty UBRN appended), the answer
 *   names the value that is missing.
 * - **An empty segment (`//`) stays refused** (400 BAD_PATH), with the operation the path would be without it named
 *   in the diagnostics: collapsing it silently is where proxies disagree about which path was asked for, and a
 *   client sends one only through a misjoined base URL, which the diagnostics let it fix.
 */
export function identify(method: string, rawUrl: string): Identified {
  // A fragment is never part of a request; drop it rather than pass it upstream.
  const hash = rawUrl.indexOf('#');
  const target = hash === -1 ? rawUrl : rawUrl.slice(0, hash);
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q + 1);
  // `//ers-api/...`: a base URL ending in / joined to a path starting with one.
  const legacyPath = rawPath.startsWith('//') ? rawPath.replace(/^\/+/, '/') : rawPath;
  if (legacyPath !== LEGACY_PREFIX && !legacyPath.startsWith(`${LEGACY_PREFIX}/`)) return { kind: 'not-legacy' };
  const path = legacyPath.slice(LEGACY_PREFIX.length);
  if (path === '' || path === '/') {
    return {
      kind: 'bad-path',
      reason:
        'the path names no operation: they are under /ers-api/STU3/v1/, /ers-api/R4/v1/ and /ers-api/v1/ProfessionalSession',
    };
  }
  if (legacyPath !== rawPath) return { kind: 'bad-path', reason: emptySegmentReason(method, path, query) };

  if (path.endsWith('/')) {
    const without = decodePathSegments(path.slice(0, -1));
    if (typeof without !== 'string') {
      const found = identifySegments(method, without, rawPath, query);
      if (found.kind === 'endpoint' || found.kind === 'session') return found;
      // An empty value where the path takes one: name the value, not the slash.
      const empty = identifySegments(method, [...without, ''], rawPath, query);
      return empty.kind === 'bad-param' ? empty : found;
    }
  }
  const decoded = decodePathSegments(path);
  if (typeof decoded === 'string') {
    return { kind: 'bad-path', reason: decoded === EMPTY_SEGMENT ? emptySegmentReason(method, path, query) : decoded };
  }
  return identifySegments(method, decoded, rawPath, query);
}

/** The empty-segment refusal, naming the operation the path would be without its empty segments, if any. */
function emptySegmentReason(method: string, path: string, query: string): string {
  const collapsed = decodePathSegments(path.replace(/\/{2,}/g, '/').replace(/(.)\/$/, '$1'));
  if (typeof collapsed === 'string') return EMPTY_SEGMENT;
  const meant = identifySegments(method, collapsed, path, query);
  const pattern =
    meant.kind === 'endpoint'
      ? `${meant.endpoint.code}: ${method} ${LEGACY_PREFIX}${meant.endpoint.legacyPath}`
      : meant.kind === 'session'
        ? `${meant.op}: ${method} ${LEGACY_PREFIX}/v1/ProfessionalSession${meant.op === 'A001' ? '' : '/{sessionKey}'}`
        : undefined;
  return pattern
    ? `${EMPTY_SEGMENT}; without it this is ${pattern} (check how the base URL and path are joined)`
    : EMPTY_SEGMENT;
}

/** The operation of decoded path segments (under /ers-api). `rawPath` is what a not-found answer names. */
function identifySegments(method: string, segments: string[], rawPath: string, query: string): Identified {
  // Session endpoints A001–A003: /ers-api/v1/ProfessionalSession[/{sessionKey}]
  if (segments[0] === 'v1' && segments[1] === 'ProfessionalSession') {
    if (segments.length === 2) {
      return method === 'POST'
        ? { kind: 'session', op: 'A001' }
        : { kind: 'method-not-allowed', allow: ['POST'], codes: ['A001'] };
    }
    if (segments.length === 3) {
      const op = method === 'PUT' ? 'A002' : method === 'DELETE' ? 'A003' : undefined;
      if (!op) return { kind: 'method-not-allowed', allow: ['PUT', 'DELETE'], codes: ['A002', 'A003'] };
      // Only from a trailing slash (`…/ProfessionalSession/` + an empty key): decoding refuses empty segments.
      if (segments[2] === '') {
        return { kind: 'bad-param', code: op, param: 'sessionKey', expected: 'the session id A001 returned' };
      }
      return { kind: 'session', op, sessionKeyInPath: segments[2]! };
    }
    return { kind: 'not-found', path: rawPath };
  }

  // Withdrawn DSTU2 data calls: /ers-api/v1/<Resource>[/...]
  if (segments[0] === 'v1' && segments.length >= 2) {
    const resource = segments[1]!;
    const replacement = DSTU2_REPLACEMENTS[resource];
    if (replacement) return { kind: 'dstu2', resource, replacement };
    return { kind: 'not-found', path: rawPath };
  }

  // A call that matches a route in method and values is that operation. Otherwise the most specific routes that
  // match the path decide the answer: a literal segment beats a parameter in the same place, so
  // GET …/ReferralRequest/$ers.fetchworklist is A008 with the wrong method (405, Allow: POST), not A005 with a bad
  // UBRN. Among routes as specific, a wrong value is reported before a wrong method.
  let specific = -1;
  const allow = new Set<string>();
  const codes = new Set<string>();
  let badParam: Identified | undefined;
  for (const route of ROUTES_BY_LENGTH.get(segments.length) ?? NO_ROUTES) {
    const params = matchRoute(route, segments);
    if (!params) continue;
    const invalid = route.endpoint.method === method ? invalidParam(params) : undefined;
    if (route.endpoint.method === method && !invalid) {
      return { kind: 'endpoint', endpoint: route.endpoint, params, query };
    }
    if (route.literals < specific) continue;
    if (route.literals > specific) {
      specific = route.literals;
      allow.clear();
      codes.clear();
      badParam = undefined;
    }
    if (invalid) {
      badParam ??= {
        kind: 'bad-param',
        code: route.endpoint.code,
        param: invalid[0],
        expected: PARAM_DESCRIPTIONS[invalid[0]] ?? 'a valid value',
      };
    } else {
      allow.add(route.endpoint.method);
      codes.add(route.endpoint.code);
    }
  }
  if (badParam) return badParam;
  if (allow.size > 0) return { kind: 'method-not-allowed', allow: [...allow].sort(), codes: [...codes].sort() };
  return { kind: 'not-found', path: rawPath };
}

/** The first parameter whose value does not have its pattern's form, as [name, value]; undefined when all do. */
function invalidParam(params: Record<string, string>): [string, string] | undefined {
  for (const name in params) {
    const value = params[name]!;
    if (!PARAM_PATTERNS[name]?.test(value)) return [name, value];
  }
  return undefined;
}

/** An APIM path template split once into its literal parts and parameter names (even indexes are literals). */
const APIM_PATH_PARTS = new Map<string, string[]>();
function apimPathParts(template: string): string[] {
  let parts = APIM_PATH_PARTS.get(template);
  if (!parts) {
    parts = template.split(/\{(\w+)\}/);
    APIM_PATH_PARTS.set(template, parts);
  }
  return parts;
}

/** Builds the APIM path (under the APIM base URL) for an identified endpoint. Parameters were validated already. */
export function apimPathFor(endpoint: EndpointDef, params: Record<string, string>): string {
  const parts = apimPathParts(endpoint.apimPath);
  let out = parts[0]!;
  for (let i = 1; i < parts.length; i += 2) {
    const name = parts[i]!;
    const value = params[name];
    if (value === undefined) throw new Error(`missing path parameter ${name} for ${endpoint.code}`);
    out += encodeURIComponent(value) + parts[i + 1]!;
  }
  return out;
}

export function isHttpMethod(m: string): m is HttpMethod {
  return m === 'GET' || m === 'POST' || m === 'PUT' || m === 'HEAD' || m === 'DELETE';
}
