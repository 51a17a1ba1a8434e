/**
 * Real legacy clients' request shapes (test/fixtures/legacy-clients/, issue 13 point 6), through the pure steps:
 * identify (trailing slash, `//`, a wrong method on `$ers.fetchworklist`), the media types the HSCN API took for
 * FHIR JSON and session bodies, and a UTF-8 BOM stripped from JSON bodies before anything reads them.
 * test/e2e/legacy-client-shapes.test.ts sends one of each through ers-bridge to the APIM stand-in.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isFhirJsonRequestType, isSessionJsonRequestType, withoutUtf8Bom } from '../../src/http/media-type.js';
import { ENDPOINTS, type EndpointDef } from '../../src/legacy/endpoints.js';
import { LegacyError } from '../../src/legacy/errors.js';
import { type Identified, identify } from '../../src/legacy/identify.js';
import { readSessionBody } from '../../src/legacy/session-api.js';
import { prepareBodies } from '../../src/pipeline/bodies.js';
import { refusalOf } from '../../src/pipeline/steps.js';
import { buildApimRequest } from '../../src/translation/request.js';
import {
  incomingHeadersOf,
  type LegacyClientRequest,
  legacyClientFixtureNames,
  legacyClientRequest,
} from '../helpers/legacy-clients.js';

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const URLS = { apimBase: 'https://int.api.service.nhs.uk/referrals/FHIR', legacyBase: 'https://bridge.test/ers-api' };

function endpointOf(r: LegacyClientRequest): { endpoint: EndpointDef; params: Record<string, string> } {
  const id = identify(r.method, r.target);
  if (id.kind !== 'endpoint') throw new Error(`${r.name}: expected an endpoint, got ${JSON.stringify(id)}`);
  return id;
}

async function bodyOf(r: LegacyClientRequest, readWhole = false) {
  const { endpoint } = endpointOf(r);
  const bodies = await prepareBodies(
    endpoint,
    incomingHeadersOf(r),
    Readable.from([r.body ?? Buffer.alloc(0)]),
    1024 * 1024,
    URLS,
    readWhole,
  );
  return { apim: (await bodies.apim.next()) as Buffer, legacy: bodies.legacy.first as Buffer, whole: bodies.whole };
}

function legacyErrorOf(fn: () => unknown): LegacyError {
  try {
    fn();
  } catch (e) {
    if (e instanceof LegacyError) return e;
    throw e;
  }
  throw new Error('expected a LegacyError');
}

describe('the legacy-client fixtures', () => {
  const names = legacyClientFixtureNames();

  it('are there, each naming its source', () => {
    expect(names.length).toBeGreaterThanOrEqual(12);
    for (const name of names) {
      const r = legacyClientRequest(name);
      expect(r.comments.join(' '), name).toMatch(/^Source: /);
      expect(r.target.startsWith('/'), name).toBe(true);
    }
  });

  it('bodies from files are the files, and @body-prefix puts the bytes before them', () => {
    const plain = legacyClientRequest('a008-worklist-wildcard');
    const bom = legacyClientRequest('a008-worklist-bom');
    expect(bom.body!.subarray(0, 3)).toEqual(BOM);
    expect(bom.body!.subarray(3)).toEqual(plain.body);
  });
});

describe('Content-Type: what the HSCN API took for FHIR JSON bodies', () => {
  it.each([
    'application/fhir+json',
    'application/fhir+json; charset=utf-8',
    'application/fhir+json;charset=UTF-8',
    'application/json',
    'application/json; charset=utf-8',
    'application/json+fhir',
    'application/json+fhir; charset=utf-8',
    '*/*',
    '*/*; charset=utf-8',
    'APPLICATION/FHIR+JSON',
  ])('%s is FHIR JSON', (ct) => {
    expect(isFhirJsonRequestType(ct)).toBe(true);
  });

  it.each(['text/plain', 'application/xml', 'application/fhir+xml', 'application/*', 'text/*', 'nonsense', ''])(
    '%s is not',
    (ct) => {
      expect(isFhirJsonRequestType(ct)).toBe(false);
    },
  );

  it.each(['a008-worklist-wildcard', 'a014-reject-wildcard', 'a016-book-wildcard', 'a023-ag-worklist-wildcard'])(
    '%s: */* goes to APIM as application/fhir+json (was 415)',
    (name) => {
      const r = legacyClientRequest(name);
      const { endpoint, params } = endpointOf(r);
      const plan = buildApimRequest({
        endpoint,
        params,
        query: '',
        headers: incomingHeadersOf(r),
        apimBasePath: '/referrals/FHIR',
        correlationId: 'c-1',
      });
      expect(plan.headers['content-type']).toBe('application/fhir+json');
    },
  );

  it.each(['a008-worklist-charset-wms', 'a008-worklist-json-fhir-camel'])(
    '%s: goes to APIM as application/fhir+json',
    (name) => {
      const r = legacyClientRequest(name);
      const { endpoint, params } = endpointOf(r);
      const headers = incomingHeadersOf(r);
      const plan = buildApimRequest({ endpoint, params, query: '', headers, apimBasePath: '', correlationId: 'c' });
      expect(plan.headers['content-type']).toBe('application/fhir+json');
      // Camel's internal headers never reach APIM.
      expect(Object.keys(plan.headers).map((n) => n.toLowerCase())).not.toEqual(expect.arrayContaining(['fileref']));
      expect(Object.keys(plan.headers).map((n) => n.toLowerCase())).not.toContain('token');
    },
  );

  it('another type on a FHIR endpoint is still 415, naming the type to send', () => {
    const endpoint = ENDPOINTS.find((e) => e.code === 'A008')!;
    const err = legacyErrorOf(() =>
      buildApimRequest({
        endpoint,
        params: {},
        query: '',
        headers: { 'content-type': 'text/plain' },
        apimBasePath: '',
        correlationId: 'c',
      }),
    );
    expect(err.status).toBe(415);
    expect(err.diagnostics).toContain('application/fhir+json');
  });
});

describe('Content-Type: session bodies (A001, A002)', () => {
  it.each(['application/json', 'application/json; charset=utf-8', 'application/json+fhir', '*/*', 'text/json'])(
    '%s is taken',
    (ct) => {
      expect(isSessionJsonRequestType(ct)).toBe(true);
    },
  );

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml'])('%s is not', (ct) => {
    expect(isSessionJsonRequestType(ct)).toBe(false);
  });

  it('readSessionBody takes */* (was 415) and still refuses text/plain', async () => {
    const body = Buffer.from('{"token":"t"}');
    await expect(readSessionBody(Readable.from([body]), { 'content-type': '*/*' }, 'A001')).resolves.toEqual(body);
    await expect(
      readSessionBody(Readable.from([body]), { 'content-type': 'text/plain' }, 'A001'),
    ).rejects.toMatchObject({ reason: 'UNSUPPORTED_MEDIA_TYPE', status: 415 });
  });
});

describe('a UTF-8 BOM before a JSON body', () => {
  it('withoutUtf8Bom drops one leading BOM and nothing else', () => {
    const json = Buffer.from('{"a":"\ufeff"}', 'utf8');
    expect(withoutUtf8Bom(Buffer.concat([BOM, json]))).toEqual(json);
    expect(withoutUtf8Bom(json)).toBe(json);
    expect(withoutUtf8Bom(Buffer.concat([BOM, BOM, json]))).toEqual(Buffer.concat([BOM, json]));
    expect(withoutUtf8Bom(Buffer.from([0xef, 0xbb]))).toEqual(Buffer.from([0xef, 0xbb]));
    expect(withoutUtf8Bom(Buffer.alloc(0))).toEqual(Buffer.alloc(0));
  });

  it('a008-worklist-bom: the body to APIM, to the legacy host and for the recorder starts at the JSON (was sent with the BOM)', async () => {
    const r = legacyClientRequest('a008-worklist-bom');
    const { apim, legacy, whole } = await bodyOf(r, true);
    const json = r.body!.subarray(3);
    expect(apim.subarray(0, 1).toString()).toBe('{');
    expect(JSON.parse(apim.toString('utf8'))).toEqual(JSON.parse(json.toString('utf8')));
    expect(legacy).toEqual(json);
    expect(whole).toEqual(json);
  });

  it('a file upload (A020) keeps every byte, BOM and all', async () => {
    const endpoint = ENDPOINTS.find((e) => e.code === 'A020')!;
    const file = Buffer.concat([BOM, Buffer.from('plain text file')]);
    const bodies = await prepareBodies(
      endpoint,
      { 'content-type': 'text/plain' },
      Readable.from([file]),
      1024,
      URLS,
      true,
    );
    expect(bodies.whole).toEqual(file);
  });

  it('a001-create-session-bom: readSessionBody returns the JSON without the BOM (A001 was 422 BODY_INVALID_JSON)', async () => {
    const r = legacyClientRequest('a001-create-session-bom', { asid: '999000000001' });
    const body = await readSessionBody(Readable.from([r.body!]), incomingHeadersOf(r), 'A001');
    expect(body).toEqual(r.body!.subarray(3));
    expect(JSON.parse(body.toString('utf8')).token).toMatch(/^ AQIC/);
  });
});

describe('identify: a wrong method on a literal segment', () => {
  it('a008-worklist-get: GET …/ReferralRequest/$ers.fetchworklist is A008 with the wrong method (was A005 bad-param)', () => {
    const r = legacyClientRequest('a008-worklist-get');
    expect(identify(r.method, r.target)).toEqual({ kind: 'method-not-allowed', allow: ['POST'], codes: ['A008'] });
    const refusal = refusalOf(identify(r.method, r.target))!;
    expect(refusal.status).toBe(405);
    expect(refusal.reason).toBe('METHOD_NOT_ALLOWED');
    expect(refusal.headers['allow']).toBe('POST');
    expect(refusal.diagnostics).toContain('A008');
  });

  it('a023-ag-worklist-get: GET …/CommunicationRequest/$ers.fetchworklist is A023 with the wrong method (was A024)', () => {
    const r = legacyClientRequest('a023-ag-worklist-get');
    expect(identify(r.method, r.target)).toEqual({ kind: 'method-not-allowed', allow: ['POST'], codes: ['A023'] });
  });

  it('every $ers operation of the table, sent with another method, is 405 naming its own code and method', () => {
    for (const e of ENDPOINTS) {
      const last = e.legacyPath.split('/').at(-1)!;
      if (!last.startsWith('$')) continue;
      const path = `/ers-api${e.legacyPath.replace('{ubrn}', '000000070000')}`;
      const other = e.method === 'GET' ? 'POST' : 'GET';
      const id = identify(other, path);
      expect(id.kind, `${other} ${path}`).toBe('method-not-allowed');
      if (id.kind === 'method-not-allowed') {
        expect(id.codes, path).toContain(e.code);
        expect(id.allow, path).toContain(e.method);
      }
    }
  });

  it('a parameter route still answers for its own values: GET …/ReferralRequest/bad is A005 bad-param', () => {
    expect(identify('GET', '/ers-api/STU3/v1/ReferralRequest/00000007000x')).toMatchObject({
      kind: 'bad-param',
      code: 'A005',
      param: 'ubrn',
    });
    // And the right method on the literal is the operation.
    expect(identify('POST', '/ers-api/STU3/v1/ReferralRequest/$ers.fetchworklist')).toMatchObject({
      kind: 'endpoint',
      endpoint: { code: 'A008' },
    });
  });
});

describe('identify: a trailing slash is ignored', () => {
  const endpoint = (id: Identified) => (id.kind === 'endpoint' ? id.endpoint.code : id.kind);

  it('a005-trailing-slash: …/ReferralRequest/000000070000/ is A005 for that UBRN (was 400 BAD_PATH)', () => {
    const r = legacyClientRequest('a005-trailing-slash');
    const id = identify(r.method, r.target);
    expect(id).toMatchObject({ kind: 'endpoint', endpoint: { code: 'A005' }, params: { ubrn: '000000070000' } });
  });

  it.each([
    ['GET', '/ers-api/STU3/v1/Slot/?status=free', 'A015'],
    ['GET', '/ers-api/STU3/v1/ReferralRequest/000000070000/_history/3/', 'A005'],
    ['POST', '/ers-api/STU3/v1/ReferralRequest/$ers.fetchworklist/', 'A008'],
    ['GET', '/ers-api/R4/v1/PractitionerRole/', 'A030'],
  ])('%s %s → %s', (method, target, code) => {
    expect(endpoint(identify(method, target))).toBe(code);
  });

  it('the query is kept', () => {
    expect(identify('GET', '/ers-api/STU3/v1/Slot/?status=free')).toMatchObject({ query: 'status=free' });
  });

  it('sessions: POST …/ProfessionalSession/ is A001; PUT and DELETE …/{key}/ are A002 and A003', () => {
    expect(identify('POST', '/ers-api/v1/ProfessionalSession/')).toEqual({ kind: 'session', op: 'A001' });
    expect(identify('PUT', '/ers-api/v1/ProfessionalSession/pro-api-session:1/')).toEqual({
      kind: 'session',
      op: 'A002',
      sessionKeyInPath: 'pro-api-session:1',
    });
    expect(identify('DELETE', '/ers-api/v1/ProfessionalSession/k/')).toMatchObject({ kind: 'session', op: 'A003' });
  });

  it('a005-empty-ubrn: …/ReferralRequest/ names the missing {ubrn}', () => {
    const r = legacyClientRequest('a005-empty-ubrn');
    expect(identify(r.method, r.target)).toMatchObject({ kind: 'bad-param', code: 'A005', param: 'ubrn' });
    expect(refusalOf(identify(r.method, r.target))!.diagnostics).toMatch(/A005: the \{ubrn\} part .* 12-digit UBRN/);
  });

  it('a002-empty-session-key: PUT …/ProfessionalSession/ names the missing {sessionKey}', () => {
    const r = legacyClientRequest('a002-empty-session-key');
    expect(identify(r.method, r.target)).toMatchObject({ kind: 'bad-param', code: 'A002', param: 'sessionKey' });
    expect(identify('DELETE', '/ers-api/v1/ProfessionalSession/')).toMatchObject({ code: 'A003' });
    expect(refusalOf(identify(r.method, r.target))!.diagnostics).toMatch(/session id A001 returned/);
  });

  it('the wrong method with a trailing slash is still 405', () => {
    expect(identify('POST', '/ers-api/STU3/v1/ReferralRequest/000000070000/')).toEqual({
      kind: 'method-not-allowed',
      allow: ['GET'],
      codes: ['A005'],
    });
  });

  it('only one slash: two at the end, or a dot segment before it, stay refused', () => {
    expect(identify('GET', '/ers-api/STU3/v1/ReferralRequest/000000070000//').kind).toBe('bad-path');
    expect(identify('GET', '/ers-api/STU3/v1/ReferralRequest/../').kind).toBe('bad-path');
    expect(identify('GET', '/ers-api/STU3/v1/ReferralRequest/%2e%2e/').kind).toBe('bad-path');
    expect(identify('GET', '/ers-api/STU3/v1/ReferralRequest/000000070000%2f/').kind).toBe('bad-path');
    expect(identify('GET', '/ers-api/').kind).toBe('bad-path');
  });
});

describe('identify: an empty segment (//) stays refused, naming the operation without it', () => {
  it('a005-double-slash: 400 BAD_PATH naming A005 (the diagnostics did not say what was meant)', () => {
    const r = legacyClientRequest('a005-double-slash');
    const id = identify(r.method, r.target);
    expect(id.kind).toBe('bad-path');
    const refusal = refusalOf(id)!;
    expect(refusal.status).toBe(400);
    expect(refusal.diagnostics).toContain('empty segment (//)');
    expect(refusal.diagnostics).toContain('A005: GET /ers-api/STU3/v1/ReferralRequest/{ubrn}');
  });

  it('a005-leading-double-slash: //ers-api/… is the same refusal (was not a legacy path: 404)', () => {
    const r = legacyClientRequest('a005-leading-double-slash');
    const id = identify(r.method, r.target);
    expect(id.kind).toBe('bad-path');
    expect(refusalOf(id)!.diagnostics).toContain('A005: GET /ers-api/STU3/v1/ReferralRequest/{ubrn}');
  });

  it.each([
    ['POST', '/ers-api//v1/ProfessionalSession', 'A001: POST /ers-api/v1/ProfessionalSession'],
    ['PUT', '/ers-api/v1//ProfessionalSession/k', 'A002: PUT /ers-api/v1/ProfessionalSession/{sessionKey}'],
    ['POST', '/ers-api/STU3/v1/ReferralRequest//$ers.fetchworklist/', 'A008: POST'],
  ])('%s %s names %s', (method, target, named) => {
    const id = identify(method, target);
    expect(id.kind).toBe('bad-path');
    if (id.kind === 'bad-path') expect(id.reason).toContain(named);
  });

  it('names nothing when the path without it is no operation, or not a plain path; never echoes a value', () => {
    for (const target of ['/ers-api/STU3/v1//Nothing', '/ers-api/STU3//v1/ReferralRequest/%2e%2e', '//ers-api//x']) {
      const id = identify('GET', target);
      expect(id).toEqual({ kind: 'bad-path', reason: 'the path contains an empty segment (//)' });
    }
    const id = identify('PUT', '/ers-api/v1//ProfessionalSession/secret-session-key');
    if (id.kind === 'bad-path') expect(id.reason).not.toContain('secret-session-key');
  });

  it('other paths starting // are still not legacy paths', () => {
    expect(identify('GET', '//admin/compare')).toEqual({ kind: 'not-legacy' });
    expect(identify('GET', '//ers-apix/STU3')).toEqual({ kind: 'not-legacy' });
  });
});
