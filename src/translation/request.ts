/**
 * Translate step (request side), pure: from a legacy call to the request APIM must receive.
 *
 * Headers are forwarded by allow-list, not deny-list: only the few standard headers below, the legacy headers this
 * operation renames, and what ers-bridge adds itself ever reach APIM. So `XAPI_ASID`, `HTTP_X_SESSION_KEY`,
 * `XAPI_FQDN`, any client `Authorization`, `NHSD-*`, `x-ers-*` (and their underscore spellings), cookies and
 * forwarding headers are dropped by construction.
 */
import { isFhirJsonRequestType } from '../http/media-type.js';
import type { EndpointDef } from '../legacy/endpoints.js';
import { LegacyError } from '../legacy/errors.js';
import { apimPathFor } from '../legacy/identify.js';
import { copyWith } from '../runtime/copy-with.js';

/** Standard headers passed through unchanged (lower-case). */
const PASS_THROUGH = ['accept-language', 'user-agent', 'if-none-match'] as const;

const MAX_HEADER_VALUE = 1024;
const IF_MATCH = /^W\/"\d{1,10}"$/;
const CORRELATION_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

export type IncomingHeaders = Record<string, string | string[] | undefined>;

/** The lower-case spellings a legacy header name is looked up by (`_` and `-` variants), computed once per name. */
const SPELLINGS = new Map<string, readonly string[]>();
function spellings(name: string): readonly string[] {
  let s = SPELLINGS.get(name);
  if (!s) {
    const wanted = name.toLowerCase();
    const alt = wanted.includes('_') ? wanted.replaceAll('_', '-') : wanted.replaceAll('-', '_');
    s = wanted === alt ? [wanted] : [wanted, alt];
    SPELLINGS.set(name, s);
  }
  return s;
}

/** Reads a header by legacy name, accepting `_` and `-` spellings; refuses ambiguous duplicates. */
export function legacyHeader(headers: IncomingHeaders, name: string): string | undefined {
  const names = spellings(name);
  let found: string | undefined;
  for (let i = 0; i < names.length; i++) {
    const v = headers[names[i]!];
    if (v === undefined) continue;
    // One value (the usual case) is read without making a list of it.
    const values = typeof v === 'string' ? undefined : v;
    for (let j = 0, n = values ? values.length : 1; j < n; j++) {
      const value = (values ? values[j]! : (v as string)).trim();
      if (found !== undefined && found !== value) {
        throw new LegacyError(
          'BAD_HEADER',
          `The ${name} header was sent more than once with different values; send it once.`,
        );
      }
      found = value;
    }
  }
  if (found !== undefined && found.length > MAX_HEADER_VALUE) {
    throw new LegacyError('BAD_HEADER', `The ${name} header is longer than ${MAX_HEADER_VALUE} characters.`);
  }
  return found;
}

export interface UserContextHeaders {
  odsCode: string;
  businessFunction: string;
  onBehalfOfUserId?: string;
}

export interface ApimRequestInput {
  endpoint: EndpointDef;
  params: Record<string, string>;
  query: string;
  headers: IncomingHeaders;
  /** Path of the APIM base URL, e.g. `/referrals/FHIR`. */
  apimBasePath: string;
  /** Only `explain` passes one (a description); live calls get theirs from the bearer-token wrapper. */
  accessToken?: string;
  correlationId: string;
  /** Present for user-restricted sessions only; application-restricted calls never carry these headers. */
  user?: UserContextHeaders;
  /** Length of the (possibly rewritten) body to send, when known. */
  bodyLength?: number;
}

export interface ApimRequestPlan {
  method: string;
  /** Path and query under the APIM origin. */
  path: string;
  headers: Record<string, string>;
}

/** Builds the APIM request. Throws LegacyError (422/400) for bad or missing legacy headers. */
export function buildApimRequest(input: ApimRequestInput): ApimRequestPlan {
  const { endpoint, headers } = input;
  const out: Record<string, string> = {};

  for (const name of PASS_THROUGH) {
    const v = legacyHeader(headers, name);
    if (v !== undefined) out[name] = v;
  }

  out['accept'] = acceptFor(endpoint, legacyHeader(headers, 'accept'));

  if (endpoint.requestBody !== 'none') {
    const ct = legacyHeader(headers, 'content-type');
    if (ct !== undefined) out['content-type'] = contentTypeFor(endpoint, ct);
    else if (endpoint.requestBody === 'fhir-json') out['content-type'] = 'application/fhir+json';
    else
      throw new LegacyError(
        'MISSING_HEADER',
        `${endpoint.code} needs a Content-Type header giving the file's MIME type.`,
      );
    if (input.bodyLength !== undefined) out['content-length'] = String(input.bodyLength);
  }

  const ifMatch = legacyHeader(headers, 'if-match');
  if (ifMatch !== undefined) {
    if (!IF_MATCH.test(ifMatch)) {
      throw new LegacyError(
        'BAD_HEADER',
        `The If-Match header must be a weak ETag such as W/"5" (the referral's meta.versionId); got a value of another form.`,
      );
    }
    out['if-match'] = ifMatch;
  } else if (endpoint.requiresIfMatch) {
    throw new LegacyError(
      'MISSING_HEADER',
      `${endpoint.code} (${endpoint.name}) needs an If-Match header with the current version, such as W/"5"; read the resource first and send its ETag.`,
    );
  }

  for (const rename of endpoint.headers ?? []) {
    const v = legacyHeader(headers, rename.legacy);
    if (v !== undefined && v !== '') out[rename.apim] = v;
    else if (rename.required) {
      throw new LegacyError('MISSING_HEADER', `${endpoint.code} (${endpoint.name}) needs the ${rename.legacy} header.`);
    }
  }

  if (input.user) {
    out['NHSD-End-User-Organisation-ODS'] = input.user.odsCode;
    out['NHSD-eRS-Business-Function'] = input.user.businessFunction;
    if (input.user.onBehalfOfUserId) out['NHSD-eRS-On-Behalf-Of-User-ID'] = input.user.onBehalfOfUserId;
  }
  if (input.accessToken !== undefined) out['authorization'] = `Bearer ${input.accessToken}`;
  out['x-correlation-id'] = input.correlationId;

  const path = `${input.apimBasePath}${apimPathFor(endpoint, input.params)}${input.query ? `?${input.query}` : ''}`;
  return { method: endpoint.method, path, headers: out };
}

/** The request with the bearer token added (the APIM side's bearer-token wrapper adds it per attempt). */
export function withBearer(plan: ApimRequestPlan, token: string): ApimRequestPlan {
  return { ...plan, headers: copyWith(plan.headers, 'authorization', `Bearer ${token}`) };
}

/**
 * The correlation id for a call: the client's `X-Correlation-ID` when it is well-formed, else a new UUID.
 * A malformed one is refused rather than silently replaced, so the client learns why its id is not echoed.
 */
export function correlationIdFor(headers: IncomingHeaders, newId: () => string): string {
  const v = legacyHeader(headers, 'x-correlation-id');
  if (v === undefined || v === '') return newId();
  if (!CORRELATION_ID.test(v)) {
    throw new LegacyError(
      'BAD_HEADER',
      'X-Correlation-ID must be 1 to 128 letters, digits or . _ : @ - characters; send a UUID or leave it out.',
    );
  }
  return v;
}

function acceptFor(endpoint: EndpointDef, accept: string | undefined): string {
  // Legacy clients sent application/json (sessions) or application/fhir+json; APIM answers FHIR as fhir+json.
  if (endpoint.responseBody === 'fhir-json') return 'application/fhir+json';
  return accept && accept !== '' ? accept : '*/*';
}

function contentTypeFor(endpoint: EndpointDef, ct: string): string {
  if (endpoint.requestBody === 'file') return ct;
  // What the HSCN API took for FHIR JSON (application/fhir+json, */*, application/json, application/json+fhir, with
  // any charset; isFhirJsonRequestType names the legacy pages): APIM gets application/fhir+json.
  if (isFhirJsonRequestType(ct)) return 'application/fhir+json';
  const media = ct.split(';')[0]!.trim().toLowerCase();
  throw new LegacyError(
    'UNSUPPORTED_MEDIA_TYPE',
    `${endpoint.code} takes a FHIR JSON body: send Content-Type: application/fhir+json (got ${media.slice(0, 80)}).`,
  );
}
