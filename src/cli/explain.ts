/**
 * `ers-bridge explain`: what a legacy call becomes, with no session, no token and no network. It runs the live
 * flow's own steps — identify, the caller, the policy steps, the rewrite — so it refuses exactly what a real call
 * would be refused. Secrets are shown as their references, never resolved.
 */
import type { EndpointDef } from '../legacy/endpoints.js';
import { LegacyError } from '../legacy/errors.js';
import { identify } from '../legacy/identify.js';
import { routeSettings } from '../pipeline/mode.js';
import { apimAccessProblem, messageSetProblem, refusalOf, requireCaller } from '../pipeline/steps.js';
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
  rules: Rules,
  endpoint: EndpointDef,
  asid: string,
  config: AsidConfig,
  options: ExplainOptions,
): LegacyError | undefined {
  const messageSet = messageSetProblem(endpoint, asid, config);
  if (messageSet) return messageSet;
  // APIM's rules apply when APIM may answer: translate, canary, or a shadow whose primary is APIM.
  const route = routeSettings(rules.modes, endpoint);
  const apimMayAnswer = route.mode !== 'passthrough' && !(route.mode === 'shadow' && route.shadow.primary === 'legacy');
  if (!apimMayAnswer) return undefined;
  const businessFunction =
    config.accessMode === 'application-restricted' ? config.businessFunction : options.businessFunction;
  return apimAccessProblem(endpoint, asid, { accessMode: config.accessMode, businessFunction });
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
  let cfg: AsidConfig | undefined;
  if (asid) {
    try {
      cfg = requireCaller(new Map(Object.entries(rules.asids)), rules.environment, headers);
      const problem = policyProblem(rules, e, asid, cfg, options);
      if (problem) {
        lines.push(refusalLine(problem, asid, rules.environment, e.code));
        ok = false;
      } else {
        lines.push(`  policy: allowed for ASID ${asid} (${cfg.accessMode})`);
        if (
          cfg.accessMode === 'user-restricted' &&
          options.businessFunction === undefined &&
          e.businessFunctions.length
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

  const base = new URL(rules.apim.baseUrl);
  const tokenNote =
    rules.apim.auth === 'none'
      ? undefined
      : `<access token for the APIM application of ${cfg?.apim ? `API key ${cfg.apim.apiKey}` : 'the calling ASID'}, from ${rules.apim.tokenUrl}>`;
  // The call APIM receives: the legacy one, or the first call of its successor where APIM retired it.
  const successor = successorOf(e, rules.apim.successors);
  const step = successor ? successorPlan(successor, id.params) : { endpoint: e, params: id.params };
  if ('refused' in step) {
    lines.push(`  refused before sending (${step.refused.status}): ${step.refused.diagnostics}`);
    return { ok: false, text: lines.join('\n') };
  }
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
    lines.push(`legacy: ${method} ${path}`);
    lines.push(`APIM:   ${plan.method} ${base.origin}${plan.path}`);
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
  } catch (err) {
    if (!(err instanceof LegacyError)) throw err;
    lines.push(`  refused before sending (${err.status}): ${err.diagnostics}`);
    ok = false;
  }
  return { ok, text: lines.join('\n') };
}
