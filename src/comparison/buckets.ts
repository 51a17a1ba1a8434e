/**
 * Comparison figures in time buckets, one model for both stores: the process's (store.ts, a Map per bucket) and the
 * shared one on Redis (redis-comparisons.ts, a hash per bucket, written by one Lua script). A record or a call count
 * becomes a list of counter increments ("entities", below); a bucket is a flat map of counters; a window's figures
 * are its buckets merged, then summarised — so both stores count, bound and report exactly alike.
 *
 * Two tiers: 5-minute buckets for the recent past (kept 26 hours: "last hour" and "last day" windows are exact to 5
 * minutes) and 1-hour buckets for the whole retention (`comparison.retentionDays`). A window is rounded out to whole
 * buckets of the tier it is read from.
 *
 * Counter names (fields), separated by a tab (no path, A-code, ASID or example holds a raw tab: paths quote odd
 * keys as JSON strings, and the rest is cleaned below):
 *
 *   r                                  records
 *   R ⇥ replica                        records by process (hostname:pid), at most MAX_REPLICAS, then `(other)`
 *   c ⇥ code ⇥ compared|different|status|errors|preset|untracked
 *   f ⇥ code ⇥ path                    records in which the field differed (at most maxFieldsPerCode per code and
 *                                      bucket; further ones counted in `untracked`)
 *   e ⇥ code ⇥ path ⇥ {"p":…,"s":…}    how often that (redacted) pair of values was seen (at most 3 pairs per field)
 *   z ⇥ code ⇥ path                    noise fields
 *   p ⇥ code ⇥ preset id               records in which a known-difference preset matched
 *   l ⇥ code ⇥ p|s ⇥ bin               latency histogram (exact below 100 ms, two significant digits above)
 *   u ⇥ asid ⇥ code ⇥ calls|compared|different|failed   readiness (at most maxAsids ASIDs, then `(other)`)
 *   n…, U…                             the bounds' own counters and markers (not figures)
 */
import type {
  AsidReadiness,
  CodeSummary,
  ComparisonRecord,
  ComparisonSummary,
  ComparisonTrend,
  FieldStats,
  TimeWindow,
  TrendAsidCounts,
  TrendCodeCounts,
} from './types.js';

/** Where A-codes or ASIDs beyond the limits are counted. */
export const OTHER_KEY = '(other)';
export const FINE_MS = 5 * 60_000;
export const COARSE_MS = 60 * 60_000;
/** How long the 5-minute tier is kept. */
export const FINE_RETENTION_MS = 26 * 60 * 60_000;
export const MAX_REPLICAS = 64;
export const EXAMPLES_PER_FIELD = 3;

const T = '\t';
const A_CODE = /^A\d{3}$/;

export interface BucketLimits {
  maxFieldsPerCode: number;
  maxAsids: number;
}

/**
 * Increments, bounded: when `marker` is set, the entity is admitted if the marker exists already or `group` (a
 * counter of admitted entities) is below `max`; an admitted entity adds `by` to each `f`, one not admitted to each
 * `fb` instead ('' for nothing). An admitted entity's marker is set afterwards if no op created it.
 */
export interface Entity {
  marker: string;
  group: string;
  max: number;
  ops: Array<{ f: string; fb: string; by: number }>;
}

const always = (ops: Array<[string, number]>): Entity => ({
  marker: '',
  group: '',
  max: 0,
  ops: ops.map(([f, by]) => ({ f, fb: '', by })),
});

/** A-codes as counted: anything that is not an A-code is `(other)`. */
export function codeKey(aCode: string): string {
  return A_CODE.test(aCode) ? aCode : OTHER_KEY;
}

/** A name as a counter part: no tabs or newlines, bounded. */
function clean(s: string, max = 2048): string {
  const t = s.replace(/[\t\r\n]/g, ' ');
  return t.length > max ? t.slice(0, max) : t;
}

/** The latency bin of a duration: whole milliseconds below 100, two significant digits above. */
export function latencyBin(ms: number): number | undefined {
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  return ms < 100 ? Math.round(ms) : Number(ms.toPrecision(2));
}

function usage(asid: string, code: string, counts: Array<[string, number]>, limits: BucketLimits): Entity {
  const a = clean(asid, 64);
  return {
    marker: `U${T}${a}`,
    group: 'nU',
    max: limits.maxAsids,
    ops: counts.map(([k, by]) => ({
      f: `u${T}${a}${T}${code}${T}${k}`,
      fb: `u${T}${OTHER_KEY}${T}${code}${T}${k}`,
      by,
    })),
  };
}

/** Whether the APIM side of a comparison failed (see store.ts `failedOnApim`). */
export type FailedOnApim = (r: ComparisonRecord) => boolean;

/**
 * The increments of plain records (no differences, noise or presets: most records), by everything they depend on.
 * Entities are read-only once made, so records alike share one list; the same strings each time also keep their
 * hashes for the bucket maps (issue 15). Cleared when full: keys come from records (ASIDs, latencies).
 */
const PLAIN = new Map<string, Entity[]>();
const MAX_PLAIN = 4096;

/** The increments one (redacted) comparison record makes. */
export function recordEntities(r: ComparisonRecord, limits: BucketLimits, failed: FailedOnApim): Entity[] {
  const res = r.result;
  const plain = res.differences.length === 0 && res.noise.length === 0 && !(res.ignoredByPreset?.length ?? 0);
  // The key's parts are tab-separated: only values without a tab make an unambiguous key.
  const keyable = A_CODE.test(r.aCode) && !r.asid.includes(T) && !(r.replica ?? '').includes(T);
  if (!plain || !keyable) return buildRecordEntities(r, limits, failed);
  const key = [
    r.aCode,
    r.replica ?? '',
    r.asid,
    res.equal,
    res.statusEqual,
    r.secondaryError !== undefined,
    failed(r),
    latencyBin(r.primaryMs),
    latencyBin(r.secondaryMs),
    limits.maxAsids,
  ].join(T);
  let entities = PLAIN.get(key);
  if (!entities) {
    if (PLAIN.size >= MAX_PLAIN) PLAIN.clear();
    entities = buildRecordEntities(r, limits, failed);
    PLAIN.set(key, entities);
  }
  return entities;
}

function buildRecordEntities(r: ComparisonRecord, limits: BucketLimits, failed: FailedOnApim): Entity[] {
  const code = codeKey(r.aCode);
  const res = r.result;
  const out: Entity[] = [always([['r', 1]])];
  if (r.replica) {
    const id = clean(r.replica, 200);
    out.push({
      marker: `R${T}${id}`,
      group: 'nR',
      max: MAX_REPLICAS,
      ops: [{ f: `R${T}${id}`, fb: `R${T}${OTHER_KEY}`, by: 1 }],
    });
  }
  const c = (k: string): [string, number] => [`c${T}${code}${T}${k}`, 1];
  const counts: Array<[string, number]> = [c('compared')];
  if (!res.equal) counts.push(c('different'));
  if (!res.statusEqual) counts.push(c('status'));
  if (r.secondaryError !== undefined) counts.push(c('errors'));
  if (res.ignoredByPreset && res.ignoredByPreset.length > 0) counts.push(c('preset'));
  out.push(always(counts));
  const seen = new Set<string>();
  for (const d of res.differences) {
    const path = clean(d.path);
    if (seen.has(path)) continue;
    seen.add(path);
    const f = `f${T}${code}${T}${path}`;
    out.push({
      marker: f,
      group: `nF${T}${code}`,
      max: limits.maxFieldsPerCode,
      ops: [{ f, fb: c('untracked')[0], by: 1 }],
    });
    const pair: { p?: unknown; s?: unknown } = {};
    if ('primary' in d) pair.p = d.primary;
    if ('secondary' in d) pair.s = d.secondary;
    const e = `e${T}${code}${T}${path}${T}${JSON.stringify(pair)}`;
    out.push({ marker: e, group: `nE${T}${code}${T}${path}`, max: EXAMPLES_PER_FIELD, ops: [{ f: e, fb: '', by: 1 }] });
  }
  for (const p of new Set(res.noise.map((n) => clean(n)))) {
    const z = `z${T}${code}${T}${p}`;
    out.push({ marker: z, group: `nZ${T}${code}`, max: limits.maxFieldsPerCode, ops: [{ f: z, fb: '', by: 1 }] });
  }
  const presets: Array<[string, number]> = (res.ignoredByPreset ?? []).map((h) => [
    `p${T}${code}${T}${clean(h.id, 200)}`,
    1,
  ]);
  const lat: Array<[string, number]> = [];
  const bp = latencyBin(r.primaryMs);
  const bs = latencyBin(r.secondaryMs);
  if (bp !== undefined) lat.push([`l${T}${code}${T}p${T}${bp}`, 1]);
  if (bs !== undefined) lat.push([`l${T}${code}${T}s${T}${bs}`, 1]);
  if (presets.length + lat.length > 0) out.push(always([...presets, ...lat]));
  const u: Array<[string, number]> = [['compared', 1]];
  if (!res.equal) u.push(['different', 1]);
  if (failed(r)) u.push(['failed', 1]);
  out.push(usage(r.asid, code, u, limits));
  return out;
}

/** The increments of `n` calls of an A-code by an ASID (readiness). */
export function callEntities(asid: string, aCode: string, n: number, limits: BucketLimits): Entity[] {
  return [usage(asid, codeKey(aCode), [['calls', n]], limits)];
}

/** Applies entities to a bucket held in memory, as the Lua script does on Redis. */
export function applyEntities(bucket: Map<string, number>, entities: readonly Entity[]): void {
  for (const e of entities) {
    let admitted = true;
    if (e.marker !== '' && !bucket.has(e.marker)) {
      const n = bucket.get(e.group) ?? 0;
      if (n < e.max) bucket.set(e.group, n + 1);
      else admitted = false;
    }
    for (const op of e.ops) {
      const f = admitted ? op.f : op.fb;
      if (f !== '') bucket.set(f, (bucket.get(f) ?? 0) + op.by);
    }
    if (admitted && e.marker !== '' && !bucket.has(e.marker)) bucket.set(e.marker, 1);
  }
}

/**
 * The same on Redis, atomically per bucket. KEYS: the bucket hashes (one per tier the record goes to). ARGV: TTL in
 * ms, the number of entities, then per entity: marker, group, max, number of ops, and per op: field, fallback, by.
 */
export const APPLY_ENTITIES_LUA = `
for k = 1, #KEYS do
  local key = KEYS[k]
  local i = 3
  for e = 1, tonumber(ARGV[2]) do
    local marker, group, max, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
    i = i + 4
    local admitted = true
    if marker ~= '' and redis.call('hexists', key, marker) == 0 then
      if tonumber(redis.call('hget', key, group) or '0') < max then redis.call('hincrby', key, group, 1)
      else admitted = false end
    end
    for o = 1, n do
      local f = ARGV[i]
      if not admitted then f = ARGV[i + 1] end
      if f ~= '' then redis.call('hincrby', key, f, ARGV[i + 2]) end
      i = i + 3
    end
    if admitted and marker ~= '' and redis.call('hexists', key, marker) == 0 then redis.call('hset', key, marker, 1) end
  end
  redis.call('pexpire', key, ARGV[1])
end
return 1
`;

/** Entities flattened into the script's arguments (after the TTL). */
export function entityArgs(entities: readonly Entity[]): Array<string | number> {
  const out: Array<string | number> = [entities.length];
  for (const e of entities) {
    out.push(e.marker, e.group, e.max, e.ops.length);
    for (const op of e.ops) out.push(op.f, op.fb, op.by);
  }
  return out;
}

// ---- reading

interface FieldAcc {
  count: number;
  /** Pair JSON → count, in first-seen order. */
  examples: Map<string, number>;
}

interface CodeAcc {
  compared: number;
  different: number;
  status: number;
  errors: number;
  preset: number;
  untracked: number;
  fields: Map<string, FieldAcc>;
  noise: Set<string>;
  presets: Map<string, number>;
  latP: Map<number, number>;
  latS: Map<number, number>;
}

interface UsageAcc {
  calls: number;
  compared: number;
  different: number;
  failed: number;
}

/** The figures of several buckets merged. */
export class Figures {
  records = 0;
  readonly replicas = new Map<string, number>();
  readonly codes = new Map<string, CodeAcc>();
  readonly usage = new Map<string, Map<string, UsageAcc>>();
  /** Start of the earliest and end of the latest bucket with figures. */
  first: number | undefined;
  last: number | undefined;

  private code(code: string): CodeAcc {
    let c = this.codes.get(code);
    if (!c) {
      c = {
        compared: 0,
        different: 0,
        status: 0,
        errors: 0,
        preset: 0,
        untracked: 0,
        fields: new Map(),
        noise: new Set(),
        presets: new Map(),
        latP: new Map(),
        latS: new Map(),
      };
      this.codes.set(code, c);
    }
    return c;
  }

  private use(asid: string, code: string): UsageAcc {
    let m = this.usage.get(asid);
    if (!m) {
      m = new Map();
      this.usage.set(asid, m);
    }
    let u = m.get(code);
    if (!u) {
      u = { calls: 0, compared: 0, different: 0, failed: 0 };
      m.set(code, u);
    }
    return u;
  }

  /** Adds one bucket's counters (start and width place it in time). */
  add(entries: Iterable<readonly [string, number | string]>, start: number, width: number): void {
    let any = false;
    const examples: Array<[string, string, string, number]> = [];
    for (const [name, value] of entries) {
      const n = Number(value);
      if (!Number.isFinite(n) || n === 0) continue;
      const parts = name.split(T);
      switch (parts[0]) {
        case 'r':
          this.records += n;
          any = true;
          break;
        case 'R':
          this.replicas.set(parts[1]!, (this.replicas.get(parts[1]!) ?? 0) + n);
          break;
        case 'c': {
          const c = this.code(parts[1]!);
          const k = parts[2];
          if (k === 'compared') c.compared += n;
          else if (k === 'different') c.different += n;
          else if (k === 'status') c.status += n;
          else if (k === 'errors') c.errors += n;
          else if (k === 'preset') c.preset += n;
          else if (k === 'untracked') c.untracked += n;
          break;
        }
        case 'f': {
          const c = this.code(parts[1]!);
          const path = parts[2]!;
          const f = c.fields.get(path) ?? { count: 0, examples: new Map() };
          f.count += n;
          c.fields.set(path, f);
          break;
        }
        case 'e':
          examples.push([parts[1]!, parts[2]!, parts[3]!, n]);
          break;
        case 'z':
          this.code(parts[1]!).noise.add(parts[2]!);
          break;
        case 'p': {
          const c = this.code(parts[1]!);
          c.presets.set(parts[2]!, (c.presets.get(parts[2]!) ?? 0) + n);
          break;
        }
        case 'l': {
          const c = this.code(parts[1]!);
          const bins = parts[2] === 'p' ? c.latP : c.latS;
          const bin = Number(parts[3]);
          if (Number.isFinite(bin)) bins.set(bin, (bins.get(bin) ?? 0) + n);
          break;
        }
        case 'u': {
          const u = this.use(parts[1]!, parts[2]!);
          const k = parts[3];
          if (k === 'calls') u.calls += n;
          else if (k === 'compared') u.compared += n;
          else if (k === 'different') u.different += n;
          else if (k === 'failed') u.failed += n;
          any = true;
          break;
        }
        default:
        // the bounds' own counters and markers
      }
    }
    // Examples after their fields: an example of a field not tracked in this bucket is not shown.
    for (const [code, path, pair, n] of examples) {
      const f = this.codes.get(code)?.fields.get(path);
      if (f) f.examples.set(pair, (f.examples.get(pair) ?? 0) + n);
    }
    if (any) {
      this.first = this.first === undefined ? start : Math.min(this.first, start);
      this.last = this.last === undefined ? start + width : Math.max(this.last, start + width);
    }
  }
}

/** The lower median of a histogram. */
function histogramMedian(bins: Map<number, number>): number | undefined {
  let total = 0;
  for (const n of bins.values()) total += n;
  if (total <= 0) return undefined;
  const target = Math.ceil(total / 2);
  let seen = 0;
  for (const [bin, n] of [...bins.entries()].sort((a, b) => a[0] - b[0])) {
    seen += n;
    if (seen >= target) return bin;
  }
  return undefined;
}

function examplesOf(f: FieldAcc): FieldStats['examples'] {
  return [...f.examples.entries()]
    .map(([pair, count], i) => ({ pair, count, i }))
    .sort((a, b) => b.count - a.count || a.i - b.i)
    .slice(0, EXAMPLES_PER_FIELD)
    .map(({ pair, count }) => {
      let p: { p?: unknown; s?: unknown } = {};
      try {
        p = JSON.parse(pair) as { p?: unknown; s?: unknown };
      } catch {
        p = {};
      }
      const e: FieldStats['examples'][number] = {};
      if ('p' in p) e.primary = p.p;
      if ('s' in p) e.secondary = p.s;
      e.count = count;
      return e;
    });
}

export interface SummaryOptions {
  since: string;
  maxFieldsPerCode: number;
  appRestricted: (aCode: string) => boolean;
  codeName: (aCode: string) => string | undefined;
}

/** A ComparisonSummary of merged figures. */
export function summarise(fig: Figures, o: SummaryOptions): ComparisonSummary {
  const codes: CodeSummary[] = [...fig.codes.entries()]
    .filter(([, c]) => c.compared > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([aCode, c]) => {
      const ranked = [...c.fields.entries()].sort((x, y) => y[1].count - x[1].count || x[0].localeCompare(y[0]));
      const kept = ranked.slice(0, o.maxFieldsPerCode);
      const cut = ranked.slice(o.maxFieldsPerCode).reduce((n, [, f]) => n + f.count, 0);
      const s: CodeSummary = {
        aCode,
        compared: c.compared,
        different: c.different,
        differenceRate: c.compared === 0 ? 0 : c.different / c.compared,
        statusMismatches: c.status,
        secondaryErrors: c.errors,
        topFields: kept.map(([path, f]) => ({ path, count: f.count, examples: examplesOf(f) })),
        noiseFields: [...c.noise].sort(),
      };
      const name = o.codeName(aCode);
      if (name !== undefined) s.name = name;
      const p1 = histogramMedian(c.latP);
      const p2 = histogramMedian(c.latS);
      if (p1 !== undefined) s.p50PrimaryMs = p1;
      if (p2 !== undefined) s.p50SecondaryMs = p2;
      if (c.untracked + cut > 0) s.untrackedFieldDifferences = c.untracked + cut;
      if (c.preset > 0) {
        s.ignoredByPreset = c.preset;
        s.presets = [...c.presets.entries()]
          .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
          .map(([id, count]) => ({ id, count }));
      }
      return s;
    });
  const asids: AsidReadiness[] = [...fig.usage.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([asid, m]) => ({
      asid,
      codes: [...m.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([aCode, u]) => ({
          aCode,
          calls: u.calls,
          appRestrictedAllowed: o.appRestricted(aCode),
          compared: u.compared,
          different: u.different,
          failedOnApim: u.failed,
        })),
    }));
  const out: ComparisonSummary = { since: o.since, records: fig.records, codes, asids };
  if (fig.first !== undefined) out.first = new Date(fig.first).toISOString();
  if (fig.last !== undefined) out.last = new Date(fig.last).toISOString();
  if (fig.replicas.size > 0) {
    out.replicas = [...fig.replicas.entries()]
      .sort((a, b) => a[0].localeCompare(b[0]))
      .map(([id, records]) => ({ id, records }));
  }
  return out;
}

/** The tier a window is read from: 5-minute buckets while they are kept for the whole window, else hourly. */
export function tierFor(window: TimeWindow | undefined, now: number): number {
  if (window && window.from >= now - FINE_RETENTION_MS + FINE_MS) return FINE_MS;
  return COARSE_MS;
}

/** Whether a bucket [start, start + width) overlaps the window. */
export function overlaps(start: number, width: number, window: TimeWindow | undefined): boolean {
  return window === undefined || (start + width > window.from && start < window.to);
}

/**
 * A trend of at most `maxPoints` steps over the window from bucket counters (only `c` and `u` fields are read): the
 * step is a whole number of buckets.
 */
export function trendOf(
  buckets: Iterable<readonly [number, Iterable<readonly [string, number | string]>]>,
  width: number,
  window: TimeWindow,
  maxPoints = 48,
): ComparisonTrend {
  const from = Math.floor(window.from / width) * width;
  const to = Math.max(from + width, Math.ceil(window.to / width) * width);
  const count = Math.ceil((to - from) / width);
  const per = Math.max(1, Math.ceil(count / Math.max(1, maxPoints)));
  const stepMs = per * width;
  const steps = Math.ceil((to - from) / stepMs);
  const points: ComparisonTrend['points'] = Array.from({ length: steps }, (_, i) => ({
    start: new Date(from + i * stepMs).toISOString(),
    codes: {},
    asids: {},
  }));
  for (const [start, entries] of buckets) {
    if (start < from || start >= to) continue;
    const p = points[Math.floor((start - from) / stepMs)];
    if (!p) continue;
    for (const [name, value] of entries) {
      const n = Number(value);
      if (!Number.isFinite(n) || n === 0) continue;
      const parts = name.split(T);
      if (parts[0] === 'c') {
        const k = parts[2];
        if (k !== 'compared' && k !== 'different' && k !== 'preset') continue;
        const code = parts[1] ?? '';
        const c: TrendCodeCounts = p.codes[code] ?? { compared: 0, different: 0, ignoredByPreset: 0 };
        p.codes[code] = c;
        if (k === 'compared') c.compared += n;
        else if (k === 'different') c.different += n;
        else c.ignoredByPreset += n;
      } else if (parts[0] === 'u') {
        const asid = parts[1] ?? '';
        const a: TrendAsidCounts = p.asids[asid] ?? { calls: 0, compared: 0, different: 0, failedOnApim: 0 };
        p.asids[asid] = a;
        const k = parts[3];
        if (k === 'calls') a.calls += n;
        else if (k === 'compared') a.compared += n;
        else if (k === 'different') a.different += n;
        else if (k === 'failed') a.failedOnApim += n;
      }
    }
  }
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), stepMs, points };
}
