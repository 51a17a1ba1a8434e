/**
 * Helpers for tests that need Redis or real ers-bridge processes: the shared test Redis (127.0.0.1:6379, or
 * ERS_BRIDGE_TEST_REDIS) with a unique key prefix per test file, a dedicated redis-server a test may stop and
 * restart, and `ers-bridge serve` as a child process whose output is kept for failure messages.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { request } from 'undici';
import { Metrics } from '../../src/admin/metrics.js';
import type { ApimStandIn } from '../../src/apim-standin/index.js';
import { createLogger } from '../../src/logging.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime } from '../../src/runtime/runtime.js';
import type { ApimApp } from './apim-app.js';
import { freePort } from './free-port.js';
import { harnessRules, keepForScan, type LegacyResponse, listenBridge } from './harness.js';
import { rulesFor } from './rules.js';

export const TEST_REDIS_URL = process.env['ERS_BRIDGE_TEST_REDIS'] ?? 'redis://127.0.0.1:6379';
const BIN = fileURLToPath(new URL('../../bin/ers-bridge.js', import.meta.url));

export const SESSION_PATH = '/ers-api/v1/ProfessionalSession';
export const A005_PATH = '/ers-api/STU3/v1/ReferralRequest/000000070000';

/** An admin connection to the shared test Redis, or an error saying how to start one. */
export async function connectTestRedisOrFail(url = TEST_REDIS_URL): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    if ((await redis.ping()) !== 'PONG') throw new Error('no PONG');
    return redis;
  } catch (e) {
    redis.disconnect();
    throw new Error(
      `This test needs Redis at ${url}, which is not answering (${(e as Error).message}). Start one with ` +
        `'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no' ` +
        `(apt-get install redis-server if it is missing; .ci/run does both), or point ERS_BRIDGE_TEST_REDIS at another.`,
    );
  }
}

/** A key prefix no other test (or run) uses. */
export function uniqueKeyPrefix(): string {
  return `ers-bridge-test:${randomBytes(8).toString('hex')}:`;
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** Every key under the prefix (SCAN, never KEYS). */
export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${globEscape(prefix)}*`, 'COUNT', 500);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return [...new Set(out)];
}

export async function deleteKeysUnder(redis: Redis, prefix: string): Promise<void> {
  const keys = await keysUnder(redis, prefix);
  if (keys.length > 0) await redis.del(...keys);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`. */
async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (await waitForExit(child, graceMs)) return;
  child.kill('SIGKILL');
  await waitForExit(child, 5000);
}

/** Resolves with the first match of `pattern` in the child's output; rejects on exit or timeout, with the output. */
function waitForOutput(
  child: ChildProcess,
  output: () => string,
  pattern: RegExp,
  what: string,
  timeoutMs: number,
): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const done = (f: () => void) => {
      clearTimeout(timer);
      child.stdout?.off('data', check);
      child.stderr?.off('data', check);
      child.off('exit', exited);
      child.off('error', failed);
      f();
    };
    const check = () => {
      const m = pattern.exec(output());
      if (m) done(() => resolve(m));
    };
    const exited = (code: number | null, signal: string | null) =>
      done(() =>
        reject(new Error(`${what} exited (code ${code}, signal ${signal}) before it was ready:\n${output()}`)),
      );
    const failed = (e: Error) => done(() => reject(new Error(`${what} could not be started: ${e.message}`)));
    const timer = setTimeout(
      () => done(() => reject(new Error(`${what} was not ready within ${timeoutMs} ms:\n${output()}`))),
      timeoutMs,
    );
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.on('exit', exited);
    child.on('error', failed);
    check();
  });
}

export interface BridgeProcess {
  name: string;
  url: string;
  /** Its ops surface (/healthz, /readyz, /metrics). */
  opsUrl: string;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * `node bin/ers-bridge.js serve --rules <file> --port 0 --ops-port 0` as a child process with `env` added to this
 * process's environment (LOG_LEVEL=info; any ERS_BRIDGE_SESSION_STORE, ERS_BRIDGE_RULES, PORT or OPS_PORT of the
 * test run removed). Resolves once fastify logs "Server listening at http://127.0.0.1:<port>" and serve prints
 * where its ops surface is.
 */
export async function spawnBridge(
  name: string,
  rulesFile: string,
  env: Record<string, string>,
  /** More arguments for serve (e.g. `['--workers', '2']`: ready once the first worker listens). */
  extraArgs: string[] = [],
): Promise<BridgeProcess> {
  const base: NodeJS.ProcessEnv = { ...process.env };
  delete base['ERS_BRIDGE_SESSION_STORE'];
  delete base['ERS_BRIDGE_RULES'];
  delete base['PORT'];
  delete base['OPS_PORT'];
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--rules', rulesFile, '--port', '0', '--ops-port', '0', ...extraArgs],
    {
      env: { ...base, LOG_LEVEL: 'info', ERS_BRIDGE_FROM_SOURCE: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let text = '';
  child.stdout!.on('data', (d: Buffer) => {
    text += d.toString('utf8');
  });
  child.stderr!.on('data', (d: Buffer) => {
    text += d.toString('utf8');
  });
  const output = () => text;
  child.on('exit', () => keepForScan(text)); // into the suite-wide log scan
  try {
    const m = await waitForOutput(
      child,
      output,
      /Server listening at (http:\/\/127\.0\.0\.1:\d+)/,
      `ers-bridge ${name}`,
      25_000,
    );
    const ops = await waitForOutput(
      child,
      output,
      /ops surface \(\/healthz, \/readyz, \/metrics\) on (http:\/\/127\.0\.0\.1:\d+)/,
      `ers-bridge ${name} (ops)`,
      25_000,
    );
    return { name, url: m[1]!, opsUrl: ops[1]!, child, output, stop: () => stopChild(child) };
  } catch (e) {
    await stopChild(child);
    throw e;
  }
}

/**
 * The rules' `sessions` block for `serve` processes sharing one Redis (encrypted with SESSION_KEY_1), and the
 * environment that gives them that key and the APIM application's secrets.
 */
export function redisSessionsFor(
  redis: Record<string, unknown>,
  appEnv: Record<string, string>,
): { sessions: Record<string, unknown>; env: Record<string, string> } {
  return {
    sessions: { store: 'redis', redis, encryption: { current: 'k1', keys: { k1: 'env:SESSION_KEY_1' } } },
    env: { SESSION_KEY_1: randomBytes(32).toString('base64'), ...appEnv },
  };
}

/**
 * `serve` processes on one rules file, started together (spawnBridge each: a name and its extra arguments). If any
 * fails to start, the others are stopped before the failure is thrown, so nothing is left running.
 */
export async function spawnBridges(
  rulesFile: string,
  env: Record<string, string>,
  specs: Array<{ name: string; args?: string[] }>,
): Promise<BridgeProcess[]> {
  const started = await Promise.allSettled(specs.map((s) => spawnBridge(s.name, rulesFile, env, s.args)));
  const up = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(up.map((p) => p.stop()));
    throw (failed as PromiseRejectedResult).reason;
  }
  return up;
}

export interface RedisServerProcess {
  port: number;
  url: string;
  /** Its working directory (the append-only file, a sentinel's config). */
  dir: string;
  output(): string;
  /** (Re)starts it with the same arguments; resolves when it accepts connections. */
  start(): Promise<void>;
  /** SIGTERM (Redis writes its AOF and exits), then waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL: the node dies at once, as a machine that fails. */
  kill(): Promise<void>;
  /** Ends it (SIGKILL: nothing of it is kept) and removes its directory. */
  destroy(): Promise<void>;
}

export interface DedicatedRedisOptions {
  /** Extra redis-server arguments, e.g. `['--replicaof', '127.0.0.1', '6390']`. */
  args?: string[];
  /** Keep the data in an append-only file across a restart (default true). */
  appendOnly?: boolean;
  /** Run as a sentinel (`redis-server <conf> --sentinel`) monitoring this primary. */
  sentinelOf?: { masterName: string; port: number; quorum: number };
}

/**
 * A redis-server of the test's own on a free loopback port (started by `start()`): a node to stop and restart, a
 * primary or replica to kill, or a sentinel. Timings for sentinels are short so a failover takes seconds.
 */
export async function dedicatedRedis(options: DedicatedRedisOptions = {}): Promise<RedisServerProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ers-bridge-redis-'));
  let args: string[];
  if (options.sentinelOf) {
    const { masterName, port: masterPort, quorum } = options.sentinelOf;
    const conf = join(dir, 'sentinel.conf');
    // Sentinel rewrites its config file as it learns replicas and other sentinels: it must be writable.
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} ${quorum}`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 5000`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n'),
    );
    args = [conf, '--sentinel'];
  } else {
    args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      options.appendOnly === false ? 'no' : 'yes',
      '--dir',
      dir,
      ...(options.args ?? []),
    ];
  }
  const what = options.sentinelOf ? `redis-server --sentinel on port ${port}` : `redis-server on port ${port}`;
  let child: ChildProcess | undefined;
  let text = '';
  const self: RedisServerProcess = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    output: () => text,
    async start() {
      if (child && child.exitCode === null && child.signalCode === null) throw new Error('redis-server is running');
      const c = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      c.stdout!.on('data', (d: Buffer) => {
        text += d.toString('utf8');
      });
      c.stderr!.on('data', (d: Buffer) => {
        text += d.toString('utf8');
      });
      const mark = text.length;
      try {
        await waitForOutput(
          c,
          () => text.slice(mark),
          options.sentinelOf ? /\+monitor master|Ready to accept connections/ : /Ready to accept connections/,
          what,
          10_000,
        );
      } catch (e) {
        const message = (e as Error).message;
        throw new Error(
          /ENOENT/.test(message)
            ? `redis-server is not installed (${message}): apt-get install redis-server (.ci/run installs it)`
            : message,
        );
      }
    },
    async stop() {
      if (child) await stopChild(child, 10_000);
    },
    async kill() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await waitForExit(child, 5_000);
    },
    async destroy() {
      await self.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return self;
}

/** A legacy client call against a base URL (header names sent exactly as given). */
export async function callBridge(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<LegacyResponse> {
  const res = await request(`${base}${path}`, {
    method: method as 'GET',
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const buf = Buffer.from(await res.body.arrayBuffer());
  return {
    status: res.statusCode,
    headers: res.headers,
    body: buf,
    json: () => JSON.parse(buf.toString('utf8')),
  };
}

/** A short-lived connection to one node: the test's own view of it, not ers-bridge's. */
export async function adminOn<T>(port: number, f: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await f(r);
  } finally {
    r.disconnect();
  }
}

export function a001Body(token: string): string {
  return JSON.stringify({ typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession', token });
}

/** Throws with the status and body unless the answer has the expected status (a readable failure message). */
export function expectStatus(res: LegacyResponse, status: number, what: string): LegacyResponse {
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status}: ${res.body.toString('utf8').slice(0, 2000)}`);
  }
  return res;
}

/** A001 (create session) for `asid` against a bridge base, with a legacy ticket as its token; the answer as it is. */
export function a001At(base: string, asid: string): Promise<LegacyResponse> {
  return callBridge(
    base,
    'POST',
    SESSION_PATH,
    { XAPI_ASID: asid, 'Content-Type': 'application/json' },
    a001Body('legacy-ticket'),
  );
}

/** A001 then A002 (the first permission) for `asid` against a bridge base: a session key ready for data calls. */
export async function openSelectedSession(base: string, asid: string): Promise<string> {
  const a001 = expectStatus(await a001At(base, asid), 201, 'A001');
  const session = a001.json();
  expectStatus(
    await callBridge(
      base,
      'PUT',
      `${SESSION_PATH}/${session.id}`,
      { XAPI_ASID: asid, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/json' },
      JSON.stringify({ ...session, permission: session.user.permissions[0] }),
    ),
    200,
    'A002',
  );
  return session.id as string;
}

/** An info-level ers-bridge logger whose lines (JSON, one each) are pushed onto `lines`, for a test to read. */
export function loggerInto(lines: string[]): Logger {
  return createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk, _enc, cb) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        cb();
      },
    }),
  });
}

/**
 * ers-bridge in this process on a Redis store of the test's own (`redis`: the rules' sessions.redis without its key
 * prefix: a unique one is added), sessions encrypted with a fresh key, its log lines pushed onto `logs`; listening.
 */
export async function bridgeOnRedis(
  standIn: ApimStandIn,
  app: Pick<ApimApp, 'env'>,
  redis: Record<string, unknown>,
  file: string,
  logs: string[],
  /** Changes to the rules before the runtime is built (e.g. `server.readyDuringStoreOutage`). */
  edit?: (rules: ReturnType<typeof rulesFor>) => void,
): Promise<Awaited<ReturnType<typeof listenBridge>>> {
  const rules = rulesFor({
    ...harnessRules(standIn, {
      sessions: {
        store: 'redis',
        redis: { ...redis, keyPrefix: uniqueKeyPrefix(), timeoutMs: 1000 },
        encryption: { current: 'k1', keys: { k1: 'env:SESSION_KEY_1' } },
      },
    }),
    file,
  });
  edit?.(rules);
  const env = { SESSION_KEY_1: randomBytes(32).toString('base64'), ...app.env };
  const runtime = await buildRuntime(file, rules, {
    resolveSecret: secretResolver(env),
    env: {}, // no ERS_BRIDGE_SESSION_STORE from the test run's environment
    logger: loggerInto(logs),
    tokenRetries: 1,
    tokenBackoffMs: 20,
    // The process's metrics, as `serve` gives them: the bridge's ops port serves these.
    metrics: new Metrics({ processMetrics: false }),
  });
  return listenBridge(runtime);
}

/** A Redis Cluster of the test's own: its nodes (dedicatedRedis each), the seed list, and its state as nodes see it. */
export interface RedisClusterProcesses {
  nodes: RedisServerProcess[];
  /** `{ host, port }` of every node, for the store's seed list. */
  seeds: Array<{ host: string; port: number }>;
  /** The ports of the nodes that are primaries now (as a live node reports it). */
  primaries(): Promise<number[]>;
  /** Resolves when every live node reports cluster_state:ok and all 16384 slots served; rejects after `ms`. */
  waitHealthy(ms?: number): Promise<void>;
  /** SIGKILLs every node and removes their directories. */
  destroy(): Promise<void>;
}

/**
 * `primaries` primaries with `replicasEach` replicas each on free loopback ports, made one cluster by
 * `redis-cli --cluster create`. A short node timeout, so a killed primary's replica takes over within seconds.
 */
export async function dedicatedRedisCluster(primaries = 3, replicasEach = 1): Promise<RedisClusterProcesses> {
  const nodes: RedisServerProcess[] = [];
  const destroy = async () => {
    await Promise.all(nodes.map((n) => n.destroy()));
  };
  try {
    for (let i = 0; i < primaries * (1 + replicasEach); i++) {
      const node = await dedicatedRedis({
        appendOnly: false,
        // The cluster's own file, in the node's directory (its --dir).
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '1000',
          '--cluster-require-full-coverage',
          'no',
        ],
      });
      nodes.push(node);
      await node.start();
    }
    await redisCli([
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      String(replicasEach),
      '--cluster-yes',
    ]);
  } catch (e) {
    await destroy();
    throw e;
  }
  const live = async () => {
    for (const n of nodes) {
      const ok = await adminOn(n.port, (r) => r.ping()).catch(() => undefined);
      if (ok === 'PONG') return n;
    }
    throw new Error('no cluster node answers');
  };
  const self: RedisClusterProcesses = {
    nodes,
    seeds: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    async primaries() {
      const text = String(await adminOn((await live()).port, (r) => r.call('CLUSTER', 'NODES')));
      return text
        .split('\n')
        .filter((line) => / master /.test(line.replace(/,/g, ' ')) && !/\bfail\b/.test(line))
        .map((line) => Number(/:(\d+)@/.exec(line)?.[1]));
    },
    async waitHealthy(ms = 15_000) {
      const deadline = Date.now() + ms;
      let last = '';
      for (;;) {
        const states = await Promise.all(
          nodes.map((n) =>
            adminOn(n.port, async (r) => String(await r.call('CLUSTER', 'INFO'))).catch(() => undefined),
          ),
        );
        const answering = states.filter((s): s is string => s !== undefined);
        const healthy =
          answering.length > 0 &&
          answering.every((s) => /cluster_state:ok/.test(s) && /cluster_slots_ok:16384/.test(s));
        // Replicas must hold their primary's data before a test kills one: every live replica's link is up.
        const links = await Promise.all(
          nodes.map((n) => adminOn(n.port, (r) => r.info('replication')).catch(() => undefined)),
        );
        const synced = links.every((l) => l === undefined || !/role:slave/.test(l) || /master_link_status:up/.test(l));
        if (healthy && synced) return;
        last = answering[0] ?? '';
        if (Date.now() > deadline) throw new Error(`the test cluster was not healthy within ${ms} ms:\n${last}`);
        await sleep(100);
      }
    },
    destroy,
  };
  try {
    await self.waitHealthy();
  } catch (e) {
    await destroy();
    throw e;
  }
  return self;
}

/** Runs redis-cli (its output kept for the failure message), or says how to install it. */
function redisCli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    c.stdout!.on('data', (d: Buffer) => {
      text += d.toString('utf8');
    });
    c.stderr!.on('data', (d: Buffer) => {
      text += d.toString('utf8');
    });
    c.on('error', (e) =>
      reject(
        new Error(
          /ENOENT/.test(e.message)
            ? `redis-cli is not installed (${e.message}): apt-get install redis-tools (or redis-server, which brings it)`
            : `redis-cli could not be started: ${e.message}`,
        ),
      ),
    );
    c.on('exit', (code) =>
      code === 0 ? resolve(text) : reject(new Error(`redis-cli ${args.join(' ')} exited with ${code}:\n${text}`)),
    );
  });
}
