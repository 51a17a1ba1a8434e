import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/admin/metrics.js';
import { UpstreamError } from '../../../src/apim/upstream.js';
import { knownFault } from '../../../src/pipeline/faults.js';
import type { ModeDecision } from '../../../src/pipeline/mode.js';
import { captureAnswer, countShadowSkip, planShadow, type ShadowDecision } from '../../../src/pipeline/shadow.js';
import type { CallRole } from '../../../src/pipeline/steps.js';
import type { ShadowConfig } from '../../../src/rules/schema.js';
import type { ShadowCounters } from '../../../src/runtime/process-state.js';
import { endpoint, rejectionOf } from './fakes.js';

const SETTINGS: ShadowConfig = {
  primary: 'legacy',
  sampleRate: 0.5,
  maxConcurrent: 16,
  timeoutMs: 10_000,
  noiseBaseline: false,
  ignoreHeaders: [],
  ignorePaths: [],
};

const shadowTo = (secondary: 'apim' | 'legacy'): ModeDecision => ({
  mode: 'shadow',
  primary: secondary === 'apim' ? 'legacy' : 'apim',
  shadow: { secondary, settings: SETTINGS },
});
const NOT_PRODUCTION = { apim: false, legacy: false };
const PRODUCTION = { apim: true, legacy: true };
const USER: CallRole = { accessMode: 'user-restricted', businessFunction: 'REFERRING_CLINICIAN' };
const APP: CallRole = { accessMode: 'application-restricted', businessFunction: 'REFERRING_CLINICIAN' };
const who = (role: CallRole) => ({ asid: '200000000001', role });

describe('planShadow', () => {
  const read = endpoint('A005');
  const write = endpoint('A010');

  it('no shadow in the decision → none', () => {
    expect(planShadow({ mode: 'translate', primary: 'apim' }, read, PRODUCTION, who(USER), 0)).toEqual({ none: true });
  });

  it('a draw at or above the sample rate → skipped by sampling (sampled: false)', () => {
    for (const random of [0.5, 0.99]) {
      expect(planShadow(shadowTo('apim'), read, NOT_PRODUCTION, who(USER), random)).toEqual({
        skipped: 'not sampled',
        sampled: false,
      });
    }
  });

  it('a draw below the sample rate → the plan, with the secondary and its settings', () => {
    expect(planShadow(shadowTo('apim'), read, PRODUCTION, who(USER), 0.49)).toEqual({
      plan: { secondary: 'apim', settings: SETTINGS },
    });
  });

  it('a write to a production secondary is skipped for safety (sampled: true)', () => {
    const d = planShadow(shadowTo('apim'), write, { apim: true, legacy: false }, who(USER), 0);
    expect(d).toEqual({
      skipped: 'A010 changes data and the shadow side is production: writes are never copied to production',
      sampled: true,
    });
  });

  it('production is judged for the secondary side only', () => {
    const d = planShadow(shadowTo('apim'), write, { apim: false, legacy: true }, who(USER), 0);
    expect(d).toEqual({ plan: { secondary: 'apim', settings: SETTINGS } });
  });

  it('a write to a non-production secondary is copied', () => {
    expect(planShadow(shadowTo('legacy'), write, NOT_PRODUCTION, who(USER), 0)).toHaveProperty('plan');
  });

  it('an APIM secondary that would refuse the call → skipped, naming the reason', () => {
    const userOnlyRead = endpoint('A015');
    expect(userOnlyRead.appRestricted).toBe(false);
    expect(planShadow(shadowTo('apim'), userOnlyRead, NOT_PRODUCTION, who(APP), 0)).toEqual({
      skipped: 'APIM would refuse it (ENDPOINT_NOT_APP_RESTRICTED)',
      sampled: true,
    });
    // the legacy host has no such rule
    expect(planShadow(shadowTo('legacy'), userOnlyRead, NOT_PRODUCTION, who(APP), 0)).toHaveProperty('plan');
  });
});

describe('countShadowSkip', () => {
  const counters = (): ShadowCounters => ({ inFlight: 0, sent: 0, dropped: 0, skipped: 0, failed: 0 });
  async function skippedMetric(metrics: Metrics): Promise<number> {
    const m = await metrics.shadowCopies.get();
    return m.values.find((v) => v.labels.outcome === 'skipped')?.value ?? 0;
  }

  it('a sampling skip counts in the metrics only', async () => {
    const c = counters();
    const metrics = new Metrics({ processMetrics: false });
    countShadowSkip({ skipped: 'not sampled', sampled: false }, c, metrics);
    expect(c.skipped).toBe(0);
    expect(await skippedMetric(metrics)).toBe(1);
  });

  it('a safety skip counts in both', async () => {
    const c = counters();
    const metrics = new Metrics({ processMetrics: false });
    countShadowSkip({ skipped: 'writes are never copied', sampled: true }, c, metrics);
    countShadowSkip({ skipped: 'APIM would refuse it', sampled: true }, c, metrics);
    expect(c.skipped).toBe(2);
    expect(await metrics.registry.getSingleMetricAsString('ers_bridge_shadow_copies_total')).toContain(
      'ers_bridge_shadow_copies_total{outcome="skipped"} 2',
    );
  });

  it('a plan or no shadow counts nothing; no metrics is fine', async () => {
    const c = counters();
    const metrics = new Metrics({ processMetrics: false });
    const decisions: ShadowDecision[] = [{ none: true }, { plan: { secondary: 'apim', settings: SETTINGS } }];
    for (const d of decisions) countShadowSkip(d, c, metrics);
    expect(c).toEqual(counters());
    expect(await skippedMetric(metrics)).toBe(0);
    expect(() => countShadowSkip({ skipped: 'x', sampled: true }, c, undefined)).not.toThrow();
    expect(c.skipped).toBe(1);
  });
});

describe('captureAnswer', () => {
  const headers = { 'Content-Type': 'application/fhir+json', X_ERS_TRANSACTION_ID: 'tx-1' };

  it('a Buffer body is kept as is; captured headers are lower-cased, the answer keeps its own', async () => {
    const body = Buffer.from('{"a":1}');
    const started = performance.now();
    const { answer, captured } = await captureAnswer({ status: 200, headers, body }, 'apim', 100, started);
    expect(answer).toEqual({ status: 200, headers, body });
    expect(captured).toMatchObject({ side: 'apim', status: 200, body, truncated: false });
    expect(captured.headers).toEqual({ 'content-type': 'application/fhir+json', x_ers_transaction_id: 'tx-1' });
    expect(captured.ms).toBeGreaterThanOrEqual(0);
  });

  it('a stream body is read whole, and the answer then carries the bytes', async () => {
    const stream = Readable.from([Buffer.from('%PDF-'), Buffer.from('1.7 data')]);
    const { answer, captured } = await captureAnswer({ status: 200, headers, body: stream }, 'legacy', 100, 0);
    expect(Buffer.isBuffer(answer.body)).toBe(true);
    expect((answer.body as Buffer).toString()).toBe('%PDF-1.7 data');
    expect(captured.body.toString()).toBe('%PDF-1.7 data');
    expect(captured.side).toBe('legacy');
  });

  it('no body stays no body; the capture is empty', async () => {
    const { answer, captured } = await captureAnswer({ status: 204, headers: {}, body: undefined }, 'apim', 100, 0);
    expect(answer.body).toBeUndefined();
    expect(captured.body.length).toBe(0);
  });

  it('over the limit → UpstreamError too-large, answered as UPSTREAM_BAD_RESPONSE "more than ers-bridge will compare"', async () => {
    const stream = Readable.from([Buffer.alloc(60), Buffer.alloc(60)]);
    const e = await rejectionOf(captureAnswer({ status: 200, headers, body: stream }, 'legacy', 100, 0));
    expect(e).toBeInstanceOf(UpstreamError);
    expect((e as UpstreamError).kind).toBe('too-large');
    expect((e as UpstreamError).upstream).toBe('the legacy e-RS host');
    const fault = knownFault(e)!;
    expect(fault.reason).toBe('UPSTREAM_BAD_RESPONSE');
    expect(fault.diagnostics).toBe('The answer is larger than 100 bytes, more than ers-bridge will compare.');
    expect(stream.destroyed).toBe(true);
  });

  it('a stream that fails while captured is an upstream fault, not an internal error', async () => {
    const failing = new Readable({
      read() {
        this.destroy(Object.assign(new Error('Body Timeout Error'), { code: 'UND_ERR_BODY_TIMEOUT' }));
      },
    });
    const e = await rejectionOf(captureAnswer({ status: 200, headers, body: failing }, 'legacy', 1000, 0));
    expect(knownFault(e)?.reason).toBe('UPSTREAM_TIMEOUT');
  });

  it('exactly at the limit is accepted', async () => {
    const { captured } = await captureAnswer(
      { status: 200, headers, body: Readable.from([Buffer.alloc(100)]) },
      'apim',
      100,
      0,
    );
    expect(captured.body.length).toBe(100);
  });
});
