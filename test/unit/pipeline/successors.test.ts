/**
 * Successors of retired operations, without sockets: the table, the rules' choice per environment, the pure
 * translation steps (A006's Content-Disposition, A042's errors, the send-for-triage bodies), the object-store link
 * check, the fault table's wording, and the send-for-triage steps on a fake APIM (a failure part-way).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ApimCall, ApimResult } from '../../../src/apim/dispatch.js';
import { bufferBody } from '../../../src/apim/dispatch.js';
import { ObjectStoreError, objectStoreLink } from '../../../src/apim/object-store.js';
import { RateLimited } from '../../../src/apim/rate-limiter.js';
import { UpstreamError } from '../../../src/apim/upstream.js';
import { explain } from '../../../src/cli/explain.js';
import { ENDPOINTS } from '../../../src/legacy/endpoints.js';
import { REASONS } from '../../../src/legacy/errors.js';
import { RETIREMENTS } from '../../../src/legacy/successors.js';
import { a042ErrorToLegacy, r4Issue } from '../../../src/pipeline/attachment-successor.js';
import { faultFor } from '../../../src/pipeline/faults.js';
import { callSuccessor, successorOf } from '../../../src/pipeline/successor.js';
import type { SuccessorContext } from '../../../src/pipeline/successor-call.js';
import { SuccessorIncomplete } from '../../../src/pipeline/successor-faults.js';
import { parseRules } from '../../../src/rules/load.js';
import type { Runtime } from '../../../src/runtime/runtime.js';
import { a006Disposition, filenameOf } from '../../../src/translation/content-disposition.js';
import { referralFacts, triageDeferral, triageRequestFor } from '../../../src/translation/triage.js';
import { apimResponse, endpoint, legacyRejection, rejectionOf, URLS, userSession } from './fakes.js';

const EXAMPLES = new URL('../../../fixtures/ers-api/examples/', import.meta.url);
const example = (rel: string) => JSON.parse(readFileSync(new URL(rel, EXAMPLES), 'utf8'));

const RULES = (successors = '') => `
environment: unit
legacy: { host: api.int1.ers.ncrs.nhs.uk }
apim:
  baseUrl: https://sandbox.api.service.nhs.uk/referrals/FHIR
  auth: none
${successors}
asids:
  "200000000001":
    accessMode: application-restricted
    organisation: { odsCode: R69, name: TEST TRUST }
    businessFunction: SERVICE_PROVIDER_CLINICIAN
    callerAuth: { networkOnly: a unit test }
`;

describe('the successor table', () => {
  it('names NHS dates and guides, and successors the endpoint table knows', () => {
    for (const r of Object.values(RETIREMENTS)) {
      expect(ENDPOINTS.some((e) => e.code === r.code)).toBe(true);
      for (const code of r.replacedBy) expect(ENDPOINTS.some((e) => e.code === code)).toBe(true);
      expect(r.guide).toMatch(/^Migrating /);
      expect(r.retired).toMatch(
        /^(January|February|March|April|May|June|July|August|September|October|November|December) 20\d\d$/,
      );
    }
    expect(RETIREMENTS.A006).toMatchObject({
      deprecated: 'February 2025',
      retired: 'February 2026',
      replacedBy: ['A042'],
    });
    expect(RETIREMENTS.A021.retired).toBe('March 2025');
    expect(RETIREMENTS.A032.replacedBy).toEqual(['A031', 'A016', 'A005']);
  });
});

describe('apim.successors in the rules', () => {
  it('defaults every retired operation to its successor, and A006 to the 5 MB limit', () => {
    const rules = parseRules(RULES(), 'unit.yaml');
    expect(rules.apim.successors).toMatchObject({
      A006: 'a042',
      A021: 'a011-then-a016',
      A032: 'a031-then-a016',
      attachments: { maxBytes: 5_242_880, timeouts: { connectMs: 5000, totalMs: 300_000 } },
    });
    expect(successorOf(endpoint('A006'), rules.apim.successors)?.kind).toBe('a042');
    expect(successorOf(endpoint('A021'), rules.apim.successors)).toMatchObject({ kind: 'triage', first: 'A011' });
    expect(successorOf(endpoint('A032'), rules.apim.successors)).toMatchObject({ kind: 'triage', first: 'A031' });
    expect(successorOf(endpoint('A005'), rules.apim.successors)).toBeUndefined();
  });

  it('takes direct and gone, and a raised limit up to A042’s 100 MB, but no more', () => {
    const rules = parseRules(
      RULES('  successors: { A006: direct, A021: gone, attachments: { maxBytes: 104857600 } }'),
      'unit.yaml',
    );
    expect(successorOf(endpoint('A006'), rules.apim.successors)).toBeUndefined();
    expect(successorOf(endpoint('A021'), rules.apim.successors)?.kind).toBe('gone');
    expect(() => parseRules(RULES('  successors: { attachments: { maxBytes: 104857601 } }'), 'unit.yaml')).toThrow(
      /apim\.successors\.attachments\.maxBytes/,
    );
    expect(() => parseRules(RULES('  successors: { A006: a006 }'), 'unit.yaml')).toThrow(
      /expected A006: a042 or direct/,
    );
  });
});

describe('explain shows what APIM receives instead of a retired call', () => {
  it('A006 → A042; A021 → A011 first; gone → refused before sending; direct → the call as it is', () => {
    const rules = parseRules(RULES(), 'unit.yaml');
    const a006 = explain(rules, 'GET', '/ers-api/STU3/v1/Binary/att-1', {}).text;
    expect(a006).toContain('APIM:   GET https://sandbox.api.service.nhs.uk/referrals/FHIR/R4/Binary/att-1');
    expect(a006).toMatch(/successor: APIM retired A006 in February 2026/);
    const a021 = explain(rules, 'POST', '/ers-api/STU3/v1/ReferralRequest/$ers.createReferralAndSendForTriage', {});
    expect(a021.text).toContain('/referrals/FHIR/STU3/ReferralRequest/$ers.createReferral');
    expect(a021.text).toMatch(/then A016/);
    const gone = parseRules(RULES('  successors: { A021: gone, A006: direct }'), 'unit.yaml');
    const refused = explain(gone, 'POST', '/ers-api/STU3/v1/ReferralRequest/$ers.createReferralAndSendForTriage', {});
    expect(refused.ok).toBe(false);
    expect(refused.text).toContain('refused before sending (410)');
    expect(explain(gone, 'GET', '/ers-api/STU3/v1/Binary/att-1', {}).text).toContain(
      '/referrals/FHIR/STU3/Binary/att-1',
    );
  });
});

describe("A006's Content-Disposition", () => {
  it('reads the name an object store gives (filename*, RFC 2047, quoted, plain) and makes it safe', () => {
    expect(
      filenameOf(`attachment; filename="=?UTF-8?Q?The_filenam=C3=A9.pdf?="; filename*=UTF-8''The%20filenam%C3%A9.pdf`),
    ).toBe('The filenamé.pdf');
    expect(filenameOf('attachment; filename="=?UTF-8?Q?The_filenam=C3=A9.pdf?="')).toBe('The filenamé.pdf');
    expect(filenameOf('attachment; filename=example_attachment.pdf')).toBe('example_attachment.pdf');
    expect(filenameOf('attachment; filename="a \\"b\\".txt"')).toBe('a "b".txt');
    expect(filenameOf('attachment; filename="../../etc/passwd\r\nSet-Cookie: x"')).toBe(
      '.._.._etc_passwdSet-Cookie: x',
    );
    expect(filenameOf('inline')).toBeUndefined();
    expect(filenameOf(undefined)).toBeUndefined();
  });

  it('writes it as A006 did: a plain token unquoted, anything else quoted, non-ASCII with filename*', () => {
    expect(a006Disposition('example_attachment.pdf')).toBe('attachment; filename=example_attachment.pdf');
    expect(a006Disposition('clinic letter.pdf')).toBe('attachment; filename="clinic letter.pdf"');
    expect(a006Disposition('The filenamé.pdf')).toBe(
      `attachment; filename="The filenam_.pdf"; filename*=UTF-8''The%20filenam%C3%A9.pdf`,
    );
    expect(a006Disposition('a\r\nb')).toBe('attachment; filename=ab');
  });
});

describe("A042's link to the object store", () => {
  it('is followed only when https (http on loopback), absolute and without credentials', () => {
    expect(objectStoreLink('https://store.example.nhs.uk/f/1?sig=abc').hostname).toBe('store.example.nhs.uk');
    expect(objectStoreLink('http://127.0.0.1:9/f?x=1').port).toBe('9');
    for (const [location, why] of [
      [undefined, /no Location/],
      ['undefined/ObjectStore/d497bbe3', /not an absolute URL/],
      ['http://store.example.org/f', /not https/],
      ['ftp://store.example.org/f', /not https/],
      ['https://user:pw@store.example.org/f', /user name or password/],
    ] as const) {
      const e = (() => {
        try {
          objectStoreLink(location);
        } catch (err) {
          return err as ObjectStoreError;
        }
        throw new Error('expected a refusal');
      })();
      expect(e).toBeInstanceOf(ObjectStoreError);
      expect(e.detail.why).toMatch(why);
      expect(faultFor(e).reason).toBe('OBJECT_STORE_LINK_REFUSED');
    }
  });

  it("the object store's failures never name the link, only its host", () => {
    const failures = [
      new ObjectStoreError('status', { host: 'store.example', status: 403 }),
      new ObjectStoreError('timeout', { host: 'store.example' }),
      new ObjectStoreError('tls-unverified', { host: 'store.example', code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
      new ObjectStoreError('unreachable', { host: 'store.example', code: 'ECONNREFUSED' }),
      new ObjectStoreError('too-large', { host: 'store.example', bytes: 6_291_456, limit: 5_242_880 }),
    ];
    expect(failures.map((e) => faultFor(e).reason)).toEqual([
      'OBJECT_STORE_FAILED',
      'OBJECT_STORE_TIMEOUT',
      'OBJECT_STORE_FAILED',
      'OBJECT_STORE_FAILED',
      'ATTACHMENT_TOO_LARGE',
    ]);
    for (const e of failures) {
      expect(faultFor(e).diagnostics).not.toMatch(/https?:\/\//);
      expect(e.message).not.toContain('/');
    }
    expect(faultFor(failures[4]!).diagnostics).toContain(
      '6291456 bytes, larger than the 5242880 bytes A006 gives (5 MB)',
    );
  });
});

describe("A042's refusals as A006's legacy answers", () => {
  const r4 = (code: string, system = 'https://fhir.nhs.uk/CodeSystem/ers-error-codes') =>
    JSON.stringify({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'invalid', details: { coding: [{ system, code }] }, diagnostics: 'said' }],
    });

  it.each([
    [422, 'PENDING', 'ATTACHMENT_PENDING', 422, 'PENDING'],
    [422, 'THREATS_FOUND', 'ATTACHMENT_THREATS_FOUND', 422, 'THREATS_FOUND'],
    [422, 'VALIDATION_FAILED', 'ATTACHMENT_VALIDATION_FAILED', 422, 'VALIDATION_FAILED'],
    [404, 'REC_NOT_FOUND', 'ATTACHMENT_NOT_FOUND', 404, 'REFERENCE_NOT_FOUND'],
    [403, 'NO_RELATIONSHIP', 'ATTACHMENT_REFUSED', 403, 'FORBIDDEN'],
    [400, 'REC_BAD_REQUEST', 'SUCCESSOR_REFUSED', 400, 'SERVICE_UNAVAILABLE'],
    [503, 'SERVICE_UNAVAILABLE', 'SUCCESSOR_REFUSED', 503, 'SERVICE_UNAVAILABLE'],
  ])('%i %s → %s', (status, code, reason, legacyStatus, ersCode) => {
    const error = a042ErrorToLegacy(status, r4Issue(r4(code)), 'att-1');
    expect(error.reason).toBe(reason);
    expect(error.status).toBe(legacyStatus);
    expect(REASONS[error.reason].ersCode).toBe(ersCode);
    expect(error.diagnostics).toContain('att-1');
  });

  it("429 keeps APIM's wait, and an unexpected 200 is not taken for the file", () => {
    const limited = a042ErrorToLegacy(429, undefined, 'att-1', 7);
    expect(limited.reason).toBe('UPSTREAM_RATE_LIMITED');
    expect(limited.headers['retry-after']).toBe('7');
    const odd = a042ErrorToLegacy(200, undefined, 'att-1');
    expect(odd.reason).toBe('SUCCESSOR_REFUSED');
    expect(odd.status).toBe(502);
    expect(odd.diagnostics).toContain('HTTP 200 where e-RS answers 307');
  });
});

describe('send-for-triage bodies', () => {
  const a021 = () => example('stu3/createReferralAndSendForTriage/requests/Parameters.json');

  it("A021 → A011: the client's body with A011's profile; the triage service and patient picked out", () => {
    const request = triageRequestFor('A021', a021());
    expect(request.firstBody).toEqual({
      ...a021(),
      meta: { profile: ['https://fhir.nhs.uk/STU3/StructureDefinition/eRS-CreateReferral-Parameters-1'] },
    });
    expect(request.serviceId).toBe('11004');
    expect(request.nhsNumber).toBe('9912003888');
  });

  it('A032 → A031 likewise (no patient in the body: the referral has one)', () => {
    const body = example('stu3/changeShortlistAndSendForTriage/requests/MinimalRequest.json');
    const request = triageRequestFor('A032', body);
    expect((request.firstBody.meta as { profile: string[] }).profile).toEqual([
      'https://fhir.nhs.uk/STU3/StructureDefinition/eRS-ChangeShortlist-Parameters-1',
    ]);
    expect(request.serviceId).toBe('11004');
    expect(request.nhsNumber).toBeUndefined();
  });

  it('refuses, before anything is sent, a body it could not finish', () => {
    const two = a021();
    two.parameter[3].resource.entry.push(two.parameter[3].resource.entry[0]);
    const noSystem = a021();
    noSystem.parameter[3].resource.entry[0].item.identifier.system = 'urn:other';
    for (const body of [{}, { resourceType: 'Bundle' }, two, noSystem, { resourceType: 'Parameters', parameter: [] }]) {
      const e = (() => {
        try {
          triageRequestFor('A021', body);
        } catch (err) {
          return err as { reason?: string; diagnostics?: string };
        }
        throw new Error('expected a refusal');
      })();
      expect(e.reason).toBe('BODY_INVALID_FIELD');
      expect(e.diagnostics).toContain('Nothing was sent to e-RS');
    }
  });

  it("A016's body is NHS's triage deferral for the referral, version, service and patient", () => {
    const created = referralFacts(example('stu3/createReferral/responses/ReferralRequest.json'), undefined)!;
    expect(created).toEqual({ ubrn: '000000070000', version: '3', nhsNumber: '9912003888' });
    const nhs = example('stu3/bookOrDeferAppointment/requests/TriageDeferral.json');
    expect(triageDeferral({ ...created, version: '6' }, '50001', '9912003888')).toEqual(nhs);
    expect(referralFacts({ resourceType: 'ReferralRequest', id: '000000070000' }, 'W/"4"')?.version).toBe('4');
    expect(referralFacts({ resourceType: 'OperationOutcome' }, 'W/"4"')).toBeUndefined();
  });
});

describe('the send-for-triage steps on a fake APIM', () => {
  const referral = readFileSync(new URL('stu3/createReferral/responses/ReferralRequest.json', EXAMPLES), 'utf8');
  const fhir = { 'content-type': 'application/fhir+json', 'x-request-id': 'tx-a011-1' };

  function context(answers: Array<(call: ApimCall) => Promise<ApimResult>>): SuccessorContext & { seen: ApimCall[] } {
    const seen: ApimCall[] = [];
    const body = Buffer.from(JSON.stringify(example('stu3/createReferralAndSendForTriage/requests/Parameters.json')));
    return {
      seen,
      dispatch: async (call) => {
        seen.push(call);
        const next = answers[seen.length - 1];
        if (!next) throw new Error(`unexpected call ${call.request.path}`);
        return next(call);
      },
      rt: {
        apimBase: new URL(URLS.apimBase),
        rules: { server: { maxResponseRewriteBytes: 1_000_000 } },
      } as unknown as Runtime,
      endpoint: endpoint('A021'),
      params: {},
      headers: { 'content-type': 'application/fhir+json' },
      session: userSession(),
      urls: URLS,
      bodies: { apim: bufferBody(body), legacy: { first: body } },
      correlationId: 'corr-1',
      signal: undefined,
    };
  }
  const created = async (): Promise<ApimResult> => ({ response: apimResponse(201, fhir, referral) });

  it('a call to A016 that may have reached e-RS (no answer in time) is reported as not known, not as not sent', async () => {
    const timeout = new UpstreamError('headers-timeout', 'APIM', 'https://apim.test', 'UND_ERR_HEADERS_TIMEOUT');
    const ctx = context([created, async () => Promise.reject(timeout)]);
    const e = await rejectionOf(callSuccessor({ kind: 'triage', first: 'A011', retired: RETIREMENTS.A021 }, ctx));
    expect(e).toBeInstanceOf(SuccessorIncomplete);
    const text = faultFor(e).diagnostics;
    expect(faultFor(e).status).toBe(422);
    expect(text).toContain(
      'The referral was created as UBRN 000000070000 but whether it was sent for triage is not known',
    );
    expect(text).toContain('read it with A005');
    expect(ctx.seen.map((c) => c.request.path)).toEqual([
      '/referrals/FHIR/STU3/ReferralRequest/$ers.createReferral',
      '/referrals/FHIR/STU3/Appointment',
    ]);
  });

  it('a call to A016 that never left (local rate limit) is reported as not sent, with how to send it', async () => {
    const ctx = context([created, async () => Promise.reject(new RateLimited(2))]);
    const e = await rejectionOf(callSuccessor({ kind: 'triage', first: 'A011', retired: RETIREMENTS.A021 }, ctx));
    const text = faultFor(e).diagnostics;
    expect(text).toContain('could not be sent for triage');
    expect(text).toContain('Too many calls');
    expect(text).toContain('ReferralRequest/000000070000/_history/3');
  });

  it('an A011 answer naming no referral stops before A016, saying a referral may exist', async () => {
    const ctx = context([async () => ({ response: apimResponse(201, fhir, '{"resourceType":"ReferralRequest"}') })]);
    const e = await rejectionOf(callSuccessor({ kind: 'triage', first: 'A011', retired: RETIREMENTS.A021 }, ctx));
    expect(faultFor(e).diagnostics).toContain('could not read its UBRN and version, so it did not send it for triage');
    expect(ctx.seen).toHaveLength(1);
  });

  it('gone: the 410, nothing sent', async () => {
    const ctx = context([]);
    const e = await legacyRejection(callSuccessor({ kind: 'gone', retired: RETIREMENTS.A032 }, ctx));
    expect(e.status).toBe(410);
    expect(e.reason).toBe('OPERATION_RETIRED');
    expect(e.diagnostics).toMatch(/A031.*A016/);
    expect(ctx.seen).toHaveLength(0);
  });
});
