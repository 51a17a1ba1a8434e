/**
 * Response values the stand-in produces, and the builders for the error shapes APIM and e-RS use.
 */
import { randomInt } from 'node:crypto';
import type { FhirVersion } from './catalogue.js';

/** A complete answer: the stand-in's handlers return these and one place sends them. */
export interface StandInReply {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer;
}

export const FHIR_JSON = 'application/fhir+json';

export const STU3_OUTCOME_PROFILE = 'https://fhir.nhs.uk/STU3/StructureDefinition/eRS-OperationOutcome-1';
export const STU3_ERROR_SYSTEM = 'https://fhir.nhs.uk/STU3/CodeSystem/eRS-APIErrorCode-1';
export const R4_OUTCOME_PROFILE = 'https://www.hl7.org/fhir/R4/operationoutcome.html';
export const R4_ERROR_SYSTEM = 'https://fhir.nhs.uk/CodeSystem/NHSD-API-ErrorOrWarningCode';
export const R4_HTTP_ERROR_SYSTEM = 'https://fhir.nhs.uk/CodeSystem/http-error-codes';

export interface OutcomeIssue {
  /** FHIR `issue.code`, e.g. `forbidden`, `login`, `required`, `not-found`. */
  code: string;
  /** `issue.details.coding[0].code`, e.g. `NO_ACCESS`, `MISSING_HEADER`. */
  errorCode: string;
  diagnostics?: string;
  /** Coding system; defaults to the version's APIM error system. */
  system?: string;
}

/**
 * An OperationOutcome in the shape of APIM's `AssignMessage.OperationOutcomeErrorResponse` template: STU3 (and every
 * non-`/FHIR/R4/` path) uses the eRS-OperationOutcome-1 profile and the eRS-APIErrorCode-1 system, R4 the HL7 R4
 * profile and the NHSD-API-ErrorOrWarningCode system.
 */
export function operationOutcome(version: FhirVersion, issue: OutcomeIssue): Record<string, unknown> {
  const stu3 = version === 'STU3';
  const entry: Record<string, unknown> = {
    severity: 'error',
    code: issue.code,
    details: {
      coding: [{ system: issue.system ?? (stu3 ? STU3_ERROR_SYSTEM : R4_ERROR_SYSTEM), code: issue.errorCode }],
    },
  };
  if (issue.diagnostics !== undefined) entry.diagnostics = issue.diagnostics;
  return {
    resourceType: 'OperationOutcome',
    meta: { lastUpdated: new Date().toISOString(), profile: [stu3 ? STU3_OUTCOME_PROFILE : R4_OUTCOME_PROFILE] },
    issue: [entry],
  };
}

export function fhirJson(status: number, body: string | object, headers: Record<string, string> = {}): StandInReply {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return { status, headers: { 'content-type': FHIR_JSON, ...headers }, body: Buffer.from(text, 'utf8') };
}

export function outcomeReply(
  status: number,
  version: FhirVersion,
  issue: OutcomeIssue,
  headers: Record<string, string> = {},
): StandInReply {
  return fhirJson(status, operationOutcome(version, issue), headers);
}

export function emptyReply(status: number, headers: Record<string, string> = {}): StandInReply {
  return { status, headers, body: Buffer.alloc(0) };
}

export function textReply(status: number, text: string, headers: Record<string, string> = {}): StandInReply {
  return { status, headers: { 'content-type': 'text/plain', ...headers }, body: Buffer.from(text, 'utf8') };
}

/** An Apigee-style message id, as APIM puts in `message_id` of its OAuth errors (`rrt-…`). */
export function messageId(): string {
  const digits = Array.from({ length: 19 }, () => randomInt(10)).join('');
  return `rrt-${digits}-c-standin-${randomInt(10000, 99999)}-${randomInt(1000000, 9999999)}-1`;
}

/** An identity-service error: `{"error","error_description","message_id"}` with its HTTP status. */
export class OAuthError {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
  ) {}

  toReply(): StandInReply {
    const body = { error: this.error, error_description: this.description, message_id: messageId() };
    return {
      status: this.status,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(body), 'utf8'),
    };
  }
}
