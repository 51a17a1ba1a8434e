/**
 * ers-bridge for the caller-authentication and isolation tests: the harness's stand-in and ASIDs, but with rules
 * that rulesFor cannot express (callerAuth on an ASID, server.tls, trustedProxies…) added to the rules file's YAML
 * document before it is validated by the real loader — so the trust checks (src/rules/trust.ts) run on them too —
 * and with secrets of the test's own (`env`) besides the harness's APIM application. Also: a legacy call through a
 * given undici dispatcher (a client certificate), and A001 + A002 through it.
 *
 *   const b = await startCallerBridge({
 *     patch: (doc) => { doc.asids[APP_ASID].callerAuth = { a001Secret: 'env:A001_SECRET' }; },
 *     env: { A001_SECRET: 's3cret…' },
 *   });
 */
import { type Dispatcher, request } from 'undici';
import { parse, stringify } from 'yaml';
import { type ApimStandIn, startApimStandIn } from '../../src/apim-standin/index.js';
import { parseRules } from '../../src/rules/load.js';
import type { Rules } from '../../src/rules/schema.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime, type RuntimeOptions } from '../../src/runtime/runtime.js';
import { type ApimApp, newApimApp } from './apim-app.js';
import {
  APP_ASID,
  type Harness,
  harnessRules,
  type LegacyResponse,
  listenBridge,
  type RulesOverrides,
} from './harness.js';
import { type RulesOptions, rulesText } from './rules.js';

/** A rules file's YAML document, as parsed (before validation). */
export type RulesDoc = Record<string, any>;

/** The YAML of `options` (checked), edited by `patch`, and read back through the loader (schema and trust). */
export function patchedRules(
  options: RulesOptions,
  patch: (doc: RulesDoc) => void = () => {},
): { rules: Rules; text: string } {
  const doc = parse(rulesText(options)) as RulesDoc;
  patch(doc);
  const text = stringify(doc);
  return { rules: parseRules(text, options.file ?? 'test.yaml'), text };
}

export interface CallerBridgeOptions {
  /** As startHarness's `rules`. */
  rules?: RulesOverrides;
  /** Edits the rules document before validation (callerAuth, server.tls, trustedProxies…). */
  patch?: (doc: RulesDoc) => void;
  /** Secrets besides the harness application's (TEST_API_KEY, TEST_PRIVATE_KEY). */
  env?: Record<string, string>;
  /** More APIM applications to register at the stand-in (their `env` is added; use another envPrefix). */
  apps?: ApimApp[];
  runtime?: Partial<RuntimeOptions>;
}

export interface CallerBridge extends Harness {
  /** The harness's APIM application (APP_ASID's, TEST_*). */
  app: ApimApp;
  rules: Rules;
  /** The validated rules file text, for tests that write it to a file (reload). */
  text: string;
  standIn: ApimStandIn;
}

export async function startCallerBridge(options: CallerBridgeOptions = {}): Promise<CallerBridge> {
  const app = await newApimApp({ asid: APP_ASID });
  const standIn = await startApimStandIn({ apps: [app.standInApp, ...(options.apps ?? []).map((a) => a.standInApp)] });
  try {
    const { rules, text } = patchedRules(harnessRules(standIn, options.rules), options.patch);
    const env = Object.assign({}, app.env, ...(options.apps ?? []).map((a) => a.env), options.env);
    const runtime = await buildRuntime('test.yaml', rules, {
      resolveSecret: secretResolver(env),
      tokenRetries: 1,
      tokenBackoffMs: 20,
      ...options.runtime,
    });
    const bridge = await listenBridge(runtime);
    return {
      ...bridge,
      app,
      rules,
      text,
      standIn,
      runtime,
      secrets: { apiKey: app.apiKey, privateKeyPem: app.privateKeyPem },
      env,
      async close() {
        await bridge.close();
        await standIn.close();
      },
    };
  } catch (e) {
    await standIn.close();
    throw e;
  }
}

/** A legacy call to `base`: header names sent exactly as given; through `dispatcher` when given. */
export type LegacyCall = (
  method: string,
  path: string,
  headers?: Record<string, string>,
  body?: string | Buffer,
) => Promise<LegacyResponse>;

export function callerVia(base: string, dispatcher?: Dispatcher): LegacyCall {
  return async (method, path, headers = {}, body) => {
    const res = await request(`${base}${path}`, {
      method: method as 'GET',
      headers,
      ...(body !== undefined ? { body } : {}),
      ...(dispatcher ? { dispatcher } : {}),
    });
    const buf = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body: buf, json: () => JSON.parse(buf.toString('utf8')) };
  };
}

export const SESSION_PATH = '/ers-api/v1/ProfessionalSession';
export const A001_BODY = (token = 'legacy-ticket') =>
  JSON.stringify({ typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession', token });

/** A001 and A002 through `call`; returns the session key (throws with the answer when either is refused). */
export async function sessionVia(call: LegacyCall, asid: string, token = 'legacy-ticket'): Promise<string> {
  const a001 = await call(
    'POST',
    SESSION_PATH,
    { XAPI_ASID: asid, 'Content-Type': 'application/json' },
    A001_BODY(token),
  );
  if (a001.status !== 201) throw new Error(`A001 failed: ${a001.status} ${a001.body.toString()}`);
  const session = a001.json();
  const a002 = await call(
    'PUT',
    `${SESSION_PATH}/${session.id}`,
    { XAPI_ASID: asid, HTTP_X_SESSION_KEY: session.id, 'Content-Type': 'application/json' },
    JSON.stringify({ ...session, permission: session.user.permissions[0] }),
  );
  if (a002.status !== 200) throw new Error(`A002 failed: ${a002.status} ${a002.body.toString()}`);
  return session.id as string;
}
