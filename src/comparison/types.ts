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
}

export interface FieldStats {
  path: string;
  count: number;
  /** Up to three redacted examples. */
  examples: Array<{ primary?: unknown; secondary?: unknown }>;
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
}

/** Migration readiness of one ASID: which operations it uses and how they fare on APIM. */
export interface AsidReadiness {
  asid: string;
  codes: Array<{
    aCode: string;
    calls: number;
    appRestrictedAllowed: boolean;
    compared: number;
    different: number;
    failedOnApim: number;
  }>;
}

export interface ComparisonSummary {
  since: string;
  records: number;
  /** Records not written to the JSON-lines file because the write queue was full. */
  dropped?: number;
  codes: CodeSummary[];
  asids: AsidReadiness[];
}
