/**
 * How each side of one call is reached, once the flow has decided everything: APIM through its wrappers, or the
 * legacy host unchanged. The flow calls the primary side; the shadow calls the other one with the same bodies.
 */

import type { ApimDispatch } from '../apim/dispatch.js';
import { FreshTokenRefused } from '../apim/errors.js';
import type { TokenSource } from '../apim/wrappers/bearer-token.js';
import type { EndpointDef } from '../legacy/endpoints.js';
import type { Caller } from '../runtime/caller.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Session } from '../sessions/session.js';
import type { BaseUrls } from '../translation/response.js';
import { apimDispatch, callApim, rewriteForApim } from './apim-side.js';
import type { Bodies } from './bodies.js';
import { callLegacySide } from './legacy-side.js';
import type { SideName } from './mode.js';
import { callSuccessor, type Successor } from './successor.js';
import type { LegacyRequest, SideAnswer } from './types.js';
import { obtainUserToken } from './user-token.js';

export interface SideContext {
  rt: Runtime;
  caller: Caller;
  key: string;
  session: Session;
  endpoint: EndpointDef;
  params: Record<string, string>;
  query: string;
  req: LegacyRequest;
  urls: BaseUrls;
  bodies: Bodies;
  /** How APIM answers this operation today, when APIM retired it (the flow's successor step). */
  successor?: Successor | undefined;
}

export type SideCall = (side: SideName, correlationId: string, signal: AbortSignal | undefined) => Promise<SideAnswer>;

/** Calls one side of this call: the translated call to APIM, or the call unchanged to the legacy host. */
export function sidesFor(ctx: SideContext): SideCall {
  const { rt, caller, key, session, endpoint, req, bodies } = ctx;
  const dispatch = dispatchFor(rt, caller, key, session);
  return (side, correlationId, signal) => {
    if (side === 'apim') {
      if (ctx.successor) {
        const { params, urls } = ctx;
        const call = {
          dispatch,
          rt,
          endpoint,
          params,
          headers: req.headers,
          session,
          urls,
          bodies,
          correlationId,
          signal,
        };
        return callSuccessor(ctx.successor, call);
      }
      const call = rewriteForApim({
        endpoint,
        params: ctx.params,
        query: ctx.query,
        headers: req.headers,
        apimBase: rt.apimBase,
        correlationId,
        session,
        body: bodies.apim,
        signal,
      });
      const cap = { seconds: rt.rules.apim.maxPauseSeconds, now: rt.shared.clock.now() };
      return callApim(dispatch, call, ctx.urls, rt.rules.server.maxResponseRewriteBytes, cap);
    }
    return callLegacySide({
      store: rt.shared.store,
      host: rt.legacy,
      endpoint,
      key,
      session,
      rawUrl: req.rawUrl,
      rawHeaders: req.rawHeaders,
      body: bodies.legacy.first,
      bodyLength: bodies.legacy.length,
      correlationId,
      signal,
    });
  };
}

/**
 * The APIM wrappers a caller's calls go through. They depend on the session only through a user's own tokens, so
 * every other call of a caller shares one composition, made once per runtime (a caller belongs to one runtime)
 * instead of six closures a call (issue 15).
 */
const SHARED_DISPATCH = new WeakMap<Caller, ApimDispatch>();
function dispatchFor(rt: Runtime, caller: Caller, key: string, session: Session): ApimDispatch {
  const perSession = session.accessMode === 'user-restricted' && rt.rules.apim.auth !== 'none';
  let dispatch = perSession ? undefined : SHARED_DISPATCH.get(caller);
  if (dispatch) return dispatch;
  dispatch = apimDispatch({
    upstream: rt.upstream,
    partition: caller.application,
    limiter: caller.limiter,
    slots: caller.slots,
    maxPauseSeconds: rt.rules.apim.maxPauseSeconds,
    retryBudget: rt.shared.retryBudget,
    tokens: tokenSourceFor(rt, caller, key, session),
    clock: rt.shared.clock,
  });
  if (!perSession) SHARED_DISPATCH.set(caller, dispatch);
  return dispatch;
}

/** An open-access APIM (apim.auth none: the NHS sandbox) takes no token, neither an application's nor a user's. */
const NO_TOKEN: TokenSource = {
  current: async () => undefined,
  renew: async () => {
    throw new FreshTokenRefused();
  },
};

/**
 * Step (token): where this call's bearer tokens come from — the session's user token, or the application's; none
 * under apim.auth none (a test user's session holds none).
 */
export function tokenSourceFor(rt: Runtime, caller: Caller, key: string, session: Session): TokenSource {
  if (rt.rules.apim.auth === 'none') return NO_TOKEN;
  if (session.accessMode === 'user-restricted') {
    const deps = { store: rt.shared.store, renewals: rt.shared.renewals, clock: rt.shared.clock };
    const who = { asid: caller.asid, userTokens: caller.userTokens, key, session };
    return {
      current: () => obtainUserToken(deps, who),
      renew: (rejected) => obtainUserToken(deps, who, rejected),
    };
  }
  const provider = caller.tokens;
  return {
    current: () => (provider ? provider.get() : Promise.resolve(undefined)),
    ready: () => provider?.ready(),
    renew: async (rejected) => {
      provider?.invalidate(rejected);
      return provider!.get();
    },
  };
}
