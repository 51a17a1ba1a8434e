/**
 * Reading the rules schema by path, for what `rules check` says beyond zod's own issues: the fields an object at a
 * path allows (for "did you mean …?" on an unknown field) and every secret reference a rules file holds (for
 * `rules check --resolve-secrets`, which tries each). Pure: it reads zod's definitions and the data, nothing else.
 *
 * The walk follows the data where the schema branches: a discriminated union (an ASID's `accessMode`, CIS2's
 * `clientAuth.method`) is read as the option the data selects, and as all its options when the data selects none.
 */
import type { z } from 'zod';
import { type Rules, RulesSchema, secretFields } from './schema.js';

/** The part of a zod definition the walk reads (zod 4's `_zod.def`). */
interface Def {
  type: string;
  innerType?: Node;
  in?: Node;
  getter?: () => Node;
  shape?: Record<string, Node>;
  valueType?: Node;
  element?: Node;
  options?: Node[];
  discriminator?: string;
  values?: unknown[];
}
interface Node {
  _zod: { def: Def };
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'nonoptional', 'readonly', 'catch']);

function nodeOf(schema: z.core.$ZodType): Node {
  return schema as unknown as Node;
}

/** The schema under its wrappers (optional, default, …, the input side of a transform). */
function unwrap(node: Node): Node {
  let n = node;
  for (let i = 0; i < 32; i++) {
    const def = n._zod.def;
    if (WRAPPERS.has(def.type) && def.innerType) n = def.innerType;
    else if (def.type === 'pipe' && def.in) n = def.in;
    else if (def.type === 'lazy' && def.getter) n = def.getter();
    else return n;
  }
  return n;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The schemas `data` may be checked against at this node: a union's options (the ones the data selects, if any). */
function candidates(node: Node, data: unknown): Node[] {
  const n = unwrap(node);
  const def = n._zod.def;
  if (def.type !== 'union' || !def.options) return [n];
  let options = def.options;
  const key = def.discriminator;
  if (key !== undefined && isRecord(data) && key in data) {
    const chosen = options.filter((o) => {
      const field = unwrap(o)._zod.def.shape?.[key];
      return field !== undefined && (unwrap(field)._zod.def.values ?? []).includes(data[key]);
    });
    if (chosen.length > 0) options = chosen;
  }
  return options.flatMap((o) => candidates(o, data));
}

/** The schema of `key` inside `node`: an object's field, a record's values, an array's elements. */
function child(node: Node, key: PropertyKey): Node | undefined {
  const def = node._zod.def;
  if (def.type === 'object') return typeof key === 'string' ? def.shape?.[key] : undefined;
  if (def.type === 'record') return def.valueType;
  if (def.type === 'array') return def.element;
  return undefined;
}

function step(data: unknown, key: PropertyKey): unknown {
  if (Array.isArray(data) && typeof key === 'number') return data[key];
  if (isRecord(data) && typeof key === 'string') return data[key];
  return undefined;
}

/**
 * The fields the schema allows in the object at `path` of the rules data (`data` is the file as parsed, before
 * validation); none when the path is no object of the schema.
 */
export function allowedKeysAt(path: ReadonlyArray<PropertyKey>, data: unknown, root: z.core.$ZodType = RulesSchema) {
  let nodes = candidates(nodeOf(root), data);
  let at = data;
  for (const key of path) {
    at = step(at, key);
    const next = at;
    nodes = nodes.flatMap((n) => {
      const c = child(n, key);
      return c ? candidates(c, next) : [];
    });
  }
  const keys = new Set<string>();
  for (const n of nodes) for (const k of Object.keys(n._zod.def.shape ?? {})) keys.add(k);
  return [...keys];
}

/** One secret reference of a rules file: where it is, and the reference (`env:NAME`, `file:/path`), never a value. */
export interface SecretReference {
  path: Array<string | number>;
  ref: string;
}

const REFERENCE = /^(env:|file:)/;

function isSecretField(node: Node): boolean {
  return secretFields.get(node as unknown as z.core.$ZodType) !== undefined;
}

/**
 * Every secret reference in validated rules, in file order: the fields the schema marks as secrets (`SecretRef`,
 * and `sessions.redis.url` when it is a reference rather than a URL).
 */
export function secretReferences(rules: Rules, root: z.core.$ZodType = RulesSchema): SecretReference[] {
  const found: SecretReference[] = [];
  const walk = (node: Node, data: unknown, path: Array<string | number>) => {
    const options = candidates(node, data);
    if (typeof data === 'string') {
      if (REFERENCE.test(data) && options.some(isSecretField)) found.push({ path, ref: data });
      return;
    }
    const entries: Array<[string | number, unknown]> = Array.isArray(data)
      ? data.map((v, i) => [i, v])
      : isRecord(data)
        ? Object.entries(data)
        : [];
    for (const [key, value] of entries) {
      // The first option that knows the field (a union's options share their common fields).
      const next = options.map((o) => child(o, key)).find((c) => c !== undefined);
      if (next) walk(next, value, [...path, key]);
    }
  };
  walk(nodeOf(root), rules, []);
  return found;
}

/**
 * The edit distance between two names (optimal string alignment: insertions, deletions, substitutions and
 * transpositions of neighbours, each 1).
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

const fold = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');

/**
 * The allowed field an unknown one was most likely meant to be: the same but for case, `-` or `_`
 * (`token_url` → `tokenUrl`), else the nearest within an edit distance of 2 and a third of its length.
 */
export function closestKey(unknown: string, allowed: readonly string[]): string | undefined {
  const same = allowed.find((k) => fold(k) === fold(unknown));
  if (same !== undefined) return same;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of allowed) {
    const distance = editDistance(fold(unknown), fold(k));
    if (distance < bestDistance) {
      best = k;
      bestDistance = distance;
    }
  }
  const limit = Math.min(2, Math.floor(Math.max(unknown.length, 1) / 3));
  return bestDistance <= limit ? best : undefined;
}
