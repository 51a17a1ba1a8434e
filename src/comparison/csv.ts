/**
 * The comparison summary as CSV (RFC 4180), for a spreadsheet: `ers-bridge compare report <file> --csv`, and the
 * admin page's export. Pure: a summary in, text out.
 *
 * One table, so that it opens as one sheet and filters by its first column: a row per A-code compared
 * (`section` = `operation`) and a row per ASID and A-code called (`section` = `readiness`), each leaving empty the
 * columns of the other kind. Every record ends in CRLF, the header included; a field is quoted when it holds a comma,
 * a double quote, CR or LF, with its double quotes doubled. Rates are fractions (0.25, not 25%), latencies whole
 * milliseconds, booleans `yes`/`no`. A text field that a spreadsheet would run as a formula (starting with `=`, `+`,
 * `-`, `@`, a tab or CR: field paths and names come from the answers compared) is prefixed with `'`.
 */
import { readinessVerdict } from './report.js';
import type { AsidReadiness, CodeSummary, ComparisonSummary } from './types.js';

/** The columns, in order. */
export const SUMMARY_CSV_COLUMNS = [
  'section',
  'a_code',
  'operation',
  'asid',
  'compared',
  'different',
  'difference_rate',
  'status_mismatches',
  'secondary_errors',
  'p50_primary_ms',
  'p50_secondary_ms',
  'top_fields',
  'noise_fields',
  'calls',
  'app_restricted',
  'failed_on_apim',
  'verdict',
] as const;

type Column = (typeof SUMMARY_CSV_COLUMNS)[number];
type Row = Partial<Record<Column, string | number>>;

/** Differing fields listed per A-code (most frequent first), as `path (count)` joined by `; `. */
export const CSV_TOP_FIELDS = 10;

/** One field, quoted as RFC 4180 requires; text a spreadsheet would evaluate is defused first. */
export function csvField(value: string | number | undefined): string {
  if (value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function line(row: Row): string {
  return `${SUMMARY_CSV_COLUMNS.map((c) => csvField(row[c])).join(',')}\r\n`;
}

function rate(r: number): number {
  return Math.round(r * 10_000) / 10_000;
}

function operationRow(c: CodeSummary): Row {
  return {
    section: 'operation',
    a_code: c.aCode,
    operation: c.name,
    compared: c.compared,
    different: c.different,
    difference_rate: rate(c.differenceRate),
    status_mismatches: c.statusMismatches,
    secondary_errors: c.secondaryErrors,
    p50_primary_ms: c.p50PrimaryMs === undefined ? undefined : Math.round(c.p50PrimaryMs),
    p50_secondary_ms: c.p50SecondaryMs === undefined ? undefined : Math.round(c.p50SecondaryMs),
    top_fields: c.topFields
      .slice(0, CSV_TOP_FIELDS)
      .map((f) => `${f.path} (${f.count})`)
      .join('; '),
    noise_fields: c.noiseFields.join('; '),
  };
}

function readinessRow(asid: string, c: AsidReadiness['codes'][number], accessMode?: AsidReadiness['accessMode']): Row {
  return {
    section: 'readiness',
    a_code: c.aCode,
    asid,
    compared: c.compared,
    different: c.different,
    calls: c.calls,
    app_restricted: c.appRestrictedAllowed ? 'yes' : 'no',
    failed_on_apim: c.failedOnApim,
    verdict: readinessVerdict(c, accessMode),
  };
}

/**
 * The summary's operations (per A-code) and readiness (per ASID and A-code) as one CSV text with a header row, in
 * the summary's order (A-codes, then ASIDs, sorted). An empty summary gives the header alone.
 */
export function summaryCsv(summary: ComparisonSummary): string {
  const rows = [
    ...summary.codes.map(operationRow),
    ...summary.asids.flatMap((a) => a.codes.map((c) => readinessRow(a.asid, c, a.accessMode))),
  ];
  return `${SUMMARY_CSV_COLUMNS.join(',')}\r\n${rows.map(line).join('')}`;
}
