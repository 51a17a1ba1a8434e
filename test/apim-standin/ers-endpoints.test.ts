import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltApimStandIn, buildApimStandIn } from '../../src/apim-standin/index.js';
import { type ApimApp, newApimApp, type SigningKey } from '../helpers/apim-app.js';
import { ALL_BUSINESS_FUNCTIONS, firstIssue, getAccessToken, http, issueUserToken } from './helpers.js';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'fixtures', 'ers-api', 'examples');
const API_KEY = 'ers-app-key';
const USER_API_KEY = 'ers-user-key';
const REQUEST_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-1$/;
const STU3_PROFILE = 'https://fhir.nhs.uk/STU3/StructureDefinition/eRS-OperationOutcome-1';

let standIn: BuiltApimStandIn;
let key: SigningKey;
let ersApp: ApimApp;
let appToken: string;
let userToken: string;

/** An example with `_baseUrl_` replaced, as the stand-in must serve it. */
function example(rel: string): string {
  return readFileSync(join(EXAMPLES, rel), 'utf8').replaceAll('_baseUrl_', standIn.baseUrl);
}

function app(headers: Record<string, string> = {}) {
  return { authorization: `Bearer ${appToken}`, ...headers };
}

function user(headers: Record<string, string> = {}) {
  return {
    authorization: `Bearer ${userToken}`,
    'nhsd-end-user-organisation-ods': 'R69',
    'nhsd-ers-business-function': 'REFERRING_CLINICIAN',
    ...headers,
  };
}

const url = (path: string) => `${standIn.baseUrl}${path}`;

beforeAll(async () => {
  ersApp = await newApimApp({ apiKey: API_KEY, kid: 'ers-1' });
  key = ersApp.key;
  standIn = await buildApimStandIn({
    apps: [
      ersApp.standInApp,
      { apiKey: USER_API_KEY, asid: '999000000009', jwks: { keys: [] }, accessMode: 'user-restricted' },
    ],
    users: {
      '555000000009': { roles: [{ odsCode: 'R69', orgName: 'R69 TRUST', businessFunctions: ALL_BUSINESS_FUNCTIONS }] },
      // The user of the NHS A030 example.
      '000000000101': {
        roles: [
          {
            odsCode: 'R69',
            orgName: 'R69 TRUST',
            businessFunctions: ['SERVICE_DEFINER', 'SERVICE_PROVIDER_CLINICIAN', 'SERVICE_PROVIDER_ADMIN'],
          },
          { odsCode: 'R68', orgName: 'R68 PRACTICE', businessFunctions: ['REFERRING_CLINICIAN'] },
        ],
      },
    },
  });
  await standIn.listen();
  appToken = await getAccessToken({ apiKey: API_KEY, tokenUrl: standIn.tokenUrl, key });
  // Token exchange itself is covered by user-restricted.test.ts; these tests take a user token straight from the store.
  userToken = issueUserToken(standIn.state, USER_API_KEY, '555000000009');
});

afterAll(async () => {
  await standIn?.close();
});

describe('APIM authorisation', () => {
  it('401 with an empty body and WWW-Authenticate on STU3 paths without a token', async () => {
    const res = await http(url('/STU3/ReferralRequest/000000070000'));
    expect(res.status).toBe(401);
    expect(res.body.length).toBe(0);
    expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    expect(res.headers['x-request-id']).toMatch(REQUEST_ID);
  });

  it('401 with an empty body for an unknown token on STU3, an OperationOutcome on R4', async () => {
    const stu3 = await http(url('/STU3/CodeSystem/SPECIALTY'), { headers: { authorization: 'Bearer nonsense' } });
    expect(stu3.status).toBe(401);
    expect(stu3.body.length).toBe(0);
    const r4 = await http(url('/R4/PractitionerRole'), { headers: { authorization: 'Bearer nonsense' } });
    expect(r4.status).toBe(401);
    expect(r4.headers['content-type']).toBe('application/fhir+json');
    expect(firstIssue(r4.json())).toMatchObject({
      code: 'login',
      errorCode: 'ACCESS_DENIED',
      system: 'https://fhir.nhs.uk/CodeSystem/NHSD-API-ErrorOrWarningCode',
    });
  });

  it('401 with an empty body once tokens are revoked', async () => {
    const own = await buildApimStandIn({ apps: [ersApp.standInApp] });
    await own.listen();
    try {
      const token = await getAccessToken({ apiKey: API_KEY, tokenUrl: own.tokenUrl, key });
      const path = `${own.baseUrl}/STU3/ReferralRequest/000000070000`;
      expect((await http(path, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      own.revokeAccessTokens();
      const res = await http(path, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(401);
      expect(res.body.length).toBe(0);
      expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    } finally {
      await own.close();
    }
  });
});

describe('A005 retrieve referral request', () => {
  it('serves the fixture with _baseUrl_ replaced, as application/fhir+json, with ETag W/"<versionId>"', async () => {
    const res = await http(url('/STU3/ReferralRequest/000000070000'), { headers: app() });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/fhir+json');
    expect(res.headers.etag).toBe('W/"5"');
    const expected = example('stu3/retrieveReferralRequest/responses/Unbooked.json');
    expect(res.text).toBe(expected);
    expect(res.text).not.toContain('_baseUrl_');
    expect(expected).toContain(`${standIn.baseUrl}/STU3/`);
  });

  it('serves _history only for the latest version', async () => {
    const latest = await http(url('/STU3/ReferralRequest/000000070001/_history/5'), { headers: app() });
    expect(latest.status).toBe(200);
    expect(latest.text).toBe(example('stu3/retrieveReferralRequest/responses/BookedDBS.json'));
    const older = await http(url('/STU3/ReferralRequest/000000070001/_history/4'), { headers: app() });
    expect(older.status).toBe(404);
    expect(firstIssue(older.json()).errorCode).toBe('HISTORY_NOT_SUPPORTED');
  });

  it('404 NO_SUCH_REQUEST for an unknown UBRN', async () => {
    const res = await http(url('/STU3/ReferralRequest/999999999999'), { headers: app() });
    expect(res.status).toBe(404);
    const body = res.json() as { meta: { profile: string[] } };
    expect(body.meta.profile).toEqual([STU3_PROFILE]);
    expect(firstIssue(body)).toMatchObject({ code: 'not-found', errorCode: 'NO_SUCH_REQUEST' });
  });
});

describe('application-restricted rules', () => {
  it('403 NO_ACCESS for an operation that is not app-restricted (A011)', async () => {
    const res = await http(url('/STU3/ReferralRequest/$ers.createReferral'), {
      method: 'POST',
      headers: app({ 'content-type': 'application/fhir+json' }),
      body: example('stu3/createReferral/requests/MinimalRequest.json'),
    });
    expect(res.status).toBe(403);
    const issue = firstIssue(res.json());
    expect(issue).toMatchObject({ code: 'forbidden', errorCode: 'NO_ACCESS' });
    expect(issue.diagnostics).toContain('A011');
  });

  it.each(['NHSD-End-User-Organisation-ODS', 'NHSD-eRS-Business-Function', 'NHSD-eRS-On-Behalf-Of-User-ID'])(
    '403 when %s is sent with an app-restricted token',
    async (name) => {
      const res = await http(url('/STU3/ReferralRequest/000000070000'), { headers: app({ [name]: 'X' }) });
      expect(res.status).toBe(403);
      const issue = firstIssue(res.json());
      expect(issue).toMatchObject({ code: 'forbidden', errorCode: 'NO_ACCESS' });
      expect(issue.diagnostics).toContain(`The ${name} header is not allowed for application-restricted access`);
    },
  );

  it.each(['x-ers-ods-code', 'x-ers-business-function', 'x-ers-user-id'])(
    '403 with an empty text/plain body when the client sends %s (as APIM)',
    async (name) => {
      const res = await http(url('/STU3/ReferralRequest/000000070000'), { headers: app({ [name]: 'X' }) });
      expect(res.status).toBe(403);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.body.length).toBe(0);
    },
  );

  it('403 for a consumer worklist with an app-restricted token (A008)', async () => {
    const res = await http(url('/STU3/ReferralRequest/$ers.fetchworklist'), {
      method: 'POST',
      headers: app({ 'content-type': 'application/fhir+json' }),
      body: example('stu3/retrieveWorklist/requests/MinimalAwaitingBooking.json'),
    });
    expect(res.status).toBe(403);
  });
});

describe('legacy headers never reach APIM', () => {
  it.each([
    ['XAPI_ASID', '999000000001'],
    ['HTTP_X_SESSION_KEY', 'abc'],
    ['XAPI_FQDN', 'client.example'],
    ['X-ERS-XAPI-ASID', '1'],
    ['x_ers_xapi_meta_file_name', 'a.txt'],
  ])('400 naming the leaked header %s', async (name, value) => {
    const res = await http(url('/STU3/ReferralRequest/000000070000'), { headers: app({ [name]: value }) });
    expect(res.status).toBe(400);
    const issue = firstIssue(res.json());
    expect(issue.errorCode).toBe('LEGACY_HEADER_NOT_ALLOWED');
    expect(issue.diagnostics?.toLowerCase()).toContain(name.toLowerCase());
  });
});

describe('A008 retrieve worklist (POST answered by body)', () => {
  it('answers an example request with its example response', async () => {
    const res = await http(url('/STU3/ReferralRequest/$ers.fetchworklist'), {
      method: 'POST',
      headers: app({ 'content-type': 'application/fhir+json' }),
      body: example('stu3/retrieveWorklist/requests/MinimalReferralsForReview.json'),
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/fhir+json');
    expect(res.text).toBe(example('stu3/retrieveWorklist/responses/ReferralsForReview.json'));
  });

  it('compares structurally: key order and whitespace do not matter; charset=utf-8 is accepted', async () => {
    const body = JSON.parse(example('stu3/retrieveWorklist/requests/MinimalAppointmentSlotIssues.json'));
    const reordered = JSON.stringify({ parameter: body.parameter, meta: body.meta, resourceType: body.resourceType });
    const res = await http(url('/STU3/ReferralRequest/$ers.fetchworklist'), {
      method: 'POST',
      headers: app({ 'content-type': 'application/fhir+json; charset=UTF-8' }),
      body: reordered,
    });
    expect(res.status).toBe(200);
    expect(res.text).toBe(example('stu3/retrieveWorklist/responses/AppointmentSlotIssues.json'));
  });

  it('422 when no example request matches', async () => {
    const body = JSON.parse(example('stu3/retrieveWorklist/requests/MinimalReferralsForReview.json'));
    body.parameter.push({ name: 'service', valueIdentifier: { system: 'x', value: 'nope' } });
    const res = await http(url('/STU3/ReferralRequest/$ers.fetchworklist'), {
      method: 'POST',
      headers: app({ 'content-type': 'application/fhir+json' }),
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(422);
    const out = res.json() as { meta: { profile: string[] } };
    expect(out.meta.profile).toEqual([STU3_PROFILE]);
    const issue = firstIssue(out);
    expect(issue.errorCode).toBe('NO_MATCHING_EXAMPLE');
    expect(issue.diagnostics).toContain('MinimalReferralsForReview.json');
  });

  it('415 text/plain for application/json, or no content type', async () => {
    for (const contentType of ['application/json', undefined]) {
      const headers: Record<string, string> = app();
      if (contentType) headers['content-type'] = contentType;
      const res = await http(url('/STU3/ReferralRequest/$ers.fetchworklist'), {
        method: 'POST',
        headers,
        body: example('stu3/retrieveWorklist/requests/MinimalReferralsForReview.json'),
      });
      expect(res.status).toBe(415);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
    }
  });
});

describe('PDFs and attachments', () => {
  it('A007 returns the clinical information PDF byte for byte', async () => {
    const res = await http(url('/STU3/ReferralRequest/000000070000/$ers.generateCRI'), {
      method: 'POST',
      headers: app(),
    });
    expect(res.status).toBe(200);
    const pdf = readFileSync(
      join(
        EXAMPLES,
        'stu3/retrieveClinicalInformation/responses/000000070000_Clinical_Information_Summary_20210706114852.pdf',
      ),
    );
    expect(res.body.equals(pdf)).toBe(true);
    expect(res.headers['content-type']).toBe('application/pdf');
    expect(res.headers['content-length']).toBe(String(pdf.length));
    expect(res.headers['content-disposition']).toBe(
      'attachment; filename=000000070000_Clinical_Information_Summary_20210706114852.pdf',
    );
  });

  it('A042 redirects (307) to the stand-in object store, another origin, whose link serves the file once', async () => {
    const res = await http(url('/R4/Binary/c5d2d200-7613-4a69-9c5f-1bb68e04b8d8'), { headers: app() });
    expect(res.status).toBe(307);
    expect(res.body.length).toBe(0);
    const location = String(res.headers.location);
    expect(location.startsWith(`${standIn.objectStore.origin}/`)).toBe(true);
    expect(new URL(location).origin).not.toBe(standIn.origin);
    const file = await http(location);
    expect(file.status).toBe(200);
    expect(file.headers['content-type']).toBe('application/pdf');
    expect(file.body.equals(readFileSync(join(EXAMPLES, 'r4/retrieveAttachment/example_attachment.pdf')))).toBe(true);
    expect((await http(location)).status).toBe(403);
  });

  it('A020 upload: 201, no body, Location Binary/<uuid>; 415 outside the allow-list', async () => {
    const headers = user({ 'nhsd-ers-file-name': 'letter.txt', 'content-type': 'text/plain' });
    const res = await http(url('/STU3/Binary'), { method: 'POST', headers, body: 'hello' });
    expect(res.status).toBe(201);
    expect(res.body.length).toBe(0);
    expect(res.headers.location).toMatch(/^Binary\/[0-9a-f-]{36}$/);
    const zip = await http(url('/STU3/Binary'), {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/zip' },
      body: 'PK',
    });
    expect(zip.status).toBe(415);
    const missingName = await http(url('/STU3/Binary'), {
      method: 'POST',
      headers: user({ 'content-type': 'text/plain' }),
      body: 'hello',
    });
    expect(missingName.status).toBe(400);
    expect(firstIssue(missingName.json()).diagnostics).toContain('NHSD-eRS-File-Name');
  });
});

describe('A013 accept referral', () => {
  const path = '/STU3/ReferralRequest/000000070000/$ers.acceptReferral';

  it('400 MISSING_HEADER without If-Match', async () => {
    const res = await http(url(path), { method: 'POST', headers: app() });
    expect(res.status).toBe(400);
    expect(firstIssue(res.json())).toMatchObject({
      code: 'required',
      errorCode: 'MISSING_HEADER',
      diagnostics: 'Missing or Empty If-Match header.',
    });
  });

  it('400 for an If-Match that is not W/"<n>"', async () => {
    const res = await http(url(path), { method: 'POST', headers: app({ 'if-match': '"5"' }) });
    expect(res.status).toBe(400);
    expect(firstIssue(res.json()).errorCode).toBe('INVALID_HEADER');
  });

  it('200 with the example and its ETag', async () => {
    const res = await http(url(path), { method: 'POST', headers: app({ 'if-match': 'W/"8"' }) });
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('W/"9"');
    expect(res.text).toBe(example('stu3/acceptReferral/responses/ExampleResponse.json'));
  });
});

describe('user-restricted', () => {
  it('A030 answers the example user with the NHS example bundle (plus organisation names)', async () => {
    const token = issueUserToken(standIn.state, USER_API_KEY, '000000000101');
    const res = await http(url('/R4/PractitionerRole'), { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/fhir+json');
    const body = res.json() as Record<string, any>;
    const expected = JSON.parse(example('r4/retrieveBusinessFunctions/responses/PractitionerRoleBundle.json'));
    expect(body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number.isNaN(Date.parse(body.timestamp))).toBe(false);
    expect(body.entry.map((e: any) => e.resource.organization.display)).toEqual(['R69 TRUST', 'R68 PRACTICE']);
    // Apart from the volatile id/timestamps and the added display, the bundle is the example.
    for (const b of [body, expected]) {
      b.id = 'ID';
      b.timestamp = 'TS';
      b.meta.lastUpdated = 'TS';
      for (const e of b.entry) {
        e.resource.meta.lastUpdated = 'TS';
        delete e.resource.organization.display;
      }
    }
    expect(body).toEqual(expected);
    expect(Object.keys(body)).toEqual(Object.keys(expected));
  });

  it('A030 is refused to an app-restricted token', async () => {
    const res = await http(url('/R4/PractitionerRole'), { headers: app() });
    expect(res.status).toBe(403);
    expect(firstIssue(res.json())).toMatchObject({ code: 'forbidden', errorCode: 'ACCESS_DENIED' });
  });

  it('A011: 201 with ETag for an example; 400 without the ODS header; 403 for a provider business function', async () => {
    const body = example('stu3/createReferral/requests/MinimalRequest.json');
    const headers = user({ 'content-type': 'application/fhir+json' });
    const ok = await http(url('/STU3/ReferralRequest/$ers.createReferral'), { method: 'POST', headers, body });
    expect(ok.status).toBe(201);
    expect(ok.headers.etag).toBe('W/"3"');
    expect(ok.text).toBe(example('stu3/createReferral/responses/ReferralRequest.json'));

    const { 'nhsd-end-user-organisation-ods': _, ...noOds } = headers;
    const missing = await http(url('/STU3/ReferralRequest/$ers.createReferral'), {
      method: 'POST',
      headers: noOds,
      body,
    });
    expect(missing.status).toBe(400);
    expect(firstIssue(missing.json()).diagnostics).toBe('Missing or Empty NHSD-End-User-Organisation-ODS header.');

    const provider = await http(url('/STU3/ReferralRequest/$ers.createReferral'), {
      method: 'POST',
      headers: { ...headers, 'nhsd-ers-business-function': 'SERVICE_PROVIDER_CLINICIAN' },
      body,
    });
    expect(provider.status).toBe(403);
  });

  it('A015 requires NHSD-eRS-Comm-Rule-Org and answers the slot examples by query', async () => {
    const q = '?schedule.actor:HealthcareService=12000&appointmentType=ROUTINE&status=free&_count=20&page=1';
    const missing = await http(url(`/STU3/Slot${q}`), { headers: user() });
    expect(missing.status).toBe(400);
    const res = await http(url(`/STU3/Slot${q}`), { headers: user({ 'nhsd-ers-comm-rule-org': 'R69' }) });
    expect(res.status).toBe(200);
    expect(res.text).toBe(example('stu3/retrieveAppointmentSlots/responses/Minimum.json'));
  });
});

describe('routing and common headers', () => {
  it('X-Request-ID is <uuid>-1, new per request; X-Correlation-ID is echoed', async () => {
    const a = await http(url('/STU3/CodeSystem/SPECIALTY'), { headers: app({ 'X-Correlation-ID': 'corr-123' }) });
    const b = await http(url('/STU3/CodeSystem/SPECIALTY'), { headers: app() });
    expect(a.status).toBe(200);
    expect(a.headers['x-request-id']).toMatch(REQUEST_ID);
    expect(b.headers['x-request-id']).toMatch(REQUEST_ID);
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
    expect(a.headers['x-correlation-id']).toBe('corr-123');
    expect(b.headers['x-correlation-id']).toBeUndefined();
    expect(a.text).toBe(example('stu3/getCodeSystem/responses/SpecialtyCodeSystem.json'));
  });

  it('404 OperationOutcome for an unknown path, 405 for a known path with the wrong method', async () => {
    const unknown = await http(url('/STU3/Nothing/here'), { headers: app() });
    expect(unknown.status).toBe(404);
    expect(firstIssue(unknown.json()).code).toBe('not-found');
    const wrong = await http(url('/STU3/ReferralRequest/$ers.fetchworklist'), { headers: app() });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('POST');
  });

  it('records each request, with header names in the case received, before answering', async () => {
    const before = standIn.received.length;
    await http(url('/STU3/ReferralRequest/000000070002?x=1'), { headers: app({ 'X-Correlation-ID': 'rec-1' }) });
    expect(standIn.received.length).toBe(before + 1);
    const rec = standIn.received.at(-1)!;
    expect(rec.method).toBe('GET');
    expect(rec.url).toBe('/referrals/FHIR/STU3/ReferralRequest/000000070002?x=1');
    expect(rec.rawHeaders).toContainEqual(['X-Correlation-ID', 'rec-1']);
    expect(rec.headers['x-correlation-id']).toBe('rec-1');
    expect(rec.body.length).toBe(0);
  });
});
