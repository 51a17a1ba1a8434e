/**
 * The legacy HSCN e-RS API stand-in (test/helpers/legacy-standin.ts): session flow, data calls with legacy base URLs,
 * 403s, recording, delays and forced failures, and mutual TLS with the test PKI (test/helpers/pki.ts).
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_LEGACY_USER,
  EXPIRED_TICKET,
  type LegacyStandIn,
  SESSION_TYPE_INFO,
  startLegacyStandIn,
  withoutApimAdditions,
} from '../helpers/legacy-standin.js';
import { CLIENT_CERT_CN, makeTestPki, type TestPki } from '../helpers/pki.js';

const ASID = '200000000220';
const OTHER_ASID = '999000000045';
const TICKET = 'AQIC5wM2LY4Sfcyw62EbAOsRpdfbGYUOyvkfZ4M6U7W52lM=@AAJTSQACMDE=#';
const OUTCOME_PROFILE = 'https://fhir.nhs.uk/STU3/StructureDefinition/eRS-OperationOutcome-1';
const TRANSACTION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-1$/;
const EXAMPLES = new URL('../../fixtures/ers-api/examples/', import.meta.url);
const INT_BASE = 'https://api.int1.ers.ncrs.nhs.uk/ers-api';

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: () => any;
}

async function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer; dispatcher?: Agent } = {},
): Promise<Res> {
  const res = await request(url, {
    method: (init.method ?? 'GET') as 'GET',
    headers: init.headers,
    body: init.body,
    dispatcher: init.dispatcher,
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) };
}

function createSession(s: LegacyStandIn, asid = ASID, token = TICKET, dispatcher?: Agent): Promise<Res> {
  return call(`${s.baseUrl}/v1/ProfessionalSession`, {
    method: 'POST',
    headers: { XAPI_ASID: asid, 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ typeInfo: SESSION_TYPE_INFO, token }),
    dispatcher,
  });
}

function selectRole(
  s: LegacyStandIn,
  id: string,
  permission: Record<string, string> | undefined,
  extra: { asid?: string; key?: string; token?: string } = {},
): Promise<Res> {
  return call(`${s.baseUrl}/v1/ProfessionalSession/${id}`, {
    method: 'PUT',
    headers: { XAPI_ASID: extra.asid ?? ASID, HTTP_X_SESSION_KEY: extra.key ?? id, 'Content-Type': 'application/json' },
    body: JSON.stringify({ typeInfo: SESSION_TYPE_INFO, token: extra.token ?? TICKET, permission }),
  });
}

/** A001 + A002 (SERVICE_PROVIDER_CLINICIAN at R69): a session ready for data calls. */
async function openSession(s: LegacyStandIn, asid = ASID): Promise<string> {
  const created = await createSession(s, asid);
  expect(created.status).toBe(201);
  const id = created.json().id as string;
  const selected = await selectRole(
    s,
    id,
    { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' },
    { asid },
  );
  expect(selected.status).toBe(200);
  return id;
}

function data(
  s: LegacyStandIn,
  path: string,
  key: string | undefined,
  init: { method?: string; body?: string; headers?: Record<string, string>; asid?: string | null } = {},
): Promise<Res> {
  const headers: Record<string, string> = { Accept: 'application/fhir+json', ...init.headers };
  if (init.asid !== null) headers.XAPI_ASID = init.asid ?? ASID;
  if (key !== undefined) headers.HTTP_X_SESSION_KEY = key;
  if (init.body !== undefined) headers['Content-Type'] = 'application/fhir+json';
  return call(`${s.baseUrl}/STU3/v1/${path}`, { method: init.method, headers, body: init.body });
}

function expectOutcome(res: Res, status: number, code: string): void {
  expect(res.status).toBe(status);
  const body = res.json();
  expect(body.resourceType).toBe('OperationOutcome');
  expect(body.meta.profile).toEqual([OUTCOME_PROFILE]);
  expect(body.issue[0].details.coding[0]).toMatchObject({
    system: 'https://fhir.nhs.uk/STU3/CodeSystem/eRS-APIErrorCode-1',
    code,
  });
  expect(res.headers['x_ers_transaction_id']).toMatch(TRANSACTION_ID);
}

/** A request example as a legacy client sends it: links under `<base>/STU3/v1/`. */
function legacyRequest(rel: string, base: string): string {
  return readFileSync(new URL(rel, EXAMPLES), 'utf8').replaceAll('_baseUrl_/STU3/', `${base}/STU3/v1/`);
}

describe('legacy stand-in over HTTP', () => {
  let s: LegacyStandIn;

  beforeAll(async () => {
    s = await startLegacyStandIn({ asids: [ASID, OTHER_ASID] });
  });
  afterAll(() => s.close());

  it('runs the session flow A001 → A002 → data call → A003', async () => {
    expect(s.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(s.baseUrl).toBe(`${s.origin}/ers-api`);

    const created = await createSession(s);
    expect(created.status).toBe(201);
    expect(created.headers['content-type']).toMatch(/^application\/json/);
    const session = created.json();
    expect(session).toMatchObject({
      typeInfo: SESSION_TYPE_INFO,
      token: TICKET,
      permission: null,
      user: { identifier: '555020964101', middleName: null },
    });
    expect(session.id).toMatch(/^pro-api-session:[0-9a-f-]{36}$/);
    expect(session.user.permissions).toEqual(DEFAULT_LEGACY_USER.permissions);
    expect(session.user.permissions.map((p: any) => `${p.businessFunction}@${p.orgIdentifier}`)).toEqual([
      'SERVICE_PROVIDER_CLINICIAN@R69',
      'REFERRING_CLINICIAN@R68',
    ]);
    expect(s.sessions.get(session.id)).toMatchObject({ asid: ASID, permission: null });

    // Unusable until a role is selected.
    expectOutcome(await data(s, 'CodeSystem/SPECIALTY', session.id), 403, 'NO_ACCESS');

    // A002 as JOR did it: the whole A001 response with the permission filled in.
    const selected = await call(`${s.baseUrl}/v1/ProfessionalSession/${session.id}`, {
      method: 'PUT',
      headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        ...session,
        permission: { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'R68', orgName: 'whatever' },
      }),
    });
    expect(selected.status).toBe(200);
    expect(selected.json()).toMatchObject({
      id: session.id,
      permission: { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'R68', orgName: 'GP PRACTICE R68' },
    });

    const cs = await data(s, 'CodeSystem/SPECIALTY', session.id);
    expect(cs.status).toBe(200);
    expect(cs.json().url).toBe(`${s.baseUrl}/STU3/v1/CodeSystem/SPECIALTY`);

    const deleted = await call(`${s.baseUrl}/v1/ProfessionalSession/${session.id}`, {
      method: 'DELETE',
      headers: { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: session.id },
    });
    expect(deleted.status).toBe(204);
    expect(deleted.body.length).toBe(0);
    expect(deleted.headers['x_ers_transaction_id']).toMatch(TRANSACTION_ID);
    expect(s.sessions.has(session.id)).toBe(false);
    expectOutcome(await data(s, 'CodeSystem/SPECIALTY', session.id), 403, 'NO_ACCESS');
  });

  it('sends X_ERS_TRANSACTION_ID with that exact spelling', async () => {
    const raw = await new Promise<string[]>((resolve, reject) => {
      const req = httpRequest(`${s.baseUrl}/v1/ProfessionalSession`, {
        method: 'POST',
        headers: { XAPI_ASID: ASID, 'Content-Type': 'application/json' },
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.rawHeaders));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ token: TICKET }));
    });
    const index = raw.indexOf('X_ERS_TRANSACTION_ID');
    expect(index).toBeGreaterThanOrEqual(0);
    expect(raw[index + 1]).toMatch(TRANSACTION_ID);
  });

  it('refuses A001 without a known ASID or with a bad ticket', async () => {
    const noAsid = await call(`${s.baseUrl}/v1/ProfessionalSession`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ typeInfo: SESSION_TYPE_INFO, token: TICKET }),
    });
    expectOutcome(noAsid, 403, 'FORBIDDEN');
    expect(noAsid.headers['content-type']).toMatch(/^application\/json/);
    expectOutcome(await createSession(s, '123456789012'), 403, 'FORBIDDEN');
    expectOutcome(await createSession(s, ASID, EXPIRED_TICKET), 403, 'FORBIDDEN');
    expectOutcome(await createSession(s, ASID, ''), 422, 'MISSING_VALUE');
    const notJson = await call(`${s.baseUrl}/v1/ProfessionalSession`, {
      method: 'POST',
      headers: { XAPI_ASID: ASID, 'Content-Type': 'application/json' },
      body: '{not json',
    });
    expectOutcome(notJson, 422, 'INVALID_VALUE');
    expectOutcome(await call(`${s.baseUrl}/v1/ProfessionalSession`), 405, 'METHOD_NOT_ALLOWED');
  });

  it('refuses A002/A003 with a wrong key, ASID, token or permission', async () => {
    const id = (await createSession(s)).json().id as string;
    const other = (await createSession(s)).json().id as string;
    const spc = { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' };
    expectOutcome(await selectRole(s, id, spc, { key: other }), 403, 'NO_ACCESS');
    expectOutcome(await selectRole(s, 'pro-api-session:unknown', spc), 403, 'NO_ACCESS');
    expectOutcome(await selectRole(s, id, spc, { asid: OTHER_ASID }), 403, 'NO_ACCESS');
    expectOutcome(await selectRole(s, id, spc, { token: 'someone-elses-ticket' }), 403, 'FORBIDDEN');
    expectOutcome(
      await selectRole(s, id, { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R68' }),
      403,
      'FORBIDDEN',
    );
    expectOutcome(await selectRole(s, id, undefined), 422, 'MISSING_VALUE');
    expect(s.sessions.get(id)?.permission).toBeNull();

    const del = (key: string, asid = ASID) =>
      call(`${s.baseUrl}/v1/ProfessionalSession/${id}`, {
        method: 'DELETE',
        headers: { XAPI_ASID: asid, HTTP_X_SESSION_KEY: key },
      });
    expectOutcome(await del(other), 403, 'NO_ACCESS');
    expectOutcome(await del(id, OTHER_ASID), 403, 'NO_ACCESS');
    expect((await del(id)).status).toBe(204);
    expectOutcome(await del(id), 403, 'NO_ACCESS');
  });

  it('refuses data calls without an ASID or a live session of that ASID', async () => {
    const key = await openSession(s);
    const otherKey = await openSession(s, OTHER_ASID);
    expectOutcome(await data(s, 'CodeSystem/SPECIALTY', key, { asid: null }), 403, 'FORBIDDEN');
    expectOutcome(await data(s, 'CodeSystem/SPECIALTY', key, { asid: '123456789012' }), 403, 'FORBIDDEN');
    expectOutcome(await data(s, 'CodeSystem/SPECIALTY', undefined), 403, 'NO_ACCESS');
    expectOutcome(await data(s, 'CodeSystem/SPECIALTY', 'pro-api-session:nope'), 403, 'NO_ACCESS');
    expectOutcome(await data(s, 'CodeSystem/SPECIALTY', otherKey), 403, 'NO_ACCESS');
    const ok = await data(s, 'CodeSystem/SPECIALTY', otherKey, { asid: OTHER_ASID });
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toMatch(/^application\/fhir\+json/);
  });

  it('answers A004, A005, A007, A008 and A013 from the NHS examples with legacy base URLs', async () => {
    const key = await openSession(s);

    const cs = await data(s, 'CodeSystem/CLINIC-TYPE', key);
    expect(cs.status).toBe(200);
    expect(cs.headers['content-disposition']).toBe('inline;filename=f.txt');
    expect(cs.body.toString()).not.toContain('_baseUrl_');
    expect(cs.body.toString()).toContain(`"${s.baseUrl}/STU3/v1/CodeSystem/SPECIALTY"`);
    expectOutcome(await data(s, 'CodeSystem/NOPE', key), 404, 'NOT_FOUND');

    const referral = await data(s, 'ReferralRequest/000000070000', key);
    expect(referral.status).toBe(200);
    expect(referral.headers.etag).toBe('W/"5"');
    expect(referral.json()).toMatchObject({ resourceType: 'ReferralRequest', id: '000000070000' });
    expect((await data(s, 'ReferralRequest/000000070000/_history/5', key)).status).toBe(200);
    expectOutcome(await data(s, 'ReferralRequest/999999999999', key), 404, 'NO_SUCH_REQUEST');

    const cri = await data(s, 'ReferralRequest/000000070000/$ers.generateCRI', key, { method: 'POST' });
    expect(cri.status).toBe(200);
    expect(cri.headers['content-type']).toBe('application/pdf');
    expect(cri.headers['content-disposition']).toMatch(
      /^attachment; filename="000000070000_Clinical_Information_Summary_\d+\.pdf"$/,
    );
    expect(cri.body.subarray(0, 5).toString()).toBe('%PDF-');

    const worklistRequest = legacyRequest('stu3/retrieveWorklist/requests/FilteringBySpecialty.json', s.baseUrl);
    const worklist = await data(s, 'ReferralRequest/$ers.fetchworklist', key, {
      method: 'POST',
      body: worklistRequest,
    });
    expect(worklist.status).toBe(200);
    const expected = readFileSync(
      new URL('stu3/retrieveWorklist/responses/FilteredBySpecialty.json', EXAMPLES),
      'utf8',
    ).replaceAll('_baseUrl_/STU3/', `${s.baseUrl}/STU3/v1/`);
    // As HSCN answered: the NHS example without referralRequestVersion, which APIM added after HSCN was withdrawn.
    expect(expected).toContain('"referralRequestVersion"');
    expect(worklist.body.toString()).not.toContain('referralRequestVersion');
    expect(worklist.json()).toEqual(withoutApimAdditions(JSON.parse(expected)));
    // The APIM form of the same body (links under `<base>/STU3/`) is not what a legacy client sends.
    const apimForm = readFileSync(
      new URL('stu3/retrieveWorklist/requests/FilteringBySpecialty.json', EXAMPLES),
      'utf8',
    ).replaceAll('_baseUrl_', s.baseUrl);
    expectOutcome(
      await data(s, 'ReferralRequest/$ers.fetchworklist', key, { method: 'POST', body: apimForm }),
      422,
      'INVALID_VALUE',
    );

    const acceptPath = 'ReferralRequest/000000070000/$ers.acceptReferral';
    expectOutcome(await data(s, acceptPath, key, { method: 'POST' }), 400, 'MISSING_VALUE');
    expectOutcome(
      await data(s, acceptPath, key, { method: 'POST', headers: { 'If-Match': '5' } }),
      400,
      'INVALID_VALUE',
    );
    expectOutcome(
      await data(s, acceptPath, key, { method: 'POST', headers: { 'If-Match': 'W/"4"' } }),
      409,
      'VERSION_CONFLICT',
    );
    const accepted = await data(s, acceptPath, key, { method: 'POST', headers: { 'If-Match': 'W/"5"' } });
    expect(accepted.status).toBe(200);
    expect(accepted.headers.etag).toBe('W/"9"');
    expect(accepted.body.toString()).not.toContain('_baseUrl_');

    expectOutcome(await data(s, 'ReferralRequest/000000070000', key, { method: 'DELETE' }), 405, 'METHOD_NOT_ALLOWED');
    expectOutcome(await data(s, 'Nothing/here', key), 404, 'NOT_FOUND');
    expect((await call(`${s.origin}/elsewhere`)).status).toBe(404);
  });

  it('records every request before answering, raw header names and body included', async () => {
    const before = s.received.length;
    const body = JSON.stringify({ typeInfo: SESSION_TYPE_INFO, token: EXPIRED_TICKET });
    await call(`${s.baseUrl}/v1/ProfessionalSession`, {
      method: 'POST',
      headers: { XAPI_ASID: ASID, XAPI_FQDN: 'legacy-client.example.nhs.uk', 'Content-Type': 'application/json' },
      body,
    });
    const record = s.received[before]!;
    expect(record.method).toBe('POST');
    expect(record.url).toBe('/ers-api/v1/ProfessionalSession');
    expect(record.rawHeaders).toContainEqual(['XAPI_ASID', ASID]);
    expect(record.rawHeaders).toContainEqual(['XAPI_FQDN', 'legacy-client.example.nhs.uk']);
    expect(record.headers['xapi_asid']).toBe(ASID);
    expect(record.body.toString()).toBe(body);
    expect(record.clientCertCN).toBeUndefined();
  });
});

describe('legacy stand-in options', () => {
  it('embeds the network base URL given and matches A008 bodies in it', async () => {
    const s = await startLegacyStandIn({ networkBaseUrl: `${INT_BASE}/` });
    try {
      expect(s.networkBaseUrl).toBe(INT_BASE);
      const key = await openSession(s);
      const cs = await data(s, 'CodeSystem/SPECIALTY', key);
      expect(cs.json().url).toBe('https://api.int1.ers.ncrs.nhs.uk/ers-api/STU3/v1/CodeSystem/SPECIALTY');
      const worklist = await data(s, 'ReferralRequest/$ers.fetchworklist', key, {
        method: 'POST',
        body: legacyRequest('stu3/retrieveWorklist/requests/FilteringBySpecialty.json', INT_BASE),
      });
      expect(worklist.status).toBe(200);
      expect(worklist.body.toString()).toContain(`${INT_BASE}/STU3/v1/CodeSystem/SPECIALTY`);
    } finally {
      await s.close();
    }
  });

  it('accepts any ASID when none are configured, and uses the users given per ticket', async () => {
    const user = {
      identifier: '123456789012',
      firstName: 'Admin',
      lastName: 'User',
      permissions: [{ businessFunction: 'SERVICE_PROVIDER_ADMIN', orgIdentifier: 'RA1', orgName: 'Trust RA1' }],
    };
    const s = await startLegacyStandIn({ users: { 'admin-ticket': user } });
    try {
      const created = await createSession(s, '555555555555', 'admin-ticket');
      expect(created.status).toBe(201);
      expect(created.json().user).toEqual({ ...user, middleName: null });
    } finally {
      await s.close();
    }
  });

  it('holds answers back by delayMs, recording the request first', async () => {
    const s = await startLegacyStandIn({ delayMs: (req) => (req.method === 'POST' ? 300 : 0) });
    try {
      const started = Date.now();
      const pending = createSession(s);
      await expect.poll(() => s.received.length, { interval: 10, timeout: 250 }).toBe(1);
      expect(Date.now() - started).toBeLessThan(300);
      expect((await pending).status).toBe(201);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    } finally {
      await s.close();
    }
  });

  it('answers with a forced status when fail says so', async () => {
    const s = await startLegacyStandIn({ fail: (req) => (req.url.includes('/STU3/') ? 503 : undefined) });
    try {
      const key = await openSession(s);
      const res = await data(s, 'CodeSystem/SPECIALTY', key);
      expectOutcome(res, 503, 'SERVICE_UNAVAILABLE');
      expect(s.received.at(-1)?.url).toBe('/ers-api/STU3/v1/CodeSystem/SPECIALTY');
    } finally {
      await s.close();
    }
  });
});

describe('test PKI', () => {
  it('issues the server, client and foreign certificates as described', () => {
    const pki = makeTestPki();
    expect(makeTestPki()).toBe(pki);
    const ca = new X509Certificate(pki.caPem);
    const server = new X509Certificate(pki.serverCertPem);
    const client = new X509Certificate(pki.clientCertPem);
    const other = new X509Certificate(pki.otherClientCertPem);
    const selfSigned = new X509Certificate(pki.selfSignedCertPem);
    expect(ca.ca).toBe(true);
    expect(server.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(server.subjectAltName).toContain('DNS:localhost');
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(client.subject).toBe(`CN=${CLIENT_CERT_CN}`);
    expect(client.verify(ca.publicKey)).toBe(true);
    expect(other.verify(ca.publicKey)).toBe(false);
    expect(selfSigned.verify(selfSigned.publicKey)).toBe(true);
    expect(selfSigned.verify(ca.publicKey)).toBe(false);
    expect((server.publicKey.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048).toBe(true);
  });
});

describe('legacy stand-in over mutual TLS', () => {
  let pki: TestPki;
  let s: LegacyStandIn;
  const agents: Agent[] = [];
  const agent = (connect: Record<string, string>) => {
    const a = new Agent({ connect });
    agents.push(a);
    return a;
  };

  beforeAll(async () => {
    pki = makeTestPki();
    s = await startLegacyStandIn({
      tls: { cert: pki.serverCertPem, key: pki.serverKeyPem, ca: pki.caPem, requireClientCert: true },
    });
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await s.close();
  });

  it('serves a client presenting the CA-signed endpoint certificate and records its CN', async () => {
    expect(s.origin).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const client = agent({ ca: pki.caPem, cert: pki.clientCertPem, key: pki.clientKeyPem });
    const res = await createSession(s, ASID, TICKET, client);
    expect(res.status).toBe(201);
    expect(s.received.at(-1)?.clientCertCN).toBe(CLIENT_CERT_CN);
  });

  it('refuses, at the TLS level, a client without a certificate or with another CA’s', async () => {
    const before = s.received.length;
    await expect(createSession(s, ASID, TICKET, agent({ ca: pki.caPem }))).rejects.toThrow();
    await expect(
      createSession(
        s,
        ASID,
        TICKET,
        agent({ ca: pki.caPem, cert: pki.otherClientCertPem, key: pki.otherClientKeyPem }),
      ),
    ).rejects.toThrow();
    expect(s.received.length).toBe(before);
  });

  it('is refused by a client that does not trust the test CA', async () => {
    const before = s.received.length;
    // The server sends its chain up to the test CA (OpenSSL completes it from the trusted `ca`), so the client sees
    // an untrusted root; without the CA in the chain it would be UNABLE_TO_VERIFY_LEAF_SIGNATURE.
    await expect(
      createSession(s, ASID, TICKET, agent({ cert: pki.clientCertPem, key: pki.clientKeyPem })),
    ).rejects.toMatchObject({
      code: expect.stringMatching(/^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/),
    });
    expect(s.received.length).toBe(before);
  });

  it('a self-signed server certificate fails verification; one-way TLS serves clients without a certificate', async () => {
    const selfSigned = await startLegacyStandIn({ tls: { cert: pki.selfSignedCertPem, key: pki.selfSignedKeyPem } });
    const oneWay = await startLegacyStandIn({ tls: { cert: pki.serverCertPem, key: pki.serverKeyPem } });
    try {
      await expect(createSession(selfSigned, ASID, TICKET, agent({ ca: pki.caPem }))).rejects.toMatchObject({
        code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
      });
      expect(selfSigned.received).toHaveLength(0);
      const res = await createSession(oneWay, ASID, TICKET, agent({ ca: pki.caPem }));
      expect(res.status).toBe(201);
      expect(oneWay.received[0]?.clientCertCN).toBeUndefined();
    } finally {
      await selfSigned.close();
      await oneWay.close();
    }
  });
});
