/**
 * The named steps of the request path that decide rather than do: what was called (the identify step's refusals),
 * who is calling (ASID), which session, and whether policy allows the call. Each is small and pure but for the one
 * store read in loadSession. Policy steps return a problem (the legacy error to answer) or nothing, so the flow,
 * `explain` and shadow planning ask the same questions and get the same answers.
 */
import { normaliseFingerprint, type PresentedCertificate } from '../auth/client-certificate.js';
import type { EndpointDef } from '../legacy/endpoints.js';
import { LegacyError } from '../legacy/errors.js';
import type { Identified } from '../legacy/identify.js';
import type { AsidConfig } from '../rules/schema.js';
import { type AccessMode, type Session, sessionKeyHash, sessionTagOf } from '../sessions/session.js';
import type { SessionStore } from '../sessions/store.js';
import { type IncomingHeaders, legacyHeader } from '../translation/request.js';

export const ASID_HEADER = 'XAPI_ASID';
export const SESSION_HEADER = 'HTTP_X_SESSION_KEY';

/** Step (pure): the refusal for a call that is not an e-RS operation ers-bridge serves, or undefined when it is. */
export function refusalOf(id: Identified): LegacyError | undefined {
  switch (id.kind) {
    case 'not-found':
    case 'not-legacy':
      return new LegacyError(
        'UNKNOWN_ENDPOINT',
        'No e-RS operation is served at this path. Legacy STU3 calls look like /ers-api/STU3/v1/ReferralRequest/{ubrn}; sessions are /ers-api/v1/ProfessionalSession. Check the path against the e-RS endpoint catalogue.',
      );
    case 'method-not-allowed':
      return new LegacyError(
        'METHOD_NOT_ALLOWED',
        `This path (${id.codes.join(', ')}) takes ${id.allow.join(' or ')}, not the method sent.`,
        { headers: { allow: id.allow.join(', ') } },
      );
    case 'bad-param':
      return new LegacyError(
        'BAD_PATH_PARAMETER',
        `${id.code}: the {${id.param}} part of the path must be ${id.expected}.`,
      );
    case 'bad-path':
      return new LegacyError('BAD_PATH', `The request path is not acceptable: ${id.reason}.`);
    case 'dstu2':
      return new LegacyError(
        'DSTU2_WITHDRAWN',
        `The DSTU2 API (/ers-api/v1/${id.resource}) was withdrawn in August 2024 and has no APIM equivalent. Use the STU3 call instead — ${id.replacement}.`,
      );
    // Stryker disable next-line ConditionalExpression: an emptied default case falls out of the switch, and the function returns undefined all the same
    default:
      return undefined;
  }
}

/** Proxies drop headers with underscores by default; a client that sends XAPI_ASID may never have it arrive. */
const UNDERSCORES =
  'If the system does send the header, a proxy on the way is dropping headers with underscores: let them through (nginx: underscores_in_headers on; ingress-nginx: enable-underscores-in-headers "true"; AWS ALB: routing.http.drop_invalid_header_fields.enabled=false).';

/** Step (pure): the calling system, from `XAPI_ASID`, which must be configured in the rules. */
export function requireCaller<C>(callers: ReadonlyMap<string, C>, environment: string, headers: IncomingHeaders): C {
  const asid = legacyHeader(headers, ASID_HEADER);
  if (asid === undefined || asid === '') {
    throw new LegacyError(
      'ASID_MISSING',
      `The XAPI_ASID header is missing. Send your system's ASID in XAPI_ASID on every call, as with the HSCN API. ${UNDERSCORES}`,
    );
  }
  const found = /^\d{1,20}$/.test(asid) ? callers.get(asid) : undefined;
  if (!found) {
    throw new LegacyError(
      'ASID_UNKNOWN',
      `ASID ${/^\d{1,20}$/.test(asid) ? asid : '(not digits)'} is not configured in ers-bridge for environment ${environment}. Check XAPI_ASID, or ask the ers-bridge operators to add this ASID to the rules.`,
    );
  }
  return found;
}

/**
 * Step (pure): the ASID a call named, as its record may carry it before the caller is known: a configured ASID, or
 * any 12 digits (a Spine ASID's form) as sent; anything else is a string the caller chose and is never logged as
 * it is (`(not an ASID)`). Undefined when the call named none.
 */
export function asidForLog(callers: ReadonlyMap<string, unknown>, headers: IncomingHeaders): string | undefined {
  const asid = legacyHeader(headers, ASID_HEADER);
  if (asid === undefined || asid === '') return undefined;
  return callers.has(asid) || /^\d{12}$/.test(asid) ? asid : '(not an ASID)';
}

const SIGN_IN_AGAIN =
  'Create a new session with A001 (POST /ers-api/v1/ProfessionalSession), select a role with A002, then repeat the call.';
const SIGN_IN_AGAIN_USER =
  "Sign in to CIS2 again (ers-bridge's /login page, or a fresh CIS2 ID token), create a new session with A001 and select a role with A002, then repeat the call.";

export interface SessionLookup {
  /** The calling ASID: a session answers only to the ASID that made it. */
  asid: string;
  /** Data calls need a role selected (A002); A002 and A003 themselves do not. */
  requireRole: boolean;
  /** A002 and A003 name the session in the path as well. */
  keyFromPath?: string;
  /** Whether the caller signs users in with CIS2 (the advice on an unknown session differs). */
  userRestricted: boolean;
}

/** Step (store): the live session named by `HTTP_X_SESSION_KEY`, bound to the calling ASID and, if asked, with a role. */
export async function loadSession(
  store: SessionStore,
  headers: IncomingHeaders,
  lookup: SessionLookup,
): Promise<LoadedSession> {
  const fromHeader = legacyHeader(headers, SESSION_HEADER);
  const key = fromHeader ?? lookup.keyFromPath;
  if (key === undefined || key === '') {
    throw new LegacyError(
      'SESSION_KEY_MISSING',
      `The HTTP_X_SESSION_KEY header is missing. Send the id returned by A001 in HTTP_X_SESSION_KEY. ${SIGN_IN_AGAIN} ${UNDERSCORES}`,
    );
  }
  if (lookup.keyFromPath !== undefined && fromHeader !== undefined && fromHeader !== lookup.keyFromPath) {
    throw new LegacyError(
      'SESSION_KEY_PATH_MISMATCH',
      'The session key in the URL differs from the HTTP_X_SESSION_KEY header; send the same session id in both.',
    );
  }
  // One store read whatever the key looks like, so unknown and foreign keys take the same time. The key is hashed
  // once here: the store indexes by the hash and the record's tag is cut from it.
  // Stryker disable next-line EqualityOperator,ConditionalExpression: slice(0, 200) of a key of at most 200 characters is the key itself
  const stored = key.length <= 200 ? key : key.slice(0, 200);
  const hash = sessionKeyHash(stored);
  const session = await store.get(stored, hash, lookup.asid);
  // Another ASID's session is answered exactly as an unknown one, so a key's existence never leaks across ASIDs;
  // the log and metrics still tell the two apart (not on Redis Cluster, which looks only under the calling ASID: there
  // another ASID's session is simply not found, SESSION_UNKNOWN in the log too).
  if (!session || session.asid !== lookup.asid) {
    throw new LegacyError(
      'SESSION_UNKNOWN',
      `The session in HTTP_X_SESSION_KEY is unknown, has expired or was deleted. ${lookup.userRestricted ? SIGN_IN_AGAIN_USER : SIGN_IN_AGAIN}`,
      session ? { logAs: 'SESSION_ASID_MISMATCH' } : {},
    );
  }
  if (lookup.requireRole && !session.permission) {
    throw new LegacyError(
      'SESSION_ROLE_NOT_SELECTED',
      "No role is selected for this session. Select one of the session's permissions with A002 (PUT /ers-api/v1/ProfessionalSession/{id}) before calling data endpoints.",
    );
  }
  return new LoadedSession(key, session, hash);
}

/** A session read for a call: the key it was named by and the session; the key's hash stays inside (for the tag). */
export class LoadedSession {
  readonly #hash: string;
  constructor(
    readonly key: string,
    readonly session: Session,
    hash: string,
  ) {
    this.#hash = hash;
  }

  /** The session's tag for the record, cut from the hash the store was read by (the key is hashed once a call). */
  get tag(): string {
    return sessionTagOf(this.#hash);
  }
}

/**
 * Policy (pure): whether the caller proved it is this ASID, when the ASID is bound to certificates — for every call,
 * A001 to data calls. The diagnostics say which certificate was seen and what the ASID accepts (nothing secret).
 */
export function callerCertificateProblem(
  asid: string,
  config: AsidConfig,
  presented: PresentedCertificate | undefined,
): LegacyError | undefined {
  const wanted = config.callerAuth?.certificates;
  if (!wanted) return undefined;
  const accepts = wanted
    .map((w) => ('sha256' in w ? `SHA-256 ${normaliseFingerprint(w.sha256)}` : w.subject))
    .join(', ');
  if (!presented) {
    return new LegacyError(
      'CALLER_CERTIFICATE_REQUIRED',
      `ASID ${asid} accepts only calls made with its endpoint certificate (mutual TLS), and no client certificate was presented. Configure the system's HTTPS client to present the Spine endpoint certificate it used for HSCN (ASID ${asid} accepts: ${accepts}).`,
    );
  }
  const seen = `CN=${presented.subjectCn ?? '(none)'}, SHA-256 ${presented.sha256}${presented.issuer ? `, issued by ${presented.issuer}` : ''}`;
  if (!presented.verified) {
    return new LegacyError(
      'CALLER_CERTIFICATE_REFUSED',
      `The client certificate presented (${seen}) could not be verified: ${presented.problem ?? 'not from a trusted CA'}. ASID ${asid} accepts: ${accepts}.`,
    );
  }
  const names = new Set([presented.subjectCn, ...presented.dnsNames].filter((n): n is string => !!n));
  const match = wanted.some((w) =>
    'sha256' in w ? normaliseFingerprint(w.sha256) === presented.sha256 : names.has(w.subject.toLowerCase()),
  );
  if (match) return undefined;
  return new LegacyError(
    'CALLER_CERTIFICATE_REFUSED',
    `The client certificate presented (${seen}) is not one ASID ${asid} accepts; it accepts: ${accepts}. Present the endpoint certificate of the system this ASID belongs to, or ask the ers-bridge operators to bind this certificate to the ASID.`,
  );
}

/** The role a call is made in: the session's access mode and the business function selected with A002. */
export interface CallRole {
  accessMode: AccessMode;
  businessFunction: string | undefined;
}

/** The role of a session. */
export function roleOf(session: Session): CallRole {
  return { accessMode: session.accessMode, businessFunction: session.permission?.businessFunction };
}

/** Policy (pure): whether this operation is among the ASID's message sets (any mode). */
export function messageSetProblem(endpoint: EndpointDef, asid: string, config: AsidConfig): LegacyError | undefined {
  const allowed = config.allowedCodes;
  if (!allowed || allowed.includes(endpoint.code)) return undefined;
  return new LegacyError(
    'ENDPOINT_NOT_ALLOWED_FOR_ASID',
    `${endpoint.code} (${endpoint.name}) is not among the operations ASID ${asid} may use (${allowed.join(', ')}). Ask the ers-bridge operators if this ASID's message sets should include it.`,
  );
}

/** Policy (pure): why APIM would refuse this call in this role, if it would: access mode and business function. */
export function apimAccessProblem(endpoint: EndpointDef, asid: string, role: CallRole): LegacyError | undefined {
  if (role.accessMode === 'application-restricted' && !endpoint.appRestricted) {
    return new LegacyError(
      'ENDPOINT_NOT_APP_RESTRICTED',
      `${endpoint.code} (${endpoint.name}) needs a healthcare worker signed in with CIS2 (user-restricted access); ASID ${asid} is application-restricted, so APIM would refuse it. Use a user-restricted ASID for this operation.`,
    );
  }
  const bf = role.businessFunction;
  if (role.accessMode === 'user-restricted' && bf && endpoint.businessFunctions.length > 0) {
    if (!endpoint.businessFunctions.includes(bf as never)) {
      return new LegacyError(
        'BUSINESS_FUNCTION_NOT_ALLOWED',
        `${endpoint.code} (${endpoint.name}) cannot be used with the business function ${bf}; it takes ${endpoint.businessFunctions.join(', ')}. Select another role with A002.`,
      );
    }
  }
  return undefined;
}

/** Throws the problem a policy step found, if any: the flow's way of saying "stop here". */
export function refuse(problem: LegacyError | undefined): void {
  if (problem) throw problem;
}
