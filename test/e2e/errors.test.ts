/**
 * Every error path of the legacy surface gives a legacy-shaped answer (status + eRS-OperationOutcome-1 with
 * diagnostics saying what was wrong and what to do), and refused calls never reach APIM.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  APP_ASID,
  expectLegacyOutcome,
  fixtureBytes,
  type Harness,
  LIMITED_ASID,
  legacyCall,
  OTHER_ASID,
  openSession,
  startHarness,
} from '../helpers/harness.js';

const A005 = '/ers-api/STU3/v1/ReferralRequest/000000070000';
const SESSION_PATH = '/ers-api/v1/ProfessionalSession';
const A001_BODY = JSON.stringify({ typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession', token: 't' });

describe('legacy-shaped errors', () => {
  let h: Harness;
  let clock = Date.now();
  let key: string;

  beforeAll(async () => {
    h = await startHarness({ runtime: { now: () => clock } });
    key = await openSession(h);
  });
  afterAll(async () => {
    await h.close();
  });

  const call = (method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer) =>
    legacyCall(h, method, path, headers, body);
  const withSession = (extra: Record<string, string> = {}) => ({
    XAPI_ASID: APP_ASID,
    HTTP_X_SESSION_KEY: key,
    ...extra,
  });

  describe('endpoint identification', () => {
    it('unknown path → 404', async () => {
      expectLegacyOutcome(await call('GET', '/ers-api/STU3/v1/Nothing/here', withSession()), 404, 'UNKNOWN_ENDPOINT');
      expectLegacyOutcome(await call('GET', '/somewhere-else', withSession()), 404, 'UNKNOWN_ENDPOINT');
    });
    it('wrong method → 405 with Allow', async () => {
      const res = await call('DELETE', A005, withSession());
      expectLegacyOutcome(res, 405, 'METHOD_NOT_ALLOWED');
      expect(res.headers['allow']).toBe('GET');
    });
    it('DSTU2 data call → 410 naming the STU3 replacement', async () => {
      const issue = expectLegacyOutcome(
        await call('GET', '/ers-api/v1/ReferralRequest/000000070000', withSession()),
        410,
        'DSTU2_WITHDRAWN',
      );
      expect(issue.diagnostics).toContain('/ers-api/STU3/v1/ReferralRequest/{ubrn}');
    });
    it('bad path parameter → 400 saying what it must be', async () => {
      const issue = expectLegacyOutcome(
        await call('GET', '/ers-api/STU3/v1/ReferralRequest/12345', withSession()),
        400,
        'BAD_PATH_PARAMETER',
      );
      expect(issue.diagnostics).toContain('12-digit UBRN');
    });
    it('traversal attempts → 400 and nothing reaches APIM', async () => {
      const before = h.standIn.received.length;
      for (const p of [
        '/ers-api/STU3/v1/ReferralRequest/%2e%2e/%2e%2e/R4/PractitionerRole',
        '/ers-api/STU3/v1/ReferralRequest/000000070000%2f..%2f..',
        '/ers-api/STU3/v1/Binary/..%5cetc',
      ]) {
        const res = await call('GET', p, withSession());
        expect([400, 404]).toContain(res.status);
        expect(res.json().resourceType).toBe('OperationOutcome');
      }
      expect(h.standIn.received.length).toBe(before);
    });
  });

  describe('sessions', () => {
    it('A001 without XAPI_ASID → 403', async () => {
      expectLegacyOutcome(
        await call('POST', SESSION_PATH, { 'Content-Type': 'application/json' }, A001_BODY),
        403,
        'ASID_MISSING',
      );
    });
    it('A001 with an unknown ASID → 403', async () => {
      const issue = expectLegacyOutcome(
        await call('POST', SESSION_PATH, { XAPI_ASID: '123456789012', 'Content-Type': 'application/json' }, A001_BODY),
        403,
        'ASID_UNKNOWN',
      );
      expect(issue.diagnostics).toContain('123456789012');
    });
    it('A001 with invalid JSON, no token, wrong typeInfo → 422', async () => {
      const hdr = { XAPI_ASID: APP_ASID, 'Content-Type': 'application/json' };
      expectLegacyOutcome(await call('POST', SESSION_PATH, hdr, '{"token":'), 422, 'BODY_INVALID_JSON');
      expectLegacyOutcome(await call('POST', SESSION_PATH, hdr, '{"typeInfo":"x"}'), 422, 'BODY_INVALID_FIELD');
      expectLegacyOutcome(await call('POST', SESSION_PATH, hdr, '{}'), 422, 'BODY_MISSING_FIELD');
      expectLegacyOutcome(await call('POST', SESSION_PATH, hdr, '[1,2]'), 422, 'BODY_INVALID_JSON');
    });
    it('A001 with a huge body → 413; with a non-JSON content type → 415', async () => {
      const huge = JSON.stringify({ token: 'x'.repeat(200_000) });
      expectLegacyOutcome(
        await call('POST', SESSION_PATH, { XAPI_ASID: APP_ASID, 'Content-Type': 'application/json' }, huge),
        413,
        'BODY_TOO_LARGE',
      );
      expectLegacyOutcome(
        await call('POST', SESSION_PATH, { XAPI_ASID: APP_ASID, 'Content-Type': 'text/xml' }, '<x/>'),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
    });
    it('data call without HTTP_X_SESSION_KEY → 403', async () => {
      const issue = expectLegacyOutcome(await call('GET', A005, { XAPI_ASID: APP_ASID }), 403, 'SESSION_KEY_MISSING');
      expect(issue.diagnostics).toMatch(/A001/);
    });
    it('unknown session key → 403 telling the client to create a new session', async () => {
      const issue = expectLegacyOutcome(
        await call('GET', A005, {
          XAPI_ASID: APP_ASID,
          HTTP_X_SESSION_KEY: 'pro-api-session:00000000-0000-0000-0000-000000000000',
        }),
        403,
        'SESSION_UNKNOWN',
      );
      expect(issue.diagnostics).toMatch(/A001/);
    });
    it('session used with another ASID → 403, answered as an unknown session and logged as SESSION_ASID_MISMATCH', async () => {
      expectLegacyOutcome(
        await call('GET', A005, { XAPI_ASID: OTHER_ASID, HTTP_X_SESSION_KEY: key }),
        403,
        'SESSION_UNKNOWN',
      );
    });
    it('A002 with a permission not offered → 422 listing the offered ones', async () => {
      const a001 = await call(
        'POST',
        SESSION_PATH,
        { XAPI_ASID: APP_ASID, 'Content-Type': 'application/json' },
        A001_BODY,
      );
      const id = a001.json().id;
      const res = await call(
        'PUT',
        `${SESSION_PATH}/${id}`,
        { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: id, 'Content-Type': 'application/json' },
        JSON.stringify({ token: 't', permission: { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'R69' } }),
      );
      const issue = expectLegacyOutcome(res, 422, 'PERMISSION_NOT_OFFERED');
      expect(issue.diagnostics).toContain('SERVICE_PROVIDER_CLINICIAN at R69');
      expectLegacyOutcome(
        await call('PUT', `${SESSION_PATH}/${id}`, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: id }, '{"token":"t"}'),
        422,
        'BODY_MISSING_FIELD',
      );
    });
    it('A002 accepts the whole A001 answer with permission filled in (JOR style)', async () => {
      const a001 = await call(
        'POST',
        SESSION_PATH,
        { XAPI_ASID: APP_ASID, 'Content-Type': 'application/json' },
        A001_BODY,
      );
      const s = a001.json();
      const res = await call(
        'PUT',
        `${SESSION_PATH}/${s.id}`,
        { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: s.id, 'Content-Type': 'application/json' },
        JSON.stringify({ ...s, permission: { ...s.user.permissions[0] } }),
      );
      expect(res.status).toBe(200);
      expect(res.json().permission).toEqual(s.user.permissions[0]);
    });
    it('A002/A003 with different keys in the path and the header → 403', async () => {
      expectLegacyOutcome(
        await call('DELETE', `${SESSION_PATH}/pro-api-session:other`, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key }),
        403,
        'SESSION_KEY_PATH_MISMATCH',
      );
    });
    it('A003 of an unknown session → 403', async () => {
      expectLegacyOutcome(
        await call('DELETE', `${SESSION_PATH}/pro-api-session:nope`, { XAPI_ASID: APP_ASID }),
        403,
        'SESSION_UNKNOWN',
      );
    });
    it('an idle session expires; the next call gets 403', async () => {
      const k = await openSession(h);
      clock += 3_601_000; // idle timeout 3600 s
      expectLegacyOutcome(
        await call('GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: k }),
        403,
        'SESSION_UNKNOWN',
      );
      key = await openSession(h); // the shared session expired too
    });
    it('a busy session still ends at its absolute lifetime', async () => {
      const k = await openSession(h);
      for (let i = 0; i < 13; i++) {
        clock += 3_500_000; // always inside the idle timeout
        const res = await call('GET', '/ers-api/STU3/v1/CodeSystem/SPECIALTY', {
          XAPI_ASID: APP_ASID,
          HTTP_X_SESSION_KEY: k,
        });
        if (i < 12) expect(res.status, `call ${i}: ${res.body.toString()}`).toBe(200);
        else expectLegacyOutcome(res, 403, 'SESSION_UNKNOWN'); // 13 × 3500 s > 43 200 s
      }
      key = await openSession(h);
    });
  });

  describe('policy (refused locally, nothing sent to APIM)', () => {
    it('an operation APIM does not allow application-restricted → 403', async () => {
      const before = h.standIn.received.length;
      const issue = expectLegacyOutcome(
        await call(
          'POST',
          '/ers-api/STU3/v1/ReferralRequest/$ers.createReferral',
          withSession({ 'Content-Type': 'application/fhir+json' }),
          fixtureBytes('stu3/createReferral/requests/MinimalRequest.json'),
        ),
        403,
        'ENDPOINT_NOT_APP_RESTRICTED',
      );
      expect(issue.diagnostics).toContain('A011');
      expect(h.standIn.received.length).toBe(before);
    });
    it("an operation outside the ASID's allow-list → 403", async () => {
      const k = await openSession(h, LIMITED_ASID);
      const before = h.standIn.received.length;
      expect((await call('GET', A005, { XAPI_ASID: LIMITED_ASID, HTTP_X_SESSION_KEY: k })).status).toBe(200);
      const issue = expectLegacyOutcome(
        await call('POST', '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.generateCRI', {
          XAPI_ASID: LIMITED_ASID,
          HTTP_X_SESSION_KEY: k,
        }),
        403,
        'ENDPOINT_NOT_ALLOWED_FOR_ASID',
      );
      expect(issue.diagnostics).toContain('A004, A005');
      expect(h.standIn.received.length).toBe(before + 1);
    });
  });

  describe('request translation', () => {
    it('A013 without If-Match → 422; with a malformed one → 400', async () => {
      const path = '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.acceptReferral';
      expectLegacyOutcome(await call('POST', path, withSession()), 422, 'MISSING_HEADER');
      expectLegacyOutcome(await call('POST', path, withSession({ 'If-Match': '5' })), 400, 'BAD_HEADER');
    });
    it('A008 with a non-FHIR content type → 415; with a body over the limit → 413', async () => {
      const path = '/ers-api/STU3/v1/ReferralRequest/$ers.fetchworklist';
      expectLegacyOutcome(
        await call('POST', path, withSession({ 'Content-Type': 'text/plain' }), '{}'),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
      const big = Buffer.alloc(h.runtime.rules.server.maxRequestBodyBytes + 10, 0x20);
      expectLegacyOutcome(
        await call('POST', path, withSession({ 'Content-Type': 'application/fhir+json' }), big),
        413,
        'BODY_TOO_LARGE',
      );
    });
    it('a malformed X-Correlation-ID → 400', async () => {
      expectLegacyOutcome(
        await call('GET', A005, withSession({ 'X-Correlation-ID': 'has spaces in it' })),
        400,
        'BAD_HEADER',
      );
    });
    it('Expect: 100-continue is honoured and never forwarded', async () => {
      const body = fixtureBytes('stu3/retrieveWorklist/requests/MinimalReferralsForReview.json');
      const url = new URL(`${h.bridgeUrl}/ers-api/STU3/v1/ReferralRequest/$ers.fetchworklist`);
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          url,
          {
            method: 'POST',
            headers: {
              ...withSession(),
              'Content-Type': 'application/fhir+json',
              'Content-Length': String(body.length),
              Expect: '100-continue',
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('continue', () => req.end(body));
        req.on('error', reject);
      });
      expect(status).toBe(200);
      const r = h.standIn.received.at(-1)!;
      expect(r.headers['expect']).toBeUndefined();
    });
  });

  describe('upstream failures', () => {
    it('APIM unreachable → 502 with diagnostics', async () => {
      const saved = h.holder.current;
      const { buildRuntime } = await import('../../src/runtime/runtime.js');
      const { secretResolver } = await import('../../src/rules/secrets.js');
      const rules = structuredClone(saved.rules);
      rules.apim.baseUrl = 'http://127.0.0.1:9/referrals/FHIR'; // discard port: nothing listens
      h.holder.current = await buildRuntime('test.yaml', rules, {
        resolveSecret: secretResolver({ TEST_API_KEY: h.secrets.apiKey, TEST_PRIVATE_KEY: h.secrets.privateKeyPem }),
        store: saved.shared.store,
        now: () => clock,
      });
      try {
        const issue = expectLegacyOutcome(await call('GET', A005, withSession()), 502, 'UPSTREAM_UNREACHABLE');
        expect(issue.diagnostics).toMatch(/ECONNREFUSED/);
      } finally {
        await h.holder.current.upstream.close();
        h.holder.current = saved;
      }
    });
    it('no answer carries a stack trace or a secret', async () => {
      const res = await call('GET', '/ers-api/STU3/v1/ReferralRequest/999999999999', withSession());
      expect(res.status).toBeGreaterThanOrEqual(400);
      const text = res.body.toString('utf8');
      expect(text).not.toMatch(/at .+\.(ts|js):\d+/);
      expect(text).not.toContain(h.secrets.apiKey);
    });
  });
});
