/**
 * The link rewrites of src/translation/response.ts in detail: every header rule, both directions, both JSON
 * spellings, and the byte versions against the string ones (same answer, same Buffer when nothing changes), on the
 * three ways the byte search can go: a long common anchor (the host), an anchor at the start of every pattern
 * (`https:`, for short hosts), and no anchor at all (short `http:` hosts).
 *
 * The module keeps replacement lists per pair of bases: every test makes its own bases (`fresh`), so that each one
 * builds its lists itself.
 */
import { describe, expect, it } from 'vitest';
import {
  type BaseUrls,
  legacyResponseHeaders,
  rewriteApimUrls,
  rewriteApimUrlsIn,
  rewriteLegacyUrls,
  rewriteLegacyUrlsIn,
} from '../../src/translation/response.js';

let made = 0;

type Shape = 'long host' | 'short https host' | 'short http host';
const SHAPES: Shape[] = ['long host', 'short https host', 'short http host'];

/** Bases no other test uses. */
function fresh(shape: Shape = 'long host', withHscn = true): Required<BaseUrls> {
  const n = ++made;
  const k = n.toString(36).padStart(2, '0').slice(-2);
  switch (shape) {
    case 'long host':
      return {
        apimBase: `https://int${n}.api.service.nhs.uk/referrals/FHIR`,
        legacyBase: `https://ers-bridge${n}.trust.nhs.uk/ers-api`,
        hscnBase: withHscn ? `https://api${n}.int1.ers.ncrs.nhs.uk/ers-api` : (undefined as unknown as string),
      };
    case 'short https host':
      // every run between slashes is under 6 bytes but `https:`: the anchor is at offset 0 of every pattern
      return {
        apimBase: `https://a${k}.io/F`,
        legacyBase: `https://l${k}.io/e`,
        hscnBase: withHscn ? `https://h${k}.io/e` : (undefined as unknown as string),
      };
    case 'short http host':
      // no run of 6 bytes at all: no anchor, each pattern searched for
      return {
        apimBase: `http://a${k}/F`,
        legacyBase: `http://l${k}/e`,
        hscnBase: withHscn ? `http://h${k}/e` : (undefined as unknown as string),
      };
  }
}

const esc = (s: string) => s.replaceAll('/', '\\/');

/** The string rewrite and the byte rewrite both give `expected`. */
function expectToLegacy(body: string, urls: BaseUrls, expected: string): void {
  const bytes = Buffer.from(body, 'utf8');
  const out = rewriteApimUrlsIn(bytes, urls);
  expect(out.toString('utf8')).toBe(expected);
  expect(out.length).toBe(Buffer.byteLength(expected));
  expect(rewriteApimUrls(body, urls)).toBe(expected);
  if (expected === body) expect(out).toBe(bytes);
  else expect(out).not.toBe(bytes);
}

function expectToApim(body: string, urls: BaseUrls, expected: string): void {
  const bytes = Buffer.from(body, 'utf8');
  const out = rewriteLegacyUrlsIn(bytes, urls);
  expect(out.toString('utf8')).toBe(expected);
  expect(out.length).toBe(Buffer.byteLength(expected));
  expect(rewriteLegacyUrls(body, urls)).toBe(expected);
  if (expected === body) expect(out).toBe(bytes);
  else expect(out).not.toBe(bytes);
}

describe('legacyResponseHeaders', () => {
  const PASS = [
    'content-type',
    'content-disposition',
    'content-language',
    'etag',
    'cache-control',
    'expires',
    'last-modified',
    'retry-after',
    'pragma',
  ];

  it.each(PASS)('passes %s on alone, as it is', (name) => {
    const urls = fresh();
    expect(legacyResponseHeaders({ [name]: 'v a l;u=e' }, urls, 'corr')).toStrictEqual({
      [name]: 'v a l;u=e',
      'x-correlation-id': 'corr',
    });
  });

  it.each(PASS)('passes the first of a repeated %s', (name) => {
    expect(legacyResponseHeaders({ [name]: ['one', 'two'] }, fresh(), 'c')).toStrictEqual({
      [name]: 'one',
      'x-correlation-id': 'c',
    });
  });

  it('passes an empty value, and drops an empty list or an undefined value', () => {
    expect(legacyResponseHeaders({ etag: '' }, fresh(), 'c')).toStrictEqual({ etag: '', 'x-correlation-id': 'c' });
    expect(
      legacyResponseHeaders({ etag: [], pragma: undefined, location: [], 'x-request-id': [] }, fresh(), 'c'),
    ).toStrictEqual({ 'x-correlation-id': 'c' });
  });

  it('passes all nine together', () => {
    const upstream = Object.fromEntries(PASS.map((n, i) => [n, `v${i}`]));
    expect(legacyResponseHeaders(upstream, fresh(), 'c')).toStrictEqual({ ...upstream, 'x-correlation-id': 'c' });
  });

  it.each([
    'set-cookie',
    'content-length',
    'content-encoding',
    'transfer-encoding',
    'connection',
    'server',
    'vary',
    'x-ers-network-id',
    'nhsd-correlation-id',
    'x-correlation-id',
    'x-request-id-extra',
    'x_ers_transaction_id',
    'strict-transport-security',
    'access-control-allow-origin',
    'Content-Type',
  ])('drops %s', (name) => {
    expect(legacyResponseHeaders({ [name]: 'abc' }, fresh(), 'mine')).toStrictEqual({ 'x-correlation-id': 'mine' });
  });

  it('no upstream headers: only our correlation id', () => {
    expect(legacyResponseHeaders({}, fresh(), 'c-1')).toStrictEqual({ 'x-correlation-id': 'c-1' });
  });

  it.each([
    [
      'STU3',
      (a: string) => `${a}/STU3/ReferralRequest/000000070000`,
      (l: string) => `${l}/STU3/v1/ReferralRequest/000000070000`,
    ],
    ['R4', (a: string) => `${a}/R4/HealthcareService/1`, (l: string) => `${l}/R4/v1/HealthcareService/1`],
  ])('rewrites a %s Location to the legacy base', (_, apim, legacy) => {
    const urls = fresh();
    expect(legacyResponseHeaders({ location: apim(urls.apimBase) }, urls, 'c')).toStrictEqual({
      location: legacy(urls.legacyBase),
      'x-correlation-id': 'c',
    });
  });

  it('rewrites the first of a repeated Location', () => {
    const urls = fresh();
    const out = legacyResponseHeaders({ location: [`${urls.apimBase}/STU3/A`, `${urls.apimBase}/STU3/B`] }, urls, 'c');
    expect(out['location']).toBe(`${urls.legacyBase}/STU3/v1/A`);
  });

  it.each(['', 'Binary/att-1', 'https://s3.example/bucket/o?X-Amz-Signature=a', '/STU3/ReferralRequest/1'])(
    'keeps the Location %j as it is',
    (location) => {
      expect(legacyResponseHeaders({ location }, fresh(), 'c')).toStrictEqual({ location, 'x-correlation-id': 'c' });
    },
  );

  it.each([
    'a',
    'Z',
    '0',
    '9',
    '-',
    'AZaz09-',
    '3f2504e0-4f89-11d3-9a0c-0305e82c3301',
    'x'.repeat(99),
    'x'.repeat(100),
    `${'a'.repeat(50)}${'Z'.repeat(49)}9`,
  ])('X_ERS_TRANSACTION_ID from the x-request-id %s', (id) => {
    expect(legacyResponseHeaders({ 'x-request-id': id }, fresh(), 'c')).toStrictEqual({
      X_ERS_TRANSACTION_ID: id,
      'x-correlation-id': 'c',
    });
  });

  it.each([
    '',
    'x'.repeat(101),
    'x'.repeat(200),
    '!abc',
    'abc!',
    'ab_c',
    'ab c',
    'ab.c',
    'abc\n',
    '\nabc',
    'a\r\nSet-Cookie: x=y',
    'é',
    'a/b',
  ])('no X_ERS_TRANSACTION_ID from the x-request-id %j', (id) => {
    expect(legacyResponseHeaders({ 'x-request-id': id }, fresh(), 'c')).toStrictEqual({ 'x-correlation-id': 'c' });
  });

  it('a repeated x-request-id: the first decides', () => {
    expect(legacyResponseHeaders({ 'x-request-id': ['first-1', 'second-2'] }, fresh(), 'c')).toStrictEqual({
      X_ERS_TRANSACTION_ID: 'first-1',
      'x-correlation-id': 'c',
    });
    expect(legacyResponseHeaders({ 'x-request-id': ['bad id', 'good-2'] }, fresh(), 'c')).toStrictEqual({
      'x-correlation-id': 'c',
    });
  });
});

describe.each(SHAPES)('APIM → legacy with a %s', (shape) => {
  it('STU3 and R4, plain and escaped, give exactly the legacy forms', () => {
    const { apimBase: a, legacyBase: l } = fresh(shape);
    expectToLegacy(`${a}/STU3/CodeSystem/X`, { apimBase: a, legacyBase: l }, `${l}/STU3/v1/CodeSystem/X`);
    expectToLegacy(`${a}/R4/HealthcareService/1`, { apimBase: a, legacyBase: l }, `${l}/R4/v1/HealthcareService/1`);
    expectToLegacy(
      `"${esc(a)}\\/STU3\\/Slot\\/1"`,
      { apimBase: a, legacyBase: l },
      `"${esc(l)}\\/STU3\\/v1\\/Slot\\/1"`,
    );
    expectToLegacy(`"${esc(a)}\\/R4\\/X"`, { apimBase: a, legacyBase: l }, `"${esc(l)}\\/R4\\/v1\\/X"`);
  });

  it('a link at the very start, and one that ends the body', () => {
    const urls = fresh(shape);
    const { apimBase: a, legacyBase: l } = urls;
    expectToLegacy(`${a}/STU3/`, urls, `${l}/STU3/v1/`);
    expectToLegacy(`${a}/STU3/x`, urls, `${l}/STU3/v1/x`);
    expectToLegacy(`x ${a}/R4/`, urls, `x ${l}/R4/v1/`);
    expectToLegacy(`${esc(a)}\\/R4\\/`, urls, `${esc(l)}\\/R4\\/v1\\/`);
  });

  it('adjacent links, of every pattern, in every order', () => {
    const urls = fresh(shape);
    const { apimBase: a, legacyBase: l } = urls;
    const ea = esc(a);
    const el = esc(l);
    expectToLegacy(`${a}/STU3/${a}/STU3/`, urls, `${l}/STU3/v1/${l}/STU3/v1/`);
    expectToLegacy(
      `${a}/R4/${ea}\\/STU3\\/${a}/STU3/${ea}\\/R4\\/`,
      urls,
      `${l}/R4/v1/${el}\\/STU3\\/v1\\/${l}/STU3/v1/${el}\\/R4\\/v1\\/`,
    );
  });

  it('links with text between them, interleaved', () => {
    const urls = fresh(shape);
    const { apimBase: a, legacyBase: l } = urls;
    expectToLegacy(
      `aa${a}/STU3/1 bbb ${a}/R4/2 cccc ${esc(a)}\\/STU3\\/3 d ${a}/STU3/4 eeeee`,
      urls,
      `aa${l}/STU3/v1/1 bbb ${l}/R4/v1/2 cccc ${esc(l)}\\/STU3\\/v1\\/3 d ${l}/STU3/v1/4 eeeee`,
    );
    expectToLegacy(`${a}/R4/1 ${a}/STU3/2 ${a}/R4/3`, urls, `${l}/R4/v1/1 ${l}/STU3/v1/2 ${l}/R4/v1/3`);
    expectToLegacy(`${esc(a)}\\/R4\\/1 ${a}/STU3/2`, urls, `${esc(l)}\\/R4\\/v1\\/1 ${l}/STU3/v1/2`);
  });

  it('near misses around real links: only the real links change', () => {
    const urls = fresh(shape);
    const { apimBase: a, legacyBase: l } = urls;
    expectToLegacy(
      `${a}/metadata ${a}X/STU3/a ${a}/STU3 ${a}/stu3/b ${a}/STU3/ok ${a}\\/STU3\\/mixed ${esc(a)}/STU3/m2 ${a}/R4/c ${a}/STU`,
      urls,
      `${a}/metadata ${a}X/STU3/a ${a}/STU3 ${a}/stu3/b ${l}/STU3/v1/ok ${a}\\/STU3\\/mixed ${esc(a)}/STU3/m2 ${l}/R4/v1/c ${a}/STU`,
    );
  });

  it('a base directly followed by a link: the scan goes on past the near miss', () => {
    const urls = fresh(shape);
    const { apimBase: a, legacyBase: l } = urls;
    expectToLegacy(`${a}${a}/STU3/x`, urls, `${a}${l}/STU3/v1/x`);
    expectToLegacy(`${a}/${a}/R4/x${a}`, urls, `${a}/${l}/R4/v1/x${a}`);
  });

  it('bytes beyond ASCII around the links are kept', () => {
    const urls = fresh(shape);
    const { apimBase: a, legacyBase: l } = urls;
    expectToLegacy(`é${a}/STU3/é 🏥${a}/R4/— “q”`, urls, `é${l}/STU3/v1/é 🏥${l}/R4/v1/— “q”`);
  });

  it.each([
    ['empty', () => ''],
    ['no link', () => '{"url":"https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1"}'],
    ['the base alone', (a: string) => a],
    ['the base and /STU3 without a slash', (a: string) => `${a}/STU3`],
    ['a link cut short at the end', (a: string) => `x ${a}/ST`],
    ['the base then a foreign path', (a: string) => `${a}/metadata ${a}/R5/x`],
    ['the host at the very start, not a link', (a: string) => `${a.slice(a.indexOf('//') + 2)}/STU3/x`],
    ['the legacy form already', (_: string, l: string) => `${l}/STU3/v1/x`],
  ])('%s: the very same Buffer back', (_, make) => {
    const urls = fresh(shape);
    const body = make(urls.apimBase, urls.legacyBase);
    expectToLegacy(body, urls, body);
  });
});

describe.each(SHAPES)('legacy → APIM with a %s', (shape) => {
  it('the legacy base and the HSCN base, STU3 and R4, plain and escaped', () => {
    const urls = fresh(shape);
    const { apimBase: a, legacyBase: l, hscnBase: h } = urls;
    expectToApim(`${l}/STU3/v1/CodeSystem/X`, urls, `${a}/STU3/CodeSystem/X`);
    expectToApim(`${l}/R4/v1/HealthcareService/1`, urls, `${a}/R4/HealthcareService/1`);
    expectToApim(`${h}/STU3/v1/CodeSystem/Y`, urls, `${a}/STU3/CodeSystem/Y`);
    expectToApim(`${h}/R4/v1/Practitioner`, urls, `${a}/R4/Practitioner`);
    expectToApim(`"${esc(l)}\\/STU3\\/v1\\/A"`, urls, `"${esc(a)}\\/STU3\\/A"`);
    expectToApim(`"${esc(l)}\\/R4\\/v1\\/B"`, urls, `"${esc(a)}\\/R4\\/B"`);
    expectToApim(`"${esc(h)}\\/STU3\\/v1\\/C"`, urls, `"${esc(a)}\\/STU3\\/C"`);
    expectToApim(`"${esc(h)}\\/R4\\/v1\\/D"`, urls, `"${esc(a)}\\/R4\\/D"`);
  });

  it('all eight patterns interleaved, at the start, adjacent and at the end', () => {
    const urls = fresh(shape);
    const { apimBase: a, legacyBase: l, hscnBase: h } = urls;
    const [ea, el, eh] = [esc(a), esc(l), esc(h)];
    expectToApim(
      `${h}/R4/v1/${l}/STU3/v1/1 ${eh}\\/STU3\\/v1\\/2${el}\\/R4\\/v1\\/ x ${h}/STU3/v1/${l}/R4/v1/${el}\\/STU3\\/v1\\/${eh}\\/R4\\/v1\\/`,
      urls,
      `${a}/R4/${a}/STU3/1 ${ea}\\/STU3\\/2${ea}\\/R4\\/ x ${a}/STU3/${a}/R4/${ea}\\/STU3\\/${ea}\\/R4\\/`,
    );
  });

  it('the legacy base first in the body, then the HSCN one, and back', () => {
    const urls = fresh(shape);
    const { apimBase: a, legacyBase: l, hscnBase: h } = urls;
    expectToApim(`${l}/STU3/v1/1 ${h}/STU3/v1/2 ${l}/STU3/v1/3`, urls, `${a}/STU3/1 ${a}/STU3/2 ${a}/STU3/3`);
    expectToApim(`${h}/R4/v1/1 ${l}/R4/v1/2 ${h}/R4/v1/3`, urls, `${a}/R4/1 ${a}/R4/2 ${a}/R4/3`);
  });

  it('paths without /v1/, and the APIM form, are left alone', () => {
    const urls = fresh(shape);
    const { apimBase: a, legacyBase: l, hscnBase: h } = urls;
    const body = `${l}/STU3/x ${l}/v1/x ${h}/R4/x ${a}/STU3/x ${l}/STU3/v2/x ${l}/STU3/v1`;
    expectToApim(body, urls, body);
  });

  it('without an HSCN base: HSCN links stay, and no "undefined" base appears', () => {
    const urls = fresh(shape, false);
    const { apimBase: a, legacyBase: l } = urls;
    const other = fresh(shape).hscnBase;
    const u: BaseUrls = { apimBase: a, legacyBase: l };
    expectToApim(
      `${other}/STU3/v1/x undefined/STU3/v1/y ${l}/R4/v1/z`,
      u,
      `${other}/STU3/v1/x undefined/STU3/v1/y ${a}/R4/z`,
    );
    const body = `undefined/STU3/v1/y Stryker was here/STU3/v1/x Stryker was here!/STU3/v1/v /STU3/v1/w`;
    expectToApim(body, u, body);
  });

  it('an empty HSCN base is no base: relative paths stay', () => {
    const urls = fresh(shape);
    const u: BaseUrls = { apimBase: urls.apimBase, legacyBase: urls.legacyBase, hscnBase: '' };
    expectToApim('/STU3/v1/x "\\/R4\\/v1\\/y"', u, '/STU3/v1/x "\\/R4\\/v1\\/y"');
    expectToApim(`${urls.legacyBase}/STU3/v1/x /R4/v1/y`, u, `${urls.apimBase}/STU3/x /R4/v1/y`);
  });

  it.each([
    ['empty', () => ''],
    ['no link', () => '{"url":"https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1"}'],
    ['a link cut short at the end', (l: string) => `${l}/STU3/v`],
    ['the bases alone', (l: string, h: string) => `${l} ${h}`],
  ])('%s: the very same Buffer back', (_, make) => {
    const urls = fresh(shape);
    const body = make(urls.legacyBase, urls.hscnBase);
    expectToApim(body, urls, body);
  });
});

describe('the replacement lists, per pair of bases', () => {
  it('two bases objects with the same values give the same answer', () => {
    const urls = fresh();
    const copy = { ...urls };
    const body = `${urls.apimBase}/STU3/x`;
    expect(rewriteApimUrls(body, urls)).toBe(`${urls.legacyBase}/STU3/v1/x`);
    expect(rewriteApimUrls(body, copy)).toBe(`${urls.legacyBase}/STU3/v1/x`);
    expect(rewriteApimUrlsIn(Buffer.from(body), copy).toString()).toBe(`${urls.legacyBase}/STU3/v1/x`);
  });

  it('different APIM or legacy bases get lists of their own', () => {
    const one = fresh();
    const two = fresh();
    const mixed = { apimBase: one.apimBase, legacyBase: two.legacyBase, hscnBase: one.hscnBase };
    const body = `${one.apimBase}/STU3/x ${two.apimBase}/STU3/y`;
    expect(rewriteApimUrls(body, one)).toBe(`${one.legacyBase}/STU3/v1/x ${two.apimBase}/STU3/y`);
    expect(rewriteApimUrls(body, two)).toBe(`${one.apimBase}/STU3/x ${two.legacyBase}/STU3/v1/y`);
    expect(rewriteApimUrls(body, mixed)).toBe(`${two.legacyBase}/STU3/v1/x ${two.apimBase}/STU3/y`);
    const back = `${one.legacyBase}/STU3/v1/x ${two.legacyBase}/STU3/v1/y`;
    expect(rewriteLegacyUrls(back, one)).toBe(`${one.apimBase}/STU3/x ${two.legacyBase}/STU3/v1/y`);
    expect(rewriteLegacyUrls(back, two)).toBe(`${one.legacyBase}/STU3/v1/x ${two.apimBase}/STU3/y`);
    expect(rewriteLegacyUrls(back, mixed)).toBe(`${one.legacyBase}/STU3/v1/x ${one.apimBase}/STU3/y`);
  });

  it('the same APIM and legacy bases with another HSCN base, or none, get lists of their own', () => {
    const urls = fresh();
    const other = fresh().hscnBase;
    const withOther = { ...urls, hscnBase: other };
    const without: BaseUrls = { apimBase: urls.apimBase, legacyBase: urls.legacyBase };
    const body = `${urls.hscnBase}/STU3/v1/a ${other}/STU3/v1/b`;
    expect(rewriteLegacyUrls(body, urls)).toBe(`${urls.apimBase}/STU3/a ${other}/STU3/v1/b`);
    expect(rewriteLegacyUrls(body, withOther)).toBe(`${urls.hscnBase}/STU3/v1/a ${urls.apimBase}/STU3/b`);
    expect(rewriteLegacyUrls(body, without)).toBe(body);
    expect(rewriteLegacyUrlsIn(Buffer.from(body), withOther).toString()).toBe(
      `${urls.hscnBase}/STU3/v1/a ${urls.apimBase}/STU3/b`,
    );
  });
});

describe('nested bases (an HSCN base holding the legacy one): bytes and string agree', () => {
  // The anchor is a run every pattern holds; here the HSCN pattern holds the legacy one, so both candidates meet at
  // the same anchor and the first pattern of the list wins, as in the string rewrite.
  it.each([
    ['with a 7-byte anchor under https', 'https', 'ers-api'],
    ['with a 6-byte anchor under http', 'http', 'ersap6'],
  ])('%s', (_, scheme, run) => {
    const n = ++made;
    const legacyBase = `${scheme}://l${n}/${run}`;
    const urls: BaseUrls = {
      apimBase: `${scheme}://apim${n}.example/FHIR`,
      legacyBase,
      hscnBase: `${scheme}://h${n}/${legacyBase}`,
    };
    expectToApim(`${urls.hscnBase}/STU3/v1/x`, urls, `${scheme}://h${n}/${urls.apimBase}/STU3/x`);
    expectToApim(`${urls.hscnBase}/R4/v1/x`, urls, `${scheme}://h${n}/${urls.apimBase}/R4/x`);
  });
});

describe('an HSCN base that starts with the legacy base: the first pattern of the list wins where both start', () => {
  it.each(SHAPES)('with a %s', (shape) => {
    const { apimBase: a, legacyBase: l } = fresh(shape);
    const urls: BaseUrls = { apimBase: a, legacyBase: l, hscnBase: `${l}/STU3/v1/y` };
    // the legacy STU3 pattern and the HSCN one both start at 0; the legacy one is first, as in the string rewrite
    expectToApim(`${l}/STU3/v1/y/STU3/v1/z`, urls, `${a}/STU3/y/STU3/v1/z`);
    expectToApim(`q ${l}/STU3/v1/y/R4/v1/z`, urls, `q ${a}/STU3/y/R4/v1/z`);
  });
});
