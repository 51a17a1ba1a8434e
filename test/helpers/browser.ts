/**
 * Real headless Chromium (Debian's `chromium` package) driven by playwright-core, for the sign-in page tests.
 * .ci/run installs chromium when it is missing; run `apt-get install chromium` to run these tests by hand.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH.`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // As root in a sandbox with no network beyond loopback: no sandbox, no background traffic.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Signs in at the CIS2 stand-in's login and consent pages (oidc-provider's development interactions). */
export async function cis2Login(page: Page, login: string): Promise<void> {
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('smartcard-pin');
  await page.locator('button[type="submit"]').click();
  await page.waitForLoadState('domcontentloaded');
  const consent = page.locator('button:has-text("Continue")');
  if (await consent.count()) await consent.click();
  await page.waitForLoadState('domcontentloaded');
}
