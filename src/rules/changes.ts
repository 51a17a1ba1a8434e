/**
 * What a rules reload changed, for its log line (pure): ASIDs added, removed and changed, modes and limits with
 * their old and new values (none of them secret), and TLS material, the admin token and any other setting by name
 * only — never a value. Secrets are references in the rules; what they resolve to (a `file:` secret's content may
 * change behind the same reference) is compared when given, and reported as "changed", never shown.
 */
import type { Rules } from './schema.js';

/** One side of a reload: the parsed rules, and the material resolved from their secret references. */
export interface RulesInForce {
  rules: Rules;
  resolved?: {
    /** The admin token (`admin.token`, resolved), or a hash of it. */
    adminToken?: string | undefined;
    /** The legacy port's TLS certificate, key and client CA (`server.tls`, resolved), or a hash of them. */
    serverTls?: string | undefined;
  };
}

export interface RulesChanges {
  asidsAdded?: string[];
  asidsRemoved?: string[];
  /** ASIDs whose settings changed, with the names of those settings: `999000000003: allowedCodes`. */
  asidsChanged?: string[];
  /** Mode settings, with their values: `default: translate → shadow`, `routes.A005: (unset) → passthrough`. */
  modes?: string[];
  /** Limits, with their values: `sessions.maxPerAsid: 20000 → 500`. */
  limits?: string[];
  /** TLS and certificate settings (or the files behind them), never their values: `server.tls: changed`. */
  tls?: string[];
  /** The admin token (its reference, or what it resolves to): never its value. */
  adminToken?: 'changed' | 'added' | 'removed';
  /** Any other setting that changed, by name only. */
  other?: string[];
}

/** Settings that bound what callers may use, by path prefix: their changes are listed with their values. */
const LIMITS = [
  'apim.connections',
  'apim.concurrency',
  'apim.maxPauseSeconds',
  'apim.rateLimit',
  'apim.timeouts',
  'server.limits',
  'server.maxRequestBodyBytes',
  'server.maxResponseRewriteBytes',
  'sessions.idleTimeoutSeconds',
  'sessions.absoluteTimeoutSeconds',
  'sessions.maxSessions',
  'sessions.maxPerAsid',
  'sessions.maxRecordBytes',
  'sessions.a001PerSecondPerAsid',
  'cis2.limits',
  'cis2.signInCodeTtlSeconds',
];

/** TLS and certificate settings, by path prefix: named as changed, never shown. */
const TLS = ['server.tls', 'legacy.tls', 'apim.ca', 'server.trustedProxies.clientCa'];

const within = (path: string, prefix: string) => path === prefix || path.startsWith(`${prefix}.`);

/** Paths compared as one value: a route's mode entry and the canary settings read better whole. */
function whole(path: string[]): boolean {
  return (path[0] === 'modes' && path[1] === 'routes' && path.length === 3) || path.join('.') === 'modes.canary';
}

/** Every setting as `path → JSON value`; arrays are one value. */
function flatten(value: unknown, path: string[] = [], out = new Map<string, string>()): Map<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && !whole(path)) {
    for (const [k, v] of Object.entries(value)) if (v !== undefined) flatten(v, [...path, k], out);
  } else if (value !== undefined) {
    out.set(path.join('.'), JSON.stringify(value));
  }
  return out;
}

/** A value as the log line shows it (modes and limits only): strings bare, the rest as JSON, kept short. */
function shown(json: string | undefined): string {
  if (json === undefined) return '(unset)';
  const v = JSON.parse(json) as unknown;
  const text = typeof v === 'string' ? v : json;
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** The changes between the rules in force and the new ones; an empty object when nothing changed. */
export function rulesChanges(old: RulesInForce, next: RulesInForce): RulesChanges {
  const before = flatten(old.rules);
  const after = flatten(next.rules);
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter((p) => before.get(p) !== after.get(p));

  const oldAsids = Object.keys(old.rules.asids);
  const newAsids = Object.keys(next.rules.asids);
  const asidsChanged = new Map<string, Set<string>>();
  const modes: string[] = [];
  const limits: string[] = [];
  const tls = new Set<string>();
  const other = new Set<string>();
  let adminToken: RulesChanges['adminToken'];

  for (const path of changed) {
    const parts = path.split('.');
    if (parts[0] === 'asids') {
      // Keys of `asids` are ASIDs (digits only): the ASID, then the setting's name.
      const asid = parts[1]!;
      if (oldAsids.includes(asid) && newAsids.includes(asid)) {
        if (!asidsChanged.has(asid)) asidsChanged.set(asid, new Set());
        asidsChanged.get(asid)!.add(parts[2] ?? '(settings)');
      }
    } else if (parts[0] === 'modes') {
      modes.push(`${parts.slice(1).join('.')}: ${shown(before.get(path))} → ${shown(after.get(path))}`);
    } else if (LIMITS.some((l) => within(path, l))) {
      limits.push(`${path}: ${shown(before.get(path))} → ${shown(after.get(path))}`);
    } else if (TLS.some((t) => within(path, t))) {
      tls.add(TLS.find((t) => within(path, t))!);
    } else if (within(path, 'admin.token')) {
      adminToken = before.has(path) ? (after.has(path) ? 'changed' : 'removed') : 'added';
    } else {
      // By name only, two levels deep at most (deeper keys may be ids: CIS2 user ids, ODS codes); a section added
      // or removed whole (cis2, record, admin, …) by its name alone.
      const section = parts[0] as keyof Rules;
      other.add(
        old.rules[section] === undefined || next.rules[section] === undefined ? section : parts.slice(0, 2).join('.'),
      );
    }
  }
  // An admin section added or removed is said by adminToken.
  if (adminToken === 'added' || adminToken === 'removed') other.delete('admin');
  const was = old.resolved;
  const is = next.resolved;
  if (was && is) {
    if (adminToken === undefined && was.adminToken !== is.adminToken) {
      adminToken = was.adminToken === undefined ? 'added' : is.adminToken === undefined ? 'removed' : 'changed';
    }
    if (was.serverTls !== is.serverTls) tls.add('server.tls');
  }

  const out: RulesChanges = {};
  const added = newAsids.filter((a) => !oldAsids.includes(a));
  const removed = oldAsids.filter((a) => !newAsids.includes(a));
  if (added.length) out.asidsAdded = added;
  if (removed.length) out.asidsRemoved = removed;
  if (asidsChanged.size) {
    out.asidsChanged = [...asidsChanged].map(([a, fields]) => `${a}: ${[...fields].sort().join(', ')}`);
  }
  if (modes.length) out.modes = modes;
  if (limits.length) out.limits = limits;
  if (tls.size) out.tls = [...tls].map((t) => `${t}: changed`);
  if (adminToken) out.adminToken = adminToken;
  if (other.size) out.other = [...other];
  return out;
}
