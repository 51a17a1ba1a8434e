/**
 * The mode step, pure: which side answers a legacy call (APIM or the legacy host), and whether a copy goes to the
 * other side for comparison. Modes come from the rules, per environment and per route (A-code or legacy path).
 *
 * - translate: APIM answers.
 * - passthrough: the legacy host answers, the call unchanged.
 * - shadow: the primary side answers; a copy goes to the other side and the answers are compared.
 * - canary: a fixed share of sessions (or ASIDs) goes to APIM, the rest to the legacy host — sticky, so one
 *   session never flips between sides.
 */
import { createHash } from 'node:crypto';
import type { EndpointDef } from '../legacy/endpoints.js';
import type { CanaryConfig, ModeSettings, ShadowConfig } from '../rules/schema.js';

export { sendsToLegacyHost } from '../rules/modes.js';

export type ModeName = 'translate' | 'passthrough' | 'shadow' | 'canary';
export type SideName = 'apim' | 'legacy';

export interface ModeDecision {
  mode: ModeName;
  primary: SideName;
  /** Present when a copy should go to the other side (before sampling and safety checks). */
  shadow?: { secondary: SideName; settings: ShadowConfig };
}

interface RouteSettings {
  mode: ModeName;
  shadow: ShadowConfig;
  canary: CanaryConfig | undefined;
}

/** The route entry that applies to an endpoint: its legacy path's, else its A-code's; undefined for none. */
function routeKeyOf(modes: ModeSettings, endpoint: EndpointDef): string | undefined {
  if (modes.routes[endpoint.legacyPath] !== undefined) return endpoint.legacyPath;
  return modes.routes[endpoint.code] !== undefined ? endpoint.code : undefined;
}

/** Where an endpoint's mode comes from in the rules, as `explain` names it: `modes.routes.A005` or `modes.default`. */
export function modeSourceOf(modes: ModeSettings, endpoint: EndpointDef): string {
  const key = routeKeyOf(modes, endpoint);
  return key === undefined ? 'modes.default' : `modes.routes.${key}`;
}

/** The mode settings that apply to an endpoint: its route entry (by legacy path, then by A-code), or the default. */
export function routeSettings(modes: ModeSettings, endpoint: EndpointDef): RouteSettings {
  const key = routeKeyOf(modes, endpoint);
  const entry = key === undefined ? undefined : modes.routes[key];
  if (entry === undefined) return { mode: modes.default, shadow: modes.shadow, canary: modes.canary };
  if (typeof entry === 'string') return { mode: entry, shadow: modes.shadow, canary: modes.canary };
  return { mode: entry.mode, shadow: { ...modes.shadow, ...entry.shadow }, canary: entry.canary ?? modes.canary };
}

/** A stable bucket 0..9999 for canary stickiness. */
export function canaryBucket(id: string): number {
  return createHash('sha256').update(`ers-bridge-canary:${id}`).digest().readUInt32BE(0) % 10_000;
}

// The decisions that depend on nothing but the route's mode: one frozen object each, not one a call.
const TRANSLATE: ModeDecision = Object.freeze({ mode: 'translate' as const, primary: 'apim' as const });
const PASSTHROUGH: ModeDecision = Object.freeze({ mode: 'passthrough' as const, primary: 'legacy' as const });

export function decideMode(
  modes: ModeSettings,
  endpoint: EndpointDef,
  who: { sessionKey: string; asid: string },
): ModeDecision {
  const r = routeSettings(modes, endpoint);
  switch (r.mode) {
    case 'translate':
      return TRANSLATE;
    case 'passthrough':
      return PASSTHROUGH;
    case 'shadow': {
      const primary = r.shadow.primary;
      return {
        mode: 'shadow',
        primary,
        shadow: { secondary: primary === 'apim' ? 'legacy' : 'apim', settings: r.shadow },
      };
    }
    case 'canary': {
      const canary = r.canary ?? { percent: 0, by: 'session' as const };
      const id = canary.by === 'asid' ? `asid:${who.asid}` : `session:${who.sessionKey}`;
      return { mode: 'canary', primary: canaryBucket(id) < canary.percent * 100 ? 'apim' : 'legacy' };
    }
  }
}

/**
 * Whether a copy of this call may be sent to the secondary side. Writes are never copied to a side declared
 * production: only read-only operations are, unless the secondary is a declared non-production stand-in.
 */
export function shadowAllowed(endpoint: EndpointDef, secondaryIsProduction: boolean): { ok: boolean; why?: string } {
  if (endpoint.readOnly) return { ok: true };
  if (!secondaryIsProduction) return { ok: true };
  return {
    ok: false,
    why: `${endpoint.code} changes data and the shadow side is production: writes are never copied to production`,
  };
}
