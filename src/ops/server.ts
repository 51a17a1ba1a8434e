/**
 * The ops surface, on a listener of its own (server.opsHost, server.opsPort; 8081 by default), apart from the legacy
 * port: `/healthz` (the process is alive), `/readyz` (rules loaded, session store reached — see storeReadiness —, a
 * token held or obtainable for each APIM application) and `/metrics` (Prometheus). Kept off the legacy port so that whoever may
 * call the legacy API cannot read the operational detail, and whoever may scrape cannot call the API: each port gets
 * its own network rule. Reads the current runtime per request; anything else is a plain JSON 404, not a legacy
 * answer (nothing here is e-RS).
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { Metrics } from '../admin/metrics.js';
import type { Runtime, RuntimeHolder } from '../runtime/runtime.js';
import { cachedLiveSessions } from './live-sessions.js';

export interface OpsServerOptions {
  logger: Logger;
  /** The process's metrics, the same registry the legacy surface records into. */
  metrics: Metrics;
}

/** The ops server, not yet listening: `await ops.listen({ host, port })`, and close it after the legacy server. */
export async function buildOpsServer(holder: RuntimeHolder, options: OpsServerOptions): Promise<FastifyInstance> {
  const { logger: log, metrics } = options;
  // A scrape reads the last count of live sessions (at most one store count per 15 s), never a SCAN of its own.
  metrics.liveSessions = cachedLiveSessions(holder);

  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // Probes and scrapes arrive every few seconds: no log line each.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    return503OnClosing: true,
    bodyLimit: 1024,
    requestTimeout: 30_000,
  });

  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'not found' }));
  app.setErrorHandler((e, _req, reply) => {
    const err = e instanceof Error ? e : new Error(String(e));
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) log.error({ err: { type: err.name, message: err.message } }, 'ops surface error');
    return reply
      .code(status >= 400 && status < 600 ? status : 500)
      .send({ error: status >= 500 ? 'error' : 'refused' });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const rt = holder.current;
    const [reachable, tokens] = await Promise.all([rt.shared.store.ping(), tokenReadiness(rt)]);
    const store = storeReadiness(reachable, rt.shared.store.everReached?.() ?? true, rt.rules.server);
    const ready = store.ready && tokens.every((t) => t.ok);
    // What is unready, by name; nothing of the machine (no file paths, no addresses).
    const body = {
      status: !ready ? 'unready' : reachable ? 'ready' : 'degraded',
      environment: rt.rules.environment,
      checks: {
        rules: 'loaded',
        sessionStore: store.check,
        apimTokens: tokens.map((t) => ({ application: t.application, status: t.ok ? 'ok' : 'unobtainable' })),
      },
    };
    return reply.code(ready ? 200 : 503).send(body);
  });

  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  return app;
}

/**
 * The session store's part in readiness. Every replica shares the store, so its outage is not this replica's fault
 * and another replica would do no better: staying ready keeps clients getting the legacy 503 + Retry-After they
 * understand, where pulling every replica at once would leave them refused connections. A store never reached since
 * start is another matter (a wrong address or password in a new replica): unready, so a rolling update with such a
 * setting stops instead of replacing working replicas. `readyDuringStoreOutage: false` makes any outage unready.
 */
export function storeReadiness(
  reachable: boolean,
  everReached: boolean,
  server: { readyDuringStoreOutage: boolean },
): { ready: boolean; check: 'reachable' | 'unreachable' | 'never reached' } {
  if (reachable) return { ready: true, check: 'reachable' };
  if (!everReached) return { ready: false, check: 'never reached' };
  return { ready: server.readyDuringStoreOutage, check: 'unreachable' };
}

/** Whether each APIM application's token is held or can be had now (bounded wait; failures are remembered briefly). */
async function tokenReadiness(rt: Runtime): Promise<Array<{ application: string; ok: boolean }>> {
  return Promise.all(
    [...new Set(rt.tokenProviders.values())].map(async (p) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), 3000);
      });
      const ok = await Promise.race([
        p.get().then(
          () => true,
          () => false,
        ),
        timeout,
      ]);
      clearTimeout(timer);
      return { application: p.application, ok };
    }),
  );
}
