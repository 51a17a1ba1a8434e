/** The migration modes a rules file uses anywhere: its default and every route's. */
import type { ModeSettings } from './schema.js';

export function modesInUse(modes: ModeSettings): Set<string> {
  return new Set([modes.default, ...Object.values(modes.routes).map((r) => (typeof r === 'string' ? r : r.mode))]);
}

/** Whether any call may be answered by, or copied to, the legacy host (any mode but translate). */
export function sendsToLegacyHost(modes: ModeSettings): boolean {
  return [...modesInUse(modes)].some((mode) => mode !== 'translate');
}
