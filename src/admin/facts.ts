/**
 * What the admin pages say about the rules now, beside the comparisons: each operation's mode, each ASID's access
 * mode (readiness depends on it), whether the known-difference presets are on, and which process answers.
 */
import type { KnownDifference } from '../comparison/types.js';
import { ENDPOINTS } from '../legacy/endpoints.js';
import { routeSettings } from '../pipeline/mode.js';
import type { Rules } from '../rules/schema.js';

export interface AdminFacts {
  /** The operation's mode now, in words ("shadow: the legacy host answers, APIM is compared"). */
  modeOf(aCode: string): string | undefined;
  /** The ASID's access mode in the rules, when the rules name it. */
  accessModeOf(asid: string): 'application-restricted' | 'user-restricted' | undefined;
  /** Whether the known-difference presets apply to an operation (`modes.shadow.presets`, its route's or default). */
  presetsOn(aCode: string): boolean;
  /** The process answering this page (hostname:pid). */
  replica?: string;
  /** The presets shipped (listed on the page). */
  presets: readonly KnownDifference[];
}

/** A mode in words, as the pages show it. */
export function describeMode(rules: Rules, aCode: string): string | undefined {
  const endpoint = ENDPOINTS.find((e) => e.code === aCode);
  if (!endpoint) return undefined;
  const r = routeSettings(rules.modes, endpoint);
  switch (r.mode) {
    case 'translate':
      return 'translate: APIM answers';
    case 'passthrough':
      return 'passthrough: the legacy host answers';
    case 'shadow':
      return r.shadow.primary === 'legacy'
        ? `shadow: the legacy host answers, APIM is compared (${Math.round(r.shadow.sampleRate * 100)}% of calls)`
        : `shadow: APIM answers, the legacy host is compared (${Math.round(r.shadow.sampleRate * 100)}% of calls)`;
    case 'canary': {
      const c = r.canary ?? { percent: 0, by: 'session' };
      return `canary: APIM answers ${c.percent}% of ${c.by === 'asid' ? 'ASIDs' : 'sessions'}, the legacy host the rest`;
    }
  }
}

/** The facts of a rules file. */
export function adminFactsOf(rules: Rules, presets: readonly KnownDifference[], replica?: string): AdminFacts {
  return {
    modeOf: (aCode) => describeMode(rules, aCode),
    accessModeOf: (asid) => (Object.hasOwn(rules.asids, asid) ? rules.asids[asid]!.accessMode : undefined),
    presetsOn: (aCode) => {
      const endpoint = ENDPOINTS.find((e) => e.code === aCode);
      const settings = endpoint ? routeSettings(rules.modes, endpoint).shadow : rules.modes.shadow;
      return settings.presets !== false;
    },
    ...(replica ? { replica } : {}),
    presets,
  };
}
