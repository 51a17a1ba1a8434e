/**
 * The sign-in page's defences, on real sockets with headless Chromium and the CIS2 stand-in:
 * - the sign-in is bound to the browser that started it (a cookie): a callback from another client gets the
 *   start-again page and no code, consumes nothing, and the browser that started it still completes;
 * - /login starts are limited per client address per minute, sign-ins in progress per address and per ASID;
 * - a flood of 10 000 unauthenticated GET /login from one address, and more from 50 others, leaves a sign-in already
 *   in progress to complete normally (it used to be evicted from the shared bounded store).
 * Requests come from several loopback source addresses (127.0.0.0/8 is all loopback on Linux): ers-bridge sees each
 * as a client address of its own, as it would see different machines.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindingCookieName } from '../../src/signin/binding.js';
import { cis2Login, launchChromium } from '../helpers/browser.js';
import { legacyCall } from '../helpers/harness.js';
import { CLINICIAN, OTHER_USER_ASID, startUserHarness, USER_ASID, type UserHarness } from '../helpers/user-harness.js';

const SESSION_PATH = '/ers-api/v1/ProfessionalSession';
const A001 = (token: string) =>
  JSON.stringify({ typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession', token });
const CODE = /[A-Z2-9]{5}-[A-Z2-9]{5}/;

const agents = new Map<string, Agent>();
/** An undici dispatcher whose connections come from `address`. */
function from(address: string): Agent {
  let a = agents.get(address);
  if (!a) {
    a = new Agent({ localAddress: address, connections: 16 });
    agents.set(address, a);
  }
  return a;
}

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

async function get(url: string, address = '127.0.0.1', headers: Record<string, string> = {}): Promise<Got> {
  const res = await request(url, { dispatcher: from(address), headers });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

function setCookies(got: Got): string[] {
  const v = got.headers['set-cookie'];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** Runs `count` GETs of `url` from `address`, `parallel` at a time; the statuses counted. */
async function flood(url: string, address: string, count: number, parallel = 32): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const res = await request(url, { dispatcher: from(address) });
      await res.body.dump();
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return statuses;
}

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  for (const a of agents.values()) await a.close();
});

/** A browser context and page, closed by the returned function. */
async function newPage(): Promise<{ context: BrowserContext; page: Page; close: () => Promise<void> }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  return { context, page, close: () => context.close() };
}

describe('the sign-in is bound to the browser that started it', () => {
  let h: UserHarness;
  beforeAll(async () => {
    h = await startUserHarness();
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('/login sets the cookie: HttpOnly, SameSite=Lax, Path=/, 10 minutes, no Secure on plain-HTTP loopback', async () => {
    const res = await get(`${h.bridgeUrl}/login?asid=${USER_ASID}`, '127.0.0.31');
    expect(res.status).toBe(302);
    const state = new URL(String(res.headers['location'])).searchParams.get('state')!;
    const cookies = setCookies(res);
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatch(
      new RegExp(`^${bindingCookieName(state, false)}=[A-Za-z0-9_-]{43}; Max-Age=600; Path=/; HttpOnly; SameSite=Lax$`),
    );

    // And Chromium keeps it so (on http://127.0.0.1 a __Host- cookie would need Secure: see src/signin/binding.ts).
    const { context, page, close } = await newPage();
    try {
      const before = Date.now() / 1000;
      await page.goto(`${h.bridgeUrl}/login?asid=${USER_ASID}`);
      const kept = (await context.cookies(h.bridgeUrl)).filter((c) => c.name.startsWith('ers-signin-'));
      expect(kept).toHaveLength(1);
      expect(kept[0]).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/', secure: false, domain: '127.0.0.1' });
      expect(kept[0]!.expires).toBeGreaterThan(before + 590);
      expect(kept[0]!.expires).toBeLessThan(before + 610);
      await cis2Login(page, CLINICIAN);
      await page.waitForURL(`${h.bridgeUrl}/login/callback**`);
      expect((await page.locator('h1').innerText()).trim()).toBe('You are signed in');
      const left = (await context.cookies(h.bridgeUrl)).filter((c) => c.name.startsWith('ers-signin-'));
      expect(left, 'the callback clears the cookie').toEqual([]);
    } finally {
      await close();
    }
  });

  it('a callback from another client gets the start-again page and no code; the right browser still completes', async () => {
    const a = await newPage();
    const b = await newPage();
    try {
      // Browser A starts a sign-in; its cookie is put aside before it comes back from CIS2, so that its callback
      // arrives as any other client's would (Playwright cannot hold a redirect's hop), and the URL can be reused.
      await a.page.goto(`${h.bridgeUrl}/login?asid=${USER_ASID}`);
      const [cookie] = (await a.context.cookies(h.bridgeUrl)).filter((c) => c.name.startsWith('ers-signin-'));
      expect(cookie).toBeDefined();
      await a.context.clearCookies({ name: cookie!.name });
      await cis2Login(a.page, CLINICIAN);
      await a.page.waitForURL(`${h.bridgeUrl}/login/callback**`);
      expect((await a.page.locator('h1').innerText()).trim(), 'no cookie, in a browser').toBe(
        'This sign-in link has expired',
      );
      expect(await a.page.locator('#sign-in-code').count()).toBe(0);
      const callback = a.page.url();
      const state = new URL(callback).searchParams.get('state')!;
      expect(new URL(callback).searchParams.get('code')).toBeTruthy();

      // Another client without any cookie.
      const bare = await get(callback, '127.0.0.32');
      expect(bare.status).toBe(400);
      expect(bare.text).toContain('This sign-in link has expired');
      expect(bare.text).not.toMatch(CODE);

      // Another browser, with a sign-in of its own (so a cookie of its own).
      await b.page.goto(`${h.bridgeUrl}/login?asid=${USER_ASID}`);
      expect((await b.context.cookies(h.bridgeUrl)).some((c) => c.name.startsWith('ers-signin-'))).toBe(true);
      await b.page.goto(callback);
      expect((await b.page.locator('h1').innerText()).trim()).toBe('This sign-in link has expired');
      expect(await b.page.locator('#sign-in-code').count()).toBe(0);

      // Another client that forges the cookie's name (it can be worked out from the state) with its own value.
      const forged = await get(callback, '127.0.0.32', {
        cookie: `${bindingCookieName(state, false)}=${'A'.repeat(43)}`,
      });
      expect(forged.status).toBe(400);
      expect(forged.text).toContain('This sign-in link has expired');
      expect(forged.text).not.toMatch(CODE);

      // Nothing was consumed: with its cookie back, browser A completes its sign-in with the same callback.
      await a.context.addCookies([cookie!]);
      await a.page.goto(callback);
      expect((await a.page.locator('h1').innerText()).trim()).toBe('You are signed in');
      const code = (await a.page.locator('#sign-in-code').innerText()).trim();
      const a001 = await legacyCall(
        h,
        'POST',
        SESSION_PATH,
        { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
        A001(code),
      );
      expect(a001.status).toBe(201);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('on https (the callback URL is https): a __Host- cookie with Secure, and a plain cookie does not stand in', async () => {
    const settings = h.runtime.cis2!.settings;
    const plainUri = settings.redirectUri;
    settings.redirectUri = 'https://ers-bridge.example.nhs.uk/login/callback';
    try {
      const res = await get(`${h.bridgeUrl}/login?asid=${USER_ASID}`, '127.0.0.33');
      expect(res.status).toBe(302);
      const state = new URL(String(res.headers['location'])).searchParams.get('state')!;
      const [cookie] = setCookies(res);
      expect(cookie).toMatch(
        new RegExp(
          `^${bindingCookieName(state, true)}=([A-Za-z0-9_-]{43}); Max-Age=600; Path=/; HttpOnly; SameSite=Lax; Secure$`,
        ),
      );
      const secret = /=([A-Za-z0-9_-]{43});/.exec(cookie!)![1]!;
      const callback = `${h.bridgeUrl}/login/callback?code=not-a-real-code&state=${encodeURIComponent(state)}`;
      const plain = await get(callback, '127.0.0.33', { cookie: `${bindingCookieName(state, false)}=${secret}` });
      expect(plain.status).toBe(400);
      expect(plain.text).toContain('This sign-in link has expired');
      // With its own __Host- cookie the callback goes on to CIS2 (which refuses this made-up code), and clears it.
      const bound = await get(callback, '127.0.0.33', { cookie: `${bindingCookieName(state, true)}=${secret}` });
      expect(bound.text).not.toContain('This sign-in link has expired');
      expect(setCookies(bound)).toEqual([
        `${bindingCookieName(state, true)}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax; Secure`,
      ]);
    } finally {
      settings.redirectUri = plainUri;
    }
  });
});

describe('bounded sign-ins', () => {
  let h: UserHarness;
  beforeAll(async () => {
    h = await startUserHarness();
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('more than loginsPerMinutePerAddress starts from one address → 429 with Retry-After, saying to wait', async () => {
    const limits = h.runtime.cis2!.settings.limits;
    expect(limits.loginsPerMinutePerAddress).toBe(30);
    const cap = limits.pendingPerAddress;
    limits.pendingPerAddress = 100; // the rate alone, here
    try {
      for (let i = 0; i < 30; i++)
        expect((await get(`${h.bridgeUrl}/login?asid=${USER_ASID}`, '127.0.0.41')).status).toBe(302);
      const refused = await get(`${h.bridgeUrl}/login?asid=${USER_ASID}`, '127.0.0.41');
      expect(refused.status).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(2);
      expect(refused.text).toContain('Too many sign-ins started');
      expect(refused.text).toContain('Wait a minute');
      expect(refused.headers['location']).toBeUndefined();
      expect(setCookies(refused)).toEqual([]);
      expect((await get(`${h.bridgeUrl}/login?asid=${USER_ASID}`, '127.0.0.43')).status, 'another address').toBe(302);
    } finally {
      limits.pendingPerAddress = cap;
    }
  });

  it('more than pendingPerAddress sign-ins in progress from one address → 429 until some end', async () => {
    for (let i = 0; i < 20; i++)
      expect((await get(`${h.bridgeUrl}/login?asid=${USER_ASID}`, '127.0.0.42')).status).toBe(302);
    const refused = await get(`${h.bridgeUrl}/login?asid=${OTHER_USER_ASID}`, '127.0.0.42');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(500);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(600);
    expect(refused.text).toContain('Too many sign-ins in progress');
  });

  it('10 000 GET /login from one address, and floods from 50 more, leave a sign-in in progress to complete', async () => {
    const victim = await newPage();
    try {
      await victim.page.goto(`${h.bridgeUrl}/login?asid=${USER_ASID}`);
      await victim.page.locator('input[name="login"]').waitFor(); // at CIS2: the sign-in is in progress

      const login = `${h.bridgeUrl}/login?asid=${USER_ASID}`;
      const one = await flood(login, '127.0.0.60', 10_000);
      expect(one.get(302)).toBe(20); // the address's cap; then 429s (its cap, then its rate)
      expect(one.get(429)).toBe(10_000 - 20);

      const many = new Map<number, number>();
      await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          for (const [status, n] of await flood(login, `127.0.1.${i + 1}`, 40, 4)) {
            many.set(status, (many.get(status) ?? 0) + n);
          }
        }),
      );
      // 50 addresses × 20 would be 1000 more: the ASID's cap (1000, with the sign-ins already held) stops them first.
      expect(many.get(302)).toBeLessThan(1000);
      expect(many.get(503), 'refused for the ASID: too many people signing in').toBeGreaterThan(0);
      expect([...many.keys()].sort()).toEqual([302, 429, 503]);

      const fresh = await get(login, '127.0.2.1');
      expect(fresh.status).toBe(503);
      expect(fresh.text).toContain('Too many people are signing in');
      expect(Number(fresh.headers['retry-after'])).toBeGreaterThan(0);
      expect((await get(`${h.bridgeUrl}/login?asid=${OTHER_USER_ASID}`, '127.0.2.1')).status, 'another ASID').toBe(302);

      // The sign-in that was in progress completes normally.
      await cis2Login(victim.page, CLINICIAN);
      await victim.page.waitForURL(`${h.bridgeUrl}/login/callback**`);
      expect((await victim.page.locator('h1').innerText()).trim()).toBe('You are signed in');
      const code = (await victim.page.locator('#sign-in-code').innerText()).trim();
      const a001 = await legacyCall(
        h,
        'POST',
        SESSION_PATH,
        { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
        A001(code),
      );
      expect(a001.status).toBe(201);
    } finally {
      await victim.close();
    }
  }, 120_000);
});
