/**
 * The APIM stand-in on TLS (`emulate-apim --cert/--key`, as the Docker Compose trial runs it, reached by a name
 * rather than loopback): ers-bridge trusts it through `apim.ca` alone — for the token endpoint as for the e-RS calls
 * and the A042 object store — and without the CA nothing is sent.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  APP_ASID,
  expectLegacyOutcome,
  fixtureBytes,
  type Harness,
  legacyCall,
  openSession,
  startHarness,
} from '../helpers/harness.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';

let pki: TestPki;
let dir: string;
let caFile: string;
beforeAll(() => {
  pki = makeTestPki();
  dir = mkdtempSync(join(tmpdir(), 'ers-bridge-standin-tls-'));
  caFile = join(dir, 'standin-ca.pem');
  writeFileSync(caFile, pki.caPem, { mode: 0o600 });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the APIM stand-in on TLS, trusted through apim.ca', () => {
  let h: Harness;
  let key: string;
  beforeAll(async () => {
    h = await startHarness({
      standIn: { tls: { cert: pki.serverCertPem, key: pki.serverKeyPem }, retire: ['A006'] },
      rules: { apim: { ca: `file:${caFile}` } },
    });
    key = await openSession(h);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('serves https: its origin, token URL and object store', () => {
    expect(h.standIn.origin).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(h.standIn.tokenUrl).toBe(`${h.standIn.origin}/oauth2/token`);
    expect(h.standIn.objectStore.origin).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('A005: a token fetched and the call made over verified TLS', async () => {
    const res = await legacyCall(h, 'GET', '/ers-api/STU3/v1/ReferralRequest/000000070000', {
      XAPI_ASID: APP_ASID,
      HTTP_X_SESSION_KEY: key,
    });
    expect(res.status, res.body.toString()).toBe(200);
    expect(h.standIn.tokenRequests.length).toBeGreaterThan(0);
    expect(h.standIn.received.some((r) => r.url.includes('/STU3/ReferralRequest/000000070000'))).toBe(true);
  });

  it('A006 through A042: the 307 to the https object store is followed, verified with the same CA', async () => {
    const res = await legacyCall(h, 'GET', '/ers-api/STU3/v1/Binary/att-70000-70001', {
      XAPI_ASID: APP_ASID,
      HTTP_X_SESSION_KEY: key,
    });
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.body.equals(fixtureBytes('stu3/retrieveAttachment/responses/example_attachment.pdf'))).toBe(true);
    expect(h.standIn.objectStore.issued.at(-1)).toMatch(/^https:\/\//);
    expect(h.standIn.objectStore.served).toHaveLength(1);
  });
});

describe('the APIM stand-in on TLS, without apim.ca', () => {
  it('ers-bridge refuses the unverified certificate at the token endpoint: a legacy 503 naming it, nothing sent', async () => {
    const h = await startHarness({ standIn: { tls: { cert: pki.serverCertPem, key: pki.serverKeyPem } } });
    try {
      const call = await legacyCall(h, 'GET', '/ers-api/STU3/v1/ReferralRequest/000000070000', {
        XAPI_ASID: APP_ASID,
        HTTP_X_SESSION_KEY: await openSession(h),
      });
      const outcome = expectLegacyOutcome(call, 503, 'TOKEN_ENDPOINT_UNAVAILABLE');
      expect(outcome.diagnostics).toContain('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      // The handshake failed: no token request (so no client assertion) and no e-RS call reached the stand-in.
      expect(h.standIn.tokenRequests).toHaveLength(0);
      expect(h.standIn.received).toHaveLength(0);
    } finally {
      await h.close();
    }
  });
});
