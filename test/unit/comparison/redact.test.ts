import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { flatten } from '../../../src/comparison/paths.js';
import { redactJson, redactText, redactTextByRules, redactValue } from '../../../src/comparison/redact.js';
import { EXAMPLES, exampleFiles, NHS_NUMBER_PATTERN, PATIENT_SECRETS, patient } from './support.js';

const FILES = exampleFiles('.json');
const docs = FILES.map((f) => ({ name: relative(EXAMPLES, f), doc: JSON.parse(readFileSync(f, 'utf8')) as unknown }));

/** Adds a Patient with names, birth date, address and telecom to a document (as a contained resource). */
function withPatient(doc: unknown): unknown {
  const copy = structuredClone(doc) as Record<string, unknown>;
  if (typeof copy !== 'object' || copy === null || Array.isArray(copy))
    return { wrapped: copy, contained: [patient()] };
  copy.contained = [...((copy.contained as unknown[]) ?? []), patient()];
  return copy;
}

const TWELVE_DIGITS = /(?<!\d)\d{12}(?!\d)/g;

describe('redactJson over every NHS example payload', () => {
  it('has examples to work on, with NHS numbers in them', () => {
    expect(FILES.length).toBeGreaterThan(150);
    const withNhsNumbers = docs.filter(({ doc }) => NHS_NUMBER_PATTERN.test(JSON.stringify(doc)));
    expect(withNhsNumbers.length).toBeGreaterThan(20);
  });

  it('leaves no NHS number, name, birth date, address or telecom value', () => {
    for (const { name, doc } of docs) {
      const out = JSON.stringify(redactJson(withPatient(doc)));
      expect(NHS_NUMBER_PATTERN.test(out), name).toBe(false);
      for (const s of PATIENT_SECRETS) expect(out, `${name}: ${s}`).not.toContain(s);
      for (const [path, v] of flatten(JSON.parse(out))) {
        if (/(?:^|\.)(?:birthDate|family|postalCode)$|\.(?:given|line)\[\d+\]$/.test(path)) {
          expect(v, `${name}: ${path}`).toMatch(/^\[redacted:[a-z-]+\]$/);
        }
      }
    }
  });

  it('keeps resourceType, ids, 12-digit UBRN-like ids, codes and the structure', () => {
    for (const { name, doc } of docs) {
      const before = flatten(doc);
      const redacted = redactJson(doc);
      const after = flatten(redacted);
      expect([...after.keys()], name).toEqual([...before.keys()]);
      for (const [path, v] of before) {
        const kept =
          /(?:^|\.)(?:resourceType|code|status|versionId)$/.test(path) ||
          (/(?:^|\.)id$/.test(path) && !NHS_NUMBER_PATTERN.test(String(v)));
        if (kept) expect(after.get(path), `${name}: ${path}`).toEqual(v);
      }
      const twelve = (s: string) => (s.match(TWELVE_DIGITS) ?? []).sort();
      expect(twelve(JSON.stringify(redacted)), name).toEqual(twelve(JSON.stringify(doc)));
    }
    // The ids that carry an NHS number keep their shape.
    const list = docs.find((d) => d.name.endsWith('retrieveWorklist/responses/FilteredByClinician.json'))!;
    expect(JSON.stringify(redactJson(list.doc))).toContain('"Patient-[redacted:nhs-number]"');
  });

  it('is idempotent', () => {
    for (const { name, doc } of docs) {
      const once = redactJson(withPatient(doc));
      expect(redactJson(once), name).toEqual(once);
    }
  });

  it('does not change its input', () => {
    const p = patient();
    const copy = structuredClone(p);
    redactJson(p);
    expect(p).toEqual(copy);
  });
});

describe('redactJson rules', () => {
  it('redacts an NHS-number identifier value whatever its shape, and keeps other identifiers', () => {
    const out = redactJson({
      identifier: [
        { system: 'https://fhir.nhs.uk/Id/nhs-number', value: '943-476-5919' },
        { system: 'http://fhir.nhs.net/Id/nhs-number', value: 9434765919 },
        { system: 'http://fhir.nhs.net/Id/sds-user-id', value: '021600556514' },
        { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'R69' },
      ],
    });
    expect(out).toEqual({
      identifier: [
        { system: 'https://fhir.nhs.uk/Id/nhs-number', value: '[redacted:nhs-number]' },
        { system: 'http://fhir.nhs.net/Id/nhs-number', value: '[redacted:nhs-number]' },
        { system: 'http://fhir.nhs.net/Id/sds-user-id', value: '021600556514' },
        { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'R69' },
      ],
    });
  });

  it('keeps the coded parts of names, addresses and telecom', () => {
    const out = redactJson(patient()) as any;
    expect(out.name[0]).toEqual({
      use: 'official',
      family: '[redacted:name]',
      given: ['[redacted:name]', '[redacted:name]'],
      prefix: ['[redacted:name]'],
      text: '[redacted:name]',
    });
    expect(out.address[0].use).toBe('home');
    expect(out.address[0].line).toEqual(['[redacted:address]', '[redacted:address]']);
    expect(out.telecom).toEqual([
      { system: 'phone', value: '[redacted:telecom]', use: 'home' },
      { system: 'email', value: '[redacted:telecom]' },
    ]);
    expect(out.birthDate).toBe('[redacted:birth-date]');
    expect(out.gender).toBe('female');
  });

  it('redacts the display of references to people only', () => {
    const out = redactJson({
      requester: { agent: { reference: 'Practitioner/123', display: 'Dr Anna Beta' } },
      subject: { display: 'Some One' },
      actor: { identifier: { system: 'http://fhir.nhs.net/Id/nhs-number', value: '1' }, display: 'Carl Dee' },
      role: { reference: '#PractitionerRole.103264992985.R69.REFERRING-CLINICIAN', display: 'Eve Eff' },
      service: { reference: 'HealthcareService/11002', display: 'Good Cardiology Business Service' },
      coding: { code: 'ROUTINE', display: 'Routine' },
    }) as any;
    expect(out.requester.agent.display).toBe('[redacted:name]');
    expect(out.subject.display).toBe('[redacted:name]');
    expect(out.actor.display).toBe('[redacted:name]');
    expect(out.role.display).toBe('[redacted:name]');
    expect(out.service.display).toBe('Good Cardiology Business Service');
    expect(out.coding.display).toBe('Routine');
  });

  it('keeps Parameters names, and redacts a parameter named like a personal field', () => {
    const out = redactJson({
      resourceType: 'Parameters',
      parameter: [
        { name: 'postcode', valueString: 'LS1' },
        { name: 'priority', valueCoding: { code: 'ROUTINE' } },
        { name: 'distanceLimit', valueUnsignedInt: 123 },
      ],
    }) as any;
    expect(out.parameter).toEqual([
      { name: 'postcode', valueString: '[redacted:address]' },
      { name: 'priority', valueCoding: { code: 'ROUTINE' } },
      { name: 'distanceLimit', valueUnsignedInt: 123 },
    ]);
  });

  it('redacts legacy session tokens and secrets by key, and narrative HTML', () => {
    const out = redactJson({
      typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession',
      id: 'pro-api-session:123e4567-e89b-12d3-a456-426614174000',
      token: 'demo',
      user: {
        identifier: '021600556514',
        firstName: 'Anna',
        lastName: 'Beta',
        permissions: [{ orgIdentifier: 'R69' }],
      },
      client_secret: 's',
      text: { status: 'generated', div: '<div>Anna Beta</div>' },
      active: true,
      count: 3,
    });
    expect(out).toEqual({
      typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession',
      id: '[redacted:session-key]',
      token: '[redacted:token]',
      user: {
        identifier: '021600556514',
        firstName: '[redacted:name]',
        lastName: '[redacted:name]',
        permissions: [{ orgIdentifier: 'R69' }],
      },
      client_secret: '[redacted:secret]',
      text: { status: 'generated', div: '[redacted:narrative]' },
      active: true,
      count: 3,
    });
  });
});

describe('redactText', () => {
  const cases: Array<[string, string]> = [
    ['Authorization: Bearer abc.DEF-123_x~', 'Authorization: Bearer [redacted:token]'],
    ['Basic YWRtaW46c2VjcmV0', 'Basic [redacted:token]'],
    [
      'id_token eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiI5NDM0NzY1OTE5In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ',
      'id_token [redacted:token]',
    ],
    [
      '/ProfessionalSession/pro-api-session:9b2c1a10-8a43-4f55-9ef0-5e7c4d7b7c11',
      '/ProfessionalSession/[redacted:session-key]',
    ],
    ['key 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', 'key [redacted:secret]'],
    ['apikey=Abc123XyZ789qweRTY456uioPAS0987zxcv', 'apikey=[redacted:secret]'],
    ['NHS number 943 476 5919 and 9434765919.', 'NHS number [redacted:nhs-number] and [redacted:nhs-number].'],
    ['mail jane.doe@nhs.net now', 'mail [redacted:email] now'],
    [
      'call 0113 496 0000, +44 7700 900123 or 01234567890',
      'call [redacted:phone], [redacted:phone] or [redacted:phone]',
    ],
    [
      'id a1b2c3d4-e5f6-0123-4567-89abcdef0123, call 0113 496 0000',
      'id a1b2c3d4-e5f6-0123-4567-89abcdef0123, call [redacted:phone]',
    ],
    ['lives at LS1 2TW', 'lives at [redacted:postcode]'],
    ['seen by Dr Jane Smith today', 'seen by [redacted:name] today'],
  ];
  it.each(cases)('%s', (input, expected) => {
    expect(redactText(input)).toBe(expected);
    expect(redactText(expected)).toBe(expected);
  });

  const kept = [
    '000000070000',
    'ReferralRequest/000000070000/_history/5',
    '0000 0007 0000',
    'PractitionerRole/921600556514.R68.REFERRING-CLINICIAN',
    '123e4567-e89b-12d3-a456-426614174002',
    '123e4567-e89b-12d3-a456-ab1234567890',
    '_baseUrl_/STU3/Task/ed4dff57-503c-46ef-9084-4045a23f4c2a',
    'https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-ClinicalInfoFirstSubmitted-1',
    'SERVICE_PROVIDER_CLINICIAN_ADMIN_AND_MORE_LETTERS',
    '2021-06-11T12:09:08.667Z',
    'W/"5"',
    'att-70000-70001',
    'A005 SERVICE_PROVIDER_CLINICIAN R69',
    '000000070000_Appointment_Confirmation_Summary_20210603121353.pdf',
    'Triage - 2WW',
    // A hyphen, 0 and nine digits inside a UUID (a correlation id here) is not a phone number.
    'a1b2c3d4-e5f6-0123-4567-89abcdef0123.secondary',
  ];
  it.each(kept)('keeps %s', (s) => {
    expect(redactText(s)).toBe(s);
  });
});

describe('redactValue (by path)', () => {
  it('applies the key rules along the path', () => {
    expect(redactValue('entry[0].resource.name[0].family', 'Smith')).toBe('[redacted:name]');
    expect(redactValue('entry[0].resource.name[0].use', 'official')).toBe('official');
    expect(redactValue('entry[0].resource.address[0].line[1]', 'Leeds Road')).toBe('[redacted:address]');
    expect(redactValue('telecom[0].system', 'phone')).toBe('phone');
    expect(redactValue('telecom[0].value', '0113')).toBe('[redacted:telecom]');
    expect(redactValue('birthDate', '1957-03-14')).toBe('[redacted:birth-date]');
    expect(redactValue('subject.display', 'Some One')).toBe('[redacted:name]');
    expect(redactValue('contained[0].parameter[3].name', 'postcode')).toBe('postcode');
    expect(redactValue('entry[0].resource.name', { family: 'X', use: 'usual' })).toEqual({
      family: '[redacted:name]',
      use: 'usual',
    });
  });

  it('applies the text rules elsewhere, and to non-JSON paths', () => {
    expect(redactValue('status', 200)).toBe(200);
    expect(redactValue('entry[0].resource.status', 'active')).toBe('active');
    expect(redactValue('header:location', '/Patient/9434765919')).toBe('/Patient/[redacted:nhs-number]');
    expect(redactValue('body', 'token eyJhbGciOiJIUzI1NiJ9.eyJhIjoxfQ.sig')).toBe('token [redacted:token]');
    expect(redactValue('a..b', 'Bearer x')).toBe('Bearer [redacted:token]');
  });

  it('is idempotent and agrees with redactJson', () => {
    const doc = { entry: [{ resource: patient() }] };
    const whole = redactJson(doc);
    for (const [path, v] of flatten(doc)) {
      const once = redactValue(path, v);
      expect(redactValue(path, once), path).toEqual(once);
      expect(redactValue(path, flatten(whole).get(path)), path).toEqual(flatten(whole).get(path));
    }
  });
});

describe('redactText: the shortcut for a lone UUID', () => {
  // Correlation and transaction ids: the shortcut returns them untouched, which must be what the rules would do.
  const digitHeavy = [
    '00000000-0000-0000-0000-000000000000',
    '07700900-1234-4123-8123-012345678901',
    '94347659-1943-4765-9194-347659194347',
    'ab12cd34-ab12-ab12-ab12-ab12cd34ef56',
    'AB12CD34-AB12-4B12-AB12-AB12CD34EF56',
  ];
  const random = Array.from({ length: 300 }, (_, i) => {
    const u = randomUUID();
    return i % 3 === 0 ? u.toUpperCase() : i % 3 === 1 ? `${u}-${i}` : u;
  });

  it('gives what every rule gives, for random and digit-heavy UUIDs in either case, with or without a suffix', () => {
    for (const u of [...digitHeavy, ...digitHeavy.map((x) => `${x}-1`), ...random]) {
      expect(redactTextByRules(u), u).toBe(u);
      expect(redactText(u), u).toBe(u);
    }
  });

  it('is taken only for a whole UUID: anything around one is redacted by the rules', () => {
    const u = '9b2c1a10-8a43-4f55-9ef0-5e7c4d7b7c11';
    expect(redactText(`${u} 9434765919`)).toBe(`${u} [redacted:nhs-number]`);
    expect(redactText(`9434765919${u}`)).toBe(redactTextByRules(`9434765919${u}`));
    expect(redactText(`pro-api-session:${u}`)).toBe('[redacted:session-key]');
    expect(redactText(`${u}-1234`)).toBe(redactTextByRules(`${u}-1234`));
    expect(redactText(`${u}\n`)).toBe(redactTextByRules(`${u}\n`));
  });
});
