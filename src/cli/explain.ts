/**
 * `ers-bridge explain`: what a legacy call becomes, with no session, no token and no network. It runs the live
 * flow's own steps — identify, the caller, the policy steps, the rewrite — so it refuses exactly what a real call
 * would be refused. Secrets are shown as their references, never resolved. Under rules whose modes send calls to the
 * legacy host it also runs the mode step (routeSettings, decideMode, shadowAllowed) and shows each side's request:
 * APIM's, and the legacy host's (legacyRequestHeaders: the client's headers but the session key and hop-by-hop ones).
 */
import type { EndpointDef } from '../legacy/endpoints.js';
import { LegacyError } from '../legacy/errors.js';
import { identify } from '../legacy/identify.js';
import { legacyBaseUrlOf } from '../legacy-host/host.js';
import { legacyPathFor, legacyRequestHeaders } from '../legacy-host/legacy-call.js';
import {
  canaryBucket,
  decideMode,
  modeSourceOf,
  routeSettings,
  type SideName,
  sendsToLegacyHost,
  shadowAllowed,
} from '../pipeline/mode.js';
import {
  apimAccessProblem,
  type CallRole,
  messageSetProblem,
  refusalOf,
  requireCaller,
  SESSION_HEADER,
} from '../pipeline/steps.js';
import { successorOf, successorPlan } from '../pipeline/successor.js';
import type { AsidConfig, Rules } from '../rules/schema.js';
import { buildApimRequest, legacyHeader } from '../translation/request.js';

export interface Explanation {
  ok: boolean;
  text: string;
}

export interface ExplainOptions {
  /** The business function a user-restricted session would have selected with A002 (`--role`). */
  businessFunction?: string;
  /** A session key (`--session`, else the call's HTTP_X_SESSION_KEY): which side of a canary it is on. Never shown. */
  sessionKey?: string;
  /** The headers as the client spells them, name and value in turn: the legacy host gets them so. */
  rawHeaders?: readonly string[];
}

const LEGACY_ONLY = ['xapi_asid', 'http_x_session_key', 'xapi_fqdn'];

/** The refusal as explain prints it: what the operator needs to see at a glance, then the client's diagnostics. */
function refusalLine(problem: LegacyError, asid: string, environment: string, code: string): string {
  const short: Partial<Record<string, string>> = {
    ASID_UNKNOWN: `ASID ${asid} is not configured in ${environment}`,
    ENDPOINT_NOT_ALLOWED_FOR_ASID: `${code} is not in ASID ${asid}'s allowedCodes`,
    ENDPOINT_NOT_APP_RESTRICTED: `ASID ${asid} is application-restricted`,
    BUSINESS_FUNCTION_NOT_ALLOWED: `${code} does not take that business function`,
  };
  const what = short[problem.reason] ?? problem.reason;
  return `  policy: ${what} → the call would be refused (${problem.status} ${problem.reason}): ${problem.diagnostics}`;
}

/** The policy steps a live call runs, in the live order; the first problem found, if any. */
function policyProblem(
  endpoint: EndpointDef,
  asid: string,
  config: AsidConfig,
  options: ExplainOptions,
  apimMayAnswer: boolean,
): LegacyError | undefined {
  const messageSet = messageSetProblem(endpoint, asid, config);
  if (messageSet) return messageSet;
  // APIM's rules apply when APIM may answer: translate, a canary session on APIM (or any, when the session is not
  // known), or a shadow whose primary is APIM.
  if (!apimMayAnswer) return undefined;
  return apimAccessProblem(endpoint, asid, roleFor(config, options));
}

/** The role a call of this ASID would have: the ASID's own, or (user-restricted) the one given with --role. */
function roleFor(config: AsidConfig, options: ExplainOptions): CallRole {
  const businessFunction =
    config.accessMode === 'application-restricted' ? config.businessFunction : options.businessFunction;
  return { accessMode: config.accessMode, businessFunction };
}

/** A side as explain names it. */
const SIDE: Record<SideName, string> = { apim: 'APIM', legacy: 'the legacy host' };

/** One side's request, as shown: which side, and what its part in the call is (`answers`, `the copy`, …). */
interface ShownSide {
  side: SideName;
  part: string;
  /** A copy, not the answer: its failing before it is sent does not refuse the call. */
  copy?: boolean;
}

/** The mode chosen for the call: what explain says about it, the sides it shows, and whether APIM may answer. */
interface ModeView {
  lines: string[];
  sides: ShownSide[];
  apimMayAnswer: boolean;
}

/**
 * The mode step as a live call would take it (routeSettings, decideMode, shadowAllowed): for a canary, the side of
 * this session or ASID when it is known; for a shadow, which side answers, which gets the copy, and whether it does.
 * Rules that send nothing to the legacy host say nothing about modes, as before there were any.
 */
function modeView(
  rules: Rules,
  e: EndpointDef,
  asid: string | undefined,
  cfg: AsidConfig | undefined,
  headers: Record<string, string>,
  options: ExplainOptions,
): ModeView {
  const route = routeSettings(rules.modes, e);
  const from = modeSourceOf(rules.modes, e);
  if (route.mode === 'translate') {
    const lines = sendsToLegacyHost(rules.modes)
      ? [`mode: translate (${from}): APIM answers; nothing is sent to the legacy host`]
      : [];
    return { lines, sides: [{ side: 'apim', part: '' }], apimMayAnswer: true };
  }
  if (route.mode === 'passthrough') {
    return {
      lines: [
        `mode: passthrough (${from}): the legacy host answers, the call unchanged but for the session key; nothing is sent to APIM`,
      ],
      sides: [{ side: 'legacy', part: 'answers' }],
      apimMayAnswer: false,
    };
  }
  if (route.mode === 'shadow') {
    const { primary, sampleRate, maxConcurrent, timeoutMs } = route.shadow;
    const secondary: SideName = primary === 'apim' ? 'legacy' : 'apim';
    const lines = [
      `mode: shadow (${from}): ${SIDE[primary]} answers the client; a copy goes to ${SIDE[secondary]} and the two answers are compared`,
    ];
    const production = secondary === 'apim' ? rules.apim.production : rules.legacy.production;
    const safe = shadowAllowed(e, production);
    const refusedAtApim =
      secondary === 'apim' && cfg && asid ? apimAccessProblem(e, asid, roleFor(cfg, options)) : undefined;
    let copied: boolean;
    if (!safe.ok) {
      lines.push(`  copy: never sent: ${safe.why}`);
      copied = false;
    } else if (refusedAtApim) {
      lines.push(`  copy: not sent: APIM would refuse it (${refusedAtApim.reason})`);
      copied = false;
    } else {
      const write = e.readOnly
        ? `${e.code} only reads`
        : `${e.code} changes data, and ${SIDE[secondary]} is declared non-production (${secondary === 'apim' ? 'apim' : 'legacy'}.production: false)`;
      lines.push(
        `  copy: sent for ${percent(sampleRate * 100)} of calls (${write}); at most ${maxConcurrent} in flight, timed out after ${timeoutMs} ms`,
      );
      copied = true;
    }
    return {
      lines,
      sides: [
        { side: primary, part: 'answers' },
        { side: secondary, part: copied ? 'the copy' : 'the copy, not sent', copy: true },
      ],
      apimMayAnswer: primary === 'apim',
    };
  }
  // canary
  const canary = route.canary ?? { percent: 0, by: 'session' as const };
  const what = canary.by === 'asid' ? 'ASIDs' : 'sessions';
  const lines = [
    `mode: canary (${from}): ${percent(canary.percent)} of ${what} go to APIM, the others to the legacy host; ${canary.by === 'asid' ? 'an ASID' : 'a session'} stays on its side`,
  ];
  const key = options.sessionKey ?? legacyHeader(headers, SESSION_HEADER);
  const known = canary.by === 'asid' ? asid : key;
  if (known === undefined || known === '') {
    lines.push(
      canary.by === 'asid'
        ? `  depends on the ASID: ${percent(canary.percent)} of ASIDs go to APIM (give --header 'XAPI_ASID: <asid>' for one ASID's side)`
        : `  depends on the session: ${percent(canary.percent)} of sessions go to APIM (give --session <key> for one session's side)`,
    );
    return {
      lines,
      sides: [
        { side: 'apim', part: `for the ${what} that go to APIM` },
        { side: 'legacy', part: 'for the others' },
      ],
      apimMayAnswer: true,
    };
  }
  const side = decideMode(rules.modes, e, { sessionKey: key ?? '', asid: asid ?? '' }).primary;
  const bucket = canaryBucket(canary.by === 'asid' ? `asid:${known}` : `session:${known}`);
  lines.push(
    `  ${canary.by === 'asid' ? `ASID ${known}` : 'this session'} goes to ${SIDE[side]} (canary bucket ${bucket} of 10000; buckets below ${Math.round(canary.percent * 100)} go to APIM)`,
  );
  return { lines, sides: [{ side, part: 'answers' }], apimMayAnswer: side === 'apim' };
}

function percent(p: number): string {
  return `${Math.round(p * 100) / 100}%`;
}

export function explain(
  rules: Rules,
  method: string,
  path: string,
  headers: Record<string, string>,
  options: ExplainOptions = {},
): Explanation {
  const lines: string[] = [];
  const id = identify(method, path);
  if (id.kind === 'session') {
    return {
      ok: true,
      text: `${id.op} (${id.op === 'A001' ? 'create' : id.op === 'A002' ? 'select role in' : 'delete'} professional session): answered by ers-bridge itself; nothing is sent to APIM.`,
    };
  }
  if (id.kind !== 'endpoint') {
    const why =
      id.kind === 'dstu2'
        ? `DSTU2 call, withdrawn in August 2024; use ${id.replacement}`
        : id.kind === 'method-not-allowed'
          ? `${id.codes.join(', ')} takes ${id.allow.join(' or ')}, not ${method}`
          : id.kind === 'bad-param'
            ? `${id.code}: {${id.param}} must be ${id.expected}`
            : id.kind === 'bad-path'
              ? `refused: ${id.reason}`
              : (refusalOf(id)?.diagnostics ?? 'no e-RS operation at this path');
    return { ok: false, text: `not translated: ${why}` };
  }
  const e = id.endpoint;
  lines.push(`${e.code} ${e.name}`);
  lines.push(
    `  application-restricted access: ${e.appRestricted ? 'allowed' : 'not allowed (needs a CIS2 user)'}; If-Match required: ${e.requiresIfMatch ? 'yes' : 'no'}${e.deprecated ? `; ${e.deprecated}` : ''}`,
  );

  let ok = true;
  const asid = legacyHeader(headers, 'XAPI_ASID');
  const named = asid !== undefined && Object.hasOwn(rules.asids, asid) ? rules.asids[asid] : undefined;
  const mode = modeView(rules, e, asid, named, headers, options);
  let cfg: AsidConfig | undefined;
  if (asid) {
    try {
      cfg = requireCaller(new Map(Object.entries(rules.asids)), rules.environment, headers);
      const problem = policyProblem(e, asid, cfg, options, mode.apimMayAnswer);
      if (problem) {
        lines.push(refusalLine(problem, asid, rules.environment, e.code));
        ok = false;
      } else {
        lines.push(`  policy: allowed for ASID ${asid} (${cfg.accessMode})`);
        if (
          cfg.accessMode === 'user-restricted' &&
          options.businessFunction === undefined &&
          e.businessFunctions.length &&
          mode.apimMayAnswer
        ) {
          lines.push(
            `  business function: checked against the role selected with A002 (${e.code} takes ${e.businessFunctions.join(', ')}); give --role to check one`,
          );
        }
      }
    } catch (err) {
      if (!(err instanceof LegacyError)) throw err;
      lines.push(refusalLine(err, asid, rules.environment, e.code));
      ok = false;
    }
  }
  lines.push(...mode.lines);

  // Rules that send nothing to the legacy host: the APIM request alone, as before there were modes.
  const single = mode.lines.length === 0;
  if (!single) lines.push(`legacy: ${method} ${path}`);
  for (const shown of mode.sides) {
    if (shown.side === 'legacy') {
      lines.push(...legacyRequest(rules, path, method, headers, options, shown.part));
      continue;
    }
    const apim = apimRequest(rules, id, headers, cfg, options, shown.part ? `APIM (${shown.part}):` : 'APIM:  ');
    if ('refused' in apim) {
      if (shown.copy) {
        lines.push(
          `APIM (${shown.part}): the copy would fail before it is sent (${apim.refused.status}): ${apim.refused.diagnostics}`,
        );
      } else {
        lines.push(`  refused before sending (${apim.refused.status}): ${apim.refused.diagnostics}`);
        ok = false;
        if (single) return { ok, text: lines.join('\n') };
      }
      continue;
    }
    if (single) lines.push(`legacy: ${method} ${path}`);
    lines.push(...apim.lines);
  }
  return { ok, text: lines.join('\n') };
}

/** The APIM request the call becomes (or the first of its successor's), with secrets shown as their references. */
function apimRequest(
  rules: Rules,
  id: Extract<ReturnType<typeof identify>, { kind: 'endpoint' }>,
  headers: Record<string, string>,
  cfg: AsidConfig | undefined,
  options: ExplainOptions,
  label: string,
): { lines: string[] } | { refused: { status: number; diagnostics: string } } {
  const e = id.endpoint;
  const lines: string[] = [];
  const base = new URL(rules.apim.baseUrl);
  const tokenNote =
    rules.apim.auth === 'none'
      ? undefined
      : `<access token for the APIM application of ${cfg?.apim ? `API key ${cfg.apim.apiKey}` : 'the calling ASID'}, from ${rules.apim.tokenUrl}>`;
  // The call APIM receives: the legacy one, or the first call of its successor where APIM retired it.
  const successor = successorOf(e, rules.apim.successors);
  const step = successor ? successorPlan(successor, id.params) : { endpoint: e, params: id.params };
  if ('refused' in step) return { refused: step.refused };
  try {
    const plan = buildApimRequest({
      endpoint: step.endpoint,
      params: step.params,
      query: id.query,
      headers,
      apimBasePath: base.pathname.replace(/\/+$/, ''),
      ...(tokenNote ? { accessToken: tokenNote } : {}),
      correlationId: headers['x-correlation-id'] ?? '<generated per call>',
      ...(cfg?.accessMode === 'user-restricted'
        ? {
            user: {
              odsCode: '<ODS code of the role selected with A002>',
              businessFunction: options.businessFunction ?? '<business function of the role selected with A002>',
              onBehalfOfUserId: '<onBehalfOf from A002, only for SERVICE_PROVIDER_CLINICIAN_ADMIN>',
            },
          }
        : {}),
    });
    lines.push(`${label} ${plan.method} ${base.origin}${plan.path}`);
    if ('note' in step) lines.push(`  successor: ${step.note}`);
    lines.push('headers sent to APIM:');
    for (const [k, v] of Object.entries(plan.headers)) {
      lines.push(`  ${k}: ${k === 'authorization' ? v.replace(/^Bearer .*/, `Bearer ${tokenNote}`) : v}`);
    }
    const dropped = Object.keys(headers).filter(
      (h) => LEGACY_ONLY.includes(h) || !Object.keys(plan.headers).some((k) => k.toLowerCase() === h),
    );
    if (dropped.length > 0) lines.push(`headers not forwarded: ${dropped.join(', ')}`);
    lines.push(
      `response: X-Request-ID → X_ERS_TRANSACTION_ID; ${base.origin}${base.pathname}/STU3/… links → <legacy base>/STU3/v1/…`,
    );
    return { lines };
  } catch (err) {
    if (!(err instanceof LegacyError)) throw err;
    return { refused: err };
  }
}

/** What the legacy host's session key is replaced with on the way there. */
const LEGACY_SESSION_KEY =
  "<the legacy host's own session key: ers-bridge opens a session there on first use, with the client's A001 token and A002 role>";

/** The request the legacy host gets: the call at the legacy base, the client's headers but the session key. */
function legacyRequest(
  rules: Rules,
  path: string,
  method: string,
  headers: Record<string, string>,
  options: ExplainOptions,
  part: string,
): string[] {
  const base = legacyBaseUrlOf(rules.legacy);
  const lines = [`legacy host (${part}): ${method} ${base.origin}${legacyPathFor(base, path)}`];
  const tls = rules.legacy.tls;
  lines.push(
    base.protocol === 'http:'
      ? '  plain HTTP (legacy.baseUrl is http:): no TLS, no client certificate'
      : tls
        ? `  mutual TLS with the client certificate ${tls.certificate} (legacy.tls)`
        : '  TLS without a client certificate (legacy.tls is not set; HSCN required one)',
  );
  const raw = options.rawHeaders ?? Object.entries(headers).flat();
  const sent = legacyRequestHeaders(raw, LEGACY_SESSION_KEY);
  lines.push("headers sent to the legacy host (the client's, unchanged, but for the session key and hop-by-hop ones):");
  for (const [k, v] of Object.entries(sent)) lines.push(`  ${k}: ${v}`);
  const names = new Set(Object.keys(sent).map((k) => k.toLowerCase()));
  const dropped = [...new Set(raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase()))].filter(
    (n) => !names.has(n) && n !== 'http_x_session_key' && n !== 'http-x-session-key',
  );
  if (dropped.length > 0) lines.push(`headers not forwarded to the legacy host: ${dropped.join(', ')}`);
  lines.push("response: the legacy host's answer as it is (hop-by-hop headers aside)");
  return lines;
}
