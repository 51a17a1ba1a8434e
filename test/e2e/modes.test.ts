/**
 * Migration modes end to end: a legacy client through ers-bridge, with the legacy HSCN stand-in (mutual TLS) and the
 * APIM stand-in behind it — passthrough, canary stickiness, shadow safety (slow, failing and production sides),
 * comparison results and their redaction, and the report page in a real browser.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ApimStandIn, startApimStandIn } from '../../src/apim-standin/index.js';
import { canaryBucket } from '../../src/pipeline/mode.js';
import type { Rules } from '../../src/rules/schema.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime } from '../../src/runtime/runtime.js';
import { newApimApp } from '../helpers/apim-app.js';
import { launchChromium } from '../helpers/browser.js';
import {
  APP_ASID,
  expectLegacyOutcome,
  FIXTURES,
  type Harness,
  legacyCall,
  legacyFixture,
  listenBridge,
  openSession,
} from '../helpers/harness.js';
import { type LegacyStandIn, startLegacyStandIn } from '../helpers/legacy-standin.js';
import { CLIENT_CERT_CN, makeTestPki } from '../helpers/pki.js';
import { rulesFor } from '../helpers/rules.js';

const A005 = '/ers-api/STU3/v1/ReferralRequest/000000070000';
const A013 = '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.acceptReferral';
const ADMIN_TOKEN = randomBytes(16).toString('hex');
const NETWORK_BASE = 'https://api.int1.ers.ncrs.nhs.uk/ers-api';

interface ModesHarness extends Harness {
  legacy: LegacyStandIn;
  rules: Rules;
  compareFile: string;
}

async function startModesHarness(legacyOptions: Parameters<typeof startLegacyStandIn>[0] = {}): Promise<ModesHarness> {
  const pki = makeTestPki();
  const legacy = await startLegacyStandIn({
    tls: { cert: pki.serverCertPem, key: pki.serverKeyPem, ca: pki.caPem, requireClientCert: true },
    networkBaseUrl: NETWORK_BASE,
    ...legacyOptions,
  });
  const app = await newApimApp({ asid: APP_ASID });
  const standIn: ApimStandIn = await startApimStandIn({ apps: [app.standInApp] });
  const dir = mkdtempSync(join(tmpdir(), 'ers-bridge-modes-'));
  const compareFile = join(dir, 'compare.jsonl');
  const rules = rulesFor({
    file: 'test-modes.yaml',
    environment: 'test-modes',
    legacy: {
      host: 'api.int1.ers.ncrs.nhs.uk',
      baseUrl: legacy.baseUrl,
      tls: { certificate: 'env:LEGACY_CERT', privateKey: 'env:LEGACY_KEY', ca: 'env:LEGACY_CA' },
    },
    apim: { baseUrl: standIn.baseUrl, tokenUrl: standIn.tokenUrl },
    modes: { default: 'translate', shadow: { timeoutMs: 1000 } },
    comparison: { file: compareFile },
    admin: { token: 'env:ADMIN_TOKEN' },
    asids: { [APP_ASID]: { apim: app.apim } },
  });
  const env = {
    LEGACY_CERT: pki.clientCertPem,
    LEGACY_KEY: pki.clientKeyPem,
    LEGACY_CA: pki.caPem,
    ADMIN_TOKEN,
    ...app.env,
  };
  const runtime = await buildRuntime('test-modes.yaml', rules, { resolveSecret: secretResolver(env) });
  const bridge = await listenBridge(runtime);
  return {
    ...bridge,
    standIn,
    runtime,
    legacy,
    rules,
    compareFile,
    secrets: { apiKey: app.apiKey, privateKeyPem: app.privateKeyPem },
    env,
    async close() {
      await bridge.close();
      await standIn.close();
      await legacy.close();
    },
  };
}

/** The value `f` gives once it gives one (comparisons are recorded after the answer). */
const eventually = <T extends object | true>(f: () => T | undefined, ms = 5000) =>
  vi.waitUntil(f, { timeout: ms, interval: 25 });

describe('migration modes', () => {
  let h: ModesHarness;
  beforeAll(async () => {
    h = await startModesHarness({
      // The legacy side is slow for A004 and fails for A006: shadow must not care.
      delayMs: (req) => (req.url.includes('/CodeSystem/') ? 3000 : 0),
      fail: (req) => (req.url.includes('/Binary/') ? 503 : undefined),
    });
  }, 30_000);
  afterAll(async () => {
    await h?.close();
  });

  const setModes = (modes: Partial<Rules['modes']>) => {
    h.rules.modes = { ...h.rules.modes, routes: {}, ...modes } as Rules['modes'];
  };

  it('passthrough: the legacy host answers, the call unchanged but for the session key, over mutual TLS', async () => {
    setModes({ default: 'passthrough' });
    const key = await openSession(h);
    const apimBefore = h.standIn.received.length;
    const res = await legacyCall(h, 'GET', A005, {
      XAPI_ASID: APP_ASID,
      HTTP_X_SESSION_KEY: key,
      'X-Custom-Header': 'kept',
    });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual(legacyFixture('stu3/retrieveReferralRequest/responses/Unbooked.json', NETWORK_BASE));
    expect(res.headers['x_ers_transaction_id']).toMatch(/-1$/);
    expect(h.standIn.received.length).toBe(apimBefore); // nothing went to APIM

    const atLegacy = h.legacy.received.filter((r) => r.url.startsWith('/ers-api/STU3/')).at(-1)!;
    expect(atLegacy.clientCertCN).toBe(CLIENT_CERT_CN);
    const names = atLegacy.rawHeaders.map(([n]) => n);
    expect(names).toContain('XAPI_ASID');
    expect(names).toContain('X-Custom-Header');
    const sentKey = atLegacy.rawHeaders.find(([n]) => n.toUpperCase() === 'HTTP_X_SESSION_KEY')?.[1];
    expect(sentKey).toBeDefined();
    expect(sentKey).not.toBe(key); // the legacy host's own session, opened by ers-bridge
    expect(h.legacy.sessions.has(sentKey!)).toBe(true);

    // A003 closes the legacy session too.
    const a003 = await legacyCall(h, 'DELETE', `/ers-api/v1/ProfessionalSession/${key}`, {
      XAPI_ASID: APP_ASID,
      HTTP_X_SESSION_KEY: key,
    });
    expect(a003.status).toBe(204);
    expect(h.legacy.sessions.has(sentKey!)).toBe(false);
  });

  it('passthrough opens the legacy session once, however many calls', async () => {
    setModes({ default: 'passthrough' });
    const key = await openSession(h);
    const a001Before = h.legacy.received.filter(
      (r) => r.method === 'POST' && r.url === '/ers-api/v1/ProfessionalSession',
    ).length;
    await Promise.all(
      Array.from({ length: 8 }, () => legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key })),
    );
    const a001After = h.legacy.received.filter(
      (r) => r.method === 'POST' && r.url === '/ers-api/v1/ProfessionalSession',
    ).length;
    expect(a001After - a001Before).toBe(1);
  });

  it('a legacy host that refuses the A001 token gives a legacy-shaped 403', async () => {
    setModes({ default: 'passthrough' });
    const a001 = await legacyCall(
      h,
      'POST',
      '/ers-api/v1/ProfessionalSession',
      { XAPI_ASID: APP_ASID, 'Content-Type': 'application/json' },
      JSON.stringify({ token: 'expired-ticket' }),
    );
    const key = a001.json().id;
    await legacyCall(
      h,
      'PUT',
      `/ers-api/v1/ProfessionalSession/${key}`,
      { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/json' },
      JSON.stringify({ permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' } }),
    );
    const res = await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
    const issue = expectLegacyOutcome(res, 403, 'LEGACY_SESSION_FAILED');
    expect(issue.diagnostics).toMatch(/CIS1 ticket/);
  });

  it('canary: a session stays on one side, and the share follows the percentage', async () => {
    setModes({ default: 'canary', canary: { percent: 50, by: 'session' } });
    const sides = new Map<string, Set<string>>();
    for (let i = 0; i < 12; i++) {
      const key = await openSession(h);
      for (let j = 0; j < 3; j++) {
        const apimBefore = h.standIn.received.length;
        const res = await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
        expect(res.status).toBe(200);
        const side = h.standIn.received.length > apimBefore ? 'apim' : 'legacy';
        if (!sides.has(key)) sides.set(key, new Set());
        sides.get(key)!.add(side);
      }
      // The side is the one the bucket predicts.
      expect([...sides.get(key)!]).toEqual([canaryBucket(`session:${key}`) < 5000 ? 'apim' : 'legacy']);
    }
    for (const s of sides.values()) expect(s.size).toBe(1);
  });

  it('canary: /metrics on the ops port counts each side of the split (side="apim" and side="legacy")', async () => {
    setModes({ default: 'canary', canary: { percent: 50, by: 'session' } });
    const counted = async () => {
      const text = await (await request(`${h.opsUrl}/metrics`)).body.text();
      const of = (side: string) => {
        const line = text
          .split('\n')
          .find((l) =>
            l.startsWith(
              `ers_bridge_requests_total{a_code="A005",method="GET",status="200",mode="canary",side="${side}",reason="none",asid="${APP_ASID}"}`,
            ),
          );
        return line ? Number(line.split(' ').at(-1)) : 0;
      };
      return { apim: of('apim'), legacy: of('legacy') };
    };
    const before = await counted();
    const expected = { apim: 0, legacy: 0 };
    // Sessions until both sides have answered (their buckets say which side each is on).
    for (let i = 0; i < 40 && (expected.apim === 0 || expected.legacy === 0); i++) {
      const key = await openSession(h);
      const res = await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
      expect(res.status).toBe(200);
      expected[canaryBucket(`session:${key}`) < 5000 ? 'apim' : 'legacy']++;
    }
    expect(expected.apim).toBeGreaterThan(0);
    expect(expected.legacy).toBeGreaterThan(0);
    const after = await counted();
    expect({ apim: after.apim - before.apim, legacy: after.legacy - before.legacy }).toEqual(expected);
    // The log lines say the side too.
    const lines = h.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'legacy call' && l.mode === 'canary');
    expect(new Set(lines.map((l) => l.side))).toEqual(new Set(['apim', 'legacy']));
  });

  it('shadow: a slow secondary leaves the primary untouched, and times out on its own', async () => {
    setModes({ default: 'shadow', shadow: { ...h.rules.modes.shadow, primary: 'apim', timeoutMs: 1000 } });
    const key = await openSession(h);
    const started = performance.now();
    const res = await legacyCall(h, 'GET', '/ers-api/STU3/v1/CodeSystem/SPECIALTY', {
      XAPI_ASID: APP_ASID,
      HTTP_X_SESSION_KEY: key,
    });
    const elapsed = performance.now() - started;
    expect(res.status).toBe(200);
    expect(res.json()).toEqual(legacyFixture('stu3/getCodeSystem/responses/SpecialtyCodeSystem.json', h.legacyBase));
    expect(elapsed).toBeLessThan(1500); // the legacy side takes 3 s for this path
    const record = await eventually(
      () => h.runtime.comparisons!.samples('A004', 5).find((r) => r.secondaryError),
      4000,
    );
    expect(record.secondaryError).toMatch(/timed out|TIMEOUT|abort/i);
  });

  it('shadow: a failing secondary leaves the primary status untouched and is reported', async () => {
    setModes({ default: 'shadow', shadow: { ...h.rules.modes.shadow, primary: 'apim', timeoutMs: 2000 } });
    const key = await openSession(h);
    const res = await legacyCall(h, 'GET', '/ers-api/STU3/v1/Binary/att-70000-70001', {
      XAPI_ASID: APP_ASID,
      HTTP_X_SESSION_KEY: key,
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/pdf');
    const record = await eventually(() => h.runtime.comparisons!.samples('A006', 5)[0]);
    expect(record.result.statusEqual).toBe(false);
    expect(record.result.secondaryStatus).toBe(503);
  });

  it("shadow, legacy primary: A005 bodies compare equal once each side's base URL is folded; an ignore rule drops a known header quirk", async () => {
    setModes({
      default: 'shadow',
      shadow: { ...h.rules.modes.shadow, primary: 'legacy', timeoutMs: 3000, ignoreHeaders: [] },
    });
    const key = await openSession(h);
    const res = await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
    expect(res.json()).toEqual(legacyFixture('stu3/retrieveReferralRequest/responses/Unbooked.json', NETWORK_BASE));
    const first = await eventually(() => h.runtime.comparisons!.samples('A005', 5).find((r) => r.primary === 'legacy'));
    // The HSCN API sent JSON with "Content-Disposition: inline;filename=f.txt"; APIM does not: the only difference.
    expect(first.result.differences.map((d) => d.path)).toEqual(['header:content-disposition']);

    setModes({
      default: 'shadow',
      shadow: { ...h.rules.modes.shadow, primary: 'legacy', timeoutMs: 3000, ignoreHeaders: ['content-disposition'] },
    });
    const before = h.runtime.comparisons!.samples('A005', 50).length;
    await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
    const second = await eventually(() => {
      const all = h.runtime.comparisons!.samples('A005', 50);
      return all.length > before ? all[0] : undefined;
    });
    expect(second.result.differences).toEqual([]);
    expect(second.result.equal).toBe(true);
  });

  it('writes are never shadowed to a production side; to a declared stand-in they are', async () => {
    setModes({ default: 'shadow', shadow: { ...h.rules.modes.shadow, primary: 'apim' } });
    const key = await openSession(h);
    const acceptsAtLegacy = () => h.legacy.received.filter((r) => r.url.endsWith('$ers.acceptReferral')).length;
    const before = acceptsAtLegacy();
    const res = await legacyCall(h, 'POST', A013, {
      XAPI_ASID: APP_ASID,
      HTTP_X_SESSION_KEY: key,
      'If-Match': 'W/"5"',
    });
    expect(res.status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(acceptsAtLegacy()).toBe(before);
    const line = h.logs.map((l) => JSON.parse(l)).findLast((l) => l.msg === 'legacy call' && l.aCode === 'A013');
    expect(line.shadow).toMatch(/never copied to production/);

    h.rules.legacy.production = false;
    try {
      await legacyCall(h, 'POST', A013, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key, 'If-Match': 'W/"5"' });
      await eventually(() => (acceptsAtLegacy() > before ? true : undefined));
    } finally {
      h.rules.legacy.production = true;
    }
  });

  it('the admin report shows the comparisons, and needs the token', async () => {
    const denied = await legacyCall(h, 'GET', '/admin/compare');
    expect(denied.status).toBe(401);
    const res = await legacyCall(h, 'GET', '/admin/compare', { Authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(res.status).toBe(200);
    const summary = res.json();
    const a005 = summary.codes.find((c: { aCode: string }) => c.aCode === 'A005');
    expect(a005.compared).toBe(2);
    expect(a005.different).toBe(1);
    expect(a005.topFields[0].path).toBe('header:content-disposition');
    expect(summary.asids.map((a: { asid: string }) => a.asid)).toContain(APP_ASID);
  });

  it('the report page renders and drills down in headless Chromium', async () => {
    const browser = await launchChromium();
    try {
      const context = await browser.newContext({ httpCredentials: { username: 'admin', password: ADMIN_TOKEN } });
      const page = await context.newPage();
      await page.goto(`${h.bridgeUrl}/admin/compare/ui`);
      const main = await page.locator('main').innerText();
      expect(main).toContain('A005');
      expect(main).toContain('A006');
      expect(main).toContain(APP_ASID);
      await page.locator('a[href="/admin/compare/ui/A006"]').first().click();
      await page.waitForURL(`${h.bridgeUrl}/admin/compare/ui/A006`);
      const drill = await page.locator('main').innerText();
      expect(drill).toContain('503');
      expect(drill).toMatch(/status/i);
    } finally {
      await browser.close();
    }
  });

  it('the comparison store holds no NHS number, name or token', async () => {
    await h.runtime.comparisons!.flush();
    const dir = join(h.compareFile, '..');
    const text = readdirSync(dir)
      .map((f) => readFileSync(join(dir, f), 'utf8'))
      .join('\n');
    expect(text.length).toBeGreaterThan(100);
    const fixture = readFileSync(new URL('stu3/retrieveReferralRequest/responses/Unbooked.json', FIXTURES), 'utf8');
    const nhsNumbers = [...fixture.matchAll(/"value":\s*"(\d{10})"/g)].map((m) => m[1]!);
    expect(nhsNumbers.length).toBeGreaterThan(0);
    for (const n of nhsNumbers) expect(text).not.toContain(n);
    for (const r of h.standIn.received) {
      const token = String(r.headers['authorization'] ?? '').replace(/^Bearer /, '');
      if (token) expect(text).not.toContain(token);
    }
    expect(text).not.toMatch(/pro-api-session:[0-9a-f]/);
  });
});
