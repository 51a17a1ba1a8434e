/**
 * The sign-in pages, in the shared layout (src/http/page.ts): plain HTML and CSS in the NHS look, no script.
 * Every value put into a page is escaped by the `html` template.
 */
import { html, type SafeHtml } from '../http/html.js';
import { type PageFrame, renderPage } from '../http/page.js';

/** The stylesheet served at /login/style.css (the shared layout's). */
export { STYLE_CSS } from '../http/page.js';

const FRAME: PageFrame = {
  titleSuffix: 'e-Referral Service sign-in',
  stylesheet: '/login/style.css',
  serviceName: 'e-Referral Service sign-in',
  footer:
    'Signing in with NHS Care Identity Service 2 (CIS2) lets your existing referral system use e-RS on your behalf.',
};

function layout(title: string, content: SafeHtml): SafeHtml {
  return renderPage(FRAME, { title, content });
}

function tryAgain(asid?: string): SafeHtml {
  return asid
    ? html`<a class="button" href="/login?asid=${encodeURIComponent(asid)}">Sign in again</a>`
    : html`<p>Start again from your referral system.</p>`;
}

export function codePage(code: string, asid: string, ttlMinutes: number, user: string): SafeHtml {
  const spoken = code.split('').join(' ');
  return layout(
    'You are signed in',
    html`<div class="panel">
<p>Signed in as <strong>${user}</strong>. Your sign-in code is:</p>
<p class="code" id="sign-in-code" aria-label="Sign-in code ${spoken}">${code}</p>
<p class="hint">Type or paste it into your referral system when it asks for your sign-in code.</p>
</div>
<ul>
<li>The code works <strong>once</strong>, for the next <strong>${ttlMinutes} minutes</strong>.</li>
<li>It only works in the system that sent you here (ASID ${asid}).</li>
<li>Do not share it: anyone who types it first can act as you in e-RS.</li>
</ul>
<p>You can close this page once the code is entered.</p>`,
  );
}

export function cancelledPage(asid?: string): SafeHtml {
  return layout(
    'Sign-in cancelled',
    html`<div class="panel"><p>You cancelled signing in, or CIS2 did not let you sign in. Nothing has been shared with your referral system.</p></div>
${tryAgain(asid)}`,
  );
}

/** The start-again page: the sign-in is unknown, expired, used, or was started in another browser. */
export function expiredPage(): SafeHtml {
  return layout(
    'This sign-in link has expired',
    html`<div class="panel error"><p>This sign-in was started too long ago, was already completed, or was started in another browser. For your safety each sign-in link works once, and only in the browser that opened it.</p></div>
<p>Start the sign-in again from your referral system, in this browser.</p>`,
  );
}

function minutes(seconds: number): string {
  const m = Math.max(1, Math.ceil(seconds / 60));
  return m === 1 ? 'a minute' : `${m} minutes`;
}

/** Too many sign-ins started from this address in the last minute (429). */
export function tooManyStartsPage(waitSeconds: number, asid?: string): SafeHtml {
  return layout(
    'Too many sign-ins started',
    html`<div class="panel error"><p>Too many sign-ins were started from this computer or network in the last minute, so ers-bridge is not starting another one yet. Nothing has been shared.</p></div>
<p>Wait ${minutes(waitSeconds)}, then try again.</p>
${tryAgain(asid)}`,
  );
}

/** Too many sign-ins in progress from this address (429). */
export function tooManyInProgressPage(waitSeconds: number, asid?: string): SafeHtml {
  return layout(
    'Too many sign-ins in progress',
    html`<div class="panel error"><p>Too many sign-ins have been started from this computer or network and not finished. Finish one that is open in another window, or wait for them to expire. Nothing has been shared.</p></div>
<p>Wait up to ${minutes(waitSeconds)}, then try again.</p>
${tryAgain(asid)}`,
  );
}

/** Too many sign-ins in progress for the ASID, or the store of sign-ins is full (503). */
export function signInsFullPage(waitSeconds: number, asid?: string): SafeHtml {
  return layout(
    'Too many people are signing in',
    html`<div class="panel error"><p>Too many sign-ins to e-RS through this system are in progress right now, so ers-bridge cannot start another one yet. Nothing has been shared.</p></div>
<p>Wait ${minutes(waitSeconds)}, then try again. If it keeps happening, contact your IT service desk.</p>
${tryAgain(asid)}`,
  );
}

export function unavailablePage(asid?: string): SafeHtml {
  return layout(
    'CIS2 sign-in is not available',
    html`<div class="panel error"><p>NHS Care Identity Service 2 (CIS2) could not be reached, so you cannot sign in right now. This is not a problem with your smartcard or account.</p></div>
<p>Try again in a few minutes. If it keeps happening, contact your IT service desk.</p>
${tryAgain(asid)}`,
  );
}

export function busyPage(asid?: string): SafeHtml {
  return layout(
    'e-RS sign-in is busy',
    html`<div class="panel error"><p>ers-bridge could not keep track of your sign-in just now. Nothing has been shared.</p></div>
<p>Try again in a few seconds.</p>
${tryAgain(asid)}`,
  );
}

export function problemPage(title: string, message: string, asid?: string, status = 'error'): SafeHtml {
  return layout(
    title,
    html`<div class="panel ${status === 'error' ? 'error' : ''}"><p>${message}</p></div>
${tryAgain(asid)}`,
  );
}
