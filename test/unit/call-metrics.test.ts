/**
 * The per-call metrics are counted outside prom-client's labelled metrics (issue 15: no per-call label hashing), so
 * what /metrics shows of them must be exactly what prom-client's own Counter and Histogram would show.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CallCounter, CallHistogram } from '../../src/admin/call-metrics.js';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const LABELS = ['a_code', 'side'] as const;
const CALLS: Array<[string, string, number]> = [
  ['A005', 'apim', 0.004],
  ['A005', 'apim', 0.005], // on a bound: counted in it (le is "less or equal")
  ['A005', 'legacy', 0.3],
  ['A004', 'apim', 12],
  ['A004', 'apim', 45], // beyond the last bound: only +Inf
  ['A005', 'apim', 0.07],
];

async function exposition(registry: Registry, name: string): Promise<string> {
  return registry.getSingleMetricAsString(name);
}

describe('call metrics', () => {
  it('a histogram reads out as prom-client’s Histogram would, bucket by bucket, sum and count', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const reference = new Histogram({
      name: 'h',
      help: 'x',
      labelNames: LABELS,
      buckets: BUCKETS,
      registers: [theirs],
    });
    const fast = new CallHistogram(ours, 'h', 'x', LABELS, BUCKETS);
    for (const [a, side, s] of CALLS) {
      reference.observe({ a_code: a, side }, s);
      fast.observe([a, side], s);
    }
    expect(await exposition(ours, 'h')).toBe(await exposition(theirs, 'h'));
  });

  it('a counter reads out as prom-client’s Counter would, one line per label set', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const reference = new Counter({ name: 'c', help: 'x', labelNames: LABELS, registers: [theirs] });
    const fast = new CallCounter(ours, 'c', 'x', LABELS);
    for (const [a, side] of CALLS) {
      reference.inc({ a_code: a, side });
      fast.inc([a, side]);
    }
    expect(await exposition(ours, 'c')).toBe(await exposition(theirs, 'c'));
    expect(await exposition(ours, 'c')).toContain('c{a_code="A004",side="apim"} 2');
  });

  it('reset() empties it, as a registry reset does', async () => {
    const ours = new Registry();
    const fast = new CallCounter(ours, 'c', 'x', LABELS);
    fast.inc(['A005', 'apim']);
    ours.resetMetrics();
    expect(await exposition(ours, 'c')).toBe('# HELP c x\n# TYPE c counter');
  });
});
