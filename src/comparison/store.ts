/**
 * The comparison store: keeps the aggregates the reports show (per A-code and per ASID), the latest records of each
 * A-code for drill-down, and — when given a file — appends every record as one JSON line.
 *
 * Bounded everywhere: per A-code at most `maxFieldsPerCode` distinct differing fields (further ones are only counted)
 * and `samplesPerCode` samples; latencies from the last 1001 records; at most `maxCodes` A-codes and `maxAsids` ASIDs
 * (further ones are pooled under `(other)`); the write queue holds at most `maxQueueBytes` (beyond that, records are
 * not written and are counted in `dropped`; the aggregates still count them).
 *
 * Writing never blocks the caller: `add()` queues the line and returns; a background drain appends batches. When the
 * file would pass `maxBytes` it is rotated: `file` → `file.1` → … → `file.<maxFiles - 1>`, the oldest deleted, so at
 * most `maxFiles` files exist (about `maxFiles × maxBytes` on disk). Call counts (`recordCall`) are written as
 * `{"at":…,"calls":{"<asid>":{"<aCode>":n}}}` lines (deltas, coalesced per batch) so that `load()` can rebuild the
 * readiness figures too. Files are created with mode 0600.
 *
 * Every record is redacted again on `add()` (redact.ts; idempotent), whatever the caller did.
 */
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { ENDPOINTS } from '../legacy/endpoints.js';
import { clipValue, DEFAULT_MAX_DIFFERENCES } from './diff.js';
import { JsonlWriter } from './jsonl-writer.js';
import { redactJson, redactText, redactValue } from './redact.js';
import type {
  AsidReadiness,
  CodeSummary,
  ComparisonRecord,
  ComparisonResult,
  ComparisonSummary,
  FieldDifference,
  FieldStats,
} from './types.js';

export interface ComparisonStoreOptions {
  /** JSON-lines file to append records to; none → in memory only. */
  file?: string | undefined;
  /** Rotate when the file would pass this size. Default 50 MiB. */
  maxBytes?: number | undefined;
  /** Files kept, the current one included. Default 5. */
  maxFiles?: number | undefined;
  /** Distinct differing fields tracked per A-code. Default 200. */
  maxFieldsPerCode?: number | undefined;
  /** Whether APIM accepts an application-restricted token for an A-code. Default: the endpoint table. */
  appRestricted?: ((aCode: string) => boolean) | undefined;
  /** The name shown for an A-code. Default: the endpoint table. */
  codeName?: ((aCode: string) => string | undefined) | undefined;
  /** Latest records kept per A-code for `samples()`. Default 20. */
  samplesPerCode?: number | undefined;
  /** Bytes of JSON lines waiting to be written before further records are dropped. Default 8 MiB. */
  maxQueueBytes?: number | undefined;
  /** Distinct A-codes / ASIDs tracked. Defaults 500 / 5000. */
  maxCodes?: number | undefined;
  maxAsids?: number | undefined;
}

export const DEFAULT_MAX_BYTES = 50 * 1024 * 1024;
export const DEFAULT_MAX_FILES = 5;
export const DEFAULT_MAX_FIELDS_PER_CODE = 200;
export const DEFAULT_SAMPLES_PER_CODE = 20;
const DEFAULT_MAX_QUEUE_BYTES = 8 * 1024 * 1024;
const LATENCY_WINDOW = 1001;
const EXAMPLES_PER_FIELD = 3;
/** Where A-codes or ASIDs beyond the limits are counted. */
export const OTHER = '(other)';

/** A fixed-capacity ring: keeps the latest `capacity` items. */
class Ring<T> {
  private items: T[] = [];
  private next = 0;
  constructor(private readonly capacity: number) {}
  push(x: T): void {
    if (this.capacity <= 0) return;
    if (this.items.length < this.capacity) this.items.push(x);
    else this.items[this.next] = x;
    this.next = (this.next + 1) % this.capacity;
  }
  /** Oldest first. */
  toArray(): T[] {
    return this.items.length < this.capacity
      ? [...this.items]
      : [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
  }
  get size(): number {
    return this.items.length;
  }
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil(sorted.length / 2) - 1];
}

interface CodeAgg {
  compared: number;
  different: number;
  statusMismatches: number;
  secondaryErrors: number;
  fields: Map<string, FieldStats>;
  untracked: number;
  noise: Set<string>;
  primaryMs: Ring<number>;
  secondaryMs: Ring<number>;
  samples: Ring<ComparisonRecord>;
}

interface UsageAgg {
  calls: number;
  compared: number;
  different: number;
  failedOnApim: number;
}

/**
 * Whether the APIM side of a comparison failed: its status is 0 (no answer) or ≥ 500, it is the secondary and
 * errored, or it differs from the other side's 2xx. False when neither side is APIM.
 */
export function failedOnApim(r: ComparisonRecord): boolean {
  const apimSecondary = r.secondary === 'apim';
  if (!apimSecondary && r.primary !== 'apim') return false;
  if (apimSecondary && r.secondaryError) return true;
  const apim = apimSecondary ? r.result.secondaryStatus : r.result.primaryStatus;
  const other = apimSecondary ? r.result.primaryStatus : r.result.secondaryStatus;
  if (apim === 0 || apim >= 500) return true;
  return other >= 200 && other < 300 && apim !== other;
}

function redactDifference(d: FieldDifference): FieldDifference {
  const out: FieldDifference = { path: redactText(d.path), kind: d.kind };
  if ('primary' in d) out.primary = clipValue(redactValue(d.path, d.primary));
  if ('secondary' in d) out.secondary = clipValue(redactValue(d.path, d.secondary));
  return out;
}

const RESULT_KEYS = new Set([
  'equal',
  'statusEqual',
  'primaryStatus',
  'secondaryStatus',
  'bodyKind',
  'differences',
  'noise',
  'primarySize',
  'secondarySize',
  'primarySha256',
  'secondarySha256',
  'truncated',
  'omittedDifferences',
]);
const RECORD_KEYS = new Set([
  'at',
  'aCode',
  'route',
  'method',
  'asid',
  'mode',
  'primary',
  'secondary',
  'result',
  'primaryMs',
  'secondaryMs',
  'secondaryError',
  'correlationId',
]);

/** Fields a newer record type may carry beyond the known ones: kept, deep-redacted. */
function extras(o: object, known: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (!known.has(k)) out[k] = redactJson(v);
  return out;
}

/**
 * Redacts a record for storage (idempotent): paths, difference values, noise paths, route, error text and any
 * unknown fields. Digests and sizes are kept as they are (they are not personal, and hex digests would otherwise
 * look like secrets). At most `maxDifferences` differences are kept; the rest are counted as omitted.
 */
export function redactRecord(r: ComparisonRecord, maxDifferences = DEFAULT_MAX_DIFFERENCES): ComparisonRecord {
  const res = r.result;
  const kept = res.differences.slice(0, maxDifferences);
  const omitted = (res.omittedDifferences ?? 0) + (res.differences.length - kept.length);
  const result: ComparisonResult = {
    ...extras(res, RESULT_KEYS),
    equal: res.equal,
    statusEqual: res.statusEqual,
    primaryStatus: res.primaryStatus,
    secondaryStatus: res.secondaryStatus,
    bodyKind: res.bodyKind,
    differences: kept.map(redactDifference),
    noise: res.noise.slice(0, maxDifferences).map(redactText),
  };
  for (const k of ['primarySize', 'secondarySize', 'primarySha256', 'secondarySha256', 'truncated'] as const) {
    if (res[k] !== undefined) (result as unknown as Record<string, unknown>)[k] = res[k];
  }
  if (omitted > 0) result.omittedDifferences = omitted;
  const out: ComparisonRecord = {
    ...extras(r, RECORD_KEYS),
    at: r.at,
    aCode: redactText(r.aCode),
    route: redactText(r.route),
    method: r.method,
    asid: redactText(r.asid),
    mode: r.mode,
    primary: r.primary,
    secondary: r.secondary,
    result,
    primaryMs: r.primaryMs,
    secondaryMs: r.secondaryMs,
  };
  if (r.secondaryError !== undefined) out.secondaryError = redactText(r.secondaryError);
  if (r.correlationId !== undefined) out.correlationId = redactText(r.correlationId);
  return out;
}

function endpointAppRestricted(aCode: string): boolean {
  return ENDPOINTS.some((e) => e.code === aCode && e.appRestricted);
}

function endpointName(aCode: string): string | undefined {
  return ENDPOINTS.find((e) => e.code === aCode)?.name;
}

export class ComparisonStore {
  private readonly file: string | undefined;
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private readonly maxFieldsPerCode: number;
  private readonly samplesPerCode: number;
  private readonly maxQueueBytes: number;
  private readonly maxCodes: number;
  private readonly maxAsids: number;
  private readonly appRestricted: (aCode: string) => boolean;
  private readonly codeName: (aCode: string) => string | undefined;

  private since: string;
  private sinceSet = false;
  private records = 0;
  private readonly codes = new Map<string, CodeAgg>();
  private readonly usage = new Map<string, Map<string, UsageAgg>>();

  // Writing
  private readonly writer: JsonlWriter | undefined;
  private pendingCalls = new Map<string, Map<string, number>>();
  private closed = false;
  /** Malformed records refused by `add()`. */
  rejected = 0;

  /** Records not written because the queue was full or a write failed. */
  get dropped(): number {
    return this.writer?.dropped ?? 0;
  }
  /** Failed writes (the file system said no); the last error message is in `lastWriteError`. */
  get writeErrors(): number {
    return this.writer?.writeErrors ?? 0;
  }
  get lastWriteError(): string | undefined {
    return this.writer?.lastWriteError;
  }

  constructor(opts: ComparisonStoreOptions = {}) {
    this.file = opts.file;
    this.maxBytes = Math.max(1, opts.maxBytes ?? DEFAULT_MAX_BYTES);
    this.maxFiles = Math.max(1, Math.floor(opts.maxFiles ?? DEFAULT_MAX_FILES));
    this.maxFieldsPerCode = Math.max(0, opts.maxFieldsPerCode ?? DEFAULT_MAX_FIELDS_PER_CODE);
    this.samplesPerCode = Math.max(0, opts.samplesPerCode ?? DEFAULT_SAMPLES_PER_CODE);
    this.maxQueueBytes = Math.max(0, opts.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES);
    this.maxCodes = Math.max(1, opts.maxCodes ?? 500);
    this.maxAsids = Math.max(1, opts.maxAsids ?? 5000);
    this.appRestricted = opts.appRestricted ?? endpointAppRestricted;
    this.codeName = opts.codeName ?? endpointName;
    this.since = new Date().toISOString();
    this.writer = this.file
      ? new JsonlWriter({
          file: this.file,
          maxBytes: this.maxBytes,
          maxFiles: this.maxFiles,
          maxQueueBytes: this.maxQueueBytes,
          extraLine: () => this.takeCalls(),
        })
      : undefined;
  }

  private takeCalls(): string | undefined {
    if (this.pendingCalls.size === 0) return undefined;
    const calls: Record<string, Record<string, number>> = {};
    for (const [asid, m] of this.pendingCalls) calls[asid] = Object.fromEntries(m);
    this.pendingCalls = new Map();
    return JSON.stringify({ at: new Date().toISOString(), calls });
  }

  /** Records one comparison: redacts it, counts it, keeps it as a sample, queues it for the file. Never throws. */
  add(record: ComparisonRecord): void {
    let r: ComparisonRecord;
    try {
      r = redactRecord(record);
    } catch {
      // A malformed record (not from compareAnswers) is not counted, and never breaks the caller.
      this.rejected++;
      return;
    }
    this.ingest(r);
    if (!this.closed) this.writer?.append(JSON.stringify(r));
  }

  /** Counts one call of an A-code by an ASID (compared or not), for migration readiness. */
  recordCall(asid: string, aCode: string): void {
    this.countCalls(asid, aCode, 1);
    if (this.writer && !this.closed) {
      const a = this.pendingCalls.get(asid) ?? new Map<string, number>();
      a.set(aCode, (a.get(aCode) ?? 0) + 1);
      this.pendingCalls.set(asid, a);
      this.writer.kick();
    }
  }

  summary(): ComparisonSummary {
    const codes: CodeSummary[] = [...this.codes.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([aCode, c]) => {
        const s: CodeSummary = {
          aCode,
          compared: c.compared,
          different: c.different,
          differenceRate: c.compared === 0 ? 0 : c.different / c.compared,
          statusMismatches: c.statusMismatches,
          secondaryErrors: c.secondaryErrors,
          topFields: [...c.fields.values()]
            .sort((x, y) => y.count - x.count || x.path.localeCompare(y.path))
            .map((f) => ({ path: f.path, count: f.count, examples: f.examples.map((e) => ({ ...e })) })),
          noiseFields: [...c.noise].sort(),
        };
        const name = this.codeName(aCode);
        if (name !== undefined) s.name = name;
        const p1 = median(c.primaryMs.toArray());
        const p2 = median(c.secondaryMs.toArray());
        if (p1 !== undefined) s.p50PrimaryMs = p1;
        if (p2 !== undefined) s.p50SecondaryMs = p2;
        if (c.untracked > 0) s.untrackedFieldDifferences = c.untracked;
        return s;
      });
    const asids: AsidReadiness[] = [...this.usage.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([asid, m]) => ({
        asid,
        codes: [...m.entries()]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([aCode, u]) => ({ aCode, appRestrictedAllowed: this.appRestricted(aCode), ...u })),
      }));
    const out: ComparisonSummary = { since: this.since, records: this.records, codes, asids };
    if (this.dropped > 0) out.dropped = this.dropped;
    return out;
  }

  /** The latest (redacted) records of an A-code, newest first; at most `limit`. */
  samples(aCode: string, limit?: number): ComparisonRecord[] {
    const all = this.codes.get(aCode)?.samples.toArray().reverse() ?? [];
    return limit === undefined ? all : all.slice(0, Math.max(0, Math.floor(limit)));
  }

  /** Resolves when everything queued so far is written (or has failed to be). */
  async flush(): Promise<void> {
    await this.writer?.flush();
  }

  /** Flushes and closes the file; later records are still counted but not written. */
  async close(): Promise<void> {
    await this.writer?.close();
    this.closed = true;
  }

  /**
   * Rebuilds a store from a JSON-lines file and its rotated siblings (`file.<n>`, oldest first). Lines that are not
   * records or call counts are skipped. The returned store does not write (it is for reports).
   */
  static async load(file: string, opts: Omit<ComparisonStoreOptions, 'file'> = {}): Promise<ComparisonStore> {
    const store = new ComparisonStore({ ...opts, file: undefined });
    const dir = dirname(file);
    const base = basename(file);
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch {
      names = [];
    }
    const rotated = names
      .map((n) => (n.startsWith(`${base}.`) ? Number(n.slice(base.length + 1)) : Number.NaN))
      .filter((n) => Number.isInteger(n) && n > 0)
      .sort((a, b) => b - a)
      .map((n) => join(dir, `${base}.${n}`));
    const files = [...rotated, ...(names.includes(base) ? [file] : [])];
    if (files.length === 0) throw new Error(`No comparison records at ${file}`);
    for (const f of files) {
      const lines = createInterface({
        input: createReadStream(f, { encoding: 'utf8' }),
        crlfDelay: Number.POSITIVE_INFINITY,
      });
      for await (const line of lines) store.loadLine(line);
    }
    return store;
  }

  private loadLine(line: string): void {
    if (line.trim() === '') return;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof o !== 'object' || o === null) return;
    const obj = o as Record<string, unknown>;
    if (typeof obj.calls === 'object' && obj.calls !== null) {
      for (const [asid, codes] of Object.entries(obj.calls as Record<string, unknown>)) {
        if (typeof codes !== 'object' || codes === null) continue;
        for (const [aCode, n] of Object.entries(codes as Record<string, unknown>)) {
          if (typeof n === 'number' && n > 0) this.countCalls(asid, aCode, n);
        }
      }
      return;
    }
    const r = obj as unknown as ComparisonRecord;
    if (typeof r.aCode === 'string' && typeof r.asid === 'string' && typeof r.result === 'object' && r.result) {
      if (!Array.isArray(r.result.differences) || !Array.isArray(r.result.noise)) return;
      this.ingest(redactRecord(r));
    }
  }

  // ---- aggregation

  private codeAgg(aCode: string): CodeAgg {
    let key = aCode;
    if (!this.codes.has(key) && this.codes.size >= this.maxCodes) key = OTHER;
    let c = this.codes.get(key);
    if (!c) {
      c = {
        compared: 0,
        different: 0,
        statusMismatches: 0,
        secondaryErrors: 0,
        fields: new Map(),
        untracked: 0,
        noise: new Set(),
        primaryMs: new Ring(LATENCY_WINDOW),
        secondaryMs: new Ring(LATENCY_WINDOW),
        samples: new Ring(this.samplesPerCode),
      };
      this.codes.set(key, c);
    }
    return c;
  }

  private usageAgg(asid: string, aCode: string): UsageAgg {
    let a = asid;
    if (!this.usage.has(a) && this.usage.size >= this.maxAsids) a = OTHER;
    let m = this.usage.get(a);
    if (!m) {
      m = new Map();
      this.usage.set(a, m);
    }
    let code = aCode;
    if (!m.has(code) && m.size >= this.maxCodes) code = OTHER;
    let u = m.get(code);
    if (!u) {
      u = { calls: 0, compared: 0, different: 0, failedOnApim: 0 };
      m.set(code, u);
    }
    return u;
  }

  private countCalls(asid: string, aCode: string, n: number): void {
    this.usageAgg(asid, aCode).calls += n;
  }

  private ingest(r: ComparisonRecord): void {
    if (!this.sinceSet && typeof r.at === 'string') {
      this.since = r.at;
      this.sinceSet = true;
    }
    this.records++;
    const c = this.codeAgg(r.aCode);
    const res = r.result;
    c.compared++;
    if (!res.equal) c.different++;
    if (!res.statusEqual) c.statusMismatches++;
    if (r.secondaryError !== undefined) c.secondaryErrors++;
    const seen = new Set<string>();
    for (const d of res.differences) {
      if (seen.has(d.path)) continue;
      seen.add(d.path);
      let f = c.fields.get(d.path);
      if (!f) {
        if (c.fields.size >= this.maxFieldsPerCode) {
          c.untracked++;
          continue;
        }
        f = { path: d.path, count: 0, examples: [] };
        c.fields.set(d.path, f);
      }
      f.count++;
      if (f.examples.length < EXAMPLES_PER_FIELD) {
        const e: { primary?: unknown; secondary?: unknown } = {};
        if ('primary' in d) e.primary = d.primary;
        if ('secondary' in d) e.secondary = d.secondary;
        f.examples.push(e);
      }
    }
    for (const p of res.noise) if (c.noise.size < this.maxFieldsPerCode || c.noise.has(p)) c.noise.add(p);
    if (Number.isFinite(r.primaryMs)) c.primaryMs.push(r.primaryMs);
    if (Number.isFinite(r.secondaryMs)) c.secondaryMs.push(r.secondaryMs);
    c.samples.push(r);
    const u = this.usageAgg(r.asid, r.aCode);
    u.compared++;
    if (!res.equal) u.different++;
    if (failedOnApim(r)) u.failedOnApim++;
  }
}
