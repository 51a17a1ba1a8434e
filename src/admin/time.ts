/**
 * Times on the admin pages: shown in a time zone with its name (the server renders them: the pages have no script),
 * and the time windows the pages and exports are asked for.
 *
 * The zone: the `tz` query parameter (an IANA name such as Europe/London or UTC), else the server's `TZ` when it
 * names a zone, else Europe/London — NHS England's.
 *
 * The window: `window=hour|day|week|all` (the last hour, day or week up to now; everything kept), or `from` and `to`
 * — ISO times with a zone (`2026-01-05T09:00Z`, `…+01:00`), or local times as a browser's date-time input sends them
 * (`2026-01-05T09:00`), read in the page's zone. `to` defaults to now; `from` must be before `to`. Neither given:
 * everything kept.
 */
import type { TimeWindow } from '../comparison/types.js';

export const DEFAULT_TIME_ZONE = 'Europe/London';

export const WINDOW_PRESETS = {
  hour: { label: 'Last hour', ms: 3_600_000 },
  day: { label: 'Last day', ms: 86_400_000 },
  week: { label: 'Last week', ms: 7 * 86_400_000 },
  all: { label: 'Everything kept', ms: 0 },
} as const;
export type WindowPreset = keyof typeof WINDOW_PRESETS;

/** Whether the runtime knows the zone (an IANA name, bounded). */
export function validTimeZone(tz: string): boolean {
  if (tz.length === 0 || tz.length > 64 || !/^[A-Za-z0-9_+\-/]+$/.test(tz)) return false;
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** The server's zone for the pages: `TZ` when it names a zone, else Europe/London. */
export function serverTimeZone(env: NodeJS.ProcessEnv = process.env): string {
  const tz = env['TZ'];
  return tz && validTimeZone(tz) ? tz : DEFAULT_TIME_ZONE;
}

const formats = new Map<string, Intl.DateTimeFormat>();

function format(tz: string, kind: 'full' | 'time' | 'day' | 'parts'): Intl.DateTimeFormat {
  const key = `${tz}|${kind}`;
  let f = formats.get(key);
  if (!f) {
    const options: Intl.DateTimeFormatOptions =
      kind === 'full'
        ? {
            day: 'numeric',
            month: 'short',
            year: 'numeric',
            hour: '2-digit',
            minute: '2-digit',
            hourCycle: 'h23',
            timeZoneName: 'short',
            timeZone: tz,
          }
        : kind === 'time'
          ? { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: tz }
          : kind === 'day'
            ? { day: 'numeric', month: 'short', timeZone: tz }
            : {
                year: 'numeric',
                month: '2-digit',
                day: '2-digit',
                hour: '2-digit',
                minute: '2-digit',
                second: '2-digit',
                hourCycle: 'h23',
                timeZone: tz,
              };
    f = new Intl.DateTimeFormat('en-GB', options);
    if (formats.size > 200) formats.clear();
    formats.set(key, f);
  }
  return f;
}

function toMs(t: number | string): number {
  return typeof t === 'number' ? t : Date.parse(t);
}

/** `6 Jan 2026, 09:30 GMT`: a time in the zone, with the zone's name. '–' for no time. */
export function formatLocal(t: number | string | undefined, tz: string): string {
  if (t === undefined) return '–';
  const ms = toMs(t);
  return Number.isFinite(ms) ? format(tz, 'full').format(ms) : String(t);
}

/** A chart axis label: `09:30` (within two days) or `6 Jan`. */
export function formatTick(ms: number, spanMs: number, tz: string): string {
  return spanMs <= 2 * 86_400_000 ? format(tz, 'time').format(ms) : format(tz, 'day').format(ms);
}

/** The zone's offset from UTC at an instant, in ms (positive east of Greenwich). */
export function zoneOffsetMs(ms: number, tz: string): number {
  const parts = Object.fromEntries(
    format(tz, 'parts')
      .formatToParts(ms)
      .map((p) => [p.type, p.value]),
  );
  const asUtc = Date.UTC(
    Number(parts['year']),
    Number(parts['month']) - 1,
    Number(parts['day']),
    Number(parts['hour']) % 24,
    Number(parts['minute']),
    Number(parts['second']),
  );
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** `2026-01-05T09:00` in the zone: what a date-time input shows. */
export function toLocalInput(ms: number, tz: string): string {
  const local = new Date(ms + zoneOffsetMs(ms, tz));
  return local.toISOString().slice(0, 16);
}

const LOCAL = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/;
const WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/** A time given in a query: ISO with a zone, or a local date-time read in `tz`. NaN when it is neither. */
export function parseQueryTime(text: string, tz: string): number {
  if (WITH_ZONE.test(text)) return Date.parse(text);
  const m = LOCAL.exec(text);
  if (!m) return Number.NaN;
  const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0));
  if (!Number.isFinite(wall)) return Number.NaN;
  // The instant whose wall time in tz is `wall`: two corrections cover the days the offset changes.
  let t = wall - zoneOffsetMs(wall, tz);
  t = wall - zoneOffsetMs(t, tz);
  return t;
}

export interface AskedWindow {
  /** Undefined: everything kept. */
  window: TimeWindow | undefined;
  /** The preset it was, or `custom`. */
  preset: WindowPreset | 'custom';
}

/** The longest window asked for (the retention is at most 400 days). */
const MAX_SPAN_MS = 400 * 86_400_000;

function one(v: unknown): string | undefined {
  if (Array.isArray(v)) return undefined;
  return typeof v === 'string' ? v : undefined;
}

/** The window a query asks for, or the reason it is not one (for a 400). */
export function windowOf(query: Record<string, unknown>, now: number, tz: string): AskedWindow | { error: string } {
  const preset = query['window'];
  const from = query['from'];
  const to = query['to'];
  if (preset !== undefined && preset !== '') {
    const p = one(preset);
    if (p === undefined || !Object.hasOwn(WINDOW_PRESETS, p)) {
      return { error: 'window must be one of hour, day, week or all' };
    }
    if (from !== undefined || to !== undefined) return { error: 'give either window or from/to, not both' };
    const ms = WINDOW_PRESETS[p as WindowPreset].ms;
    return { window: ms === 0 ? undefined : { from: now - ms, to: now }, preset: p as WindowPreset };
  }
  const f = from === undefined || from === '' ? undefined : one(from);
  const t = to === undefined || to === '' ? undefined : one(to);
  if ((from !== undefined && from !== '' && f === undefined) || (to !== undefined && to !== '' && t === undefined)) {
    return { error: 'from and to may each be given once' };
  }
  if (f === undefined && t === undefined) return { window: undefined, preset: 'all' };
  const fromMs = f === undefined ? 0 : parseQueryTime(f, tz);
  const toMs = t === undefined ? now : parseQueryTime(t, tz);
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs)) {
    return {
      error: 'from and to must be times such as 2026-01-05T09:00 (in the page time zone) or 2026-01-05T09:00Z',
    };
  }
  if (fromMs >= toMs) return { error: 'from must be before to' };
  return { window: { from: Math.max(fromMs, toMs - MAX_SPAN_MS), to: toMs }, preset: 'custom' };
}
