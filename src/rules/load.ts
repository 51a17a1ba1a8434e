/**
 * Loading and validating rules files. Every error names the file, the path inside it and what was expected, in one
 * line, so that `ers-bridge rules check` and a failed reload say exactly what to fix.
 */
import { readFile } from 'node:fs/promises';
import { type Document, isMap, isScalar, isSeq, LineCounter, parseDocument, type YAMLError } from 'yaml';
import type { z } from 'zod';
import { type Rules, RulesSchema } from './schema.js';
import { allowedKeysAt, closestKey } from './schema-walk.js';
import { trustProblems } from './trust.js';

export class RulesError extends Error {
  constructor(
    readonly file: string,
    readonly fieldPath: string,
    readonly expected: string,
  ) {
    super(`${file}: ${fieldPath || '(top level)'}: ${expected}`);
    this.name = 'RulesError';
  }
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path
    .map((p, i) => {
      const s = String(p);
      if (typeof p === 'number') return `[${s}]`;
      const safe = /^[A-Za-z_$][\w$]*$/.test(s) ? s : JSON.stringify(s);
      return i === 0 ? safe : `.${safe}`;
    })
    .join('');
}

/** `"tokenURL" (did you mean "tokenUrl"?)`, or just `"colour"` when no allowed field is near. */
function unknownKey(key: string, allowed: readonly string[]): string {
  const near = closestKey(key, allowed);
  return near === undefined ? JSON.stringify(key) : `${JSON.stringify(key)} (did you mean ${JSON.stringify(near)}?)`;
}

/** One zod issue as "expected …" text; `data` (the file as parsed) lets an unknown field name the one meant. */
function describeIssue(issue: z.core.$ZodIssue, data: unknown): string {
  // A bad record key (e.g. an ASID that is not digits) carries the real issue inside it.
  if (issue.code === 'invalid_key' && issue.issues.length > 0) return describeIssue(issue.issues[0]!, data);
  if (issue.code === 'unrecognized_keys') {
    const allowed = allowedKeysAt(issue.path, data);
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => unknownKey(k, allowed)).join(', ')}: expected only the fields the schema defines (see schema/rules.schema.json)`;
  }
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) {
    return `missing: expected ${issue.expected}`;
  }
  // zod's own texts read "Invalid input: expected number, received string"; keep the part that says what to do.
  const message = issue.message.replace(/^Invalid (input|option|value)?:?\s*/i, '');
  return message.startsWith('expected') ? message : `expected ${message}`;
}

/** Every problem with serving these rules on `listenHost` (see trust.ts), one RulesError each. */
export function trustErrors(rules: Rules, file: string, listenHost: string = rules.server.host): RulesError[] {
  return trustProblems(rules, listenHost).map((p) => new RulesError(file, formatPath(p.path), p.message));
}

/** Refuses rules that may not be served on `listenHost` (see trust.ts), naming the first problem. */
export function checkTrust(rules: Rules, file: string, listenHost: string = rules.server.host): void {
  const [problem] = trustErrors(rules, file, listenHost);
  if (problem) throw problem;
}

/** A place in the text as people count it: `line 3, column 5`. */
function at(pos: { line: number; col: number } | undefined): string {
  return pos ? `line ${pos.line}, column ${pos.col}` : '';
}

/**
 * The keys given twice in one mapping, by the offset of the second: its path in the file and where the first is.
 * (The parser's DUPLICATE_KEY error gives only the offset of the second.)
 */
function duplicateKeys(doc: Document, lines: LineCounter): Map<number, { path: string; first: string }> {
  const found = new Map<number, { path: string; first: string }>();
  const walk = (node: unknown, path: Array<string | number>) => {
    if (isMap(node)) {
      const seen = new Map<unknown, number>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        const start = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
        const keyPath = [...path, String(key)];
        const earlier = seen.get(key);
        if (start !== undefined && earlier !== undefined) {
          found.set(start, { path: formatPath(keyPath), first: at(lines.linePos(earlier)) });
        } else if (start !== undefined && isScalar(pair.key)) seen.set(key, start);
        walk(pair.value, keyPath);
      }
    } else if (isSeq(node)) {
      for (const [i, item] of node.items.entries()) walk(item, [...path, i]);
    }
  };
  walk(doc.contents, []);
  return found;
}

function yamlError(file: string, err: YAMLError, duplicates: Map<number, { path: string; first: string }>): RulesError {
  const where = at(err.linePos?.[0]);
  const duplicate = err.code === 'DUPLICATE_KEY' ? duplicates.get(err.pos[0]) : undefined;
  if (duplicate) {
    return new RulesError(
      file,
      where,
      `expected valid YAML (DUPLICATE_KEY): ${duplicate.path} is given twice, at ${duplicate.first} and at ${where}; keep one`,
    );
  }
  return new RulesError(file, where, `expected valid YAML (${err.code})`);
}

/** What validating rules text found: the rules when it found nothing wrong. */
export interface RulesValidation {
  rules?: Rules;
  /** Every problem, in file order as far as each check can tell; empty when `rules` is set. */
  errors: RulesError[];
}

/**
 * Parses and validates rules text, collecting every problem it can: all YAML errors (a file that is not valid YAML
 * is checked no further), else every schema issue, else every trust problem for the rules' own listen address (the
 * trust checks need rules that pass the schema). One RulesError per problem, each one line.
 */
export function validateRules(text: string, file: string): RulesValidation {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    const duplicates = duplicateKeys(doc, lines);
    return { errors: unique(doc.errors.map((e) => yamlError(file, e, duplicates))) };
  }
  const data: unknown = doc.toJS();
  const parsed = RulesSchema.safeParse(data);
  if (!parsed.success) {
    const errors = parsed.error.issues.map((i) => new RulesError(file, formatPath(i.path), describeIssue(i, data)));
    return { errors: unique(errors) };
  }
  const errors = trustErrors(parsed.data, file);
  return errors.length > 0 ? { errors } : { rules: parsed.data, errors: [] };
}

function unique(errors: RulesError[]): RulesError[] {
  const seen = new Set<string>();
  return errors.filter((e) => !seen.has(e.message) && seen.add(e.message));
}

/** Parses and validates rules text. Throws RulesError on the first problem (validateRules lists them all). */
export function parseRules(text: string, file: string): Rules {
  const { rules, errors } = validateRules(text, file);
  if (errors.length > 0 || !rules) throw errors[0]!;
  return rules;
}

async function readRulesText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new RulesError(file, '', `expected a readable rules file (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

export async function loadRulesFile(file: string): Promise<Rules> {
  return parseRules(await readRulesText(file), file);
}

/** Reads and validates a rules file, collecting every problem (validateRules); an unreadable file is one problem. */
export async function validateRulesFile(file: string): Promise<RulesValidation> {
  let text: string;
  try {
    text = await readRulesText(file);
  } catch (e) {
    if (e instanceof RulesError) return { errors: [e] };
    throw e;
  }
  return validateRules(text, file);
}
