/**
 * What lives as long as the process, whatever rules file is loaded: the session store and the sign-in stores, the
 * metrics, the comparison store and the traffic recorder (made when rules first ask for them), user token renewals
 * in flight, the retry budget, the shadow counters and the clock. A rules reload builds a new Runtime around the
 * same ProcessState.
 */
import type { Logger } from 'pino';
import type { Metrics } from '../admin/metrics.js';
import { RetryBudget } from '../apim/rate-limiter.js';
import type { PendingSignIn } from '../auth/cis2-identity.js';
import type { SignInGrant } from '../auth/sign-in-grant.js';
import type { TrafficRecorder } from '../comparison/recorder.js';
import type { ComparisonStore } from '../comparison/store.js';
import { RulesError } from '../rules/load.js';
import { parseHostPort, type Rules } from '../rules/schema.js';
import { SecretError, type SecretResolver } from '../rules/secrets.js';
import { Keyring, KeyringError } from '../sessions/crypto.js';
import { type EphemeralStore, MemoryEphemeralStore } from '../sessions/ephemeral-store.js';
import { MemorySessionStore } from '../sessions/memory-store.js';
import type { RedisConnection, RedisTarget } from '../sessions/redis-store.js';
import {
  MemorySignInSlots,
  pendingStoreCapacity,
  RedisSignInSlots,
  type SignInSlots,
} from '../sessions/signin-slots.js';
import { type SessionStore, sessionLimitsOf } from '../sessions/store.js';
import type { Clock } from './clock.js';

/** Counters of the shadow traffic (for metrics and tests). */
export interface ShadowCounters {
  inFlight: number;
  sent: number;
  dropped: number;
  skipped: number;
  failed: number;
}

export interface ProcessState {
  store: SessionStore;
  /** Sign-ins in progress, by OAuth state and browser. */
  pendingSignIns: EphemeralStore<PendingSignIn>;
  /** Sign-ins in progress counted per ASID and per client address (src/sessions/signin-slots.ts). */
  signInSlots: SignInSlots;
  /** One-time sign-in codes shown to users, ready to become A001 sessions. */
  signInCodes: EphemeralStore<SignInGrant>;
  metrics: Metrics | undefined;
  /** Comparison records and aggregates, once rules have asked for comparison. */
  comparisons: ComparisonStore | undefined;
  /** Legacy traffic recording for `ers-bridge replay`, once rules have asked for it. */
  recorder: TrafficRecorder | undefined;
  /** User token renewals in flight in this process, by ASID and session (one at a time per session). */
  renewals: Map<string, Promise<string>>;
  /** The share of calls that may be retried after a transport failure. */
  retryBudget: RetryBudget;
  shadow: ShadowCounters;
  clock: Clock;
  /** The Redis of the session store, when sessions are on Redis: the comparisons are shared there too. */
  redis?: { connection: RedisConnection; keyPrefix: string };
}

export interface StoreChoice {
  resolveSecret: SecretResolver;
  /** The environment (ERS_BRIDGE_SESSION_STORE: memory or a redis:// URL, overriding the rules). */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** A store given by the caller (tests): used instead of the rules' choice. */
  store?: SessionStore;
  pendingSignIns?: EphemeralStore<PendingSignIn>;
  signInCodes?: EphemeralStore<SignInGrant>;
}

/** The process's state for the first rules file it loads. */
export async function buildProcessState(
  file: string,
  rules: Rules,
  choice: StoreChoice,
  clock: Clock,
  metrics: Metrics | undefined,
): Promise<ProcessState> {
  const stores = choice.store
    ? { store: choice.store, pendingSignIns: choice.pendingSignIns, signInCodes: choice.signInCodes }
    : await buildStores(file, rules, choice, clock, metrics);
  const now = () => clock.now();
  return {
    store: stores.store,
    pendingSignIns: stores.pendingSignIns ?? new MemoryEphemeralStore<PendingSignIn>(pendingStoreCapacity(rules), now),
    signInSlots: ('signInSlots' in stores ? stores.signInSlots : undefined) ?? new MemorySignInSlots(clock),
    signInCodes: stores.signInCodes ?? new MemoryEphemeralStore<SignInGrant>(10_000, now),
    metrics,
    comparisons: undefined,
    recorder: undefined,
    renewals: new Map(),
    retryBudget: new RetryBudget(0.1, 3, 10_000, clock),
    shadow: { inFlight: 0, sent: 0, dropped: 0, skipped: 0, failed: 0 },
    clock,
    ...('redis' in stores && stores.redis ? { redis: stores.redis } : {}),
  };
}

/** Closes what the process holds: the stores, the comparison store and the recorder. */
export async function closeProcessState(shared: ProcessState): Promise<void> {
  await shared.comparisons?.close();
  await shared.recorder?.close();
  await shared.store.close();
  await shared.pendingSignIns.close();
  await shared.signInCodes.close();
}

export async function secret(resolve: SecretResolver, file: string, path: string, ref: string): Promise<string> {
  try {
    return await resolve(ref);
  } catch (e) {
    if (e instanceof SecretError) throw new RulesError(file, path, e.message);
    throw e;
  }
}

/**
 * The session store the rules (or ERS_BRIDGE_SESSION_STORE) ask for. Redis records are encrypted: the keyring's
 * secrets are resolved here, so a missing key fails at start with the file and field named.
 */
async function buildStores(
  file: string,
  rules: Rules,
  choice: StoreChoice,
  clock: Clock,
  metrics: Metrics | undefined,
): Promise<{
  store: SessionStore;
  pendingSignIns?: EphemeralStore<PendingSignIn>;
  signInCodes?: EphemeralStore<SignInGrant>;
  signInSlots?: SignInSlots;
  redis?: { connection: RedisConnection; keyPrefix: string };
}> {
  const s = rules.sessions;
  const now = () => clock.now();
  // Empty is not set (a compose override blanks the variable to hand the choice back to the rules).
  const override = (choice.env ?? process.env)['ERS_BRIDGE_SESSION_STORE'] || undefined;
  let target: RedisTarget | undefined;
  if (override === 'memory') target = undefined;
  else if (override && /^rediss?:\/\//.test(override)) target = override;
  else if (override) throw new RulesError('ERS_BRIDGE_SESSION_STORE', '', 'expected memory or a redis:// URL');
  else if (s.store === 'redis') target = await redisTargetOf(s.redis!, file, choice);
  const limits = sessionLimitsOf(s);
  if (!target) {
    const asids = Object.keys(rules.asids).length;
    if (asids * s.maxPerAsid > s.maxSessions) {
      choice.logger?.warn(
        { asids, maxPerAsid: s.maxPerAsid, maxSessions: s.maxSessions },
        'sessions.maxSessions is below ASIDs × maxPerAsid: once full, an ASID holding no session is refused A001 (SESSION_STORE_FULL) until sessions end',
      );
    }
    return {
      store: new MemorySessionStore({
        idleTimeoutSeconds: s.idleTimeoutSeconds,
        maxSessions: s.maxSessions,
        limits,
        now,
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
    keys[kid] = await secret(choice.resolveSecret, file, `sessions.encryption.keys.${kid}`, ref);
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
  // ioredis is loaded only when Redis is used: a memory-store process does without its ≈ 5 MB (issue 15).
  const { connectRedis, RedisEphemeralStore, RedisSessionStore } = await import('../sessions/redis-store.js');
  const acknowledgement = s.redis?.acknowledgement;
  const redis = connectRedis(target, timeoutMs, choice.logger, { heldWrites: (acknowledgement?.replicas ?? 0) > 0 });
  return {
    store: new RedisSessionStore(redis, {
      keyPrefix: prefix,
      keyring,
      idleTimeoutSeconds: s.idleTimeoutSeconds,
      absoluteTimeoutSeconds: s.absoluteTimeoutSeconds,
      limits,
      timeoutMs,
      acknowledgement,
      onUnacknowledged: (write) => metrics?.sessionWritesUnacknowledged.inc({ write }),
      ...(choice.logger ? { logger: choice.logger } : {}),
      now,
    }),
    pendingSignIns: new RedisEphemeralStore<PendingSignIn>(redis, `${prefix}signin:`, keyring),
    signInSlots: new RedisSignInSlots(redis, `${prefix}signin-slots:`, clock),
    signInCodes: new RedisEphemeralStore<SignInGrant>(redis, `${prefix}code:`, keyring),
    redis: { connection: redis, keyPrefix: prefix },
  };
}

/** The rules' `sessions.redis` as a connection target: the URL, the Sentinel or the cluster settings, secrets resolved. */
export async function redisTargetOf(
  r: NonNullable<Rules['sessions']['redis']>,
  file: string,
  choice: StoreChoice,
): Promise<RedisTarget> {
  if (r.url !== undefined) {
    return /^(env|file):/.test(r.url) ? await secret(choice.resolveSecret, file, 'sessions.redis.url', r.url) : r.url;
  }
  if (r.cluster !== undefined) {
    const c = r.cluster;
    return {
      nodes: c.nodes.map((a) => parseHostPort(a)!), // the schema accepted only host:port
      tls: c.tls,
      ...(c.username ? { username: c.username } : {}),
      ...(c.password
        ? { password: await secret(choice.resolveSecret, file, 'sessions.redis.cluster.password', c.password) }
        : {}),
    };
  }
  const t = r.sentinel!;
  const at = 'sessions.redis.sentinel';
  return {
    sentinels: t.sentinels.map((a) => parseHostPort(a)!), // the schema accepted only host:port
    masterName: t.masterName,
    tls: t.tls,
    ...(t.username ? { username: t.username } : {}),
    ...(t.password ? { password: await secret(choice.resolveSecret, file, `${at}.password`, t.password) } : {}),
    ...(t.sentinelUsername ? { sentinelUsername: t.sentinelUsername } : {}),
    ...(t.sentinelPassword
      ? { sentinelPassword: await secret(choice.resolveSecret, file, `${at}.sentinelPassword`, t.sentinelPassword) }
      : {}),
  };
}
