/**
 * Shared types of the comparison engine: what is captured of an answer, what a comparison finds, and the
 * aggregates the reports show. Everything here that is stored or shown has been redacted (redact.ts).
 */

/** The side an answer came from. */
export type Side = 'apim' | 'legacy' | string;

/** One answer as captured for comparison (bodies are bounded; `truncated` when cut). */
export interface CapturedAnswer {
  side: Side;
  status: number;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: Buffer;
  truncated?: boolean;
  /** Milliseconds from sending to the end of the answer. */
  ms: number;
  /** Set when the call failed without an HTTP answer (timeout, refused): status is 0 then. */
  error?: string;
}

/**
 * A known difference (presets.ts): a field APIM answers by design that the legacy API never had. A difference lies
 * under the extension element the `element` glob matches whose `url` differs with `url` on either side.
 */
export interface KnownDifference {
  /** Stable id, as stored in comparison records and shown on the pages. */
  id: string;
  /** The operations whose answers carry the field. */
  codes: readonly string[];
  /** The field's name, as e-RS names it. */
  field: string;
  /** Path glob of the extension element that holds the field (`url` + value). */
  element: string;
  /** The element's `url`. */
  url: string;
  /** Why it differs, in a sentence a migration team can act on. */
  why: string;
  /** Where NHS England says so. */
  source: { title: string; url: string };
  /** When APIM started answering it (YYYY-MM). */
  since: string;
}

export interface ComparisonOptions {
  /** Header names to compare (lower-case, globs allowed: `x-*`). Default: content-type, etag, location, content-disposition. */
  headers?: string[];
  /** Header names to ignore (globs). */
  ignoreHeaders?: string[];
  /** JSON paths to ignore (globs over paths such as `entry[0].resource.meta.lastUpdated`; `*` one segment, `**` any). */
  ignorePaths?: string[];
  /** Paths found to differ between two answers of the primary itself (noise baseline): reported apart, not as differences. */
  noisePaths?: Set<string>;
  /** Base URLs to fold to `<base>` before comparing, so each side's own host in links is not a difference. */
  baseUrls?: string[];
  /** At most this many differences are listed (default 1000); the rest are counted in `omittedDifferences`. */
  maxDifferences?: number;
  /**
   * Known differences (presets.ts) that apply to this operation: the differences they match are moved to
   * `ignoredByPreset` and do not make the answers different.
   */
  presets?: readonly KnownDifference[];
}

export interface FieldDifference {
  /** JSON path (`entry[0].resource.status`), `header:<name>`, `status`, or `body` (non-JSON bodies). */
  path: string;
  kind: 'changed' | 'only-primary' | 'only-secondary' | 'type';
  /** Redacted values, for samples. */
  primary?: unknown;
  secondary?: unknown;
}

export interface ComparisonResult {
  equal: boolean;
  statusEqual: boolean;
  primaryStatus: number;
  secondaryStatus: number;
  bodyKind: 'json' | 'binary' | 'empty' | 'text';
  differences: FieldDifference[];
  /** Differences dropped as noise (fields that also differ between two primary answers). */
  noise: string[];
  /** For binary bodies: sizes and sha256 of each side. */
  primarySize?: number;
  secondarySize?: number;
  primarySha256?: string;
  secondarySha256?: string;
  /** A body was cut at capture: it was compared as captured (text or bytes), not as JSON. */
  truncated?: boolean;
  /** Differences found beyond `maxDifferences`, not listed. */
  omittedDifferences?: number;
  /** Differences a known-difference preset matched, by preset id: not counted as differences. */
  ignoredByPreset?: Array<{ id: string; fields: number; paths: string[] }>;
}

/** One comparison as stored (JSON lines) and aggregated. Redacted. */
export interface ComparisonRecord {
  at: string;
  aCode: string;
  route: string;
  method: string;
  asid: string;
  mode: 'shadow' | 'replay';
  primary: Side;
  secondary: Side;
  result: ComparisonResult;
  primaryMs: number;
  secondaryMs: number;
  /** The secondary failed without an answer (timeout, refused, skipped): no field comparison. */
  secondaryError?: string;
  correlationId?: string;
  /** The ers-bridge process that compared (hostname:pid). */
  replica?: string;
}

export interface FieldStats {
  path: string;
  count: number;
  /** Up to three distinct redacted examples, most frequent first; `count`: how often that pair of values was seen. */
  examples: Array<{ primary?: unknown; secondary?: unknown; count?: number }>;
}

export interface CodeSummary {
  aCode: string;
  name?: string;
  compared: number;
  different: number;
  /** different / compared, 0..1. */
  differenceRate: number;
  statusMismatches: number;
  secondaryErrors: number;
  /** Most frequent differing fields first. */
  topFields: FieldStats[];
  noiseFields: string[];
  p50PrimaryMs?: number;
  p50SecondaryMs?: number;
  /** Differing fields not tracked in `topFields` because `maxFieldsPerCode` distinct fields were already tracked. */
  untrackedFieldDifferences?: number;
  /** Comparisons in which a known-difference preset matched something (not counted as different for that). */
  ignoredByPreset?: number;
  /** By preset id: the comparisons it matched in. */
  presets?: Array<{ id: string; count: number }>;
}

/** Migration readiness of one ASID: which operations it uses and how they fare on APIM. */
export interface AsidReadiness {
  asid: string;
  /** The ASID's access mode in the rules now, when known (the readiness verdict depends on it). */
  accessMode?: 'application-restricted' | 'user-restricted';
  codes: Array<{
    aCode: string;
    calls: number;
    appRestrictedAllowed: boolean;
    compared: number;
    different: number;
    failedOnApim: number;
    /** Where the operation stands for this ASID (report.ts `readinessState`), when the access mode is known. */
    state?: ReadinessState;
  }>;
}

/** Where one operation of an ASID stands for the move to APIM (report.ts `readinessState`). */
export type ReadinessState = 'needs-cis2-user' | 'failing' | 'not-compared' | 'differs' | 'ok';

export interface ComparisonSummary {
  since: string;
  records: number;
  /** Records not written to the JSON-lines file because the write queue was full. */
  dropped?: number;
  codes: CodeSummary[];
  asids: AsidReadiness[];
  /** The time window asked for (ISO times; `to` exclusive), when one was. */
  window?: { from: string; to: string };
  /** The earliest and latest comparison or call counted (ISO), when any. */
  first?: string;
  last?: string;
  /**
   * Whose figures these are: `shared` — every replica's, from Redis; `process` — this process's only (the memory
   * session store: reloaded from comparison.file at start).
   */
  scope?: 'shared' | 'process';
  /** The processes whose comparisons are counted (hostname:pid), with how many each made in the window. */
  replicas?: Array<{ id: string; records: number; lastSeen?: string }>;
  /** When the comparisons were last reset (ISO). */
  resetAt?: string;
  /** The shared figures could not be read (Redis): these are this process's only. */
  sharedUnavailable?: boolean;
}

/** A time window over the comparisons: epoch milliseconds, `to` exclusive. */
export interface TimeWindow {
  from: number;
  to: number;
}

/** Counters of one operation in one step of a trend. */
export interface TrendCodeCounts {
  compared: number;
  different: number;
  ignoredByPreset: number;
}

/** Counters of one ASID in one step of a trend. */
export interface TrendAsidCounts {
  calls: number;
  compared: number;
  different: number;
  failedOnApim: number;
}

/** The comparisons over time: one point per step of `stepMs` from `from`, each step's counters. */
export interface ComparisonTrend {
  from: string;
  to: string;
  stepMs: number;
  points: Array<{
    start: string;
    codes: Record<string, TrendCodeCounts>;
    asids: Record<string, TrendAsidCounts>;
  }>;
}

type MaybePromise<T> = T | Promise<T>;

/**
 * What the admin surface reads: the comparison store of this process, or the shared one on Redis. `summary` and
 * `samples` are required; the rest is optional (a source without them shows no trend and cannot be reset).
 */
export interface ComparisonReader {
  summary(window?: TimeWindow): MaybePromise<ComparisonSummary>;
  samples(aCode: string, limit?: number, window?: TimeWindow): MaybePromise<ComparisonRecord[]>;
  trend?(window: TimeWindow, maxPoints?: number): MaybePromise<ComparisonTrend>;
  /** Forgets every comparison and call count (and marks the file, so a restart does not bring them back). */
  reset?(): MaybePromise<void>;
  /** A one-time confirmation for a reset (valid 10 minutes, on any replica of the same store). */
  issueResetToken?(): MaybePromise<string>;
  /** Whether the confirmation is one issued and not used yet; uses it. */
  consumeResetToken?(token: string): MaybePromise<boolean>;
}
