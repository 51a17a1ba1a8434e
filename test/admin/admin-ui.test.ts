/**
 * A migration team member opens the comparison pages in a real browser (headless Chromium), signs in with the
 * browser's Basic prompt (admin + token), reads the operations table and the ASID verdicts, and drills into A005.
 * A value that looks like HTML is shown as text and never runs.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { type AdminApp, NOT_READY_ASID, newToken, READY_ASID, startAdminApp, XSS } from './fixture.js';

describe('admin comparison pages in a browser', () => {
  const token = newToken();
  let admin: AdminApp;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let dialogs: string[];
  let pageErrors: string[];

  beforeAll(async () => {
    admin = await startAdminApp({ token });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await admin?.close();
  });
  beforeEach(async () => {
    context = await browser.newContext({ httpCredentials: { username: 'admin', password: token } });
    page = await context.newPage();
    dialogs = [];
    pageErrors = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });
  afterEach(async () => {
    await context.close();
  });

  /** The cells of each body row of a table, as the user reads them. */
  async function rows(tableSelector: string): Promise<string[][]> {
    return page
      .locator(`${tableSelector} tbody tr`)
      .evaluateAll((trs) =>
        trs.map((tr) =>
          Array.from(tr.querySelectorAll('th, td')).map((c) =>
            (c as unknown as { innerText: string }).innerText.trim(),
          ),
        ),
      );
  }

  it('shows operations by difference rate and the ASID verdicts, then the A005 drill-down', async () => {
    const res = await page.goto(`${admin.url}/admin/compare/ui`);
    expect(res?.status()).toBe(200);
    expect(await page.title()).toBe('Comparison of answers – ers-bridge admin');
    expect(await page.locator('html').getAttribute('lang')).toBe('en-GB');
    expect(await page.locator('h1').count()).toBe(1);
    // The stylesheet loaded (behind the same credentials, allowed by the CSP): the NHS blue header.
    expect(await page.locator('header').evaluate((e) => (globalThis as any).getComputedStyle(e).backgroundColor)).toBe(
      'rgb(0, 94, 184)',
    );

    const ops = page.locator('table', { has: page.locator('caption', { hasText: 'Answers compared per operation' }) });
    expect(await ops.locator('caption').innerText()).toBe(
      'Answers compared per operation, highest difference rate first',
    );
    // Issue 14 added each operation's mode now (from the rules; none here) and the comparisons a preset ignored.
    expect(await ops.locator('thead th').allInnerTexts()).toEqual([
      'A-code',
      'Operation',
      'Mode now',
      'Compared',
      'Different',
      'Ignored by preset',
      'Difference rate',
      'Status mismatches',
      'Secondary errors',
      'Median latency, primary',
      'Median latency, secondary',
    ]);
    expect(await ops.locator('thead th[scope="col"]').count()).toBe(11);
    expect(await rows('table:has(caption:text("Answers compared per operation"))')).toEqual([
      ['A005', 'Retrieve referral request', '–', '10', '3', '0', '30%', '1', '2', '120 ms', '250 ms'],
      ['A004', 'Retrieve reference data', '–', '20', '0', '0', '0%', '0', '0', '5 ms', '9.5 ms'],
    ]);

    // Readiness: the ASID that is not ready comes first, with its reasons.
    const notReady = page.locator(`section#asid-${NOT_READY_ASID}`);
    expect(await notReady.locator('h3').innerText()).toBe(`ASID ${NOT_READY_ASID}`);
    expect(await notReady.locator('.verdict').innerText()).toMatch(/Verdict:\s*Not yet/);
    expect(await notReady.locator('.reasons li').allInnerTexts()).toEqual([
      'A005: 3 of 10 compared answers differ; 1 call failed on APIM',
      'A011: not compared yet',
    ]);
    expect(await notReady.innerText()).toContain('APIM allows A011 for a signed-in CIS2 user only');
    expect(await rows(`section#asid-${NOT_READY_ASID} table`)).toEqual([
      ['A004', 'Retrieve reference data', '8', 'Allowed', '8', '0', '0'],
      ['A005', 'Retrieve referral request', '12', 'Allowed', '10', '3', '1'],
      ['A011', 'Create referral', '2', 'Not allowed (CIS2 user needed)', '0', '0', '0'],
    ]);
    const ready = page.locator(`section#asid-${READY_ASID}`);
    expect(await ready.locator('.verdict').innerText()).toMatch(/Verdict:\s*Ready/);
    expect(await ready.locator('.reasons').count()).toBe(0);
    expect(await rows(`section#asid-${READY_ASID} table`)).toEqual([
      ['A004', 'Retrieve reference data', '12', 'Allowed', '12', '0', '0'],
    ]);
    const order = await page.locator('section.asid h3').allInnerTexts();
    expect(order).toEqual([`ASID ${NOT_READY_ASID}`, `ASID ${READY_ASID}`]);

    // Drill down into A005 from the operations table.
    await ops.getByRole('link', { name: 'A005' }).click();
    await page.waitForURL(`${admin.url}/admin/compare/ui/A005`);
    expect(await page.locator('h1').innerText()).toBe('A005 Retrieve referral request');
    const summary = await page.locator('main > dl.summary').innerText();
    expect(summary).toMatch(/Difference rate\s+30%/);
    expect(summary).toMatch(/Status mismatches\s+1/);

    const fields = await rows('table:has(caption:text("Fields that differ in A005"))');
    expect(fields.map((r) => [r[0], r[1]])).toEqual([
      ['status', '3'],
      ['meta.versionId', '2'],
      ['text.div', '1'],
      ['header:etag', '1'],
    ]);
    expect(fields[0]![2]).toContain('primary "active"');
    expect(fields[0]![2]).toContain('secondary "draft"');
    expect(fields[0]![2]).toContain('secondary "cancelled"');
    // A string "5" against a number 6 stays visibly different.
    expect(fields[1]![2]).toMatch(/primary "5"\s+secondary 6/);
    expect(fields[2]![2]).toContain(`primary ${JSON.stringify(XSS)}`);
    expect(fields[3]![2]).toMatch(/primary "W\/\\"5\\""\s+secondary \(absent\)/);
    expect(await page.locator('ul.noise li').allInnerTexts()).toEqual(['meta.lastUpdated', 'header:x-request-id']);

    // The latest samples, latest first, with each side's status and the differences.
    const samples = page.locator('section.sample');
    expect(await samples.count()).toBe(2);
    const first = samples.nth(0);
    // Local time with the zone's name (issue 14: Europe/London by default), the ISO time in <time datetime>.
    expect(await first.locator('h3').innerText()).toBe(
      'Sample 1: GET /STU3/v1/ReferralRequest/{ubrn} at 6 Jan 2025, 09:30 GMT',
    );
    expect(await first.locator('h3 time').getAttribute('datetime')).toBe('2025-01-06T09:30:00.000Z');
    const firstText = await first.innerText();
    expect(firstText).toMatch(/Outcome\s+different/);
    expect(firstText).toMatch(/Primary \(legacy\)\s+status 200, 110 ms/);
    expect(firstText).toMatch(/Secondary \(apim\)\s+status 200, 240 ms/);
    expect(firstText).toMatch(new RegExp(`ASID\\s+${NOT_READY_ASID}`));
    expect(await rows('table:has(caption:text("Differences in sample 1"))')).toEqual([
      ['status', 'changed', '"active"', '"draft"'],
      ['text.div', 'changed', JSON.stringify(XSS), '"<b>bold</b>"'],
      ['extension[2]', 'only-secondary', '(absent)', '{"url":"x"}'],
    ]);
    const second = await samples.nth(1).innerText();
    expect(second).toMatch(/Outcome\s+status differs/);
    expect(second).toMatch(/Secondary \(apim\)\s+status 404/);

    // The HTML-looking value is text: shown literally, nothing ran, no element was made of it.
    expect(await page.locator('main').innerText()).toContain(XSS);
    expect(await page.locator('script').count()).toBe(0);
    expect(await page.locator('main b').count()).toBe(0);
    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(await page.locator('body').innerText()).not.toContain('UNREDACTED-BODY');

    await page.getByRole('link', { name: 'Back to all operations' }).click();
    await page.waitForURL(`${admin.url}/admin/compare/ui`);
    expect(await page.locator('h1').innerText()).toBe('Comparison of answers');
  });

  it('an operation without comparisons and a bad A-code get their own pages', async () => {
    const unknown = await page.goto(`${admin.url}/admin/compare/ui/A011`);
    expect(unknown?.status()).toBe(200);
    expect(await page.locator('h1').innerText()).toBe('A011 Create referral');
    expect(await page.locator('main').innerText()).toContain('No comparisons of A011 have been recorded yet');
    const bad = await page.goto(`${admin.url}/admin/compare/ui/A5`);
    expect(bad?.status()).toBe(400);
    expect(await page.locator('h1').innerText()).toBe('That is not an A-code');
  });

  it('without credentials, or with a wrong password, the browser gets the 401 challenge and no page', async () => {
    for (const httpCredentials of [undefined, { username: 'admin', password: `${token}-wrong` }]) {
      const ctx = await browser.newContext(httpCredentials ? { httpCredentials } : {});
      try {
        const p = await ctx.newPage();
        const answers: Array<{ status: number; challenge?: string; body: string }> = [];
        p.on('response', async (r) => {
          answers.push({ status: r.status(), challenge: r.headers()['www-authenticate'], body: await r.text() });
        });
        // Headless Chromium cannot prompt: it shows the 401 answer, or gives up on the navigation after the refusal.
        const outcome = await p.goto(`${admin.url}/admin/compare/ui`).then(
          (r) => String(r?.status()),
          (e: Error) => e.message,
        );
        expect(outcome).toMatch(/^401$|ERR_INVALID_AUTH_CREDENTIALS/);
        await expect.poll(() => answers.length).toBeGreaterThan(0);
        for (const a of answers) {
          expect(a.status).toBe(401);
          expect(a.challenge).toBe('Basic realm="ers-bridge admin", charset="UTF-8"');
          expect(a.body).not.toContain('Comparison of answers');
          expect(a.body).not.toContain(token);
        }
      } finally {
        await ctx.close();
      }
    }
  });
});
