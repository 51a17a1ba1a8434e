/**
 * Starting the things under test: ers-bridge (`bin/ers-bridge.js serve` with its node flags, compiled build or
 * sources), the fake upstreams, @fastify/http-proxy and nginx — each in its own process — plus the legacy client
 * calls (A001/A002).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { freePort } from '../../test/helpers/free-port.js';
import { join } from 'node:path';
import { type Pool, request } from 'undici';
import { type Proc, spawnProc, waitForOutput } from './procs.js';

export const ASID = '999000000001';
export const A005_LEGACY = '/ers-api/STU3/v1/ReferralRequest/000000070000';
export const A005_APIM = '/referrals/FHIR/STU3/ReferralRequest/000000070000';
export const SESSION_PATH = '/ers-api/v1/ProfessionalSession';
const TYPE_INFO = 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession';

export interface BenchContext {
  root: string;
  tmp: string;
  /** Run ers-bridge from src/ through tsx instead of the compiled dist/. */
  fromSource: boolean;
  /** Environment for every ers-bridge child: the secrets the rules reference, nothing of the caller's ers-bridge. */
  bridgeEnv: NodeJS.ProcessEnv;
  /** Node flags for every ers-bridge (BENCH_BRIDGE_NODE_ARGS: e.g. --trace-gc, which NODE_OPTIONS refuses). */
  bridgeNodeArgs?: string[];
}

export { freePort };

/** A node child running a bench/*.ts script through tsx; resolves once it prints `READY <origin>`. */
export async function startScript(
  ctx: BenchContext,
  name: string,
  script: string,
  args: string[],
  nodeArgs: string[] = [],
  wrapper?: Wrapper,
) {
  const [command, commandArgs] = wrapped(wrapper, [...nodeArgs, '--import', 'tsx', join(ctx.root, 'bench', script), ...args]);
  const proc = spawnProc(name, command, commandArgs, { cwd: ctx.root });
  const m = await waitForOutput(proc, /READY (http:\/\/\S+)/, wrapper?.readyTimeoutMs ?? 30_000);
  return { proc, url: m[1]! };
}

/** A program that runs node under it (e.g. valgrind), and how long node may then take to start. */
export interface Wrapper {
  command: string[];
  readyTimeoutMs: number;
}

/** node with `nodeArgs`, or the wrapper's command running node with them. */
function wrapped(wrapper: Wrapper | undefined, nodeArgs: string[]): [string, string[]] {
  if (!wrapper) return [process.execPath, nodeArgs];
  const [command, ...rest] = wrapper.command;
  return [command!, [...rest, process.execPath, ...nodeArgs]];
}

/** node --cpu-prof into `dir`, sampling every 500 µs. */
export function cpuProfArgs(dir: string): string[] {
  return ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '500'];
}

export interface BridgeOptions {
  logLevel?: string;
  workers?: number;
  cpuProfDir?: string;
  /** Preload bench/gc-on-signal.cjs (with --expose-gc): SIGUSR2 then runs a full GC in ers-bridge. */
  gcOnSignal?: boolean;
  /** Node flags after the product's and the bench's (before BENCH_BRIDGE_NODE_ARGS), e.g. to measure another. */
  extraNodeArgs?: string[];
  /** Environment over the shebang's (an A/B of e.g. MALLOC_ARENA_MAX). */
  extraEnv?: Record<string, string>;
  /** Run node under this program (valgrind, for the instruction counts). */
  wrapper?: Wrapper;
}

export interface Bridge {
  proc: Proc;
  url: string;
  /** Its ops surface (/healthz, /readyz, /metrics). */
  opsUrl: string;
  logFile: string;
}

/** How ers-bridge is launched: the environment its shebang sets, and node's flags. */
export interface ProductLaunch {
  env: Record<string, string>;
  nodeFlags: string[];
}

/**
 * How ers-bridge runs, from the shebang of bin/ers-bridge.js (`#!/usr/bin/env -S [NAME=value …] node <flags>`), the
 * one place it is written (the Dockerfile's ENV and ENTRYPOINT and `npm start` repeat it; test/unit/launch-flags.test.ts
 * checks).
 */
export function productLaunch(root: string): ProductLaunch {
  const first = readFileSync(join(root, 'bin', 'ers-bridge.js'), 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env (?:node|-S ((?:[A-Z_][A-Z0-9_]*=\S+ )*)node(?: (.+))?)$/.exec(first.trimEnd());
  if (!m) {
    throw new Error(`bin/ers-bridge.js: expected a "#!/usr/bin/env -S [NAME=value …] node <flags>" first line, got ${first}`);
  }
  return { env: parseEnvAssignments(m[1] ?? '', 'bin/ers-bridge.js'), nodeFlags: (m[2] ?? '').split(/\s+/).filter(Boolean) };
}

/** `NAME=value NAME=value` (as `env` takes them) as an object; `where` names the source in the error. */
export function parseEnvAssignments(text: string, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(' ').filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`${where}: "${pair}" is not NAME=value`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

/**
 * `[env] node <flags> bin/ers-bridge.js (productLaunch) serve --rules <file>`, as the bin script and the image launch it (the
 * cluster workers of `--workers` inherit the flags: cluster.fork uses process.execArgv); the bench's own flags come
 * after them, so `extraNodeArgs` and BENCH_BRIDGE_NODE_ARGS override them (on node's command line the last wins).
 * Resolves once every process says it is serving.
 */
export async function startBridge(
  ctx: BenchContext,
  name: string,
  rulesFile: string,
  options: BridgeOptions = {},
): Promise<Bridge> {
  const workers = options.workers ?? 1;
  const port = workers > 1 ? await freePort() : 0;
  const opsPort = workers > 1 ? await freePort() : 0;
  const launch = productLaunch(ctx.root);
  const nodeArgs = [
    ...launch.nodeFlags,
    ...(options.cpuProfDir ? cpuProfArgs(options.cpuProfDir) : []),
    ...(options.gcOnSignal ? ['--expose-gc', '--require', join(ctx.root, 'bench', 'gc-on-signal.cjs')] : []),
    ...(options.extraNodeArgs ?? []),
    ...(ctx.bridgeNodeArgs ?? []),
  ];
  const args = [
    ...nodeArgs,
    join(ctx.root, 'bin', 'ers-bridge.js'),
    'serve',
    '--rules',
    rulesFile,
    '--port',
    String(port),
    '--ops-port',
    String(opsPort),
    ...(workers > 1 ? ['--workers', String(workers)] : []),
  ];
  // The shebang's environment (e.g. MALLOC_ARENA_MAX) as `env -S` sets it: over what the bench passes on.
  const env: NodeJS.ProcessEnv = {
    ...ctx.bridgeEnv,
    ...launch.env,
    ...options.extraEnv,
    LOG_LEVEL: options.logLevel ?? 'warn',
  };
  if (ctx.fromSource) env['ERS_BRIDGE_FROM_SOURCE'] = '1';
  else delete env['ERS_BRIDGE_FROM_SOURCE'];
  const logFile = join(ctx.tmp, `${name.replace(/[^a-z0-9-]+/gi, '_')}.log`);
  const [command, commandArgs] = wrapped(options.wrapper, args);
  const proc = spawnProc(name, command, commandArgs, { env, stdoutFile: logFile, cwd: ctx.root });
  const readyMs = options.wrapper?.readyTimeoutMs ?? 40_000;
  const m = await waitForOutput(
    proc,
    /ers-bridge serving environment \S+ on (http:\/\/127\.0\.0\.1:\d+)/,
    readyMs,
    workers,
  );
  const ops = await waitForOutput(
    proc,
    /ers-bridge ops surface \(\/healthz, \/readyz, \/metrics\) on (http:\/\/127\.0\.0\.1:\d+)/,
    readyMs,
    workers,
  );
  return { proc, url: m[1]!, opsUrl: ops[1]!, logFile };
}

/** nginx with a generated config under `prefix`: the static path and header rewrite, upstream keep-alive. */
export async function startNginx(ctx: BenchContext, upstreamOrigin: string, token: string) {
  const prefix = join(ctx.tmp, 'nginx');
  spawnSync('mkdir', ['-p', join(prefix, 'logs'), join(prefix, 'temp')]);
  const port = await freePort();
  const upstream = new URL(upstreamOrigin);
  const runningAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const conf = `# generated by bench/run.ts
${runningAsRoot ? 'user root;' : ''}
worker_processes 1;
error_log ${prefix}/logs/error.log warn;
pid ${prefix}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/temp/body;
  proxy_temp_path ${prefix}/temp/proxy;
  fastcgi_temp_path ${prefix}/temp/fastcgi;
  uwsgi_temp_path ${prefix}/temp/uwsgi;
  scgi_temp_path ${prefix}/temp/scgi;
  keepalive_requests 1000000;
  upstream apim {
    server ${upstream.host};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location /ers-api/STU3/v1/ {
      rewrite ^/ers-api/STU3/v1/(.*)$ /referrals/FHIR/STU3/$1 break;
      proxy_pass http://apim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host ${upstream.host};
      proxy_set_header Authorization "Bearer ${token}";
      proxy_set_header XAPI_ASID "";
      proxy_set_header HTTP_X_SESSION_KEY "";
    }
  }
}
`;
  const confFile = join(prefix, 'nginx.conf');
  writeFileSync(confFile, conf);
  const proc = spawnProc('nginx', 'nginx', ['-p', prefix, '-c', confFile, '-g', 'daemon off;']);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exited()) throw new Error(`nginx exited at start:\n${proc.output()}`);
    try {
      const res = await request(`${url}/`);
      await res.body.dump();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`nginx did not answer within 10 s:\n${proc.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { proc, url, confFile };
}

/** The installed nginx version, or undefined when nginx is not installed. */
export function nginxVersion(): string | undefined {
  const r = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return (r.stderr || r.stdout)
    .trim()
    .replace(/^nginx version:\s*/, '')
    .replace(/^nginx\//, '');
}

interface Called {
  status: number;
  text: string;
}

async function call(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
  dispatcher?: Pool,
): Promise<Called> {
  const res = await request(`${base}${path}`, {
    method: method as 'GET',
    headers,
    ...(body !== undefined ? { body } : {}),
    ...(dispatcher ? { dispatcher } : {}),
  });
  return { status: res.statusCode, text: await res.body.text() };
}

/** A001, then (when `select`) A002 with the first permission: a session key ready for data calls. */
export async function openSession(base: string, select = true, dispatcher?: Pool): Promise<string> {
  const a001 = await call(
    base,
    'POST',
    SESSION_PATH,
    { XAPI_ASID: ASID, 'Content-Type': 'application/json' },
    JSON.stringify({ typeInfo: TYPE_INFO, token: 'bench-ticket' }),
    dispatcher,
  );
  if (a001.status !== 201) throw new Error(`A001 failed: ${a001.status} ${a001.text.slice(0, 500)}`);
  const session = JSON.parse(a001.text) as { id: string; user: { permissions: unknown[] } };
  if (!select) return session.id;
  const a002 = await call(
    base,
    'PUT',
    `${SESSION_PATH}/${session.id}`,
    { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/json' },
    JSON.stringify({ ...session, permission: session.user.permissions[0] }),
    dispatcher,
  );
  if (a002.status !== 200) throw new Error(`A002 failed: ${a002.status} ${a002.text.slice(0, 500)}`);
  return session.id;
}

export function legacyHeaders(sessionKey: string): Record<string, string> {
  return { XAPI_ASID: ASID, HTTP_X_SESSION_KEY: sessionKey };
}

/** One call before the load: it must answer 200 with the ReferralRequest, and the link the body must carry. */
export async function verifyTarget(
  name: string,
  url: string,
  headers: Record<string, string>,
  expectLink: string,
): Promise<number> {
  const res = await call(url, 'GET', '', headers);
  if (res.status !== 200)
    throw new Error(`${name}: expected 200 from ${url}, got ${res.status}: ${res.text.slice(0, 500)}`);
  const body = JSON.parse(res.text) as { resourceType?: string };
  if (body.resourceType !== 'ReferralRequest') throw new Error(`${name}: not a ReferralRequest`);
  if (!res.text.includes(expectLink)) throw new Error(`${name}: the answer does not carry the link ${expectLink}`);
  return res.text.length;
}

export async function getJson<T>(url: string, headers: Record<string, string> = {}): Promise<T> {
  const res = await request(url, { headers });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

export async function getText(url: string): Promise<string> {
  const res = await request(url);
  return res.body.text();
}
