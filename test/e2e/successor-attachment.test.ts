/**
 * A006 through A042, end to end on loopback: a legacy A006 against an APIM stand-in that has retired A006 (as NHS
 * did in February 2026) gets the same bytes and headers as A006 gave before, by way of A042's real 307 to the
 * stand-in's own object store (another origin, one signed link per download); A042's 422 states and 404 become
 * A006's legacy answers; the object-store link never reaches the client or a log; and A006's 5 MB limit holds
 * unless the rules raise it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LARGE_ATTACHMENT_BYTES, TEST_ATTACHMENTS } from '../../src/apim-standin/index.js';
import { ERS_ERROR_SYSTEM } from '../../src/legacy/errors.js';
import {
  APP_ASID,
  expectLegacyOutcome,
  fixtureBytes,
  type Harness,
  type LegacyResponse,
  legacyCall,
  openSession,
  startHarness,
} from '../helpers/harness.js';

const A006 = (id: string) => `/ers-api/STU3/v1/Binary/${id}`;
const PDF_ID = 'att-70000-70001';
const PDF = () => fixtureBytes('stu3/retrieveAttachment/responses/example_attachment.pdf');

/** Headers that differ per answer whatever the route (connection handling, the transaction id's value). */
const PER_ANSWER = new Set(['date', 'connection', 'keep-alive', 'x_ers_transaction_id']);

function stableHeaders(res: LegacyResponse): Record<string, unknown> {
  return Object.fromEntries(Object.entries(res.headers).filter(([name]) => !PER_ANSWER.has(name)));
}

async function a006(h: Harness, key: string, id: string, extra: Record<string, string> = {}) {
  return legacyCall(h, 'GET', A006(id), { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key, ...extra });
}

/** Every object-store link the stand-in handed out, and its parts (the signature is the secret). */
function linkParts(h: Harness): string[] {
  return h.standIn.objectStore.issued.flatMap((link) => {
    const u = new URL(link);
    return [link, u.pathname, u.searchParams.get('signature')!];
  });
}

function expectNoLink(h: Harness, res: LegacyResponse): void {
  const answer = `${JSON.stringify(res.headers)}\n${res.body.toString('latin1')}`;
  const logs = h.logs.join('\n');
  for (const part of linkParts(h)) {
    expect(answer).not.toContain(part);
    expect(logs).not.toContain(part);
  }
  expect(answer).not.toContain(h.standIn.objectStore.origin);
  expect(logs).not.toContain(h.standIn.objectStore.origin);
}

describe('A006 through A042 (APIM has retired A006)', () => {
  let before: Harness; // APIM still serving A006; ers-bridge sending A006 as it is
  let after: Harness; // APIM with A006 retired; ers-bridge's default (a042)
  let beforeKey: string;
  let afterKey: string;

  beforeAll(async () => {
    before = await startHarness({ rules: { apim: { successors: { A006: 'direct' } } } });
    after = await startHarness({ standIn: { retire: ['A006'] } });
    beforeKey = await openSession(before);
    afterKey = await openSession(after);
  });
  afterAll(async () => {
    await before?.close();
    await after?.close();
  });

  it('the stand-in really has retired A006: sent as it is, the legacy call breaks', async () => {
    const h = await startHarness({
      standIn: { retire: ['A006'] },
      rules: { apim: { successors: { A006: 'direct' } } },
    });
    try {
      const res = await a006(h, await openSession(h), PDF_ID);
      expect(res.status).toBe(404);
      expect(h.standIn.received.at(-1)!.url).toMatch(/\/STU3\/Binary\//);
    } finally {
      await h.close();
    }
  });

  it('returns the same bytes and headers as A006 did, via A042 and its 307', async () => {
    const old = await a006(before, beforeKey, PDF_ID, { 'X-Correlation-ID': 'same-call-1' });
    const received = after.standIn.received.length;
    const now = await a006(after, afterKey, PDF_ID, { 'X-Correlation-ID': 'same-call-1' });

    expect(old.status).toBe(200);
    expect(now.status).toBe(200);
    expect(now.body.equals(old.body)).toBe(true);
    expect(now.body.equals(PDF())).toBe(true);
    expect(stableHeaders(now)).toEqual(stableHeaders(old));
    expect(now.headers['content-type']).toBe('application/pdf');
    expect(now.headers['content-disposition']).toBe('attachment; filename=example_attachment.pdf');
    expect(now.headers['content-length']).toBe(String(PDF().length));
    expect(now.headers['x_ers_transaction_id']).toMatch(/-1$/);
    expect(old.headers['x_ers_transaction_id']).toMatch(/-1$/);

    // What reached APIM: A042 only, through the APIM wrappers (a bearer token, the correlation id), never A006.
    const calls = after.standIn.received.slice(received);
    expect(calls.map((r) => `${r.method} ${r.url}`)).toEqual([`GET /referrals/FHIR/R4/Binary/${PDF_ID}`]);
    expect(calls[0]!.headers.authorization).toMatch(/^Bearer \S+$/);
    expect(calls[0]!.headers['x-correlation-id']).toBe('same-call-1');
    // …and the object store served the link A042 gave, once.
    expect(after.standIn.objectStore.served.length).toBeGreaterThanOrEqual(1);
    expectNoLink(after, now);
  });

  it('goes through the bearer-token wrapper: an APIM 401 on A042 renews the token and resends', async () => {
    const tokensBefore = after.standIn.tokenRequests.length;
    after.standIn.revokeAccessTokens();
    const res = await a006(after, afterKey, PDF_ID);
    expect(res.status).toBe(200);
    expect(res.body.equals(PDF())).toBe(true);
    expect(after.standIn.tokenRequests.length).toBe(tokensBefore + 1);
  });

  it.each([
    ['PENDING', TEST_ATTACHMENTS.pending, 'ATTACHMENT_PENDING', /still being scanned.*try again in a few minutes/],
    ['THREATS_FOUND', TEST_ATTACHMENTS.threatsFound, 'ATTACHMENT_THREATS_FOUND', /quarantined/],
    [
      'VALIDATION_FAILED',
      TEST_ATTACHMENTS.validationFailed,
      'ATTACHMENT_VALIDATION_FAILED',
      /failed e-RS's validation/,
    ],
  ])('A042 422 %s gives the legacy A006 answer', async (ersCode, id, reason, text) => {
    const old = await a006(before, beforeKey, id);
    const now = await a006(after, afterKey, id);
    // A006 answered 422 with this code in the STU3 eRS-APIErrorCode-1 system; so does A006 through A042.
    expect(old.status).toBe(422);
    expect(old.json().issue[0].details.coding[0]).toMatchObject({ system: ERS_ERROR_SYSTEM, code: ersCode });
    const issue = expectLegacyOutcome(now, 422, reason);
    expect(issue.details.coding[0]).toMatchObject({ system: ERS_ERROR_SYSTEM, code: ersCode });
    expect(issue.diagnostics).toMatch(text);
    expect(issue.diagnostics).toContain(id);
    expect(now.headers['x_ers_transaction_id']).toMatch(/-1$/);
    expect(after.standIn.received.at(-1)!.url).toBe(`/referrals/FHIR/R4/Binary/${id}`);
    expectNoLink(after, now);
  });

  it('A042 404 gives a legacy 404', async () => {
    const old = await a006(before, beforeKey, TEST_ATTACHMENTS.unknown);
    expect(old.status).toBe(404);
    const issue = expectLegacyOutcome(
      await a006(after, afterKey, TEST_ATTACHMENTS.unknown),
      404,
      'ATTACHMENT_NOT_FOUND',
    );
    expect(issue.diagnostics).toContain('A005');
  });

  it("a 6 MB attachment is refused with A006's own limit answer (FILE_SIZE_ERROR), as A006 refused it", async () => {
    const old = await a006(before, beforeKey, TEST_ATTACHMENTS.large);
    expect(old.status).toBe(422);
    expect(old.json().issue[0].details.coding[0].code).toBe('FILE_SIZE_ERROR');
    const now = await a006(after, afterKey, TEST_ATTACHMENTS.large);
    const issue = expectLegacyOutcome(now, 422, 'ATTACHMENT_TOO_LARGE');
    expect(issue.details.coding[0]).toMatchObject({ system: ERS_ERROR_SYSTEM, code: 'FILE_SIZE_ERROR' });
    expect(issue.diagnostics).toContain(String(LARGE_ATTACHMENT_BYTES));
    expect(issue.diagnostics).toContain('apim.successors.attachments.maxBytes');
    expectNoLink(after, now);
  });
});

describe('A006 through A042 with the limit raised in the rules', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      standIn: { retire: ['A006'] },
      rules: { apim: { successors: { attachments: { maxBytes: 8 * 1024 * 1024 } } } },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('streams the 6 MB file with its A006 headers', async () => {
    const res = await a006(h, await openSession(h), TEST_ATTACHMENTS.large);
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(LARGE_ATTACHMENT_BYTES);
    expect(res.body.subarray(128, 132).toString('latin1')).toBe('DICM');
    expect(res.headers['content-type']).toBe('application/dicom');
    expect(res.headers['content-disposition']).toBe('attachment; filename=large_scan.dcm');
    expect(res.headers['content-length']).toBe(String(LARGE_ATTACHMENT_BYTES));
    expectNoLink(h, res);
  });
});
