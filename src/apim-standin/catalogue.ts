/**
 * The e-RS operation catalogue (`fixtures/ers-api/endpoints.json`, generated from the NHS specification) and the
 * path matcher built from it. The stand-in deliberately does not use the proxy's own endpoint table
 * (`src/legacy/endpoints.ts`): it is meant to be an independent check on the proxy.
 */
import { readCatalogueJson } from './fixtures.js';

export type FhirVersion = 'STU3' | 'R4';

export interface CatalogueOperation {
  code: string;
  name: string;
  method: string;
  fhirVersion: FhirVersion;
  /** Pattern under the base URL, e.g. `/STU3/ReferralRequest/{ubrn}`. */
  path: string;
  appRestricted: boolean;
  requiredHeaders: string[];
  requiredHeadersUserRestrictedOnly: string[];
  optionalHeaders: string[];
  conditionalHeaders: Record<string, string>;
  headersNotAllowedAppRestricted: string[];
  businessFunctions: string[];
  pathParameters: string[];
  queryParameters: Array<{ name: string; required: boolean }>;
  requestContentTypes: string[];
  success: { status: number; headers: string[]; contentTypes: string[]; fhirResourceType: string | null };
  errorStatuses: number[];
  deprecated: boolean;
  operationId: string;
}

type Segment = { literal: string } | { param: string };

export interface CompiledRoute {
  op: CatalogueOperation;
  segments: Segment[];
  literalCount: number;
}

export interface RouteMatch {
  route: CompiledRoute;
  params: Record<string, string>;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function checkOperation(raw: unknown, index: number): CatalogueOperation {
  const o = raw as Record<string, unknown>;
  const fail = (field: string): never => {
    throw new Error(`apim-standin: endpoints.json entry ${index} (${String(o?.code)}) has a bad '${field}'`);
  };
  if (typeof o !== 'object' || o === null) fail('entry');
  for (const f of ['code', 'name', 'method', 'path', 'operationId'] as const) if (typeof o[f] !== 'string') fail(f);
  if (o.fhirVersion !== 'STU3' && o.fhirVersion !== 'R4') fail('fhirVersion');
  if (typeof o.appRestricted !== 'boolean') fail('appRestricted');
  for (const f of [
    'requiredHeaders',
    'requiredHeadersUserRestrictedOnly',
    'optionalHeaders',
    'headersNotAllowedAppRestricted',
    'businessFunctions',
    'pathParameters',
    'requestContentTypes',
  ] as const) {
    if (!isStringArray(o[f])) fail(f);
  }
  if (!Array.isArray(o.queryParameters)) fail('queryParameters');
  const success = o.success as Record<string, unknown> | undefined;
  if (typeof success !== 'object' || success === null || typeof success.status !== 'number') fail('success');
  if (!isStringArray(success?.headers) || !isStringArray(success?.contentTypes)) fail('success');
  return raw as CatalogueOperation;
}

let catalogueCache: CatalogueOperation[] | undefined;

/** All operations of `endpoints.json` (validated once, cached). */
export function loadCatalogue(): CatalogueOperation[] {
  if (catalogueCache === undefined) {
    const raw = readCatalogueJson();
    if (!Array.isArray(raw)) throw new Error('apim-standin: endpoints.json is not an array');
    catalogueCache = raw.map(checkOperation);
  }
  return catalogueCache;
}

export function compileRoutes(ops: CatalogueOperation[]): CompiledRoute[] {
  return ops.map((op) => {
    const segments: Segment[] = op.path
      .split('/')
      .slice(1)
      .map((s) => {
        const m = /^\{([^}]+)\}$/.exec(s);
        return m ? { param: m[1]! } : { literal: s };
      });
    return { op, segments, literalCount: segments.filter((s) => 'literal' in s).length };
  });
}

/**
 * Every route whose pattern matches `pathSegments` (already split and percent-decoded, relative to the base path),
 * most specific (most literal segments) first. A `{param}` never matches a segment starting with `$`: those are FHIR
 * operation names, never ids, so `GET …/ReferralRequest/$ers.fetchworklist` is a wrong method, not an unknown UBRN.
 */
export function matchRoutes(routes: CompiledRoute[], pathSegments: string[]): RouteMatch[] {
  const matches: RouteMatch[] = [];
  for (const route of routes) {
    if (route.segments.length !== pathSegments.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < route.segments.length && ok; i++) {
      const seg = route.segments[i]!;
      const actual = pathSegments[i]!;
      if ('literal' in seg) ok = seg.literal === actual;
      else if (actual === '' || actual.startsWith('$')) ok = false;
      else params[seg.param] = actual;
    }
    if (ok) matches.push({ route, params });
  }
  return matches.sort((a, b) => b.route.literalCount - a.route.literalCount);
}
