/**
 * Caller authentication and per-application isolation, the pure parts (issue 12): explicit trust in the rules
 * (src/rules/trust.ts through parseRules), forwarded-certificate parsing, the certificate policy step, the Host
 * allow-list, the trusted-proxy check, the headers dropped before anything travels on, the capped APIM pause and
 * Retry-After, and the per-application concurrency slots (on a manual clock). No sockets, no child processes.
 */

import { describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { ApplicationBusy, ConcurrencySlots } from '../../src/apim/concurrency.js';
import { RateLimiter } from '../../src/apim/rate-limiter.js';
import { apimPause } from '../../src/apim/wrappers/apim-pause.js';
import { concurrencySlot } from '../../src/apim/wrappers/concurrency-slot.js';
import {
  cnOfDn,
  fromNginx,
  fromXfcc,
  normaliseFingerprint,
  type PresentedCertificate,
  parseXfcc,
} from '../../src/auth/client-certificate.js';
import { dropForwardedCertificate } from '../../src/legacy/client-identity.js';
import { LegacyError } from '../../src/legacy/errors.js';
import { rewriteBack } from '../../src/pipeline/apim-side.js';
import { callerCertificateProblem } from '../../src/pipeline/steps.js';
import { checkTrust, parseRules, RulesError } from '../../src/rules/load.js';
import { isLoopbackHost } from '../../src/rules/trust.js';
import {
  buildListenerSettings,
  fromTrustedProxy,
  hostAllowed,
  type ListenerSettings,
} from '../../src/runtime/listener.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { apimCall, apimResponse, appAsid, endpoint, URLS } from './pipeline/fakes.js';

const ASID = '999000000001';
const FILE = 'trust.yaml';
const FP = 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89';

// ─── explicit trust ─────────────────────────────────────────────────────────────────────────────────────────────

type Doc = Record<string, any>;

/** A rules document exposed on 0.0.0.0 (with allowedHosts), one application-restricted ASID with no callerAuth. */
function exposed(edit: (doc: Doc) => void = () => {}): Doc {
  const doc: Doc = {
    environment: 'test',
    legacy: { host: 'api.int1.ers.ncrs.nhs.uk' },
    apim: {
      baseUrl: 'https://int.api.service.nhs.uk/referrals/FHIR',
      tokenUrl: 'https://int.api.service.nhs.uk/oauth2/token',
    },
    server: { host: '0.0.0.0', allowedHosts: ['ers-bridge.trust.nhs.uk'] },
    asids: {
      [ASID]: {
        accessMode: 'application-restricted',
        apim: { apiKey: 'env:API_KEY', keyId: 'k-1', privateKey: 'env:PRIVATE_KEY' },
        organisation: { odsCode: 'R69', name: 'TEST NHS TRUST' },
        businessFunction: 'SERVICE_PROVIDER_CLINICIAN',
      },
    },
  };
  edit(doc);
  return doc;
}

const load = (doc: Doc) => parseRules(stringify(doc), FILE);

function refusal(doc: Doc): RulesError {
  try {
    load(doc);
  } catch (e) {
    expect(e).toBeInstanceOf(RulesError);
    return e as RulesError;
  }
  throw new Error('expected the rules to be refused');
}

const TLS = (clientCertificates: string, ca = true) => ({
  certificate: 'env:SERVER_CERT',
  privateKey: 'env:SERVER_KEY',
  clientCertificates,
  ...(ca ? { clientCa: 'env:CLIENT_CA' } : {}),
});

describe('explicit trust: an ASID is no credential outside loopback', () => {
  it('refuses an application-restricted ASID without callerAuth on 0.0.0.0 with signed-jwt, naming the field', () => {
    const e = refusal(exposed());
    expect(e.fieldPath).toBe(`asids."${ASID}".callerAuth`);
    expect(e.message).toMatch(/^trust\.yaml: asids\."999000000001"\.callerAuth: expected a certificate binding/);
    expect(e.message).toContain('0.0.0.0');
    // Also on another non-loopback address, and for the serve re-check of --host.
    expect(refusal(exposed((d) => (d.server.host = '10.1.2.3'))).fieldPath).toBe(`asids."${ASID}".callerAuth`);
    const loopback = load(exposed((d) => (d.server.host = '127.0.0.1')));
    expect(() => checkTrust(loopback, FILE, '0.0.0.0')).toThrow(RulesError);
    expect(() => checkTrust(loopback, FILE, '::')).toThrow(/callerAuth/);
  });

  it('the same ASID is accepted on loopback, and with apim.auth none', () => {
    for (const host of ['127.0.0.1', 'localhost', '::1', '127.0.0.53']) {
      expect(() => load(exposed((d) => (d.server.host = host)))).not.toThrow();
    }
    const open = exposed((d) => {
      d.apim = { baseUrl: 'https://sandbox.api.service.nhs.uk/referrals/FHIR', auth: 'none' };
      delete d.asids[ASID].apim;
    });
    expect(() => load(open)).not.toThrow();
    // …and exposed again the moment it signs with a key.
    expect(refusal(exposed()).fieldPath).toBe(`asids."${ASID}".callerAuth`);
  });

  it('accepts it on 0.0.0.0 with a certificate binding, an A001 secret, or networkOnly with a reason', () => {
    const withAuth = (auth: Doc, server: Doc = {}) =>
      exposed((d) => {
        d.asids[ASID].callerAuth = auth;
        Object.assign(d.server, server);
      });
    expect(() =>
      load(withAuth({ certificates: [{ subject: 'sys.example.nhs.uk' }] }, { tls: TLS('required') })),
    ).not.toThrow();
    expect(() => load(withAuth({ certificates: [{ sha256: FP }] }, { tls: TLS('optional') }))).not.toThrow();
    const proxies = {
      trustedProxies: { addresses: ['10.0.0.0/8'], clientCertificateHeader: 'x-forwarded-client-cert' },
    };
    expect(() => load(withAuth({ certificates: [{ sha256: `sha256:${FP}` }] }, proxies))).not.toThrow();
    expect(() => load(withAuth({ a001Secret: 'env:A001_SECRET' }))).not.toThrow();
    expect(() =>
      load(withAuth({ networkOnly: 'only the HSCN gateway at 10.2.0.1 can reach this port' })),
    ).not.toThrow();
    // A reason it is, not a token: too short to say why.
    expect(refusal(withAuth({ networkOnly: 'trusted' })).fieldPath).toBe(`asids."${ASID}".callerAuth.networkOnly`);
  });

  it('refuses networkOnly together with a binding or a secret', () => {
    const both = (auth: Doc) =>
      exposed((d) => {
        d.server.tls = TLS('required');
        d.asids[ASID].callerAuth = { networkOnly: 'the network is trusted here, honestly', ...auth };
      });
    for (const auth of [{ certificates: [{ subject: 'sys.example.nhs.uk' }] }, { a001Secret: 'env:S' }]) {
      const e = refusal(both(auth));
      expect(e.fieldPath).toBe(`asids."${ASID}".callerAuth`);
      expect(e.expected).toMatch(/networkOnly alone/);
    }
  });

  it('refuses a certificate binding no certificate can ever reach (no client TLS, no trusted proxy) — even on loopback', () => {
    for (const server of [{ host: '127.0.0.1' }, { tls: TLS('off') }]) {
      const e = refusal(
        exposed((d) => {
          Object.assign(d.server, server);
          d.asids[ASID].callerAuth = { certificates: [{ subject: 'sys.example.nhs.uk' }] };
        }),
      );
      expect(e.fieldPath).toBe(`asids."${ASID}".callerAuth.certificates`);
      expect(e.expected).toMatch(/server\.tls.*server\.trustedProxies/);
    }
  });

  it('refuses client certificates without clientCa', () => {
    for (const mode of ['required', 'optional']) {
      const e = refusal(
        exposed((d) => {
          d.server = { host: '127.0.0.1', tls: TLS(mode, false) };
        }),
      );
      expect(e.fieldPath).toBe('server.tls.clientCa');
      expect(e.expected).toContain(mode);
    }
    expect(() => load(exposed((d) => (d.server = { host: '127.0.0.1', tls: TLS('off', false) })))).not.toThrow();
  });

  it('refuses a non-loopback host without allowedHosts or legacy.publicBaseUrl', () => {
    const noHosts = exposed((d) => {
      delete d.server.allowedHosts;
      d.asids[ASID].callerAuth = { a001Secret: 'env:S' };
    });
    const e = refusal(noHosts);
    expect(e.fieldPath).toBe('server.allowedHosts');
    expect(e.expected).toContain('0.0.0.0');
    noHosts.legacy.publicBaseUrl = 'https://ers-bridge.trust.nhs.uk/ers-api';
    expect(() => load(noHosts)).not.toThrow();
  });

  it('the schema refuses what cannot be a fingerprint or a host name, and a secret where a reference belongs', () => {
    const bad = (auth: Doc) =>
      refusal(
        exposed((d) => {
          d.server.tls = TLS('required');
          d.asids[ASID].callerAuth = auth;
        }),
      );
    expect(bad({ certificates: [{ sha256: 'AB:CD' }] }).expected).toMatch(/SHA-256/);
    expect(bad({ certificates: [{ subject: 'CN=sys.example.nhs.uk' }] }).fieldPath).toMatch(/callerAuth\.certificates/);
    expect(bad({ certificates: [] }).expected).toMatch(/at least one/);
    expect(bad({ a001Secret: 'literal-secret' }).expected).toMatch(/secret reference/);
  });

  it('isLoopbackHost: only names this machine alone can reach', () => {
    for (const h of ['127.0.0.1', '127.255.0.9', 'localhost', 'LOCALHOST', '::1', '[::1]'])
      expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '127.0.0.1.evil.example', 'localhost.evil.example', '']) {
      expect(isLoopbackHost(h)).toBe(false);
    }
  });
});

// ─── forwarded certificates ─────────────────────────────────────────────────────────────────────────────────────

describe('forwarded certificates', () => {
  it('normaliseFingerprint: every spelling becomes openssl’s', () => {
    const bare = FP.replaceAll(':', '');
    expect(normaliseFingerprint(bare.toLowerCase())).toBe(FP);
    expect(normaliseFingerprint(`sha256:${FP}`)).toBe(FP);
    expect(normaliseFingerprint(`SHA256:${bare}`)).toBe(FP);
  });

  it("parseXfcc: the last element (the nearest proxy's), quoted values unquoted, Cert URL-decoded", () => {
    const value =
      'By=spiffe://a;Hash=aaaa;Subject="CN=first";URI=,' +
      `By=spiffe://b;Hash=${'b'.repeat(64)};Cert="-----BEGIN%20CERTIFICATE-----%0AAB%2BC%0A";Subject="CN=sys.example.nhs.uk,O=NHS\\, England";DNS=SYS.example.nhs.uk;DNS=alt.example.nhs.uk`;
    expect(parseXfcc(value)).toEqual({
      hash: 'b'.repeat(64),
      cert: '-----BEGIN CERTIFICATE-----\nAB+C\n',
      subject: 'CN=sys.example.nhs.uk,O=NHS\\, England',
      dns: ['sys.example.nhs.uk', 'alt.example.nhs.uk'],
    });
  });

  it('fromXfcc with only Hash: trusted as the proxy says without clientCa, unverified with one', () => {
    const hash = 'ab'.repeat(32);
    const seen = fromXfcc(`Hash=${hash};Subject="CN=Sys.Example.NHS.uk"`, undefined, 0);
    expect(seen).toMatchObject({
      source: 'proxy',
      verified: true,
      sha256: normaliseFingerprint(hash),
      subjectCn: 'sys.example.nhs.uk',
    });
    const checked = fromXfcc(`Hash=${hash}`, [{} as never], 0);
    expect(checked).toMatchObject({ verified: false });
    expect(checked?.problem).toMatch(/no certificate \(Cert\)/);
    // Not a SHA-256: nothing presented at all.
    expect(fromXfcc('Hash=abc', undefined, 0)).toBeUndefined();
    expect(fromXfcc('By=spiffe://x', undefined, 0)).toBeUndefined();
  });

  it('fromNginx: something that is not a PEM certificate is no certificate', () => {
    expect(fromNginx(encodeURIComponent('not a certificate'), 'SUCCESS', undefined, 0)).toBeUndefined();
    expect(fromNginx('%E0%A4%A', 'SUCCESS', undefined, 0)).toBeUndefined();
  });

  it('cnOfDn: only a CN attribute of its own, escapes honoured; none when repeated', () => {
    expect(cnOfDn('CN=sys.example.nhs.uk,O=NHS')).toBe('sys.example.nhs.uk');
    expect(cnOfDn('O=NHS, CN=sys.example.nhs.uk')).toBe('sys.example.nhs.uk');
    expect(cnOfDn('cn=sys.example.nhs.uk+OU=x')).toBe('sys.example.nhs.uk');
    expect(cnOfDn('CN=R\\C3\\A9sum\\C3\\A9\\, Ltd')).toBe('Résumé, Ltd');
    expect(cnOfDn('O=Evil\\, CN=sys.example.nhs.uk')).toBeUndefined();
    expect(cnOfDn('O=Evil\\2C CN=sys.example.nhs.uk')).toBeUndefined();
    expect(cnOfDn('O=Evil/CN=sys.example.nhs.uk')).toBeUndefined();
    expect(cnOfDn('CN=a.example,CN=sys.example.nhs.uk')).toBeUndefined();
    expect(cnOfDn('')).toBeUndefined();
  });

  it('dropForwardedCertificate: every forwarded-certificate header, any case, from both header views', () => {
    const headers: Record<string, string> = {
      'x-forwarded-client-cert': 'Hash=ab',
      'ssl-client-cert': 'pem',
      'ssl-client-verify': 'SUCCESS',
      'ssl-client-subject-dn': 'CN=x',
      'ssl-client-issuer-dn': 'CN=ca',
      'ssl-client-escaped-cert': 'pem',
      xapi_asid: ASID,
    };
    const raw = [
      ['X-Forwarded-Client-Cert', 'Hash=ab'],
      ['SSL-Client-Cert', 'pem'],
      ['ssl-client-verify', 'SUCCESS'],
      ['Ssl-Client-Subject-Dn', 'CN=x'],
      ['ssl-client-issuer-dn', 'CN=ca'],
      ['ssl-client-escaped-cert', 'pem'],
      ['XAPI_ASID', ASID],
    ].flat();
    expect(dropForwardedCertificate(headers, raw)).toEqual(['XAPI_ASID', ASID]);
    expect(headers).toEqual({ xapi_asid: ASID });
    const clean = ['XAPI_ASID', ASID];
    expect(dropForwardedCertificate({ xapi_asid: ASID }, clean)).toBe(clean);
  });
});

// ─── the certificate policy step ────────────────────────────────────────────────────────────────────────────────

describe('callerCertificateProblem', () => {
  const presented = (over: Partial<PresentedCertificate> = {}): PresentedCertificate => ({
    source: 'tls',
    verified: true,
    sha256: FP,
    subjectCn: 'sys.example.nhs.uk',
    dnsNames: [],
    issuer: 'Test CA',
    ...over,
  });
  const bound = (certificates: Doc[]) => appAsid({ callerAuth: { certificates } } as never);

  it('an ASID without a binding needs no certificate', () => {
    expect(callerCertificateProblem(ASID, appAsid(), undefined)).toBeUndefined();
    expect(
      callerCertificateProblem(ASID, appAsid({ callerAuth: { a001Secret: 'env:S' } } as never), undefined),
    ).toBeUndefined();
  });

  it('subject: the CN or a SAN DNS name, any case; sha256: any spelling', () => {
    const subject = bound([{ subject: 'SYS.example.nhs.uk' }]);
    expect(callerCertificateProblem(ASID, subject, presented())).toBeUndefined();
    expect(
      callerCertificateProblem(ASID, subject, presented({ subjectCn: 'box', dnsNames: ['sys.example.nhs.uk'] })),
    ).toBeUndefined();
    for (const sha256 of [FP, FP.replaceAll(':', '').toLowerCase(), `sha256:${FP}`]) {
      expect(callerCertificateProblem(ASID, bound([{ sha256 }]), presented({ subjectCn: 'other' }))).toBeUndefined();
    }
    // Any one of several.
    const either = bound([{ subject: 'a.example.nhs.uk' }, { sha256: FP }]);
    expect(callerCertificateProblem(ASID, either, presented({ subjectCn: 'other' }))).toBeUndefined();
  });

  it('none presented → CALLER_CERTIFICATE_REQUIRED; unverified → REFUSED however well it matches; other → REFUSED', () => {
    const subject = bound([{ subject: 'sys.example.nhs.uk' }]);
    const none = callerCertificateProblem(ASID, subject, undefined);
    expect(none).toBeInstanceOf(LegacyError);
    expect(none).toMatchObject({ reason: 'CALLER_CERTIFICATE_REQUIRED', status: 403 });
    const unverified = callerCertificateProblem(
      ASID,
      subject,
      presented({ verified: false, problem: 'self-signed certificate' }),
    );
    expect(unverified).toMatchObject({ reason: 'CALLER_CERTIFICATE_REFUSED', status: 403 });
    expect(unverified!.diagnostics).toContain('could not be verified: self-signed certificate');
    const other = callerCertificateProblem(
      ASID,
      subject,
      presented({ subjectCn: 'intruder.example.org', sha256: FP.replace('AB', '00') }),
    );
    expect(other).toMatchObject({ reason: 'CALLER_CERTIFICATE_REFUSED' });
    expect(other!.diagnostics).toContain('CN=intruder.example.org');
    expect(other!.diagnostics).toContain(FP.replace('AB', '00'));
    expect(other!.diagnostics).toContain('accepts: sys.example.nhs.uk');
    // A name that merely ends with the bound one is another name.
    expect(callerCertificateProblem(ASID, subject, presented({ subjectCn: 'evil-sys.example.nhs.uk' }))).toBeDefined();
    expect(
      callerCertificateProblem(
        ASID,
        subject,
        presented({ subjectCn: undefined, dnsNames: ['sys.example.nhs.uk.evil'] }),
      ),
    ).toBeDefined();
  });
});

// ─── the listener: Host names and trusted proxies ───────────────────────────────────────────────────────────────

describe('the Host allow-list and trusted proxies', () => {
  const settings = (hosts: string[], loopbackHosts: boolean): ListenerSettings => ({
    allowedHosts: new Set(hosts),
    loopbackHosts,
  });

  it('listed names with any port (or the listed port), any case; loopback names only without an explicit list', () => {
    const explicit = settings(['ers-bridge.test', 'api.trust.nhs.uk:8443'], false);
    for (const h of ['ers-bridge.test', 'ERS-BRIDGE.test:443', 'api.trust.nhs.uk:8443'])
      expect(hostAllowed(explicit, h)).toBe(true);
    for (const h of [
      'api.trust.nhs.uk',
      'api.trust.nhs.uk:443',
      '127.0.0.1:8080',
      'localhost',
      '[::1]:80',
      'evil.example',
      '',
      undefined,
    ]) {
      expect(hostAllowed(explicit, h)).toBe(false);
    }
    const published = settings(['ers-bridge.trust.nhs.uk'], true);
    for (const h of ['ers-bridge.trust.nhs.uk', '127.0.0.1:1234', 'localhost:8080', '[::1]:8080'])
      expect(hostAllowed(published, h)).toBe(true);
    for (const h of [
      'ers-bridge.trust.nhs.uk.evil',
      'x.ers-bridge.trust.nhs.uk',
      'evil.example',
      `${'a'.repeat(300)}.test`,
    ]) {
      expect(hostAllowed(published, h)).toBe(false);
    }
  });

  it('buildListenerSettings: the names from allowedHosts or publicBaseUrl, lower-cased', async () => {
    const resolve = async () => '';
    const base = load(exposed((d) => (d.asids[ASID].callerAuth = { a001Secret: 'env:S' })));
    const explicit = await buildListenerSettings(
      FILE,
      { ...base, server: { ...base.server, allowedHosts: ['ERS.Test'] } },
      resolve,
    );
    expect([...explicit.allowedHosts]).toEqual(['ers.test']);
    expect(explicit.loopbackHosts).toBe(false);
    const rules = { ...base, legacy: { ...base.legacy, publicBaseUrl: 'https://Bridge.Trust.nhs.uk:8443/ers-api' } };
    const published = await buildListenerSettings(
      FILE,
      { ...rules, server: { ...rules.server, allowedHosts: undefined } } as never,
      resolve,
    );
    expect([...published.allowedHosts]).toEqual(['bridge.trust.nhs.uk:8443']);
    expect(published.loopbackHosts).toBe(true);
  });

  it('trusted proxies: addresses and CIDR ranges, IPv4-mapped IPv6 peers too; a bad entry is a RulesError', async () => {
    const resolve = async () => '';
    const base = load(exposed((d) => (d.asids[ASID].callerAuth = { a001Secret: 'env:S' })));
    const withProxies = (addresses: string[]) =>
      buildListenerSettings(
        FILE,
        {
          ...base,
          server: { ...base.server, trustedProxies: { addresses, clientCertificateHeader: 'ssl-client-cert' } },
        },
        resolve,
      );
    const s = await withProxies(['10.0.0.0/8', '192.168.1.7', 'fd00::/8']);
    for (const a of ['10.1.2.3', '::ffff:10.9.9.9', '192.168.1.7', 'fd00::1'])
      expect(fromTrustedProxy(s, a)).toBe(true);
    for (const a of ['11.0.0.1', '192.168.1.8', '127.0.0.1', '::1', undefined])
      expect(fromTrustedProxy(s, a)).toBe(false);
    for (const bad of ['10.0.0.0/x', 'proxy.internal', '10.0.0.0/8/8', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/']) {
      const e = await withProxies(['10.0.0.1', bad]).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(RulesError);
      expect((e as RulesError).fieldPath).toBe('server.trustedProxies.addresses[1]');
    }
    expect(fromTrustedProxy({ allowedHosts: new Set(), loopbackHosts: true }, '10.1.2.3')).toBe(false);
  });
});

// ─── APIM's pause and Retry-After, capped ───────────────────────────────────────────────────────────────────────

describe("APIM's 429: the pause and the client's Retry-After are capped", () => {
  const A005 = endpoint('A005');

  it('apimPause pauses the application for at most maxPauseSeconds', async () => {
    const clock = new ManualClock(Date.parse('2025-01-01T00:00:00Z'));
    const limiter = new RateLimiter(undefined, clock);
    const pause = vi.spyOn(limiter, 'pause');
    const answer429 = (retryAfter: string) => async () => ({
      response: apimResponse(429, { 'retry-after': retryAfter }),
    });
    await apimPause(limiter, clock, 60)(answer429('99999999'))(apimCall());
    await apimPause(limiter, clock, 60)(answer429('Fri, 31 Dec 2100 23:59:59 GMT'))(apimCall());
    await apimPause(limiter, clock, 60)(answer429('5'))(apimCall());
    expect(pause.mock.calls).toEqual([[60], [60], [5]]);
  });

  it("rewriteBack tells the client the wait ers-bridge holds, never APIM's extreme values", async () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    const back = (headers: Record<string, string>, status = 429) =>
      rewriteBack(A005, apimResponse(status, headers), URLS, 'corr-1', 1024 * 1024, { seconds: 60, now });
    expect((await back({ 'retry-after': '99999999' })).headers['retry-after']).toBe('60');
    expect((await back({ 'retry-after': 'Fri, 31 Dec 2100 23:59:59 GMT' })).headers['retry-after']).toBe('60');
    expect((await back({ 'retry-after': '7' })).headers['retry-after']).toBe('7');
    expect((await back({})).headers['retry-after']).toBe('1');
    expect(
      (await back({ 'retry-after': '99999', 'content-type': 'application/fhir+json' }, 503)).headers['retry-after'],
    ).toBe('60');
  });
});

// ─── per-application concurrency ────────────────────────────────────────────────────────────────────────────────

describe('ConcurrencySlots: calls in flight per APIM application', () => {
  it('beyond the cap and a full queue: ApplicationBusy at once', async () => {
    const slots = new ConcurrencySlots({ perApplication: 2, maxQueue: 0, maxWaitMs: 5_000 }, new ManualClock());
    const a = await slots.acquire();
    await slots.acquire();
    const busy = await slots.acquire().catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(ApplicationBusy);
    expect((busy as ApplicationBusy).retryAfterSeconds).toBe(1);
    a();
    a(); // a second release of the same slot is no second slot
    expect(slots.load).toEqual({ inFlight: 1, waiting: 0 });
    await expect(slots.acquire()).resolves.toBeTypeOf('function');
    await expect(slots.acquire()).rejects.toBeInstanceOf(ApplicationBusy);
  });

  it('a bounded queue, first come first served, each waiting at most maxWaitMs', async () => {
    const clock = new ManualClock();
    const slots = new ConcurrencySlots({ perApplication: 1, maxQueue: 2, maxWaitMs: 2_500 }, clock);
    const first = await slots.acquire();
    const order: string[] = [];
    const second = slots.acquire().then((release) => {
      order.push('second');
      return release;
    });
    const third = slots.acquire().then(
      () => order.push('third'),
      (e: unknown) => {
        order.push('third refused');
        return e;
      },
    );
    await expect(slots.acquire()).rejects.toBeInstanceOf(ApplicationBusy); // the queue is full
    expect(slots.load).toEqual({ inFlight: 1, waiting: 2 });
    await clock.advance(1_000);
    first(); // the slot passes straight to the first in line
    (await second)();
    await clock.advance(0);
    expect(order).toEqual(['second', 'third']);
    await third;

    const slow = new ConcurrencySlots({ perApplication: 1, maxQueue: 5, maxWaitMs: 2_500 }, clock);
    await slow.acquire();
    const waiting = slow.acquire().catch((e: unknown) => e);
    await clock.advance(2_499);
    expect(slow.load.waiting).toBe(1);
    await clock.advance(1);
    const e = await waiting;
    expect(e).toBeInstanceOf(ApplicationBusy);
    expect((e as ApplicationBusy).retryAfterSeconds).toBe(3);
    expect(slow.load).toEqual({ inFlight: 1, waiting: 0 });
  });

  it('the wrapper holds the slot until the answer is in, and gives it back when the call fails', async () => {
    const slots = new ConcurrencySlots({ perApplication: 1, maxQueue: 0, maxWaitMs: 0 }, new ManualClock());
    let finish: (() => void) | undefined;
    const hanging = concurrencySlot(slots)(
      () => new Promise((resolve) => (finish = () => resolve({ response: apimResponse(200) }))),
    )(apimCall());
    await Promise.resolve();
    expect(slots.load.inFlight).toBe(1);
    await expect(
      concurrencySlot(slots)(async () => ({ response: apimResponse(200) }))(apimCall()),
    ).rejects.toBeInstanceOf(ApplicationBusy);
    finish!();
    await hanging;
    expect(slots.load.inFlight).toBe(0);
    await expect(
      concurrencySlot(slots)(async () => {
        throw new Error('reset');
      })(apimCall()),
    ).rejects.toThrow('reset');
    expect(slots.load.inFlight).toBe(0);
  });
});
