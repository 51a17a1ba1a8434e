/**
 * Two defects that came from the old shape of the request path, proved fixed on real sockets:
 * - a rules reload that changes `admin.token` takes effect at once: the new token opens /admin, the old one gets 401
 *   (the guard used to capture the token when the routes were registered);
 * - a client that goes away mid-upload, or while APIM is still answering, is recorded once ("aborted by client", no
 *   stack trace), counted, and the runtime's in-flight count returns to 0 (fastify fires onRequestAbort, or
 *   nothing at all, for those — never onResponse).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { request } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RulesReloader } from '../../src/rules/reload.js';
import type { Rules } from '../../src/rules/schema.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime, type Runtime } from '../../src/runtime/runtime.js';
import { APP_ASID, type Harness, openSession, startHarness } from '../helpers/harness.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function rulesText(h: Harness, adminTokenRef: string): string {
  return `
environment: test
legacy: { host: api.int1.ers.ncrs.nhs.uk }
apim:
  baseUrl: ${h.standIn.baseUrl}
  tokenUrl: ${h.standIn.tokenUrl}
asids:
  "${APP_ASID}":
    accessMode: application-restricted
    apim: { apiKey: "env:TEST_API_KEY", keyId: test-1, privateKey: "env:TEST_PRIVATE_KEY" }
    organisation: { odsCode: R69, name: TEST NHS TRUST }
    businessFunction: SERVICE_PROVIDER_CLINICIAN
admin: { token: "${adminTokenRef}" }
`;
}

async function adminStatus(h: Harness, token: string | undefined): Promise<number> {
  const res = await request(`${h.bridgeUrl}/admin`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  await res.body.dump();
  return res.statusCode;
}

describe('a rules reload that changes admin.token', () => {
  it('opens /admin to the new token at once and refuses the old one', async () => {
    const h = await startHarness();
    cleanups.push(() => h.close());
    const first = randomBytes(24).toString('hex');
    const second = randomBytes(24).toString('hex');
    const env = {
      TEST_API_KEY: h.secrets.apiKey,
      TEST_PRIVATE_KEY: h.secrets.privateKeyPem,
      ADMIN_TOKEN_A: first,
      ADMIN_TOKEN_B: second,
    };
    const dir = mkdtempSync(join(tmpdir(), 'ers-bridge-reload-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'rules.yaml');
    writeFileSync(file, rulesText(h, 'env:ADMIN_TOKEN_A'));
    const reloader = new RulesReloader({
      file,
      holder: h.holder,
      logger: pino({ level: 'silent' }),
      build: (rules: Rules, previous: Runtime) =>
        buildRuntime(file, rules, { resolveSecret: secretResolver(env), previous }),
    });

    // Started without an admin token: the admin surface does not exist.
    expect(await adminStatus(h, first)).toBe(404);

    expect(await reloader.reload('SIGHUP')).toEqual({ applied: true });
    expect(await adminStatus(h, first)).toBe(303); // in: redirected to the comparison pages
    expect(await adminStatus(h, undefined)).toBe(401);

    writeFileSync(file, rulesText(h, 'env:ADMIN_TOKEN_B'));
    expect(await reloader.reload('SIGHUP')).toEqual({ applied: true });
    expect(await adminStatus(h, second)).toBe(303);
    expect(await adminStatus(h, first)).toBe(401);
  });
});

/** An APIM stand-in for A005 that answers after `delayMs` (the token still comes from the harness's stand-in). */
async function slowApim(delayMs: number): Promise<{ server: Server; origin: string; hits: () => number }> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    req.resume();
    const t = setTimeout(() => {
      if (!res.destroyed) {
        res.writeHead(200, { 'content-type': 'application/fhir+json', 'x-request-id': 'slow-1' });
        res.end(JSON.stringify({ resourceType: 'ReferralRequest', id: '000000070000' }));
      }
    }, delayMs);
    res.on('close', () => clearTimeout(t));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, origin: `http://127.0.0.1:${port}`, hits: () => hits };
}

/** Sends raw bytes as a legacy client and closes the connection after `closeAfterMs`, without reading an answer. */
async function sendAndLeave(url: string, bytes: string, closeAfterMs: number): Promise<void> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => undefined);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(bytes);
  await new Promise((r) => setTimeout(r, closeAfterMs)); // the client's own pace: it leaves after this long
  socket.destroy();
}

function linesFor(h: Harness, correlationId: string) {
  return h.logs
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l['correlationId'] === correlationId);
}

async function requestsCounted(h: Harness, aCode: string, status: string): Promise<number> {
  const res = await request(`${h.opsUrl}/metrics`);
  const text = await res.body.text();
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('ers_bridge_requests_total{') &&
        l.includes(`a_code="${aCode}"`) &&
        l.includes(`status="${status}"`),
    );
  return line ? Number(line.split(' ').at(-1)) : 0;
}

function expectRecordedOnceAsAborted(h: Harness, correlationId: string, aCode: string): void {
  const lines = linesFor(h, correlationId);
  expect(lines.map((l) => l['msg'])).toEqual(['legacy call aborted by client']);
  const [line] = lines;
  expect(line!['level']).toBeLessThanOrEqual(40); // info or warn
  expect(line).toMatchObject({ aCode, aborted: true, status: 499, asid: APP_ASID });
  expect(JSON.stringify(line)).not.toMatch(/\bat .+:\d+:\d+/); // no stack trace
  expect(h.logs.some((l) => l.includes('"internal error"'))).toBe(false);
}

describe('a client that goes away before its answer', () => {
  it('mid-upload: recorded once as aborted by client, counted, in-flight back to 0', async () => {
    const h = await startHarness();
    cleanups.push(() => h.close());
    const key = await openSession(h);
    const correlationId = 'abort-mid-upload-1';
    const head = [
      'POST /ers-api/STU3/v1/ReferralRequest/$ers.fetchworklist HTTP/1.1',
      `Host: 127.0.0.1`,
      `XAPI_ASID: ${APP_ASID}`,
      `HTTP_X_SESSION_KEY: ${key}`,
      'Content-Type: application/fhir+json',
      'Content-Length: 100000',
      `X-Correlation-ID: ${correlationId}`,
      '',
      '',
    ].join('\r\n');
    // Half a body, then gone.
    await sendAndLeave(h.bridgeUrl, `${head}{"resourceType":"Parameters","parameter":[`, 100);

    await vi.waitFor(() => expect(linesFor(h, correlationId)).toHaveLength(1), { timeout: 5_000, interval: 20 });
    expectRecordedOnceAsAborted(h, correlationId, 'A008');
    expect(h.holder.current.inFlight).toBe(0);
    expect(await requestsCounted(h, 'A008', '499')).toBe(1);
    expect(h.standIn.received.filter((r) => r.url.includes('fetchworklist'))).toHaveLength(0);
    // Later calls are recorded as usual, and counted once each.
    await new Promise((r) => setTimeout(r, 200));
    expect(linesFor(h, correlationId)).toHaveLength(1);
  });

  it('while APIM is answering: recorded once as aborted by client, counted, in-flight back to 0', async () => {
    const apim = await slowApim(800);
    cleanups.push(() => new Promise<void>((r) => apim.server.close(() => r())));
    const h = await startHarness({
      rulesExtra: (rules) => {
        rules.apim.baseUrl = `${apim.origin}/referrals/FHIR`;
      },
    });
    cleanups.push(() => h.close());
    const key = await openSession(h);
    const correlationId = 'abort-while-answering-1';
    const get = [
      'GET /ers-api/STU3/v1/ReferralRequest/000000070000 HTTP/1.1',
      'Host: 127.0.0.1',
      `XAPI_ASID: ${APP_ASID}`,
      `HTTP_X_SESSION_KEY: ${key}`,
      `X-Correlation-ID: ${correlationId}`,
      '',
      '',
    ].join('\r\n');
    // The whole request is sent; the client leaves while APIM is still working on it.
    await sendAndLeave(h.bridgeUrl, get, 200);
    expect(apim.hits()).toBe(1);

    await vi.waitFor(() => expect(linesFor(h, correlationId)).toHaveLength(1), { timeout: 5_000, interval: 20 });
    expectRecordedOnceAsAborted(h, correlationId, 'A005');
    expect(h.holder.current.inFlight).toBe(0);
    expect(await requestsCounted(h, 'A005', '499')).toBe(1);
  });
});
