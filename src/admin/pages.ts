/**
 * The admin pages for migration teams: server-rendered HTML in the shared layout of the sign-in pages
 * (src/http/page.ts), no script (the CSP forbids it), no inline style (the CSP forbids that too: every look comes
 * from /admin/style.css). Every value put into a page is escaped by the `html` template; values from answers
 * (already redacted by the comparison store) are shown as JSON text, cut to a readable length.
 */
import type {
  AsidReadiness,
  CodeSummary,
  ComparisonRecord,
  ComparisonSummary,
  FieldDifference,
  FieldStats,
} from '../comparison/types.js';
import { type HtmlValue, html, joinHtml, type SafeHtml } from '../http/html.js';
import { type PageFrame, renderPage, STYLE_CSS } from '../http/page.js';

export const A_CODE = /^A\d{3}$/;

/** The sign-in stylesheet plus what the admin pages add: wider layout, tables, tags, summary lists. */
export const ADMIN_STYLE_CSS = `${STYLE_CSS}
body.admin header .inner, body.admin main, body.admin footer { max-width: 1280px; }
.banner { background: #fff9c4; border-left: 8px solid #ffb81c; padding: 12px 24px; margin: 0 0 24px; }
.breadcrumb { margin: 0 0 16px; font-size: 1rem; }
h2 { font-size: 1.6rem; line-height: 1.25; margin: 40px 0 16px; }
h3 { font-size: 1.3rem; line-height: 1.3; margin: 32px 0 12px; }
.table-wrap { overflow-x: auto; margin: 0 0 32px; }
.table-wrap:focus { outline: 4px solid var(--focus); }
table { width: 100%; border-collapse: collapse; background: var(--nhs-white); font-size: 1rem; }
caption { text-align: left; font-weight: 600; font-size: 1.1875rem; padding: 0 0 8px; }
th, td { border-bottom: 1px solid #d8dde0; padding: 8px 12px; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid var(--nhs-black); }
thead th:first-child { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.differs td.rate { color: var(--nhs-red); font-weight: 700; }
.tag { display: inline-block; padding: 2px 8px; font-weight: 600; border: 1px solid; }
.tag.ready { color: #00401e; background: #cce5d8; border-color: #00401e; }
.tag.not-yet { color: #6b140e; background: #f7d4d1; border-color: #6b140e; }
code, .value { font-family: Consolas, "Courier New", monospace; font-size: 0.95rem; overflow-wrap: anywhere; }
ul.examples { list-style: none; margin: 0; padding: 0; }
ul.examples li + li { margin-top: 6px; padding-top: 6px; border-top: 1px dashed #d8dde0; }
.side { color: var(--nhs-grey); font-size: 0.9rem; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 4px 24px; background: var(--nhs-white);
  padding: 16px 24px; margin: 0 0 24px; }
dl.summary dt { font-weight: 600; }
dl.summary dd { margin: 0; }
.sample { background: var(--nhs-white); border-left: 8px solid #d8dde0; padding: 8px 24px 16px; margin: 0 0 24px; }
.sample.differs { border-left-color: var(--nhs-red); }
.sample.same { border-left-color: var(--nhs-green); }
.sample h3 { margin-top: 16px; }
.sample table { margin-bottom: 8px; }
`;

/** Shown once per page: everything here is metadata of real traffic. */
const FOOTER =
  'These pages show metadata of real e-RS traffic (operations, ASIDs, redacted field values). Do not copy them outside the migration team.';

/** Display cut for a single value (the stored value is redacted already; this keeps pages readable). */
const VALUE_LIMIT = 240;

export interface PageContext {
  /** Open without authentication (the demo): the pages say so. */
  open: boolean;
  /** Endpoint names by A-code. */
  names: Record<string, string>;
}

const FRAME: PageFrame = {
  titleSuffix: 'ers-bridge admin',
  stylesheet: '/admin/style.css',
  serviceName: 'ers-bridge admin – e-RS migration',
  footer: FOOTER,
  bodyClass: 'admin',
  robots: 'noindex, nofollow',
};

const OPEN_BANNER = html`<strong>Open admin surface:</strong> no authentication is asked here (demo only). Set an admin token before using real traffic.`;

function layout(title: string, ctx: PageContext, content: SafeHtml, breadcrumb?: SafeHtml): SafeHtml {
  return renderPage(FRAME, { title, content, banner: ctx.open ? OPEN_BANNER : undefined, breadcrumb });
}

const BACK = html`<a href="/admin/compare/ui">Back to all operations</a>`;

// ---------------------------------------------------------------------------------------------------------------
// formatting

export function percent(rate: number): string {
  if (!Number.isFinite(rate)) return '–';
  const p = Math.round(rate * 1000) / 10;
  return `${p}%`;
}

function count(n: number | undefined): string {
  return typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en-GB') : '–';
}

function ms(v: number | undefined): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  return `${v < 10 ? Math.round(v * 10) / 10 : Math.round(v)} ms`;
}

/** A value as JSON text (so "1" and 1 differ visibly), cut to VALUE_LIMIT characters. */
export function showValue(v: unknown): string {
  if (v === undefined) return '(absent)';
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length > VALUE_LIMIT ? `${s.slice(0, VALUE_LIMIT)}…` : s;
}

function value(v: unknown): SafeHtml {
  return html`<code class="value">${showValue(v)}</code>`;
}

function nameOf(ctx: PageContext, aCode: string, fallback?: string): string {
  if (fallback) return fallback;
  return Object.hasOwn(ctx.names, aCode) ? (ctx.names[aCode] ?? '') : '';
}

function codeLink(aCode: string): SafeHtml {
  return A_CODE.test(aCode)
    ? html`<a href="/admin/compare/ui/${encodeURIComponent(aCode)}">${aCode}</a>`
    : html`${aCode}`;
}

function table(caption: string, head: string[], rows: SafeHtml[], numeric: Set<number> = new Set()): SafeHtml {
  const ths = head.map((h, i) => html`<th scope="col"${numeric.has(i) && html` class="num"`}>${h}</th>`);
  return html`<div class="table-wrap" role="region" aria-label="${caption}" tabindex="0">
<table>
<caption>${caption}</caption>
<thead><tr>${ths}</tr></thead>
<tbody>
${joinHtml(rows, '\n')}
</tbody>
</table>
</div>`;
}

// ---------------------------------------------------------------------------------------------------------------
// ordering and verdicts

/** Highest difference rate first; then most differences, status mismatches, secondary errors; then A-code. */
export function byConcern(a: CodeSummary, b: CodeSummary): number {
  const rate = (c: CodeSummary) => (c.compared > 0 && Number.isFinite(c.differenceRate) ? c.differenceRate : 0);
  return (
    rate(b) - rate(a) ||
    b.different - a.different ||
    b.statusMismatches - a.statusMismatches ||
    b.secondaryErrors - a.secondaryErrors ||
    a.aCode.localeCompare(b.aCode)
  );
}

export interface Verdict {
  ready: boolean;
  /** Why not, one line per operation (empty when ready). */
  reasons: string[];
}

/** Ready when every A-code the ASID used was compared at least once, with no differences and no failures on APIM. */
export function asidVerdict(asid: AsidReadiness): Verdict {
  const reasons: string[] = [];
  if (asid.codes.length === 0) return { ready: false, reasons: ['no calls from this ASID have been seen yet'] };
  for (const c of [...asid.codes].sort((a, b) => a.aCode.localeCompare(b.aCode))) {
    const parts: string[] = [];
    if (c.compared === 0) parts.push('not compared yet');
    if (c.different > 0) {
      parts.push(`${c.different} of ${c.compared} compared ${c.compared === 1 ? 'answer differs' : 'answers differ'}`);
    }
    if (c.failedOnApim > 0) parts.push(`${c.failedOnApim} ${c.failedOnApim === 1 ? 'call' : 'calls'} failed on APIM`);
    if (parts.length) reasons.push(`${c.aCode}: ${parts.join('; ')}`);
  }
  return { ready: reasons.length === 0, reasons };
}

// ---------------------------------------------------------------------------------------------------------------
// pages

export function overviewPage(summary: ComparisonSummary, ctx: PageContext): SafeHtml {
  const codes = [...summary.codes].sort(byConcern);
  const intro = html`<p>${count(summary.records)} ${summary.records === 1 ? 'comparison' : 'comparisons'} recorded since <time datetime="${summary.since}">${summary.since}</time>. Each compares the answer of the primary side with the answer of the secondary side to the same call.</p>`;

  let operations: SafeHtml;
  if (codes.length === 0) {
    operations = html`<div class="panel"><p>No comparisons have been recorded yet. Send traffic through ers-bridge with comparison switched on, or replay recorded calls.</p></div>`;
  } else {
    const rows = codes.map((c) => {
      const differs = c.different > 0 || c.statusMismatches > 0 || c.secondaryErrors > 0;
      return html`<tr${differs && html` class="differs"`}><th scope="row">${codeLink(c.aCode)}</th><td>${nameOf(ctx, c.aCode, c.name)}</td><td class="num">${count(c.compared)}</td><td class="num">${count(c.different)}</td><td class="num rate">${c.compared > 0 ? percent(c.differenceRate) : '–'}</td><td class="num">${count(c.statusMismatches)}</td><td class="num">${count(c.secondaryErrors)}</td><td class="num">${ms(c.p50PrimaryMs)}</td><td class="num">${ms(c.p50SecondaryMs)}</td></tr>`;
    });
    operations = table(
      'Answers compared per operation, highest difference rate first',
      [
        'A-code',
        'Operation',
        'Compared',
        'Different',
        'Difference rate',
        'Status mismatches',
        'Secondary errors',
        'Median latency, primary',
        'Median latency, secondary',
      ],
      rows,
      new Set([2, 3, 4, 5, 6, 7, 8]),
    );
  }

  const verdicts = summary.asids.map((a) => ({ a, v: asidVerdict(a) }));
  verdicts.sort((x, y) => Number(x.v.ready) - Number(y.v.ready) || x.a.asid.localeCompare(y.a.asid));
  const asids = verdicts.length
    ? joinHtml(
        verdicts.map(({ a, v }) => asidSection(a, v, summary, ctx)),
        '\n',
      )
    : html`<div class="panel"><p>No calls have been seen from any ASID yet.</p></div>`;
  const ready = verdicts.filter((x) => x.v.ready).length;

  return layout(
    'Comparison of answers',
    ctx,
    html`${intro}
<h2 id="operations">Operations</h2>
<p>Select an A-code to see which fields differ, with redacted examples and the latest compared calls.</p>
${operations}
<h2 id="readiness">Migration readiness by ASID</h2>
<p>An ASID is <strong>ready</strong> when every operation it uses was compared at least once, with no differences and no failures on APIM. ${count(ready)} of ${count(verdicts.length)} ${verdicts.length === 1 ? 'ASID is' : 'ASIDs are'} ready.</p>
${asids}`,
  );
}

function asidSection(a: AsidReadiness, v: Verdict, summary: ComparisonSummary, ctx: PageContext): SafeHtml {
  const id = `asid-${a.asid.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const summaryName = (code: string) => summary.codes.find((c) => c.aCode === code)?.name;
  const verdict = v.ready
    ? html`<p class="verdict">Verdict: <strong class="tag ready">Ready</strong></p>`
    : html`<p class="verdict">Verdict: <strong class="tag not-yet">Not yet</strong></p>
<ul class="reasons">
${joinHtml(
  v.reasons.map((r) => html`<li>${r}</li>`),
  '\n',
)}
</ul>`;
  const userOnly = a.codes.filter((c) => !c.appRestrictedAllowed).map((c) => c.aCode);
  const note =
    userOnly.length > 0 &&
    html`<p class="hint">APIM allows ${userOnly.join(', ')} for a signed-in CIS2 user only (user-restricted access), not for an application-restricted ASID.</p>`;
  const rows = [...a.codes]
    .sort((x, y) => x.aCode.localeCompare(y.aCode))
    .map(
      (c) =>
        html`<tr><th scope="row">${codeLink(c.aCode)}</th><td>${nameOf(ctx, c.aCode, summaryName(c.aCode))}</td><td class="num">${count(c.calls)}</td><td>${c.appRestrictedAllowed ? 'Allowed' : 'Not allowed (CIS2 user needed)'}</td><td class="num">${count(c.compared)}</td><td class="num">${count(c.different)}</td><td class="num">${count(c.failedOnApim)}</td></tr>`,
    );
  const ops =
    rows.length > 0 &&
    table(
      `Operations used by ASID ${a.asid}`,
      [
        'A-code',
        'Operation',
        'Calls',
        'Application-restricted access on APIM',
        'Compared',
        'Different',
        'Failed on APIM',
      ],
      rows,
      new Set([2, 4, 5, 6]),
    );
  return html`<section class="asid" id="${id}" aria-labelledby="${id}-h">
<h3 id="${id}-h">ASID ${a.asid}</h3>
${verdict}
${note}
${ops}
</section>`;
}

export function notEnabledPage(ctx: PageContext): SafeHtml {
  return layout(
    'Comparison is not enabled',
    ctx,
    html`<div class="panel error"><p>ers-bridge is not comparing answers in this configuration, so there is nothing to show. Switch comparison on in the rules (shadow or replay) and reload them.</p></div>`,
  );
}

export function badCodePage(ctx: PageContext): SafeHtml {
  return layout(
    'That is not an A-code',
    ctx,
    html`<div class="panel error"><p>An operation is named by its A-code: the letter A and three digits, for example A005.</p></div>`,
    BACK,
  );
}

export function failedPage(ctx: PageContext): SafeHtml {
  return layout(
    'Comparisons cannot be shown just now',
    ctx,
    html`<div class="panel error"><p>ers-bridge could not read its comparison records. The reason is in the ers-bridge log. Try again in a moment.</p></div>`,
  );
}

export function notFoundPage(ctx: PageContext): SafeHtml {
  return layout(
    'Page not found',
    ctx,
    html`<div class="panel error"><p>There is no admin page at this address.</p></div>`,
    BACK,
  );
}

export function noComparisonsPage(aCode: string, ctx: PageContext): SafeHtml {
  const name = nameOf(ctx, aCode);
  return layout(
    `${aCode}${name ? ` ${name}` : ''}`,
    ctx,
    html`<div class="panel"><p>No comparisons of ${aCode} have been recorded yet. They appear here once calls of this operation have been compared.</p></div>`,
    BACK,
  );
}

function fieldRows(fields: FieldStats[]): SafeHtml[] {
  return fields.map((f) => {
    const examples = f.examples.length
      ? html`<ul class="examples">${f.examples.map(
          (e) =>
            html`<li><span class="side">primary</span> ${value(e.primary)}<br><span class="side">secondary</span> ${value(e.secondary)}</li>`,
        )}</ul>`
      : '–';
    return html`<tr><th scope="row"><code>${f.path}</code></th><td class="num">${count(f.count)}</td><td>${examples}</td></tr>`;
  });
}

function differenceRows(diffs: FieldDifference[]): SafeHtml[] {
  return diffs.map(
    (d) =>
      html`<tr><th scope="row"><code>${d.path}</code></th><td>${d.kind}</td><td>${value(d.primary)}</td><td>${value(d.secondary)}</td></tr>`,
  );
}

function status(n: number): string {
  return n === 0 ? 'no answer' : String(n);
}

/** A summary list (`<dl class="summary">`): each term is text, each description text or markup. */
function summaryList(items: Array<[string, HtmlValue]>): SafeHtml {
  return html`<dl class="summary">
${joinHtml(
  items.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`),
  '\n',
)}
</dl>`;
}

function sampleSection(r: ComparisonRecord, i: number): SafeHtml {
  const res = r.result;
  const outcome = r.secondaryError
    ? 'secondary failed'
    : res.equal
      ? 'same'
      : res.statusEqual
        ? 'different'
        : 'status differs';
  const cls = res.equal && !r.secondaryError ? 'same' : 'differs';
  const items: Array<[string, HtmlValue]> = [
    ['Outcome', outcome],
    ['ASID', r.asid],
    ['Mode', r.mode],
    [
      `Primary (${r.primary})`,
      html`status ${status(res.primaryStatus)}, ${ms(r.primaryMs)}${res.primarySize !== undefined && `, ${count(res.primarySize)} bytes`}`,
    ],
    [
      `Secondary (${r.secondary})`,
      html`status ${status(res.secondaryStatus)}, ${ms(r.secondaryMs)}${res.secondarySize !== undefined && `, ${count(res.secondarySize)} bytes`}`,
    ],
    ['Body', res.bodyKind],
  ];
  if (r.secondaryError) items.push(['Secondary error', r.secondaryError]);
  if (res.primarySha256 && res.secondarySha256 && res.primarySha256 !== res.secondarySha256) {
    items.push([
      'SHA-256',
      html`primary <code>${res.primarySha256}</code><br>secondary <code>${res.secondarySha256}</code>`,
    ]);
  }
  if (res.noise.length) {
    items.push([
      'Noise ignored',
      joinHtml(
        res.noise.map((p) => html`<code>${p}</code>`),
        ', ',
      ),
    ]);
  }
  if (r.correlationId) items.push(['Correlation id', html`<code>${r.correlationId}</code>`]);
  const diffs = res.differences.length
    ? table(`Differences in sample ${i + 1}`, ['Path', 'Kind', 'Primary', 'Secondary'], differenceRows(res.differences))
    : html`<p>No differences.</p>`;
  return html`<section class="sample ${cls}" aria-labelledby="sample-${i + 1}">
<h3 id="sample-${i + 1}">Sample ${i + 1}: ${r.method} ${r.route} at <time datetime="${r.at}">${r.at}</time></h3>
${summaryList(items)}
${diffs}
</section>`;
}

export function codePage(code: CodeSummary, samples: ComparisonRecord[], ctx: PageContext): SafeHtml {
  const name = nameOf(ctx, code.aCode, code.name);
  const summary: Array<[string, HtmlValue]> = [
    ['Compared', count(code.compared)],
    ['Different', count(code.different)],
    ['Difference rate', code.compared > 0 ? percent(code.differenceRate) : '–'],
    ['Status mismatches', count(code.statusMismatches)],
    ['Secondary errors', count(code.secondaryErrors)],
    ['Median latency, primary', ms(code.p50PrimaryMs)],
    ['Median latency, secondary', ms(code.p50SecondaryMs)],
  ];
  const fields = code.topFields.length
    ? table(
        `Fields that differ in ${code.aCode}, most frequent first`,
        ['Field', 'Times different', 'Examples (redacted)'],
        fieldRows(code.topFields),
        new Set([1]),
      )
    : html`<p>No field has differed.</p>`;
  const noise = code.noiseFields.length
    ? html`<p>These fields also differ between two answers of the primary side itself, so they are not counted as differences.</p>
<ul class="noise">
${joinHtml(
  code.noiseFields.map((p) => html`<li><code>${p}</code></li>`),
  '\n',
)}
</ul>`
    : html`<p>No noise fields.</p>`;
  const latest = samples.length
    ? joinHtml(
        samples.map((r, i) => sampleSection(r, i)),
        '\n',
      )
    : html`<p>No sample records are kept for this operation.</p>`;
  return layout(
    `${code.aCode}${name ? ` ${name}` : ''}`,
    ctx,
    html`${summaryList(summary)}
<h2 id="fields">Fields that differ</h2>
${fields}
<h2 id="noise">Noise fields</h2>
${noise}
<h2 id="samples">Latest samples</h2>
${latest}`,
    BACK,
  );
}
