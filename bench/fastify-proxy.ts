/**
 * The baseline "a team might hack this together": @fastify/http-proxy doing only the static rewrite —
 * /ers-api/STU3/v1/* → <upstream>/referrals/FHIR/STU3/*, a static bearer token added, the legacy headers removed.
 * No sessions, no token management, no body rewriting. Undici pool with keep-alive (64 connections, like ers-bridge's
 * default apim.connections).
 *
 *   node --import tsx bench/fastify-proxy.ts <upstream origin> <static token>
 *
 * Prints `READY <origin>` on stdout once listening.
 */
import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const [upstream, token] = process.argv.slice(2);
if (!upstream || !token) {
  console.error('usage: fastify-proxy.ts <upstream origin> <static token>');
  process.exit(2);
}

const app = Fastify({ logger: false });
await app.register(proxy, {
  upstream,
  prefix: '/ers-api/STU3/v1',
  rewritePrefix: '/referrals/FHIR/STU3',
  undici: { connections: 64, pipelining: 1, keepAliveTimeout: 60_000 },
  replyOptions: {
    rewriteRequestHeaders: (_req, headers) => {
      const out: Record<string, string | string[] | undefined> = { ...headers, authorization: `Bearer ${token}` };
      delete out['xapi_asid'];
      delete out['http_x_session_key'];
      return out;
    },
  },
});
const address = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`READY ${address}\n`);

const stop = () => {
  app.server.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
