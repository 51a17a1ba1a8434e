/**
 * The comparison store over time: time windows (5-minute buckets for the last day, hourly before), trends, the
 * retention, reset (and the reset line that keeps a restart from bringing the figures back), and restore() reading
 * the comparison file back at start.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyEntities, callEntities, FINE_MS, latencyBin, recordEntities } from '../../../src/comparison/buckets.js';
import { ComparisonStore, failedOnApim } from '../../../src/comparison/store.js';
import type { FieldDifference } from '../../../src/comparison/types.js';
import { record, result } from './support.js';

const NOW = Date.parse('2026-02-10T12:00:00.000Z');
const MIN = 60_000;
const HOUR = 60 * MIN;
const at = (msAgo: number) => new Date(NOW - msAgo).toISOString();
const diff = (path: string): FieldDifference => ({ path, kind: 'changed', primary: 'a', secondary: 'b' });
const differing = (...paths: string[]) => result({ equal: false, differences: paths.map(diff) });

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ers-bridge-windows-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function store(extra: ConstructorParameters<typeof ComparisonStore>[0] = {}) {
  return new ComparisonStore({ now: () => NOW, ...extra });
}

describe('ComparisonStore windows', () => {
  it('a window counts only the comparisons in it, to the nearest bucket', () => {
    const s = store();
    s.add(record({ at: at(10 * MIN), result: differing('status') }));
    s.add(record({ at: at(20 * MIN) }));
    s.add(record({ at: at(3 * HOUR) }));
    s.add(record({ at: at(3 * 86_400_000), result: differing('id') }));
    const hour = s.summary({ from: NOW - HOUR, to: NOW });
    expect(hour.records).toBe(2);
    expect(hour.codes[0]).toMatchObject({ compared: 2, different: 1, topFields: [{ path: 'status', count: 1 }] });
    expect(hour.window).toEqual({ from: at(HOUR), to: at(0) });
    expect(hour.since).toBe(at(HOUR));
    expect(s.summary({ from: NOW - 86_400_000, to: NOW }).records).toBe(3);
    // Older than the 5-minute tier: read from the hourly buckets.
    const week = s.summary({ from: NOW - 7 * 86_400_000, to: NOW });
    expect(week.records).toBe(4);
    expect(week.codes[0]!.topFields.map((f) => f.path)).toEqual(['id', 'status']);
    expect(s.summary().records).toBe(4);
    // The figures found are reported to the bucket.
    expect(hour.first).toBe(new Date(Math.floor((NOW - 20 * MIN) / FINE_MS) * FINE_MS).toISOString());
  });

  it('samples and readiness follow the window too', () => {
    const s = store();
    s.add(record({ at: at(5 * HOUR), correlationId: 'old' }));
    s.add(record({ at: at(10 * MIN), correlationId: 'recent' }));
    s.recordCall('999000000001', 'A005');
    expect(s.samples('A005', 10, { from: NOW - HOUR, to: NOW }).map((r) => r.correlationId)).toEqual(['recent']);
    expect(s.samples('A005', 10).map((r) => r.correlationId)).toEqual(['recent', 'old']);
    expect(s.summary({ from: NOW - HOUR, to: NOW + 1 }).asids[0]!.codes[0]).toMatchObject({ calls: 1, compared: 1 });
  });

  it('a trend has a point per step with each A-code and ASID counted', () => {
    const s = store();
    s.add(record({ at: at(50 * MIN), result: differing('status') }));
    s.add(record({ at: at(50 * MIN) }));
    s.add(record({ at: at(10 * MIN), asid: '999000000002' }));
    const t = s.trend({ from: NOW - HOUR, to: NOW }, 12);
    expect(t.stepMs).toBe(5 * MIN);
    expect(t.points).toHaveLength(12);
    const withA005 = t.points.filter((p) => p.codes['A005']);
    expect(withA005.map((p) => [p.start, p.codes['A005']])).toEqual([
      [at(50 * MIN), { compared: 2, different: 1, ignoredByPreset: 0 }],
      [at(10 * MIN), { compared: 1, different: 0, ignoredByPreset: 0 }],
    ]);
    expect(withA005[1]!.asids['999000000002']).toEqual({ calls: 0, compared: 1, different: 0, failedOnApim: 0 });
    // Fewer points asked: steps of whole buckets.
    expect(s.trend({ from: NOW - HOUR, to: NOW }, 4).stepMs).toBe(15 * MIN);
  });

  it('drops figures older than the retention', () => {
    const s = store({ retentionMs: 2 * 86_400_000 });
    s.add(record({ at: at(3 * 86_400_000) }));
    s.add(record({ at: at(HOUR) }));
    expect(s.summary().records).toBe(1);
  });

  it('pools ASIDs beyond maxAsids per bucket under (other)', () => {
    const s = store({ maxAsids: 2 });
    for (const asid of ['1', '2', '3', '4']) s.recordCall(asid, 'A005');
    expect(s.summary().asids.map((a) => [a.asid, a.codes[0]!.calls])).toEqual([
      ['(other)', 2],
      ['1', 1],
      ['2', 1],
    ]);
  });

  it('latency medians come from a histogram: exact below 100 ms, two significant digits above', () => {
    expect([latencyBin(7.4), latencyBin(99.6), latencyBin(123), latencyBin(1234), latencyBin(-1)]).toEqual([
      7,
      100,
      120,
      1200,
      undefined,
    ]);
    const s = store();
    for (const ms of [10, 30, 20, 250]) s.add(record({ at: at(MIN), primaryMs: ms, secondaryMs: ms * 2 }));
    expect(s.summary().codes[0]).toMatchObject({ p50PrimaryMs: 20, p50SecondaryMs: 40 });
  });

  it('bounds fields and ASIDs per bucket: beyond them counted as untracked, and under (other)', () => {
    const bucket = new Map<string, number>();
    const limits = { maxFieldsPerCode: 1, maxAsids: 1 };
    applyEntities(bucket, recordEntities(record({ result: differing('a', 'b') }), limits, failedOnApim));
    applyEntities(bucket, callEntities('999000000009', 'A005', 3, limits));
    const figures = Object.fromEntries([...bucket].filter(([k]) => !/^(n|U)/.test(k)));
    expect(figures).toEqual({
      r: 1,
      'c\tA005\tcompared': 1,
      'c\tA005\tdifferent': 1,
      'c\tA005\tuntracked': 1,
      'f\tA005\ta': 1,
      'e\tA005\ta\t{"p":"a","s":"b"}': 1,
      'e\tA005\tb\t{"p":"a","s":"b"}': 1,
      'l\tA005\tp\t10': 1,
      'l\tA005\ts\t20': 1,
      'u\t999000000001\tA005\tcompared': 1,
      'u\t999000000001\tA005\tdifferent': 1,
      'u\t(other)\tA005\tcalls': 3,
    });
  });
});

describe('ComparisonStore reset and restore', () => {
  it('reset forgets everything and writes a reset line; load() and restore() start after it', async () => {
    const file = join(dir, 'c.jsonl');
    const s = store({ file });
    s.add(record({ at: at(30 * MIN), correlationId: 'before' }));
    s.recordCall('999000000001', 'A005');
    await s.flush();
    s.reset();
    expect(s.summary()).toMatchObject({ records: 0, codes: [], asids: [], resetAt: at(0), since: at(0) });
    expect(s.samples('A005')).toEqual([]);
    s.add(record({ at: at(0), correlationId: 'after' }));
    await s.close();
    const lines = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.some((l) => l.reset === true)).toBe(true);
    const loaded = await ComparisonStore.load(file, { now: () => NOW });
    expect(loaded.summary().records).toBe(1);
    expect(loaded.samples('A005').map((r) => r.correlationId)).toEqual(['after']);
    expect(loaded.summary().resetAt).toBe(at(0));
  });

  it("restore() reads the store's own file back (a restart), then keeps appending to it", async () => {
    const file = join(dir, 'c.jsonl');
    const first = store({ file, replica: 'host-a:1' });
    for (let i = 0; i < 3; i++) first.add(record({ at: at(10 * MIN), result: differing('status') }));
    first.recordCall('999000000001', 'A005');
    await first.close();

    const second = store({ file, replica: 'host-a:2' });
    expect(await second.restore()).toBe(3);
    second.add(record({ at: at(MIN) }));
    const s = second.summary();
    expect(s.records).toBe(4);
    expect(s.codes[0]).toMatchObject({ compared: 4, different: 3 });
    expect(s.asids[0]!.codes[0]).toMatchObject({ calls: 1, compared: 4 });
    expect(s.replicas).toEqual([
      { id: 'host-a:1', records: 3 },
      { id: 'host-a:2', records: 1 },
    ]);
    await second.close();
    expect((await ComparisonStore.load(file)).summary().records).toBe(4);
    expect(await store({ file: join(dir, 'none.jsonl') }).restore()).toBe(0);
  });

  it('reset confirmations are single-use and expire', () => {
    let now = NOW;
    const s = new ComparisonStore({ now: () => now });
    const token = s.issueResetToken();
    expect(s.consumeResetToken('nope')).toBe(false);
    expect(s.consumeResetToken(token)).toBe(true);
    expect(s.consumeResetToken(token)).toBe(false);
    const late = s.issueResetToken();
    now += 11 * MIN;
    expect(s.consumeResetToken(late)).toBe(false);
  });
});

describe('recordEntities of plain records (no differences): one list per kind of record', () => {
  const limits = { maxFieldsPerCode: 200, maxAsids: 100 };
  const figures = (...records: Parameters<typeof recordEntities>[0][]) => {
    const bucket = new Map<string, number>();
    for (const r of records) applyEntities(bucket, recordEntities(r, limits, failedOnApim));
    return Object.fromEntries([...bucket].filter(([k]) => !/^(n|U)/.test(k)));
  };

  it('records alike share one list, and count as many times as they are applied', () => {
    const a = record({ primaryMs: 3, secondaryMs: 4 });
    const b = record({ primaryMs: 3.2, secondaryMs: 4.4 });
    expect(recordEntities(a, limits, failedOnApim)).toBe(recordEntities(b, limits, failedOnApim));
    expect(figures(a, b)).toMatchObject({ r: 2, 'c\tA005\tcompared': 2, 'l\tA005\tp\t3': 2, 'l\tA005\ts\t4': 2 });
  });

  it('whatever a record counts differently by gives it a list of its own', () => {
    const base = record({ primaryMs: 3, secondaryMs: 4 });
    const variants = [
      record({ primaryMs: 5, secondaryMs: 4 }),
      record({ primaryMs: 3, secondaryMs: 6 }),
      record({ primaryMs: 3, secondaryMs: 4, asid: '999000000002' }),
      record({ primaryMs: 3, secondaryMs: 4, aCode: 'A006' }),
      record({ primaryMs: 3, secondaryMs: 4, replica: 'host-b:2' }),
      record({ primaryMs: 3, secondaryMs: 4, secondaryError: 'timed out after 5000 ms' }),
      record({
        primaryMs: 3,
        secondaryMs: 4,
        result: result({ equal: false, statusEqual: false, secondaryStatus: 500 }),
      }),
    ];
    const lists = new Set([base, ...variants].map((r) => recordEntities(r, limits, failedOnApim)));
    expect(lists.size).toBe(variants.length + 1);
    expect(figures(base, variants[2]!)).toMatchObject({
      'u\t999000000001\tA005\tcompared': 1,
      'u\t999000000002\tA005\tcompared': 1,
    });
    expect(figures(variants[6]!)).toMatchObject({
      'c\tA005\tdifferent': 1,
      'c\tA005\tstatus': 1,
      'u\t999000000001\tA005\tfailed': 1,
    });
  });

  it('the ASID bound is part of the kind: a list made under one bound is not reused under another', () => {
    const r = record({ primaryMs: 3, secondaryMs: 4 });
    const one = recordEntities(r, { maxFieldsPerCode: 200, maxAsids: 1 }, failedOnApim);
    const two = recordEntities(r, { maxFieldsPerCode: 200, maxAsids: 2 }, failedOnApim);
    expect(one).not.toBe(two);
    expect(two.find((e) => e.group === 'nU')?.max).toBe(2);
  });
});
