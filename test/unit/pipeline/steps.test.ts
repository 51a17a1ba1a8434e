import { describe, expect, it } from 'vitest';
import { LegacyError } from '../../../src/legacy/errors.js';
import type { Identified } from '../../../src/legacy/identify.js';
import {
  apimAccessProblem,
  loadSession,
  messageSetProblem,
  refusalOf,
  refuse,
  requireCaller,
  roleOf,
} from '../../../src/pipeline/steps.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { appAsid, appSession, endpoint, legacyRejection, memoryStore, thrownBy, userSession } from './fakes.js';

describe('refusalOf', () => {
  const cases: Array<[Identified, string, number]> = [
    [{ kind: 'not-found', path: '/ers-api/nope' }, 'UNKNOWN_ENDPOINT', 404],
    [{ kind: 'not-legacy' }, 'UNKNOWN_ENDPOINT', 404],
    [{ kind: 'method-not-allowed', allow: ['PUT', 'DELETE'], codes: ['A002', 'A003'] }, 'METHOD_NOT_ALLOWED', 405],
    [{ kind: 'bad-param', code: 'A005', param: 'ubrn', expected: 'a 12-digit UBRN' }, 'BAD_PATH_PARAMETER', 400],
    [{ kind: 'bad-path', reason: 'it has a NUL byte' }, 'BAD_PATH', 400],
    [{ kind: 'dstu2', resource: 'ReferralRequest', replacement: 'A005' }, 'DSTU2_WITHDRAWN', 410],
  ];

  it.each(cases)('%o → %s %i', (id, reason, status) => {
    const e = refusalOf(id)!;
    expect(e).toBeInstanceOf(LegacyError);
    expect(e.reason).toBe(reason);
    expect(e.status).toBe(status);
  });

  it('method-not-allowed names the codes and methods, and sets Allow', () => {
    const e = refusalOf({ kind: 'method-not-allowed', allow: ['PUT', 'DELETE'], codes: ['A002', 'A003'] })!;
    expect(e.headers).toEqual({ allow: 'PUT, DELETE' });
    expect(e.diagnostics).toContain('(A002, A003) takes PUT or DELETE');
  });

  it('bad-param, bad-path and dstu2 say what was wrong', () => {
    expect(
      refusalOf({ kind: 'bad-param', code: 'A005', param: 'ubrn', expected: 'a 12-digit UBRN' })!.diagnostics,
    ).toBe('A005: the {ubrn} part of the path must be a 12-digit UBRN.');
    expect(refusalOf({ kind: 'bad-path', reason: 'it has a NUL byte' })!.diagnostics).toContain('it has a NUL byte');
    const d = refusalOf({ kind: 'dstu2', resource: 'ReferralRequest', replacement: 'use A005' })!.diagnostics;
    expect(d).toContain('/ers-api/v1/ReferralRequest');
    expect(d).toContain('use A005');
  });

  it('an endpoint or a session operation is not refused', () => {
    const ep = endpoint('A005');
    expect(refusalOf({ kind: 'endpoint', endpoint: ep, params: { ubrn: '000000070000' }, query: '' })).toBeUndefined();
    expect(refusalOf({ kind: 'session', op: 'A001' })).toBeUndefined();
  });
});

describe('requireCaller', () => {
  const callers = new Map([
    ['200000000001', { name: 'app' }],
    ['abc', { name: 'not digits' }],
  ]);

  it('finds the configured caller by XAPI_ASID (either spelling)', () => {
    expect(requireCaller(callers, 'int', { xapi_asid: '200000000001' })).toEqual({ name: 'app' });
    expect(requireCaller(callers, 'int', { 'xapi-asid': ' 200000000001 ' })).toEqual({ name: 'app' });
  });

  it('missing or empty → ASID_MISSING 403', () => {
    for (const headers of [{}, { xapi_asid: '' }]) {
      const e = thrownBy(() => requireCaller(callers, 'int', headers));
      expect(e.reason).toBe('ASID_MISSING');
      expect(e.status).toBe(403);
    }
  });

  it('an unknown ASID → ASID_UNKNOWN naming the ASID and the environment', () => {
    const e = thrownBy(() => requireCaller(callers, 'int', { xapi_asid: '999' }));
    expect(e.reason).toBe('ASID_UNKNOWN');
    expect(e.status).toBe(403);
    expect(e.diagnostics).toContain('ASID 999 is not configured');
    expect(e.diagnostics).toContain('for environment int.');
  });

  it('non-digits are never looked up, nor echoed', () => {
    const e = thrownBy(() => requireCaller(callers, 'live', { xapi_asid: 'abc' }));
    expect(e.reason).toBe('ASID_UNKNOWN');
    expect(e.diagnostics).toContain('ASID (not digits) is not configured');
    expect(e.diagnostics).not.toContain('abc');
    expect(e.diagnostics).toContain('environment live');
  });

  it('more than 20 digits is treated as not digits', () => {
    const long = '1'.repeat(21);
    const e = thrownBy(() => requireCaller(new Map([[long, {}]]), 'int', { xapi_asid: long }));
    expect(e.diagnostics).toContain('(not digits)');
  });
});

describe('loadSession', () => {
  const clock = new ManualClock(1_700_000_000_000);
  const KEY = 'pro-api-session:11111111-2222-3333-4444-555555555555';
  const lookup = { asid: '200000000001', requireRole: true, userRestricted: false };

  async function storeWith(session = appSession(clock.now())) {
    const store = memoryStore(clock);
    await store.create(KEY, session);
    return store;
  }

  it('returns the session named by HTTP_X_SESSION_KEY', async () => {
    const session = appSession(clock.now());
    const got = await loadSession(await storeWith(session), { http_x_session_key: KEY }, lookup);
    expect(got).toEqual({ key: KEY, session });
  });

  it('takes the key from the path when the header is absent', async () => {
    const got = await loadSession(await storeWith(), {}, { ...lookup, keyFromPath: KEY });
    expect(got.key).toBe(KEY);
  });

  it('missing or empty key → SESSION_KEY_MISSING 403 with the A001 advice', async () => {
    for (const headers of [{}, { http_x_session_key: '' }]) {
      const e = await legacyRejection(loadSession(await storeWith(), headers, lookup));
      expect(e.reason).toBe('SESSION_KEY_MISSING');
      expect(e.status).toBe(403);
      expect(e.diagnostics).toContain('Create a new session with A001');
    }
  });

  it('the path and header naming different sessions → SESSION_KEY_PATH_MISMATCH', async () => {
    const e = await legacyRejection(
      loadSession(await storeWith(), { http_x_session_key: `${KEY}x` }, { ...lookup, keyFromPath: KEY }),
    );
    expect(e.reason).toBe('SESSION_KEY_PATH_MISMATCH');
  });

  it('the same key in path and header is accepted', async () => {
    const got = await loadSession(await storeWith(), { http_x_session_key: KEY }, { ...lookup, keyFromPath: KEY });
    expect(got.key).toBe(KEY);
  });

  it('an unknown key → SESSION_UNKNOWN, with the A001 advice for application-restricted callers', async () => {
    const e = await legacyRejection(
      loadSession(await storeWith(), { http_x_session_key: 'pro-api-session:x' }, lookup),
    );
    expect(e.reason).toBe('SESSION_UNKNOWN');
    expect(e.status).toBe(403);
    expect(e.diagnostics).toContain('Create a new session with A001 (POST /ers-api/v1/ProfessionalSession)');
    expect(e.diagnostics).not.toContain('CIS2');
  });

  it('an unknown key for a user-restricted caller → the CIS2 sign-in advice', async () => {
    const e = await legacyRejection(
      loadSession(await storeWith(), { http_x_session_key: 'nope' }, { ...lookup, userRestricted: true }),
    );
    expect(e.reason).toBe('SESSION_UNKNOWN');
    expect(e.diagnostics).toContain('Sign in to CIS2 again');
  });

  it('an expired session is unknown', async () => {
    const store = await storeWith(appSession(clock.now(), { expiresAt: clock.now() + 1000 }));
    await clock.advance(1000);
    const e = await legacyRejection(loadSession(store, { http_x_session_key: KEY }, lookup));
    expect(e.reason).toBe('SESSION_UNKNOWN');
  });

  it("another ASID's session → answered as SESSION_UNKNOWN, logged as SESSION_ASID_MISMATCH", async () => {
    const e = await legacyRejection(
      loadSession(await storeWith(), { http_x_session_key: KEY }, { ...lookup, asid: '200000000009' }),
    );
    const unknown = await legacyRejection(loadSession(await storeWith(), { http_x_session_key: 'nope' }, lookup));
    expect(e.reason).toBe('SESSION_UNKNOWN');
    expect(e.logAs).toBe('SESSION_ASID_MISMATCH');
    expect(e.status).toBe(403);
    expect(e.diagnostics).toBe(unknown.diagnostics);
    expect(unknown.logAs).toBe('SESSION_UNKNOWN');
  });

  it('no role selected → SESSION_ROLE_NOT_SELECTED when a role is required, accepted when not', async () => {
    const store = await storeWith(appSession(clock.now(), { permission: null }));
    const e = await legacyRejection(loadSession(store, { http_x_session_key: KEY }, lookup));
    expect(e.reason).toBe('SESSION_ROLE_NOT_SELECTED');
    expect(e.diagnostics).toContain('A002');
    const got = await loadSession(store, { http_x_session_key: KEY }, { ...lookup, requireRole: false });
    expect(got.session.permission).toBeNull();
  });
});

describe('messageSetProblem', () => {
  const ep = endpoint('A010');

  it('no allowedCodes: every operation', () => {
    expect(messageSetProblem(ep, '200000000001', appAsid())).toBeUndefined();
  });

  it('an operation among the allowed codes is accepted', () => {
    expect(messageSetProblem(ep, '200000000001', appAsid({ allowedCodes: ['A005', 'A010'] }))).toBeUndefined();
  });

  it('one outside them → ENDPOINT_NOT_ALLOWED_FOR_ASID 403 naming the operation, ASID and allowed list', () => {
    const e = messageSetProblem(ep, '200000000001', appAsid({ allowedCodes: ['A005', 'A006'] }))!;
    expect(e.reason).toBe('ENDPOINT_NOT_ALLOWED_FOR_ASID');
    expect(e.status).toBe(403);
    expect(e.diagnostics).toContain(`A010 (${ep.name})`);
    expect(e.diagnostics).toContain('ASID 200000000001 may use (A005, A006)');
  });
});

describe('apimAccessProblem', () => {
  const userRole = (businessFunction: string | undefined) => ({
    accessMode: 'user-restricted' as const,
    businessFunction,
  });

  it('application-restricted on an operation APIM allows only for users → ENDPOINT_NOT_APP_RESTRICTED', () => {
    const ep = endpoint('A010');
    expect(ep.appRestricted).toBe(false);
    const e = apimAccessProblem(ep, '200000000001', {
      accessMode: 'application-restricted',
      businessFunction: 'REFERRING_CLINICIAN',
    })!;
    expect(e.reason).toBe('ENDPOINT_NOT_APP_RESTRICTED');
    expect(e.status).toBe(403);
    expect(e.diagnostics).toContain('ASID 200000000001 is application-restricted');
  });

  it('application-restricted on an app-restricted operation is allowed (business function not checked)', () => {
    const ep = endpoint('A005');
    expect(
      apimAccessProblem(ep, '1', { accessMode: 'application-restricted', businessFunction: 'COMMISSIONER' }),
    ).toBeUndefined();
  });

  it('user-restricted with an allowed business function is allowed, on any operation', () => {
    expect(apimAccessProblem(endpoint('A010'), '1', userRole('REFERRING_CLINICIAN'))).toBeUndefined();
  });

  it('user-restricted with a business function the operation does not take → BUSINESS_FUNCTION_NOT_ALLOWED', () => {
    const ep = endpoint('A010');
    const e = apimAccessProblem(ep, '1', userRole('SERVICE_PROVIDER_CLINICIAN'))!;
    expect(e.reason).toBe('BUSINESS_FUNCTION_NOT_ALLOWED');
    expect(e.status).toBe(403);
    expect(e.diagnostics).toContain('business function SERVICE_PROVIDER_CLINICIAN');
    expect(e.diagnostics).toContain('it takes REFERRING_CLINICIAN, REFERRING_CLINICIAN_ADMIN');
  });

  it('no business function selected, or an operation open to all business functions → no problem', () => {
    expect(apimAccessProblem(endpoint('A010'), '1', userRole(undefined))).toBeUndefined();
    const a030 = endpoint('A030');
    expect(a030.businessFunctions).toEqual([]);
    expect(apimAccessProblem(a030, '1', userRole('COMMISSIONER'))).toBeUndefined();
  });
});

describe('roleOf', () => {
  it('the access mode and the selected business function', () => {
    expect(roleOf(userSession())).toEqual({
      accessMode: 'user-restricted',
      businessFunction: 'SERVICE_PROVIDER_CLINICIAN',
    });
    expect(roleOf(appSession(0, { permission: null }))).toEqual({
      accessMode: 'application-restricted',
      businessFunction: undefined,
    });
  });
});

describe('refuse', () => {
  it('throws the problem, or nothing', () => {
    const problem = new LegacyError('BAD_PATH', 'x');
    expect(() => refuse(problem)).toThrow(problem);
    expect(() => refuse(undefined)).not.toThrow();
  });
});
