/**
 * The e-RS API as APIM exposes it (`/referrals/FHIR/{STU3,R4}/…`): the checks of the APIM e-RS proxy
 * (`NHSDigital/e-referrals-service-api` `proxies/live`), the header and media-type rules of the e-RS specification
 * (driven by `fixtures/ers-api/endpoints.json`), and a few deliberate extra checks that catch translation bugs
 * (legacy headers leaking to APIM, NHSD-* headers on application-restricted calls, business functions the user does
 * not hold). Successful calls are answered by {@link RESPONDERS} from the NHS example payloads.
 *
 * Order of checks:
 *  1. legacy HSCN headers (`XAPI_ASID`, `HTTP_X_SESSION_KEY`, `XAPI_FQDN`, `X-ERS-XAPI*`) → 400 (stand-in only)
 *  2. bearer token missing/unknown/expired/revoked → 401 (STU3: empty body; R4: OperationOutcome)
 *  3. app has no ASID → 403 (APIM `RaiseFault.MissingAsid`)
 *  4. app-restricted + client-sent `x-ers-ods-code`/`x-ers-business-function`/`x-ers-user-id` → 403 empty (APIM);
 *     user-restricted, in the APIM user-restricted flow's order:
 *       a. `*_AUTHORISED_APPLICATION` business function → 403 (APIM `RaiseFault.InvalidBusinessFunction`)
 *       b. ID-token IAL < 3 → 401 (APIM `RaiseFault.401InsufficientIal`)
 *       c. except `GET /R4/PractitionerRole` (A030): ODS header missing/empty → 400 MISSING_HEADER (APIM EUO flow)
 *  5. route (catalogue path patterns) → 404 unknown path, 405 wrong method; a retired operation (`retire`) has no
 *     route left, so it answers as an unknown path does
 *  6. app-restricted: operation not app-restricted → 403; NHSD-* user headers present → 403 (stricter than APIM)
 *  7. user-restricted (e-RS; A030 takes no ODS/BF and skips this step):
 *       a. business function header missing where the catalogue requires it → 400 MISSING_HEADER
 *       b. (ODS, business function) not one of the user's configured roles → 403 (stricter than APIM, see below)
 *       c. business function not allowed for the operation → 403
 *       d. on-behalf-of: required with SERVICE_PROVIDER_CLINICIAN_ADMIN where the operation takes it → 400;
 *          sent with any other business function → 403
 *  8. required headers (incl. If-Match pattern) → 400; required query parameters → 400
 *  9. request media type → 415 text/plain; unparsable JSON → 400
 * 10. the operation's example answer (or the e-RS error a test scripted for it: `failWith`)
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { CatalogueOperation, FhirVersion } from './catalogue.js';
import { matchRoutes } from './catalogue.js';
import { RESPONDERS } from './examples.js';
import {
  emptyReply,
  type OutcomeIssue,
  outcomeReply,
  R4_HTTP_ERROR_SYSTEM,
  type StandInReply,
  textReply,
} from './responses.js';
import type { StandInState } from './state.js';
import type { IssuedToken } from './tokens.js';

export const ODS_HEADER = 'NHSD-End-User-Organisation-ODS';
export const BUSINESS_FUNCTION_HEADER = 'NHSD-eRS-Business-Function';
export const OBO_HEADER = 'NHSD-eRS-On-Behalf-Of-User-ID';
const USER_CONTEXT_HEADERS = [ODS_HEADER, BUSINESS_FUNCTION_HEADER, OBO_HEADER];
/** Headers APIM itself sets towards e-RS in the app-restricted flow; a client sending them gets an empty 403. */
const APIM_OWNED_HEADERS = ['x-ers-ods-code', 'x-ers-business-function', 'x-ers-user-id'];
/** Pseudo business functions of app-restricted access; a user-restricted caller sending one gets 403 from APIM. */
const AUTHORISED_APPLICATION_FUNCTIONS = new Set([
  'PROVIDER_AUTHORISED_APPLICATION',
  'REFERRER_AUTHORISED_APPLICATION',
  'AUTHORISED_APPLICATION',
]);
export const IF_MATCH_PATTERN = /^W\/"[0-9]+"$/;
export const SPCA = 'SERVICE_PROVIDER_CLINICIAN_ADMIN';
/** A030: the one user-restricted operation that takes no ODS or business function (APIM skips its EUO checks). */
const PRACTITIONER_ROLE_PATH = '/R4/PractitionerRole';

/** The exact diagnostics of APIM's user-restricted faults (e-RS proxy `RaiseFault.*`). */
export const GATEWAY_ERRORS = {
  /** `RaiseFault.InvalidBusinessFunction`; the stand-in also uses it for a role the user does not hold. */
  noBusinessFunction: 'User does not have the required Business Function at the specified Organisation.',
  /** `RaiseFault.401InsufficientIal`. */
  insufficientIal:
    "We couldn't verify your identity. Contact your local Registration Authority or IT department for help.",
} as const;
/** Headers handled by their own step rather than the generic required-header check. */
const SPECIALLY_CHECKED = new Set(['authorization', 'content-type']);

export interface GatewayRequest {
  method: string;
  /** Path + query as received. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** The legacy HSCN header a request carries, if any (names compared case- and `_`/`-`-insensitively). */
export function leakedLegacyHeader(headers: IncomingHttpHeaders): string | undefined {
  for (const name of Object.keys(headers)) {
    const n = name.toLowerCase().replaceAll('_', '-');
    if (n === 'xapi-asid' || n === 'http-x-session-key' || n === 'xapi-fqdn' || n.startsWith('x-ers-xapi')) return name;
  }
  return undefined;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
}

function present(headers: IncomingHttpHeaders, name: string): boolean {
  const v = header(headers, name);
  return v !== undefined && v.trim() !== '';
}

function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const m = /^Bearer +(\S+)\s*$/i.exec(header(headers, 'authorization') ?? '');
  return m?.[1];
}

function mediaType(contentType: string | undefined): { type: string; params: Map<string, string> } | undefined {
  if (contentType === undefined || contentType.trim() === '') return undefined;
  const [type, ...rest] = contentType.split(';');
  const params = new Map<string, string>();
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq > 0)
      params.set(
        p.slice(0, eq).trim().toLowerCase(),
        p
          .slice(eq + 1)
          .trim()
          .replace(/^"|"$/g, ''),
      );
    else if (p.trim() !== '') params.set(p.trim().toLowerCase(), '');
  }
  return { type: type!.trim().toLowerCase(), params };
}

function isFhirJsonMediaType(contentType: string | undefined): boolean {
  const mt = mediaType(contentType);
  if (mt === undefined || mt.type !== 'application/fhir+json') return false;
  for (const [name, value] of mt.params) {
    if (name !== 'charset' || value.toLowerCase() !== 'utf-8') return false;
  }
  return true;
}

function forbidden(version: FhirVersion, diagnostics: string): StandInReply {
  return outcomeReply(403, version, {
    code: 'forbidden',
    errorCode: version === 'STU3' ? 'NO_ACCESS' : 'ACCESS_DENIED',
    diagnostics,
  });
}

function unauthorised(version: FhirVersion, diagnostics: string): StandInReply {
  const headers = { 'www-authenticate': 'Bearer error="invalid_token"' };
  // APIM's OAuthPolicyErrorResponse sets only the status on STU3 paths: the body is empty.
  if (version === 'STU3') return emptyReply(401, headers);
  return outcomeReply(401, 'R4', { code: 'login', errorCode: 'ACCESS_DENIED', diagnostics }, headers);
}

/** APIM `RaiseFault.401InsufficientIal`: status 401 with the `forbidden` issue code of the shared template. */
function insufficientIal(version: FhirVersion): StandInReply {
  return outcomeReply(401, version, {
    code: 'forbidden',
    errorCode: version === 'STU3' ? 'NO_ACCESS' : 'ACCESS_DENIED',
    diagnostics: GATEWAY_ERRORS.insufficientIal,
  });
}

/** True when the token's user holds this business function at this organisation (per the stand-in's users). */
function userHoldsRole(state: StandInState, token: IssuedToken, odsCode: string, businessFunction: string): boolean {
  const sub = token.user?.sub;
  const user = sub === undefined ? undefined : state.users.get(sub);
  return user?.roles.some((r) => r.odsCode === odsCode && r.businessFunctions.includes(businessFunction)) ?? false;
}

function notFound(version: FhirVersion, diagnostics: string): StandInReply {
  const issue: OutcomeIssue =
    version === 'STU3'
      ? { code: 'not-found', errorCode: 'NOT_FOUND', diagnostics }
      : { code: 'not-found', errorCode: 'REC_NOT_FOUND', system: R4_HTTP_ERROR_SYSTEM, diagnostics };
  return outcomeReply(404, version, issue);
}

/** The headers the operation requires for this access mode, from the catalogue. */
export function requiredHeadersFor(op: CatalogueOperation, token: IssuedToken): string[] {
  const appRestricted = token.accessMode === 'application-restricted';
  const names = appRestricted
    ? // A028/A029/A036 list ODS/BF as plainly required although they are app-restricted; APIM supplies the
      // organisation and business function from the app in that mode, so they are never required from the client.
      op.requiredHeaders.filter((h) => !USER_CONTEXT_HEADERS.includes(h))
    : [...op.requiredHeaders, ...op.requiredHeadersUserRestrictedOnly];
  return names.filter((h) => !SPECIALLY_CHECKED.has(h.toLowerCase()));
}

function operationLabel(op: CatalogueOperation): string {
  return `${op.code} (${op.name})`;
}

/** Handles one request under the base path. Never throws for bad input. */
export function handleErsRequest(req: GatewayRequest, state: StandInState): StandInReply {
  const url = new URL(req.url, 'http://stand-in.invalid');
  const pathname = url.pathname;

  const servicePath = state.basePath.replace(/\/FHIR$/, '');
  if (servicePath !== state.basePath && pathname === `${servicePath}/_ping`) {
    return {
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(
        JSON.stringify({ version: 'apim-standin', revision: '1', releaseId: 'local', commitId: 'local' }),
      ),
    };
  }
  if (!pathname.startsWith(`${state.basePath}/`)) {
    return notFound('STU3', `APIM stand-in: nothing is served at ${pathname}; the e-RS API is under ${state.basePath}`);
  }
  const subPath = pathname.slice(state.basePath.length);
  // As APIM's IsFhirR4Path.js: anything that is not /FHIR/R4/ gets the STU3 ("PreR4") error shapes.
  const version: FhirVersion = subPath.startsWith('/R4/') ? 'R4' : 'STU3';

  // 1. Legacy headers must never reach APIM.
  const leaked = leakedLegacyHeader(req.headers);
  if (leaked !== undefined) {
    return outcomeReply(400, version, {
      code: 'invalid',
      errorCode: 'LEGACY_HEADER_NOT_ALLOWED',
      diagnostics: `APIM stand-in: the legacy HSCN header '${leaked}' reached APIM; it must be removed or translated`,
    });
  }

  // 2. Access token.
  const accessToken = bearerToken(req.headers);
  if (accessToken === undefined) return unauthorised(version, 'Invalid access token');
  const token = state.tokens.lookup(accessToken, state.now());
  if (token === undefined) return unauthorised(version, 'Invalid access token');
  const app = state.apps.get(token.apiKey);
  if (app === undefined) return unauthorised(version, 'Invalid access token');

  // 3. The app must carry an ASID (APIM sends it to e-RS as XAPI_ASID).
  if (app.asid.trim() === '') return forbidden(version, 'ASID is not configured in the application');

  // 4. Access-mode flow of the APIM proxy.
  const appRestricted = token.accessMode === 'application-restricted';
  if (appRestricted) {
    if (APIM_OWNED_HEADERS.some((h) => req.headers[h] !== undefined)) {
      return { status: 403, headers: { 'content-type': 'text/plain' }, body: Buffer.alloc(0) };
    }
  } else {
    if (AUTHORISED_APPLICATION_FUNCTIONS.has(header(req.headers, BUSINESS_FUNCTION_HEADER)?.trim() ?? '')) {
      return forbidden(version, GATEWAY_ERRORS.noBusinessFunction);
    }
    // A user-restricted token without a user (issued directly, not by token exchange) has no IAL: refused too.
    if (!(token.user !== undefined && token.user.idAssuranceLevel >= 3)) return insufficientIal(version);
    if (subPath !== PRACTITIONER_ROLE_PATH && !present(req.headers, ODS_HEADER)) {
      return outcomeReply(400, version, missingHeader(ODS_HEADER));
    }
  }

  // 5. Route.
  let segments: string[];
  try {
    segments = subPath.split('/').slice(1).map(decodeURIComponent);
  } catch {
    return notFound(version, `Malformed path ${subPath}`);
  }
  const matches = matchRoutes(state.routes, segments);
  if (matches.length === 0) return notFound(version, `No e-RS operation at ${subPath}`);
  const match = matches.find((m) => m.route.op.method === req.method);
  if (match === undefined) {
    const allow = [...new Set(matches.map((m) => m.route.op.method))].join(', ');
    return outcomeReply(
      405,
      version,
      {
        code: 'not-supported',
        errorCode: 'METHOD_NOT_ALLOWED',
        diagnostics: `${req.method} is not supported at ${subPath}; allowed: ${allow}`,
      },
      { allow },
    );
  }
  const op = match.route.op;

  // 6. Application-restricted access.
  if (appRestricted) {
    if (!op.appRestricted) {
      return forbidden(version, `${operationLabel(op)} does not support application-restricted access`);
    }
    const userHeader = [...USER_CONTEXT_HEADERS, ...op.headersNotAllowedAppRestricted].find((h) =>
      present(req.headers, h),
    );
    if (userHeader !== undefined) {
      return forbidden(
        version,
        `The ${userHeader} header is not allowed for application-restricted access (${op.code})`,
      );
    }
  } else if (op.code !== 'A030') {
    // 7. e-RS checks the caller's business function: held at the organisation, allowed for the operation, OBO use.
    if (
      requiredHeadersFor(op, token).includes(BUSINESS_FUNCTION_HEADER) &&
      !present(req.headers, BUSINESS_FUNCTION_HEADER)
    ) {
      return outcomeReply(400, version, missingHeader(BUSINESS_FUNCTION_HEADER));
    }
    const bf = header(req.headers, BUSINESS_FUNCTION_HEADER)?.trim() || undefined;
    const ods = header(req.headers, ODS_HEADER)?.trim() ?? '';
    // Stricter than APIM on purpose: APIM forwards any ODS/BF pair and e-RS rejects the ones the user does not hold
    // (in its own words, not published). The stand-in refuses them with APIM's business-function text, so a proxy
    // that picks the wrong organisation or role for a user fails here rather than only against the real service.
    if (bf !== undefined && !userHoldsRole(state, token, ods, bf)) {
      return forbidden(version, GATEWAY_ERRORS.noBusinessFunction);
    }
    const roles = op.businessFunctions.filter((r) => /^[A-Z_]+$/.test(r));
    if (bf !== undefined && roles.length > 0 && !roles.includes(bf)) {
      return forbidden(
        version,
        `${operationLabel(op)} cannot be used with business function ${bf}; allowed: ${roles.join(', ')}`,
      );
    }
    // On-behalf-of, as the specification and NHS's sandbox: an SPCA always acts for an SPC, so the header is required
    // with SPCA wherever the operation takes it, and refused with every other business function. (A036 and A040 list
    // SPCA but declare no OBO header: SPCA is not made to send one there.)
    const spca = bf === SPCA;
    if (spca && op.conditionalHeaders[OBO_HEADER] !== undefined && !present(req.headers, OBO_HEADER)) {
      return outcomeReply(400, version, missingHeader(OBO_HEADER));
    }
    if (!spca && present(req.headers, OBO_HEADER)) {
      return forbidden(version, `${OBO_HEADER} may only be sent with business function ${SPCA}`);
    }
  }

  // 8. Required headers and query parameters.
  for (const name of requiredHeadersFor(op, token)) {
    if (!present(req.headers, name)) return outcomeReply(400, version, missingHeader(name));
    if (name.toLowerCase() === 'if-match' && !IF_MATCH_PATTERN.test(header(req.headers, name)!.trim())) {
      return outcomeReply(400, version, {
        code: 'value',
        errorCode: 'INVALID_HEADER',
        diagnostics: `If-Match must be a weak ETag W/"<version>"; got ${header(req.headers, name)}`,
      });
    }
  }
  for (const q of op.queryParameters) {
    if (q.required && (url.searchParams.get(q.name) ?? '') === '') {
      return outcomeReply(400, version, {
        code: 'required',
        errorCode: 'MISSING_PARAMETER',
        diagnostics: `Missing required query parameter '${q.name}' for ${op.code}`,
      });
    }
  }

  // 9. Request body media type.
  let json: unknown;
  const contentType = header(req.headers, 'content-type');
  if (op.requestContentTypes.includes('application/fhir+json')) {
    if (!isFhirJsonMediaType(contentType)) {
      return textReply(
        415,
        `Unsupported Media Type: ${op.code} takes application/fhir+json, got ${contentType ?? '(none)'}`,
      );
    }
    try {
      json = JSON.parse(req.body.toString('utf8'));
    } catch {
      return outcomeReply(400, version, {
        code: 'structure',
        errorCode: 'MESSAGE_NOT_WELL_FORMED',
        diagnostics: `The ${op.code} request body is not valid JSON`,
      });
    }
  } else if (op.requestContentTypes.length > 0) {
    const mt = mediaType(contentType);
    if (mt === undefined || !op.requestContentTypes.includes(mt.type)) {
      return textReply(
        415,
        `Unsupported Media Type: ${op.code} takes one of ${op.requestContentTypes.join(', ')}, got ${contentType ?? '(none)'}`,
      );
    }
  }

  // 10. The answer (a test's scripted e-RS error first, when it gave one for this operation).
  const scripted = state.failWith.get(op.code);
  if (scripted !== undefined) {
    return outcomeReply(scripted.status, version, {
      code: scripted.status === 404 ? 'not-found' : scripted.status === 423 ? 'lock-error' : 'invalid',
      errorCode: scripted.code,
      ...(scripted.diagnostics !== undefined ? { diagnostics: scripted.diagnostics } : {}),
    });
  }
  const responder = RESPONDERS[op.code];
  if (responder === undefined) {
    return outcomeReply(501, version, {
      code: 'not-supported',
      errorCode: 'NOT_IMPLEMENTED',
      diagnostics: `APIM stand-in: ${operationLabel(op)} is not emulated`,
    });
  }
  return responder({
    op,
    method: req.method,
    params: match.params,
    query: url.searchParams,
    headers: req.headers,
    body: req.body,
    json,
    token,
    state,
  });
}

function missingHeader(name: string): OutcomeIssue {
  return { code: 'required', errorCode: 'MISSING_HEADER', diagnostics: `Missing or Empty ${name} header.` };
}
