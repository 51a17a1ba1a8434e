/**
 * A healthcare worker signs in through ers-bridge's sign-in page in a real browser (headless Chromium) against a
 * real OpenID Provider standing in for CIS2, reads the one-time code, and a legacy client uses it:
 * A001 → A002 → A011 (create referral, user-restricted only) → A003.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Cis2Client } from '../../src/auth/cis2.js';
import { bindingCookieName, newBrowserSecret, pendingKey } from '../../src/signin/binding.js';
import { cis2Login, launchChromium } from '../helpers/browser.js';
import { expectLegacyOutcome, legacyCall, legacyFixture, legacyRequestFixture } from '../helpers/harness.js';
import {
  CLINICIAN,
  IAL2_USER,
  OTHER_USER_ASID,
  RETURN_TO,
  startUserHarness,
  USER_ASID,
  type UserHarness,
} from '../helpers/user-harness.js';

const SESSION_PATH = '/ers-api/v1/ProfessionalSession';
const A001 = (token: string) =>
  JSON.stringify({ typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession', token });

describe('CIS2 sign-in page and a legacy client', () => {
  let h: UserHarness;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    h = await startUserHarness();
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });
  beforeEach(async () => {
    context = await browser.newContext();
    page = await context.newPage();
  });
  afterEach(async () => {
    await context.close();
  });

  /** The heading of the ers-bridge page the browser lands on after CIS2. */
  async function landedHeading(): Promise<string> {
    await page.waitForURL(`${h.bridgeUrl}/login/callback**`, { timeout: 10_000 });
    return (await page.locator('h1').innerText()).trim();
  }

  async function signIn(login: string, asid = USER_ASID): Promise<string> {
    await page.goto(`${h.bridgeUrl}/login?asid=${asid}`);
    await cis2Login(page, login);
    const heading = await landedHeading();
    if (heading !== 'You are signed in') throw new Error(`no code page: ${await page.locator('main').innerText()}`);
    return (await page.locator('#sign-in-code').innerText()).trim();
  }

  it('signs in, shows a one-time code, and the legacy client completes A001 → A002 → A011 → A003', async () => {
    const code = await signIn(CLINICIAN);
    expect(code).toMatch(/^[A-Z2-9]{5}-[A-Z2-9]{5}$/);
    expect(await page.locator('main').innerText()).toContain('Alex Example');
    expect(await page.title()).toMatch(/You are signed in/);
    expect(await page.locator('html').getAttribute('lang')).toBe('en-GB');

    const a001 = await legacyCall(
      h,
      'POST',
      SESSION_PATH,
      { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
      A001(code),
    );
    expect(a001.status).toBe(201);
    const session = a001.json();
    expect(session.user).toMatchObject({ identifier: CLINICIAN, firstName: 'Alex', lastName: 'Example' });
    expect(session.user.permissions).toEqual(
      expect.arrayContaining([
        { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'R68', orgName: 'REFERRING PRACTICE' },
        { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69', orgName: 'PROVIDER TRUST' },
      ]),
    );

    const a002 = await legacyCall(
      h,
      'PUT',
      `${SESSION_PATH}/${session.id}`,
      { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/json' },
      JSON.stringify({ ...session, permission: { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'R68' } }),
    );
    expect(a002.status).toBe(200);

    const before = h.standIn.received.length;
    const a011 = await legacyCall(
      h,
      'POST',
      '/ers-api/STU3/v1/ReferralRequest/$ers.createReferral',
      { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/fhir+json' },
      // As a legacy client sends it: its CodeSystem links name the HSCN host it always used.
      legacyRequestFixture(
        'stu3/createReferral/requests/MinimalRequest.json',
        'https://api.int1.ers.ncrs.nhs.uk/ers-api',
      ),
    );
    expect(a011.status, a011.body.toString()).toBe(201);
    expect(a011.json()).toEqual(legacyFixture('stu3/createReferral/responses/ReferralRequest.json', h.legacyBase));

    const atApim = h.standIn.received.slice(before).find((r) => r.url.endsWith('$ers.createReferral'))!;
    // The HSCN links in the body were rewritten to APIM's base before APIM saw them.
    expect(atApim.body.toString()).not.toContain('ncrs.nhs.uk');
    expect(atApim.body.toString()).toContain(`${h.standIn.baseUrl}/STU3/CodeSystem/`);
    expect(atApim.headers['nhsd-end-user-organisation-ods']).toBe('R68');
    expect(atApim.headers['nhsd-ers-business-function']).toBe('REFERRING_CLINICIAN');
    expect(atApim.headers['nhsd-ers-on-behalf-of-user-id']).toBeUndefined();
    expect(String(atApim.headers['authorization'])).toMatch(/^Bearer [A-Za-z0-9_-]{20,}$/);
    for (const legacy of ['xapi_asid', 'http_x_session_key']) expect(atApim.headers[legacy]).toBeUndefined();

    const a003 = await legacyCall(h, 'DELETE', `${SESSION_PATH}/${session.id}`, {
      XAPI_ASID: USER_ASID,
      HTTP_X_SESSION_KEY: session.id,
    });
    expect(a003.status).toBe(204);
  });

  it('a one-time code cannot be replayed', async () => {
    const code = await signIn(CLINICIAN);
    const hdr = { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' };
    expect((await legacyCall(h, 'POST', SESSION_PATH, hdr, A001(code))).status).toBe(201);
    const again = await legacyCall(h, 'POST', SESSION_PATH, hdr, A001(code));
    expectLegacyOutcome(again, 403, 'SIGN_IN_CODE_UNKNOWN');
  });

  it('a code issued for one ASID is refused with another (and is burnt)', async () => {
    const code = await signIn(CLINICIAN);
    const other = await legacyCall(
      h,
      'POST',
      SESSION_PATH,
      { XAPI_ASID: OTHER_USER_ASID, 'Content-Type': 'application/json' },
      A001(code),
    );
    expectLegacyOutcome(other, 403, 'SIGN_IN_CODE_WRONG_ASID');
    const own = await legacyCall(
      h,
      'POST',
      SESSION_PATH,
      { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
      A001(code),
    );
    expectLegacyOutcome(own, 403, 'SIGN_IN_CODE_UNKNOWN');
  });

  it('a code typed in lower case and without the hyphen still works', async () => {
    const code = await signIn(CLINICIAN);
    const typed = code.replace('-', '').toLowerCase();
    const a001 = await legacyCall(
      h,
      'POST',
      SESSION_PATH,
      { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
      A001(typed),
    );
    expect(a001.status).toBe(201);
  });

  it('a registered return_to receives the code by redirect', async () => {
    let landed: URL | undefined;
    await page.route(`${RETURN_TO}**`, (route) => {
      landed = new URL(route.request().url());
      return route.fulfill({ status: 200, contentType: 'text/plain', body: 'legacy client got the code' });
    });
    await page.goto(`${h.bridgeUrl}/login?asid=${USER_ASID}&return_to=${encodeURIComponent(RETURN_TO)}`);
    await cis2Login(page, CLINICIAN);
    await page.waitForURL(`${RETURN_TO}**`);
    expect(await page.locator('body').innerText()).toBe('legacy client got the code');
    expect(landed?.origin + landed!.pathname).toBe(RETURN_TO);
    const code = landed!.searchParams.get('code')!;
    expect(code).toMatch(/^[A-Z2-9]{5}-[A-Z2-9]{5}$/);
    const a001 = await legacyCall(
      h,
      'POST',
      SESSION_PATH,
      { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
      A001(code),
    );
    expect(a001.status).toBe(201);
  });

  it('an unregistered return_to is refused before anything happens (no open redirect)', async () => {
    for (const target of [
      'https://evil.example/steal',
      `${RETURN_TO}/../x`,
      `${RETURN_TO}?x=1`,
      'javascript:alert(1)',
    ]) {
      const res = await request(`${h.bridgeUrl}/login?asid=${USER_ASID}&return_to=${encodeURIComponent(target)}`);
      expect(res.statusCode).toBe(400);
      expect(res.headers['location']).toBeUndefined();
      const html = await res.body.text();
      expect(html).toContain('return address');
      expect(html).not.toContain('evil.example');
    }
  });

  it('cancelling at CIS2 shows the cancelled page', async () => {
    await page.goto(`${h.bridgeUrl}/login?asid=${USER_ASID}`);
    await page.locator('a[href*="/abort"]').click();
    expect(await landedHeading()).toBe('Sign-in cancelled');
    expect(await page.locator('a.button').getAttribute('href')).toBe(`/login?asid=${USER_ASID}`);
  });

  it('an unknown or replayed state is refused with the expired page', async () => {
    const res = await request(`${h.bridgeUrl}/login/callback?code=abc&state=not-a-state-we-issued`);
    expect(res.statusCode).toBe(400);
    expect(await res.body.text()).toContain('This sign-in link has expired');
  });

  it('a callback whose ID token nonce does not match is refused and issues no code', async () => {
    const started = await h.runtime.cis2!.begin(USER_ASID);
    // Kept as /login keeps it: bound to this browser by its cookie.
    const browserSecret = newBrowserSecret();
    await h.runtime.shared.pendingSignIns.put(
      pendingKey(started.state, browserSecret),
      { ...started.pending, nonce: 'a-different-nonce' },
      60_000,
    );
    await context.addCookies([
      { name: bindingCookieName(started.state, false), value: browserSecret, url: h.bridgeUrl },
    ]);
    await page.goto(started.url.href);
    await cis2Login(page, CLINICIAN);
    expect(await landedHeading()).toBe('We could not sign you in to e-RS');
    expect(await page.locator('#sign-in-code').count()).toBe(0);
  });

  it('an identity verified below IAL3 is refused with an explanation', async () => {
    await page.goto(`${h.bridgeUrl}/login?asid=${USER_ASID}`);
    await cis2Login(page, IAL2_USER);
    expect(await landedHeading()).toBe('Your sign-in is not strong enough for e-RS');
    expect(await page.locator('main').innerText()).toContain('IAL3');
  });

  it('CIS2 unreachable: the sign-in page says so (503) and A001 with an ID token gets a legacy 503', async () => {
    const working = h.runtime.cis2!;
    const idToken = await h.cis2.mintIdToken({
      sub: CLINICIAN,
      id_assurance_level: 3,
      authentication_assurance_level: 3,
    });
    h.runtime.cis2 = new Cis2Client({ ...working.settings, issuer: 'http://127.0.0.1:9' }, async () => 'secret');
    try {
      const res = await request(`${h.bridgeUrl}/login?asid=${USER_ASID}`);
      expect(res.statusCode).toBe(503);
      const html = await res.body.text();
      expect(html).toContain('CIS2 sign-in is not available');
      expect(html).toContain(`/login?asid=${USER_ASID}`);
      const a001 = await legacyCall(
        h,
        'POST',
        SESSION_PATH,
        { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
        A001(idToken),
      );
      expectLegacyOutcome(a001, 503, 'CIS2_UNAVAILABLE');
      expect(a001.headers['retry-after']).toBe('10');
    } finally {
      h.runtime.cis2 = working;
    }
  });

  it('the page is served with a strict content security policy and no caching', async () => {
    const res = await request(`${h.bridgeUrl}/login?asid=123`);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-frame-options']).toBe('DENY');
    await res.body.dump();
  });
});
