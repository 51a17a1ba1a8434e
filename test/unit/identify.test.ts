import { describe, expect, it } from 'vitest';
import {
  DSTU2_REPLACEMENTS,
  ENDPOINTS,
  type EndpointDef,
  PARAM_DESCRIPTIONS,
  PARAM_PATTERNS,
} from '../../src/legacy/endpoints.js';
import { apimPathFor, decodePathSegments, type Identified, identify, isHttpMethod } from '../../src/legacy/identify.js';
import { prng } from './support.js';

/** One valid sample value per path parameter. Every parameter of PARAM_PATTERNS must have one. */
const SAMPLES: Record<string, string> = {
  ubrn: '000000070000',
  version: '3',
  codeSystemType: 'SPECIALTY',
  attachmentLogicalID: 'att-70000-70001',
  appointmentId: 'appt-70000-1',
  serviceId: 'svc-4711',
  binaryId: '6a1c1f2e-0b2d-4c3e-9f00-123456789abc',
};

function fill(pattern: string, values: Record<string, string> = SAMPLES): string {
  return pattern.replace(/\{(\w+)\}/g, (_, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`no sample for {${name}}`);
    return v;
  });
}

/** The APIM path a legacy path should become, derived independently of `apimPath` in the table. */
function expectedApimPattern(e: EndpointDef): string {
  let p = e.legacyPath.replace(/^\/STU3\/v1\//, '/STU3/').replace(/^\/R4\/v1\//, '/R4/');
  // A022: legacy capital C, APIM lower-case c.
  p = p.replace('$ers.CancelAppointmentActionLater', '$ers.cancelAppointmentActionLater');
  return p;
}

function asEndpoint(id: Identified): Extract<Identified, { kind: 'endpoint' }> {
  if (id.kind !== 'endpoint') throw new Error(`expected kind endpoint, got ${JSON.stringify(id)}`);
  return id;
}

describe('sample parameter values', () => {
  it('cover every parameter of PARAM_PATTERNS and match its pattern', () => {
    expect(Object.keys(PARAM_PATTERNS).sort()).toEqual(Object.keys(SAMPLES).sort());
    for (const [name, re] of Object.entries(PARAM_PATTERNS)) {
      expect(re.test(SAMPLES[name]!), `${name}=${SAMPLES[name]}`).toBe(true);
      expect(PARAM_DESCRIPTIONS[name], `description for ${name}`).toBeTruthy();
    }
  });
});

describe('identify: every endpoint of the table', () => {
  it('has a table of a sensible size with unique (method, legacy path) pairs', () => {
    expect(ENDPOINTS.length).toBeGreaterThanOrEqual(35);
    const seen = new Set<string>();
    for (const e of ENDPOINTS) {
      for (const p of [e.legacyPath, ...(e.legacyAliases ?? [])]) {
        const key = `${e.method} ${p.replace(/\{\w+\}/g, '{}')}`;
        expect(seen.has(key), `duplicate route ${key}`).toBe(false);
        seen.add(key);
      }
    }
  });

  for (const e of ENDPOINTS) {
    const legacy = `/ers-api${fill(e.legacyPath)}`;
    it(`${e.code} ${e.method} ${e.legacyPath} → ${e.apimPath}`, () => {
      const id = asEndpoint(identify(e.method, legacy));
      expect(id.endpoint).toBe(e);
      const names = [...e.legacyPath.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
      expect(Object.keys(id.params).sort()).toEqual([...names].sort());
      for (const n of names) expect(id.params[n]).toBe(SAMPLES[n]);
      expect(id.query).toBe('');
      expect(apimPathFor(id.endpoint, id.params)).toBe(fill(expectedApimPattern(e)));
    });

    if (e.legacyPath.includes('$')) {
      it(`${e.code} with the $ percent-encoded (%24) is the same endpoint`, () => {
        const id = asEndpoint(identify(e.method, legacy.replaceAll('$', '%24')));
        expect(id.endpoint).toBe(e);
        expect(apimPathFor(id.endpoint, id.params)).toBe(fill(expectedApimPattern(e)));
      });
    }

    for (const alias of e.legacyAliases ?? []) {
      it(`${e.code} alias ${alias} is the same endpoint`, () => {
        const id = asEndpoint(identify(e.method, `/ers-api${fill(alias)}`));
        expect(id.endpoint).toBe(e);
        expect(apimPathFor(id.endpoint, id.params)).toBe(fill(e.apimPath));
      });
    }
  }
});

describe('identify: named examples', () => {
  it('A005: /ers-api/STU3/v1/ReferralRequest/000000070000 → /STU3/ReferralRequest/000000070000', () => {
    const id = asEndpoint(identify('GET', '/ers-api/STU3/v1/ReferralRequest/000000070000'));
    expect(id.endpoint.code).toBe('A005');
    expect(id.params).toEqual({ ubrn: '000000070000' });
    expect(apimPathFor(id.endpoint, id.params)).toBe('/STU3/ReferralRequest/000000070000');
  });

  it('A005 versioned keeps the version', () => {
    const id = asEndpoint(identify('GET', '/ers-api/STU3/v1/ReferralRequest/000000070000/_history/12'));
    expect(id.endpoint.code).toBe('A005');
    expect(apimPathFor(id.endpoint, id.params)).toBe('/STU3/ReferralRequest/000000070000/_history/12');
  });

  it('A022 capital C (legacy) → lower-case c on APIM', () => {
    const id = asEndpoint(
      identify('POST', '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.CancelAppointmentActionLater'),
    );
    expect(id.endpoint.code).toBe('A022');
    expect(apimPathFor(id.endpoint, id.params)).toBe(
      '/STU3/ReferralRequest/000000070000/$ers.cancelAppointmentActionLater',
    );
  });

  it('A022 lower-case c spelling is also accepted', () => {
    const id = asEndpoint(
      identify('POST', '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.cancelAppointmentActionLater'),
    );
    expect(id.endpoint.code).toBe('A022');
  });

  it('other capitalisations of an operation are not accepted', () => {
    expect(identify('POST', '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.GENERATECRI').kind).not.toBe(
      'endpoint',
    );
    expect(identify('GET', '/ers-api/stu3/v1/ReferralRequest/000000070000').kind).not.toBe('endpoint');
  });

  it('A007 with an encoded $ (%24ers.generateCRI)', () => {
    const id = asEndpoint(identify('POST', '/ers-api/STU3/v1/ReferralRequest/000000070000/%24ers.generateCRI'));
    expect(id.endpoint.code).toBe('A007');
    expect(apimPathFor(id.endpoint, id.params)).toBe('/STU3/ReferralRequest/000000070000/$ers.generateCRI');
  });

  it('percent-encoded digits decode to a valid UBRN', () => {
    const id = asEndpoint(identify('GET', '/ers-api/STU3/v1/ReferralRequest/%30%30%30000070000'));
    expect(id.params['ubrn']).toBe('000000070000');
  });

  it('A004 CodeSystem', () => {
    const id = asEndpoint(identify('GET', '/ers-api/STU3/v1/CodeSystem/APPOINTMENT-CANCELLATION-REASON'));
    expect(id.endpoint.code).toBe('A004');
    expect(apimPathFor(id.endpoint, id.params)).toBe('/STU3/CodeSystem/APPOINTMENT-CANCELLATION-REASON');
  });

  it('R4 operations: /ers-api/R4/v1/X → /R4/X; GET and HEAD on one path are different A-codes', () => {
    const get = asEndpoint(identify('GET', '/ers-api/R4/v1/HealthcareService/svc-1'));
    const head = asEndpoint(identify('HEAD', '/ers-api/R4/v1/HealthcareService/svc-1'));
    expect(get.endpoint.code).toBe('A033');
    expect(head.endpoint.code).toBe('A037');
    expect(apimPathFor(head.endpoint, head.params)).toBe('/R4/HealthcareService/svc-1');
  });

  it('GET and PUT on /Appointment/{id} are A038 and A034', () => {
    expect(asEndpoint(identify('GET', '/ers-api/STU3/v1/Appointment/a-1')).endpoint.code).toBe('A038');
    expect(asEndpoint(identify('PUT', '/ers-api/STU3/v1/Appointment/a-1')).endpoint.code).toBe('A034');
  });
});

describe('identify: query strings', () => {
  it('pass through unchanged, still encoded', () => {
    const q = 'type=SERVICE_PROVIDER&_count=10&x=%2F..%2F&y=a%20b';
    const id = asEndpoint(identify('GET', `/ers-api/STU3/v1/Task?${q}`));
    expect(id.endpoint.code).toBe('A029');
    expect(id.query).toBe(q);
  });

  it('a query never changes which endpoint is identified', () => {
    const id = asEndpoint(identify('GET', '/ers-api/STU3/v1/ReferralRequest/000000070000?_format=json'));
    expect(id.endpoint.code).toBe('A005');
    expect(id.params).toEqual({ ubrn: '000000070000' });
    expect(id.query).toBe('_format=json');
  });

  it('an empty query (trailing ?) is an empty string', () => {
    expect(asEndpoint(identify('GET', '/ers-api/STU3/v1/Slot?')).query).toBe('');
  });

  it('only the first ? splits path and query', () => {
    const id = asEndpoint(identify('GET', '/ers-api/STU3/v1/Communication?a=1?b=2'));
    expect(id.query).toBe('a=1?b=2');
  });
});

describe('identify: session routes A001–A003', () => {
  it('POST /ers-api/v1/ProfessionalSession → A001', () => {
    expect(identify('POST', '/ers-api/v1/ProfessionalSession')).toEqual({ kind: 'session', op: 'A001' });
  });

  it('PUT /ers-api/v1/ProfessionalSession/{key} → A002 with the key', () => {
    expect(identify('PUT', '/ers-api/v1/ProfessionalSession/pro-api-session:abc')).toEqual({
      kind: 'session',
      op: 'A002',
      sessionKeyInPath: 'pro-api-session:abc',
    });
  });

  it('DELETE /ers-api/v1/ProfessionalSession/{key} → A003 with the key (decoded)', () => {
    expect(identify('DELETE', '/ers-api/v1/ProfessionalSession/pro-api-session%3Aabc')).toEqual({
      kind: 'session',
      op: 'A003',
      sessionKeyInPath: 'pro-api-session:abc',
    });
  });

  it.each([
    ['GET', '/ers-api/v1/ProfessionalSession', ['POST'], ['A001']],
    ['PUT', '/ers-api/v1/ProfessionalSession', ['POST'], ['A001']],
    ['DELETE', '/ers-api/v1/ProfessionalSession', ['POST'], ['A001']],
    ['GET', '/ers-api/v1/ProfessionalSession/k', ['DELETE', 'PUT'], ['A002', 'A003']],
    ['POST', '/ers-api/v1/ProfessionalSession/k', ['DELETE', 'PUT'], ['A002', 'A003']],
  ])('%s %s → 405 allowing %j', (method, path, allow, codes) => {
    const id = identify(method, path);
    expect(id.kind).toBe('method-not-allowed');
    if (id.kind !== 'method-not-allowed') return;
    expect([...id.allow].sort()).toEqual(allow);
    expect([...id.codes].sort()).toEqual(codes);
  });

  it('a deeper session path is not found', () => {
    expect(identify('PUT', '/ers-api/v1/ProfessionalSession/a/b').kind).toBe('not-found');
  });

  it('a traversal as session key is refused as a bad path', () => {
    expect(identify('DELETE', '/ers-api/v1/ProfessionalSession/..').kind).toBe('bad-path');
    expect(identify('PUT', '/ers-api/v1/ProfessionalSession/%2e%2e').kind).toBe('bad-path');
  });
});

describe('identify: wrong methods on data endpoints', () => {
  it('POST on A005 → 405 allowing GET', () => {
    const id = identify('POST', '/ers-api/STU3/v1/ReferralRequest/000000070000');
    expect(id).toEqual({ kind: 'method-not-allowed', allow: ['GET'], codes: ['A005'] });
  });

  it('PUT on /R4/v1/HealthcareService/{id} → 405 allowing GET and HEAD', () => {
    const id = identify('PUT', '/ers-api/R4/v1/HealthcareService/svc-1');
    expect(id).toEqual({ kind: 'method-not-allowed', allow: ['GET', 'HEAD'], codes: ['A033', 'A037'] });
  });

  it('GET on a POST-only operation → 405 allowing POST', () => {
    const id = identify('GET', '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.generateCRI');
    expect(id).toEqual({ kind: 'method-not-allowed', allow: ['POST'], codes: ['A007'] });
  });

  it('methods are case-sensitive (lower-case get is not GET)', () => {
    expect(identify('get', '/ers-api/STU3/v1/ReferralRequest/000000070000').kind).not.toBe('endpoint');
  });

  it('isHttpMethod accepts exactly the five table methods', () => {
    for (const m of ['GET', 'POST', 'PUT', 'HEAD', 'DELETE']) expect(isHttpMethod(m)).toBe(true);
    for (const m of ['get', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', '']) expect(isHttpMethod(m)).toBe(false);
  });
});

describe('identify: DSTU2 and unknown paths', () => {
  it('DSTU2 /ers-api/v1/ReferralRequest/x → dstu2 naming the STU3 replacement', () => {
    const id = identify('GET', '/ers-api/v1/ReferralRequest/x');
    expect(id.kind).toBe('dstu2');
    if (id.kind !== 'dstu2') return;
    expect(id.resource).toBe('ReferralRequest');
    expect(id.replacement).toContain('/ers-api/STU3/v1/ReferralRequest/');
    expect(id.replacement).toContain('A005');
  });

  it('every DSTU2 resource names an STU3 replacement', () => {
    for (const resource of Object.keys(DSTU2_REPLACEMENTS)) {
      const id = identify('GET', `/ers-api/v1/${resource}/123`);
      expect(id.kind, resource).toBe('dstu2');
      if (id.kind === 'dstu2') expect(id.replacement).toMatch(/\/ers-api\/STU3\/v1\//);
    }
  });

  it.each([
    '/ers-api/v1/Patient/1',
    '/ers-api/v1',
    '/ers-api/STU3/v1/Nothing',
    '/ers-api/STU3/v1/ReferralRequest/000000070000/$ers.unknownOperation',
    '/ers-api/STU3/v2/ReferralRequest/000000070000',
    '/ers-api/DSTU2/v1/ReferralRequest/000000070000',
    '/ers-api/STU3/v1/ReferralRequest/000000070000/_history/3/extra',
  ])('%s → not-found', (path) => {
    const id = identify('GET', path);
    expect(id.kind).toBe('not-found');
    if (id.kind === 'not-found') expect(id.path).toBe(path);
  });

  it.each(['/', '/ers-apix/STU3/v1/Slot', '/api/STU3/v1/Slot', '/ERS-API/STU3/v1/Slot', '/health'])(
    '%s is not a legacy path',
    (path) => {
      expect(identify('GET', path)).toEqual({ kind: 'not-legacy' });
    },
  );
});

describe('identify: traversal and encoding attacks', () => {
  const badPaths: Array<[string, string]> = [
    ['GET', '/ers-api/STU3/v1/ReferralRequest/..'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/.'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/%2e%2e'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/%2E%2E'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/.%2e'],
    ['GET', '/ers-api/STU3/v1/../v1/ReferralRequest/000000070000'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000%2f..'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000%2F..'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest%2f000000070000'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000%5c..'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000%5C..'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000\\..'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest\\000000070000'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000%00'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/%00000000070000'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000%0a'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000%0D%0A'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000%7f'],
    ['GET', '/ers-api/STU3/v1//ReferralRequest/000000070000'],
    ['GET', '/ers-api//STU3/v1/ReferralRequest/000000070000'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000//'],
    // A single trailing slash is ignored: test/unit/legacy-client-shapes.test.ts.
    ['GET', '/ers-api/'],
    ['GET', '/ers-api'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/%zz0000070000'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/00000007000%'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/%c0%ae%c0%ae'],
    ['GET', '/ers-api/STU3/v1/Binary/att-1/../../../etc/passwd'],
    ['GET', '/ers-api/STU3/v1/Binary/..%2f..%2fadmin'],
    ['GET', '/ers-api/STU3/v1/CodeSystem/SPECIALTY%2f..%2f..'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000/_history/..'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000/_history/%2e'],
    ['PUT', '/ers-api/STU3/v1/Appointment/%2e%2e%5cadmin'],
    ['GET', '/ers-api/R4/v1/Binary/..%5C..%5Cwin.ini'],
    ['POST', '/ers-api/STU3/v1/ReferralRequest/000000070000/..%2f$ers.createReferral'],
  ];

  it.each(badPaths)('%s %s → bad-path', (method, path) => {
    const id = identify(method, path);
    expect(id.kind).toBe('bad-path');
    if (id.kind === 'bad-path') expect(id.reason.length).toBeGreaterThan(10);
  });

  const badParams: Array<[string, string, string, string]> = [
    ['GET', '/ers-api/STU3/v1/ReferralRequest/00000007000', 'A005', 'ubrn'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/0000000700001', 'A005', 'ubrn'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/00000007000a', 'A005', 'ubrn'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/abcdefghijkl', 'A005', 'ubrn'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/%20000000070000', 'A005', 'ubrn'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000%20', 'A005', 'ubrn'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/%EF%BC%90%EF%BC%90%EF%BC%90%EF%BC%90', 'A005', 'ubrn'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/%252e%252e', 'A005', 'ubrn'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/..000000070000', 'A005', 'ubrn'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000;x', 'A005', 'ubrn'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000/_history/v1', 'A005', 'version'],
    ['GET', '/ers-api/STU3/v1/CodeSystem/SPECIALTYX', 'A004', 'codeSystemType'],
    ['GET', '/ers-api/STU3/v1/CodeSystem/specialty', 'A004', 'codeSystemType'],
    ['GET', '/ers-api/STU3/v1/CodeSystem/ValueSet', 'A004', 'codeSystemType'],
    ['GET', '/ers-api/STU3/v1/Binary/att..1', 'A006', 'attachmentLogicalID'],
    ['GET', '/ers-api/STU3/v1/Binary/-att', 'A006', 'attachmentLogicalID'],
    ['GET', '/ers-api/STU3/v1/Binary/att%3B1', 'A006', 'attachmentLogicalID'],
    ['GET', `/ers-api/STU3/v1/Binary/${'a'.repeat(129)}`, 'A006', 'attachmentLogicalID'],
    ['GET', '/ers-api/STU3/v1/Appointment/a_b', 'A038', 'appointmentId'],
    ['GET', '/ers-api/R4/v1/HealthcareService/svc%3F1', 'A033', 'serviceId'],
    ['GET', '/ers-api/R4/v1/Binary/%2e%2e%2e', 'A042', 'binaryId'],
  ];

  it.each(badParams)('%s %s → bad-param (%s {%s})', (method, path, code, param) => {
    const id = identify(method, path);
    expect(id.kind).toBe('bad-param');
    if (id.kind !== 'bad-param') return;
    expect(id.code).toBe(code);
    expect(id.param).toBe(param);
    expect(id.expected).toBe(PARAM_DESCRIPTIONS[param]);
  });

  it('decodePathSegments reports reasons and decodes good segments', () => {
    expect(decodePathSegments('/a/%24b/c%20d')).toEqual(['a', '$b', 'c d']);
    expect(decodePathSegments('a/b')).toBeTypeOf('string');
    expect(decodePathSegments('/a//b')).toMatch(/empty segment/);
    expect(decodePathSegments('/a/%2F')).toMatch(/encoded slash/);
    expect(decodePathSegments('/a/%zz')).toMatch(/percent-encoding/);
    expect(decodePathSegments('/a/%2e%2E')).toMatch(/dot segment/);
    expect(decodePathSegments('/a/%01')).toMatch(/control character/);
  });
});

describe('identify: property — hostile ubrn values never become an endpoint', () => {
  const PIECES = [
    '0',
    '1',
    '7',
    '000000',
    '070000',
    '..',
    '.',
    '%2e',
    '%2E',
    '%2f',
    '%2F',
    '%5c',
    '%5C',
    '\\',
    '%00',
    '%0a',
    '%0d',
    '%09',
    '%20',
    ' ',
    ';',
    '%',
    '%zz',
    '%25',
    '%252e',
    '%252f',
    '$',
    '%24',
    'ers',
    'a',
    'Z',
    '-',
    '_',
    '~',
    '+',
    '%2B',
    '٠',
    '０',
    '%EF%BC%90',
    '%C0%AE',
    '%E2%80%A5',
    '\u0000',
    '\t',
    '\r\n',
    '%30',
    '%3A',
    ':',
    '@',
    '*',
    "'",
    '"',
    '<',
    '>',
    '|',
    '#',
    'é',
    '%c3%a9',
    '\u202e',
  ];

  function hostile(rand: () => number): string {
    const n = 1 + Math.floor(rand() * 6);
    let s = '';
    for (let i = 0; i < n; i++) s += PIECES[Math.floor(rand() * PIECES.length)]!;
    return s;
  }

  function safeDecode(s: string): string | undefined {
    try {
      return decodeURIComponent(s);
    } catch {
      return undefined;
    }
  }

  const rand = prng(20240801);
  const values = new Set<string>([
    '00000007000',
    '0000000700001',
    '%30%30%30%30%30%30%30%30%30%30%30%30',
    '000000070000%00',
    '000000070000\u0000',
    '000000070000%0a',
    '０００００００７００００',
    '٠٠٠٠٠٠٠٠٠٠٠٠',
  ]);
  while (values.size < 400) values.add(hostile(rand));

  it('generates a few hundred distinct values', () => {
    expect(values.size).toBe(400);
  });

  it('without / or ?: endpoint if and only if the decoded value is 12 ASCII digits', () => {
    let endpoints = 0;
    for (const v of values) {
      if (v.includes('/') || v.includes('?')) continue;
      const id = identify('GET', `/ers-api/STU3/v1/ReferralRequest/${v}`);
      const decoded = safeDecode(v);
      const valid = decoded !== undefined && /^[0-9]{12}$/.test(decoded);
      if (id.kind === 'endpoint') {
        endpoints++;
        expect(valid, `value ${JSON.stringify(v)} was identified as an endpoint`).toBe(true);
        expect(id.params['ubrn']).toMatch(/^[0-9]{12}$/);
      } else {
        expect(valid, `valid value ${JSON.stringify(v)} was refused: ${JSON.stringify(id)}`).toBe(false);
        expect(['bad-param', 'bad-path']).toContain(id.kind);
      }
    }
    // the explicit %30… case at least
    expect(endpoints).toBeGreaterThanOrEqual(1);
  });

  it('with a / anywhere (raw or hidden in the value): every parameter of an identified endpoint matches its pattern', () => {
    const r2 = prng(7);
    const extra = [
      '000000070000/_history/1',
      '000000070000/../000000070001',
      '000000070000/./x',
      '000000070000/%2e%2e/x',
      '../000000070000',
      '000000070000/$ers.generateCRI',
    ];
    for (let i = 0; i < 300; i++) extra.push(`${hostile(r2)}/${hostile(r2)}`);
    for (const v of extra) {
      for (const method of ['GET', 'POST', 'PUT', 'HEAD', 'DELETE']) {
        const id = identify(method, `/ers-api/STU3/v1/ReferralRequest/${v}`);
        if (id.kind !== 'endpoint') continue;
        for (const [name, value] of Object.entries(id.params)) {
          expect(PARAM_PATTERNS[name]!.test(value), `${method} ${v}: ${name}=${value}`).toBe(true);
          expect(value).not.toMatch(/[/\\.%]/);
        }
        expect(apimPathFor(id.endpoint, id.params)).not.toMatch(/\.\.|%2f|%5c|\\/i);
      }
    }
  });

  it('the same holds for every parameterised route: hostile values never yield an endpoint with a bad parameter', () => {
    const r3 = prng(99);
    for (const e of ENDPOINTS) {
      const names = [...e.legacyPath.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
      if (names.length === 0) continue;
      for (let i = 0; i < 40; i++) {
        for (const target of names) {
          const v = hostile(r3);
          const id = identify(e.method, `/ers-api${fill(e.legacyPath, { ...SAMPLES, [target]: v })}`);
          if (id.kind === 'endpoint') {
            for (const [name, value] of Object.entries(id.params)) {
              expect(PARAM_PATTERNS[name]!.test(value), `${e.code} ${name}=${JSON.stringify(value)}`).toBe(true);
            }
          }
        }
      }
    }
  });
});
