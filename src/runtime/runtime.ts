/**
 * The runtime built from one rules file: per-ASID callers with their secrets resolved, one token provider and one
 * rate limiter per APIM application, the upstream pools, CIS2 and the admin token — around the process's state
 * (stores, metrics, comparisons, clock), which outlives it. Requests take a reference to the runtime they start
 * with, so a reload can swap it without disturbing calls in flight.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { applicationTag, type Metrics } from '../admin/metrics.js';
import { tokenStrengthProblem } from '../admin/token-strength.js';
import { ConcurrencySlots } from '../apim/concurrency.js';
import { ObjectStoreClient } from '../apim/object-store.js';
import { type RateBudget, type RateLimit, RateLimiter } from '../apim/rate-limiter.js';
import { type RateSource, SharedRateBudget } from '../apim/shared-rate.js';
import { Upstream } from '../apim/upstream.js';
import { ApplicationTokenProvider } from '../auth/application-token.js';
import type { Cis2Client } from '../auth/cis2.js';
import type { PendingSignIn } from '../auth/cis2-identity.js';
import { importRs512PrivateKey, KeyError } from '../auth/keys.js';
import type { GrantTarget, SignInGrant } from '../auth/sign-in-grant.js';
import { ApimUserTokens } from '../auth/user-token.js';
import { TrafficRecorder } from '../comparison/recorder.js';
import { comparisonKeyPrefix, RedisComparisons } from '../comparison/redis-comparisons.js';
import { replicaId } from '../comparison/replica.js';
import { ComparisonStore, DEFAULT_SAMPLES_PER_CODE } from '../comparison/store.js';
import { ENDPOINTS } from '../legacy/endpoints.js';
import { type LegacyHost, legacyBaseUrlOf } from '../legacy-host/host.js';
import { RulesError } from '../rules/load.js';
import { modesInUse } from '../rules/modes.js';
import type { Rules } from '../rules/schema.js';
import type { SecretResolver } from '../rules/secrets.js';
import { CreateRate } from '../sessions/create-rate.js';
import type { EphemeralStore } from '../sessions/ephemeral-store.js';
import { type SessionStore, sessionLimitsOf } from '../sessions/store.js';
import type { Caller } from './caller.js';
import { type Clock, clockAt, systemClock } from './clock.js';
import { buildListenerSettings, type ListenerSettings } from './listener.js';
import { buildProcessState, closeProcessState, type ProcessState, secret } from './process-state.js';

export interface Runtime {
  file: string;
  rules: Rules;
  /** The calling systems, by ASID. */
  callers: Map<string, Caller>;
  /** Token providers by APIM application (token URL + API key): shared by every ASID mapped to the same app. */
  tokenProviders: Map<string, ApplicationTokenProvider>;
  /** Rate budgets by APIM application: this process's, or (Redis session store) every replica's. */
  limiters: Map<string, RateBudget>;
  /** Caps on calls in flight, by APIM application. */
  slotsByApplication: Map<string, ConcurrencySlots>;
  apimBase: URL;
  upstream: Upstream;
  /** The object store A042 redirects to (A006 served through A042): its own bounded, TLS-verified client. */
  objectStore: ObjectStoreClient;
  /** The legacy host (passthrough, canary, shadow). */
  legacy: LegacyHost;
  /** CIS2 sign-in, when the rules configure it. */
  cis2: Cis2Client | undefined;
  /** The admin surface's token, resolved from the rules (undefined: admin off, unless open in the demo). */
  adminToken: string | undefined;
  /** The process's comparison store, when these rules compare answers (shadow modes, or a comparison block). */
  comparisons: ComparisonStore | undefined;
  /** The process's traffic recorder, when these rules record. */
  recorder: TrafficRecorder | undefined;
  /** The legacy listener's TLS material, client-certificate policy, trusted proxies and Host names. */
  listener: ListenerSettings;
  /** Calls in progress that started on this runtime (a replaced runtime is closed when they are done). */
  inFlight: number;
  /** What outlives this runtime: stores, metrics, comparisons, renewals, retry budget, shadow counters, clock. */
  shared: ProcessState;
}

/** Holds the current runtime; a rules reload swaps `current`, requests keep the one they started with. */
export interface RuntimeHolder {
  current: Runtime;
}

export interface RuntimeOptions {
  resolveSecret: SecretResolver;
  /** Reuse a store across reloads (sessions survive a rules reload). */
  store?: SessionStore;
  pendingSignIns?: EphemeralStore<PendingSignIn>;
  signInCodes?: EphemeralStore<SignInGrant>;
  /** The clock everything waits and expires by (tests drive it). */
  clock?: Clock;
  /** Only the date (tests that fix the time of day but wait in real time). */
  now?: () => number;
  /** Extra CA certificates for APIM (tests, stand-ins on TLS). */
  apimCa?: string;
  tokenRetries?: number;
  tokenBackoffMs?: number;
  /** The environment (ERS_BRIDGE_SESSION_STORE: memory or a redis:// URL, overriding the rules). */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** The process's metrics (kept across reloads). */
  metrics?: Metrics;
  /**
   * A runtime being replaced by a reload: its process state carries over, and so do the token providers and rate
   * limiters of unchanged APIM applications.
   */
  previous?: Runtime;
}

/** Builds a runtime; throws RulesError naming the file and field when a secret or key cannot be used. */
export async function buildRuntime(file: string, rules: Rules, options: RuntimeOptions): Promise<Runtime> {
  const clock = options.previous?.shared.clock ?? options.clock ?? (options.now ? clockAt(options.now) : systemClock);
  // The extra CA for APIM (apim.ca) applies to its token endpoint as to its e-RS calls and the object store.
  const apimCa = rules.apim.ca ? await secret(options.resolveSecret, file, 'apim.ca', rules.apim.ca) : options.apimCa;
  const callers = await buildCallers(file, rules, options, clock, apimCa);
  let cis2: Cis2Client | undefined;
  if (rules.cis2) {
    const auth = rules.cis2.clientAuth;
    const ref = auth.method === 'private_key_jwt' ? auth.privateKey : auth.secret;
    await secret(options.resolveSecret, file, 'cis2.clientAuth', ref);
    // openid-client and jose are loaded only when the rules have CIS2 users (issue 15: memory).
    const { Cis2Client } = await import('../auth/cis2.js');
    cis2 = new Cis2Client(rules.cis2, options.resolveSecret, () => clock.now());
  }
  const apimBase = new URL(rules.apim.baseUrl);
  const upstream = new Upstream(apimBase.origin, {
    connections: rules.apim.connections,
    connectTimeoutMs: rules.apim.timeouts.connectMs,
    headersTimeoutMs: rules.apim.timeouts.headersMs,
    bodyTimeoutMs: rules.apim.timeouts.bodyMs,
    ...(apimCa ? { ca: apimCa } : {}),
  });
  const objectStore = new ObjectStoreClient({
    ...rules.apim.successors.attachments.timeouts,
    ...(apimCa ? { ca: apimCa } : {}),
  });
  const legacy = await buildLegacyHost(file, rules, options.resolveSecret);
  const listener = await buildListenerSettings(file, rules, options.resolveSecret);
  const shared = options.previous?.shared ?? (await buildProcessState(file, rules, options, clock, options.metrics));
  // The rate budgets need the process state (its Redis, its metrics), made last so a bad secret opens no connection.
  const limiters = rateBudgetsFor(rules, callers.callers, shared, clock, options);
  // The store outlives a reload; its quota and record size follow the rules.
  if (options.previous) shared.store.setLimits?.(sessionLimitsOf(rules.sessions));
  const adminToken = rules.admin?.token
    ? strongAdminToken(file, await secret(options.resolveSecret, file, 'admin.token', rules.admin.token))
    : undefined;
  return {
    file,
    rules,
    callers: callers.callers,
    tokenProviders: callers.tokenProviders,
    limiters,
    slotsByApplication: callers.slots,
    apimBase,
    upstream,
    objectStore,
    legacy,
    cis2,
    adminToken,
    comparisons: await comparisonsFor(rules, shared, options.logger),
    recorder: recorderFor(rules, shared),
    listener,
    inFlight: 0,
    shared,
  };
}

/** The admin token, refused (RulesError naming admin.token, never its value) when weak or the example placeholder. */
function strongAdminToken(file: string, token: string): string {
  const problem = tokenStrengthProblem(token);
  if (problem) throw new RulesError(file, 'admin.token', problem);
  return token;
}

/** One caller per ASID; token providers and rate limiters per APIM application, reused from `previous` if unchanged. */
async function buildCallers(
  file: string,
  rules: Rules,
  options: RuntimeOptions,
  clock: Clock,
  apimCa: string | undefined,
) {
  const tokenProviders = new Map<string, ApplicationTokenProvider>();
  const slots = new Map<string, ConcurrencySlots>();
  const callers = new Map<string, Caller>();
  const previous = options.previous;
  for (const [asid, config] of Object.entries(rules.asids)) {
    let tokens: ApplicationTokenProvider | undefined;
    let userTokens: ApimUserTokens | undefined;
    let apiKey: string | undefined;
    if (rules.apim.auth === 'signed-jwt' && config.apim) {
      const base = `asids."${asid}".apim`;
      apiKey = await secret(options.resolveSecret, file, `${base}.apiKey`, config.apim.apiKey);
      const pem = await secret(options.resolveSecret, file, `${base}.privateKey`, config.apim.privateKey);
      try {
        await importRs512PrivateKey(pem, 'key'); // fail at load, not on the first call
      } catch (e) {
        if (e instanceof KeyError) {
          throw new RulesError(file, `${base}.privateKey`, `expected ${e.message.replace(/^key: expected /, '')}`);
        }
        throw e;
      }
      const tokenUrl = rules.apim.tokenUrl!;
      const application = { tokenUrl, apiKey, keyId: config.apim.keyId, privateKeyPem: pem, ca: apimCa };
      if (config.accessMode === 'user-restricted') {
        const apiSecret = await secret(options.resolveSecret, file, `${base}.apiSecret`, config.apim.apiSecret);
        // Counted in the process's metrics (a reload's runtime counts into the same ones).
        const metrics = options.metrics ?? previous?.shared.metrics;
        userTokens = new ApimUserTokens({
          ...application,
          apiSecret,
          now: () => clock.now(),
          onOutcome: (grant, outcome) =>
            (grant === 'exchange' ? metrics?.userTokenExchanges : metrics?.userTokenRefreshes)?.inc({ outcome }),
        });
      } else {
        // One provider per APIM application, shared by every ASID mapped to it (and kept across reloads).
        const id = `${tokenUrl}|${apiKey}|${config.apim.keyId}|${createHash('sha256').update(pem).digest('hex')}|${apimCa === undefined ? '' : createHash('sha256').update(apimCa).digest('hex')}`;
        tokens = tokenProviders.get(id) ?? previous?.tokenProviders.get(id);
        if (!tokens) {
          const tag = applicationTag(apiKey);
          tokens = new ApplicationTokenProvider({
            ...application,
            clock,
            ...(options.tokenRetries !== undefined ? { retries: options.tokenRetries } : {}),
            ...(options.tokenBackoffMs !== undefined ? { backoffMs: options.tokenBackoffMs } : {}),
            onFetch: (outcome) => options.metrics?.tokenFetches.inc({ application: tag, outcome }),
          });
        }
        tokenProviders.set(id, tokens);
      }
    }
    const limiterKey = apiKey ? applicationTag(apiKey) : 'open';
    let appSlots = slots.get(limiterKey);
    if (!appSlots) {
      // Kept across a reload when unchanged: calls still in flight on the old runtime hold their slots, so a reload
      // during an incident does not give a hung application a second set.
      const sameCap = JSON.stringify(previous?.rules.apim.concurrency) === JSON.stringify(rules.apim.concurrency);
      appSlots =
        (sameCap ? previous?.slotsByApplication.get(limiterKey) : undefined) ??
        new ConcurrencySlots(rules.apim.concurrency, clock);
      slots.set(limiterKey, appSlots);
    }
    const a001Secret =
      config.accessMode === 'application-restricted' && config.callerAuth?.a001Secret
        ? await secret(
            options.resolveSecret,
            file,
            `asids."${asid}".callerAuth.a001Secret`,
            config.callerAuth.a001Secret,
          )
        : undefined;
    callers.set(asid, {
      asid,
      config,
      tokens,
      userTokens,
      apiKey,
      limiter: NO_BUDGET_YET, // rateBudgetsFor sets it, once the process state is made
      slots: appSlots,
      application: limiterKey,
      a001Rate: a001RateFor(asid, rules, previous, clock),
      ...(a001Secret !== undefined ? { a001Secret } : {}),
    });
  }
  return { callers, tokenProviders, slots };
}

/** A caller's budget until rateBudgetsFor gives it its application's (never called: buildRuntime replaces it). */
const NO_BUDGET_YET: RateBudget = {
  acquire: () => Promise.reject(new Error('no rate budget yet')),
  pause: () => undefined,
  clearPause: () => undefined,
};

/** One rate budget per APIM application, given to its callers; reused from `previous` while the limit is unchanged. */
function rateBudgetsFor(
  rules: Rules,
  callers: Map<string, Caller>,
  shared: ProcessState,
  clock: Clock,
  options: RuntimeOptions,
): Map<string, RateBudget> {
  const previous = options.previous;
  const limiters = new Map<string, RateBudget>();
  for (const caller of callers.values()) {
    const key = caller.application;
    let limiter = limiters.get(key);
    if (!limiter) {
      // Kept across a reload when the limit is unchanged, so bursts carry over; APIM's pause does not (a reload is
      // how an operator ends a pause a wrong Retry-After started).
      const unchanged = JSON.stringify(previous?.rules.apim.rateLimit) === JSON.stringify(rules.apim.rateLimit);
      const kept = unchanged ? previous?.limiters.get(key) : undefined;
      kept?.clearPause();
      limiter = kept ?? rateBudgetFor(rules, key, shared, clock, options.logger);
      limiters.set(key, limiter);
    }
    caller.limiter = limiter;
  }
  return limiters;
}

/** `apim.rateLimit` as the limiter takes it: the burst resolved (1 with spike arrest: calls evenly spaced). */
export function rateLimitOf(rules: Rules): RateLimit | undefined {
  const r = rules.apim.rateLimit;
  if (!r) return undefined;
  const burst = r.spikeArrest ? 1 : (r.burst ?? Math.max(1, Math.ceil(r.requestsPerSecond)));
  return { requestsPerSecond: r.requestsPerSecond, burst, maxQueue: r.maxQueue, maxWaitMs: r.maxWaitMs };
}

/**
 * An APIM application's rate budget: with the Redis session store, one shared by every replica and worker (a
 * per-process share while Redis is unreachable); otherwise this process's own, as before. Counted in the metrics.
 */
function rateBudgetFor(
  rules: Rules,
  application: string,
  shared: ProcessState,
  clock: Clock,
  logger: Logger | undefined,
): RateBudget {
  const limit = rateLimitOf(rules);
  const metrics = shared.metrics;
  const counted = metrics ? rateCounters(metrics, application) : undefined;
  if (!limit || !shared.redis) {
    if (limit) metrics?.apimRateSource.set({ application, source: 'process' }, 1);
    return new RateLimiter(limit, clock, counted && ((outcome) => counted(outcome, 'process')));
  }
  return new SharedRateBudget({
    connection: shared.redis.connection,
    keyPrefix: shared.redis.keyPrefix,
    application,
    limit,
    member: replicaId(),
    localShareFloor: rules.apim.rateLimit?.localShareFloor,
    clock,
    logger,
    ...(counted ? { onOutcome: counted } : {}),
    ...(metrics
      ? {
          onSource: (source: RateSource) => {
            for (const s of ['shared', 'local'] as const) {
              metrics.apimRateSource.set({ application, source: s }, s === source ? 1 : 0);
            }
          },
        }
      : {}),
  });
}

/** The rate outcome counters of one application, bound once (the hot path does not hash labels). */
function rateCounters(metrics: Metrics, application: string) {
  const bound = new Map<string, { inc(): void }>();
  return (outcome: string, source: RateSource) => {
    const id = `${outcome}|${source}`;
    let c = bound.get(id);
    if (!c) {
      c = metrics.apimRate.labels({ application, outcome, source });
      bound.set(id, c);
    }
    c.inc();
  };
}

/** The ASID's A001 bucket: the previous runtime's while the limit is unchanged, so a reload does not refill it. */
function a001RateFor(asid: string, rules: Rules, previous: Runtime | undefined, clock: Clock): CreateRate {
  const limit = rules.sessions.a001PerSecondPerAsid;
  const kept = previous?.callers.get(asid)?.a001Rate;
  if (kept && kept.limit.rate === limit.rate && kept.limit.burst === limit.burst) return kept;
  return new CreateRate({ rate: limit.rate, burst: limit.burst }, clock);
}

/**
 * Where a CIS2 user's sign-in is completed for a caller: its APIM application, and APIM's e-RS base for A030 (or
 * the roles the rules seed for the user instead).
 */
export function grantTargetOf(rt: Runtime, caller: Caller): GrantTarget {
  return {
    asid: caller.asid,
    userTokens: caller.userTokens,
    upstream: rt.upstream,
    partition: caller.application,
    apimBase: rt.apimBase,
    organisationNames: rt.rules.cis2?.organisationNames ?? {},
    ...(rt.rules.cis2?.seedRoles ? { seedRoles: rt.rules.cis2.seedRoles } : {}),
  };
}

/**
 * Comparison is on when any route shadows, or the rules configure it; the store is the process's, made once. With
 * the Redis session store its records and call counts are mirrored to Redis, which every replica's admin page
 * reads; with the memory store the comparison file (if any) is read back first, so a restart keeps the figures.
 */
async function comparisonsFor(
  rules: Rules,
  shared: ProcessState,
  logger: Logger | undefined,
): Promise<ComparisonStore | undefined> {
  if (rules.comparison === undefined && !modesInUse(rules.modes).has('shadow')) return undefined;
  if (shared.comparisons) return shared.comparisons;
  const appRestricted = (code: string) => ENDPOINTS.some((e) => e.code === code && e.appRestricted);
  const retentionMs = (rules.comparison?.retentionDays ?? 35) * 86_400_000;
  const store = new ComparisonStore({
    ...(rules.comparison?.file ? { file: rules.comparison.file } : {}),
    ...(rules.comparison ? { maxBytes: rules.comparison.maxBytes, maxFiles: rules.comparison.maxFiles } : {}),
    appRestricted,
    retentionMs,
    replica: replicaId(),
  });
  if (shared.redis) {
    store.share(
      new RedisComparisons(shared.redis.connection, {
        keyPrefix: comparisonKeyPrefix(shared.redis.keyPrefix, shared.redis.connection.cluster),
        retentionMs,
        samplesPerCode: DEFAULT_SAMPLES_PER_CODE,
        limits: store.limits,
        appRestricted,
        codeName: (code) => ENDPOINTS.find((e) => e.code === code)?.name,
        replica: store.replica!,
        local: store,
        ...(logger ? { logger } : {}),
      }),
    );
  } else if (rules.comparison?.file) {
    try {
      const records = await store.restore();
      if (records > 0) logger?.info({ records }, 'comparisons read back from comparison.file');
    } catch (e) {
      logger?.warn({ err: { message: (e as Error).message } }, 'comparison.file could not be read back');
    }
  }
  shared.comparisons = store;
  return store;
}

function recorderFor(rules: Rules, shared: ProcessState): TrafficRecorder | undefined {
  if (!rules.record) return undefined;
  shared.recorder ??= new TrafficRecorder({
    file: rules.record.file,
    maxBytes: rules.record.maxBytes,
    maxFiles: rules.record.maxFiles,
    ...(rules.record.codes ? { codes: rules.record.codes } : {}),
  });
  return shared.recorder;
}

/** The legacy host: its base URL, and mutual TLS with the endpoint certificate when configured. */
async function buildLegacyHost(file: string, rules: Rules, resolve: SecretResolver): Promise<LegacyHost> {
  const baseUrl = legacyBaseUrlOf(rules.legacy);
  const tls = rules.legacy.tls;
  const cert = tls ? await secret(resolve, file, 'legacy.tls.certificate', tls.certificate) : undefined;
  const key = tls ? await secret(resolve, file, 'legacy.tls.privateKey', tls.privateKey) : undefined;
  const ca = tls?.ca ? await secret(resolve, file, 'legacy.tls.ca', tls.ca) : undefined;
  const upstream = new Upstream(
    baseUrl.origin,
    {
      connections: rules.apim.connections,
      connectTimeoutMs: rules.apim.timeouts.connectMs,
      headersTimeoutMs: rules.apim.timeouts.headersMs,
      bodyTimeoutMs: rules.apim.timeouts.bodyMs,
      ...(ca ? { ca } : {}),
      ...(cert && key ? { cert, key } : {}),
    },
    'the legacy e-RS host',
  );
  return { upstream, baseUrl, production: rules.legacy.production };
}

/**
 * Closes a runtime's connections. With `shared` false (a runtime replaced by a reload), the process state —
 * stores, comparison store, recorder — stays open for its successor.
 */
export async function closeRuntime(rt: Runtime, shared = true): Promise<void> {
  await rt.upstream.close();
  await rt.objectStore.close();
  await rt.legacy.upstream.close();
  if (shared) await closeProcessState(rt.shared);
}
