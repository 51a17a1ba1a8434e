/**
 * The request path, top to bottom: every legacy call — from the HTTP surface or from replay — runs this one flow.
 * Each line is one named step; the comment says what kind it is: pure (decides, no I/O), store (the session
 * store), client (the caller's body), upstream (APIM or the legacy host), memory (process counters and records).
 * Any step may throw; the fault table (faults.ts) turns what it threw into the legacy answer. The flow returns
 * the answer and the call's record; the surface sends the one and logs the other once the answer is out.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { type Identified, identify } from '../legacy/identify.js';
import { createSession, deleteSession, readSessionBody, type SessionDeps, selectRole } from '../legacy/session-api.js';
import type { Caller } from '../runtime/caller.js';
import { grantTargetOf, type Runtime } from '../runtime/runtime.js';
import { sessionKeyTag } from '../sessions/session.js';
import { correlationIdFor } from '../translation/request.js';
import type { BaseUrls } from '../translation/response.js';
import { prepareBodies } from './bodies.js';
import { faultFor, knownFault, renderOutcome } from './faults.js';
import { decideMode } from './mode.js';
import { captureAnswer, countShadowSkip, launchShadow, planShadow, type ShadowPlan } from './shadow.js';
import { type SideCall, sidesFor } from './sides.js';
import {
  apimAccessProblem,
  loadSession,
  messageSetProblem,
  refusalOf,
  refuse,
  requireCaller,
  roleOf,
} from './steps.js';
import type { CallOutcome, CallRecord, LegacyAnswer, LegacyRequest } from './types.js';

/** One legacy call, from request to answer. */
export async function runLegacyCall(rt: Runtime, req: LegacyRequest, log?: Logger): Promise<CallOutcome> {
  const { shared, rules } = rt;
  let seen: CallRecord = { aCode: '-', route: '-' };
  try {
    const correlationId = correlationIdFor(req.headers, randomUUID); // pure: the client's X-Correlation-ID, or a new one
    seen = { ...seen, correlationId };
    const target = identify(req.method, req.rawUrl); // pure: the operation (A-code) and its path parameters
    refuse(refusalOf(target)); // pure: a path or method that is no e-RS operation ers-bridge serves
    seen = { ...seen, ...routeOf(target) };
    const caller = requireCaller(rt.callers, rules.environment, req.headers); // pure: XAPI_ASID → a configured caller
    seen = { ...seen, asid: caller.asid };
    if (target.kind === 'session') return await sessionCall(rt, caller, target, req, seen); // store: A001–A003
    if (target.kind !== 'endpoint') throw refusalOf({ kind: 'not-legacy' });
    const { endpoint } = target;
    const lookup = { asid: caller.asid, requireRole: true, userRestricted: isUser(caller) };
    const { key, session } = await loadSession(shared.store, req.headers, lookup); // store: the caller's session
    seen = { ...seen, session: sessionKeyTag(key) };
    refuse(messageSetProblem(endpoint, caller.asid, caller.config)); // pure: the ASID's message sets
    const mode = decideMode(rules.modes, endpoint, { sessionKey: key, asid: caller.asid }); // pure: the answering side
    seen = { ...seen, mode: mode.mode, side: mode.primary };
    if (mode.primary === 'apim') refuse(apimAccessProblem(endpoint, caller.asid, roleOf(session))); // pure: APIM's rules
    rt.comparisons?.recordCall(caller.asid, endpoint.code); // memory: readiness counts every call
    const urls = baseUrlsOf(rt, req.legacyBase); // pure: the bases links are rewritten between
    const who = { asid: caller.asid, role: roleOf(session) };
    const shadow = planShadow(mode, endpoint, productionOf(rt), who, Math.random()); // pure: a compared copy, or why not
    countShadowSkip(shadow, shared.shadow, shared.metrics); // memory: copies left out
    const recording = rt.recorder?.wants(endpoint.code) === true; // pure: whether this call is recorded for replay
    const limit = rules.server.maxRequestBodyBytes;
    const bodies = await prepareBodies(endpoint, req.headers, req.body, limit, urls, 'plan' in shadow || recording); // client
    const { params, query } = target;
    const callSide = sidesFor({ rt, caller, key, session, endpoint, params, query, req, urls, bodies }); // pure: how sides are reached
    const started = performance.now();
    const primary = await callSide(mode.primary, correlationId, req.signal); // upstream: rewrite → send → rewrite back
    seen = { ...seen, ...primary.facts, ...('skipped' in shadow ? { shadow: shadow.skipped } : {}) };
    if (!('plan' in shadow) && !recording) return { answer: primary.answer, record: seen };
    const kept = await captureAnswer(primary.answer, mode.primary, rules.server.maxResponseRewriteBytes, started); // upstream: read whole, to copy
    if (recording) recordForReplay(rt, req, seen, bodies.whole, kept); // memory: the call, redacted, for replay
    if ('plan' in shadow)
      launchShadow(shadowSinks(rt, log), shadowJob(shadow.plan, kept.captured, callSide, seen, endpoint, urls, rt)); // upstream, later: the copy
    return { answer: kept.answer, record: { ...seen, ...('plan' in shadow ? { shadow: 'sent' } : {}) } };
  } catch (e) {
    return faultOutcome(e, seen, log);
  }
}

/** The A001–A003 dispatch: ers-bridge answers these itself; nothing goes to APIM. */
async function sessionCall(
  rt: Runtime,
  caller: Caller,
  target: Extract<Identified, { kind: 'session' }>,
  req: LegacyRequest,
  seen: CallRecord,
): Promise<CallOutcome> {
  const deps = sessionDepsOf(rt, caller);
  const what = target.op;
  const result =
    target.op === 'A001'
      ? await createSession(deps, caller, await readSessionBody(req.body, req.headers, what), seen.correlationId!)
      : target.op === 'A002'
        ? await selectRole(
            deps,
            caller,
            req.headers,
            target.sessionKeyInPath!,
            await readSessionBody(req.body, req.headers, what),
          )
        : await deleteSession(deps, caller, req.headers, target.sessionKeyInPath!);
  const headers: Record<string, string> = {
    X_ERS_TRANSACTION_ID: newTransactionId(),
    'x-correlation-id': seen.correlationId!,
  };
  if (result.body !== undefined) headers['content-type'] = 'application/json';
  const body = result.body === undefined ? undefined : Buffer.from(JSON.stringify(result.body));
  return {
    answer: { status: result.status, headers, body },
    record: { ...seen, session: sessionKeyTag(result.sessionKey) },
  };
}

/** A-code and route pattern, for the record (never the path's values). */
function routeOf(target: Identified): Pick<CallRecord, 'aCode' | 'route'> {
  if (target.kind === 'session') {
    const route = target.op === 'A001' ? '/v1/ProfessionalSession' : '/v1/ProfessionalSession/{sessionKey}';
    return { aCode: target.op, route };
  }
  if (target.kind === 'endpoint') return { aCode: target.endpoint.code, route: target.endpoint.legacyPath };
  return { aCode: '-', route: '-' };
}

function isUser(caller: Caller): boolean {
  return caller.config.accessMode === 'user-restricted';
}

function sessionDepsOf(rt: Runtime, caller: Caller): SessionDeps {
  return {
    store: rt.shared.store,
    signInCodes: rt.shared.signInCodes,
    cis2: rt.cis2,
    grantTarget: grantTargetOf(rt, caller),
    absoluteTimeoutSeconds: rt.rules.sessions.absoluteTimeoutSeconds,
    legacy: rt.legacy,
    clock: rt.shared.clock,
  };
}

/** The bases links are rewritten between: APIM's, the one this client uses, and the HSCN host it replaces. */
function baseUrlsOf(rt: Runtime, legacyBase: string): BaseUrls {
  return {
    apimBase: rt.apimBase.href.replace(/\/+$/, ''),
    legacyBase,
    hscnBase: `https://${rt.rules.legacy.host}/ers-api`,
  };
}

function productionOf(rt: Runtime) {
  return { apim: rt.rules.apim.production, legacy: rt.rules.legacy.production };
}

function recordForReplay(
  rt: Runtime,
  req: LegacyRequest,
  seen: CallRecord,
  requestBody: Buffer | undefined,
  kept: Awaited<ReturnType<typeof captureAnswer>>,
): void {
  rt.recorder!.record({
    aCode: seen.aCode,
    method: req.method,
    path: req.rawUrl,
    asid: seen.asid!,
    legacyBase: req.legacyBase,
    requestHeaders: req.headers,
    requestBody,
    side: kept.captured.side,
    status: kept.answer.status,
    answerHeaders: kept.answer.headers,
    answerBody: kept.captured.body,
  });
}

function shadowSinks(rt: Runtime, log: Logger | undefined) {
  const { shadow, metrics } = rt.shared;
  return { counters: shadow, metrics, comparisons: rt.comparisons, log };
}

/** The copy of this call for the other side, compared with the primary's answer once it is back. */
function shadowJob(
  plan: ShadowPlan,
  primary: Awaited<ReturnType<typeof captureAnswer>>['captured'],
  callSide: SideCall,
  seen: CallRecord,
  endpoint: import('../legacy/endpoints.js').EndpointDef,
  urls: BaseUrls,
  rt: Runtime,
) {
  const correlationId = seen.correlationId!;
  return {
    endpoint,
    asid: seen.asid!,
    correlationId,
    primary,
    primarySide: primary.side as 'apim' | 'legacy',
    secondarySide: plan.secondary,
    settings: plan.settings,
    baseUrls: [urls.legacyBase, urls.hscnBase!, rt.legacy.baseUrl.href.replace(/\/+$/, '')],
    callSide: async (side: 'apim' | 'legacy', signal: AbortSignal): Promise<LegacyAnswer> =>
      (await callSide(side, `${correlationId}.${side}`, signal)).answer,
  };
}

/** The answer for whatever a step threw, by the fault table; an unexpected error is logged with its stack. */
function faultOutcome(e: unknown, seen: CallRecord, log: Logger | undefined): CallOutcome {
  const known = knownFault(e, { ...(seen.asid ? { asid: seen.asid } : {}) });
  if (!known) {
    const err = e instanceof Error ? e : new Error(String(e));
    log?.error(
      { err: { type: err.name, message: err.message, stack: err.stack }, aCode: seen.aCode },
      'internal error',
    );
  }
  const error = known ?? faultFor(e);
  const answer = renderOutcome(error, { correlationId: seen.correlationId });
  answer.headers['X_ERS_TRANSACTION_ID'] = newTransactionId();
  return { answer, record: { ...seen, reason: error.reason } };
}

/** A legacy transaction id for answers ers-bridge makes itself (APIM's own carry X-Request-ID). */
export function newTransactionId(): string {
  return `${randomUUID()}-1`;
}
