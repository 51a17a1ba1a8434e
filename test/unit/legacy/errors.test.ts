/**
 * Every reason ers-bridge raises, checked against what a legacy client sees: the HTTP status documented in
 * MIGRATION.md's troubleshooting table (parsed here, so code and docs cannot drift), and the legacy eRS-APIErrorCode-1
 * code and display text with the FHIR issue type, written out below (a legacy client may already branch on them).
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BRIDGE_ERROR_SYSTEM,
  ERS_ERROR_SYSTEM,
  ERS_OUTCOME_PROFILE,
  FHIR_JSON,
  LegacyError,
  operationOutcome,
  REASONS,
  type ReasonCode,
} from '../../../src/legacy/errors.js';

/** reason: [FHIR issue type, legacy code, legacy display]. */
const LEGACY: Record<ReasonCode, [string, string, string]> = {
  SESSION_KEY_MISSING: ['login', 'NO_ACCESS', 'No access'],
  SESSION_UNKNOWN: ['login', 'NO_ACCESS', 'No access'],
  SESSION_ASID_MISMATCH: ['login', 'NO_ACCESS', 'No access'],
  SESSION_ROLE_NOT_SELECTED: ['login', 'NO_ACCESS', 'No access'],
  SESSION_KEY_PATH_MISMATCH: ['login', 'NO_ACCESS', 'No access'],
  ASID_MISSING: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  ASID_UNKNOWN: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  ASID_NOT_APPLICATION_RESTRICTED: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  PERMISSION_NOT_OFFERED: ['value', 'INVALID_VALUE', 'Invalid value'],
  BODY_INVALID_JSON: ['invalid', 'INVALID_VALUE', 'Invalid value'],
  BODY_INVALID_FIELD: ['value', 'INVALID_VALUE', 'Invalid value'],
  BODY_MISSING_FIELD: ['required', 'MISSING_VALUE', 'Missing value'],
  SESSION_RATE_LIMITED: ['throttled', 'TOO_MANY_REQUESTS', 'Too many requests'],
  SESSION_TOO_LARGE: ['too-costly', 'INVALID_VALUE', 'Invalid value'],
  SESSION_STORE_FULL: ['transient', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  ID_TOKEN_INVALID: ['invalid', 'INVALID_VALUE', 'Invalid value'],
  ID_TOKEN_EXPIRED: ['expired', 'NO_ACCESS', 'No access'],
  ID_TOKEN_WRONG_ISSUER: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  ID_TOKEN_WRONG_AUDIENCE: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  ASSURANCE_TOO_LOW: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  SIGN_IN_CODE_UNKNOWN: ['login', 'NO_ACCESS', 'No access'],
  SIGN_IN_CODE_WRONG_ASID: ['login', 'NO_ACCESS', 'No access'],
  USER_TOKEN_NOT_RECOGNISED: ['invalid', 'INVALID_VALUE', 'Invalid value'],
  TEST_USER_REFUSED: ['login', 'NO_ACCESS', 'No access'],
  TOKEN_EXCHANGE_REFUSED: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  NO_ERS_ROLES: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  SESSION_SIGN_IN_AGAIN: ['login', 'NO_ACCESS', 'No access'],
  CIS2_UNAVAILABLE: ['transient', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  ON_BEHALF_OF_INVALID: ['value', 'INVALID_VALUE', 'Invalid value'],
  BUSINESS_FUNCTION_NOT_ALLOWED: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  ENDPOINT_NOT_APP_RESTRICTED: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  ENDPOINT_NOT_ALLOWED_FOR_ASID: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  CALLER_CERTIFICATE_REQUIRED: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  CALLER_CERTIFICATE_REFUSED: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  A001_SECRET_REFUSED: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  MISDIRECTED_REQUEST: ['invalid', 'INVALID_VALUE', 'Misdirected request'],
  UNKNOWN_ENDPOINT: ['not-supported', 'REFERENCE_NOT_FOUND', 'Reference not found'],
  METHOD_NOT_ALLOWED: ['not-supported', 'INVALID_REQUEST_TYPE', 'Invalid request type'],
  DSTU2_WITHDRAWN: ['not-supported', 'INVALID_REQUEST_TYPE', 'Gone'],
  BAD_PATH: ['invalid', 'INVALID_VALUE', 'Invalid value'],
  BAD_PATH_PARAMETER: ['value', 'INVALID_VALUE', 'Invalid value'],
  MISSING_HEADER: ['required', 'MISSING_PARAMETER', 'Missing parameter'],
  BAD_HEADER: ['value', 'INVALID_VALUE', 'Invalid value'],
  UNSUPPORTED_MEDIA_TYPE: ['not-supported', 'INVALID_VALUE', 'Invalid value'],
  BODY_TOO_LARGE: ['too-costly', 'FILE_SIZE_ERROR', 'File size error'],
  TOKEN_REJECTED_BY_APIM: ['security', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  TOKEN_ENDPOINT_UNAVAILABLE: ['transient', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  ACCESS_TOKEN_REFUSED: ['security', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  UPSTREAM_UNREACHABLE: ['transient', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  UPSTREAM_TIMEOUT: ['timeout', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  UPSTREAM_BAD_RESPONSE: ['exception', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  UPSTREAM_EMPTY_ERROR: ['exception', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  RATE_LIMITED_LOCALLY: ['throttled', 'TOO_MANY_REQUESTS', 'Too many requests'],
  HEADERS_TOO_LARGE: ['too-costly', 'INVALID_VALUE', 'Invalid value'],
  MALFORMED_REQUEST: ['invalid', 'INVALID_VALUE', 'Invalid value'],
  UPSTREAM_RATE_LIMITED: ['throttled', 'TOO_MANY_REQUESTS', 'Too many requests'],
  STORE_UNAVAILABLE: ['transient', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  LEGACY_SESSION_FAILED: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  APPLICATION_BUSY: ['transient', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  ATTACHMENT_PENDING: ['invalid', 'PENDING', 'Pending'],
  ATTACHMENT_THREATS_FOUND: ['invalid', 'THREATS_FOUND', 'Threats found'],
  ATTACHMENT_VALIDATION_FAILED: ['invalid', 'VALIDATION_FAILED', 'Validation failed'],
  ATTACHMENT_TOO_LARGE: ['too-costly', 'FILE_SIZE_ERROR', 'File size error'],
  ATTACHMENT_NOT_FOUND: ['not-found', 'REFERENCE_NOT_FOUND', 'Reference not found'],
  ATTACHMENT_REFUSED: ['forbidden', 'FORBIDDEN', 'Forbidden'],
  SUCCESSOR_REFUSED: ['exception', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  OBJECT_STORE_LINK_REFUSED: ['security', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  OBJECT_STORE_FAILED: ['transient', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  OBJECT_STORE_TIMEOUT: ['timeout', 'SERVICE_UNAVAILABLE', 'Service unavailable'],
  SUCCESSOR_INCOMPLETE: ['processing', 'INVALID_REQUEST_STATE', 'Invalid request state'],
  OPERATION_RETIRED: ['not-supported', 'INVALID_REQUEST_TYPE', 'Gone'],
  INTERNAL_ERROR: ['exception', 'SERVICE_UNAVAILABLE', 'Internal error'],
};

/** MIGRATION.md's "| reason | status | cause | fix |" rows: reason → status as written. */
function documentedStatuses(): Map<string, string> {
  const text = readFileSync(new URL('../../../MIGRATION.md', import.meta.url), 'utf8');
  const lines = text.split('\n');
  const head = lines.findIndex((l) => l.startsWith('| reason | status | cause | fix |'));
  expect(head, 'MIGRATION.md has its troubleshooting table').toBeGreaterThanOrEqual(0);
  const rows = new Map<string, string>();
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith('|')) break;
    const m = /^\| `([A-Z0-9_]+)` \| ([^|]+) \|/.exec(line);
    if (m) rows.set(m[1]!, m[2]!.trim());
  }
  return rows;
}

describe('legacy errors: the documented table', () => {
  let documented: Map<string, string>;
  beforeAll(() => {
    documented = documentedStatuses();
  });

  it('documents exactly the reasons ers-bridge raises', () => {
    expect([...documented.keys()].sort()).toEqual(Object.keys(REASONS).sort());
    expect(Object.keys(LEGACY).sort()).toEqual(Object.keys(REASONS).sort());
  });

  it.each(Object.keys(REASONS) as ReasonCode[])('%s: status, legacy code and display as documented', (reason) => {
    const [issue, code, display] = LEGACY[reason];
    const err = new LegacyError(reason, `what went wrong with ${reason}`);
    const status = documented.get(reason);
    // UPSTREAM_EMPTY_ERROR answers with APIM's own status (passed in by the caller); its default is a 502
    if (status === "APIM's status") expect(err.status).toBe(502);
    else expect(String(err.status)).toBe(status);
    expect(err.status).toBe(REASONS[reason].status);
    expect(err.toOutcome()).toEqual({
      resourceType: 'OperationOutcome',
      meta: { profile: [ERS_OUTCOME_PROFILE] },
      issue: [
        {
          severity: 'error',
          code: issue,
          details: {
            coding: [
              { system: ERS_ERROR_SYSTEM, code, display },
              { system: BRIDGE_ERROR_SYSTEM, code: reason },
            ],
          },
          diagnostics: `what went wrong with ${reason}`,
        },
      ],
    });
    expect(operationOutcome(reason, 'd')).toEqual({
      ...err.toOutcome(),
      issue: [{ ...err.toOutcome().issue[0], diagnostics: 'd' }],
    });
  });
});

describe('LegacyError', () => {
  it('defaults: the reason status, no headers, logged as its reason; message and name', () => {
    const err = new LegacyError('SESSION_UNKNOWN', 'no such session');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('LegacyError');
    expect(err.message).toBe('SESSION_UNKNOWN: no such session');
    expect(err.reason).toBe('SESSION_UNKNOWN');
    expect(err.diagnostics).toBe('no such session');
    expect(err.status).toBe(403);
    expect(err.headers).toEqual({});
    expect(err.logAs).toBe('SESSION_UNKNOWN');
  });

  it('options override the status, headers and the reason logged', () => {
    const err = new LegacyError('SESSION_UNKNOWN', 'no such session', {
      status: 401,
      headers: { 'retry-after': '3' },
      logAs: 'SESSION_ASID_MISMATCH',
    });
    expect(err.status).toBe(401);
    expect(err.headers).toEqual({ 'retry-after': '3' });
    expect(err.logAs).toBe('SESSION_ASID_MISMATCH');
    expect(err.toOutcome().issue[0]!.details.coding[1]!.code).toBe('SESSION_UNKNOWN');
  });

  it('names the FHIR media type and code systems', () => {
    expect(FHIR_JSON).toBe('application/fhir+json');
    expect(ERS_OUTCOME_PROFILE).toBe('https://fhir.nhs.uk/STU3/StructureDefinition/eRS-OperationOutcome-1');
    expect(ERS_ERROR_SYSTEM).toBe('https://fhir.nhs.uk/STU3/CodeSystem/eRS-APIErrorCode-1');
    expect(BRIDGE_ERROR_SYSTEM).toBe('urn:ers-bridge:error');
  });
});
