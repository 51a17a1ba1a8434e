/**
 * Auto-escaping HTML: every page is built with the `html` tagged template, which escapes each interpolated value
 * unless it is already-safe markup (a `SafeHtml`, which only this module can make). So a value can be put into a
 * page only as text, never as markup, and no call site has to remember to escape it.
 *
 *   html`<p>${name}</p>`                                      → name escaped
 *   html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`   → each item escaped once, the <li> markup kept
 *   html`<p>${count > 0 && html`<strong>${count}</strong>`}</p>` → nothing when count is 0
 *
 * Escaping is for text and double- or single-quoted attribute values. It does not make a value safe as a URL (use
 * encodeURIComponent for a query value), nor inside a <script> or <style> element (the pages have neither).
 */

/** Only this module holds it: a SafeHtml cannot be made from outside, so markup cannot be forged from a string. */
const MINT: unique symbol = Symbol('SafeHtml');

/** Markup that is safe as it is: built by `html` (or `joinHtml`) from literal markup and escaped values. */
export class SafeHtml {
  readonly #markup: string;

  /** @internal Use `html`; the token is not exported, so no other module can construct one. */
  constructor(token: typeof MINT, markup: string) {
    if (token !== MINT) throw new TypeError('SafeHtml is made with the html tagged template');
    this.#markup = markup;
  }

  toString(): string {
    return this.#markup;
  }
}

/** What may be interpolated: text (escaped), numbers, safe markup, nothing (undefined, null, false), or a list. */
export type HtmlValue = SafeHtml | string | number | false | null | undefined | readonly HtmlValue[];

/** `& < > " '` → numeric character references. Internal on purpose: other modules use `html`. */
function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function render(value: unknown): string {
  if (value instanceof SafeHtml) return value.toString();
  if (value === undefined || value === null || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  // Strings, numbers, and anything the types did not foresee: as escaped text.
  return escapeHtml(String(value));
}

/** The tagged template: the literal parts are kept as written, every interpolated value is rendered safely. */
export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new SafeHtml(MINT, out);
}

/** Safe markup parts joined with a separator; the separator is text (escaped), e.g. '\n' or ', '. */
export function joinHtml(parts: readonly SafeHtml[], separator = ''): SafeHtml {
  return new SafeHtml(MINT, parts.map((p) => p.toString()).join(escapeHtml(separator)));
}
