import { describe, expect, it } from 'vitest';
import { LegacyError } from '../../../src/legacy/errors.js';
import {
  a032Answer,
  ERS_SERVICE_SYSTEM,
  NHS_NUMBER_SYSTEM,
  referralFacts,
  TRIAGE_PROFILES,
  type TriageCode,
  triageDeferral,
  triageRequestFor,
} from '../../../src/translation/triage.js';

const SERVICE = 'http://fhir.nhs.net/Id/ers-service';
const NHS = 'http://fhir.nhs.net/Id/nhs-number';
const SD = 'https://fhir.nhs.uk/STU3/StructureDefinition';

const shortlistOf = (entry: unknown[]) => ({ name: 'shortlist', resource: { resourceType: 'List', entry } });
const serviceEntry = (value: unknown, system: unknown = SERVICE) => ({ item: { identifier: { system, value } } });
const patientOf = (value: unknown, system: unknown = NHS) => ({ name: 'patient', valueIdentifier: { system, value } });
const bodyWith = (parameter: unknown[], extra: Record<string, unknown> = {}) => ({
  resourceType: 'Parameters',
  ...extra,
  parameter,
});

/** The LegacyError a call throws (fails the test when it throws anything else, or nothing). */
function refusal(code: TriageCode, body: unknown): LegacyError {
  try {
    triageRequestFor(code, body);
  } catch (e) {
    expect(e).toBeInstanceOf(LegacyError);
    return e as LegacyError;
  }
  throw new Error('expected a refusal');
}

const diagnostics = (code: TriageCode, what: string) =>
  `${code} sends a referral to one triage service, so ${what}. Nothing was sent to e-RS. (NHS withdrew ${code} in March 2025; ers-bridge makes it as ${code === 'A021' ? 'A011' : 'A031'} then A016, and checks the body first so that it never does half.)`;

const NOT_PARAMETERS = 'its body must be a FHIR Parameters resource with a parameter list';
const NOT_ONE_ENTRY = 'its shortlist parameter must be a List with exactly one entry, the triage service';
const NOT_SERVICE = `its shortlist entry must identify the service by ${SERVICE}`;
const BAD_ID = 'its shortlisted service id must be letters, digits and hyphens';

describe('the constants', () => {
  it('name the STU3 profiles and the identifier systems exactly', () => {
    expect(TRIAGE_PROFILES).toStrictEqual({
      A021: `${SD}/eRS-CreateReferralAndSendForTriage-Parameters-1`,
      A011: `${SD}/eRS-CreateReferral-Parameters-1`,
      A032: `${SD}/eRS-ChangeShortlistAndSendForTriage-Request-Parameters-1`,
      A031: `${SD}/eRS-ChangeShortlist-Parameters-1`,
      A032Answer: `${SD}/eRS-ChangeShortlistAndSendForTriage-Response-Parameters-1`,
    });
    expect(ERS_SERVICE_SYSTEM).toBe(SERVICE);
    expect(NHS_NUMBER_SYSTEM).toBe(NHS);
  });
});

describe('triageRequestFor: what it accepts', () => {
  it('A021: the body with A011 profile, the service id and the patient', () => {
    const body = bodyWith([shortlistOf([serviceEntry('svc-1')]), patientOf('9912003888')], {
      meta: { profile: [TRIAGE_PROFILES.A021], versionId: '1' },
      id: 'x',
    });
    const before = structuredClone(body);
    expect(triageRequestFor('A021', body)).toStrictEqual({
      firstBody: {
        resourceType: 'Parameters',
        meta: { profile: [`${SD}/eRS-CreateReferral-Parameters-1`], versionId: '1' },
        id: 'x',
        parameter: body.parameter,
      },
      serviceId: 'svc-1',
      nhsNumber: '9912003888',
    });
    expect(body).toStrictEqual(before);
  });

  it('A032: the body with A031 profile; no patient gives no nhsNumber key', () => {
    const body = bodyWith([shortlistOf([serviceEntry('50001')])]);
    const out = triageRequestFor('A032', body);
    expect(out).toStrictEqual({
      firstBody: {
        resourceType: 'Parameters',
        meta: { profile: [`${SD}/eRS-ChangeShortlist-Parameters-1`] },
        parameter: body.parameter,
      },
      serviceId: '50001',
    });
    expect(Object.keys(out)).toEqual(['firstBody', 'serviceId']);
  });

  it.each([
    ['a string', 'abc'],
    ['an array', ['a']],
    ['null', null],
    ['a number', 7],
  ])('meta that is %s is replaced by one holding only the profile', (_, meta) => {
    const out = triageRequestFor('A021', bodyWith([shortlistOf([serviceEntry('s')])], { meta }));
    expect(out.firstBody['meta']).toStrictEqual({ profile: [TRIAGE_PROFILES.A011] });
  });

  it('skips parameters that are not objects, or are named otherwise, to find shortlist and patient', () => {
    const body = bodyWith([
      null,
      'shortlist',
      ['shortlist'],
      7,
      { name: 'other', resource: { entry: [] } },
      { name: 'patientX', valueIdentifier: { system: NHS, value: '1' } },
      shortlistOf([serviceEntry('svc-2')]),
      patientOf('9434765919'),
    ]);
    expect(triageRequestFor('A021', body)).toMatchObject({ serviceId: 'svc-2', nhsNumber: '9434765919' });
  });

  it('takes the first shortlist and the first patient', () => {
    const body = bodyWith([
      shortlistOf([serviceEntry('first')]),
      shortlistOf([serviceEntry('second')]),
      patientOf('1111111111'),
      patientOf('2222222222'),
    ]);
    expect(triageRequestFor('A021', body)).toMatchObject({ serviceId: 'first', nhsNumber: '1111111111' });
  });

  it.each([
    ['a', 'a'],
    ['Z', 'Z'],
    ['0', '0'],
    ['9', '9'],
    ['-', '-'],
    ['64 characters', 'aZ09-'.repeat(12) + 'abcd'],
    ['every class', 'ABCxyz019-'],
  ])('accepts the service id %s', (_, id) => {
    expect(triageRequestFor('A032', bodyWith([shortlistOf([serviceEntry(id)])])).serviceId).toBe(id);
  });

  it.each([
    ['no patient parameter', []],
    ['a patient without valueIdentifier', [{ name: 'patient' }]],
    ['a patient with another system', [patientOf('9912003888', 'http://example.org/id')]],
    ['a patient with no system', [{ name: 'patient', valueIdentifier: { value: '9912003888' } }]],
    ['a patient with a numeric value', [patientOf(9912003888)]],
    ['a patient with no value', [{ name: 'patient', valueIdentifier: { system: NHS } }]],
  ])('%s: no nhsNumber', (_, extra) => {
    const out = triageRequestFor('A021', bodyWith([shortlistOf([serviceEntry('s1')]), ...extra]));
    expect(out.serviceId).toBe('s1');
    expect('nhsNumber' in out).toBe(false);
  });

  it('an empty NHS number string is still given (it is a string of the system)', () => {
    const out = triageRequestFor('A021', bodyWith([shortlistOf([serviceEntry('s1')]), patientOf('')]));
    expect(out.nhsNumber).toBe('');
    expect('nhsNumber' in out).toBe(true);
  });
});

describe('triageRequestFor: what it refuses, before anything is sent', () => {
  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a string', 'Parameters'],
    ['an array', [{ resourceType: 'Parameters', parameter: [] }]],
    ['another resource type', { resourceType: 'Bundle', parameter: [shortlistOf([serviceEntry('s')])] }],
    ['no resource type', { parameter: [shortlistOf([serviceEntry('s')])] }],
    ['no parameter list', { resourceType: 'Parameters' }],
    ['a parameter object, not a list', { resourceType: 'Parameters', parameter: shortlistOf([serviceEntry('s')]) }],
    ['a parameter string', { resourceType: 'Parameters', parameter: 'shortlist' }],
  ])('not Parameters with a list (%s)', (_, body) => {
    for (const code of ['A021', 'A032'] as const) {
      const e = refusal(code, body);
      expect(e.reason).toBe('BODY_INVALID_FIELD');
      expect(e.diagnostics).toBe(diagnostics(code, NOT_PARAMETERS));
    }
  });

  it('the diagnostics name the code and its successor exactly', () => {
    expect(refusal('A021', null).diagnostics).toBe(
      'A021 sends a referral to one triage service, so its body must be a FHIR Parameters resource with a parameter list. Nothing was sent to e-RS. (NHS withdrew A021 in March 2025; ers-bridge makes it as A011 then A016, and checks the body first so that it never does half.)',
    );
    expect(refusal('A032', null).diagnostics).toBe(
      'A032 sends a referral to one triage service, so its body must be a FHIR Parameters resource with a parameter list. Nothing was sent to e-RS. (NHS withdrew A032 in March 2025; ers-bridge makes it as A031 then A016, and checks the body first so that it never does half.)',
    );
    expect(refusal('A021', null).status).toBe(422);
  });

  it.each([
    ['no shortlist', []],
    ['a shortlist with no resource', [{ name: 'shortlist' }]],
    ['a shortlist resource that is a string', [{ name: 'shortlist', resource: 'List' }]],
    ['a shortlist resource that is null', [{ name: 'shortlist', resource: null }]],
    [
      'a shortlist resource that is an array with entry',
      [{ name: 'shortlist', resource: Object.assign([], { entry: [serviceEntry('s')] }) }],
    ],
    ['a List with no entry', [{ name: 'shortlist', resource: { resourceType: 'List' } }]],
    ['a List whose entry is a string', [{ name: 'shortlist', resource: { entry: 'x' } }]],
    ['a List whose entry is an object', [{ name: 'shortlist', resource: { entry: { length: 1, 0: {} } } }]],
    ['no entries', [shortlistOf([])]],
    ['two entries', [shortlistOf([serviceEntry('a'), serviceEntry('b')])]],
    ['a shortlist that is not an object, then nothing', ['shortlist', null]],
  ])('not exactly one shortlisted entry (%s)', (_, parameter) => {
    const e = refusal('A021', bodyWith(parameter));
    expect(e.diagnostics).toBe(diagnostics('A021', NOT_ONE_ENTRY));
  });

  it.each([
    ['a null entry', null],
    ['an entry with no item', {}],
    ['an item with no identifier', { item: {} }],
    ['an identifier with no system', { item: { identifier: { value: 's' } } }],
    ['another system', serviceEntry('s', 'http://fhir.nhs.net/Id/ers-service-x')],
    ['the NHS number system', serviceEntry('s', NHS)],
    ['no value', { item: { identifier: { system: SERVICE } } }],
    ['a numeric value', serviceEntry(50001)],
    ['an empty value', serviceEntry('')],
  ])('an entry that does not name an e-RS service (%s)', (_, entry) => {
    const e = refusal('A032', bodyWith([shortlistOf([entry])]));
    expect(e.diagnostics).toBe(diagnostics('A032', NOT_SERVICE));
  });

  it.each([
    ['65 characters', 'a'.repeat(65)],
    ['a space', 'svc 1'],
    ['a bad first character', '!svc'],
    ['a bad last character', 'svc!'],
    ['an underscore', 'svc_1'],
    ['a slash', '../x'],
    ['a non-ASCII letter', 'sérvice'],
    ['a newline at the end', 'svc\n'],
  ])('a service id with %s', (_, id) => {
    const e = refusal('A021', bodyWith([shortlistOf([serviceEntry(id)])]));
    expect(e.diagnostics).toBe(diagnostics('A021', BAD_ID));
  });
});

describe('referralFacts', () => {
  const referral = (extra: Record<string, unknown> = {}) => ({
    resourceType: 'ReferralRequest',
    id: '000000070000',
    meta: { versionId: '5' },
    ...extra,
  });

  it('UBRN, version from meta, and the patient', () => {
    const body = referral({ subject: { identifier: { system: NHS, value: '9912003888' } } });
    expect(referralFacts(body, undefined)).toStrictEqual({
      ubrn: '000000070000',
      version: '5',
      nhsNumber: '9912003888',
    });
  });

  it('without a patient: no nhsNumber key', () => {
    const out = referralFacts(referral(), undefined);
    expect(out).toStrictEqual({ ubrn: '000000070000', version: '5' });
    expect(Object.keys(out!)).toEqual(['ubrn', 'version']);
  });

  it.each([
    ['no subject', {}],
    ['a subject with no identifier', { subject: {} }],
    ['a subject reference only', { subject: { reference: 'Patient/1' } }],
    ['another system', { subject: { identifier: { system: 'http://x', value: '9912003888' } } }],
    ['a numeric value', { subject: { identifier: { system: NHS, value: 9912003888 } } }],
    ['no value', { subject: { identifier: { system: NHS } } }],
  ])('%s: no nhsNumber', (_, extra) => {
    const out = referralFacts(referral(extra), undefined);
    expect(out).toStrictEqual({ ubrn: '000000070000', version: '5' });
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['an array', [referral()]],
    ['a string', 'ReferralRequest'],
    ['another resource', { ...referral(), resourceType: 'Appointment' }],
    ['no resource type', { id: '000000070000', meta: { versionId: '5' } }],
  ])('not a ReferralRequest (%s): undefined', (_, body) => {
    expect(referralFacts(body, 'W/"5"')).toBeUndefined();
  });

  it.each([
    ['11 digits', '00000007000'],
    ['13 digits', '0000000700001'],
    ['a letter first', 'a00000070000'],
    ['a letter last', '00000007000a'],
    ['a letter in 12', '00000007a000'],
    ['a leading space', ' 000000070000'],
    ['a newline after', '000000070000\n'],
    ['empty', ''],
  ])('a UBRN with %s: undefined', (_, id) => {
    expect(referralFacts(referral({ id }), 'W/"5"')).toBeUndefined();
  });

  it('a numeric id is no UBRN', () => {
    expect(referralFacts(referral({ id: 123456789012 }), 'W/"5"')).toBeUndefined();
  });

  it('no id: undefined', () => {
    const { id: _, ...body } = referral();
    expect(referralFacts(body, 'W/"5"')).toBeUndefined();
  });

  it.each([
    ['1', '1'],
    ['10 digits', '1234567890'],
  ])('a meta version of %s', (_, versionId) => {
    expect(referralFacts(referral({ meta: { versionId } }), 'W/"99"')?.version).toBe(versionId);
  });

  it.each([
    ['11 digits', '12345678901'],
    ['letters', 'abc'],
    ['a letter first', 'a5'],
    ['a letter last', '5a'],
    ['empty', ''],
    ['a number', 5],
  ])('a meta version with %s falls back to the ETag', (_, versionId) => {
    expect(referralFacts(referral({ meta: { versionId } }), 'W/"8"')?.version).toBe('8');
    expect(referralFacts(referral({ meta: { versionId } }), undefined)).toBeUndefined();
  });

  it.each([
    ['no meta', undefined],
    ['meta a string', '5'],
    ['meta an array', ['5']],
    ['meta null', null],
    ['meta with no versionId', {}],
  ])('%s: the ETag version', (_, meta) => {
    expect(referralFacts(referral({ meta }), 'W/"9"')).toStrictEqual({ ubrn: '000000070000', version: '9' });
    expect(referralFacts(referral({ meta }), undefined)).toBeUndefined();
  });

  it.each([
    ['W/"1"', '1'],
    ['W/"1234567890"', '1234567890'],
    ['  W/"12"  ', '12'],
    ['\tW/"3"\n', '3'],
  ])('the ETag %j gives version %s', (etag, version) => {
    expect(referralFacts(referral({ meta: {} }), etag)?.version).toBe(version);
  });

  it.each([
    '',
    '"5"',
    'W/5',
    'W/""',
    'W/"12345678901"',
    'W/"5a"',
    'W/"a5"',
    'xW/"5"',
    'W/"5"x',
    'w/"5"',
    'W/"5',
    'W/5"',
    'W\\"5"',
  ])('the ETag %j gives no version', (etag) => {
    expect(referralFacts(referral({ meta: {} }), etag)).toBeUndefined();
  });

  it('the meta version wins over the ETag', () => {
    expect(referralFacts(referral({ meta: { versionId: '4' } }), 'W/"7"')?.version).toBe('4');
  });
});

describe('triageDeferral', () => {
  const facts = { ubrn: '000000070000', version: '6' };
  const base = {
    id: 'appointment',
    meta: {
      profile: [
        'https://fhir.nhs.uk/STU3/StructureDefinition/eRS-Appointment-1',
        'https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Appointment-1',
      ],
    },
    language: 'en',
    resourceType: 'Appointment',
    status: 'proposed',
    reason: [{ coding: [{ system: 'https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewReason-1', code: 'TRIAGE' }] }],
    description: 'e-Referral Appointment',
    incomingReferral: [{ reference: 'ReferralRequest/000000070000/_history/6' }],
  };
  const service = { actor: { identifier: { system: SERVICE, value: '50001' } }, status: 'accepted' };

  it('with a patient: the service, then the patient', () => {
    expect(triageDeferral(facts, '50001', '9912003888')).toStrictEqual({
      ...base,
      participant: [service, { actor: { identifier: { system: NHS, value: '9912003888' } }, status: 'accepted' }],
    });
  });

  it('without a patient: the service alone', () => {
    expect(triageDeferral(facts, '50001', undefined)).toStrictEqual({ ...base, participant: [service] });
  });

  it('an empty NHS number is still a participant', () => {
    expect((triageDeferral(facts, '50001', '') as { participant: unknown[] }).participant).toStrictEqual([
      service,
      { actor: { identifier: { system: NHS, value: '' } }, status: 'accepted' },
    ]);
  });

  it('the reference names the UBRN and version given', () => {
    expect(triageDeferral({ ubrn: '123456789012', version: '42' }, 's', undefined)['incomingReferral']).toStrictEqual([
      { reference: 'ReferralRequest/123456789012/_history/42' },
    ]);
  });
});

describe('a032Answer', () => {
  it('Parameters of the updated referral and the created appointment', () => {
    const referral = { resourceType: 'ReferralRequest', id: '000000070000' };
    const appointment = { resourceType: 'Appointment', id: 'a1' };
    expect(a032Answer(referral, appointment)).toStrictEqual({
      meta: { profile: [`${SD}/eRS-ChangeShortlistAndSendForTriage-Response-Parameters-1`] },
      resourceType: 'Parameters',
      parameter: [
        { name: 'updatedReferralRequest', resource: referral },
        { name: 'createdAppointment', resource: appointment },
      ],
    });
  });
});
