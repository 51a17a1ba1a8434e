/**
 * The README's demo for healthcare workers, as a newcomer runs it: `npm start` (= `ers-bridge demo`) in a real
 * child process, with the product's own CIS2 stand-in (src/cis2-standin, not the tests' oidc-provider). Then:
 * - the README's curl walk for the user-restricted demo ASID: an ID token from the CIS2 stand-in's /demo/id-token,
 *   A001 with it → A002 choosing one of the user's two organisations → A015 (appointment slots, user-restricted
 *   only, answered with the NHS example) → A003;
 * - a real browser (headless Chromium) signing in through the demo's own /login, on the port the demo really got;
 * - cancelling at the CIS2 stand-in.
 * Every port is chosen free (0), so the test never collides with anything on the machine.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { keepForScan } from '../helpers/harness.js';

const BIN = fileURLToPath(new URL('../../bin/ers-bridge.js', import.meta.url));
const USER_ASID = '999000000002'; // rules/local.yaml
const TYPE_INFO = 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession';
/** The README's A015 query: the NHS sandbox scenario answered with retrieveAppointmentSlots/responses/Minimum.json. */
const SLOTS =
  '/ers-api/STU3/v1/Slot?schedule.actor:HealthcareService=12000&appointmentType=ROUTINE&status=free&_count=20&page=1';

interface Session {
  id: string;
  user: {
    identifier: string;
    firstName: string;
    lastName: string;
    permissions: Array<{ businessFunction: string; orgIdentifier: string; orgName: string }>;
  };
  permission: unknown;
}

describe('npm start (ers-bridge demo): a CIS2 user on the user-restricted demo ASID', () => {
  let child: ChildProcess;
  let base: string;
  let cis2: string;
  let output = '';

  beforeAll(async () => {
    child = spawn(
      process.execPath,
      [BIN, 'demo', '--port', '0', '--ops-port', '0', '--apim-port', '0', '--cis2-port', '0'],
      { env: { ...process.env, LOG_LEVEL: 'warn', ERS_BRIDGE_FROM_SOURCE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d) => {
      output += d.toString();
    });
    child.stderr!.on('data', (d) => {
      output += d.toString();
    });
    [base, cis2] = await new Promise<[string, string]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo did not start:\n${output}`)), 20_000);
      child.stdout!.on('data', () => {
        const bridge = /ers-bridge:\s+(http:\/\/127\.0\.0\.1:\d+)\/ers-api/.exec(output);
        const standIn = /^CIS2 stand-in:\s+(http:\/\/127\.0\.0\.1:\d+)\s/m.exec(output);
        if (bridge && standIn && output.includes('Ctrl-C')) {
          clearTimeout(timer);
          resolve([bridge[1]!, standIn[1]!]);
        }
      });
      child.on('exit', (code) => reject(new Error(`demo exited with ${code}:\n${output}`)));
    });
  }, 40_000);

  afterAll(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  async function a001(token: string) {
    const res = await request(`${base}/ers-api/v1/ProfessionalSession`, {
      method: 'POST',
      headers: { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
      body: JSON.stringify({ typeInfo: TYPE_INFO, token }),
    });
    return { status: res.statusCode, body: (await res.body.json()) as Session };
  }

  it('prints the CIS2 stand-in, the sign-in page on its real port, and where scripts get an ID token', () => {
    expect(output).toContain(`CIS2 users:    ${base}/login?asid=${USER_ASID}`);
    expect(output).toContain(`TOKEN=$(curl -s ${cis2}/demo/id-token)`);
    expect(output).toMatch(/test user Demo Clinician, 555000000002, IAL3\/AAL2/);
  });

  it('walks A001 (ID token) → A002 (one of two organisations) → A015 → A003 as the README shows', async () => {
    // TOKEN=$(curl -s http://127.0.0.1:9001/demo/id-token)
    const idToken = await request(`${cis2}/demo/id-token`);
    expect(idToken.statusCode).toBe(200);
    expect(idToken.headers['content-type']).toMatch(/^text\/plain/);
    const token = await idToken.body.text();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);

    const created = await a001(token);
    expect(created.status).toBe(201);
    const session = created.body;
    expect(session.user).toMatchObject({ identifier: '555000000002', firstName: 'Demo', lastName: 'Clinician' });
    expect(session.user.permissions).toEqual([
      { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'D82106', orgName: 'DEMO GP PRACTICE' },
      { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69', orgName: 'DEMO NHS TRUST' },
    ]);
    expect(session.permission).toBeNull();

    const a002 = await request(`${base}/ers-api/v1/ProfessionalSession/${session.id}`, {
      method: 'PUT',
      headers: { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        typeInfo: TYPE_INFO,
        permission: { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'D82106' },
      }),
    });
    expect(a002.statusCode).toBe(200);
    expect(((await a002.body.json()) as Session).permission).toEqual({
      businessFunction: 'REFERRING_CLINICIAN',
      orgIdentifier: 'D82106',
      orgName: 'DEMO GP PRACTICE',
    });

    const a015 = await request(`${base}${SLOTS}`, {
      headers: { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: session.id, 'X-ERS-XAPI-COMM-RULE-ORG': 'R69' },
    });
    const slots = (await a015.body.json()) as { resourceType: string; total: number; link: Array<{ url: string }> };
    expect(a015.statusCode, JSON.stringify(slots)).toBe(200);
    expect(a015.headers['x_ers_transaction_id']).toMatch(/-1$/);
    expect(slots).toMatchObject({ resourceType: 'Bundle', total: 3 });
    expect(slots.link[0]!.url.startsWith(`${base}/ers-api/STU3/v1/Slot?`)).toBe(true);

    const a003 = await request(`${base}/ers-api/v1/ProfessionalSession/${session.id}`, {
      method: 'DELETE',
      headers: { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: session.id },
    });
    expect(a003.statusCode).toBe(204);
    await a003.body.dump();
  });

  it('the selected organisation decides what the user may do: the provider role at R69 may not search slots', async () => {
    const token = await (await request(`${cis2}/demo/id-token`)).body.text();
    const { body: session } = await a001(token);
    const a002 = await request(`${base}/ers-api/v1/ProfessionalSession/${session.id}`, {
      method: 'PUT',
      headers: { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        typeInfo: TYPE_INFO,
        permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' },
      }),
    });
    expect(a002.statusCode).toBe(200);
    await a002.body.dump();
    const a015 = await request(`${base}${SLOTS}`, {
      headers: { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: session.id, 'X-ERS-XAPI-COMM-RULE-ORG': 'R69' },
    });
    expect(a015.statusCode).toBe(403);
    await a015.body.dump();
  });

  describe("in a browser (headless Chromium), through the demo's own /login", () => {
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;

    beforeAll(async () => {
      browser = await launchChromium();
    }, 30_000);
    afterAll(async () => {
      await browser?.close();
    });
    beforeEach(async () => {
      context = await browser.newContext();
      page = await context.newPage();
    });
    afterEach(async () => {
      await context.close();
    });

    it('signs in at the CIS2 stand-in, shows a one-time code, and A001 with the code gives the session', async () => {
      await page.goto(`${base}/login?asid=${USER_ASID}`);
      // The CIS2 stand-in's page, reached by the redirect ers-bridge made.
      expect(
        page.url().startsWith(`${cis2}/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare/authorize?`),
      ).toBe(true);
      expect((await page.locator('h1').innerText()).trim()).toBe('Sign in with CIS2');
      expect(await page.locator('main').innerText()).toContain('CIS2 user id 555000000002');
      await page.locator('button:has-text("Sign in as Demo Clinician")').click();
      await page.waitForURL(`${base}/login/callback**`, { timeout: 10_000 });
      expect((await page.locator('h1').innerText()).trim()).toBe('You are signed in');
      expect(await page.locator('main').innerText()).toContain('Demo Clinician');
      const code = (await page.locator('#sign-in-code').innerText()).trim();
      expect(code).toMatch(/^[A-Z2-9]{5}-[A-Z2-9]{5}$/);

      const created = await a001(code);
      expect(created.status).toBe(201);
      expect(created.body.user.identifier).toBe('555000000002');
      expect(created.body.user.permissions.map((p) => p.orgIdentifier)).toEqual(['D82106', 'R69']);
    });

    it('cancelling at the CIS2 stand-in lands on the cancelled page, and no code is shown', async () => {
      await page.goto(`${base}/login?asid=${USER_ASID}`);
      await page.locator('button:has-text("Cancel")').click();
      await page.waitForURL(`${base}/login/callback**`, { timeout: 10_000 });
      expect((await page.locator('h1').innerText()).trim()).toBe('Sign-in cancelled');
      expect(await page.locator('#sign-in-code').count()).toBe(0);
    });
  });

  it('stops cleanly on Ctrl-C (SIGINT) with exit code 0, having printed no secret', async () => {
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output).not.toMatch(/PRIVATE KEY|eyJ[\w-]{10,}\./);
    keepForScan(output);
  });
});
