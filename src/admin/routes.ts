/**
 * The admin surface for migration teams: how the answers of two sides compare, per operation (A-code) and per ASID.
 *
 *   GET /admin/compare                       → the ComparisonSummary (JSON)
 *   GET /admin/compare/samples?code=&limit=  → the latest redacted comparison records of one A-code (JSON)
 *   GET /admin/compare/ui                    → the overview page: operations by difference rate, readiness by ASID
 *   GET /admin/compare/ui/:code              → one operation: its differing fields, noise fields, latest samples
 *   GET /admin/style.css                     → the pages' stylesheet
 *
 * A fastify plugin, registered under the prefix /admin: one guard (an onRequest hook scoped to the plugin) asks every
 * route for the admin token, as `Authorization: Bearer <token>` or HTTP Basic `admin:<token>` (so a browser prompts),
 * compared in constant time. The guard reads the token when each request arrives, so a rules reload that changes it
 * takes effect at once. Without a token the admin surface does not exist (404), unless it is explicitly open (the
 * demo). The pages show traffic metadata: never cached, no script, not framed.
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
import type { ComparisonRecord, ComparisonSummary } from '../comparison/types.js';
import { FailureWindows } from '../http/address-limits.js';
import { clientAddress } from '../http/client-address.js';
import { PAGE_SECURITY_HEADERS, sendPage } from '../http/page.js';
import { type Clock, systemClock } from '../runtime/clock.js';
import {
  A_CODE,
  ADMIN_STYLE_CSS,
  badCodePage,
  codePage,
  failedPage,
  noComparisonsPage,
  notEnabledPage,
  notFoundPage,
  overviewPage,
  type PageContext,
} from './pages.js';

/** What the admin surface reads: the comparison store (structurally; see src/comparison/store.ts). */
export interface AdminSource {
  summary(): ComparisonSummary;
  samples(aCode: string, limit?: number): ComparisonRecord[];
}

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
    },
    primaryMs: r.primaryMs,
    secondaryMs: r.secondaryMs,
    ...(r.secondaryError !== undefined ? { secondaryError: r.secondaryError } : {}),
    ...(r.correlationId !== undefined ? { correlationId: r.correlationId } : {}),
  };
}

/** Latest first (ISO timestamps sort as text). */
function latestFirst(records: ComparisonRecord[]): ComparisonRecord[] {
  return [...records].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
}

/** The admin surface; register it with `{ prefix: '/admin' }`. */
export async function adminPlugin(app: FastifyInstance, options: AdminOptions): Promise<void> {
  const names = options.names ?? {};
  const currentToken = () => {
    const t = options.token();
    return t !== undefined && t !== '' ? t : undefined;
  };
  const pageContext = (): PageContext => ({ open: currentToken() === undefined, names });

  const secure = (reply: FastifyReply) => reply.headers(PAGE_SECURITY_HEADERS);
  const json = (reply: FastifyReply, status: number, body: unknown) =>
    secure(reply).code(status).type('application/json; charset=utf-8').send(JSON.stringify(body));

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

  const withNames = (s: ComparisonSummary): ComparisonSummary => ({
    ...s,
    codes: s.codes.map((c) => {
      const name = c.name ?? (Object.hasOwn(names, c.aCode) ? names[c.aCode] : undefined);
      return name !== undefined ? { ...c, name } : c;
    }),
  });

  const failed = (req: FastifyRequest, e: unknown, what: string) => {
    const err = e instanceof Error ? e : new Error(String(e));
    req.log.error({ err: { type: err.name, message: err.message, stack: err.stack } }, `admin: ${what} failed`);
  };

  const NOT_ENABLED = {
    error:
      'comparison is not enabled in this configuration: switch it on in the rules (shadow or replay) to compare answers',
  };

  app.get('/style.css', async (_req, reply) => secure(reply).type('text/css; charset=utf-8').send(ADMIN_STYLE_CSS));

  app.get('/compare', async (req, reply) => {
    try {
      const src = source();
      if (!src) return json(reply, 404, NOT_ENABLED);
      return json(reply, 200, withNames(src.summary()));
    } catch (e) {
      failed(req, e, 'summary');
      return json(reply, 500, { error: 'the comparison records could not be read; see the ers-bridge log' });
    }
  });

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
    try {
      const src = source();
      if (!src) return json(reply, 404, NOT_ENABLED);
      return json(reply, 200, latestFirst(src.samples(code, limit)).slice(0, limit).map(publicRecord));
    } catch (e) {
      failed(req, e, 'samples');
      return json(reply, 500, { error: 'the comparison records could not be read; see the ers-bridge log' });
    }
  });

  app.get('/compare/ui', async (req, reply) => {
    try {
      const src = source();
      if (!src) return sendPage(reply, 404, notEnabledPage(pageContext()));
      return sendPage(reply, 200, overviewPage(withNames(src.summary()), pageContext()));
    } catch (e) {
      failed(req, e, 'overview page');
      return sendPage(reply, 500, failedPage(pageContext()));
    }
  });

  app.get('/compare/ui/:code', async (req, reply) => {
    const code = (req.params as { code?: string }).code;
    if (code === undefined || !A_CODE.test(code)) return sendPage(reply, 400, badCodePage(pageContext()));
    try {
      const src = source();
      if (!src) return sendPage(reply, 404, notEnabledPage(pageContext()));
      const summary = withNames(src.summary()).codes.find((c) => c.aCode === code);
      if (!summary) return sendPage(reply, 200, noComparisonsPage(code, pageContext()));
      const samples = latestFirst(src.samples(code, PAGE_SAMPLES)).slice(0, PAGE_SAMPLES).map(publicRecord);
      return sendPage(reply, 200, codePage(summary, samples, pageContext()));
    } catch (e) {
      failed(req, e, 'operation page');
      return sendPage(reply, 500, failedPage(pageContext()));
    }
  });

  // The entry point, and every other /admin address: behind the same guard, so nothing is revealed without the token.
  app.get('/', async (_req, reply) => secure(reply).redirect('/admin/compare/ui', 303));
  app.get('/*', async (_req, reply) => sendPage(reply, 404, notFoundPage(pageContext())));
}
