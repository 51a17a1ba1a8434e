/**
 * The admin surface for migration teams: how the answers of two sides compare, per operation (A-code) and per ASID.
 *
 *   GET  /admin/compare                       → the ComparisonSummary (JSON)
 *   GET  /admin/compare/:code                 → one operation's figures, mode and latest samples (JSON)
 *   GET  /admin/compare/samples?code=&limit=  → the latest redacted comparison records of one A-code (JSON)
 *   GET  /admin/compare/trend                 → difference rate and readiness over time (JSON)
 *   GET  /admin/compare/export.csv, .json     → the window's figures to download (CSV: src/comparison/csv.ts)
 *   GET  /admin/compare/ui                    → the overview page: charts over time, operations by difference rate,
 *                                               the known-difference presets, readiness by ASID
 *   GET  /admin/compare/ui/:code              → one operation: its chart, differing fields (distinct examples with
 *                                               counts), what presets ignored, noise fields, latest outcomes
 *   GET  /admin/compare/reset                 → the reset's confirmation form; POST it to reset (one-time confirmation)
 *   GET  /admin/style.css                     → the pages' stylesheet
 *
 * Every comparison route takes a time window — `window=hour|day|week|all`, or `from`/`to` (src/admin/time.ts) — and
 * the pages a time zone, `tz` (default Europe/London, or the server's TZ). An A-code ers-bridge does not know is 404
 * (JSON and page); a malformed one 400. The figures are every replica's when sessions are on Redis (the shared
 * comparisons, src/comparison/redis-comparisons.ts), else this process's, read back from comparison.file at start.
 *
 * A fastify plugin, registered under the prefix /admin: one guard (an onRequest hook scoped to the plugin) asks every
 * route for the admin token, as `Authorization: Bearer <token>` or HTTP Basic `admin:<token>` (so a browser prompts),
 * compared in constant time. The guard reads the token when each request arrives, so a rules reload that changes it
 * takes effect at once. Without a token the admin surface does not exist (404), unless it is explicitly open (the
 * demo). The pages show traffic metadata: never cached, no script, not framed; the charts are inline SVG.
 *
 * Guessing is throttled per client address (src/http/client-address.ts): more than 10 wrong tokens in a minute and
 * the address gets 429 with Retry-After for every admin request, the right token included, until that minute is
 * over, so guessing gains nothing; logged at warn once per window, with the address and never what was presented.
 * Only a presented token counts (Bearer <token>, or Basic for the user admin): a request without credentials (a
 * browser's first try before it prompts), for another user, or malformed, could never have matched. The token is
 * checked for strength when the rules are loaded (src/admin/token-strength.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { summaryCsv } from '../comparison/csv.js';
import { readinessState } from '../comparison/report.js';
import type {
  CodeSummary,
  ComparisonReader,
  ComparisonRecord,
  ComparisonSummary,
  ComparisonTrend,
  TimeWindow,
} from '../comparison/types.js';
import { FailureWindows } from '../http/address-limits.js';
import { clientAddress } from '../http/client-address.js';
import { PAGE_SECURITY_HEADERS, sendPage } from '../http/page.js';
import { ENDPOINTS } from '../legacy/endpoints.js';
import { type Clock, systemClock } from '../runtime/clock.js';
import type { AdminFacts } from './facts.js';
import {
  A_CODE,
  ADMIN_STYLE_CSS,
  badCodePage,
  badQueryPage,
  codePage,
  failedPage,
  noComparisonsPage,
  notEnabledPage,
  notFoundPage,
  overviewPage,
  type PageContext,
  resetPage,
  resetRefusedPage,
  unknownCodePage,
} from './pages.js';
import { type AskedWindow, serverTimeZone, validTimeZone, windowOf } from './time.js';

/**
 * What the admin surface reads: the comparison store of this process, or the shared comparisons on Redis (see
 * src/comparison/types.ts `ComparisonReader`). Only `summary` and `samples` are required.
 */
export type AdminSource = ComparisonReader;

export interface AdminOptions {
  /** The admin token now (read per request); undefined + open → no authentication (the demo only). */
  token: () => string | undefined;
  /** Whether the surface is open without a token now (the loopback demo). */
  open: () => boolean;
  /** Returns the comparison source of the current runtime, or undefined when comparison is off. */
  comparisons: () => AdminSource | undefined;
  /** Endpoint names by A-code, for display. */
  names?: Record<string, string>;
  /** The clock the failed-attempt windows run on (the runtime's; default the system clock). */
  clock?: Clock;
  /** Whether an address is a trusted TLS-terminating proxy (its X-Forwarded-For names the client). */
  trustedProxy?: (address: string) => boolean;
  /** What the current rules say: modes, access modes, presets, this process (read per request). */
  facts?: () => AdminFacts | undefined;
  /** Now, for time windows (epoch ms; default Date.now: comparison records carry wall-clock times). */
  now?: () => number;
  /** The zone times are shown in without a `tz` query (default: TZ when it names a zone, else Europe/London). */
  timeZone?: string;
  /** Whether an A-code is one ers-bridge knows (default: the endpoint table); others are 404. */
  knownCode?: (aCode: string) => boolean;
}

/** The user name a browser sends with the token as password. */
export const ADMIN_USER = 'admin';
export const REALM = 'ers-bridge admin';
const CHALLENGE = `Basic realm="${REALM}", charset="UTF-8"`;

/** Wrong tokens allowed per client address in a window; one more and the address is refused until it ends. */
export const ADMIN_FAILURES_ALLOWED = 10;
export const ADMIN_FAILURE_WINDOW_MS = 60_000;

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;
/** Samples shown on an operation's page. */
const PAGE_SAMPLES = 20;

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * Checks an Authorization header against the token: `Bearer <token>` or `Basic base64(admin:<token>)`. Both sides
 * are hashed first so that the comparison is constant-time over equal lengths whatever was sent.
 */
export function credentialsMatch(header: string | undefined, token: string): boolean {
  const presented = presentedToken(header);
  return presented !== undefined && timingSafeEqual(sha256(presented), sha256(token));
}

/**
 * The token an Authorization header presents: `Bearer <token>`, or `Basic base64(admin:<token>)`; undefined when it
 * presents none (absent, malformed, another scheme, another user), i.e. when it could never match any token.
 */
export function presentedToken(header: string | undefined): string | undefined {
  if (typeof header !== 'string' || header.length > 8192) return undefined;
  const m = /^(Bearer|Basic) +([^\s]+) *$/i.exec(header);
  if (!m) return undefined;
  if (m[1]!.toLowerCase() === 'bearer') return m[2]!;
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
  return decoded.startsWith(`${ADMIN_USER}:`) ? decoded.slice(ADMIN_USER.length + 1) : undefined;
}

function one(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** `limit` as given: absent → the default; otherwise an integer 1..100, or undefined when invalid. */
function parseLimit(raw: unknown): number | undefined {
  if (raw === undefined) return DEFAULT_LIMIT;
  const s = one(raw);
  if (s === undefined || !/^\d{1,3}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= MAX_LIMIT ? n : undefined;
}

/** Only the documented fields of a record leave ers-bridge, whatever else a store keeps. */
function publicRecord(r: ComparisonRecord): ComparisonRecord {
  const res = r.result;
  return {
    at: r.at,
    aCode: r.aCode,
    route: r.route,
    method: r.method,
    asid: r.asid,
    mode: r.mode,
    primary: r.primary,
    secondary: r.secondary,
    result: {
      equal: res.equal,
      statusEqual: res.statusEqual,
      primaryStatus: res.primaryStatus,
      secondaryStatus: res.secondaryStatus,
      bodyKind: res.bodyKind,
      differences: res.differences.map((d) => ({
        path: d.path,
        kind: d.kind,
        ...(d.primary !== undefined ? { primary: d.primary } : {}),
        ...(d.secondary !== undefined ? { secondary: d.secondary } : {}),
      })),
      noise: [...res.noise],
      ...(res.primarySize !== undefined ? { primarySize: res.primarySize } : {}),
      ...(res.secondarySize !== undefined ? { secondarySize: res.secondarySize } : {}),
      ...(res.primarySha256 !== undefined ? { primarySha256: res.primarySha256 } : {}),
      ...(res.secondarySha256 !== undefined ? { secondarySha256: res.secondarySha256 } : {}),
      ...(Array.isArray(res.ignoredByPreset) && res.ignoredByPreset.length > 0
        ? {
            ignoredByPreset: res.ignoredByPreset.map((p) => ({
              id: String(p.id),
              fields: Number(p.fields) || 0,
              paths: (Array.isArray(p.paths) ? p.paths : []).map(String),
            })),
          }
        : {}),
    },
    primaryMs: r.primaryMs,
    secondaryMs: r.secondaryMs,
    ...(r.secondaryError !== undefined ? { secondaryError: r.secondaryError } : {}),
    ...(r.correlationId !== undefined ? { correlationId: r.correlationId } : {}),
    ...(r.replica !== undefined ? { replica: r.replica } : {}),
  };
}

/** Latest first (ISO timestamps sort as text). */
function latestFirst(records: ComparisonRecord[]): ComparisonRecord[] {
  return [...records].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
}

/** The trend window of a page: the window asked for, else the figures' own span (at least the last day). */
function trendWindow(summary: ComparisonSummary, asked: AskedWindow, now: number): TimeWindow {
  if (asked.window) return asked.window;
  const first = summary.first ? Date.parse(summary.first) : Number.NaN;
  const from = Number.isFinite(first) ? Math.min(first, now - 86_400_000) : now - 86_400_000;
  return { from, to: now };
}

/** A form body (application/x-www-form-urlencoded), bounded. */
const FORM_LIMIT = 4096;

/** The admin surface; register it with `{ prefix: '/admin' }`. */
export async function adminPlugin(app: FastifyInstance, options: AdminOptions): Promise<void> {
  const names = options.names ?? {};
  const now = options.now ?? Date.now;
  const defaultZone = options.timeZone ?? serverTimeZone();
  const knownCode = options.knownCode ?? ((code: string) => ENDPOINTS.some((e) => e.code === code));
  const currentToken = () => {
    const t = options.token();
    return t !== undefined && t !== '' ? t : undefined;
  };
  const facts = () => options.facts?.();
  const pageContext = (extra: Partial<PageContext> = {}): PageContext => {
    const f = facts();
    return {
      open: currentToken() === undefined,
      names,
      tz: defaultZone,
      now: now(),
      ...(f ? { facts: f } : {}),
      ...extra,
    };
  };

  const secure = (reply: FastifyReply) => reply.headers(PAGE_SECURITY_HEADERS);
  const json = (reply: FastifyReply, status: number, body: unknown) =>
    secure(reply).code(status).type('application/json; charset=utf-8').send(JSON.stringify(body));

  // Only the reset posts a form: its body is parsed here, bounded, and nowhere else.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: FORM_LIMIT },
    (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
  );

  const failures = new FailureWindows(options.clock ?? systemClock, ADMIN_FAILURES_ALLOWED, ADMIN_FAILURE_WINDOW_MS);
  const refuse = (reply: FastifyReply, ms: number) =>
    secure(reply)
      .code(429)
      .header('retry-after', String(Math.max(1, Math.ceil(ms / 1000))))
      .type('text/plain; charset=utf-8')
      .send('Too many wrong admin tokens from this address: wait for the time in Retry-After, then try again.\n');

  /**
   * Runs before every admin route: 404 when the admin surface is off, 429 while the client's address is refused for
   * guessing, 401 without the right token.
   */
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const token = currentToken();
    if (token === undefined && !options.open()) {
      secure(reply);
      return reply.callNotFound();
    }
    if (token === undefined) return; // open (the demo)
    const address = clientAddress(req, options.trustedProxy);
    const refusedMs = failures.refusedFor(address);
    if (refusedMs > 0) return refuse(reply, refusedMs);
    const presented = presentedToken(req.headers.authorization);
    if (presented !== undefined && timingSafeEqual(sha256(presented), sha256(token))) return;
    if (presented !== undefined) {
      const outcome = failures.fail(address);
      if (outcome.newlyRefused) {
        req.log.warn(
          { address, failures: outcome.failures, windowSeconds: ADMIN_FAILURE_WINDOW_MS / 1000 },
          'admin: too many wrong tokens from one address; refusing it until the window ends',
        );
      }
      if (outcome.refusedMs > 0) return refuse(reply, outcome.refusedMs);
    }
    return secure(reply)
      .code(401)
      .header('www-authenticate', CHALLENGE)
      .type('text/plain; charset=utf-8')
      .send('The ers-bridge admin pages need the admin token (HTTP Basic user "admin", or a Bearer token).\n');
  });

  /** The current source, or undefined; throws only what the store throws. */
  const source = () => options.comparisons();

  /** The summary as shown: names, each ASID's access mode from the rules, and each operation's readiness state. */
  const decorate = (s: ComparisonSummary): ComparisonSummary => {
    const f = facts();
    return {
      ...s,
      codes: s.codes.map((c) => {
        const name = c.name ?? (Object.hasOwn(names, c.aCode) ? names[c.aCode] : undefined);
        return name !== undefined ? { ...c, name } : c;
      }),
      asids: s.asids.map((a) => {
        const accessMode = a.accessMode ?? f?.accessModeOf(a.asid);
        if (!accessMode) return a;
        return { ...a, accessMode, codes: a.codes.map((c) => ({ ...c, state: readinessState(c, accessMode) })) };
      }),
    };
  };

  /** The window and zone a request asks for, or the reason they are not valid. */
  const asked = (req: FastifyRequest): { window: AskedWindow; tz: string } | { error: string } => {
    const q = req.query as Record<string, unknown>;
    let tz = defaultZone;
    if (q['tz'] !== undefined && q['tz'] !== '') {
      if (typeof q['tz'] !== 'string' || !validTimeZone(q['tz'])) {
        return { error: 'tz must be a time zone name such as Europe/London or UTC' };
      }
      tz = q['tz'];
    }
    const w = windowOf(q, now(), tz);
    return 'error' in w ? w : { window: w, tz };
  };

  const failed = (req: FastifyRequest, e: unknown, what: string) => {
    const err = e instanceof Error ? e : new Error(String(e));
    req.log.error({ err: { type: err.name, message: err.message, stack: err.stack } }, `admin: ${what} failed`);
  };
  const READ_FAILED = { error: 'the comparison records could not be read; see the ers-bridge log' };

  const NOT_ENABLED = {
    error:
      'comparison is not enabled in this configuration: switch it on in the rules (shadow or replay) to compare answers',
  };
  const unknownCode = (code: string) => ({
    error: `${code} is not an e-RS operation ers-bridge knows (A-codes as the e-RS API names them)`,
  });

  /** A summary and (when the source keeps one) a trend, for the window asked. */
  const readView = async (src: AdminSource, a: AskedWindow) => {
    const summary = decorate(await src.summary(a.window));
    const trend: ComparisonTrend | undefined = src.trend ? await src.trend(trendWindow(summary, a, now())) : undefined;
    return { summary, trend };
  };

  /**
   * A JSON read of the comparisons: the window and zone asked (400 when not valid), the source (404 when comparison
   * is off), then `answer`; a failure to read is logged and answered 500 without its details.
   */
  const readJson = async (
    req: FastifyRequest,
    reply: FastifyReply,
    what: string,
    answer: (src: AdminSource, a: { window: AskedWindow; tz: string }) => Promise<FastifyReply>,
  ): Promise<FastifyReply> => {
    const a = asked(req);
    if ('error' in a) return json(reply, 400, { error: a.error });
    try {
      const src = source();
      if (!src) return json(reply, 404, NOT_ENABLED);
      return await answer(src, a);
    } catch (e) {
      failed(req, e, what);
      return json(reply, 500, READ_FAILED);
    }
  };

  app.get('/style.css', async (_req, reply) => secure(reply).type('text/css; charset=utf-8').send(ADMIN_STYLE_CSS));

  app.get('/compare', async (req, reply) =>
    readJson(req, reply, 'summary', async (src, a) => json(reply, 200, decorate(await src.summary(a.window.window)))),
  );

  app.get('/compare/trend', async (req, reply) =>
    readJson(req, reply, 'trend', async (src, a) => {
      const { trend } = await readView(src, a.window);
      if (!trend) return json(reply, 404, { error: 'this comparison source keeps no trend' });
      return json(reply, 200, trend);
    }),
  );

  app.get('/compare/samples', async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const code = one(q['code']);
    if (code === undefined || !A_CODE.test(code)) {
      return json(reply, 400, { error: 'code must be an A-code: the letter A and three digits, e.g. A005' });
    }
    const limit = parseLimit(q['limit']);
    if (limit === undefined) {
      return json(reply, 400, { error: `limit must be a whole number from 1 to ${MAX_LIMIT}` });
    }
    if (!knownCode(code)) return json(reply, 404, unknownCode(code));
    return readJson(req, reply, 'samples', async (src, a) => {
      const records = a.window.window
        ? await src.samples(code, limit, a.window.window)
        : await src.samples(code, limit);
      return json(reply, 200, latestFirst(records).slice(0, limit).map(publicRecord));
    });
  });

  /** The export of the window asked: CSV (one table: operations and readiness, src/comparison/csv.ts) or JSON. */
  const exportName = (a: AskedWindow, ext: string) => {
    const stamp = new Date(now()).toISOString().slice(0, 16).replace(/[-:]/g, '');
    return `ers-bridge-comparisons-${a.preset}-${stamp}.${ext}`;
  };
  app.get('/compare/export.csv', async (req, reply) =>
    readJson(req, reply, 'CSV export', async (src, a) => {
      const summary = decorate(await src.summary(a.window.window));
      return secure(reply)
        .code(200)
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${exportName(a.window, 'csv')}"`)
        .send(summaryCsv(summary));
    }),
  );
  app.get('/compare/export.json', async (req, reply) =>
    readJson(req, reply, 'JSON export', async (src, a) => {
      const view = await readView(src, a.window);
      return json(reply.header('content-disposition', `attachment; filename="${exportName(a.window, 'json')}"`), 200, {
        exportedAt: new Date(now()).toISOString(),
        timeZone: a.tz,
        summary: view.summary,
        ...(view.trend ? { trend: view.trend } : {}),
        presets: facts()?.presets ?? [],
      });
    }),
  );

  /** One operation's figures and latest samples (JSON). */
  app.get('/compare/:code', async (req, reply) => {
    const code = (req.params as { code?: string }).code;
    if (code === undefined || !A_CODE.test(code)) {
      return json(reply, 400, { error: 'code must be an A-code: the letter A and three digits, e.g. A005' });
    }
    if (!knownCode(code)) return json(reply, 404, unknownCode(code));
    return readJson(req, reply, 'operation', async (src, a) => {
      const summary = decorate(await src.summary(a.window.window));
      const found = summary.codes.find((c) => c.aCode === code);
      const none: CodeSummary = {
        aCode: code,
        ...(Object.hasOwn(names, code) ? { name: names[code]! } : {}),
        compared: 0,
        different: 0,
        differenceRate: 0,
        statusMismatches: 0,
        secondaryErrors: 0,
        topFields: [],
        noiseFields: [],
      };
      const samples = a.window.window
        ? await src.samples(code, PAGE_SAMPLES, a.window.window)
        : await src.samples(code, PAGE_SAMPLES);
      return json(reply, 200, {
        ...(found ?? none),
        mode: facts()?.modeOf(code),
        samples: latestFirst(samples).slice(0, PAGE_SAMPLES).map(publicRecord),
      });
    });
  });

  app.get('/compare/ui', async (req, reply) => {
    const a = asked(req);
    if ('error' in a) return sendPage(reply, 400, badQueryPage(a.error, pageContext()));
    const q = req.query as Record<string, unknown>;
    const ctx = pageContext({
      tz: a.tz,
      asked: a.window,
      ...(q['reset'] === 'done' ? { notice: 'Every comparison was reset: the figures start again from now.' } : {}),
    });
    try {
      const src = source();
      if (!src) return sendPage(reply, 404, notEnabledPage(ctx));
      const { summary, trend } = await readView(src, a.window);
      return sendPage(reply, 200, overviewPage(summary, ctx, trend));
    } catch (e) {
      failed(req, e, 'overview page');
      return sendPage(reply, 500, failedPage(ctx));
    }
  });

  app.get('/compare/ui/:code', async (req, reply) => {
    const code = (req.params as { code?: string }).code;
    if (code === undefined || !A_CODE.test(code)) return sendPage(reply, 400, badCodePage(pageContext()));
    if (!knownCode(code)) return sendPage(reply, 404, unknownCodePage(code, pageContext()));
    const a = asked(req);
    if ('error' in a) return sendPage(reply, 400, badQueryPage(a.error, pageContext()));
    const ctx = pageContext({ tz: a.tz, asked: a.window });
    try {
      const src = source();
      if (!src) return sendPage(reply, 404, notEnabledPage(ctx));
      const { summary, trend } = await readView(src, a.window);
      const found = summary.codes.find((c) => c.aCode === code);
      if (!found) return sendPage(reply, 200, noComparisonsPage(code, ctx));
      const records = a.window.window
        ? await src.samples(code, PAGE_SAMPLES, a.window.window)
        : await src.samples(code, PAGE_SAMPLES);
      const samples = latestFirst(records).slice(0, PAGE_SAMPLES).map(publicRecord);
      return sendPage(reply, 200, codePage(found, samples, ctx, trend));
    } catch (e) {
      failed(req, e, 'operation page');
      return sendPage(reply, 500, failedPage(ctx));
    }
  });

  /**
   * Reset, in two steps: GET shows what would be deleted and a form carrying a one-time confirmation (random, kept
   * hashed for 10 minutes: on Redis when the comparisons are, so the POST may land on any replica); POST with that
   * confirmation resets and goes back to the overview. A POST without a valid confirmation — a forged form from
   * another site cannot read one — changes nothing. A browser's Origin header, when sent, must be this host.
   */
  app.get('/compare/reset', async (req, reply) => {
    const a = asked(req);
    const ctx = pageContext('error' in a ? {} : { tz: a.tz, asked: a.window });
    try {
      const src = source();
      if (!src) return sendPage(reply, 404, notEnabledPage(ctx));
      if (!src.reset || !src.issueResetToken || !src.consumeResetToken) {
        return sendPage(reply, 404, notFoundPage(ctx));
      }
      const summary = decorate(await src.summary());
      return sendPage(reply, 200, resetPage(summary, await src.issueResetToken(), ctx));
    } catch (e) {
      failed(req, e, 'reset page');
      return sendPage(reply, 500, failedPage(ctx));
    }
  });

  app.post('/compare/reset', async (req, reply) => {
    const ctx = pageContext();
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null') {
      let host: string | undefined;
      try {
        host = new URL(origin).host;
      } catch {
        host = undefined;
      }
      if (host !== req.headers.host) return sendPage(reply, 403, resetRefusedPage(ctx));
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const token = typeof body['confirm'] === 'string' ? body['confirm'] : '';
    try {
      const src = source();
      if (!src) return sendPage(reply, 404, notEnabledPage(ctx));
      if (!src.reset || !src.consumeResetToken) return sendPage(reply, 404, notFoundPage(ctx));
      if (token === '' || token.length > 200 || !(await src.consumeResetToken(token))) {
        return sendPage(reply, 403, resetRefusedPage(ctx));
      }
      await src.reset();
      req.log.warn({ address: clientAddress(req, options.trustedProxy) }, 'admin: comparisons reset');
      return secure(reply).redirect('/admin/compare/ui?reset=done', 303);
    } catch (e) {
      failed(req, e, 'reset');
      return sendPage(reply, 500, failedPage(ctx));
    }
  });

  // The entry point, and every other /admin address: behind the same guard, so nothing is revealed without the token.
  app.get('/', async (_req, reply) => secure(reply).redirect('/admin/compare/ui', 303));
  app.get('/*', async (_req, reply) => sendPage(reply, 404, notFoundPage(pageContext())));
}
