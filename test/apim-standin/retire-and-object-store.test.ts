/**
 * The stand-in as APIM after NHS's retirements: operations it has retired answer as removed ones do (404 with an
 * OperationOutcome); A042 redirects to an object store of its own origin whose signed links work once and expire;
 * A006 and A042 answer e-RS's attachment states for the test ids; tests can script an e-RS error for an operation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltApimStandIn, buildApimStandIn, TEST_ATTACHMENTS } from '../../src/apim-standin/index.js';
import { type ApimApp, newApimApp } from '../helpers/apim-app.js';
import { firstIssue, getAccessToken, http } from './helpers.js';

let app: ApimApp;
let standIn: BuiltApimStandIn;
let token: string;
let offsetMs = 0;

const auth = () => ({ authorization: `Bearer ${token}` });
const url = (path: string) => `${standIn.baseUrl}${path}`;

beforeAll(async () => {
  app = await newApimApp({ apiKey: 'retire-app', kid: 'retire-1' });
  standIn = await buildApimStandIn({
    apps: [app.standInApp],
    retire: ['A006', 'A021', 'A032'],
    failWith: { A004: { status: 503, code: 'SERVICE_UNAVAILABLE', diagnostics: 'scripted' } },
    objectStoreLinkTtlSeconds: 30,
    clock: () => Date.now() + offsetMs,
  });
  await standIn.listen();
  token = await getAccessToken({ apiKey: 'retire-app', tokenUrl: standIn.tokenUrl, key: app.key });
});
afterAll(async () => {
  await standIn?.close();
});

describe('retired operations', () => {
  it('answer 404 with an OperationOutcome, as any path APIM does not serve', async () => {
    const a006 = await http(url('/STU3/Binary/att-70000-70001'), { headers: auth() });
    expect(a006.status).toBe(404);
    expect(a006.headers['content-type']).toBe('application/fhir+json');
    expect(firstIssue(a006.json())).toMatchObject({ code: 'not-found', errorCode: 'NOT_FOUND' });
    const a021 = await http(url('/STU3/ReferralRequest/$ers.createReferralAndSendForTriage'), {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/fhir+json' },
      body: '{}',
    });
    expect(a021.status).toBe(404);
    // Their successors are still served.
    expect((await http(url('/R4/Binary/att-70000-70001'), { headers: auth() })).status).toBe(307);
  });

  it('an unknown code cannot be retired', async () => {
    await expect(buildApimStandIn({ apps: [], retire: ['A999'] })).rejects.toThrow(/cannot retire A999/);
  });

  it("a scripted e-RS error answers after the gateway's checks", async () => {
    const res = await http(url('/STU3/CodeSystem/SPECIALTY'), { headers: auth() });
    expect(res.status).toBe(503);
    expect(firstIssue(res.json())).toMatchObject({ errorCode: 'SERVICE_UNAVAILABLE', diagnostics: 'scripted' });
    expect((await http(url('/STU3/CodeSystem/SPECIALTY'))).status).toBe(401);
  });
});

describe("A042's object store", () => {
  async function link(id = 'att-70000-70001'): Promise<string> {
    const res = await http(url(`/R4/Binary/${id}`), { headers: auth() });
    expect(res.status).toBe(307);
    return String(res.headers.location);
  }

  it('is another origin; each link works once, with no credential but itself', async () => {
    const first = await link();
    expect(new URL(first).origin).toBe(standIn.objectStore.origin);
    expect(new URL(first).origin).not.toBe(standIn.origin);
    const file = await http(first);
    expect(file.status).toBe(200);
    expect(file.headers['content-disposition']).toBe(
      `attachment; filename="example_attachment.pdf"; filename*=UTF-8''example_attachment.pdf`,
    );
    const again = await http(first);
    expect(again.status).toBe(403);
    expect(again.text).toContain('already been used');
    const second = await link();
    expect(second).not.toBe(first);
    expect(standIn.objectStore.issued).toContain(second);
  });

  it('refuses a tampered link and an expired one', async () => {
    const tampered = new URL(await link());
    tampered.searchParams.set('signature', '0'.repeat(64));
    expect((await http(tampered.href)).status).toBe(403);
    const expiring = await link();
    offsetMs = 31_000;
    try {
      const res = await http(expiring);
      expect(res.status).toBe(403);
      expect(res.text).toContain('expired');
    } finally {
      offsetMs = 0;
    }
  });

  it('A042 answers e-RS’s 422 states (R4) and 404 for the test ids; A006 would have answered them in STU3', async () => {
    for (const [id, code] of [
      [TEST_ATTACHMENTS.pending, 'PENDING'],
      [TEST_ATTACHMENTS.threatsFound, 'THREATS_FOUND'],
      [TEST_ATTACHMENTS.validationFailed, 'VALIDATION_FAILED'],
    ] as const) {
      const res = await http(url(`/R4/Binary/${id}`), { headers: auth() });
      expect(res.status).toBe(422);
      expect(firstIssue(res.json())).toMatchObject({
        code: 'invalid',
        errorCode: code,
        system: 'https://fhir.nhs.uk/CodeSystem/ers-error-codes',
      });
    }
    const unknown = await http(url(`/R4/Binary/${TEST_ATTACHMENTS.unknown}`), { headers: auth() });
    expect(unknown.status).toBe(404);
    expect(firstIssue(unknown.json()).errorCode).toBe('REC_NOT_FOUND');

    const a006 = await buildApimStandIn({ apps: [app.standInApp] });
    await a006.listen();
    try {
      const t = await getAccessToken({ apiKey: 'retire-app', tokenUrl: a006.tokenUrl, key: app.key });
      const stu3 = await http(`${a006.baseUrl}/STU3/Binary/${TEST_ATTACHMENTS.pending}`, {
        headers: { authorization: `Bearer ${t}` },
      });
      expect(stu3.status).toBe(422);
      expect(firstIssue(stu3.json())).toMatchObject({
        errorCode: 'PENDING',
        system: 'https://fhir.nhs.uk/STU3/CodeSystem/eRS-APIErrorCode-1',
      });
      const large = await http(`${a006.baseUrl}/STU3/Binary/${TEST_ATTACHMENTS.large}`, {
        headers: { authorization: `Bearer ${t}` },
      });
      expect(large.status).toBe(422);
      expect(firstIssue(large.json()).errorCode).toBe('FILE_SIZE_ERROR');
    } finally {
      await a006.close();
    }
  });

  it('serves the 6 MB test file through A042 (A042 allows up to 100 MB)', async () => {
    const file = await http(await link(TEST_ATTACHMENTS.large));
    expect(file.status).toBe(200);
    expect(file.body.length).toBe(6 * 1024 * 1024);
    expect(file.headers['content-type']).toBe('application/dicom');
  });
});
