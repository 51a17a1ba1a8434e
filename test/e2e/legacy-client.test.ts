/**
 * End to end: a legacy client drives A001 → A002 → A004, A005, A008, A007, A013 → A003 through ers-bridge against
 * the APIM stand-in, exactly as it did against the HSCN API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  APP_ASID,
  expectLegacyOutcome,
  fixtureBytes,
  type Harness,
  legacyCall,
  legacyFixture,
  startHarness,
} from '../helpers/harness.js';

/** Headers ers-bridge may send to APIM; anything else reaching the stand-in is a leak. */
const ALLOWED_AT_APIM = new Set([
  'host',
  'connection',
  'authorization',
  'accept',
  'x-correlation-id',
  'content-type',
  'content-length',
  'transfer-encoding',
  'if-match',
  'user-agent',
  'accept-language',
  'if-none-match',
]);

const LEGACY_HEADERS = {
  XAPI_ASID: APP_ASID,
  XAPI_FQDN: 'legacy-client.example.nhs.uk',
  Accept: 'application/fhir+json',
  // What a careless or hostile client might add; none of it may reach APIM.
  Authorization: 'Bearer client-supplied-token',
  'NHSD-End-User-Organisation-ODS': 'XXX',
  NHSD_eRS_Business_Function: 'REFERRING_CLINICIAN',
  'x-ers-user-id': '555555555555',
  x_ers_ods_code: 'YYY',
  Cookie: 'session=abc',
};

describe('legacy client end to end (application-restricted)', () => {
  let h: Harness;
  let sessionKey: string;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  function lastAtApim() {
    const r = h.standIn.received.at(-1);
    if (!r) throw new Error('nothing reached the stand-in');
    return r;
  }

  function assertHeadersAtApim(expectedExtra: string[] = []) {
    const r = lastAtApim();
    const names = r.rawHeaders.map(([n]) => n.toLowerCase());
    for (const n of names) expect(ALLOWED_AT_APIM.has(n), `header ${n} must not reach APIM`).toBe(true);
    // Exactly these, no more: what undici adds (host, connection; content-length on POST) and what ers-bridge sets.
    const expected = ['host', 'connection', 'accept', 'authorization', 'x-correlation-id', ...expectedExtra];
    if (r.method === 'POST' && !expected.includes('content-length')) expected.push('content-length');
    expect([...names].sort()).toEqual([...new Set(expected)].sort());
    // The stand-in-issued token, not the client's.
    expect(r.headers['authorization']).not.toBe('Bearer client-supplied-token');
    expect(String(r.headers['authorization'])).toMatch(/^Bearer [A-Za-z0-9_-]{20,}$/);
    for (const leaked of ['xapi_asid', 'http_x_session_key', 'xapi_fqdn', 'cookie', 'nhsd-end-user-organisation-ods']) {
      expect(names).not.toContain(leaked);
    }
    return r;
  }

  it('A001 creates a session in the legacy shape', async () => {
    const res = await legacyCall(
      h,
      'POST',
      '/ers-api/v1/ProfessionalSession',
      { XAPI_ASID: APP_ASID, 'Content-Type': 'application/json', Accept: 'application/json' },
      JSON.stringify({
        typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession',
        token: 'AQIC5wM2LY4Sfcyw@AAJTSQACMDE=#',
      }),
    );
    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = res.json();
    expect(body).toEqual({
      typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession',
      id: expect.stringMatching(/^pro-api-session:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
      token: 'AQIC5wM2LY4Sfcyw@AAJTSQACMDE=#',
      user: {
        identifier: expect.stringMatching(/^\d{12}$/),
        firstName: expect.any(String),
        lastName: expect.any(String),
        middleName: null,
        permissions: [
          { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69', orgName: 'TEST NHS TRUST' },
        ],
      },
      permission: null,
    });
    sessionKey = body.id;
    expect(h.standIn.received).toHaveLength(0); // sessions never touch APIM
  });

  it('a data call before A002 is refused: no role selected', async () => {
    const res = await legacyCall(h, 'GET', '/ers-api/STU3/v1/ReferralRequest/000000070000', {
      XAPI_ASID: APP_ASID,
      HTTP_X_SESSION_KEY: sessionKey,
    });
    const issue = expectLegacyOutcome(res, 403, 'SESSION_ROLE_NOT_SELECTED');
    expect(issue.diagnostics).toMatch(/A002/);
  });

  it('A002 selects the offered role (token+typeInfo+permission variant)', async () => {
    const res = await legacyCall(
      h,
      'PUT',
      `/ers-api/v1/ProfessionalSession/${sessionKey}`,
      { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: sessionKey, 'Content-Type': 'application/json' },
      // The published A002 example; orgName omitted as WMS does.
      JSON.stringify({
        typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession',
        token: 'AQIC5wM2LY4Sfcyw@AAJTSQACMDE=#',
        permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' },
      }),
    );
    expect(res.status).toBe(200);
    const body = res.json();
    expect(body.id).toBe(sessionKey);
    expect(body.permission).toEqual({
      businessFunction: 'SERVICE_PROVIDER_CLINICIAN',
      orgIdentifier: 'R69',
      orgName: 'TEST NHS TRUST',
    });
  });

  it('A004 returns the SPECIALTY code system with links pointing back at ers-bridge', async () => {
    const res = await legacyCall(h, 'GET', '/ers-api/STU3/v1/CodeSystem/SPECIALTY', {
      ...LEGACY_HEADERS,
      HTTP_X_SESSION_KEY: sessionKey,
    });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual(legacyFixture('stu3/getCodeSystem/responses/SpecialtyCodeSystem.json', h.legacyBase));
    expect(res.headers['x_ers_transaction_id']).toMatch(/^[0-9a-f-]{36}-1$/);
    expect(res.headers['x-request-id']).toBeUndefined();
    const r = assertHeadersAtApim();
    expect(r.url).toBe('/referrals/FHIR/STU3/CodeSystem/SPECIALTY');
  });

  it('A005 returns the referral unchanged, with ETag and transaction id; correlation id is echoed', async () => {
    const res = await legacyCall(h, 'GET', '/ers-api/STU3/v1/ReferralRequest/000000070000', {
      ...LEGACY_HEADERS,
      HTTP_X_SESSION_KEY: sessionKey,
      'X-Correlation-ID': 'corr-legacy-1',
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
    expect(res.json()).toEqual(legacyFixture('stu3/retrieveReferralRequest/responses/Unbooked.json', h.legacyBase));
    expect(res.headers['etag']).toBe('W/"5"');
    expect(res.headers['x-correlation-id']).toBe('corr-legacy-1');
    const r = assertHeadersAtApim();
    expect(r.url).toBe('/referrals/FHIR/STU3/ReferralRequest/000000070000');
    expect(r.headers['x-correlation-id']).toBe('corr-legacy-1');
    expect(r.headers['accept']).toBe('application/fhir+json');
    expect(res.headers['x_ers_transaction_id']).toBeDefined();
  });

  it('A008 posts the worklist request and returns the List', async () => {
    const request = fixtureBytes('stu3/retrieveWorklist/requests/MinimalReferralsForReview.json');
    const res = await legacyCall(
      h,
      'POST',
      '/ers-api/STU3/v1/ReferralRequest/$ers.fetchworklist',
      { ...LEGACY_HEADERS, HTTP_X_SESSION_KEY: sessionKey, 'Content-Type': 'application/fhir+json' },
      request,
    );
    expect(res.status).toBe(200);
    expect(res.json()).toEqual(legacyFixture('stu3/retrieveWorklist/responses/ReferralsForReview.json', h.legacyBase));
    const r = assertHeadersAtApim(['content-type', 'content-length']);
    expect(r.url).toBe('/referrals/FHIR/STU3/ReferralRequest/$ers.fetchworklist');
    expect(r.headers['content-type']).toBe('application/fhir+json');
    expect(JSON.parse(r.body.toString('utf8'))).toEqual(JSON.parse(request.toString('utf8')));
  });

  it('A007 streams the clinical information PDF byte for byte', async () => {
    const res = await legacyCall(h, 'POST', '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.generateCRI', {
      ...LEGACY_HEADERS,
      Accept: 'application/pdf',
      HTTP_X_SESSION_KEY: sessionKey,
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/pdf');
    expect(String(res.headers['content-disposition'])).toMatch(/^attachment; filename=/);
    const pdf = fixtureBytes(
      'stu3/retrieveClinicalInformation/responses/000000070000_Clinical_Information_Summary_20210706114852.pdf',
    );
    expect(res.body.equals(pdf)).toBe(true);
    expect(Number(res.headers['content-length'])).toBe(pdf.length);
    const r = assertHeadersAtApim();
    expect(r.url).toBe('/referrals/FHIR/STU3/ReferralRequest/000000070000/$ers.generateCRI');
  });

  it('A013 passes If-Match and returns the accepted referral with its new ETag', async () => {
    const res = await legacyCall(h, 'POST', '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.acceptReferral', {
      ...LEGACY_HEADERS,
      HTTP_X_SESSION_KEY: sessionKey,
      'If-Match': 'W/"5"',
    });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual(legacyFixture('stu3/acceptReferral/responses/ExampleResponse.json', h.legacyBase));
    expect(res.headers['etag']).toMatch(/^W\/"\d+"$/);
    const r = assertHeadersAtApim(['if-match']);
    expect(r.headers['if-match']).toBe('W/"5"');
  });

  it('A003 deletes the session; the key is then refused', async () => {
    const res = await legacyCall(h, 'DELETE', `/ers-api/v1/ProfessionalSession/${sessionKey}`, {
      XAPI_ASID: APP_ASID,
      HTTP_X_SESSION_KEY: sessionKey,
    });
    expect(res.status).toBe(204);
    expect(res.body.length).toBe(0);
    const after = await legacyCall(h, 'GET', '/ers-api/STU3/v1/ReferralRequest/000000070000', {
      XAPI_ASID: APP_ASID,
      HTTP_X_SESSION_KEY: sessionKey,
    });
    expectLegacyOutcome(after, 403, 'SESSION_UNKNOWN');
  });

  it('exactly one token was fetched for the whole journey', () => {
    expect(h.standIn.tokenRequests).toHaveLength(1);
  });

  it('the log has one line per call and no secret, token or raw session key', () => {
    const calls = h.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'legacy call');
    expect(calls.map((c) => c.aCode)).toEqual(
      expect.arrayContaining(['A001', 'A002', 'A004', 'A005', 'A008', 'A007', 'A013', 'A003']),
    );
    const all = h.logs.join('\n');
    expect(all).not.toContain(sessionKey);
    expect(all).not.toContain(h.secrets.apiKey);
    expect(all).not.toContain('000000070000');
    for (const t of h.standIn.tokenRequests) {
      expect(all).not.toContain(t.body.toString('utf8').slice(0, 40));
    }
  });
});
