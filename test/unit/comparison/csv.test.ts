/**
 * The comparison summary as CSV (src/comparison/csv.ts): RFC 4180 quoting, CRLF records, one rectangular table of
 * operations and readiness, and text a spreadsheet would run as a formula defused.
 */
import { describe, expect, it } from 'vitest';
import { csvField, SUMMARY_CSV_COLUMNS, summaryCsv } from '../../../src/comparison/csv.js';
import type { ComparisonSummary } from '../../../src/comparison/types.js';

/** A minimal RFC 4180 parser, to read back what summaryCsv wrote. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  if (field !== '' || row.length > 0) throw new Error('the last record does not end in CRLF');
  return rows;
}

const SUMMARY: ComparisonSummary = {
  since: '2026-01-05T10:00:00.000Z',
  records: 3,
  codes: [
    {
      aCode: 'A005',
      name: 'Retrieve referral request',
      compared: 3,
      different: 1,
      differenceRate: 1 / 3,
      statusMismatches: 0,
      secondaryErrors: 1,
      topFields: [
        { path: 'entry[0].resource.note, "text"', count: 2, examples: [] },
        { path: '=HYPERLINK("http://evil.example")', count: 1, examples: [] },
        { path: 'multi\nline', count: 1, examples: [] },
      ],
      noiseFields: ['meta.lastUpdated'],
      p50PrimaryMs: 12.4,
      p50SecondaryMs: 30.6,
    },
  ],
  asids: [
    {
      asid: '999000000001',
      codes: [
        { aCode: 'A005', calls: 4, appRestrictedAllowed: true, compared: 3, different: 1, failedOnApim: 0 },
        { aCode: 'A011', calls: 1, appRestrictedAllowed: false, compared: 0, different: 0, failedOnApim: 0 },
      ],
    },
  ],
};

describe('csvField', () => {
  it.each([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\r\nlines', '"two\r\nlines"'],
    ['', ''],
  ])('%j → %j', (input, output) => {
    expect(csvField(input)).toBe(output);
  });

  it('numbers as they are; undefined and non-finite numbers empty', () => {
    expect(csvField(0)).toBe('0');
    expect(csvField(0.25)).toBe('0.25');
    expect(csvField(undefined)).toBe('');
    expect(csvField(Number.NaN)).toBe('');
  });

  it.each(['=1+1', '+1', '-1', '@SUM(A1)', '\tx'])(
    'text a spreadsheet would evaluate (%j) is prefixed with a quote',
    (v) => {
      expect(csvField(v).replace(/^"/, '').startsWith(`'`)).toBe(true);
    },
  );
});

describe('summaryCsv', () => {
  const rows = parseCsv(summaryCsv(SUMMARY));

  it('a header, then one row per A-code and one per ASID and A-code, all as wide as the header', () => {
    expect(rows[0]).toEqual([...SUMMARY_CSV_COLUMNS]);
    expect(rows).toHaveLength(1 + 1 + 2);
    for (const r of rows) expect(r).toHaveLength(SUMMARY_CSV_COLUMNS.length);
    expect(rows.slice(1).map((r) => r[0])).toEqual(['operation', 'readiness', 'readiness']);
  });

  it('the operation row: counts, the rate as a fraction, whole milliseconds, fields quoted and defused', () => {
    const row = Object.fromEntries(SUMMARY_CSV_COLUMNS.map((c, i) => [c, rows[1]![i]]));
    expect(row).toMatchObject({
      a_code: 'A005',
      operation: 'Retrieve referral request',
      asid: '',
      compared: '3',
      different: '1',
      difference_rate: '0.3333',
      status_mismatches: '0',
      secondary_errors: '1',
      p50_primary_ms: '12',
      p50_secondary_ms: '31',
      top_fields: 'entry[0].resource.note, "text" (2); =HYPERLINK("http://evil.example") (1); multi\nline (1)',
      noise_fields: 'meta.lastUpdated',
      calls: '',
      verdict: '',
    });
  });

  it('a field beginning with = is defused as a whole cell', () => {
    const onlyFormula: ComparisonSummary = {
      ...SUMMARY,
      codes: [{ ...SUMMARY.codes[0]!, topFields: [{ path: '=cmd', count: 1, examples: [] }] }],
    };
    const [, op] = parseCsv(summaryCsv(onlyFormula));
    expect(op![SUMMARY_CSV_COLUMNS.indexOf('top_fields')]).toBe(`'=cmd (1)`);
  });

  it('the readiness rows: the ASID, its calls and the verdict the terminal report gives', () => {
    const byCode = (code: string) =>
      Object.fromEntries(
        SUMMARY_CSV_COLUMNS.map((c, i) => [c, rows.find((r) => r[0] === 'readiness' && r[1] === code)![i]]),
      );
    expect(byCode('A005')).toMatchObject({
      asid: '999000000001',
      calls: '4',
      app_restricted: 'yes',
      compared: '3',
      different: '1',
      failed_on_apim: '0',
      verdict: 'answers differ',
      operation: '',
    });
    expect(byCode('A011')).toMatchObject({
      app_restricted: 'no',
      verdict: 'needs a CIS2 user (not app-restricted on APIM)',
    });
  });

  it('an empty summary gives the header alone', () => {
    const text = summaryCsv({ since: '2026-01-05T10:00:00.000Z', records: 0, codes: [], asids: [] });
    expect(text).toBe(`${SUMMARY_CSV_COLUMNS.join(',')}\r\n`);
  });

  it('records end in CRLF; no bare LF outside quoted fields', () => {
    const text = summaryCsv(SUMMARY);
    const unquoted = text.replace(/"(?:[^"]|"")*"/g, '');
    expect(unquoted).not.toMatch(/[^\r]\n/);
    expect(text.endsWith('\r\n')).toBe(true);
  });
});
