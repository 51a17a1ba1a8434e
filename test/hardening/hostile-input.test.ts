/**
 * Hostile input at the legacy surface. Every case must get a legacy-shaped answer (the status MIGRATION.md's
 * Troubleshooting table gives and an eRS OperationOutcome naming the `urn:ers-bridge:error` reason), never a bare
 * fastify or Node error, and nothing it carries may reach APIM. Raw `node:net` sockets are used wherever an HTTP
 * client would refuse or normalise the request (smuggling shapes, bad header bytes, dot segments, backslashes).
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { request as undiciRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  APP_ASID,
  expectLegacyOutcome,
  fixtureBytes,
  type Harness,
  legacyCall,
  OTHER_ASID,
  openSession,
  startHarness,
} from '../helpers/harness.js';
import {
  badUpstreamPath,
  bridgeReason,
  forbiddenHeaders,
  issuedTokenCheck,
  notLegacyShaped,
  type RawResponse,
  rawHead,
  rawRequest,
} from './raw-http.js';

const A005 = '/ers-api/STU3/v1/ReferralRequest/000000070000';
const A008 = '/ers-api/STU3/v1/ReferralRequest/$ers.fetchworklist';
const SESSION_PATH = '/ers-api/v1/ProfessionalSession';
const SESSION_LIMIT = 64 * 1024;
const A001_BODY = JSON.stringify({ typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession', token: 't' });

/** `count` pieces of `size` bytes each (lazily, so multi-megabyte bodies are not held at once). */
function* pieces(count: number, size: number, fill = 0x20): Generator<Buffer> {
  const piece = Buffer.alloc(size, fill);
  for (let i = 0; i < count; i++) yield piece;
}

/** The same, chunk-encoded, followed by the last chunk. */
function* chunked(count: number, size: number, fill = 0x20): Generator<Buffer> {
  const piece = Buffer.alloc(size, fill);
  const framed = Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
  for (let i = 0; i < count; i++) yield framed;
  yield Buffer.from('0\r\n\r\n');
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

describe('hostile input', () => {
  let h: Harness;
  let port: number;
  let key: string;
  let tokenIssued: (token: string) => boolean;

  beforeAll(async () => {
    h = await startHarness();
    tokenIssued = issuedTokenCheck(h.standIn);
    port = Number(new URL(h.bridgeUrl).port);
    key = await openSession(h);
  });

  afterAll(async () => {
    // Whatever reached the stand-in during this file: only e-RS paths, never a forbidden header.
    const problems = h.standIn.received.flatMap((r) => {
      const p = badUpstreamPath(r);
      return [...(p ? [`${r.method} ${r.url}: ${p}`] : []), ...forbiddenHeaders(r, tokenIssued)];
    });
    await h.close();
    expect(problems).toEqual([]);
  });

  const host = (): [string, string] => ['Host', `127.0.0.1:${port}`];
  const legacyHeaders = (): Array<[string, string]> => [host(), ['XAPI_ASID', APP_ASID], ['HTTP_X_SESSION_KEY', key]];

  /** A legacy-shaped answer from ers-bridge itself: the status, the reason, nothing else. */
  function expectRefused(res: RawResponse | Awaited<ReturnType<typeof legacyCall>>, status: number, reason: string) {
    if ('answered' in res && !res.answered) {
      throw new Error(`no answer (${res.error ?? 'timeout'}); expected ${status} ${reason}`);
    }
    expect(notLegacyShaped(res, { bridge: true }), res.body.toString().slice(0, 300)).toBeUndefined();
    return expectLegacyOutcome(res, status, reason);
  }

  /** Runs `f` and asserts the stand-in received nothing meanwhile. */
  async function nothingReachesApim<T>(f: () => Promise<T>): Promise<T> {
    const before = h.standIn.received.length;
    const result = await f();
    // Give a smuggled request (if any were parsed) a moment to arrive.
    await new Promise((r) => setTimeout(r, 20));
    expect(
      h.standIn.received.slice(before).map((r) => `${r.method} ${r.url}`),
      'requests reached the stand-in',
    ).toEqual([]);
    return result;
  }

  describe('request smuggling and malformed framing → 400 MALFORMED_REQUEST, connection closed', () => {
    const inner = () =>
      `GET ${A005} HTTP/1.1\r\nHost: x\r\nXAPI_ASID: ${APP_ASID}\r\nHTTP_X_SESSION_KEY: ${key}\r\n\r\n`;
    const cases: Array<[string, () => string]> = [
      [
        'Content-Length and Transfer-Encoding',
        () =>
          rawHead('POST', A008, [
            ...legacyHeaders(),
            ['Content-Type', 'application/fhir+json'],
            ['Content-Length', '5'],
            ['Transfer-Encoding', 'chunked'],
          ]) + `0\r\n\r\n${inner()}`,
      ],
      [
        'Transfer-Encoding before Content-Length',
        () =>
          rawHead('POST', A008, [
            ...legacyHeaders(),
            ['Content-Type', 'application/fhir+json'],
            ['Transfer-Encoding', 'chunked'],
            ['Content-Length', '60'],
          ]) + `0\r\n\r\n${inner()}`,
      ],
      [
        'two Content-Length headers with different values',
        () =>
          rawHead('POST', A008, [
            ...legacyHeaders(),
            ['Content-Type', 'application/fhir+json'],
            ['Content-Length', '2'],
            ['Content-Length', '40'],
          ]) + `{}${inner()}`,
      ],
      [
        'two Content-Length headers with the same value',
        () =>
          rawHead('POST', A008, [
            ...legacyHeaders(),
            ['Content-Type', 'application/fhir+json'],
            ['Content-Length', '2'],
            ['Content-Length', '2'],
          ]) + '{}',
      ],
      [
        'Content-Length: 2, 2 (a list)',
        () =>
          rawHead('POST', A008, [
            ...legacyHeaders(),
            ['Content-Type', 'application/fhir+json'],
            ['Content-Length', '2, 2'],
          ]) + '{}',
      ],
      [
        'Content-Length: +2',
        () =>
          rawHead('POST', A008, [
            ...legacyHeaders(),
            ['Content-Type', 'application/fhir+json'],
            ['Content-Length', '+2'],
          ]) + '{}',
      ],
      [
        'Transfer-Encoding: chunked, identity',
        () =>
          rawHead('POST', A008, [
            ...legacyHeaders(),
            ['Content-Type', 'application/fhir+json'],
            ['Transfer-Encoding', 'chunked, identity'],
          ]) + `2\r\n{}\r\n0\r\n\r\n${inner()}`,
      ],
      [
        'Transfer-Encoding: identity',
        () =>
          rawHead('POST', A008, [
            ...legacyHeaders(),
            ['Content-Type', 'application/fhir+json'],
            ['Transfer-Encoding', 'identity'],
          ]) + `{}${inner()}`,
      ],
      [
        'Transfer-Encoding twice (chunked, then identity)',
        () =>
          rawHead('POST', A008, [
            ...legacyHeaders(),
            ['Content-Type', 'application/fhir+json'],
            ['Transfer-Encoding', 'chunked'],
            ['Transfer-Encoding', 'identity'],
          ]) + `2\r\n{}\r\n0\r\n\r\n${inner()}`,
      ],
      [
        'obs-fold (a header continued on the next line)',
        () =>
          `GET ${A005} HTTP/1.1\r\nHost: 127.0.0.1\r\nXAPI_ASID: ${APP_ASID}\r\nHTTP_X_SESSION_KEY: ${key}\r\nX-Note: a\r\n folded\r\n\r\n`,
      ],
      [
        'obs-fold continuing Transfer-Encoding',
        () =>
          rawHead('POST', A008, [...legacyHeaders(), ['Content-Type', 'application/fhir+json']]).replace(
            /\r\n\r\n$/,
            '\r\nTransfer-Encoding: identity\r\n\tchunked\r\nContent-Length: 2\r\n\r\n{}',
          ),
      ],
      [
        'a space before the colon (Transfer-Encoding)',
        () =>
          `POST ${A008} HTTP/1.1\r\nHost: 127.0.0.1\r\nXAPI_ASID: ${APP_ASID}\r\nHTTP_X_SESSION_KEY: ${key}\r\nContent-Type: application/fhir+json\r\nContent-Length: 2\r\nTransfer-Encoding : chunked\r\n\r\n{}`,
      ],
      [
        'a space before the colon (XAPI_ASID)',
        () =>
          `GET ${A005} HTTP/1.1\r\nHost: 127.0.0.1\r\nXAPI_ASID : ${APP_ASID}\r\nHTTP_X_SESSION_KEY: ${key}\r\n\r\n`,
      ],
      [
        'an invalid chunk size',
        () =>
          rawHead('POST', A008, [
            ...legacyHeaders(),
            ['Content-Type', 'application/fhir+json'],
            ['Transfer-Encoding', 'chunked'],
          ]) + `0x2\r\n{}\r\n0\r\n\r\n`,
      ],
      [
        'a header line without a colon',
        () => `GET ${A005} HTTP/1.1\r\nHost: 127.0.0.1\r\nXAPI_ASID ${APP_ASID}\r\nHTTP_X_SESSION_KEY: ${key}\r\n\r\n`,
      ],
    ];
    for (const [name, request] of cases) {
      it(name, async () => {
        const res = await nothingReachesApim(() => rawRequest(port, request(), { closeWaitMs: 2000 }));
        expectRefused(res, 400, 'MALFORMED_REQUEST');
        expect(res.closed, 'the connection must be closed').toBe(true);
      });
    }
  });

  describe('oversize headers → 431 HEADERS_TOO_LARGE', () => {
    it('one header over 16 KB', async () => {
      const res = await nothingReachesApim(() =>
        rawRequest(port, rawHead('GET', A005, [...legacyHeaders(), ['X-Pad', 'a'.repeat(17 * 1024)]]), {
          closeWaitMs: 2000,
        }),
      );
      expectRefused(res, 431, 'HEADERS_TOO_LARGE');
      expect(res.closed).toBe(true);
    });
    it('many small headers adding up to more than 16 KB', async () => {
      const many = Array.from({ length: 400 }, (_, i): [string, string] => [`X-H${i}`, 'v'.repeat(40)]);
      const res = await nothingReachesApim(() => rawRequest(port, rawHead('GET', A005, [...legacyHeaders(), ...many])));
      expectRefused(res, 431, 'HEADERS_TOO_LARGE');
    });
    it('a huge request line', async () => {
      const res = await nothingReachesApim(() =>
        rawRequest(port, rawHead('GET', `${A005}?q=${'a'.repeat(20 * 1024)}`, legacyHeaders())),
      );
      expectRefused(res, 431, 'HEADERS_TOO_LARGE');
    });
    it('(control) an 8 KB header on a valid call is fine', async () => {
      const res = await rawRequest(port, rawHead('GET', A005, [...legacyHeaders(), ['X-Pad', 'a'.repeat(8 * 1024)]]));
      expect(res.status).toBe(200);
    });
  });

  describe('oversize bodies → 413 BODY_TOO_LARGE', () => {
    const over = () => h.runtime.rules.server.maxRequestBodyBytes + 1;
    const a008Head = (extra: Array<[string, string]>) =>
      rawHead('POST', A008, [...legacyHeaders(), ['Content-Type', 'application/fhir+json'], ...extra]);

    it('A008 declaring a Content-Length over the limit (refused before the body is read)', async () => {
      const size = over();
      const res = await nothingReachesApim(() =>
        rawRequest(port, a008Head([['Content-Length', String(size)]]), {
          body: pieces(Math.ceil(size / 65536), 65536),
        }),
      );
      expectRefused(res, 413, 'BODY_TOO_LARGE');
    });
    it('A008 with a chunked body over the limit (raw socket)', async () => {
      const size = over();
      const res = await nothingReachesApim(() =>
        rawRequest(port, a008Head([['Transfer-Encoding', 'chunked']]), {
          body: chunked(Math.ceil(size / 65536) + 1, 65536),
          timeoutMs: 20_000,
        }),
      );
      expectRefused(res, 413, 'BODY_TOO_LARGE');
    });
    it('A008 streamed by an HTTP client without Content-Length', async () => {
      const size = over();
      const body = Readable.from(pieces(Math.ceil(size / 65536) + 1, 65536));
      const res = await nothingReachesApim(async () => {
        try {
          const r = await undiciRequest(`${h.bridgeUrl}${A008}`, {
            method: 'POST',
            headers: { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/fhir+json' },
            body,
          });
          const buf = Buffer.from(await r.body.arrayBuffer());
          return { status: r.statusCode, headers: r.headers, body: buf, json: () => JSON.parse(buf.toString()) };
        } catch (e) {
          throw new Error(`no answer to an over-long streamed body: ${(e as Error).message}`);
        }
      });
      expectRefused(res, 413, 'BODY_TOO_LARGE');
    });
    it('A008 with a body exactly at the limit is read (and refused only by APIM, if at all)', async () => {
      // Not a 413: the limit is inclusive. The stand-in may refuse the (blank) worklist body; that is its answer.
      const size = h.runtime.rules.server.maxRequestBodyBytes;
      const res = await rawRequest(port, a008Head([['Content-Length', String(size)]]), {
        body: pieces(size / 1024, 1024),
        timeoutMs: 20_000,
      });
      expect(res.answered).toBe(true);
      expect(res.status).not.toBe(413);
      expect(res.status).toBeLessThan(500);
    });
  });

  describe('path traversal → 400/404, never an APIM request outside the e-RS prefixes', () => {
    const targets = [
      '/ers-api/STU3/v1/../../../referrals/FHIR/R4/PractitionerRole',
      '/ers-api/STU3/v1/ReferralRequest/../../R4/v1/PractitionerRole',
      '/ers-api/STU3/v1/ReferralRequest/%2e%2e/%2e%2e/R4/PractitionerRole',
      '/ers-api/STU3/v1/ReferralRequest/%2E%2e/%2e%2E/oauth2/token',
      '/ers-api/STU3/v1/ReferralRequest/.%2e/000000070000',
      '/ers-api/%2e%2e/referrals/FHIR/STU3/ReferralRequest/000000070000',
      '/ers-api/STU3/v1/ReferralRequest/000000070000%2f..%2f..%2fR4',
      '/ers-api/STU3/v1/ReferralRequest/000000070000%2F%2E%2E',
      '/ers-api/STU3/v1/CodeSystem/%252e%252e',
      '/ers-api/STU3/v1/ReferralRequest/%252e%252e%252f%252e%252e%252fR4',
      '/ers-api/STU3/v1/Binary/%252e%252e%252foauth2%252ftoken',
      '/ers-api/STU3/v1/ReferralRequest/000000070000;..',
      '/ers-api/STU3/v1/ReferralRequest/..;/..;/R4/PractitionerRole',
      '/ers-api/STU3/v1/ReferralRequest;jsessionid=1/000000070000',
      '/ers-api/STU3/v1/ReferralRequest/000000070000;/../../R4',
      '/ers-api/STU3/v1/ReferralRequest\\..\\..\\R4\\PractitionerRole',
      '/ers-api/STU3/v1/Binary/..%5c..%5coauth2',
      '/ers-api/STU3/v1/Binary/%5c..%5c',
      '/ers-api/STU3/v1/ReferralRequest/%E2%80%A4%E2%80%A4/R4',
      '/ers-api/STU3/v1/ReferralRequest/%EF%BC%8E%EF%BC%8E/R4',
      '/ers-api/STU3/v1/ReferralRequest/%C0%AE%C0%AE/R4',
      '/ers-api/STU3/v1/ReferralRequest/%u002e%u002e/R4',
      '/ers-api/STU3/v1/./ReferralRequest/000000070000',
      '/ers-api/STU3/v1/ReferralRequest/000000070000/.',
      '/ers-api/STU3/v1/ReferralRequest/000000070000/..',
      '/ers-api/STU3/v1//ReferralRequest/000000070000',
      '/ers-api/STU3/v1/Binary/att-70000-70001%00.pdf',
      '/ers-api/STU3/v1/ReferralRequest/%',
      '/ers-api/R4/v1/HealthcareService/%2e%2e',
      '/ers-api/R4/v1/Binary/..%2f..%2fSTU3',
      '//ers-api/STU3/v1/ReferralRequest/000000070000',
      `http://127.0.0.1:${'{port}'}/referrals/FHIR/STU3/ReferralRequest/000000070000`,
    ];
    // Unicode dots as raw UTF-8 bytes in the request target (one dot leader, fullwidth full stop).
    const rawUtf8 = [
      '/ers-api/STU3/v1/ReferralRequest/\u2024\u2024/R4',
      '/ers-api/STU3/v1/\uff0e\uff0e/R4/PractitionerRole',
    ];

    for (const target of targets) {
      it(target, async () => {
        const t = target.replace('{port}', String(port));
        const res = await nothingReachesApim(() => rawRequest(port, rawHead('GET', t, legacyHeaders())));
        expect(res.answered, `no answer: ${res.error}`).toBe(true);
        expect([400, 404]).toContain(res.status);
        expect(notLegacyShaped(res, { bridge: true }), res.body.toString().slice(0, 200)).toBeUndefined();
        expect(['BAD_PATH', 'BAD_PATH_PARAMETER', 'UNKNOWN_ENDPOINT', 'MALFORMED_REQUEST']).toContain(
          bridgeReason(res),
        );
      });
    }
    for (const target of rawUtf8) {
      it(`raw UTF-8 ${JSON.stringify(target)}`, async () => {
        const head = Buffer.from(rawHead('GET', target, legacyHeaders()), 'utf8');
        const res = await nothingReachesApim(() => rawRequest(port, head));
        expect(res.answered).toBe(true);
        expect([400, 404]).toContain(res.status);
        expect(notLegacyShaped(res, { bridge: true })).toBeUndefined();
      });
    }
    it('a query string with dot segments is only ever a query: the APIM path stays under the prefix', async () => {
      const before = h.standIn.received.length;
      const res = await rawRequest(
        port,
        rawHead('GET', `${A005}?x=/../../../oauth2/token&y=%2e%2e%2f`, legacyHeaders()),
      );
      expect(res.answered).toBe(true);
      expect(res.status).toBeLessThan(500);
      for (const r of h.standIn.received.slice(before)) expect(badUpstreamPath(r)).toBeUndefined();
    });
  });

  describe('CR, LF and other bad bytes in header values → 400', () => {
    const cases: Array<[string, string]> = [
      ['bare CR in a value', `X-Note: a\rInjected: 1`],
      ['bare LF in a value', `X-Note: a\nInjected: 1`],
      ['CR LF splitting a value into a line without a colon', `X-Note: a\r\n b c`],
      ['NUL in a value', `X-Note: a\u0000b`],
      ['DEL in a value', `X-Note: a\u007fb`],
      ['a control character in a value', `X-Note: a\u0001b`],
      ['CR in XAPI_ASID', `X-Ignored: 1\r\nXAPI_ASID: ${APP_ASID}\rX-Evil: 1`],
    ];
    for (const [name, line] of cases) {
      it(name, async () => {
        const head = `GET ${A005} HTTP/1.1\r\nHost: 127.0.0.1\r\nXAPI_ASID: ${APP_ASID}\r\nHTTP_X_SESSION_KEY: ${key}\r\n${line}\r\n\r\n`;
        const res = await nothingReachesApim(() => rawRequest(port, head, { closeWaitMs: 2000 }));
        expectRefused(res, 400, 'MALFORMED_REQUEST');
        expect(res.closed).toBe(true);
      });
    }
    it('percent-encoded CR LF in X-Correlation-ID → 400 BAD_HEADER, nothing echoed', async () => {
      const res = await nothingReachesApim(() =>
        rawRequest(
          port,
          rawHead('GET', A005, [...legacyHeaders(), ['X-Correlation-ID', 'abc%0d%0aSet-Cookie:%20x=1']]),
        ),
      );
      expectRefused(res, 400, 'BAD_HEADER');
      expect(res.headers['set-cookie']).toBeUndefined();
      expect(res.headers['x-correlation-id']).toBeUndefined();
    });
  });

  describe('spoofed identity and routing headers', () => {
    const spoofed: Array<[string, string]> = [
      ['Authorization', 'Bearer spoofed-token-from-the-client'],
      ['NHSD-End-User-Organisation-ODS', 'X99'],
      ['NHSD-eRS-Business-Function', 'REFERRING_CLINICIAN'],
      ['NHSD-eRS-On-Behalf-Of-User-ID', '000000000001'],
      ['NHSD-eRS-Comm-Rule-Org', 'X99'],
      ['NHSD-eRS-File-Name', 'evil.pdf'],
      ['NHSD-eRS-Referral-ID', '000000070001'],
      ['NHSD-Session-URID', '555021935107'],
      ['NHSD-Target-Identifier', 'evil'],
      ['NHSD-Correlation-ID', 'spoofed'],
      ['NHSD-ID-Token', 'eyJhbGciOiJub25lIn0.e30.'],
      ['NHSD_End_User_Organisation_ODS', 'X98'],
      ['NHSD_eRS_Business_Function', 'REFERRING_ADMIN'],
      ['nhsd_end_user_organisation_ods', 'X97'],
      ['x-ers-user-id', '000000000002'],
      ['X-ERS-ODS-CODE', 'X96'],
      ['X_ERS_ODS_CODE', 'X95'],
      ['x_ers_user_id', '000000000003'],
      ['X-ERS-XAPI-COMM-RULE-ORG', 'X94'],
      ['X-Forwarded-For', '10.0.0.1'],
      ['X-Forwarded-Host', 'evil.example'],
      ['X-Forwarded-Proto', 'https'],
      ['X-Forwarded-Prefix', '/referrals/FHIR/R4'],
      ['X_Forwarded_For', '10.0.0.2'],
      ['Forwarded', 'for=10.0.0.3;host=evil.example'],
      ['Cookie', 'session=abc; ers=def'],
      ['XAPI_FQDN', 'evil.example'],
    ];

    it('the call succeeds and none of them reach APIM', async () => {
      const before = h.standIn.received.length;
      const headers: Record<string, string> = { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key };
      for (const [n, v] of spoofed) headers[n] = v;
      const res = await legacyCall(h, 'GET', A005, headers);
      expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
      const got = h.standIn.received.slice(before);
      expect(got).toHaveLength(1);
      expect(forbiddenHeaders(got[0]!, tokenIssued)).toEqual([]);
      // The one Authorization is ers-bridge's own.
      const auth = got[0]!.rawHeaders.filter(([n]) => n.toLowerCase() === 'authorization');
      expect(auth).toHaveLength(1);
      expect(auth[0]![1]).not.toContain('spoofed');
    });

    it('the same on a call with a body (A008), sent over a raw socket with duplicate spellings', async () => {
      const body = fixtureBytes('stu3/retrieveWorklist/requests/MinimalReferralsForReview.json');
      const head = rawHead('POST', A008, [
        ...legacyHeaders(),
        ['Content-Type', 'application/fhir+json'],
        ['Content-Length', String(body.length)],
        ...spoofed,
        ['authorization', 'Basic ZXZpbDpldmls'],
        ['COOKIE', 'x=1'],
      ]);
      const before = h.standIn.received.length;
      const res = await rawRequest(port, head, { body: [body] });
      expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
      const got = h.standIn.received.slice(before);
      expect(got).toHaveLength(1);
      expect(forbiddenHeaders(got[0]!, tokenIssued)).toEqual([]);
    });
  });

  describe('session keys', () => {
    it('200 random well-formed keys → 403 SESSION_UNKNOWN', async () => {
      await nothingReachesApim(async () => {
        const keys = Array.from({ length: 200 }, () => {
          const hex = randomBytes(16).toString('hex');
          return `pro-api-session:${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
        });
        for (let i = 0; i < keys.length; i += 20) {
          const batch = await Promise.all(
            keys
              .slice(i, i + 20)
              .map((k) => legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: k })),
          );
          for (const res of batch) expectRefused(res, 403, 'SESSION_UNKNOWN');
        }
      });
    });

    it('cross-ASID use of a session → 403, answered exactly as an unknown session (SESSION_UNKNOWN)', async () => {
      await nothingReachesApim(async () => {
        expectRefused(
          await legacyCall(h, 'GET', A005, { XAPI_ASID: OTHER_ASID, HTTP_X_SESSION_KEY: key }),
          403,
          'SESSION_UNKNOWN',
        );
        // A002 and A003 of another ASID's session are refused too, and leave the session alive.
        expectRefused(
          await legacyCall(
            h,
            'PUT',
            `${SESSION_PATH}/${key}`,
            { XAPI_ASID: OTHER_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/json' },
            JSON.stringify({
              token: 't',
              permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' },
            }),
          ),
          403,
          'SESSION_UNKNOWN',
        );
        expectRefused(
          await legacyCall(h, 'DELETE', `${SESSION_PATH}/${key}`, { XAPI_ASID: OTHER_ASID, HTTP_X_SESSION_KEY: key }),
          403,
          'SESSION_UNKNOWN',
        );
      });
      expect((await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key })).status).toBe(200);
    });

    it('an unknown key and a foreign key cost the same: one store read each, same status, same latency', async () => {
      const store = h.runtime.shared.store;
      const originalGet = store.get;
      let reads = 0;
      store.get = async (k: string) => {
        reads++;
        return originalGet.call(store, k);
      };
      const unknown = () =>
        legacyCall(h, 'GET', A005, {
          XAPI_ASID: APP_ASID,
          HTTP_X_SESSION_KEY: `pro-api-session:${randomBytes(4).toString('hex')}-0000-4000-8000-${randomBytes(6).toString('hex')}`,
        });
      const foreign = () => legacyCall(h, 'GET', A005, { XAPI_ASID: OTHER_ASID, HTTP_X_SESSION_KEY: key });
      const timed = async (f: typeof unknown) => {
        const t0 = performance.now();
        const res = await f();
        return { ms: performance.now() - t0, res };
      };
      try {
        // Exactly one store read each, and the same status.
        reads = 0;
        const u = await unknown();
        expect(reads).toBe(1);
        reads = 0;
        const f = await foreign();
        expect(reads).toBe(1);
        expect(u.status).toBe(403);
        expect(f.status).toBe(u.status);
        expectRefused(u, 403, 'SESSION_UNKNOWN');
        expectRefused(f, 403, 'SESSION_UNKNOWN');
        // The same answer, byte for byte but for the transaction id: nothing tells a foreign key from an unknown one.
        expect(f.json().issue).toEqual(u.json().issue);

        // Latency: medians over alternating requests. On a shared 2-core machine one round can be disturbed, so up
        // to three rounds are measured and the best must be within the (generous) bound.
        const rounds: Array<{ unknown: number; foreign: number }> = [];
        for (let round = 0; round < 3; round++) {
          for (let i = 0; i < 30; i++) await (i % 2 ? unknown() : foreign()); // warm up
          const tu: number[] = [];
          const tf: number[] = [];
          reads = 0;
          for (let i = 0; i < 300; i++) {
            if (i % 2 === 0) {
              tu.push((await timed(unknown)).ms);
              tf.push((await timed(foreign)).ms);
            } else {
              tf.push((await timed(foreign)).ms);
              tu.push((await timed(unknown)).ms);
            }
          }
          expect(reads).toBe(600);
          rounds.push({ unknown: median(tu), foreign: median(tf) });
          if (Math.abs(median(tu) - median(tf)) < 2) break;
        }
        const best = Math.min(...rounds.map((r) => Math.abs(r.unknown - r.foreign)));
        console.log(
          `session timing: ${rounds.map((r) => `unknown p50 ${r.unknown.toFixed(3)} ms, foreign p50 ${r.foreign.toFixed(3)} ms`).join('; ')}`,
        );
        expect(best).toBeLessThan(2);
      } finally {
        store.get = originalGet;
      }
    }, 60_000);
  });

  describe('huge JSON in A001/A002 → 413 or 422, process unharmed', () => {
    const a001Head = (extra: Array<[string, string]>) =>
      rawHead('POST', SESSION_PATH, [host(), ['XAPI_ASID', APP_ASID], ['Content-Type', 'application/json'], ...extra]);
    let fresh: string;

    beforeAll(async () => {
      const a001 = await legacyCall(
        h,
        'POST',
        SESSION_PATH,
        { XAPI_ASID: APP_ASID, 'Content-Type': 'application/json' },
        A001_BODY,
      );
      fresh = a001.json().id;
    });
    const a002Head = (extra: Array<[string, string]>) =>
      rawHead('PUT', `${SESSION_PATH}/${fresh}`, [
        host(),
        ['XAPI_ASID', APP_ASID],
        ['HTTP_X_SESSION_KEY', fresh],
        ['Content-Type', 'application/json'],
        ...extra,
      ]);

    const mb = Buffer.from(JSON.stringify({ token: 'x'.repeat(1024 * 1024) }));
    const deep = (levels: number) => Buffer.from(`${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`);
    const deepArray = (levels: number) => Buffer.from(`${'['.repeat(levels)}${']'.repeat(levels)}`);

    for (const [op, head] of [
      ['A001', a001Head],
      ['A002', a002Head],
    ] as const) {
      it(`${op}: 1 MB with Content-Length → 413`, async () => {
        const res = await nothingReachesApim(() =>
          rawRequest(port, head([['Content-Length', String(mb.length)]]), { body: [mb] }),
        );
        expectRefused(res, 413, 'BODY_TOO_LARGE');
      });
      it(`${op}: 100 000 levels of nesting → 413 (over the 64 KB session limit)`, async () => {
        const body = deep(100_000);
        const res = await nothingReachesApim(() =>
          rawRequest(port, head([['Content-Length', String(body.length)]]), { body: [body] }),
        );
        expectRefused(res, 413, 'BODY_TOO_LARGE');
      });
      it(`${op}: nesting as deep as fits in 64 KB → 422`, async () => {
        for (const body of [deep(Math.floor((SESSION_LIMIT - 1) / 6)), deepArray(SESSION_LIMIT / 2)]) {
          expect(body.length).toBeLessThanOrEqual(SESSION_LIMIT);
          const res = await nothingReachesApim(() =>
            rawRequest(port, head([['Content-Length', String(body.length)]]), { body: [body] }),
          );
          expect(res.status, res.body.toString().slice(0, 300)).toBe(422);
          expect(notLegacyShaped(res, { bridge: true })).toBeUndefined();
        }
      });
      it(`${op}: a 10 MB string, chunked → 413`, async () => {
        const pieceCount = (10 * 1024 * 1024) / 65536;
        const open = Buffer.from('{"token":"');
        const framedOpen = Buffer.concat([Buffer.from(`${open.length.toString(16)}\r\n`), open, Buffer.from('\r\n')]);
        const res = await nothingReachesApim(() =>
          rawRequest(port, head([['Transfer-Encoding', 'chunked']]), {
            body: (function* () {
              yield framedOpen;
              yield* chunked(pieceCount, 65536, 0x61);
            })(),
            timeoutMs: 20_000,
          }),
        );
        expectRefused(res, 413, 'BODY_TOO_LARGE');
      });
      it(`${op}: a 10 MB string streamed by an HTTP client → 413`, async () => {
        const pieceCount = (10 * 1024 * 1024) / 65536;
        const body = Readable.from(
          (function* () {
            yield Buffer.from('{"token":"');
            yield* pieces(pieceCount, 65536, 0x61);
            yield Buffer.from('"}');
          })(),
        );
        const path = op === 'A001' ? SESSION_PATH : `${SESSION_PATH}/${fresh}`;
        const headers: Record<string, string> = { XAPI_ASID: APP_ASID, 'Content-Type': 'application/json' };
        if (op === 'A002') headers['HTTP_X_SESSION_KEY'] = fresh;
        let r: Awaited<ReturnType<typeof undiciRequest>>;
        try {
          r = await undiciRequest(`${h.bridgeUrl}${path}`, { method: op === 'A001' ? 'POST' : 'PUT', headers, body });
        } catch (e) {
          throw new Error(`no answer: ${(e as Error).message}`);
        }
        const buf = Buffer.from(await r.body.arrayBuffer());
        expectRefused(
          { status: r.statusCode, headers: r.headers, body: buf, json: () => JSON.parse(buf.toString()) },
          413,
          'BODY_TOO_LARGE',
        );
      });
    }

    it('afterwards the process is unharmed: a normal session and call succeed', async () => {
      const k = await openSession(h);
      const res = await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: k });
      expect(res.status).toBe(200);
      expect((await undiciRequest(`${h.opsUrl}/healthz`)).statusCode).toBe(200);
      // The session whose A002s were refused still exists, without a role.
      expectRefused(
        await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: fresh }),
        403,
        'SESSION_ROLE_NOT_SELECTED',
      );
    });
  });

  describe('wrong content types → 415 UNSUPPORTED_MEDIA_TYPE', () => {
    const types = [
      'text/plain',
      'application/xml',
      'text/xml',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/octet-stream',
    ];
    for (const ct of types) {
      it(`A001 with ${ct}`, async () => {
        expectRefused(
          await legacyCall(h, 'POST', SESSION_PATH, { XAPI_ASID: APP_ASID, 'Content-Type': ct }, A001_BODY),
          415,
          'UNSUPPORTED_MEDIA_TYPE',
        );
      });
      it(`A002 with ${ct}`, async () => {
        expectRefused(
          await legacyCall(
            h,
            'PUT',
            `${SESSION_PATH}/${key}`,
            { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': ct },
            A001_BODY,
          ),
          415,
          'UNSUPPORTED_MEDIA_TYPE',
        );
      });
      it(`A008 (FHIR body) with ${ct}`, async () => {
        const res = await nothingReachesApim(() =>
          legacyCall(
            h,
            'POST',
            A008,
            { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': ct },
            fixtureBytes('stu3/retrieveWorklist/requests/MinimalReferralsForReview.json'),
          ),
        );
        expectRefused(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
      });
    }
    // Content-Type values that are not media types at all. fastify refuses them before ers-bridge sees the call.
    for (const ct of ['6z', 'application/', '*', 'json']) {
      it(`A001 and A008 with the malformed Content-Type ${JSON.stringify(ct)}`, async () => {
        expectRefused(
          await legacyCall(h, 'POST', SESSION_PATH, { XAPI_ASID: APP_ASID, 'Content-Type': ct }, A001_BODY),
          415,
          'UNSUPPORTED_MEDIA_TYPE',
        );
        const res = await nothingReachesApim(() =>
          legacyCall(
            h,
            'POST',
            A008,
            { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': ct },
            fixtureBytes('stu3/retrieveWorklist/requests/MinimalReferralsForReview.json'),
          ),
        );
        expectRefused(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
      });
    }
    it('A001 with an empty Content-Type header is read as JSON (as ers-bridge treats an absent one)', async () => {
      const res = await legacyCall(h, 'POST', SESSION_PATH, { XAPI_ASID: APP_ASID, 'Content-Type': '' }, A001_BODY);
      expect(res.status, res.body.toString().slice(0, 300)).toBe(201);
    });
  });
});
