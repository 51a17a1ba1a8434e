/**
 * Redaction of personal data and secrets from what the comparison engine stores or shows (differences, samples,
 * JSON-lines records, reports). Comparison itself always runs on the real values; only what leaves it is redacted.
 * Each redacted value becomes a marker naming its kind, e.g. `"[redacted:nhs-number]"`, so a reader still sees what
 * kind of field differed.
 *
 * Rules on JSON (`redactJson`, `redactValue`), by key — keys are matched case-insensitively:
 *  - names: everything under `name`, `given`, `family`, `prefix`, `suffix` (so `text` inside a `name` too), and
 *    `firstName`, `lastName`, `middleName`, `fullName`, `familyName`, `givenName`, `forename(s)`, `surname`,
 *    `patientName`, `valueHumanName`. Exception: the `name` of a Parameters `parameter` / `part`, which is a
 *    parameter's name, not a person's. Organisation and service names are redacted too (we cannot always tell).
 *  - `display` of a reference to a person: its `reference` points at a Patient, Practitioner, PractitionerRole,
 *    Person or RelatedPerson, or its `identifier` is an NHS number or an SDS user id, or it sits under `subject` /
 *    `patient`.
 *  - NHS numbers: `value` of an identifier whose `system` is `https://fhir.nhs.uk/Id/nhs-number` or
 *    `http://fhir.nhs.net/Id/nhs-number` (any system ending `/Id/nhs-number`), and `nhsNumber`.
 *  - dates of birth: `birthDate`, `dateOfBirth`, `dob`.
 *  - addresses: everything under `address`, `line`, `postalCode`, `postcode`, `city`, `district`, `valueAddress`.
 *  - telecom: everything under `telecom`, `valueContactPoint`; `email`, `emailAddress`; `phone`, `phoneNumber`,
 *    `mobile`.
 *  - secrets: `token`, `access_token`, `refresh_token`, `id_token` (and camelCase), `authorization`, `apiKey`,
 *    `api_key`, `client_secret`, `clientSecret`, `password`, `secret`.
 *  - narrative: `text.div` (FHIR narrative HTML, which usually repeats the patient's details).
 *  - a Parameters `parameter` whose `name` is one of the keys above (e.g. `postcode`) has its `value[x]` redacted.
 *  Inside a redacted name / address / telecom subtree the coded parts `use`, `system`, `type`, `rank`, `url` are kept.
 *  Under a redacted key, strings and numbers become markers; booleans and null are kept; the structure (keys, array
 *  lengths) is kept, so paths stay the same before and after redaction.
 *
 * Rules on text (`redactText`, and every other string in JSON), in this order:
 *  - `Bearer <token>` / `Basic <credentials>` → `Bearer [redacted:token]`; JWT-shaped strings (`eyJ….….…`) → token.
 *  - legacy session keys (`pro-api-session:<uuid>`, any `…-session:<id>`) → session-key.
 *  - e-mail addresses → email.
 *  - secrets: runs of ≥ 32 hex digits; runs of ≥ 32 base64 / base64url characters that look random (at least 2
 *    upper-case letters, 2 lower-case letters, 2 digits, and 4 changes between digit and letter — which FHIR URLs
 *    such as `StructureDefinition/Extension-eRS-ReferralPriority-1` do not have), UUIDs left out, and a run with
 *    `/` but no `+` or `=` judged per `/`-segment (it is a URL path) → secret.
 *  - NHS numbers: exactly 10 digits not touching other digits, or 3-3-4 with single spaces (`943 476 5919`) →
 *    nhs-number. 12-digit UBRNs and SDS ids (`000000070000`) are not touched; nor are UUIDs.
 *  - UK phone numbers: `0` or `+44` followed by 9–10 more digits, optionally spaced or hyphenated → phone; UUIDs
 *    are not touched (a hyphen, 0 and nine digits inside one is not a number).
 *  - UK postcodes (`LS1 2TW`, `LS12TW`, upper case, whole word) → postcode.
 *  - honorific-led names (`Mr`, `Mrs`, `Ms`, `Miss`, `Mx`, `Dr`, `Prof` then 1–3 capitalised words) → name.
 * Everything else is kept: codes, statuses, ids, UBRNs, versions, dates other than birth dates, booleans, numbers.
 *
 * Redaction is idempotent: markers are never redacted again, so redacting redacted output changes nothing.
 */
import { type PathSegment, parsePath } from './paths.js';

export type RedactionKind =
  | 'nhs-number'
  | 'name'
  | 'birth-date'
  | 'address'
  | 'postcode'
  | 'telecom'
  | 'email'
  | 'phone'
  | 'token'
  | 'secret'
  | 'session-key'
  | 'narrative';

/** The marker that replaces a redacted value. */
export function redactionMarker(kind: RedactionKind): string {
  return `[redacted:${kind}]`;
}

const MARKER = /^\[redacted:[a-z-]+\]$/;

/** True for a string that is exactly a redaction marker. */
export function isRedactionMarker(s: string): boolean {
  return MARKER.test(s);
}

// ---------------------------------------------------------------------------------------------------------------
// Text

interface TextRule {
  re: RegExp;
  replace: (match: string, ...groups: Array<string | undefined>) => string;
}

const m = redactionMarker;

/** True for a base64-ish run that looks random rather than like words (see the file comment). */
function looksRandom(s: string): boolean {
  let upper = 0;
  let lower = 0;
  let digits = 0;
  let changes = 0;
  let prev: 'd' | 'l' | 'o' = 'o';
  for (const c of s) {
    const cls = c >= '0' && c <= '9' ? 'd' : /[A-Za-z]/.test(c) ? 'l' : 'o';
    if (cls === 'd') digits++;
    else if (c >= 'A' && c <= 'Z') upper++;
    else if (c >= 'a' && c <= 'z') lower++;
    if ((cls === 'd' && prev === 'l') || (cls === 'l' && prev === 'd')) changes++;
    prev = cls;
  }
  return upper >= 2 && lower >= 2 && digits >= 2 && changes >= 4;
}

const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const UUID_G = new RegExp(UUID, 'g');

/**
 * Whether a run of base64 / base64url characters is a secret. UUIDs inside it are not (ids in links). A run with `/`
 * but neither `+` nor `=` padding is taken for a URL path and judged segment by segment, so
 * `_baseUrl_/STU3/Task/<uuid>` is kept while a 32-character random segment is not.
 */
function isBase64Secret(run: string): boolean {
  const pieces = /[+=]/.test(run) ? [run] : run.split('/');
  return pieces.some((piece) => {
    const rest = piece.replace(UUID_G, '/');
    return rest.length >= 32 && looksRandom(rest);
  });
}

const TEXT_RULES: readonly TextRule[] = [
  { re: /\b(Bearer)\s+(?!\[redacted:)[A-Za-z0-9\-._~+/]+=*/gi, replace: (_s, w) => `${w} ${m('token')}` },
  { re: /\b(Basic) +(?!\[redacted:)[A-Za-z0-9+/]{8,}=*/g, replace: (_s, w) => `${w} ${m('token')}` },
  { re: /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, replace: () => m('token') },
  { re: /\b[a-z][a-z0-9]*(?:-[a-z0-9]+)*-session:[^\s"',;&<>()[\]]+/gi, replace: () => m('session-key') },
  { re: /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g, replace: () => m('email') },
  { re: /(?<![A-Za-z0-9])[0-9a-fA-F]{32,}(?![A-Za-z0-9])/g, replace: () => m('secret') },
  { re: /(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}/g, replace: (s) => (isBase64Secret(s) ? m('secret') : s) },
  {
    // UUIDs are matched first and kept, so that digits inside one are never taken for an NHS number.
    re: new RegExp(`(${UUID})|(?<!\\d)(?:\\d{10}|\\d{3} \\d{3} \\d{4})(?!\\d)`, 'g'),
    replace: (s, uuid) => (uuid ? s : m('nhs-number')),
  },
  {
    // The national number (after 0 or +44) must have 9 or 10 digits; longer runs (12-digit UBRNs) are kept. A digit
    // may be followed by a space, a hyphen or the `)` of a bracketed area code (`(0113) 496 0000`). UUIDs
    // are matched first and kept, as above: a hyphen then 0 and nine digits inside one is not a phone number.
    re: new RegExp(
      `(${UUID})|(?<![\\w+])(\\+44[ -]?(?:\\(0\\)[ -]?)?|\\(?0)((?:\\d(?:\\)[ -]?|[ -])?){8,10}\\d)(?!\\d)`,
      'g',
    ),
    replace: (s, uuid, _prefix, rest) => {
      if (uuid) return s;
      const n = (rest ?? '').replace(/\D/g, '').length;
      return n === 9 || n === 10 ? m('phone') : s;
    },
  },
  { re: /\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR) ?\d[A-Z]{2}\b/g, replace: () => m('postcode') },
  {
    // A word is a capitalised name or an initial (`Dr J Smith`, `Mrs A. B. Jones`).
    re: /\b(?:Mrs|Mr|Ms|Miss|Mx|Dr|Prof)\.?[ \t]+[A-Z](?:[A-Za-z'’-]+|\.)?(?:[ \t]+[A-Z](?:[A-Za-z'’-]+|\.)?){0,2}/g,
    replace: () => m('name'),
  },
];

/**
 * A whole string that is one UUID, optionally with a short numeric suffix (`…-1`): what ers-bridge's correlation
 * and transaction ids are. No rule changes one (each keeps UUIDs, and none of the others can match inside one), so
 * it is returned without running them: every shadow record and log line carries one (issue 15).
 */
const UUID_ALONE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:-\d{1,3})?$/i;

/** Redacts NHS numbers, tokens, secrets, session keys, e-mail addresses, phone numbers, postcodes and titled names. */
export function redactText(s: string): string {
  // Stryker disable next-line ConditionalExpression,EqualityOperator: UUID_ALONE fixes the length at 36-40 itself, and the shortcut returns only what the rules would
  if (s.length <= 40 && s.length >= 36 && UUID_ALONE.test(s)) return s;
  return redactTextByRules(s);
}

/** `redactText` without its UUID shortcut: every rule run on the text (the tests check the shortcut agrees). */
export function redactTextByRules(s: string): string {
  let out = s;
  for (const rule of TEXT_RULES) {
    rule.re.lastIndex = 0;
    out = out.replace(rule.re, rule.replace as (substring: string, ...args: unknown[]) => string);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// JSON

const KEY_KINDS = new Map<string, RedactionKind>(
  Object.entries({
    name: 'name',
    given: 'name',
    family: 'name',
    prefix: 'name',
    suffix: 'name',
    firstname: 'name',
    lastname: 'name',
    middlename: 'name',
    fullname: 'name',
    familyname: 'name',
    givenname: 'name',
    forename: 'name',
    forenames: 'name',
    surname: 'name',
    patientname: 'name',
    valuehumanname: 'name',
    nhsnumber: 'nhs-number',
    birthdate: 'birth-date',
    dateofbirth: 'birth-date',
    dob: 'birth-date',
    address: 'address',
    line: 'address',
    postalcode: 'address',
    postcode: 'address',
    city: 'address',
    district: 'address',
    valueaddress: 'address',
    telecom: 'telecom',
    valuecontactpoint: 'telecom',
    email: 'email',
    emailaddress: 'email',
    phone: 'phone',
    phonenumber: 'phone',
    mobile: 'phone',
    token: 'token',
    access_token: 'token',
    accesstoken: 'token',
    refresh_token: 'token',
    refreshtoken: 'token',
    id_token: 'token',
    idtoken: 'token',
    authorization: 'token',
    apikey: 'secret',
    api_key: 'secret',
    client_secret: 'secret',
    clientsecret: 'secret',
    password: 'secret',
    secret: 'secret',
  }) as Array<[string, RedactionKind]>,
);

/** Kinds whose subtrees keep their coded parts (`use`, `system`, …). */
const CODED_KINDS = new Set<RedactionKind>(['name', 'address', 'telecom']);
const CODED_KEYS = new Set(['use', 'system', 'type', 'rank', 'url']);

const NHS_NUMBER_SYSTEM = /\/id\/nhs-number\/?$/i;
const PERSON_SYSTEM = /\/id\/(?:nhs-number|sds-user-id)\/?$/i;
const PERSON_REFERENCE = /(?:^|[/#])(?:Patient|Practitioner|PractitionerRole|RelatedPerson|Person)(?:[/.-]|$)/;
const PARAMETER_KEYS = new Set(['parameter', 'part']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function isPersonReference(obj: Record<string, unknown>, objKey: string | undefined): boolean {
  if (objKey === 'subject' || objKey === 'patient') return true;
  if (typeof obj.reference === 'string' && PERSON_REFERENCE.test(obj.reference)) return true;
  const id = obj.identifier;
  return isPlainObject(id) && typeof id.system === 'string' && PERSON_SYSTEM.test(id.system);
}

/**
 * The kind a key redacts, given the object holding it (`obj`, possibly `{}` when only the path is known) and the
 * key under which that object sits (`objKey`; for array elements, the array's key).
 */
function keyKind(key: string, obj: Record<string, unknown>, objKey: string | undefined): RedactionKind | undefined {
  const lower = key.toLowerCase();
  const inParameter = objKey !== undefined && PARAMETER_KEYS.has(objKey);
  if (lower === 'name' && inParameter) return undefined;
  const byKey = KEY_KINDS.get(lower);
  if (byKey) return byKey;
  if (key === 'value' && typeof obj.system === 'string' && NHS_NUMBER_SYSTEM.test(obj.system)) return 'nhs-number';
  if (key === 'display' && isPersonReference(obj, objKey)) return 'name';
  if (key === 'div' && objKey === 'text') return 'narrative';
  if (inParameter && /^value[A-Z]/.test(key) && typeof obj.name === 'string')
    return KEY_KINDS.get(obj.name.toLowerCase());
  return undefined;
}

interface Ctx {
  /** The kind inherited from a redacted ancestor key. */
  kind?: RedactionKind | undefined;
  /** The key this value sits under (for array elements: the array's key). */
  key?: string | undefined;
}

function redactLeaf(kind: RedactionKind | undefined, key: string | undefined): RedactionKind | undefined {
  if (!kind) return undefined;
  if (CODED_KINDS.has(kind) && key !== undefined && CODED_KEYS.has(key)) return undefined;
  return kind;
}

function walk(v: unknown, ctx: Ctx): unknown {
  if (typeof v === 'string') {
    if (isRedactionMarker(v)) return v;
    const kind = redactLeaf(ctx.kind, ctx.key);
    return kind ? redactionMarker(kind) : redactText(v);
  }
  if (typeof v === 'number' || typeof v === 'bigint') {
    const kind = redactLeaf(ctx.kind, ctx.key);
    return kind ? redactionMarker(kind) : v;
  }
  if (Array.isArray(v)) return v.map((item) => walk(item, ctx));
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, child] of Object.entries(v)) {
      out[k] = walk(child, { kind: ctx.kind ?? keyKind(k, v, ctx.key), key: k });
    }
    return out;
  }
  return v;
}

/** Redacts a whole JSON value (deep), keeping its structure. Returns a new value; the input is not changed. */
export function redactJson(value: unknown): unknown {
  return walk(value, {});
}

/**
 * Redacts a value found at `path` (e.g. `entry[0].resource.name[0].family`) when its siblings are not known: the
 * key rules apply along the path; the sibling-based rules (identifier system, reference target, parameter name)
 * cannot, but 10-digit NHS numbers and the other text rules still do. Never redacts more than `redactJson` of the
 * whole document would. Paths that are not JSON paths (`header:etag`, `status`, `body`) get the text rules only.
 */
export function redactValue(path: string, value: unknown): unknown {
  let segments: PathSegment[];
  try {
    segments = parsePath(path);
  } catch {
    return walk(value, {});
  }
  let kind: RedactionKind | undefined;
  let key: string | undefined;
  for (const s of segments) {
    if (typeof s !== 'string') continue;
    kind = kind ?? keyKind(s, {}, key);
    key = s;
  }
  return walk(value, { kind, key });
}
