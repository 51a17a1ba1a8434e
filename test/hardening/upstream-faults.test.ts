/**
 * Hardening: APIM failing at the transport level. For every fault the legacy client gets a defined, legacy-shaped
 * answer (the status and `urn:ers-bridge:error` reason MIGRATION.md documents, diagnostics, no stack trace) and is
 * never left hanging; no upstream socket is leaked; connection failures are retried once for read-only calls only,
 * within the retry budget. (The mapping of undici's errors to legacy faults, as a table, is a unit test:
 * test/unit/upstream-faults.test.ts.)
 *
 * Every fake APIM is a real server on 127.0.0.1; the APIM stand-in still issues the application-restricted tokens.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Server as NetServer, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { clockAt } from '../../src/runtime/clock.js';
import { expectLegacyOutcome, type Harness, legacyCall, openSession, startHarness } from '../helpers/harness.js';
import {
  A005,
  A013,
  answered,
  apimAt,
  closeClientConnections,
  closedPort,
  expectNothingLeaked,
  type FakeServer,
  fakeHttp,
  fakeTcp,
  referral,
  tcpSockets,
  timedCall,
} from './support.js';

/** The fault each UBRN provokes at the fake APIM. */
const UBRN = {
  ok: '000000070000',
  slowHeaders: '100000000001',
  slowBody: '100000000002',
  resetMidBody: '100000000003',
  error503Outcome: '100000000004',
  error500Empty: '100000000005',
  error503Empty: '100000000006',
  badStatusLine: '100000000007',
  badHeader: '100000000008',
  rateLimitedBare: '100000000009',
  rateLimited7: '100000000010',
} as const;

const TIMEOUTS = { connectMs: 2_000, headersMs: 1_000, bodyMs: 1_000 };

const APIM_OUTCOME = {
  resourceType: 'OperationOutcome',
  meta: { profile: ['https://fhir.nhs.uk/STU3/StructureDefinition/eRS-OperationOutcome-1'] },
  issue: [
    {
      severity: 'error',
      code: 'transient',
      details: {
        coding: [
          {
            system: 'https://fhir.nhs.uk/STU3/CodeSystem/eRS-APIErrorCode-1',
            code: 'SERVICE_UNAVAILABLE',
            display: 'Service unavailable',
          },
        ],
      },
      diagnostics: 'e-RS is undergoing maintenance',
    },
  ],
};

/** Answers by UBRN (the last path segment); stalls are abandoned when the peer goes away. */
function faultyApim(req: IncomingMessage, res: ServerResponse): void {
  const id = (req.url ?? '').split('?', 1)[0]!.split('/').pop()!;
  const stall = (ms: number, then: () => void) => {
    const t = setTimeout(then, ms);
    res.on('close', () => clearTimeout(t));
  };
  const json = referral(id);
  const half = json.subarray(0, Math.floor(json.length / 2));
  const jsonHead = {
    'content-type': 'application/fhir+json',
    'content-length': String(json.length),
    etag: 'W/"5"',
    'x-request-id': '6d0e9f8e-0000-4000-8000-000000000001-1',
  };
  switch (id) {
    case UBRN.slowHeaders:
      stall(4_000, () => res.writeHead(200, jsonHead).end(json));
      return;
    case UBRN.slowBody:
      res.writeHead(200, jsonHead);
      res.write(half);
      stall(4_000, () => res.end(json.subarray(half.length)));
      return;
    case UBRN.resetMidBody:
      res.writeHead(200, jsonHead);
      res.write(half, () => req.socket.destroy());
      return;
    case UBRN.error503Outcome:
      res
        .writeHead(503, { 'content-type': 'application/fhir+json', 'x-request-id': 'apim-tx-503-1' })
        .end(JSON.stringify(APIM_OUTCOME));
      return;
    case UBRN.error500Empty:
      res.writeHead(500, { 'x-request-id': 'apim-tx-500-1' }).end();
      return;
    case UBRN.error503Empty:
      res.writeHead(503, { 'content-length': '0' }).end();
      return;
    case UBRN.badStatusLine:
      req.socket.end('HTTP/1.1 abc\r\n\r\n');
      return;
    case UBRN.badHeader:
      req.socket.end(
        'HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nBad Header: x\r\nContent-Length: 2\r\n\r\n{}',
      );
      return;
    case UBRN.rateLimitedBare:
      res.writeHead(429).end();
      return;
    case UBRN.rateLimited7:
      res.writeHead(429, { 'retry-after': '7' }).end();
      return;
    case 'att-stalls': // A006: a file that streams straight through, then stalls
      res.writeHead(200, { 'content-type': 'application/pdf', 'content-length': '4096' });
      res.write(Buffer.alloc(512, 0x25));
      stall(4_000, () => res.end(Buffer.alloc(4096 - 512)));
      return;
    default:
      res.writeHead(200, jsonHead).end(json);
  }
}

describe('transport faults at APIM → defined legacy answers', () => {
  let h: Harness;
  let fake: FakeServer;
  let key: string;
  let socketsBefore = 0;
  let connectedBefore = 0;
  let bearer: string | undefined;
  /** How far the runtime's clock (the rate limiter's) is ahead of real time. */
  let ahead = 0;
  const call = (ubrn: string, ms = 6_000) => timedCall(h, key, 'GET', A005(ubrn), {}, ms);

  beforeAll(async () => {
    fake = await fakeHttp(faultyApim);
    h = await startHarness({
      // A006 as APIM served it (a file streamed straight through); through A042: test/hardening/object-store.test.ts
      rules: { apim: { baseUrl: apimAt(fake.url), timeouts: { ...TIMEOUTS }, successors: { A006: 'direct' } } },
      runtime: { clock: clockAt(() => Date.now() + ahead) },
    });
    key = await openSession(h);
    const warm = await call(UBRN.ok);
    expect(warm.res.status).toBe(200);
    bearer = fake.hits[0]?.authorization?.replace(/^Bearer /, '');
    expect(bearer).toBeTruthy();
    await closeClientConnections(h); // the test client's keep-alive connections are not ers-bridge's
    socketsBefore = tcpSockets();
    connectedBefore = h.runtime.upstream.stats().connected;
  });
  afterAll(async () => {
    await h?.close();
    await fake?.close();
  });

  it('headers slower than apim.timeouts.headersMs → 504 UPSTREAM_TIMEOUT, answered soon after the timeout', async () => {
    const { res, ms } = await call(UBRN.slowHeaders);
    const issue = expectLegacyOutcome(res, 504, 'UPSTREAM_TIMEOUT');
    expect(issue.diagnostics).toMatch(/did not answer in time/);
    expect(ms).toBeGreaterThanOrEqual(TIMEOUTS.headersMs - 50);
    expect(ms).toBeLessThan(TIMEOUTS.headersMs + 2_000);
    expectNothingLeaked(res, [bearer, h.secrets.apiKey]);
  });

  it('a JSON body that stalls past apim.timeouts.bodyMs → 504 UPSTREAM_TIMEOUT', async () => {
    const { res, ms } = await call(UBRN.slowBody);
    const issue = expectLegacyOutcome(res, 504, 'UPSTREAM_TIMEOUT');
    expect(issue.diagnostics).toMatch(/stopped sending/);
    expect(ms).toBeLessThan(TIMEOUTS.bodyMs + 2_000);
    expectNothingLeaked(res, [bearer]);
  });

  it('the connection reset half-way through a JSON body → 502 UPSTREAM_UNREACHABLE, not retried', async () => {
    const before = fake.hits.length;
    const { res } = await call(UBRN.resetMidBody);
    const issue = expectLegacyOutcome(res, 502, 'UPSTREAM_UNREACHABLE');
    expect(issue.diagnostics).toMatch(/closed before it answered/);
    expect(fake.hits.length - before).toBe(1); // the answer had started: no retry
    expectNothingLeaked(res, [bearer]);
  });

  it("a 5xx with an OperationOutcome body is passed through: APIM's status and body", async () => {
    const { res } = await call(UBRN.error503Outcome);
    expect(res.status).toBe(503);
    expect(String(res.headers['content-type'])).toMatch(/^application\/fhir\+json/);
    expect(res.json()).toEqual(APIM_OUTCOME);
    expect(res.headers['x_ers_transaction_id']).toBe('apim-tx-503-1');
  });

  it.each([
    [UBRN.error500Empty, 500],
    [UBRN.error503Empty, 503],
  ])('a bare %s (HTTP %i, empty body) → the same status with UPSTREAM_EMPTY_ERROR', async (ubrn, status) => {
    const { res } = await call(ubrn);
    const issue = expectLegacyOutcome(res, status, 'UPSTREAM_EMPTY_ERROR');
    expect(issue.diagnostics).toContain(`HTTP ${status}`);
    expect(issue.diagnostics).toContain('A005');
    expectNothingLeaked(res, [bearer]);
  });

  it.each([
    ['a garbage status line', UBRN.badStatusLine],
    ['an invalid header name', UBRN.badHeader],
  ])('%s → 502 UPSTREAM_BAD_RESPONSE, not retried', async (_what, ubrn) => {
    const before = fake.hits.length;
    const { res } = await call(ubrn);
    const issue = expectLegacyOutcome(res, 502, 'UPSTREAM_BAD_RESPONSE');
    expect(issue.diagnostics).toMatch(/could not read/);
    expect(fake.hits.length - before).toBe(1);
    expectNothingLeaked(res, [bearer]);
  });

  it('a file (A006) that stalls mid-stream: the client connection is ended, never left hanging', async () => {
    const started = performance.now();
    const outcome = await answered(
      legacyCall(h, 'GET', '/ers-api/STU3/v1/Binary/att-stalls', {
        XAPI_ASID: '999000000001',
        HTTP_X_SESSION_KEY: key,
      }).then(
        (r) => ({ ok: true as const, status: r.status, length: r.body.length }),
        (e: Error) => ({ ok: false as const, error: e }),
      ),
      TIMEOUTS.bodyMs + 4_000,
      'stalled A006',
    );
    // The 200 and part of the file were already sent; what matters is that the client learns the body is incomplete.
    expect(outcome.ok, 'a truncated file must not look complete').toBe(false);
    expect(performance.now() - started).toBeLessThan(TIMEOUTS.bodyMs + 3_000);
  });

  it('a burst of concurrent faults: each call gets its own defined answer', async () => {
    const plan: Array<[string, number, string | undefined]> = [
      [UBRN.slowHeaders, 504, 'UPSTREAM_TIMEOUT'],
      [UBRN.slowHeaders, 504, 'UPSTREAM_TIMEOUT'],
      [UBRN.slowBody, 504, 'UPSTREAM_TIMEOUT'],
      [UBRN.slowBody, 504, 'UPSTREAM_TIMEOUT'],
      [UBRN.resetMidBody, 502, 'UPSTREAM_UNREACHABLE'],
      [UBRN.badStatusLine, 502, 'UPSTREAM_BAD_RESPONSE'],
      [UBRN.error500Empty, 500, 'UPSTREAM_EMPTY_ERROR'],
      [UBRN.ok, 200, undefined],
    ];
    const results = await Promise.all(plan.map(([ubrn]) => call(ubrn)));
    results.forEach(({ res }, i) => {
      const [, status, reason] = plan[i]!;
      if (reason) expectLegacyOutcome(res, status, reason);
      else expect(res.status).toBe(status);
    });
    const stats = h.runtime.upstream.stats();
    expect(stats.connected).toBeLessThanOrEqual(plan.length);
  });

  // The two 429 cases pause the application's limiter (APIM asked for it), so they run last.
  it('429 without Retry-After → 429 with Retry-After: 1 (UPSTREAM_RATE_LIMITED)', async () => {
    const { res } = await call(UBRN.rateLimitedBare);
    const issue = expectLegacyOutcome(res, 429, 'UPSTREAM_RATE_LIMITED');
    expect(res.headers['retry-after']).toBe('1');
    expect(issue.diagnostics).toMatch(/rate limit/);
    ahead += 1_100; // past the 1 s pause APIM implied, on the runtime's clock: no real wait
  });

  it('429 with Retry-After: 7 → 429 with Retry-After: 7; the next call is held back locally', async () => {
    const { res } = await call(UBRN.rateLimited7);
    const issue = expectLegacyOutcome(res, 429, 'UPSTREAM_RATE_LIMITED');
    expect(res.headers['retry-after']).toBe('7');
    expect(issue.diagnostics).toContain('7 seconds');
    const before = fake.hits.length;
    const next = await call(UBRN.ok);
    expectLegacyOutcome(next.res, 429, 'RATE_LIMITED_LOCALLY');
    expect(Number(next.res.headers['retry-after'])).toBeGreaterThanOrEqual(6);
    expect(Number(next.res.headers['retry-after'])).toBeLessThanOrEqual(7);
    expect(fake.hits.length).toBe(before);
  });

  it('no socket leak after all the faults: the pool is idle and the process holds no extra sockets', async () => {
    await closeClientConnections(h);
    // Every upstream connection ers-bridge closed (after a timeout or a reset) is closed at the fake APIM too.
    await vi.waitFor(
      () => {
        const { connected } = h.runtime.upstream.stats();
        if (fake.open.size !== connected) throw new Error(`${fake.open.size} open at APIM, ${connected} in the pool`);
      },
      { timeout: 5_000, interval: 10 },
    );
    const stats = h.runtime.upstream.stats();
    expect(stats.pending).toBe(0);
    expect(stats.running).toBe(0);
    expect(stats.connected).toBeLessThanOrEqual(8); // at most the widest concurrent burst above
    expect(fake.open.size).toBeLessThanOrEqual(stats.connected);
    // An in-process loopback connection is two handles. What may remain beyond the baseline: the upstream pool's
    // idle keep-alive connections (counted by stats.connected), plus one connection of slack.
    const allowed = socketsBefore + 2 * Math.max(0, stats.connected - connectedBefore) + 2;
    expect(tcpSockets()).toBeLessThanOrEqual(allowed);
  });
});

describe('connect failures', () => {
  let h: Harness | undefined;
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    await h?.close();
    h = undefined;
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('connection refused → 502 UPSTREAM_UNREACHABLE naming ECONNREFUSED; a GET is sent twice, a write once', async () => {
    const port = await closedPort();
    h = await startHarness({
      rules: { apim: { baseUrl: apimAt(`http://127.0.0.1:${port}`), timeouts: { ...TIMEOUTS } } },
    });
    const key = await openSession(h);
    const sends = vi.spyOn(h.runtime.upstream, 'request');
    const get = await timedCall(h, key, 'GET', A005());
    const issue = expectLegacyOutcome(get.res, 502, 'UPSTREAM_UNREACHABLE');
    expect(issue.diagnostics).toMatch(/could not be reached \(ECONNREFUSED\)/);
    expectNothingLeaked(get.res, [h.secrets.apiKey]);
    expect(sends).toHaveBeenCalledTimes(2);
    sends.mockClear();
    const post = await timedCall(h, key, 'POST', A013(), { 'If-Match': 'W/"5"' });
    expectLegacyOutcome(post.res, 502, 'UPSTREAM_UNREACHABLE');
    expect(sends).toHaveBeenCalledTimes(1);
  });

  it('a real connect timeout (a listener that never accepts) → 504 UPSTREAM_TIMEOUT, not retried', async () => {
    // A child process listens with a backlog of 1 and is stopped, so it never accepts; once its accept queue is
    // full the kernel drops further SYNs and a connect can only time out.
    const child: ChildProcess = spawn(
      process.execPath,
      [
        '-e',
        `const s=require('node:net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>process.stdout.write(s.address().port+'\\n'))`,
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    cleanups.push(() => {
      child.kill('SIGKILL');
    });
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once('exit', () => reject(new Error('listener exited')));
    });
    process.kill(child.pid!, 'SIGSTOP');
    const fillers: Socket[] = [];
    cleanups.push(() => {
      for (const s of fillers) s.destroy();
    });
    for (let i = 0; i < 8; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      fillers.push(s);
      const queued = await new Promise<boolean>((r) => {
        s.once('connect', () => r(true));
        setTimeout(() => r(false), 250);
      });
      if (!queued) break; // the accept queue is full: SYNs are now dropped
    }
    h = await startHarness({
      rules: { apim: { baseUrl: apimAt(`http://127.0.0.1:${port}`), timeouts: { ...TIMEOUTS, connectMs: 500 } } },
    });
    const key = await openSession(h);
    const sends = vi.spyOn(h.runtime.upstream, 'request');
    const { res, ms } = await timedCall(h, key, 'GET', A005());
    const issue = expectLegacyOutcome(res, 504, 'UPSTREAM_TIMEOUT');
    expect(issue.diagnostics).toMatch(/did not accept a connection in time/);
    expect(sends).toHaveBeenCalledTimes(1);
    expect(ms).toBeLessThan(4_000);
    expect(h.runtime.upstream.stats().pending).toBe(0);
  });
});

describe('retries after a connection failure', () => {
  let h: Harness | undefined;
  let dropper: FakeServer<NetServer> | undefined;
  afterEach(async () => {
    await h?.close();
    await dropper?.close();
    h = undefined;
    dropper = undefined;
  });

  /** An APIM that accepts every connection and drops it at once, counting connections. */
  async function setUp(): Promise<{ h: Harness; key: string; dropper: FakeServer<NetServer> }> {
    dropper = await fakeTcp((socket) => socket.destroy());
    const url = dropper.url;
    h = await startHarness({ rules: { apim: { baseUrl: apimAt(url), timeouts: { ...TIMEOUTS } } } });
    return { h, key: await openSession(h), dropper };
  }

  it('a read-only GET (A005) is retried exactly once', async () => {
    const s = await setUp();
    const { res } = await timedCall(s.h, s.key, 'GET', A005());
    expectLegacyOutcome(res, 502, 'UPSTREAM_UNREACHABLE');
    expect(s.dropper.connections).toBe(2);
  });

  it('a write (A013 accept, If-Match W/"5") is never retried', async () => {
    const s = await setUp();
    const { res } = await timedCall(s.h, s.key, 'POST', A013(), { 'If-Match': 'W/"5"' });
    expectLegacyOutcome(res, 502, 'UPSTREAM_UNREACHABLE');
    expect(s.dropper.connections).toBe(1);
  });

  it('the retry budget: 30 failing A005 calls in a window get max(3, 10% of 30) = 3 retries, the first three', async () => {
    const s = await setUp();
    const perCall: number[] = [];
    for (let i = 0; i < 30; i++) {
      const before = s.dropper.connections;
      const { res } = await timedCall(s.h, s.key, 'GET', A005());
      expectLegacyOutcome(res, 502, 'UPSTREAM_UNREACHABLE');
      perCall.push(s.dropper.connections - before);
    }
    // RetryBudget: a retry is allowed while retries < max(floor 3, calls × 0.1) in the 10 s window.
    expect(perCall.slice(0, 3)).toEqual([2, 2, 2]);
    expect(perCall.slice(3)).toEqual(Array(27).fill(1));
    expect(s.dropper.connections).toBe(33);
  });
});
