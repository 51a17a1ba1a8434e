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
  [endpoint.legacyPath, ...(endpoint.legacyAliases ?? [])].map((p) => ({ endpoint, segments: compile(p) })),
);

/**
 * Splits and decodes a raw request target into path segments. Returns a reason string when the target is not a
 * plain path: encoded slashes or backslashes, dot segments (also encoded), empty segments, NULs or bad escapes.
 */
export function decodePathSegments(rawPath: string): string[] | string {
  if (!rawPath.startsWith('/')) return 'the path must start with /';
  const parts = rawPath.split('/').slice(1);
  const out: string[] = [];
  for (const part of parts) {
    if (part === '') return 'the path contains an empty segment (//) or a trailing slash';
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
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const pattern = route.segments[i]!;
    const value = segments[i]!;
    if ('literal' in pattern) {
      if (pattern.literal !== value) return undefined;
    } else {
      params[pattern.param] = value;
    }
  }
  return params;
}

/** Identifies a legacy call. `rawUrl` is the request target as received (path and query, still encoded). */
export function identify(method: string, rawUrl: string): Identified {
  // A fragment is never part of a request; drop it rather than pass it upstream.
  const hash = rawUrl.indexOf('#');
  const target = hash === -1 ? rawUrl : rawUrl.slice(0, hash);
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q + 1);
  if (rawPath !== LEGACY_PREFIX && !rawPath.startsWith(`${LEGACY_PREFIX}/`)) return { kind: 'not-legacy' };

  const decoded = decodePathSegments(rawPath.slice(LEGACY_PREFIX.length) || '/');
  if (typeof decoded === 'string') return { kind: 'bad-path', reason: decoded };
  const segments = decoded;

  // Session endpoints A001–A003: /ers-api/v1/ProfessionalSession[/{sessionKey}]
  if (segments[0] === 'v1' && segments[1] === 'ProfessionalSession') {
    if (segments.length === 2) {
      return method === 'POST'
        ? { kind: 'session', op: 'A001' }
        : { kind: 'method-not-allowed', allow: ['POST'], codes: ['A001'] };
    }
    if (segments.length === 3) {
      if (method === 'PUT') return { kind: 'session', op: 'A002', sessionKeyInPath: segments[2]! };
      if (method === 'DELETE') return { kind: 'session', op: 'A003', sessionKeyInPath: segments[2]! };
      return { kind: 'method-not-allowed', allow: ['PUT', 'DELETE'], codes: ['A002', 'A003'] };
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

  const allow = new Set<string>();
  const codes = new Set<string>();
  let badParam: Identified | undefined;
  for (const route of ROUTES) {
    const params = matchRoute(route, segments);
    if (!params) continue;
    if (route.endpoint.method !== method) {
      allow.add(route.endpoint.method);
      codes.add(route.endpoint.code);
      continue;
    }
    const invalid = Object.entries(params).find(([name, value]) => !PARAM_PATTERNS[name]?.test(value));
    if (invalid) {
      badParam ??= {
        kind: 'bad-param',
        code: route.endpoint.code,
        param: invalid[0],
        expected: PARAM_DESCRIPTIONS[invalid[0]] ?? 'a valid value',
      };
      continue;
    }
    return { kind: 'endpoint', endpoint: route.endpoint, params, query };
  }
  if (badParam) return badParam;
  if (allow.size > 0) return { kind: 'method-not-allowed', allow: [...allow].sort(), codes: [...codes].sort() };
  return { kind: 'not-found', path: rawPath };
}

/** Builds the APIM path (under the APIM base URL) for an identified endpoint. Parameters were validated already. */
export function apimPathFor(endpoint: EndpointDef, params: Record<string, string>): string {
  return endpoint.apimPath.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`missing path parameter ${name} for ${endpoint.code}`);
    return encodeURIComponent(value);
  });
}

export function isHttpMethod(m: string): m is HttpMethod {
  return m === 'GET' || m === 'POST' || m === 'PUT' || m === 'HEAD' || m === 'DELETE';
}
