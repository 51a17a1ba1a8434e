/**
 * The runtime built from one rules file: per-ASID settings with their secrets resolved, one token provider per APIM
 * application, the APIM upstream pool and the session store. Requests take a reference to the runtime they start
 * with, so a reload can swap it without disturbing calls in flight.
 */

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { applicationTag, type Metrics } from './admin/metrics.js';
import { RateLimiter, RetryBudget } from './apim/rate-limiter.js';
import { Upstream } from './apim/upstream.js';
import { ApplicationTokenProvider } from './auth/application-token.js';
import { Cis2Client, type PendingSignIn } from './auth/cis2.js';
import { importRs512PrivateKey, KeyError } from './auth/keys.js';
import { ApimUserTokens } from './auth/user-token.js';
import { TrafficRecorder } from './comparison/recorder.js';
import { ComparisonStore } from './comparison/store.js';
import { ENDPOINTS } from './legacy/endpoints.js';
import type { LegacyHost } from './legacy-host/legacy-call.js';
import { newShadowState, type ShadowState } from './pipeline/shadow.js';
import { RulesError } from './rules/load.js';
import type { AsidConfig, Rules } from './rules/schema.js';
import { SecretError, type SecretResolver } from './rules/secrets.js';
import { Keyring, KeyringError } from './sessions/crypto.js';
import { type EphemeralStore, MemoryEphemeralStore } from './sessions/ephemeral-store.js';
import { MemorySessionStore } from './sessions/memory-store.js';
import { connectRedis, RedisEphemeralStore, RedisSessionStore } from './sessions/redis-store.js';
import type { ProfessionalPermission, ProfessionalUser, SessionApimTokens } from './sessions/session.js';
import type { SessionStore } from './sessions/store.js';

export interface AsidRuntime {
  asid: string;
  config: AsidConfig;
  /** Application-restricted: token provider of the APIM application; undefined when APIM needs no token (sandbox). */
  tokens: ApplicationTokenProvider | undefined;
  /** User-restricted: token exchange and refresh at the ASID's APIM application. */
  userTokens: ApimUserTokens | undefined;
  /** The resolved API key, for display masked only. */
  apiKey: string | undefined;
  /** The rate limiter of the ASID's APIM application (shared by every ASID mapped to it). */
  limiter: RateLimiter;
}

export interface Runtime {
  file: string;
  rules: Rules;
  asids: Map<string, AsidRuntime>;
  /** Token providers by APIM application (token URL + API key): shared by every ASID mapped to the same app. */
  tokenProviders: Map<string, ApplicationTokenProvider>;
  apimBase: URL;
  upstream: Upstream;
  store: SessionStore;
  /** CIS2 sign-in, when the rules configure it. */
  cis2: Cis2Client | undefined;
  /** Sign-ins in progress, by OAuth state. */
  pendingSignIns: EphemeralStore<PendingSignIn>;
  /** One-time sign-in codes shown to users, ready to become A001 sessions. */
  signInCodes: EphemeralStore<SignInGrant>;
  /** The legacy host (passthrough, canary, shadow). */
  legacy: LegacyHost;
  /** Comparison records and aggregates, when comparison is on (shadow modes, or a comparison block). */
  comparisons: ComparisonStore | undefined;
  /** Legacy traffic recording for `ers-bridge replay`, when the rules ask for it. */
  recorder: TrafficRecorder | undefined;
  shadowState: ShadowState;
  /** The admin surface's token, resolved from the rules (undefined: admin off, unless open in the demo). */
  adminToken: string | undefined;
  metrics: Metrics | undefined;
  /** Calls in progress that started on this runtime (a replaced runtime is closed when they are done). */
  inFlight: number;
  /** Rate limiters by APIM application. */
  limiters: Map<string, RateLimiter>;
  /** The share of calls that may be retried after a transport failure. */
  retryBudget: RetryBudget;
  /** User token renewals in flight in this process, by ASID and session (one at a time per session). */
  renewals: Map<string, Promise<string>>;
  /** The clock (epoch ms) sessions and tokens use; injectable for tests. */
  now: () => number;
}

/** What a one-time sign-in code stands for: a signed-in CIS2 user with APIM tokens and e-RS permissions. */
export interface SignInGrant {
  asid: string;
  user: ProfessionalUser;
  permissions: ProfessionalPermission[];
  tokens: SessionApimTokens;
}

export interface RuntimeOptions {
  resolveSecret: SecretResolver;
  /** Reuse a store across reloads (sessions survive a rules reload). */
  store?: SessionStore;
  pendingSignIns?: EphemeralStore<PendingSignIn>;
  signInCodes?: EphemeralStore<SignInGrant>;
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
  /** A runtime being replaced by a reload: its session store, sign-in stores, comparison store, recorder and token providers (for unchanged APIM applications) carry over. */
  previous?: Runtime;
}

async function secret(resolve: SecretResolver, file: string, path: string, ref: string): Promise<string> {
  try {
    return await resolve(ref);
  } catch (e) {
    if (e instanceof SecretError) throw new RulesError(file, path, e.message);
    throw e;
  }
}

/** Builds a runtime; throws RulesError naming the file and field when a secret or key cannot be used. */
export async function buildRuntime(file: string, rules: Rules, options: RuntimeOptions): Promise<Runtime> {
  const tokenProviders = new Map<string, ApplicationTokenProvider>();
  const asids = new Map<string, AsidRuntime>();
  const limiters = new Map<string, RateLimiter>();
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
      const clock = options.now ? { now: options.now } : {};
      if (config.accessMode === 'user-restricted') {
        const apiSecret = await secret(options.resolveSecret, file, `${base}.apiSecret`, config.apim.apiSecret);
        userTokens = new ApimUserTokens({
          tokenUrl,
          apiKey,
          apiSecret,
          keyId: config.apim.keyId,
          privateKeyPem: pem,
          ...clock,
        });
      } else {
        // One provider per APIM application, shared by every ASID mapped to it (and kept across reloads).
        const id = `${tokenUrl}|${apiKey}|${config.apim.keyId}|${createHash('sha256').update(pem).digest('hex')}`;
        tokens = tokenProviders.get(id) ?? options.previous?.tokenProviders.get(id);
        if (!tokens) {
          const application = applicationTag(apiKey);
          tokens = new ApplicationTokenProvider({
            tokenUrl,
            apiKey,
            keyId: config.apim.keyId,
            privateKeyPem: pem,
            ...clock,
            ...(options.tokenRetries !== undefined ? { retries: options.tokenRetries } : {}),
            ...(options.tokenBackoffMs !== undefined ? { backoffMs: options.tokenBackoffMs } : {}),
            onFetch: (outcome) => options.metrics?.tokenFetches.inc({ application, outcome }),
          });
        }
        tokenProviders.set(id, tokens);
      }
    }
    const limiterKey = apiKey ? applicationTag(apiKey) : 'open';
    let limiter = limiters.get(limiterKey);
    if (!limiter) {
      const previousLimiter = options.previous?.limiters.get(limiterKey);
      const limit = rules.apim.rateLimit
        ? {
            ...rules.apim.rateLimit,
            burst: rules.apim.rateLimit.burst ?? Math.max(1, Math.ceil(rules.apim.rateLimit.requestsPerSecond)),
          }
        : undefined;
      // Kept across a reload when the limit is unchanged, so bursts and APIM's pauses carry over.
      limiter =
        previousLimiter &&
        JSON.stringify(options.previous?.rules.apim.rateLimit) === JSON.stringify(rules.apim.rateLimit)
          ? previousLimiter
          : new RateLimiter(limit);
      limiters.set(limiterKey, limiter);
    }
    asids.set(asid, { asid, config, tokens, userTokens, apiKey, limiter });
  }
  let cis2: Cis2Client | undefined;
  if (rules.cis2) {
    const auth = rules.cis2.clientAuth;
    await secret(
      options.resolveSecret,
      file,
      'cis2.clientAuth',
      auth.method === 'private_key_jwt' ? auth.privateKey : auth.secret,
    );
    cis2 = new Cis2Client(rules.cis2, options.resolveSecret, options.now);
  }
  const apimBase = new URL(rules.apim.baseUrl);
  const apimCa = rules.apim.ca ? await secret(options.resolveSecret, file, 'apim.ca', rules.apim.ca) : options.apimCa;
  const upstream = new Upstream(apimBase.origin, {
    connections: rules.apim.connections,
    connectTimeoutMs: rules.apim.timeouts.connectMs,
    headersTimeoutMs: rules.apim.timeouts.headersMs,
    bodyTimeoutMs: rules.apim.timeouts.bodyMs,
    ...(apimCa ? { ca: apimCa } : {}),
  });
  const legacy = await buildLegacyHost(file, rules, options);
  const prev = options.previous;
  const comparisons = comparisonsWanted(rules)
    ? (prev?.comparisons ??
      new ComparisonStore({
        ...(rules.comparison?.file ? { file: rules.comparison.file } : {}),
        ...(rules.comparison ? { maxBytes: rules.comparison.maxBytes, maxFiles: rules.comparison.maxFiles } : {}),
        appRestricted: (code: string) => ENDPOINTS.some((e) => e.code === code && e.appRestricted),
      }))
    : undefined;
  const stores = prev
    ? { store: prev.store, pendingSignIns: prev.pendingSignIns, signInCodes: prev.signInCodes }
    : options.store
      ? { store: options.store, pendingSignIns: options.pendingSignIns, signInCodes: options.signInCodes }
      : await buildStores(file, rules, options);
  const now = options.now ?? Date.now;
  return {
    file,
    rules,
    asids,
    tokenProviders,
    apimBase,
    upstream,
    store: stores.store,
    cis2,
    pendingSignIns: stores.pendingSignIns ?? new MemoryEphemeralStore<PendingSignIn>(10_000, now),
    signInCodes: stores.signInCodes ?? new MemoryEphemeralStore<SignInGrant>(10_000, now),
    renewals: prev?.renewals ?? new Map(),
    limiters,
    retryBudget: prev?.retryBudget ?? new RetryBudget(),
    legacy,
    comparisons,
    shadowState: newShadowState(),
    recorder: rules.record
      ? (prev?.recorder ??
        new TrafficRecorder({
          file: rules.record.file,
          maxBytes: rules.record.maxBytes,
          maxFiles: rules.record.maxFiles,
          ...(rules.record.codes ? { codes: rules.record.codes } : {}),
        }))
      : undefined,
    adminToken: rules.admin?.token
      ? await secret(options.resolveSecret, file, 'admin.token', rules.admin.token)
      : undefined,
    metrics: options.metrics,
    inFlight: 0,
    now,
  };
}

/** Comparison is on when any route shadows, or the rules configure it. */
function comparisonsWanted(rules: Rules): boolean {
  const m = rules.modes;
  const modes = [m.default, ...Object.values(m.routes).map((r) => (typeof r === 'string' ? r : r.mode))];
  return rules.comparison !== undefined || modes.includes('shadow');
}

/** The legacy host: its base URL, and mutual TLS with the endpoint certificate when configured. */
async function buildLegacyHost(file: string, rules: Rules, options: RuntimeOptions): Promise<LegacyHost> {
  const baseUrl = new URL(rules.legacy.baseUrl ?? `https://${rules.legacy.host}/ers-api`);
  const tls = rules.legacy.tls;
  const cert = tls ? await secret(options.resolveSecret, file, 'legacy.tls.certificate', tls.certificate) : undefined;
  const key = tls ? await secret(options.resolveSecret, file, 'legacy.tls.privateKey', tls.privateKey) : undefined;
  const ca = tls?.ca ? await secret(options.resolveSecret, file, 'legacy.tls.ca', tls.ca) : undefined;
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
 * The session store the rules (or ERS_BRIDGE_SESSION_STORE) ask for. Redis records are encrypted: the keyring's
 * secrets are resolved here, so a missing key fails at start with the file and field named.
 */
async function buildStores(
  file: string,
  rules: Rules,
  options: RuntimeOptions,
): Promise<{
  store: SessionStore;
  pendingSignIns?: EphemeralStore<PendingSignIn>;
  signInCodes?: EphemeralStore<SignInGrant>;
}> {
  const s = rules.sessions;
  const override = (options.env ?? process.env)['ERS_BRIDGE_SESSION_STORE'];
  let url: string | undefined;
  if (override === 'memory') url = undefined;
  else if (override && /^rediss?:\/\//.test(override)) url = override;
  else if (override) throw new RulesError('ERS_BRIDGE_SESSION_STORE', '', 'expected memory or a redis:// URL');
  else if (s.store === 'redis')
    url = await secretOrValue(options.resolveSecret, file, 'sessions.redis.url', s.redis!.url);
  if (!url) {
    return {
      store: new MemorySessionStore({
        idleTimeoutSeconds: s.idleTimeoutSeconds,
        maxSessions: s.maxSessions,
        ...(options.now ? { now: options.now } : {}),
      }),
    };
  }
  if (!s.encryption) {
    throw new RulesError(
      file,
      'sessions.encryption',
      'expected encryption keys: a Redis session store holds tokens, encrypted at rest',
    );
  }
  const keys: Record<string, string> = {};
  for (const [kid, ref] of Object.entries(s.encryption.keys)) {
    keys[kid] = await secret(options.resolveSecret, file, `sessions.encryption.keys.${kid}`, ref);
  }
  let keyring: Keyring;
  try {
    keyring = new Keyring(keys, s.encryption.current);
  } catch (e) {
    if (e instanceof KeyringError) throw new RulesError(file, 'sessions.encryption', `expected ${e.message}`);
    throw e;
  }
  const prefix = s.redis?.keyPrefix ?? 'ers-bridge:';
  const timeoutMs = s.redis?.timeoutMs ?? 2_000;
  const redis = connectRedis(url, timeoutMs, options.logger);
  return {
    store: new RedisSessionStore(redis, {
      url,
      keyPrefix: prefix,
      keyring,
      idleTimeoutSeconds: s.idleTimeoutSeconds,
      timeoutMs,
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.now ? { now: options.now } : {}),
    }),
    pendingSignIns: new RedisEphemeralStore<PendingSignIn>(redis, `${prefix}signin:`, keyring),
    signInCodes: new RedisEphemeralStore<SignInGrant>(redis, `${prefix}code:`, keyring),
  };
}

async function secretOrValue(resolve: SecretResolver, file: string, path: string, value: string): Promise<string> {
  return /^(env|file):/.test(value) ? secret(resolve, file, path, value) : value;
}

/**
 * Closes a runtime's connections. With `shared` false (a runtime replaced by a reload), what carried over to its
 * successor — stores, comparison store, recorder — stays open.
 */
export async function closeRuntime(rt: Runtime, shared = true): Promise<void> {
  await rt.upstream.close();
  await rt.legacy.upstream.close();
  if (shared) {
    await rt.comparisons?.close();
    await rt.recorder?.close();
    await rt.store.close();
    await rt.pendingSignIns.close();
    await rt.signInCodes.close();
  }
}
