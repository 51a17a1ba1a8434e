/**
 * Benchmark stand-ins, each run in its own process (node:http, keep-alive):
 *
 *   node --import tsx bench/upstream.ts apim    — the fake APIM e-RS API: GET /referrals/FHIR/STU3/ReferralRequest/
 *                                                  000000070000 answers the A005 example (Unbooked.json) with
 *                                                  `_baseUrl_` replaced by its own base. Refuses a call without a
 *                                                  bearer token (401) or one that still carries a legacy header (400),
 *                                                  so a proxy that forgets a header rewrite shows up as non-2xx.
 *   node --import tsx bench/upstream.ts legacy  — the fake legacy HSCN host for shadow mode: A001/A002 and the same
 *                                                  A005 answer under /ers-api/STU3/v1 with links at its own base.
 *
 * Prints `READY <origin>` on stdout once listening. GET /__stats answers the counters as JSON; POST /__gc runs a full
 * garbage collection when node was given --expose-gc (the bench's settle step: what a heavy run left in this process is
 * collected before the next target is measured, not during its run).
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const mode = process.argv[2];
if (mode !== 'apim' && mode !== 'legacy') {
  console.error('usage: upstream.ts apim|legacy');
  process.exit(2);
}

const FIXTURE = readFileSync(
  new URL('../fixtures/ers-api/examples/stu3/retrieveReferralRequest/responses/Unbooked.json', import.meta.url),
  'utf8',
);
const UBRN_PATH = 'ReferralRequest/000000070000';
/** `connections`: TCP connections accepted (a keep-alive client opens a few and reuses them). */
const stats = { served: 0, unauthorised: 0, leakedLegacyHeaders: 0, notFound: 0, sessions: 0, connections: 0 };
let body = Buffer.alloc(0);
let dataPath = '';
let txn = 0;
const txnPrefix = `${process.pid.toString(16).padStart(8, '0')}-bench-4000-8000-`;

function send(res: ServerResponse, status: number, payload: Buffer | string, type = 'application/fhir+json'): void {
  const buf = typeof payload === 'string' ? Buffer.from(payload) : payload;
  res.writeHead(status, { 'content-type': type, 'content-length': buf.length });
  res.end(buf);
}

function collect(res: ServerResponse): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  send(res, gc ? 204 : 501, '', 'text/plain');
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function apim(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET' && req.url === dataPath) {
    const auth = req.headers['authorization'];
    if (typeof auth !== 'string' || !auth.startsWith('Bearer ') || auth.length < 10) {
      stats.unauthorised++;
      return send(res, 401, '{"error":"missing bearer token"}', 'application/json');
    }
    if (
      req.headers['xapi_asid'] !== undefined ||
      req.headers['http_x_session_key'] !== undefined ||
      req.headers['xapi-asid'] !== undefined
    ) {
      stats.leakedLegacyHeaders++;
      return send(res, 400, '{"error":"legacy header reached APIM"}', 'application/json');
    }
    stats.served++;
    txn++;
    res.writeHead(200, {
      'content-type': 'application/fhir+json',
      'content-length': body.length,
      etag: 'W/"5"',
      'x-request-id': `${txnPrefix}${txn.toString(16).padStart(12, '0')}-1`,
    });
    res.end(body);
    return;
  }
  if (req.url === '/__stats') return send(res, 200, JSON.stringify(stats), 'application/json');
  if (req.method === 'POST' && req.url === '/__gc') return collect(res);
  stats.notFound++;
  send(res, 404, '{"error":"not found"}', 'application/json');
}

const SESSION_PREFIX = '/ers-api/v1/ProfessionalSession';
const TYPE_INFO = 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession';
const PERMISSION = { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69', orgName: 'BENCH NHS TRUST' };

function legacySession(id: string, permission: unknown) {
  return {
    typeInfo: TYPE_INFO,
    id,
    token: 'bench',
    user: { identifier: '000000000001', permissions: [PERMISSION] },
    permission,
  };
}

async function legacy(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method === 'GET' && req.url === dataPath) {
    stats.served++;
    txn++;
    res.writeHead(200, {
      'content-type': 'application/fhir+json',
      'content-length': body.length,
      etag: 'W/"5"',
      X_ERS_TRANSACTION_ID: `${txnPrefix}${txn.toString(16).padStart(12, '0')}-1`,
    });
    res.end(body);
    return;
  }
  if (req.method === 'POST' && req.url === SESSION_PREFIX) {
    await readBody(req);
    stats.sessions++;
    return send(res, 201, JSON.stringify(legacySession(`legacy-session-${stats.sessions}`, null)), 'application/json');
  }
  if (req.method === 'PUT' && req.url?.startsWith(`${SESSION_PREFIX}/`)) {
    const sent = JSON.parse((await readBody(req)) || '{}') as { permission?: unknown };
    const id = decodeURIComponent(req.url.slice(SESSION_PREFIX.length + 1));
    return send(res, 200, JSON.stringify(legacySession(id, sent.permission ?? PERMISSION)), 'application/json');
  }
  if (req.url === '/__stats') return send(res, 200, JSON.stringify(stats), 'application/json');
  if (req.method === 'POST' && req.url === '/__gc') return collect(res);
  stats.notFound++;
  send(res, 404, '{"error":"not found"}', 'application/json');
}

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  if (mode === 'apim') apim(req, res);
  else
    legacy(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, '{}', 'application/json');
    });
});
server.headersTimeout = 66_000;
server.on('connection', () => {
  stats.connections++;
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  if (mode === 'apim') {
    dataPath = `/referrals/FHIR/STU3/${UBRN_PATH}`;
    body = Buffer.from(FIXTURE.replaceAll('_baseUrl_', `${origin}/referrals/FHIR`), 'utf8');
  } else {
    dataPath = `/ers-api/STU3/v1/${UBRN_PATH}`;
    body = Buffer.from(FIXTURE.replaceAll('_baseUrl_/STU3/', `${origin}/ers-api/STU3/v1/`), 'utf8');
  }
  process.stdout.write(`READY ${origin}\n`);
});

const stop = () => {
  server.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
