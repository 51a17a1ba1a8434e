/**
 * The record step: one log line and the metrics of one call, once its answer is sent — or once the client has gone
 * away without it. Never a token, raw session key, path value or body: the record carries none by construction.
 */
import type { Logger } from 'pino';
import type { Metrics } from '../admin/metrics.js';
import { REASONS } from '../legacy/errors.js';
import type { Caller } from '../runtime/caller.js';
import type { CallRecord } from './types.js';

/** How the call ended: answered with `status`, or abandoned by the client before the answer was out. */
export type CallEnd = { status: number } | { aborted: true };

/** The status metrics and logs use for a call the client abandoned (nginx's "client closed request"). */
export const CLIENT_CLOSED = 499;

export interface RecordSinks {
  log: Logger;
  metrics: Metrics;
  /** The configured callers: an ASID label is only ever one of theirs (bounded label values). */
  callers: ReadonlyMap<string, Caller>;
}

export function recordCall(sinks: RecordSinks, record: CallRecord, method: string, end: CallEnd, ms: number): void {
  const status = 'aborted' in end ? CLIENT_CLOSED : end.status;
  countCall(sinks, record, method, status, ms);
  const { log } = sinks;
  if (!log.isLevelEnabled('info')) return; // do not build a line nobody will write
  log.info(
    {
      aCode: record.aCode,
      route: record.route,
      method,
      // Always said: the ASID the call named (as the flow may log it: src/pipeline/steps.ts, asidForLog).
      asid: record.asid ?? '(none)',
      session: record.session,
      status,
      ...('aborted' in end ? { aborted: true } : {}),
      upstreamStatus: record.upstreamStatus,
      upstreamMs: record.upstreamMs,
      tokenRenewed: record.tokenRenewed,
      mode: record.mode,
      side: record.side,
      shadow: record.shadow,
      // ers-bridge's own reason when it answered with an error (what it logs, e.g. SESSION_ASID_MISMATCH, may be
      // finer than what the client is told); none when it answered without one of its own.
      reason: record.reason ?? 'none',
      ms: Math.round(ms * 1000) / 1000,
      correlationId: record.correlationId,
      transactionId: record.transactionId,
    },
    'aborted' in end ? 'legacy call aborted by client' : 'legacy call',
  );
}

function countCall(sinks: RecordSinks, record: CallRecord, method: string, status: number, ms: number): void {
  const { metrics, callers } = sinks;
  const asid = record.asid && callers.has(record.asid) ? record.asid : 'unknown';
  const session = record.aCode === 'A001' || record.aCode === 'A002' || record.aCode === 'A003';
  // In the metrics' label order: a_code, method, status, mode, side, reason, asid.
  metrics.requests.inc([
    record.aCode,
    method,
    String(status),
    record.mode ?? (session ? 'session' : 'none'),
    record.side === 'apim' || record.side === 'legacy' ? record.side : 'none',
    reasonLabel(record.reason),
    asid,
  ]);
  metrics.requestDuration.observe([record.aCode], ms / 1000);
  if (record.upstreamMs !== undefined) {
    metrics.upstreamDuration.observe([record.side ?? 'apim', record.aCode], record.upstreamMs / 1000);
  }
  if (record.aCode === 'A001' && status === 201) {
    metrics.sessionsCreated.inc({ access_mode: callers.get(asid)?.config.accessMode ?? 'unknown' });
  }
  if (record.aCode === 'A003' && status === 204) metrics.sessionsEnded.inc({ reason: 'deleted' });
  if (record.reason === 'SESSION_UNKNOWN') metrics.sessionsEnded.inc({ reason: 'unknown_or_expired' });
  if (record.reason === 'SESSION_SIGN_IN_AGAIN') metrics.sessionsEnded.inc({ reason: 'sign_in_again' });
}

/** The reason label: one of ers-bridge's reasons (a bounded set), or none. */
function reasonLabel(reason: string | undefined): string {
  if (reason === undefined) return 'none';
  return Object.hasOwn(REASONS, reason) ? reason : 'INTERNAL_ERROR';
}
