/**
 * Issue 14 end to end, on one ers-bridge in shadow mode (the legacy stand-in answers, APIM gets the copy), recording
 * the legacy traffic as it goes:
 *  - one comparison engine: `ers-bridge replay` of that recording finds the same differences live shadow found, with
 *    the same ignore rules — and a recorded answer that differs only at an ignored path compares equal in replay too;
 *  - the known differences APIM adds by design (A008 referralRequestVersion: the legacy stand-in answers as HSCN did,
 *    without it) show as "ignored by preset", not as differences, on the page, in the JSON and in compare report;
 *  - an application-restricted ASID calling A038 (CIS2 users only on APIM) is "not possible for this ASID on APIM
 *    (needs a CIS2 user)", with the action to take, not "not compared yet";
 *  - unknown A-codes are 404, JSON and page.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ApimStandIn, startApimStandIn } from '../../src/apim-standin/index.js';
import { main } from '../../src/cli/main.js';
import { ComparisonStore } from '../../src/comparison/store.js';
import type { ComparisonRecord } from '../../src/comparison/types.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime, type Runtime } from '../../src/runtime/runtime.js';
import { newApimApp } from '../helpers/apim-app.js';
import { launchChromium } from '../helpers/browser.js';
import { APP_ASID, fixtureBytes, type Harness, legacyCall, listenBridge, openSession } from '../helpers/harness.js';
import { type LegacyStandIn, startLegacyStandIn } from '../helpers/legacy-standin.js';
import { type RulesOptions, rulesFor, rulesText } from '../helpers/rules.js';

const ADMIN_TOKEN = randomBytes(24).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'ers-bridge-engine-'));
const recording = join(dir, 'traffic.jsonl');
const compareFile = join(dir, 'compare.jsonl');
const A005 = '/ers-api/STU3/v1/ReferralRequest/000000070000';
const A004 = '/ers-api/STU3/v1/CodeSystem/SPECIALTY';
const A008 = '/ers-api/STU3/v1/ReferralRequest/$ers.fetchworklist';
const A038 = '/ers-api/STU3/v1/Appointment/000000070001';
/** The ignore rules both live shadow and replay must apply (replay ignored them before issue 14). */
const SHADOW = { primary: 'legacy' as const, timeoutMs: 3000, ignorePaths: ['**.meta.lastUpdated'] };

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a) => out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a) => err.push(a.join(' ')));
  const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out.push(String(s));
    return true;
  });
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err.push(String(s));
    return true;
  });
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const code = await main(args);
    return { code, out: out.join('\n'), err: err.join('') };
  } finally {
    process.env = saved;
    log.mockRestore();
    error.mockRestore();
    stdout.mockRestore();
    stderr.mockRestore();
  }
}

/** The differences of each record of an A-code, as comparable text (paths, kinds, presets), oldest first. */
function outcomes(records: ComparisonRecord[]): string[] {
  return [...records]
    .sort((a, b) => (a.at < b.at ? -1 : 1))
    .map((r) =>
      JSON.stringify({
        equal: r.result.equal,
        differences: r.result.differences.map((d) => `${d.kind} ${d.path}`).sort(),
        presets: (r.result.ignoredByPreset ?? []).map((p) => `${p.id}: ${p.fields}`),
      }),
    );
}

describe('one comparison engine, presets and readiness, end to end', () => {
  let legacy: LegacyStandIn;
  let standIn: ApimStandIn;
  let runtime: Runtime;
  let h: Harness;
  let rulesFile: string;
  let options: RulesOptions;
  let env: Record<string, string>;
  const bearer = { Authorization: `Bearer ${ADMIN_TOKEN}` };

  beforeAll(async () => {
    legacy = await startLegacyStandIn({});
    const app = await newApimApp({ asid: APP_ASID });
    standIn = await startApimStandIn({ apps: [app.standInApp] });
    options = {
      file: 'engine.yaml',
      legacy: { host: 'api.int1.ers.ncrs.nhs.uk', baseUrl: legacy.baseUrl, production: false },
      apim: { baseUrl: standIn.baseUrl, tokenUrl: standIn.tokenUrl },
      modes: { default: 'shadow', shadow: SHADOW },
      comparison: { file: compareFile },
      record: { file: recording },
      admin: { token: 'env:ADMIN_TOKEN' },
      asids: { [APP_ASID]: { apim: app.apim } },
    };
    env = { ADMIN_TOKEN, ...app.env };
    rulesFile = join(dir, 'engine.yaml');
    writeFileSync(rulesFile, rulesText(options));
    runtime = await buildRuntime(rulesFile, rulesFor(options), { resolveSecret: secretResolver(env) });
    const bridge = await listenBridge(runtime);
    h = {
      ...bridge,
      standIn,
      runtime,
      secrets: { apiKey: app.apiKey, privateKeyPem: app.privateKeyPem },
      env,
      close: bridge.close,
    } as Harness;

    const key = await openSession(h);
    const hdr = { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key };
    for (let i = 0; i < 2; i++) {
      expect((await legacyCall(h, 'GET', A005, hdr)).status).toBe(200);
      expect((await legacyCall(h, 'GET', A004, hdr)).status).toBe(200);
      const worklist = await legacyCall(
        h,
        'POST',
        A008,
        { ...hdr, 'Content-Type': 'application/fhir+json' },
        fixtureBytes('stu3/retrieveWorklist/requests/MinimalReferralsForReview.json'),
      );
      expect(worklist.status).toBe(200);
      // The legacy stand-in answers as HSCN did: no referralRequestVersion (APIM added it in December 2025).
      expect(worklist.body.toString()).not.toContain('referralRequestVersion');
    }
    // A038 is for CIS2 users only on APIM: the legacy host answers (404 here), no copy goes to APIM.
    await legacyCall(h, 'GET', A038, hdr);
    await vi.waitUntil(() => (runtime.comparisons!.summary().records >= 6 ? true : undefined), { timeout: 10_000 });
    await runtime.recorder!.flush();
    await runtime.comparisons!.flush();
  }, 60_000);

  afterAll(async () => {
    await h?.close();
    await standIn?.close();
    await legacy?.close();
  });

  it('live shadow counts A008 referralRequestVersion as ignored by preset, not as a difference', async () => {
    const res = await legacyCall(h, 'GET', '/admin/compare', bearer);
    expect(res.status).toBe(200);
    const a008 = res.json().codes.find((c: { aCode: string }) => c.aCode === 'A008');
    expect(a008).toMatchObject({
      compared: 2,
      ignoredByPreset: 2,
      presets: [{ id: 'A008-referralRequestVersion', count: 2 }],
    });
    expect(a008.topFields.map((f: { path: string }) => f.path)).toEqual(['header:content-disposition']);
    const [sample] = runtime.comparisons!.samples('A008', 1);
    expect(sample!.result.ignoredByPreset).toEqual([
      {
        id: 'A008-referralRequestVersion',
        fields: 4,
        paths: [
          'entry[0].extension[0].extension[9].url',
          'entry[0].extension[0].extension[9].valueInteger',
          'entry[1].extension[0].extension[12].url',
          'entry[1].extension[0].extension[12].valueInteger',
        ],
      },
    ]);
  });

  it('replay of the recorded traffic finds the same differences as live shadow, with the same ignore rules', async () => {
    const out = join(dir, 'replayed.jsonl');
    const r = await cli(['replay', recording, '--rules', rulesFile, '--out', out], env);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toContain('replayed 7 of 7 recorded calls');
    const replayed = await ComparisonStore.load(out);
    for (const code of ['A004', 'A005', 'A008']) {
      const live = outcomes(runtime.comparisons!.samples(code));
      expect(live, code).toHaveLength(2);
      expect(outcomes(replayed.samples(code)), code).toEqual(live);
    }
    // The same figures too: compared, different, ignored by preset, the fields.
    const pick = (s: ReturnType<ComparisonStore['summary']>) =>
      s.codes
        .filter((c) => c.aCode !== 'A038')
        .map((c) => [c.aCode, c.compared, c.different, c.ignoredByPreset ?? 0, c.topFields.map((f) => f.path)]);
    expect(pick(replayed.summary())).toEqual(pick(runtime.comparisons!.summary()));
  });

  it("replay honours the rules' ignorePaths: a recorded answer differing only at meta.lastUpdated compares equal", async () => {
    const lines = readFileSync(recording, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const a005 = lines.find((l) => l.aCode === 'A005');
    a005.answer.body.json.meta.lastUpdated = '2024-08-01T09:00:00.000Z';
    a005.answer.headers['content-disposition'] = undefined;
    delete a005.answer.headers['content-disposition'];
    const tampered = join(dir, 'tampered.jsonl');
    writeFileSync(tampered, `${JSON.stringify(a005)}\n`);
    const out = join(dir, 'tampered-out.jsonl');
    const r = await cli(['replay', tampered, '--rules', rulesFile, '--out', out, '--fail-on-difference'], env);
    expect(r.code, r.out + r.err).toBe(0);
    const [record] = (await ComparisonStore.load(out)).samples('A005');
    expect(record!.result).toMatchObject({ equal: true, differences: [] });

    // The same recording with the ignore rule taken out of the rules: now it is a difference.
    const noIgnore = join(dir, 'no-ignore.yaml');
    writeFileSync(
      noIgnore,
      rulesText({ ...options, modes: { default: 'shadow', shadow: { ...SHADOW, ignorePaths: [] } } }),
    );
    const r2 = await cli(['replay', tampered, '--rules', noIgnore, '--fail-on-difference'], env);
    expect(r2.code).toBe(1);
    expect(r2.out).toContain('meta.lastUpdated');
  });

  it('compare report applies the same presets (and with --rules the same ignore rules) to a comparison file', async () => {
    // A file written without presets (an older ers-bridge, or presets: false) reads with the presets applied.
    const records = readFileSync(compareFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((o) => o.aCode === 'A008');
    expect(records.length).toBe(2);
    const old = records.map((o) => {
      const paths: string[] = o.result.ignoredByPreset[0].paths;
      const back = { ...o, result: { ...o.result, equal: false } };
      back.result.differences = [
        ...o.result.differences,
        ...paths.map((p: string) => ({
          path: p,
          kind: 'only-secondary',
          secondary: p.endsWith('url') ? 'referralRequestVersion' : 5,
        })),
      ];
      delete back.result.ignoredByPreset;
      return back;
    });
    const oldFile = join(dir, 'old.jsonl');
    writeFileSync(oldFile, `${old.map((o) => JSON.stringify(o)).join('\n')}\n`);
    const r = await cli(['compare', 'report', oldFile], {});
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toContain('A008 ignored by preset A008-referralRequestVersion');
    expect(r.out).not.toContain('extension[9]');
    const withRules = await cli(['compare', 'report', oldFile, '--rules', rulesFile], env);
    expect(withRules.out).toMatch(/A008 ignored by preset A008-referralRequestVersion[^\n]*: 2/);
  });

  it('A038 for an application-restricted ASID is "needs a CIS2 user", with what to do, in JSON and on the page', async () => {
    const summary = (await legacyCall(h, 'GET', '/admin/compare', bearer)).json();
    const asid = summary.asids.find((a: { asid: string }) => a.asid === APP_ASID);
    expect(asid.accessMode).toBe('application-restricted');
    expect(asid.codes.find((c: { aCode: string }) => c.aCode === 'A038')).toMatchObject({
      calls: 1,
      compared: 0,
      appRestrictedAllowed: false,
      state: 'needs-cis2-user',
    });
    expect(asid.codes.find((c: { aCode: string }) => c.aCode === 'A005')).toMatchObject({ state: 'differs' });

    const browser = await launchChromium();
    try {
      const context = await browser.newContext({ httpCredentials: { username: 'admin', password: ADMIN_TOKEN } });
      const page = await context.newPage();
      await page.goto(`${h.bridgeUrl}/admin/compare/ui`);
      const section = page.locator(`section#asid-${APP_ASID}`);
      const blocked = await section.locator('ul.blocked li').allInnerTexts();
      expect(blocked).toHaveLength(1);
      expect(blocked[0]).toMatch(
        /^A038 Retrieve appointment: not possible for this ASID on APIM \(needs a CIS2 user\)\. What to do: /,
      );
      expect(blocked[0]).toContain('user-restricted ASID');
      // Not "not compared yet": that would never change.
      expect(await section.locator('.reasons').innerText()).not.toContain('A038');

      // The presets are on the page, with what they matched.
      const presets = page.locator('table', { has: page.locator('caption', { hasText: 'Known differences' }) });
      const row = (await presets.locator('tbody tr').first().locator('th, td').allInnerTexts()).map((t) => t.trim());
      expect(row[0]).toBe('referralRequestVersion');
      expect(row[1]).toBe('A008');
      expect(row[4]).toMatch(/NHS England e-RS FHIR API specification.*since 2025-12/);
      expect(row[5]).toBe('2');
      const ops = page.locator('table', {
        has: page.locator('caption', { hasText: 'Answers compared per operation' }),
      });
      const a008 = await ops
        .locator('tbody tr', { has: page.locator('a', { hasText: 'A008' }) })
        .locator('th, td')
        .allInnerTexts();
      expect(a008[2]).toMatch(/^shadow: the legacy host answers, APIM is compared/); // the mode now
      expect(a008[5]).toBe('2'); // ignored by preset

      await page.goto(`${h.bridgeUrl}/admin/compare/ui/A008`);
      expect(await page.locator('main').innerText()).toMatch(/Ignored by preset\s+2/);
      expect(await page.locator('h2#presets + p + .table-wrap tbody tr th').innerText()).toBe('referralRequestVersion');
      await context.close();
    } finally {
      await browser.close();
    }
  });

  it('an unknown A-code is 404, JSON and page; a known one without comparisons is not', async () => {
    const json = await legacyCall(h, 'GET', '/admin/compare/A999', bearer);
    expect(json.status).toBe(404);
    expect(json.json().error).toMatch(/A999 is not an e-RS operation/);
    const page = await legacyCall(h, 'GET', '/admin/compare/ui/A999', bearer);
    expect(page.status).toBe(404);
    expect(page.body.toString()).toContain('<h1>A999 is not an e-RS operation</h1>');
    expect((await legacyCall(h, 'GET', '/admin/compare/samples?code=A999', bearer)).status).toBe(404);
    const known = await legacyCall(h, 'GET', '/admin/compare/A011', bearer);
    expect(known.status).toBe(200);
    expect(known.json()).toMatchObject({ aCode: 'A011', compared: 0, samples: [] });
    expect((await legacyCall(h, 'GET', '/admin/compare/ui/A011', bearer)).status).toBe(200);
    const a005 = (await legacyCall(h, 'GET', '/admin/compare/A005', bearer)).json();
    expect(a005).toMatchObject({ aCode: 'A005', compared: 2, mode: expect.stringMatching(/^shadow/) });
    expect(a005.samples).toHaveLength(2);
  });
});
