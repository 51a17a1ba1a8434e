/**
 * `ers-bridge explain`: the same identify → policy → rewrite steps as a real call, with no session, no token and
 * no network. Secrets are shown as their references, never resolved.
 */
import { LegacyError } from '../legacy/errors.js';
import { identify } from '../legacy/identify.js';
import type { Rules } from '../rules/schema.js';
import { buildApimRequest, legacyHeader } from '../translation/request.js';

export interface Explanation {
  ok: boolean;
  text: string;
}

const LEGACY_ONLY = ['xapi_asid', 'http_x_session_key', 'xapi_fqdn'];

export function explain(rules: Rules, method: string, path: string, headers: Record<string, string>): Explanation {
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
              : 'no e-RS operation at this path';
    return { ok: false, text: `not translated: ${why}` };
  }
  const e = id.endpoint;
  lines.push(`${e.code} ${e.name}`);
  lines.push(
    `  application-restricted access: ${e.appRestricted ? 'allowed' : 'not allowed (needs a CIS2 user)'}; If-Match required: ${e.requiresIfMatch ? 'yes' : 'no'}${e.deprecated ? `; ${e.deprecated}` : ''}`,
  );

  let ok = true;
  const asid = legacyHeader(headers, 'XAPI_ASID');
  const cfg = asid ? rules.asids[asid] : undefined;
  if (asid && !cfg) {
    lines.push(`  policy: ASID ${asid} is not configured in ${rules.environment} → the call would be refused (403)`);
    ok = false;
  } else if (cfg) {
    if (cfg.accessMode === 'application-restricted' && !e.appRestricted) {
      lines.push(`  policy: ASID ${asid} is application-restricted → the call would be refused (403)`);
      ok = false;
    } else if (cfg.allowedCodes && !cfg.allowedCodes.includes(e.code)) {
      lines.push(`  policy: ${e.code} is not in ASID ${asid}'s allowedCodes → the call would be refused (403)`);
      ok = false;
    } else {
      lines.push(`  policy: allowed for ASID ${asid} (${cfg.accessMode})`);
    }
  }

  const base = new URL(rules.apim.baseUrl);
  const tokenNote =
    rules.apim.auth === 'none'
      ? undefined
      : `<access token for the APIM application of ${cfg?.apim ? `API key ${cfg.apim.apiKey}` : 'the calling ASID'}, from ${rules.apim.tokenUrl}>`;
  try {
    const plan = buildApimRequest({
      endpoint: e,
      params: id.params,
      query: id.query,
      headers,
      apimBasePath: base.pathname.replace(/\/+$/, ''),
      accessToken: tokenNote,
      correlationId: headers['x-correlation-id'] ?? '<generated per call>',
      ...(cfg?.accessMode === 'user-restricted'
        ? {
            user: {
              odsCode: '<ODS code of the role selected with A002>',
              businessFunction: '<business function of the role selected with A002>',
              onBehalfOfUserId: '<onBehalfOf from A002, only for SERVICE_PROVIDER_CLINICIAN_ADMIN>',
            },
          }
        : {}),
    });
    lines.push(`legacy: ${method} ${path}`);
    lines.push(`APIM:   ${plan.method} ${base.origin}${plan.path}`);
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
