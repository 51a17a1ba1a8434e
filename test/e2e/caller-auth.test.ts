/**
 * Caller authentication (issue 12): an ASID is a header, not a credential, so ers-bridge checks that the caller is
 * the system the ASID belongs to — by the client certificate of its own TLS connection, by the one a trusted
 * TLS-terminating proxy verified and forwarded, or by an A001 secret — on every call, A001 to data calls. Also the
 * Host allow-list of the legacy port, and TLS certificates reloaded with the rules. Real sockets throughout: the
 * APIM stand-in, ers-bridge on loopback (HTTPS where the test needs it), undici clients presenting certificates
 * made at test time (test/helpers/more-pki.ts).
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse, stringify } from 'yaml';
import { createLogger } from '../../src/logging.js';
import { RulesReloader } from '../../src/rules/reload.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime } from '../../src/runtime/runtime.js';
import { applyListenerSettings } from '../../src/server.js';
import {
  A001_BODY,
  type CallerBridge,
  callerVia,
  type LegacyCall,
  type RulesDoc,
  SESSION_PATH,
  sessionVia,
  startCallerBridge,
} from '../helpers/caller-bridge.js';
import { APP_ASID, captureLogs, expectLegacyOutcome, LIMITED_ASID, OTHER_ASID } from '../helpers/harness.js';
import { type LegacyStandIn, startLegacyStandIn } from '../helpers/legacy-standin.js';
import {
  type CallerPki,
  CRAFTED_CN,
  LEGACY_CLIENT_CN,
  makeCallerPki,
  OTHER_SYSTEM_CN,
  type Pair,
} from '../helpers/more-pki.js';

const A005 = (ubrn = '000000070000') => `/ers-api/STU3/v1/ReferralRequest/${ubrn}`;
const A004 = '/ers-api/STU3/v1/CodeSystem/SPECIALTY';
const HEX_ASID = '999000000004';
const PREFIXED_ASID = '999000000005';
const NETWORK_ONLY = 'the test listener is on loopback: only this test process can reach it';

let pki: CallerPki;
beforeAll(() => {
  pki = makeCallerPki();
});

const agents: Agent[] = [];
afterAll(async () => {
  await Promise.all(agents.map((a) => a.close()));
});

/** An HTTPS client trusting the test CA, presenting `pair` when given (a fresh pool per client). */
function tlsClient(pair?: Pair): Agent {
  const agent = new Agent({ connect: { ca: pki.caPem, ...(pair ? { cert: pair.cert, key: pair.key } : {}) } });
  agents.push(agent);
  return agent;
}

/** The ers-bridge server TLS block, with the secrets as env: references (see tlsEnv). */
const serverTls = (clientCertificates: 'required' | 'optional' | 'off', ca = true) => ({
  certificate: 'env:SERVER_CERT',
  privateKey: 'env:SERVER_KEY',
  clientCertificates,
  ...(ca ? { clientCa: 'env:CLIENT_CA' } : {}),
});
const tlsEnv = () => ({ SERVER_CERT: pki.server.cert, SERVER_KEY: pki.server.key, CLIENT_CA: pki.caPem });

const bySubject = { certificates: [{ subject: LEGACY_CLIENT_CN }] };

/** A call with extra headers on every request (a proxy's forwarded certificate). */
const withHeaders =
  (call: LegacyCall, extra: Record<string, string>): LegacyCall =>
  (method, path, headers = {}, body) =>
    call(method, path, { ...extra, ...headers }, body);

const a001 = (call: LegacyCall, asid: string, token?: string) =>
  call('POST', SESSION_PATH, { XAPI_ASID: asid, 'Content-Type': 'application/json' }, A001_BODY(token));

describe('direct mutual TLS (server.tls clientCertificates: required)', () => {
  let b: CallerBridge;
  beforeAll(async () => {
    b = await startCallerBridge({
      rules: { asids: { [HEX_ASID]: {}, [PREFIXED_ASID]: {} } },
      patch: (doc) => {
        doc.server = { ...doc.server, tls: serverTls('required') };
        doc.asids[APP_ASID].callerAuth = bySubject;
        doc.asids[OTHER_ASID].callerAuth = { certificates: [{ sha256: pki.client.sha256 }] };
        doc.asids[HEX_ASID].callerAuth = {
          certificates: [{ sha256: pki.client.sha256.replaceAll(':', '').toLowerCase() }],
        };
        doc.asids[PREFIXED_ASID].callerAuth = { certificates: [{ sha256: `sha256:${pki.client.sha256}` }] };
        doc.asids[LIMITED_ASID].callerAuth = { networkOnly: NETWORK_ONLY };
      },
      env: tlsEnv(),
    });
  }, 30_000);
  afterAll(async () => {
    await b?.close();
  });

  it('listens on https', () => {
    expect(b.bridgeUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('with its endpoint certificate the bound ASID works: A001 201, A002 200, A005 200, A003 204', async () => {
    const call = callerVia(b.bridgeUrl, tlsClient(pki.client));
    const created = await a001(call, APP_ASID);
    expect(created.status).toBe(201);
    const session = created.json();
    const a002 = await call(
      'PUT',
      `${SESSION_PATH}/${session.id}`,
      { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/json' },
      JSON.stringify({ ...session, permission: session.user.permissions[0] }),
    );
    expect(a002.status).toBe(200);
    const before = b.standIn.received.length;
    const a005 = await call('GET', A005(), { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: session.id });
    expect(a005.status).toBe(200);
    expect(a005.json()).toMatchObject({ resourceType: 'ReferralRequest', id: '000000070000' });
    expect(b.standIn.received.length).toBe(before + 1);
    // Links are built for the https origin the client called.
    expect(a005.body.toString()).toContain(`https://127.0.0.1:${new URL(b.bridgeUrl).port}/ers-api/STU3/v1/`);
    const a003 = await call('DELETE', `${SESSION_PATH}/${session.id}`, {
      XAPI_ASID: APP_ASID,
      HTTP_X_SESSION_KEY: session.id,
    });
    expect(a003.status).toBe(204);
    // The very same calls without the certificate get no answer at all.
    await expect(a001(callerVia(b.bridgeUrl, tlsClient()), APP_ASID)).rejects.toThrow();
  });

  it('a client certificate matches a subject binding by its SAN DNS name too', async () => {
    const res = await a001(callerVia(b.bridgeUrl, tlsClient(pki.sanClient)), APP_ASID);
    expect(res.status).toBe(201);
    // Another system of the same CA, without the name in CN or SAN, is refused.
    const other = await a001(callerVia(b.bridgeUrl, tlsClient(pki.otherSystem)), APP_ASID);
    expectLegacyOutcome(other, 403, 'CALLER_CERTIFICATE_REFUSED');
  });

  it('without a client certificate there is no handshake: nothing is answered, nothing reaches APIM', async () => {
    const before = b.standIn.received.length + b.standIn.tokenRequests.length;
    await expect(a001(callerVia(b.bridgeUrl, tlsClient()), LIMITED_ASID)).rejects.toThrow();
    expect(b.standIn.received.length + b.standIn.tokenRequests.length).toBe(before);
  });

  it("another CA's certificate — even one with the bound CN — gets no handshake", async () => {
    await expect(a001(callerVia(b.bridgeUrl, tlsClient(pki.foreign)), APP_ASID)).rejects.toThrow();
    await expect(a001(callerVia(b.bridgeUrl, tlsClient(pki.foreign)), LIMITED_ASID)).rejects.toThrow();
  });

  it('the same CA, another system: 403 CALLER_CERTIFICATE_REFUSED naming the CN and SHA-256 seen and the subject wanted', async () => {
    const res = await a001(callerVia(b.bridgeUrl, tlsClient(pki.otherSystem)), APP_ASID);
    const issue = expectLegacyOutcome(res, 403, 'CALLER_CERTIFICATE_REFUSED');
    expect(issue.diagnostics).toContain(`CN=${OTHER_SYSTEM_CN}`);
    expect(issue.diagnostics).toContain(pki.otherSystem.sha256);
    expect(issue.diagnostics).toContain(`accepts: ${LEGACY_CLIENT_CN}`);
    expect(issue.diagnostics).toContain(APP_ASID);
    // Nothing secret in it: no PEM, no key.
    expect(issue.diagnostics).not.toContain('BEGIN');
    // The unbound ASID accepts any certificate of the trusted CA.
    expect((await a001(callerVia(b.bridgeUrl, tlsClient(pki.otherSystem)), LIMITED_ASID)).status).toBe(201);
  });

  it('the bound name inside another attribute (O="Evil, CN=<name>") is no CN: refused', async () => {
    for (const [pair, cn] of [
      [pki.craftedO, CRAFTED_CN],
      [pki.craftedSlash, '(none)'],
    ] as const) {
      const res = await a001(callerVia(b.bridgeUrl, tlsClient(pair)), APP_ASID);
      expect(expectLegacyOutcome(res, 403, 'CALLER_CERTIFICATE_REFUSED').diagnostics).toContain(`CN=${cn},`);
    }
  });

  it('the binding holds on every call: a session made with the right certificate is refused with another', async () => {
    const right = callerVia(b.bridgeUrl, tlsClient(pki.client));
    const other = callerVia(b.bridgeUrl, tlsClient(pki.otherSystem));
    const key = await sessionVia(right, APP_ASID);
    const headers = { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key };
    const before = b.standIn.received.length;
    expectLegacyOutcome(await other('GET', A005(), headers), 403, 'CALLER_CERTIFICATE_REFUSED');
    expectLegacyOutcome(
      await other(
        'PUT',
        `${SESSION_PATH}/${key}`,
        { ...headers, 'Content-Type': 'application/json' },
        JSON.stringify({ permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' } }),
      ),
      403,
      'CALLER_CERTIFICATE_REFUSED',
    );
    expectLegacyOutcome(await other('DELETE', `${SESSION_PATH}/${key}`, headers), 403, 'CALLER_CERTIFICATE_REFUSED');
    expect(b.standIn.received.length).toBe(before);
    // The refused A003 did not end the session: its owner still uses it.
    expect((await right('GET', A005(), headers)).status).toBe(200);
  });

  it.each([
    ['with colons', OTHER_ASID],
    ['as lower-case hex without colons', HEX_ASID],
    ['with the sha256: prefix', PREFIXED_ASID],
  ])('a sha256 fingerprint binding (%s) accepts that certificate and no other', async (_how, asid) => {
    const key = await sessionVia(callerVia(b.bridgeUrl, tlsClient(pki.client)), asid);
    expect(key).toMatch(/^pro-api-session:/);
    const res = await a001(callerVia(b.bridgeUrl, tlsClient(pki.otherSystem)), asid);
    const issue = expectLegacyOutcome(res, 403, 'CALLER_CERTIFICATE_REFUSED');
    // Whatever the spelling in the rules, the fingerprint is shown in openssl's form.
    expect(issue.diagnostics).toContain(`accepts: SHA-256 ${pki.client.sha256}`);
    // A certificate with the right name but another key is not the bound one.
    expectLegacyOutcome(
      await a001(callerVia(b.bridgeUrl, tlsClient(pki.sanClient)), asid),
      403,
      'CALLER_CERTIFICATE_REFUSED',
    );
  });
});

describe('optional client certificates (server.tls clientCertificates: optional)', () => {
  let b: CallerBridge;
  beforeAll(async () => {
    b = await startCallerBridge({
      patch: (doc) => {
        doc.server = { ...doc.server, tls: serverTls('optional') };
        doc.asids[APP_ASID].callerAuth = bySubject;
        doc.asids[OTHER_ASID].callerAuth = { networkOnly: NETWORK_ONLY };
      },
      env: tlsEnv(),
    });
  }, 30_000);
  afterAll(async () => {
    await b?.close();
  });

  it('a bound ASID without a certificate → 403 CALLER_CERTIFICATE_REQUIRED, saying what it accepts', async () => {
    const res = await a001(callerVia(b.bridgeUrl, tlsClient()), APP_ASID);
    const issue = expectLegacyOutcome(res, 403, 'CALLER_CERTIFICATE_REQUIRED');
    expect(issue.diagnostics).toContain(LEGACY_CLIENT_CN);
  });

  it('the bound ASID with its certificate works; its session without the certificate does not', async () => {
    const call = callerVia(b.bridgeUrl, tlsClient(pki.client));
    const key = await sessionVia(call, APP_ASID);
    const headers = { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key };
    expect((await call('GET', A005(), headers)).status).toBe(200);
    const bare = await callerVia(b.bridgeUrl, tlsClient())('GET', A005(), headers);
    expectLegacyOutcome(bare, 403, 'CALLER_CERTIFICATE_REQUIRED');
  });

  it('an unbound (networkOnly) ASID works without a certificate, on the same connection a bound one is refused on', async () => {
    const call = callerVia(b.bridgeUrl, tlsClient());
    const key = await sessionVia(call, OTHER_ASID);
    expect((await call('GET', A005(), { XAPI_ASID: OTHER_ASID, HTTP_X_SESSION_KEY: key })).status).toBe(200);
    expectLegacyOutcome(await a001(call, APP_ASID), 403, 'CALLER_CERTIFICATE_REQUIRED');
  });

  it('another CA\'s certificate with the bound CN is presented but unverified → 403 "could not be verified"', async () => {
    const res = await a001(callerVia(b.bridgeUrl, tlsClient(pki.foreign)), APP_ASID);
    const issue = expectLegacyOutcome(res, 403, 'CALLER_CERTIFICATE_REFUSED');
    expect(issue.diagnostics).toContain('could not be verified');
    expect(issue.diagnostics).toContain(pki.foreign.sha256);
  });

  it('an expired certificate from the trusted CA with the bound CN → 403, its expiry named', async () => {
    const notAfter = Date.parse(new X509Certificate(pki.expired.cert).validTo);
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(notAfter + 1000), { timeout: 3_000, interval: 50 });
    const res = await a001(callerVia(b.bridgeUrl, tlsClient(pki.expired)), APP_ASID);
    const issue = expectLegacyOutcome(res, 403, 'CALLER_CERTIFICATE_REFUSED');
    expect(issue.diagnostics).toMatch(/could not be verified: .*expired/i);
    expect(issue.diagnostics).toContain(pki.expired.sha256);
  });
});

describe('behind a TLS-terminating proxy (server.trustedProxies)', () => {
  let legacy: LegacyStandIn;
  beforeAll(async () => {
    legacy = await startLegacyStandIn();
  });
  afterAll(async () => {
    await legacy?.close();
  });

  const legacyRules = () => ({ host: 'api.int1.ers.ncrs.nhs.uk', baseUrl: legacy.baseUrl, production: false });
  /** ingress-nginx's headers for `pair`; `verify` null: no ssl-client-verify header at all. */
  const nginx = (pair: Pair, verify: string | null = 'SUCCESS') => ({
    'ssl-client-cert': encodeURIComponent(pair.cert),
    ...(verify !== null ? { 'ssl-client-verify': verify } : {}),
    'ssl-client-subject-dn': `CN=${LEGACY_CLIENT_CN}`,
  });
  const FORWARDED = ['ssl-client-cert', 'ssl-client-verify', 'ssl-client-subject-dn', 'x-forwarded-client-cert'];
  /** Forwarded-certificate headers among those a server received. */
  const forwardedIn = (received: Array<{ rawHeaders: Array<[string, string]> }>) =>
    received.flatMap((r) => r.rawHeaders.map(([n]) => n.toLowerCase()).filter((n) => FORWARDED.includes(n)));

  describe('ingress-nginx (ssl-client-cert), the proxy at 127.0.0.1 trusted', () => {
    let b: CallerBridge;
    beforeAll(async () => {
      b = await startCallerBridge({
        rules: { legacy: legacyRules(), modes: { routes: { A004: 'passthrough' } } },
        patch: (doc) => {
          doc.server = {
            ...doc.server,
            trustedProxies: { addresses: ['127.0.0.1'], clientCertificateHeader: 'ssl-client-cert' },
          };
          doc.asids[APP_ASID].callerAuth = bySubject;
        },
      });
    }, 30_000);
    afterAll(async () => {
      await b?.close();
    });

    it('the URL-encoded PEM with ssl-client-verify: SUCCESS → the bound ASID works; the headers go no further', async () => {
      const call = withHeaders(callerVia(b.bridgeUrl), nginx(pki.client));
      const key = await sessionVia(call, APP_ASID);
      const apimBefore = b.standIn.received.length;
      const legacyBefore = legacy.received.length;
      expect((await call('GET', A005(), { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key })).status).toBe(200);
      // A004 is passed through to the legacy host, unchanged but for the forwarded certificate.
      const a004 = await call('GET', A004, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key, 'X-Legacy-Probe': 'kept' });
      expect(a004.status).toBe(200);
      const apim = b.standIn.received.slice(apimBefore);
      const atLegacy = legacy.received.slice(legacyBefore);
      expect(apim).toHaveLength(1);
      expect(atLegacy.some((r) => r.headers['x-legacy-probe'] === 'kept')).toBe(true);
      expect(forwardedIn(apim)).toEqual([]);
      expect(forwardedIn(atLegacy)).toEqual([]);
    });

    it('without ssl-client-verify: SUCCESS the forwarded certificate is refused', async () => {
      for (const verify of [null, 'FAILED:unable to verify the first certificate', 'NONE', '']) {
        const res = await a001(withHeaders(callerVia(b.bridgeUrl), nginx(pki.client, verify)), APP_ASID);
        const issue = expectLegacyOutcome(res, 403, 'CALLER_CERTIFICATE_REFUSED');
        expect(issue.diagnostics).toContain('did not verify');
      }
    });

    it('no forwarded certificate → CALLER_CERTIFICATE_REQUIRED; another system’s → REFUSED', async () => {
      expectLegacyOutcome(await a001(callerVia(b.bridgeUrl), APP_ASID), 403, 'CALLER_CERTIFICATE_REQUIRED');
      const res = await a001(withHeaders(callerVia(b.bridgeUrl), nginx(pki.otherSystem)), APP_ASID);
      expect(expectLegacyOutcome(res, 403, 'CALLER_CERTIFICATE_REFUSED').diagnostics).toContain(
        `CN=${OTHER_SYSTEM_CN}`,
      );
    });

    it('a forwarded certificate with the bound name only inside its O ("Evil, CN=…", "Evil/CN=…") is refused', async () => {
      for (const [pair, cn] of [
        [pki.craftedO, CRAFTED_CN],
        [pki.craftedSlash, '(none)'],
      ] as const) {
        const res = await a001(withHeaders(callerVia(b.bridgeUrl), nginx(pair)), APP_ASID);
        expect(expectLegacyOutcome(res, 403, 'CALLER_CERTIFICATE_REFUSED').diagnostics).toContain(`CN=${cn},`);
      }
    });
  });

  describe('a plain-HTTP listener with server.trustedProxies.clientCa: the forwarded chain is checked again', () => {
    let b: CallerBridge;
    beforeAll(async () => {
      b = await startCallerBridge({
        patch: (doc) => {
          doc.server = {
            ...doc.server,
            trustedProxies: {
              addresses: ['127.0.0.1'],
              clientCertificateHeader: 'ssl-client-cert',
              clientCa: 'env:CLIENT_CA',
            },
          };
          doc.asids[APP_ASID].callerAuth = bySubject;
        },
        env: { CLIENT_CA: pki.caPem },
      });
    }, 30_000);
    afterAll(async () => {
      await b?.close();
    });

    it("the right certificate passes; another CA's with the bound CN does not", async () => {
      const call = callerVia(b.bridgeUrl);
      expect((await a001(withHeaders(call, nginx(pki.client)), APP_ASID)).status).toBe(201);
      const issue = expectLegacyOutcome(
        await a001(withHeaders(call, nginx(pki.foreign)), APP_ASID),
        403,
        'CALLER_CERTIFICATE_REFUSED',
      );
      expect(issue.diagnostics).toContain('not issued by a CA');
    });
  });

  describe('ingress-nginx with server.tls.clientCa: the forwarded chain is checked again', () => {
    let b: CallerBridge;
    beforeAll(async () => {
      b = await startCallerBridge({
        patch: (doc) => {
          doc.server = {
            ...doc.server,
            tls: serverTls('off'),
            trustedProxies: { addresses: ['127.0.0.1'], clientCertificateHeader: 'ssl-client-cert' },
          };
          doc.asids[APP_ASID].callerAuth = bySubject;
        },
        env: tlsEnv(),
      });
    }, 30_000);
    afterAll(async () => {
      await b?.close();
    });

    it('a forwarded certificate of another CA (the bound CN, verify SUCCESS) → refused: not issued by a CA in clientCa', async () => {
      const res = await a001(withHeaders(callerVia(b.bridgeUrl, tlsClient()), nginx(pki.foreign)), APP_ASID);
      const issue = expectLegacyOutcome(res, 403, 'CALLER_CERTIFICATE_REFUSED');
      expect(issue.diagnostics).toContain('not issued by a CA in server.tls.clientCa');
    });

    it('an expired forwarded certificate (the bound CN, verify SUCCESS) → refused: outside its validity period', async () => {
      const notAfter = Date.parse(new X509Certificate(pki.expired.cert).validTo);
      await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(notAfter + 1000), { timeout: 3_000, interval: 50 });
      const res = await a001(withHeaders(callerVia(b.bridgeUrl, tlsClient()), nginx(pki.expired)), APP_ASID);
      const issue = expectLegacyOutcome(res, 403, 'CALLER_CERTIFICATE_REFUSED');
      expect(issue.diagnostics).toContain('outside its validity period');
    });

    it('the right certificate, forwarded, is accepted; none forwarded → CALLER_CERTIFICATE_REQUIRED', async () => {
      const res = await a001(withHeaders(callerVia(b.bridgeUrl, tlsClient()), nginx(pki.client)), APP_ASID);
      expect(res.status).toBe(201);
      expectLegacyOutcome(
        await a001(callerVia(b.bridgeUrl, tlsClient()), APP_ASID),
        403,
        'CALLER_CERTIFICATE_REQUIRED',
      );
    });
  });

  describe('Envoy (x-forwarded-client-cert), the proxy at 127.0.0.1 trusted', () => {
    let b: CallerBridge;
    beforeAll(async () => {
      b = await startCallerBridge({
        patch: (doc) => {
          doc.server = {
            ...doc.server,
            trustedProxies: {
              addresses: ['10.0.0.0/8', '127.0.0.1'],
              clientCertificateHeader: 'x-forwarded-client-cert',
            },
          };
          doc.asids[APP_ASID].callerAuth = bySubject;
          doc.asids[OTHER_ASID].callerAuth = { certificates: [{ sha256: pki.client.sha256 }] };
        },
      });
    }, 30_000);
    afterAll(async () => {
      await b?.close();
    });

    const hex = (p: Pair) => p.sha256.replaceAll(':', '').toLowerCase();
    const element = (p: Pair) =>
      `By=spiffe://cluster.local/ns/ers/sa/ers-bridge;Hash=${hex(p)};Cert="${encodeURIComponent(p.cert)}";Subject="CN=${LEGACY_CLIENT_CN}";URI=`;

    it('Cert="<url-encoded PEM>" → the bound ASID works', async () => {
      const call = withHeaders(callerVia(b.bridgeUrl), { 'x-forwarded-client-cert': element(pki.client) });
      const key = await sessionVia(call, APP_ASID);
      expect((await call('GET', A005(), { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key })).status).toBe(200);
      expect(b.standIn.received.every((r) => r.headers['x-forwarded-client-cert'] === undefined)).toBe(true);
      expectLegacyOutcome(
        await callerVia(b.bridgeUrl)('GET', A005(), { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key }),
        403,
        'CALLER_CERTIFICATE_REQUIRED',
      );
    });

    it('only Hash=<hex sha256> → a sha256 binding works; another hash is refused', async () => {
      const ok = await a001(
        withHeaders(callerVia(b.bridgeUrl), { 'x-forwarded-client-cert': `Hash=${hex(pki.client)}` }),
        OTHER_ASID,
      );
      expect(ok.status).toBe(201);
      const wrong = await a001(
        withHeaders(callerVia(b.bridgeUrl), { 'x-forwarded-client-cert': `Hash=${hex(pki.otherSystem)}` }),
        OTHER_ASID,
      );
      expectLegacyOutcome(wrong, 403, 'CALLER_CERTIFICATE_REFUSED');
    });

    it("only Hash and Subject: the proxy's Subject CN counts, but never a CN inside another attribute", async () => {
      const xfcc = (subject: string) => ({
        'x-forwarded-client-cert': `Hash=${hex(pki.craftedO)};Subject="${subject}"`,
      });
      const genuine = await a001(withHeaders(callerVia(b.bridgeUrl), xfcc(`CN=${LEGACY_CLIENT_CN},O=NHS`)), APP_ASID);
      expect(genuine.status).toBe(201);
      for (const subject of [
        `O=Evil\\, CN=${LEGACY_CLIENT_CN},CN=${CRAFTED_CN}`,
        `CN=${CRAFTED_CN},O=Evil\\, CN=${LEGACY_CLIENT_CN}`,
        `O=Evil\\2C CN=${LEGACY_CLIENT_CN}`,
        `CN=${CRAFTED_CN},CN=${LEGACY_CLIENT_CN}`,
      ]) {
        const res = await a001(withHeaders(callerVia(b.bridgeUrl), xfcc(subject)), APP_ASID);
        expect(res.status, subject).toBe(403);
        expectLegacyOutcome(res, 403, 'CALLER_CERTIFICATE_REFUSED');
      }
    });

    it('the element the nearest proxy appended (the last) is the one that counts', async () => {
      const spoofedFirst = `${element(pki.otherSystem)},${element(pki.client)}`;
      expect(
        (await a001(withHeaders(callerVia(b.bridgeUrl), { 'x-forwarded-client-cert': spoofedFirst }), APP_ASID)).status,
      ).toBe(201);
      const spoofedLast = `${element(pki.client)},${element(pki.otherSystem)}`;
      const res = await a001(withHeaders(callerVia(b.bridgeUrl), { 'x-forwarded-client-cert': spoofedLast }), APP_ASID);
      expectLegacyOutcome(res, 403, 'CALLER_CERTIFICATE_REFUSED');
    });
  });

  describe('from an address that is not a trusted proxy', () => {
    let b: CallerBridge;
    beforeAll(async () => {
      b = await startCallerBridge({
        rules: { legacy: legacyRules(), modes: { default: 'passthrough' } },
        patch: (doc) => {
          doc.server = {
            ...doc.server,
            trustedProxies: { addresses: ['10.0.0.0/8'], clientCertificateHeader: 'ssl-client-cert' },
          };
          doc.asids[APP_ASID].callerAuth = bySubject;
          doc.asids[OTHER_ASID].callerAuth = { networkOnly: NETWORK_ONLY };
        },
      });
    }, 30_000);
    afterAll(async () => {
      await b?.close();
    });

    it('the forwarded certificate is ignored: CALLER_CERTIFICATE_REQUIRED', async () => {
      const res = await a001(withHeaders(callerVia(b.bridgeUrl), nginx(pki.client)), APP_ASID);
      expectLegacyOutcome(res, 403, 'CALLER_CERTIFICATE_REQUIRED');
    });

    it('and dropped: in passthrough the legacy host never sees it', async () => {
      const spoof = {
        ...nginx(pki.client),
        'x-forwarded-client-cert': `Hash=${pki.client.sha256.replaceAll(':', '')}`,
        'X-Legacy-Probe': 'kept',
      };
      const call = withHeaders(callerVia(b.bridgeUrl), spoof);
      const before = legacy.received.length;
      const key = await sessionVia(call, OTHER_ASID);
      const res = await call('GET', A005(), { XAPI_ASID: OTHER_ASID, HTTP_X_SESSION_KEY: key });
      expect(res.status).toBe(200);
      const seen = legacy.received.slice(before);
      // The legacy host got the legacy session (A001, A002) and the data call, which kept the client's own headers.
      expect(seen.map((r) => r.method)).toEqual(['POST', 'PUT', 'GET']);
      expect(seen[2]!.headers['x-legacy-probe']).toBe('kept');
      expect(forwardedIn(seen)).toEqual([]);
    });
  });
});

describe('A001 secret (callerAuth.a001Secret)', () => {
  const SECRET = `a001-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}`;
  let b: CallerBridge;
  beforeAll(async () => {
    b = await startCallerBridge({
      patch: (doc) => {
        doc.asids[APP_ASID].callerAuth = { a001Secret: 'env:A001_SECRET' };
      },
      env: { A001_SECRET: SECRET },
    });
  }, 30_000);
  afterAll(async () => {
    await b?.close();
  });

  it('the right secret → 201, and the answer echoes the token sent (spaces around it are ignored)', async () => {
    for (const token of [SECRET, `  ${SECRET}\t `]) {
      const res = await a001(callerVia(b.bridgeUrl), APP_ASID, token);
      expect(res.status).toBe(201);
      expect(res.json().token).toBe(token);
    }
    expectLegacyOutcome(await a001(callerVia(b.bridgeUrl), APP_ASID, 'legacy-ticket'), 403, 'A001_SECRET_REFUSED');
  });

  it('a wrong one → 403 A001_SECRET_REFUSED, the secret in neither the answer nor the log', async () => {
    for (const token of ['legacy-ticket', `${SECRET}x`, SECRET.slice(0, -1)]) {
      const res = await a001(callerVia(b.bridgeUrl), APP_ASID, token);
      const issue = expectLegacyOutcome(res, 403, 'A001_SECRET_REFUSED');
      expect(issue.diagnostics).toContain(APP_ASID);
      expect(res.body.toString()).not.toContain(SECRET.slice(0, -1));
    }
    expect(b.logs.join('\n')).not.toContain(SECRET.slice(0, -1));
  });

  it('ASIDs without a secret are not affected, and the secret is no token for them to fail', async () => {
    expect((await a001(callerVia(b.bridgeUrl), OTHER_ASID, 'anything')).status).toBe(201);
    expect((await a001(callerVia(b.bridgeUrl), OTHER_ASID, SECRET)).status).toBe(201);
    expectLegacyOutcome(await a001(callerVia(b.bridgeUrl), APP_ASID, 'anything'), 403, 'A001_SECRET_REFUSED');
  });
});

describe('Host allow-list of the legacy port', () => {
  describe('server.allowedHosts: [ers-bridge.test]', () => {
    let b: CallerBridge;
    let port: string;
    beforeAll(async () => {
      b = await startCallerBridge({ rules: { server: { allowedHosts: ['ers-bridge.test'] } } });
      port = new URL(b.bridgeUrl).port;
    }, 30_000);
    afterAll(async () => {
      await b?.close();
    });

    it('answers the listed name, with or without a port, in any case', async () => {
      for (const host of ['ers-bridge.test', `ers-bridge.test:${port}`, 'ERS-Bridge.TEST']) {
        const res = await a001(withHeaders(callerVia(b.bridgeUrl), { host }), APP_ASID);
        expect(res.status, host).toBe(201);
      }
      // The address it was reached by is not a name it is published under.
      const direct = await a001(withHeaders(callerVia(b.bridgeUrl), { host: `127.0.0.1:${port}` }), APP_ASID);
      expectLegacyOutcome(direct, 421, 'MISDIRECTED_REQUEST');
    });

    it('any other Host → 421 MISDIRECTED_REQUEST, legacy-shaped; nothing reaches APIM; nothing built from it', async () => {
      const key = await sessionVia(withHeaders(callerVia(b.bridgeUrl), { host: 'ers-bridge.test' }), APP_ASID);
      const before = b.standIn.received.length + b.standIn.tokenRequests.length;
      for (const host of [
        'evil.example',
        `evil.example:${port}`,
        `127.0.0.1:${port}`,
        'localhost',
        'ers-bridge.test.evil.example',
      ]) {
        const res = await callerVia(b.bridgeUrl)('GET', A005(), { host, XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
        expectLegacyOutcome(res, 421, 'MISDIRECTED_REQUEST');
        expect(res.body.toString()).not.toContain('evil');
        expect(res.headers['location']).toBeUndefined();
      }
      expect(b.standIn.received.length + b.standIn.tokenRequests.length).toBe(before);
      // The allowed name still works with that session.
      const ok = await callerVia(b.bridgeUrl)('GET', A005(), {
        host: 'ers-bridge.test',
        XAPI_ASID: APP_ASID,
        HTTP_X_SESSION_KEY: key,
      });
      expect(ok.status).toBe(200);
      expect(ok.body.toString()).toContain('http://ers-bridge.test/ers-api/STU3/v1/');
    });

    it('/login and /admin on the legacy port get the same check', async () => {
      for (const path of ['/login?asid=999000000001', '/admin', '/admin/comparisons', '/anything-else']) {
        const res = await callerVia(b.bridgeUrl)('GET', path, { host: 'evil.example' });
        expectLegacyOutcome(res, 421, 'MISDIRECTED_REQUEST');
        const allowed = await callerVia(b.bridgeUrl)('GET', path, { host: 'ers-bridge.test' });
        expect(allowed.status, path).not.toBe(421);
      }
    });
  });

  describe('no allowedHosts, legacy.publicBaseUrl given', () => {
    let b: CallerBridge;
    let port: string;
    beforeAll(async () => {
      b = await startCallerBridge({
        rules: {
          legacy: { host: 'api.int1.ers.ncrs.nhs.uk', publicBaseUrl: 'https://ers-bridge.trust.nhs.uk/ers-api' },
        },
      });
      port = new URL(b.bridgeUrl).port;
    }, 30_000);
    afterAll(async () => {
      await b?.close();
    });

    it('its host and the loopback names are answered; any other Host gets 421', async () => {
      for (const host of ['ers-bridge.trust.nhs.uk', `127.0.0.1:${port}`, `localhost:${port}`, '[::1]:8080']) {
        expect((await a001(withHeaders(callerVia(b.bridgeUrl), { host }), APP_ASID)).status, host).toBe(201);
      }
      for (const host of ['evil.example', 'ers-bridge.trust.nhs.uk.evil.example', '10.1.2.3']) {
        const res = await a001(withHeaders(callerVia(b.bridgeUrl), { host }), APP_ASID);
        expectLegacyOutcome(res, 421, 'MISDIRECTED_REQUEST');
      }
    });
  });
});

describe('TLS certificates reload with the rules', () => {
  let b: CallerBridge;
  let dir: string;
  let file: string;
  let reloader: RulesReloader;
  const env = () => ({
    ...b.env,
    SERVER_CERT_2: pki.server2.cert,
    SERVER_KEY_2: pki.server2.key,
    CLIENT_CA_2: pki.otherCaPem,
  });
  const docOf = () => parse(b.text) as RulesDoc;
  const write = (doc: RulesDoc) => writeFileSync(file, stringify(doc));

  /** The SHA-256 of the certificate a new handshake presents. */
  const handshakeCert = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = tlsConnect(
        {
          host: '127.0.0.1',
          port: Number(new URL(b.bridgeUrl).port),
          ca: pki.caPem,
          cert: pki.client.cert,
          key: pki.client.key,
        },
        () => {
          const seen = socket.getPeerCertificate().fingerprint256;
          socket.end();
          resolve(seen);
        },
      );
      socket.on('error', reject);
    });

  beforeAll(async () => {
    b = await startCallerBridge({
      patch: (doc) => {
        doc.server = { ...doc.server, tls: serverTls('required') };
      },
      env: tlsEnv(),
    });
    dir = mkdtempSync(join(tmpdir(), 'ers-bridge-tls-reload-'));
    file = join(dir, 'rules.yaml');
    writeFileSync(file, b.text);
    const { destination } = captureLogs();
    reloader = new RulesReloader({
      file,
      holder: b.holder,
      logger: createLogger({ level: 'info', destination }),
      build: (rules, previous) => buildRuntime(file, rules, { resolveSecret: secretResolver(env()), previous }),
      onApplied: (rt) => applyListenerSettings(b.bridge, rt),
    });
  }, 30_000);
  afterAll(async () => {
    reloader?.stop();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a new server certificate is presented to new handshakes after the reload', async () => {
    expect(await handshakeCert()).toBe(pki.server.sha256);
    const doc = docOf();
    doc.server.tls = { ...doc.server.tls, certificate: 'env:SERVER_CERT_2', privateKey: 'env:SERVER_KEY_2' };
    write(doc);
    expect(await reloader.reload('SIGHUP')).toEqual({ applied: true });
    expect(await handshakeCert()).toBe(pki.server2.sha256);
    // And calls on new connections are served with it.
    expect((await a001(callerVia(b.bridgeUrl, tlsClient(pki.client)), APP_ASID)).status).toBe(201);
  });

  it('turning TLS off, or changing clientCertificates, is refused naming server.tls; the certificate stays', async () => {
    const current = await handshakeCert();
    const off = docOf();
    delete off.server.tls;
    write(off);
    const refusedOff = await reloader.reload('SIGHUP');
    expect(refusedOff.applied).toBe(false);
    expect(refusedOff.error).toMatch(/server\.tls/);
    const optional = docOf();
    optional.server.tls = { ...optional.server.tls, clientCertificates: 'optional' };
    write(optional);
    const refusedMode = await reloader.reload('SIGHUP');
    expect(refusedMode.applied).toBe(false);
    expect(refusedMode.error).toMatch(/server\.tls.*clientCertificates/);
    expect(await handshakeCert()).toBe(current);
    // Still required: no handshake without a certificate.
    await expect(a001(callerVia(b.bridgeUrl, tlsClient()), APP_ASID)).rejects.toThrow();
  });

  it('a new clientCa applies to new handshakes: certificates of the old CA are then refused', async () => {
    expect((await a001(callerVia(b.bridgeUrl, tlsClient(pki.client)), APP_ASID)).status).toBe(201);
    expect(b.holder.current.listener.clientCas?.[0]?.subject).toContain('ers-bridge caller test CA');
    const rotated = docOf();
    rotated.server.tls = {
      ...rotated.server.tls,
      certificate: 'env:SERVER_CERT_2',
      privateKey: 'env:SERVER_KEY_2',
      clientCa: 'env:CLIENT_CA_2',
    };
    const resuming = tlsClient(pki.client); // keeps its TLS session for resumption
    expect((await a001(callerVia(b.bridgeUrl, resuming), APP_ASID)).status).toBe(201);
    write(rotated);
    expect(await reloader.reload('SIGHUP')).toEqual({ applied: true });
    b.bridge.server.closeIdleConnections();
    await expect(a001(callerVia(b.bridgeUrl, tlsClient(pki.client)), APP_ASID)).rejects.toThrow();
    // Nor can a client resume the TLS session it had under the old CA.
    await expect(a001(callerVia(b.bridgeUrl, resuming), APP_ASID)).rejects.toThrow();
    expect((await a001(callerVia(b.bridgeUrl, tlsClient(pki.foreign)), APP_ASID)).status).toBe(201);
    expect(b.holder.current.listener.clientCas?.[0]?.subject).toContain('an untrusted CA');
  });
});
