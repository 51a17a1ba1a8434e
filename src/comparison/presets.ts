/**
 * Known differences shipped with ers-bridge: fields APIM answers by design that the HSCN API never had, so a
 * comparison of a legacy answer (live, or recorded) with APIM's always shows them. Each preset names where the field
 * is, the operations (A-codes) that answer it, why it differs, and the NHS source with its date. Presets are on by
 * default (`modes.shadow.presets: false` turns them off, per environment or per route); a difference a preset
 * matches is counted as "ignored by preset", not as a difference, and stays visible as such on the admin pages, in
 * `compare report` and in the comparison records (`result.ignoredByPreset`).
 *
 * A preset matches an e-RS extension element by its `url`: `element` is a path glob (paths.ts) of the element, and a
 * difference is the preset's when it lies under an element the glob matches whose `url` differs with the preset's
 * `url` on either side — the element present on one side only, as these fields are (APIM answers them, HSCN did
 * not). Matching works on the differences alone (paths and their redacted values), so the same rule applies to a
 * live comparison, to replay and to the records of a comparison file read back by `compare report`.
 */

import { BoundedPer, OncePer } from '../runtime/once-per.js';
import { formatPath, globToMatcher, type PathMatcher, parsePath } from './paths.js';
import type { FieldDifference, KnownDifference } from './types.js';

export type { KnownDifference } from './types.js';

const WORKLIST_SPEC =
  'https://github.com/NHSDigital/e-referrals-service-api/blob/master/specification/components/stu3/schemas/eRS-FetchWorklist-List.yaml';

/** The presets, in the order the pages list them. */
export const KNOWN_DIFFERENCES: readonly KnownDifference[] = Object.freeze([
  {
    id: 'A008-referralRequestVersion',
    codes: ['A008'],
    field: 'referralRequestVersion',
    element: 'entry[*].extension[*].extension[*]',
    url: 'referralRequestVersion',
    why: 'APIM added the referral version to every referral worklist item (1..1) after HSCN was withdrawn; a legacy answer never has it. Nothing to change: legacy clients ignore an extension they do not know.',
    source: {
      title: 'NHS England e-RS FHIR API specification, eRS-FetchWorklist-List-1 (A008 Retrieve referral worklist)',
      url: WORKLIST_SPEC,
    },
    since: '2025-12',
  },
  {
    id: 'A023-communicationRequestVersion',
    codes: ['A023'],
    field: 'communicationRequestVersion',
    element: 'entry[*].extension[*].extension[*]',
    url: 'communicationRequestVersion',
    why: 'APIM added the advice and guidance request version to every A&G worklist item (1..1) after HSCN was withdrawn; a legacy answer never has it. Nothing to change: legacy clients ignore an extension they do not know.',
    source: {
      title:
        'NHS England e-RS FHIR API specification, eRS-FetchWorklist-List-1 (A023 Retrieve advice and guidance requests worklist)',
      url: WORKLIST_SPEC,
    },
    since: '2026-01',
  },
]);

/** The presets that apply to an operation's answers (worked out once per list and A-code: every copy asks). */
export function presetsFor(
  aCode: string,
  presets: readonly KnownDifference[] = KNOWN_DIFFERENCES,
): readonly KnownDifference[] {
  return PRESETS_BY_CODE.of(presets, aCode);
}

// Bounded: A-codes read back from a comparison file may be anything.
const PRESETS_BY_CODE = new BoundedPer<readonly KnownDifference[], readonly KnownDifference[]>(512, (presets, aCode) =>
  presets.filter((p) => p.codes.includes(aCode)),
);

/** The preset with this id, if ers-bridge ships one. */
export function presetById(id: string): KnownDifference | undefined {
  return KNOWN_DIFFERENCES.find((p) => p.id === id);
}

/** Differences a preset matched: by preset id, the paths (at most this many are kept per preset). */
export const MAX_PRESET_PATHS = 20;

export interface PresetSplit {
  /** The differences no preset matched. */
  differences: FieldDifference[];
  /** What the presets matched, by preset id (paths capped at MAX_PRESET_PATHS, `fields` counts them all). */
  ignored: Array<{ id: string; fields: number; paths: string[] }>;
}

const matchers = new OncePer<KnownDifference, PathMatcher>((p) => globToMatcher(p.element));

function matcherOf(p: KnownDifference): PathMatcher {
  return matchers.of(p);
}

/**
 * Splits differences into those a preset matches and the rest (see the file comment). Pure; the order of the
 * remaining differences is kept.
 */
export function splitByPresets(
  differences: readonly FieldDifference[],
  presets: readonly KnownDifference[],
): PresetSplit {
  if (presets.length === 0 || differences.length === 0) return { differences: [...differences], ignored: [] };
  // The element paths whose `url` differs, with the values on each side.
  const urls = new Map<string, unknown[]>();
  const parsed = differences.map((d) => {
    let segments: (string | number)[] | undefined;
    try {
      segments = parsePath(d.path);
    } catch {
      segments = undefined;
    }
    if (segments && segments.length > 0 && segments[segments.length - 1] === 'url') {
      urls.set(formatPath(segments.slice(0, -1)), [d.primary, d.secondary]);
    }
    return segments;
  });
  const ignored = new Map<string, { id: string; fields: number; paths: string[] }>();
  const kept: FieldDifference[] = [];
  differences.forEach((d, i) => {
    const segments = parsed[i];
    const preset = segments ? presetOf(segments, presets, urls) : undefined;
    if (!preset) {
      kept.push(d);
      return;
    }
    let hit = ignored.get(preset.id);
    if (!hit) {
      hit = { id: preset.id, fields: 0, paths: [] };
      ignored.set(preset.id, hit);
    }
    hit.fields++;
    if (hit.paths.length < MAX_PRESET_PATHS) hit.paths.push(d.path);
  });
  return { differences: kept, ignored: [...ignored.values()] };
}

function presetOf(
  segments: readonly (string | number)[],
  presets: readonly KnownDifference[],
  urls: ReadonlyMap<string, unknown[]>,
): KnownDifference | undefined {
  for (let k = segments.length - 1; k >= 1; k--) {
    const prefix = segments.slice(0, k);
    const values = urls.get(formatPath(prefix));
    if (!values) continue;
    for (const p of presets) if (values.includes(p.url) && matcherOf(p)(prefix)) return p;
  }
  return undefined;
}
