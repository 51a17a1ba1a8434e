import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { Metrics } from '../../../src/admin/metrics.js';
import { createLogger } from '../../../src/logging.js';
import { CLIENT_CLOSED, recordCall } from '../../../src/pipeline/record.js';
import type { CallRecord } from '../../../src/pipeline/types.js';
import type { Caller } from '../../../src/runtime/caller.js';
import { appAsid, userAsid } from './fakes.js';

const APP_ASID = '200000000001';
const USER_ASID = '200000000002';
const callers = new Map<string, Caller>([
  [APP_ASID, { asid: APP_ASID, config: appAsid() } as Caller],
  [USER_ASID, { asid: USER_ASID, config: userAsid() } as Caller],
]);

function sinks(level = 'info') {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const metrics = new Metrics({ processMetrics: false });
  return { lines, metrics, sinks: { log: createLogger({ level, destination }), metrics, callers } };
}

/** A counter's value for exactly these labels (0 when never counted). */
async function count(
  metric: { get(): Promise<{ values: Array<{ labels: object; value: number }> }> },
  labels: Record<string, string>,
): Promise<number> {
  const { values } = await metric.get();
  const hit = values.find((v) => JSON.stringify(v.labels) === JSON.stringify(labels));
  return hit?.value ?? 0;
}

const RECORD: CallRecord = {
  aCode: 'A005',
  route: '/STU3/v1/ReferralRequest/{ubrn}',
  asid: APP_ASID,
  session: 'a1b2c3d4e5',
  correlationId: 'corr-1',
  upstreamStatus: 200,
  upstreamMs: 41.5,
  tokenRenewed: true,
  transactionId: 'tx-1',
  mode: 'translate',
  side: 'apim',
  shadow: 'not sampled',
};

describe('recordCall', () => {
  it("one 'legacy call' line at info with the documented fields", () => {
    const { lines, sinks: s } = sinks();
    recordCall(s, RECORD, 'GET', { status: 200 }, 12.345678);
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line).toMatchObject({
      level: 30,
      msg: 'legacy call',
      aCode: 'A005',
      route: '/STU3/v1/ReferralRequest/{ubrn}',
      method: 'GET',
      asid: APP_ASID,
      session: 'a1b2c3d4e5',
      status: 200,
      upstreamStatus: 200,
      upstreamMs: 41.5,
      tokenRenewed: true,
      mode: 'translate',
      side: 'apim',
      shadow: 'not sampled',
      ms: 12.346,
      correlationId: 'corr-1',
      transactionId: 'tx-1',
    });
    expect(line).not.toHaveProperty('aborted');
  });

  it('only the record fields: a session key or token on the object is never written', () => {
    const { lines, sinks: s } = sinks();
    const leaky = {
      ...RECORD,
      sessionKey: 'pro-api-session:11111111-2222-3333-4444-555555555555',
      accessToken: 'eyJhbGciOi.secret',
      body: '{"nhsNumber":"9000000009"}',
    } as CallRecord;
    recordCall(s, leaky, 'GET', { status: 200 }, 1);
    const text = JSON.stringify(lines[0]);
    expect(text).not.toContain('pro-api-session:');
    expect(text).not.toContain('secret');
    expect(text).not.toContain('9000000009');
  });

  it("an aborted call → 'legacy call aborted by client', status 499, aborted: true", async () => {
    const { lines, metrics, sinks: s } = sinks();
    recordCall(s, RECORD, 'GET', { aborted: true }, 5);
    expect(CLIENT_CLOSED).toBe(499);
    expect(lines[0]).toMatchObject({ msg: 'legacy call aborted by client', status: 499, aborted: true });
    expect(
      await count(metrics.requests, {
        a_code: 'A005',
        method: 'GET',
        status: '499',
        mode: 'translate',
        side: 'apim',
        reason: 'none',
        asid: APP_ASID,
      }),
    ).toBe(1);
  });

  it('request metrics: an unconfigured ASID is labelled unknown; the mode is session, none or the decided one', async () => {
    const { metrics, sinks: s } = sinks();
    recordCall(s, { ...RECORD, asid: '999' }, 'GET', { status: 200 }, 1);
    recordCall(s, { aCode: '-', route: '-' }, 'GET', { status: 404 }, 1);
    recordCall(
      s,
      { aCode: 'A002', route: '/v1/ProfessionalSession/{sessionKey}', asid: APP_ASID },
      'PUT',
      {
        status: 200,
      },
      1,
    );
    const labels = (a_code: string, method: string, status: string, mode: string, side: string, asid: string) => ({
      a_code,
      method,
      status,
      mode,
      side,
      reason: 'none',
      asid,
    });
    expect(await count(metrics.requests, labels('A005', 'GET', '200', 'translate', 'apim', 'unknown'))).toBe(1);
    expect(await count(metrics.requests, labels('A005', 'GET', '200', 'translate', 'apim', '999'))).toBe(0);
    expect(await count(metrics.requests, labels('-', 'GET', '404', 'none', 'none', 'unknown'))).toBe(1);
    expect(await count(metrics.requests, labels('A002', 'PUT', '200', 'session', 'none', APP_ASID))).toBe(1);
  });

  it('durations: the call in seconds by A-code; the upstream by side (apim when unsaid), only when there was one', async () => {
    const { metrics, sinks: s } = sinks();
    recordCall(s, { ...RECORD, side: 'legacy', upstreamMs: 250 }, 'GET', { status: 200 }, 300);
    recordCall(s, { ...RECORD, side: undefined, upstreamMs: 100 }, 'GET', { status: 200 }, 120);
    recordCall(s, { aCode: 'A004', route: '/x' }, 'GET', { status: 403 }, 2);
    const text = await metrics.registry.getSingleMetricAsString('ers_bridge_upstream_duration_seconds');
    expect(text).toContain('ers_bridge_upstream_duration_seconds_sum{side="legacy",a_code="A005"} 0.25');
    expect(text).toContain('ers_bridge_upstream_duration_seconds_sum{side="apim",a_code="A005"} 0.1');
    expect(text).not.toContain('a_code="A004"');
    const calls = await metrics.registry.getSingleMetricAsString('ers_bridge_request_duration_seconds');
    expect(calls).toContain('ers_bridge_request_duration_seconds_sum{a_code="A005"} 0.42');
    expect(calls).toContain('ers_bridge_request_duration_seconds_count{a_code="A004"} 1');
  });

  it('sessions created: A001 answered 201, by the access mode of the ASID', async () => {
    const { metrics, sinks: s } = sinks();
    const a001 = (asid: string): CallRecord => ({ aCode: 'A001', route: '/v1/ProfessionalSession', asid });
    recordCall(s, a001(APP_ASID), 'POST', { status: 201 }, 1);
    recordCall(s, a001(USER_ASID), 'POST', { status: 201 }, 1);
    recordCall(s, a001(USER_ASID), 'POST', { status: 201 }, 1);
    recordCall(s, a001('999'), 'POST', { status: 201 }, 1);
    recordCall(s, a001(APP_ASID), 'POST', { status: 422 }, 1);
    expect(await count(metrics.sessionsCreated, { access_mode: 'application-restricted' })).toBe(1);
    expect(await count(metrics.sessionsCreated, { access_mode: 'user-restricted' })).toBe(2);
    expect(await count(metrics.sessionsCreated, { access_mode: 'unknown' })).toBe(1);
  });

  it('sessions ended: A003 204 → deleted, SESSION_UNKNOWN → unknown_or_expired, SESSION_SIGN_IN_AGAIN → sign_in_again', async () => {
    const { metrics, sinks: s } = sinks();
    recordCall(s, { aCode: 'A003', route: '/v1/ProfessionalSession/{sessionKey}' }, 'DELETE', { status: 204 }, 1);
    recordCall(s, { aCode: 'A003', route: '/v1/ProfessionalSession/{sessionKey}' }, 'DELETE', { status: 403 }, 1);
    recordCall(s, { ...RECORD, reason: 'SESSION_UNKNOWN' }, 'GET', { status: 403 }, 1);
    recordCall(s, { ...RECORD, reason: 'SESSION_SIGN_IN_AGAIN' }, 'GET', { status: 403 }, 1);
    recordCall(s, { ...RECORD, reason: 'SESSION_SIGN_IN_AGAIN' }, 'GET', { status: 403 }, 1);
    recordCall(s, { ...RECORD, reason: 'BAD_HEADER' }, 'GET', { status: 400 }, 1);
    expect(await count(metrics.sessionsEnded, { reason: 'deleted' })).toBe(1);
    expect(await count(metrics.sessionsEnded, { reason: 'unknown_or_expired' })).toBe(1);
    expect(await count(metrics.sessionsEnded, { reason: 'sign_in_again' })).toBe(2);
    expect((await metrics.sessionsEnded.get()).values).toHaveLength(3);
  });

  it('at level warn nothing is written, but the metrics are still counted', async () => {
    const { lines, metrics, sinks: s } = sinks('warn');
    recordCall(s, RECORD, 'GET', { status: 200 }, 1);
    recordCall(s, RECORD, 'GET', { aborted: true }, 1);
    expect(lines).toHaveLength(0);
    const info = vi.spyOn(s.log, 'info');
    recordCall(s, RECORD, 'GET', { status: 200 }, 1);
    expect(info).not.toHaveBeenCalled(); // no line object is even built
    expect(
      await count(metrics.requests, {
        a_code: 'A005',
        method: 'GET',
        status: '200',
        mode: 'translate',
        side: 'apim',
        reason: 'none',
        asid: APP_ASID,
      }),
    ).toBe(2);
    expect(
      await count(metrics.requests, {
        a_code: 'A005',
        method: 'GET',
        status: '499',
        mode: 'translate',
        side: 'apim',
        reason: 'none',
        asid: APP_ASID,
      }),
    ).toBe(1);
  });
  it('request metrics: the side that answered (apim, legacy, none) and the reason (none, or one of REASONS)', async () => {
    const { metrics, sinks: s } = sinks();
    recordCall(s, { ...RECORD, mode: 'canary', side: 'legacy' }, 'GET', { status: 200 }, 1);
    recordCall(s, { ...RECORD, mode: 'canary', side: 'apim' }, 'GET', { status: 200 }, 1);
    recordCall(s, { ...RECORD, side: 'elsewhere' }, 'GET', { status: 200 }, 1);
    recordCall(s, { ...RECORD, reason: 'UPSTREAM_TIMEOUT' }, 'GET', { status: 504 }, 1);
    recordCall(s, { ...RECORD, reason: 'made up by a bug' }, 'GET', { status: 500 }, 1);
    const labels = (status: string, mode: string, side: string, reason: string) => ({
      a_code: 'A005',
      method: 'GET',
      status,
      mode,
      side,
      reason,
      asid: APP_ASID,
    });
    expect(await count(metrics.requests, labels('200', 'canary', 'legacy', 'none'))).toBe(1);
    expect(await count(metrics.requests, labels('200', 'canary', 'apim', 'none'))).toBe(1);
    expect(await count(metrics.requests, labels('200', 'translate', 'none', 'none'))).toBe(1);
    expect(await count(metrics.requests, labels('504', 'translate', 'apim', 'UPSTREAM_TIMEOUT'))).toBe(1);
    // A reason label is always one of REASONS: anything else is counted as INTERNAL_ERROR, never as given.
    expect(await count(metrics.requests, labels('500', 'translate', 'apim', 'INTERNAL_ERROR'))).toBe(1);
    const text = await metrics.registry.getSingleMetricAsString('ers_bridge_requests_total');
    expect(text).not.toContain('made up');
    expect(text).not.toContain('elsewhere');
  });

  it('every line says the ASID and the reason: (none) and none when there were none', () => {
    const { lines, sinks: s } = sinks();
    recordCall(s, { aCode: '-', route: '-' }, 'GET', { status: 404 }, 1);
    recordCall(
      s,
      { aCode: 'A001', route: '/v1/ProfessionalSession', asid: APP_ASID, reason: 'BODY_INVALID_JSON' },
      'POST',
      { status: 422 },
      1,
    );
    recordCall(s, RECORD, 'GET', { status: 200 }, 1);
    expect(lines.map((l) => [l['asid'], l['reason']])).toEqual([
      ['(none)', 'none'],
      [APP_ASID, 'BODY_INVALID_JSON'],
      [APP_ASID, 'none'],
    ]);
  });
});
