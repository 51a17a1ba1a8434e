/**
 * Hardening: TLS to APIM. ers-bridge verifies APIM's certificate always; extra CAs come only from `apim.ca` (a secret
 * reference) or the runtime's `apimCa`. A fake APIM on https://127.0.0.1 with certificates from the test PKI:
 * trusted → the call goes through; untrusted, self-signed or otherwise unverifiable → a legacy 502
 * UPSTREAM_UNREACHABLE naming the certificate problem, and no request (so no bearer token) ever reaches the server.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  expectLegacyOutcome,
  type Harness,
  type HarnessOptions,
  openSession,
  startHarness,
} from '../helpers/harness.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import {
  A005,
  apimAt,
  expectNothingLeaked,
  type FakeServer,
  fakeHttp,
  fakeHttps,
  referral,
  timedCall,
} from './support.js';

type TlsFake = FakeServer<HttpsServer> & { tlsErrors: number; handshakes: number };

let pki: TestPki;
let dir: string;
let caFile: string;
beforeAll(() => {
  pki = makeTestPki();
  dir = mkdtempSync(join(tmpdir(), 'ers-bridge-tls-'));
  caFile = join(dir, 'apim-ca.pem');
  writeFileSync(caFile, pki.caPem, { mode: 0o600 });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let h: Harness | undefined;
let fake: TlsFake | undefined;
afterEach(async () => {
  await h?.close();
  await fake?.close();
  h = undefined;
  fake = undefined;
});

/** A fake APIM on HTTPS with the given certificate, answering A005 with a referral. */
async function apimWithCert(cert: string, key: string): Promise<TlsFake> {
  return fakeHttps({ cert, key }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/fhir+json', etag: 'W/"5"' }).end(referral('000000070000'));
  });
}

/** ers-bridge pointed at the fake over https, with the CA given as the rules' apim.ca, the runtime's, or none. */
async function bridgeTo(origin: string, ca: 'rules' | 'runtime' | 'none'): Promise<{ h: Harness; key: string }> {
  const options: HarnessOptions = {
    rules: {
      apim: {
        baseUrl: apimAt(origin),
        timeouts: { connectMs: 2_000, headersMs: 2_000, bodyMs: 2_000 },
        ...(ca === 'rules' ? { ca: `file:${caFile}` } : {}),
      },
    },
    ...(ca === 'runtime' ? { runtime: { apimCa: pki.caPem } } : {}),
  };
  h = await startHarness(options);
  return { h, key: await openSession(h) };
}

/** Refused before any request: a legacy 502 about the certificate; no request, so no bearer token, reached it. */
async function expectRefusedUnverified(h: Harness, key: string, server: TlsFake, code: RegExp): Promise<void> {
  const { res } = await timedCall(h, key, 'GET', A005());
  const issue = expectLegacyOutcome(res, 502, 'UPSTREAM_UNREACHABLE');
  expect(issue.diagnostics).toMatch(/certificate of APIM could not be verified/);
  expect(issue.diagnostics).toMatch(code);
  expect(issue.diagnostics).toMatch(/never sends requests to an unverified server/);
  expectNothingLeaked(res, [h.secrets.apiKey]);
  expect(res.body.toString()).not.toMatch(/Bearer/i);
  expect(server.hits, 'requests that reached the unverified server').toEqual([]);
  // No TLS session was ever established with it (the client's verification failed; ers-bridge does not retry that).
  expect(server.handshakes).toBe(0);
  // The bridge did hold a token for the call: it was withheld, not absent.
  expect(h.standIn.tokenRequests.length).toBeGreaterThanOrEqual(1);
  // A GET may be retried once after a connection failure; never more.
  expect(server.connections).toBeLessThanOrEqual(2);
}

describe('TLS to APIM', () => {
  it('a server certificate from the CA in apim.ca (a file: secret reference) → 200, the token sent', async () => {
    fake = await apimWithCert(pki.serverCertPem, pki.serverKeyPem);
    const { h, key } = await bridgeTo(fake.url, 'rules');
    const { res } = await timedCall(h, key, 'GET', A005());
    expect(res.status).toBe(200);
    expect(res.json().id).toBe('000000070000');
    expect(fake.hits).toHaveLength(1);
    expect(fake.hits[0]!.authorization).toMatch(/^Bearer \S+/);
  });

  it("the same CA given as the runtime's apimCa → 200", async () => {
    fake = await apimWithCert(pki.serverCertPem, pki.serverKeyPem);
    const { h, key } = await bridgeTo(fake.url, 'runtime');
    const { res } = await timedCall(h, key, 'GET', A005());
    expect(res.status).toBe(200);
    expect(fake.hits).toHaveLength(1);
  });

  it('without the CA → 502 UPSTREAM_UNREACHABLE: the certificate could not be verified; nothing sent', async () => {
    fake = await apimWithCert(pki.serverCertPem, pki.serverKeyPem);
    const { h, key } = await bridgeTo(fake.url, 'none');
    await expectRefusedUnverified(h, key, fake, /UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  });

  it('a self-signed server certificate, with the CA configured → refused the same way; nothing sent', async () => {
    fake = await apimWithCert(pki.selfSignedCertPem, pki.selfSignedKeyPem);
    const { h, key } = await bridgeTo(fake.url, 'rules');
    await expectRefusedUnverified(h, key, fake, /SELF_SIGNED/);
  });

  it('a certificate from another CA, with the CA configured → refused the same way; nothing sent', async () => {
    fake = await apimWithCert(pki.otherClientCertPem, pki.otherClientKeyPem);
    const { h, key } = await bridgeTo(fake.url, 'rules');
    await expectRefusedUnverified(h, key, fake, /UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  });

  // Every OpenSSL verification code is reported as an unverified certificate, not only those naming CERT or SELF_SIGNED.
  it('a certificate from the trusted CA that is not a server certificate (clientAuth only) → refused as unverified', async () => {
    fake = await apimWithCert(pki.clientCertPem, pki.clientKeyPem);
    const { h, key } = await bridgeTo(fake.url, 'rules');
    await expectRefusedUnverified(h, key, fake, /INVALID_PURPOSE/);
  });

  it('plain HTTP where https:// was configured → a defined 502; no request was made', async () => {
    const plain = await fakeHttp((_req, res) => res.writeHead(200).end('{}'));
    try {
      const { h, key } = await bridgeTo(plain.url.replace('http:', 'https:'), 'rules');
      const { res } = await timedCall(h, key, 'GET', A005());
      expect(res.status).toBe(502);
      const issue = res.json().issue[0];
      const reason = issue.details.coding.find((c: { system: string }) => c.system === 'urn:ers-bridge:error').code;
      expect(['UPSTREAM_UNREACHABLE', 'UPSTREAM_BAD_RESPONSE']).toContain(reason);
      expect(issue.diagnostics).toMatch(/ERR_SSL_WRONG_VERSION_NUMBER/);
      expect(plain.hits).toEqual([]);
    } finally {
      await plain.close();
    }
  });
});
