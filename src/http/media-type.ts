/**
 * Media types, parsed one way everywhere (fast-content-type-parse: RFC 7231 grammar, lower-cased type), with one
 * meaning of "JSON": the bodies ers-bridge reads as JSON (session bodies, FHIR bodies whose links it rewrites,
 * answers it compares or records).
 */
import contentType from 'fast-content-type-parse';

const TYPE = /^[!#$%&'*+.^\w|~-]+\/[!#$%&'*+.^\w|~-]+$/;

/**
 * The lower-cased `type/subtype` of a Content-Type value; undefined when absent or not a valid media type. A valid
 * type with malformed parameters still counts (legacy clients send odd parameters; the type is what matters).
 */
export function mediaTypeOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const parsed = contentType.safeParse(value);
  if (parsed.type !== '') return parsed.type;
  const head = value.split(';')[0]!.trim().toLowerCase();
  return TYPE.test(head) ? head : undefined;
}

/** Whether a Content-Type value is a valid media type (absent counts as valid: there is nothing wrong with it). */
export function isValidMediaType(value: string | undefined): boolean {
  return value === undefined || mediaTypeOf(value) !== undefined;
}

/**
 * JSON: `application/json`, `text/json`, any `+json` structured syntax suffix (`application/fhir+json`), and the
 * DSTU2-era `application/json+fhir` that legacy e-RS clients still send.
 */
export function isJsonMediaType(type: string | undefined): boolean {
  if (type === undefined) return false;
  return (
    type === 'application/json' || type === 'text/json' || type === 'application/json+fhir' || type.endsWith('+json')
  );
}

/** Whether a Content-Type value (parameters and all) names JSON. */
export function isJsonContentType(value: string | undefined): boolean {
  return isJsonMediaType(mediaTypeOf(value));
}

/**
 * Whether a request's Content-Type may label a FHIR JSON body (A008, A014, A016, A023, …), as the HSCN API took it
 * (the legacy developer documentation, nhsconnect/digital-referrals `pages/endpoints/`):
 * - `application/fhir+json`, on every STU3 page;
 * - `*\/*`, listed with it in the Content-Type row of A014 (Reject referral) and A023 (A&G worklist):
 *   "`*\/*`, `application/fhir+json`";
 * - `application/json`, in the A008 STU3 page's example request header;
 * - `application/json+fhir`, the DSTU2 type (the DSTU2 pages), which clients kept sending on worklists (the
 *   Java/Camel client's `$ers.fetchworklist`);
 * each with any parameters (`; charset=utf-8` from the C# referrals hub's StringContent): the type is what counts.
 */
export function isFhirJsonRequestType(value: string | undefined): boolean {
  const type = mediaTypeOf(value);
  return (
    type === 'application/fhir+json' ||
    type === 'application/json+fhir' ||
    type === 'application/json' ||
    type === '*/*'
  );
}

/**
 * Whether a request's Content-Type may label a session body (A001, A002). The HSCN API documented plain
 * `application/json` (DR a001, a002; with `; charset=utf-8` as real clients send it); any JSON type is taken, and
 * `*\/*`, which says no more than a missing Content-Type (which sessions take too).
 */
export function isSessionJsonRequestType(value: string | undefined): boolean {
  return isJsonContentType(value) || mediaTypeOf(value) === '*/*';
}

/**
 * A JSON body without its UTF-8 byte order mark, if it starts with one (templates saved by Windows editors carry
 * it). RFC 8259 §8.1: JSON must not start with one, and a parser may ignore it — APIM refuses it, JSON.parse fails.
 */
export function withoutUtf8Bom(body: Buffer): Buffer {
  return body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? body.subarray(3) : body;
}
