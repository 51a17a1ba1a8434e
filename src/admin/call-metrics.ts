/**
 * The per-call metrics (a counter and latency histograms with labels) as prom-client metrics of their own: counting a
 * call is one string key and a Map lookup. prom-client's own labelled metrics hash and validate the label object on
 * every increment and observation (≈ 4 µs a call, issue 15); these do that once per label set. The registry reads
 * them through `get()` in prom-client's shape, so /metrics, the cluster aggregator and tests see ordinary metrics.
 */
import type { Registry } from 'prom-client';

/** What prom-client's registry reads of a metric (its MetricObjectWithValues, without the parts unused here). */
export interface MetricReadout {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: Array<{ metricName?: string; labels: Record<string, string | number>; value: number }>;
}

/** Label values joined: no label value holds a NUL (they are A-codes, statuses, modes, reasons and ASIDs). */
const SEP = '\u0000';

type Labels<L extends string> = Record<L, string>;

abstract class LabelledMetric<L extends string, Entry> {
  protected readonly entries = new Map<string, { labels: Labels<L>; value: Entry }>();
  readonly aggregator = 'sum' as const;

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {
    // prom-client's registry takes any object with name, help, type and get(); see Registry.registerMetric.
    registry.registerMetric(this as never);
  }

  /** The entry of a label set, made by `fresh()` the first time (a method, not a closure made on every call). */
  protected entry(values: readonly string[]): Entry {
    const key = values.join(SEP);
    let e = this.entries.get(key);
    if (!e) {
      const labels = {} as Labels<L>;
      this.labelNames.forEach((n, i) => {
        labels[n] = values[i] ?? '';
      });
      e = { labels, value: this.fresh() };
      this.entries.set(key, e);
    }
    return e.value;
  }

  protected abstract fresh(): Entry;

  reset(): void {
    this.entries.clear();
  }
}

/** A counter whose label values are given in `labelNames` order. */
export class CallCounter<L extends string> extends LabelledMetric<L, { n: number }> {
  readonly type = 'counter' as const;

  protected fresh(): { n: number } {
    return { n: 0 };
  }

  inc(values: readonly string[]): void {
    this.entry(values).n++;
  }

  async get(): Promise<MetricReadout> {
    const values = [...this.entries.values()].map((e) => ({ labels: e.labels, value: e.value.n }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** A histogram (seconds) whose label values are given in `labelNames` order. */
export class CallHistogram<L extends string> extends LabelledMetric<
  L,
  { buckets: Float64Array; sum: number; count: number }
> {
  readonly type = 'histogram' as const;

  constructor(
    registry: Registry,
    name: string,
    help: string,
    labelNames: readonly L[],
    private readonly bounds: readonly number[],
  ) {
    super(registry, name, help, labelNames);
  }

  protected fresh(): { buckets: Float64Array; sum: number; count: number } {
    return { buckets: new Float64Array(this.bounds.length), sum: 0, count: 0 };
  }

  observe(values: readonly string[], seconds: number): void {
    if (!Number.isFinite(seconds)) return;
    const e = this.entry(values);
    e.sum += seconds;
    e.count++;
    // The first bucket that holds it (prom-client's buckets are cumulative only when read out, as here).
    for (let i = 0; i < this.bounds.length; i++) {
      if (seconds <= this.bounds[i]!) {
        e.buckets[i] = (e.buckets[i] ?? 0) + 1;
        break;
      }
    }
  }

  async get(): Promise<MetricReadout> {
    const values: MetricReadout['values'] = [];
    for (const { labels, value } of this.entries.values()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += value.buckets[i] ?? 0;
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...labels }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: value.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: value.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: value.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
