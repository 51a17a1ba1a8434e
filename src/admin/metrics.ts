/**
 * Prometheus metrics (prom-client), one registry per process, kept across rules reloads. Label values are bounded:
 * A-codes and modes are fixed sets, ASIDs come from the rules (anything else is `unknown`), and an APIM application is
 * named by a short hash of its API key, never the key.
 */
import { createHash } from 'node:crypto';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'ers_bridge_requests_total',
    help: 'Legacy calls answered, by A-code, method, HTTP status, mode and ASID.',
    labelNames: ['a_code', 'method', 'status', 'mode', 'asid'] as const,
    registers: [this.registry],
  });

  readonly requestDuration = new Histogram({
    name: 'ers_bridge_request_duration_seconds',
    help: 'Time from receiving a legacy call to the end of its answer, by A-code.',
    labelNames: ['a_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly upstreamDuration = new Histogram({
    name: 'ers_bridge_upstream_duration_seconds',
    help: 'Time the answering side (APIM or the legacy host) took to answer, by side and A-code.',
    labelNames: ['side', 'a_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly tokenFetches = new Counter({
    name: 'ers_bridge_token_fetches_total',
    help: 'Calls to the APIM token endpoint for application-restricted tokens, by application and outcome.',
    labelNames: ['application', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly sessionsCreated = new Counter({
    name: 'ers_bridge_sessions_created_total',
    help: 'Legacy sessions created (A001), by access mode.',
    labelNames: ['access_mode'] as const,
    registers: [this.registry],
  });

  readonly sessionsEnded = new Counter({
    name: 'ers_bridge_sessions_ended_total',
    help: 'Legacy sessions ended or refused, by reason: deleted (A003), unknown_or_expired (a call with a key the store does not hold), sign_in_again (CIS2 refresh window over or renewal failed).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly sessionsLive = new Gauge({
    name: 'ers_bridge_sessions_live',
    help: 'Live sessions in the session store (approximate for Redis).',
    registers: [this.registry],
    collect: async () => {
      const n = await this.liveSessions?.().catch(() => undefined);
      if (n !== undefined) this.sessionsLive.set(n);
    },
  });

  readonly reloads = new Counter({
    name: 'ers_bridge_rules_reloads_total',
    help: 'Rules reloads, by outcome: applied, or rejected (invalid rules: the old ones stay).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly comparisons = new Counter({
    name: 'ers_bridge_comparisons_total',
    help: 'Shadow comparisons, by A-code and result: equal, different or error (the shadow side gave no answer).',
    labelNames: ['a_code', 'result'] as const,
    registers: [this.registry],
  });

  readonly shadowCopies = new Counter({
    name: 'ers_bridge_shadow_copies_total',
    help: 'Shadow copies, by outcome: sent, dropped (concurrency cap), skipped (sampling or safety).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

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
