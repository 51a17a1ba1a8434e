/**
 * Operating ers-bridge: hot reload under load (and refusal of invalid rules), metrics after traffic, readiness, and
 * graceful shutdown of a real `ers-bridge serve` process with slow calls in flight.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Metrics } from '../../src/admin/metrics.js';
import { createLogger } from '../../src/logging.js';
import { RulesReloader } from '../../src/rules/reload.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime } from '../../src/runtime/runtime.js';
import {
  APP_ASID,
  captureLogs,
  expectLegacyOutcome,
  type Harness,
  harnessRules,
  keepForScan,
  LIMITED_ASID,
  legacyCall,
  openSession,
  startHarness,
} from '../helpers/harness.js';
import { rulesFor, rulesText } from '../helpers/rules.js';

const BIN = fileURLToPath(new URL('../../bin/ers-bridge.js', import.meta.url));
const A005 = '/ers-api/STU3/v1/ReferralRequest/000000070000';
const A007 = '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.generateCRI';

describe('hot reload', () => {
  let h: Harness;
  let dir: string;
  let file: string;
  let reloader: RulesReloader;
  let metrics: Metrics;
  let env: Record<string, string>;
  let logs: string[] = [];

  beforeAll(async () => {
    h = await startHarness();
    dir = mkdtempSync(join(tmpdir(), 'ers-bridge-reload-'));
    file = join(dir, 'rules.yaml');
    writeFileSync(file, rulesText(harnessRules(h.standIn)));
    env = h.env;
    metrics = new Metrics({ processMetrics: false });
    const capture = captureLogs();
    const logger = createLogger({ destination: capture.destination });
    logs = capture.logs;
    reloader = new RulesReloader({
      file,
      holder: h.holder,
      logger,
      metrics,
      debounceMs: 50,
      drainMs: 5000,
      build: (rules, previous) => buildRuntime(file, rules, { resolveSecret: secretResolver(env), previous, metrics }),
    });
    await reloader.start();
  });
  afterAll(async () => {
    reloader?.stop();
    await h?.close();
  });

  it('reloads under steady load with no failed request, and the new rules take effect', async () => {
    const key = await openSession(h, LIMITED_ASID); // allowedCodes: [A004, A005]
    expectLegacyOutcome(
      await legacyCall(h, 'POST', A007, { XAPI_ASID: LIMITED_ASID, HTTP_X_SESSION_KEY: key }),
      403,
      'ENDPOINT_NOT_ALLOWED_FOR_ASID',
    );
    expect((await legacyCall(h, 'GET', A005, { XAPI_ASID: LIMITED_ASID, HTTP_X_SESSION_KEY: key })).status).toBe(200);
    const tokenCallsBefore = h.standIn.tokenRequests.length;
    let stop = false;
    const statuses: number[] = [];
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (!stop)
          statuses.push(
            (await legacyCall(h, 'GET', A005, { XAPI_ASID: LIMITED_ASID, HTTP_X_SESSION_KEY: key })).status,
          );
      }),
    );
    /** Lets the load run on: waits until `n` more calls have been answered. */
    const answered = async (n: number) => {
      const target = statuses.length + n;
      await vi.waitUntil(() => statuses.length >= target, { timeout: 10_000, interval: 5 });
    };
    const first = h.holder.current;
    for (let i = 0; i < 3; i++) {
      await answered(20);
      const allowedCodes = i === 2 ? ['A004', 'A005', 'A007'] : ['A004', 'A005', ...Array(i + 1).fill('A004')];
      writeFileSync(file, rulesText(harnessRules(h.standIn, { asids: { [LIMITED_ASID]: { allowedCodes } } })));
      expect(await reloader.reload('test')).toEqual({ applied: true });
    }
    await answered(20);
    stop = true;
    await load;
    expect(statuses.length).toBeGreaterThan(50);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(h.holder.current).not.toBe(first);
    // Sessions and the APIM application's token carried over: no new session, no new token call.
    expect(h.standIn.tokenRequests.length).toBe(tokenCallsBefore);
    expect((await legacyCall(h, 'POST', A007, { XAPI_ASID: LIMITED_ASID, HTTP_X_SESSION_KEY: key })).status).toBe(200);
    expect(await metrics.registry.getSingleMetricAsString('ers_bridge_rules_reloads_total')).toMatch(
      /ers_bridge_rules_reloads_total\{outcome="applied"\} 3/,
    );
  });

  it('invalid rules are refused, logged and counted; the old rules stay in force', async () => {
    // The edits of the test before may still have a watcher reload due or running: past the debounce, the reload
    // below settles whatever still runs, and the count is read around this test's own reload.
    await new Promise((r) => setTimeout(r, 150));
    await reloader.reload('test');
    const rejected = async () =>
      Number(
        /outcome="rejected"\} (\d+)/.exec(
          await metrics.registry.getSingleMetricAsString('ers_bridge_rules_reloads_total'),
        )?.[1] ?? 0,
      );
    const rejectedBefore = await rejected();
    const before = h.holder.current;
    writeFileSync(file, 'environment: test\nasids: {}\n');
    const result = await reloader.reload('test');
    expect(await rejected()).toBe(rejectedBefore + 1);
    expect(result.applied).toBe(false);
    expect(result.error).toMatch(/^.*rules\.yaml: /);
    expect(h.holder.current).toBe(before);
    const key = await openSession(h);
    expect((await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key })).status).toBe(200);
    expect(logs.some((l) => l.includes('rules reload rejected'))).toBe(true);
  });

  it('a reload asked for while another runs answers for the file as it is now, not for the edit before', async () => {
    // A second reloader on its own file, whose build is slow, so the second request lands mid-reload.
    const own = join(dir, 'slow.yaml');
    const codes = (extra: string[]) => ({ asids: { [LIMITED_ASID]: { allowedCodes: ['A004', 'A005', ...extra] } } });
    writeFileSync(own, rulesText(harnessRules(h.standIn)));
    const slow = new RulesReloader({
      file: own,
      holder: h.holder,
      logger: createLogger({ destination: captureLogs().destination }),
      build: async (rules, previous) => {
        await new Promise((r) => setTimeout(r, 150));
        return buildRuntime(own, rules, { resolveSecret: secretResolver(env), previous });
      },
    });
    await slow.start();
    slow.stop(); // no watcher: only the two explicit requests below
    writeFileSync(own, rulesText(harnessRules(h.standIn, codes(['A007']))));
    const first = slow.reload('test');
    await new Promise((r) => setTimeout(r, 50)); // the first run has read its file and is building
    writeFileSync(own, rulesText(harnessRules(h.standIn, codes(['A008']))));
    const second = slow.reload('test');
    expect(await first).toEqual({ applied: true });
    expect(await second).toEqual({ applied: true });
    // By the time the second request is answered, what it asked for is in force.
    expect(h.holder.current.rules.asids[LIMITED_ASID]?.allowedCodes).toContain('A008');
  });

  it('a reload asked for while another applies the same edit is told it is in force, and it is applied once', async () => {
    const own = join(dir, 'same.yaml');
    writeFileSync(own, rulesText(harnessRules(h.standIn)));
    const counted = new Metrics({ processMetrics: false });
    const slow = new RulesReloader({
      file: own,
      holder: h.holder,
      logger: createLogger({ destination: captureLogs().destination }),
      metrics: counted,
      build: async (rules, previous) => {
        await new Promise((r) => setTimeout(r, 150));
        return buildRuntime(own, rules, { resolveSecret: secretResolver(env), previous });
      },
    });
    await slow.start();
    slow.stop();
    writeFileSync(own, rulesText(harnessRules(h.standIn, { asids: { [LIMITED_ASID]: { allowedCodes: ['A004'] } } })));
    const first = slow.reload('file change'); // the watcher, reading the edit
    await new Promise((r) => setTimeout(r, 50));
    const second = slow.reload('test'); // the operator who made it, while the watcher applies it
    expect(await first).toEqual({ applied: true });
    expect(await second).toEqual({ applied: true });
    expect(await counted.registry.getSingleMetricAsString('ers_bridge_rules_reloads_total')).toMatch(
      /outcome="applied"\} 1$/m,
    );
  });

  it('a watcher firing again on an edit already refused is not a second rejection; SIGHUP tries it again', async () => {
    const own = join(dir, 'refused.yaml');
    writeFileSync(own, rulesText(harnessRules(h.standIn)));
    const capture = captureLogs();
    const counted = new Metrics({ processMetrics: false });
    const r = new RulesReloader({
      file: own,
      holder: h.holder,
      logger: createLogger({ destination: capture.destination }),
      metrics: counted,
      build: (rules, previous) => buildRuntime(own, rules, { resolveSecret: secretResolver(env), previous }),
    });
    await r.start();
    r.stop();
    const rejected = async () =>
      (await counted.registry.getSingleMetricAsString('ers_bridge_rules_reloads_total')).match(
        /outcome="rejected"\} (\d+)/,
      )?.[1];
    writeFileSync(own, 'environment: test\nasids: {}\n');
    const once = await r.reload('file change');
    expect(once.applied).toBe(false);
    const twice = await r.reload('file change');
    expect(twice).toEqual(once);
    expect(await rejected()).toBe('1');
    expect(capture.logs.filter((l) => l.includes('rules reload rejected'))).toHaveLength(1);
    expect((await r.reload('SIGHUP')).applied).toBe(false);
    expect(await rejected()).toBe('2');
  });

  it('a change of the listen address or session store is refused until a restart', async () => {
    writeFileSync(file, rulesText(harnessRules(h.standIn, { server: { port: 9999 } })));
    const result = await reloader.reload('test');
    expect(result.applied).toBe(false);
    expect(result.error).toMatch(/restart/);
  });

  it.each([
    ['server.opsPort', { opsPort: 9998 }],
    ['server.opsHost', { opsHost: '127.0.0.2' }],
  ])(
    'a change of %s (where /healthz, /readyz and /metrics listen) is refused until a restart',
    async (_what, server) => {
      const before = h.holder.current;
      writeFileSync(file, rulesText(harnessRules(h.standIn, { server })));
      const result = await reloader.reload('test');
      expect(result.applied).toBe(false);
      expect(result.error).toMatch(/server\.opsHost\/opsPort changed: restart/);
      expect(h.holder.current).toBe(before);
    },
  );

  it('a change to the file is picked up by itself (debounced), and SIGHUP reloads too', async () => {
    const before = h.holder.current;
    writeFileSync(file, rulesText(harnessRules(h.standIn)));
    await vi.waitFor(() => expect(h.holder.current).not.toBe(before), { timeout: 2_000, interval: 20 });
    const again = h.holder.current;
    process.emit('SIGHUP', 'SIGHUP');
    await vi.waitFor(() => expect(h.holder.current).not.toBe(again), { timeout: 2_000, interval: 20 });
  });
});

describe('metrics and readiness', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('/metrics exposes calls, latency, tokens, sessions and process metrics after traffic', async () => {
    const key = await openSession(h);
    await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key });
    await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: 'pro-api-session:unknown' });
    const res = await request(`${h.opsUrl}/metrics`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = await res.body.text();
    expect(text).toMatch(
      /ers_bridge_requests_total\{a_code="A005",method="GET",status="200",mode="translate",side="apim",reason="none",asid="999000000001"\} 1/,
    );
    expect(text).toMatch(
      /ers_bridge_requests_total\{a_code="A001",method="POST",status="201",mode="session",side="none",reason="none",asid="999000000001"\} 1/,
    );
    // The unknown session: refused before a side was chosen, counted with its reason.
    expect(text).toMatch(
      /ers_bridge_requests_total\{a_code="A005",method="GET",status="403",mode="none",side="none",reason="SESSION_UNKNOWN",asid="999000000001"\} 1/,
    );
    expect(text).toMatch(/ers_bridge_upstream_duration_seconds_count\{side="apim",a_code="A005"\} 1/);
    expect(text).toMatch(/ers_bridge_sessions_created_total\{access_mode="application-restricted"\} 1/);
    expect(text).toMatch(/ers_bridge_sessions_ended_total\{reason="unknown_or_expired"\} 1/);
    expect(text).toMatch(/ers_bridge_sessions_live \d+/);
    // What is running: the package's version and Node's.
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(text).toContain(`ers_bridge_build_info{version="${version}",node="${process.version}"} 1`);
    expect(text).not.toContain(h.secrets.apiKey);
  });

  it('/metrics of a serving process includes token fetches per application and Node process metrics', async () => {
    const metrics = new Metrics();
    const rt = await buildRuntime('test.yaml', rulesFor(harnessRules(h.standIn)), {
      resolveSecret: secretResolver(h.env),
      metrics,
    });
    await [...rt.tokenProviders.values()][0]!.get();
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/ers_bridge_token_fetches_total\{application="[0-9a-f]{8}",outcome="ok"\} 1/);
    expect(text).toMatch(/ers_bridge_process_resident_memory_bytes/);
    await rt.upstream.close();
  });

  it('/readyz reports the rules, the session store and a token per APIM application', async () => {
    const res = await request(`${h.opsUrl}/readyz`);
    expect(res.statusCode).toBe(200);
    const body = (await res.body.json()) as { checks: { apimTokens: Array<{ status: string }> } };
    expect(body.checks.apimTokens).toEqual([{ application: expect.stringMatching(/^[0-9a-f]{8}$/), status: 'ok' }]);
  });

  it('/readyz is 503 when no APIM token can be had', async () => {
    const bad = await startHarness({ keyIdAtStandIn: 'another-kid' });
    try {
      const res = await request(`${bad.opsUrl}/readyz`);
      expect(res.statusCode).toBe(503);
      const body = (await res.body.json()) as { checks: { apimTokens: Array<{ status: string }> } };
      expect(body.checks.apimTokens[0]!.status).toBe('unobtainable');
    } finally {
      await bad.close();
    }
  });
});

describe('graceful shutdown of ers-bridge serve', () => {
  let h: Harness;
  let slow: Server;
  let child: ChildProcess | undefined;
  let output = '';
  /** Calls the slow APIM has received (and is holding). */
  let slowHits = 0;
  afterEach(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });
  beforeAll(async () => {
    h = await startHarness();
    // APIM that takes 1.5 s to answer: the calls are in flight when SIGTERM arrives.
    slow = createServer((_req, res) => {
      slowHits++;
      setTimeout(
        () => res.writeHead(200, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"ReferralRequest"}'),
        1500,
      );
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await new Promise((r) => slow.close(r));
    await h?.close();
  });

  it('finishes slow calls in flight, refuses new connections, and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ers-bridge-stop-'));
    const file = join(dir, 'rules.yaml');
    const slowBase = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/referrals/FHIR`;
    writeFileSync(file, rulesText(harnessRules({ baseUrl: slowBase, tokenUrl: h.standIn.tokenUrl })));
    child = spawn(process.execPath, [BIN, 'serve', '--rules', file, '--port', '0', '--ops-port', '0'], {
      env: {
        ...process.env,
        ERS_BRIDGE_FROM_SOURCE: '1',
        ...h.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => {
      output += d;
    });
    child.stderr!.on('data', (d) => {
      output += d;
    });
    const [base, opsBase] = await vi.waitFor(
      () => {
        const m = /serving environment \S+ on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        const ops = /ops surface \(\/healthz, \/readyz, \/metrics\) on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (!m || !ops) throw new Error(`serve did not start:\n${output}`);
        return [m[1]!, ops[1]!] as const;
      },
      { timeout: 15_000, interval: 20 },
    );
    const harness = { ...h, bridgeUrl: base } as Harness;
    const key = await openSession(harness);
    const exited = new Promise<number | null>((r) => child!.on('exit', (code) => r(code)));
    const inFlight = Promise.all(
      Array.from({ length: 5 }, () =>
        legacyCall(harness, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key }),
      ),
    );
    await vi.waitUntil(() => slowHits === 5, { timeout: 5_000, interval: 10 }); // all five held at APIM
    child.kill('SIGTERM');
    // A new connection (a fresh client, so no kept-alive socket is reused) must be refused once the signal is
    // handled, well before the calls in flight (1.5 s at APIM) are answered.
    const connectFresh = async () => {
      const fresh = new Agent({ connect: { timeout: 2000 } });
      const refused = await request(`${base}/ers-api/v1/ProfessionalSession`, { dispatcher: fresh }).then(
        () => 'answered',
        (e: NodeJS.ErrnoException) => e.code ?? (e.cause as NodeJS.ErrnoException | undefined)?.code ?? 'error',
      );
      await fresh.close();
      return refused;
    };
    await vi.waitFor(async () => expect(await connectFresh()).toBe('ECONNREFUSED'), { timeout: 1_000, interval: 50 });
    // The ops port closes last: while the legacy calls drain, the probes are still answered.
    const probe = await request(`${opsBase}/healthz`, { reset: true });
    expect(probe.statusCode).toBe(200);
    await probe.body.dump();
    const results = await inFlight;
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(await exited).toBe(0);
    expect(output).toContain('ers-bridge stopped');
    keepForScan(output);
  });
});
