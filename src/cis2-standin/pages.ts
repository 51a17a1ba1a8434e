/**
 * The CIS2 stand-in's pages: the sign-in page (pick a test user, or cancel) and its error pages. The layout, the
 * escaping and the security headers are ers-bridge's own (src/http/page.ts), with one difference: `form-action` also
 * allows the relying party's origin, because the sign-in form's answer redirects the browser there and Chromium
 * applies `form-action` to redirects after a form submission.
 */
import type { FastifyReply } from 'fastify';
import { html, type SafeHtml } from '../http/html.js';
import { PAGE_SECURITY_HEADERS, renderPage, STYLE_CSS } from '../http/page.js';
import type { Cis2StandInUser } from './users.js';

/** The base stylesheet, plus the sign-in page's buttons. */
export const CIS2_STYLE_CSS = `${STYLE_CSS}
button.button { border: 0; font: inherit; font-weight: 600; cursor: pointer; }
button.secondary { background: var(--nhs-grey); box-shadow: 0 4px 0 #263139; }
button.button:focus { outline: 4px solid transparent; background-color: var(--focus); color: var(--nhs-black); }
.user { background: var(--nhs-white); padding: 16px 24px; margin: 16px 0; border-left: 8px solid var(--nhs-green); }
.user p { margin: 0 0 8px; }
`;

function frame(stylesheet: string) {
  return {
    titleSuffix: 'CIS2 stand-in',
    stylesheet,
    serviceName: 'Care Identity Service 2 — stand-in',
    footer:
      'A local stand-in for NHS CIS2, part of ers-bridge. It signs in test users only: no smartcard, no password, no real identity.',
    robots: 'noindex, nofollow',
  };
}

/** The page security headers, with `form-action` widened to the origins given (the relying party's callback). */
export function pageHeaders(formTargets: readonly string[] = []): Record<string, string> {
  const csp = PAGE_SECURITY_HEADERS['content-security-policy']!.replace(
    "form-action 'self'",
    ["form-action 'self'", ...formTargets].join(' '),
  );
  return { ...PAGE_SECURITY_HEADERS, 'content-security-policy': csp };
}

export function sendCis2Page(reply: FastifyReply, status: number, body: SafeHtml, formTargets: readonly string[] = []) {
  return reply.code(status).headers(pageHeaders(formTargets)).type('text/html; charset=utf-8').send(body.toString());
}

function roleSummary(user: Cis2StandInUser): string {
  return user.roles.map((r) => `${r.businessFunctions.join(', ')} at ${r.orgName} (${r.odsCode})`).join('; ');
}

/** The sign-in page: one button per test user, and a cancel button. */
export function signInPage(args: {
  stylesheet: string;
  action: string;
  interaction: string;
  clientId: string;
  users: readonly Cis2StandInUser[];
}): SafeHtml {
  const users = args.users.map(
    (u) => html`<div class="user">
<p><strong>${u.givenName} ${u.familyName}</strong> — CIS2 user id ${u.sub}</p>
<p class="hint">Identity assurance IAL${u.idAssuranceLevel}, authentication assurance AAL${u.authenticationAssuranceLevel} (${u.amr.join(', ')}). ${roleSummary(u)}.</p>
<button class="button" type="submit" name="user" value="${u.sub}">Sign in as ${u.givenName} ${u.familyName}</button>
</div>
`,
  );
  return renderPage(frame(args.stylesheet), {
    title: 'Sign in with CIS2',
    content: html`<p><strong>${args.clientId}</strong> asks you to sign in. This is the CIS2 stand-in: choose a test user.</p>
<form method="post" action="${args.action}">
<input type="hidden" name="interaction" value="${args.interaction}">
${users}<button class="button secondary" type="submit" name="cancel" value="1">Cancel</button>
</form>
`,
  });
}

/** A problem that cannot be sent back to the relying party (unknown client, unregistered redirect URI, expired form). */
export function errorPage(stylesheet: string, title: string, detail: string): SafeHtml {
  return renderPage(frame(stylesheet), {
    title,
    content: html`<div class="panel error"><p>${detail}</p></div>
<p>Start the sign-in again from the application that sent you here.</p>
`,
  });
}
