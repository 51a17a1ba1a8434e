/**
 * Shadowing: after the primary side has answered, a copy of the call goes to the other side and the two answers
 * are compared. The copy is fire-and-forget and bounded — sampled, capped in concurrency, timed out — so a slow or
 * failing shadow side never delays or fails the primary. Writes are never copied to a production side.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { compareAnswers, noisePathsBetween } from '../comparison/diff.js';
import type { CapturedAnswer, ComparisonRecord } from '../comparison/types.js';
import type { EndpointDef } from '../legacy/endpoints.js';
import { LegacyError } from '../legacy/errors.js';
import type { ShadowConfig } from '../rules/schema.js';
import type { AsidRuntime, Runtime } from '../runtime.js';
import type { Session } from '../sessions/session.js';
import type { LegacyAnswer } from './data-call.js';
import { type ModeDecision, type SideName, shadowAllowed } from './mode.js';
import { apimPolicyProblem } from './steps.js';

export interface ShadowPlan {
  secondary: SideName;
  settings: ShadowConfig;
}

/** Counters of the shadow traffic (for metrics and tests). */
export interface ShadowState {
  inFlight: number;
  sent: number;
  dropped: number;
  skipped: number;
  failed: number;
}

export function newShadowState(): ShadowState {
  return { inFlight: 0, sent: 0, dropped: 0, skipped: 0, failed: 0 };
}

/**
 * Step: whether this call gets a shadow copy. Decides sampling, write safety and whether the shadow side could take
 * the call at all (APIM's access rules), before anything is read or sent.
 */
export function planShadow(
  rt: Runtime,
  decision: ModeDecision,
  endpoint: EndpointDef,
  who: { asid: AsidRuntime; session: Session },
  random: number = Math.random(),
): { plan?: ShadowPlan; skipped?: string } {
  if (!decision.shadow) return {};
  const { secondary, settings } = decision.shadow;
  if (random >= settings.sampleRate) {
    rt.metrics?.shadowCopies.inc({ outcome: 'skipped' });
    return { skipped: 'not sampled' };
  }
  const production = secondary === 'apim' ? rt.rules.apim.production : rt.rules.legacy.production;
  const safe = shadowAllowed(endpoint, production);
  if (!safe.ok) {
    rt.shadowState.skipped++;
    rt.metrics?.shadowCopies.inc({ outcome: 'skipped' });
    return { skipped: safe.why! };
  }
  if (secondary === 'apim') {
    const problem = apimPolicyProblem(endpoint, who.asid, who.session);
    if (problem) {
      rt.shadowState.skipped++;
      rt.metrics?.shadowCopies.inc({ outcome: 'skipped' });
      return { skipped: `APIM would refuse it (${problem.reason})` };
    }
  }
  return { plan: { secondary, settings } };
}

/** Reads an answer's body (bounded) so it can both go to the client and be compared. */
export async function captureAnswer(
  answer: LegacyAnswer,
  side: SideName,
  limit: number,
  startedAt: number,
): Promise<{ answer: LegacyAnswer; captured: CapturedAnswer }> {
  let body: Buffer = Buffer.alloc(0);
  let truncated = false;
  if (Buffer.isBuffer(answer.body)) body = answer.body;
  else if (answer.body) {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of answer.body as Readable) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > limit) {
        truncated = true;
        (answer.body as Readable).destroy();
        throw new LegacyError(
          'UPSTREAM_BAD_RESPONSE',
          `The answer is larger than ${limit} bytes, more than ers-bridge will compare.`,
        );
      }
      chunks.push(b);
    }
    body = Buffer.concat(chunks, size);
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(answer.headers)) headers[k.toLowerCase()] = v;
  return {
    answer: { ...answer, body: answer.body === undefined ? undefined : body },
    captured: { side, status: answer.status, headers, body, truncated, ms: performance.now() - startedAt },
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
  log: Logger | undefined;
}

/** Calls one side for the shadow and captures its answer; a failure becomes an answer with status 0 and an error. */
async function shadowCall(job: ShadowJob, side: SideName, signal: AbortSignal): Promise<CapturedAnswer> {
  const started = performance.now();
  try {
    const answer = await job.callSide(side, signal);
    return (await captureAnswer(answer, side, 16 * 1024 * 1024, started)).captured;
  } catch (e) {
    const why = signal.aborted
      ? `timed out after ${job.settings.timeoutMs} ms`
      : e instanceof LegacyError
        ? `${e.reason}: ${e.diagnostics}`
        : 'failed';
    const status = e instanceof LegacyError ? e.status : 0;
    return { side, status, headers: {}, body: Buffer.alloc(0), ms: performance.now() - started, error: why };
  }
}

/** Starts the shadow copy and returns at once. Never throws, never rejects. */
export function launchShadow(rt: Runtime, job: ShadowJob): void {
  const state = rt.shadowState;
  if (state.inFlight >= job.settings.maxConcurrent) {
    state.dropped++;
    rt.metrics?.shadowCopies.inc({ outcome: 'dropped' });
    return;
  }
  state.inFlight++;
  state.sent++;
  rt.metrics?.shadowCopies.inc({ outcome: 'sent' });
  void runShadow(rt, job)
    .catch((e: unknown) => {
      state.failed++;
      job.log?.warn({ err: { message: (e as Error).message }, aCode: job.endpoint.code }, 'shadow comparison failed');
    })
    .finally(() => {
      state.inFlight--;
    });
}

async function runShadow(rt: Runtime, job: ShadowJob): Promise<void> {
  const signal = AbortSignal.timeout(job.settings.timeoutMs);
  const secondary = await shadowCall(job, job.secondarySide, signal);
  let noisePaths: Set<string> | undefined;
  if (job.settings.noiseBaseline && job.endpoint.readOnly) {
    // Diffy's noise baseline: what differs between two answers of the primary itself is not a difference.
    const again = await shadowCall(job, job.primarySide, AbortSignal.timeout(job.settings.timeoutMs));
    if (!again.error) {
      noisePaths = noisePathsBetween(job.primary, again, {
        baseUrls: job.baseUrls,
        ignorePaths: job.settings.ignorePaths,
      });
    }
  }
  const result = compareAnswers(job.primary, secondary, {
    ...(job.settings.compareHeaders ? { headers: job.settings.compareHeaders } : {}),
    ignoreHeaders: job.settings.ignoreHeaders,
    ignorePaths: job.settings.ignorePaths,
    ...(noisePaths ? { noisePaths } : {}),
    baseUrls: job.baseUrls,
  });
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
  rt.comparisons?.add(record);
  rt.metrics?.comparisons.inc({
    a_code: job.endpoint.code,
    result: secondary.error ? 'error' : result.equal ? 'equal' : 'different',
  });
  job.log?.info(
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

/** A short digest for logs and records (never the content). */
export function digest(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex').slice(0, 16);
}
