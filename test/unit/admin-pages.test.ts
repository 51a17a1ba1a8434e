/**
 * The admin pages' pure parts: time windows and zones, readiness that understands access modes, outcomes grouped,
 * and the inline SVG charts (no style attribute, a data point per step with figures).
 */
import { describe, expect, it } from 'vitest';
import { lineChart } from '../../src/admin/charts.js';
import { describeMode } from '../../src/admin/facts.js';
import { asidVerdict, groupOutcomes } from '../../src/admin/pages.js';
import {
  formatLocal,
  parseQueryTime,
  serverTimeZone,
  toLocalInput,
  validTimeZone,
  windowOf,
} from '../../src/admin/time.js';
import { readinessState, readinessVerdict } from '../../src/comparison/report.js';
import type { AsidReadiness } from '../../src/comparison/types.js';
import { rulesFor } from '../helpers/rules.js';
import { record, result } from './comparison/support.js';

const NOW = Date.parse('2026-07-01T12:00:00.000Z');

describe('time zones and windows', () => {
  it('shows times in the zone with its name: Europe/London by default, GMT in winter, BST in summer', () => {
    expect(formatLocal('2026-01-06T09:30:00.000Z', 'Europe/London')).toBe('6 Jan 2026, 09:30 GMT');
    expect(formatLocal('2026-07-06T09:30:00.000Z', 'Europe/London')).toBe('6 Jul 2026, 10:30 BST');
    expect(formatLocal('2026-07-06T09:30:00.000Z', 'UTC')).toBe('6 Jul 2026, 09:30 UTC');
    expect(serverTimeZone({})).toBe('Europe/London');
    expect(serverTimeZone({ TZ: 'UTC' })).toBe('UTC');
    expect(serverTimeZone({ TZ: 'Not/AZone' })).toBe('Europe/London');
    expect(validTimeZone('Europe/London')).toBe(true);
    expect(validTimeZone('<script>')).toBe(false);
  });

  it('reads local date-times in the zone (as a browser date-time input sends them) and ISO times with a zone', () => {
    expect(new Date(parseQueryTime('2026-07-06T10:30', 'Europe/London')).toISOString()).toBe(
      '2026-07-06T09:30:00.000Z',
    );
    expect(new Date(parseQueryTime('2026-01-06T10:30', 'Europe/London')).toISOString()).toBe(
      '2026-01-06T10:30:00.000Z',
    );
    expect(new Date(parseQueryTime('2026-07-06T10:30:00+02:00', 'UTC')).toISOString()).toBe('2026-07-06T08:30:00.000Z');
    expect(parseQueryTime('yesterday', 'UTC')).toBeNaN();
    expect(toLocalInput(Date.parse('2026-07-06T09:30:00Z'), 'Europe/London')).toBe('2026-07-06T10:30');
  });

  it('a window is a preset, or from/to; anything else is refused with the reason', () => {
    expect(windowOf({}, NOW, 'UTC')).toEqual({ window: undefined, preset: 'all' });
    expect(windowOf({ window: 'hour' }, NOW, 'UTC')).toEqual({
      window: { from: NOW - 3_600_000, to: NOW },
      preset: 'hour',
    });
    expect(windowOf({ window: 'week' }, NOW, 'UTC')).toMatchObject({ preset: 'week' });
    expect(windowOf({ window: 'all' }, NOW, 'UTC')).toEqual({ window: undefined, preset: 'all' });
    expect(windowOf({ from: '2026-07-01T09:00' }, NOW, 'Europe/London')).toEqual({
      window: { from: Date.parse('2026-07-01T08:00:00Z'), to: NOW },
      preset: 'custom',
    });
    expect(windowOf({ window: 'month' }, NOW, 'UTC')).toEqual({
      error: 'window must be one of hour, day, week or all',
    });
    expect(windowOf({ window: 'day', from: '2026-07-01T09:00' }, NOW, 'UTC')).toHaveProperty('error');
    expect(windowOf({ from: 'soon' }, NOW, 'UTC')).toHaveProperty('error');
    expect(windowOf({ from: '2026-07-01T10:00Z', to: '2026-07-01T09:00Z' }, NOW, 'UTC')).toEqual({
      error: 'from must be before to',
    });
    expect(windowOf({ from: ['a', 'b'] }, NOW, 'UTC')).toHaveProperty('error');
  });
});

describe('readiness and access modes', () => {
  const code = (aCode: string, appRestrictedAllowed: boolean, compared = 0) => ({
    aCode,
    calls: 3,
    appRestrictedAllowed,
    compared,
    different: 0,
    failedOnApim: 0,
  });

  it('an operation APIM serves only to CIS2 users is its own state for an application-restricted ASID', () => {
    expect(readinessState(code('A038', false), 'application-restricted')).toBe('needs-cis2-user');
    expect(readinessState(code('A038', false), 'user-restricted')).toBe('not-compared');
    expect(readinessState(code('A038', false, 2), 'user-restricted')).toBe('ok');
    expect(readinessState(code('A038', false), undefined)).toBe('not-compared');
    expect(readinessVerdict(code('A038', false, 2), 'user-restricted')).toBe('ok');
    expect(readinessVerdict(code('A038', false))).toBe('needs a CIS2 user (not app-restricted on APIM)');
  });

  it('an application-restricted ASID is ready except what needs a CIS2 user, with the action listed', () => {
    const asid: AsidReadiness = {
      asid: '999000000001',
      accessMode: 'application-restricted',
      codes: [code('A005', true, 4), code('A038', false)],
    };
    expect(asidVerdict(asid)).toEqual({ ready: false, readyExcept: true, reasons: [], needsCis2: ['A038'] });
    // The same ASID, access mode unknown (no longer in the rules): A038 is just not compared yet.
    expect(asidVerdict({ ...asid, accessMode: undefined })).toMatchObject({
      ready: false,
      readyExcept: false,
      reasons: ['A038: not compared yet'],
    });
    // A user-restricted ASID can use A038: it must be compared.
    expect(asidVerdict({ ...asid, accessMode: 'user-restricted' }).reasons).toEqual(['A038: not compared yet']);
    expect(asidVerdict({ ...asid, codes: [code('A005', true, 4)] })).toMatchObject({ ready: true, needsCis2: [] });
  });
});

describe('pages', () => {
  it('groups the same outcome seen many times into one, latest kept, with how many', () => {
    const same = (at: string) =>
      record({
        at,
        result: result({
          equal: false,
          differences: [{ path: 'meta.lastUpdated', kind: 'changed', primary: 'a', secondary: 'b' }],
        }),
      });
    const groups = groupOutcomes([
      same('2026-01-01T10:03:00Z'),
      same('2026-01-01T10:02:00Z'),
      record({ at: '2026-01-01T10:01:30Z' }),
      same('2026-01-01T10:01:00Z'),
    ]);
    expect(groups.map((g) => [g.record.at, g.count, g.first])).toEqual([
      ['2026-01-01T10:03:00Z', 3, '2026-01-01T10:01:00Z'],
      ['2026-01-01T10:01:30Z', 1, '2026-01-01T10:01:30Z'],
    ]);
  });

  it('names each mode in words from the rules', () => {
    const rules = rulesFor({
      apim: {
        baseUrl: 'https://int.api.service.nhs.uk/referrals/FHIR',
        tokenUrl: 'https://int.api.service.nhs.uk/oauth2/token',
      },
      asids: { '999000000001': {} },
      modes: {
        default: 'translate',
        routes: { A005: { mode: 'canary', canary: { percent: 10 } }, A008: 'shadow', A004: 'passthrough' },
      },
    });
    expect(describeMode(rules, 'A001')).toBeUndefined();
    expect(describeMode(rules, 'A007')).toBe('translate: APIM answers');
    expect(describeMode(rules, 'A004')).toBe('passthrough: the legacy host answers');
    expect(describeMode(rules, 'A008')).toBe('shadow: the legacy host answers, APIM is compared (100% of calls)');
    expect(describeMode(rules, 'A005')).toBe('canary: APIM answers 10% of sessions, the legacy host the rest');
  });

  it('a chart is inline SVG without style attributes, a circle per step with figures, a gap where there are none', () => {
    const from = Date.parse('2026-01-01T10:00:00Z');
    const svg = lineChart({
      id: 'c',
      title: 'Difference rate <over> time',
      description: 'd',
      yLabel: 'Difference rate',
      from,
      to: from + 4 * 300_000,
      stepMs: 300_000,
      tz: 'UTC',
      series: [
        {
          key: 'A005',
          label: 'A005',
          points: [0, 1, 2, 3].map((i) => ({
            t: from + i * 300_000,
            value: i === 2 ? undefined : i / 4,
            n: 4,
            title: `p${i}`,
          })),
        },
      ],
    }).toString();
    expect(svg).not.toMatch(/\sstyle=|<script/i);
    expect(svg).toContain('Difference rate &#60;over&#62; time');
    const points = [...svg.matchAll(/<circle [^>]*data-start="([^"]+)" data-value="([^"]+)" data-n="(\d+)"/g)].map(
      (m) => [m[1], m[2], m[3]],
    );
    expect(points).toEqual([
      ['2026-01-01T10:00:00.000Z', '0', '4'],
      ['2026-01-01T10:05:00.000Z', '0.25', '4'],
      ['2026-01-01T10:15:00.000Z', '0.75', '4'],
    ]);
    expect(svg.match(/<polyline/g)).toHaveLength(1); // the gap splits the line; a lone point has no line
  });
});
