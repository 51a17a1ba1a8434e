/**
 * End to end: real legacy clients' request shapes (test/fixtures/legacy-clients/, issue 13 point 6), each sent
 * through ers-bridge to the APIM stand-in exactly as the fixture gives it. One call per quirk: `Content-Type: *\/*`,
 * a UTF-8 BOM before the JSON (a data call and A001), GET on `$ers.fetchworklist`, a trailing slash, `//`; and the
 * charset and `application/json+fhir` spellings the HSCN API took.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawHead, rawRequest } from '../hardening/raw-http.js';
import {
  APP_ASID,
  expectLegacyOutcome,
  type Harness,
  type LegacyResponse,
  legacyCall,
  openSession,
  startHarness,
} from '../helpers/harness.js';
import { headersOf, legacyClientRequest } from '../helpers/legacy-clients.js';

describe('real legacy client shapes, end to end', () => {
  let h: Harness;
  let sessionKey: string;

  beforeAll(async () => {
    h = await startHarness();
    sessionKey = await openSession(h);
  });
  afterAll(async () => {
    await h.close();
  });

  /** Sends a fixture; returns the answer and what reached the stand-in meanwhile. */
  async function send(name: string) {
    const r = legacyClientRequest(name, { asid: APP_ASID, sessionKey });
    const before = h.standIn.received.length;
    const res = await legacyCall(h, r.method, r.target, headersOf(r), r.body);
    return { r, res, atApim: h.standIn.received.slice(before) };
  }

  function expectWorklist(res: LegacyResponse) {
    expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
    expect(res.json().resourceType).toBe('List');
  }

  it('Content-Type */* on A008 is FHIR JSON: APIM gets application/fhir+json (was 415)', async () => {
    const { res, atApim } = await send('a008-worklist-wildcard');
    expectWorklist(res);
    expect(atApim).toHaveLength(1);
    expect(atApim[0]!.headers['content-type']).toBe('application/fhir+json');
  });

  it("the C# hub's application/fhir+json; charset=utf-8 and the Camel client's application/json+fhir", async () => {
    const wms = await send('a008-worklist-charset-wms');
    expectWorklist(wms.res);
    const camel = await send('a008-worklist-json-fhir-camel');
    expectWorklist(camel.res);
    expect(camel.atApim[0]!.headers['content-type']).toBe('application/fhir+json');
    // Camel's internal headers (FileRef, and token: the CIS1 ticket) stop at ers-bridge.
    const names = camel.atApim[0]!.rawHeaders.map(([n]) => n.toLowerCase());
    for (const leaked of ['fileref', 'token', 'xapi_fqdn', 'xapi_asid', 'http_x_session_key']) {
      expect(names).not.toContain(leaked);
    }
  });

  it('a UTF-8 BOM before the A008 body is dropped: APIM gets the JSON (was forwarded, and APIM refused it)', async () => {
    const { r, res, atApim } = await send('a008-worklist-bom');
    expectWorklist(res);
    const body = atApim[0]!.body;
    expect(body.subarray(0, 1).toString()).toBe('{');
    expect(JSON.parse(body.toString('utf8'))).toEqual(JSON.parse(r.body!.subarray(3).toString('utf8')));
    expect(atApim[0]!.headers['content-length']).toBe(String(body.length));
  });

  it('a UTF-8 BOM before the A001 body is dropped: 201 (was 422 BODY_INVALID_JSON)', async () => {
    const { res } = await send('a001-create-session-bom');
    expect(res.status, res.body.toString()).toBe(201);
    expect(res.json().token).toBe(' AQIC5wM2LY4SfczexampleticketnotrealAAJTSQACMDE=#');
    expect(res.json().id).toMatch(/^pro-api-session:/);
  });

  it('GET …/ReferralRequest/$ers.fetchworklist: 405 with Allow: POST naming A008 (was 400 about A005 {ubrn})', async () => {
    const { res, atApim } = await send('a008-worklist-get');
    const issue = expectLegacyOutcome(res, 405, 'METHOD_NOT_ALLOWED');
    expect(res.headers['allow']).toBe('POST');
    expect(issue.diagnostics).toContain('A008');
    expect(issue.diagnostics).not.toContain('UBRN');
    expect(atApim).toHaveLength(0);
  });

  it('a trailing slash is ignored: A005 for that UBRN, APIM asked without it (was 400 BAD_PATH)', async () => {
    const { res, atApim } = await send('a005-trailing-slash');
    expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
    expect(res.json()).toMatchObject({ resourceType: 'ReferralRequest', id: '000000070000' });
    expect(atApim.map((a) => a.url)).toEqual(['/referrals/FHIR/STU3/ReferralRequest/000000070000']);
  });

  it('a trailing slash after an empty UBRN: 400 naming the missing {ubrn}, nothing sent', async () => {
    const { res, atApim } = await send('a005-empty-ubrn');
    const issue = expectLegacyOutcome(res, 400, 'BAD_PATH_PARAMETER');
    expect(issue.diagnostics).toMatch(/A005: the \{ubrn\} part/);
    expect(atApim).toHaveLength(0);
  });

  it('// stays 400 BAD_PATH, now naming the operation without it; nothing sent', async () => {
    const { res, atApim } = await send('a005-double-slash');
    const issue = expectLegacyOutcome(res, 400, 'BAD_PATH');
    expect(issue.diagnostics).toContain('A005: GET /ers-api/STU3/v1/ReferralRequest/{ubrn}');
    expect(atApim).toHaveLength(0);
  });

  it('//ers-api/…: 400 BAD_PATH naming the operation (was 404 UNKNOWN_ENDPOINT); nothing sent', async () => {
    // Sent byte for byte: an HTTP client would resolve the path first.
    const r = legacyClientRequest('a005-leading-double-slash', { asid: APP_ASID, sessionKey });
    const before = h.standIn.received.length;
    const port = Number(new URL(h.bridgeUrl).port);
    const res = await rawRequest(port, rawHead(r.method, r.target, [['Host', `127.0.0.1:${port}`], ...r.headers]));
    expect(res.status).toBe(400);
    const issue = JSON.parse(res.body.toString('utf8')).issue[0];
    expect(issue.details.coding.map((c: { code: string }) => c.code)).toContain('BAD_PATH');
    expect(issue.diagnostics).toContain('A005: GET /ers-api/STU3/v1/ReferralRequest/{ubrn}');
    expect(h.standIn.received.length).toBe(before);
  });
});
