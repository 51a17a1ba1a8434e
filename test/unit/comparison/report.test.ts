import { describe, expect, it } from 'vitest';
import { formatRate, formatSummary, readinessVerdict } from '../../../src/comparison/report.js';
import { ComparisonStore } from '../../../src/comparison/store.js';
import type { ComparisonSummary } from '../../../src/comparison/types.js';
import { record, result } from './support.js';

function summary(): ComparisonSummary {
  const store = new ComparisonStore({ appRestricted: (c) => c !== 'A010' });
  const changed = (path: string) => ({ path, kind: 'changed' as const, primary: 'a', secondary: 'b' });
  for (let i = 0; i < 8; i++) {
    store.recordCall('999000000001', 'A005');
    store.add(
      record({
        aCode: 'A005',
        primaryMs: 10 + i,
        secondaryMs: 40 + i,
        result:
          i < 3
            ? result({ equal: false, differences: [changed('entry[0].resource.meta.lastUpdated'), changed('id')] })
            : result({ noise: ['meta.versionId'] }),
      }),
    );
  }
  store.add(
    record({
      aCode: 'A006',
      result: result({ equal: false, statusEqual: false, secondaryStatus: 0 }),
      secondaryError: 'timed out',
    }),
  );
  store.add(
    record({
      aCode: 'A006',
      result: result({
        equal: false,
        statusEqual: false,
        secondaryStatus: 500,
        differences: [changed('status'), changed('issue[0].code')],
      }),
    }),
  );
  store.add(
    record({
      aCode: 'A006',
      result: result({ equal: false, differences: [changed('issue[0].code'), changed('x'), changed('y')] }),
    }),
  );
  store.recordCall('999000000002', 'A010');
  return store.summary();
}

describe('formatSummary', () => {
  const s = summary();
  const text = formatSummary(s);
  const lines = text.split('\n');

  it('has a row per A-code with the counts, the rate as a percentage and the top 3 fields', () => {
    const a005 = lines.find((l) => l.startsWith('A005'))!;
    expect(a005).toMatch(/^A005\s+Retrieve referral request\s+8\s+3\s+37\.5%\s+0\s+0\s+13\/43\s+/);
    expect(a005).toContain('entry[0].resource.meta.lastUpdated (3), id (3)');
    const a006 = lines.find((l) => l.startsWith('A006'))!;
    expect(a006).toMatch(/^A006\s+Retrieve attachment\s+3\s+3\s+100\.0%\s+2\s+1\s+/);
    expect(a006).toContain('issue[0].code (2), status (1), x (1)');
    expect(a006).not.toContain('y (1)'); // only the top 3
  });

  it('aligns the table columns (p50 is the lower median)', () => {
    const header = lines.find((l) => l.startsWith('A-code'))!;
    const rate = header.indexOf('Rate') + 'Rate'.length;
    for (const l of lines.filter((x) => /^A00\d {2,}/.test(x))) expect(l.slice(rate - 1, rate)).toBe('%');
  });

  it('lists noise fields, and readiness per ASID with a verdict', () => {
    expect(text).toContain('A005 noise (differs between two answers of the primary, not counted): meta.versionId');
    expect(text).toContain('Readiness by ASID');
    expect(lines.find((l) => l.startsWith('999000000001') && l.includes('A006'))).toMatch(
      /^999000000001\s+A006\s+0\s+yes\s+3\s+3\s+2\s+failing on APIM$/,
    );
    expect(lines.find((l) => l.startsWith('999000000001') && l.includes('A005'))).toMatch(
      /8\s+yes\s+8\s+3\s+0\s+answers differ$/,
    );
    expect(lines.find((l) => l.startsWith('999000000002'))).toMatch(/A010\s+1\s+no\s+0\s+0\s+0\s+needs a CIS2 user/);
  });

  it('says so when there is nothing to report', () => {
    const empty = formatSummary({ since: '2026-01-01T00:00:00.000Z', records: 0, codes: [], asids: [] });
    expect(empty).toContain('0 comparisons since 2026-01-01T00:00:00.000Z');
    expect(empty).toContain('No comparisons recorded.');
    expect(empty).toContain('No calls recorded.');
  });

  it('formats rates and verdicts', () => {
    expect(formatRate(0)).toBe('0.0%');
    expect(formatRate(1 / 3)).toBe('33.3%');
    const c = { aCode: 'A005', calls: 1, appRestrictedAllowed: true, compared: 1, different: 0, failedOnApim: 0 };
    expect(readinessVerdict(c)).toBe('ok');
    expect(readinessVerdict({ ...c, compared: 0 })).toBe('not compared yet');
  });
});
