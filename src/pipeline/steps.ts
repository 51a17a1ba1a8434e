/**
 * The named steps of the request path that decide rather than do: who is calling (ASID), which session, whether
 * policy allows the call. Each is small and pure apart from the one store read in loadSession.
 */
import type { EndpointDef } from '../legacy/endpoints.js';
import { LegacyError } from '../legacy/errors.js';
import type { AsidRuntime, Runtime } from '../runtime.js';
import type { Session } from '../sessions/session.js';
import type { SessionStore } from '../sessions/store.js';
import { type IncomingHeaders, legacyHeader } from '../translation/request.js';

export const ASID_HEADER = 'XAPI_ASID';
export const SESSION_HEADER = 'HTTP_X_SESSION_KEY';

/** Step: the calling system, from `XAPI_ASID`, which must be configured in the rules. */
export function requireAsid(rt: Runtime, headers: IncomingHeaders): AsidRuntime {
  const asid = legacyHeader(headers, ASID_HEADER);
  if (asid === undefined || asid === '') {
    throw new LegacyError(
      'ASID_MISSING',
      "The XAPI_ASID header is missing. Send your system's ASID in XAPI_ASID on every call, as with the HSCN API.",
    );
  }
  const found = /^\d{1,20}$/.test(asid) ? rt.asids.get(asid) : undefined;
  if (!found) {
    throw new LegacyError(
      'ASID_UNKNOWN',
      `ASID ${/^\d{1,20}$/.test(asid) ? asid : '(not digits)'} is not configured in ers-bridge for environment ${rt.rules.environment}. Check XAPI_ASID, or ask the ers-bridge operators to add this ASID to the rules.`,
    );
  }
  return found;
}

const SIGN_IN_AGAIN =
  'Create a new session with A001 (POST /ers-api/v1/ProfessionalSession), select a role with A002, then repeat the call.';
const SIGN_IN_AGAIN_USER =
  "Sign in to CIS2 again (ers-bridge's /login page, or a fresh CIS2 ID token), create a new session with A001 and select a role with A002, then repeat the call.";

/** Step: the live session named by `HTTP_X_SESSION_KEY`, bound to the calling ASID and with a role selected. */
export async function loadSession(
  store: SessionStore,
  headers: IncomingHeaders,
  asid: string,
  options: { requireRole: boolean; keyFromPath?: string; userRestricted?: boolean },
): Promise<{ key: string; session: Session }> {
  const fromHeader = legacyHeader(headers, SESSION_HEADER);
  const key = fromHeader ?? options.keyFromPath;
  if (key === undefined || key === '') {
    throw new LegacyError(
      'SESSION_KEY_MISSING',
      `The HTTP_X_SESSION_KEY header is missing. Send the id returned by A001 in HTTP_X_SESSION_KEY. ${SIGN_IN_AGAIN}`,
    );
  }
  if (options.keyFromPath !== undefined && fromHeader !== undefined && fromHeader !== options.keyFromPath) {
    throw new LegacyError(
      'SESSION_KEY_PATH_MISMATCH',
      'The session key in the URL differs from the HTTP_X_SESSION_KEY header; send the same session id in both.',
    );
  }
  // One store read whatever the key looks like, so unknown and foreign keys take the same time.
  const session = await store.get(key.length <= 200 ? key : key.slice(0, 200));
  if (!session) {
    throw new LegacyError(
      'SESSION_UNKNOWN',
      `The session in HTTP_X_SESSION_KEY is unknown, has expired or was deleted. ${options.userRestricted ? SIGN_IN_AGAIN_USER : SIGN_IN_AGAIN}`,
    );
  }
  if (session.asid !== asid) {
    throw new LegacyError(
      'SESSION_ASID_MISMATCH',
      'The session in HTTP_X_SESSION_KEY was created by another ASID; a session can only be used with the XAPI_ASID that created it.',
    );
  }
  if (options.requireRole && !session.permission) {
    throw new LegacyError(
      'SESSION_ROLE_NOT_SELECTED',
      "No role is selected for this session. Select one of the session's permissions with A002 (PUT /ers-api/v1/ProfessionalSession/{id}) before calling data endpoints.",
    );
  }
  return { key, session };
}

/** Step: whether this operation is among the ASID's message sets (any mode). Pure. */
export function checkAsidPolicy(endpoint: EndpointDef, asid: AsidRuntime): void {
  const allowed = asid.config.allowedCodes;
  if (allowed && !allowed.includes(endpoint.code)) {
    throw new LegacyError(
      'ENDPOINT_NOT_ALLOWED_FOR_ASID',
      `${endpoint.code} (${endpoint.name}) is not among the operations ASID ${asid.asid} may use (${allowed.join(', ')}). Ask the ers-bridge operators if this ASID's message sets should include it.`,
    );
  }
}

/** Why APIM would refuse this call for this session, if it would: access mode and business function. Pure. */
export function apimPolicyProblem(endpoint: EndpointDef, asid: AsidRuntime, session: Session): LegacyError | undefined {
  if (session.accessMode === 'application-restricted' && !endpoint.appRestricted) {
    return new LegacyError(
      'ENDPOINT_NOT_APP_RESTRICTED',
      `${endpoint.code} (${endpoint.name}) needs a healthcare worker signed in with CIS2 (user-restricted access); ASID ${asid.asid} is application-restricted, so APIM would refuse it. Use a user-restricted ASID for this operation.`,
    );
  }
  const bf = session.permission?.businessFunction;
  if (session.accessMode === 'user-restricted' && bf && endpoint.businessFunctions.length > 0) {
    if (!endpoint.businessFunctions.includes(bf as never)) {
      return new LegacyError(
        'BUSINESS_FUNCTION_NOT_ALLOWED',
        `${endpoint.code} (${endpoint.name}) cannot be used with the business function ${bf}; it takes ${endpoint.businessFunctions.join(', ')}. Select another role with A002.`,
      );
    }
  }
  return undefined;
}

/** Step: APIM's rules for this call (before anything is sent to APIM). */
export function checkApimPolicy(endpoint: EndpointDef, asid: AsidRuntime, session: Session): void {
  const problem = apimPolicyProblem(endpoint, asid, session);
  if (problem) throw problem;
}

/** Step: whether this ASID, with this session, may call this operation on APIM. Pure. */
export function checkPolicy(endpoint: EndpointDef, asid: AsidRuntime, session: Session): void {
  checkApimPolicy(endpoint, asid, session);
  checkAsidPolicy(endpoint, asid);
}
