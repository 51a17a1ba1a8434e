/**
 * The ops surface on a listener of its own (issue 12, point 7), over real sockets: /healthz, /readyz and /metrics
 * answer on the ops port and not on the legacy port; /readyz names what is unready without any path of the machine;
 * the live-sessions gauge counts a Redis store at most once per 15 s of the runtime's clock, however many scrape;
 * and `serve` takes its ops port from --ops-port, OPS_PORT or the rules, in that order.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ApimStandIn, startApimStandIn } from '../../src/apim-standin/index.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime } from '../../src/runtime/runtime.js';
import { newApimApp } from '../helpers/apim-app.js';
import { freePort } from '../helpers/free-port.js';
import {
  expectLegacyOutcome,
  type Harness,
  harnessRules,
  keepForScan,
  legacyCall,
  listenBridge,
  openSession,
  startHarness,
} from '../helpers/harness.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { connectTestRedisOrFail, deleteKeysUnder, TEST_REDIS_URL, uniqueKeyPrefix } from '../helpers/redis-replicas.js';
import { rulesFor, rulesText } from '../helpers/rules.js';

const BIN = fileURLToPath(new URL('../../bin/ers-bridge.js', import.meta.url));
const OPS_PATHS = ['/healthz', '/readyz', '/metrics'] as const;

async function get(url: string): Promise<{ status: number; contentType: string; text: string }> {
  const res = await request(url);
  return {
    status: res.statusCode,
    contentType: String(res.headers['content-type'] ?? ''),
    text: await res.body.text(),
  };
}

describe('the ops surface has a port of its own', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('the ops port is not the legacy port', () => {
    expect(new URL(h.opsUrl).port).not.toBe(new URL(h.bridgeUrl).port);
  });

  it.each(OPS_PATHS)('%s on the legacy port: the legacy 404 (UNKNOWN_ENDPOINT), as any unknown path', async (path) => {
    expectLegacyOutcome(await legacyCall(h, 'GET', path), 404, 'UNKNOWN_ENDPOINT');
  });

  it('/healthz, /readyz and /metrics answer on the ops port', async () => {
    const health = await get(`${h.opsUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.text)).toEqual({ status: 'ok' });
    const ready = await get(`${h.opsUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toMatchObject({ status: 'ready', checks: { rules: 'loaded' } });
    const metrics = await get(`${h.opsUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.contentType).toMatch(/^text\/plain/);
    expect(metrics.text).toMatch(/^ers_bridge_sessions_live \d+$/m);
  });

  it('anything else on the ops port is a plain JSON 404, not a legacy answer (and no legacy call is served)', async () => {
    for (const path of ['/', '/nope', '/ers-api/v1/ProfessionalSession', '/admin/compare', '/login']) {
      const res = await get(`${h.opsUrl}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.contentType, path).toMatch(/^application\/json/);
      expect(JSON.parse(res.text), path).toEqual({ error: 'not found' });
    }
  });

  it('the legacy calls are counted in the metrics the ops port serves (one registry for both)', async () => {
    await legacyCall(h, 'GET', '/ers-api/STU3/v1/ReferralRequest/000000070000', { XAPI_ASID: '999000000001' });
    const metrics = await get(`${h.opsUrl}/metrics`);
    expect(metrics.text).toMatch(/ers_bridge_requests_total\{a_code="A005",[^}]*asid="999000000001"\} \d+/);
  });
});

describe('/readyz names what is unready, never where the rules are', () => {
  const closers: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const close of closers.splice(0)) await close();
  });

  /** ers-bridge with its rules in a real file under a temporary directory, before a stand-in that knows its app or not. */
  async function bridgeWithRulesFile(registerApp: boolean) {
    const app = await newApimApp({ asid: '999000000001' });
    const standIn = await startApimStandIn({ apps: registerApp ? [app.standInApp] : [] });
    closers.push(() => standIn.close());
    const file = join(mkdtempSync(join(tmpdir(), 'ers-bridge-readyz-')), 'int-rules.yaml');
    writeFileSync(file, rulesText(harnessRules(standIn)));
    const runtime = await buildRuntime(file, rulesFor(harnessRules(standIn)), {
      resolveSecret: secretResolver(app.env),
      env: {},
      tokenRetries: 0,
    });
    const bridge = await listenBridge(runtime);
    closers.push(() => bridge.close());
    return { file, opsUrl: bridge.opsUrl };
  }

  const noPathIn = (text: string, file: string) => {
    for (const part of [file, dirname(file), basename(file), tmpdir()]) expect(text).not.toContain(part);
    expect(text).not.toMatch(/rulesFile|\.ya?ml|\//);
  };

  it('ready: status, environment and the checks by name; no rulesFile, no path, no part of one', async () => {
    const { file, opsUrl } = await bridgeWithRulesFile(true);
    const res = await get(`${opsUrl}/readyz`);
    expect(res.status).toBe(200);
    const body = JSON.parse(res.text);
    expect(Object.keys(body).sort()).toEqual(['checks', 'environment', 'status']);
    expect(body).toEqual({
      status: 'ready',
      environment: 'test',
      checks: {
        rules: 'loaded',
        sessionStore: 'reachable',
        apimTokens: [{ application: expect.stringMatching(/^[0-9a-f]{8}$/), status: 'ok' }],
      },
    });
    noPathIn(res.text, file);
  });

  it('unready: names the failing check (the APIM application by its tag), still without a path', async () => {
    const { file, opsUrl } = await bridgeWithRulesFile(false);
    const res = await get(`${opsUrl}/readyz`);
    expect(res.status).toBe(503);
    const body = JSON.parse(res.text);
    expect(body).toMatchObject({ status: 'unready', checks: { rules: 'loaded', sessionStore: 'reachable' } });
    expect(body.checks.apimTokens).toEqual([
      { application: expect.stringMatching(/^[0-9a-f]{8}$/), status: 'unobtainable' },
    ]);
    noPathIn(res.text, file);
  });
});

describe('ers_bridge_sessions_live on Redis: one count per 15 s, however many scrape', () => {
  const prefix = uniqueKeyPrefix();
  const clock = new ManualClock(Date.now());
  let redis: Redis;
  let standIn: ApimStandIn;
  let bridge: Awaited<ReturnType<typeof listenBridge>> | undefined;
  let sizeCalls = 0;

  beforeAll(async () => {
    redis = await connectTestRedisOrFail();
    const app = await newApimApp({ asid: '999000000001' });
    standIn = await startApimStandIn({ apps: [app.standInApp] });
    const rules = rulesFor(
      harnessRules(standIn, {
        sessions: {
          store: 'redis',
          redis: { url: TEST_REDIS_URL, keyPrefix: prefix },
          encryption: { current: 'k1', keys: { k1: 'env:SESSION_KEY_1' } },
        },
      }),
    );
    const env = { SESSION_KEY_1: randomBytes(32).toString('base64'), ...app.env };
    const runtime = await buildRuntime('ops-redis.yaml', rules, { resolveSecret: secretResolver(env), env: {}, clock });
    // Count the store's counts (each one a SCAN of the key space on Redis, or a script over its indexes).
    const store = runtime.shared.store;
    const size = store.size.bind(store);
    store.size = () => {
      sizeCalls++;
      return size();
    };
    bridge = await listenBridge(runtime);
    // Three sessions, so the count has something to find.
    for (let i = 0; i < 3; i++) await openSession(legacyClient());
  });
  afterAll(async () => {
    await bridge?.close();
    await standIn?.close();
    if (redis) {
      await deleteKeysUnder(redis, prefix);
      redis.disconnect();
    }
  });

  /** A legacy client of this bridge, for openSession (A001 + A002). */
  const legacyClient = () => ({ bridgeUrl: bridge!.bridgeUrl }) as Harness;

  const burst = async (n = 16) => {
    const texts = await Promise.all(
      Array.from({ length: n }, async () => (await get(`${bridge!.opsUrl}/metrics`)).text),
    );
    return texts.map((t) => /^ers_bridge_sessions_live (\d+)$/m.exec(t)?.[1]);
  };

  it('16 concurrent scrapes: one count, shared by all of them', async () => {
    expect(sizeCalls).toBe(0);
    const values = await burst();
    expect(sizeCalls).toBe(1);
    expect(values).toEqual(Array(16).fill('3'));
  });

  it('another burst within 15 s of the clock: no count at all, the last one served', async () => {
    await openSession(legacyClient());
    await clock.advance(14_999);
    expect(await burst()).toEqual(Array(16).fill('3'));
    expect(sizeCalls).toBe(1);
  });

  it('15 s after the count: the next burst counts once more', async () => {
    await clock.advance(1);
    expect(await burst()).toEqual(Array(16).fill('4'));
    expect(sizeCalls).toBe(2);
  });
});

describe('serve: the ops port from --ops-port, OPS_PORT or the rules', () => {
  let h: Harness;
  let dir: string;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    h = await startHarness();
    dir = mkdtempSync(join(tmpdir(), 'ers-bridge-ops-port-'));
  });
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  });
  afterAll(async () => {
    await h?.close();
  });

  /** `serve` with rules whose server.opsPort is `rulesOpsPort`; resolves with its two printed addresses. */
  async function serve(args: string[], env: Record<string, string>, rulesOpsPort: number) {
    const file = join(dir, `rules-${children.length}.yaml`);
    writeFileSync(file, rulesText(harnessRules(h.standIn, { server: { opsPort: rulesOpsPort } })));
    const base: NodeJS.ProcessEnv = { ...process.env };
    delete base['PORT'];
    delete base['OPS_PORT'];
    const child = spawn(process.execPath, [BIN, 'serve', '--rules', file, '--port', '0', ...args], {
      env: { ...base, ERS_BRIDGE_FROM_SOURCE: '1', ...h.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (d) => {
      output += d;
    });
    child.stderr!.on('data', (d) => {
      output += d;
    });
    child.on('exit', () => keepForScan(output));
    const [legacy, ops] = await vi.waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}:\n${output}`);
        const legacy = /serving environment \S+ on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        const ops = /ops surface \(\/healthz, \/readyz, \/metrics\) on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (!legacy || !ops) throw new Error(`serve did not start:\n${output}`);
        return [legacy[1]!, ops[1]!] as const;
      },
      { timeout: 15_000, interval: 20 },
    );
    const stop = async () => {
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      child.kill('SIGTERM');
      return exited;
    };
    return { legacy, ops, file, stop };
  }

  it('OPS_PORT overrides server.opsPort; SIGTERM closes both ports', async () => {
    const [fromRules, fromEnv] = [await freePort(), await freePort()];
    const s = await serve([], { OPS_PORT: String(fromEnv) }, fromRules);
    expect(s.ops).toBe(`http://127.0.0.1:${fromEnv}`);
    for (const path of OPS_PATHS) expect((await get(`${s.ops}${path}`)).status, path).toBe(200);
    expectLegacyOutcome(await legacyCall({ ...h, bridgeUrl: s.legacy }, 'GET', '/healthz'), 404, 'UNKNOWN_ENDPOINT');
    // A child process's /readyz: no path of its rules file either.
    const ready = await get(`${s.ops}/readyz`);
    expect(ready.text).not.toContain(dir);
    expect(ready.text).not.toContain(basename(s.file));
    expect(await s.stop()).toBe(0);
    for (const url of [s.legacy, s.ops]) {
      const refused = await request(`${url}/healthz`).then(
        () => 'answered',
        (e: NodeJS.ErrnoException) => e.code ?? 'error',
      );
      expect(refused, url).toBe('ECONNREFUSED');
    }
  });

  it('--ops-port overrides OPS_PORT (0 picks a free port)', async () => {
    const [fromRules, fromEnv] = [await freePort(), await freePort()];
    const s = await serve(['--ops-port', '0'], { OPS_PORT: String(fromEnv) }, fromRules);
    const port = Number(new URL(s.ops).port);
    expect(port).toBeGreaterThan(0);
    expect([fromRules, fromEnv, Number(new URL(s.legacy).port)]).not.toContain(port);
    expect((await get(`${s.ops}/healthz`)).status).toBe(200);
    expect(await s.stop()).toBe(0);
  });

  it('without either, server.opsPort of the rules', async () => {
    const fromRules = await freePort();
    const s = await serve([], {}, fromRules);
    expect(s.ops).toBe(`http://127.0.0.1:${fromRules}`);
    expect((await get(`${s.ops}/readyz`)).status).toBe(200);
    expect(await s.stop()).toBe(0);
  });
});
