/**
 * Request → response pairs NHS publishes no example for, derived from NHS's own examples, so that the calls APIM
 * offers in place of A021 and A032 (withdrawn March 2025: A011 or A031 with the triage service shortlisted, then A016)
 * can be followed end to end against the stand-in with NHS's A021/A032 example requests:
 *
 *   A011  each A021 example request with the A011 profile  → createReferral/responses/ReferralRequest.json
 *         (UBRN 000000070000, version 3)
 *   A031  the A032 example request with the A031 profile   → changeShortlist/responses/UnbookedReferral.json
 *         (UBRN 000000070000, version 3)
 *   A016  NHS's "Triage deferral" (bookOrDeferAppointment/requests/TriageDeferral.json) for that referral and version
 *         and the A021/A032 examples' triage service 11004 → its "Triage deferral" response
 *
 * They are derived textually from the NHS files (the profile swapped; the referral version and service id replaced
 * in NHS's triage deferral), never built by the code under test, so a translation that builds anything else fails
 * here with NO_MATCHING_EXAMPLE.
 */
import { exampleJsonFiles } from './fixtures.js';
import type { StandInState } from './state.js';

const PROFILE = 'https://fhir.nhs.uk/STU3/StructureDefinition';

interface DerivedPair {
  request: unknown;
  /** The NHS response example served. */
  response: string;
}

function withProfile(json: unknown, profile: string): unknown {
  const body = json as { meta?: Record<string, unknown> };
  return { ...body, meta: { ...body.meta, profile: [profile] } };
}

/** The pairs of one operation (A011, A031, A016); none for any other. */
export function derivedExamples(code: string, state: StandInState): DerivedPair[] {
  const view = state.fixtures;
  if (code === 'A011') {
    const dir = 'stu3/createReferralAndSendForTriage/requests';
    return exampleJsonFiles(dir).map((name) => ({
      request: withProfile(view.json(`${dir}/${name}`), `${PROFILE}/eRS-CreateReferral-Parameters-1`),
      response: 'stu3/createReferral/responses/ReferralRequest.json',
    }));
  }
  if (code === 'A031') {
    const dir = 'stu3/changeShortlistAndSendForTriage/requests';
    return exampleJsonFiles(dir).map((name) => ({
      request: withProfile(view.json(`${dir}/${name}`), `${PROFILE}/eRS-ChangeShortlist-Parameters-1`),
      response: 'stu3/changeShortlist/responses/UnbookedReferral.json',
    }));
  }
  if (code === 'A016') {
    const text = view
      .text('stu3/bookOrDeferAppointment/requests/TriageDeferral.json')
      .replace('ReferralRequest/000000070000/_history/6', 'ReferralRequest/000000070000/_history/3')
      .replace('"50001"', '"11004"');
    return [{ request: JSON.parse(text), response: 'stu3/bookOrDeferAppointment/responses/TriageDeferral.json' }];
  }
  return [];
}
