/**
 * Property-based fuzzing of the legacy surface (fast-check, bounded and seeded: a failure prints its seed and
 * shrunk counterexample, and `ERS_BRIDGE_FUZZ_SEED` replays another seed).
 *
 * Requests mix real and hostile path segments, random query strings, legitimate and forbidden headers with random
 * values, and random bodies. Most runs go through `h.bridge.inject` (fastify's in-process injection, fast; note that
 * light-my-request parses the URL with WHATWG URL, which resolves dot segments and backslashes before ers-bridge sees
 * them), and a smaller run goes over real sockets with the request target sent byte for byte.
 *
 * Properties:
 * - ers-bridge never crashes: it keeps answering, no unhandled rejection or exception, no INTERNAL_ERROR;
 * - the APIM stand-in never receives a forbidden header (Authorization other than a token the stand-in issued,
 *   NHSD-* for these application-restricted sessions, x-ers-*, x-forwarded-*, cookie, xapi_asid,
 *   http_x_session_key, xapi_fqdn; names compared case-insensitively with `_` read as `-`), nor a path outside
 *   /referrals/FHIR/STU3/ and /referrals/FHIR/R4/ or whose decoded path contains `..`;
 * - every 4xx/5xx answer is legacy-shaped: an eRS OperationOutcome with the `urn:ers-bridge:error` reason, or, when
 *   the answer came from the stand-in, the stand-in's own eRS OperationOutcome;
 * - every ers-bridge reason is one MIGRATION.md's Troubleshooting table documents, with the status it gives.
 *
 * Each property is its own test, so that one failing property does not hide the others.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedRequest } from '../../src/apim-standin/index.js';
import {
  APP_ASID,
  fixtureBytes,
  type Harness,
  LIMITED_ASID,
  OTHER_ASID,
  openSession,
  startHarness,
} from '../helpers/harness.js';
import {
  badUpstreamPath,
  bridgeReason,
  documentedStatuses,
  forbiddenHeaders,
  issuedTokenCheck,
  notLegacyShaped,
  rawRequest,
} from './raw-http.js';

const SEED = Number(process.env['ERS_BRIDGE_FUZZ_SEED'] ?? 20_251_121);
const INJECT_RUNS = 300;
const SOCKET_RUNS = 80;

/** Placeholders replaced at send time by the live session key of the pool (sessions may be ended by a fuzzed A003). */
const KEY = '{key}';
const OTHER_KEY = '{other-key}';

interface FuzzRequest {
  method: string;
  path: string;
  query: string;
  headers: Array<[string, string]>;
  body: Buffer | undefined;
}

// --- arbitraries ------------------------------------------------------------------------------------------------

const REAL_SEGMENTS = [
  'STU3',
  'v1',
  'ReferralRequest',
  '000000070000',
  '$ers.generateCRI',
  '$ers.fetchworklist',
  'CodeSystem',
  'SPECIALTY',
  'ProfessionalSession',
  'R4',
  'Binary',
  'PractitionerRole',
  '_history',
  '5',
  'att-70000-70001',
  KEY,
];
const HOSTILE_SEGMENTS = [
  '..',
  '.',
  '%2e%2e',
  '%2E%2e',
  '.%2e',
  '%2f',
  '%2F..',
  '%5c',
  '%00',
  '%',
  '%zz',
  '%252e%252e',
  '%252f',
  '..;',
  ';x=1',
  '\\..',
  '\u2024\u2024',
  '\uff0e\uff0e',
  '%E2%80%A4%E2%80%A4',
  '%C0%AE%C0%AE',
  '\u00e9t\u00e9',
  '\u{1f600}',
  'a'.repeat(3000),
  '',
];
const TEMPLATES = [
  ['STU3', 'v1', 'ReferralRequest', '000000070000'],
  ['STU3', 'v1', 'ReferralRequest', '000000070000', '_history', '5'],
  ['STU3', 'v1', 'CodeSystem', 'SPECIALTY'],
  ['STU3', 'v1', 'ReferralRequest', '000000070000', '$ers.generateCRI'],
  ['STU3', 'v1', 'ReferralRequest', '$ers.fetchworklist'],
  ['STU3', 'v1', 'Binary', 'att-70000-70001'],
  ['STU3', 'v1', 'Binary'],
  ['R4', 'v1', 'PractitionerRole'],
  ['v1', 'ProfessionalSession'],
  ['v1', 'ProfessionalSession', KEY],
  ['v1', 'ReferralRequest', '000000070000'],
];

/** Printable ASCII without the characters that end a path segment. */
const segmentChar = fc
  .mapToConstant({ num: 94, build: (v) => String.fromCharCode(0x21 + v) })
  .filter((c) => !'/?#'.includes(c));
const randomSegment = fc.string({ unit: segmentChar, minLength: 1, maxLength: 24 });
const segment = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...REAL_SEGMENTS) },
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_SEGMENTS) },
  { weight: 2, arbitrary: randomSegment },
);

const mutatedTemplate = fc
  .tuple(fc.constantFrom(...TEMPLATES), fc.nat(), segment, fc.constantFrom('keep', 'replace', 'insert', 'append'))
  .map(([t, at, seg, how]) => {
    const s = [...t];
    const i = at % (s.length + 1);
    if (how === 'replace' && i < s.length) s[i] = seg;
    else if (how === 'insert') s.splice(i, 0, seg);
    else if (how === 'append') s.push(seg);
    return s;
  });
const segments = fc.oneof(
  { weight: 3, arbitrary: mutatedTemplate },
  { weight: 2, arbitrary: fc.array(segment, { maxLength: 7 }) },
);
const prefix = fc.constantFrom(
  '/ers-api/',
  '/ers-api/',
  '/ers-api/',
  '/ers-api/',
  '/ERS-API/',
  '/ers-apix/',
  '/',
  '//ers-api/',
);
const path = fc.tuple(prefix, segments).map(([p, s]) => `${p}${s.join('/')}`.replace(/^\/ers-api\/$/, '/ers-api'));

const queryChar = fc.mapToConstant({ num: 94, build: (v) => String.fromCharCode(0x21 + v) }).filter((c) => c !== '#');
const query = fc.oneof(
  fc.constant(''),
  fc.string({ unit: queryChar, maxLength: 60 }),
  fc.constantFrom('status=ACTIVE', '_count=5', 'x=/../../oauth2/token', 'a=%2e%2e%2f', 'q=%', '=&&=', 'a=1&a=2'),
);

/** A header value: printable ASCII and spaces (what a client can send), up to 200 characters. */
const headerValue = fc.string({
  unit: fc.mapToConstant({ num: 95, build: (v) => String.fromCharCode(0x20 + v) }),
  maxLength: 200,
});
const digits = fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 1, maxLength: 20 });

const legitimateHeaders = fc.record(
  {
    XAPI_ASID: fc.oneof(fc.constantFrom(APP_ASID, APP_ASID, OTHER_ASID, LIMITED_ASID), digits, headerValue),
    HTTP_X_SESSION_KEY: fc.oneof(
      { weight: 4, arbitrary: fc.constant(KEY) },
      { weight: 1, arbitrary: fc.constant(OTHER_KEY) },
      { weight: 1, arbitrary: fc.uuid().map((u) => `pro-api-session:${u}`) },
      { weight: 1, arbitrary: headerValue },
    ),
    'If-Match': fc.oneof(fc.constantFrom('W/"5"', 'W/"1"', '5', '*'), headerValue),
    'Content-Type': fc.oneof(
      fc.constantFrom(
        'application/fhir+json',
        'application/json',
        'application/json+fhir',
        'text/plain',
        'application/pdf',
      ),
      headerValue,
    ),
  },
  { requiredKeys: [] },
);
const FORBIDDEN_NAMES = [
  'Authorization',
  'NHSD-eRS-Business-Function',
  'nhsd_end_user_organisation_ods',
  'x-ers-user-id',
  'X_ERS_ODS_CODE',
  'X-Forwarded-For',
] as const;
const forbiddenHeaderArb = fc.record(Object.fromEntries(FORBIDDEN_NAMES.map((n) => [n, headerValue])), {
  requiredKeys: [],
});

const body = fc.oneof(
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
  fc.json({ maxDepth: 4 }).map((j) => Buffer.from(j)),
  fc.constant(Buffer.from('{"typeInfo":"uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession","token":"fuzz"}')),
  fc.constant(fixtureBytes('stu3/retrieveWorklist/requests/MinimalReferralsForReview.json')),
);

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

/** Anything goes: every part drawn independently. */
const wildRequest: fc.Arbitrary<FuzzRequest> = fc
  .record({
    method: fc.constantFrom(...METHODS),
    path,
    query,
    legit: legitimateHeaders,
    forbidden: forbiddenHeaderArb,
    body,
  })
  .map(({ method, path, query, legit, forbidden, body }) => ({
    method,
    path,
    query,
    headers: [...Object.entries(legit), ...Object.entries(forbidden)] as Array<[string, string]>,
    body,
  }));

/** Calls of the real operations (mostly with a valid ASID and session), one part perturbed now and then. */
const OPERATIONS: Array<{ method: string; segments: string[]; contentType?: string; body?: 'worklist' | 'session' }> = [
  { method: 'GET', segments: ['STU3', 'v1', 'ReferralRequest', '000000070000'] },
  { method: 'GET', segments: ['STU3', 'v1', 'ReferralRequest', '000000070000', '_history', '5'] },
  { method: 'GET', segments: ['STU3', 'v1', 'CodeSystem', 'SPECIALTY'] },
  { method: 'POST', segments: ['STU3', 'v1', 'ReferralRequest', '000000070000', '$ers.generateCRI'] },
  {
    method: 'POST',
    segments: ['STU3', 'v1', 'ReferralRequest', '$ers.fetchworklist'],
    contentType: 'application/fhir+json',
    body: 'worklist',
  },
  { method: 'GET', segments: ['STU3', 'v1', 'Binary', 'att-70000-70001'] },
  { method: 'GET', segments: ['R4', 'v1', 'PractitionerRole'] },
  { method: 'POST', segments: ['v1', 'ProfessionalSession'], contentType: 'application/json', body: 'session' },
  { method: 'PUT', segments: ['v1', 'ProfessionalSession', KEY], contentType: 'application/json', body: 'session' },
  { method: 'DELETE', segments: ['v1', 'ProfessionalSession', KEY] },
];
const WORKLIST = fixtureBytes('stu3/retrieveWorklist/requests/MinimalReferralsForReview.json');
const SESSION_BODY = Buffer.from(
  JSON.stringify({
    typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession',
    token: 'fuzz',
    permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' },
  }),
);
/** `arb` once in `n` draws, else undefined. */
const onceIn = <T>(n: number, arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: n - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });

const plausibleRequest: fc.Arbitrary<FuzzRequest> = fc
  .record({
    op: fc.constantFrom(...OPERATIONS),
    mutation: onceIn(3, fc.tuple(fc.nat(), segment, fc.boolean())),
    method: onceIn(8, fc.constantFrom(...METHODS)),
    query: onceIn(3, query),
    asid: fc.oneof(
      { weight: 8, arbitrary: fc.constant(APP_ASID) },
      { weight: 1, arbitrary: legitimateHeaders.map((l) => l.XAPI_ASID ?? OTHER_ASID) },
    ),
    key: fc.oneof(
      { weight: 8, arbitrary: fc.constant(KEY) },
      { weight: 1, arbitrary: legitimateHeaders.map((l) => l.HTTP_X_SESSION_KEY ?? '') },
    ),
    ifMatch: onceIn(4, fc.oneof(fc.constant('W/"5"'), headerValue)),
    contentType: onceIn(
      6,
      legitimateHeaders.map((l) => l['Content-Type'] ?? 'text/plain'),
    ),
    forbidden: fc
      .subarray([...FORBIDDEN_NAMES])
      .chain((names) => fc.tuple(...names.map((n) => headerValue.map((v): [string, string] => [n, v])))),
    body: onceIn(6, body),
  })
  .map((p) => {
    const segs = [...p.op.segments];
    if (p.mutation) {
      const [at, seg, replace] = p.mutation;
      const i = at % (segs.length + 1);
      if (replace && i < segs.length) segs[i] = seg;
      else segs.splice(i, 0, seg);
    }
    const headers: Array<[string, string]> = [
      ['XAPI_ASID', p.asid],
      ['HTTP_X_SESSION_KEY', p.key],
    ];
    const ct = p.contentType ?? p.op.contentType;
    if (ct !== undefined) headers.push(['Content-Type', ct]);
    if (p.ifMatch !== undefined) headers.push(['If-Match', p.ifMatch]);
    headers.push(...p.forbidden);
    const defaultBody = p.op.body === 'worklist' ? WORKLIST : p.op.body === 'session' ? SESSION_BODY : undefined;
    return {
      method: p.method ?? p.op.method,
      path: `/ers-api/${segs.join('/')}`,
      query: p.query ?? '',
      headers,
      body: p.body ?? defaultBody,
    };
  });

const fuzzRequest = fc.oneof(plausibleRequest, wildRequest);

// --- the checks -------------------------------------------------------------------------------------------------

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: Buffer;
  /** What the stand-in received while this request was handled. */
  upstream: RecordedRequest[];
  head: boolean;
}

function upstreamProblems(a: Answer, tokenIssued: (t: string) => boolean): string[] {
  return a.upstream.flatMap((r) => {
    const p = badUpstreamPath(r);
    return [...(p ? [p] : []), ...forbiddenHeaders(r, tokenIssued).map((f) => `${r.method} ${r.url}: ${f}`)];
  });
}

function shapeProblem(a: Answer): string | undefined {
  if (a.status < 400) return undefined;
  const own = notLegacyShaped(a, { bridge: true, head: a.head });
  if (own === undefined) return undefined;
  // An answer from APIM (the stand-in answered during this call) may be its own eRS OperationOutcome.
  if (a.upstream.length > 0 && notLegacyShaped(a, { bridge: false, head: a.head }) === undefined) return undefined;
  return `${a.status}: ${own}`;
}

const DOCUMENTED = documentedStatuses();

/** An ers-bridge reason must be one MIGRATION.md documents, with the status documented for it. */
function statusProblem(a: Answer): string | undefined {
  const reason = bridgeReason(a);
  if (reason === undefined) return undefined;
  const ok = DOCUMENTED.get(reason);
  if (!ok) return `reason ${reason} is not in MIGRATION.md's Troubleshooting table`;
  return ok(a.status) ? undefined : `reason ${reason} with status ${a.status}, not the status MIGRATION.md documents`;
}

describe('fuzzing the legacy surface', () => {
  let h: Harness;
  let port: number;
  let tokenIssued: (t: string) => boolean;
  const pool = { key: '', otherKey: '' };
  const crashes: string[] = [];
  /** Coverage of the runs, printed at the end: answers by status, and how many reached the stand-in. */
  const stats = { runs: 0, reachedApim: 0, byStatus: new Map<number, number>() };
  const count = (a: Answer) => {
    stats.runs++;
    if (a.upstream.length > 0) stats.reachedApim++;
    stats.byStatus.set(a.status, (stats.byStatus.get(a.status) ?? 0) + 1);
  };
  const onRejection = (reason: unknown) => crashes.push(`unhandledRejection: ${String(reason)}`);
  const onException = (error: Error) => crashes.push(`uncaughtException: ${error.message}`);

  beforeAll(async () => {
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
    h = await startHarness();
    tokenIssued = issuedTokenCheck(h.standIn);
    port = Number(new URL(h.bridgeUrl).port);
    pool.key = await openSession(h);
    pool.otherKey = await openSession(h, OTHER_ASID);
  });

  afterAll(async () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    await h?.close();
    const statuses = [...stats.byStatus].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`);
    console.log(
      `fuzz (seed ${SEED}): ${stats.runs} requests, ${stats.reachedApim} reached the stand-in; ${statuses.join(' ')}`,
    );
  });

  /** Keeps the pool's sessions alive: a fuzzed A003 (or A002) may have ended or changed them. */
  async function refreshPool(): Promise<void> {
    const s = await h.runtime.shared.store.get(pool.key);
    if (!s?.permission) pool.key = await openSession(h);
    const o = await h.runtime.shared.store.get(pool.otherKey);
    if (!o?.permission) pool.otherKey = await openSession(h, OTHER_ASID);
  }

  const fill = (s: string) => s.replaceAll(KEY, pool.key).replaceAll(OTHER_KEY, pool.otherKey);

  async function viaInject(r: FuzzRequest): Promise<Answer> {
    await refreshPool();
    const before = h.standIn.received.length;
    const headers: Record<string, string> = {};
    for (const [n, v] of r.headers) headers[n] = fill(v);
    const res = await h.bridge.inject({
      method: r.method as 'GET',
      url: fill(r.path) + (r.query ? `?${r.query}` : ''),
      headers,
      ...(r.body !== undefined ? { payload: r.body } : {}),
    });
    const answer = {
      status: res.statusCode,
      headers: res.headers,
      body: res.rawPayload,
      upstream: h.standIn.received.slice(before),
      head: r.method === 'HEAD',
    };
    count(answer);
    return answer;
  }

  async function viaSocket(r: FuzzRequest): Promise<Answer> {
    await refreshPool();
    const before = h.standIn.received.length;
    const target = fill(r.path) + (r.query ? `?${r.query}` : '');
    const lines = [`Host: 127.0.0.1:${port}`, ...r.headers.map(([n, v]) => `${n}: ${fill(v)}`)];
    if (r.body !== undefined) lines.push(`Content-Length: ${r.body.length}`);
    const head = Buffer.from(`${r.method} ${target} HTTP/1.1\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`, 'utf8');
    const res = await rawRequest(port, head, {
      ...(r.body !== undefined ? { body: [r.body] } : {}),
      headRequest: r.method === 'HEAD',
      timeoutMs: 10_000,
    });
    if (!res.answered) throw new Error(`no answer over the socket (${res.error ?? 'timeout'})`);
    const answer = {
      status: res.status,
      headers: res.headers,
      body: res.body,
      upstream: h.standIn.received.slice(before),
      head: r.method === 'HEAD',
    };
    count(answer);
    return answer;
  }

  async function stillAnswering(): Promise<void> {
    const health = await h.ops.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(crashes).toEqual([]);
  }

  function noCrashNoLeak(a: Answer): void {
    expect(upstreamProblems(a, tokenIssued)).toEqual([]);
    expect(bridgeReason(a), 'ers-bridge failed unexpectedly').not.toBe('INTERNAL_ERROR');
  }

  const params = (numRuns: number) => ({ numRuns, seed: SEED });

  it('inject: never crashes, never forwards a forbidden header or path', async () => {
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async (r) => {
        noCrashNoLeak(await viaInject(r));
        await stillAnswering();
      }),
      params(INJECT_RUNS),
    );
  }, 120_000);

  it('inject: every 4xx/5xx answer is legacy-shaped', async () => {
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async (r) => {
        expect(shapeProblem(await viaInject(r))).toBeUndefined();
      }),
      params(INJECT_RUNS),
    );
  }, 120_000);

  it('inject: every ers-bridge reason comes with the status MIGRATION.md documents', async () => {
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async (r) => {
        expect(statusProblem(await viaInject(r))).toBeUndefined();
      }),
      params(INJECT_RUNS),
    );
  }, 120_000);

  it('real sockets: never crashes, never forwards a forbidden header or path', async () => {
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async (r) => {
        noCrashNoLeak(await viaSocket(r));
        await stillAnswering();
      }),
      params(SOCKET_RUNS),
    );
  }, 120_000);

  it('real sockets: every 4xx/5xx answer is legacy-shaped', async () => {
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async (r) => {
        expect(shapeProblem(await viaSocket(r))).toBeUndefined();
      }),
      params(SOCKET_RUNS),
    );
  }, 120_000);

  it('real sockets: every ers-bridge reason comes with the status MIGRATION.md documents', async () => {
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async (r) => {
        expect(statusProblem(await viaSocket(r))).toBeUndefined();
      }),
      params(SOCKET_RUNS),
    );
  }, 120_000);

  it('afterwards: no unhandled rejection, and a normal call still succeeds', async () => {
    await refreshPool();
    const res = await h.bridge.inject({
      method: 'GET',
      url: '/ers-api/STU3/v1/ReferralRequest/000000070000',
      headers: { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: pool.key },
    });
    expect(res.statusCode).toBe(200);
    expect(crashes).toEqual([]);
  });
});
