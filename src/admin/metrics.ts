/**
 * Prometheus metrics (prom-client), one registry per process, kept across rules reloads. Label values are bounded:
 * A-codes and modes are fixed sets, ASIDs come from the rules (anything else is `unknown`), and an APIM application is
 * named by a short hash of its API key, never the key.
 */
import { createHash } from 'node:crypto';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
  return new Counter<L>({ name, help, labelNames, registers: [registry] });
}

function latency<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
  return new Histogram<L>({ name, help, labelNames, buckets: LATENCY_BUCKETS, registers: [registry] });
}

export class Metrics {
  readonly registry = new Registry();

  readonly requests = counter(
    this.registry,
    'ers_bridge_requests_total',
    'Legacy calls, by A-code, method, HTTP status (499: the client left before its answer), mode and ASID.',
    ['a_code', 'method', 'status', 'mode', 'asid'],
  );

  readonly requestDuration = latency(
    this.registry,
    'ers_bridge_request_duration_seconds',
    'Time from receiving a legacy call to the end of its answer, by A-code.',
    ['a_code'],
  );

  readonly upstreamDuration = latency(
    this.registry,
    'ers_bridge_upstream_duration_seconds',
    'Time the answering side (APIM or the legacy host) took to answer, by side and A-code.',
    ['side', 'a_code'],
  );

  readonly tokenFetches = counter(
    this.registry,
    'ers_bridge_token_fetches_total',
    'Calls to the APIM token endpoint for application-restricted tokens, by application and outcome.',
    ['application', 'outcome'],
  );

  readonly sessionsCreated = counter(
    this.registry,
    'ers_bridge_sessions_created_total',
    'Legacy sessions created (A001), by access mode.',
    ['access_mode'],
  );

  readonly sessionsEnded = counter(
    this.registry,
    'ers_bridge_sessions_ended_total',
    'Legacy sessions ended or refused, by reason: deleted (A003), unknown_or_expired (a call with a key the store does not hold), sign_in_again (CIS2 refresh window over or renewal failed).',
    ['reason'],
  );

  readonly sessionsLive = new Gauge({
    name: 'ers_bridge_sessions_live',
    help: 'Live sessions in the session store (approximate for Redis).',
    registers: [this.registry],
    collect: async () => {
      const n = await this.liveSessions?.().catch(() => undefined);
      if (n !== undefined) this.sessionsLive.set(n);
    },
  });

  readonly reloads = counter(
    this.registry,
    'ers_bridge_rules_reloads_total',
    'Rules reloads, by outcome: applied, or rejected (invalid rules: the old ones stay).',
    ['outcome'],
  );

  readonly comparisons = counter(
    this.registry,
    'ers_bridge_comparisons_total',
    'Shadow comparisons, by A-code and result: equal, different or error (the shadow side gave no answer).',
    ['a_code', 'result'],
  );

  readonly shadowCopies = counter(
    this.registry,
    'ers_bridge_shadow_copies_total',
    'Shadow copies, by outcome: sent, dropped (concurrency cap), skipped (sampling or safety).',
    ['outcome'],
  );

  /** Reads the live session count (set by the server from the current runtime's store). */
  liveSessions: (() => Promise<number>) | undefined;

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'ers_bridge_' });
  }
}

/** How an APIM application is named in metrics and logs: a short hash of its API key. */
export function applicationTag(apiKey: string): string {
  return createHash('sha256').update(apiKey).digest('hex').slice(0, 8);
}
