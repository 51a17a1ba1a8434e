/**
 * The comparison store of this process: the figures the reports and the admin pages show (per A-code and per ASID,
 * in time buckets: buckets.ts), the latest records of each A-code for drill-down, and — when given a file — every
 * record appended as one JSON line.
 *
 * Bounded everywhere: per A-code and bucket at most `maxFieldsPerCode` distinct differing fields (further ones are
 * only counted) and three distinct examples per field (each with how often it was seen); `samplesPerCode` samples per
 * A-code; at most `maxAsids` ASIDs per bucket (further ones are pooled under `(other)`); buckets older than
 * `retentionMs` are dropped; the write queue holds at most `maxQueueBytes` (beyond that, records are not written and
 * are counted in `dropped`; the figures still count them).
 *
 * Writing never blocks the caller: `add()` queues the line and returns; a background drain appends batches. When the
 * file would pass `maxBytes` it is rotated: `file` → `file.1` → … → `file.<maxFiles - 1>`, the oldest deleted, so at
 * most `maxFiles` files exist (about `maxFiles × maxBytes` on disk). Call counts (`recordCall`) are written as
 * `{"at":…,"calls":{"<asid>":{"<aCode>":n}}}` lines (deltas, coalesced per batch) so that `load()` and `restore()`
 * rebuild the readiness figures too; a reset is written as `{"at":…,"reset":true}`, so what came before it is not
 * read back. Files are created with mode 0600.
 *
 * With the Redis session store a shared mirror (redis-comparisons.ts) gets every record and call count too, and
 * `view()` is the mirror: every replica's page shows the same figures. With the memory store, `restore()` reads the
 * comparison file back at start, so a restart keeps the figures.
 *
 * Every record is redacted again on `add()` (redact.ts; idempotent), whatever the caller did.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { LRUCache } from 'lru-cache';
import { ENDPOINTS } from '../legacy/endpoints.js';
import { copyWith } from '../runtime/copy-with.js';
import {
  applyEntities,
  COARSE_MS,
  callEntities,
  type Entity,
  FINE_MS,
  FINE_RETENTION_MS,
  Figures,
  OTHER_KEY,
  overlaps,
  recordEntities,
  summarise,
  tierFor,
  trendOf,
} from './buckets.js';
import { clipValue, DEFAULT_MAX_DIFFERENCES } from './diff.js';
import { JsonlWriter } from './jsonl-writer.js';
import { redactJson, redactText, redactValue } from './redact.js';
import type {
  ComparisonReader,
  ComparisonRecord,
  ComparisonResult,
  ComparisonSummary,
  ComparisonTrend,
  FieldDifference,
  TimeWindow,
} from './types.js';

export interface ComparisonStoreOptions {
  /** JSON-lines file to append records to; none → in memory only. */
  file?: string | undefined;
  /** Rotate when the file would pass this size. Default 50 MiB. */
  maxBytes?: number | undefined;
  /** Files kept, the current one included. Default 5. */
  maxFiles?: number | undefined;
  /** Distinct differing fields tracked per A-code (and bucket). Default 200. */
  maxFieldsPerCode?: number | undefined;
  /** Whether APIM accepts an application-restricted token for an A-code. Default: the endpoint table. */
  appRestricted?: ((aCode: string) => boolean) | undefined;
  /** The name shown for an A-code. Default: the endpoint table. */
  codeName?: ((aCode: string) => string | undefined) | undefined;
  /** Latest records kept per A-code for `samples()`. Default 20. */
  samplesPerCode?: number | undefined;
  /** Bytes of JSON lines waiting to be written before further records are dropped. Default 8 MiB. */
  maxQueueBytes?: number | undefined;
  /** Distinct A-codes with samples kept / ASIDs counted per bucket. Defaults 500 / 5000. */
  maxCodes?: number | undefined;
  maxAsids?: number | undefined;
  /** Figures older than this are dropped. Default: kept (a report of a whole file). */
  retentionMs?: number | undefined;
  /** This process (hostname:pid), written into each record it makes. */
  replica?: string | undefined;
  /** The time now (epoch ms), for windows and retention. Default Date.now. */
  now?: (() => number) | undefined;
}

export const DEFAULT_MAX_BYTES = 50 * 1024 * 1024;
export const DEFAULT_MAX_FILES = 5;
export const DEFAULT_MAX_FIELDS_PER_CODE = 200;
export const DEFAULT_SAMPLES_PER_CODE = 20;
const DEFAULT_MAX_QUEUE_BYTES = 8 * 1024 * 1024;
/** Where A-codes or ASIDs beyond the limits are counted. */
export const OTHER = OTHER_KEY;
/** How long a reset confirmation is valid. */
export const RESET_TOKEN_TTL_MS = 10 * 60_000;

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
  'ignoredByPreset',
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
  'replica',
]);

/** Fields a newer record type may carry beyond the known ones: kept, deep-redacted. */
function extras(o: object, known: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // for…in with an own-property check: the same keys as Object.entries, without an array of pairs per record.
  for (const k in o) {
    if (!known.has(k) && Object.hasOwn(o, k)) out[k] = redactJson((o as Record<string, unknown>)[k]);
  }
  return out;
}

/**
 * `redactText` of the fields that take few values (A-code, route template, ASID, replica name): every record
 * carries them, so each value is redacted once rather than on every record (issue 15). Bounded: at most 512 values
 * of at most 256 characters are remembered (least recently used dropped); longer ones are redacted each time.
 */
const FEW_VALUED = new LRUCache<string, string>({ max: 512 });
function redactFewValued(s: string): string {
  if (s.length > 256) return redactText(s);
  let out = FEW_VALUED.get(s);
  if (out === undefined) {
    out = redactText(s);
    FEW_VALUED.set(s, out);
  }
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
  if (Array.isArray(res.ignoredByPreset) && res.ignoredByPreset.length > 0) {
    result.ignoredByPreset = res.ignoredByPreset.slice(0, 50).map((p) => ({
      id: redactText(String(p.id)),
      fields: Number.isFinite(p.fields) ? p.fields : 0,
      paths: (Array.isArray(p.paths) ? p.paths : []).slice(0, 20).map((x) => redactText(String(x))),
    }));
  }
  const out: ComparisonRecord = {
    ...extras(r, RECORD_KEYS),
    at: r.at,
    aCode: redactFewValued(r.aCode),
    route: redactFewValued(r.route),
    method: r.method,
    asid: redactFewValued(r.asid),
    mode: r.mode,
    primary: r.primary,
    secondary: r.secondary,
    result,
    primaryMs: r.primaryMs,
    secondaryMs: r.secondaryMs,
  };
  if (r.secondaryError !== undefined) out.secondaryError = redactText(r.secondaryError);
  if (r.correlationId !== undefined) out.correlationId = redactText(r.correlationId);
  if (r.replica !== undefined) out.replica = redactFewValued(String(r.replica));
  return out;
}

function endpointAppRestricted(aCode: string): boolean {
  return ENDPOINTS.some((e) => e.code === aCode && e.appRestricted);
}

function endpointName(aCode: string): string | undefined {
  return ENDPOINTS.find((e) => e.code === aCode)?.name;
}

/** Where a store's records and call counts also go: the shared comparisons on Redis (redis-comparisons.ts). */
export interface ComparisonMirror {
  add(record: ComparisonRecord): void;
  recordCall(asid: string, aCode: string): void;
  /** What the admin surface reads: every replica's figures. */
  reader(): ComparisonReader;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Single-use reset confirmations of one process: random, hashed, expiring, at most 32 outstanding. */
export class LocalResetTokens {
  private readonly tokens = new Map<string, number>();
  constructor(private readonly now: () => number) {}
  issue(): string {
    const token = randomBytes(24).toString('base64url');
    const now = this.now();
    for (const [k, exp] of this.tokens) if (exp <= now) this.tokens.delete(k);
    while (this.tokens.size >= 32) this.tokens.delete(this.tokens.keys().next().value!);
    this.tokens.set(hashToken(token), now + RESET_TOKEN_TTL_MS);
    return token;
  }
  consume(token: string): boolean {
    const k = hashToken(token);
    const exp = this.tokens.get(k);
    this.tokens.delete(k);
    return exp !== undefined && exp > this.now();
  }
}

/** The files a comparison file stands for: its rotated siblings, oldest first, then the file itself if it exists. */
export async function comparisonFiles(file: string): Promise<{ files: string[]; exists: boolean }> {
  const base = basename(file);
  let names: string[] = [];
  try {
    names = await readdir(dirname(file));
  } catch {
    names = [];
  }
  const rotated = names
    .map((n) => (n.startsWith(`${base}.`) ? Number(n.slice(base.length + 1)) : Number.NaN))
    .filter((n) => Number.isInteger(n) && n > 0)
    .sort((a, b) => b - a)
    .map((n) => join(dirname(file), `${base}.${n}`));
  const exists = names.includes(base);
  return { files: exists ? [...rotated, file] : rotated, exists };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export class ComparisonStore implements ComparisonReader {
  private readonly file: string | undefined;
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private readonly maxFieldsPerCode: number;
  private readonly samplesPerCode: number;
  private readonly maxQueueBytes: number;
  private readonly maxCodes: number;
  private readonly maxAsids: number;
  private readonly retentionMs: number;
  private readonly appRestricted: (aCode: string) => boolean;
  private readonly codeName: (aCode: string) => string | undefined;
  private readonly now: () => number;
  /** This process, as written into its records. */
  readonly replica: string | undefined;

  private since: string;
  private sinceSet = false;
  private resetAt: string | undefined;
  /** Buckets by start: 5-minute (recent) and hourly (the whole retention). */
  private readonly fine = new Map<number, Map<string, number>>();
  private readonly coarse = new Map<number, Map<string, number>>();
  private readonly sampled = new Map<string, Ring<ComparisonRecord>>();
  private lastPrune = 0;
  private mirror: ComparisonMirror | undefined;
  private readonly resetTokens: LocalResetTokens;

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
    this.retentionMs = opts.retentionMs ?? Number.POSITIVE_INFINITY;
    this.appRestricted = opts.appRestricted ?? endpointAppRestricted;
    this.codeName = opts.codeName ?? endpointName;
    this.now = opts.now ?? Date.now;
    this.replica = opts.replica;
    this.resetTokens = new LocalResetTokens(this.now);
    this.since = new Date(this.now()).toISOString();
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

  /** The bounds of each bucket. */
  get limits(): { maxFieldsPerCode: number; maxAsids: number } {
    return { maxFieldsPerCode: this.maxFieldsPerCode, maxAsids: this.maxAsids };
  }

  /** Sends every record and call count to a shared mirror too; `view()` is then the mirror's reader. */
  share(mirror: ComparisonMirror): void {
    this.mirror = mirror;
  }

  /** What the admin surface reads: the shared figures when there is a mirror, else this process's. */
  view(): ComparisonReader {
    return this.mirror?.reader() ?? this;
  }

  private takeCalls(): string | undefined {
    if (this.pendingCalls.size === 0) return undefined;
    const calls: Record<string, Record<string, number>> = {};
    for (const [asid, m] of this.pendingCalls) calls[asid] = Object.fromEntries(m);
    this.pendingCalls = new Map();
    return JSON.stringify({
      at: new Date(this.now()).toISOString(),
      calls,
      ...(this.replica ? { replica: this.replica } : {}),
    });
  }

  /** Records one comparison: redacts it, counts it, keeps it as a sample, queues it for the file. Never throws. */
  add(record: ComparisonRecord): void {
    let r: ComparisonRecord;
    try {
      r = redactRecord(
        this.replica && record.replica === undefined ? copyWith(record, 'replica', this.replica) : record,
      );
    } catch {
      // A malformed record (not from compareAnswers) is not counted, and never breaks the caller.
      this.rejected++;
      return;
    }
    this.ingest(r);
    if (!this.closed) this.writer?.append(JSON.stringify(r));
    this.mirror?.add(r);
  }

  /** Counts one call of an A-code by an ASID (compared or not), for migration readiness. */
  recordCall(asid: string, aCode: string): void {
    this.countCalls(asid, aCode, 1, this.now());
    this.mirror?.recordCall(asid, aCode);
    if (this.writer && !this.closed) {
      const a = this.pendingCalls.get(asid) ?? new Map<string, number>();
      a.set(aCode, (a.get(aCode) ?? 0) + 1);
      this.pendingCalls.set(asid, a);
      this.writer.kick();
    }
  }

  /** The figures of a window (default: everything kept). */
  summary(window?: TimeWindow): ComparisonSummary {
    const width = tierFor(window, this.now());
    const fig = new Figures();
    for (const [start, b] of width === FINE_MS ? this.fine : this.coarse) {
      if (overlaps(start, width, window)) fig.add(b, start, width);
    }
    const out = summarise(fig, {
      since: window ? new Date(window.from).toISOString() : this.since,
      maxFieldsPerCode: this.maxFieldsPerCode,
      appRestricted: this.appRestricted,
      codeName: this.codeName,
    });
    if (window) out.window = { from: new Date(window.from).toISOString(), to: new Date(window.to).toISOString() };
    out.scope = 'process';
    if (this.resetAt) out.resetAt = this.resetAt;
    if (this.dropped > 0) out.dropped = this.dropped;
    return out;
  }

  /** The comparisons over time in a window: at most `maxPoints` steps. */
  trend(window: TimeWindow, maxPoints?: number): ComparisonTrend {
    const width = tierFor(window, this.now());
    return trendOf(width === FINE_MS ? this.fine : this.coarse, width, window, maxPoints);
  }

  /** The latest (redacted) records of an A-code, newest first; at most `limit`; only those in the window if given. */
  samples(aCode: string, limit?: number, window?: TimeWindow): ComparisonRecord[] {
    let all = this.sampled.get(aCode)?.toArray().reverse() ?? [];
    if (window) {
      all = all.filter((r) => {
        const t = Date.parse(r.at);
        return t >= window.from && t < window.to;
      });
    }
    return limit === undefined ? all : all.slice(0, Math.max(0, Math.floor(limit)));
  }

  /** Forgets every figure and sample; the file gets a reset line, so a restart does not bring them back. */
  reset(): void {
    this.clear();
    const at = new Date(this.now()).toISOString();
    this.since = at;
    this.sinceSet = true;
    this.resetAt = at;
    this.pendingCalls = new Map();
    if (!this.closed) this.writer?.append(JSON.stringify({ at, reset: true }));
  }

  issueResetToken(): string {
    return this.resetTokens.issue();
  }

  consumeResetToken(token: string): boolean {
    return this.resetTokens.consume(token);
  }

  private clear(): void {
    this.fine.clear();
    this.coarse.clear();
    this.sampled.clear();
  }

  /** Resolves when everything queued so far is written (or has failed to be). */
  async flush(): Promise<void> {
    await this.writer?.flush();
    await this.mirror?.flush();
  }

  /** Flushes and closes the file (and the mirror); later records are still counted but not written. */
  async close(): Promise<void> {
    await this.writer?.close();
    await this.mirror?.close();
    this.closed = true;
  }

  /**
   * Rebuilds a store from a JSON-lines file and its rotated siblings (`file.<n>`, oldest first). Lines that are not
   * records, call counts or resets are skipped; a reset forgets what came before it. The returned store does not
   * write (it is for reports). `transform` is applied to each record read (compare report re-applies the ignore
   * rules and presets).
   */
  static async load(
    file: string,
    opts: Omit<ComparisonStoreOptions, 'file'> & { transform?: (r: ComparisonRecord) => ComparisonRecord } = {},
  ): Promise<ComparisonStore> {
    const { transform, ...rest } = opts;
    const store = new ComparisonStore({ ...rest, file: undefined });
    const n = await store.readFiles(file, transform);
    if (n === 0) throw new Error(`No comparison records at ${file}`);
    return store;
  }

  /**
   * Reads this store's own file (and its rotated siblings) back at start, before anything new is written, so the
   * figures survive a restart. Resolves with the number of records read (0 when there is no file yet).
   */
  async restore(): Promise<number> {
    if (!this.file) return 0;
    let records = 0;
    const counting = (r: ComparisonRecord) => {
      records++;
      return r;
    };
    await this.readFiles(this.file, counting);
    return records;
  }

  /** Reads a file and its rotated siblings, oldest first; resolves with the number of files read. */
  private async readFiles(file: string, transform?: (r: ComparisonRecord) => ComparisonRecord): Promise<number> {
    const { files } = await comparisonFiles(file);
    for (const f of files) {
      const lines = createInterface({
        input: createReadStream(f, { encoding: 'utf8' }),
        crlfDelay: Number.POSITIVE_INFINITY,
      });
      for await (const line of lines) this.loadLine(line, transform);
    }
    return files.length;
  }

  private loadLine(line: string, transform?: (r: ComparisonRecord) => ComparisonRecord): void {
    if (line.trim() === '') return;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof o !== 'object' || o === null) return;
    const obj = o as Record<string, unknown>;
    const at = typeof obj.at === 'string' && Number.isFinite(Date.parse(obj.at)) ? Date.parse(obj.at) : this.now();
    if (obj.reset === true) {
      this.clear();
      this.since = new Date(at).toISOString();
      this.sinceSet = true;
      this.resetAt = this.since;
      return;
    }
    if (typeof obj.calls === 'object' && obj.calls !== null) {
      for (const [asid, codes] of Object.entries(obj.calls as Record<string, unknown>)) {
        if (typeof codes !== 'object' || codes === null) continue;
        for (const [aCode, n] of Object.entries(codes as Record<string, unknown>)) {
          if (typeof n === 'number' && n > 0) this.countCalls(asid, aCode, n, at);
        }
      }
      return;
    }
    const r = obj as unknown as ComparisonRecord;
    if (typeof r.aCode === 'string' && typeof r.asid === 'string' && typeof r.result === 'object' && r.result) {
      if (!Array.isArray(r.result.differences) || !Array.isArray(r.result.noise)) return;
      let rec: ComparisonRecord;
      try {
        rec = redactRecord(r);
        if (transform) rec = transform(rec);
      } catch {
        return;
      }
      this.ingest(rec);
    }
  }

  // ---- aggregation

  /** Adds increments at a time to the buckets it falls in (the 5-minute one while recent, the hourly one). */
  private apply(t: number, entities: readonly Entity[]): void {
    const now = this.now();
    if (t < now - this.retentionMs) return;
    const hour = Math.floor(t / COARSE_MS) * COARSE_MS;
    applyEntities(bucketOf(this.coarse, hour), entities);
    if (t >= now - FINE_RETENTION_MS) applyEntities(bucketOf(this.fine, Math.floor(t / FINE_MS) * FINE_MS), entities);
    if (now - this.lastPrune > 60_000) this.prune(now);
  }

  private prune(now: number): void {
    this.lastPrune = now;
    for (const start of this.fine.keys()) if (start + FINE_MS < now - FINE_RETENTION_MS) this.fine.delete(start);
    if (Number.isFinite(this.retentionMs)) {
      for (const start of this.coarse.keys()) if (start + COARSE_MS < now - this.retentionMs) this.coarse.delete(start);
    }
  }

  private countCalls(asid: string, aCode: string, n: number, t: number): void {
    if (n !== 1) {
      this.apply(t, callEntities(asid, aCode, n, this.limits));
      return;
    }
    // One call, counted on every legacy call of a compared route: its increments are made once per ASID and A-code
    // (the limits are fixed for the store's life), not rebuilt each call (issue 15).
    const key = `${asid}\u0000${aCode}`;
    let entities = this.oneCall.get(key);
    if (!entities) {
      if (this.oneCall.size >= 4096) this.oneCall.clear();
      entities = callEntities(asid, aCode, 1, this.limits);
      this.oneCall.set(key, entities);
    }
    this.apply(t, entities);
  }

  private readonly oneCall = new Map<string, Entity[]>();

  private ingest(r: ComparisonRecord): void {
    if (!this.sinceSet && typeof r.at === 'string') {
      this.since = r.at;
      this.sinceSet = true;
    }
    const parsed = Date.parse(r.at);
    this.apply(Number.isFinite(parsed) ? parsed : this.now(), recordEntities(r, this.limits, failedOnApim));
    let ring = this.sampled.get(r.aCode);
    if (!ring) {
      ring = this.sampled.get(this.sampled.size >= this.maxCodes ? OTHER : r.aCode);
      if (!ring) {
        ring = new Ring(this.samplesPerCode);
        this.sampled.set(this.sampled.size >= this.maxCodes ? OTHER : r.aCode, ring);
      }
    }
    ring.push(r);
  }
}

function bucketOf(tier: Map<number, Map<string, number>>, start: number): Map<string, number> {
  let b = tier.get(start);
  if (!b) {
    b = new Map();
    tier.set(start, b);
  }
  return b;
}
