import { describe, expect, it } from 'vitest';
import { flatten, formatPath, globToMatcher, nameGlobToMatcher, parsePath } from '../../../src/comparison/paths.js';

describe('flatten', () => {
  it('maps every leaf to its path, in document order; empty objects and arrays are leaves', () => {
    const m = flatten({
      resourceType: 'Bundle',
      meta: { lastUpdated: 't' },
      entry: [{ fullUrl: 'u', resource: { extension: [], contained: {} } }, null],
      total: 2,
      ok: false,
    });
    expect([...m.entries()]).toEqual([
      ['resourceType', 'Bundle'],
      ['meta.lastUpdated', 't'],
      ['entry[0].fullUrl', 'u'],
      ['entry[0].resource.extension', []],
      ['entry[0].resource.contained', {}],
      ['entry[1]', null],
      ['total', 2],
      ['ok', false],
    ]);
  });

  it('quotes keys with dots, brackets, spaces, quotes or wildcards', () => {
    const m = flatten({ 'a.b': 1, 'c d': { '[x]': 2 }, 'say "hi"': 3, '*': 4, 'content-type': 5, '': 6 });
    expect([...m.keys()]).toEqual(['["a.b"]', '["c d"]["[x]"]', '["say \\"hi\\""]', '["*"]', 'content-type', '[""]']);
  });

  it('uses `$` for the root, and `[n]` for a root array', () => {
    expect([...flatten('x').entries()]).toEqual([['$', 'x']]);
    expect([...flatten({}).entries()]).toEqual([['$', {}]]);
    expect([...flatten([[1]]).keys()]).toEqual(['[0][0]']);
  });
});

describe('parsePath / formatPath', () => {
  it('round-trips paths, odd keys included', () => {
    for (const p of ['entry[0].resource.meta.lastUpdated', '["a.b"]["c d"][3].e', '[0][1]', '$', '["say \\"]\\""].x']) {
      expect(formatPath(parsePath(p))).toBe(p);
    }
    expect(parsePath('entry[10]["x.y"].z')).toEqual(['entry', 10, 'x.y', 'z']);
    expect(parsePath('$')).toEqual([]);
  });

  it('refuses malformed paths', () => {
    for (const bad of ['a..b', 'a.', '.a', 'a[', 'a[x]', 'a[0]b']) expect(() => parsePath(bad), bad).toThrow();
  });
});

describe('globToMatcher', () => {
  const cases: Array<[string, string, boolean]> = [
    ['**.lastUpdated', 'meta.lastUpdated', true],
    ['**.lastUpdated', 'entry[0].resource.meta.lastUpdated', true],
    ['**.lastUpdated', 'lastUpdated', true], // `**` matches zero segments
    ['**.lastUpdated', 'meta.lastUpdatedBy', false],
    ['**.lastUpdated', 'meta.lastUpdated.x', false],
    ['entry[*].fullUrl', 'entry[0].fullUrl', true],
    ['entry[*].fullUrl', 'entry[12].fullUrl', true],
    ['entry[*].fullUrl', 'entry.x.fullUrl', false], // `[*]` is an index only
    ['entry[*].fullUrl', 'entry[0].resource.fullUrl', false],
    ['meta.*', 'meta.versionId', true],
    ['meta.*', 'meta.profile', true],
    ['meta.*', 'meta.profile[0]', false], // `*` is one segment
    ['meta.*', 'entry[0].resource.meta.versionId', false], // anchored at the root
    ['meta.*', 'meta', false],
    ['entry.*.fullUrl', 'entry[3].fullUrl', true], // `*` matches an index too
    ['**', 'anything[0].at.all', true],
    ['**', '$', true],
    ['a.**.z', 'a.z', true],
    ['a.**.z', 'a.b[1].c.z', true],
    ['a.**.z', 'a.b.c', false],
    ['value*', 'valueString', false], // everything else is literal
    ['value*', '["value*"]', true],
    ['["odd key"].x', '["odd key"].x', true],
    ['**[*].code', 'coding[0].code', true],
    ['**[*].code', 'coding.code', false],
  ];
  it.each(cases)('%s against %s → %s', (glob, path, expected) => {
    expect(globToMatcher(glob)(path)).toBe(expected);
  });

  it('takes segments as well as strings, and never matches a malformed path', () => {
    expect(globToMatcher('entry[*].fullUrl')(['entry', 2, 'fullUrl'])).toBe(true);
    expect(globToMatcher('**')('a..b')).toBe(false);
  });

  it('refuses malformed globs', () => {
    expect(() => globToMatcher('entry[*.x')).toThrow();
    expect(() => globToMatcher('a..b')).toThrow();
  });
});

describe('nameGlobToMatcher', () => {
  it('matches names case-insensitively with `*` as any run, the rest literal', () => {
    const m = nameGlobToMatcher('x-*');
    expect(m('X-Request-ID')).toBe(true);
    expect(m('x-')).toBe(true);
    expect(m('etag')).toBe(false);
    expect(nameGlobToMatcher('content-type')('Content-Type')).toBe(true);
    expect(nameGlobToMatcher('a.b')('axb')).toBe(false);
    expect(nameGlobToMatcher('*')('anything')).toBe(true);
  });
});
