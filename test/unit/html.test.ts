import { describe, expect, it } from 'vitest';
import { type HtmlValue, html, joinHtml, SafeHtml } from '../../src/http/html.js';
import { renderPage } from '../../src/http/page.js';

const text = (v: HtmlValue): string => html`${v}`.toString();

describe('html: escaping of interpolated values', () => {
  it.each([
    ['&', '&#38;'],
    ['<', '&#60;'],
    ['>', '&#62;'],
    ['"', '&#34;'],
    ["'", '&#39;'],
  ])('escapes %s as a numeric character reference', (c, entity) => {
    expect(text(`a${c}b`)).toBe(`a${entity}b`);
  });

  it('escapes every occurrence, and an entity in the input stays text', () => {
    expect(text(`<<&&>>`)).toBe('&#60;&#60;&#38;&#38;&#62;&#62;');
    // An entity in the input is text: its & is escaped, so it shows as written.
    expect(text('&#60;')).toBe('&#38;#60;');
  });

  it('keeps the literal parts of the template as written', () => {
    expect(html`<p class="x">${'a&b'}</p>`.toString()).toBe('<p class="x">a&#38;b</p>');
    expect(html`<br>`.toString()).toBe('<br>');
  });

  it('leaves other characters alone', () => {
    const s = 'Plain text – with ünïcödé, / slashes = and `ticks`\nand a newline';
    expect(text(s)).toBe(s);
  });

  it('escapes a string that merely looks like markup', () => {
    const out = html`<td>${'<script>alert(1)</script><b>bold</b>'}</td>`.toString();
    expect(out).toBe('<td>&#60;script&#62;alert(1)&#60;/script&#62;&#60;b&#62;bold&#60;/b&#62;</td>');
    expect(out).not.toContain('<script');
    expect(out).not.toContain('<b>');
  });

  it('escapes an attribute value containing quotes, so it cannot close the attribute', () => {
    const out = html`<a title="${`x" onmouseover="alert(1)`}" data-q='${"y' z"}'>t</a>`.toString();
    expect(out).toBe(`<a title="x&#34; onmouseover=&#34;alert(1)" data-q='y&#39; z'>t</a>`);
    // Exactly the quotes of the template remain.
    expect(out.match(/"/g)).toHaveLength(2);
    expect(out.match(/'/g)).toHaveLength(2);
  });
});

describe('html: safe markup, lists and empty values', () => {
  it('does not escape a nested template again', () => {
    const inner = html`<strong>${'a & b'}</strong>`;
    expect(html`<p>${inner}</p>`.toString()).toBe('<p><strong>a &#38; b</strong></p>');
    expect(html`<div>${html`<p>${inner}</p>`}</div>`.toString()).toBe('<div><p><strong>a &#38; b</strong></p></div>');
  });

  it('joins arrays without a separator, escaping strings and keeping safe markup', () => {
    const items = ['a<b', 'c&d'];
    expect(html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`.toString()).toBe(
      '<ul><li>a&#60;b</li><li>c&#38;d</li></ul>',
    );
    expect(text(['<x>', html`<y>`, 3, undefined, null, false, ['<z>']])).toBe('&#60;x&#62;<y>3&#60;z&#62;');
    expect(text([])).toBe('');
  });

  it('renders undefined, null and false as nothing', () => {
    expect(html`<p>${undefined}|${null}|${false}</p>`.toString()).toBe('<p>||</p>');
    const n = 0;
    expect(html`<p>${n > 0 && html`<b>some</b>`}</p>`.toString()).toBe('<p></p>');
  });

  it('renders numbers with String(), including 0 (which is not nothing)', () => {
    expect(html`<td>${0}</td><td>${42}</td><td>${-1.5}</td><td>${1e21}</td>`.toString()).toBe(
      '<td>0</td><td>42</td><td>-1.5</td><td>1e+21</td>',
    );
    expect(text(Number.NaN)).toBe('NaN');
  });

  it('interpolates the empty string as nothing, and keeps the markup around it', () => {
    expect(html`<p>${''}</p>`.toString()).toBe('<p></p>');
  });

  it('escapes values the types do not allow, as text', () => {
    expect(text({ toString: () => '<i>' } as unknown as HtmlValue)).toBe('&#60;i&#62;');
    expect(text(true as unknown as HtmlValue)).toBe('true');
  });

  it('cannot be made safe from a string outside the module', () => {
    expect(() => new SafeHtml(Symbol('SafeHtml') as never, '<script>')).toThrow(TypeError);
    // A look-alike object is not SafeHtml: it is escaped.
    expect(text({ toString: () => '<b>' } as unknown as SafeHtml)).toBe('&#60;b&#62;');
  });

  it('joinHtml joins safe parts with an escaped separator', () => {
    const parts = [html`<li>${'a'}</li>`, html`<li>${'b'}</li>`];
    expect(joinHtml(parts, '\n').toString()).toBe('<li>a</li>\n<li>b</li>');
    expect(joinHtml(parts).toString()).toBe('<li>a</li><li>b</li>');
    expect(joinHtml(parts, '<hr>').toString()).toBe('<li>a</li>&#60;hr&#62;<li>b</li>');
    expect(joinHtml([]).toString()).toBe('');
    expect(html`<ul>${joinHtml(parts, ', ')}</ul>`.toString()).toBe('<ul><li>a</li>, <li>b</li></ul>');
  });
});

describe('renderPage: the shared layout', () => {
  const frame = {
    titleSuffix: 'Suffix & co',
    stylesheet: '/s/style.css',
    serviceName: 'Service <name>',
    footer: 'Footer "text"',
  };

  it('escapes the title (in <title> and h1), service name and footer', () => {
    const page = renderPage(frame, { title: 'A <b> title', content: html`<p>body</p>` }).toString();
    expect(page).toContain('<title>A &#60;b&#62; title – Suffix &#38; co</title>');
    expect(page).toContain('<h1>A &#60;b&#62; title</h1>\n<p>body</p>\n</main>');
    expect(page).toContain('<span class="service">Service &#60;name&#62;</span>');
    expect(page).toContain('<footer>Footer &#34;text&#34;</footer>');
    expect(page).toContain('<link rel="stylesheet" href="/s/style.css">');
    expect(page.startsWith('<!doctype html>\n<html lang="en-GB">\n')).toBe(true);
    expect(page).toContain('<a class="skip-link" href="#maincontent">Skip to main content</a>');
    expect(page).toContain('<main id="maincontent">\n<h1>');
    expect(page).toContain('<body>\n');
    expect(page).not.toContain('robots');
    expect(page).not.toContain('banner');
    expect(page).not.toContain('breadcrumb');
  });

  it('adds body class, robots meta, banner and breadcrumb when given, and leaves out the h1 on request', () => {
    const page = renderPage(
      { ...frame, bodyClass: 'admin', robots: 'noindex, nofollow' },
      {
        title: 'T',
        content: html`<h1>Own</h1>`,
        banner: html`<b>Note</b>`,
        breadcrumb: html`<a href="/">Back</a>`,
        heading: false,
      },
    ).toString();
    expect(page).toContain('<body class="admin">');
    expect(page).toContain('<meta name="robots" content="noindex, nofollow">\n<title>T – Suffix &#38; co</title>');
    expect(page).toContain(
      '<main id="maincontent">\n<div class="banner" role="note"><b>Note</b></div>\n<p class="breadcrumb"><a href="/">Back</a></p>\n<h1>Own</h1>\n</main>',
    );
    expect(page.match(/<h1>/g)).toHaveLength(1);
  });
});
