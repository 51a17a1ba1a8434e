/**
 * Health and metrics: `/healthz` (the process is alive), `/readyz` (rules loaded, session store reachable, a token
 * held or obtainable for each APIM application) and `/metrics` (Prometheus). Reads the current runtime per request.
 */
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../admin/metrics.js';
import type { Runtime, RuntimeHolder } from '../runtime/runtime.js';

export interface OpsOptions {
  holder: RuntimeHolder;
  metrics: Metrics;
}

export async function opsPlugin(app: FastifyInstance, options: OpsOptions): Promise<void> {
  const { holder, metrics } = options;
  metrics.liveSessions = () => holder.current.shared.store.size();

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const rt = holder.current;
    const [store, tokens] = await Promise.all([rt.shared.store.ping(), tokenReadiness(rt)]);
    const ready = store && tokens.every((t) => t.ok);
    const body = {
      status: ready ? 'ready' : 'unready',
      environment: rt.rules.environment,
      rulesFile: rt.file,
      checks: {
        rules: 'loaded',
        sessionStore: store ? 'reachable' : 'unreachable',
        apimTokens: tokens.map((t) => ({ application: t.application, status: t.ok ? 'ok' : 'unobtainable' })),
      },
    };
    return reply.code(ready ? 200 : 503).send(body);
  });

  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
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
