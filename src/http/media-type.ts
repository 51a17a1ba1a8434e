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
