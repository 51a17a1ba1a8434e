/**
 * The endpoint table: every e-RS operation ers-bridge knows, by A-code, with its legacy (HSCN) path pattern and
 * its APIM path pattern. Sources: the NHS e-RS API specification (fixtures/ers-api/endpoints.json) and the legacy
 * developer documentation (A-code catalogue). Path parameters carry a strict pattern each: a value that does not
 * match never reaches APIM, which is what keeps traversal and injection out of upstream paths.
 */

export type ACode = `A${string}`;
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'HEAD' | 'DELETE';

export const BUSINESS_FUNCTIONS = [
  'REFERRING_CLINICIAN',
  'REFERRING_CLINICIAN_ADMIN',
  'REFERRING_ADMIN',
  'SERVICE_PROVIDER_CLINICIAN',
  'SERVICE_PROVIDER_CLINICIAN_ADMIN',
  'SERVICE_PROVIDER_ADMIN',
  'COMMISSIONER',
  'INFORMATION_ANALYST',
  'BOOKING_MANAGER',
  'ADDITIONAL_REQUIREMENTS_MANAGER',
] as const;
export type BusinessFunction = (typeof BUSINESS_FUNCTIONS)[number];

const RC: BusinessFunction[] = ['REFERRING_CLINICIAN', 'REFERRING_CLINICIAN_ADMIN'];
const SP: BusinessFunction[] = ['SERVICE_PROVIDER_CLINICIAN', 'SERVICE_PROVIDER_CLINICIAN_ADMIN'];
const RC_SP: BusinessFunction[] = [...RC, ...SP];

/** What kind of body a request carries; decides buffering (JSON is rewritten) versus streaming (files). */
export type RequestBodyKind = 'none' | 'fhir-json' | 'file';
/** What kind of body a success answer carries; decides whether response bodies are rewritten. */
export type ResponseBodyKind = 'fhir-json' | 'file' | 'none';

export interface EndpointDef {
  code: ACode;
  name: string;
  method: HttpMethod;
  /** Pattern under `/ers-api`, e.g. `/STU3/v1/ReferralRequest/{ubrn}`. */
  legacyPath: string;
  /** Other spellings legacy clients used for the same operation (A022's capital C). */
  legacyAliases?: readonly string[];
  /** Pattern under the APIM base URL (`https://<host>/referrals/FHIR`). */
  apimPath: string;
  /** APIM accepts an application-restricted (signed JWT) token for this operation. */
  appRestricted: boolean;
  /** The operation existed on the HSCN API; false for operations added on APIM only. */
  hscn: boolean;
  requestBody: RequestBodyKind;
  responseBody: ResponseBodyKind;
  successStatus: number;
  /** APIM requires `If-Match: W/"n"`. */
  requiresIfMatch: boolean;
  /**
   * Has no side effects: safe to retry, replay and shadow. GET/HEAD, and the POSTs e-RS documents as read-only:
   * A007, A008, A023 and A043 (marked explicitly below).
   */
  readOnly: boolean;
  businessFunctions: readonly BusinessFunction[];
  /** Legacy header → APIM header renames this operation uses, and whether the header is required. */
  headers?: readonly HeaderRename[];
  deprecated?: string;
}

export interface HeaderRename {
  legacy: string;
  apim: string;
  required: boolean;
}

const COMM_RULE_ORG: HeaderRename = {
  legacy: 'X-ERS-XAPI-COMM-RULE-ORG',
  apim: 'NHSD-eRS-Comm-Rule-Org',
  required: true,
};
const FILE_NAME: HeaderRename = { legacy: 'X-ERS-XAPI-META-FILE_NAME', apim: 'NHSD-eRS-File-Name', required: true };
const INTENDED_UBRN: HeaderRename = {
  legacy: 'X-ERS-XAPI-META-INTENDED_UBRN',
  apim: 'NHSD-eRS-Referral-ID',
  required: false,
};

/** Path parameter patterns. Anything else is refused before an upstream path is built. */
export const PARAM_PATTERNS: Record<string, RegExp> = {
  ubrn: /^\d{12}$/,
  version: /^\d{1,10}$/,
  codeSystemType:
    /^(SPECIALTY|APPOINTMENT-CANCELLATION-REASON|CLINIC-TYPE|REFERRAL-CANCELLATION-REASON|APPOINTMENT-NON-ATTENDANCE-REASON|PRIORITY)$/,
  attachmentLogicalID: /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,126}[A-Za-z0-9])?$/,
  appointmentId: /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?$/,
  serviceId: /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?$/,
  binaryId: /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,126}[A-Za-z0-9])?$/,
};

/** Human text for each parameter, used in diagnostics when a value is refused. */
export const PARAM_DESCRIPTIONS: Record<string, string> = {
  ubrn: 'a 12-digit UBRN',
  version: 'a version number (digits)',
  codeSystemType:
    'one of SPECIALTY, APPOINTMENT-CANCELLATION-REASON, CLINIC-TYPE, REFERRAL-CANCELLATION-REASON, APPOINTMENT-NON-ATTENDANCE-REASON, PRIORITY',
  attachmentLogicalID: 'an attachment id such as att-70000-70001 or a UUID',
  appointmentId: 'an appointment id (letters, digits and hyphens)',
  serviceId: 'a service id (letters, digits and hyphens)',
  binaryId: 'an attachment id such as att-70000-70001 or a UUID',
};

type Def = Omit<EndpointDef, 'readOnly' | 'requiresIfMatch' | 'hscn'> &
  Partial<Pick<EndpointDef, 'readOnly' | 'requiresIfMatch' | 'hscn'>>;

function def(d: Def): EndpointDef {
  return {
    hscn: true,
    requiresIfMatch: false,
    readOnly: d.method === 'GET' || d.method === 'HEAD',
    ...d,
  };
}

const STU3 = '/STU3/v1';
const R4 = '/R4/v1';

export const ENDPOINTS: readonly EndpointDef[] = [
  def({
    code: 'A004',
    name: 'Retrieve reference data',
    method: 'GET',
    legacyPath: `${STU3}/CodeSystem/{codeSystemType}`,
    apimPath: '/STU3/CodeSystem/{codeSystemType}',
    appRestricted: true,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: RC_SP,
  }),
  def({
    code: 'A005',
    name: 'Retrieve referral request',
    method: 'GET',
    legacyPath: `${STU3}/ReferralRequest/{ubrn}`,
    apimPath: '/STU3/ReferralRequest/{ubrn}',
    appRestricted: true,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: RC_SP,
  }),
  def({
    code: 'A005',
    name: 'Retrieve referral request (versioned)',
    method: 'GET',
    legacyPath: `${STU3}/ReferralRequest/{ubrn}/_history/{version}`,
    apimPath: '/STU3/ReferralRequest/{ubrn}/_history/{version}',
    appRestricted: true,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: RC_SP,
  }),
  def({
    code: 'A006',
    name: 'Retrieve attachment',
    method: 'GET',
    legacyPath: `${STU3}/Binary/{attachmentLogicalID}`,
    apimPath: '/STU3/Binary/{attachmentLogicalID}',
    appRestricted: true,
    requestBody: 'none',
    responseBody: 'file',
    successStatus: 200,
    businessFunctions: RC_SP,
    deprecated:
      'APIM retired A006 in February 2026 (deprecated February 2025) for A042 (GET /R4/Binary/{id}); ers-bridge serves it through A042 unless apim.successors.A006 is direct (src/legacy/successors.ts)',
  }),
  def({
    code: 'A007',
    name: 'Retrieve clinical information',
    method: 'POST',
    legacyPath: `${STU3}/ReferralRequest/{ubrn}/$ers.generateCRI`,
    apimPath: '/STU3/ReferralRequest/{ubrn}/$ers.generateCRI',
    appRestricted: true,
    requestBody: 'none',
    responseBody: 'file',
    successStatus: 200,
    readOnly: true,
    businessFunctions: RC_SP,
  }),
  def({
    code: 'A008',
    name: 'Retrieve referral worklist',
    method: 'POST',
    legacyPath: `${STU3}/ReferralRequest/$ers.fetchworklist`,
    apimPath: '/STU3/ReferralRequest/$ers.fetchworklist',
    appRestricted: true,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 200,
    readOnly: true,
    businessFunctions: [...RC, 'REFERRING_ADMIN', ...SP, 'SERVICE_PROVIDER_ADMIN'],
  }),
  def({
    code: 'A010',
    name: 'Patient service search',
    method: 'POST',
    legacyPath: `${STU3}/HealthcareService/$ers.searchHealthcareServicesForPatient`,
    apimPath: '/STU3/HealthcareService/$ers.searchHealthcareServicesForPatient',
    appRestricted: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 200,
    // A search, but not among the POSTs e-RS documents as read-only (A007, A008, A023, A043): treated as a write.
    readOnly: false,
    businessFunctions: RC,
  }),
  def({
    code: 'A011',
    name: 'Create referral',
    method: 'POST',
    legacyPath: `${STU3}/ReferralRequest/$ers.createReferral`,
    apimPath: '/STU3/ReferralRequest/$ers.createReferral',
    appRestricted: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 201,
    businessFunctions: RC,
  }),
  def({
    code: 'A012',
    name: 'Maintain referral letter',
    method: 'POST',
    legacyPath: `${STU3}/ReferralRequest/{ubrn}/$ers.maintainReferralLetter`,
    apimPath: '/STU3/ReferralRequest/{ubrn}/$ers.maintainReferralLetter',
    appRestricted: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 200,
    requiresIfMatch: true,
    businessFunctions: RC,
  }),
  def({
    code: 'A013',
    name: 'Accept referral',
    method: 'POST',
    legacyPath: `${STU3}/ReferralRequest/{ubrn}/$ers.acceptReferral`,
    apimPath: '/STU3/ReferralRequest/{ubrn}/$ers.acceptReferral',
    appRestricted: true,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    requiresIfMatch: true,
    businessFunctions: SP,
  }),
  def({
    code: 'A014',
    name: 'Reject referral',
    method: 'POST',
    legacyPath: `${STU3}/ReferralRequest/{ubrn}/$ers.rejectReferral`,
    apimPath: '/STU3/ReferralRequest/{ubrn}/$ers.rejectReferral',
    appRestricted: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 200,
    requiresIfMatch: true,
    businessFunctions: SP,
  }),
  def({
    code: 'A015',
    name: 'Retrieve appointment slots',
    method: 'GET',
    legacyPath: `${STU3}/Slot`,
    apimPath: '/STU3/Slot',
    appRestricted: false,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: RC,
    headers: [COMM_RULE_ORG],
  }),
  def({
    code: 'A016',
    name: 'Book or defer appointment',
    method: 'POST',
    legacyPath: `${STU3}/Appointment`,
    apimPath: '/STU3/Appointment',
    appRestricted: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 201,
    businessFunctions: RC,
  }),
  def({
    code: 'A019',
    name: 'Generate patient letter',
    method: 'POST',
    legacyPath: `${STU3}/ReferralRequest/{ubrn}/$ers.generatePatientLetter`,
    apimPath: '/STU3/ReferralRequest/{ubrn}/$ers.generatePatientLetter',
    appRestricted: false,
    requestBody: 'none',
    responseBody: 'file',
    successStatus: 200,
    businessFunctions: RC,
  }),
  def({
    code: 'A020',
    name: 'Upload file to document store',
    method: 'POST',
    legacyPath: `${STU3}/Binary`,
    apimPath: '/STU3/Binary',
    appRestricted: false,
    requestBody: 'file',
    responseBody: 'none',
    successStatus: 201,
    businessFunctions: RC_SP,
    headers: [FILE_NAME, INTENDED_UBRN],
  }),
  def({
    code: 'A021',
    name: 'Create referral and send for triage',
    method: 'POST',
    legacyPath: `${STU3}/ReferralRequest/$ers.createReferralAndSendForTriage`,
    apimPath: '/STU3/ReferralRequest/$ers.createReferralAndSendForTriage',
    appRestricted: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 201,
    businessFunctions: RC,
    deprecated:
      'APIM withdrew A021 in March 2025 for A011 then A016; ers-bridge makes it so unless apim.successors.A021 says otherwise (src/legacy/successors.ts)',
  }),
  def({
    code: 'A022',
    name: 'Cancel appointment, action later',
    method: 'POST',
    // The HSCN documentation spelt the operation with a capital C; APIM spells it with a lower-case c.
    legacyPath: `${STU3}/ReferralRequest/{ubrn}/$ers.CancelAppointmentActionLater`,
    legacyAliases: [`${STU3}/ReferralRequest/{ubrn}/$ers.cancelAppointmentActionLater`],
    apimPath: '/STU3/ReferralRequest/{ubrn}/$ers.cancelAppointmentActionLater',
    appRestricted: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 200,
    requiresIfMatch: true,
    businessFunctions: SP,
  }),
  def({
    code: 'A023',
    name: 'Retrieve advice and guidance requests worklist',
    method: 'POST',
    legacyPath: `${STU3}/CommunicationRequest/$ers.fetchworklist`,
    apimPath: '/STU3/CommunicationRequest/$ers.fetchworklist',
    appRestricted: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 200,
    readOnly: true,
    businessFunctions: [...SP, 'SERVICE_PROVIDER_ADMIN'],
  }),
  def({
    code: 'A024',
    name: 'Retrieve advice and guidance request summary',
    method: 'GET',
    legacyPath: `${STU3}/CommunicationRequest/{ubrn}`,
    apimPath: '/STU3/CommunicationRequest/{ubrn}',
    appRestricted: true,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: RC_SP,
  }),
  def({
    code: 'A024',
    name: 'Retrieve advice and guidance request summary (versioned)',
    method: 'GET',
    legacyPath: `${STU3}/CommunicationRequest/{ubrn}/_history/{version}`,
    apimPath: '/STU3/CommunicationRequest/{ubrn}/_history/{version}',
    appRestricted: true,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: RC_SP,
  }),
  def({
    code: 'A025',
    name: 'Retrieve advice and guidance conversation',
    method: 'GET',
    legacyPath: `${STU3}/Communication`,
    apimPath: '/STU3/Communication',
    appRestricted: true,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: RC_SP,
  }),
  def({
    code: 'A026',
    name: 'Send advice and guidance response',
    method: 'POST',
    legacyPath: `${STU3}/CommunicationRequest/{ubrn}/$ers.sendCommunicationToRequester`,
    apimPath: '/STU3/CommunicationRequest/{ubrn}/$ers.sendCommunicationToRequester',
    appRestricted: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 200,
    requiresIfMatch: true,
    businessFunctions: SP,
  }),
  def({
    code: 'A027',
    name: 'Convert advice and guidance request to referral',
    method: 'POST',
    legacyPath: `${STU3}/ReferralRequest/$ers.createFromCommunicationRequestActionLater`,
    apimPath: '/STU3/ReferralRequest/$ers.createFromCommunicationRequestActionLater',
    appRestricted: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 201,
    businessFunctions: SP,
  }),
  def({
    code: 'A028',
    name: 'Record triage outcome',
    method: 'POST',
    legacyPath: `${STU3}/ReferralRequest/{ubrn}/$ers.recordReviewOutcome`,
    apimPath: '/STU3/ReferralRequest/{ubrn}/$ers.recordReviewOutcome',
    appRestricted: true,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 200,
    requiresIfMatch: true,
    businessFunctions: SP,
  }),
  def({
    code: 'A029',
    name: 'Available actions for user',
    method: 'GET',
    legacyPath: `${STU3}/Task`,
    apimPath: '/STU3/Task',
    appRestricted: true,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: RC_SP,
  }),
  def({
    code: 'A031',
    name: 'Change shortlist',
    method: 'POST',
    legacyPath: `${STU3}/ReferralRequest/{ubrn}/$ers.changeShortlist`,
    apimPath: '/STU3/ReferralRequest/{ubrn}/$ers.changeShortlist',
    appRestricted: false,
    hscn: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 200,
    requiresIfMatch: true,
    businessFunctions: RC,
  }),
  def({
    code: 'A032',
    name: 'Change shortlist and send for triage',
    method: 'POST',
    legacyPath: `${STU3}/ReferralRequest/{ubrn}/$ers.changeShortlistAndSendForTriage`,
    apimPath: '/STU3/ReferralRequest/{ubrn}/$ers.changeShortlistAndSendForTriage',
    appRestricted: false,
    hscn: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 200,
    requiresIfMatch: true,
    businessFunctions: RC,
    deprecated:
      'APIM withdrew A032 in March 2025 for A031 then A016; ers-bridge makes it so unless apim.successors.A032 says otherwise (src/legacy/successors.ts)',
  }),
  def({
    code: 'A034',
    name: 'Update appointment (cancel)',
    method: 'PUT',
    legacyPath: `${STU3}/Appointment/{appointmentId}`,
    apimPath: '/STU3/Appointment/{appointmentId}',
    appRestricted: false,
    hscn: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 200,
    requiresIfMatch: true,
    businessFunctions: RC,
  }),
  def({
    code: 'A036',
    name: 'Cancel referral',
    method: 'POST',
    legacyPath: `${STU3}/ReferralRequest/{ubrn}/$ers.cancelReferral`,
    apimPath: '/STU3/ReferralRequest/{ubrn}/$ers.cancelReferral',
    appRestricted: true,
    hscn: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 200,
    requiresIfMatch: true,
    businessFunctions: RC_SP,
  }),
  def({
    code: 'A038',
    name: 'Retrieve appointment',
    method: 'GET',
    legacyPath: `${STU3}/Appointment/{appointmentId}`,
    apimPath: '/STU3/Appointment/{appointmentId}',
    appRestricted: false,
    hscn: false,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: RC_SP,
  }),
  def({
    code: 'A038',
    name: 'Retrieve appointment (versioned)',
    method: 'GET',
    legacyPath: `${STU3}/Appointment/{appointmentId}/_history/{version}`,
    apimPath: '/STU3/Appointment/{appointmentId}/_history/{version}',
    appRestricted: false,
    hscn: false,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: RC_SP,
  }),
  def({
    code: 'A043',
    name: 'Retrieve advice and guidance overview PDF',
    method: 'POST',
    legacyPath: `${STU3}/CommunicationRequest/{ubrn}/$ers.generateCRI`,
    apimPath: '/STU3/CommunicationRequest/{ubrn}/$ers.generateCRI',
    appRestricted: true,
    hscn: false,
    requestBody: 'none',
    responseBody: 'file',
    successStatus: 200,
    readOnly: true,
    businessFunctions: RC_SP,
  }),
  def({
    code: 'A044',
    name: 'Create advice and guidance request',
    method: 'POST',
    legacyPath: `${STU3}/CommunicationRequest/$ers.createAdviceAndGuidance`,
    apimPath: '/STU3/CommunicationRequest/$ers.createAdviceAndGuidance',
    appRestricted: false,
    hscn: false,
    requestBody: 'fhir-json',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: RC,
  }),
  // R4 operations never existed on HSCN. ers-bridge exposes them under /ers-api/R4/v1/ so that a partly upgraded
  // client can reach them with the same legacy session.
  def({
    code: 'A030',
    name: 'Retrieve user business functions',
    method: 'GET',
    legacyPath: `${R4}/PractitionerRole`,
    apimPath: '/R4/PractitionerRole',
    appRestricted: false,
    hscn: false,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: [],
  }),
  def({
    code: 'A033',
    name: 'Retrieve healthcare service',
    method: 'GET',
    legacyPath: `${R4}/HealthcareService/{serviceId}`,
    apimPath: '/R4/HealthcareService/{serviceId}',
    appRestricted: true,
    hscn: false,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: RC,
  }),
  def({
    code: 'A035',
    name: 'Search for healthcare services',
    method: 'GET',
    legacyPath: `${R4}/HealthcareService`,
    apimPath: '/R4/HealthcareService',
    appRestricted: true,
    hscn: false,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: RC,
  }),
  def({
    code: 'A037',
    name: 'Retrieve healthcare service version',
    method: 'HEAD',
    legacyPath: `${R4}/HealthcareService/{serviceId}`,
    apimPath: '/R4/HealthcareService/{serviceId}',
    appRestricted: true,
    hscn: false,
    requestBody: 'none',
    responseBody: 'none',
    successStatus: 200,
    businessFunctions: RC,
  }),
  def({
    code: 'A040',
    name: 'Retrieve on-behalf-of practitioner information',
    method: 'GET',
    legacyPath: `${R4}/Practitioner`,
    apimPath: '/R4/Practitioner',
    appRestricted: false,
    hscn: false,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: ['SERVICE_PROVIDER_CLINICIAN_ADMIN'],
  }),
  def({
    code: 'A041',
    name: 'Search for service requests',
    method: 'GET',
    legacyPath: `${R4}/ServiceRequest`,
    apimPath: '/R4/ServiceRequest',
    appRestricted: false,
    hscn: false,
    requestBody: 'none',
    responseBody: 'fhir-json',
    successStatus: 200,
    businessFunctions: RC_SP,
  }),
  def({
    code: 'A042',
    name: 'Retrieve attachment (R4)',
    method: 'GET',
    legacyPath: `${R4}/Binary/{binaryId}`,
    apimPath: '/R4/Binary/{binaryId}',
    appRestricted: true,
    hscn: false,
    requestBody: 'none',
    responseBody: 'none',
    successStatus: 307,
    businessFunctions: RC_SP,
  }),
];

/**
 * DSTU2 data calls (`/ers-api/v1/<resource>`, A004–A008) were withdrawn in August 2024 with no APIM equivalent.
 * Each entry names the STU3 call that replaces it, for the diagnostics of the refusal.
 */
export const DSTU2_REPLACEMENTS: Record<string, string> = {
  ValueSet: 'A004: GET /ers-api/STU3/v1/CodeSystem/{SPECIALTY|CLINIC-TYPE|...}',
  ReferralRequest:
    'A005: GET /ers-api/STU3/v1/ReferralRequest/{ubrn}, or A008: POST /ers-api/STU3/v1/ReferralRequest/$ers.fetchworklist',
  Binary:
    'A006: GET /ers-api/STU3/v1/Binary/{id}, or A007: POST /ers-api/STU3/v1/ReferralRequest/{ubrn}/$ers.generateCRI',
};

export const ALL_CODES: readonly string[] = [...new Set(ENDPOINTS.map((e) => e.code))];
