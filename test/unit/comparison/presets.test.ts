/**
 * Known-difference presets and the one comparison engine: what a preset matches (and what it does not), the options
 * shadow, replay and compare report build from the rules, and re-applying them to stored records.
 */
import { describe, expect, it } from 'vitest';
import { compareAnswers } from '../../../src/comparison/diff.js';
import {
  comparisonOptions,
  comparisonOptionsFor,
  optionsByCode,
  reapplyOptions,
} from '../../../src/comparison/engine.js';
import { KNOWN_DIFFERENCES, presetsFor, splitByPresets } from '../../../src/comparison/presets.js';
import { ComparisonStore } from '../../../src/comparison/store.js';
import { ENDPOINTS } from '../../../src/legacy/endpoints.js';
import { withoutApimAdditions } from '../../../src/legacy-standin/index.js';
import { rulesFor } from '../../helpers/rules.js';
import { fixture, json, record } from './support.js';

const WORKLIST = 'stu3/retrieveWorklist/responses/ReferralsForReview.json';
const A008 = ENDPOINTS.find((e) => e.code === 'A008')!;
const A005 = ENDPOINTS.find((e) => e.code === 'A005')!;

/** The legacy answer (no referralRequestVersion) and APIM's (the NHS example) to the same worklist call. */
function worklists(): { legacy: unknown; apim: unknown } {
  const apim = fixture(WORKLIST);
  return { legacy: withoutApimAdditions(structuredClone(apim)), apim };
}

describe('known-difference presets', () => {
  it('ships A008 referralRequestVersion (Dec 2025) and A023 communicationRequestVersion (Jan 2026), each with its source', () => {
    expect(KNOWN_DIFFERENCES.map((p) => [p.id, p.codes, p.field, p.since])).toEqual([
      ['A008-referralRequestVersion', ['A008'], 'referralRequestVersion', '2025-12'],
      ['A023-communicationRequestVersion', ['A023'], 'communicationRequestVersion', '2026-01'],
    ]);
    for (const p of KNOWN_DIFFERENCES) {
      expect(p.why.length).toBeGreaterThan(40);
      expect(p.source.url).toMatch(/^https:\/\//);
      expect(p.source.title).toMatch(/NHS England/);
    }
    expect(presetsFor('A008').map((p) => p.id)).toEqual(['A008-referralRequestVersion']);
    expect(presetsFor('A005')).toEqual([]);
  });

  it('a legacy worklist against APIM: without presets the version differs in every item; with them the answers are equal', () => {
    const { legacy, apim } = worklists();
    const bare = compareAnswers(json(legacy), json(apim, { side: 'apim' }));
    expect(bare.equal).toBe(false);
    expect(bare.differences.map((d) => d.path)).toEqual([
      'entry[0].extension[0].extension[9].url',
      'entry[0].extension[0].extension[9].valueInteger',
      'entry[1].extension[0].extension[12].url',
      'entry[1].extension[0].extension[12].valueInteger',
    ]);
    const withPresets = compareAnswers(json(legacy), json(apim, { side: 'apim' }), { presets: presetsFor('A008') });
    expect(withPresets.equal).toBe(true);
    expect(withPresets.differences).toEqual([]);
    expect(withPresets.ignoredByPreset).toEqual([
      { id: 'A008-referralRequestVersion', fields: 4, paths: bare.differences.map((d) => d.path) },
    ]);
  });

  it('matches only its own field: another difference in the same worklist is still a difference', () => {
    const { legacy, apim } = worklists();
    (apim as any).entry[0].extension[0].extension[0].valueCodeableConcept.coding[0].code = 'URGENT';
    const r = compareAnswers(json(legacy), json(apim, { side: 'apim' }), { presets: presetsFor('A008') });
    expect(r.equal).toBe(false);
    expect(r.differences.map((d) => d.path)).toEqual([
      'entry[0].extension[0].extension[0].valueCodeableConcept.coding[0].code',
    ]);
    expect(r.ignoredByPreset?.[0]?.fields).toBe(4);
  });

  it('matches by the element and its url, not by a name anywhere', () => {
    const diffs = [
      // the url matches but the element is elsewhere
      { path: 'contained[0].extension[3].url', kind: 'only-secondary' as const, secondary: 'referralRequestVersion' },
      // right place, another extension
      { path: 'entry[0].extension[0].extension[4].url', kind: 'only-secondary' as const, secondary: 'priority' },
      { path: 'entry[0].extension[0].extension[4].valueInteger', kind: 'only-secondary' as const, secondary: 1 },
    ];
    expect(splitByPresets(diffs, presetsFor('A008'))).toEqual({ differences: diffs, ignored: [] });
  });
});

describe('the one engine: options from the rules', () => {
  const rules = rulesFor({
    apim: {
      baseUrl: 'https://int.api.service.nhs.uk/referrals/FHIR',
      tokenUrl: 'https://int.api.service.nhs.uk/oauth2/token',
    },
    asids: { '999000000001': {} },
    modes: {
      default: 'shadow',
      shadow: { ignorePaths: ['**.meta.lastUpdated'], ignoreHeaders: ['content-disposition'] },
      routes: { A008: { mode: 'shadow', shadow: { presets: false, ignorePaths: ['meta.*'] } } },
    },
  });

  it("takes the route's shadow settings over the default, presets on unless the rules say false", () => {
    const a005 = comparisonOptionsFor(rules.modes, A005, { baseUrls: ['https://x/ers-api'] });
    expect(a005).toEqual({
      ignoreHeaders: ['content-disposition'],
      ignorePaths: ['**.meta.lastUpdated'],
      presets: [],
      baseUrls: ['https://x/ers-api'],
    });
    const a008 = comparisonOptionsFor(rules.modes, A008);
    expect(a008.ignorePaths).toEqual(['meta.*']);
    expect(a008.presets).toBeUndefined();
    expect(comparisonOptions({ ignoreHeaders: [], ignorePaths: [] }, 'A008').presets).toEqual(presetsFor('A008'));
  });

  it('re-applies ignore rules and presets to a stored record (compare report), idempotently', () => {
    const { legacy, apim } = worklists();
    const stored = record({
      aCode: 'A008',
      result: compareAnswers(
        json({ ...(legacy as object), meta: { lastUpdated: 'a' } }),
        json(
          { ...(apim as object), meta: { lastUpdated: 'b' } },
          { headers: { 'content-type': 'application/fhir+json', 'content-disposition': 'inline' } },
        ),
      ),
    });
    expect(stored.result.differences.map((d) => d.path)).toContain('meta.lastUpdated');
    expect(stored.result.differences.map((d) => d.path)).toContain('header:content-disposition');
    const options = optionsByCode(
      rulesFor({
        apim: {
          baseUrl: 'https://int.api.service.nhs.uk/referrals/FHIR',
          tokenUrl: 'https://int.api.service.nhs.uk/oauth2/token',
        },
        asids: { '999000000001': {} },
        modes: { default: 'shadow', shadow: { ignorePaths: ['meta'], ignoreHeaders: ['content-*'] } },
      }).modes,
    )('A008');
    const again = reapplyOptions(stored, options);
    expect(again.result.differences).toEqual([]);
    expect(again.result.equal).toBe(true);
    expect(again.result.ignoredByPreset).toEqual([
      expect.objectContaining({ id: 'A008-referralRequestVersion', fields: 4 }),
    ]);
    expect(reapplyOptions(again, options)).toEqual(again);
    expect(stored.result.equal).toBe(false); // the record itself is not changed

    // Without rules, the presets alone.
    const presetsOnly = reapplyOptions(stored, optionsByCode(undefined)('A008'));
    expect(presetsOnly.result.differences.map((d) => d.path).sort()).toEqual([
      'header:content-disposition',
      'meta.lastUpdated',
    ]);
  });

  it('a store counts preset matches apart: ignored by preset, not different', () => {
    const { legacy, apim } = worklists();
    const store = new ComparisonStore();
    const options = comparisonOptions({ ignoreHeaders: [], ignorePaths: [] }, 'A008');
    for (let i = 0; i < 3; i++) {
      store.add(record({ aCode: 'A008', result: compareAnswers(json(legacy), json(apim, { side: 'apim' }), options) }));
    }
    const [a008] = store.summary().codes;
    expect(a008).toMatchObject({
      aCode: 'A008',
      compared: 3,
      different: 0,
      ignoredByPreset: 3,
      presets: [{ id: 'A008-referralRequestVersion', count: 3 }],
      topFields: [],
    });
  });
});
