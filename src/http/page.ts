/**
 * The one page layout of ers-bridge's own HTML pages (the CIS2 sign-in pages and the admin pages), the stylesheet
 * it is drawn with, and the one set of security headers every page is sent with.
 *
 * The pages are plain HTML in the NHS look (NHS blue header, clear type, visible focus), with no script and no inline
 * style: the CSP below forbids both, every look comes from the stylesheet at `frame.stylesheet`.
 */
import type { FastifyReply } from 'fastify';
import { html, type SafeHtml } from './html.js';

/** The base stylesheet: the layout's header, skip link, main and footer, panels, the code and the button. */
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

/** What stays the same on every page of one surface (sign-in, admin). */
export interface PageFrame {
  /** After the page title in <title>: `<title>{title} – {titleSuffix}</title>`. */
  titleSuffix: string;
  /** The stylesheet's address (same origin: the CSP allows 'self' only). */
  stylesheet: string;
  /** The service name in the NHS header. */
  serviceName: string;
  /** The footer's text. */
  footer: string;
  /** A class on <body>, for the stylesheet. */
  bodyClass?: string;
  /** The content of a `<meta name="robots">` (e.g. 'noindex, nofollow'); none when absent. */
  robots?: string;
}

/** What one page says. */
export interface PageParts {
  /** The page title: in <title>, and as the page's h1 unless `heading` is false. */
  title: string;
  /** The body of <main>, after the h1. */
  content: SafeHtml;
  /** A notice above everything else in <main>, in `<div class="banner" role="note">`. */
  banner?: SafeHtml;
  /** Links back, above the h1, in `<p class="breadcrumb">`. */
  breadcrumb?: SafeHtml;
  /** Whether the layout renders `<h1>{title}</h1>` (default true); false when `content` has its own h1. */
  heading?: boolean;
}

/** A whole page: doctype, head, skip link, NHS header, main#maincontent (the skip link's target), footer. */
export function renderPage(frame: PageFrame, page: PageParts): SafeHtml {
  const robots = frame.robots !== undefined && html`<meta name="robots" content="${frame.robots}">\n`;
  const bodyClass = frame.bodyClass !== undefined && html` class="${frame.bodyClass}"`;
  const banner = page.banner !== undefined && html`<div class="banner" role="note">${page.banner}</div>\n`;
  const breadcrumb = page.breadcrumb !== undefined && html`<p class="breadcrumb">${page.breadcrumb}</p>\n`;
  const heading = page.heading !== false && html`<h1>${page.title}</h1>\n`;
  return html`<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${robots}<title>${page.title} – ${frame.titleSuffix}</title>
<link rel="stylesheet" href="${frame.stylesheet}">
</head>
<body${bodyClass}>
<a class="skip-link" href="#maincontent">Skip to main content</a>
<header><div class="inner"><span class="logo" aria-hidden="true">NHS</span><span class="service">${frame.serviceName}</span></div></header>
<main id="maincontent">
${banner}${breadcrumb}${heading}${page.content}
</main>
<footer>${frame.footer}</footer>
</body>
</html>
`;
}

/**
 * The headers of every page (and of everything else the sign-in and admin surfaces answer): never cached (the pages
 * show sign-in codes and traffic metadata), no script, no framing, no referrer, not indexed.
 */
export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'content-security-policy':
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-robots-tag': 'noindex, nofollow',
});

/** Sends a page with the page security headers as `text/html; charset=utf-8`. */
export function sendPage(reply: FastifyReply, status: number, body: SafeHtml): FastifyReply {
  return reply.code(status).headers(PAGE_SECURITY_HEADERS).type('text/html; charset=utf-8').send(body.toString());
}
