/**
 * Shadowing: after the primary side has answered, a copy of the call goes to the other side and the two answers
 * are compared. The copy is fire-and-forget and bounded — sampled, capped in concurrency, timed out — so a slow or
 * failing shadow side never delays or fails the primary. Writes are never copied to a production side.
 */
import { setMaxListeners } from 'node:events';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Metrics } from '../admin/metrics.js';
import { classifyTransport, UpstreamError } from '../apim/upstream.js';
import { compareAnswers, noisePathsBetween } from '../comparison/diff.js';
import { comparisonOptions } from '../comparison/engine.js';
import type { ComparisonStore } from '../comparison/store.js';
import type { CapturedAnswer, ComparisonRecord } from '../comparison/types.js';
import { readWhole } from '../http/bounded.js';
import type { EndpointDef } from '../legacy/endpoints.js';
import type { ShadowConfig } from '../rules/schema.js';
import { BoundedPer, OncePer } from '../runtime/once-per.js';
import type { ShadowCounters } from '../runtime/process-state.js';
import { knownFault } from './faults.js';
import { type ModeDecision, type SideName, shadowAllowed } from './mode.js';
import { apimAccessProblem, type CallRole } from './steps.js';
import type { LegacyAnswer } from './types.js';

export interface ShadowPlan {
  secondary: SideName;
  settings: ShadowConfig;
}

/** Whether a copy goes out: the plan, or why not (`sampled` false: left out by sampling, not for safety). */
export type ShadowDecision = { plan: ShadowPlan } | { skipped: string; sampled: boolean } | { none: true };

/** Which sides are declared production (writes are never copied there). */
export interface SideProduction {
  apim: boolean;
  legacy: boolean;
}

/**
 * Step (pure): whether this call gets a shadow copy. Decides sampling, write safety and whether the shadow side
 * could take the call at all (APIM's access rules), before anything is read or sent.
 */
// The two answers most calls get (no shadow; not sampled): one frozen object each, not one a call.
const NO_SHADOW: ShadowDecision = Object.freeze({ none: true as const });
const NOT_SAMPLED: ShadowDecision = Object.freeze({ skipped: 'not sampled', sampled: false });

export function planShadow(
  decision: ModeDecision,
  endpoint: EndpointDef,
  production: SideProduction,
  who: { asid: string; role: CallRole },
  random: number,
): ShadowDecision {
  if (!decision.shadow) return NO_SHADOW;
  const { secondary, settings } = decision.shadow;
  if (random >= settings.sampleRate) return NOT_SAMPLED;
  const safe = shadowAllowed(endpoint, production[secondary]);
  if (!safe.ok) return { skipped: safe.why!, sampled: true };
  if (secondary === 'apim') {
    const problem = apimAccessProblem(endpoint, who.asid, who.role);
    if (problem) return { skipped: `APIM would refuse it (${problem.reason})`, sampled: true };
  }
  return { plan: { secondary, settings } };
}

/** The shadow-copies counter's children, resolved once per metrics (prom-client hashes the labels on every inc). */
const COPIES = new OncePer<Metrics, Record<'skipped' | 'sent' | 'dropped', { inc(): void }>>((metrics) => ({
  skipped: metrics.shadowCopies.labels({ outcome: 'skipped' }),
  sent: metrics.shadowCopies.labels({ outcome: 'sent' }),
  dropped: metrics.shadowCopies.labels({ outcome: 'dropped' }),
}));
function skippedCopies(metrics: Metrics): { inc(): void } {
  return COPIES.of(metrics).skipped;
}

type ComparisonResultLabel = 'equal' | 'different' | 'error';
/** The comparisons counter's children of an A-code, by result (A-codes are the catalogue's few; bounded anyway). */
const COMPARED = new BoundedPer<Metrics, Record<ComparisonResultLabel, { inc(): void }>>(512, (metrics, aCode) => ({
  equal: metrics.comparisons.labels({ a_code: aCode, result: 'equal' }),
  different: metrics.comparisons.labels({ a_code: aCode, result: 'different' }),
  error: metrics.comparisons.labels({ a_code: aCode, result: 'error' }),
}));

/** Counts a decision not to copy: sampling in the metrics only, a safety skip in the counters too. */
export function countShadowSkip(
  decision: ShadowDecision,
  counters: ShadowCounters,
  metrics: Metrics | undefined,
): void {
  if (!('skipped' in decision)) return;
  if (decision.sampled) counters.skipped++;
  if (metrics) skippedCopies(metrics).inc();
}

/** Reads an answer's body (bounded) so it can both go to the client and be compared. */
export async function captureAnswer(
  answer: LegacyAnswer,
  side: SideName,
  limit: number,
  startedAt: number,
): Promise<{ answer: LegacyAnswer; captured: CapturedAnswer }> {
  let body: Buffer = Buffer.alloc(0);
  if (Buffer.isBuffer(answer.body)) body = answer.body;
  else if (answer.body) {
    const upstream = side === 'apim' ? 'APIM' : 'the legacy e-RS host';
    body = await readWhole(answer.body as Readable, {
      limit,
      onOverflow: 'destroy',
      tooLarge: () => new UpstreamError('too-large', upstream, '', '', false, { bytes: limit, purpose: 'compare' }),
      // A stall or a reset while the answer is read is the upstream's fault, as on the way straight through.
      onSourceError: (e) => classifyTransport(e, upstream, ''),
    });
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(answer.headers)) headers[k.toLowerCase()] = v;
  return {
    answer: { ...answer, body: answer.body === undefined ? undefined : body },
    captured: { side, status: answer.status, headers, body, truncated: false, ms: performance.now() - startedAt },
  };
}

export interface ShadowJob {
  endpoint: EndpointDef;
  asid: string;
  correlationId: string;
  primary: CapturedAnswer;
  primarySide: SideName;
  secondarySide: SideName;
  settings: ShadowConfig;
  baseUrls: string[];
  callSide: (side: SideName, signal: AbortSignal) => Promise<LegacyAnswer>;
}

/** Where shadow results go: the process's counters, metrics, comparison store and log. */
export interface ShadowSinks {
  counters: ShadowCounters;
  metrics: Metrics | undefined;
  comparisons: ComparisonStore | undefined;
  log: Logger | undefined;
}

/** Calls one side for the shadow and captures its answer; a failure becomes an answer with status 0 and an error. */
async function shadowCall(job: ShadowJob, side: SideName, signal: AbortSignal): Promise<CapturedAnswer> {
  const started = performance.now();
  try {
    const answer = await job.callSide(side, signal);
    return (await captureAnswer(answer, side, 16 * 1024 * 1024, started)).captured;
  } catch (e) {
    const known = knownFault(e);
    const why = signal.aborted
      ? `timed out after ${job.settings.timeoutMs} ms`
      : known
        ? `${known.reason}: ${known.diagnostics}`
        : 'failed';
    const status = known?.status ?? 0;
    return { side, status, headers: {}, body: Buffer.alloc(0), ms: performance.now() - started, error: why };
  }
}

/** Starts the shadow copy and returns at once. Never throws, never rejects. */
export function launchShadow(sinks: ShadowSinks, job: ShadowJob): void {
  const state = sinks.counters;
  if (state.inFlight >= job.settings.maxConcurrent) {
    state.dropped++;
    if (sinks.metrics) COPIES.of(sinks.metrics).dropped.inc();
    return;
  }
  state.inFlight++;
  state.sent++;
  if (sinks.metrics) COPIES.of(sinks.metrics).sent.inc();
  void runShadow(sinks, job)
    .catch((e: unknown) => {
      state.failed++;
      sinks.log?.warn({ err: { message: (e as Error).message }, aCode: job.endpoint.code }, 'shadow comparison failed');
    })
    .finally(() => {
      state.inFlight--;
    });
}

/**
 * Copies' deadlines, coarse: the copies started within one slot (a tenth of the timeout) share one abort signal, which
 * fires once the last of them has had the whole timeout; so a copy is stopped between `timeoutMs` and 1.1 × it after
 * it started. One AbortController and one timer a slot instead of one a copy: on Node 20 each costs ≈ 12 µs of CPU
 * (issue 15). AbortSignal.timeout() would do too, but each one is tracked by a finalizer until collected.
 */
class CopyDeadlines {
  private slot: { endsAt: number; timeoutMs: number; signal: AbortSignal } | undefined;

  signal(timeoutMs: number): AbortSignal {
    const now = performance.now();
    const slot = this.slot;
    if (slot && slot.timeoutMs === timeoutMs && now < slot.endsAt && !slot.signal.aborted) return slot.signal;
    const width = Math.max(1, Math.ceil(timeoutMs / 10));
    const controller = new AbortController();
    // Every copy of the slot listens while it runs (at most the shadow's maxConcurrent at once): no leak to warn of.
    setMaxListeners(0, controller.signal);
    const timer = setTimeout(
      () => controller.abort(new DOMException('The shadow copy timed out', 'TimeoutError')),
      timeoutMs + width,
    );
    timer.unref();
    this.slot = { endsAt: now + width, timeoutMs, signal: controller.signal };
    return controller.signal;
  }
}
const DEADLINES = new CopyDeadlines();

async function runShadow(sinks: ShadowSinks, job: ShadowJob): Promise<void> {
  const secondary = await shadowCall(job, job.secondarySide, DEADLINES.signal(job.settings.timeoutMs));
  let noisePaths: Set<string> | undefined;
  if (job.settings.noiseBaseline && job.endpoint.readOnly) {
    // Diffy's noise baseline: what differs between two answers of the primary itself is not a difference.
    const again = await shadowCall(job, job.primarySide, DEADLINES.signal(job.settings.timeoutMs));
    if (!again.error) {
      noisePaths = noisePathsBetween(job.primary, again, {
        baseUrls: job.baseUrls,
        ignorePaths: job.settings.ignorePaths,
      });
    }
  }
  // The one engine: the same options replay and compare report build from the rules (src/comparison/engine.ts).
  const result = compareAnswers(
    job.primary,
    secondary,
    comparisonOptions(job.settings, job.endpoint.code, {
      baseUrls: job.baseUrls,
      ...(noisePaths ? { noisePaths } : {}),
    }),
  );
  const record: ComparisonRecord = {
    at: new Date().toISOString(),
    aCode: job.endpoint.code,
    route: job.endpoint.legacyPath,
    method: job.endpoint.method,
    asid: job.asid,
    mode: 'shadow',
    primary: job.primarySide,
    secondary: job.secondarySide,
    result,
    primaryMs: Math.round(job.primary.ms),
    secondaryMs: Math.round(secondary.ms),
    ...(secondary.error ? { secondaryError: secondary.error } : {}),
    correlationId: job.correlationId,
  };
  sinks.comparisons?.add(record);
  if (sinks.metrics) {
    const outcome: ComparisonResultLabel = secondary.error ? 'error' : result.equal ? 'equal' : 'different';
    COMPARED.of(sinks.metrics, job.endpoint.code)[outcome].inc();
  }
  // Built only when it will be written (the object is made before pino looks at the level).
  if (sinks.log?.isLevelEnabled('info'))
    sinks.log.info(
      {
        aCode: job.endpoint.code,
        asid: job.asid,
        equal: result.equal,
        differences: result.differences.length,
        correlationId: job.correlationId,
      },
      'shadow comparison',
    );
}
