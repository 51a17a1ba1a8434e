/**
 * Open-access environments and roles from the rules (issue 13, point 5), on real sockets:
 *
 * - apim.auth none (the NHS sandbox, Dev1, Dev3) with a user-restricted ASID whose test users are in the rules: the
 *   rules file passes `rules check`; A001 names a test user (`test-user:<id>`), A002 selects one of the roles of the
 *   rules, and the calls — user-restricted operations included, which the 16 application-restricted ones never
 *   reached — carry the role headers (NHSD-End-User-Organisation-ODS, NHSD-eRS-Business-Function) and no token, at
 *   a fake open-access APIM that records what it receives.
 * - cis2.seedRoles: a CIS2 user's roles from the rules instead of A030, at the APIM stand-in (A030 not called).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { main } from '../../src/cli/main.js';
import { loadRulesFile } from '../../src/rules/load.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime } from '../../src/runtime/runtime.js';
import { expectLegacyOutcome, type Harness, legacyCall, listenBridge } from '../helpers/harness.js';
import { CLINICIAN, startUserHarness, USER_ASID, type UserHarness } from '../helpers/user-harness.js';

const SESSION_PATH = '/ers-api/v1/ProfessionalSession';
const TYPE_INFO = 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession';
const OPEN_USER_ASID = '999000000002';
const OPEN_APP_ASID = '999000000001';
const TEST_USER = '555000000002';
const A005 = '/ers-api/STU3/v1/ReferralRequest/000000070000';
const A038 = '/ers-api/STU3/v1/Appointment/70000';

/** A fake open-access APIM (as the NHS sandbox: no token needed): records each request, answers a small resource. */
async function fakeOpenApim(): Promise<{
  server: Server;
  base: string;
  received: Array<{ url: string; headers: IncomingHttpHeaders }>;
}> {
  const received: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
  const server = createServer((req, res) => {
    received.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      const resourceType = req.url?.includes('/Appointment/') ? 'Appointment' : 'ReferralRequest';
      res.writeHead(200, { 'content-type': 'application/fhir+json', 'x-request-id': 'fake-open-apim-1' });
      res.end(JSON.stringify({ resourceType, id: req.url?.split('/').at(-1) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, base: `http://127.0.0.1:${port}/referrals/FHIR`, received };
}

describe('apim.auth none with a user-restricted ASID and test users', () => {
  let apim: Awaited<ReturnType<typeof fakeOpenApim>>;
  let h: Pick<Harness, 'bridgeUrl' | 'close'>;
  let file: string;

  beforeAll(async () => {
    apim = await fakeOpenApim();
    file = join(mkdtempSync(join(tmpdir(), 'ers-bridge-open-')), 'open.yaml');
    writeFileSync(
      file,
      stringify({
        environment: 'open-test',
        legacy: { host: 'api.dev3.ers.ncrs.nhs.uk' },
        apim: { baseUrl: apim.base, auth: 'none' },
        asids: {
          [OPEN_APP_ASID]: {
            accessMode: 'application-restricted',
            organisation: { odsCode: 'R69', name: 'EXAMPLE NHS TRUST' },
            businessFunction: 'SERVICE_PROVIDER_CLINICIAN',
          },
          [OPEN_USER_ASID]: {
            accessMode: 'user-restricted',
            testUsers: {
              [TEST_USER]: {
                firstName: 'Test',
                lastName: 'Clinician',
                roles: [
                  { odsCode: 'R69', orgName: 'EXAMPLE NHS TRUST', businessFunction: 'SERVICE_PROVIDER_CLINICIAN' },
                  { odsCode: 'A12345', orgName: 'EXAMPLE GP PRACTICE', businessFunction: 'REFERRING_CLINICIAN' },
                ],
              },
            },
          },
        },
      }),
    );
    const rules = await loadRulesFile(file);
    const runtime = await buildRuntime(file, rules, { resolveSecret: secretResolver({}) });
    h = await listenBridge(runtime);
  });
  afterAll(async () => {
    await h?.close();
    await new Promise((resolve) => apim?.server.close(resolve));
    if (file) rmSync(join(file, '..'), { recursive: true, force: true });
  });

  it('passes rules check', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await main(['rules', 'check', file])).toBe(0);
      expect(log.mock.calls.map((c) => c.join(' '))).toEqual([`ok ${file}`]);
    } finally {
      log.mockRestore();
    }
  });

  async function testUserSession(permission: { businessFunction: string; orgIdentifier: string }): Promise<string> {
    const a001 = await legacyCall(
      h as Harness,
      'POST',
      SESSION_PATH,
      { XAPI_ASID: OPEN_USER_ASID, 'Content-Type': 'application/json' },
      JSON.stringify({ typeInfo: TYPE_INFO, token: `test-user:${TEST_USER}` }),
    );
    expect(a001.status, a001.body.toString()).toBe(201);
    expect(a001.json().user).toMatchObject({
      identifier: TEST_USER,
      firstName: 'Test',
      lastName: 'Clinician',
      permissions: [
        { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69', orgName: 'EXAMPLE NHS TRUST' },
        { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'A12345', orgName: 'EXAMPLE GP PRACTICE' },
      ],
    });
    const key = a001.json().id as string;
    const a002 = await legacyCall(
      h as Harness,
      'PUT',
      `${SESSION_PATH}/${key}`,
      { XAPI_ASID: OPEN_USER_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/json' },
      JSON.stringify({ typeInfo: TYPE_INFO, token: `test-user:${TEST_USER}`, permission }),
    );
    expect(a002.status, a002.body.toString()).toBe(200);
    return key;
  }

  it("sends the selected role's headers and no token, for a user-restricted operation too", async () => {
    const key = await testUserSession({ businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'A12345' });
    for (const [path, apimPath] of [
      [A005, '/referrals/FHIR/STU3/ReferralRequest/000000070000'],
      [A038, '/referrals/FHIR/STU3/Appointment/70000'],
    ] as const) {
      const before = apim.received.length;
      const res = await legacyCall(h as Harness, 'GET', path, { XAPI_ASID: OPEN_USER_ASID, HTTP_X_SESSION_KEY: key });
      expect(res.status, res.body.toString()).toBe(200);
      expect(res.headers['x_ers_transaction_id']).toBe('fake-open-apim-1');
      const seen = apim.received.slice(before);
      expect(seen).toHaveLength(1);
      expect(seen[0]!.url).toBe(apimPath);
      expect(seen[0]!.headers['nhsd-end-user-organisation-ods']).toBe('A12345');
      expect(seen[0]!.headers['nhsd-ers-business-function']).toBe('REFERRING_CLINICIAN');
      expect(seen[0]!.headers['nhsd-ers-on-behalf-of-user-id']).toBeUndefined();
      expect(seen[0]!.headers['authorization']).toBeUndefined();
      expect(seen[0]!.headers['xapi_asid']).toBeUndefined();
    }
  });

  it("sends whichever of the test user's roles A002 selected", async () => {
    const key = await testUserSession({ businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' });
    const res = await legacyCall(h as Harness, 'GET', A005, { XAPI_ASID: OPEN_USER_ASID, HTTP_X_SESSION_KEY: key });
    expect(res.status).toBe(200);
    expect(apim.received.at(-1)!.headers['nhsd-ers-business-function']).toBe('SERVICE_PROVIDER_CLINICIAN');
    expect(apim.received.at(-1)!.headers['nhsd-end-user-organisation-ods']).toBe('R69');
  });

  it('an application-restricted ASID beside it still sends no role headers', async () => {
    const a001 = await legacyCall(
      h as Harness,
      'POST',
      SESSION_PATH,
      { XAPI_ASID: OPEN_APP_ASID, 'Content-Type': 'application/json' },
      JSON.stringify({ typeInfo: TYPE_INFO, token: 'anything' }),
    );
    const session = a001.json();
    await legacyCall(
      h as Harness,
      'PUT',
      `${SESSION_PATH}/${session.id}`,
      { XAPI_ASID: OPEN_APP_ASID, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/json' },
      JSON.stringify({ ...session, permission: session.user.permissions[0] }),
    );
    const res = await legacyCall(h as Harness, 'GET', A005, {
      XAPI_ASID: OPEN_APP_ASID,
      HTTP_X_SESSION_KEY: session.id,
    });
    expect(res.status).toBe(200);
    const headers = apim.received.at(-1)!.headers;
    expect(Object.keys(headers).filter((n) => n.startsWith('nhsd-'))).toEqual([]);
    expect(headers['authorization']).toBeUndefined();
  });

  it('refuses a test user the ASID does not have, with a legacy 403', async () => {
    const res = await legacyCall(
      h as Harness,
      'POST',
      SESSION_PATH,
      { XAPI_ASID: OPEN_USER_ASID, 'Content-Type': 'application/json' },
      JSON.stringify({ typeInfo: TYPE_INFO, token: 'test-user:555000000999' }),
    );
    const issue = expectLegacyOutcome(res, 403, 'TEST_USER_REFUSED');
    expect(issue.diagnostics).toMatch(/has no test user/);
  });
});

describe('cis2.seedRoles: roles from the rules instead of A030', () => {
  let h: UserHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  const CLAIMS = {
    sub: CLINICIAN,
    given_name: 'Alex',
    family_name: 'Example',
    id_assurance_level: 3,
    authentication_assurance_level: 3,
  };
  const a030Calls = (harness: UserHarness) =>
    harness.standIn.received.filter((r) => r.url.includes('/R4/PractitionerRole')).length;
  const a001 = async (harness: UserHarness) =>
    legacyCall(
      harness,
      'POST',
      SESSION_PATH,
      { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
      JSON.stringify({ typeInfo: TYPE_INFO, token: await harness.cis2.mintIdToken(CLAIMS) }),
    );

  it('offers the seeded roles at A001 without asking APIM, and the calls carry the one selected', async () => {
    h = await startUserHarness();
    // Without seeded roles: A030 gives the user's roles (three, at R68 and R69).
    const fromA030 = await a001(h);
    expect(fromA030.status).toBe(201);
    expect(fromA030.json().user.permissions).toHaveLength(3);
    expect(a030Calls(h)).toBe(1);

    // Seeded for this user: A001 offers exactly those, and A030 is not called.
    h.runtime.rules.cis2!.seedRoles = {
      [CLINICIAN]: [
        { odsCode: 'R69', orgName: 'SEEDED PROVIDER TRUST', businessFunction: 'SERVICE_PROVIDER_CLINICIAN' },
      ],
    };
    const seeded = await a001(h);
    expect(seeded.status, seeded.body.toString()).toBe(201);
    expect(seeded.json().user).toMatchObject({
      identifier: CLINICIAN,
      permissions: [
        { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69', orgName: 'SEEDED PROVIDER TRUST' },
      ],
    });
    expect(a030Calls(h)).toBe(1);

    const key = seeded.json().id as string;
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
    expect(a002.status, a002.body.toString()).toBe(200);
    const res = await legacyCall(h, 'GET', A005, { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key });
    expect(res.status, res.body.toString()).toBe(200);
    const sent = h.standIn.received.at(-1)!;
    expect(sent.url).toBe('/referrals/FHIR/STU3/ReferralRequest/000000070000');
    expect(sent.headers['nhsd-end-user-organisation-ods']).toBe('R69');
    expect(sent.headers['nhsd-ers-business-function']).toBe('SERVICE_PROVIDER_CLINICIAN');
    expect(String(sent.headers['authorization'])).toMatch(/^Bearer /);
  });

  it('asks A030 as before for a user the rules seed nothing for', async () => {
    h = await startUserHarness();
    h.runtime.rules.cis2!.seedRoles = {
      '555000000999': [{ odsCode: 'R69', businessFunction: 'SERVICE_PROVIDER_CLINICIAN' }],
    };
    const res = await a001(h);
    expect(res.status).toBe(201);
    expect(res.json().user.permissions).toHaveLength(3);
    expect(a030Calls(h)).toBe(1);
  });
});
