import { describe, expect, it } from 'vitest';
import { ENDPOINTS, type EndpointDef } from '../../src/legacy/endpoints.js';
import { ERS_OUTCOME_PROFILE, LegacyError } from '../../src/legacy/errors.js';
import {
  type ApimRequestInput,
  buildApimRequest,
  correlationIdFor,
  type IncomingHeaders,
  legacyHeader,
} from '../../src/translation/request.js';

function ep(code: string, method?: string): EndpointDef {
  const e = ENDPOINTS.find((x) => x.code === code && (method === undefined || x.method === method));
  if (!e) throw new Error(`no endpoint ${code}`);
  return e;
}

function input(
  endpoint: EndpointDef,
  headers: IncomingHeaders,
  extra: Partial<ApimRequestInput> = {},
): ApimRequestInput {
  const params: Record<string, string> = {};
  for (const m of endpoint.apimPath.matchAll(/\{(\w+)\}/g)) {
    params[m[1]!] = m[1] === 'ubrn' ? '000000070000' : m[1] === 'version' ? '4' : 'id-1';
  }
  return {
    endpoint,
    params,
    query: '',
    headers,
    apimBasePath: '/referrals/FHIR',
    accessToken: 'apim-token-123',
    correlationId: 'corr-1',
    ...extra,
  };
}

/** Runs `fn` and returns the LegacyError it throws (fails the test when it throws nothing or something else). */
function legacyErrorOf(fn: () => unknown): LegacyError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(LegacyError);
    return e as LegacyError;
  }
  throw new Error('expected a LegacyError, nothing was thrown');
}

function lowerNames(h: Record<string, string>): string[] {
  return Object.keys(h).map((k) => k.toLowerCase());
}

/** Headers that must never reach APIM from the client (Node gives incoming header names in lower case). */
const HOSTILE: IncomingHeaders = {
  xapi_asid: '200000000220',
  http_x_session_key: 'pro-api-session:11111111-2222-3333-4444-555555555555',
  xapi_fqdn: 'client.trust.nhs.uk',
  authorization: 'Bearer client-supplied-token',
  'nhsd-end-user-organisation-ods': 'EVIL1',
  nhsd_end_user_organisation_ods: 'EVIL2',
  'nhsd-ers-business-function': 'COMMISSIONER',
  'x-ers-ods-code': 'EVIL3',
  x_ers_user_id: '999999999999',
  cookie: 'JSESSIONID=abc',
  'x-forwarded-for': '10.0.0.1',
  'x-request-id': 'client-request-id',
};
const HOSTILE_NAMES = Object.keys(HOSTILE);
const HOSTILE_VALUES = Object.values(HOSTILE) as string[];

describe('buildApimRequest: header allow-list', () => {
  it('forwards none of the hostile headers; Authorization is the one it builds from accessToken', () => {
    const plan = buildApimRequest(input(ep('A005'), HOSTILE));
    const names = lowerNames(plan.headers);
    for (const h of HOSTILE_NAMES) {
      if (h === 'authorization') continue;
      expect(names, h).not.toContain(h);
    }
    expect(names.filter((n) => n === 'authorization')).toHaveLength(1);
    expect(plan.headers['authorization']).toBe('Bearer apim-token-123');
    for (const v of HOSTILE_VALUES) expect(Object.values(plan.headers).join('\n')).not.toContain(v);
  });

  it('without an access token there is no Authorization at all (the client one is not forwarded)', () => {
    const plan = buildApimRequest(input(ep('A005'), HOSTILE, { accessToken: undefined }));
    expect(lowerNames(plan.headers)).not.toContain('authorization');
  });

  it('drops hostile headers on every endpoint, including those with header renames and bodies', () => {
    for (const e of ENDPOINTS) {
      const headers: IncomingHeaders = {
        ...HOSTILE,
        'x-ers-xapi-comm-rule-org': 'R69',
        'x-ers-xapi-meta-file_name': 'letter.pdf',
        'if-match': 'W/"1"',
        'content-type': e.requestBody === 'file' ? 'application/pdf' : 'application/fhir+json',
      };
      const plan = buildApimRequest(input(e, headers));
      const names = lowerNames(plan.headers);
      for (const h of HOSTILE_NAMES) if (h !== 'authorization') expect(names, `${e.code} ${h}`).not.toContain(h);
      expect(plan.headers['authorization'], e.code).toBe('Bearer apim-token-123');
      // only known names ever appear
      const allowed = new Set([
        'accept',
        'accept-language',
        'user-agent',
        'if-none-match',
        'content-type',
        'content-length',
        'if-match',
        'authorization',
        'x-correlation-id',
        'nhsd-ers-comm-rule-org',
        'nhsd-ers-file-name',
        'nhsd-ers-referral-id',
      ]);
      for (const n of names) expect(allowed.has(n), `${e.code} sent ${n}`).toBe(true);
    }
  });

  it('passes the standard headers accept-language, user-agent and if-none-match', () => {
    const plan = buildApimRequest(
      input(ep('A005'), { 'accept-language': 'en-GB', 'user-agent': 'LegacyPAS/4.2', 'if-none-match': 'W/"3"' }),
    );
    expect(plan.headers['accept-language']).toBe('en-GB');
    expect(plan.headers['user-agent']).toBe('LegacyPAS/4.2');
    expect(plan.headers['if-none-match']).toBe('W/"3"');
  });

  it('always sends the correlation id it was given', () => {
    const plan = buildApimRequest(
      input(ep('A005'), { 'x-correlation-id': 'client-one' }, { correlationId: 'chosen-id' }),
    );
    expect(plan.headers['x-correlation-id']).toBe('chosen-id');
  });

  it('user context headers only when `user` is given, with the session values (never the client values)', () => {
    const without = buildApimRequest(input(ep('A005'), HOSTILE));
    expect(lowerNames(without.headers).filter((n) => n.startsWith('nhsd-'))).toEqual([]);

    const withUser = buildApimRequest(
      input(ep('A005'), HOSTILE, { user: { odsCode: 'R69', businessFunction: 'SERVICE_PROVIDER_CLINICIAN' } }),
    );
    expect(withUser.headers['NHSD-End-User-Organisation-ODS']).toBe('R69');
    expect(withUser.headers['NHSD-eRS-Business-Function']).toBe('SERVICE_PROVIDER_CLINICIAN');
    expect(lowerNames(withUser.headers)).not.toContain('nhsd-ers-on-behalf-of-user-id');
    expect(lowerNames(withUser.headers).filter((n) => n === 'nhsd-end-user-organisation-ods')).toHaveLength(1);

    const obo = buildApimRequest(
      input(
        ep('A005'),
        {},
        {
          user: {
            odsCode: 'R69',
            businessFunction: 'SERVICE_PROVIDER_CLINICIAN_ADMIN',
            onBehalfOfUserId: '555000000002',
          },
        },
      ),
    );
    expect(obo.headers['NHSD-eRS-On-Behalf-Of-User-ID']).toBe('555000000002');
  });
});

describe('buildApimRequest: method, path and query', () => {
  it('builds base path + APIM path + query', () => {
    const plan = buildApimRequest(input(ep('A005'), {}, { query: '_format=json&x=%2F' }));
    expect(plan.method).toBe('GET');
    expect(plan.path).toBe('/referrals/FHIR/STU3/ReferralRequest/000000070000?_format=json&x=%2F');
  });

  it('no ? when the query is empty', () => {
    expect(buildApimRequest(input(ep('A029'), {})).path).toBe('/referrals/FHIR/STU3/Task');
  });

  it('A022 goes to the lower-case c operation', () => {
    const plan = buildApimRequest(input(ep('A022'), { 'if-match': 'W/"2"' }));
    expect(plan.method).toBe('POST');
    expect(plan.path).toBe('/referrals/FHIR/STU3/ReferralRequest/000000070000/$ers.cancelAppointmentActionLater');
  });
});

describe('buildApimRequest: header renames', () => {
  it('A015: X-ERS-XAPI-COMM-RULE-ORG → NHSD-eRS-Comm-Rule-Org (hyphen spelling)', () => {
    const plan = buildApimRequest(input(ep('A015'), { 'x-ers-xapi-comm-rule-org': 'R69' }));
    expect(plan.headers['NHSD-eRS-Comm-Rule-Org']).toBe('R69');
    expect(lowerNames(plan.headers)).not.toContain('x-ers-xapi-comm-rule-org');
  });

  it('A015: underscore spelling is accepted too', () => {
    const plan = buildApimRequest(input(ep('A015'), { x_ers_xapi_comm_rule_org: 'RXX' }));
    expect(plan.headers['NHSD-eRS-Comm-Rule-Org']).toBe('RXX');
    expect(lowerNames(plan.headers)).not.toContain('x_ers_xapi_comm_rule_org');
  });

  it('A015: both spellings with the same value are fine; with different values → 400', () => {
    const same = buildApimRequest(
      input(ep('A015'), { 'x-ers-xapi-comm-rule-org': 'R69', x_ers_xapi_comm_rule_org: 'R69' }),
    );
    expect(same.headers['NHSD-eRS-Comm-Rule-Org']).toBe('R69');
    const err = legacyErrorOf(() =>
      buildApimRequest(input(ep('A015'), { 'x-ers-xapi-comm-rule-org': 'R69', x_ers_xapi_comm_rule_org: 'R70' })),
    );
    expect(err.status).toBe(400);
    expect(err.reason).toBe('BAD_HEADER');
    expect(err.diagnostics).toContain('X-ERS-XAPI-COMM-RULE-ORG');
    expect(err.diagnostics).toMatch(/send it once/);
  });

  it('A015: a repeated header with different values (array) → 400', () => {
    const err = legacyErrorOf(() =>
      buildApimRequest(input(ep('A015'), { 'x-ers-xapi-comm-rule-org': ['R69', 'R70'] })),
    );
    expect(err.status).toBe(400);
  });

  it('A015: required → 422 MISSING_HEADER when missing, empty or blank', () => {
    for (const headers of [{}, { 'x-ers-xapi-comm-rule-org': '' }, { 'x-ers-xapi-comm-rule-org': '   ' }]) {
      const err = legacyErrorOf(() => buildApimRequest(input(ep('A015'), headers)));
      expect(err.status).toBe(422);
      expect(err.reason).toBe('MISSING_HEADER');
      expect(err.diagnostics).toContain('A015');
      expect(err.diagnostics).toContain('X-ERS-XAPI-COMM-RULE-ORG');
    }
  });

  it('A015: an over-long value → 400', () => {
    const err = legacyErrorOf(() =>
      buildApimRequest(input(ep('A015'), { 'x-ers-xapi-comm-rule-org': 'R'.repeat(1025) })),
    );
    expect(err.status).toBe(400);
    expect(err.reason).toBe('BAD_HEADER');
  });

  it('A020: FILE_NAME → NHSD-eRS-File-Name and INTENDED_UBRN → NHSD-eRS-Referral-ID (legacy spelling)', () => {
    const plan = buildApimRequest(
      input(ep('A020'), {
        'content-type': 'application/pdf',
        'x-ers-xapi-meta-file_name': 'letter.pdf',
        'x-ers-xapi-meta-intended_ubrn': '000000070000',
      }),
    );
    expect(plan.headers['NHSD-eRS-File-Name']).toBe('letter.pdf');
    expect(plan.headers['NHSD-eRS-Referral-ID']).toBe('000000070000');
    expect(plan.path).toBe('/referrals/FHIR/STU3/Binary');
    const names = lowerNames(plan.headers);
    expect(names).not.toContain('x-ers-xapi-meta-file_name');
    expect(names).not.toContain('x-ers-xapi-meta-intended_ubrn');
  });

  it('A020: all-hyphen spelling is accepted', () => {
    const plan = buildApimRequest(
      input(ep('A020'), {
        'content-type': 'application/pdf',
        'x-ers-xapi-meta-file-name': 'scan.png',
        'x-ers-xapi-meta-intended-ubrn': '000000070001',
      }),
    );
    expect(plan.headers['NHSD-eRS-File-Name']).toBe('scan.png');
    expect(plan.headers['NHSD-eRS-Referral-ID']).toBe('000000070001');
  });

  it('A020: the two FILE_NAME spellings with different values → 400', () => {
    const err = legacyErrorOf(() =>
      buildApimRequest(
        input(ep('A020'), {
          'content-type': 'application/pdf',
          'x-ers-xapi-meta-file_name': 'a.pdf',
          'x-ers-xapi-meta-file-name': 'b.pdf',
        }),
      ),
    );
    expect(err.status).toBe(400);
    expect(err.diagnostics).toContain('X-ERS-XAPI-META-FILE_NAME');
  });

  it('A020: INTENDED_UBRN is optional, FILE_NAME is required (422)', () => {
    const plan = buildApimRequest(
      input(ep('A020'), { 'content-type': 'application/pdf', 'x-ers-xapi-meta-file_name': 'a.pdf' }),
    );
    expect(lowerNames(plan.headers)).not.toContain('nhsd-ers-referral-id');
    const err = legacyErrorOf(() => buildApimRequest(input(ep('A020'), { 'content-type': 'application/pdf' })));
    expect(err.status).toBe(422);
    expect(err.reason).toBe('MISSING_HEADER');
    expect(err.diagnostics).toContain('X-ERS-XAPI-META-FILE_NAME');
  });

  it('renames apply only to their own endpoint', () => {
    const plan = buildApimRequest(
      input(ep('A005'), { 'x-ers-xapi-comm-rule-org': 'R69', 'x-ers-xapi-meta-file_name': 'a.pdf' }),
    );
    const names = lowerNames(plan.headers);
    expect(names).not.toContain('nhsd-ers-comm-rule-org');
    expect(names).not.toContain('nhsd-ers-file-name');
  });
});

describe('buildApimRequest: If-Match', () => {
  it('W/"5" is forwarded as is', () => {
    expect(buildApimRequest(input(ep('A013'), { 'if-match': 'W/"5"' })).headers['if-match']).toBe('W/"5"');
  });

  it('surrounding blanks are trimmed', () => {
    expect(buildApimRequest(input(ep('A013'), { 'if-match': '  W/"12" ' })).headers['if-match']).toBe('W/"12"');
  });

  it.each(['"5"', 'W/5', 'W/"abc"', 'W/""', 'w/"5"', '*', 'W/"5", W/"6"', 'W/"5"x', 'W/"12345678901"'])(
    'If-Match %s → 400 BAD_HEADER with a hint',
    (v) => {
      const err = legacyErrorOf(() => buildApimRequest(input(ep('A013'), { 'if-match': v })));
      expect(err.status).toBe(400);
      expect(err.reason).toBe('BAD_HEADER');
      expect(err.diagnostics).toContain('W/"5"');
    },
  );

  it('a malformed If-Match is refused even where it is optional', () => {
    const err = legacyErrorOf(() => buildApimRequest(input(ep('A005'), { 'if-match': '"5"' })));
    expect(err.status).toBe(400);
  });

  it.each(['A013', 'A012'])('missing on %s → 422 MISSING_HEADER saying to read the resource first', (code) => {
    const err = legacyErrorOf(() => buildApimRequest(input(ep(code), {})));
    expect(err.status).toBe(422);
    expect(err.reason).toBe('MISSING_HEADER');
    expect(err.diagnostics).toContain(code);
    expect(err.diagnostics).toContain('If-Match');
    expect(err.diagnostics).toMatch(/read the resource first/);
  });

  it('every endpoint that requires If-Match refuses a call without it; the others do not', () => {
    for (const e of ENDPOINTS) {
      const headers: IncomingHeaders = {
        'x-ers-xapi-comm-rule-org': 'R69',
        'x-ers-xapi-meta-file_name': 'a.pdf',
        'content-type': e.requestBody === 'file' ? 'application/pdf' : 'application/fhir+json',
      };
      if (e.requiresIfMatch) {
        expect(legacyErrorOf(() => buildApimRequest(input(e, headers))).status, e.code).toBe(422);
      } else {
        expect(() => buildApimRequest(input(e, headers)), e.code).not.toThrow();
      }
    }
  });
});

describe('buildApimRequest: content types and accept', () => {
  it.each([
    'application/json',
    'application/json+fhir',
    'application/fhir+json',
    'application/fhir+json; charset=utf-8',
    'Application/JSON',
  ])('%s on a FHIR-body endpoint → application/fhir+json', (ct) => {
    const plan = buildApimRequest(input(ep('A008'), { 'content-type': ct }));
    expect(plan.headers['content-type']).toBe('application/fhir+json');
  });

  it('a FHIR-body endpoint without Content-Type gets application/fhir+json', () => {
    expect(buildApimRequest(input(ep('A008'), {})).headers['content-type']).toBe('application/fhir+json');
  });

  it.each(['text/xml', 'application/xml', 'application/fhir+xml', 'text/plain', 'multipart/form-data; boundary=x'])(
    '%s on a FHIR-body endpoint → 415',
    (ct) => {
      const err = legacyErrorOf(() => buildApimRequest(input(ep('A008'), { 'content-type': ct })));
      expect(err.status).toBe(415);
      expect(err.reason).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(err.diagnostics).toContain('application/fhir+json');
    },
  );

  it.each(['application/pdf', 'image/png', 'text/xml', 'application/octet-stream; name="x.bin"'])(
    'file uploads keep their type: %s',
    (ct) => {
      const plan = buildApimRequest(input(ep('A020'), { 'content-type': ct, 'x-ers-xapi-meta-file_name': 'x' }));
      expect(plan.headers['content-type']).toBe(ct);
    },
  );

  it('a file upload without Content-Type → 422', () => {
    const err = legacyErrorOf(() => buildApimRequest(input(ep('A020'), { 'x-ers-xapi-meta-file_name': 'x' })));
    expect(err.status).toBe(422);
    expect(err.diagnostics).toContain('Content-Type');
  });

  it('no content-type or content-length on body-less endpoints', () => {
    const plan = buildApimRequest(
      input(ep('A005'), { 'content-type': 'text/xml', 'content-length': '5' }, { bodyLength: 5 }),
    );
    expect(lowerNames(plan.headers)).not.toContain('content-type');
    expect(lowerNames(plan.headers)).not.toContain('content-length');
  });

  it('content-length is the given bodyLength (not the client one) on body endpoints', () => {
    const plan = buildApimRequest(input(ep('A008'), { 'content-length': '999' }, { bodyLength: 42 }));
    expect(plan.headers['content-length']).toBe('42');
    const none = buildApimRequest(input(ep('A008'), { 'content-length': '999' }));
    expect(lowerNames(none.headers)).not.toContain('content-length');
  });

  it('accept is application/fhir+json for FHIR answers, whatever the client asked', () => {
    expect(buildApimRequest(input(ep('A005'), { accept: 'application/json' })).headers['accept']).toBe(
      'application/fhir+json',
    );
  });

  it('accept is passed for file answers, defaulting to */*', () => {
    expect(buildApimRequest(input(ep('A006'), { accept: 'application/pdf' })).headers['accept']).toBe(
      'application/pdf',
    );
    expect(buildApimRequest(input(ep('A006'), {})).headers['accept']).toBe('*/*');
  });
});

describe('legacyHeader', () => {
  it('reads hyphen and underscore spellings, returns undefined when absent', () => {
    expect(legacyHeader({ xapi_asid: '1' }, 'XAPI_ASID')).toBe('1');
    expect(legacyHeader({ 'xapi-asid': '2' }, 'XAPI_ASID')).toBe('2');
    expect(legacyHeader({}, 'XAPI_ASID')).toBeUndefined();
  });

  it('refuses different values in the two spellings', () => {
    const err = legacyErrorOf(() => legacyHeader({ xapi_asid: '1', 'xapi-asid': '2' }, 'XAPI_ASID'));
    expect(err.status).toBe(400);
    expect(err.diagnostics).toContain('XAPI_ASID');
  });
});

describe('correlationIdFor', () => {
  const gen = () => 'generated-uuid';

  it('generates one when absent or empty', () => {
    expect(correlationIdFor({}, gen)).toBe('generated-uuid');
    expect(correlationIdFor({ 'x-correlation-id': '' }, gen)).toBe('generated-uuid');
  });

  it.each(['abc', '3f2504e0-4f89-11d3-9a0c-0305e82c3301', 'a.b_c:d@e-f', 'x'.repeat(128)])(
    'keeps a good one: %s',
    (v) => {
      expect(correlationIdFor({ 'x-correlation-id': v }, gen)).toBe(v);
    },
  );

  it('accepts the underscore spelling too', () => {
    expect(correlationIdFor({ x_correlation_id: 'abc-1' }, gen)).toBe('abc-1');
  });

  it.each([
    ['a space', 'has space'],
    ['200 chars', 'x'.repeat(200)],
    ['129 chars', 'x'.repeat(129)],
    ['a CR', 'abc\rdef'],
    ['a LF', 'abc\ndef'],
    ['a slash', 'a/b'],
    ['a quote', 'a"b'],
    ['non-ASCII', 'café'],
  ])('refuses one with %s (400, says what to send)', (_, v) => {
    let called = false;
    const err = legacyErrorOf(() =>
      correlationIdFor({ 'x-correlation-id': v }, () => {
        called = true;
        return 'x';
      }),
    );
    expect(called).toBe(false);
    expect(err.status).toBe(400);
    expect(err.reason).toBe('BAD_HEADER');
    expect(err.diagnostics).toContain('X-Correlation-ID');
    expect(err.diagnostics).toMatch(/send a UUID or leave it out/);
  });
});

describe('LegacyError fields', () => {
  it('carries status, reason, diagnostics and renders an eRS OperationOutcome', () => {
    const err = legacyErrorOf(() => buildApimRequest(input(ep('A015'), {})));
    expect(err.name).toBe('LegacyError');
    expect(err.message).toContain('MISSING_HEADER');
    expect(err.diagnostics.length).toBeGreaterThan(20);
    const oo = err.toOutcome();
    expect(oo.resourceType).toBe('OperationOutcome');
    expect(oo.meta.profile).toEqual([ERS_OUTCOME_PROFILE]);
    expect(oo.issue).toHaveLength(1);
    expect(oo.issue[0]!.diagnostics).toBe(err.diagnostics);
    const codes = oo.issue[0]!.details.coding.map((c) => c.code);
    expect(codes).toContain('MISSING_PARAMETER');
    expect(codes).toContain('MISSING_HEADER');
  });
});
