/**
 * The admin surface over HTTP: authentication (Bearer, Basic, disabled, open), security headers, the JSON endpoints
 * and their validation, comparison switched off, and pages rendered with escaped values.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminSource } from '../../src/admin/routes.js';
import { credentialsMatch } from '../../src/admin/routes.js';
import type { ComparisonRecord, ComparisonSummary } from '../../src/comparison/types.js';
import {
  type AdminApp,
  basic,
  FakeSource,
  get,
  NOT_READY_ASID,
  newToken,
  READY_ASID,
  type Seen,
  seen,
  startAdminApp,
  XSS,
} from './fixture.js';

const token = newToken();
const ROUTES = [
  '/admin/compare',
  '/admin/compare/samples?code=A005',
  '/admin/compare/ui',
  '/admin/compare/ui/A005',
  '/admin/style.css',
  '/admin',
  '/admin/elsewhere',
];

function expectSecurityHeaders(res: Seen): void {
  expect(res.headers['cache-control']).toBe('no-store');
  const csp = String(res.headers['content-security-policy']);
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).not.toMatch(/script-src|unsafe-inline/);
  expect(res.headers['x-content-type-options']).toBe('nosniff');
  expect(res.headers['referrer-policy']).toBe('no-referrer');
  expect(res.headers['x-frame-options']).toBe('DENY');
}

describe('admin surface over HTTP', () => {
  let secured: AdminApp;
  let source: FakeSource;
  const bearer = { authorization: `Bearer ${token}` };

  beforeAll(async () => {
    source = new FakeSource();
    secured = await startAdminApp({ token, comparisons: () => source });
  });
  afterAll(async () => {
    await secured?.close();
  });

  describe('authentication', () => {
    it('asks for credentials with a Basic challenge when none are sent, on every admin route', async () => {
      for (const path of ROUTES) {
        const res = await get(secured.url + path);
        expect(res.status, path).toBe(401);
        expect(res.headers['www-authenticate']).toBe('Basic realm="ers-bridge admin", charset="UTF-8"');
        expect(res.headers['content-type']).toMatch(/^text\/plain/);
        expect(res.text).toMatch(/admin token/);
        expectSecurityHeaders(res);
      }
    });

    it('refuses a wrong token, a wrong user, other schemes and malformed headers', async () => {
      const wrong = [
        `Bearer ${newToken()}`,
        `Bearer ${token}x`,
        `Bearer ${token.slice(0, -1)}`,
        basic('admin', newToken()),
        basic('root', token),
        basic('admin', `${token} `),
        `Basic ${Buffer.from(token).toString('base64')}`,
        `Token ${token}`,
        token,
        `Bearer`,
        `Bearer ${token} extra`,
        `Basic !!!not-base64!!!`,
      ];
      for (const authorization of wrong) {
        const res = await get(`${secured.url}/admin/compare`, { authorization });
        expect(res.status, authorization).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(/^Basic realm="ers-bridge admin"/);
      }
    });

    it('accepts Bearer <token> and Basic admin:<token> (schemes case-insensitive)', async () => {
      for (const authorization of [
        `Bearer ${token}`,
        `bearer ${token}`,
        basic('admin', token),
        basic('admin', token).replace('Basic', 'BASIC'),
      ]) {
        const res = await get(`${secured.url}/admin/compare`, { authorization });
        expect(res.status, authorization).toBe(200);
        expectSecurityHeaders(res);
      }
    });

    it('checks credentials over equal-length digests (any length presented)', () => {
      expect(credentialsMatch(`Bearer ${token}`, token)).toBe(true);
      expect(credentialsMatch(`Bearer ${'x'.repeat(5000)}`, token)).toBe(false);
      expect(credentialsMatch(`Bearer ${'x'.repeat(9000)}`, token)).toBe(false);
      expect(credentialsMatch(undefined, token)).toBe(false);
      expect(credentialsMatch('', token)).toBe(false);
      expect(credentialsMatch(basic('admin', 'pässwörd'), 'pässwörd')).toBe(true);
    });

    it('without a token and not open, every admin route is 404 (admin disabled), credentials or not', async () => {
      for (const options of [{}, { token: '' }, { open: false }]) {
        const disabled = await startAdminApp(options);
        try {
          for (const path of ROUTES) {
            for (const headers of [{}, bearer, { authorization: basic('admin', token) }]) {
              const res = await get(disabled.url + path, headers);
              expect(res.status, path).toBe(404);
              expect(res.headers['www-authenticate']).toBeUndefined();
              expect(res.text).not.toMatch(/comparison|ASID/i);
            }
          }
        } finally {
          await disabled.close();
        }
      }
    });

    it('open without a token: every route answers without authentication, and the pages say it is open', async () => {
      const open = await startAdminApp({ open: true });
      try {
        expect((await get(`${open.url}/admin/compare`)).status).toBe(200);
        expect((await get(`${open.url}/admin/compare/samples?code=A005`)).status).toBe(200);
        expect((await get(`${open.url}/admin/style.css`)).status).toBe(200);
        const ui = await get(`${open.url}/admin/compare/ui`);
        expect(ui.status).toBe(200);
        expect(ui.text).toContain('Open admin surface');
        expect(ui.headers['www-authenticate']).toBeUndefined();
      } finally {
        await open.close();
      }
    });

    it('a token with open: true still requires the token', async () => {
      const both = await startAdminApp({ token, open: true });
      try {
        expect((await get(`${both.url}/admin/compare`)).status).toBe(401);
        const ui = await get(`${both.url}/admin/compare/ui`, bearer);
        expect(ui.status).toBe(200);
        expect(ui.text).not.toContain('Open admin surface');
      } finally {
        await both.close();
      }
    });
  });

  describe('JSON endpoints', () => {
    it('GET /admin/compare answers the summary, with endpoint names filled in', async () => {
      const res = await get(`${secured.url}/admin/compare`, bearer);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      const body = JSON.parse(res.text) as ComparisonSummary;
      expect(body.since).toBe('2025-01-06T09:00:00.000Z');
      expect(body.records).toBe(32);
      expect(body.codes.map((c) => [c.aCode, c.name, c.differenceRate])).toEqual([
        ['A004', 'Retrieve reference data', 0],
        ['A005', 'Retrieve referral request', 0.3],
      ]);
      expect(body.codes[1]!.topFields[0]).toEqual({
        path: 'status',
        count: 3,
        examples: [
          { primary: 'active', secondary: 'draft' },
          { primary: 'active', secondary: 'cancelled' },
        ],
      });
      expect(body.asids.map((a) => a.asid)).toEqual([NOT_READY_ASID, READY_ASID]);
    });

    it('GET /admin/compare/samples answers the latest records first, documented fields only', async () => {
      source.calls.length = 0;
      const res = await get(`${secured.url}/admin/compare/samples?code=A005&limit=20`, bearer);
      expect(res.status).toBe(200);
      expect(source.calls).toEqual([{ aCode: 'A005', limit: 20 }]);
      const body = JSON.parse(res.text) as ComparisonRecord[];
      expect(body.map((r) => r.correlationId)).toEqual(['corr-latest', 'corr-older']);
      expect(body[0]).toMatchObject({
        aCode: 'A005',
        asid: NOT_READY_ASID,
        method: 'GET',
        route: '/STU3/v1/ReferralRequest/{ubrn}',
        primary: 'legacy',
        secondary: 'apim',
        result: { equal: false, primaryStatus: 200, secondaryStatus: 200, noise: ['meta.lastUpdated'] },
      });
      expect(body[0]!.result.differences).toContainEqual({
        path: 'text.div',
        kind: 'changed',
        primary: XSS,
        secondary: '<b>bold</b>',
      });
      expect(res.text).not.toContain('UNREDACTED-BODY');
      expect(body[0]).not.toHaveProperty('rawBody');

      const limited = await get(`${secured.url}/admin/compare/samples?code=A005&limit=1`, bearer);
      expect(JSON.parse(limited.text)).toHaveLength(1);
      expect(source.calls.at(-1)).toEqual({ aCode: 'A005', limit: 1 });

      const defaulted = await get(`${secured.url}/admin/compare/samples?code=A005`, bearer);
      expect(defaulted.status).toBe(200);
      expect(source.calls.at(-1)).toEqual({ aCode: 'A005', limit: 20 });

      // An A-code ers-bridge does not know is not "no samples yet": it is 404 (issue 14), as /admin/compare/A999 is.
      const none = await get(`${secured.url}/admin/compare/samples?code=A999&limit=100`, bearer);
      expect(none.status).toBe(404);
      expect(JSON.parse(none.text).error).toMatch(/^A999 is not an e-RS operation/);
      const noneCode = await get(`${secured.url}/admin/compare/A999`, bearer);
      expect(noneCode.status).toBe(404);
      expect(JSON.parse(noneCode.text).error).toMatch(/^A999 is not an e-RS operation/);
    });

    it('validates code and limit', async () => {
      source.calls.length = 0;
      for (const q of [
        '',
        'code=',
        'code=a005',
        'code=A05',
        'code=A0055',
        'code=B005',
        'code=A005%0A',
        'code=A005&code=A004',
      ]) {
        const res = await get(`${secured.url}/admin/compare/samples?${q}`, bearer);
        expect(res.status, q).toBe(400);
        expect(JSON.parse(res.text).error).toMatch(/A-code/);
      }
      for (const limit of ['0', '101', '-1', '1.5', 'ten', '', '1000', '1e2', '20&limit=30']) {
        const res = await get(`${secured.url}/admin/compare/samples?code=A005&limit=${limit}`, bearer);
        expect(res.status, limit).toBe(400);
        expect(JSON.parse(res.text).error).toMatch(/limit must be a whole number from 1 to 100/);
      }
      expect(source.calls).toEqual([]);
      expect((await get(`${secured.url}/admin/compare/samples?code=A005&limit=100`, bearer)).status).toBe(200);
    });

    it('answers 404 with an explanation when comparison is off', async () => {
      const off = await startAdminApp({ token, comparisons: () => undefined });
      try {
        for (const path of ['/admin/compare', '/admin/compare/samples?code=A005']) {
          const res = await get(off.url + path, bearer);
          expect(res.status, path).toBe(404);
          expect(JSON.parse(res.text).error).toMatch(/^comparison is not enabled/);
          expectSecurityHeaders(res);
        }
        const ui = await get(`${off.url}/admin/compare/ui`, bearer);
        expect(ui.status).toBe(404);
        expect(ui.text).toContain('<h1>Comparison is not enabled</h1>');
        expect((await get(`${off.url}/admin/compare/ui/A005`, bearer)).status).toBe(404);
      } finally {
        await off.close();
      }
    });

    it('reads the source of the current runtime on every request', async () => {
      let current: AdminSource | undefined;
      const swapping = await startAdminApp({ token, comparisons: () => current });
      try {
        expect((await get(`${swapping.url}/admin/compare`, bearer)).status).toBe(404);
        current = new FakeSource();
        expect((await get(`${swapping.url}/admin/compare`, bearer)).status).toBe(200);
      } finally {
        await swapping.close();
      }
    });

    it('a failing store answers 500 without its message', async () => {
      const broken: AdminSource = {
        summary: () => {
          throw new Error('disk on fire /var/lib/secret-path');
        },
        samples: () => {
          throw new Error('disk on fire /var/lib/secret-path');
        },
      };
      const app = await startAdminApp({ token, comparisons: () => broken });
      try {
        for (const path of [
          '/admin/compare',
          '/admin/compare/samples?code=A005',
          '/admin/compare/ui',
          '/admin/compare/ui/A005',
        ]) {
          const res = await get(app.url + path, bearer);
          expect(res.status, path).toBe(500);
          expect(res.text).not.toContain('secret-path');
        }
      } finally {
        await app.close();
      }
    });
  });

  describe('pages', () => {
    it('the overview is HTML in en-GB with one h1, captioned tables, highest difference rate first', async () => {
      const res = await get(`${secured.url}/admin/compare/ui`, bearer);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expectSecurityHeaders(res);
      expect(res.text).toContain('<html lang="en-GB">');
      expect(res.text.match(/<h1[ >]/g)).toHaveLength(1);
      expect(res.text).not.toMatch(/<script|\sstyle=|\son[a-z]+=/i);
      expect(res.text).toContain('<caption>Answers compared per operation, highest difference rate first</caption>');
      expect(res.text).toContain('<th scope="col"');
      expect(res.text.indexOf('>A005</a>')).toBeLessThan(res.text.indexOf('>A004</a>'));
      expect(res.text).toContain('<a href="/admin/compare/ui/A005">A005</a>');
      expect(res.text).toContain('<link rel="stylesheet" href="/admin/style.css">');
    });

    it('the operation page escapes every value', async () => {
      const res = await get(`${secured.url}/admin/compare/ui/A005`, bearer);
      expect(res.status).toBe(200);
      expect(res.text).not.toContain(XSS);
      expect(res.text).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
      expect(res.text).not.toContain('<b>bold</b>');
      expect(res.text).not.toContain('UNREDACTED-BODY');
    });

    it('names in the summary are escaped too', async () => {
      const s = new FakeSource({
        since: '<i>since</i>',
        records: 1,
        codes: [
          {
            aCode: 'A005',
            name: '<img src=x onerror=alert(1)>',
            compared: 1,
            different: 0,
            differenceRate: 0,
            statusMismatches: 0,
            secondaryErrors: 0,
            topFields: [],
            noiseFields: ['<u>noise</u>'],
          },
        ],
        asids: [{ asid: '"><script>x</script>', codes: [] }],
      });
      const app = await startAdminApp({ token, comparisons: () => s });
      try {
        for (const path of ['/admin/compare/ui', '/admin/compare/ui/A005']) {
          const res = await get(app.url + path, bearer);
          expect(res.status).toBe(200);
          expect(res.text).not.toMatch(/<img|<script|<u>|<i>/);
        }
      } finally {
        await app.close();
      }
    });

    it('a bad A-code is a 400 page; an unknown one says there are no comparisons yet', async () => {
      for (const code of ['A5', 'a005', 'X005', '%3Cscript%3E', 'A005x']) {
        const res = await get(`${secured.url}/admin/compare/ui/${code}`, bearer);
        expect(res.status, code).toBe(400);
        expect(res.text).toContain('<h1>That is not an A-code</h1>');
        expect(res.text).not.toContain('<script>');
      }
      const unknown = await get(`${secured.url}/admin/compare/ui/A011`, bearer);
      expect(unknown.status).toBe(200);
      expect(unknown.text).toContain('<h1>A011 Create referral</h1>');
      expect(unknown.text).toContain('No comparisons of A011 have been recorded yet');
    });

    it('the stylesheet is served from /admin/style.css, the entry point redirects, other admin paths are 404', async () => {
      const css = await get(`${secured.url}/admin/style.css`, bearer);
      expect(css.status).toBe(200);
      expect(css.headers['content-type']).toMatch(/^text\/css/);
      expect(css.text).toContain('--nhs-blue: #005eb8');
      const entry = await get(`${secured.url}/admin`, bearer);
      expect(entry.status).toBe(303);
      expect(entry.headers['location']).toBe('/admin/compare/ui');
      const other = await get(`${secured.url}/admin/nothing/here`, bearer);
      expect(other.status).toBe(404);
      expect(other.text).toContain('<h1>Page not found</h1>');
    });
  });

  it('the token never appears in any response', () => {
    expect(seen.length).toBeGreaterThan(50);
    const forms = [token, Buffer.from(`admin:${token}`).toString('base64'), Buffer.from(token).toString('base64')];
    for (const res of seen) {
      const all = JSON.stringify(res.headers) + res.text;
      for (const f of forms) expect(all).not.toContain(f);
    }
  });
});
