/**
 * Redaction both ways, spelling by spelling: what must be redacted (every pattern, case, separator, JSON key) and
 * what must stay readable (FHIR URLs, UUIDs, UBRNs, SDS ids, codes, words), with every threshold of the
 * "random-looking secret" heuristic tried just under, at and just over its boundary.
 */
import { describe, expect, it } from 'vitest';
import {
  isRedactionMarker,
  type RedactionKind,
  redactionMarker,
  redactJson,
  redactText,
  redactTextByRules,
  redactValue,
} from '../../../src/comparison/redact.js';

const TOKEN = '[redacted:token]';
const SECRET = '[redacted:secret]';
const SESSION = '[redacted:session-key]';
const EMAIL = '[redacted:email]';
const NHS = '[redacted:nhs-number]';
const PHONE = '[redacted:phone]';
const POSTCODE = '[redacted:postcode]';
const NAME = '[redacted:name]';

/** `core` padded with `_` (a base64url character that is neither letter nor digit) to `len` characters. */
const pad = (core: string, len = 32) => core.padEnd(len, '_');

/** Both the public entry point and the rules alone must give `expected`. */
function expectText(input: string, expected: string): void {
  expect(redactText(input), JSON.stringify(input)).toBe(expected);
  expect(redactTextByRules(input), JSON.stringify(input)).toBe(expected);
}

const UUID = '123e4567-e89b-12d3-a456-426614174000';

describe('markers', () => {
  const kinds: RedactionKind[] = [
    'nhs-number',
    'name',
    'birth-date',
    'address',
    'postcode',
    'telecom',
    'email',
    'phone',
    'token',
    'secret',
    'session-key',
    'narrative',
  ];
  it.each(kinds)('redactionMarker(%s) is a marker', (kind) => {
    expect(redactionMarker(kind)).toBe(`[redacted:${kind}]`);
    expect(isRedactionMarker(redactionMarker(kind))).toBe(true);
  });

  it.each([
    'x[redacted:name]',
    '[redacted:name]x',
    ' [redacted:name]',
    '[redacted:]',
    '[redacted:Name]',
    '[redacted:name1]',
    '[redacted:name',
    'redacted:name]',
    '[redacted:name] [redacted:name]x',
    '',
  ])('%j is not a marker', (s) => {
    expect(isRedactionMarker(s)).toBe(false);
  });

  it('a single-letter kind is still marker-shaped', () => {
    expect(isRedactionMarker('[redacted:a]')).toBe(true);
    expect(isRedactionMarker('[redacted:a-b-c]')).toBe(true);
  });
});

describe('redactText: Bearer and Basic credentials', () => {
  it.each([
    ['Bearer abc', `Bearer ${TOKEN}`],
    ['Bearer  abc', `Bearer ${TOKEN}`],
    ['Bearer   abc', `Bearer ${TOKEN}`],
    ['Bearer\tabc', `Bearer ${TOKEN}`],
    ['Bearer\nabc', `Bearer ${TOKEN}`],
    ['Bearer \t abc', `Bearer ${TOKEN}`],
    ['bearer abc', `bearer ${TOKEN}`],
    ['BEARER abc', `BEARER ${TOKEN}`],
    ['BeArEr abc', `BeArEr ${TOKEN}`],
    ['Bearer abc==', `Bearer ${TOKEN}`],
    ['Bearer abc=', `Bearer ${TOKEN}`],
    ['Bearer Aa0-Zz9._~+/x==', `Bearer ${TOKEN}`],
    ['Bearer Aa', `Bearer ${TOKEN}`],
    ['Bearer Zz', `Bearer ${TOKEN}`],
    ['Bearer 09', `Bearer ${TOKEN}`],
    ['Authorization: Bearer abc.def rest', `Authorization: Bearer ${TOKEN} rest`],
    ['"authorization":"Bearer abc"', `"authorization":"Bearer ${TOKEN}"`],
    ['Bearer abc, Bearer def', `Bearer ${TOKEN}, Bearer ${TOKEN}`],
    ['line1\nBearer abc\nline3', `line1\nBearer ${TOKEN}\nline3`],
    ['Basic YWRtaW46', `Basic ${TOKEN}`],
    ['Basic  YWRtaW46', `Basic ${TOKEN}`],
    ['Basic abcdefgh', `Basic ${TOKEN}`],
    ['Basic Aa0Zz9+/', `Basic ${TOKEN}`],
    ['Basic Aa0Zz9+/==', `Basic ${TOKEN}`],
    ['Basic abcdefgh=', `Basic ${TOKEN}`],
    ['Basic abcdefgh rest', `Basic ${TOKEN} rest`],
    ['Basic abcdefgh and Basic ijklmnop', `Basic ${TOKEN} and Basic ${TOKEN}`],
  ])('%j → %j', (input, expected) => {
    expectText(input, expected);
    expectText(expected, expected);
  });

  it.each([
    'xBearer abc',
    'Bearer',
    'Bearer ',
    'Bearer [redacted:token]',
    'Bearer  [redacted:token]',
    'Basic abcdefg',
    'basic abcdefgh',
    'BASIC abcdefgh',
    'Basic\tabcdefgh',
    'xBasic abcdefgh',
    'Basic [redacted:token]',
    'Basic auth is used',
  ])('keeps %j', (s) => {
    expectText(s, s);
  });
});

describe('redactText: JWTs', () => {
  it.each([
    ['eyJabcd.efgh.', TOKEN],
    ['eyJabcd.efgh.ijk', TOKEN],
    ['eyJabcd.efgh.ijk rest', `${TOKEN} rest`],
    ['eyJa_-b.c_-d.e_-f rest', `${TOKEN} rest`],
    ['eyJAZaz09_-.AZaz09_-.AZaz09_-', TOKEN],
    ['x eyJabcd.efgh.ijk', `x ${TOKEN}`],
    ['.eyJabcd.efgh.ijk', `.${TOKEN}`],
    ['eyJabcd.efgh.i, eyJwxyz.abcd.e', `${TOKEN}, ${TOKEN}`],
  ])('%j → %j', (input, expected) => {
    expectText(input, expected);
  });

  it.each([
    'eyJabc.efgh.x',
    'eyJabcd.efg.x',
    'eyJabcd.efgh',
    'xeyJabcd.efgh.ijk',
    'EYJabcd.efgh.ijk',
    'eyjabcd.efgh.ijk',
  ])('keeps %j', (s) => {
    expectText(s, s);
  });
});

describe('redactText: session keys', () => {
  it.each([
    ['pro-api-session:abc', SESSION],
    ['x-session:1', SESSION],
    ['a-session:x', SESSION],
    ['z-session:x', SESSION],
    ['zaz09-aaz09-session:x', SESSION],
    ['ab-12-session:x', SESSION],
    ['PRO-API-SESSION:ABC', SESSION],
    ['Pro-Api-Session:Abc', SESSION],
    ['/x/pro-api-session:abc/y', `/x/${SESSION}`],
    ['x-session:abc def', `${SESSION} def`],
    ['x-session:abc\tdef', `${SESSION}\tdef`],
    ['x-session:abc\ndef', `${SESSION}\ndef`],
    ['x-session:abc"def', `${SESSION}"def`],
    ["x-session:abc'def", `${SESSION}'def`],
    ['x-session:abc,def', `${SESSION},def`],
    ['x-session:abc;def', `${SESSION};def`],
    ['x-session:abc&def', `${SESSION}&def`],
    ['x-session:abc<def', `${SESSION}<def`],
    ['x-session:abc>def', `${SESSION}>def`],
    ['x-session:abc(def', `${SESSION}(def`],
    ['x-session:abc)def', `${SESSION})def`],
    ['x-session:abc[def', `${SESSION}[def`],
    ['x-session:abc]def', `${SESSION}]def`],
    ['x-session:a:b.c/d?e=f', SESSION],
    ['a-session:x and b-session:y', `${SESSION} and ${SESSION}`],
  ])('%j → %j', (input, expected) => {
    expectText(input, expected);
  });

  it.each(['session:abc', '-session:abc', '1pro-session:abc', 'x-session:', 'x-session: abc', 'pro-api-sessions'])(
    'keeps %j',
    (s) => {
      expectText(s, s);
    },
  );
});

describe('redactText: e-mail addresses', () => {
  it.each([
    ['jane.doe@mail.nhs.net', EMAIL],
    ['a@b.co', EMAIL],
    ['x@my-host.nhs.uk', EMAIL],
    ['x@a1.b-2.c3.nhs.uk', EMAIL],
    ['X@NHS.NET', EMAIL],
    ['AZaz09._%+-@x.org', EMAIL],
    ['x@AZaz09-.Az-09.org', EMAIL],
    ['x@y.AZaz', EMAIL],
    ['x@y.Za', EMAIL],
    ['mail me at a@b.com today', `mail me at ${EMAIL} today`],
    ['<a@b.com>', `<${EMAIL}>`],
    ['"email":"jane@example.org"', `"email":"${EMAIL}"`],
    ['a@b.com, c@d.e.org', `${EMAIL}, ${EMAIL}`],
    ['a@b.co1', `${EMAIL}1`],
  ])('%j → %j', (input, expected) => {
    expectText(input, expected);
  });

  it.each(['a@b.c', 'a@b', '@nhs.net', 'a@.net', 'user@host', 'name at nhs dot net'])('keeps %j', (s) => {
    expectText(s, s);
  });
});

describe('redactText: hex secrets', () => {
  const hex32 = 'deadbeef'.repeat(4);
  it.each([
    ['a'.repeat(32)],
    ['f'.repeat(32)],
    ['A'.repeat(32)],
    ['F'.repeat(32)],
    ['0'.repeat(32)],
    ['9'.repeat(32)],
    [hex32],
    [hex32.toUpperCase()],
    [`${hex32}a`],
    ['9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'],
  ])('%s is a secret', (s) => {
    expectText(s, SECRET);
  });

  it.each([
    [`-${hex32}`, `-${SECRET}`],
    [`${hex32}-`, `${SECRET}-`],
    [`key ${hex32} end`, `key ${SECRET} end`],
    [`etag "${hex32}"`, `etag "${SECRET}"`],
  ])('%j → %j', (input, expected) => {
    expectText(input, expected);
  });

  it('31 hex digits are kept', () => {
    const s = hex32.slice(0, 31);
    expectText(s, s);
    expectText('a'.repeat(31), 'a'.repeat(31));
  });

  // Hex touching a letter or digit on either side is part of a longer word (and, being all lower case, not random).
  it.each(['g', 'z', 'G', 'Z', 'ZA', 'za', 'z0', 'z9', 'g1'])('keeps %s + 32 hex', (prefix) => {
    expectText(`${prefix}${hex32}`, `${prefix}${hex32}`);
  });
  it.each(['g', 'z', 'G', 'Z', 'Ag', 'ag', 'Fg', 'fg', '0g', '9g'])('keeps 32 hex + %s', (suffix) => {
    expectText(`${hex32}${suffix}`, `${hex32}${suffix}`);
  });
});

describe('redactText: random-looking base64 secrets (looksRandom)', () => {
  // 'QRst1x2y': 2 upper, 4 lower, 2 digits, 4 digit/letter changes (t→1, 1→x, x→2, 2→y): every threshold at its minimum.
  const redacted: Array<[string, string]> = [
    ['every threshold at its minimum', 'QRst1x2y'],
    ['lower-case letters exactly 2', 'QRs1t2U'],
    ['upper-case A and Z counted', 'AZst1x2y'],
    ['lower-case a and z counted', 'QRaz1Q2Q'],
    ['digits 0 and 9 counted', 'QRst0x9y'],
    ['a change to and from a', 'QRst1a2a'],
    ['a change to and from z', 'QRst1z2z'],
    ['a change to and from A', 'QRst1A2A'],
    ['a change to and from Z', 'QRst1Z2Z'],
    ['more of everything', 'Q1w2E3r4T5y6U7i8'],
  ];
  it.each(redacted)('%s: %s is a secret', (_label, core) => {
    expectText(pad(core), SECRET);
    expectText(pad(core, 33), SECRET);
    expectText(`x ${pad(core)} y`, `x ${SECRET} y`);
  });

  const kept: Array<[string, string]> = [
    ['one upper-case letter', 'Qrst1x2y'],
    ['one lower-case letter', 'QRs1T2U'],
    ['three changes', 'QRst1x2'],
    ['three changes, then digits after a digit', 'QRst1x22'],
    ['three changes, then a digit after a non-letter', 'QRst1x2_3'],
    ['changes broken by a separator', 'QRst1_x2_y'],
    ['no digits', 'QRSTuvwxyzQRSTuvwxyz'],
    ['no letters', '0123_4567_8901_2345'],
    ['no upper case', 'abcd1e2f3g4h'],
    ['no lower case', 'ABCD1E2F3G4H'],
    ['a single digit', 'QRst1xyz'],
  ];
  it.each(kept)('%s: %s is kept', (_label, core) => {
    expectText(pad(core), pad(core));
    expectText(pad(core, 40), pad(core, 40));
  });

  it('counts only letters as upper or lower case, whatever the separator', () => {
    for (const sep of ['-', '+', '_']) {
      const one = 'Qrst1x2y'.padEnd(32, sep);
      expectText(one, one);
      const oneLower = 'QRs1T2U'.padEnd(32, sep);
      expectText(oneLower, oneLower);
      expectText('QRst1x2y'.padEnd(32, sep), SECRET);
    }
  });

  it('needs 32 characters: 31 are kept', () => {
    expectText(pad('QRst1x2y', 31), pad('QRst1x2y', 31));
    expectText(`x ${pad('QRst1x2y', 31)}`, `x ${pad('QRst1x2y', 31)}`);
    // Padding does not count towards the 32.
    expectText(`${pad('QRst1x2y', 31)}=`, `${pad('QRst1x2y', 31)}=`);
    expectText(`${pad('QRst1x2y', 31)}==`, `${pad('QRst1x2y', 31)}==`);
  });

  it('takes trailing padding, at most two = signs', () => {
    const s = pad('QRst1x2y');
    expectText(`${s}=`, SECRET);
    expectText(`${s}==`, SECRET);
    expectText(`${s}===`, `${SECRET}=`);
    expectText(`${s}== rest`, `${SECRET} rest`);
  });

  it('runs over + - _ and /', () => {
    // Each separator splits the run into halves shorter than 32: only the whole run is a secret.
    expectText(`${pad('QRst1x2y', 15)}+${'_'.repeat(16)}`, SECRET);
    expectText(`${pad('QRst1x2y', 15)}-${'-'.repeat(16)}`, SECRET);
    expectText(`${pad('QRst1x2y', 15)}/${pad('QRst1x2y', 15)}+`, SECRET);
    expectText(`${'Q1w2'.repeat(4)}-${'E3r4'.repeat(4)}`, SECRET);
  });

  it('judges a run with / but no + or = segment by segment (a URL path)', () => {
    const half = pad('QRst1x2y', 16);
    // Random as a whole, but each segment is shorter than 32.
    expectText(`${half}/${pad('QRst1x2y', 15)}`, `${half}/${pad('QRst1x2y', 15)}`);
    expectText(`${half}/${half}/${half}`, `${half}/${half}/${half}`);
    // With + or = padding it is one base64 string, judged whole.
    expectText(`${half}/${pad('QRst1x2y', 15)}+`, SECRET);
    expectText(`${half}/${pad('QRst1x2y', 15)}=`, SECRET);
    expectText(`${half}/${pad('QRst1x2y', 15)}==`, SECRET);
    // One random segment of 32 is enough, wherever it is.
    expectText(`Task/${pad('QRst1x2y')}`, SECRET);
    expectText(`${pad('QRst1x2y')}/Task`, SECRET);
    expectText(`a/b/${pad('QRst1x2y')}/c/d`, SECRET);
    expectText(`/STU3/Task/${pad('QRst1x2y')}`, SECRET);
  });

  it('leaves UUIDs out of the judgement', () => {
    // Each UUID counts as one separator character.
    expectText(`${pad('QRst1x2y', 31)}${UUID}`, SECRET);
    expectText(`${pad('QRst1x2y', 30)}${UUID}`, `${pad('QRst1x2y', 30)}${UUID}`);
    expectText(`${pad('QRst1x2y', 16)}${UUID}`, `${pad('QRst1x2y', 16)}${UUID}`);
    expectText(`${pad('QRst1x2y', 16)}${UUID}${UUID}`, `${pad('QRst1x2y', 16)}${UUID}${UUID}`);
    expectText(`${pad('QRst1x2y', 15)}${UUID}${UUID}`, `${pad('QRst1x2y', 15)}${UUID}${UUID}`);
    expectText(`${pad('QRst1x2y', 30)}${UUID.toUpperCase()}`, `${pad('QRst1x2y', 30)}${UUID.toUpperCase()}`);
    expectText(`${UUID}_${UUID}_${UUID}`, `${UUID}_${UUID}_${UUID}`);
    expectText(
      `ab12cd34-ab12-ab12-ab12-ab12cd34ef56${'_'.repeat(20)}`,
      `ab12cd34-ab12-ab12-ab12-ab12cd34ef56${'_'.repeat(20)}`,
    );
  });

  it.each([
    'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-ReferralPriority-1',
    'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-AttachedByOrganisation-1',
    'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-Commissioning-Rule-Org-1',
    'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-Shortlist-SearchCriteria-1',
    'https://fhir.nhs.uk/STU3/StructureDefinition/eRS-ServiceSearchCriteria-Parameters-1',
    'https://fhir.nhs.uk/STU3/CodeSystem/eRS-AppointmentBookingCancellationReasonType-1',
    'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-PractitionerRole-Reference-1',
    'https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-PractitionerRole-1',
    'http://hl7.org/fhir/STU3/StructureDefinition/Bundle',
    '/STU3/v1/ReferralRequest/000000070000/$ers.generateCRI',
    'SERVICE_PROVIDER_CLINICIAN_ADMIN_AND_MORE_LETTERS',
    'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession',
    'APPOINTMENT_BOOKING_CANCELLATION_REASON_TYPE_2',
    'Extension-eRS-ClinicalInfoFirstSubmitted-1-and-more',
  ])('keeps %s', (s) => {
    expectText(s, s);
  });
});

describe('redactText: NHS numbers', () => {
  it.each([
    ['9434765919', NHS],
    ['943 476 5919', NHS],
    ['a9434765919', `a${NHS}`],
    ['9434765919a', `${NHS}a`],
    ['Patient/9434765919', `Patient/${NHS}`],
    ['nhs=9434765919&x=1', `nhs=${NHS}&x=1`],
    ['9434765919 and 943 476 5919\n4010232137', `${NHS} and ${NHS}\n${NHS}`],
    [`${UUID} 9434765919`, `${UUID} ${NHS}`],
  ])('%j → %j', (input, expected) => {
    expectText(input, expected);
  });

  it.each([
    '943476591',
    '94347659190',
    '12345678901',
    '943  476 5919',
    '943-476-5919',
    '943 4765 919',
    '000000070000',
    '021600556514',
    '999000000001',
    '0000 0007 0000',
    UUID,
    '94347659-1943-4765-9194-347659194347',
    `x${UUID}`,
  ])('keeps %j', (s) => {
    expectText(s, s);
  });
});

describe('redactText: UK phone numbers', () => {
  it.each([
    ['0113 496 0000', PHONE],
    ['01134960000', PHONE],
    ['01234 56789', PHONE],
    ['0123-456-789', PHONE],
    ['(0113)496 0000', PHONE],
    ['07700 900123', PHONE],
    ['+44 7700 900123', PHONE],
    ['+447700900123', PHONE],
    ['+44-7700-900123', PHONE],
    ['+44 (0)7700 900123', PHONE],
    ['+44(0)-7700 900123', PHONE],
    ['+44 123456789', PHONE],
    ['+44-113-496-0000', PHONE],
    ['+441134960000', PHONE],
    ['tel: 0113 496 0000.', `tel: ${PHONE}.`],
    ['0113 496 0000 or 07700 900123', `${PHONE} or ${PHONE}`],
    [`${UUID} 0113 496 0000`, `${UUID} ${PHONE}`],
  ])('%j → %j', (input, expected) => {
    expectText(input, expected);
  });

  it.each([
    '+44 12345678901',
    '+44 1234567890123',
    '012345678901',
    '0123456789012',
    'x01234 56789',
    '+01234 56789',
    '_01234 56789',
    '01234 5678',
    '+44 12345678',
    '2021-06-11',
    '0000 0007 0000',
  ])('keeps %j', (s) => {
    expectText(s, s);
  });
});

describe('redactText: postcodes', () => {
  it.each([
    ['LS1 2TW', POSTCODE],
    ['LS12TW', POSTCODE],
    ['M1 1AE', POSTCODE],
    ['W1A 1AA', POSTCODE],
    ['EC1A 1BB', POSTCODE],
    ['B33 8TH', POSTCODE],
    ['LS12 2TW', POSTCODE],
    ['AZ0 9AZ', POSTCODE],
    ['ZA9 0ZA', POSTCODE],
    ['A0A 0AA', POSTCODE],
    ['Z9Z 9ZZ', POSTCODE],
    ['A00 0AA', POSTCODE],
    ['Z99 9ZZ', POSTCODE],
    ['AZ0A9AZ', POSTCODE],
    ['GIR 0AA', POSTCODE],
    ['GIR0AA', POSTCODE],
    ['lives at LS1 2TW, Leeds', `lives at ${POSTCODE}, Leeds`],
    ['LS1 2TW\nM1 1AE', `${POSTCODE}\n${POSTCODE}`],
  ])('%j → %j', (input, expected) => {
    expectText(input, expected);
  });

  it.each(['ls1 2tw', 'LS1  2TW', 'LS1 2TWX', 'XLS1 2TW', 'ABC1 2DE', 'LS1 2T', 'LS 2TW', 'GIRL 0AA', 'R69', 'A005'])(
    'keeps %j',
    (s) => {
      expectText(s, s);
    },
  );
});

describe('redactText: titled names', () => {
  it.each(['Mrs', 'Mr', 'Ms', 'Miss', 'Mx', 'Dr', 'Prof'])('%s Smith', (title) => {
    expectText(`${title} Smith`, NAME);
    expectText(`${title}. Smith`, NAME);
    expectText(`seen by ${title} Jane Smith today`, `seen by ${NAME} today`);
  });

  it.each([
    ['Dr  Smith', NAME],
    ['Dr\tSmith', NAME],
    ['Dr.\tSmith', NAME],
    ['Dr AZaz', NAME],
    ['Dr Zaza', NAME],
    ['Dr Ab AZaz ZAza', NAME],
    ['Dr Ab\tCd  Ef', NAME],
    ['Dr Jane Ann Mary Smith', `${NAME} Smith`],
    ['Dr Jane Ann Mary', NAME],
    ["Dr O'Neil", NAME],
    ['Dr O’Brien', NAME],
    ['Dr Smith-Jones', NAME],
    ["Dr Ab O'Neil D’Arcy-Smith", NAME],
    ['Dr Jane smith', `${NAME} smith`],
    ['Dr Jane and Mr Bob Ab', `${NAME} and ${NAME}`],
    ['(Dr Jane)', `(${NAME})`],
  ])('%j → %j', (input, expected) => {
    expectText(input, expected);
  });

  it.each(['Dr smith', 'Dr\nSmith', 'XDr Smith', 'Drive Smith', 'Mister Smith', 'Dr', 'dr Smith', 'MR Smith'])(
    'keeps %j',
    (s) => {
      expectText(s, s);
    },
  );
});

describe('redactText: what stays readable', () => {
  it.each([
    'Routine',
    'ROUTINE',
    'Triage - 2WW',
    '2021-06-11T12:09:08.667Z',
    '1957-03-14',
    '000000070000',
    '021600556514',
    '555254240100',
    'R69',
    'RCD',
    'A005',
    'W/"5"',
    'application/fhir+json;charset=UTF-8',
    'cardiology outpatients in Leeds',
    'Good Cardiology Business Service',
    UUID,
    UUID.toUpperCase(),
    `${UUID}-1`,
    `${UUID}-123`,
    `${UUID}.secondary`,
    '',
  ])('keeps %j', (s) => {
    expectText(s, s);
  });

  it('redacts several kinds in one multi-line text', () => {
    const text = [
      'GET /Patient/9434765919 HTTP/1.1',
      'Authorization: Bearer abc.def',
      'From: jane.doe@mail.nhs.net',
      `X-Session: pro-api-session:${UUID}`,
      `X-Correlation-Id: ${UUID}`,
      'Phone: 0113 496 0000; LS1 2TW; Dr Jane Smith; UBRN 000000070000',
    ].join('\n');
    expectText(
      text,
      [
        `GET /Patient/${NHS} HTTP/1.1`,
        `Authorization: Bearer ${TOKEN}`,
        `From: ${EMAIL}`,
        `X-Session: ${SESSION}`,
        `X-Correlation-Id: ${UUID}`,
        `Phone: ${PHONE}; ${POSTCODE}; ${NAME}; UBRN 000000070000`,
      ].join('\n'),
    );
  });

  it('redacts query strings parameter by parameter', () => {
    expectText(
      `/x?nhsNumber=9434765919&email=a@b.com&token=${pad('QRst1x2y')}&ubrn=000000070000`,
      `/x?nhsNumber=${NHS}&email=${EMAIL}&token=${SECRET}&ubrn=000000070000`,
    );
  });
});

describe('redactJson: keys', () => {
  const keys: Array<[string, RedactionKind]> = [
    ['name', 'name'],
    ['given', 'name'],
    ['family', 'name'],
    ['prefix', 'name'],
    ['suffix', 'name'],
    ['firstName', 'name'],
    ['lastName', 'name'],
    ['middleName', 'name'],
    ['fullName', 'name'],
    ['familyName', 'name'],
    ['givenName', 'name'],
    ['forename', 'name'],
    ['forenames', 'name'],
    ['surname', 'name'],
    ['patientName', 'name'],
    ['valueHumanName', 'name'],
    ['nhsNumber', 'nhs-number'],
    ['birthDate', 'birth-date'],
    ['dateOfBirth', 'birth-date'],
    ['dob', 'birth-date'],
    ['address', 'address'],
    ['line', 'address'],
    ['postalCode', 'address'],
    ['postcode', 'address'],
    ['city', 'address'],
    ['district', 'address'],
    ['valueAddress', 'address'],
    ['telecom', 'telecom'],
    ['valueContactPoint', 'telecom'],
    ['email', 'email'],
    ['emailAddress', 'email'],
    ['phone', 'phone'],
    ['phoneNumber', 'phone'],
    ['mobile', 'phone'],
    ['token', 'token'],
    ['access_token', 'token'],
    ['accessToken', 'token'],
    ['refresh_token', 'token'],
    ['refreshToken', 'token'],
    ['id_token', 'token'],
    ['idToken', 'token'],
    ['authorization', 'token'],
    ['apiKey', 'secret'],
    ['api_key', 'secret'],
    ['client_secret', 'secret'],
    ['clientSecret', 'secret'],
    ['password', 'secret'],
    ['secret', 'secret'],
  ];
  it.each(keys)('%s → %s', (key, kind) => {
    const marker = `[redacted:${kind}]`;
    expect(redactJson({ [key]: 'plain', other: 'plain' })).toStrictEqual({ [key]: marker, other: 'plain' });
    expect(redactJson({ [key]: 7 })).toStrictEqual({ [key]: marker });
    expect(redactJson({ [key.toUpperCase()]: 'plain' })).toStrictEqual({ [key.toUpperCase()]: marker });
    expect(redactJson({ [key.toLowerCase()]: ['a', 'b'] })).toStrictEqual({ [key.toLowerCase()]: [marker, marker] });
    expect(redactJson({ [key]: { deep: { deeper: 'plain' } } })).toStrictEqual({ [key]: { deep: { deeper: marker } } });
    expect(redactValue(key, 'plain')).toBe(marker);
    expect(redactValue(`entry[0].resource.${key}`, 'plain')).toBe(marker);
    expect(redactValue(`${key}.deep[0]`, 'plain')).toBe(marker);
  });

  it.each([
    'nameX',
    'names',
    'username',
    'lines',
    'addressee',
    'status',
    'code',
    'id',
    'display',
    'value',
    'div',
    'text',
    'tokens',
    'secrets',
    'use',
  ])('keeps the value under %s', (key) => {
    expect(redactJson({ [key]: 'plain' })).toStrictEqual({ [key]: 'plain' });
    expect(redactValue(key, 'plain')).toBe('plain');
  });

  it('keeps booleans and null under a redacted key, and the structure', () => {
    expect(redactJson({ name: { a: true, b: null, c: false, d: [], e: {} } })).toStrictEqual({
      name: { a: true, b: null, c: false, d: [], e: {} },
    });
  });

  it('redacts big integers under a redacted key, and keeps numbers elsewhere', () => {
    expect(redactJson({ nhsNumber: 9434765919n })).toStrictEqual({ nhsNumber: NHS });
    expect(redactJson({ count: 9434765919n })).toStrictEqual({ count: 9434765919n });
    expect(redactJson({ count: 9434765919 })).toStrictEqual({ count: 9434765919 });
    expect(redactJson({ count: 0 })).toStrictEqual({ count: 0 });
  });

  it('never re-redacts a marker, whatever key it sits under', () => {
    expect(redactJson({ token: NAME, name: [TOKEN, 'x'] })).toStrictEqual({ token: NAME, name: [TOKEN, NAME] });
    expect(redactValue('token', NAME)).toBe(NAME);
  });

  it('runs the text rules on every other string, however deep', () => {
    expect(
      redactJson({ a: [{ b: 'call 0113 496 0000' }, 'Bearer abc'], c: { d: { e: 'x@y.org' } }, f: 'Routine' }),
    ).toStrictEqual({ a: [{ b: `call ${PHONE}` }, `Bearer ${TOKEN}`], c: { d: { e: EMAIL } }, f: 'Routine' });
    expect(redactJson('Dr Jane Smith')).toBe(NAME);
    expect(redactJson(['9434765919', 5, true, null])).toStrictEqual([NHS, 5, true, null]);
  });

  it('keeps values that are not JSON-like as they are', () => {
    const buf = Buffer.from('9434765919');
    expect(redactJson(buf)).toBe(buf);
    expect(redactJson({ token: buf }) as Record<string, unknown>).toStrictEqual({ token: buf });
    expect(redactJson(undefined)).toBe(undefined);
    expect(redactJson(null)).toBe(null);
    expect(redactJson(true)).toBe(true);
    expect(redactJson({ a: null, b: undefined })).toStrictEqual({ a: null, b: undefined });
  });

  it('does not change its input', () => {
    const input = { name: [{ family: 'F' }], note: 'Dr Jane Smith' };
    redactJson(input);
    expect(input).toStrictEqual({ name: [{ family: 'F' }], note: 'Dr Jane Smith' });
  });
});

describe('redactJson: coded parts of names, addresses and telecom', () => {
  const coded = { use: 'official', system: 'phone', type: 'postal', rank: 1, url: 'https://x/y', other: 'plain' };
  it.each([
    ['name', 'name'],
    ['valueHumanName', 'name'],
    ['address', 'address'],
    ['valueAddress', 'address'],
    ['telecom', 'telecom'],
    ['valueContactPoint', 'telecom'],
  ])('keeps use, system, type, rank and url under %s', (key, kind) => {
    const marker = `[redacted:${kind}]`;
    expect(redactJson({ [key]: [coded] })).toStrictEqual({ [key]: [{ ...coded, other: marker }] });
    expect(redactJson({ [key]: { period: { start: '2020-01-01' }, use: ['home', 'work'] } })).toStrictEqual({
      [key]: { period: { start: marker }, use: ['home', 'work'] },
    });
    expect(redactValue(`${key}[0].use`, 'official')).toBe('official');
    expect(redactValue(`${key}[0].rank`, 1)).toBe(1);
    expect(redactValue(`${key}[0].other`, 'plain')).toBe(marker);
  });

  it.each([
    ['email', 'email'],
    ['phone', 'phone'],
    ['token', 'token'],
    ['secret', 'secret'],
    ['dob', 'birth-date'],
    ['nhsNumber', 'nhs-number'],
  ])('redacts even the coded parts under %s', (key, kind) => {
    const marker = `[redacted:${kind}]`;
    expect(redactJson({ [key]: coded })).toStrictEqual({
      [key]: { use: marker, system: marker, type: marker, rank: marker, url: marker, other: marker },
    });
  });

  it('redacts a name part even when it is called like a coded key elsewhere', () => {
    expect(redactJson({ name: [{ given: ['use', 'system'], text: 'Jane' }] })).toStrictEqual({
      name: [{ given: [NAME, NAME], text: NAME }],
    });
  });
});

describe('redactJson: NHS-number identifiers', () => {
  it.each([
    'https://fhir.nhs.uk/Id/nhs-number',
    'http://fhir.nhs.net/Id/nhs-number',
    'https://fhir.nhs.uk/Id/nhs-number/',
    'HTTPS://FHIR.NHS.UK/ID/NHS-NUMBER',
    'urn:x/id/nhs-number',
  ])('redacts the value under system %s', (system) => {
    expect(redactJson({ system, value: 'abc', other: 'abc' })).toStrictEqual({ system, value: NHS, other: 'abc' });
    expect(redactJson({ identifier: [{ system, value: 943 }] })).toStrictEqual({
      identifier: [{ system, value: NHS }],
    });
  });

  it.each([
    'https://fhir.nhs.uk/Id/nhs-number-x',
    'https://fhir.nhs.uk/Id/nhs-numbers',
    'https://fhir.nhs.uk/Id/nhs-number/x',
    'https://fhir.nhs.uk/Id/nhs-number//',
    'https://fhir.nhs.uk/Idnhs-number',
    'urn:id/nhs-number',
    'https://fhir.nhs.uk/Id/nhsnumber',
    'http://fhir.nhs.net/Id/sds-user-id',
    'https://fhir.nhs.uk/Id/ods-organization-code',
  ])('keeps the value under system %s', (system) => {
    expect(redactJson({ system, value: 'abc' })).toStrictEqual({ system, value: 'abc' });
  });

  it('needs the key to be exactly value, and the system a string', () => {
    const system = 'https://fhir.nhs.uk/Id/nhs-number';
    expect(redactJson({ system, Value: 'abc', valueString: 'abc' })).toStrictEqual({
      system,
      Value: 'abc',
      valueString: 'abc',
    });
    expect(redactJson({ system: [system], value: 'abc' })).toStrictEqual({ system: [system], value: 'abc' });
    expect(redactJson({ value: 'abc' })).toStrictEqual({ value: 'abc' });
  });
});

describe('redactJson: display of references to people', () => {
  it.each([
    'Patient/1',
    'https://x/STU3/Patient/1',
    '#Patient-1',
    'Patient.1',
    'Patient',
    'Practitioner/1',
    'Practitioner',
    '#PractitionerRole.103264992985.R69.REFERRING-CLINICIAN',
    'PractitionerRole/1',
    'RelatedPerson/2',
    'Person/3',
    'a#Person',
    'x/Person',
  ])('redacts the display of a reference to %s', (reference) => {
    expect(redactJson({ reference, display: 'Some Body' })).toStrictEqual({ reference, display: NAME });
  });

  it.each([
    'Organization/1',
    'HealthcareService/11002',
    'PatientX/1',
    'XPatient/1',
    'Patient_1',
    'Patients',
    'patient/1',
    'x:Patient/1',
    'Persons/1',
  ])('keeps the display of a reference to %s', (reference) => {
    expect(redactJson({ reference, display: 'Some Body' })).toStrictEqual({ reference, display: 'Some Body' });
  });

  it('judges by the identifier system', () => {
    for (const system of [
      'http://fhir.nhs.net/Id/sds-user-id',
      'https://fhir.nhs.uk/Id/nhs-number',
      'https://fhir.nhs.uk/Id/sds-user-id/',
      'HTTPS://X/ID/SDS-USER-ID',
    ]) {
      expect(redactJson({ identifier: { system, value: 'v' }, display: 'Some Body' }), system).toStrictEqual({
        identifier: { system, value: system.toLowerCase().includes('nhs-number') ? NHS : 'v' },
        display: NAME,
      });
    }
    for (const system of [
      'https://fhir.nhs.uk/Id/ods-organization-code',
      'http://fhir.nhs.net/Id/sds-user-idx',
      'http://fhir.nhs.net/Id/sds-user-id/x',
      'http://fhir.nhs.net/sds-user-id',
    ]) {
      expect(redactJson({ identifier: { system, value: 'v' }, display: 'Some Body' }), system).toStrictEqual({
        identifier: { system, value: 'v' },
        display: 'Some Body',
      });
    }
    // The identifier must be one object with a string system.
    const sds = 'http://fhir.nhs.net/Id/sds-user-id';
    expect(redactJson({ identifier: [{ system: sds }], display: 'Some Body' })).toStrictEqual({
      identifier: [{ system: sds }],
      display: 'Some Body',
    });
    expect(redactJson({ identifier: { system: [sds] }, display: 'Some Body' })).toStrictEqual({
      identifier: { system: [sds] },
      display: 'Some Body',
    });
    expect(redactJson({ identifier: null, display: 'Some Body' })).toStrictEqual({
      identifier: null,
      display: 'Some Body',
    });
    expect(redactJson({ identifier: 'x', display: 'Some Body' })).toStrictEqual({
      identifier: 'x',
      display: 'Some Body',
    });
  });

  it('needs the reference to be a string', () => {
    expect(redactJson({ reference: ['Patient/1'], display: 'Some Body' })).toStrictEqual({
      reference: ['Patient/1'],
      display: 'Some Body',
    });
  });

  it('redacts the display under subject and patient, and only the display', () => {
    for (const key of ['subject', 'patient']) {
      expect(redactJson({ [key]: { display: 'Some Body', reference: 'x', note: 'Some Body' } })).toStrictEqual({
        [key]: { display: NAME, reference: 'x', note: 'Some Body' },
      });
      expect(redactJson({ [key]: [{ display: 'Some Body' }] })).toStrictEqual({ [key]: [{ display: NAME }] });
      expect(redactValue(`${key}.display`, 'Some Body')).toBe(NAME);
      expect(redactValue(`entry[0].${key}.display`, 'Some Body')).toBe(NAME);
    }
    for (const key of ['Subject', 'performer', 'requester', 'subjects']) {
      expect(redactJson({ [key]: { display: 'Some Body' } })).toStrictEqual({ [key]: { display: 'Some Body' } });
      expect(redactValue(`${key}.display`, 'Some Body')).toBe('Some Body');
    }
    expect(redactJson({ reference: 'Patient/1', Display: 'Some Body' })).toStrictEqual({
      reference: 'Patient/1',
      Display: 'Some Body',
    });
    expect(redactJson({ display: 'Some Body' })).toStrictEqual({ display: 'Some Body' });
  });
});

describe('redactJson: narrative', () => {
  it('redacts div under text only', () => {
    expect(redactJson({ text: { status: 'generated', div: '<div>x</div>' } })).toStrictEqual({
      text: { status: 'generated', div: '[redacted:narrative]' },
    });
    expect(redactJson({ text: [{ div: '<div>x</div>' }] })).toStrictEqual({ text: [{ div: '[redacted:narrative]' }] });
    expect(redactJson({ div: '<div>x</div>' })).toStrictEqual({ div: '<div>x</div>' });
    expect(redactJson({ note: { div: '<div>x</div>' } })).toStrictEqual({ note: { div: '<div>x</div>' } });
    expect(redactJson({ text: { Div: '<div>x</div>', status: 'generated' } })).toStrictEqual({
      text: { Div: '<div>x</div>', status: 'generated' },
    });
    expect(redactValue('text.div', '<div>x</div>')).toBe('[redacted:narrative]');
    expect(redactValue('contained[0].text.div', '<div>x</div>')).toBe('[redacted:narrative]');
    expect(redactValue('text.status', 'generated')).toBe('generated');
    expect(redactValue('div', '<div>x</div>')).toBe('<div>x</div>');
  });
});

describe('redactJson: Parameters', () => {
  it('keeps the name of a parameter or part, in any case', () => {
    expect(redactJson({ parameter: [{ name: 'x' }, { Name: 'y' }, { NAME: 'z' }] })).toStrictEqual({
      parameter: [{ name: 'x' }, { Name: 'y' }, { NAME: 'z' }],
    });
    expect(redactJson({ parameter: { name: 'x' } })).toStrictEqual({ parameter: { name: 'x' } });
    expect(redactJson({ part: [{ name: 'x' }] })).toStrictEqual({ part: [{ name: 'x' }] });
    // Elsewhere a name is a person's.
    expect(redactJson({ other: [{ name: 'x' }] })).toStrictEqual({ other: [{ name: NAME }] });
    expect(redactJson({ parameters: [{ name: 'x' }] })).toStrictEqual({ parameters: [{ name: NAME }] });
    expect(redactJson({ Parameter: [{ name: 'x' }] })).toStrictEqual({ Parameter: [{ name: NAME }] });
    expect(redactJson({ name: 'x' })).toStrictEqual({ name: NAME });
    expect(redactValue('parameter[0].name', 'x')).toBe('x');
    expect(redactValue('part[1].name', 'x')).toBe('x');
    expect(redactValue('other[0].name', 'x')).toBe(NAME);
  });

  it('redacts value[x] of a parameter named like a personal field', () => {
    expect(
      redactJson({
        parameter: [
          { name: 'postcode', valueString: 'LS1' },
          { name: 'PostCode', valueString: 'LS1' },
          { name: 'birthDate', valueDate: '1957-03-14' },
          { name: 'name', valueString: 'Some Body' },
          { name: 'nhsNumber', valueIdentifier: { system: 's', value: 'v' } },
          { name: 'priority', valueString: 'routine' },
          { name: 'postcode', value: 'LS1', valuestring: 'LS1', ValueString: 'LS1', xvalueString: 'LS1' },
          { name: 7, valueString: 'LS1' },
          { valueString: 'LS1' },
        ],
        part: [{ name: 'email', valueString: 'someone' }],
      }),
    ).toStrictEqual({
      parameter: [
        { name: 'postcode', valueString: '[redacted:address]' },
        { name: 'PostCode', valueString: '[redacted:address]' },
        { name: 'birthDate', valueDate: '[redacted:birth-date]' },
        { name: 'name', valueString: NAME },
        { name: 'nhsNumber', valueIdentifier: { system: NHS, value: NHS } },
        { name: 'priority', valueString: 'routine' },
        { name: 'postcode', value: 'LS1', valuestring: 'LS1', ValueString: 'LS1', xvalueString: 'LS1' },
        { name: 7, valueString: 'LS1' },
        { valueString: 'LS1' },
      ],
      part: [{ name: 'email', valueString: EMAIL }],
    });
    // Outside a parameter the sibling name does not count.
    expect(redactJson({ other: [{ name: 'postcode', valueString: 'LS1' }] })).toStrictEqual({
      other: [{ name: NAME, valueString: 'LS1' }],
    });
    // By path, the sibling name is unknown.
    expect(redactValue('parameter[0].valueString', 'LS1')).toBe('LS1');
  });
});

describe('redactValue: paths', () => {
  it('inherits the first redacted key along the path', () => {
    expect(redactValue('name[0].given[1]', 'Jane')).toBe(NAME);
    expect(redactValue('entry[0].resource.address[0].period.start', '2020')).toBe('[redacted:address]');
    expect(redactValue('telecom[0].value', 'x')).toBe('[redacted:telecom]');
    expect(redactValue('token.name', 'x')).toBe(TOKEN);
    expect(redactValue('name.use', 'official')).toBe('official');
    expect(redactValue('email.use', 'work')).toBe(EMAIL);
  });

  it('applies the text rules when no key redacts', () => {
    expect(redactValue('entry[0].resource.id', 'Patient-9434765919')).toBe(`Patient-${NHS}`);
    expect(redactValue('entry[0].resource.id', '000000070000')).toBe('000000070000');
    expect(redactValue('identifier[0].value', 'abc')).toBe('abc');
    expect(redactValue('$', 'Dr Jane Smith')).toBe(NAME);
    expect(redactValue('$', 9434765919)).toBe(9434765919);
    expect(redactValue('header:authorization', 'Bearer abc')).toBe(`Bearer ${TOKEN}`);
    expect(redactValue('[0]', 'x@y.org')).toBe(EMAIL);
    expect(redactValue('a..b', { name: 'x', note: 'a@b.co' })).toStrictEqual({ name: NAME, note: EMAIL });
  });

  it('redacts a whole subtree found at a path', () => {
    expect(redactValue('entry[0].resource.telecom', [{ system: 'phone', value: '0113', use: 'home' }])).toStrictEqual([
      { system: 'phone', value: '[redacted:telecom]', use: 'home' },
    ]);
    expect(redactValue('entry[0].resource', { name: [{ family: 'F' }], status: 'active' })).toStrictEqual({
      name: [{ family: NAME }],
      status: 'active',
    });
    expect(redactValue('parameter[0]', { name: 'postcode', valueString: 'LS1' })).toStrictEqual({
      name: 'postcode',
      valueString: '[redacted:address]',
    });
    expect(redactValue('text', { div: '<div/>' })).toStrictEqual({ div: '[redacted:narrative]' });
  });
});

describe('redactText: the lone-UUID shortcut only ever skips work', () => {
  // UUID-shaped strings with one group replaced by something the rules redact: the shortcut must not take them.
  it.each([
    'Mr Smith-1234-1234-1234-123456789012',
    '12345678-Mr S-1234-1234-123456789012',
    '12345678-1234-Mr S-1234-123456789012',
    '12345678-1234-1234-Mr S-123456789012',
    '12345678-1234-1234-1234-Mr Smith Jon',
    '12345678-1-1234-1234-0113496000ab-123',
    '12345678-1234-1-1234-0113496000ab-123',
    '12345678-1234-1234-1-0113496000ab-123',
    'a@b.abcdef01-2345-4789-abcd-0123456789ab',
  ])('%s', (s) => {
    const byRules = redactTextByRules(s);
    expect(byRules).not.toBe(s);
    expect(redactText(s)).toBe(byRules);
  });

  it('agrees with the rules at every length around a UUID', () => {
    for (const s of [UUID, `${UUID}-1`, `${UUID}-12`, `${UUID}-123`, `${UUID}-1234`, UUID.slice(1), `a${UUID}`]) {
      expect(redactText(s), s).toBe(redactTextByRules(s));
      expect(redactText(s), s).toBe(s);
    }
  });
});

describe('phone numbers with a bracketed area code, and names with initials', () => {
  it.each([
    ['call (0113) 496 0000 now', 'call [redacted:phone] now'],
    ['(0113)496 0000', '[redacted:phone]'],
    ['(0113)-496-0000', '[redacted:phone]'],
    ['(01632) 960 001', '[redacted:phone]'],
    ['(0113) 496 00000 0', '(0113) 496 00000 0'],
  ])('%j → %j', (text, expected) => {
    expect(redactText(text)).toBe(expected);
  });

  it.each([
    ['Dr J Smith was seen', '[redacted:name] was seen'],
    ['Mrs A. B. Jones said', '[redacted:name] said'],
    ['seen by Dr A', 'seen by [redacted:name]'],
    ['Prof. X', '[redacted:name]'],
    ['Dr 5 days', 'Dr 5 days'],
    ['Dr j smith', 'Dr j smith'],
  ])('%j → %j', (text, expected) => {
    expect(redactText(text)).toBe(expected);
  });
});
