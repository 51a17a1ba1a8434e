/**
 * The successors' fault rows, word for word: a send-for-triage call (A021/A032) that stopped part-way, the object
 * store A042 redirects to, and A006's file-size limit. Each answer is checked whole: reason, status, headers and the
 * exact diagnostics, plus the legacy OperationOutcome codes a client reads.
 */
import { describe, expect, it } from 'vitest';
import { ObjectStoreError } from '../../../src/apim/object-store.js';
import { LegacyError } from '../../../src/legacy/errors.js';
import {
  attachmentTooLarge,
  objectStoreFault,
  SuccessorIncomplete,
  successorIncompleteFault,
} from '../../../src/pipeline/successor-faults.js';

type Facts = SuccessorIncomplete['facts'];

const WHY_A021 = '(NHS withdrew A021 in March 2025; ers-bridge makes it as A011, then A016, then A005.)';
const WHY_A032 = '(NHS withdrew A032 in March 2025; ers-bridge makes it as A031, then A016, then A005.)';
const A016 = 'A016 (POST /ers-api/STU3/v1/Appointment, reason TRIAGE';

/** Checks the whole error: its reason, status, no headers, logged as itself, and its legacy OperationOutcome. */
function expectFault(
  e: LegacyError,
  want: { reason: string; status: number; issue: string; ersCode: string; ersDisplay: string; diagnostics: string },
) {
  expect(e).toBeInstanceOf(LegacyError);
  expect(e.reason).toBe(want.reason);
  expect(e.status).toBe(want.status);
  expect(e.headers).toStrictEqual({});
  expect(e.logAs).toBe(want.reason);
  expect(e.diagnostics).toBe(want.diagnostics);
  expect(e.toOutcome()).toStrictEqual({
    resourceType: 'OperationOutcome',
    meta: { profile: ['https://fhir.nhs.uk/STU3/StructureDefinition/eRS-OperationOutcome-1'] },
    issue: [
      {
        severity: 'error',
        code: want.issue,
        details: {
          coding: [
            {
              system: 'https://fhir.nhs.uk/STU3/CodeSystem/eRS-APIErrorCode-1',
              code: want.ersCode,
              display: want.ersDisplay,
            },
            { system: 'urn:ers-bridge:error', code: want.reason },
          ],
        },
        diagnostics: want.diagnostics,
      },
    ],
  });
}

const incomplete = (diagnostics: string) => ({
  reason: 'SUCCESSOR_INCOMPLETE',
  status: 422,
  issue: 'processing',
  ersCode: 'INVALID_REQUEST_STATE',
  ersDisplay: 'Invalid request state',
  diagnostics,
});

const fault = (facts: Facts) => successorIncompleteFault(new SuccessorIncomplete(facts));

const FAILED = { code: 'A016', name: 'Book or defer appointment', said: 'e-RS answered 422 NO_SLOTS' };

describe('SuccessorIncomplete', () => {
  it('is an Error named SuccessorIncomplete whose message says what stopped where; the facts are kept', () => {
    const facts: Facts = { code: 'A032', ubrn: '000000070000', serviceId: '12', done: 'A031', failed: FAILED };
    const e = new SuccessorIncomplete(facts);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('SuccessorIncomplete');
    expect(e.message).toBe('A032: stopped after A031 (A016 failed)');
    expect(e.facts).toBe(facts);
  });
});

describe('successorIncompleteFault', () => {
  describe('sent for triage (done A016), but not read back', () => {
    it('A021: the referral was created', () => {
      const e = fault({
        code: 'A021',
        ubrn: '000000070001',
        version: '3',
        serviceId: '99',
        done: 'A016',
        failed: { code: 'A005', name: 'Retrieve referral', said: 'no answer in time' },
      });
      expectFault(
        e,
        incomplete(
          `The referral 000000070001 was created and sent for triage, but ers-bridge could not read it back for the answer: A005 (Retrieve referral) no answer in time. Nothing needs repeating: read it with A005 (GET /ers-api/STU3/v1/ReferralRequest/000000070001). ${WHY_A021}`,
        ),
      );
    });

    it('A032: the referral was given the triage service', () => {
      const e = fault({
        code: 'A032',
        ubrn: '000000070002',
        version: '4',
        serviceId: '99',
        done: 'A016',
        failed: { code: 'A005', name: 'Retrieve referral', said: 'APIM answered 503.' },
      });
      expectFault(
        e,
        incomplete(
          `The referral 000000070002 was given the triage service and sent for triage, but ers-bridge could not read it back for the answer: A005 (Retrieve referral) APIM answered 503. Nothing needs repeating: read it with A005 (GET /ers-api/STU3/v1/ReferralRequest/000000070002). ${WHY_A032}`,
        ),
      );
    });

    it('A016 done wins over a missing UBRN or version (A021)', () => {
      const e = fault({ code: 'A021', serviceId: '99', done: 'A016', failed: FAILED });
      expect(e.diagnostics).toBe(
        `The referral undefined was created and sent for triage, but ers-bridge could not read it back for the answer: A016 (Book or defer appointment) e-RS answered 422 NO_SLOTS. Nothing needs repeating: read it with A005 (GET /ers-api/STU3/v1/ReferralRequest/undefined). ${WHY_A021}`,
      );
    });
  });

  describe('A021 created (done A011) but its UBRN or version could not be read', () => {
    it('no UBRN nor version: the triage call names <ubrn> and no version', () => {
      const e = fault({ code: 'A021', serviceId: '42', done: 'A011', failed: FAILED });
      expectFault(
        e,
        incomplete(
          `A011 answered that the referral was created, but ers-bridge could not read its UBRN and version, so it did not send it for triage: A016 (Book or defer appointment) e-RS answered 422 NO_SLOTS. Do not repeat A021 (that would create a second referral): find the referral (A008 worklist) and send it with ${A016}, incomingReferral ReferralRequest/<ubrn>, triage service 42). ${WHY_A021}`,
        ),
      );
    });

    it('a UBRN but no version: the triage call names the UBRN, still without a version', () => {
      const e = fault({ code: 'A021', ubrn: '000000070003', serviceId: '42', done: 'A011', failed: FAILED });
      expect(e.diagnostics).toBe(
        `A011 answered that the referral was created, but ers-bridge could not read its UBRN and version, so it did not send it for triage: A016 (Book or defer appointment) e-RS answered 422 NO_SLOTS. Do not repeat A021 (that would create a second referral): find the referral (A008 worklist) and send it with ${A016}, incomingReferral ReferralRequest/000000070003, triage service 42). ${WHY_A021}`,
      );
    });

    it('a version but no UBRN: still the unread answer, and the version is not named', () => {
      const e = fault({ code: 'A021', version: '2', serviceId: '42', done: 'A011', failed: FAILED });
      expect(e.diagnostics).toBe(
        `A011 answered that the referral was created, but ers-bridge could not read its UBRN and version, so it did not send it for triage: A016 (Book or defer appointment) e-RS answered 422 NO_SLOTS. Do not repeat A021 (that would create a second referral): find the referral (A008 worklist) and send it with ${A016}, incomingReferral ReferralRequest/<ubrn>, triage service 42). ${WHY_A021}`,
      );
    });
  });

  describe('A021 created with UBRN and version, A016 failed', () => {
    it('not sent: send this one with A016 naming the version, or cancel it', () => {
      const e = fault({
        code: 'A021',
        ubrn: '000000070004',
        version: '2',
        serviceId: '7',
        done: 'A011',
        failed: FAILED,
      });
      expectFault(
        e,
        incomplete(
          `The referral was created as UBRN 000000070004 but could not be sent for triage: A016 (Book or defer appointment) e-RS answered 422 NO_SLOTS. Do not repeat A021 (that would create a second referral): send this one with ${A016}, incomingReferral ReferralRequest/000000070004/_history/2, triage service 7), or cancel it with A036. ${WHY_A021}`,
        ),
      );
    });

    it('uncertain: whether it was sent is not known; read it with A005 first', () => {
      const e = fault({
        code: 'A021',
        ubrn: '000000070005',
        version: '6',
        serviceId: '7',
        done: 'A011',
        failed: { ...FAILED, said: 'no answer in time', uncertain: true },
      });
      expectFault(
        e,
        incomplete(
          `The referral was created as UBRN 000000070005 but whether it was sent for triage is not known: A016 (Book or defer appointment) no answer in time. Do not repeat A021 (that would create a second referral): read it with A005 (GET /ers-api/STU3/v1/ReferralRequest/000000070005); if it has no triage appointment, send it with ${A016}, incomingReferral ReferralRequest/000000070005/_history/6, triage service 7), or cancel it with A036. ${WHY_A021}`,
        ),
      );
    });

    it('uncertain: false is the same as not uncertain', () => {
      const facts: Facts = { code: 'A021', ubrn: '1', version: '2', serviceId: '7', done: 'A011', failed: FAILED };
      const plain = fault(facts).diagnostics;
      expect(fault({ ...facts, failed: { ...FAILED, uncertain: false } }).diagnostics).toBe(plain);
      expect(plain).toContain('but could not be sent for triage: ');
    });
  });

  describe('A032: the shortlist was changed (done A031), A016 failed', () => {
    it('with a version, not sent: send it with A016 naming the new version', () => {
      const e = fault({
        code: 'A032',
        ubrn: '000000070006',
        version: '9',
        serviceId: '55',
        done: 'A031',
        failed: FAILED,
      });
      expectFault(
        e,
        incomplete(
          `The shortlist of referral 000000070006 was changed to triage service 55 (now version 9) but the referral could not be sent for triage: A016 (Book or defer appointment) e-RS answered 422 NO_SLOTS. Send it with ${A016}, incomingReferral ReferralRequest/000000070006/_history/9, triage service 55); do not repeat A032 with the old If-Match. ${WHY_A032}`,
        ),
      );
    });

    it('without a version, uncertain: read it with A005 for its new version; no _history in the triage call', () => {
      const e = fault({
        code: 'A032',
        ubrn: '000000070007',
        serviceId: '55',
        done: 'A031',
        failed: { ...FAILED, said: 'the connection dropped', uncertain: true },
      });
      expectFault(
        e,
        incomplete(
          `The shortlist of referral 000000070007 was changed to triage service 55 (read it with A005 for its new version) but whether it was then sent for triage is not known: A016 (Book or defer appointment) the connection dropped. Read it with A005; if it has no triage appointment, send it with ${A016}, incomingReferral ReferralRequest/000000070007, triage service 55); do not repeat A032 with the old If-Match. ${WHY_A032}`,
        ),
      );
    });

    it('an empty version counts as none', () => {
      const e = fault({ code: 'A032', ubrn: '8', version: '', serviceId: '55', done: 'A031', failed: FAILED });
      expect(e.diagnostics).toBe(
        `The shortlist of referral 8 was changed to triage service 55 (read it with A005 for its new version) but the referral could not be sent for triage: A016 (Book or defer appointment) e-RS answered 422 NO_SLOTS. Send it with ${A016}, incomingReferral ReferralRequest/8, triage service 55); do not repeat A032 with the old If-Match. ${WHY_A032}`,
      );
    });

    it('A032 without a UBRN or version is not taken for A021 unread', () => {
      const e = fault({ code: 'A032', serviceId: '55', done: 'A031', failed: FAILED });
      expect(e.diagnostics.startsWith('The shortlist of referral undefined was changed')).toBe(true);
    });
  });

  describe("what failed: e-RS's words, with trailing full stops and spaces cut", () => {
    it.each([
      ['no trailing', 'said it', 'said it'],
      ['one full stop', 'said it.', 'said it'],
      ['full stops and spaces', 'said it. . \n\t', 'said it'],
      ['several full stops', 'said it...', 'said it'],
      ['inner full stops and spaces stay', 'e.g. A. B', 'e.g. A. B'],
      ['a leading space stays', ' said', ' said'],
      ['a trailing letter after a full stop stays', 'v1.2', 'v1.2'],
    ])('%s', (_name, said, shown) => {
      const e = fault({
        code: 'A021',
        ubrn: '1',
        version: '2',
        serviceId: '7',
        done: 'A011',
        failed: { code: 'A016', name: 'Book', said },
      });
      expect(e.diagnostics).toBe(
        `The referral was created as UBRN 1 but could not be sent for triage: A016 (Book) ${shown}. Do not repeat A021 (that would create a second referral): send this one with ${A016}, incomingReferral ReferralRequest/1/_history/2, triage service 7), or cancel it with A036. ${WHY_A021}`,
      );
    });
  });
});

const unavailable = (reason: string, status: number, issue: string, diagnostics: string) => ({
  reason,
  status,
  issue,
  ersCode: 'SERVICE_UNAVAILABLE',
  ersDisplay: 'Service unavailable',
  diagnostics,
});

const LINK_HINT = "the link is A042's short-lived download link, which ers-bridge follows itself and never passes on";

describe('objectStoreFault', () => {
  it('link, with why: says why, never the link', () => {
    const e = objectStoreFault(new ObjectStoreError('link', { why: 'it has a user name in it', host: 'h.example' }));
    expectFault(
      e,
      unavailable(
        'OBJECT_STORE_LINK_REFUSED',
        502,
        'security',
        `APIM's A042 answered with a download link ers-bridge will not follow: it has a user name in it. ers-bridge operators: e-RS's object store is reached over https; check that apim.baseUrl is APIM (${LINK_HINT}).`,
      ),
    );
  });

  it('link, without why: not an https URL', () => {
    const e = objectStoreFault(new ObjectStoreError('link'));
    expect(e.diagnostics).toBe(
      `APIM's A042 answered with a download link ers-bridge will not follow: it is not an https URL. ers-bridge operators: e-RS's object store is reached over https; check that apim.baseUrl is APIM (${LINK_HINT}).`,
    );
  });

  it.each([
    ['with a host', { host: 'store.example', status: 403 }, ' (store.example)', 403],
    ['without a host', { status: 500 }, '', 500],
    ['with an empty host', { host: '', status: 404 }, '', 404],
  ])('status, %s', (_name, detail, at, status) => {
    const e = objectStoreFault(new ObjectStoreError('status', detail));
    expectFault(
      e,
      unavailable(
        'OBJECT_STORE_FAILED',
        502,
        'transient',
        `The e-RS object store${at} refused the download (HTTP ${status}); its links are short-lived and work once, and ers-bridge asks A042 for a new one on every call: try again.`,
      ),
    );
  });

  it.each([
    ['with a host', { host: 'store.example' }, ' (store.example)'],
    ['without a host', {}, ''],
  ])('timeout, %s', (_name, detail, at) => {
    const e = objectStoreFault(new ObjectStoreError('timeout', detail));
    expectFault(
      e,
      unavailable(
        'OBJECT_STORE_TIMEOUT',
        504,
        'timeout',
        `The e-RS object store${at} did not deliver the attachment in the time allowed; try again. ers-bridge operators: see apim.successors.attachments.timeouts.`,
      ),
    );
  });

  it.each([
    ['with a host', { host: 'store.example', code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, ' (store.example)'],
    ['without a host', { code: 'CERT_HAS_EXPIRED' }, ''],
  ])('tls-unverified, %s', (_name, detail, at) => {
    const e = objectStoreFault(new ObjectStoreError('tls-unverified', detail));
    expectFault(
      e,
      unavailable(
        'OBJECT_STORE_FAILED',
        502,
        'transient',
        `The TLS certificate of the e-RS object store${at} could not be verified (${detail.code}); ers-bridge never downloads from an unverified server. Check the CA configuration.`,
      ),
    );
  });

  it.each([
    ['host and code', { host: 'store.example', code: 'ECONNREFUSED' }, ' (store.example)', ' (ECONNREFUSED)'],
    ['code only', { code: 'ENOTFOUND' }, '', ' (ENOTFOUND)'],
    ['host only', { host: 'store.example' }, ' (store.example)', ''],
    ['neither', {}, '', ''],
    ['an empty code', { code: '' }, '', ''],
  ])('unreachable, %s', (_name, detail, at, code) => {
    const e = objectStoreFault(new ObjectStoreError('unreachable', detail));
    expectFault(
      e,
      unavailable(
        'OBJECT_STORE_FAILED',
        502,
        'transient',
        `The e-RS object store${at} could not be reached${code}; try again shortly. If it persists, check ers-bridge's network path to it.`,
      ),
    );
  });

  it('too-large: the file-size answer, with the size and limit given', () => {
    const e = objectStoreFault(new ObjectStoreError('too-large', { bytes: 6_000_000, limit: 5_242_880, host: 'h' }));
    expect(e).toStrictEqual(attachmentTooLarge(6_000_000, 5_242_880));
    expect(e.diagnostics).toBe(
      "The attachment is 6000000 bytes, larger than the 5242880 bytes A006 gives (5 MB), so it cannot be retrieved with this call. Download it in the e-RS web application, or with A042 (GET /ers-api/R4/v1/Binary/{id}); ers-bridge operators can raise apim.successors.attachments.maxBytes (up to 104857600, A042's 100 MB) for clients that handle larger files.",
    );
  });

  it('too-large without a size or limit: more than 0 bytes', () => {
    const e = objectStoreFault(new ObjectStoreError('too-large'));
    expect(e.reason).toBe('ATTACHMENT_TOO_LARGE');
    expect(e.diagnostics).toBe(
      "The attachment is more than 0 bytes, larger than the 0 bytes A006 gives, so it cannot be retrieved with this call. Download it in the e-RS web application, or with A042 (GET /ers-api/R4/v1/Binary/{id}); ers-bridge operators can raise apim.successors.attachments.maxBytes (up to 104857600, A042's 100 MB) for clients that handle larger files.",
    );
  });
});

describe('attachmentTooLarge', () => {
  const text = (size: string, limit: number, mb: string) =>
    `The attachment is ${size}, larger than the ${limit} bytes A006 gives${mb}, so it cannot be retrieved with this call. Download it in the e-RS web application, or with A042 (GET /ers-api/R4/v1/Binary/{id}); ers-bridge operators can raise apim.successors.attachments.maxBytes (up to 104857600, A042's 100 MB) for clients that handle larger files.`;

  it('a known size at A006 5 MB limit: FILE_SIZE_ERROR, 422, says (5 MB)', () => {
    expectFault(attachmentTooLarge(5_242_881, 5_242_880), {
      reason: 'ATTACHMENT_TOO_LARGE',
      status: 422,
      issue: 'too-costly',
      ersCode: 'FILE_SIZE_ERROR',
      ersDisplay: 'File size error',
      diagnostics: text('5242881 bytes', 5_242_880, ' (5 MB)'),
    });
  });

  it.each([
    [undefined, 5_242_880, 'more than 5242880 bytes', ' (5 MB)'],
    [undefined, 10_000_000, 'more than 10000000 bytes', ''],
    [0, 5_242_879, '0 bytes', ''],
    [20_000_000, 5_242_881, '20000000 bytes', ''],
    [200_000_000, 104_857_600, '200000000 bytes', ''],
  ])('bytes %o, limit %i', (bytes, limit, size, mb) => {
    expect(attachmentTooLarge(bytes, limit).diagnostics).toBe(text(size, limit, mb));
  });
});
