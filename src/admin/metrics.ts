/**
 * Prometheus metrics (prom-client), one registry per process, kept across rules reloads. Label values are bounded:
 * A-codes and modes are fixed sets, ASIDs come from the rules (anything else is `unknown`), and an APIM application is
 * named by a short hash of its API key, never the key.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { CallCounter, CallHistogram } from './call-metrics.js';

/** ers-bridge's version, from its package.json (read once; the same file from src/ and from dist/). */
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
  return new Counter<L>({ name, help, labelNames, registers: [registry] });
}

export class Metrics {
  readonly registry = new Registry();

  // The three metrics of every call: counted without prom-client's per-call label hashing (call-metrics.ts).
  readonly requests = new CallCounter(
    this.registry,
    'ers_bridge_requests_total',
    'Legacy calls, by A-code, method, HTTP status (499: the client left before its answer), mode, the side that answered (apim, legacy, or none: ers-bridge itself), the ers-bridge error reason (none when it answered without one) and ASID.',
    ['a_code', 'method', 'status', 'mode', 'side', 'reason', 'asid'],
  );

  readonly requestDuration = new CallHistogram(
    this.registry,
    'ers_bridge_request_duration_seconds',
    'Time from receiving a legacy call to the end of its answer, by A-code.',
    ['a_code'],
    LATENCY_BUCKETS,
  );

  readonly upstreamDuration = new CallHistogram(
    this.registry,
    'ers_bridge_upstream_duration_seconds',
    'Time the answering side (APIM or the legacy host) took to answer, by side and A-code.',
    ['side', 'a_code'],
    LATENCY_BUCKETS,
  );

  readonly tokenFetches = counter(
    this.registry,
    'ers_bridge_token_fetches_total',
    'Calls to the APIM token endpoint for application-restricted tokens, by application and outcome.',
    ['application', 'outcome'],
  );

  readonly apimRate = counter(
    this.registry,
    'ers_bridge_apim_rate_total',
    "Calls at an APIM application's rate budget (apim.rateLimit), by application, outcome (admitted: sent, at once or after waiting; queued: had to wait; refused: legacy 429 with Retry-After) and source (shared: the budget every replica shares in Redis; local: this process's share while Redis is unreachable; process: the memory store's per-process budget).",
    ['application', 'outcome', 'source'],
  );

  readonly apimRateSource = new Gauge({
    name: 'ers_bridge_apim_rate_source',
    help: "Where an APIM application's rate budget is kept now (1; the other sources 0): shared (Redis, every replica), local (this process's share: Redis unreachable) or process (the memory store).",
    labelNames: ['application', 'source'] as const,
    registers: [this.registry],
  });

  readonly userTokenExchanges = counter(
    this.registry,
    'ers_bridge_user_token_exchanges_total',
    'CIS2 ID tokens exchanged at APIM for user-restricted tokens (A001 of a CIS2 user), by outcome: ok, rejected (APIM refused), unavailable.',
    ['outcome'],
  );

  readonly userTokenRefreshes = counter(
    this.registry,
    'ers_bridge_user_token_refreshes_total',
    "Renewals of a CIS2 user's APIM token with its refresh token, by outcome: ok, rejected (APIM refused), unavailable, already_used (never sent twice).",
    ['outcome'],
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

  readonly sessionWritesUnacknowledged = counter(
    this.registry,
    'ers_bridge_session_writes_unacknowledged_total',
    'Session writes that sessions.redis.acknowledgement asks a replica to confirm and none did in time (or they were not waited for while replicas lagged), by write: create (A001), select-role (A002), renewed-tokens. They stand, but a failover now could lose them.',
    ['write'],
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

  readonly buildInfo = new Gauge({
    name: 'ers_bridge_build_info',
    help: "ers-bridge's version and the Node.js version it runs on (always 1).",
    labelNames: ['version', 'node'] as const,
    registers: [this.registry],
  });

  readonly rulesInfo = new Gauge({
    name: 'ers_bridge_rules_info',
    help: 'The rules in force (always 1): their environment and a short SHA-256 of the rules file text; changes on reload.',
    labelNames: ['environment', 'hash'] as const,
    registers: [this.registry],
  });

  /** Reads the live session count (set by the server from the current runtime's store). */
  liveSessions: (() => Promise<number>) | undefined;

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'ers_bridge_' });
    this.buildInfo.set({ version: VERSION, node: process.version }, 1);
  }

  /** The rules now in force: one series, the previous rules' removed. */
  setRules(environment: string, hash: string): void {
    this.rulesInfo.reset();
    this.rulesInfo.set({ environment, hash }, 1);
  }
}

/** How the rules are named in `ers_bridge_rules_info`: the first 12 hex digits of the SHA-256 of the file's text. */
export function rulesHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/** How an APIM application is named in metrics and logs: a short hash of its API key. */
export function applicationTag(apiKey: string): string {
  return createHash('sha256').update(apiKey).digest('hex').slice(0, 8);
}
