/**
 * User-restricted sessions without a browser: A001 with a raw CIS2 ID token (and the ID tokens APIM would refuse),
 * the token lifecycle (renewal before expiry, single flight, never resending a spent refresh token, the end of
 * the refresh window), APIM 401 → one renewal and one retry, the business-function policy and on-behalf-of.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { expectLegacyOutcome, legacyCall, legacyFixture } from '../helpers/harness.js';
import {
  AAL1_USER,
  CLINICIAN,
  IAL2_USER,
  startUserHarness,
  USER_ASID,
  type UserHarness,
} from '../helpers/user-harness.js';

const SESSION_PATH = '/ers-api/v1/ProfessionalSession';
const A005 = '/ers-api/STU3/v1/ReferralRequest/000000070000';
const A001 = (token: string) =>
  JSON.stringify({ typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession', token });
const CLAIMS = (sub: string, ial = 3, aal = 3) => ({
  sub,
  given_name: 'Alex',
  family_name: 'Example',
  id_assurance_level: ial,
  authentication_assurance_level: aal,
});

let h: UserHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function a001(harness: UserHarness, token: string) {
  return legacyCall(
    harness,
    'POST',
    SESSION_PATH,
    { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
    A001(token),
  );
}

/** The A001 token (the CIS2 ID token) of the last userSession: sessions do not keep it in translate mode. */
let lastA001Token = '';

/** A user session with a role selected; returns its key. */
async function userSession(
  harness: UserHarness,
  permission = { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' },
  extra: Record<string, unknown> = {},
): Promise<string> {
  lastA001Token = await harness.cis2.mintIdToken(CLAIMS(CLINICIAN));
  const res = await a001(harness, lastA001Token);
  if (res.status !== 201) throw new Error(`A001: ${res.status} ${res.body.toString()}`);
  const key = res.json().id as string;
  const a002 = await legacyCall(
    harness,
    'PUT',
    `${SESSION_PATH}/${key}`,
    { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/json' },
    JSON.stringify({ token: 't', permission, ...extra }),
  );
  if (a002.status !== 200) throw new Error(`A002: ${a002.status} ${a002.body.toString()}`);
  return key;
}

function grants(harness: UserHarness, grantType: string): URLSearchParams[] {
  return harness.standIn.tokenRequests
    .map((r) => new URLSearchParams(r.body.toString('utf8')))
    .filter((f) => f.get('grant_type') === grantType);
}

describe('A001 with a raw CIS2 ID token', () => {
  it('is exchanged at APIM and the user gets their e-RS permissions', async () => {
    h = await startUserHarness();
    const res = await a001(h, await h.cis2.mintIdToken(CLAIMS(CLINICIAN)));
    expect(res.status).toBe(201);
    expect(res.json().user).toMatchObject({ identifier: CLINICIAN, firstName: 'Alex', lastName: 'Example' });
    expect(res.json().user.permissions).toHaveLength(3);
    expect(grants(h, 'urn:ietf:params:oauth:grant-type:token-exchange')).toHaveLength(1);
  });

  it.each([
    [
      'an expired ID token',
      'ID_TOKEN_EXPIRED',
      403,
      async (x: UserHarness) => x.cis2.mintIdToken(CLAIMS(CLINICIAN), { expiresInSeconds: -120 }),
    ],
    [
      'a foreign issuer',
      'ID_TOKEN_WRONG_ISSUER',
      403,
      async (x: UserHarness) =>
        x.cis2.mintIdToken(CLAIMS(CLINICIAN), { issuer: 'https://other-cis2.example/realms/Healthcare' }),
    ],
    ['IAL2', 'ASSURANCE_TOO_LOW', 403, async (x: UserHarness) => x.cis2.mintIdToken(CLAIMS(IAL2_USER, 2, 3))],
    ['AAL1', 'ASSURANCE_TOO_LOW', 403, async (x: UserHarness) => x.cis2.mintIdToken(CLAIMS(AAL1_USER, 3, 1))],
    [
      'a token that is not a JWT or a code',
      'USER_TOKEN_NOT_RECOGNISED',
      422,
      async () => 'AQIC5wM2LY4Sfcyw@AAJTSQACMDE=#',
    ],
    [
      'a JWT signed by someone else',
      'ID_TOKEN_INVALID',
      422,
      async (x: UserHarness) => {
        const t = await x.cis2.mintIdToken(CLAIMS(CLINICIAN));
        const [head, body] = t.split('.');
        return `${head}.${body}.${Buffer.from('forged signature').toString('base64url')}`;
      },
    ],
  ])('refuses %s before asking APIM', async (_what, reason, status, make) => {
    h = await startUserHarness();
    const res = await a001(h, await make(h));
    const issue = expectLegacyOutcome(res, status, reason);
    expect(issue.diagnostics.length).toBeGreaterThan(30);
    expect(h.standIn.tokenRequests).toHaveLength(0);
  });
});

describe('user token lifecycle', () => {
  it('concurrent calls around expiry cause exactly one refresh, and a spent refresh token is never resent', async () => {
    let clock = Date.now();
    h = await startUserHarness({ now: () => clock });
    const key = await userSession(h);
    const call = () => legacyCall(h!, 'GET', A005, { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key });
    expect((await call()).status).toBe(200);
    expect(grants(h, 'refresh_token')).toHaveLength(0);

    for (let round = 1; round <= 3; round++) {
      clock += 580_000; // inside the 30 s renewal margin of the 599 s token
      const results = await Promise.all(Array.from({ length: 25 }, call));
      expect(results.map((r) => r.status)).toEqual(Array(25).fill(200));
      expect(grants(h, 'refresh_token')).toHaveLength(round);
    }
    const sent = grants(h, 'refresh_token').map((f) => f.get('refresh_token'));
    expect(new Set(sent).size).toBe(sent.length);
    for (const f of grants(h, 'refresh_token')) expect(f.get('client_secret')).toBeTruthy(); // client_secret_post
  });

  it('a session whose stored refresh token was already spent is ended, not replayed', async () => {
    let clock = Date.now();
    h = await startUserHarness({ now: () => clock });
    const key = await userSession(h);
    const call = () => legacyCall(h!, 'GET', A005, { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key });
    const spent = (await h.runtime.shared.store.get(key))!.apim!.refreshToken;
    clock += 580_000;
    expect((await call()).status).toBe(200); // refresh #1 spends `spent`
    // Put the spent token back, as a stale copy of the session might: ers-bridge must not send it again.
    const s = (await h.runtime.shared.store.get(key))!;
    await h.runtime.shared.store.update(key, { ...s, apim: { ...s.apim!, refreshToken: spent, accessExpiresAt: 0 } });
    const res = await call();
    const issue = expectLegacyOutcome(res, 403, 'SESSION_SIGN_IN_AGAIN');
    expect(issue.diagnostics).toMatch(/Sign in to CIS2 again/);
    const sent = grants(h, 'refresh_token').map((f) => f.get('refresh_token'));
    expect(sent.filter((t) => t === spent)).toHaveLength(1);
    expectLegacyOutcome(await call(), 403, 'SESSION_UNKNOWN'); // the session is gone
  });

  it('after the refresh window the next call gets the sign-in-again 403', async () => {
    let clock = Date.now();
    h = await startUserHarness({ now: () => clock });
    const key = await userSession(h);
    clock += 12 * 3600 * 1000 + 60_000; // past the 12-hour window (the harness's session timeouts are longer)
    const res = await legacyCall(h, 'GET', A005, { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key });
    const issue = expectLegacyOutcome(res, 403, 'SESSION_SIGN_IN_AGAIN');
    expect(issue.diagnostics).toMatch(/12-hour refresh window/);
    expect(grants(h, 'refresh_token')).toHaveLength(0);
  });

  it('APIM refusing the refresh (window over at APIM) ends the session with the sign-in-again 403', async () => {
    let clock = Date.now();
    let standInAhead = 0;
    h = await startUserHarness({
      now: () => clock,
      standInNow: () => Date.now() + standInAhead,
      refreshWindowSeconds: 1,
    });
    const key = await userSession(h);
    // ers-bridge still believes the window is open; the stand-in's clock says it is over.
    const s = (await h.runtime.shared.store.get(key))!;
    await h.runtime.shared.store.update(key, { ...s, apim: { ...s.apim!, refreshExpiresAt: clock + 3600_000 } });
    standInAhead += 1100;
    clock += 580_000;
    const res = await legacyCall(h, 'GET', A005, { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key });
    expectLegacyOutcome(res, 403, 'SESSION_SIGN_IN_AGAIN');
    expect(grants(h, 'refresh_token')).toHaveLength(1);
  });

  it('an APIM 401 on a data call causes one renewal and one retry', async () => {
    h = await startUserHarness();
    const key = await userSession(h);
    h.standIn.revokeAccessTokens();
    const before = h.standIn.received.length;
    const res = await legacyCall(h, 'GET', A005, { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual(legacyFixture('stu3/retrieveReferralRequest/responses/Unbooked.json', h.legacyBase));
    expect(h.standIn.received.length - before).toBe(2);
    expect(grants(h, 'refresh_token')).toHaveLength(1);
  });
});

describe('concurrent writers', () => {
  it('A002 keeps tokens another replica renewed while it ran (never puts back a spent refresh token)', async () => {
    h = await startUserHarness();
    const res = await a001(h, await h.cis2.mintIdToken(CLAIMS(CLINICIAN)));
    const key = res.json().id as string;
    const real = h.runtime.shared.store;
    let renewedElsewhere = false;
    // As if another replica renewed the tokens just after A002 read the session.
    h.runtime.shared.store = new Proxy(real, {
      get(target, prop) {
        if (prop === 'get') {
          return async (k: string) => {
            const s = await target.get(k);
            if (s && !renewedElsewhere) {
              renewedElsewhere = true;
              await target.update(k, {
                ...s,
                apim: { ...s.apim!, accessToken: 'renewed-access', refreshToken: 'renewed-refresh' },
              });
            }
            return s;
          };
        }
        const v = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    try {
      const a002 = await legacyCall(
        h,
        'PUT',
        `${SESSION_PATH}/${key}`,
        { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/json' },
        JSON.stringify({
          token: 't',
          permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' },
        }),
      );
      expect(a002.status).toBe(200);
    } finally {
      h.runtime.shared.store = real;
    }
    const stored = (await real.get(key))!;
    expect(renewedElsewhere).toBe(true);
    expect(stored.apim!.refreshToken).toBe('renewed-refresh');
    expect(stored.permission?.businessFunction).toBe('SERVICE_PROVIDER_CLINICIAN');
  });
});

describe('user headers, policy and on-behalf-of', () => {
  it('data calls carry the selected ODS and business function', async () => {
    h = await startUserHarness();
    const key = await userSession(h);
    expect((await legacyCall(h, 'GET', A005, { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key })).status).toBe(200);
    const r = h.standIn.received.at(-1)!;
    expect(r.headers['nhsd-end-user-organisation-ods']).toBe('R69');
    expect(r.headers['nhsd-ers-business-function']).toBe('SERVICE_PROVIDER_CLINICIAN');
    expect(r.headers['nhsd-ers-on-behalf-of-user-id']).toBeUndefined();
  });

  it('an operation the selected business function may not use is refused locally', async () => {
    h = await startUserHarness();
    const key = await userSession(h); // SPC
    const before = h.standIn.received.length;
    const res = await legacyCall(
      h,
      'POST',
      '/ers-api/STU3/v1/ReferralRequest/$ers.createReferral',
      { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/fhir+json' },
      '{}',
    );
    const issue = expectLegacyOutcome(res, 403, 'BUSINESS_FUNCTION_NOT_ALLOWED');
    expect(issue.diagnostics).toContain('REFERRING_CLINICIAN');
    expect(h.standIn.received.length).toBe(before);
  });

  it('SPCA needs onBehalfOf in A002, and then sends it to APIM', async () => {
    h = await startUserHarness();
    const spca = { businessFunction: 'SERVICE_PROVIDER_CLINICIAN_ADMIN', orgIdentifier: 'R69' };
    await expect(userSession(h, spca)).rejects.toThrow(/ON_BEHALF_OF_INVALID/);
    await expect(userSession(h, spca, { onBehalfOf: '12345' })).rejects.toThrow(/ON_BEHALF_OF_INVALID/);
    await expect(
      userSession(
        h,
        { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' },
        { onBehalfOf: '555000000999' },
      ),
    ).rejects.toThrow(/ON_BEHALF_OF_INVALID/);
    const key = await userSession(h, spca, { onBehalfOf: '555000000999' });
    expect((await legacyCall(h, 'GET', A005, { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key })).status).toBe(200);
    const r = h.standIn.received.at(-1)!;
    expect(r.headers['nhsd-ers-business-function']).toBe('SERVICE_PROVIDER_CLINICIAN_ADMIN');
    expect(r.headers['nhsd-ers-on-behalf-of-user-id']).toBe('555000000999');
  });

  it('no log line carries a token, an ID token or a refresh token', async () => {
    h = await startUserHarness();
    const key = await userSession(h);
    await legacyCall(h, 'GET', A005, { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key });
    const s = (await h.runtime.shared.store.get(key))!;
    const all = h.logs.join('\n');
    expect(all).not.toContain(s.apim!.accessToken);
    expect(all).not.toContain(s.apim!.refreshToken);
    expect(all).not.toContain(key);
    expect(all).not.toContain(lastA001Token.slice(0, 30));
  });
});
