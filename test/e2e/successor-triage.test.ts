/**
 * A021 and A032 against an APIM stand-in that has withdrawn them (as NHS did in March 2025), end to end on loopback
 * with a CIS2 user (both need a referring clinician): ers-bridge makes them as A011/A031, then A016 (send for
 * triage), then A005 (the referral read back) — each step checked as it reaches the stand-in, whose A011/A031/A016
 * answer only the exact bodies derived from NHS's examples — and a failure between steps gives the client one
 * legacy answer saying what was done and what is left.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { RecordedRequest } from '../../src/apim-standin/index.js';
import {
  expectLegacyOutcome,
  FIXTURES,
  type LegacyResponse,
  legacyCall,
  legacyFixture,
  legacyRequestFixture,
} from '../helpers/harness.js';
import { CLINICIAN, startUserHarness, USER_ASID, type UserHarness } from '../helpers/user-harness.js';

const SESSION_PATH = '/ers-api/v1/ProfessionalSession';
const A021 = '/ers-api/STU3/v1/ReferralRequest/$ers.createReferralAndSendForTriage';
const A032 = '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.changeShortlistAndSendForTriage';
const BASE = '/referrals/FHIR/STU3';
const A021_EXAMPLE = 'stu3/createReferralAndSendForTriage/requests/Parameters.json';
const A032_EXAMPLE = 'stu3/changeShortlistAndSendForTriage/requests/MinimalRequest.json';

let h: UserHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** A referring clinician's session (R68), role selected. */
async function referrerSession(harness: UserHarness): Promise<string> {
  const token = await harness.cis2.mintIdToken({
    sub: CLINICIAN,
    given_name: 'Alex',
    family_name: 'Example',
    id_assurance_level: 3,
    authentication_assurance_level: 3,
  });
  const a001 = await legacyCall(
    harness,
    'POST',
    SESSION_PATH,
    { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
    JSON.stringify({ typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession', token }),
  );
  if (a001.status !== 201) throw new Error(`A001: ${a001.status} ${a001.body.toString()}`);
  const key = a001.json().id as string;
  const a002 = await legacyCall(
    harness,
    'PUT',
    `${SESSION_PATH}/${key}`,
    { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/json' },
    JSON.stringify({ token: 't', permission: { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'R68' } }),
  );
  if (a002.status !== 200) throw new Error(`A002: ${a002.status} ${a002.body.toString()}`);
  return key;
}

async function send(harness: UserHarness, key: string, path: string, body: Buffer, extra: Record<string, string> = {}) {
  return legacyCall(
    harness,
    'POST',
    path,
    { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/fhir+json', ...extra },
    body,
  );
}

/** The e-RS calls the stand-in received since `from`, as `METHOD path`. */
function stepsSince(harness: UserHarness, from: number): RecordedRequest[] {
  return harness.standIn.received.slice(from).filter((r) => r.url.startsWith('/referrals/'));
}
const line = (r: RecordedRequest) => `${r.method} ${r.url}`;
const json = (r: RecordedRequest) => JSON.parse(r.body.toString('utf8'));

/** An NHS example as the stand-in holds it: `_baseUrl_` as its base URL (what APIM receives). */
function apimExample(harness: UserHarness, rel: string): any {
  return JSON.parse(readFileSync(new URL(rel, FIXTURES), 'utf8').replaceAll('_baseUrl_', harness.standIn.baseUrl));
}

function expectOneAnswer(res: LegacyResponse, ...texts: Array<string | RegExp>): string {
  const issue = expectLegacyOutcome(res, 422, 'SUCCESSOR_INCOMPLETE');
  for (const t of texts) expect(issue.diagnostics).toMatch(t);
  return issue.diagnostics as string;
}

describe('A021 through A011 then A016 (APIM has withdrawn A021)', () => {
  it('each step as NHS says, and the answer A021 gave: 201 and the referral as sent for triage', async () => {
    h = await startUserHarness({ standIn: { retire: ['A021', 'A032'] } });
    const key = await referrerSession(h);
    const from = h.standIn.received.length;
    const res = await send(h, key, A021, legacyRequestFixture(A021_EXAMPLE, h.legacyBase), {
      'X-Correlation-ID': 'triage-1',
    });
    expect(res.status, res.body.toString()).toBe(201);
    expect(res.json()).toEqual(legacyFixture('stu3/retrieveReferralRequest/responses/Unbooked.json', h.legacyBase));
    expect(res.headers.etag).toBe('W/"5"');
    expect(res.headers['content-type']).toBe('application/fhir+json');
    expect(res.headers['x_ers_transaction_id']).toMatch(/-1$/);
    expect(res.headers['x-correlation-id']).toBe('triage-1');

    const steps = stepsSince(h, from);
    expect(steps.map(line)).toEqual([
      `POST ${BASE}/ReferralRequest/$ers.createReferral`,
      `POST ${BASE}/Appointment`,
      `GET ${BASE}/ReferralRequest/000000070000`,
    ]);
    // Step 1, A011: the client's A021 body with A011's profile, nothing else changed.
    const a021 = apimExample(h, A021_EXAMPLE);
    expect(json(steps[0]!)).toEqual({
      ...a021,
      meta: { profile: ['https://fhir.nhs.uk/STU3/StructureDefinition/eRS-CreateReferral-Parameters-1'] },
    });
    // Step 2, A016: NHS's triage deferral for the referral and version A011 answered (3), the triage service 11004.
    const deferral = apimExample(h, 'stu3/bookOrDeferAppointment/requests/TriageDeferral.json');
    deferral.incomingReferral = [{ reference: 'ReferralRequest/000000070000/_history/3' }];
    deferral.participant[0].actor.identifier.value = '11004';
    expect(json(steps[1]!)).toEqual(deferral);
    for (const step of steps) {
      expect(step.headers.authorization).toMatch(/^Bearer /);
      expect(step.headers['nhsd-ers-business-function']).toBe('REFERRING_CLINICIAN');
      expect(step.headers['nhsd-end-user-organisation-ods']).toBe('R68');
      expect(step.headers['x-correlation-id']).toBe('triage-1');
      expect(step.headers['if-match']).toBeUndefined();
    }
  });

  it('a failure between steps: ONE legacy answer naming the UBRN created and how to finish', async () => {
    h = await startUserHarness({
      standIn: {
        retire: ['A021'],
        failWith: { A016: { status: 423, code: 'REFERRAL_LOCKED', diagnostics: 'The referral is locked' } },
      },
    });
    const key = await referrerSession(h);
    const from = h.standIn.received.length;
    const res = await send(h, key, A021, legacyRequestFixture(A021_EXAMPLE, h.legacyBase));
    expectOneAnswer(
      res,
      'The referral was created as UBRN 000000070000 but could not be sent for triage',
      'A016 (Book or defer appointment) answered HTTP 423 REFERRAL_LOCKED: The referral is locked',
      'Do not repeat A021',
      'ReferralRequest/000000070000/_history/3',
      'triage service 11004',
    );
    // A011 and A016 were made; nothing after the failure.
    expect(stepsSince(h, from).map(line)).toEqual([
      `POST ${BASE}/ReferralRequest/$ers.createReferral`,
      `POST ${BASE}/Appointment`,
    ]);
  });

  it('a failure reading the referral back: sent for triage, nothing to repeat', async () => {
    h = await startUserHarness({
      standIn: { retire: ['A021'], failWith: { A005: { status: 503, code: 'SERVICE_UNAVAILABLE' } } },
    });
    const key = await referrerSession(h);
    const res = await send(h, key, A021, legacyRequestFixture(A021_EXAMPLE, h.legacyBase));
    expectOneAnswer(res, 'was created and sent for triage', 'Nothing needs repeating', 'A005');
  });

  it("A011 refused: nothing was done, and A011's refusal is the client's answer", async () => {
    h = await startUserHarness({
      standIn: {
        retire: ['A021'],
        failWith: { A011: { status: 422, code: 'SHORTLISTED_SERVICE_NOT_IN_RESULTS', diagnostics: 'not in results' } },
      },
    });
    const key = await referrerSession(h);
    const from = h.standIn.received.length;
    const res = await send(h, key, A021, legacyRequestFixture(A021_EXAMPLE, h.legacyBase));
    expect(res.status).toBe(422);
    expect(res.json().issue[0].details.coding[0].code).toBe('SHORTLISTED_SERVICE_NOT_IN_RESULTS');
    expect(stepsSince(h, from).map(line)).toEqual([`POST ${BASE}/ReferralRequest/$ers.createReferral`]);
  });

  it('a body ers-bridge could not finish (two services shortlisted) is refused before anything is sent', async () => {
    h = await startUserHarness({ standIn: { retire: ['A021'] } });
    const key = await referrerSession(h);
    const body = JSON.parse(legacyRequestFixture(A021_EXAMPLE, h.legacyBase).toString('utf8'));
    const list = body.parameter.find((p: { name: string }) => p.name === 'shortlist').resource;
    list.entry.push({ item: { identifier: { system: 'http://fhir.nhs.net/Id/ers-service', value: '11005' } } });
    const from = h.standIn.received.length;
    const issue = expectLegacyOutcome(
      await send(h, key, A021, Buffer.from(JSON.stringify(body))),
      422,
      'BODY_INVALID_FIELD',
    );
    expect(issue.diagnostics).toContain('exactly one');
    expect(stepsSince(h, from)).toEqual([]);
  });

  it('apim.successors.A021: gone answers the documented 410, naming the calls to make and the guide', async () => {
    h = await startUserHarness({ standIn: { retire: ['A021'] }, apim: { successors: { A021: 'gone' } } });
    const key = await referrerSession(h);
    const from = h.standIn.received.length;
    const issue = expectLegacyOutcome(
      await send(h, key, A021, legacyRequestFixture(A021_EXAMPLE, h.legacyBase)),
      410,
      'OPERATION_RETIRED',
    );
    expect(issue.diagnostics).toContain('March 2025');
    expect(issue.diagnostics).toContain('Migrating from the send for triage endpoints to the book/defer endpoint');
    expect(issue.diagnostics).toMatch(/A011.*A016/);
    expect(stepsSince(h, from)).toEqual([]);
  });
});

describe('A032 through A031 then A016 (APIM has withdrawn A032)', () => {
  it("each step, the client's If-Match on A031, and A032's answer: the referral and the appointment", async () => {
    h = await startUserHarness({ standIn: { retire: ['A032'] } });
    const key = await referrerSession(h);
    const from = h.standIn.received.length;
    const res = await send(h, key, A032, legacyRequestFixture(A032_EXAMPLE, h.legacyBase), { 'If-Match': 'W/"2"' });
    expect(res.status, res.body.toString()).toBe(200);
    const answer = res.json();
    expect(answer.resourceType).toBe('Parameters');
    expect(answer.meta.profile).toEqual([
      'https://fhir.nhs.uk/STU3/StructureDefinition/eRS-ChangeShortlistAndSendForTriage-Response-Parameters-1',
    ]);
    expect(answer.parameter.map((p: { name: string }) => p.name)).toEqual([
      'updatedReferralRequest',
      'createdAppointment',
    ]);
    expect(answer.parameter[0].resource).toEqual(
      legacyFixture('stu3/retrieveReferralRequest/responses/Unbooked.json', h.legacyBase),
    );
    expect(answer.parameter[1].resource).toEqual(
      legacyFixture('stu3/bookOrDeferAppointment/responses/TriageDeferral.json', h.legacyBase),
    );

    const steps = stepsSince(h, from);
    expect(steps.map(line)).toEqual([
      `POST ${BASE}/ReferralRequest/000000070000/$ers.changeShortlist`,
      `POST ${BASE}/Appointment`,
      `GET ${BASE}/ReferralRequest/000000070000`,
    ]);
    expect(steps[0]!.headers['if-match']).toBe('W/"2"');
    expect(json(steps[0]!)).toEqual({
      ...apimExample(h, A032_EXAMPLE),
      meta: { profile: ['https://fhir.nhs.uk/STU3/StructureDefinition/eRS-ChangeShortlist-Parameters-1'] },
    });
    expect(steps[1]!.headers['if-match']).toBeUndefined();
    expect(json(steps[1]!).incomingReferral).toEqual([{ reference: 'ReferralRequest/000000070000/_history/3' }]);
  });

  it('a failure between steps names the new version to use', async () => {
    h = await startUserHarness({
      standIn: { retire: ['A032'], failWith: { A016: { status: 409, code: 'VERSION_CONFLICT' } } },
    });
    const key = await referrerSession(h);
    const res = await send(h, key, A032, legacyRequestFixture(A032_EXAMPLE, h.legacyBase), { 'If-Match': 'W/"2"' });
    expectOneAnswer(
      res,
      'The shortlist of referral 000000070000 was changed to triage service 11004 (now version 3)',
      'answered HTTP 409 VERSION_CONFLICT',
      'A016',
    );
  });

  it('needs If-Match as A032 did, before anything is sent', async () => {
    h = await startUserHarness({ standIn: { retire: ['A032'] } });
    const key = await referrerSession(h);
    const from = h.standIn.received.length;
    const issue = expectLegacyOutcome(
      await send(h, key, A032, legacyRequestFixture(A032_EXAMPLE, h.legacyBase)),
      422,
      'MISSING_HEADER',
    );
    expect(issue.diagnostics).toContain('A032');
    expect(stepsSince(h, from)).toEqual([]);
  });
});
