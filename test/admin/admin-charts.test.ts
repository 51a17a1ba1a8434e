/**
 * The pages a migration lead decides on, in real headless Chromium, over a comparison store filled with an hour of
 * known traffic: the difference-rate and readiness charts (inline SVG: their data points), the time window and the
 * time zone, the exports (the CSV's rows, downloaded by the browser), the drill-down's de-duplicated outcomes, reset
 * with its confirmation step, and no horizontal overflow at 1280 and 390 px (screenshots taken at both).
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { adminFactsOf } from '../../src/admin/facts.js';
import { SUMMARY_CSV_COLUMNS } from '../../src/comparison/csv.js';
import { KNOWN_DIFFERENCES } from '../../src/comparison/presets.js';
import { ComparisonStore } from '../../src/comparison/store.js';
import type { ComparisonRecord } from '../../src/comparison/types.js';
import { launchChromium } from '../helpers/browser.js';
import { rulesFor } from '../helpers/rules.js';
import { type AdminApp, newToken, startAdminApp } from './fixture.js';

/** A summer time (BST) so the zone's name is visible in every time shown. */
const NOW = Date.parse('2026-06-15T12:00:00.000Z');
/** The store counts calls half a minute before the pages ask (windows end at now, exclusive). */
const STORE_NOW = NOW - 30_000;
const MIN = 60_000;
const APP_ASID = '999000000001';
const USER_ASID = '999000000002';
const SHOTS = join(tmpdir(), 'ers-bridge-admin-screenshots');

/** A005's difference rate in each 5-minute step of the last hour, oldest first (four comparisons a step). */
const A005_DIFFERENT = [0, 1, 2, 0, 4, 1, 0, 0, 3, 1, 2, 0];

function rec(at: number, extra: Partial<ComparisonRecord> = {}): ComparisonRecord {
  return {
    at: new Date(at).toISOString(),
    aCode: 'A005',
    route: '/STU3/v1/ReferralRequest/{ubrn}',
    method: 'GET',
    asid: APP_ASID,
    mode: 'shadow',
    primary: 'legacy',
    secondary: 'apim',
    result: {
      equal: true,
      statusEqual: true,
      primaryStatus: 200,
      secondaryStatus: 200,
      bodyKind: 'json',
      differences: [],
      noise: [],
    },
    primaryMs: 40,
    secondaryMs: 90,
    replica: 'ers-bridge-7c9d:41',
    ...extra,
  };
}

const differing = (at: number): ComparisonRecord =>
  rec(at, {
    result: {
      equal: false,
      statusEqual: true,
      primaryStatus: 200,
      secondaryStatus: 200,
      bodyKind: 'json',
      differences: [
        {
          path: 'meta.lastUpdated',
          kind: 'changed',
          primary: '2026-06-15T10:00:00Z',
          secondary: '2026-06-15T10:00:01Z',
        },
        {
          path: 'contained[0].extension[0].extension[2].valueCodeableConcept.coding[0].display',
          kind: 'changed',
          primary: 'A very long display text of the legacy side that goes on and on and on',
          secondary: 'A very long display text of APIM',
        },
      ],
      noise: [],
    },
  });

function fill(store: ComparisonStore): void {
  // Step k starts (60 - 5k) minutes ago; each record sits a minute into its step.
  A005_DIFFERENT.forEach((different, k) => {
    const at = NOW - 60 * MIN + k * 5 * MIN + MIN;
    for (let i = 0; i < 4; i++) store.add(i < different ? differing(at) : rec(at));
    if (k % 3 === 0) store.add(rec(at, { aCode: 'A004', route: '/STU3/v1/CodeSystem/{type}', asid: USER_ASID }));
    for (let i = 0; i < 4; i++) store.recordCall(APP_ASID, 'A005');
  });
  store.recordCall(APP_ASID, 'A038');
  store.recordCall(USER_ASID, 'A004');
  // Yesterday: outside the hour, inside the day.
  store.add(differing(NOW - 20 * 60 * MIN));
}

describe('comparison pages for a migration lead, in a browser', () => {
  const token = newToken();
  let store: ComparisonStore;
  let admin: AdminApp;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let pageErrors: string[];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    store = new ComparisonStore({ now: () => STORE_NOW, replica: 'ers-bridge-7c9d:41' });
    fill(store);
    const rules = rulesFor({
      apim: {
        baseUrl: 'https://int.api.service.nhs.uk/referrals/FHIR',
        tokenUrl: 'https://int.api.service.nhs.uk/oauth2/token',
      },
      asids: { [APP_ASID]: {}, [USER_ASID]: { accessMode: 'user-restricted' } },
      cis2: {
        issuer:
          'https://am.nhsint.auth-ptl.cis2.spineservices.nhs.uk/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare',
        clientId: 'ers-bridge-test',
        clientAuth: { method: 'client_secret_post', secret: 'env:CIS2_SECRET' },
        redirectUri: 'https://ers-bridge.example.nhs.uk/login/callback',
      },
      modes: { default: 'translate', routes: { A005: 'shadow', A004: { mode: 'canary', canary: { percent: 10 } } } },
    });
    admin = await startAdminApp({
      token,
      comparisons: () => store,
      facts: () => adminFactsOf(rules, KNOWN_DIFFERENCES, 'ers-bridge-7c9d:41'),
      now: () => NOW,
      timeZone: 'Europe/London',
    });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await admin?.close();
  });
  beforeEach(async () => {
    context = await browser.newContext({
      httpCredentials: { username: 'admin', password: token },
      acceptDownloads: true,
      viewport: { width: 1280, height: 900 },
    });
    page = await context.newPage();
    pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });
  afterEach(async () => {
    expect(pageErrors).toEqual([]);
    await context.close();
  });

  /** The data points of one series of a chart: [start, value, n]. */
  async function points(chart: string, series: string): Promise<Array<[string, number, number]>> {
    return page
      .locator(`figure#${chart} svg circle[data-series="${series}"]`)
      .evaluateAll((cs) =>
        cs.map((c) => [
          c.getAttribute('data-start')!,
          Number(c.getAttribute('data-value')),
          Number(c.getAttribute('data-n')),
        ]),
      ) as Promise<Array<[string, number, number]>>;
  }

  async function noOverflow(name: string): Promise<void> {
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 900 });
      const shot = join(SHOTS, `${name}-${width}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      expect(statSync(shot).size).toBeGreaterThan(10_000);
      const { scrollWidth, clientWidth } = await page.evaluate(() => ({
        scrollWidth: (globalThis as any).document.documentElement.scrollWidth as number,
        clientWidth: (globalThis as any).document.documentElement.clientWidth as number,
      }));
      expect(scrollWidth, `${name} at ${width} px`).toBeLessThanOrEqual(clientWidth);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  }

  it('charts the difference rate per A-code and readiness per ASID over the last hour, in local time', async () => {
    const res = await page.goto(`${admin.url}/admin/compare/ui?window=hour`);
    expect(res?.status()).toBe(200);
    const a005 = await points('difference-rate', 'A005');
    expect(a005).toEqual(
      A005_DIFFERENT.map((d, k) => [new Date(NOW - 60 * MIN + k * 5 * MIN).toISOString(), d / 4, 4]),
    );
    expect(await points('difference-rate', 'A004')).toEqual(
      [0, 3, 6, 9].map((k) => [new Date(NOW - 60 * MIN + k * 5 * MIN).toISOString(), 0, 1]),
    );
    // Each point says what it is, in the page's zone (BST in June).
    const title = await page
      .locator('figure#difference-rate svg circle[data-series="A005"] title')
      .nth(4)
      .textContent();
    expect(title).toBe('A005, 15 Jun 2026, 12:20 BST: 4 of 4 compared answers differ (100%)');
    // Readiness: the share of each ASID's compared answers that matched.
    expect((await points('readiness-trend', APP_ASID)).map(([, v]) => v)).toEqual(A005_DIFFERENT.map((d) => 1 - d / 4));
    expect((await points('readiness-trend', USER_ASID)).map(([, v]) => v)).toEqual([1, 1, 1, 1]);
    // The legend names the series; the chart is inline SVG drawn with classes.
    expect(await page.locator('figure#difference-rate ul.legend li').allInnerTexts()).toEqual([
      'A005 Retrieve referral request',
      'A004 Retrieve reference data',
    ]);
    expect(await page.locator('svg [style]').count()).toBe(0);
    const stroke = await page
      .locator('figure#difference-rate g.s0 polyline')
      .first()
      .evaluate((e) => (globalThis as any).getComputedStyle(e).stroke as string);
    expect(stroke).toBe('rgb(0, 94, 184)');

    // The time window and zone the figures cover, and each route's mode now.
    const scope = await page.locator('main > dl.summary').first().innerText();
    expect(scope).toMatch(/Time window\s+Last hour: 15 Jun 2026, 12:00 BST to 15 Jun 2026, 13:00 BST/);
    expect(scope).toMatch(/Times shown in\s+Europe\/London/);
    expect(scope).toContain('This process only (ers-bridge-7c9d:41)');
    const ops = await page
      .locator('table:has(caption:text("Answers compared per operation")) tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) =>
          Array.from(tr.querySelectorAll('th, td')).map((c) =>
            (c as unknown as { innerText: string }).innerText.trim(),
          ),
        ),
      );
    expect(ops.map((r) => r.slice(0, 7))).toEqual([
      [
        'A005',
        'Retrieve referral request',
        'shadow: the legacy host answers, APIM is compared (100% of calls)',
        '48',
        '14',
        '0',
        '29.2%',
      ],
      [
        'A004',
        'Retrieve reference data',
        'canary: APIM answers 10% of sessions, the legacy host the rest',
        '4',
        '0',
        '0',
        '0%',
      ],
    ]);

    // The same page in UTC, and over the last day (yesterday's comparison comes in).
    await page.goto(`${admin.url}/admin/compare/ui?window=day&tz=UTC`);
    expect(await page.locator('main > dl.summary').first().innerText()).toMatch(
      /Last day: 14 Jun 2026, 12:00 UTC to 15 Jun 2026, 12:00 UTC/,
    );
    expect(await page.locator('main > p').first().innerText()).toMatch(
      /^53 comparisons recorded since 14 Jun 2026, 12:00 UTC/,
    );
    const day = await points('difference-rate', 'A005');
    expect(day.reduce((n, [, , c]) => n + c, 0)).toBe(49);

    // A window chosen in the form (local times in the page's zone), without script.
    await page.goto(`${admin.url}/admin/compare/ui`);
    await page.locator('form.window input[name="from"]').fill('2026-06-15T12:30');
    await page.locator('form.window input[name="to"]').fill('2026-06-15T12:45');
    await page.locator('form.window button[type="submit"]').click();
    await page.waitForURL(/from=2026-06-15T12%3A30/);
    expect(await page.locator('main > p').first().innerText()).toMatch(/^13 comparisons recorded/);
    expect((await points('difference-rate', 'A005')).map(([, v]) => v)).toEqual([0, 0, 0.75]);
  });

  it('exports the window as CSV (its rows) and JSON, downloaded by the browser', async () => {
    await page.goto(`${admin.url}/admin/compare/ui?window=hour`);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Export CSV' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('ers-bridge-comparisons-hour-20260615T1200.csv');
    const csv = readFileSync((await download.path())!, 'utf8');
    const rows = csv
      .trimEnd()
      .split('\r\n')
      .map((l) => l.split(','));
    expect(rows[0]).toEqual([...SUMMARY_CSV_COLUMNS]);
    const col = (row: string[], name: (typeof SUMMARY_CSV_COLUMNS)[number]) => row[SUMMARY_CSV_COLUMNS.indexOf(name)];
    const body = rows
      .slice(1)
      .map((r) => [
        col(r, 'section'),
        col(r, 'a_code'),
        col(r, 'asid'),
        col(r, 'compared'),
        col(r, 'different'),
        col(r, 'calls'),
        col(r, 'verdict'),
      ]);
    expect(body).toEqual([
      ['operation', 'A004', '', '4', '0', '', ''],
      ['operation', 'A005', '', '48', '14', '', ''],
      ['readiness', 'A005', APP_ASID, '48', '14', '48', 'answers differ'],
      ['readiness', 'A038', APP_ASID, '0', '0', '1', 'needs a CIS2 user (not app-restricted on APIM)'],
      ['readiness', 'A004', USER_ASID, '4', '0', '1', 'ok'],
    ]);

    const [json] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Export JSON' }).click(),
    ]);
    const exported = JSON.parse(readFileSync((await json.path())!, 'utf8'));
    expect(exported.timeZone).toBe('Europe/London');
    expect(exported.summary.window).toEqual({
      from: new Date(NOW - 60 * MIN).toISOString(),
      to: new Date(NOW).toISOString(),
    });
    expect(exported.summary.records).toBe(52);
    expect(exported.trend.points).toHaveLength(12);
    expect(exported.presets.map((p: { id: string }) => p.id)).toEqual(KNOWN_DIFFERENCES.map((p) => p.id));
  });

  it('the A005 drill-down shows each distinct outcome once, with how often, and stays short', async () => {
    await page.goto(`${admin.url}/admin/compare/ui/A005?window=hour`);
    expect(await page.locator('h1').innerText()).toBe('A005 Retrieve referral request');
    const samples = page.locator('section.sample');
    // The latest 20 kept, 19 of them in the hour: two outcomes (the same, and the same two fields differing).
    expect(await samples.count()).toBe(2);
    const counts = await samples.evaluateAll((ss) => ss.map((s) => Number(s.getAttribute('data-count'))));
    expect(counts.sort((a, b) => a - b)).toEqual([6, 13]);
    // Examples: each distinct pair once, with its count.
    const examples = await page
      .locator('table:has(caption:text("Fields that differ in A005")) tbody tr', { hasText: 'meta.lastUpdated' })
      .innerText();
    expect(examples).toMatch(/meta\.lastUpdated\s+14/);
    expect(examples).toContain('seen 14 times');
    expect(await page.locator('ul.examples li').count()).toBe(2);
    expect(await points('code-difference-rate', 'A005')).toHaveLength(12);
    const height = await page.evaluate(() => (globalThis as any).document.documentElement.scrollHeight as number);
    expect(height).toBeLessThan(6000);
    await noOverflow('a005');
  });

  it('the overview and the readiness view fit at 1280 and 390 px: tables wrap or scroll inside', async () => {
    await page.goto(`${admin.url}/admin/compare/ui?window=hour`);
    // At 1280 px the operations table fits without scrolling: no clipped last column.
    const wrap = page.locator('.table-wrap', {
      has: page.locator('caption', { hasText: 'Answers compared per operation' }),
    });
    const fit = await wrap.evaluate((w) => ({ scroll: w.scrollWidth, client: w.clientWidth }));
    expect(fit.scroll).toBeLessThanOrEqual(fit.client);
    // Readiness: the application-restricted ASID's A038 needs a CIS2 user; the user-restricted ASID is ready.
    expect(await page.locator(`section#asid-${APP_ASID} ul.blocked li`).innerText()).toMatch(
      /^A038: not possible for this ASID on APIM \(needs a CIS2 user\)\. What to do: APIM serves A038 only to a healthcare worker signed in with CIS2/,
    );
    expect(await page.locator(`section#asid-${USER_ASID} .verdict`).innerText()).toMatch(/Verdict:\s*Ready$/);
    await noOverflow('overview');
  });

  it('reset: the link shows a confirmation form; posting it resets, and the page says so', async () => {
    const mine = new ComparisonStore({ now: () => STORE_NOW });
    fill(mine);
    const app = await startAdminApp({ token, comparisons: () => mine, now: () => NOW });
    try {
      await page.goto(`${app.url}/admin/compare/ui`);
      await page.getByRole('link', { name: 'Reset comparisons…' }).click();
      await page.waitForURL(`${app.url}/admin/compare/reset`);
      expect(await page.locator('h1').innerText()).toBe('Reset comparisons');
      expect(await page.locator('main').innerText()).toContain('53 comparisons are counted now');
      await noOverflow('reset');
      const confirmation = await page.locator('input[name="confirm"]').getAttribute('value');
      await page.getByRole('button', { name: 'Reset all comparisons' }).click();
      await page.waitForURL(`${app.url}/admin/compare/ui?reset=done`);
      expect(await page.locator('[role="status"]').innerText()).toContain('Every comparison was reset');
      expect(await page.locator('main > p').nth(0).innerText()).toMatch(
        /^0 comparisons recorded since 15 Jun 2026, 12:59 BST/,
      );
      // Posting the same confirmation again changes nothing: it was used.
      const again = await page.request.post(`${app.url}/admin/compare/reset`, { form: { confirm: confirmation! } });
      expect(again.status()).toBe(403);
      expect(await again.text()).toContain('The reset was not confirmed');
    } finally {
      await app.close();
    }
  });
});
