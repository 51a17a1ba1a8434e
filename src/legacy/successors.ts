/**
 * The successor table: legacy operations APIM has retired, what APIM offers in their place today, and NHS's dates.
 * Sources (NHS England, e-RS API "updates and releases" migration guides):
 *
 *  - "Migrating to the FHIR R4 Retrieve Attachment endpoint": A006 (`GET /STU3/Binary/{id}`) deprecated in
 *    February 2025 and retired in February 2026, replaced by A042 (`GET /R4/Binary/{id}`: a 307 to a short-lived
 *    object-store URL with no body; 422 PENDING / THREATS_FOUND / VALIDATION_FAILED in the R4 error system; files up
 *    to 100 MB, where A006 stopped at 5 MB).
 *  - "Migrating from the send for triage endpoints to the book/defer endpoint": A021 (create referral and send for
 *    triage) and A032 (change shortlist and send for triage) deprecated in March 2024 and withdrawn in March 2025;
 *    use A011 (create referral) or A031 (change shortlist) with the triage service shortlisted, then A016 (book or
 *    defer appointment) to send the referral for triage.
 *
 * The e-RS API specification still lists the three as `deprecated: true`, with "please use A042 / A011 / A031
 * instead". How each is answered is set per environment in the rules (`apim.successors`, src/rules/successors.ts);
 * MIGRATION.md § "Operations APIM has retired" is this table for people.
 */
import type { ACode } from './endpoints.js';

export type RetiredCode = 'A006' | 'A021' | 'A032';

export interface Retirement {
  code: RetiredCode;
  name: string;
  /** The legacy call, as clients make it (under /ers-api). */
  legacyCall: string;
  /** NHS's dates, as its guide gives them. */
  deprecated: string;
  retired: string;
  /** The NHS migration guide that retired it. */
  guide: string;
  /** The operations APIM offers instead, in the order ers-bridge calls them when it makes the old call for a client. */
  replacedBy: readonly ACode[];
  /** What a client should call instead, in words (the 410 answer and the docs name these). */
  instead: string;
}

export const RETIREMENTS: Readonly<Record<RetiredCode, Retirement>> = {
  A006: {
    code: 'A006',
    name: 'Retrieve attachment',
    legacyCall: 'GET /ers-api/STU3/v1/Binary/{id}',
    deprecated: 'February 2025',
    retired: 'February 2026',
    guide: 'Migrating to the FHIR R4 Retrieve Attachment endpoint',
    replacedBy: ['A042'],
    instead:
      'A042 (GET /ers-api/R4/v1/Binary/{id}), which answers 307 with a short-lived download link to follow at once',
  },
  A021: {
    code: 'A021',
    name: 'Create referral and send for triage',
    legacyCall: 'POST /ers-api/STU3/v1/ReferralRequest/$ers.createReferralAndSendForTriage',
    deprecated: 'March 2024',
    retired: 'March 2025',
    guide: 'Migrating from the send for triage endpoints to the book/defer endpoint',
    // A005 reads the referral back: A021 answered with the referral as it stood once sent for triage.
    replacedBy: ['A011', 'A016', 'A005'],
    instead:
      'A011 (POST /ers-api/STU3/v1/ReferralRequest/$ers.createReferral) with the triage service shortlisted, then A016 (POST /ers-api/STU3/v1/Appointment, reason TRIAGE) to send it for triage',
  },
  A032: {
    code: 'A032',
    name: 'Change shortlist and send for triage',
    legacyCall: 'POST /ers-api/STU3/v1/ReferralRequest/{ubrn}/$ers.changeShortlistAndSendForTriage',
    deprecated: 'March 2024',
    retired: 'March 2025',
    guide: 'Migrating from the send for triage endpoints to the book/defer endpoint',
    replacedBy: ['A031', 'A016', 'A005'],
    instead:
      'A031 (POST /ers-api/STU3/v1/ReferralRequest/{ubrn}/$ers.changeShortlist) with the triage service shortlisted, then A016 (POST /ers-api/STU3/v1/Appointment, reason TRIAGE) to send it for triage',
  },
};

export function retirementOf(code: string): Retirement | undefined {
  return Object.hasOwn(RETIREMENTS, code) ? RETIREMENTS[code as RetiredCode] : undefined;
}
