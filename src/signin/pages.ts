/**
 * The sign-in pages: plain HTML and CSS in the NHS look (NHS blue header, clear type, visible focus), no script.
 * Every value put into a page is escaped.
 */

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export const STYLE_CSS = `
:root { --nhs-blue: #005eb8; --nhs-dark-blue: #003087; --nhs-black: #212b32; --nhs-grey: #4c6272;
  --nhs-pale-grey: #f0f4f5; --nhs-white: #fff; --nhs-green: #007f3b; --nhs-red: #d5281b; --focus: #ffeb3b; }
* { box-sizing: border-box; }
html { font-family: Frutiger W01, Arial, sans-serif; color: var(--nhs-black); background: var(--nhs-pale-grey); }
body { margin: 0; font-size: 1.1875rem; line-height: 1.5; }
a { color: var(--nhs-blue); }
a:focus, .button:focus { outline: 4px solid transparent; background-color: var(--focus); box-shadow: 0 -2px var(--focus), 0 4px var(--nhs-black); color: var(--nhs-black); text-decoration: none; }
.skip-link { position: absolute; left: -9999px; }
.skip-link:focus { left: 16px; top: 16px; padding: 8px; z-index: 10; }
header { background: var(--nhs-blue); color: var(--nhs-white); padding: 20px 0; }
header .inner, main { max-width: 960px; margin: 0 auto; padding: 0 16px; }
.logo { display: inline-block; background: var(--nhs-white); color: var(--nhs-blue); font-weight: 700; font-style: italic;
  font-size: 1.6rem; padding: 0 8px; letter-spacing: -0.5px; margin-right: 12px; }
.service { font-weight: 600; font-size: 1.2rem; vertical-align: middle; }
main { padding-top: 40px; padding-bottom: 60px; }
h1 { font-size: 2.25rem; line-height: 1.2; margin: 0 0 24px; }
.panel { background: var(--nhs-white); border-left: 8px solid var(--nhs-blue); padding: 24px 32px; margin: 24px 0; }
.panel.error { border-left-color: var(--nhs-red); }
.code { font-family: Consolas, "Courier New", monospace; font-size: 2.75rem; font-weight: 700; letter-spacing: 0.2em;
  margin: 8px 0 16px; user-select: all; }
.hint { color: var(--nhs-grey); }
.button { display: inline-block; background: var(--nhs-green); color: var(--nhs-white); font-weight: 600; padding: 12px 16px;
  border-radius: 4px; box-shadow: 0 4px 0 #00401e; text-decoration: none; margin-top: 16px; }
footer { max-width: 960px; margin: 0 auto; padding: 16px; color: var(--nhs-grey); font-size: 1rem; }
`;

function layout(title: string, content: string): string {
  return `<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} – e-Referral Service sign-in</title>
<link rel="stylesheet" href="/login/style.css">
</head>
<body>
<a class="skip-link" href="#maincontent">Skip to main content</a>
<header><div class="inner"><span class="logo" aria-hidden="true">NHS</span><span class="service">e-Referral Service sign-in</span></div></header>
<main id="maincontent">
<h1>${escapeHtml(title)}</h1>
${content}
</main>
<footer>Signing in with NHS Care Identity Service 2 (CIS2) lets your existing referral system use e-RS on your behalf.</footer>
</body>
</html>
`;
}

function tryAgain(asid?: string): string {
  return asid
    ? `<a class="button" href="/login?asid=${encodeURIComponent(asid)}">Sign in again</a>`
    : '<p>Start again from your referral system.</p>';
}

export function codePage(code: string, asid: string, ttlMinutes: number, user: string): string {
  const spoken = code.split('').join(' ');
  return layout(
    'You are signed in',
    `<div class="panel">
<p>Signed in as <strong>${escapeHtml(user)}</strong>. Your sign-in code is:</p>
<p class="code" id="sign-in-code" aria-label="Sign-in code ${escapeHtml(spoken)}">${escapeHtml(code)}</p>
<p class="hint">Type or paste it into your referral system when it asks for your sign-in code.</p>
</div>
<ul>
<li>The code works <strong>once</strong>, for the next <strong>${ttlMinutes} minutes</strong>.</li>
<li>It only works in the system that sent you here (ASID ${escapeHtml(asid)}).</li>
<li>Do not share it: anyone who types it first can act as you in e-RS.</li>
</ul>
<p>You can close this page once the code is entered.</p>`,
  );
}

export function cancelledPage(asid?: string): string {
  return layout(
    'Sign-in cancelled',
    `<div class="panel"><p>You cancelled signing in, or CIS2 did not let you sign in. Nothing has been shared with your referral system.</p></div>
${tryAgain(asid)}`,
  );
}

export function expiredPage(): string {
  return layout(
    'This sign-in link has expired',
    `<div class="panel error"><p>This sign-in was started too long ago, was already completed, or did not start here. For your safety each sign-in link works once.</p></div>
<p>Start the sign-in again from your referral system.</p>`,
  );
}

export function unavailablePage(asid?: string): string {
  return layout(
    'CIS2 sign-in is not available',
    `<div class="panel error"><p>NHS Care Identity Service 2 (CIS2) could not be reached, so you cannot sign in right now. This is not a problem with your smartcard or account.</p></div>
<p>Try again in a few minutes. If it keeps happening, contact your IT service desk.</p>
${tryAgain(asid)}`,
  );
}

export function busyPage(asid?: string): string {
  return layout(
    'e-RS sign-in is busy',
    `<div class="panel error"><p>ers-bridge could not keep track of your sign-in just now. Nothing has been shared.</p></div>
<p>Try again in a few seconds.</p>
${tryAgain(asid)}`,
  );
}

export function problemPage(title: string, message: string, asid?: string, status = 'error'): string {
  return layout(
    title,
    `<div class="panel ${status === 'error' ? 'error' : ''}"><p>${escapeHtml(message)}</p></div>
${tryAgain(asid)}`,
  );
}
