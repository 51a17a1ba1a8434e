/**
 * The request path's deciding steps, answer by answer: each refusal's exact reason, status, headers and diagnostics,
 * the boundaries of the ASID forms, the session key's length cut, and the certificate policy's wording.
 * steps.test.ts has the behaviour in outline; this file pins the words and the edges.
 */
import { describe, expect, it, vi } from 'vitest';
import type { PresentedCertificate } from '../../../src/auth/client-certificate.js';
import type { LegacyError } from '../../../src/legacy/errors.js';
import {
  ASID_HEADER,
  apimAccessProblem,
  asidForLog,
  callerCertificateProblem,
  LoadedSession,
  loadSession,
  messageSetProblem,
  refusalOf,
  requireCaller,
  SESSION_HEADER,
} from '../../../src/pipeline/steps.js';
import { sessionKeyHash, sessionKeyTag } from '../../../src/sessions/session.js';
import type { SessionStore } from '../../../src/sessions/store.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { appAsid, appSession, endpoint, legacyRejection, memoryStore, thrownBy, userSession } from './fakes.js';

const UNDERSCORES =
  'If the system does send the header, a proxy on the way is dropping headers with underscores: let them through (nginx: underscores_in_headers on; ingress-nginx: enable-underscores-in-headers "true"; AWS ALB: routing.http.drop_invalid_header_fields.enabled=false).';
const SIGN_IN_AGAIN =
  'Create a new session with A001 (POST /ers-api/v1/ProfessionalSession), select a role with A002, then repeat the call.';
const SIGN_IN_AGAIN_USER =
  "Sign in to CIS2 again (ers-bridge's /login page, or a fresh CIS2 ID token), create a new session with A001 and select a role with A002, then repeat the call.";

/** The parts of a LegacyError a caller sees. */
const seen = (e: LegacyError | undefined) =>
  e && { reason: e.reason, status: e.status, headers: e.headers, logAs: e.logAs, diagnostics: e.diagnostics };

describe('header names', () => {
  it('XAPI_ASID and HTTP_X_SESSION_KEY', () => {
    expect(ASID_HEADER).toBe('XAPI_ASID');
    expect(SESSION_HEADER).toBe('HTTP_X_SESSION_KEY');
  });
});

describe('refusalOf, word for word', () => {
  const UNKNOWN = {
    reason: 'UNKNOWN_ENDPOINT',
    status: 404,
    headers: {},
    logAs: 'UNKNOWN_ENDPOINT',
    diagnostics:
      'No e-RS operation is served at this path. Legacy STU3 calls look like /ers-api/STU3/v1/ReferralRequest/{ubrn}; sessions are /ers-api/v1/ProfessionalSession. Check the path against the e-RS endpoint catalogue.',
  };

  it('not-found and not-legacy: the same unknown-endpoint answer', () => {
    expect(seen(refusalOf({ kind: 'not-found', path: '/ers-api/x' }))).toStrictEqual(UNKNOWN);
    expect(seen(refusalOf({ kind: 'not-legacy' }))).toStrictEqual(UNKNOWN);
  });

  it('method-not-allowed: the codes, the methods, and Allow', () => {
    expect(seen(refusalOf({ kind: 'method-not-allowed', allow: ['GET', 'PUT'], codes: ['A005'] }))).toStrictEqual({
      reason: 'METHOD_NOT_ALLOWED',
      status: 405,
      headers: { allow: 'GET, PUT' },
      logAs: 'METHOD_NOT_ALLOWED',
      diagnostics: 'This path (A005) takes GET or PUT, not the method sent.',
    });
    expect(seen(refusalOf({ kind: 'method-not-allowed', allow: ['POST'], codes: ['A002', 'A003'] }))).toMatchObject({
      headers: { allow: 'POST' },
      diagnostics: 'This path (A002, A003) takes POST, not the method sent.',
    });
  });

  it('bad-path: the reason, as a sentence', () => {
    expect(seen(refusalOf({ kind: 'bad-path', reason: 'it has a NUL byte' }))).toStrictEqual({
      reason: 'BAD_PATH',
      status: 400,
      headers: {},
      logAs: 'BAD_PATH',
      diagnostics: 'The request path is not acceptable: it has a NUL byte.',
    });
  });

  it('dstu2: withdrawn, with the STU3 replacement', () => {
    expect(seen(refusalOf({ kind: 'dstu2', resource: 'Patient', replacement: 'A005 (GET …)' }))).toStrictEqual({
      reason: 'DSTU2_WITHDRAWN',
      status: 410,
      headers: {},
      logAs: 'DSTU2_WITHDRAWN',
      diagnostics:
        'The DSTU2 API (/ers-api/v1/Patient) was withdrawn in August 2024 and has no APIM equivalent. Use the STU3 call instead — A005 (GET …).',
    });
  });
});

describe('requireCaller, word for word', () => {
  const MISSING = `The XAPI_ASID header is missing. Send your system's ASID in XAPI_ASID on every call, as with the HSCN API. ${UNDERSCORES}`;
  const unknown = (shown: string, env: string) =>
    `ASID ${shown} is not configured in ers-bridge for environment ${env}. Check XAPI_ASID, or ask the ers-bridge operators to add this ASID to the rules.`;

  it.each([[{}], [{ xapi_asid: '' }], [{ xapi_asid: '   ' }]])('%o → ASID_MISSING', (headers) => {
    expect(seen(thrownBy(() => requireCaller(new Map(), 'int', headers)))).toStrictEqual({
      reason: 'ASID_MISSING',
      status: 403,
      headers: {},
      logAs: 'ASID_MISSING',
      diagnostics: MISSING,
    });
  });

  it.each([
    ['one digit', '7'],
    ['twenty digits', '1'.repeat(20)],
    ['twelve digits', '200000000001'],
  ])('%s, configured: found', (_name, asid) => {
    expect(requireCaller(new Map([[asid, { asid }]]), 'int', { xapi_asid: asid })).toStrictEqual({ asid });
  });

  it.each([
    ['one digit', '7'],
    ['twenty digits', '2'.repeat(20)],
  ])('%s, not configured: ASID_UNKNOWN naming it', (_name, asid) => {
    expect(seen(thrownBy(() => requireCaller(new Map([['1', 1]]), 'dep', { xapi_asid: asid })))).toStrictEqual({
      reason: 'ASID_UNKNOWN',
      status: 403,
      headers: {},
      logAs: 'ASID_UNKNOWN',
      diagnostics: unknown(asid, 'dep'),
    });
  });

  // Configured under a non-digit key, so a looser pattern would find it.
  it.each([
    ['letters before the digits', 'x12'],
    ['letters after the digits', '12x'],
    ['digits around a space', '1 2'],
    ['twenty-one digits', '3'.repeat(21)],
    ['letters only', 'abc'],
  ])('%s: never looked up, never echoed', (_name, asid) => {
    const e = thrownBy(() => requireCaller(new Map([[asid, { asid }]]), 'live', { xapi_asid: asid }));
    expect(seen(e)).toStrictEqual({
      reason: 'ASID_UNKNOWN',
      status: 403,
      headers: {},
      logAs: 'ASID_UNKNOWN',
      diagnostics: unknown('(not digits)', 'live'),
    });
  });
});

describe('asidForLog', () => {
  const callers = new Map<string, unknown>([
    ['abc', {}],
    ['12345', {}],
  ]);

  it.each([
    ['no header', {}, undefined],
    ['an empty header', { xapi_asid: '' }, undefined],
    ['a configured ASID that is not 12 digits', { xapi_asid: 'abc' }, 'abc'],
    ['a configured short ASID', { xapi_asid: '12345' }, '12345'],
    ['12 digits, not configured', { xapi_asid: '999000000001' }, '999000000001'],
    ['11 digits', { xapi_asid: '99900000000' }, '(not an ASID)'],
    ['13 digits', { xapi_asid: '9990000000012' }, '(not an ASID)'],
    ['a letter then 12 digits', { xapi_asid: 'x999000000001' }, '(not an ASID)'],
    ['12 digits then a letter', { xapi_asid: '999000000001x' }, '(not an ASID)'],
    ['12 letters', { xapi_asid: 'abcdefghijkl' }, '(not an ASID)'],
    ['anything else', { xapi_asid: 'DROP TABLE' }, '(not an ASID)'],
  ] as Array<[string, Record<string, string>, string | undefined]>)('%s → %s', (_name, headers, shown) => {
    expect(asidForLog(callers, headers)).toBe(shown);
  });
});

describe('loadSession, word for word and at the edges', () => {
  const clock = new ManualClock(1_700_000_000_000);
  const KEY = 'pro-api-session:aaaaaaaa-2222-3333-4444-555555555555';
  const lookup = { asid: '200000000001', requireRole: true, userRestricted: false };

  async function storeWith(key = KEY, session = appSession(clock.now())) {
    const store = memoryStore(clock);
    await store.create(key, session);
    return store;
  }

  /** A store that records what it was asked and answers `answer`. */
  function recording(answer: ReturnType<typeof appSession> | undefined) {
    const get = vi.fn(async (_key: string, _hash?: string, _asid?: string) => answer);
    return { store: { get } as unknown as SessionStore, get };
  }

  it.each([
    ['no header', {}],
    ['an empty header', { http_x_session_key: '' }],
  ])('%s, no key in the path → SESSION_KEY_MISSING', async (_name, headers) => {
    const { store, get } = recording(undefined);
    expect(seen(await legacyRejection(loadSession(store, headers, lookup)))).toStrictEqual({
      reason: 'SESSION_KEY_MISSING',
      status: 403,
      headers: {},
      logAs: 'SESSION_KEY_MISSING',
      diagnostics: `The HTTP_X_SESSION_KEY header is missing. Send the id returned by A001 in HTTP_X_SESSION_KEY. ${SIGN_IN_AGAIN} ${UNDERSCORES}`,
    });
    expect(get).not.toHaveBeenCalled();
  });

  it('an empty key in the path and no header → SESSION_KEY_MISSING', async () => {
    const { store } = recording(undefined);
    const e = await legacyRejection(loadSession(store, {}, { ...lookup, keyFromPath: '' }));
    expect(e.reason).toBe('SESSION_KEY_MISSING');
  });

  it('an empty header is the key even with one in the path → SESSION_KEY_MISSING', async () => {
    const { store } = recording(undefined);
    const e = await legacyRejection(loadSession(store, { http_x_session_key: '' }, { ...lookup, keyFromPath: KEY }));
    expect(e.reason).toBe('SESSION_KEY_MISSING');
  });

  it('path and header differ → SESSION_KEY_PATH_MISMATCH, word for word; the store is not read', async () => {
    const { store, get } = recording(appSession(clock.now()));
    const e = await legacyRejection(loadSession(store, { http_x_session_key: 'b' }, { ...lookup, keyFromPath: 'a' }));
    expect(seen(e)).toStrictEqual({
      reason: 'SESSION_KEY_PATH_MISMATCH',
      status: 403,
      headers: {},
      logAs: 'SESSION_KEY_PATH_MISMATCH',
      diagnostics:
        'The session key in the URL differs from the HTTP_X_SESSION_KEY header; send the same session id in both.',
    });
    expect(get).not.toHaveBeenCalled();
  });

  it('the store is asked once, with the key, its hash and the calling ASID; the answer keeps key, session and tag', async () => {
    const session = appSession(clock.now());
    const { store, get } = recording(session);
    const got = await loadSession(store, { http_x_session_key: KEY }, lookup);
    expect(get.mock.calls).toEqual([[KEY, sessionKeyHash(KEY), '200000000001']]);
    expect(got).toBeInstanceOf(LoadedSession);
    expect(got.key).toBe(KEY);
    expect(got.session).toBe(session);
    expect(got.tag).toBe(sessionKeyTag(KEY));
    expect(got.tag).toHaveLength(10);
  });

  it.each([
    ['199', 199],
    ['200', 200],
  ])('a key of %s characters is read as it is', async (_name, n) => {
    const key = 'k'.repeat(n);
    const { store, get } = recording(appSession(clock.now()));
    const got = await loadSession(store, { http_x_session_key: key }, lookup);
    expect(get.mock.calls).toEqual([[key, sessionKeyHash(key), '200000000001']]);
    expect(got.key).toBe(key);
    expect(got.tag).toBe(sessionKeyTag(key));
  });

  it.each([
    ['201', 201],
    ['1024', 1024],
  ])('a key of %s characters is read by its first 200 (the record keeps the key as sent)', async (_name, n) => {
    const key = 'k'.repeat(200) + 'z'.repeat(n - 200);
    const cut = 'k'.repeat(200);
    const { store, get } = recording(appSession(clock.now()));
    const got = await loadSession(store, { http_x_session_key: key }, lookup);
    expect(get.mock.calls).toEqual([[cut, sessionKeyHash(cut), '200000000001']]);
    expect(got.key).toBe(key);
    expect(got.tag).toBe(sessionKeyTag(cut));
  });

  it('a long key finds the session stored under its first 200 characters (the real store)', async () => {
    const cut = 'p'.repeat(200);
    const got = await loadSession(await storeWith(cut), { http_x_session_key: `${cut}tail` }, lookup);
    expect(got.key).toBe(`${cut}tail`);
    expect(got.session.asid).toBe('200000000001');
  });

  it('the key from the path is read when no header is sent', async () => {
    const { store, get } = recording(appSession(clock.now()));
    const got = await loadSession(store, {}, { ...lookup, keyFromPath: 'from-path' });
    expect(get.mock.calls).toEqual([['from-path', sessionKeyHash('from-path'), '200000000001']]);
    expect(got.key).toBe('from-path');
  });

  it('the header alone, with no key in the path, is read', async () => {
    const { store, get } = recording(appSession(clock.now()));
    const got = await loadSession(store, { 'http-x-session-key': 'hdr' }, lookup);
    expect(get).toHaveBeenCalledTimes(1);
    expect(got.key).toBe('hdr');
  });

  it('unknown → SESSION_UNKNOWN word for word, application-restricted advice', async () => {
    const { store } = recording(undefined);
    expect(seen(await legacyRejection(loadSession(store, { http_x_session_key: KEY }, lookup)))).toStrictEqual({
      reason: 'SESSION_UNKNOWN',
      status: 403,
      headers: {},
      logAs: 'SESSION_UNKNOWN',
      diagnostics: `The session in HTTP_X_SESSION_KEY is unknown, has expired or was deleted. ${SIGN_IN_AGAIN}`,
    });
  });

  it('unknown for a user-restricted caller → the CIS2 advice, word for word', async () => {
    const { store } = recording(undefined);
    const e = await legacyRejection(
      loadSession(store, { http_x_session_key: KEY }, { ...lookup, userRestricted: true }),
    );
    expect(e.diagnostics).toBe(
      `The session in HTTP_X_SESSION_KEY is unknown, has expired or was deleted. ${SIGN_IN_AGAIN_USER}`,
    );
    expect(e.logAs).toBe('SESSION_UNKNOWN');
  });

  it("another ASID's session (as a store may answer) → SESSION_UNKNOWN, logged as SESSION_ASID_MISMATCH", async () => {
    const { store } = recording(userSession(clock.now()));
    const e = await legacyRejection(
      loadSession(store, { http_x_session_key: KEY }, { ...lookup, userRestricted: true }),
    );
    expect(seen(e)).toStrictEqual({
      reason: 'SESSION_UNKNOWN',
      status: 403,
      headers: {},
      logAs: 'SESSION_ASID_MISMATCH',
      diagnostics: `The session in HTTP_X_SESSION_KEY is unknown, has expired or was deleted. ${SIGN_IN_AGAIN_USER}`,
    });
  });

  it('no role, role required → SESSION_ROLE_NOT_SELECTED word for word; with a role it is returned', async () => {
    const { store } = recording(appSession(clock.now(), { permission: null }));
    expect(seen(await legacyRejection(loadSession(store, { http_x_session_key: KEY }, lookup)))).toStrictEqual({
      reason: 'SESSION_ROLE_NOT_SELECTED',
      status: 403,
      headers: {},
      logAs: 'SESSION_ROLE_NOT_SELECTED',
      diagnostics:
        "No role is selected for this session. Select one of the session's permissions with A002 (PUT /ers-api/v1/ProfessionalSession/{id}) before calling data endpoints.",
    });
    const withRole = appSession(clock.now());
    const got = await loadSession(recording(withRole).store, { http_x_session_key: KEY }, lookup);
    expect(got.session).toBe(withRole);
  });

  it('no role, none required → returned', async () => {
    const s = appSession(clock.now(), { permission: null });
    const got = await loadSession(recording(s).store, { http_x_session_key: KEY }, { ...lookup, requireRole: false });
    expect(got.session).toBe(s);
  });
});

describe('LoadedSession', () => {
  it('the tag is the first 10 characters of the hash it was given', () => {
    const s = new LoadedSession('key', appSession(0), 'ABCDEFGHIJKLMNOP');
    expect(s.tag).toBe('ABCDEFGHIJ');
    expect(s.key).toBe('key');
  });
});

describe('callerCertificateProblem, word for word', () => {
  const ASID = '999000000001';
  const FP = 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89';
  const OTHER = FP.replace('AB', '00');
  const presented = (over: Partial<PresentedCertificate> = {}): PresentedCertificate => ({
    source: 'tls',
    verified: true,
    sha256: OTHER,
    subjectCn: 'box.example.nhs.uk',
    dnsNames: [],
    issuer: 'Test CA',
    ...over,
  });
  const bound = (certificates: Array<{ sha256: string } | { subject: string }>) =>
    appAsid({ callerAuth: { certificates } } as never);
  const BOTH = bound([{ subject: 'sys.example.nhs.uk' }, { sha256: FP.replaceAll(':', '').toLowerCase() }]);
  const ACCEPTS = `sys.example.nhs.uk, SHA-256 ${FP}`;

  it('none presented → CALLER_CERTIFICATE_REQUIRED, naming what the ASID accepts (fingerprints normalised)', () => {
    expect(seen(callerCertificateProblem(ASID, BOTH, undefined))).toStrictEqual({
      reason: 'CALLER_CERTIFICATE_REQUIRED',
      status: 403,
      headers: {},
      logAs: 'CALLER_CERTIFICATE_REQUIRED',
      diagnostics: `ASID ${ASID} accepts only calls made with its endpoint certificate (mutual TLS), and no client certificate was presented. Configure the system's HTTPS client to present the Spine endpoint certificate it used for HSCN (ASID ${ASID} accepts: ${ACCEPTS}).`,
    });
  });

  it('unverified, with a problem: the problem, even when it matches', () => {
    const e = callerCertificateProblem(
      ASID,
      BOTH,
      presented({ verified: false, problem: 'self-signed certificate', subjectCn: 'sys.example.nhs.uk' }),
    );
    expect(seen(e)).toStrictEqual({
      reason: 'CALLER_CERTIFICATE_REFUSED',
      status: 403,
      headers: {},
      logAs: 'CALLER_CERTIFICATE_REFUSED',
      diagnostics: `The client certificate presented (CN=sys.example.nhs.uk, SHA-256 ${OTHER}, issued by Test CA) could not be verified: self-signed certificate. ASID ${ASID} accepts: ${ACCEPTS}.`,
    });
  });

  it('unverified, no problem given, no CN, no issuer', () => {
    const e = callerCertificateProblem(
      ASID,
      BOTH,
      presented({ verified: false, subjectCn: undefined, issuer: undefined }),
    );
    expect(e?.diagnostics).toBe(
      `The client certificate presented (CN=(none), SHA-256 ${OTHER}) could not be verified: not from a trusted CA. ASID ${ASID} accepts: ${ACCEPTS}.`,
    );
  });

  it('verified but not bound → CALLER_CERTIFICATE_REFUSED, word for word', () => {
    const e = callerCertificateProblem(ASID, BOTH, presented({ dnsNames: ['other.example.nhs.uk'] }));
    expect(seen(e)).toStrictEqual({
      reason: 'CALLER_CERTIFICATE_REFUSED',
      status: 403,
      headers: {},
      logAs: 'CALLER_CERTIFICATE_REFUSED',
      diagnostics: `The client certificate presented (CN=box.example.nhs.uk, SHA-256 ${OTHER}, issued by Test CA) is not one ASID ${ASID} accepts; it accepts: ${ACCEPTS}. Present the endpoint certificate of the system this ASID belongs to, or ask the ers-bridge operators to bind this certificate to the ASID.`,
    });
  });

  it('an empty issuer is not named', () => {
    const e = callerCertificateProblem(ASID, BOTH, presented({ issuer: '' }));
    expect(e?.diagnostics).toContain(`(CN=box.example.nhs.uk, SHA-256 ${OTHER}) is not one`);
  });

  it.each([
    ['the CN, bound by subject', bound([{ subject: 'box.example.nhs.uk' }]), presented()],
    ['the CN, bound in capitals', bound([{ subject: 'BOX.Example.NHS.uk' }]), presented()],
    [
      'a DNS name, no CN',
      bound([{ subject: 'san.example.nhs.uk' }]),
      presented({ subjectCn: undefined, dnsNames: ['x.example', 'san.example.nhs.uk'] }),
    ],
    ['the fingerprint', bound([{ sha256: OTHER }]), presented()],
    ['the second of two', bound([{ sha256: FP }, { subject: 'box.example.nhs.uk' }]), presented()],
    ['the first of two', bound([{ subject: 'box.example.nhs.uk' }, { sha256: FP }]), presented()],
  ])('verified and bound (%s) → no problem', (_name, config, cert) => {
    expect(callerCertificateProblem(ASID, config, cert)).toBeUndefined();
  });

  it.each([
    ['a subject is not a fingerprint', bound([{ subject: OTHER }]), presented()],
    ['a fingerprint is not a subject', bound([{ sha256: FP }]), presented({ subjectCn: FP })],
    ['an empty CN matches no subject', bound([{ subject: '' }]), presented({ subjectCn: '' })],
  ])('%s', (_name, config, cert) => {
    expect(callerCertificateProblem(ASID, config, cert)?.reason).toBe('CALLER_CERTIFICATE_REFUSED');
  });

  it('no binding, or callerAuth without certificates → no problem, whatever is presented', () => {
    expect(callerCertificateProblem(ASID, appAsid(), presented({ verified: false }))).toBeUndefined();
    expect(
      callerCertificateProblem(ASID, appAsid({ callerAuth: { a001Secret: 'env:S' } } as never), undefined),
    ).toBeUndefined();
  });
});

describe('messageSetProblem, word for word', () => {
  it('outside the allowed codes', () => {
    const e = messageSetProblem(endpoint('A010'), '200000000001', appAsid({ allowedCodes: ['A005'] }));
    expect(seen(e)).toStrictEqual({
      reason: 'ENDPOINT_NOT_ALLOWED_FOR_ASID',
      status: 403,
      headers: {},
      logAs: 'ENDPOINT_NOT_ALLOWED_FOR_ASID',
      diagnostics:
        "A010 (Patient service search) is not among the operations ASID 200000000001 may use (A005). Ask the ers-bridge operators if this ASID's message sets should include it.",
    });
  });

  it('an empty list allows nothing', () => {
    const e = messageSetProblem(endpoint('A005'), '1', appAsid({ allowedCodes: [] }));
    expect(e?.diagnostics).toBe(
      "A005 (Retrieve referral request) is not among the operations ASID 1 may use (). Ask the ers-bridge operators if this ASID's message sets should include it.",
    );
  });
});

describe('apimAccessProblem, word for word', () => {
  it('application-restricted on a user-only operation', () => {
    const e = apimAccessProblem(endpoint('A030'), '200000000001', {
      accessMode: 'application-restricted',
      businessFunction: undefined,
    });
    expect(seen(e)).toStrictEqual({
      reason: 'ENDPOINT_NOT_APP_RESTRICTED',
      status: 403,
      headers: {},
      logAs: 'ENDPOINT_NOT_APP_RESTRICTED',
      diagnostics:
        'A030 (Retrieve user business functions) needs a healthcare worker signed in with CIS2 (user-restricted access); ASID 200000000001 is application-restricted, so APIM would refuse it. Use a user-restricted ASID for this operation.',
    });
  });

  it('a business function the operation does not take', () => {
    const e = apimAccessProblem(endpoint('A005'), '1', {
      accessMode: 'user-restricted',
      businessFunction: 'COMMISSIONER',
    });
    expect(seen(e)).toStrictEqual({
      reason: 'BUSINESS_FUNCTION_NOT_ALLOWED',
      status: 403,
      headers: {},
      logAs: 'BUSINESS_FUNCTION_NOT_ALLOWED',
      diagnostics:
        'A005 (Retrieve referral request) cannot be used with the business function COMMISSIONER; it takes REFERRING_CLINICIAN, REFERRING_CLINICIAN_ADMIN, SERVICE_PROVIDER_CLINICIAN, SERVICE_PROVIDER_CLINICIAN_ADMIN. Select another role with A002.',
    });
  });

  it('application-restricted with a business function the operation does not take: not checked', () => {
    expect(
      apimAccessProblem(endpoint('A005'), '1', {
        accessMode: 'application-restricted',
        businessFunction: 'COMMISSIONER',
      }),
    ).toBeUndefined();
  });

  it('user-restricted on a user-only operation with an allowed function: no problem', () => {
    expect(
      apimAccessProblem(endpoint('A010'), '1', {
        accessMode: 'user-restricted',
        businessFunction: 'REFERRING_CLINICIAN',
      }),
    ).toBeUndefined();
  });

  it('user-restricted, an empty business function: not checked', () => {
    expect(
      apimAccessProblem(endpoint('A005'), '1', { accessMode: 'user-restricted', businessFunction: '' }),
    ).toBeUndefined();
  });
});
