/**
 * The admin pages for migration teams: server-rendered HTML in the shared layout of the sign-in pages
 * (src/http/page.ts), no script (the CSP forbids it), no inline style (the CSP forbids that too: every look comes
 * from /admin/style.css; the charts are inline SVG drawn with classes, src/admin/charts.ts). Every value put into a
 * page is escaped by the `html` template; values from answers (already redacted by the comparison store) are shown
 * as JSON text, cut to a readable length. Times are shown in the page's time zone, with its name (src/admin/time.ts).
 */
import { needsCis2Action, readinessState } from '../comparison/report.js';
import type {
  AsidReadiness,
  CodeSummary,
  ComparisonRecord,
  ComparisonSummary,
  ComparisonTrend,
  FieldDifference,
  FieldStats,
  KnownDifference,
} from '../comparison/types.js';
import { type HtmlValue, html, joinHtml, type SafeHtml } from '../http/html.js';
import { type PageFrame, renderPage, STYLE_CSS } from '../http/page.js';
import { type ChartSeries, lineChart } from './charts.js';
import type { AdminFacts } from './facts.js';
import {
  type AskedWindow,
  DEFAULT_TIME_ZONE,
  formatLocal,
  toLocalInput,
  WINDOW_PRESETS,
  type WindowPreset,
} from './time.js';

export const A_CODE = /^A\d{3}$/;

/** Colours of the chart series (and their legend swatches), in order: NHS palette, distinguishable. */
const SERIES_COLOURS = ['#005eb8', '#d5281b', '#007f3b', '#ffb81c', '#330072', '#ae2573', '#00a499', '#425563'];

/** The sign-in stylesheet plus what the admin pages add: wider layout, tables, tags, summary lists, charts, forms. */
export const ADMIN_STYLE_CSS = `${STYLE_CSS}
body.admin header .inner, body.admin main, body.admin footer { max-width: 1280px; }
.banner { background: #fff9c4; border-left: 8px solid #ffb81c; padding: 12px 24px; margin: 0 0 24px; }
.breadcrumb { margin: 0 0 16px; font-size: 1rem; }
h2 { font-size: 1.6rem; line-height: 1.25; margin: 40px 0 16px; }
h3 { font-size: 1.3rem; line-height: 1.3; margin: 32px 0 12px; }
.table-wrap { overflow-x: auto; max-width: 100%; margin: 0 0 32px; }
.table-wrap:focus { outline: 4px solid var(--focus); }
table { width: 100%; min-width: 36rem; border-collapse: collapse; background: var(--nhs-white); font-size: 1rem; }
table.wide { min-width: 56rem; }
caption { text-align: left; font-weight: 600; font-size: 1.1875rem; padding: 0 0 8px; }
th, td { border-bottom: 1px solid #d8dde0; padding: 8px 10px; text-align: left; vertical-align: top; overflow-wrap: break-word; }
thead th { border-bottom: 2px solid var(--nhs-black); }
thead th:first-child { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td.mode { font-size: 0.9rem; min-width: 10em; }
tr.differs td.rate { color: var(--nhs-red); font-weight: 700; }
.tag { display: inline-block; padding: 2px 8px; font-weight: 600; border: 1px solid; }
.tag.ready { color: #00401e; background: #cce5d8; border-color: #00401e; }
.tag.not-yet { color: #6b140e; background: #f7d4d1; border-color: #6b140e; }
.tag.action { color: #3d2a00; background: #ffe9a8; border-color: #8a6100; }
.tag.preset { color: #1d3557; background: #dbe7f5; border-color: #1d3557; font-weight: 400; }
code, .value { font-family: Consolas, "Courier New", monospace; font-size: 0.95rem; overflow-wrap: anywhere; }
th code.field { overflow-wrap: normal; }
ul.examples { list-style: none; margin: 0; padding: 0; }
ul.examples li + li { margin-top: 6px; padding-top: 6px; border-top: 1px dashed #d8dde0; }
.times { color: var(--nhs-grey); font-size: 0.9rem; white-space: nowrap; }
.side { color: var(--nhs-grey); font-size: 0.9rem; }
dl.summary { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 4px 24px; background: var(--nhs-white);
  padding: 16px 24px; margin: 0 0 24px; }
dl.summary dt { font-weight: 600; }
dl.summary dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
ul.blocked li { margin-bottom: 8px; }
.sample { background: var(--nhs-white); border-left: 8px solid #d8dde0; padding: 8px 24px 16px; margin: 0 0 24px; }
.sample.differs { border-left-color: var(--nhs-red); }
.sample.same { border-left-color: var(--nhs-green); }
.sample h3 { margin-top: 16px; }
.sample table { margin-bottom: 8px; }
nav.windows { background: var(--nhs-white); padding: 12px 24px; margin: 0 0 24px; }
nav.windows ul { list-style: none; margin: 0 0 8px; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 20px; }
nav.windows a[aria-current="page"] { font-weight: 700; color: var(--nhs-black); text-decoration: none; }
form.window { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: flex-end; margin: 8px 0 0; }
form.window label { display: flex; flex-direction: column; font-size: 1rem; font-weight: 600; }
input, select { font: inherit; font-size: 1rem; padding: 4px 8px; border: 2px solid var(--nhs-black); background: var(--nhs-white);
  max-width: 100%; }
input:focus, select:focus, button:focus { outline: 4px solid var(--focus); outline-offset: 0; }
button.button { border: 0; cursor: pointer; font: inherit; font-weight: 600; margin-top: 0; }
.button.secondary { background: var(--nhs-grey); box-shadow: 0 4px 0 #263139; }
.button.warning { background: var(--nhs-red); box-shadow: 0 4px 0 #6b140e; }
p.actions { display: flex; flex-wrap: wrap; gap: 8px 24px; margin: 8px 0 0; font-size: 1rem; }
.chart-figure { background: var(--nhs-white); margin: 0 0 16px; padding: 12px 16px; }
.chart-figure figcaption { font-weight: 600; margin: 8px 0 0; }
.chart-scroll { overflow-x: auto; }
.chart-scroll:focus { outline: 4px solid var(--focus); }
svg.chart { display: block; width: 100%; min-width: 600px; height: auto; }
svg.chart line.grid, svg.chart line.tick { stroke: #d8dde0; stroke-width: 1; }
svg.chart line.axis-line { stroke: var(--nhs-black); stroke-width: 1; }
svg.chart text { font-family: Arial, sans-serif; font-size: 13px; fill: var(--nhs-grey); }
svg.chart text.empty { font-size: 18px; }
svg.chart polyline.line { fill: none; stroke-width: 2.5; }
svg.chart circle.point { stroke: var(--nhs-white); stroke-width: 1.5; }
ul.legend { list-style: none; margin: 8px 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 20px; font-size: 1rem; }
.swatch { display: inline-block; width: 14px; height: 14px; margin-right: 6px; vertical-align: -2px; }
details.figures { margin: 0 0 32px; }
details.figures summary { cursor: pointer; font-size: 1rem; }
${SERIES_COLOURS.map((c, i) => `svg.chart .s${i} polyline.line { stroke: ${c}; }\nsvg.chart .s${i} circle.point { fill: ${c}; }\n.swatch.s${i} { background: ${c}; }`).join('\n')}
@media (max-width: 640px) {
  h1 { font-size: 1.75rem; }
  h2 { font-size: 1.35rem; }
  main { padding-top: 24px; }
  dl.summary { grid-template-columns: minmax(0, 1fr); padding: 12px 16px; }
  dl.summary dd { margin-bottom: 8px; }
  .panel, .sample, nav.windows { padding-left: 16px; padding-right: 16px; }
  .chart-figure { padding: 8px; }
}
`;

/** Shown once per page: everything here is metadata of real traffic. */
const FOOTER =
  'These pages show metadata of real e-RS traffic (operations, ASIDs, redacted field values). Do not copy them outside the migration team.';

/** Display cut for a single value (the stored value is redacted already; this keeps pages readable). */
const VALUE_LIMIT = 240;
/** Distinct outcomes shown on an operation's page. */
const SHOWN_OUTCOMES = 10;

export interface PageContext {
  /** Open without authentication (the demo): the pages say so. */
  open: boolean;
  /** Endpoint names by A-code. */
  names: Record<string, string>;
  /** The time zone times are shown in (default Europe/London). */
  tz?: string;
  /** The window asked for (links and the window form keep it). */
  asked?: AskedWindow;
  /** What the rules say now (modes, access modes, presets), when known. */
  facts?: AdminFacts;
  /** Now (epoch ms). */
  now?: number;
  /** A notice shown at the top (a reset done, say). */
  notice?: string;
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
  const notice = ctx.notice !== undefined && html`<div class="panel" role="status"><p>${ctx.notice}</p></div>\n`;
  return renderPage(FRAME, {
    title,
    content: html`${notice}${content}`,
    banner: ctx.open ? OPEN_BANNER : undefined,
    breadcrumb,
  });
}

function tzOf(ctx: PageContext): string {
  return ctx.tz ?? DEFAULT_TIME_ZONE;
}

/** The query that keeps the page's window and zone, for links between the pages ('' or `?…`). */
export function keptQuery(ctx: PageContext, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams();
  const asked = ctx.asked;
  if (asked && asked.preset !== 'all' && asked.preset !== 'custom') q.set('window', asked.preset);
  if (asked?.preset === 'custom' && asked.window) {
    q.set('from', new Date(asked.window.from).toISOString());
    q.set('to', new Date(asked.window.to).toISOString());
  }
  if (ctx.tz && ctx.tz !== DEFAULT_TIME_ZONE) q.set('tz', ctx.tz);
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

function back(ctx: PageContext): SafeHtml {
  return html`<a href="/admin/compare/ui${keptQuery(ctx)}">Back to all operations</a>`;
}

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

/** A time in the page's zone, in a <time> element carrying the ISO time. */
function when(t: string | number | undefined, ctx: PageContext): SafeHtml {
  if (t === undefined) return html`–`;
  const ms = typeof t === 'number' ? t : Date.parse(t);
  if (!Number.isFinite(ms)) return html`${String(t)}`;
  return html`<time datetime="${new Date(ms).toISOString()}">${formatLocal(ms, tzOf(ctx))}</time>`;
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

function codeLink(aCode: string, ctx: PageContext): SafeHtml {
  return A_CODE.test(aCode)
    ? html`<a href="/admin/compare/ui/${encodeURIComponent(aCode)}${keptQuery(ctx)}">${aCode}</a>`
    : html`${aCode}`;
}

function table(
  caption: string,
  head: string[],
  rows: SafeHtml[],
  numeric: Set<number> = new Set(),
  wide = false,
): SafeHtml {
  const ths = head.map((h, i) => html`<th scope="col"${numeric.has(i) && html` class="num"`}>${h}</th>`);
  return html`<div class="table-wrap" role="region" aria-label="${caption}" tabindex="0">
<table${wide && html` class="wide"`}>
<caption>${caption}</caption>
<thead><tr>${ths}</tr></thead>
<tbody>
${joinHtml(rows, '\n')}
</tbody>
</table>
</div>`;
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
  /** Every operation the ASID can use on APIM was compared, same answers, no failures; none needs a CIS2 user. */
  ready: boolean;
  /** Ready for every operation it can use on APIM, but some it calls need a CIS2 user. */
  readyExcept: boolean;
  /** Why not, one line per operation (empty when ready). */
  reasons: string[];
  /** Operations not possible for this ASID on APIM (it is application-restricted; they need a CIS2 user). */
  needsCis2: string[];
}

/**
 * Ready when every A-code the ASID uses that APIM allows it was compared at least once, with no differences and no
 * failures on APIM. An A-code APIM serves only to a CIS2 user, called by an application-restricted ASID, is its own
 * state (`needsCis2`): it can never be compared, so it is listed with the action to take instead of "not compared
 * yet". Without the access mode (an ASID no longer in the rules) every A-code is taken as possible.
 */
export function asidVerdict(asid: AsidReadiness): Verdict {
  const reasons: string[] = [];
  const needsCis2: string[] = [];
  if (asid.codes.length === 0) {
    return { ready: false, readyExcept: false, reasons: ['no calls from this ASID have been seen yet'], needsCis2 };
  }
  for (const c of [...asid.codes].sort((a, b) => a.aCode.localeCompare(b.aCode))) {
    if (readinessState(c, asid.accessMode) === 'needs-cis2-user') {
      needsCis2.push(c.aCode);
      continue;
    }
    const parts: string[] = [];
    if (c.compared === 0) parts.push('not compared yet');
    if (c.different > 0) {
      parts.push(`${c.different} of ${c.compared} compared ${c.compared === 1 ? 'answer differs' : 'answers differ'}`);
    }
    if (c.failedOnApim > 0) parts.push(`${c.failedOnApim} ${c.failedOnApim === 1 ? 'call' : 'calls'} failed on APIM`);
    if (parts.length) reasons.push(`${c.aCode}: ${parts.join('; ')}`);
  }
  const possible = asid.codes.length - needsCis2.length;
  return {
    ready: reasons.length === 0 && needsCis2.length === 0,
    readyExcept: reasons.length === 0 && needsCis2.length > 0 && possible > 0,
    reasons,
    needsCis2,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// the window, the scope, the charts

function windowLabel(ctx: PageContext): string {
  const p = ctx.asked?.preset ?? 'all';
  return p === 'custom' ? 'Chosen window' : WINDOW_PRESETS[p].label;
}

/** The window links, the custom window form (GET: no script), exports and reset. */
function windowNav(ctx: PageContext, path: string, exports: boolean): SafeHtml {
  const current = ctx.asked?.preset ?? 'all';
  const tzQuery = ctx.tz && ctx.tz !== DEFAULT_TIME_ZONE ? `&tz=${encodeURIComponent(ctx.tz)}` : '';
  const links = (Object.keys(WINDOW_PRESETS) as WindowPreset[]).map(
    (p) =>
      html`<li><a href="${path}?window=${p}${tzQuery}"${current === p && html` aria-current="page"`}>${WINDOW_PRESETS[p].label}</a></li>`,
  );
  const tz = tzOf(ctx);
  const w = ctx.asked?.window;
  const zones = [...new Set([tz, DEFAULT_TIME_ZONE, 'UTC'])];
  const form = html`<form class="window" method="get" action="${path}">
<label>From <input type="datetime-local" name="from" value="${w ? toLocalInput(w.from, tz) : ''}"></label>
<label>To <input type="datetime-local" name="to" value="${w ? toLocalInput(w.to, tz) : ''}"></label>
<label>Time zone <select name="tz">${zones.map((z) => html`<option value="${z}"${z === tz && html` selected`}>${z}</option>`)}</select></label>
<button class="button secondary" type="submit">Show</button>
</form>`;
  const q = keptQuery(ctx);
  const actions =
    exports &&
    html`<p class="actions"><a href="/admin/compare/export.csv${q}" download>Export CSV</a><a href="/admin/compare/export.json${q}" download>Export JSON</a><a href="/admin/compare/reset${q}">Reset comparisons…</a></p>`;
  return html`<nav class="windows" aria-label="Time window">
<ul>${links}</ul>
${form}
${actions}
</nav>`;
}

/** Whose figures, over which time. */
function scopeList(summary: ComparisonSummary, ctx: PageContext): SafeHtml {
  const tz = tzOf(ctx);
  const items: Array<[string, HtmlValue]> = [];
  const w = summary.window;
  items.push([
    'Time window',
    w
      ? html`${windowLabel(ctx)}: ${when(w.from, ctx)} to ${when(w.to, ctx)}`
      : html`${windowLabel(ctx)} (since ${when(summary.since, ctx)})`,
  ]);
  items.push([
    'Figures found',
    summary.first && summary.last
      ? html`from ${when(summary.first, ctx)} to ${when(summary.last, ctx)} (to the nearest bucket: 5 minutes in the last day, else an hour)`
      : 'none in this window',
  ]);
  items.push(['Times shown in', `${tz} (the zone's name follows each time; choose another below)`]);
  const replicas = summary.replicas ?? [];
  const replicaList = replicas.length
    ? joinHtml(
        replicas.map(
          (r) =>
            html`<code>${r.id}</code>${r.id === ctx.facts?.replica && ' (this page)'}: ${count(r.records)} ${r.records === 1 ? 'comparison' : 'comparisons'}${r.lastSeen && html`, last counted ${when(r.lastSeen, ctx)}`}`,
        ),
        '; ',
      )
    : html`none have compared in this window`;
  if (summary.scope === 'shared') {
    items.push(['Whose figures', html`Every ers-bridge replica sharing this Redis: ${replicaList}`]);
  } else if (summary.scope === 'process') {
    items.push([
      'Whose figures',
      html`This process only${ctx.facts?.replica && html` (<code>${ctx.facts.replica}</code>)`}: with the memory session store each process keeps its own comparisons, read back from <code>comparison.file</code> when it starts. ${replicas.length > 0 && html`Counted by: ${replicaList}`}`,
    ]);
  }
  if (summary.resetAt) items.push(['Last reset', when(summary.resetAt, ctx)]);
  return summaryList(items);
}

function rateTitle(label: string, t: number, ctx: PageContext, num: number, n: number, what: string): string {
  return `${label}, ${formatLocal(t, tzOf(ctx))}: ${num} of ${n} ${what} (${percent(n === 0 ? 0 : num / n)})`;
}

/** Difference rate over time per A-code: one line each, the busiest first. */
export function differenceSeries(trend: ComparisonTrend, ctx: PageContext, only?: string): ChartSeries[] {
  const totals = new Map<string, number>();
  for (const p of trend.points) {
    for (const [code, c] of Object.entries(p.codes)) totals.set(code, (totals.get(code) ?? 0) + c.compared);
  }
  const codes = [...totals.entries()]
    .filter(([code, n]) => n > 0 && (only === undefined || code === only))
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([code]) => code);
  return codes.map((code) => ({
    key: code,
    label: `${code}${nameOf(ctx, code) ? ` ${nameOf(ctx, code)}` : ''}`,
    points: trend.points.map((p) => {
      const t = Date.parse(p.start);
      const c = p.codes[code];
      if (!c || c.compared === 0) return { t, value: undefined, n: 0, title: '' };
      return {
        t,
        value: c.different / c.compared,
        n: c.compared,
        title: rateTitle(code, t, ctx, c.different, c.compared, 'compared answers differ'),
      };
    }),
  }));
}

/** Readiness per ASID over time: the share of its compared answers that matched (same, not failed on APIM). */
export function readinessSeries(trend: ComparisonTrend, ctx: PageContext): ChartSeries[] {
  const totals = new Map<string, number>();
  for (const p of trend.points) {
    for (const [asid, a] of Object.entries(p.asids)) totals.set(asid, (totals.get(asid) ?? 0) + a.compared);
  }
  const asids = [...totals.entries()]
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([asid]) => asid);
  return asids.map((asid) => ({
    key: asid,
    label: `ASID ${asid}`,
    points: trend.points.map((p) => {
      const t = Date.parse(p.start);
      const a = p.asids[asid];
      if (!a || a.compared === 0) return { t, value: undefined, n: 0, title: '' };
      const matched = Math.max(0, a.compared - Math.max(a.different, a.failedOnApim));
      return {
        t,
        value: matched / a.compared,
        n: a.compared,
        title: rateTitle(`ASID ${asid}`, t, ctx, matched, a.compared, 'compared answers matched'),
      };
    }),
  }));
}

/** The figures behind a chart as a table, folded away (no script: <details>). */
function figuresTable(caption: string, series: ChartSeries[], trend: ComparisonTrend, ctx: PageContext): SafeHtml {
  const shown = series.slice(0, 8);
  const rows = trend.points
    .map((p, i) => ({ p, i }))
    .filter(({ i }) => shown.some((s) => s.points[i]?.value !== undefined))
    .map(
      ({ p, i }) =>
        html`<tr><th scope="row">${when(p.start, ctx)}</th>${shown.map((s) => {
          const pt = s.points[i]!;
          return html`<td class="num">${pt.value === undefined ? '–' : `${percent(pt.value)} of ${count(pt.n)}`}</td>`;
        })}</tr>`,
    );
  if (rows.length === 0) return html``;
  return html`<details class="figures"><summary>The figures behind the chart</summary>
${table(caption, ['Step from', ...shown.map((s) => s.label)], rows, new Set(shown.map((_, i) => i + 1)))}
</details>`;
}

function chartSection(
  id: string,
  title: string,
  description: string,
  yLabel: string,
  series: ChartSeries[],
  trend: ComparisonTrend,
  ctx: PageContext,
): SafeHtml {
  const chart = lineChart({
    id,
    title,
    description,
    yLabel,
    from: Date.parse(trend.from),
    to: Date.parse(trend.to),
    stepMs: trend.stepMs,
    tz: tzOf(ctx),
    series,
  });
  return html`${chart}
${figuresTable(`${title}, by step`, series, trend, ctx)}`;
}

function stepWords(stepMs: number): string {
  if (stepMs % 86_400_000 === 0) return `${stepMs / 86_400_000} day${stepMs === 86_400_000 ? '' : 's'}`;
  if (stepMs % 3_600_000 === 0) return `${stepMs / 3_600_000} hour${stepMs === 3_600_000 ? '' : 's'}`;
  return `${Math.round(stepMs / 60_000)} minutes`;
}

// ---------------------------------------------------------------------------------------------------------------
// pages

export function overviewPage(summary: ComparisonSummary, ctx: PageContext, trend?: ComparisonTrend): SafeHtml {
  const codes = [...summary.codes].sort(byConcern);
  const shared =
    summary.sharedUnavailable &&
    html`<div class="panel error" role="alert"><p>The shared comparisons on Redis could not be read just now: these are the figures of this replica only. Try again in a moment.</p></div>`;
  const intro = html`<p>${count(summary.records)} ${summary.records === 1 ? 'comparison' : 'comparisons'} recorded since ${when(summary.since, ctx)}. Each compares the answer of the primary side with the answer of the secondary side to the same call.</p>`;

  let operations: SafeHtml;
  if (codes.length === 0) {
    operations = html`<div class="panel"><p>No comparisons have been recorded yet. Send traffic through ers-bridge with comparison switched on, or replay recorded calls.</p></div>`;
  } else {
    const rows = codes.map((c) => {
      const differs = c.different > 0 || c.statusMismatches > 0 || c.secondaryErrors > 0;
      return html`<tr${differs && html` class="differs"`}><th scope="row">${codeLink(c.aCode, ctx)}</th><td>${nameOf(ctx, c.aCode, c.name)}</td><td class="mode">${ctx.facts?.modeOf(c.aCode) ?? '–'}</td><td class="num">${count(c.compared)}</td><td class="num">${count(c.different)}</td><td class="num">${count(c.ignoredByPreset ?? 0)}</td><td class="num rate">${c.compared > 0 ? percent(c.differenceRate) : '–'}</td><td class="num">${count(c.statusMismatches)}</td><td class="num">${count(c.secondaryErrors)}</td><td class="num">${ms(c.p50PrimaryMs)}</td><td class="num">${ms(c.p50SecondaryMs)}</td></tr>`;
    });
    operations = table(
      'Answers compared per operation, highest difference rate first',
      [
        'A-code',
        'Operation',
        'Mode now',
        'Compared',
        'Different',
        'Ignored by preset',
        'Difference rate',
        'Status mismatches',
        'Secondary errors',
        'Median latency, primary',
        'Median latency, secondary',
      ],
      rows,
      new Set([3, 4, 5, 6, 7, 8, 9, 10]),
      true,
    );
  }

  const diffChart =
    trend &&
    chartSection(
      'difference-rate',
      'Difference rate over time, per operation',
      `The share of compared answers that differed, per A-code, in steps of ${stepWords(trend.stepMs)}.`,
      'Difference rate',
      differenceSeries(trend, ctx),
      trend,
      ctx,
    );
  const readyChart =
    trend &&
    chartSection(
      'readiness-trend',
      'Readiness per ASID over time',
      `The share of each ASID's compared answers that matched (the same on both sides, not failed on APIM), in steps of ${stepWords(trend.stepMs)}.`,
      'Answers matching',
      readinessSeries(trend, ctx),
      trend,
      ctx,
    );

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
    html`${shared}${intro}
${scopeList(summary, ctx)}
${windowNav(ctx, '/admin/compare/ui', true)}
<h2 id="trend">Difference rate over time</h2>
${diffChart || html`<p>No trend is available from this source.</p>`}
<h2 id="operations">Operations</h2>
<p>Select an A-code to see which fields differ, with redacted examples and the latest compared calls. Differences a known-difference preset matches are counted under <em>Ignored by preset</em>, not as differences.</p>
${operations}
${presetsSection(summary, ctx)}
<h2 id="readiness">Migration readiness by ASID</h2>
<p>An ASID is <strong>ready</strong> when every operation it uses that APIM allows it was compared at least once, with no differences and no failures on APIM. An operation APIM serves only to a signed-in CIS2 user, called by an application-restricted ASID, is not possible for that ASID on APIM: it is listed apart, with what to do. ${count(ready)} of ${count(verdicts.length)} ${verdicts.length === 1 ? 'ASID is' : 'ASIDs are'} ready.</p>
${readyChart || ''}
${asids}`,
  );
}

/** The known differences shipped, each with how often it matched in the window. */
function presetsSection(summary: ComparisonSummary, ctx: PageContext): SafeHtml {
  const presets = ctx.facts?.presets ?? [];
  if (presets.length === 0) return html``;
  const hits = new Map<string, number>();
  for (const c of summary.codes) for (const p of c.presets ?? []) hits.set(p.id, (hits.get(p.id) ?? 0) + p.count);
  const off = presets.flatMap((p) => p.codes).filter((code) => ctx.facts?.presetsOn(code) === false);
  const rows = presets.map(
    (p) =>
      html`<tr id="preset-${p.id}"><th scope="row"><code class="field">${p.field}</code></th><td>${joinHtml(
        p.codes.map((c) => codeLink(c, ctx)),
        ', ',
      )}</td><td><code>${p.element}</code> with <code>url</code> <code>${p.url}</code></td><td>${p.why}</td><td><a href="${p.source.url}">${p.source.title}</a>, since ${p.since}</td><td class="num">${count(hits.get(p.id) ?? 0)}</td></tr>`,
  );
  return html`<h2 id="presets">Known differences (presets)</h2>
<p>Fields APIM answers by design that the HSCN API never had: a comparison with a legacy answer always shows them, so ers-bridge counts them as <span class="tag preset">ignored by preset</span> rather than as differences. They are on unless the rules say <code>modes.shadow.presets: false</code>.${off.length > 0 && html` Switched off in the rules for ${off.join(', ')}.`}</p>
${table('Known differences ers-bridge ignores by preset', ['Field', 'A-codes', 'Where', 'Why', 'NHS source', 'Comparisons it matched'], rows, new Set([5]), true)}`;
}

function asidSection(a: AsidReadiness, v: Verdict, summary: ComparisonSummary, ctx: PageContext): SafeHtml {
  const id = `asid-${a.asid.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const summaryName = (code: string) => summary.codes.find((c) => c.aCode === code)?.name;
  const reasons =
    v.reasons.length > 0 &&
    html`<ul class="reasons">
${joinHtml(
  v.reasons.map((r) => html`<li>${r}</li>`),
  '\n',
)}
</ul>`;
  const tag = v.ready
    ? html`<strong class="tag ready">Ready</strong>`
    : v.readyExcept
      ? html`<strong class="tag action">Ready, except ${v.needsCis2.length} ${v.needsCis2.length === 1 ? 'operation' : 'operations'} that need a CIS2 user</strong>`
      : html`<strong class="tag not-yet">Not yet</strong>`;
  const verdict = html`<p class="verdict">Verdict: ${tag}</p>
${reasons}`;
  const blocked =
    v.needsCis2.length > 0 &&
    html`<h4 class="blocked-h">Not possible for this ASID on APIM (needs a CIS2 user)</h4>
<ul class="blocked">
${joinHtml(
  v.needsCis2.map(
    (code) =>
      html`<li><strong>${code}</strong>${nameOf(ctx, code, summaryName(code)) && ` ${nameOf(ctx, code, summaryName(code))}`}: not possible for this ASID on APIM (needs a CIS2 user). What to do: ${needsCis2Action(code)}</li>`,
  ),
  '\n',
)}
</ul>`;
  const userOnly = a.codes.filter((c) => !c.appRestrictedAllowed).map((c) => c.aCode);
  const note =
    userOnly.length > 0 &&
    v.needsCis2.length === 0 &&
    a.accessMode !== 'user-restricted' &&
    html`<p class="hint">APIM allows ${userOnly.join(', ')} for a signed-in CIS2 user only (user-restricted access), not for an application-restricted ASID.</p>`;
  const mode =
    a.accessMode &&
    html`<p class="hint">Access mode in the rules: ${a.accessMode === 'application-restricted' ? 'application-restricted (no CIS2 user)' : 'user-restricted (CIS2 users sign in)'}.</p>`;
  const rows = [...a.codes]
    .sort((x, y) => x.aCode.localeCompare(y.aCode))
    .map(
      (c) =>
        html`<tr><th scope="row">${codeLink(c.aCode, ctx)}</th><td>${nameOf(ctx, c.aCode, summaryName(c.aCode))}</td><td class="num">${count(c.calls)}</td><td>${c.appRestrictedAllowed ? 'Allowed' : 'Not allowed (CIS2 user needed)'}</td><td class="num">${count(c.compared)}</td><td class="num">${count(c.different)}</td><td class="num">${count(c.failedOnApim)}</td></tr>`,
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
${mode}
${blocked}
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
    back(ctx),
  );
}

export function unknownCodePage(aCode: string, ctx: PageContext): SafeHtml {
  return layout(
    `${aCode} is not an e-RS operation`,
    ctx,
    html`<div class="panel error"><p>ers-bridge knows no operation ${aCode}. The operations are A001 to A044 as the e-RS API names them; the table of all operations lists those compared.</p></div>`,
    back(ctx),
  );
}

export function badQueryPage(problem: string, ctx: PageContext): SafeHtml {
  return layout(
    'That time window cannot be shown',
    ctx,
    html`<div class="panel error"><p>${problem}.</p></div>`,
    html`<a href="/admin/compare/ui">Back to all operations</a>`,
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
    back(ctx),
  );
}

export function noComparisonsPage(aCode: string, ctx: PageContext): SafeHtml {
  const name = nameOf(ctx, aCode);
  const mode = ctx.facts?.modeOf(aCode);
  return layout(
    `${aCode}${name ? ` ${name}` : ''}`,
    ctx,
    html`<div class="panel"><p>No comparisons of ${aCode} have been recorded yet${ctx.asked && ctx.asked.preset !== 'all' ? ' in this window' : ''}. They appear here once calls of this operation have been compared.${mode && html` Mode now: ${mode}.`}</p></div>`,
    back(ctx),
  );
}

function fieldRows(fields: FieldStats[]): SafeHtml[] {
  return fields.map((f) => {
    const examples = f.examples.length
      ? html`<ul class="examples">${f.examples.map(
          (e) =>
            html`<li><span class="side">primary</span> ${value(e.primary)}<br><span class="side">secondary</span> ${value(e.secondary)}${(e.count ?? 1) > 1 && html`<br><span class="times">seen ${count(e.count)} times</span>`}</li>`,
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

/** The same outcome seen several times: what differed (and how), not when or for whom. */
function outcomeKey(r: ComparisonRecord): string {
  const res = r.result;
  return JSON.stringify([
    res.equal,
    res.primaryStatus,
    res.secondaryStatus,
    res.bodyKind,
    r.secondaryError ?? null,
    res.differences.map((d) => [d.path, d.kind, d.primary, d.secondary]),
    res.noise,
    (res.ignoredByPreset ?? []).map((p) => p.id),
  ]);
}

export interface Outcome {
  /** The latest record with this outcome. */
  record: ComparisonRecord;
  count: number;
  /** The earliest such record's time (ISO). */
  first: string;
}

/** Records grouped by outcome, latest first (the records come latest first). */
export function groupOutcomes(records: ComparisonRecord[]): Outcome[] {
  const groups = new Map<string, Outcome>();
  for (const r of records) {
    const k = outcomeKey(r);
    const g = groups.get(k);
    if (g) {
      g.count++;
      if (r.at < g.first) g.first = r.at;
    } else groups.set(k, { record: r, count: 1, first: r.at });
  }
  return [...groups.values()];
}

function sampleSection(o: Outcome, i: number, ctx: PageContext): SafeHtml {
  const r = o.record;
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
    [
      'Seen',
      o.count === 1
        ? 'once among the latest calls kept'
        : html`${count(o.count)} times among the latest calls kept, first ${when(o.first, ctx)}; the latest is shown`,
    ],
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
  if (r.replica) items.push(['Compared by', html`<code>${r.replica}</code>`]);
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
  for (const p of res.ignoredByPreset ?? []) {
    items.push([
      'Ignored by preset',
      html`<span class="tag preset">${p.id}</span> ${count(p.fields)} ${p.fields === 1 ? 'field' : 'fields'}: ${joinHtml(
        p.paths.map((x) => html`<code>${x}</code>`),
        ', ',
      )}`,
    ]);
  }
  if (r.correlationId) items.push(['Correlation id', html`<code>${r.correlationId}</code>`]);
  const diffs = res.differences.length
    ? table(`Differences in sample ${i + 1}`, ['Path', 'Kind', 'Primary', 'Secondary'], differenceRows(res.differences))
    : html`<p>No differences.</p>`;
  return html`<section class="sample ${cls}" aria-labelledby="sample-${i + 1}" data-count="${o.count}">
<h3 id="sample-${i + 1}">Sample ${i + 1}: ${r.method} ${r.route} at ${when(r.at, ctx)}</h3>
${summaryList(items)}
${diffs}
</section>`;
}

function presetRows(code: CodeSummary, presets: readonly KnownDifference[], ctx: PageContext): SafeHtml {
  if (!code.presets || code.presets.length === 0) return html``;
  const rows = code.presets.map((p) => {
    const known = presets.find((k) => k.id === p.id);
    return html`<tr><th scope="row"><span class="tag preset">${known?.field ?? p.id}</span></th><td class="num">${count(p.count)}</td><td>${known ? html`${known.why} <a href="/admin/compare/ui${keptQuery(ctx)}#preset-${known.id}">About this preset</a>` : 'A preset of an earlier ers-bridge version.'}</td></tr>`;
  });
  return html`<h2 id="presets">Ignored by preset</h2>
<p>Fields APIM answers by design, matched by a known-difference preset: counted here, not as differences.</p>
${table(`Known differences matched in ${code.aCode}`, ['Field', 'Comparisons', 'Why'], rows, new Set([1]))}`;
}

export function codePage(
  code: CodeSummary,
  samples: ComparisonRecord[],
  ctx: PageContext,
  trend?: ComparisonTrend,
): SafeHtml {
  const name = nameOf(ctx, code.aCode, code.name);
  const summary: Array<[string, HtmlValue]> = [
    ['Compared', count(code.compared)],
    ['Different', count(code.different)],
    ['Difference rate', code.compared > 0 ? percent(code.differenceRate) : '–'],
    ['Ignored by preset', count(code.ignoredByPreset ?? 0)],
    ['Status mismatches', count(code.statusMismatches)],
    ['Secondary errors', count(code.secondaryErrors)],
    ['Median latency, primary', ms(code.p50PrimaryMs)],
    ['Median latency, secondary', ms(code.p50SecondaryMs)],
  ];
  const mode = ctx.facts?.modeOf(code.aCode);
  if (mode) summary.push(['Mode now', mode]);
  const fields = code.topFields.length
    ? table(
        `Fields that differ in ${code.aCode}, most frequent first`,
        ['Field', 'Times different', 'Examples (redacted, each distinct pair once)'],
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
  const outcomes = groupOutcomes(samples);
  const latest = outcomes.length
    ? joinHtml(
        outcomes.slice(0, SHOWN_OUTCOMES).map((o, i) => sampleSection(o, i, ctx)),
        '\n',
      )
    : html`<p>No sample records are kept for this operation.</p>`;
  const chart =
    trend &&
    chartSection(
      'code-difference-rate',
      `Difference rate of ${code.aCode} over time`,
      `The share of compared ${code.aCode} answers that differed, in steps of ${stepWords(trend.stepMs)}.`,
      'Difference rate',
      differenceSeries(trend, ctx, code.aCode),
      trend,
      ctx,
    );
  return layout(
    `${code.aCode}${name ? ` ${name}` : ''}`,
    ctx,
    html`${summaryList(summary)}
${windowNav(ctx, `/admin/compare/ui/${encodeURIComponent(code.aCode)}`, false)}
${chart || ''}
<h2 id="fields">Fields that differ</h2>
${fields}
${presetRows(code, ctx.facts?.presets ?? [], ctx)}
<h2 id="noise">Noise fields</h2>
${noise}
<h2 id="samples">Latest samples</h2>
<p>The latest compared calls kept${outcomes.length < samples.length ? html`, ${count(samples.length)} calls with ${count(outcomes.length)} distinct outcomes: each outcome once, with how often it was seen` : ''}.</p>
${latest}`,
    back(ctx),
  );
}

/** The reset's confirmation step: a form with a one-time confirmation, posted to the same address. */
export function resetPage(summary: ComparisonSummary, token: string, ctx: PageContext): SafeHtml {
  const where =
    summary.scope === 'shared'
      ? 'for every replica sharing this Redis'
      : 'in this process, and the comparison file is marked so that a restart does not bring them back';
  return layout(
    'Reset comparisons',
    ctx,
    html`<div class="panel error"><p>This deletes every comparison and call count ${where}: the figures, the charts, the readiness view and the samples start again from nothing. ${count(summary.records)} ${summary.records === 1 ? 'comparison is' : 'comparisons are'} counted now. Export them first if you need them.</p>
<p class="actions"><a href="/admin/compare/export.csv">Export CSV</a><a href="/admin/compare/export.json">Export JSON</a></p></div>
<form method="post" action="/admin/compare/reset">
<input type="hidden" name="confirm" value="${token}">
<p><button class="button warning" type="submit">Reset all comparisons</button></p>
</form>
<p><a href="/admin/compare/ui${keptQuery(ctx)}">Cancel and go back</a></p>`,
    back(ctx),
  );
}

export function resetRefusedPage(ctx: PageContext): SafeHtml {
  return layout(
    'The reset was not confirmed',
    ctx,
    html`<div class="panel error"><p>Nothing was reset: the confirmation was missing, already used or more than 10 minutes old. Open the reset page again and confirm from there.</p></div>
<p><a href="/admin/compare/reset">Open the reset page again</a></p>`,
    back(ctx),
  );
}
