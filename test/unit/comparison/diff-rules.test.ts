/**
 * The comparison rules of diff.ts, one at a time: each option, body kind, path form, ordering rule, bound and
 * normalisation, with the exact results a caller sees (whole result objects where it matters, `toStrictEqual` so an
 * absent field must be absent).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import {
  baseUrlFolder,
  clipValue,
  compareAnswers,
  DEFAULT_HEADERS,
  DEFAULT_MAX_DIFFERENCES,
  mediaType,
  noisePathsBetween,
  sha256Hex,
} from '../../../src/comparison/diff.js';
import { KNOWN_DIFFERENCES } from '../../../src/comparison/presets.js';
import type { CapturedAnswer, ComparisonResult } from '../../../src/comparison/types.js';
import { json, raw, result } from './support.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A result with every field a plain equal JSON comparison has, overridden by `partial`. */
const equalJson = result;

/** An object with `n` keys `k0`…, each its index. */
function keys(n: number, prefix = 'k'): Record<string, number> {
  const o: Record<string, number> = {};
  for (let i = 0; i < n; i++) o[`${prefix}${i}`] = i;
  return o;
}

describe('exported constants and helpers', () => {
  it('DEFAULT_HEADERS and DEFAULT_MAX_DIFFERENCES', () => {
    expect(DEFAULT_HEADERS).toEqual(['content-type', 'etag', 'location', 'content-disposition']);
    expect(DEFAULT_MAX_DIFFERENCES).toBe(1000);
  });

  it.each([
    ['', ''],
    ['z'.repeat(255), 'z'.repeat(255)],
    ['z'.repeat(256), 'z'.repeat(256)],
    ['z'.repeat(257), `${'z'.repeat(200)}…[+57 chars]`],
    ['y'.repeat(400), `${'y'.repeat(200)}…[+200 chars]`],
  ])('clipValue keeps strings up to 256 characters and shortens longer ones (%#)', (input, expected) => {
    expect(clipValue(input)).toBe(expected);
  });

  it('clipValue leaves non-strings and already-shortened strings alone', () => {
    const o = { a: 'z'.repeat(300) };
    expect(clipValue(o)).toBe(o);
    expect(clipValue(12345)).toBe(12345);
    expect(clipValue(null)).toBe(null);
    const once = clipValue('q'.repeat(1000)) as string;
    expect(once).toBe(`${'q'.repeat(200)}…[+800 chars]`);
    expect(clipValue(once)).toBe(once);
  });

  it.each([
    [undefined, ''],
    ['', ''],
    ['garbage', ''],
    ['TEXT/HTML; charset=ISO-8859-1', 'text/html'],
    ['application/fhir+json;charset=UTF-8', 'application/fhir+json'],
  ])('mediaType(%j) is %j', (value, expected) => {
    expect(mediaType(value)).toBe(expected);
  });

  it('sha256Hex is the hex sha256 of the bytes', () => {
    expect(sha256Hex(Buffer.from('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(Buffer.alloc(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});

describe('baseUrlFolder', () => {
  it('is the identity without bases, or with bases that are empty once trimmed', () => {
    for (const bases of [undefined, [], [''], ['   ', '/', '//']]) {
      const fold = baseUrlFolder(bases);
      expect(fold('a b/c "d" x?y#z')).toBe('a b/c "d" x?y#z');
      expect(fold('')).toBe('');
    }
  });

  it('ignores empty bases among real ones', () => {
    const fold = baseUrlFolder(['http://empties.example', '', '  ']);
    expect(fold('x y http://empties.example/p z')).toBe('x y <base>/p z');
  });

  it.each([
    ['/', 'http://bound.example/p', '<base>/p'],
    ['?', 'http://bound.example?q', '<base>?q'],
    ['#', 'http://bound.example#f', '<base>#f'],
    ['space', 'http://bound.example x', '<base> x'],
    ['tab', 'http://bound.example\tx', '<base>\tx'],
    ['newline', 'http://bound.example\nx', '<base>\nx'],
    ['double quote', '"http://bound.example"', '"<base>"'],
    ['single quote', "'http://bound.example'", "'<base>'"],
    ['angle brackets', '<http://bound.example>', '<<base>>'],
    ['less-than', 'http://bound.example<', '<base><'],
    ['parenthesis', '(http://bound.example)', '(<base>)'],
    ['comma', 'http://bound.example,x', '<base>,x'],
    ['end of text', 'see http://bound.example', 'see <base>'],
    ['a letter (no boundary)', 'http://bound.examplex', 'http://bound.examplex'],
    ['a digit (no boundary)', 'http://bound.example1', 'http://bound.example1'],
    ['a colon (no boundary)', 'http://bound.example:8080/p', 'http://bound.example:8080/p'],
    ['a dot (no boundary)', 'http://bound.example.org/p', 'http://bound.example.org/p'],
    ['a hyphen (no boundary)', 'http://bound.example-2/p', 'http://bound.example-2/p'],
    ['an underscore (no boundary)', 'http://bound.example_2/p', 'http://bound.example_2/p'],
    ['a semicolon (no boundary)', 'http://bound.example;p', 'http://bound.example;p'],
  ])('folds a base followed by %s only where it ends at a boundary', (_what, input, expected) => {
    expect(baseUrlFolder(['http://bound.example'])(input)).toBe(expected);
  });

  it('folds every occurrence, case-insensitively', () => {
    const fold = baseUrlFolder(['http://Case.Example/API']);
    expect(fold('HTTP://CASE.EXAMPLE/api/a and http://case.example/Api/b and http://case.example/api')).toBe(
      '<base>/a and <base>/b and <base>',
    );
  });

  it('trims each base and drops its trailing slashes', () => {
    const fold = baseUrlFolder(['  http://trim.example/api//  ', 'http://slash.example/x/']);
    expect(fold('http://trim.example/api/p http://slash.example/x/q http://slash.example/x')).toBe(
      '<base>/p <base>/q <base>',
    );
  });

  it('matches the characters of a base literally', () => {
    const fold = baseUrlFolder(['http://lit.example/a.b/(c+d)?e=[1]|{2}*^$\\']);
    expect(fold('http://lit.example/a.b/(c+d)?e=[1]|{2}*^$\\/x')).toBe('<base>/x');
    expect(fold('http://lit.example/aXb/(c+d)?e=[1]|{2}*^$\\/x')).toBe('http://lit.example/aXb/(c+d)?e=[1]|{2}*^$\\/x');
    expect(baseUrlFolder(['http://dot.example/a.b'])('http://dot.example/aXb/x')).toBe('http://dot.example/aXb/x');
    expect(baseUrlFolder(['http://plus.example/a+'])('http://plus.example/aaa/x')).toBe('http://plus.example/aaa/x');
    expect(baseUrlFolder(['http://plus.example/a+'])('http://plus.example/a+/x')).toBe('<base>/x');
  });

  it.each([
    [['http://long.example', 'http://long.example/ers-api', 'http://long.example/ers-api/STU3']],
    [['http://long.example/ers-api/STU3', 'http://long.example', 'http://long.example/ers-api']],
    [['http://long.example/ers-api', 'http://long.example/ers-api/STU3', 'http://long.example']],
  ])('folds the longest base first, whatever the order given (%#)', (bases) => {
    const fold = baseUrlFolder(bases);
    expect(fold('http://long.example/ers-api/STU3/x http://long.example/ers-api/y http://long.example/z')).toBe(
      '<base>/x <base>/y <base>/z',
    );
  });

  it('keeps one folder per list of bases, and does not mix up lists that join alike', () => {
    const ab = baseUrlFolder(['http://join.example/a', 'b']);
    expect(baseUrlFolder(['http://join.example/a', 'b'])).toBe(ab);
    const joined = baseUrlFolder(['http://join.example/ab']);
    expect(joined).not.toBe(ab);
    expect(joined('http://join.example/a/x b')).toBe('http://join.example/a/x b');
    expect(joined('http://join.example/ab/x')).toBe('<base>/x');
    expect(ab('http://join.example/a/x b')).toBe('<base>/x <base>');
  });

  it('keeps at most 64 folders, clearing them all when the 65th set of bases comes', async () => {
    vi.resetModules();
    const fresh = (await import('../../../src/comparison/diff.js')).baseUrlFolder;
    const bases = (i: number) => [`http://cache${i}.example`];
    const first = Array.from({ length: 64 }, (_, i) => fresh(bases(i)));
    // All 64 are kept: asking again gives the same folders.
    for (let i = 0; i < 64; i++) expect(fresh(bases(i))).toBe(first[i]);
    const extra = fresh(bases(64));
    expect(fresh(bases(64))).toBe(extra);
    // The 65th cleared the others: the first is made anew (and still folds the same).
    const again = fresh(bases(0));
    expect(again).not.toBe(first[0]);
    expect(again('http://cache0.example/x')).toBe('<base>/x');
    vi.resetModules();
  });
});

describe('status and failed answers', () => {
  it('reports a status difference with both statuses, and nothing else', () => {
    expect(compareAnswers(json({ a: 1 }, { status: 201 }), json({ a: 1 }, { status: 200 }))).toStrictEqual(
      equalJson({
        equal: false,
        statusEqual: false,
        primaryStatus: 201,
        differences: [{ path: 'status', kind: 'changed', primary: 201, secondary: 200 }],
      }),
    );
  });

  it('keeps a status difference unequal even when the status is a noise path', () => {
    expect(
      compareAnswers(json({ a: 1 }), json({ a: 1 }, { status: 404 }), { noisePaths: new Set(['status']) }),
    ).toStrictEqual(
      equalJson({ equal: false, statusEqual: false, secondaryStatus: 404, differences: [], noise: ['status'] }),
    );
  });

  it('compares only the status when the primary gave no answer', () => {
    const failed = raw(Buffer.alloc(0), undefined, { status: 0, error: 'refused' });
    expect(compareAnswers(failed, json({ a: 1 }))).toStrictEqual({
      equal: false,
      statusEqual: false,
      primaryStatus: 0,
      secondaryStatus: 200,
      bodyKind: 'empty',
      differences: [{ path: 'status', kind: 'changed', primary: 0, secondary: 200 }],
      noise: [],
    });
  });

  it('finds two failed answers with the same status equal, whatever their bodies and headers', () => {
    const a = raw('x', 'text/plain', { status: 0, error: 'timed out' });
    const b = raw('y', 'application/pdf', { status: 0, error: 'refused' });
    expect(compareAnswers(a, b)).toStrictEqual({
      equal: true,
      statusEqual: true,
      primaryStatus: 0,
      secondaryStatus: 0,
      bodyKind: 'empty',
      differences: [],
      noise: [],
    });
  });
});

describe('headers', () => {
  const body = { resourceType: 'Task' };
  const withHeaders = (headers: Record<string, string>) => json(body, { headers });

  it('finds headers equal after trimming the values', () => {
    const r = compareAnswers(withHeaders({ etag: '  W/"1" ' }), withHeaders({ etag: 'W/"1"' }));
    expect(r).toStrictEqual(equalJson());
  });

  it('reports a header on one side only without a value for the other side', () => {
    expect(compareAnswers(withHeaders({ etag: 'W/"1"' }), withHeaders({})).differences).toStrictEqual([
      { path: 'header:etag', kind: 'only-primary', primary: 'W/"1"' },
    ]);
    expect(compareAnswers(withHeaders({}), withHeaders({ location: '/x' })).differences).toStrictEqual([
      { path: 'header:location', kind: 'only-secondary', secondary: '/x' },
    ]);
  });

  it('lower-cases header names and lists the differences sorted by name', () => {
    const r = compareAnswers(
      withHeaders({ Location: '/a', ETag: 'W/"1"', 'Content-Type': 'Application/FHIR+JSON; charset=x' }),
      withHeaders({ location: '/b', etag: 'W/"2"', 'content-type': 'application/fhir+json' }),
    );
    expect(r.differences).toStrictEqual([
      { path: 'header:etag', kind: 'changed', primary: 'W/"1"', secondary: 'W/"2"' },
      { path: 'header:location', kind: 'changed', primary: '/a', secondary: '/b' },
    ]);
  });

  it('compares a content-type header without a valid media type as empty', () => {
    const r = compareAnswers(
      withHeaders({ 'content-type': 'garbage' }),
      withHeaders({ 'content-type': 'other-garbage' }),
    );
    expect(r.differences).toStrictEqual([]);
    const one = compareAnswers(withHeaders({ 'content-type': 'garbage' }), withHeaders({}));
    expect(one.differences).toStrictEqual([{ path: 'header:content-type', kind: 'only-primary', primary: '' }]);
  });

  it('folds base URLs in the header values compared', () => {
    const r = compareAnswers(
      withHeaders({ location: 'http://p.example/x', 'content-disposition': 'http://p.example/d' }),
      withHeaders({ location: 'http://s.example/y', 'content-disposition': 'http://s.example/d' }),
      { baseUrls: ['http://p.example', 'http://s.example'] },
    );
    expect(r.differences).toStrictEqual([
      { path: 'header:location', kind: 'changed', primary: '<base>/x', secondary: '<base>/y' },
    ]);
  });

  it('compares only the default headers when none are chosen', () => {
    const p = withHeaders({
      'content-type': 'text/plain',
      etag: 'a',
      location: 'a',
      'content-disposition': 'a',
      'cache-control': 'a',
      date: 'a',
    });
    const s = withHeaders({ etag: 'b', location: 'b', 'content-disposition': 'b', 'cache-control': 'b', date: 'b' });
    expect(compareAnswers(p, s).differences).toStrictEqual([
      { path: 'header:content-disposition', kind: 'changed', primary: 'a', secondary: 'b' },
      { path: 'header:content-type', kind: 'only-primary', primary: 'text/plain' },
      { path: 'header:etag', kind: 'changed', primary: 'a', secondary: 'b' },
      { path: 'header:location', kind: 'changed', primary: 'a', secondary: 'b' },
    ]);
  });

  it('chooses a header matching any one of the globs, and drops one matching any one ignore glob', () => {
    const p = withHeaders({ 'x-one': '1', 'x-two': '1', 'y-three': '1', etag: '1' });
    const s = withHeaders({ 'x-one': '2', 'x-two': '2', 'y-three': '2', etag: '2' });
    expect(paths(compareAnswers(p, s, { headers: ['x-*', 'y-three'] }))).toEqual([
      'header:x-one',
      'header:x-two',
      'header:y-three',
    ]);
    expect(paths(compareAnswers(p, s, { headers: ['x-*', 'y-*', 'etag'], ignoreHeaders: ['x-one', 'y-*'] }))).toEqual([
      'header:etag',
      'header:x-two',
    ]);
    expect(paths(compareAnswers(p, s, { headers: [], ignoreHeaders: [] }))).toEqual([]);
    expect(paths(compareAnswers(p, s, { headers: ['*'], ignoreHeaders: [] }))).toEqual([
      'header:etag',
      'header:x-one',
      'header:x-two',
      'header:y-three',
    ]);
  });

  it('redacts and shortens header values shown', () => {
    const long = 'v'.repeat(300);
    const r = compareAnswers(
      withHeaders({ etag: long, location: 'mailto:someone@example.org' }),
      withHeaders({ etag: `${long}w`, location: 'mailto:other@example.org' }),
    );
    expect(r.differences).toStrictEqual([
      {
        path: 'header:etag',
        kind: 'changed',
        primary: `${'v'.repeat(200)}…[+100 chars]`,
        secondary: `${'v'.repeat(200)}…[+101 chars]`,
      },
      {
        path: 'header:location',
        kind: 'changed',
        primary: 'mailto:[redacted:email]',
        secondary: 'mailto:[redacted:email]',
      },
    ]);
  });

  it('puts a header difference at a noise path in `noise`', () => {
    const r = compareAnswers(withHeaders({ etag: '1', location: '/a' }), withHeaders({ etag: '2', location: '/b' }), {
      noisePaths: new Set(['header:etag']),
    });
    expect(r).toStrictEqual(
      equalJson({
        equal: false,
        differences: [{ path: 'header:location', kind: 'changed', primary: '/a', secondary: '/b' }],
        noise: ['header:etag'],
      }),
    );
  });
});

function paths(r: ComparisonResult): string[] {
  return r.differences.map((d) => d.path);
}

describe('JSON walk: paths, order and kinds', () => {
  it('lists differences in the primary’s key order, then the secondary’s extra keys', () => {
    const r = compareAnswers(json({ z: 1, a: 1, m: { q: 1 } }), json({ c: 3, m: { q: 2, p: 0 }, a: 2 }));
    expect(r.differences).toStrictEqual([
      { path: 'z', kind: 'only-primary', primary: 1 },
      { path: 'a', kind: 'changed', primary: 1, secondary: 2 },
      { path: 'm.q', kind: 'changed', primary: 1, secondary: 2 },
      { path: 'm.p', kind: 'only-secondary', secondary: 0 },
      { path: 'c', kind: 'only-secondary', secondary: 3 },
    ]);
  });

  it('finds documents equal whatever their key order', () => {
    const r = compareAnswers(
      raw('{"a":1,"b":{"c":[1,2],"d":null}}', 'application/json'),
      raw('{"b":{"d":null,"c":[1,2]},"a":1}', 'application/json'),
    );
    expect(r).toStrictEqual(equalJson());
  });

  it('walks arrays by index, with the extra elements of the longer side', () => {
    expect(compareAnswers(json({ xs: [1, 2, 3] }), json({ xs: [1, 5] })).differences).toStrictEqual([
      { path: 'xs[1]', kind: 'changed', primary: 2, secondary: 5 },
      { path: 'xs[2]', kind: 'only-primary', primary: 3 },
    ]);
    expect(compareAnswers(json({ xs: [1] }), json({ xs: [1, [], {}, null] })).differences).toStrictEqual([
      { path: 'xs[1]', kind: 'only-secondary', secondary: [] },
      { path: 'xs[2]', kind: 'only-secondary', secondary: {} },
      { path: 'xs[3]', kind: 'only-secondary', secondary: null },
    ]);
    expect(compareAnswers(json([[1, 2], 'a']), json([[1, 2, 3]])).differences).toStrictEqual([
      { path: '[0][2]', kind: 'only-secondary', secondary: 3 },
      { path: '[1]', kind: 'only-primary', primary: 'a' },
    ]);
  });

  it('reports a one-sided subtree leaf by leaf, with array and object paths', () => {
    const r = compareAnswers(
      json({ keep: 1, gone: { list: ['a', { b: true }], empty: {}, none: [], nil: null, s: 'str' } }),
      json({ keep: 1 }),
    );
    expect(r.differences).toStrictEqual([
      { path: 'gone.list[0]', kind: 'only-primary', primary: 'a' },
      { path: 'gone.list[1].b', kind: 'only-primary', primary: true },
      { path: 'gone.empty', kind: 'only-primary', primary: {} },
      { path: 'gone.none', kind: 'only-primary', primary: [] },
      { path: 'gone.nil', kind: 'only-primary', primary: null },
      { path: 'gone.s', kind: 'only-primary', primary: 'str' },
    ]);
    const back = compareAnswers(json({ keep: 1 }), json({ keep: 1, added: [[], [7]] }));
    expect(back.differences).toStrictEqual([
      { path: 'added[0]', kind: 'only-secondary', secondary: [] },
      { path: 'added[1][0]', kind: 'only-secondary', secondary: 7 },
    ]);
  });

  it.each([
    [null, {}, null, {}],
    [{}, null, {}, null],
    [[], {}, [], {}],
    [{ a: 1 }, [1], '{1 keys}', '[1 items]'],
    [[1, 2], 'two', '[2 items]', 'two'],
    ['', 0, '', 0],
    [false, 'false', false, 'false'],
    [null, false, null, false],
    [1, null, 1, null],
  ])('reports values of different JSON types (%j against %j) as one type difference', (a, b, pa, pb) => {
    const r = compareAnswers(json({ v: a }), json({ v: b }));
    expect(r.differences).toStrictEqual([{ path: 'v', kind: 'type', primary: pa, secondary: pb }]);
  });

  it('finds equal leaves of every type equal, and different leaves of the same type changed', () => {
    const doc = { n: null, t: true, f: false, i: 0, s: '', e: {}, a: [], deep: [{ x: [null] }] };
    expect(compareAnswers(json(doc), json(structuredClone(doc)), { baseUrls: ['http://leaf.example'] })).toStrictEqual(
      equalJson(),
    );
    const r = compareAnswers(json({ t: true, i: 0, s: 'a' }), json({ t: false, i: -0.5, s: 'b' }));
    expect(r.differences).toStrictEqual([
      { path: 't', kind: 'changed', primary: true, secondary: false },
      { path: 'i', kind: 'changed', primary: 0, secondary: -0.5 },
      { path: 's', kind: 'changed', primary: 'a', secondary: 'b' },
    ]);
  });

  it('writes odd keys and digit keys as paths do', () => {
    const r = compareAnswers(
      json({ 'a b': 1, '0': 1, $: 1, 'x.y': { 'q"r': 1 } }),
      json({ 'a b': 2, '0': 2, $: 2, 'x.y': { 'q"r': 2 } }),
    );
    // Integer-like keys come first in a JSON object's key order.
    expect(paths(r)).toEqual(['0', '["a b"]', '["$"]', '["x.y"]["q\\"r"]']);
  });

  it('reports a difference under `__proto__` keys at its path, never with values from the prototype chain', () => {
    const doc = (n: number) =>
      `{"__proto__":{"__proto__":{"x":${n}}},"p":{"__proto__":{"constructor":{"name":{"length":${n}}}}}}`;
    const r = compareAnswers(raw(doc(1), 'application/json'), raw(doc(2), 'application/json'));
    expect(r.differences.map((d) => [d.path, d.kind])).toEqual([
      ['__proto__.__proto__.x', 'changed'],
      ['p.__proto__.constructor.name.length', 'changed'],
    ]);
    // The value shown is the document's own (1 / 2) or none; never what the prototype chain holds (`'Object'.length`).
    for (const d of r.differences) {
      expect([1, undefined]).toContain(d.primary);
      expect([2, undefined]).toContain(d.secondary);
    }
  });

  it('reports a primitive root or a type change at the root at `$`', () => {
    expect(compareAnswers(json('a'), json('b')).differences).toStrictEqual([
      { path: '$', kind: 'changed', primary: 'a', secondary: 'b' },
    ]);
    expect(compareAnswers(json([1]), json({ a: 1 })).differences).toStrictEqual([
      { path: '$', kind: 'type', primary: '[1 items]', secondary: '{1 keys}' },
    ]);
  });

  it('shortens long strings shown, and shows containers summarised', () => {
    const r = compareAnswers(json({ s: 'z'.repeat(257), o: { a: 1, b: 2 } }), json({ s: 'z'.repeat(256), o: [] }));
    expect(r.differences).toStrictEqual([
      { path: 's', kind: 'changed', primary: `${'z'.repeat(200)}…[+57 chars]`, secondary: 'z'.repeat(256) },
      { path: 'o', kind: 'type', primary: '{2 keys}', secondary: [] },
    ]);
  });

  it('redacts personal values in paths, noise and values', () => {
    const r = compareAnswers(json({ '9434765919': 1, note: 'call 9434765919' }), json({ '9434765919': 2, note: 'x' }));
    expect(r.differences).toStrictEqual([
      { path: '[redacted:nhs-number]', kind: 'changed', primary: 1, secondary: 2 },
      { path: 'note', kind: 'changed', primary: 'call [redacted:nhs-number]', secondary: 'x' },
    ]);
    const n = compareAnswers(json({ '9434765919': 1 }), json({ '9434765919': 2 }), {
      noisePaths: new Set(['9434765919']),
    });
    expect(n).toStrictEqual(equalJson({ noise: ['[redacted:nhs-number]'] }));
    expect([...noisePathsBetween(json({ '9434765919': 1 }), json({ '9434765919': 2 }))]).toEqual(['9434765919']);
  });
});

describe('JSON walk: base URLs in values and keys', () => {
  const baseUrls = ['http://p.example/ers-api', 'http://s.example/ers-api'];

  it('compares strings folded, so only the other difference remains', () => {
    const r = compareAnswers(
      json({ link: 'http://p.example/ers-api/STU3/x', n: 1 }),
      json({ link: 'http://s.example/ers-api/STU3/x', n: 2 }),
      { baseUrls },
    );
    expect(r.differences).toStrictEqual([{ path: 'n', kind: 'changed', primary: 1, secondary: 2 }]);
  });

  it('shows values folded, in objects and arrays, next to nulls and numbers', () => {
    const r = compareAnswers(
      json({ o: { nil: null, n: 3, l: 'http://p.example/ers-api/a' }, ls: ['http://p.example/ers-api/b'] }),
      json({ o: { nil: null, n: 3, l: 'http://s.example/ers-api/c' }, ls: ['http://s.example/ers-api/d', 4] }),
      { baseUrls },
    );
    expect(r.differences).toStrictEqual([
      { path: 'o.l', kind: 'changed', primary: '<base>/a', secondary: '<base>/c' },
      { path: 'ls[0]', kind: 'changed', primary: '<base>/b', secondary: '<base>/d' },
      { path: 'ls[1]', kind: 'only-secondary', secondary: 4 },
    ]);
  });

  it('finds documents equal when they differ only by the base URLs, even in keys (whole text folded first)', () => {
    const r = compareAnswers(
      json({ 'http://p.example/ers-api/k': 'http://p.example/ers-api/v' }),
      json({ 'http://s.example/ers-api/k': 'http://s.example/ers-api/v' }),
      { baseUrls },
    );
    expect(r).toStrictEqual(equalJson());
  });

  it('reports keys that differ by base URL when something else differs too', () => {
    const r = compareAnswers(
      json({ 'http://p.example/ers-api/k': 1, n: 1 }),
      json({ 'http://s.example/ers-api/k': 1, n: 2 }),
      { baseUrls },
    );
    expect(r.differences).toStrictEqual([
      { path: '["http://p.example/ers-api/k"]', kind: 'only-primary', primary: 1 },
      { path: 'n', kind: 'changed', primary: 1, secondary: 2 },
      { path: '["http://s.example/ers-api/k"]', kind: 'only-secondary', secondary: 1 },
    ]);
  });
});

describe('ignorePaths and noisePaths', () => {
  it('ignores the paths given and everything under them, and nothing else', () => {
    const p = json({ a: { b: 1, c: 1 }, d: [1, 2], e: 1 });
    const s = json({ a: { b: 2, c: 2, x: 1 }, d: [3], e: 2 });
    expect(paths(compareAnswers(p, s, { ignorePaths: ['a.b', 'd'] }))).toEqual(['a.c', 'a.x', 'e']);
    expect(paths(compareAnswers(p, s, { ignorePaths: ['a'] }))).toEqual(['d[0]', 'd[1]', 'e']);
    expect(paths(compareAnswers(p, s, { ignorePaths: ['a.x', 'd[1]'] }))).toEqual(['a.b', 'a.c', 'd[0]', 'e']);
    expect(paths(compareAnswers(p, s, { ignorePaths: [] }))).toEqual(['a.b', 'a.c', 'a.x', 'd[0]', 'd[1]', 'e']);
    expect(compareAnswers(p, s, { ignorePaths: ['$'] })).toStrictEqual(equalJson());
  });

  it('ignores a type difference at an ignored path', () => {
    expect(compareAnswers(json({ a: [1], b: 1 }), json({ a: 'x', b: 1 }), { ignorePaths: ['a'] })).toStrictEqual(
      equalJson(),
    );
  });

  it('puts differences at and under a noise path in `noise`, one-sided ones too', () => {
    const r = compareAnswers(
      json({ meta: { a: 1 }, keep: 1, one: { x: 1 } }),
      json({ meta: { a: 2, b: { c: 3 } }, keep: 2, two: [1, { y: 2 }] }),
      { noisePaths: new Set(['meta', 'one.x', 'two']) },
    );
    expect(r).toStrictEqual(
      equalJson({
        equal: false,
        differences: [{ path: 'keep', kind: 'changed', primary: 1, secondary: 2 }],
        noise: ['meta.a', 'meta.b.c', 'one.x', 'two[0]', 'two[1].y'],
      }),
    );
  });

  it('takes a one-sided subtree under a noisy parent as noise', () => {
    const r = compareAnswers(json({ m: { a: 1 } }), json({ m: { a: 1, b: { c: 2 } }, n: { d: 1 } }), {
      noisePaths: new Set(['m', 'n.d']),
    });
    expect(r).toStrictEqual(equalJson({ noise: ['m.b.c', 'n.d'] }));
  });

  it('does not take siblings of a noise path for noise', () => {
    const r = compareAnswers(json({ m: { a: 1, b: 1 } }), json({ m: { a: 2, b: 2 } }), {
      noisePaths: new Set(['m.a']),
    });
    expect(r).toStrictEqual(
      equalJson({
        equal: false,
        differences: [{ path: 'm.b', kind: 'changed', primary: 1, secondary: 2 }],
        noise: ['m.a'],
      }),
    );
  });

  it('puts a body difference at the noise path `body` in `noise`', () => {
    const r = compareAnswers(raw('hello', 'text/plain'), raw('world', 'text/plain'), {
      noisePaths: new Set(['body']),
    });
    expect(r).toStrictEqual(equalJson({ bodyKind: 'text', noise: ['body'] }));
  });
});

describe('limits', () => {
  it.each([
    [2, 2, 0],
    [3, 3, 0],
    [4, 3, 1],
  ])('with maxDifferences 3, %i differences list %i and omit %i', (n, listed, omitted) => {
    const r = compareAnswers(json(keys(n)), json({}), { maxDifferences: 3 });
    expect(r.differences).toStrictEqual(
      Array.from({ length: listed }, (_, i) => ({ path: `k${i}`, kind: 'only-primary', primary: i })),
    );
    expect(r.omittedDifferences).toBe(omitted === 0 ? undefined : omitted);
    expect('omittedDifferences' in r).toBe(omitted > 0);
    expect(r.equal).toBe(false);
  });

  it('with maxDifferences 0, lists nothing, counts everything, and is not equal', () => {
    const r = compareAnswers(json(keys(2)), json({}), { maxDifferences: 0, noisePaths: new Set(['k1']) });
    expect(r).toStrictEqual(equalJson({ equal: false, omittedDifferences: 1 }));
  });

  it('lists at most 1000 differences by default', () => {
    const thousand = compareAnswers(json(keys(1000)), json({}));
    expect(thousand.differences).toHaveLength(1000);
    expect('omittedDifferences' in thousand).toBe(false);
    const more = compareAnswers(json(keys(1001)), json({}));
    expect(more.differences).toHaveLength(1000);
    expect(more.differences[999]).toStrictEqual({ path: 'k999', kind: 'only-primary', primary: 999 });
    expect(more.omittedDifferences).toBe(1);
  });

  it.each([
    [2, ['n0', 'n1']],
    [3, ['n0', 'n1', 'n2']],
    [4, ['n0', 'n1', 'n2']],
  ])('keeps at most maxDifferences noise paths (%i noisy, max 3)', (n, noise) => {
    const noisePaths = new Set(Object.keys(keys(n, 'n')));
    const r = compareAnswers(json(keys(n, 'n')), json({}), { maxDifferences: 3, noisePaths });
    expect(r).toStrictEqual(equalJson({ noise }));
  });

  it.each([
    [9_999, 9_999],
    [10_000, 10_000],
    [10_001, 10_000],
  ])('a noise baseline of %i differing paths keeps %i', (n, size) => {
    const set = noisePathsBetween(json(keys(n)), json({}));
    expect(set.size).toBe(size);
    expect(set.has('k0')).toBe(true);
    expect(set.has(`k${size - 1}`)).toBe(true);
    expect(set.has(`k${size}`)).toBe(false);
  });
});

describe('noisePathsBetween', () => {
  it('collects every differing path, raw, whatever maxDifferences, noisePaths and presets say', () => {
    const a = json({ id: 'a', meta: { v: 1 }, xs: [1] }, { headers: { etag: '1' } });
    const b = json({ id: 'b', meta: { v: 2 }, xs: [] }, { headers: { etag: '2' }, status: 201 });
    expect([...noisePathsBetween(a, b, { maxDifferences: 1, noisePaths: new Set(['id']) })]).toEqual([
      'status',
      'header:etag',
      'id',
      'meta.v',
      'xs[0]',
    ]);
  });

  it('honours ignoreHeaders, headers and baseUrls', () => {
    const a = json({ l: 'http://nb1.example/x' }, { headers: { etag: '1', 'x-id': '1' } });
    const b = json({ l: 'http://nb2.example/x' }, { headers: { etag: '2', 'x-id': '2' } });
    expect([...noisePathsBetween(a, b)]).toEqual(['header:etag', 'l']);
    expect([
      ...noisePathsBetween(a, b, {
        headers: ['x-id', 'etag'],
        ignoreHeaders: ['etag'],
        baseUrls: ['http://nb1.example', 'http://nb2.example'],
      }),
    ]).toEqual(['header:x-id']);
  });

  it('is empty for equal answers', () => {
    expect(noisePathsBetween(json({ a: 1 }), json({ a: 1 })).size).toBe(0);
  });
});

describe('presets', () => {
  const item = (ext: unknown[]) => ({ entry: [{ extension: [{ url: 'x', extension: ext }] }] });
  const version = { url: 'referralRequestVersion', valueString: '3' };

  it('moves the differences a preset matches to ignoredByPreset, leaving the answers equal', () => {
    const r = compareAnswers(json(item([])), json(item([version])), { presets: KNOWN_DIFFERENCES });
    expect(r).toStrictEqual(
      equalJson({
        ignoredByPreset: [
          {
            id: 'A008-referralRequestVersion',
            fields: 2,
            paths: ['entry[0].extension[0].extension[0].url', 'entry[0].extension[0].extension[0].valueString'],
          },
        ],
      }),
    );
  });

  it('keeps other differences, and reports them without presets', () => {
    const p = { ...item([]), id: 1 };
    const s = { ...item([version]), id: 2 };
    const r = compareAnswers(json(p), json(s), { presets: KNOWN_DIFFERENCES });
    expect(r.equal).toBe(false);
    expect(r.differences).toStrictEqual([{ path: 'id', kind: 'changed', primary: 1, secondary: 2 }]);
    expect(r.ignoredByPreset?.[0]?.fields).toBe(2);
    const none = compareAnswers(json(item([])), json(item([version])));
    expect(none.equal).toBe(false);
    expect(paths(none)).toEqual([
      'entry[0].extension[0].extension[0].url',
      'entry[0].extension[0].extension[0].valueString',
    ]);
    expect('ignoredByPreset' in none).toBe(false);
  });
});

describe('body kinds', () => {
  const pdfBytes = Buffer.from('%PDF-1.4 binary-ish');

  it('compares JSON-typed bodies that do not parse as text, and equal ones as JSON', () => {
    const r = compareAnswers(raw('{oops', 'application/json'), raw('{oopz', 'application/json'));
    expect(r).toStrictEqual(
      equalJson({
        equal: false,
        bodyKind: 'text',
        differences: [{ path: 'body', kind: 'changed', primary: '{oops', secondary: '{oopz' }],
      }),
    );
    expect(compareAnswers(raw('{oops', 'application/json'), raw('{oops', 'application/json'))).toStrictEqual(
      equalJson(),
    );
  });

  it.each([
    ['application/json', 'text/plain', 'json'],
    ['text/plain', 'application/json', 'json'],
    [undefined, undefined, 'text'],
    ['text/plain', 'text/plain', 'text'],
  ])('finds equal unparseable bodies (%s, %s) equal as %s', (pct, sct, kind) => {
    const r = compareAnswers(raw('not json', pct), raw('not json', sct));
    expect(r.equal).toBe(pct === sct);
    expect(r.bodyKind).toBe(kind);
    expect(r.differences.filter((d) => d.path === 'body')).toStrictEqual([]);
  });

  it('finds equal parseable bodies equal as JSON without a JSON type, and with a BOM', () => {
    expect(compareAnswers(raw('[1]', 'text/plain'), raw('[1]', 'text/plain'))).toStrictEqual(equalJson());
    expect(compareAnswers(raw('\ufeff[1]', undefined), raw('\ufeff[1]', undefined))).toStrictEqual(equalJson());
  });

  it('parses JSON after a byte order mark', () => {
    const r = compareAnswers(raw('\ufeff{"a":1}', 'application/json'), raw('{"a":2}', 'application/json'));
    expect(r).toStrictEqual(
      equalJson({ equal: false, differences: [{ path: 'a', kind: 'changed', primary: 1, secondary: 2 }] }),
    );
    const same = compareAnswers(raw('\ufeff{"a":1}', 'text/plain'), raw('{ "a": 1 }', 'text/plain'));
    expect(same).toStrictEqual(equalJson());
  });

  it('takes a BOM alone for not JSON', () => {
    const r = compareAnswers(raw('\ufeff', 'application/json'), raw('{"a":1}', 'application/json'));
    expect(r.differences).toStrictEqual([
      { path: 'body', kind: 'type', primary: 'not JSON (application/json), 3 bytes', secondary: 'JSON, 7 bytes' },
    ]);
  });

  it('describes a JSON body against a non-JSON body, with or without a content-type', () => {
    const r = compareAnswers(raw('oops', undefined), raw('{"a":1}', 'application/json'));
    expect(r).toStrictEqual(
      equalJson({
        equal: false,
        differences: [
          { path: 'header:content-type', kind: 'only-secondary', secondary: 'application/json' },
          { path: 'body', kind: 'type', primary: 'not JSON (no content-type), 4 bytes', secondary: 'JSON, 7 bytes' },
        ],
      }),
    );
    const t = compareAnswers(raw('[1]', 'application/json'), raw('<x/>', 'text/xml'));
    expect(t.differences[1]).toStrictEqual({
      path: 'body',
      kind: 'type',
      primary: 'JSON, 3 bytes',
      secondary: 'not JSON (text/xml), 4 bytes',
    });
  });

  it('reports a JSON-typed body on one side only by its size', () => {
    expect(compareAnswers(raw('', 'application/json'), raw('{"a":1}', 'application/json'))).toStrictEqual(
      equalJson({
        equal: false,
        differences: [{ path: 'body', kind: 'only-secondary', primary: '0 bytes', secondary: '7 bytes' }],
      }),
    );
    expect(compareAnswers(raw('nope', 'application/json'), raw('', 'application/json'))).toStrictEqual(
      equalJson({
        equal: false,
        differences: [{ path: 'body', kind: 'only-primary', primary: '4 bytes', secondary: '0 bytes' }],
      }),
    );
  });

  it('takes a parseable body against an empty one for JSON even without a JSON type', () => {
    expect(compareAnswers(raw('', 'text/plain'), raw('{"a":1}', 'text/plain'))).toStrictEqual(
      equalJson({
        equal: false,
        differences: [{ path: 'body', kind: 'only-secondary', primary: '0 bytes', secondary: '7 bytes' }],
      }),
    );
    expect(compareAnswers(raw('[2]', undefined), raw('', undefined))).toStrictEqual(
      equalJson({
        equal: false,
        differences: [{ path: 'body', kind: 'only-primary', primary: '3 bytes', secondary: '0 bytes' }],
      }),
    );
  });

  it('reports a text body on one side only by its size', () => {
    expect(compareAnswers(raw('', 'text/plain'), raw('hello', 'text/plain'))).toStrictEqual(
      equalJson({
        equal: false,
        bodyKind: 'text',
        differences: [{ path: 'body', kind: 'only-secondary', primary: '0 bytes', secondary: '5 bytes' }],
      }),
    );
    expect(compareAnswers(raw('héllo', 'text/plain'), raw('', 'text/plain'))).toStrictEqual(
      equalJson({
        equal: false,
        bodyKind: 'text',
        differences: [{ path: 'body', kind: 'only-primary', primary: '6 bytes', secondary: '0 bytes' }],
      }),
    );
  });

  it.each([
    ['{"a":1}', 'hello'],
    ['hello', '{"a":1}'],
  ])('compares a parseable body against text as text when neither is JSON-typed (%s, %s)', (p, s) => {
    const r = compareAnswers(raw(p, 'text/plain'), raw(s, 'text/plain'));
    expect(r).toStrictEqual(
      equalJson({
        equal: false,
        bodyKind: 'text',
        differences: [{ path: 'body', kind: 'changed', primary: p, secondary: s }],
      }),
    );
  });

  it('compares bodies that both parse, without JSON types, as JSON', () => {
    const r = compareAnswers(raw('{"a":1}', 'text/plain'), raw('{"a":2}', undefined));
    expect(r).toStrictEqual(
      equalJson({
        equal: false,
        differences: [
          { path: 'header:content-type', kind: 'only-primary', primary: 'text/plain' },
          { path: 'a', kind: 'changed', primary: 1, secondary: 2 },
        ],
      }),
    );
  });

  it.each([
    ['application/pdf', 'text/plain'],
    ['text/plain', 'application/octet-stream'],
  ])('compares parseable bodies as binary when one side has a binary type (%s, %s)', (pct, sct) => {
    const p = Buffer.from('{"a":1}');
    const s = Buffer.from('{"a":2}');
    const r = compareAnswers(raw(p, pct), raw(s, sct));
    expect(r).toStrictEqual({
      equal: false,
      statusEqual: true,
      primaryStatus: 200,
      secondaryStatus: 200,
      bodyKind: 'binary',
      differences: [
        { path: 'header:content-type', kind: 'changed', primary: pct, secondary: sct },
        { path: 'body', kind: 'changed', primary: '7 bytes', secondary: '7 bytes' },
      ],
      noise: [],
      primarySize: 7,
      secondarySize: 7,
      primarySha256: sha(p),
      secondarySha256: sha(s),
    });
  });

  it.each([
    ['application/pdf', 'text/plain'],
    ['text/plain', 'application/pdf'],
  ])('compares equal text as binary when one side has a binary type (%s, %s)', (pct, sct) => {
    const r = compareAnswers(raw('hello', pct), raw('hello', sct));
    expect(r.bodyKind).toBe('binary');
    expect(r.differences).toStrictEqual([
      { path: 'header:content-type', kind: 'changed', primary: pct, secondary: sct },
    ]);
    expect(r.primarySha256).toBe(sha('hello'));
    expect(r.secondarySha256).toBe(sha('hello'));
  });

  it('compares a JSON type against a binary type as JSON when both parse', () => {
    const r = compareAnswers(raw('{"a":1}', 'application/json'), raw('{"a":1}', 'application/pdf'));
    expect(r.bodyKind).toBe('json');
    expect(paths(r)).toEqual(['header:content-type']);
  });

  it('reports binary bodies on one side only, and finds equal binary bodies equal', () => {
    const pdf = (b: Buffer | string) => raw(b, 'application/pdf');
    const one = compareAnswers(pdf(''), pdf(pdfBytes));
    expect(one).toStrictEqual({
      ...equalJson({ equal: false, bodyKind: 'binary' }),
      differences: [
        { path: 'body', kind: 'only-secondary', primary: '0 bytes', secondary: `${pdfBytes.length} bytes` },
      ],
      primarySize: 0,
      secondarySize: pdfBytes.length,
      primarySha256: sha(''),
      secondarySha256: sha(pdfBytes),
    });
    const other = compareAnswers(pdf(pdfBytes), pdf(''));
    expect(other.differences).toStrictEqual([
      { path: 'body', kind: 'only-primary', primary: `${pdfBytes.length} bytes`, secondary: '0 bytes' },
    ]);
    expect(compareAnswers(pdf(pdfBytes), pdf(Buffer.from(pdfBytes)))).toStrictEqual({
      ...equalJson({ bodyKind: 'binary' }),
      primarySize: pdfBytes.length,
      secondarySize: pdfBytes.length,
      primarySha256: sha(pdfBytes),
      secondarySha256: sha(pdfBytes),
    });
  });

  it.each([
    ['a NUL byte', Buffer.from('a\u0000b'), Buffer.from('a\u0000c')],
    ['invalid UTF-8 on the primary', Buffer.from([0xff, 0x41]), Buffer.from('zA')],
    ['invalid UTF-8 on the secondary', Buffer.from('zA'), Buffer.from([0xff, 0x41])],
  ])('compares bodies with %s as binary, whatever the content-type says', (_what, p, s) => {
    const r = compareAnswers(raw(p, 'text/plain'), raw(s, 'text/plain'));
    expect(r).toStrictEqual({
      ...equalJson({ equal: false, bodyKind: 'binary' }),
      differences: [{ path: 'body', kind: 'changed', primary: `${p.length} bytes`, secondary: `${s.length} bytes` }],
      primarySize: p.length,
      secondarySize: s.length,
      primarySha256: sha(p),
      secondarySha256: sha(s),
    });
  });

  it('finds equal bodies with a NUL byte equal as binary', () => {
    const b = Buffer.from('a\u0000b');
    const r = compareAnswers(raw(b, 'text/plain'), raw(Buffer.from(b), 'text/plain'));
    expect(r).toStrictEqual({
      ...equalJson({ bodyKind: 'binary' }),
      primarySize: 3,
      secondarySize: 3,
      primarySha256: sha(b),
      secondarySha256: sha(b),
    });
  });

  it.each([
    ['primary', Buffer.from([0xff]), Buffer.from('\ufffd')],
    ['secondary', Buffer.from('\ufffd'), Buffer.from([0xff])],
  ])('does not take invalid UTF-8 on the %s for the text it decodes to', (_side, p, s) => {
    const r = compareAnswers(raw(p, undefined), raw(s, undefined));
    expect(r.bodyKind).toBe('binary');
    expect(r.differences).toStrictEqual([
      { path: 'body', kind: 'changed', primary: `${p.length} bytes`, secondary: `${s.length} bytes` },
    ]);
  });

  it.each([
    'text/plain',
    'text/html',
    'text/csv',
    'application/json',
    'application/problem+json',
    'application/xml',
    'application/atom+xml',
    'application/javascript',
    'application/x-www-form-urlencoded',
  ])('compares %s bodies as text', (ct) => {
    const r = compareAnswers(raw('a=1&b', ct), raw('a=2&b', ct));
    expect(r).toStrictEqual(
      equalJson({
        equal: false,
        bodyKind: 'text',
        differences: [{ path: 'body', kind: 'changed', primary: 'a=1&b', secondary: 'a=2&b' }],
      }),
    );
  });

  it.each([
    'application/pdf',
    'application/octet-stream',
    'image/png',
    'application/xml-dtd',
    'application/x-javascript',
    'application/xhtml',
  ])('compares %s bodies as binary', (ct) => {
    const r = compareAnswers(raw('a=1&b', ct), raw('a=2&b', ct));
    expect(r.bodyKind).toBe('binary');
    expect(r.differences).toStrictEqual([{ path: 'body', kind: 'changed', primary: '5 bytes', secondary: '5 bytes' }]);
  });

  it('finds two empty bodies equal whatever their types', () => {
    expect(compareAnswers(raw('', 'application/pdf'), raw('', 'application/json'))).toStrictEqual({
      ...equalJson({ equal: false, bodyKind: 'empty' }),
      differences: [
        { path: 'header:content-type', kind: 'changed', primary: 'application/pdf', secondary: 'application/json' },
      ],
    });
  });
});

describe('truncated bodies', () => {
  it.each([
    [{ truncated: true }, {}],
    [{}, { truncated: true }],
  ])('compares JSON as text when a body was cut (%j, %j)', (pe, se) => {
    const r = compareAnswers(
      raw('{"a":1}', 'application/json', pe as Partial<CapturedAnswer>),
      raw('{"a":2}', 'application/json', se as Partial<CapturedAnswer>),
    );
    expect(r).toStrictEqual(
      equalJson({
        equal: false,
        bodyKind: 'text',
        truncated: true,
        differences: [{ path: 'body', kind: 'changed', primary: '{"a":1}', secondary: '{"a":2}' }],
      }),
    );
  });

  it.each([
    [{ truncated: true }, {}],
    [{}, { truncated: true }],
  ])('finds equal cut JSON bodies equal, as text (%j, %j)', (pe, se) => {
    const r = compareAnswers(
      raw('{"a":1}', 'application/json', pe as Partial<CapturedAnswer>),
      raw('{"a":1}', 'application/json', se as Partial<CapturedAnswer>),
    );
    expect(r).toStrictEqual(equalJson({ bodyKind: 'text', truncated: true }));
  });

  it('marks the result truncated only when a body was cut', () => {
    expect('truncated' in compareAnswers(json({ a: 1 }), json({ a: 1 }))).toBe(false);
    expect(compareAnswers(json({ a: 1 }), json({ a: 1 }), {})).toStrictEqual(equalJson());
  });
});

describe('text excerpts', () => {
  const z = (n: number) => 'z'.repeat(n);
  const pair = (before: number, after: number) => [`${z(before)}P${z(after)}`, `${z(before)}S${z(after)}`] as const;
  const excerpts = (p: string, s: string) => {
    const r = compareAnswers(raw(p, 'text/plain'), raw(s, 'text/plain'));
    const d = r.differences[0]!;
    expect(r.differences).toHaveLength(1);
    expect(d.path).toBe('body');
    expect(d.kind).toBe('changed');
    return [d.primary, d.secondary];
  };

  it.each([
    [39, 39],
    [40, 40],
  ])('shows all before a first difference at %i (no leading ellipsis)', (i) => {
    const [p, s] = pair(i, 10);
    expect(excerpts(p, s)).toEqual([p, s]);
  });

  it('cuts what lies more than 40 characters before the first difference', () => {
    const [p, s] = pair(41, 10);
    expect(excerpts(p, s)).toEqual([`…${z(40)}P${z(10)}`, `…${z(40)}S${z(10)}`]);
    const [p2, s2] = pair(100, 0);
    expect(excerpts(p2, s2)).toEqual([`…${z(40)}P`, `…${z(40)}S`]);
  });

  it.each([
    [78, false],
    [79, false],
    [80, true],
  ])('after the first difference, shows 80 characters (%i follow: cut %s)', (after, cut) => {
    const [p, s] = pair(5, after);
    const shown = Math.min(after, 79);
    expect(excerpts(p, s)).toEqual([`${z(5)}P${z(shown)}${cut ? '…' : ''}`, `${z(5)}S${z(shown)}${cut ? '…' : ''}`]);
  });

  it('cuts both ends of a long text around the first difference', () => {
    const [p, s] = pair(200, 200);
    expect(excerpts(p, s)).toEqual([`…${z(40)}P${z(79)}…`, `…${z(40)}S${z(79)}…`]);
  });

  it('starts at the end of the shorter text when one is a prefix of the other', () => {
    expect(excerpts(z(100), z(200))).toEqual([`…${z(40)}`, `…${z(120)}…`]);
    expect(excerpts(z(200), z(100))).toEqual([`…${z(120)}…`, `…${z(40)}`]);
  });

  it('starts at the beginning when the texts differ only inside redacted values', () => {
    const tail = ` ${z(150)}`;
    expect(excerpts(`9434765919${tail}`, `9434765918${tail}`)).toEqual([
      `[redacted:nhs-number] ${z(58)}…`,
      `[redacted:nhs-number] ${z(58)}…`,
    ]);
  });

  it('shows excerpts folded', () => {
    const r = compareAnswers(
      raw('at http://tx1.example/a', 'text/plain'),
      raw('at http://tx2.example/b', 'text/plain'),
      {
        baseUrls: ['http://tx1.example', 'http://tx2.example'],
      },
    );
    expect(r.differences).toStrictEqual([
      { path: 'body', kind: 'changed', primary: 'at <base>/a', secondary: 'at <base>/b' },
    ]);
  });
});
