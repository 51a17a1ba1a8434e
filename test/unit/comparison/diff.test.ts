import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { baseUrlFolder, compareAnswers, noisePathsBetween } from '../../../src/comparison/diff.js';
import type { FieldDifference } from '../../../src/comparison/types.js';
import { fixture, fixtureBytes, json, patient, raw } from './support.js';

const UNBOOKED = 'stu3/retrieveReferralRequest/responses/Unbooked.json';

function clone<T>(v: T): T {
  return structuredClone(v);
}

function paths(ds: FieldDifference[]): string[] {
  return ds.map((d) => d.path).sort();
}

describe('compareAnswers: JSON bodies', () => {
  it('finds two identical answers equal', () => {
    const doc = fixture(UNBOOKED);
    const r = compareAnswers(json(doc), json(clone(doc), { side: 'apim' }));
    expect(r).toMatchObject({ equal: true, statusEqual: true, bodyKind: 'json', differences: [], noise: [] });
  });

  it('reports a changed field at its exact path, with both values', () => {
    const a = fixture(UNBOOKED) as any;
    const b = clone(a);
    b.extension[1].valueCodeableConcept.coding[0].code = 'URGENT';
    const r = compareAnswers(json(a), json(b));
    expect(r.equal).toBe(false);
    expect(r.statusEqual).toBe(true);
    expect(r.differences).toEqual([
      {
        path: 'extension[1].valueCodeableConcept.coding[0].code',
        kind: 'changed',
        primary: 'ROUTINE',
        secondary: 'URGENT',
      },
    ]);
  });

  it('reports fields on one side only', () => {
    const a = fixture(UNBOOKED) as any;
    const b = clone(a);
    delete b.meta.versionId;
    b.meta.lastUpdated = '2026-01-01T00:00:00Z';
    const r = compareAnswers(json(a), json(b));
    expect(r.differences).toEqual([
      { path: 'meta.versionId', kind: 'only-primary', primary: '5' },
      { path: 'meta.lastUpdated', kind: 'only-secondary', secondary: '2026-01-01T00:00:00Z' },
    ]);
  });

  it('reports a type change once, at the path where the types part', () => {
    const r = compareAnswers(
      json({ n: 1, o: { x: 1, y: [1, 2] }, arr: [1], nul: null }),
      json({ n: '1', o: 'gone', arr: { 0: 1 }, nul: false }),
    );
    expect(r.differences).toEqual([
      { path: 'n', kind: 'type', primary: 1, secondary: '1' },
      { path: 'o', kind: 'type', primary: '{2 keys}', secondary: 'gone' },
      { path: 'arr', kind: 'type', primary: '[1 items]', secondary: '{1 keys}' },
      { path: 'nul', kind: 'type', primary: null, secondary: false },
    ]);
  });

  it('reports array length differences as the extra elements, leaf by leaf', () => {
    const r = compareAnswers(
      json({ xs: [1, 2, 3], entry: [{ a: 1 }, { a: 2, b: { c: 3 } }], empty: [], gone: [{}] }),
      json({ xs: [1, 2], entry: [{ a: 1 }], empty: ['new'], gone: [] }),
    );
    expect(r.differences).toEqual([
      { path: 'xs[2]', kind: 'only-primary', primary: 3 },
      { path: 'entry[1].a', kind: 'only-primary', primary: 2 },
      { path: 'entry[1].b.c', kind: 'only-primary', primary: 3 },
      { path: 'empty[0]', kind: 'only-secondary', secondary: 'new' },
      { path: 'gone[0]', kind: 'only-primary', primary: {} },
    ]);
  });

  it('quotes odd keys in paths and handles a primitive root', () => {
    const r = compareAnswers(json({ 'odd key': { 'a.b': 1 } }), json({ 'odd key': { 'a.b': 2 } }));
    expect(paths(r.differences)).toEqual(['["odd key"]["a.b"]']);
    expect(compareAnswers(json(1), json(2)).differences).toEqual([
      { path: '$', kind: 'changed', primary: 1, secondary: 2 },
    ]);
  });

  it('treats bodies as JSON when both parse even without a JSON content-type', () => {
    const r = compareAnswers(raw('{"a":1}', 'text/plain'), raw('{ "a" : 1 }', 'text/plain'));
    expect(r).toMatchObject({ equal: true, bodyKind: 'json' });
  });

  it('reports JSON against a non-JSON body as one type difference on the body', () => {
    const r = compareAnswers(json({ a: 1 }), raw('<html>Bad gateway</html>', 'text/html'));
    expect(r.bodyKind).toBe('json');
    expect(r.differences).toEqual([
      { path: 'header:content-type', kind: 'changed', primary: 'application/fhir+json', secondary: 'text/html' },
      { path: 'body', kind: 'type', primary: 'JSON, 7 bytes', secondary: 'not JSON (text/html), 24 bytes' },
    ]);
  });

  it('lists at most maxDifferences and counts the rest', () => {
    const a = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i]));
    const r = compareAnswers(json(a), json({}), { maxDifferences: 10 });
    expect(r.differences).toHaveLength(10);
    expect(r.omittedDifferences).toBe(20);
    expect(r.equal).toBe(false);
  });
});

describe('compareAnswers: ignorePaths', () => {
  const primary = {
    meta: { lastUpdated: 'p1', versionId: '1', profile: ['p'] },
    entry: [
      { fullUrl: 'u1', resource: { meta: { lastUpdated: 'p2' }, lastUpdatedBy: 'x', status: 'active', fullUrl: 'n1' } },
      { fullUrl: 'u2', resource: { status: 'active' } },
    ],
    id: 'a',
  };
  const secondary = {
    meta: { lastUpdated: 's1', versionId: '2', profile: ['s'] },
    entry: [
      {
        fullUrl: 'v1',
        resource: { meta: { lastUpdated: 's2' }, lastUpdatedBy: 'y', status: 'cancelled', fullUrl: 'n2' },
      },
      { fullUrl: 'v2', resource: { status: 'active' } },
    ],
    id: 'b',
  };
  const ALL = [
    'entry[0].fullUrl',
    'entry[0].resource.fullUrl',
    'entry[0].resource.lastUpdatedBy',
    'entry[0].resource.meta.lastUpdated',
    'entry[0].resource.status',
    'entry[1].fullUrl',
    'id',
    'meta.lastUpdated',
    'meta.profile[0]',
    'meta.versionId',
  ];
  const run = (ignorePaths: string[]) =>
    paths(compareAnswers(json(primary), json(secondary), { ignorePaths }).differences);
  const without = (...dropped: string[]) => ALL.filter((p) => !dropped.includes(p));

  it('finds every differing leaf without ignore rules', () => {
    expect(run([])).toEqual(ALL);
  });

  it('`**.lastUpdated` drops lastUpdated at any depth, and nothing else', () => {
    expect(run(['**.lastUpdated'])).toEqual(without('meta.lastUpdated', 'entry[0].resource.meta.lastUpdated'));
  });

  it('`entry[*].fullUrl` drops the entries’ fullUrl only, not a nested one', () => {
    expect(run(['entry[*].fullUrl'])).toEqual(without('entry[0].fullUrl', 'entry[1].fullUrl'));
  });

  it('`meta.*` drops the top-level meta fields (and what is under them), not a resource’s meta', () => {
    expect(run(['meta.*'])).toEqual(without('meta.lastUpdated', 'meta.versionId', 'meta.profile[0]'));
  });

  it('combines globs, and `**` ignores the whole body', () => {
    expect(run(['**.lastUpdated', 'entry[*].fullUrl', 'meta.*', 'id'])).toEqual([
      'entry[0].resource.fullUrl',
      'entry[0].resource.lastUpdatedBy',
      'entry[0].resource.status',
    ]);
    const r = compareAnswers(json(primary), json(secondary), { ignorePaths: ['**'] });
    expect(r.equal).toBe(true);
  });

  it('ignores a one-sided subtree under an ignored path', () => {
    const r = compareAnswers(json({ meta: { tag: [{ code: 'x' }] }, a: 1 }), json({ a: 1 }), { ignorePaths: ['meta'] });
    expect(r.equal).toBe(true);
  });
});

describe('compareAnswers: headers', () => {
  const body = { resourceType: 'ReferralRequest' };

  it('compares content-type by media type only: case and charset ignored', () => {
    const r = compareAnswers(
      json(body, { headers: { 'content-type': 'application/fhir+json;charset=UTF-8' } }),
      json(body, { headers: { 'content-type': 'Application/FHIR+JSON' } }),
    );
    expect(r.equal).toBe(true);
    const d = compareAnswers(
      json(body, { headers: { 'content-type': 'application/fhir+json' } }),
      json(body, { headers: { 'content-type': 'application/json; charset=utf-8' } }),
    );
    expect(d.differences).toEqual([
      { path: 'header:content-type', kind: 'changed', primary: 'application/fhir+json', secondary: 'application/json' },
    ]);
  });

  it('compares the default set (content-type, etag, location, content-disposition) and nothing else', () => {
    const r = compareAnswers(
      json(body, {
        headers: {
          'content-type': 'application/fhir+json',
          etag: 'W/"5"',
          date: 'Mon, 01 Jan 2026 00:00:00 GMT',
          'x-request-id': 'a',
          'content-disposition': 'attachment; filename="letter.pdf"',
        },
      }),
      json(body, {
        headers: {
          'content-type': 'application/fhir+json',
          etag: 'W/"6"',
          date: 'Tue, 02 Jan 2026 00:00:00 GMT',
          'x-request-id': 'b',
          location: '/x',
        },
      }),
    );
    expect(r.differences).toEqual([
      { path: 'header:content-disposition', kind: 'only-primary', primary: 'attachment; filename="letter.pdf"' },
      { path: 'header:etag', kind: 'changed', primary: 'W/"5"', secondary: 'W/"6"' },
      { path: 'header:location', kind: 'only-secondary', secondary: '/x' },
    ]);
  });

  it('selects headers by glob and drops ignoreHeaders globs', () => {
    const p = json(body, { headers: { 'x-request-id': 'a', 'x-ers-transaction-id': 't1', etag: 'W/"1"', date: 'd1' } });
    const s = json(body, { headers: { 'x-request-id': 'b', 'x-ers-transaction-id': 't2', etag: 'W/"2"', date: 'd2' } });
    const r = compareAnswers(p, s, { headers: ['x-*', 'ETag'], ignoreHeaders: ['x-request-*'] });
    expect(paths(r.differences)).toEqual(['header:etag', 'header:x-ers-transaction-id']);
    const none = compareAnswers(p, s, { headers: ['x-*', 'etag'], ignoreHeaders: ['*'] });
    expect(none.equal).toBe(true);
  });

  it('folds base URLs in header values (location)', () => {
    const p = json(body, {
      headers: { location: 'https://api.ers.ncrs.nhs.uk/ers-api/STU3/v1/ReferralRequest/000000070000' },
    });
    const s = json(body, {
      headers: { location: 'http://127.0.0.1:8080/ers-api/STU3/v1/ReferralRequest/000000070000' },
    });
    const baseUrls = ['https://api.ers.ncrs.nhs.uk/ers-api', 'http://127.0.0.1:8080/ers-api/'];
    expect(compareAnswers(p, s, { baseUrls }).equal).toBe(true);
    expect(compareAnswers(p, s).equal).toBe(false);
  });
});

describe('compareAnswers: base URL folding', () => {
  const LEGACY = 'https://api.ers.ncrs.nhs.uk/ers-api';
  const BRIDGE = 'http://127.0.0.1:8080/ers-api';
  const withBase = (base: string) => JSON.parse(JSON.stringify(fixture(UNBOOKED)).replaceAll('_baseUrl_', base));

  it('makes CodeSystem system URLs of the legacy host and ers-bridge equal', () => {
    const a = withBase(LEGACY);
    const b = withBase(BRIDGE);
    expect(JSON.stringify(a)).toContain(`${LEGACY}/STU3/CodeSystem/SPECIALTY`);
    const without = compareAnswers(json(a), json(b));
    expect(without.differences.length).toBeGreaterThan(0);
    expect(without.differences.every((d) => d.path.endsWith('.system'))).toBe(true);
    expect(compareAnswers(json(a), json(b), { baseUrls: [LEGACY, BRIDGE] })).toMatchObject({ equal: true });
  });

  it('folds only at a boundary, longest base first', () => {
    const fold = baseUrlFolder(['http://h:80', 'http://h:80/ers-api']);
    expect(fold('http://h:80/ers-api/x http://h:80 http://h:8080/y http://h:80?q')).toBe(
      '<base>/x <base> http://h:8080/y <base>?q',
    );
  });
});

describe('compareAnswers: binary, text and empty bodies', () => {
  const PDF = 'stu3/retrieveAttachment/responses/example_attachment.pdf';
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it('finds the same PDF bytes equal, reporting sizes and sha256', () => {
    const pdf = fixtureBytes(PDF);
    const r = compareAnswers(raw(pdf, 'application/pdf'), raw(Buffer.from(pdf), 'application/pdf'));
    expect(r).toMatchObject({
      equal: true,
      bodyKind: 'binary',
      primarySize: pdf.length,
      secondarySize: pdf.length,
      primarySha256: sha(pdf),
      secondarySha256: sha(pdf),
    });
  });

  it('finds PDFs one byte apart different, with both sizes and hashes', () => {
    const pdf = fixtureBytes(PDF);
    const other = Buffer.from(pdf);
    const mid = Math.floor(other.length / 2);
    other[mid] = other[mid]! ^ 0x01;
    const r = compareAnswers(raw(pdf, 'application/pdf'), raw(other, 'application/pdf'));
    expect(r.equal).toBe(false);
    expect(r.bodyKind).toBe('binary');
    expect(r.primarySha256).toBe(sha(pdf));
    expect(r.secondarySha256).toBe(sha(other));
    expect(r.primarySha256).not.toBe(r.secondarySha256);
    expect(r.differences).toEqual([
      { path: 'body', kind: 'changed', primary: `${pdf.length} bytes`, secondary: `${other.length} bytes` },
    ]);
  });

  it('treats non-UTF-8 bytes without a content-type as binary', () => {
    const r = compareAnswers(
      raw(Buffer.from([0xff, 0xfe, 0x00, 0x01]), undefined),
      raw(Buffer.from([0xff]), undefined),
    );
    expect(r).toMatchObject({ bodyKind: 'binary', primarySize: 4, secondarySize: 1, equal: false });
  });

  it('compares text after base folding, and shows a redacted excerpt around the first difference', () => {
    const base = { baseUrls: ['http://a.example/ers-api', 'http://b.example/ers-api'] };
    const same = compareAnswers(
      raw('see http://a.example/ers-api/x', 'text/plain'),
      raw('see http://b.example/ers-api/x', 'text/plain'),
      base,
    );
    expect(same).toMatchObject({ equal: true, bodyKind: 'text' });
    const r = compareAnswers(
      raw('Patient 943 476 5919 is Booked', 'text/plain'),
      raw('Patient 943 476 5919 is Cancelled', 'text/plain'),
    );
    expect(r.bodyKind).toBe('text');
    expect(r.differences).toEqual([
      {
        path: 'body',
        kind: 'changed',
        primary: 'Patient [redacted:nhs-number] is Booked',
        secondary: 'Patient [redacted:nhs-number] is Cancelled',
      },
    ]);
  });

  it('finds two empty bodies equal, and an empty one against a body different', () => {
    const e = raw(Buffer.alloc(0), undefined, { status: 204 });
    expect(compareAnswers(e, { ...e })).toMatchObject({ equal: true, bodyKind: 'empty' });
    const r = compareAnswers(raw(Buffer.alloc(0), undefined), json({ a: 1 }));
    expect(r.differences).toEqual([
      { path: 'header:content-type', kind: 'only-secondary', secondary: 'application/fhir+json' },
      { path: 'body', kind: 'only-secondary', primary: '0 bytes', secondary: '7 bytes' },
    ]);
  });
});

describe('compareAnswers: status', () => {
  it('reports a status mismatch', () => {
    const r = compareAnswers(json({ a: 1 }), json({ a: 1 }, { status: 404 }));
    expect(r).toMatchObject({ equal: false, statusEqual: false, primaryStatus: 200, secondaryStatus: 404 });
    expect(r.differences).toEqual([{ path: 'status', kind: 'changed', primary: 200, secondary: 404 }]);
  });

  it('compares only the status when a side gave no answer', () => {
    const failed = raw(Buffer.alloc(0), undefined, { side: 'apim', status: 0, error: 'timed out' });
    const r = compareAnswers(json({ a: 1 }), failed);
    expect(r).toMatchObject({ equal: false, statusEqual: false, secondaryStatus: 0, bodyKind: 'empty' });
    expect(r.differences).toEqual([{ path: 'status', kind: 'changed', primary: 200, secondary: 0 }]);
  });
});

describe('noise baseline', () => {
  const answer = (lastUpdated: string, id: string, status: string) =>
    json({
      resourceType: 'Bundle',
      id,
      meta: { lastUpdated },
      entry: [{ resource: { resourceType: 'Task', status } }],
    });

  it('finds the fields that differ between two answers of the primary', () => {
    const noise = noisePathsBetween(
      answer('2026-01-01T00:00:00Z', 'gen-1', 'requested'),
      answer('2026-01-01T00:00:01Z', 'gen-2', 'requested'),
    );
    expect([...noise].sort()).toEqual(['id', 'meta.lastUpdated']);
  });

  it('reports noise fields in `noise`, while a real difference on another field remains', () => {
    const primary = answer('2026-01-01T00:00:00Z', 'gen-1', 'requested');
    const again = answer('2026-01-01T00:00:01Z', 'gen-2', 'requested');
    const secondary = answer('2026-01-01T00:00:05Z', 'gen-3', 'completed');
    const noisePaths = noisePathsBetween(primary, again);
    const r = compareAnswers(primary, secondary, { noisePaths });
    expect(r.noise.sort()).toEqual(['id', 'meta.lastUpdated']);
    expect(r.differences).toEqual([
      { path: 'entry[0].resource.status', kind: 'changed', primary: 'requested', secondary: 'completed' },
    ]);
    expect(r.equal).toBe(false);
    // With only noise left, the answers are equal.
    const onlyNoise = compareAnswers(primary, answer('2026-01-01T00:00:09Z', 'gen-9', 'requested'), { noisePaths });
    expect(onlyNoise).toMatchObject({ equal: true, differences: [] });
    expect(onlyNoise.noise.sort()).toEqual(['id', 'meta.lastUpdated']);
  });

  it('treats what is under a noise path as noise too', () => {
    const r = compareAnswers(json({ meta: { a: 1 }, x: 1 }), json({ meta: { a: 2, b: [1] }, x: 1 }), {
      noisePaths: new Set(['meta']),
    });
    expect(r.equal).toBe(true);
    expect(r.noise.sort()).toEqual(['meta.a', 'meta.b[0]']);
  });

  it('honours ignorePaths in the baseline', () => {
    const noise = noisePathsBetween(answer('t1', 'g1', 's'), answer('t2', 'g2', 's'), {
      ignorePaths: ['**.lastUpdated'],
    });
    expect([...noise]).toEqual(['id']);
  });
});

describe('compareAnswers: redaction of values', () => {
  it('redacts personal values in differences but compares the real values', () => {
    const a = { resourceType: 'Bundle', entry: [{ resource: patient('9434765919') }] };
    const b = structuredClone(a) as any;
    b.entry[0].resource.name[0].family = 'Xxotherfamily';
    b.entry[0].resource.identifier[0].value = '9999999999';
    b.entry[0].resource.birthDate = '1960-01-01';
    const r = compareAnswers(json(a), json(b));
    expect(r.equal).toBe(false);
    expect(r.differences).toEqual([
      {
        path: 'entry[0].resource.identifier[0].value',
        kind: 'changed',
        primary: '[redacted:nhs-number]',
        secondary: '[redacted:nhs-number]',
      },
      {
        path: 'entry[0].resource.name[0].family',
        kind: 'changed',
        primary: '[redacted:name]',
        secondary: '[redacted:name]',
      },
      {
        path: 'entry[0].resource.birthDate',
        kind: 'changed',
        primary: '[redacted:birth-date]',
        secondary: '[redacted:birth-date]',
      },
    ]);
    const text = JSON.stringify(r);
    for (const s of ['9434765919', '9999999999', 'Zzsmithers', 'Xxotherfamily', '1957-03-14', '1960-01-01']) {
      expect(text).not.toContain(s);
    }
  });

  it('shortens long values', () => {
    const r = compareAnswers(json({ note: 'a '.repeat(400) }), json({ note: 'b '.repeat(400) }));
    const v = r.differences[0]!.primary as string;
    expect(v.length).toBeLessThan(260);
    expect(v).toMatch(/…\[\+600 chars\]$/);
  });
});
