/**
 * `ers-bridge demo --mode shadow|canary|passthrough`: the demo with a legacy side. The demo starts the legacy
 * stand-in (src/legacy-standin) beside the APIM stand-in and points its rules' legacy side at it, so the migration
 * modes of MIGRATION.md §5 can be tried from the README's first curl: shadow comparisons fill `/admin/compare/ui`,
 * canary sends half of the sessions to each side, passthrough sends everything to the legacy host unchanged.
 */
import { ALL_CODES } from '../legacy/endpoints.js';
import { LEGACY_STANDIN_CODES } from '../legacy-standin/index.js';
import type { Rules } from '../rules/schema.js';

/** The modes `demo --mode` takes; translate (the default) needs no legacy side. */
export const DEMO_MODES = ['translate', 'passthrough', 'shadow', 'canary'] as const;
export type DemoMode = (typeof DEMO_MODES)[number];

/** The demo's canary: half of the sessions on APIM, each session staying on its side. */
export const DEMO_CANARY = { percent: 50, by: 'session' } as const;

/** The `--mode` value, checked; undefined when it is not one of {@link DEMO_MODES}. */
export function demoModeOf(value: string | undefined): DemoMode | undefined {
  const mode = value ?? 'translate';
  return (DEMO_MODES as readonly string[]).includes(mode) ? (mode as DemoMode) : undefined;
}

/**
 * Points the demo rules' legacy side at the legacy stand-in (`legacyBaseUrl`, plain HTTP on loopback) and makes
 * `mode` the default mode. Both sides are stand-ins, so neither is production: shadow copies writes too. The routes
 * of the rules file are replaced: the operations the legacy stand-in does not answer (all but
 * {@link LEGACY_STANDIN_CODES}) translate, as a migration team would route operations its legacy host lacks.
 */
export function pointDemoAtLegacy(rules: Rules, mode: Exclude<DemoMode, 'translate'>, legacyBaseUrl: string): void {
  rules.legacy = { ...rules.legacy, baseUrl: legacyBaseUrl.replace(/\/+$/, ''), production: false };
  delete rules.legacy.tls; // the stand-in behind the demo is plain HTTP
  rules.apim.production = false;
  rules.modes = {
    ...rules.modes,
    default: mode,
    routes: Object.fromEntries(
      ALL_CODES.filter((c) => !LEGACY_STANDIN_CODES.includes(c)).map((c) => [c, 'translate' as const]),
    ),
    ...(mode === 'canary' ? { canary: { ...DEMO_CANARY } } : {}),
  };
}
