/**
 * launchShadow end to end in one process: the copy's answer compared with the primary's, the record stored, the
 * metrics counted (sent, dropped, and the comparisons by A-code and result), and the copy's deadline — shared by the
 * copies of one slot, never shorter than the rules' timeoutMs.
 */
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/admin/metrics.js';
import { ComparisonStore } from '../../../src/comparison/store.js';
import type { CapturedAnswer } from '../../../src/comparison/types.js';
import { launchShadow, type ShadowJob, type ShadowSinks } from '../../../src/pipeline/shadow.js';
import type { LegacyAnswer } from '../../../src/pipeline/types.js';
import type { ShadowConfig } from '../../../src/rules/schema.js';
import type { ShadowCounters } from '../../../src/runtime/process-state.js';
import { endpoint } from './fakes.js';

const SETTINGS: ShadowConfig = {
  primary: 'apim',
  sampleRate: 1,
  maxConcurrent: 4,
  timeoutMs: 10_000,
  noiseBaseline: false,
  ignoreHeaders: [],
  ignorePaths: [],
};
const BODY = '{"resourceType":"ReferralRequest","id":"000000070000","status":"active"}';
const PRIMARY: CapturedAnswer = {
  side: 'apim',
  status: 200,
  headers: { 'content-type': 'application/fhir+json' },
  body: Buffer.from(BODY),
  truncated: false,
  ms: 3,
};

function sinks(): ShadowSinks & { counters: ShadowCounters; comparisons: ComparisonStore; metrics: Metrics } {
  return {
    counters: { inFlight: 0, sent: 0, dropped: 0, skipped: 0, failed: 0 },
    metrics: new Metrics({ processMetrics: false }),
    comparisons: new ComparisonStore(),
    log: undefined,
  };
}

function job(callSide: ShadowJob['callSide'], settings: Partial<ShadowConfig> = {}): ShadowJob {
  return {
    endpoint: endpoint('A005'),
    asid: '200000000001',
    correlationId: '0b5e8a0c-2f4e-4a59-9d1c-51b5e1b0c0de',
    primary: PRIMARY,
    primarySide: 'apim',
    secondarySide: 'legacy',
    settings: { ...SETTINGS, ...settings },
    baseUrls: [],
    callSide,
  };
}

const answer = (body: string): LegacyAnswer => ({
  status: 200,
  headers: { 'content-type': 'application/fhir+json' },
  body: Buffer.from(body),
});

async function settled(s: ShadowSinks): Promise<void> {
  await expect.poll(() => s.counters.inFlight, { timeout: 5_000, interval: 5 }).toBe(0);
}

async function metric(s: { metrics: Metrics }, name: string): Promise<string> {
  return s.metrics.registry.getSingleMetricAsString(name);
}

describe('launchShadow', () => {
  it('compares each copy, stores its record and counts it by A-code and result', async () => {
    const s = sinks();
    launchShadow(
      s,
      job(async () => answer(BODY)),
    );
    launchShadow(
      s,
      job(async () => answer(BODY.replace('active', 'cancelled'))),
    );
    launchShadow(
      s,
      job(async () => {
        throw new Error('connection refused');
      }),
    );
    await settled(s);
    expect(s.counters.sent).toBe(3);
    const text = await metric(s, 'ers_bridge_comparisons_total');
    expect(text).toContain('ers_bridge_comparisons_total{a_code="A005",result="equal"} 1');
    expect(text).toContain('ers_bridge_comparisons_total{a_code="A005",result="different"} 1');
    expect(text).toContain('ers_bridge_comparisons_total{a_code="A005",result="error"} 1');
    expect(await metric(s, 'ers_bridge_shadow_copies_total')).toContain(
      'ers_bridge_shadow_copies_total{outcome="sent"} 3',
    );
    const records = s.comparisons.samples('A005');
    expect(records).toHaveLength(3);
    expect(records.filter((r) => r.result.equal)).toHaveLength(1);
    expect(records.find((r) => !r.result.equal && !r.secondaryError)?.result.differences[0]?.path).toBe('status');
    expect(records.find((r) => r.secondaryError)?.secondaryError).toBe('failed');
  });

  it('drops copies beyond maxConcurrent and counts them', async () => {
    const s = sinks();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const held = job(
      async () => {
        await gate;
        return answer(BODY);
      },
      { maxConcurrent: 2 },
    );
    for (let i = 0; i < 5; i++) launchShadow(s, held);
    expect(s.counters).toMatchObject({ inFlight: 2, sent: 2, dropped: 3 });
    release();
    await settled(s);
    const text = await metric(s, 'ers_bridge_shadow_copies_total');
    expect(text).toContain('ers_bridge_shadow_copies_total{outcome="sent"} 2');
    expect(text).toContain('ers_bridge_shadow_copies_total{outcome="dropped"} 3');
  });

  it('stops a copy that outlasts timeoutMs, never before it; copies started together share one deadline', async () => {
    const s = sinks();
    const timeoutMs = 120;
    const signals: AbortSignal[] = [];
    const started: number[] = [];
    const stopped: number[] = [];
    const hang: ShadowJob['callSide'] = (_side, signal) => {
      signals.push(signal);
      started.push(performance.now());
      return new Promise((_resolve, reject) => {
        signal.addEventListener('abort', () => {
          stopped.push(performance.now());
          reject(signal.reason);
        });
      });
    };
    launchShadow(s, job(hang, { timeoutMs }));
    launchShadow(s, job(hang, { timeoutMs }));
    await settled(s);
    expect(signals).toHaveLength(2);
    expect(signals[0]).toBe(signals[1]);
    for (let i = 0; i < 2; i++) expect(stopped[i]! - started[i]!).toBeGreaterThanOrEqual(timeoutMs - 1);
    const records = s.comparisons.samples('A005');
    expect(records.map((r) => r.secondaryError)).toEqual([
      `timed out after ${timeoutMs} ms`,
      `timed out after ${timeoutMs} ms`,
    ]);
    // A later copy gets a deadline of its own: the slot's signal has fired.
    launchShadow(s, job(hang, { timeoutMs }));
    expect(signals[2]).not.toBe(signals[0]);
    expect(signals[2]!.aborted).toBe(false);
    await settled(s);
  });

  it('a copy with another timeout gets its own deadline', async () => {
    const s = sinks();
    const signals: AbortSignal[] = [];
    const quick: ShadowJob['callSide'] = async (_side, signal) => {
      signals.push(signal);
      return answer(BODY);
    };
    launchShadow(s, job(quick, { timeoutMs: 5_000 }));
    launchShadow(s, job(quick, { timeoutMs: 6_000 }));
    launchShadow(s, job(quick, { timeoutMs: 6_000 }));
    await settled(s);
    expect(signals[0]).not.toBe(signals[1]);
    expect(signals[1]).toBe(signals[2]);
  });
});
