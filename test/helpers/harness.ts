/**
 * Test harness: a real APIM stand-in and a real ers-bridge, both on loopback, with keys generated at test time.
 * Logs are captured so tests can assert on them (and scan them for secrets).
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { Metrics } from '../../src/admin/metrics.js';
import { type ApimStandIn, type StandInOptions, startApimStandIn } from '../../src/apim-standin/index.js';
import { createLogger } from '../../src/logging.js';
import { buildOpsServer } from '../../src/ops/server.js';
import type { Rules } from '../../src/rules/schema.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime, closeRuntime, type Runtime, type RuntimeOptions } from '../../src/runtime/runtime.js';
import { buildServer, type RuntimeHolder } from '../../src/server.js';
import { newApimApp } from './apim-app.js';
import { type RulesOptions, rulesFor } from './rules.js';

export const APP_ASID = '999000000001';
export const OTHER_ASID = '999000000002';
export const LIMITED_ASID = '999000000003';
export const FIXTURES = new URL('../../fixtures/ers-api/examples/', import.meta.url);

export interface Harness {
  standIn: ApimStandIn;
  bridge: FastifyInstance;
  bridgeUrl: string;
  legacyBase: string;
  /** The ops surface (/healthz, /readyz, /metrics), on a loopback port of its own. */
  ops: FastifyInstance;
  opsUrl: string;
  holder: RuntimeHolder;
  runtime: Runtime;
  logs: string[];
  secrets: { apiKey: string; privateKeyPem: string };
  /** The secrets by the environment variable names the rules refer to (TEST_API_KEY, TEST_PRIVATE_KEY). */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** Changes to the harness's rules: each section replaces the harness's, but `apim` and `asids` are merged. */
export type RulesOverrides = Partial<Omit<RulesOptions, 'apim'>> & { apim?: Partial<RulesOptions['apim']> };

export interface HarnessOptions {
  accessTokenTtlSeconds?: number;
  /** Rules besides the harness's (validated with them), e.g. `{ apim: { baseUrl: fake, rateLimit } }`. */
  rules?: RulesOverrides;
  /** Changes the validated rules in place (not checked again): prefer `rules`. */
  rulesExtra?: (rules: Rules) => void;
  runtime?: Partial<RuntimeOptions>;
  /** Omit the stand-in's app registration, to provoke token refusals. */
  registerApp?: boolean;
  keyIdAtStandIn?: string;
  /** Stand-in options besides the harness's: operations it has retired, scripted e-RS errors, link lifetime, TLS. */
  standIn?: Pick<StandInOptions, 'retire' | 'failWith' | 'objectStoreLinkTtlSeconds' | 'clock' | 'tls'>;
}

/**
 * The harness's rules as rulesFor options: three application-restricted ASIDs (APP_ASID, OTHER_ASID and
 * LIMITED_ASID, allowed A004 and A005 only) sharing the application registered for APP_ASID (TEST_API_KEY,
 * TEST_PRIVATE_KEY, kid test-1), in front of the stand-in.
 */
export function harnessRules(
  standIn: { baseUrl: string; tokenUrl: string },
  overrides: RulesOverrides = {},
): RulesOptions {
  const { apim, asids, ...rest } = overrides;
  return {
    apim: { baseUrl: standIn.baseUrl, tokenUrl: standIn.tokenUrl, ...apim },
    asids: { [APP_ASID]: {}, [OTHER_ASID]: {}, [LIMITED_ASID]: { allowedCodes: ['A004', 'A005'] }, ...asids },
    ...rest,
  };
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const app = await newApimApp({
    asid: APP_ASID,
    ...(options.keyIdAtStandIn !== undefined ? { kidAtStandIn: options.keyIdAtStandIn } : {}),
  });
  const standIn = await startApimStandIn({
    apps: options.registerApp === false ? [] : [app.standInApp],
    ...(options.accessTokenTtlSeconds !== undefined ? { accessTokenTtlSeconds: options.accessTokenTtlSeconds } : {}),
    ...options.standIn,
  });
  const rules = rulesFor(harnessRules(standIn, options.rules));
  options.rulesExtra?.(rules);
  const runtime = await buildRuntime('test.yaml', rules, {
    resolveSecret: secretResolver(app.env),
    tokenRetries: 1,
    tokenBackoffMs: 20,
    ...options.runtime,
  });
  const bridge = await listenBridge(runtime);
  return {
    ...bridge,
    standIn,
    runtime,
    secrets: { apiKey: app.apiKey, privateKeyPem: app.privateKeyPem },
    env: app.env,
    async close() {
      await bridge.close();
      await standIn.close();
    },
  };
}

/**
 * A log destination that keeps the lines for the test and also appends them to the suite-wide log folder, which
 * test/global-setup.ts scans for secrets after the run.
 */
export function captureLogs(): { logs: string[]; destination: Writable } {
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      const text = chunk.toString('utf8');
      logs.push(...text.split('\n').filter(Boolean));
      keepForScan(text);
      cb();
    },
  });
  return { logs, destination };
}

/** Appends output of an ers-bridge (in-process or a child process) to the suite-wide log scan. */
export function keepForScan(text: string): void {
  const dir = process.env['ERS_BRIDGE_TEST_LOG_DIR'];
  if (dir) appendFileSync(join(dir, `${process.pid}.log`), text.endsWith('\n') ? text : `${text}\n`);
}

/**
 * ers-bridge on a free loopback port with the given runtime, and its ops surface on another, as `serve` runs them
 * (one metrics registry for both: the runtime's, else a fresh one); its log lines captured.
 */
export async function listenBridge(runtime: Runtime) {
  const { logs, destination } = captureLogs();
  const holder: RuntimeHolder = { current: runtime };
  const logger = createLogger({ level: 'info', destination });
  const metrics = runtime.shared.metrics ?? new Metrics({ processMetrics: false });
  const bridge = await buildServer(holder, { logger, metrics });
  const ops = await buildOpsServer(holder, { logger, metrics });
  const address = await bridge.listen({ host: '127.0.0.1', port: 0 });
  const opsUrl = await ops.listen({ host: '127.0.0.1', port: 0 });
  return {
    bridge,
    bridgeUrl: address,
    legacyBase: `${address}/ers-api`,
    ops,
    opsUrl,
    holder,
    logs,
    async close() {
      await bridge.close();
      await ops.close();
      await closeRuntime(holder.current);
    },
  };
}

export interface LegacyResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json(): any;
}

/** A legacy client call: header names are sent exactly as given (XAPI_ASID, HTTP_X_SESSION_KEY). */
export async function legacyCall(
  h: Harness,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
): Promise<LegacyResponse> {
  const res = await request(`${h.bridgeUrl}${path}`, {
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

/** A001 + A002: a session with its (only) permission selected; returns the session key. */
export async function openSession(h: Harness, asid = APP_ASID): Promise<string> {
  const a001 = await legacyCall(
    h,
    'POST',
    '/ers-api/v1/ProfessionalSession',
    { XAPI_ASID: asid, 'Content-Type': 'application/json' },
    JSON.stringify({ typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession', token: 'legacy-ticket' }),
  );
  if (a001.status !== 201) throw new Error(`A001 failed: ${a001.status} ${a001.body.toString()}`);
  const session = a001.json();
  const a002 = await legacyCall(
    h,
    'PUT',
    `/ers-api/v1/ProfessionalSession/${session.id}`,
    { XAPI_ASID: asid, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/json' },
    JSON.stringify({ ...session, permission: session.user.permissions[0] }),
  );
  if (a002.status !== 200) throw new Error(`A002 failed: ${a002.status} ${a002.body.toString()}`);
  return session.id as string;
}

/** A fixture's text with `_baseUrl_` links as a legacy client sees them through ers-bridge. */
export function legacyFixture(relative: string, legacyBase: string): unknown {
  const text = readFileSync(new URL(relative, FIXTURES), 'utf8')
    .replaceAll('_baseUrl_/STU3/', `${legacyBase}/STU3/v1/`)
    .replaceAll('_baseUrl_/R4/', `${legacyBase}/R4/v1/`);
  return JSON.parse(text);
}

/** A request fixture as a legacy client would send it: `_baseUrl_` links point at the legacy base it uses. */
export function legacyRequestFixture(relative: string, legacyBase: string): Buffer {
  const text = readFileSync(new URL(relative, FIXTURES), 'utf8')
    .replaceAll('_baseUrl_/STU3/', `${legacyBase}/STU3/v1/`)
    .replaceAll('_baseUrl_/R4/', `${legacyBase}/R4/v1/`);
  if (text.includes('_baseUrl_')) throw new Error(`${relative}: a _baseUrl_ link of another form`);
  return Buffer.from(text, 'utf8');
}

export function fixtureBytes(relative: string): Buffer {
  return readFileSync(new URL(relative, FIXTURES));
}

/** The operation outcome shape every ers-bridge error has. */
export function expectLegacyOutcome(res: LegacyResponse, status: number, bridgeCode: string): any {
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${res.body.toString()}`);
  const ct = String(res.headers['content-type'] ?? '');
  if (!ct.startsWith('application/fhir+json')) throw new Error(`expected fhir+json, got ${ct}`);
  const body = res.json();
  const issue = body.issue?.[0];
  if (body.resourceType !== 'OperationOutcome') throw new Error('not an OperationOutcome');
  if (body.meta?.profile?.[0] !== 'https://fhir.nhs.uk/STU3/StructureDefinition/eRS-OperationOutcome-1') {
    throw new Error('wrong profile');
  }
  const codes = issue.details.coding.map((c: { code: string }) => c.code);
  if (!codes.includes(bridgeCode))
    throw new Error(`expected ${bridgeCode}, got ${codes.join(',')}: ${issue.diagnostics}`);
  if (typeof issue.diagnostics !== 'string' || issue.diagnostics.length < 20) throw new Error('diagnostics too thin');
  if (/\bat .+:\d+:\d+\)?/.test(issue.diagnostics)) throw new Error('stack trace leaked');
  return issue;
}
