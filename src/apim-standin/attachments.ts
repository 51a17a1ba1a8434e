/**
 * The stand-in's attachments, for A006 (STU3, retired by APIM in February 2026) and A042 (R4, its successor). Any
 * well-formed id is NHS's example PDF, as NHS's sandbox serves; a few test ids answer the other states e-RS has —
 * still being scanned, quarantined, failed validation, unknown — and one is a 6 MB file, over A006's 5 MB limit.
 * A006 answers them as the specification's A006 responses (STU3 422 codes, 422 FILE_SIZE_ERROR over 5 MB), A042 as
 * A042's (R4 422 codes in the ers-error-codes system; any size: A042 allows up to 100 MB).
 */
import { ATTACHMENT_DIAGNOSTICS } from './attachment-texts.js';
import type { FixtureView } from './fixtures.js';
import { R4_HTTP_ERROR_SYSTEM } from './responses.js';

/** Test attachment ids (the legacy `att-<n>-<n>` form the specification allows). */
export const TEST_ATTACHMENTS = {
  /** 422 PENDING: the file is still being scanned. */
  pending: 'att-90000-1',
  /** 422 THREATS_FOUND: quarantined. */
  threatsFound: 'att-90000-2',
  /** 422 VALIDATION_FAILED. */
  validationFailed: 'att-90000-3',
  /** 404: no such attachment. */
  unknown: 'att-90000-4',
  /** A 6 MB (6 291 456-byte) DICOM file: A006 refuses it (FILE_SIZE_ERROR), A042 serves it. */
  large: 'att-90000-6',
} as const;

export const LARGE_ATTACHMENT_BYTES = 6 * 1024 * 1024;
/** A006's limit (e-RS specification: 5 MB, 5242880 bytes). */
export const A006_LIMIT_BYTES = 5_242_880;
export const ERS_ERROR_CODES_SYSTEM = 'https://fhir.nhs.uk/CodeSystem/ers-error-codes';

export type AttachmentState =
  | { kind: 'file'; bytes: Buffer; contentType: string; filename: string }
  | { kind: 'unavailable'; code: 'PENDING' | 'THREATS_FOUND' | 'VALIDATION_FAILED' }
  | { kind: 'unknown' };

let large: Buffer | undefined;

/** The 6 MB file: a DICOM preamble and a repeating pattern, made once. */
function largeFile(): Buffer {
  if (large === undefined) {
    large = Buffer.alloc(LARGE_ATTACHMENT_BYTES);
    for (let i = 0; i < large.length; i++) large[i] = (i * 31 + 7) & 0xff;
    Buffer.from('DICM').copy(large, 128);
  }
  return large;
}

export function attachmentState(id: string, fixtures: FixtureView): AttachmentState {
  switch (id) {
    case TEST_ATTACHMENTS.pending:
      return { kind: 'unavailable', code: 'PENDING' };
    case TEST_ATTACHMENTS.threatsFound:
      return { kind: 'unavailable', code: 'THREATS_FOUND' };
    case TEST_ATTACHMENTS.validationFailed:
      return { kind: 'unavailable', code: 'VALIDATION_FAILED' };
    case TEST_ATTACHMENTS.unknown:
      return { kind: 'unknown' };
    case TEST_ATTACHMENTS.large:
      return { kind: 'file', bytes: largeFile(), contentType: 'application/dicom', filename: 'large_scan.dcm' };
    default:
      return {
        kind: 'file',
        bytes: fixtures.bytes('stu3/retrieveAttachment/responses/example_attachment.pdf'),
        contentType: 'application/pdf',
        filename: 'example_attachment.pdf',
      };
  }
}

/** The issue of an unavailable attachment, STU3 (A006) or R4 (A042), with the specification's description. */
export function unavailableIssue(code: 'PENDING' | 'THREATS_FOUND' | 'VALIDATION_FAILED', version: 'STU3' | 'R4') {
  return {
    code: 'invalid',
    errorCode: code,
    diagnostics: ATTACHMENT_DIAGNOSTICS[code],
    ...(version === 'R4' ? { system: ERS_ERROR_CODES_SYSTEM } : {}),
  };
}

export function notFoundIssue(id: string, version: 'STU3' | 'R4') {
  return version === 'STU3'
    ? { code: 'not-found', errorCode: 'NOT_FOUND', diagnostics: `No attachment ${id}` }
    : {
        code: 'not-found',
        errorCode: 'REC_NOT_FOUND',
        system: R4_HTTP_ERROR_SYSTEM,
        diagnostics: `No attachment ${id}`,
      };
}
