/**
 * The fault table's rows for successors (src/pipeline/faults.ts uses them): the object store A042 redirects to, and
 * a send-for-triage call ers-bridge made as several APIM calls that stopped part-way. The wording is here, next to
 * the typed error the successor steps throw; the steps themselves write no user-facing text.
 */
import type { ObjectStoreError } from '../apim/object-store.js';
import { LegacyError } from '../legacy/errors.js';
import { RETIREMENTS } from '../legacy/successors.js';
import { A042_MAX_BYTES } from '../rules/successors.js';

/** What a multi-step successor (A021 → A011 + A016 + A005; A032 → A031 + A016 + A005) had done when it stopped. */
export class SuccessorIncomplete extends Error {
  constructor(
    readonly facts: {
      code: 'A021' | 'A032';
      /** The referral, once A011/A031 named it. */
      ubrn?: string;
      /** Its version after A011/A031 (what A016 had to name). */
      version?: string;
      serviceId: string;
      /** The last step that succeeded: A011/A031 (created / shortlist changed), or A016 (sent for triage). */
      done: 'A011' | 'A031' | 'A016';
      /**
       * The step that failed, and what happened, in the fault table's own words or e-RS's. `uncertain`: the request
       * may have reached e-RS all the same (no answer in time, a dropped connection), so it may have been done.
       */
      failed: { code: string; name: string; said: string; uncertain?: boolean };
    },
  ) {
    super(`${facts.code}: stopped after ${facts.done} (${facts.failed.code} failed)`);
    this.name = 'SuccessorIncomplete';
  }
}

const A016_CALL = 'A016 (POST /ers-api/STU3/v1/Appointment, reason TRIAGE';

/** The one answer for a send-for-triage call that stopped part-way: what was done, what failed, what to do next. */
export function successorIncompleteFault(e: SuccessorIncomplete): LegacyError {
  const f = e.facts;
  const r = RETIREMENTS[f.code];
  const failed = `${f.failed.code} (${f.failed.name}) ${f.failed.said}`.replace(/[\s.]+$/, '');
  const whyHere = `(NHS withdrew ${f.code} in ${r.retired}; ers-bridge makes it as ${r.replacedBy.join(', then ')}.)`;
  const triage = (ubrn: string, version?: string) =>
    `${A016_CALL}, incomingReferral ReferralRequest/${ubrn}${version ? `/_history/${version}` : ''}, triage service ${f.serviceId})`;
  let text: string;
  if (f.done === 'A016') {
    text = `The referral ${f.ubrn} was ${f.code === 'A021' ? 'created' : 'given the triage service'} and sent for triage, but ers-bridge could not read it back for the answer: ${failed}. Nothing needs repeating: read it with A005 (GET /ers-api/STU3/v1/ReferralRequest/${f.ubrn}).`;
  } else if (f.code === 'A021' && (f.ubrn === undefined || f.version === undefined)) {
    text = `A011 answered that the referral was created, but ers-bridge could not read its UBRN and version, so it did not send it for triage: ${failed}. Do not repeat A021 (that would create a second referral): find the referral (A008 worklist) and send it with ${triage(f.ubrn ?? '<ubrn>')}.`;
  } else if (f.code === 'A021') {
    const sent = f.failed.uncertain
      ? `but whether it was sent for triage is not known: ${failed}. Do not repeat A021 (that would create a second referral): read it with A005 (GET /ers-api/STU3/v1/ReferralRequest/${f.ubrn}); if it has no triage appointment, send it with`
      : `but could not be sent for triage: ${failed}. Do not repeat A021 (that would create a second referral): send this one with`;
    text = `The referral was created as UBRN ${f.ubrn} ${sent} ${triage(f.ubrn!, f.version)}, or cancel it with A036.`;
  } else {
    const now = f.version ? `now version ${f.version}` : 'read it with A005 for its new version';
    const sent = f.failed.uncertain
      ? `whether it was then sent for triage is not known: ${failed}. Read it with A005; if it has no triage appointment, send it with`
      : `the referral could not be sent for triage: ${failed}. Send it with`;
    text = `The shortlist of referral ${f.ubrn} was changed to triage service ${f.serviceId} (${now}) but ${sent} ${triage(f.ubrn!, f.version)}; do not repeat A032 with the old If-Match.`;
  }
  return new LegacyError('SUCCESSOR_INCOMPLETE', `${text} ${whyHere}`);
}

const LINK_HINT = "the link is A042's short-lived download link, which ers-bridge follows itself and never passes on";

/** The object store's failures: the client learns what happened and what to do; never the link. */
export function objectStoreFault(e: ObjectStoreError): LegacyError {
  const d = e.detail;
  const at = d.host ? ` (${d.host})` : '';
  switch (e.kind) {
    case 'link':
      return new LegacyError(
        'OBJECT_STORE_LINK_REFUSED',
        `APIM's A042 answered with a download link ers-bridge will not follow: ${d.why ?? 'it is not an https URL'}. ers-bridge operators: e-RS's object store is reached over https; check that apim.baseUrl is APIM (${LINK_HINT}).`,
      );
    case 'status':
      return new LegacyError(
        'OBJECT_STORE_FAILED',
        `The e-RS object store${at} refused the download (HTTP ${d.status}); its links are short-lived and work once, and ers-bridge asks A042 for a new one on every call: try again.`,
      );
    case 'timeout':
      return new LegacyError(
        'OBJECT_STORE_TIMEOUT',
        `The e-RS object store${at} did not deliver the attachment in the time allowed; try again. ers-bridge operators: see apim.successors.attachments.timeouts.`,
      );
    case 'tls-unverified':
      return new LegacyError(
        'OBJECT_STORE_FAILED',
        `The TLS certificate of the e-RS object store${at} could not be verified (${d.code}); ers-bridge never downloads from an unverified server. Check the CA configuration.`,
      );
    case 'unreachable':
      return new LegacyError(
        'OBJECT_STORE_FAILED',
        `The e-RS object store${at} could not be reached${d.code ? ` (${d.code})` : ''}; try again shortly. If it persists, check ers-bridge's network path to it.`,
      );
    case 'too-large':
      return attachmentTooLarge(d.bytes, d.limit ?? 0);
  }
}

/** A006's FILE_SIZE_ERROR, for a file over the limit the legacy client gets (A006's 5 MB unless the rules raise it). */
export function attachmentTooLarge(bytes: number | undefined, limit: number): LegacyError {
  const size = bytes !== undefined ? `${bytes} bytes` : `more than ${limit} bytes`;
  return new LegacyError(
    'ATTACHMENT_TOO_LARGE',
    `The attachment is ${size}, larger than the ${limit} bytes A006 gives${limit === 5_242_880 ? ' (5 MB)' : ''}, so it cannot be retrieved with this call. Download it in the e-RS web application, or with A042 (GET /ers-api/R4/v1/Binary/{id}); ers-bridge operators can raise apim.successors.attachments.maxBytes (up to ${A042_MAX_BYTES}, A042's 100 MB) for clients that handle larger files.`,
  );
}
