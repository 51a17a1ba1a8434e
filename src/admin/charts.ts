/**
 * Server-rendered charts: inline SVG in the page, no script and no inline style (the pages' CSP allows neither;
 * colours and strokes come from classes in /admin/style.css), readable by a screen reader (a title, a description,
 * and a table of the same figures next to each chart on the page) and by a test: each point is a `<circle>` with
 * `data-series`, `data-start` (ISO), `data-value` (0..1), `data-n` (what the value is a share of) and a `<title>`.
 *
 * A line per series over time, y from 0 to 100 %; a step without figures leaves a gap in the line.
 */
import { type HtmlValue, html, joinHtml, type SafeHtml } from '../http/html.js';
import { formatLocal, formatTick } from './time.js';

export interface ChartPoint {
  /** Start of the step (epoch ms). */
  t: number;
  /** 0..1, or undefined when the step has no figures. */
  value: number | undefined;
  /** What the value is a share of (comparisons). */
  n: number;
  /** The point's tooltip, e.g. "A005, 09:05 BST: 3 of 10 answers differ (30%)". */
  title: string;
}

export interface ChartSeries {
  key: string;
  label: string;
  points: ChartPoint[];
}

export interface LineChartOptions {
  /** Unique on the page; the SVG's title and description ids derive from it. */
  id: string;
  title: string;
  description: string;
  /** What the y axis measures, e.g. "Difference rate". */
  yLabel: string;
  from: number;
  to: number;
  stepMs: number;
  tz: string;
  series: ChartSeries[];
}

/** Series beyond this many are not drawn (the table under the chart lists them all). */
export const MAX_SERIES = 8;

const W = 960;
const H = 300;
const LEFT = 56;
const RIGHT = 16;
const TOP = 16;
const BOTTOM = 44;

function fixed(n: number): string {
  return (Math.round(n * 10) / 10).toString();
}

export function lineChart(o: LineChartOptions): SafeHtml {
  const plotW = W - LEFT - RIGHT;
  const plotH = H - TOP - BOTTOM;
  const span = Math.max(1, o.to - o.from);
  // A point sits in the middle of its step.
  const x = (t: number) => LEFT + ((t + o.stepMs / 2 - o.from) / span) * plotW;
  const y = (v: number) => TOP + (1 - v) * plotH;
  const grid = [0, 0.25, 0.5, 0.75, 1].map(
    (v) =>
      html`<line class="grid" x1="${LEFT}" y1="${fixed(y(v))}" x2="${W - RIGHT}" y2="${fixed(y(v))}"></line><text class="axis" x="${LEFT - 8}" y="${fixed(y(v) + 4)}" text-anchor="end">${Math.round(v * 100)}%</text>`,
  );
  const ticks = 6;
  const xTicks = Array.from({ length: ticks + 1 }, (_, i) => o.from + (span * i) / ticks).map(
    (t) =>
      html`<line class="tick" x1="${fixed(LEFT + ((t - o.from) / span) * plotW)}" y1="${H - BOTTOM}" x2="${fixed(LEFT + ((t - o.from) / span) * plotW)}" y2="${H - BOTTOM + 5}"></line><text class="axis" x="${fixed(LEFT + ((t - o.from) / span) * plotW)}" y="${H - BOTTOM + 20}" text-anchor="middle">${formatTick(t, span, o.tz)}</text>`,
  );
  const drawn = o.series.slice(0, MAX_SERIES);
  const lines = drawn.map((s, i) => {
    // Runs of consecutive points with figures: a step without any leaves a gap.
    const runs: ChartPoint[][] = [];
    let run: ChartPoint[] = [];
    for (const p of s.points) {
      if (p.value === undefined) {
        if (run.length) runs.push(run);
        run = [];
      } else run.push(p);
    }
    if (run.length) runs.push(run);
    const polylines = runs
      .filter((r) => r.length > 1)
      .map(
        (r) =>
          html`<polyline class="line" points="${r.map((p) => `${fixed(x(p.t))},${fixed(y(p.value!))}`).join(' ')}"></polyline>`,
      );
    const circles = s.points
      .filter((p) => p.value !== undefined)
      .map(
        (p) =>
          html`<circle class="point" cx="${fixed(x(p.t))}" cy="${fixed(y(p.value!))}" r="4" data-series="${s.key}" data-start="${new Date(p.t).toISOString()}" data-value="${String(Math.round(p.value! * 10_000) / 10_000)}" data-n="${p.n}"><title>${p.title}</title></circle>`,
      );
    return html`<g class="series s${i}" data-series="${s.key}">${polylines}${circles}</g>`;
  });
  const empty =
    drawn.every((s) => s.points.every((p) => p.value === undefined)) &&
    html`<text class="empty" x="${W / 2}" y="${H / 2}" text-anchor="middle">No figures in this window</text>`;
  const legend: HtmlValue =
    drawn.length > 0 &&
    html`<ul class="legend">${drawn.map((s, i) => html`<li><span class="swatch s${i}" aria-hidden="true"></span>${s.label}</li>`)}</ul>${
      o.series.length > MAX_SERIES &&
      html`<p class="hint">${o.series.length - MAX_SERIES} more not drawn: see the table.</p>`
    }`;
  return html`<figure class="chart-figure" id="${o.id}">
<div class="chart-scroll" role="region" aria-label="${o.title}" tabindex="0">
<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="${o.id}-title ${o.id}-desc" data-from="${new Date(o.from).toISOString()}" data-to="${new Date(o.to).toISOString()}" data-step-ms="${o.stepMs}" xmlns="http://www.w3.org/2000/svg">
<title id="${o.id}-title">${o.title}</title>
<desc id="${o.id}-desc">${o.description} From ${formatLocal(o.from, o.tz)} to ${formatLocal(o.to, o.tz)}.</desc>
<g class="grid">${grid}</g>
<g class="x-axis">${xTicks}<line class="axis-line" x1="${LEFT}" y1="${H - BOTTOM}" x2="${W - RIGHT}" y2="${H - BOTTOM}"></line></g>
<text class="axis y-label" x="12" y="${TOP + plotH / 2}" transform="rotate(-90 12 ${TOP + plotH / 2})" text-anchor="middle">${o.yLabel}</text>
${joinHtml(lines, '\n')}
${empty}
</svg>
</div>
<figcaption>${o.title}</figcaption>
${legend}
</figure>`;
}
