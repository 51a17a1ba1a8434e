/**
 * `apim.successors`: how ers-bridge answers, per environment, the legacy operations APIM has retired (the table and
 * NHS's dates: src/legacy/successors.ts). The defaults make each retired call the way APIM offers today; `direct`
 * sends it to APIM's old operation, for an APIM environment that still serves it.
 */
import { z } from 'zod';

/** A006's own limit (the e-RS specification: "up to a maximum file size of 5MB (5242880 bytes)"). */
export const A006_MAX_BYTES = 5_242_880;
/** A042's: "attachments up to 100 MB" (NHS guide "Migrating to the FHIR R4 Retrieve Attachment endpoint"). */
export const A042_MAX_BYTES = 104_857_600;

const ObjectStoreTimeouts = z
  .object({
    connectMs: z.number().int().min(100).max(60_000).default(5_000),
    headersMs: z.number().int().min(100).max(300_000).default(30_000),
    bodyMs: z
      .number()
      .int()
      .min(100)
      .max(300_000)
      .default(30_000)
      .describe('The longest pause between two parts of the file.'),
    totalMs: z
      .number()
      .int()
      .min(1_000)
      .max(1_800_000)
      .default(300_000)
      .describe('The whole download, from the request to the last byte; a slower one is abandoned.'),
  })
  .strict();

const Attachments = z
  .object({
    maxBytes: z
      .number()
      .int()
      .min(1)
      .max(A042_MAX_BYTES)
      .default(A006_MAX_BYTES)
      .describe(
        "The largest attachment A006 gives a legacy client when it is served through A042: A006's own 5 MB (5242880 bytes) unless raised here, up to A042's 100 MB (104857600). A larger one gets A006's 422 FILE_SIZE_ERROR. Raise it only for clients known to cope with larger files.",
      ),
    timeouts: ObjectStoreTimeouts.prefault({}).describe(
      "The download from the object store A042 redirects to (a different origin from APIM, reached with a client of its own; TLS always verified, APIM's extra CA certificates trusted too).",
    ),
  })
  .strict();

export const SuccessorSettings = z
  .object({
    A006: z
      .enum(['a042', 'direct'], { message: 'expected A006: a042 or direct' })
      .default('a042')
      .describe(
        "A006 Retrieve attachment (GET /STU3/Binary/{id}), deprecated February 2025 and retired February 2026 (\"Migrating to the FHIR R4 Retrieve Attachment endpoint\"). a042 (default): ers-bridge calls A042 (GET /R4/Binary/{id}), follows its 307 to the object store itself and streams the file back with A006's headers, A042's 422s answered as A006 gave them. direct: APIM's A006, only where APIM still serves it.",
      ),
    A021: z
      .enum(['a011-then-a016', 'gone', 'direct'], { message: 'expected A021: a011-then-a016, gone or direct' })
      .default('a011-then-a016')
      .describe(
        'A021 Create referral and send for triage, withdrawn March 2025 ("Migrating from the send for triage endpoints to the book/defer endpoint"). a011-then-a016 (default): A011 with the same body, A016 sending the referral to the shortlisted triage service, A005 reading it back for the answer; a failure after A011 is answered once, naming the UBRN created and what is left to do. gone: 410 naming A011 and A016. direct: APIM\'s A021, only where APIM still serves it.',
      ),
    A032: z
      .enum(['a031-then-a016', 'gone', 'direct'], { message: 'expected A032: a031-then-a016, gone or direct' })
      .default('a031-then-a016')
      .describe(
        "A032 Change shortlist and send for triage, withdrawn March 2025 (same guide). a031-then-a016 (default): A031 with the same body and If-Match, then A016 and A005 as for A021. gone: 410 naming A031 and A016. direct: APIM's A032, only where APIM still serves it.",
      ),
    attachments: Attachments.prefault({}),
  })
  .strict();

export type SuccessorConfig = z.output<typeof SuccessorSettings>;
