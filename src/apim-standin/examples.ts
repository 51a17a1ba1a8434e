/**
 * The e-RS "backend" of the stand-in: every operation answers from the NHS example payloads in
 * `fixtures/ers-api/examples`, selected the way NHS's own sandbox selects them — by id (UBRN, appointment id, code
 * system type, service id) for reads, by query values for searches, and by deep equality of the parsed POST/PUT body
 * against the operation's `requests/*.json` for writes. `_baseUrl_` is replaced with the stand-in's base URL in what
 * is served and in the request examples before comparing.
 *
 * Coverage (A-code → examples):
 *   A004 stu3/getCodeSystem/responses (by CodeSystem id)         A005 stu3/retrieveReferralRequest/responses (by id)
 *   A006 stu3/retrieveAttachment (PDF; test ids: attachments.ts) A007 stu3/retrieveClinicalInformation (PDF)
 *   A008 stu3/retrieveWorklist                                   A010 stu3/patientServiceSearch
 *   A011 stu3/createReferral                                     A012 stu3/maintainReferralLetter
 *   A013 stu3/acceptReferral (by UBRN)                           A014 stu3/rejectReferral
 *   A015 stu3/retrieveAppointmentSlots (by query)                A016 stu3/bookOrDeferAppointment
 *   A019 stu3/generatePatientLetter (PDF)                        A021 stu3/createReferralAndSendForTriage
 *   A022 stu3/cancelAppointmentActionLater                       A023 stu3/retrieveAdviceAndGuidanceWorklist
 *   A024 stu3/retrieveAdviceAndGuidanceRequest/responses (by id) A025 stu3/retrieveAdviceAndGuidanceConversation
 *   A026 stu3/sendAdviceAndGuidanceResponse                      A027 stu3/convertAdviceAndGuidanceToReferral
 *   A028 stu3/recordTriageOutcome                                A029 stu3/availableActionsForUserList (by query)
 *   A031 stu3/changeShortlist                                    A032 stu3/changeShortlistAndSendForTriage
 *   A034 stu3/updateAppointment                                  A036 stu3/cancelReferral
 *   A038 stu3/retrieveAppointment/responses (by id)              A043 stu3/retrieveAdviceAndGuidanceOverviewPdf
 *   A044 stu3/createAdviceAndGuidance
 *   A033/A037 r4/getService/responses (by id)                    A035 r4/searchForServices (by _id)
 *   A040 r4/retrieveOboUsers                                     A041 r4/searchServiceRequest (by UBRN)
 *   A042 307 to the stand-in's object store (object-store.ts: its own origin, one signed link per download, working
 *        once and expiring), which serves the example PDF; the test ids of attachments.ts answer e-RS's other states
 * A011, A016 and A031 also answer the pairs NHS's A021/A032 examples need once made as A011/A031 then A016
 * (successor-examples.ts).
 * Answered generically (no NHS example exists): A020 upload → 201, no body, `Location: Binary/<new uuid>`.
 * Built from the stand-in's users, in the shape of r4/retrieveBusinessFunctions/responses/PractitionerRoleBundle.json:
 *   A030 one PractitionerRole per organisation of the token's user (an empty searchset for an unknown user).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { ATTACHMENT_DIAGNOSTICS } from './attachment-texts.js';
import { A006_LIMIT_BYTES, attachmentState, notFoundIssue, unavailableIssue } from './attachments.js';
import type { CatalogueOperation } from './catalogue.js';
import { exampleJsonFiles, exampleText } from './fixtures.js';
import { jsonEqual } from './json.js';
import {
  emptyReply,
  fhirJson,
  type OutcomeIssue,
  outcomeReply,
  R4_HTTP_ERROR_SYSTEM,
  type StandInReply,
} from './responses.js';
import { baseUrl, type StandInState } from './state.js';
import { derivedExamples } from './successor-examples.js';
import type { IssuedToken } from './tokens.js';

export interface OperationContext {
  op: CatalogueOperation;
  method: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The parsed body, for operations that take FHIR JSON. */
  json: unknown;
  token: IssuedToken;
  state: StandInState;
}

export type Responder = (ctx: OperationContext) => StandInReply;

/** Attachment ids are a UUID or the legacy `att-70000-70001` form (e-RS specification). */
const ATTACHMENT_ID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|att-\d+(?:-\d+)*)$/i;
/** The largest file e-RS accepts (5 MB). */
export const MAX_ATTACHMENT_BYTES = 5_242_880;

// ─── helpers ────────────────────────────────────────────────────────────────────────────────────────────────────

function outcome(ctx: OperationContext, status: number, issue: OutcomeIssue): StandInReply {
  return outcomeReply(status, ctx.op.fhirVersion, issue);
}

function label(op: CatalogueOperation): string {
  return `${op.code} (${op.name})`;
}

function listedExamples(dir: string): string {
  return exampleJsonFiles(dir).join(', ');
}

function noExample(ctx: OperationContext, status: number, detail: string): StandInReply {
  return outcome(ctx, status, {
    code: 'invalid',
    errorCode: 'NO_MATCHING_EXAMPLE',
    diagnostics: `APIM stand-in: no NHS example for ${label(ctx.op)} matches this request: ${detail}`,
  });
}

function successHeaderListed(op: CatalogueOperation, name: string): boolean {
  return op.success.headers.some((h) => h.toLowerCase() === name.toLowerCase());
}

function versionIdOf(resource: unknown): string | undefined {
  const meta = (resource as { meta?: { versionId?: unknown } } | null)?.meta;
  return typeof meta?.versionId === 'string' ? meta.versionId : undefined;
}

function idOf(resource: unknown): { id?: string; resourceType?: string } {
  const r = resource as { id?: unknown; resourceType?: unknown } | null;
  return {
    id: typeof r?.id === 'string' ? r.id : undefined,
    resourceType: typeof r?.resourceType === 'string' ? r.resourceType : undefined,
  };
}

/** Serves a JSON example (placeholder substituted), with `ETag: W/"<meta.versionId>"` where the catalogue lists ETag. */
function serveExample(ctx: OperationContext, rel: string, status = ctx.op.success.status): StandInReply {
  const view = ctx.state.fixtures;
  const headers: Record<string, string> = {};
  const version = versionIdOf(view.json(rel));
  if (status < 300 && version !== undefined && successHeaderListed(ctx.op, 'ETag')) headers.etag = `W/"${version}"`;
  if (status < 300 && successHeaderListed(ctx.op, 'Cache-Control')) headers['cache-control'] = 'no-cache';
  return fhirJson(status, view.text(rel), headers);
}

function serveFile(rel: string, filename: string, contentType: string, ctx: OperationContext): StandInReply {
  return fileReply(ctx.state.fixtures.bytes(rel), filename, contentType);
}

function fileReply(bytes: Buffer, filename: string, contentType: string): StandInReply {
  return {
    status: 200,
    headers: {
      'content-type': contentType,
      'content-disposition': `attachment; filename=${filename}`,
      'content-length': String(bytes.length),
    },
    body: bytes,
  };
}

const idIndexCache = new Map<string, Map<string, string>>();

/** `id` → example path for every JSON example in `dir` (ids never carry the placeholder, so this is per process). */
function indexById(dir: string): Map<string, string> {
  let index = idIndexCache.get(dir);
  if (index === undefined) {
    index = new Map();
    for (const name of exampleJsonFiles(dir)) {
      const rel = `${dir}/${name}`;
      const { id } = idOf(JSON.parse(exampleText(rel)));
      if (id !== undefined) index.set(id, rel);
    }
    idIndexCache.set(dir, index);
  }
  return index;
}

/**
 * A read by id, optionally versioned: only the latest `meta.versionId` can be read through `_history`
 * (HISTORY_NOT_SUPPORTED otherwise, HTTP 404, as the e-RS specification says).
 */
function readById(ctx: OperationContext, dir: string, id: string, unknown: OutcomeIssue): StandInReply {
  const rel = indexById(dir).get(id);
  if (rel === undefined) return outcome(ctx, 404, unknown);
  const requested = ctx.params.version;
  const latest = versionIdOf(ctx.state.fixtures.json(rel));
  if (requested !== undefined && requested !== latest) {
    return outcome(ctx, 404, {
      code: 'not-found',
      errorCode: 'HISTORY_NOT_SUPPORTED',
      diagnostics: `Only the latest version (${latest}) of ${id} can be retrieved; version ${requested} was requested`,
    });
  }
  return serveExample(ctx, rel);
}

/** The examples of one write operation: request file name → response file name (same name unless mapped). */
export interface ExampleSet {
  dir: string;
  responses?: Record<string, string>;
}

function responseFor(set: ExampleSet, requestName: string): string {
  const base = requestName.replace(/\.json$/, '');
  return `${set.dir}/responses/${set.responses?.[base] ?? base}.json`;
}

/** Finds the example request deep-equal to the body, and serves its response. */
function answerByBody(ctx: OperationContext, set: ExampleSet): StandInReply {
  const view = ctx.state.fixtures;
  const requestDir = `${set.dir}/requests`;
  const requestName = exampleJsonFiles(requestDir).find((name) =>
    jsonEqual(ctx.json, view.json(`${requestDir}/${name}`)),
  );
  if (requestName === undefined) {
    return noExample(
      ctx,
      422,
      `the body equals none of the example requests in fixtures/ers-api/examples/${requestDir} ` +
        `(${listedExamples(requestDir)}), compared after replacing _baseUrl_ with ${baseUrl(ctx.state)}`,
    );
  }
  const rel = responseFor(set, requestName);
  const response = view.json(rel);
  const { id, resourceType } = idOf(response);
  const pathId = ctx.params.ubrn ?? ctx.params.id;
  if (pathId !== undefined && id !== undefined && resourceType === ctx.op.success.fhirResourceType && pathId !== id) {
    return noExample(
      ctx,
      422,
      `the body matches ${requestDir}/${requestName}, which is an example for ${resourceType} ${id}, not ${pathId}`,
    );
  }
  // Some examples are the documented error answer to their request (e.g. A034 CancellationInvalidReason).
  return serveExample(ctx, rel, resourceType === 'OperationOutcome' ? 422 : ctx.op.success.status);
}

function byBody(code: string): Responder {
  const set = BODY_EXAMPLES[code];
  if (set === undefined) throw new Error(`apim-standin: no body examples for ${code}`);
  return (ctx) => {
    const derived = derivedExamples(code, ctx.state).find((pair) => jsonEqual(ctx.json, pair.request));
    return derived ? serveExample(ctx, derived.response) : answerByBody(ctx, set);
  };
}

function firstQuery(ctx: OperationContext, name: string): string | undefined {
  return ctx.query.get(name) ?? undefined;
}

function noSuchRequest(ubrn: string): OutcomeIssue {
  return { code: 'not-found', errorCode: 'NO_SUCH_REQUEST', diagnostics: `No request with UBRN ${ubrn} exists` };
}

/** The PDF operations name their file `<ubrn>_<kind>_<timestamp>.pdf`; the example's UBRN is swapped for the path's. */
function pdfForKnownRequest(indexDir: string, pdfRel: string): Responder {
  return (ctx) => {
    const ubrn = ctx.params.ubrn!;
    if (!indexById(indexDir).has(ubrn)) return outcome(ctx, 404, noSuchRequest(ubrn));
    const filename = pdfRel
      .split('/')
      .pop()!
      .replace(/^\d{12}/, ubrn);
    return serveFile(pdfRel, filename, 'application/pdf', ctx);
  };
}

const REFERRALS = 'stu3/retrieveReferralRequest/responses';
const ADVICE_REQUESTS = 'stu3/retrieveAdviceAndGuidanceRequest/responses';
const APPOINTMENTS = 'stu3/retrieveAppointment/responses';
const SERVICES = 'r4/getService/responses';

/** A008 in application-restricted mode: only these provider worklists are available (e-RS specification). */
const APP_RESTRICTED_WORKLISTS = new Set(['REFERRALS_FOR_REVIEW', 'APPOINTMENT_SLOT_ISSUES']);

function worklistType(json: unknown): string | undefined {
  const params = (json as { parameter?: unknown } | null)?.parameter;
  if (!Array.isArray(params)) return undefined;
  const listType = params.find((p) => (p as { name?: unknown })?.name === 'listType') as
    | { valueCodeableConcept?: { coding?: Array<{ code?: unknown }> } }
    | undefined;
  const code = listType?.valueCodeableConcept?.coding?.[0]?.code;
  return typeof code === 'string' ? code : undefined;
}

// A015: query → example, as the NHS sandbox's scenarios.
const SLOT_SCENARIOS: Array<{ query: Record<string, string>; file: string; status: number }> = [
  { query: { service: '12000', count: '20', page: '1' }, file: 'Minimum', status: 200 },
  { query: { service: '10000', count: '20', page: '1' }, file: 'NoSlots', status: 200 },
  { query: { service: '11000', count: '5', page: '1' }, file: 'Page1PageSize5', status: 200 },
  { query: { service: '11000', count: '5', page: '2' }, file: 'Page2PageSize5', status: 200 },
  { query: { service: '11000', count: '5', page: '5' }, file: 'ErrorPage5', status: 400 },
  { query: { service: '13000', count: '5', page: '1' }, file: 'Page1With2Schedules', status: 200 },
  {
    query: { service: '14000', count: '5', page: '1', practitioner: '921600556514' },
    file: 'SlotClinicianSearch',
    status: 200,
  },
];

// A025: based-on → conversation example.
const CONVERSATIONS: Record<string, string> = {
  'CommunicationRequest/000000070000/_history/1': 'SingleMessageFromReferrer',
  'CommunicationRequest/000000070000/_history/2': 'OneMessageEachWay',
  'CommunicationRequest/000000070001/_history/6': 'AttachmentPresentInEachDirection',
  'CommunicationRequest/000000070002/_history/1': 'MultiWayConversation',
  'CommunicationRequest/000000070003/_history/7': 'AttachmentUploadedFromRCS',
  'CommunicationRequest/000000070004/_history/3': 'UnavailableAttachments',
};

// A029: focus → available-actions example.
const AVAILABLE_ACTIONS: Record<string, string> = {
  'ReferralRequest/000000070000/_history/6': 'Empty',
  'ReferralRequest/000000070001/_history/6': 'WithRecordReviewOutcome',
  'ReferralRequest/000000070002/_history/6': 'WithCreateAppointment',
  'ReferralRequest/000000070003/_history/6': 'WithChangeShortlist',
  'ReferralRequest/000000070004/_history/6': 'WithChangeShortlistAndSendForTriage',
  'ReferralRequest/000000070005/_history/6': 'WithCancelReferral',
  'ReferralRequest/000000070006/_history/6': 'WithCancelDBAppointment',
};

// A035: _id list → search example.
const SERVICE_SEARCHES: Record<string, string> = {
  '1,2': 'searchServiceWithMinmumalAttributes',
  '3,4': 'searchServiceWithMaxAndMinAttributes',
  '5,6': 'searchServiceWithEmptyResponse',
};

// A041: UBRN → service-request search example (anything else: the empty bundle).
const SERVICE_REQUEST_SEARCHES: Record<string, string> = {
  '000000070000': 'ResponseExampleReferral',
  '000000070001': 'ResponseExampleAdvice',
  '000000070002': 'ResponseExampleReferralAndAdvice',
};

/**
 * Writes answered by deep equality of the body against `<dir>/requests/*.json`; the response is
 * `<dir>/responses/<same name>.json` unless mapped (the mappings are those of NHS's sandbox).
 */
export const BODY_EXAMPLES: Readonly<Record<string, ExampleSet>> = {
  A008: {
    dir: 'stu3/retrieveWorklist',
    responses: {
      MinimalReferralsForReview: 'ReferralsForReview',
      MinimalAppointmentSlotIssues: 'AppointmentSlotIssues',
      FilteringBySpecialty: 'FilteredBySpecialty',
      FilteringByService: 'FilteredByService',
      FilteringByClinician: 'FilteredByClinician',
      MinimalRejectedTriageResponse: 'RejectedTriageResponse',
      MinimalAssessmentReturnedCancelledDna: 'AssessmentReturnedCancelledDna',
      MinimalAwaitingBooking: 'AwaitingBooking',
      MinimalLettersOutstanding: 'LettersOutstanding',
    },
  },
  A010: {
    dir: 'stu3/patientServiceSearch',
    responses: {
      RcMinimal: 'FetchServiceListWithMultipleServices',
      RcSearchByClinicalTerm: 'EmptyResponse',
      RcSearchByNamedClinician: 'FetchServiceListWithSingleService',
      RcSearchForAdviceService: 'AdviceServiceSearch',
      RcSearchWithCommissioningRuleOrganisation: 'FetchServiceListWithMultipleServices',
      RcaWithIWT: 'FetchServiceListWithSingleService',
    },
  },
  A011: {
    dir: 'stu3/createReferral',
    responses: {
      MinimalRequest: 'ReferralRequest',
      MinimalRequestWithReferringClinician: 'ReferralRequest',
      RequestTwentyServices: 'ReferralRequestTwentyServices',
      RequestMixedShortlist: 'ReferralRequestMixedShortlist',
    },
  },
  A012: {
    dir: 'stu3/maintainReferralLetter',
    responses: {
      SingleDocumentReference: 'ReferralRequestWithSingleDocumentReference',
      MultipleDocumentReferences: 'ReferralRequestWithMultipleDocumentReferences',
      UpdateClinicalInfo: 'ReferralRequestWithUpdatedDocumentReferences',
    },
  },
  A014: {
    dir: 'stu3/rejectReferral',
    responses: { BasicExampleDbs: 'ExampleResponseDbs', BasicExampleIbs: 'ExampleResponseIbs' },
  },
  A016: { dir: 'stu3/bookOrDeferAppointment' },
  A021: {
    dir: 'stu3/createReferralAndSendForTriage',
    responses: { Parameters: 'ReferralRequest', ParametersWithNamedClinician: 'ReferralRequestWithNamedClinician' },
  },
  A022: { dir: 'stu3/cancelAppointmentActionLater' },
  A023: {
    dir: 'stu3/retrieveAdviceAndGuidanceWorklist',
    responses: { MinimalAdviceAndGuidanceRequests: 'AdviceAndGuidanceRequests' },
  },
  A026: { dir: 'stu3/sendAdviceAndGuidanceResponse' },
  A027: { dir: 'stu3/convertAdviceAndGuidanceToReferral' },
  A028: { dir: 'stu3/recordTriageOutcome' },
  A031: { dir: 'stu3/changeShortlist' },
  A032: { dir: 'stu3/changeShortlistAndSendForTriage' },
  A034: { dir: 'stu3/updateAppointment' },
  A036: {
    dir: 'stu3/cancelReferral',
    responses: {
      IntendPrivateWithoutComment: 'CancelledReferralIntendPrivateWithoutComment',
      IntendPrivateWithComment: 'CancelledReferralResolvedDeferralIntendPrivateWithComment',
      PatientRequestCancellationOther: 'CancelledReferralPatientOther',
      RaisedInError: 'CancelledReferralRaisedInError',
      ReferrerCancellation: 'CancelledBookedReferralReferrerCancellation',
      NoLongerRequired: 'CancelledReferralWithCancelledBookingNoLongerRequired',
      bookedOutsideCabWithoutComment: 'CancelledReferralBookedOutsideCabWithoutComment',
      outpatientService: 'CancelledReferralOutpatientService',
    },
  },
  A044: { dir: 'stu3/createAdviceAndGuidance' },
};

// ─── responders, by A-code ──────────────────────────────────────────────────────────────────────────────────────

export const RESPONDERS: Readonly<Record<string, Responder>> = {
  A004: (ctx) =>
    readById(ctx, 'stu3/getCodeSystem/responses', ctx.params.codeSystemType!, {
      code: 'not-found',
      errorCode: 'NOT_FOUND',
      diagnostics: `No CodeSystem of type ${ctx.params.codeSystemType}; known: ${[...indexById('stu3/getCodeSystem/responses').keys()].join(', ')}`,
    }),
  A005: (ctx) => readById(ctx, REFERRALS, ctx.params.ubrn!, noSuchRequest(ctx.params.ubrn!)),
  A006: (ctx) => {
    const id = ctx.params.attachmentLogicalID!;
    const state = ATTACHMENT_ID.test(id) ? attachmentState(id, ctx.state.fixtures) : ({ kind: 'unknown' } as const);
    if (state.kind === 'unknown') return outcome(ctx, 404, notFoundIssue(id, 'STU3'));
    if (state.kind === 'unavailable') return outcome(ctx, 422, unavailableIssue(state.code, 'STU3'));
    if (state.bytes.length > A006_LIMIT_BYTES) {
      return outcome(ctx, 422, {
        code: 'invalid',
        errorCode: 'FILE_SIZE_ERROR',
        diagnostics: ATTACHMENT_DIAGNOSTICS.FILE_SIZE_ERROR,
      });
    }
    return fileReply(state.bytes, state.filename, state.contentType);
  },
  A007: pdfForKnownRequest(
    REFERRALS,
    'stu3/retrieveClinicalInformation/responses/000000070000_Clinical_Information_Summary_20210706114852.pdf',
  ),
  A008: (ctx) => {
    if (ctx.token.accessMode === 'application-restricted') {
      const listType = worklistType(ctx.json);
      if (listType !== undefined && !APP_RESTRICTED_WORKLISTS.has(listType)) {
        return outcome(ctx, 403, {
          code: 'forbidden',
          errorCode: 'NO_ACCESS',
          diagnostics: `Worklist ${listType} is not available with application-restricted access; only ${[...APP_RESTRICTED_WORKLISTS].join(', ')}`,
        });
      }
    }
    return answerByBody(ctx, BODY_EXAMPLES.A008!);
  },
  A010: byBody('A010'),
  A011: byBody('A011'),
  A012: byBody('A012'),
  A013: (ctx) => {
    const rel = 'stu3/acceptReferral/responses/ExampleResponse.json';
    const { id } = idOf(ctx.state.fixtures.json(rel));
    if (ctx.params.ubrn !== id) return noExample(ctx, 422, `the accept-referral example is for UBRN ${id}`);
    return serveExample(ctx, rel);
  },
  A014: byBody('A014'),
  A015: (ctx) => {
    const q = {
      service: firstQuery(ctx, 'schedule.actor:HealthcareService'),
      practitioner: firstQuery(ctx, 'schedule.actor:Practitioner'),
      count: firstQuery(ctx, '_count'),
      page: firstQuery(ctx, 'page'),
    };
    if (firstQuery(ctx, 'appointmentType') === 'ROUTINE' && firstQuery(ctx, 'status') === 'free') {
      const hit = SLOT_SCENARIOS.find(
        (s) =>
          s.query.service === q.service &&
          s.query.count === q.count &&
          s.query.page === q.page &&
          (s.query.practitioner === undefined || s.query.practitioner === q.practitioner),
      );
      if (hit) return serveExample(ctx, `stu3/retrieveAppointmentSlots/responses/${hit.file}.json`, hit.status);
    }
    return noExample(
      ctx,
      400,
      `slot searches have examples for services 10000-14000 (appointmentType=ROUTINE, status=free)`,
    );
  },
  A016: byBody('A016'),
  A019: pdfForKnownRequest(
    REFERRALS,
    'stu3/generatePatientLetter/responses/000000070000_Appointment_Confirmation_Summary_20210603121353.pdf',
  ),
  A020: (ctx) => {
    if (ctx.body.length === 0 || ctx.body.length > MAX_ATTACHMENT_BYTES) {
      return outcome(ctx, 422, {
        code: 'invalid',
        errorCode: 'FILE_SIZE_ERROR',
        diagnostics: `The file is either empty or larger than ${MAX_ATTACHMENT_BYTES} bytes (${ctx.body.length} bytes received)`,
      });
    }
    return emptyReply(201, { location: `Binary/${randomUUID()}` });
  },
  A021: byBody('A021'),
  A022: byBody('A022'),
  A023: byBody('A023'),
  A024: (ctx) => readById(ctx, ADVICE_REQUESTS, ctx.params.ubrn!, noSuchRequest(ctx.params.ubrn!)),
  A025: (ctx) => {
    const basedOn = firstQuery(ctx, 'based-on') ?? '';
    const file = CONVERSATIONS[basedOn];
    if (file === undefined) {
      return noExample(ctx, 404, `based-on=${basedOn}; examples exist for ${Object.keys(CONVERSATIONS).join(', ')}`);
    }
    return serveExample(ctx, `stu3/retrieveAdviceAndGuidanceConversation/${file}.json`);
  },
  A026: byBody('A026'),
  A027: byBody('A027'),
  A028: byBody('A028'),
  A029: (ctx) => {
    const focus = firstQuery(ctx, 'focus') ?? '';
    if (firstQuery(ctx, 'intent') !== 'proposal' || firstQuery(ctx, 'status') !== 'ready') {
      return outcome(ctx, 400, {
        code: 'value',
        errorCode: 'INVALID_PARAMETER',
        diagnostics: 'intent must be proposal and status must be ready',
      });
    }
    const file = AVAILABLE_ACTIONS[focus];
    if (file === undefined) {
      return noExample(ctx, 400, `focus=${focus}; examples exist for ${Object.keys(AVAILABLE_ACTIONS).join(', ')}`);
    }
    return serveExample(ctx, `stu3/availableActionsForUserList/${file}.json`);
  },
  A031: byBody('A031'),
  A032: byBody('A032'),
  A034: byBody('A034'),
  A036: byBody('A036'),
  A038: (ctx) =>
    readById(ctx, APPOINTMENTS, ctx.params.id!, {
      code: 'not-found',
      errorCode: 'NOT_FOUND',
      diagnostics: `No appointment ${ctx.params.id}`,
    }),
  A043: pdfForKnownRequest(
    ADVICE_REQUESTS,
    'stu3/retrieveAdviceAndGuidanceOverviewPdf/responses/000049146177_Advice_And_Guidance_20220610143044.pdf',
  ),
  A044: byBody('A044'),

  // ── R4 ──
  A030: (ctx) => fhirJson(200, practitionerRoleBundle(ctx)),
  A033: (ctx) => readById(ctx, SERVICES, ctx.params.id!, r4NotFound(`No healthcare service ${ctx.params.id}`)),
  A035: (ctx) => {
    const ids = ctx.query
      .getAll('_id')
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter((v) => v !== '')
      .join(',');
    const file = SERVICE_SEARCHES[ids];
    if (file === undefined) {
      return noExample(ctx, 404, `_id=${ids}; examples exist for _id=${Object.keys(SERVICE_SEARCHES).join(' | ')}`);
    }
    return serveExample(ctx, `r4/searchForServices/responses/${file}.json`);
  },
  A037: (ctx) => {
    const rel = indexById(SERVICES).get(ctx.params.id!);
    if (rel === undefined) return emptyReply(404);
    const version = versionIdOf(ctx.state.fixtures.json(rel));
    return emptyReply(200, { etag: `W/"${version}"`, 'cache-control': 'no-cache' });
  },
  A040: (ctx) => {
    if (firstQuery(ctx, '_query') !== 'onBehalfOf') {
      return outcome(ctx, 400, {
        code: 'value',
        errorCode: 'REC_BAD_REQUEST',
        system: R4_HTTP_ERROR_SYSTEM,
        diagnostics: '_query must be onBehalfOf',
      });
    }
    return serveExample(ctx, 'r4/retrieveOboUsers/responses/PractitionerBundle.json');
  },
  A041: (ctx) => {
    const identifier = firstQuery(ctx, 'identifier') ?? '';
    const ubrn = identifier.includes('|') ? identifier.slice(identifier.indexOf('|') + 1) : identifier;
    const file = SERVICE_REQUEST_SEARCHES[ubrn] ?? 'ResponseExampleEmpty';
    return serveExample(ctx, `r4/searchServiceRequest/responses/${file}.json`);
  },
  A042: (ctx) => {
    const id = ctx.params.id!;
    if (!ATTACHMENT_ID.test(id)) {
      return outcome(ctx, 400, {
        code: 'value',
        errorCode: 'REC_BAD_REQUEST',
        system: R4_HTTP_ERROR_SYSTEM,
        diagnostics: `Invalid attachment id ${id}`,
      });
    }
    const state = attachmentState(id, ctx.state.fixtures);
    if (state.kind === 'unknown') return outcome(ctx, 404, notFoundIssue(id, 'R4'));
    if (state.kind === 'unavailable') return outcome(ctx, 422, unavailableIssue(state.code, 'R4'));
    // A new short-lived link per call, as e-RS ("generate a new redirect each time the file is downloaded").
    const { bytes, contentType, filename } = state;
    return emptyReply(307, { location: ctx.state.objectStore.issue({ bytes, contentType, filename }) });
  },
};

export const ODS_ORGANIZATION_CODE_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const SDS_USER_ID_SYSTEM = 'https://fhir.nhs.uk/Id/sds-user-id';
export const BUSINESS_FUNCTION_SYSTEM = 'https://fhir.nhs.uk/CodeSystem/eRS-BusinessFunction-1';

/**
 * A030: the token user's roles as a searchset Bundle of PractitionerRole, structured exactly like the NHS example
 * (`PractitionerRole-<ODS>-<user id>` ids, the user id as an SDS user id, one `code` entry per business function),
 * plus `organization.display` with the organisation name.
 */
function practitionerRoleBundle(ctx: OperationContext): Record<string, unknown> {
  const base = baseUrl(ctx.state);
  const now = new Date(ctx.state.now()).toISOString();
  const sub = ctx.token.user?.sub;
  const roles = (sub === undefined ? undefined : ctx.state.users.get(sub))?.roles ?? [];
  const bundle: Record<string, unknown> = {
    id: randomUUID(),
    meta: { lastUpdated: now },
    resourceType: 'Bundle',
    type: 'searchset',
    total: roles.length,
    timestamp: now,
    link: [{ relation: 'self', url: `${base}/R4/PractitionerRole` }],
  };
  if (roles.length > 0) {
    bundle.entry = roles.map((role) => {
      const id = `PractitionerRole-${role.odsCode}-${sub}`;
      return {
        fullUrl: `${base}/R4/PractitionerRole/${id}`,
        resource: {
          id,
          meta: { lastUpdated: now },
          resourceType: 'PractitionerRole',
          practitioner: { identifier: { system: SDS_USER_ID_SYSTEM, value: sub } },
          organization: {
            identifier: { system: ODS_ORGANIZATION_CODE_SYSTEM, value: role.odsCode },
            display: role.orgName,
          },
          code: role.businessFunctions.map((code) => ({ coding: [{ system: BUSINESS_FUNCTION_SYSTEM, code }] })),
        },
        search: { mode: 'match' },
      };
    });
  }
  return bundle;
}

function r4NotFound(diagnostics: string): OutcomeIssue {
  return { code: 'not-found', errorCode: 'REC_NOT_FOUND', system: R4_HTTP_ERROR_SYSTEM, diagnostics };
}
