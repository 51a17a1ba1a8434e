/**
 * The runtime built from one rules file: per-ASID settings with their secrets resolved, one token provider per APIM
 * application, the APIM upstream pool and the session store. Requests take a reference to the runtime they start
 * with, so a reload can swap it without disturbing calls in flight.
 */

import { Upstream } from './apim/upstream.js';
import { ApplicationTokenProvider } from './auth/application-token.js';
import { importRs512PrivateKey, KeyError } from './auth/keys.js';
import { RulesError } from './rules/load.js';
import type { AsidConfig, Rules } from './rules/schema.js';
import { SecretError, type SecretResolver } from './rules/secrets.js';
import { MemorySessionStore } from './sessions/memory-store.js';
import type { SessionStore } from './sessions/store.js';

export interface AsidRuntime {
  asid: string;
  config: AsidConfig;
  /** Token provider of the APIM application; undefined when APIM needs no token (sandbox). */
  tokens: ApplicationTokenProvider | undefined;
  /** The resolved API key, for display masked only. */
  apiKey: string | undefined;
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
  /** The clock (epoch ms) sessions and tokens use; injectable for tests. */
  now: () => number;
}

export interface RuntimeOptions {
  resolveSecret: SecretResolver;
  /** Reuse a store across reloads (sessions survive a rules reload). */
  store?: SessionStore;
  now?: () => number;
  /** Extra CA certificates for APIM (tests, stand-ins on TLS). */
  apimCa?: string;
  tokenRetries?: number;
  tokenBackoffMs?: number;
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
  for (const [asid, config] of Object.entries(rules.asids)) {
    let tokens: ApplicationTokenProvider | undefined;
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
      const id = `${tokenUrl}|${apiKey}`;
      tokens = tokenProviders.get(id);
      if (!tokens) {
        tokens = new ApplicationTokenProvider({
          tokenUrl,
          apiKey,
          keyId: config.apim.keyId,
          privateKeyPem: pem,
          ...(options.now ? { now: options.now } : {}),
          ...(options.tokenRetries !== undefined ? { retries: options.tokenRetries } : {}),
          ...(options.tokenBackoffMs !== undefined ? { backoffMs: options.tokenBackoffMs } : {}),
        });
        tokenProviders.set(id, tokens);
      }
    }
    asids.set(asid, { asid, config, tokens, apiKey });
  }
  const apimBase = new URL(rules.apim.baseUrl);
  const upstream = new Upstream(apimBase.origin, {
    connections: rules.apim.connections,
    connectTimeoutMs: rules.apim.timeouts.connectMs,
    headersTimeoutMs: rules.apim.timeouts.headersMs,
    bodyTimeoutMs: rules.apim.timeouts.bodyMs,
    ...(options.apimCa ? { ca: options.apimCa } : {}),
  });
  const store =
    options.store ??
    new MemorySessionStore({
      idleTimeoutSeconds: rules.sessions.idleTimeoutSeconds,
      maxSessions: rules.sessions.maxSessions,
      ...(options.now ? { now: options.now } : {}),
    });
  return { file, rules, asids, tokenProviders, apimBase, upstream, store, now: options.now ?? Date.now };
}

export async function closeRuntime(rt: Runtime, closeStore = true): Promise<void> {
  await rt.upstream.close();
  if (closeStore) await rt.store.close();
}
