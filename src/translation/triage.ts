/**
 * Send-for-triage translation, pure. NHS withdrew A021 (create referral and send for triage) and A032 (change
 * shortlist and send for triage) in March 2025 ("Migrating from the send for triage endpoints to the book/defer
 * endpoint"): a referral is now created with A011, or its shortlist changed with A031, with the triage service
 * shortlisted, and then sent for triage with A016 (book or defer appointment, reason TRIAGE).
 *
 * The translation is faithful because the specification makes the bodies the same: eRS-CreateReferralAndSendForTriage-
 * Parameters is eRS-CreateReferral-Parameters with its shortlist narrowed to exactly one triage service (and
 * intentionToAddReferralLetter NEED_TO_ADD_LATER, firstReminderLetterFollowUpDays 0, both valid for A011), and
 * eRS-ChangeShortlistAndSendForTriage-Request-Parameters is eRS-ChangeShortlist-Parameters likewise. So A011/A031
 * get the client's body with only its profile changed; A016 gets NHS's "Triage deferral" Appointment for the
 * referral and version A011/A031 answered with; and the answer is what A021/A032 answered — the referral once sent
 * for triage (A021), or the Parameters of updatedReferralRequest and createdAppointment (A032) — read back with A005.
 */
import { LegacyError } from '../legacy/errors.js';

const PROFILE = 'https://fhir.nhs.uk/STU3/StructureDefinition';
export const TRIAGE_PROFILES = {
  A021: `${PROFILE}/eRS-CreateReferralAndSendForTriage-Parameters-1`,
  A011: `${PROFILE}/eRS-CreateReferral-Parameters-1`,
  A032: `${PROFILE}/eRS-ChangeShortlistAndSendForTriage-Request-Parameters-1`,
  A031: `${PROFILE}/eRS-ChangeShortlist-Parameters-1`,
  A032Answer: `${PROFILE}/eRS-ChangeShortlistAndSendForTriage-Response-Parameters-1`,
} as const;

export const ERS_SERVICE_SYSTEM = 'http://fhir.nhs.net/Id/ers-service';
export const NHS_NUMBER_SYSTEM = 'http://fhir.nhs.net/Id/nhs-number';

export type TriageCode = 'A021' | 'A032';

/** What the steps need of the client's body, checked before anything is sent. */
export interface TriageRequest {
  /** The body for A011 (A021) or A031 (A032): the client's, with the successor's profile. */
  firstBody: Record<string, unknown>;
  /** The one triage service shortlisted. */
  serviceId: string;
  /** The patient of an A021 body (A032 has none: the referral's patient is used). */
  nhsNumber?: string;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function invalid(code: TriageCode, what: string): LegacyError {
  return new LegacyError(
    'BODY_INVALID_FIELD',
    `${code} sends a referral to one triage service, so ${what}. Nothing was sent to e-RS. (NHS withdrew ${code} in March 2025; ers-bridge makes it as ${code === 'A021' ? 'A011' : 'A031'} then A016, and checks the body first so that it never does half.)`,
  );
}

/**
 * Step (pure): the client's A021/A032 body → the body of A011/A031 and what A016 will need. Refuses, before any
 * call, a body it could not finish: not a Parameters, or a shortlist that is not exactly one e-RS service.
 */
export function triageRequestFor(code: TriageCode, body: unknown): TriageRequest {
  if (!isObject(body) || body.resourceType !== 'Parameters' || !Array.isArray(body.parameter)) {
    throw invalid(code, 'its body must be a FHIR Parameters resource with a parameter list');
  }
  const parameters = body.parameter as unknown[];
  const shortlist = parameters.find((p) => isObject(p) && p.name === 'shortlist') as Json | undefined;
  const list = shortlist?.resource;
  const entries = isObject(list) && Array.isArray(list.entry) ? (list.entry as unknown[]) : undefined;
  if (entries?.length !== 1) {
    throw invalid(code, 'its shortlist parameter must be a List with exactly one entry, the triage service');
  }
  const identifier = (entries![0] as { item?: { identifier?: { system?: unknown; value?: unknown } } })?.item
    ?.identifier;
  if (identifier?.system !== ERS_SERVICE_SYSTEM || typeof identifier.value !== 'string' || identifier.value === '') {
    throw invalid(code, `its shortlist entry must identify the service by ${ERS_SERVICE_SYSTEM}`);
  }
  if (!/^[A-Za-z0-9-]{1,64}$/.test(identifier.value)) {
    throw invalid(code, 'its shortlisted service id must be letters, digits and hyphens');
  }
  const patient = parameters.find((p) => isObject(p) && p.name === 'patient') as
    | { valueIdentifier?: { system?: unknown; value?: unknown } }
    | undefined;
  const nhs = patient?.valueIdentifier;
  const nhsNumber = nhs?.system === NHS_NUMBER_SYSTEM && typeof nhs.value === 'string' ? nhs.value : undefined;
  const successor = code === 'A021' ? TRIAGE_PROFILES.A011 : TRIAGE_PROFILES.A031;
  const meta = isObject(body.meta) ? body.meta : {};
  const firstBody = { ...body, meta: { ...meta, profile: [successor] } };
  return { firstBody, serviceId: identifier.value, ...(nhsNumber !== undefined ? { nhsNumber } : {}) };
}

/** What A011/A031 answered that A016 needs: the referral's UBRN and version, and its patient. */
export interface ReferralFacts {
  ubrn: string;
  version: string;
  nhsNumber?: string;
}

/** Step (pure): the referral of A011's or A031's answer; undefined when it names no UBRN or version. */
export function referralFacts(body: unknown, etag: string | undefined): ReferralFacts | undefined {
  if (!isObject(body) || body.resourceType !== 'ReferralRequest') return undefined;
  const ubrn = typeof body.id === 'string' && /^\d{12}$/.test(body.id) ? body.id : undefined;
  const metaVersion = isObject(body.meta) && typeof body.meta.versionId === 'string' ? body.meta.versionId : undefined;
  const etagVersion = etag ? /^W\/"(\d{1,10})"$/.exec(etag.trim())?.[1] : undefined;
  const version = metaVersion && /^\d{1,10}$/.test(metaVersion) ? metaVersion : etagVersion;
  if (ubrn === undefined || version === undefined) return undefined;
  const subject = (body.subject as { identifier?: { system?: unknown; value?: unknown } } | undefined)?.identifier;
  const nhsNumber =
    subject?.system === NHS_NUMBER_SYSTEM && typeof subject.value === 'string' ? subject.value : undefined;
  return { ubrn, version, ...(nhsNumber !== undefined ? { nhsNumber } : {}) };
}

/**
 * Step (pure): A016's body that sends the referral for triage — NHS's "Triage deferral" example
 * (bookOrDeferAppointment/requests/TriageDeferral.json) for this referral, version, triage service and patient.
 */
export function triageDeferral(referral: ReferralFacts, serviceId: string, nhsNumber: string | undefined): Json {
  const participant: Json[] = [
    { actor: { identifier: { system: ERS_SERVICE_SYSTEM, value: serviceId } }, status: 'accepted' },
  ];
  if (nhsNumber !== undefined) {
    participant.push({ actor: { identifier: { system: NHS_NUMBER_SYSTEM, value: nhsNumber } }, status: 'accepted' });
  }
  return {
    id: 'appointment',
    meta: {
      profile: [
        `${PROFILE}/eRS-Appointment-1`,
        'https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Appointment-1',
      ],
    },
    language: 'en',
    resourceType: 'Appointment',
    status: 'proposed',
    reason: [{ coding: [{ system: 'https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewReason-1', code: 'TRIAGE' }] }],
    description: 'e-Referral Appointment',
    incomingReferral: [{ reference: `ReferralRequest/${referral.ubrn}/_history/${referral.version}` }],
    participant,
  };
}

/** Step (pure): A032's answer — the referral as sent for triage, and the appointment A016 created. */
export function a032Answer(referral: unknown, appointment: unknown): Json {
  return {
    meta: { profile: [TRIAGE_PROFILES.A032Answer] },
    resourceType: 'Parameters',
    parameter: [
      { name: 'updatedReferralRequest', resource: referral },
      { name: 'createdAppointment', resource: appointment },
    ],
  };
}
