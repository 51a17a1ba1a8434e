/**
 * A021 and A032 through A011/A031 then A016. NHS withdrew both in March 2025 ("Migrating from the send for triage
 * endpoints to the book/defer endpoint"); the faithful way to make them today (src/translation/triage.ts says why it
 * is faithful) is three APIM calls, each through the APIM wrappers:
 *
 *   1. A011 (create referral) or A031 (change shortlist, with the client's If-Match) — the client's body, with the
 *      successor's profile. Refused, nothing done: its answer is the client's answer.
 *   2. A016 (book or defer appointment): the referral, at the version step 1 answered with, sent for triage to the one
 *      shortlisted triage service.
 *   3. A005: the referral read back, as A021 answered it (A032: with A016's appointment, in A032's Parameters).
 *
 * A call can fail between steps, and steps 1 and 2 cannot be undone: the client then gets ONE legacy answer
 * (SuccessorIncomplete → 422 SUCCESSOR_INCOMPLETE) naming the UBRN, what was done, what failed and what is left to do
 * — never an answer that invites repeating A021 and creating a second referral. The body is checked before step 1,
 * so a body ers-bridge could not finish never starts.
 */
import type { Dispatcher } from 'undici';
import type { ApimResult } from '../apim/dispatch.js';
import { UpstreamError } from '../apim/upstream.js';
import { readWhole } from '../http/bounded.js';
import { isJsonContentType } from '../http/media-type.js';
import { LegacyError } from '../legacy/errors.js';
import { legacyHeader } from '../translation/request.js';
import { legacyResponseHeaders, rewriteApimUrls } from '../translation/response.js';
import {
  a032Answer,
  type ReferralFacts,
  referralFacts,
  type TriageCode,
  triageDeferral,
  triageRequestFor,
} from '../translation/triage.js';
import { rewriteBack } from './apim-side.js';
import { knownFault } from './faults.js';
import { operation, type SuccessorContext, successorCall } from './successor-call.js';
import { SuccessorIncomplete } from './successor-faults.js';
import type { SideAnswer, UpstreamFacts } from './types.js';

const ERROR_BODY_LIMIT = 64 * 1024;

/** An APIM answer read whole as JSON, with the headers a later step or the answer needs. */
interface JsonAnswer {
  status: number;
  json: unknown;
  text: string;
  headers: Dispatcher.ResponseData['headers'];
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Sums what the steps' calls told the record. */
class StepFacts {
  private ms = 0;
  private renewed = false;
  status = 0;
  transactionId: string | undefined;

  add(result: ApimResult): Dispatcher.ResponseData {
    this.ms += result.upstreamMs ?? 0;
    this.renewed ||= result.tokenRenewed === true;
    this.status = result.response.statusCode;
    return result.response;
  }

  facts(): UpstreamFacts {
    return {
      upstreamStatus: this.status,
      upstreamMs: this.ms,
      ...(this.renewed ? { tokenRenewed: true } : {}),
      ...(this.transactionId ? { transactionId: this.transactionId } : {}),
    };
  }
}

export async function triageThroughA016(ctx: SuccessorContext, code: TriageCode): Promise<SideAnswer> {
  const limit = ctx.rt.rules.server.maxResponseRewriteBytes;
  const steps = new StepFacts();
  // pure: the client's body, and what A016 will need of it — or a refusal before anything is sent
  const request = triageRequestFor(code, parseBody(code, await ctx.bodies.apim.next()));
  const first = operation(code === 'A021' ? 'A011' : 'A031');
  const ifMatch = code === 'A032' ? requireIfMatch(ctx) : undefined;
  const ubrnInPath = code === 'A032' ? ctx.params['ubrn'] : undefined;
  const incomplete = (
    done: 'A011' | 'A031' | 'A016',
    referral: Partial<ReferralFacts>,
    failed: { code: string; name: string; said: string; uncertain?: boolean },
  ) =>
    new SuccessorIncomplete({
      code,
      serviceId: request.serviceId,
      done,
      failed,
      ...(referral.ubrn ? { ubrn: referral.ubrn } : {}),
      ...(referral.version ? { version: referral.version } : {}),
    });

  // upstream, step 1: A011 (create) or A031 (change shortlist)
  const firstBody = Buffer.from(JSON.stringify(request.firstBody), 'utf8');
  const firstRes = steps.add(
    await ctx.dispatch(
      successorCall(ctx, first, ubrnInPath ? { ubrn: ubrnInPath } : {}, {
        body: firstBody,
        ...(ifMatch ? { ifMatch } : {}),
      }),
    ),
  );
  if (firstRes.statusCode < 200 || firstRes.statusCode >= 300) {
    // Nothing was done: A011's (A031's) answer is the client's, as A021 (A032) would have refused.
    const answer = await rewriteBack(first, firstRes, ctx.urls, ctx.correlationId, limit);
    steps.transactionId = answer.headers['X_ERS_TRANSACTION_ID'];
    return { answer, facts: steps.facts() };
  }
  steps.transactionId = transactionIdOf(firstRes.headers);
  let created: ReferralFacts | undefined;
  try {
    const read = await readJson(firstRes, limit);
    created = referralFacts(read.json, firstHeader(read.headers['etag']));
  } catch {
    created = undefined;
  }
  if (created === undefined || (ubrnInPath !== undefined && created.ubrn !== ubrnInPath)) {
    throw incomplete(first.code as 'A011' | 'A031', ubrnInPath ? { ubrn: ubrnInPath } : {}, {
      code: first.code,
      name: first.name,
      said: `answered HTTP ${firstRes.statusCode} with a body that names no referral and version ers-bridge can use`,
    });
  }
  const referral = created;

  // upstream, step 2: A016 sends the referral for triage
  const a016 = operation('A016');
  const appointment = triageDeferral(referral, request.serviceId, referral.nhsNumber ?? request.nhsNumber);
  const booked = await step(ctx, steps, a016, {}, Buffer.from(JSON.stringify(appointment), 'utf8'), (said, uncertain) =>
    incomplete(first.code as 'A011' | 'A031', referral, { code: 'A016', name: a016.name, said, uncertain }),
  );
  let bookedJson: unknown;
  if (code === 'A032') {
    try {
      bookedJson = (await readJson(booked, limit)).json;
    } catch (e) {
      throw incomplete('A016', referral, { code: 'A016', name: a016.name, said: `answered: ${describe(e)}` });
    }
  } else {
    await booked.body.dump();
  }

  // upstream, step 3: A005 reads the referral back, as A021/A032 answered with it
  const a005 = operation('A005');
  const back = await step(ctx, steps, a005, { ubrn: referral.ubrn }, undefined, (said) =>
    incomplete('A016', referral, { code: 'A005', name: a005.name, said }),
  );
  let read: JsonAnswer;
  try {
    read = await readJson(back, limit);
  } catch (e) {
    throw incomplete('A016', referral, { code: 'A005', name: a005.name, said: `answered: ${describe(e)}` });
  }

  // pure: A021's answer (the referral, 201, its ETag) or A032's (Parameters, 200), in legacy links
  const headers = legacyResponseHeaders(read.headers, ctx.urls, ctx.correlationId);
  if (steps.transactionId) headers['X_ERS_TRANSACTION_ID'] = steps.transactionId;
  else delete headers['X_ERS_TRANSACTION_ID'];
  headers['content-type'] = 'application/fhir+json';
  if (code === 'A021') {
    return {
      answer: { status: 201, headers, body: Buffer.from(rewriteApimUrls(read.text, ctx.urls), 'utf8') },
      facts: steps.facts(),
    };
  }
  delete headers['etag'];
  const text = JSON.stringify(a032Answer(read.json, bookedJson));
  return {
    answer: { status: 200, headers, body: Buffer.from(rewriteApimUrls(text, ctx.urls), 'utf8') },
    facts: steps.facts(),
  };
}

/**
 * One step after the first: its 2xx answer (unread), or the SuccessorIncomplete `stopped` makes from what went
 * wrong — an APIM refusal (its e-RS code and diagnostics quoted) or a failure on the way (the fault table's words).
 */
async function step(
  ctx: SuccessorContext,
  steps: StepFacts,
  endpoint: ReturnType<typeof operation>,
  params: Record<string, string>,
  body: Buffer | undefined,
  stopped: (said: string, uncertain: boolean) => SuccessorIncomplete,
): Promise<Dispatcher.ResponseData> {
  let res: Dispatcher.ResponseData;
  try {
    res = steps.add(await ctx.dispatch(successorCall(ctx, endpoint, params, body ? { body } : {})));
  } catch (e) {
    throw stopped(`failed: ${describe(e)}`, mayHaveReachedErs(e));
  }
  if (res.statusCode >= 200 && res.statusCode < 300) return res;
  throw stopped(await refusalText(res), false);
}

/**
 * Whether a call that failed on the way may have reached e-RS all the same: no answer in time, or the connection
 * dropped after the request went. A refused connection, a local limit or a token failure never sent it.
 */
function mayHaveReachedErs(e: unknown): boolean {
  if (!(e instanceof UpstreamError)) return false;
  return !e.retryable && e.kind !== 'connect-timeout' && e.kind !== 'tls-unverified' && e.kind !== 'unreachable';
}

/** An APIM refusal in a few words: `answered HTTP 423 REFERRAL_LOCKED: …`. */
async function refusalText(res: Dispatcher.ResponseData): Promise<string> {
  let said = '';
  try {
    const raw = await readWhole(res.body, {
      limit: ERROR_BODY_LIMIT,
      onOverflow: 'destroy',
      tooLarge: () => new Error('too large'),
    });
    if (isJsonContentType(firstHeader(res.headers['content-type']))) said = outcomeText(raw.toString('utf8'));
  } catch {
    said = '';
  }
  return `answered HTTP ${res.statusCode}${said ? ` ${said}` : ' with no explanation'}`;
}

/** `CODE: diagnostics` of an OperationOutcome (STU3 or R4), or '' when the text is not one. */
function outcomeText(text: string): string {
  try {
    const body = JSON.parse(text) as {
      resourceType?: unknown;
      issue?: Array<{ details?: { coding?: Array<{ code?: unknown }> }; diagnostics?: unknown }>;
    };
    if (body?.resourceType !== 'OperationOutcome') return '';
    const issue = body.issue?.[0];
    const code = issue?.details?.coding?.[0]?.code;
    const diagnostics = typeof issue?.diagnostics === 'string' ? issue.diagnostics.slice(0, 300) : '';
    return [typeof code === 'string' ? code : '', diagnostics].filter(Boolean).join(': ');
  } catch {
    return '';
  }
}

/** What went wrong, as the fault table tells a client (an unknown error: that ers-bridge failed inside). */
function describe(e: unknown): string {
  const known = knownFault(e);
  return known ? known.diagnostics : 'ers-bridge failed unexpectedly while handling it';
}

function transactionIdOf(headers: Dispatcher.ResponseData['headers']): string | undefined {
  const v = firstHeader(headers['x-request-id']);
  return v !== undefined && /^[A-Za-z0-9-]{1,100}$/.test(v) ? v : undefined;
}

/** A 2xx answer's JSON, read whole (bounded). */
async function readJson(res: Dispatcher.ResponseData, limit: number): Promise<JsonAnswer> {
  const raw = await readWhole(res.body, {
    limit,
    onOverflow: 'destroy',
    tooLarge: () => new UpstreamError('too-large', 'APIM', '', '', false, { bytes: limit, purpose: 'translate' }),
  });
  const text = raw.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UpstreamError('unreadable', 'APIM', '', 'not JSON');
  }
  return { status: res.statusCode, json, text, headers: res.headers };
}

function parseBody(code: TriageCode, body: Buffer | AsyncIterable<Buffer> | undefined): unknown {
  if (!Buffer.isBuffer(body) || body.length === 0) {
    throw new LegacyError('BODY_MISSING_FIELD', `${code} needs its FHIR Parameters body; nothing was sent to e-RS.`);
  }
  try {
    return JSON.parse(body.toString('utf8').replace(/^\uFEFF/, ''));
  } catch {
    throw new LegacyError(
      'BODY_INVALID_JSON',
      `The ${code} body is not valid JSON; send the FHIR Parameters resource. Nothing was sent to e-RS.`,
    );
  }
}

/** A032's If-Match, required as A032 required it (A031 takes it in its place). */
function requireIfMatch(ctx: SuccessorContext): string {
  const v = legacyHeader(ctx.headers, 'if-match');
  if (v === undefined || v === '') {
    throw new LegacyError(
      'MISSING_HEADER',
      'A032 (Change shortlist and send for triage) needs an If-Match header with the current version, such as W/"5"; read the referral first and send its ETag.',
    );
  }
  return v;
}
