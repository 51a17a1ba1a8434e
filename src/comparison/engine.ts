/**
 * The one comparison engine: live shadow, `ers-bridge replay` and `ers-bridge compare report` build their comparison
 * options here, from the rules' shadow settings for the operation (its route's, else `modes.shadow`): the headers
 * compared, the ignore rules (`ignoreHeaders`, `ignorePaths`) and the known-difference presets (on unless
 * `presets: false`). Shadow and replay pass the options to `compareAnswers` (diff.ts); `compare report` re-applies
 * the same ignore rules and presets to the records of a comparison file with `reapplyOptions`, so a file written
 * before a rule was added reads as if the rule had been there.
 */
import { ENDPOINTS, type EndpointDef } from '../legacy/endpoints.js';
import { routeSettings } from '../pipeline/mode.js';
import type { ModeSettings, ShadowConfig } from '../rules/schema.js';
import { globToMatcher, nameGlobToMatcher, parsePath } from './paths.js';
import { presetsFor, splitByPresets } from './presets.js';
import type { ComparisonOptions, ComparisonRecord } from './types.js';

/** What of the shadow settings the comparison uses. */
export type CompareSettings = Pick<ShadowConfig, 'ignoreHeaders' | 'ignorePaths'> &
  Partial<Pick<ShadowConfig, 'compareHeaders' | 'presets'>>;

/** The comparison options of one operation from shadow settings (its route's, already merged). */
export function comparisonOptions(
  settings: CompareSettings,
  aCode: string,
  extra: Pick<ComparisonOptions, 'baseUrls' | 'noisePaths'> = {},
): ComparisonOptions {
  return {
    ...(settings.compareHeaders ? { headers: settings.compareHeaders } : {}),
    ignoreHeaders: settings.ignoreHeaders,
    ignorePaths: settings.ignorePaths,
    ...(settings.presets !== false ? { presets: presetsFor(aCode) } : {}),
    ...(extra.noisePaths ? { noisePaths: extra.noisePaths } : {}),
    ...(extra.baseUrls ? { baseUrls: extra.baseUrls } : {}),
  };
}

/** The comparison options of an operation under the rules' modes (its route's shadow settings, else the default). */
export function comparisonOptionsFor(
  modes: ModeSettings,
  endpoint: EndpointDef,
  extra: Pick<ComparisonOptions, 'baseUrls' | 'noisePaths'> = {},
): ComparisonOptions {
  return comparisonOptions(routeSettings(modes, endpoint).shadow, endpoint.code, extra);
}

/** Options by A-code from the rules' modes (for records read back from a file); defaults for unknown A-codes. */
export function optionsByCode(modes: ModeSettings | undefined): (aCode: string) => ComparisonOptions {
  const cache = new Map<string, ComparisonOptions>();
  return (aCode) => {
    let o = cache.get(aCode);
    if (!o) {
      const endpoint = ENDPOINTS.find((e) => e.code === aCode);
      o =
        modes && endpoint
          ? comparisonOptionsFor(modes, endpoint)
          : comparisonOptions(modes?.shadow ?? { ignoreHeaders: [], ignorePaths: [] }, aCode);
      cache.set(aCode, o);
    }
    return o;
  };
}

/**
 * A stored record with the ignore rules and presets of `options` applied to its differences: differences at an
 * ignored path (or under it) or an ignored header are dropped, those a preset matches move to `ignoredByPreset`, and
 * `equal` follows. Idempotent; the record is not changed.
 */
export function reapplyOptions(record: ComparisonRecord, options: ComparisonOptions): ComparisonRecord {
  const res = record.result;
  const paths = (options.ignorePaths ?? []).map(globToMatcher);
  const headers = (options.ignoreHeaders ?? []).map(nameGlobToMatcher);
  // `status` is the HTTP status when the statuses differ and the values are theirs; otherwise a body field.
  const httpStatus = (d: (typeof res.differences)[number]) =>
    d.path === 'status' && !res.statusEqual && d.primary === res.primaryStatus && d.secondary === res.secondaryStatus;
  const ignored = (d: (typeof res.differences)[number]): boolean => {
    const path = d.path;
    if (path.startsWith('header:')) return headers.some((m) => m(path.slice('header:'.length)));
    if (httpStatus(d) || path === 'body' || paths.length === 0) return false;
    let segments: (string | number)[];
    try {
      segments = parsePath(path);
    } catch {
      return false;
    }
    // Ignoring a path ignores everything under it.
    for (let k = segments.length; k >= 1; k--) if (paths.some((m) => m(segments.slice(0, k)))) return true;
    return false;
  };
  const kept = res.differences.filter((d) => !ignored(d));
  const split = splitByPresets(kept, options.presets ?? []);
  const before = new Map((res.ignoredByPreset ?? []).map((p) => [p.id, { ...p, paths: [...p.paths] }]));
  for (const hit of split.ignored) {
    const had = before.get(hit.id);
    if (had) {
      had.fields += hit.fields;
      had.paths = [...had.paths, ...hit.paths].slice(0, 20);
    } else before.set(hit.id, hit);
  }
  const result = { ...res, differences: split.differences };
  if (before.size > 0) result.ignoredByPreset = [...before.values()];
  result.equal = res.statusEqual && split.differences.length === 0 && !(res.omittedDifferences! > 0);
  return { ...record, result };
}
