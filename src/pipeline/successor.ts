/**
 * Successors: a different way of answering on the APIM side, for legacy operations APIM has retired (the table and
 * NHS's dates: src/legacy/successors.ts; the per-environment choice: `apim.successors` in the rules). The flow asks
 * `successorOf` once; the APIM side then answers through `callSuccessor` instead of forwarding the call as it is.
 * Every APIM call a successor makes goes through the same APIM wrappers as any other (rate slot, concurrency slot,
 * APIM 429 pause, timing, bearer token, connection retry for reads).
 */
import type { EndpointDef } from '../legacy/endpoints.js';
import { LegacyError } from '../legacy/errors.js';
import { type Retirement, retirementOf } from '../legacy/successors.js';
import type { SuccessorConfig } from '../rules/successors.js';
import { attachmentThroughA042 } from './attachment-successor.js';
import { operation, type SuccessorContext } from './successor-call.js';
import { triageThroughA016 } from './triage-successor.js';
import type { SideAnswer } from './types.js';

export type { SuccessorContext } from './successor-call.js';

/** How APIM answers a retired operation today, as the rules chose. */
export type Successor =
  | { kind: 'a042'; retired: Retirement }
  | { kind: 'triage'; first: 'A011' | 'A031'; retired: Retirement }
  | { kind: 'gone'; retired: Retirement };

/**
 * Step (pure): how APIM answers this operation today — undefined when APIM answers it itself (every operation it has
 * not retired, and a retired one the rules send `direct`).
 */
export function successorOf(endpoint: EndpointDef, settings: SuccessorConfig): Successor | undefined {
  const retired = retirementOf(endpoint.code);
  if (!retired) return undefined;
  const choice = settings[retired.code];
  if (choice === 'direct') return undefined;
  if (choice === 'gone') return { kind: 'gone', retired };
  if (choice === 'a042') return { kind: 'a042', retired };
  return { kind: 'triage', first: retired.code === 'A021' ? 'A011' : 'A031', retired };
}

/** The APIM side through a successor. */
export function callSuccessor(successor: Successor, ctx: SuccessorContext): Promise<SideAnswer> {
  switch (successor.kind) {
    case 'a042':
      return attachmentThroughA042(ctx);
    case 'triage':
      return triageThroughA016(ctx, successor.retired.code === 'A021' ? 'A021' : 'A032');
    case 'gone':
      return Promise.reject(retiredAnswer(successor.retired));
  }
}

/** The legacy 410 for a retired operation the rules do not make for the client (`gone`). */
export function retiredAnswer(r: Retirement): LegacyError {
  return new LegacyError(
    'OPERATION_RETIRED',
    `NHS withdrew ${r.code} (${r.name}) from the e-RS API in ${r.retired} (guide: "${r.guide}"), and this ers-bridge environment does not make it for you (apim.successors.${r.code}: gone). Use ${r.instead}.`,
  );
}

/**
 * For `explain`: the first APIM call a successor makes instead of the legacy one, and what follows, in words — or the
 * refusal of a successor that is `gone`.
 */
export function successorPlan(
  s: Successor,
  params: Record<string, string>,
): { endpoint: EndpointDef; params: Record<string, string>; note: string } | { refused: LegacyError } {
  const r = s.retired;
  const when = `APIM retired ${r.code} in ${r.retired} ("${r.guide}")`;
  if (s.kind === 'gone') return { refused: retiredAnswer(r) };
  if (s.kind === 'a042') {
    return {
      endpoint: operation('A042'),
      params: { binaryId: params['attachmentLogicalID']! },
      note: `${when}: ers-bridge calls A042, follows its 307 to the object store itself (the link is never passed on or logged) and answers as A006 did, within apim.successors.attachments.maxBytes`,
    };
  }
  return {
    endpoint: operation(s.first),
    params: s.first === 'A031' ? { ubrn: params['ubrn']! } : {},
    note: `${when}: ers-bridge sends ${s.first} with this body (${s.first}'s profile), then A016 sending the referral for triage, then A005 to answer as ${r.code} did; a failure after ${s.first} is answered once, naming the UBRN`,
  };
}
