/**
 * A crafted comparison summary and samples for the admin surface tests, and a loopback fastify app with
 * registerAdmin on it. Every response the tests receive is kept so that they can be scanned for the token.
 */
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { request } from 'undici';
import { type AdminOptions, type AdminSource, adminPlugin } from '../../src/admin/routes.js';
import type { ComparisonRecord, ComparisonSummary } from '../../src/comparison/types.js';

export const READY_ASID = '999000000001';
export const NOT_READY_ASID = '999000000002';
export const XSS = '<script>alert(1)</script>';

const NAMES: Record<string, string> = {
  A004: 'Retrieve reference data',
  A005: 'Retrieve referral request',
  A011: 'Create referral',
};

function craftedSummary(): ComparisonSummary {
  return {
    since: '2025-01-06T09:00:00.000Z',
    records: 32,
    codes: [
      // Listed first on purpose: the pages put the highest difference rate first.
      {
        aCode: 'A004',
        compared: 20,
        different: 0,
        differenceRate: 0,
        statusMismatches: 0,
        secondaryErrors: 0,
        topFields: [],
        noiseFields: [],
        p50PrimaryMs: 5,
        p50SecondaryMs: 9.46,
      },
      {
        aCode: 'A005',
        name: 'Retrieve referral request',
        compared: 10,
        different: 3,
        differenceRate: 0.3,
        statusMismatches: 1,
        secondaryErrors: 2,
        topFields: [
          {
            path: 'status',
            count: 3,
            examples: [
              { primary: 'active', secondary: 'draft' },
              { primary: 'active', secondary: 'cancelled' },
            ],
          },
          { path: 'meta.versionId', count: 2, examples: [{ primary: '5', secondary: 6 }] },
          { path: 'text.div', count: 1, examples: [{ primary: XSS, secondary: '<b>bold</b>' }] },
          { path: 'header:etag', count: 1, examples: [{ primary: 'W/"5"' }] },
        ],
        noiseFields: ['meta.lastUpdated', 'header:x-request-id'],
        p50PrimaryMs: 120.4,
        p50SecondaryMs: 250,
      },
    ],
    asids: [
      {
        asid: NOT_READY_ASID,
        codes: [
          { aCode: 'A005', calls: 12, appRestrictedAllowed: true, compared: 10, different: 3, failedOnApim: 1 },
          { aCode: 'A004', calls: 8, appRestrictedAllowed: true, compared: 8, different: 0, failedOnApim: 0 },
          { aCode: 'A011', calls: 2, appRestrictedAllowed: false, compared: 0, different: 0, failedOnApim: 0 },
        ],
      },
      {
        asid: READY_ASID,
        codes: [{ aCode: 'A004', calls: 12, appRestrictedAllowed: true, compared: 12, different: 0, failedOnApim: 0 }],
      },
    ],
  };
}

function record(at: string, overrides: Partial<ComparisonRecord>): ComparisonRecord {
  return {
    at,
    aCode: 'A005',
    route: '/STU3/v1/ReferralRequest/{ubrn}',
    method: 'GET',
    asid: NOT_READY_ASID,
    mode: 'shadow',
    primary: 'legacy',
    secondary: 'apim',
    result: {
      equal: true,
      statusEqual: true,
      primaryStatus: 200,
      secondaryStatus: 200,
      bodyKind: 'json',
      differences: [],
      noise: [],
    },
    primaryMs: 110,
    secondaryMs: 240,
    ...overrides,
  };
}

function craftedSamples(): ComparisonRecord[] {
  const older = record('2025-01-06T09:10:00.000Z', {
    correlationId: 'corr-older',
    result: {
      equal: false,
      statusEqual: false,
      primaryStatus: 200,
      secondaryStatus: 404,
      bodyKind: 'json',
      differences: [{ path: 'status', kind: 'changed', primary: 200, secondary: 404 }],
      noise: [],
    },
  });
  const latest = record('2025-01-06T09:30:00.000Z', {
    correlationId: 'corr-latest',
    result: {
      equal: false,
      statusEqual: true,
      primaryStatus: 200,
      secondaryStatus: 200,
      bodyKind: 'json',
      differences: [
        { path: 'status', kind: 'changed', primary: 'active', secondary: 'draft' },
        { path: 'text.div', kind: 'changed', primary: XSS, secondary: '<b>bold</b>' },
        { path: 'extension[2]', kind: 'only-secondary', secondary: { url: 'x' } },
      ],
      noise: ['meta.lastUpdated'],
    },
  });
  // A store might keep more than the documented fields: none of it may leave ers-bridge.
  (latest as unknown as Record<string, unknown>)['rawBody'] = 'UNREDACTED-BODY';
  return [older, latest];
}

export class FakeSource implements AdminSource {
  calls: Array<{ aCode: string; limit?: number }> = [];
  constructor(
    private readonly data: ComparisonSummary = craftedSummary(),
    private readonly records: ComparisonRecord[] = craftedSamples(),
  ) {}
  summary(): ComparisonSummary {
    return structuredClone(this.data);
  }
  samples(aCode: string, limit?: number): ComparisonRecord[] {
    this.calls.push({ aCode, limit });
    return structuredClone(this.records.filter((r) => r.aCode === aCode).slice(0, limit ?? 20));
  }
}

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

export interface AdminApp {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

/** The admin surface's options as fixed values (the plugin reads them per request). */
export interface FixedAdminOptions extends Partial<Omit<AdminOptions, 'token' | 'open'>> {
  token?: string;
  open?: boolean;
  /** Where the app logs (default: nowhere). */
  logger?: FastifyBaseLogger;
}

export async function startAdminApp(options: FixedAdminOptions = {}): Promise<AdminApp> {
  const { token, open, logger, ...rest } = options;
  const app = logger ? Fastify({ loggerInstance: logger }) : Fastify({ logger: false });
  await app.register(adminPlugin, {
    prefix: '/admin',
    comparisons: () => new FakeSource(),
    names: NAMES,
    ...rest,
    token: () => token,
    open: () => open === true,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return { app, url: `http://127.0.0.1:${addr.port}`, close: () => app.close() };
}

export interface Seen {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** Every answer a test received, to be scanned for the token. */
export const seen: Seen[] = [];

export async function get(url: string, headers: Record<string, string> = {}): Promise<Seen> {
  const res = await request(url, { method: 'GET', headers });
  const text = await res.body.text();
  const s: Seen = { status: res.statusCode, headers: res.headers, text };
  seen.push(s);
  return s;
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}
