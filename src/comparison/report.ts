/**
 * The plain-text comparison report (`ers-bridge compare report <file.jsonl>`): one fixed-width table of the
 * operations (A-codes) compared, then migration readiness per ASID. No colours, ASCII only; the summary it reads is
 * already redacted.
 */
import type { AsidReadiness, CodeSummary, ComparisonSummary, ReadinessState } from './types.js';

export type { ReadinessState } from './types.js';

const TOP_FIELDS = 3;
const MAX_NAME = 32;
const MAX_FIELD_PATH = 48;

/** `0.1234` → `12.3%`. */
export function formatRate(rate: number): string {
  return `${(rate * 100).toFixed(1)}%`;
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}

/** Lays out rows under headers; columns in `right` are right-aligned; the last column is not padded. */
function table(headers: string[], rows: string[][], right: ReadonlySet<number>): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => {
        if (i === cells.length - 1 && !right.has(i)) return c;
        return right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

function topFields(c: CodeSummary): string {
  if (c.topFields.length === 0) return '-';
  return c.topFields
    .slice(0, TOP_FIELDS)
    .map((f) => `${clip(f.path, MAX_FIELD_PATH)} (${f.count})`)
    .join(', ');
}

function ms(v: number | undefined): string {
  return v === undefined ? '-' : String(Math.round(v));
}

type AccessMode = AsidReadiness['accessMode'];

/**
 * Where one operation of an ASID stands for the move to APIM:
 *  - `needs-cis2-user`: not possible for this ASID on APIM — APIM serves the operation to a signed-in CIS2 user only
 *    and the ASID is application-restricted (it will never be compared: shadow does not copy what APIM would refuse);
 *  - `failing`: APIM failed (no answer, 5xx, or an error where the other side succeeded);
 *  - `not-compared`: called, never compared yet;
 *  - `differs`: compared, and some answers differ;
 *  - `ok`: compared, every answer the same.
 * With the access mode unknown (the ASID is no longer in the rules) an operation is taken as possible.
 */
export function readinessState(c: AsidReadiness['codes'][number], accessMode: AccessMode): ReadinessState {
  if (!c.appRestrictedAllowed && accessMode === 'application-restricted') return 'needs-cis2-user';
  if (c.failedOnApim > 0) return 'failing';
  if (c.compared === 0) return 'not-compared';
  if (c.different > 0) return 'differs';
  return 'ok';
}

/** What to do about an operation that needs a CIS2 user, for an application-restricted ASID. */
export function needsCis2Action(aCode: string): string {
  return `APIM serves ${aCode} only to a healthcare worker signed in with CIS2. Give this system a user-restricted ASID (an APIM application with CIS2 sign-in, MIGRATION.md § 1a) for ${aCode}, or stop calling ${aCode} from this ASID.`;
}

/**
 * What a readiness row means for moving this ASID's use of an operation to APIM. Without the access mode (a report
 * of a file without --rules) an operation that is not application-restricted on APIM is taken to need a CIS2 user.
 */
export function readinessVerdict(c: AsidReadiness['codes'][number], accessMode?: AccessMode): string {
  if (!c.appRestrictedAllowed && accessMode !== 'user-restricted')
    return 'needs a CIS2 user (not app-restricted on APIM)';
  const state = readinessState(c, accessMode);
  if (state === 'failing') return 'failing on APIM';
  if (state === 'not-compared') return 'not compared yet';
  if (state === 'differs') return 'answers differ';
  return 'ok';
}

/** The summary with each ASID's access mode from the rules (where the rules name it). */
export function withAccessModes(
  summary: ComparisonSummary,
  accessModeOf: (asid: string) => AccessMode,
): ComparisonSummary {
  return {
    ...summary,
    asids: summary.asids.map((a) => {
      const mode = a.accessMode ?? accessModeOf(a.asid);
      return mode ? { ...a, accessMode: mode } : a;
    }),
  };
}

/** Formats a comparison summary as a terminal report. */
export function formatSummary(summary: ComparisonSummary): string {
  const out: string[] = [];
  const n = summary.records;
  out.push('ers-bridge comparison report');
  out.push(`${n} ${n === 1 ? 'comparison' : 'comparisons'} since ${summary.since}`);
  if (summary.dropped) out.push(`${summary.dropped} records were not written (write queue full).`);
  out.push('');

  out.push('Operations');
  if (summary.codes.length === 0) {
    out.push('  No comparisons recorded.');
  } else {
    const rows = summary.codes.map((c) => [
      c.aCode,
      clip(c.name ?? '', MAX_NAME),
      String(c.compared),
      String(c.different),
      formatRate(c.differenceRate),
      String(c.statusMismatches),
      String(c.secondaryErrors),
      `${ms(c.p50PrimaryMs)}/${ms(c.p50SecondaryMs)}`,
      topFields(c),
    ]);
    out.push(
      ...table(
        ['A-code', 'Operation', 'Compared', 'Different', 'Rate', 'Status mismatches', 'Errors', 'p50 ms', 'Top fields'],
        rows,
        new Set([2, 3, 4, 5, 6, 7]),
      ),
    );
    const notes = summary.codes.filter(
      (c) => c.noiseFields.length > 0 || c.untrackedFieldDifferences || (c.presets?.length ?? 0) > 0,
    );
    if (notes.length > 0) out.push('');
    for (const c of notes) {
      if (c.noiseFields.length > 0) {
        const shown = c.noiseFields.slice(0, 5).join(', ');
        const more = c.noiseFields.length > 5 ? ` and ${c.noiseFields.length - 5} more` : '';
        out.push(`${c.aCode} noise (differs between two answers of the primary, not counted): ${shown}${more}`);
      }
      if (c.untrackedFieldDifferences) {
        out.push(`${c.aCode}: ${c.untrackedFieldDifferences} differences in fields beyond the tracked limit`);
      }
      for (const p of c.presets ?? []) {
        out.push(`${c.aCode} ignored by preset ${p.id} (a field APIM adds by design, not counted): ${p.count}`);
      }
    }
  }
  out.push('');

  out.push('Readiness by ASID');
  const rows = summary.asids.flatMap((a) =>
    a.codes.map((c) => [
      a.asid,
      c.aCode,
      String(c.calls),
      c.appRestrictedAllowed ? 'yes' : 'no',
      String(c.compared),
      String(c.different),
      String(c.failedOnApim),
      readinessVerdict(c, a.accessMode),
    ]),
  );
  if (rows.length === 0) out.push('  No calls recorded.');
  else {
    out.push(
      ...table(
        ['ASID', 'A-code', 'Calls', 'App-restricted', 'Compared', 'Different', 'Failed on APIM', 'Verdict'],
        rows,
        new Set([2, 4, 5, 6]),
      ),
    );
  }
  return `${out.join('\n')}\n`;
}
