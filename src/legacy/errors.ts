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
  | 'security';

interface Reason {
  status: number;
  issue: IssueType;
  /** Code from the eRS-APIErrorCode-1 system that legacy clients may already recognise. */
  ersCode: string;
  ersDisplay: string;
}

/**
 * Every error ers-bridge can raise, by its own precise code. Adding a reason here is the only way to add an error,
 * which keeps MIGRATION.md's troubleshooting table complete.
 */
export const REASONS = {
  // sessions (A001–A003 and data calls)
  SESSION_KEY_MISSING: { status: 403, issue: 'login', ersCode: 'NO_ACCESS', ersDisplay: 'No access' },
  SESSION_UNKNOWN: { status: 403, issue: 'login', ersCode: 'NO_ACCESS', ersDisplay: 'No access' },
  SESSION_ASID_MISMATCH: { status: 403, issue: 'login', ersCode: 'NO_ACCESS', ersDisplay: 'No access' },
  SESSION_ROLE_NOT_SELECTED: { status: 403, issue: 'login', ersCode: 'NO_ACCESS', ersDisplay: 'No access' },
  SESSION_KEY_PATH_MISMATCH: { status: 403, issue: 'login', ersCode: 'NO_ACCESS', ersDisplay: 'No access' },
  ASID_MISSING: { status: 403, issue: 'forbidden', ersCode: 'FORBIDDEN', ersDisplay: 'Forbidden' },
  ASID_UNKNOWN: { status: 403, issue: 'forbidden', ersCode: 'FORBIDDEN', ersDisplay: 'Forbidden' },
  ASID_NOT_APPLICATION_RESTRICTED: {
    status: 403,
    issue: 'forbidden',
    ersCode: 'FORBIDDEN',
    ersDisplay: 'Forbidden',
  },
  PERMISSION_NOT_OFFERED: { status: 422, issue: 'value', ersCode: 'INVALID_VALUE', ersDisplay: 'Invalid value' },
  BODY_INVALID_JSON: { status: 422, issue: 'invalid', ersCode: 'INVALID_VALUE', ersDisplay: 'Invalid value' },
  BODY_INVALID_FIELD: { status: 422, issue: 'value', ersCode: 'INVALID_VALUE', ersDisplay: 'Invalid value' },
  BODY_MISSING_FIELD: { status: 422, issue: 'required', ersCode: 'MISSING_VALUE', ersDisplay: 'Missing value' },
  // policy
  ENDPOINT_NOT_APP_RESTRICTED: { status: 403, issue: 'forbidden', ersCode: 'FORBIDDEN', ersDisplay: 'Forbidden' },
  ENDPOINT_NOT_ALLOWED_FOR_ASID: { status: 403, issue: 'forbidden', ersCode: 'FORBIDDEN', ersDisplay: 'Forbidden' },
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
  BAD_PATH: { status: 400, issue: 'invalid', ersCode: 'INVALID_VALUE', ersDisplay: 'Invalid value' },
  BAD_PATH_PARAMETER: { status: 400, issue: 'value', ersCode: 'INVALID_VALUE', ersDisplay: 'Invalid value' },
  MISSING_HEADER: { status: 422, issue: 'required', ersCode: 'MISSING_PARAMETER', ersDisplay: 'Missing parameter' },
  BAD_HEADER: { status: 400, issue: 'value', ersCode: 'INVALID_VALUE', ersDisplay: 'Invalid value' },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    issue: 'not-supported',
    ersCode: 'INVALID_VALUE',
    ersDisplay: 'Invalid value',
  },
  BODY_TOO_LARGE: { status: 413, issue: 'too-costly', ersCode: 'FILE_SIZE_ERROR', ersDisplay: 'File size error' },
  // APIM side
  TOKEN_REJECTED_BY_APIM: {
    status: 502,
    issue: 'security',
    ersCode: 'SERVICE_UNAVAILABLE',
    ersDisplay: 'Service unavailable',
  },
  TOKEN_ENDPOINT_UNAVAILABLE: {
    status: 503,
    issue: 'transient',
    ersCode: 'SERVICE_UNAVAILABLE',
    ersDisplay: 'Service unavailable',
  },
  ACCESS_TOKEN_REFUSED: {
    status: 502,
    issue: 'security',
    ersCode: 'SERVICE_UNAVAILABLE',
    ersDisplay: 'Service unavailable',
  },
  UPSTREAM_UNREACHABLE: {
    status: 502,
    issue: 'transient',
    ersCode: 'SERVICE_UNAVAILABLE',
    ersDisplay: 'Service unavailable',
  },
  UPSTREAM_TIMEOUT: {
    status: 504,
    issue: 'timeout',
    ersCode: 'SERVICE_UNAVAILABLE',
    ersDisplay: 'Service unavailable',
  },
  UPSTREAM_BAD_RESPONSE: {
    status: 502,
    issue: 'exception',
    ersCode: 'SERVICE_UNAVAILABLE',
    ersDisplay: 'Service unavailable',
  },
  UPSTREAM_EMPTY_ERROR: {
    status: 502,
    issue: 'exception',
    ersCode: 'SERVICE_UNAVAILABLE',
    ersDisplay: 'Service unavailable',
  },
  UPSTREAM_RATE_LIMITED: {
    status: 429,
    issue: 'throttled',
    ersCode: 'TOO_MANY_REQUESTS',
    ersDisplay: 'Too many requests',
  },
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

  constructor(
    readonly reason: ReasonCode,
    readonly diagnostics: string,
    options: { status?: number; headers?: Record<string, string> } = {},
  ) {
    super(`${reason}: ${diagnostics}`);
    this.name = 'LegacyError';
    this.status = options.status ?? REASONS[reason].status;
    this.headers = options.headers ?? {};
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
