import { describe, expect, it } from 'vitest';
import { decideMode, routeSettings, shadowAllowed } from '../../../src/pipeline/mode.js';
import type { ModeSettings, ShadowConfig } from '../../../src/rules/schema.js';
import { endpoint } from './fakes.js';

const SHADOW: ShadowConfig = {
  primary: 'legacy',
  sampleRate: 1,
  maxConcurrent: 16,
  timeoutMs: 10_000,
  noiseBaseline: false,
  ignoreHeaders: [],
  ignorePaths: [],
};

function modes(overrides: Partial<ModeSettings> = {}): ModeSettings {
  return { default: 'translate', routes: {}, shadow: SHADOW, canary: undefined, ...overrides } as ModeSettings;
}

const A005 = endpoint('/STU3/v1/ReferralRequest/{ubrn}');
const A005_HISTORY = endpoint('/STU3/v1/ReferralRequest/{ubrn}/_history/{version}');
const who = (sessionKey: string, asid = '200000000001') => ({ sessionKey, asid });

describe('routeSettings', () => {
  it('no route entry: the defaults', () => {
    const m = modes({ default: 'passthrough', canary: { percent: 5, by: 'session' } });
    expect(routeSettings(m, A005)).toEqual({
      mode: 'passthrough',
      shadow: SHADOW,
      canary: { percent: 5, by: 'session' },
    });
  });

  it('an entry by A-code applies to every path of that operation', () => {
    const m = modes({ routes: { A005: 'passthrough' } });
    expect(routeSettings(m, A005).mode).toBe('passthrough');
    expect(routeSettings(m, A005_HISTORY).mode).toBe('passthrough');
    expect(routeSettings(m, endpoint('A004')).mode).toBe('translate');
  });

  it('an entry by legacy path beats one by A-code', () => {
    const m = modes({ routes: { A005: 'passthrough', [A005_HISTORY.legacyPath]: 'shadow' } });
    expect(routeSettings(m, A005_HISTORY).mode).toBe('shadow');
    expect(routeSettings(m, A005).mode).toBe('passthrough');
  });

  it('an object entry merges its shadow settings over the defaults and may bring its own canary', () => {
    const m = modes({
      canary: { percent: 5, by: 'session' },
      routes: {
        A005: { mode: 'shadow', shadow: { sampleRate: 0.25, primary: 'apim' } },
        A004: { mode: 'canary', canary: { percent: 50, by: 'asid' } },
      },
    });
    const r = routeSettings(m, A005);
    expect(r.mode).toBe('shadow');
    expect(r.shadow).toEqual({ ...SHADOW, sampleRate: 0.25, primary: 'apim' });
    expect(r.canary).toEqual({ percent: 5, by: 'session' });
    expect(routeSettings(m, endpoint('A004')).canary).toEqual({ percent: 50, by: 'asid' });
    // the defaults themselves are not changed by the merge
    expect(m.shadow).toEqual(SHADOW);
  });
});

describe('decideMode', () => {
  it('translate: APIM answers, no copy', () => {
    expect(decideMode(modes(), A005, who('k'))).toEqual({ mode: 'translate', primary: 'apim' });
  });

  it('passthrough: the legacy host answers, no copy', () => {
    expect(decideMode(modes({ default: 'passthrough' }), A005, who('k'))).toEqual({
      mode: 'passthrough',
      primary: 'legacy',
    });
  });

  it('shadow: the configured primary answers and the other side gets the copy', () => {
    const legacyFirst = decideMode(modes({ default: 'shadow' }), A005, who('k'));
    expect(legacyFirst).toEqual({ mode: 'shadow', primary: 'legacy', shadow: { secondary: 'apim', settings: SHADOW } });
    const apimFirst = decideMode(
      modes({ routes: { A005: { mode: 'shadow', shadow: { primary: 'apim', sampleRate: 0.5 } } } }),
      A005,
      who('k'),
    );
    expect(apimFirst.primary).toBe('apim');
    expect(apimFirst.shadow).toEqual({
      secondary: 'legacy',
      settings: { ...SHADOW, primary: 'apim', sampleRate: 0.5 },
    });
  });

  const keys = Array.from({ length: 400 }, (_, i) => `pro-api-session:${String(i).padStart(8, '0')}`);
  const canary = (percent: number, by: 'session' | 'asid') => modes({ default: 'canary', canary: { percent, by } });

  it('canary by session: sticky per session, and about `percent` of sessions go to APIM', () => {
    const m = canary(30, 'session');
    const sides = keys.map((k) => decideMode(m, A005, who(k)).primary);
    expect(keys.map((k) => decideMode(m, A005, who(k, '200000000009')).primary)).toEqual(sides);
    const share = sides.filter((s) => s === 'apim').length / keys.length;
    expect(share).toBeGreaterThan(0.2);
    expect(share).toBeLessThan(0.4);
    expect(decideMode(m, A005, who(keys[0]!)).mode).toBe('canary');
  });

  it('canary by ASID: every session of one ASID goes to the same side; ASIDs spread', () => {
    const m = canary(50, 'asid');
    const asids = Array.from({ length: 100 }, (_, i) => String(200000000000 + i));
    const sideOf = asids.map((asid) => decideMode(m, A005, who(keys[0]!, asid)).primary);
    asids.forEach((asid, i) => {
      for (const k of keys.slice(0, 20)) expect(decideMode(m, A005, who(k, asid)).primary).toBe(sideOf[i]);
    });
    expect(new Set(sideOf)).toEqual(new Set(['apim', 'legacy']));
  });

  it('canary percent 0 sends nobody to APIM, 100 everybody', () => {
    for (const k of keys) {
      expect(decideMode(canary(0, 'session'), A005, who(k)).primary).toBe('legacy');
      expect(decideMode(canary(100, 'session'), A005, who(k)).primary).toBe('apim');
    }
  });

  it('canary with no canary settings sends everyone to the legacy host', () => {
    const m = modes({ default: 'canary' });
    expect(keys.slice(0, 50).every((k) => decideMode(m, A005, who(k)).primary === 'legacy')).toBe(true);
  });
});

describe('shadowAllowed', () => {
  it('read-only operations may always be copied', () => {
    expect(shadowAllowed(A005, true)).toEqual({ ok: true });
    expect(shadowAllowed(endpoint('A008'), true)).toEqual({ ok: true }); // a read-only POST
  });

  it('a write may be copied to a non-production side only', () => {
    const a010 = endpoint('A010');
    expect(shadowAllowed(a010, false)).toEqual({ ok: true });
    const no = shadowAllowed(a010, true);
    expect(no.ok).toBe(false);
    expect(no.why).toBe('A010 changes data and the shadow side is production: writes are never copied to production');
  });
});
