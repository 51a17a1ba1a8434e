import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isJsonContentType } from '../../src/http/media-type.js';
import {
  type BaseUrls,
  legacyResponseHeaders,
  rewriteApimUrls,
  rewriteApimUrlsIn,
  rewriteLegacyUrls,
  rewriteLegacyUrlsIn,
} from '../../src/translation/response.js';
import { projectPath } from './support.js';

const APIM = 'https://int.api.service.nhs.uk/referrals/FHIR';
const LEGACY = 'https://ers-bridge.trust.nhs.uk/ers-api';
const HSCN = 'https://api.int1.ers.ncrs.nhs.uk/ers-api';
const urls: BaseUrls = { apimBase: APIM, legacyBase: LEGACY, hscnBase: HSCN };

describe('legacyResponseHeaders', () => {
  const upstream = {
    'x-request-id': '3f2504e0-4f89-11d3-9a0c-0305e82c3301-1',
    'content-type': 'application/fhir+json;charset=UTF-8',
    'content-disposition': 'attachment; filename="letter.pdf"',
    'content-language': 'en-GB',
    etag: 'W/"7"',
    'cache-control': 'no-store',
    expires: '0',
    'last-modified': 'Tue, 01 Oct 2024 10:00:00 GMT',
    'retry-after': '2',
    pragma: 'no-cache',
    'set-cookie': ['a=b; Path=/', 'c=d'],
    'x-ers-network-id': 'internal',
    'x-ers-debug': 'trace',
    'nhsd-correlation-id': 'apim-internal.corr',
    server: 'nginx',
    connection: 'keep-alive',
    'transfer-encoding': 'chunked',
    'content-length': '1234',
    'strict-transport-security': 'max-age=31536000',
    'x-correlation-id': 'upstream-corr',
    location: `${APIM}/STU3/ReferralRequest/000000070000/_history/7`,
  };

  it('maps x-request-id to X_ERS_TRANSACTION_ID with the same value', () => {
    const out = legacyResponseHeaders(upstream, urls, 'corr-1');
    expect(out['X_ERS_TRANSACTION_ID']).toBe('3f2504e0-4f89-11d3-9a0c-0305e82c3301-1');
    expect(Object.keys(out).map((k) => k.toLowerCase())).not.toContain('x-request-id');
  });

  it('passes the allow-listed headers unchanged', () => {
    const out = legacyResponseHeaders(upstream, urls, 'corr-1');
    for (const name of [
      'content-type',
      'content-disposition',
      'content-language',
      'etag',
      'cache-control',
      'expires',
      'last-modified',
      'retry-after',
      'pragma',
    ] as const) {
      expect(out[name], name).toBe(upstream[name]);
    }
  });

  it('drops everything else (cookies, x-ers-*, nhsd-*, hop-by-hop, server, content-length)', () => {
    const out = legacyResponseHeaders(upstream, urls, 'corr-1');
    const names = Object.keys(out).map((k) => k.toLowerCase());
    for (const dropped of [
      'set-cookie',
      'x-ers-network-id',
      'x-ers-debug',
      'nhsd-correlation-id',
      'server',
      'connection',
      'transfer-encoding',
      'content-length',
      'strict-transport-security',
    ]) {
      expect(names, dropped).not.toContain(dropped);
    }
    expect(names.sort()).toEqual(
      [
        'cache-control',
        'content-disposition',
        'content-language',
        'content-type',
        'etag',
        'expires',
        'last-modified',
        'location',
        'pragma',
        'retry-after',
        'x-correlation-id',
        'x_ers_transaction_id',
      ].sort(),
    );
  });

  it('sets x-correlation-id to ours, not the upstream one', () => {
    expect(legacyResponseHeaders(upstream, urls, 'corr-1')['x-correlation-id']).toBe('corr-1');
  });

  it('rewrites an absolute APIM Location to the legacy base', () => {
    expect(legacyResponseHeaders(upstream, urls, 'c')['location']).toBe(
      `${LEGACY}/STU3/v1/ReferralRequest/000000070000/_history/7`,
    );
  });

  it('leaves relative and foreign Locations alone', () => {
    expect(legacyResponseHeaders({ location: 'Binary/att-1' }, urls, 'c')['location']).toBe('Binary/att-1');
    const s3 = 'https://s3.eu-west-2.amazonaws.com/bucket/att-1?X-Amz-Signature=abc';
    expect(legacyResponseHeaders({ location: s3 }, urls, 'c')['location']).toBe(s3);
  });

  it('takes the first value of a repeated header', () => {
    const out = legacyResponseHeaders({ 'x-request-id': ['first-1', 'second-2'], etag: ['W/"1"', 'W/"2"'] }, urls, 'c');
    expect(out['X_ERS_TRANSACTION_ID']).toBe('first-1');
    expect(out['etag']).toBe('W/"1"');
  });

  it.each(['has space', 'a\r\nSet-Cookie: x=y', 'x'.repeat(101), 'semi;colon', ''])(
    'refuses a malformed x-request-id %j (no X_ERS_TRANSACTION_ID)',
    (v) => {
      const out = legacyResponseHeaders({ 'x-request-id': v }, urls, 'c');
      expect(out['X_ERS_TRANSACTION_ID']).toBeUndefined();
    },
  );

  it('with no upstream headers: only the correlation id', () => {
    expect(legacyResponseHeaders({}, urls, 'c')).toEqual({ 'x-correlation-id': 'c' });
  });
});

describe('rewriteApimUrls (APIM → legacy)', () => {
  it('STU3: <apim>/STU3/X → <legacy>/STU3/v1/X', () => {
    expect(rewriteApimUrls(`${APIM}/STU3/CodeSystem/SPECIALTY`, urls)).toBe(`${LEGACY}/STU3/v1/CodeSystem/SPECIALTY`);
  });

  it('the JSON-escaped \\/ form', () => {
    const escaped = JSON.stringify({ system: `${APIM}/STU3/CodeSystem/SPECIALTY` }).replaceAll('/', '\\/');
    const out = rewriteApimUrls(escaped, urls);
    expect(out).toContain('https:\\/\\/ers-bridge.trust.nhs.uk\\/ers-api\\/STU3\\/v1\\/CodeSystem\\/SPECIALTY');
    expect(JSON.parse(out)).toEqual({ system: `${LEGACY}/STU3/v1/CodeSystem/SPECIALTY` });
  });

  it('R4: <apim>/R4/X → <legacy>/R4/v1/X', () => {
    expect(rewriteApimUrls(`${APIM}/R4/HealthcareService/svc-1`, urls)).toBe(`${LEGACY}/R4/v1/HealthcareService/svc-1`);
  });

  it('rewrites every occurrence in a body', () => {
    const body = JSON.stringify({
      link: [{ relation: 'self', url: `${APIM}/STU3/Slot?service=1` }],
      entry: [{ fullUrl: `${APIM}/STU3/Slot/1` }, { fullUrl: `${APIM}/STU3/Slot/2` }, { fullUrl: `${APIM}/R4/X/3` }],
    });
    const out = JSON.parse(rewriteApimUrls(body, urls));
    expect(out.link[0].url).toBe(`${LEGACY}/STU3/v1/Slot?service=1`);
    expect(out.entry.map((e: { fullUrl: string }) => e.fullUrl)).toEqual([
      `${LEGACY}/STU3/v1/Slot/1`,
      `${LEGACY}/STU3/v1/Slot/2`,
      `${LEGACY}/R4/v1/X/3`,
    ]);
  });

  it.each([
    'https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1',
    'https://fhir.nhs.uk/STU3/StructureDefinition/eRS-ReferralRequest-1',
    'http://fhir.nhs.net/Id/ers-service',
    `${APIM}/metadata`,
    `${APIM}X/STU3/CodeSystem/SPECIALTY`,
    'https://api.service.nhs.uk/referrals/FHIR/STU3/CodeSystem/SPECIALTY',
    'http://int.api.service.nhs.uk/referrals/FHIR/STU3/CodeSystem/SPECIALTY',
    `${APIM}/STU3`,
    'Binary/att-70000-70001',
  ])('leaves %s alone', (url) => {
    expect(rewriteApimUrls(url, urls)).toBe(url);
    expect(rewriteApimUrls(JSON.stringify({ url }), urls)).toBe(JSON.stringify({ url }));
  });
});

describe('rewriteLegacyUrls (legacy → APIM)', () => {
  it('maps the ers-bridge base back', () => {
    expect(rewriteLegacyUrls(`${LEGACY}/STU3/v1/CodeSystem/SPECIALTY`, urls)).toBe(`${APIM}/STU3/CodeSystem/SPECIALTY`);
    expect(rewriteLegacyUrls(`${LEGACY}/R4/v1/HealthcareService/1`, urls)).toBe(`${APIM}/R4/HealthcareService/1`);
  });

  it('maps the HSCN base back', () => {
    expect(rewriteLegacyUrls(`${HSCN}/STU3/v1/CodeSystem/PRIORITY`, urls)).toBe(`${APIM}/STU3/CodeSystem/PRIORITY`);
    expect(rewriteLegacyUrls(`${HSCN}/R4/v1/Practitioner`, urls)).toBe(`${APIM}/R4/Practitioner`);
  });

  it('maps the escaped forms of both', () => {
    const text = JSON.stringify([`${LEGACY}/STU3/v1/A`, `${HSCN}/STU3/v1/B`]).replaceAll('/', '\\/');
    expect(JSON.parse(rewriteLegacyUrls(text, urls))).toEqual([`${APIM}/STU3/A`, `${APIM}/STU3/B`]);
  });

  it('without an HSCN base, HSCN links are left alone', () => {
    const u: BaseUrls = { apimBase: APIM, legacyBase: LEGACY };
    expect(rewriteLegacyUrls(`${HSCN}/STU3/v1/CodeSystem/PRIORITY`, u)).toBe(`${HSCN}/STU3/v1/CodeSystem/PRIORITY`);
  });

  it('leaves unrelated URLs and legacy paths without /v1/ alone', () => {
    for (const s of [
      'https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1',
      `${LEGACY}/STU3/CodeSystem/X`,
      `${LEGACY}/v1/X`,
    ]) {
      expect(rewriteLegacyUrls(s, urls)).toBe(s);
    }
  });
});

describe('round trip on an NHS example (retrieveReferralRequest/Unbooked.json)', () => {
  const raw = readFileSync(
    projectPath('fixtures/ers-api/examples/stu3/retrieveReferralRequest/responses/Unbooked.json'),
    'utf8',
  );

  it('the fixture embeds the base URL placeholder', () => {
    expect(raw).toContain('_baseUrl_/STU3/CodeSystem/SPECIALTY');
  });

  it('APIM → legacy → APIM is the identity, and the legacy form has legacy links only', () => {
    const apimBody = raw.replaceAll('_baseUrl_', APIM);
    const legacyBody = rewriteApimUrls(apimBody, urls);
    expect(legacyBody).not.toBe(apimBody);
    expect(legacyBody).not.toContain(APIM);
    expect(legacyBody).toContain(`${LEGACY}/STU3/v1/CodeSystem/SPECIALTY`);
    // the rest of the JSON is untouched: fhir.nhs.uk profile and system URLs survive
    expect(legacyBody).toContain('https://fhir.nhs.uk/STU3/StructureDefinition/eRS-ReferralRequest-1');
    expect(() => JSON.parse(legacyBody)).not.toThrow();
    expect(rewriteLegacyUrls(legacyBody, urls)).toBe(apimBody);
  });

  it('the round trip also holds with the HSCN base in a request', () => {
    const hscnBody = raw.replaceAll('_baseUrl_/STU3/', `${HSCN}/STU3/v1/`);
    const apimBody = raw.replaceAll('_baseUrl_', APIM);
    expect(rewriteLegacyUrls(hscnBody, urls)).toBe(apimBody);
  });

  it('the round trip holds for a loopback stand-in base too', () => {
    const local: BaseUrls = {
      apimBase: 'http://127.0.0.1:9000/referrals/FHIR',
      legacyBase: 'http://127.0.0.1:8080/ers-api',
    };
    const apimBody = raw.replaceAll('_baseUrl_', local.apimBase);
    const legacyBody = rewriteApimUrls(apimBody, local);
    expect(legacyBody).toContain('http://127.0.0.1:8080/ers-api/STU3/v1/CodeSystem/SPECIALTY');
    expect(rewriteLegacyUrls(legacyBody, local)).toBe(apimBody);
  });
});

describe('isJsonContentType', () => {
  it.each([
    ['application/json', true],
    ['application/fhir+json', true],
    ['application/fhir+json; charset=utf-8', true],
    ['Application/JSON', true],
    ['application/pdf', false],
    ['text/plain', false],
    ['', false],
    [undefined, false],
  ])('%s → %s', (ct, expected) => {
    expect(isJsonContentType(ct)).toBe(expected);
  });
});

describe('the rewrites on bytes (what answers and request bodies go through)', () => {
  const bodies = [
    JSON.stringify({ fullUrl: `${APIM}/STU3/Slot/1`, next: `${APIM}/R4/X/3`, name: 'Zoë Ŵ — “quoted” 🏥' }),
    JSON.stringify({ url: `${APIM}/STU3/A` }).replaceAll('/', '\\/') + JSON.stringify({ b: `${APIM}/STU3/B` }),
    `é${APIM}/STU3/${APIM}/R4/${APIM}/STU3/é`,
    JSON.stringify({ url: 'https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1' }),
    '',
    // The APIM host where no link to rewrite is (a near miss), then links: the scan goes on past it.
    `${APIM}/metadata ${APIM}X/STU3/a https://int.api.service.nhs.uk/other ${APIM}/STU3/b ${APIM}/R4/c`,
    `${HSCN}/STU3/v1/x ${LEGACY}/R4/v1/y ${HSCN.replaceAll('/', '\\/')}\\/STU3\\/v1\\/z`,
  ];

  it.each(bodies)('gives the same bytes as the string rewrite: %s', (text) => {
    const out = rewriteApimUrlsIn(Buffer.from(text, 'utf8'), urls);
    expect(out.toString('utf8')).toBe(rewriteApimUrls(text, urls));
    const legacy = rewriteApimUrls(text, urls);
    expect(rewriteLegacyUrlsIn(Buffer.from(legacy, 'utf8'), urls).toString('utf8')).toBe(
      rewriteLegacyUrls(legacy, urls),
    );
  });

  it('returns the very buffer it was given when there is no link to rewrite (no copy)', () => {
    const body = Buffer.from(JSON.stringify({ url: 'https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1' }));
    expect(rewriteApimUrlsIn(body, urls)).toBe(body);
    expect(rewriteLegacyUrlsIn(body, urls)).toBe(body);
  });

  it('keeps bytes that are not valid UTF-8 as they were, around the links it rewrites', () => {
    const body = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`${APIM}/STU3/Slot/1`), Buffer.from([0xc3])]);
    const out = rewriteApimUrlsIn(body, urls);
    expect([...out.subarray(0, 2)]).toEqual([0xff, 0xfe]);
    expect(out.subarray(2, -1).toString('latin1')).toBe(`${LEGACY}/STU3/v1/Slot/1`);
    expect(out.at(-1)).toBe(0xc3);
  });
});
