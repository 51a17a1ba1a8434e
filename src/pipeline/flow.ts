/**
 * The request path, top to bottom: every legacy call — from the HTTP surface or from replay — runs this one flow.
 * Each line is one named step; the comment says what kind it is: pure (decides, no I/O), store (the session
 * store), client (the caller's body), upstream (APIM or the legacy host), memory (process counters and records).
 * Any step may throw; the fault table (faults.ts) turns what it threw into the legacy answer. The flow returns
 * the answer and the call's record; the surface sends the one and logs the other once the answer is out.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { CapturedAnswer } from '../comparison/types.js';
import type { EndpointDef } from '../legacy/endpoints.js';
import { type Identified, identify } from '../legacy/identify.js';
import { createSession, deleteSession, readSessionBody, type SessionDeps, selectRole } from '../legacy/session-api.js';
import type { Caller } from '../runtime/caller.js';
import { copyWith } from '../runtime/copy-with.js';
import { BoundedPer, OncePer } from '../runtime/once-per.js';
import { grantTargetOf, type Runtime } from '../runtime/runtime.js';
import { sessionKeyTag } from '../sessions/session.js';
import { correlationIdFor } from '../translation/request.js';
import type { BaseUrls } from '../translation/response.js';
import { prepareBodies } from './bodies.js';
import { faultFor, knownFault, renderOutcome } from './faults.js';
import { decideMode, type SideName, sendsToLegacyHost } from './mode.js';
import {
  captureAnswer,
  countShadowSkip,
  launchShadow,
  planShadow,
  type ShadowJob,
  type ShadowPlan,
  type SideProduction,
} from './shadow.js';
import { type SideCall, sidesFor } from './sides.js';
import {
  apimAccessProblem,
  asidForLog,
  callerCertificateProblem,
  loadSession,
  messageSetProblem,
  refusalOf,
  refuse,
  requireCaller,
  roleOf,
  type SessionLookup,
} from './steps.js';
import { successorOf } from './successor.js';
import type { CallOutcome, CallRecord, LegacyAnswer, LegacyRequest } from './types.js';

/**
 * One legacy call, from request to answer. `seen` is what the record step will say about the call; it grows as
 * the steps learn things (the A-code, the ASID, the session, the side), so that a call refused half-way is still
 * recorded with all that was known.
 */
export async function runLegacyCall(rt: Runtime, req: LegacyRequest, log?: Logger): Promise<CallOutcome> {
  const { shared, rules } = rt;
  // One object a call, filled in as the steps learn (not copied at each step: this is the hot path).
  const seen: CallRecord = { aCode: '-', route: '-' };
  try {
    // pure: the client's X-Correlation-ID, or a new one
    const correlationId = correlationIdFor(req.headers, randomUUID);
    seen.correlationId = correlationId;
    const named = asidForLog(rt.callers, req.headers);
    if (named !== undefined) seen.asid = named;
    // pure: the operation (A-code) and its path parameters; anything else is refused
    const target = identify(req.method, req.rawUrl);
    refuse(refusalOf(target));
    nameRoute(seen, target);
    // pure: XAPI_ASID → a configured caller, who proved it is that ASID when the ASID is bound to certificates
    const caller = requireCaller(rt.callers, rules.environment, req.headers);
    seen.asid = caller.asid;
    refuse(callerCertificateProblem(caller.asid, caller.config, req.clientCertificate));
    // memory: the ASID's A001 rate, before any work (no body read, nothing stored)
    if (target.kind === 'session' && target.op === 'A001') caller.a001Rate.take();
    // store: A001–A003 are answered by ers-bridge itself
    if (target.kind === 'session') return await sessionCall(rt, caller, target, req, seen);
    if (target.kind !== 'endpoint') throw refusalOf({ kind: 'not-legacy' });
    const { endpoint, params, query } = target;
    // store: the caller's session, with a role selected
    const { key, session, tag } = await loadSession(shared.store, req.headers, sessionLookup(caller));
    seen.session = tag;
    // pure: the ASID's message sets
    refuse(messageSetProblem(endpoint, caller.asid, caller.config));
    // pure: the side that answers (translate, passthrough, shadow, canary)
    const mode = decideMode(rules.modes, endpoint, { sessionKey: key, asid: caller.asid });
    seen.mode = mode.mode;
    seen.side = mode.primary;
    // pure: APIM's access rules, before any body is read
    if (mode.primary === 'apim') refuse(apimAccessProblem(endpoint, caller.asid, roleOf(session)));
    // pure: how APIM answers it today: itself, or through its successor where APIM retired it (A006 → A042, …)
    const successor = successorOf(endpoint, rules.apim.successors);
    // memory: readiness counts every call
    rt.comparisons?.recordCall(caller.asid, endpoint.code);
    // pure: a compared copy to the other side, or why not; and whether the call is recorded for replay
    const shadow = planShadow(mode, endpoint, productionOf(rt), { asid: caller.asid, role: roleOf(session) }, random());
    countShadowSkip(shadow, shared.shadow, shared.metrics);
    const recording = rt.recorder?.wants(endpoint.code) === true;
    // client: the request body, bounded, as each side needs it
    const urls = baseUrlsOf(rt, req.legacyBase);
    const readWhole = 'plan' in shadow || recording;
    const bodies = await prepareBodies(endpoint, req.headers, req.body, bodyLimit(rt), urls, readWhole);
    // upstream: the answering side — rewrite, send, rewrite back
    const callSide = sidesFor({ rt, caller, key, session, endpoint, params, query, req, urls, bodies, successor });
    const started = performance.now();
    const primary = await callSide(mode.primary, correlationId, req.signal);
    Object.assign(seen, primary.facts);
    if ('skipped' in shadow) seen.shadow = shadow.skipped;
    if (!('plan' in shadow) && !recording) return { answer: primary.answer, record: seen };
    // upstream: the answer read whole, so it can also be recorded and compared
    const kept = await captureAnswer(primary.answer, mode.primary, rules.server.maxResponseRewriteBytes, started);
    // memory: the call, redacted, for `ers-bridge replay`
    if (recording) recordForReplay(rt, req, seen, bodies.whole, kept);
    if (!('plan' in shadow)) return { answer: kept.answer, record: seen };
    // upstream, after the answer: the copy to the other side, compared
    launchShadow(shadowSinks(rt, log), shadowJob(rt, shadow.plan, kept.captured, callSide, endpoint, urls, seen));
    return { answer: kept.answer, record: copyWith(seen, 'shadow', 'sent' as const) };
  } catch (e) {
    // The fault table: whatever a step threw, as the legacy answer a client gets.
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
    record: copyWith(seen, 'session', sessionKeyTag(result.sessionKey)),
  };
}

/** A-code and route pattern, for the record (never the path's values). */
function nameRoute(seen: CallRecord, target: Identified): void {
  if (target.kind === 'session') {
    seen.aCode = target.op;
    seen.route = target.op === 'A001' ? '/v1/ProfessionalSession' : '/v1/ProfessionalSession/{sessionKey}';
  } else if (target.kind === 'endpoint') {
    seen.aCode = target.endpoint.code;
    seen.route = target.endpoint.legacyPath;
  }
}

/** What a data call's session must be, per caller (made once: a caller's settings are fixed for its runtime). */
const SESSION_LOOKUPS = new OncePer<Caller, SessionLookup>((caller) => ({
  asid: caller.asid,
  requireRole: true,
  userRestricted: caller.config.accessMode === 'user-restricted',
}));
function sessionLookup(caller: Caller): SessionLookup {
  return SESSION_LOOKUPS.of(caller);
}

function bodyLimit(rt: Runtime): number {
  return rt.rules.server.maxRequestBodyBytes;
}

/** Shadow sampling's draw. */
function random(): number {
  return Math.random();
}

function sessionDepsOf(rt: Runtime, caller: Caller): SessionDeps {
  return {
    store: rt.shared.store,
    signInCodes: rt.shared.signInCodes,
    cis2: rt.cis2,
    grantTarget: grantTargetOf(rt, caller),
    absoluteTimeoutSeconds: rt.rules.sessions.absoluteTimeoutSeconds,
    legacy: rt.legacy,
    keepLegacyToken: sendsToLegacyHost(rt.rules.modes),
    openAccess: rt.rules.apim.auth === 'none',
    clock: rt.shared.clock,
  };
}

/**
 * The bases links are rewritten between: APIM's, the one this client uses, and the HSCN host it replaces — per
 * legacy base a client reaches the runtime by (few: the public URL, or the Host names allowed; bounded, as without
 * a public base URL the Host header picks it).
 */
const BASE_URLS = new BoundedPer<Runtime, BaseUrls>(64, (rt, legacyBase) => ({
  apimBase: rt.apimBase.href.replace(/\/+$/, ''),
  legacyBase,
  hscnBase: `https://${rt.rules.legacy.host}/ers-api`,
}));

function baseUrlsOf(rt: Runtime, legacyBase: string): BaseUrls {
  return BASE_URLS.of(rt, legacyBase);
}

/** Which sides the rules declare production (read at each call: the safety rule must see the rules as they are). */
function productionOf(rt: Runtime): SideProduction {
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
  rt: Runtime,
  plan: ShadowPlan,
  primary: CapturedAnswer,
  callSide: SideCall,
  endpoint: EndpointDef,
  urls: BaseUrls,
  seen: CallRecord,
): ShadowJob {
  const correlationId = seen.correlationId!;
  return {
    endpoint,
    asid: seen.asid!,
    correlationId,
    primary,
    primarySide: primary.side as SideName,
    secondarySide: plan.secondary,
    settings: plan.settings,
    baseUrls: [urls.legacyBase, urls.hscnBase!, rt.legacy.baseUrl.href.replace(/\/+$/, '')],
    callSide: async (side: SideName, signal: AbortSignal): Promise<LegacyAnswer> =>
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
  return { answer, record: copyWith(seen, 'reason', error.logAs) };
}

/** A legacy transaction id for answers ers-bridge makes itself (APIM's own carry X-Request-ID). */
export function newTransactionId(): string {
  return `${randomUUID()}-1`;
}
