/**
 * Legacy-shaped errors: an STU3 OperationOutcome with the eRS-OperationOutcome-1 profile, as the HSCN API returned
 * from November 2024. Every error ers-bridge produces itself goes through here, so that a legacy client always gets
 * a status, an NHS error code it may already handle, and a diagnostics text saying what was wrong and what to do.
 * A second coding in ers-bridge's own code system gives the precise reason for operators and tooling.
 */

export const ERS_OUTCOME_PROFILE = 'https://fhir.nhs.uk/STU3/StructureDefinition/eRS-OperationOutcome-1';
export const ERS_ERROR_SYSTEM = 'https://fhir.nhs.uk/STU3/CodeSystem/eRS-APIErrorCode-1';
export const BRIDGE_ERROR_SYSTEM = 'urn:ers-bridge:error';
export const FHIR_JSON = 'application/fhir+json';

/** FHIR issue types used here (STU3 IssueType value set). */
type IssueType =
  | 'invalid'
  | 'required'
  | 'value'
  | 'forbidden'
  | 'login'
  | 'not-found'
  | 'not-supported'
  | 'too-costly'
  | 'throttled'
  | 'transient'
  | 'exception'
  | 'timeout'
  | 'expired'
  | 'security'
  | 'processing';

interface Reason {
  status: number;
  issue: IssueType;
  /** Code from the eRS-APIErrorCode-1 system that legacy clients may already recognise. */
  ersCode: string;
  ersDisplay: string;
}

const noAccess = (): Reason => ({ status: 403, issue: 'login', ersCode: 'NO_ACCESS', ersDisplay: 'No access' });
const forbidden = (): Reason => ({ status: 403, issue: 'forbidden', ersCode: 'FORBIDDEN', ersDisplay: 'Forbidden' });
const invalid = (status: number, issue: IssueType): Reason => ({
  status,
  issue,
  ersCode: 'INVALID_VALUE',
  ersDisplay: 'Invalid value',
});
const unavailable = (status: number, issue: IssueType): Reason => ({
  status,
  issue,
  ersCode: 'SERVICE_UNAVAILABLE',
  ersDisplay: 'Service unavailable',
});

/**
 * Every error ers-bridge can raise, by its own precise code. Adding a reason here is the only way to add an error,
 * which keeps MIGRATION.md's troubleshooting table complete (a test checks it).
 */
export const REASONS = {
  // sessions (A001–A003 and data calls)
  SESSION_KEY_MISSING: noAccess(),
  SESSION_UNKNOWN: noAccess(),
  SESSION_ASID_MISMATCH: noAccess(),
  SESSION_ROLE_NOT_SELECTED: noAccess(),
  SESSION_KEY_PATH_MISMATCH: noAccess(),
  ASID_MISSING: forbidden(),
  ASID_UNKNOWN: forbidden(),
  ASID_NOT_APPLICATION_RESTRICTED: forbidden(),
  PERMISSION_NOT_OFFERED: invalid(422, 'value'),
  BODY_INVALID_JSON: invalid(422, 'invalid'),
  BODY_INVALID_FIELD: invalid(422, 'value'),
  BODY_MISSING_FIELD: { status: 422, issue: 'required', ersCode: 'MISSING_VALUE', ersDisplay: 'Missing value' },
  // what one caller may hold of what all share: A001s per second per ASID, and the size of a session
  SESSION_RATE_LIMITED: {
    status: 429,
    issue: 'throttled',
    ersCode: 'TOO_MANY_REQUESTS',
    ersDisplay: 'Too many requests',
  },
  // 422, not 413: the request was within the body limit (413 BODY_TOO_LARGE says when it is not, and closes the
  // connection); what is too large is the session it would make (a long token kept for the legacy host, a CIS2 user
  // with very many roles) — a well-formed request that cannot be processed, as the legacy API answered 422 for
  // session bodies it could not use.
  SESSION_TOO_LARGE: invalid(422, 'too-costly'),
  SESSION_STORE_FULL: unavailable(503, 'transient'),
  // CIS2 users (A001 with an ID token or a sign-in code; token lifecycle)
  ID_TOKEN_INVALID: invalid(422, 'invalid'),
  ID_TOKEN_EXPIRED: { ...noAccess(), issue: 'expired' },
  ID_TOKEN_WRONG_ISSUER: forbidden(),
  ID_TOKEN_WRONG_AUDIENCE: forbidden(),
  ASSURANCE_TOO_LOW: forbidden(),
  SIGN_IN_CODE_UNKNOWN: noAccess(),
  SIGN_IN_CODE_WRONG_ASID: noAccess(),
  USER_TOKEN_NOT_RECOGNISED: invalid(422, 'invalid'),
  // open-access test environments (apim.auth none): A001 names a test user of the rules
  TEST_USER_REFUSED: noAccess(),
  TOKEN_EXCHANGE_REFUSED: forbidden(),
  NO_ERS_ROLES: forbidden(),
  SESSION_SIGN_IN_AGAIN: noAccess(),
  CIS2_UNAVAILABLE: unavailable(503, 'transient'),
  ON_BEHALF_OF_INVALID: invalid(422, 'value'),
  // policy
  BUSINESS_FUNCTION_NOT_ALLOWED: forbidden(),
  ENDPOINT_NOT_APP_RESTRICTED: forbidden(),
  ENDPOINT_NOT_ALLOWED_FOR_ASID: forbidden(),
  // who is calling (the system's certificate, or its A001 secret), and where it thinks it is calling
  CALLER_CERTIFICATE_REQUIRED: forbidden(),
  CALLER_CERTIFICATE_REFUSED: forbidden(),
  A001_SECRET_REFUSED: forbidden(),
  MISDIRECTED_REQUEST: { status: 421, issue: 'invalid', ersCode: 'INVALID_VALUE', ersDisplay: 'Misdirected request' },
  // request shape
  UNKNOWN_ENDPOINT: {
    status: 404,
    issue: 'not-supported',
    ersCode: 'REFERENCE_NOT_FOUND',
    ersDisplay: 'Reference not found',
  },
  METHOD_NOT_ALLOWED: {
    status: 405,
    issue: 'not-supported',
    ersCode: 'INVALID_REQUEST_TYPE',
    ersDisplay: 'Invalid request type',
  },
  DSTU2_WITHDRAWN: { status: 410, issue: 'not-supported', ersCode: 'INVALID_REQUEST_TYPE', ersDisplay: 'Gone' },
  BAD_PATH: invalid(400, 'invalid'),
  BAD_PATH_PARAMETER: invalid(400, 'value'),
  MISSING_HEADER: { status: 422, issue: 'required', ersCode: 'MISSING_PARAMETER', ersDisplay: 'Missing parameter' },
  BAD_HEADER: invalid(400, 'value'),
  UNSUPPORTED_MEDIA_TYPE: invalid(415, 'not-supported'),
  BODY_TOO_LARGE: { status: 413, issue: 'too-costly', ersCode: 'FILE_SIZE_ERROR', ersDisplay: 'File size error' },
  // APIM side
  TOKEN_REJECTED_BY_APIM: unavailable(502, 'security'),
  TOKEN_ENDPOINT_UNAVAILABLE: unavailable(503, 'transient'),
  ACCESS_TOKEN_REFUSED: unavailable(502, 'security'),
  UPSTREAM_UNREACHABLE: unavailable(502, 'transient'),
  UPSTREAM_TIMEOUT: unavailable(504, 'timeout'),
  UPSTREAM_BAD_RESPONSE: unavailable(502, 'exception'),
  UPSTREAM_EMPTY_ERROR: unavailable(502, 'exception'),
  RATE_LIMITED_LOCALLY: {
    status: 429,
    issue: 'throttled',
    ersCode: 'TOO_MANY_REQUESTS',
    ersDisplay: 'Too many requests',
  },
  HEADERS_TOO_LARGE: { status: 431, issue: 'too-costly', ersCode: 'INVALID_VALUE', ersDisplay: 'Invalid value' },
  MALFORMED_REQUEST: invalid(400, 'invalid'),
  UPSTREAM_RATE_LIMITED: {
    status: 429,
    issue: 'throttled',
    ersCode: 'TOO_MANY_REQUESTS',
    ersDisplay: 'Too many requests',
  },
  STORE_UNAVAILABLE: unavailable(503, 'transient'),
  LEGACY_SESSION_FAILED: forbidden(),
  APPLICATION_BUSY: unavailable(503, 'transient'),
  // operations APIM has retired, answered through their successors (src/legacy/successors.ts): A006 through A042
  // keeps A006's own 422 codes (PENDING, THREATS_FOUND, VALIDATION_FAILED, FILE_SIZE_ERROR)
  ATTACHMENT_PENDING: { status: 422, issue: 'invalid', ersCode: 'PENDING', ersDisplay: 'Pending' },
  ATTACHMENT_THREATS_FOUND: { status: 422, issue: 'invalid', ersCode: 'THREATS_FOUND', ersDisplay: 'Threats found' },
  ATTACHMENT_VALIDATION_FAILED: {
    status: 422,
    issue: 'invalid',
    ersCode: 'VALIDATION_FAILED',
    ersDisplay: 'Validation failed',
  },
  ATTACHMENT_TOO_LARGE: { status: 422, issue: 'too-costly', ersCode: 'FILE_SIZE_ERROR', ersDisplay: 'File size error' },
  ATTACHMENT_NOT_FOUND: {
    status: 404,
    issue: 'not-found',
    ersCode: 'REFERENCE_NOT_FOUND',
    ersDisplay: 'Reference not found',
  },
  ATTACHMENT_REFUSED: forbidden(),
  SUCCESSOR_REFUSED: unavailable(502, 'exception'),
  OBJECT_STORE_LINK_REFUSED: unavailable(502, 'security'),
  OBJECT_STORE_FAILED: unavailable(502, 'transient'),
  OBJECT_STORE_TIMEOUT: unavailable(504, 'timeout'),
  // A021/A032 made as several calls that stopped part-way: something was done, so no status that invites a retry
  SUCCESSOR_INCOMPLETE: {
    status: 422,
    issue: 'processing',
    ersCode: 'INVALID_REQUEST_STATE',
    ersDisplay: 'Invalid request state',
  },
  OPERATION_RETIRED: { status: 410, issue: 'not-supported', ersCode: 'INVALID_REQUEST_TYPE', ersDisplay: 'Gone' },
  INTERNAL_ERROR: { status: 500, issue: 'exception', ersCode: 'SERVICE_UNAVAILABLE', ersDisplay: 'Internal error' },
} as const satisfies Record<string, Reason>;

export type ReasonCode = keyof typeof REASONS;

export interface OperationOutcome {
  resourceType: 'OperationOutcome';
  meta: { profile: string[] };
  issue: Array<{
    severity: 'error';
    code: string;
    details: { coding: Array<{ system: string; code: string; display?: string }> };
    diagnostics: string;
  }>;
}

/** An error ers-bridge answers itself. Thrown by pipeline steps and rendered by the server's error handler. */
export class LegacyError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;

  /** The reason logged and counted, when it differs from what the client is told (see SESSION_ASID_MISMATCH). */
  readonly logAs: ReasonCode;

  constructor(
    readonly reason: ReasonCode,
    readonly diagnostics: string,
    options: { status?: number; headers?: Record<string, string>; logAs?: ReasonCode } = {},
  ) {
    super(`${reason}: ${diagnostics}`);
    this.name = 'LegacyError';
    this.status = options.status ?? REASONS[reason].status;
    this.headers = options.headers ?? {};
    this.logAs = options.logAs ?? reason;
  }

  toOutcome(): OperationOutcome {
    return operationOutcome(this.reason, this.diagnostics);
  }
}

export function operationOutcome(reason: ReasonCode, diagnostics: string): OperationOutcome {
  const r: Reason = REASONS[reason];
  return {
    resourceType: 'OperationOutcome',
    meta: { profile: [ERS_OUTCOME_PROFILE] },
    issue: [
      {
        severity: 'error',
        code: r.issue,
        details: {
          coding: [
            { system: ERS_ERROR_SYSTEM, code: r.ersCode, display: r.ersDisplay },
            { system: BRIDGE_ERROR_SYSTEM, code: reason },
          ],
        },
        diagnostics,
      },
    ],
  };
}
