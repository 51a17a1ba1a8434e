/**
 * A006 through A042. NHS retired A006 (`GET /STU3/Binary/{id}`) in February 2026 ("Migrating to the FHIR R4 Retrieve
 * Attachment endpoint"); A042 (`GET /R4/Binary/{id}`) answers 307 with a short-lived object-store link and no body.
 * The legacy client still gets A006's answer: ers-bridge calls A042 through the APIM wrappers, follows the 307 itself
 * with the object-store client (src/apim/object-store.ts: never the link to the client, never to a log), and
 * streams the file back with A006's headers — Content-Type, Content-Disposition as A006 wrote it, Content-Length —
 * within A006's 5 MB unless the rules raise `apim.successors.attachments.maxBytes`. A042's R4 errors become A006's
 * legacy answers: its 422s (PENDING, THREATS_FOUND, VALIDATION_FAILED) are the very codes A006 answered with.
 */
import type { Dispatcher } from 'undici';
import { objectStoreLink } from '../apim/object-store.js';
import { retryAfterSeconds } from '../apim/wrappers/apim-pause.js';
import { readWhole } from '../http/bounded.js';
import { isJsonContentType, mediaTypeOf } from '../http/media-type.js';
import { LegacyError } from '../legacy/errors.js';
import { a006Disposition, filenameOf } from '../translation/content-disposition.js';
import { renderOutcome } from './faults.js';
import { operation, type SuccessorContext, successorCall } from './successor-call.js';
import type { LegacyAnswer, SideAnswer, UpstreamFacts } from './types.js';

/** A042's error bodies are small OperationOutcomes; this bounds what is read of one. */
const ERROR_BODY_LIMIT = 64 * 1024;
const TRANSACTION_ID = /^[A-Za-z0-9-]{1,100}$/;

/** The upstream side of A006 as A042 and the object store: A006's answer, or its legacy error. */
export async function attachmentThroughA042(ctx: SuccessorContext): Promise<SideAnswer> {
  const id = ctx.params['attachmentLogicalID']!;
  // upstream: A042 through the APIM wrappers
  const result = await ctx.dispatch(successorCall(ctx, operation('A042'), { binaryId: id }));
  const res = result.response;
  const headers = a006Headers(res.headers, ctx.correlationId);
  const facts: UpstreamFacts = {
    upstreamStatus: res.statusCode,
    upstreamMs: result.upstreamMs ?? 0,
    ...(result.tokenRenewed ? { tokenRenewed: true } : {}),
    ...(headers['X_ERS_TRANSACTION_ID'] ? { transactionId: headers['X_ERS_TRANSACTION_ID'] } : {}),
  };
  if (res.statusCode !== 307) return { answer: await a042Refusal(res, headers, id, ctx), facts };
  // pure: the 307's link, if it is one ers-bridge follows (it is read here and goes nowhere else)
  await res.body.dump();
  const link = objectStoreLink(firstHeader(res.headers['location']));
  // upstream: the object store, bounded in size and time
  const file = await ctx.rt.objectStore.download(link, ctx.rt.rules.apim.successors.attachments.maxBytes, ctx.signal);
  headers['content-type'] = fileType(file.contentType);
  headers['content-disposition'] = a006Disposition(filenameOf(file.contentDisposition) ?? id);
  headers['content-length'] = String(file.length);
  return { answer: { status: 200, headers, body: file.body }, facts };
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** What A006's answer carries of APIM's: the e-RS transaction id and the correlation id — never A042's Location. */
function a006Headers(upstream: Dispatcher.ResponseData['headers'], correlationId: string): Record<string, string> {
  const out: Record<string, string> = {};
  const transactionId = firstHeader(upstream['x-request-id']);
  if (transactionId !== undefined && TRANSACTION_ID.test(transactionId)) out['X_ERS_TRANSACTION_ID'] = transactionId;
  out['x-correlation-id'] = correlationId;
  return out;
}

/** The file's media type as the object store gave it; application/octet-stream when it gave none that is valid. */
function fileType(value: string | undefined): string {
  return value !== undefined && mediaTypeOf(value) !== undefined ? value : 'application/octet-stream';
}

/** The first issue of an R4 OperationOutcome: its code and diagnostics, if the body is one. */
export function r4Issue(text: string): { code?: string; diagnostics?: string } | undefined {
  try {
    const body = JSON.parse(text) as {
      resourceType?: unknown;
      issue?: Array<{ details?: { coding?: Array<{ code?: unknown }> }; diagnostics?: unknown }>;
    };
    if (body?.resourceType !== 'OperationOutcome') return undefined;
    const issue = body.issue?.[0];
    const code = issue?.details?.coding?.[0]?.code;
    return {
      ...(typeof code === 'string' ? { code } : {}),
      ...(typeof issue?.diagnostics === 'string' ? { diagnostics: issue.diagnostics.slice(0, 500) } : {}),
    };
  } catch {
    return undefined;
  }
}

/** A042's refusal (anything but its 307) as the legacy answer A006 gave, keeping APIM's transaction id. */
async function a042Refusal(
  res: Dispatcher.ResponseData,
  headers: Record<string, string>,
  id: string,
  ctx: SuccessorContext,
): Promise<LegacyAnswer> {
  const status = res.statusCode;
  let text = '';
  try {
    const raw = await readWhole(res.body, {
      limit: ERROR_BODY_LIMIT,
      onOverflow: 'destroy',
      tooLarge: () => new Error('too large'),
    });
    text = isJsonContentType(firstHeader(res.headers['content-type'])) ? raw.toString('utf8') : '';
  } catch {
    text = '';
  }
  const asked = res.headers['retry-after'];
  const wait =
    asked !== undefined || status === 429
      ? Math.min(retryAfterSeconds(asked, ctx.rt.shared.clock.now()), ctx.rt.rules.apim.maxPauseSeconds)
      : undefined;
  const error = a042ErrorToLegacy(status, r4Issue(text), id, wait);
  return renderOutcome(error, { base: headers });
}

/**
 * Step (pure): A042's answer other than its 307, as A006's legacy error. The 422 states keep A006's codes (A006's
 * own 422 table had PENDING, THREATS_FOUND and VALIDATION_FAILED), with diagnostics that say what to do.
 */
export function a042ErrorToLegacy(
  status: number,
  issue: { code?: string; diagnostics?: string } | undefined,
  id: string,
  retryAfter?: number,
): LegacyError {
  const said = issue?.code ? `${issue.code}${issue.diagnostics ? `: ${issue.diagnostics}` : ''}` : 'no explanation';
  if (status === 422 && issue?.code === 'PENDING') {
    return new LegacyError(
      'ATTACHMENT_PENDING',
      `The attachment ${id} is still being scanned for viruses and malware and cannot be retrieved yet; try again in a few minutes (e-RS asks to wait at least 5 minutes before checking again).`,
    );
  }
  if (status === 422 && issue?.code === 'THREATS_FOUND') {
    return new LegacyError(
      'ATTACHMENT_THREATS_FOUND',
      `The attachment ${id} was quarantined: e-RS's scan found a threat in it, so it cannot be retrieved. Contact the organisation that uploaded it for the information you need (A005 or A024 shows who uploaded it).`,
    );
  }
  if (status === 422 && issue?.code === 'VALIDATION_FAILED') {
    return new LegacyError(
      'ATTACHMENT_VALIDATION_FAILED',
      `The attachment ${id} failed e-RS's validation (a content type e-RS does not support, one that does not match the file's extension, or a file too large for e-RS as a whole), so it cannot be retrieved. Contact the organisation that uploaded it for the information you need (A005 or A024 shows who uploaded it).`,
    );
  }
  if (status === 404) {
    return new LegacyError(
      'ATTACHMENT_NOT_FOUND',
      `e-RS has no attachment ${id} (A042, which ers-bridge calls for A006, answered 404 ${said}). Take attachment ids from the referral (A005) or the advice and guidance request (A024).`,
    );
  }
  if (status === 403) {
    return new LegacyError(
      'ATTACHMENT_REFUSED',
      `e-RS refused access to attachment ${id} (A042 answered 403 ${said}). The selected role needs a legitimate relationship with the referral or advice request the attachment belongs to.`,
    );
  }
  const wait = retryAfter ?? 1;
  if (status === 429) {
    return new LegacyError(
      'UPSTREAM_RATE_LIMITED',
      `APIM's rate limit for this application was reached; wait ${wait} seconds and try again.`,
      { headers: { 'retry-after': String(wait) } },
    );
  }
  const what = status < 400 ? `HTTP ${status} where e-RS answers 307` : `HTTP ${status} ${said}`;
  return new LegacyError(
    'SUCCESSOR_REFUSED',
    `APIM answered A042 (Retrieve attachment, R4) for attachment ${id}, which ers-bridge calls for A006 since APIM retired A006, with ${what}. If it persists, give the ers-bridge operators the X_ERS_TRANSACTION_ID of this answer.`,
    {
      status: status >= 400 ? status : 502,
      ...(retryAfter !== undefined ? { headers: { 'retry-after': String(wait) } } : {}),
    },
  );
}
