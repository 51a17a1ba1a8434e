/**
 * Observability through the ops listener and the log: the rules in force (`ers_bridge_rules_info`, changed by a
 * reload, whose log line lists what changed without a secret), the user token counters, and the ASID and reason of
 * every call's log line — A001 included, and never a string the caller chose in place of an ASID.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Metrics, rulesHash } from '../../src/admin/metrics.js';
import { createLogger } from '../../src/logging.js';
import { RulesReloader } from '../../src/rules/reload.js';
import { secretResolver } from '../../src/rules/secrets.js';
import { buildRuntime } from '../../src/runtime/runtime.js';
import {
  APP_ASID,
  captureLogs,
  type Harness,
  harnessRules,
  LIMITED_ASID,
  legacyCall,
  OTHER_ASID,
  startHarness,
} from '../helpers/harness.js';
import { rulesText } from '../helpers/rules.js';
import { CLINICIAN, startUserHarness, USER_ASID, type UserHarness } from '../helpers/user-harness.js';

const SESSION_PATH = '/ers-api/v1/ProfessionalSession';
const A005 = '/ers-api/STU3/v1/ReferralRequest/000000070000';

async function scrape(h: Harness): Promise<string> {
  const res = await request(`${h.opsUrl}/metrics`);
  expect(res.statusCode).toBe(200);
  return res.body.text();
}

/** A counter's value in a scrape, for exactly this series (0 when absent). */
function seriesValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('the rules in force, in the metrics and in the reload log line', () => {
  let h: Harness;
  let reloader: RulesReloader;
  let file: string;
  let logs: string[];
  const adminToken = randomBytes(32).toString('hex');

  beforeAll(async () => {
    const metrics = new Metrics({ processMetrics: false });
    h = await startHarness({ runtime: { metrics } });
    file = join(mkdtempSync(join(tmpdir(), 'ers-bridge-observability-')), 'rules.yaml');
    writeFileSync(file, rulesText(harnessRules(h.standIn)));
    const env = { ...h.env, ADMIN_TOKEN: adminToken };
    const capture = captureLogs();
    logs = capture.logs;
    reloader = new RulesReloader({
      file,
      holder: h.holder,
      logger: createLogger({ destination: capture.destination }),
      metrics,
      debounceMs: 50,
      build: (rules, previous) => buildRuntime(file, rules, { resolveSecret: secretResolver(env), previous, metrics }),
    });
    await reloader.start();
  });
  afterAll(async () => {
    reloader?.stop();
    await h?.close();
  });

  it('ers_bridge_rules_info names the environment and a short hash of the file; a reload replaces it and logs what changed', async () => {
    const first = rulesHash(rulesText(harnessRules(h.standIn)));
    expect(first).toMatch(/^[0-9a-f]{12}$/);
    const before = await scrape(h);
    expect(before).toContain(`ers_bridge_rules_info{environment="test",hash="${first}"} 1`);

    // An ASID added and one removed, another's message sets changed, a mode, a limit, and an admin token.
    const next = harnessRules(h.standIn, {
      asids: { [LIMITED_ASID]: { allowedCodes: ['A004', 'A005', 'A007'] }, '999000000004': {} },
      modes: { default: 'passthrough' },
      sessions: { maxPerAsid: 500 },
      admin: { token: 'env:ADMIN_TOKEN' },
    });
    delete next.asids[OTHER_ASID];
    const text = rulesText(next);
    writeFileSync(file, text);
    expect(await reloader.reload('test')).toEqual({ applied: true });

    const after = await scrape(h);
    expect(after).toContain(`ers_bridge_rules_info{environment="test",hash="${rulesHash(text)}"} 1`);
    expect(after).not.toContain(first);
    const line = logs.map((l) => JSON.parse(l)).findLast((l) => l.msg === 'rules reloaded');
    expect(line.changes).toEqual({
      asidsAdded: ['999000000004'],
      asidsRemoved: [OTHER_ASID],
      asidsChanged: [`${LIMITED_ASID}: allowedCodes`],
      modes: ['default: translate → passthrough'],
      limits: ['sessions.maxPerAsid: 20000 → 500'],
      adminToken: 'added',
    });
    const all = logs.join('\n');
    expect(all).not.toContain(adminToken);
    expect(all).not.toContain('ADMIN_TOKEN');
    expect(all).not.toContain(h.secrets.apiKey);
  });
});

describe('user token exchanges and refreshes are counted, by outcome', () => {
  let h: UserHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  const claims = { sub: CLINICIAN, given_name: 'Alex', family_name: 'Example', id_assurance_level: 3 };

  async function userSession(harness: UserHarness): Promise<string> {
    const token = await harness.cis2.mintIdToken({ ...claims, authentication_assurance_level: 3 });
    const a001 = await legacyCall(
      harness,
      'POST',
      SESSION_PATH,
      { XAPI_ASID: USER_ASID, 'Content-Type': 'application/json' },
      JSON.stringify({ typeInfo: 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession', token }),
    );
    expect(a001.status).toBe(201);
    const key = a001.json().id as string;
    const a002 = await legacyCall(
      harness,
      'PUT',
      `${SESSION_PATH}/${key}`,
      { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key, 'Content-Type': 'application/json' },
      JSON.stringify({
        token: 't',
        permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69' },
      }),
    );
    expect(a002.status).toBe(200);
    return key;
  }

  it('an exchange at A001, a renewal before expiry, and a spent refresh token refused before sending', async () => {
    let clock = Date.now();
    h = await startUserHarness({ now: () => clock });
    const key = await userSession(h);
    let text = await scrape(h);
    expect(seriesValue(text, 'ers_bridge_user_token_exchanges_total{outcome="ok"}')).toBe(1);
    expect(text).not.toContain('ers_bridge_user_token_refreshes_total{');

    const spent = (await h.runtime.shared.store.get(key))!.apim!.refreshToken;
    clock += 580_000; // inside the renewal margin of the 599 s token
    const call = () => legacyCall(h!, 'GET', A005, { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key });
    expect((await call()).status).toBe(200);
    text = await scrape(h);
    expect(seriesValue(text, 'ers_bridge_user_token_refreshes_total{outcome="ok"}')).toBe(1);

    // The spent refresh token put back, as a stale copy of the session might: never sent again, and counted.
    const s = (await h.runtime.shared.store.get(key))!;
    await h.runtime.shared.store.update(key, { ...s, apim: { ...s.apim!, refreshToken: spent, accessExpiresAt: 0 } });
    expect((await call()).status).toBe(403);
    text = await scrape(h);
    expect(seriesValue(text, 'ers_bridge_user_token_refreshes_total{outcome="already_used"}')).toBe(1);
    expect(seriesValue(text, 'ers_bridge_user_token_refreshes_total{outcome="ok"}')).toBe(1);
  });

  it('a refresh APIM refuses is counted as rejected', async () => {
    let clock = Date.now();
    let standInAhead = 0;
    h = await startUserHarness({
      now: () => clock,
      standInNow: () => Date.now() + standInAhead,
      refreshWindowSeconds: 1,
    });
    const key = await userSession(h);
    const s = (await h.runtime.shared.store.get(key))!;
    await h.runtime.shared.store.update(key, { ...s, apim: { ...s.apim!, refreshExpiresAt: clock + 3600_000 } });
    standInAhead += 1100;
    clock += 580_000;
    expect((await legacyCall(h, 'GET', A005, { XAPI_ASID: USER_ASID, HTTP_X_SESSION_KEY: key })).status).toBe(403);
    const text = await scrape(h);
    expect(seriesValue(text, 'ers_bridge_user_token_refreshes_total{outcome="rejected"}')).toBe(1);
    expect(seriesValue(text, 'ers_bridge_user_token_exchanges_total{outcome="ok"}')).toBe(1);
  });
});

describe("every call's log line names its ASID and its reason", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Makes an A001 with these headers and returns its log line. */
  async function a001Line(headers: Record<string, string>, body = '{"token":"t"') {
    const correlationId = randomUUID();
    await legacyCall(
      h,
      'POST',
      SESSION_PATH,
      { 'Content-Type': 'application/json', 'X-Correlation-ID': correlationId, ...headers },
      body,
    );
    const lines = h.logs.map((l) => JSON.parse(l)).filter((l) => l.correlationId === correlationId);
    expect(lines.map((l) => l.msg)).toEqual(['legacy call']);
    return lines[0];
  }

  it('a refused A001 of a configured ASID carries that ASID and the reason; a good one carries reason none', async () => {
    expect(await a001Line({ XAPI_ASID: APP_ASID })).toMatchObject({
      aCode: 'A001',
      asid: APP_ASID,
      status: 422,
      reason: 'BODY_INVALID_JSON',
    });
    expect(await a001Line({ XAPI_ASID: APP_ASID }, '{"token":"t"}')).toMatchObject({
      aCode: 'A001',
      asid: APP_ASID,
      status: 201,
      reason: 'none',
    });
  });

  it('an unconfigured ASID is logged as sent only when it has an ASID form (12 digits)', async () => {
    expect(await a001Line({ XAPI_ASID: '123456789012' })).toMatchObject({
      asid: '123456789012',
      status: 403,
      reason: 'ASID_UNKNOWN',
    });
    for (const chosen of ['9434765919', 'x"}{\\n<script>', '1234567890123456789']) {
      const line = await a001Line({ XAPI_ASID: chosen });
      expect(line).toMatchObject({ asid: '(not an ASID)', reason: 'ASID_UNKNOWN' });
      expect(JSON.stringify(line)).not.toContain(chosen);
    }
    expect(await a001Line({})).toMatchObject({ asid: '(none)', status: 403, reason: 'ASID_MISSING' });
  });

  it('a data call refused before any side: its ASID and reason, in the metrics too (side none)', async () => {
    const correlationId = randomUUID();
    await legacyCall(h, 'GET', A005, { XAPI_ASID: APP_ASID, 'X-Correlation-ID': correlationId });
    const line = h.logs.map((l) => JSON.parse(l)).find((l) => l.correlationId === correlationId);
    expect(line).toMatchObject({ aCode: 'A005', asid: APP_ASID, reason: 'SESSION_KEY_MISSING' });
    const text = await scrape(h);
    expect(
      seriesValue(
        text,
        `ers_bridge_requests_total{a_code="A005",method="GET",status="403",mode="none",side="none",reason="SESSION_KEY_MISSING",asid="${APP_ASID}"}`,
      ),
    ).toBe(1);
    // An ASID that is not configured is never a label value.
    expect(text).not.toContain('asid="123456789012"');
  });
});
