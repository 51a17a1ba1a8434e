/**
 * Open-access environments and roles from the rules (issue 13, point 5), in-process: the rules a user-restricted
 * ASID may have with apim.auth none (test users) and with CIS2 (seeded roles), what is refused and why, and the
 * A001 of a test user. The end-to-end calls (role headers at APIM, seeded roles instead of A030) are in
 * test/e2e/open-access.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { permissionsFromRoles } from '../../src/apim/practitioner-roles.js';
import type { GrantTarget, SignInGrant } from '../../src/auth/sign-in-grant.js';
import { LegacyError } from '../../src/legacy/errors.js';
import { createSession, type SessionDeps, selectRole } from '../../src/legacy/session-api.js';
import type { LegacyHost } from '../../src/legacy-host/host.js';
import { parseRules } from '../../src/rules/load.js';
import { isTokenCheckedApimHost, type Rules } from '../../src/rules/schema.js';
import type { Caller } from '../../src/runtime/caller.js';
import { MemoryEphemeralStore } from '../../src/sessions/ephemeral-store.js';
import { MemorySessionStore } from '../../src/sessions/memory-store.js';
import { SESSION_TYPE_INFO } from '../../src/sessions/session.js';
import { ManualClock } from '../helpers/manual-clock.js';

const SANDBOX = 'https://sandbox.api.service.nhs.uk/referrals/FHIR';
const USER_ASID = '999000000002';
const TEST_USER = '555000000002';
const ROLES = [
  { odsCode: 'R69', orgName: 'EXAMPLE NHS TRUST', businessFunction: 'SERVICE_PROVIDER_CLINICIAN' },
  { odsCode: 'A12345', businessFunction: 'REFERRING_CLINICIAN' },
];

/** A rules file's document: the sandbox, one user-restricted ASID with one test user. */
function openAccessDoc(
  overrides: { apim?: Record<string, unknown>; asid?: Record<string, unknown>; top?: object } = {},
) {
  return {
    environment: 'sandbox-test',
    legacy: { host: 'api.dev3.ers.ncrs.nhs.uk' },
    apim: { baseUrl: SANDBOX, auth: 'none', ...overrides.apim },
    asids: {
      [USER_ASID]: {
        accessMode: 'user-restricted',
        testUsers: { [TEST_USER]: { firstName: 'Test', lastName: 'Clinician', roles: ROLES } },
        ...overrides.asid,
      },
    },
    ...overrides.top,
  };
}

const parse = (doc: object): Rules => parseRules(stringify(doc), 'open.yaml');
const problem = (doc: object): string => {
  try {
    parse(doc);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected the rules to be refused');
};

const CIS2 = {
  issuer: 'https://cis2.example.nhs.uk/realms/Healthcare',
  clientId: 'ers-bridge',
  clientAuth: { method: 'client_secret_post', secret: 'env:CIS2_SECRET' },
  redirectUri: 'https://ers-bridge.example.nhs.uk/login/callback',
};
const INT_APIM = {
  baseUrl: 'https://int.api.service.nhs.uk/referrals/FHIR',
  tokenUrl: 'https://int.api.service.nhs.uk/oauth2/token',
};
const USER_APP = { apiKey: 'env:K', apiSecret: 'env:S', keyId: 'k1', privateKey: 'env:P' };

describe('rules: apim.auth none with a user-restricted ASID', () => {
  it('is accepted with test users, and needs no cis2 block', () => {
    const rules = parse(openAccessDoc());
    const cfg = rules.asids[USER_ASID]!;
    expect(cfg.accessMode).toBe('user-restricted');
    expect(cfg.accessMode === 'user-restricted' && cfg.testUsers?.[TEST_USER]?.roles).toEqual(ROLES);
    expect(rules.cis2).toBeUndefined();
  });

  it('is refused without test users: an open-access APIM has no CIS2 token exchange', () => {
    const doc = openAccessDoc();
    delete (doc.asids[USER_ASID] as { testUsers?: unknown }).testUsers;
    expect(problem(doc)).toMatch(
      /^open\.yaml: asids\."999000000002"\.testUsers: expected testUsers .*apim\.auth is none.*"test-user:<id>"/,
    );
  });

  it('refuses test users where APIM checks tokens (signed-jwt): no real environment can be opened by naming one', () => {
    const doc = openAccessDoc({
      apim: { ...INT_APIM, auth: 'signed-jwt' },
      asid: { apim: USER_APP },
      top: { cis2: CIS2 },
    });
    expect(problem(doc)).toMatch(/asids\."999000000002"\.testUsers: expected no testUsers with apim\.auth signed-jwt/);
  });

  it.each([
    'https://api.service.nhs.uk/referrals/FHIR',
    'https://int.api.service.nhs.uk/referrals/FHIR',
    'https://dep.api.service.nhs.uk/referrals-dep/FHIR',
    'https://internal-dev.api.service.nhs.uk/referrals/FHIR',
  ])('refuses auth none at %s, an APIM that needs a token on every call', (baseUrl) => {
    expect(problem(openAccessDoc({ apim: { baseUrl } }))).toMatch(
      /^open\.yaml: apim\.baseUrl: expected an open-access APIM base URL with auth none .* needs an access token/,
    );
  });

  it('knows which NHS APIM hosts are open: only the sandboxes', () => {
    expect(isTokenCheckedApimHost('sandbox.api.service.nhs.uk')).toBe(false);
    expect(isTokenCheckedApimHost('internal-dev-sandbox.api.service.nhs.uk')).toBe(false);
    expect(isTokenCheckedApimHost('127.0.0.1')).toBe(false);
    expect(isTokenCheckedApimHost('API.SERVICE.NHS.UK')).toBe(true);
    expect(isTokenCheckedApimHost('int.api.service.nhs.uk')).toBe(true);
  });

  it('checks the test users: 12-digit ids, a name, at least one role with a known business function', () => {
    const user = (u: object) => openAccessDoc({ asid: { testUsers: { [TEST_USER]: u } } });
    const base = { firstName: 'T', lastName: 'C' };
    expect(problem(openAccessDoc({ asid: { testUsers: { alice: { ...base, roles: ROLES } } } }))).toMatch(
      /testUsers.*expected a 12-digit user id/,
    );
    expect(problem(user({ ...base, roles: [] }))).toMatch(/roles: expected at least one role/);
    expect(problem(user({ ...base, roles: [{ odsCode: 'R69', businessFunction: 'NURSE' }] }))).toMatch(
      /businessFunction: expected a business function/,
    );
    expect(problem(user({ ...base, roles: [{ odsCode: 'r69', businessFunction: 'REFERRING_CLINICIAN' }] }))).toMatch(
      /odsCode: expected an ODS code/,
    );
  });
});

describe('rules: cis2.seedRoles', () => {
  const seeded = (apim: object) =>
    parse({
      environment: 'int-test',
      legacy: { host: 'api.int1.ers.ncrs.nhs.uk' },
      apim,
      cis2: { ...CIS2, seedRoles: { '555000000101': ROLES } },
      asids: { [USER_ASID]: { accessMode: 'user-restricted', apim: USER_APP } },
    });

  it('is accepted in a test environment (INT)', () => {
    expect(seeded(INT_APIM).cis2?.seedRoles?.['555000000101']).toEqual(ROLES);
  });

  it('is refused against production APIM', () => {
    let message = '';
    try {
      seeded({
        baseUrl: 'https://api.service.nhs.uk/referrals/FHIR',
        tokenUrl: 'https://api.service.nhs.uk/oauth2/token',
      });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/cis2\.seedRoles: expected no seedRoles against production APIM/);
  });

  it('gives each role once, its organisation named by the role, else the rules, else its ODS code', () => {
    const roles = [...ROLES, ROLES[0]!, { odsCode: 'B99', businessFunction: 'REFERRING_CLINICIAN' }];
    expect(permissionsFromRoles(roles, { A12345: 'PRACTICE FROM THE RULES' })).toEqual([
      { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69', orgName: 'EXAMPLE NHS TRUST' },
      { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'A12345', orgName: 'PRACTICE FROM THE RULES' },
      { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'B99', orgName: 'B99' },
    ]);
  });
});

describe('A001 naming a test user', () => {
  function setup(openAccess: boolean) {
    const rules = parse(openAccessDoc());
    const clock = new ManualClock(Date.parse('2025-03-01T08:00:00Z'));
    const store = new MemorySessionStore({ idleTimeoutSeconds: 3600, maxSessions: 10, now: () => clock.now() });
    const deps: SessionDeps = {
      store,
      signInCodes: new MemoryEphemeralStore<SignInGrant>(10, () => clock.now()),
      cis2: undefined,
      grantTarget: { asid: USER_ASID, organisationNames: {} } as unknown as GrantTarget,
      absoluteTimeoutSeconds: 43_200,
      legacy: {} as LegacyHost,
      keepLegacyToken: false,
      openAccess,
      clock,
    };
    const caller = { asid: USER_ASID, config: rules.asids[USER_ASID]! } as unknown as Caller;
    return { deps, caller, store };
  }
  const body = (token: string) => Buffer.from(JSON.stringify({ typeInfo: SESSION_TYPE_INFO, token }));
  const refusal = async (p: Promise<unknown>) => {
    const e = await p.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(LegacyError);
    return e as LegacyError;
  };

  it('opens a user-restricted session for that user with the roles of the rules, and holds no APIM token', async () => {
    const s = setup(true);
    const r = await createSession(s.deps, s.caller, body(`test-user:${TEST_USER}`), 'corr');
    expect(r.status).toBe(201);
    const answer = r.body as { user: unknown; permission: unknown; token: string };
    expect(answer.user).toEqual({
      identifier: TEST_USER,
      firstName: 'Test',
      lastName: 'Clinician',
      middleName: null,
      permissions: [
        { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69', orgName: 'EXAMPLE NHS TRUST' },
        { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'A12345', orgName: 'A12345' },
      ],
    });
    expect(answer.permission).toBeNull();
    const stored = await s.store.get(r.sessionKey);
    expect(stored).toMatchObject({ accessMode: 'user-restricted', onBehalfOf: null });
    expect(stored?.apim).toBeUndefined();
    const headers = { http_x_session_key: r.sessionKey };
    const a002 = Buffer.from(
      JSON.stringify({ permission: { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'A12345' } }),
    );
    const selected = await selectRole(s.deps, s.caller, headers, r.sessionKey, a002);
    expect((selected.body as { permission: unknown }).permission).toMatchObject({ orgIdentifier: 'A12345' });
  });

  it('refuses a user the ASID does not have', async () => {
    const s = setup(true);
    const e = await refusal(createSession(s.deps, s.caller, body('test-user:555000000009'), 'corr'));
    expect(e.reason).toBe('TEST_USER_REFUSED');
    expect(e.status).toBe(403);
    expect(e.diagnostics).toMatch(/has no test user "555000000009"/);
  });

  it('refuses every test user outside an open-access environment, whatever the ASID holds', async () => {
    const s = setup(false);
    const e = await refusal(createSession(s.deps, s.caller, body(`test-user:${TEST_USER}`), 'corr'));
    expect(e.reason).toBe('TEST_USER_REFUSED');
    expect(e.diagnostics).toMatch(/open-access test environments \(apim\.auth none\)/);
    expect(e.diagnostics).toMatch(/Sign in with CIS2/);
  });
});
