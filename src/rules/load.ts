/**
 * Loading and validating rules files. Every error names the file, the path inside it and what was expected, in one
 * line, so that `ers-bridge rules check` and a failed reload say exactly what to fix.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { type Rules, RulesSchema } from './schema.js';
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

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path
    .map((p, i) => {
      const s = String(p);
      if (typeof p === 'number') return `[${s}]`;
      const safe = /^[A-Za-z_$][\w$]*$/.test(s) ? s : JSON.stringify(s);
      return i === 0 ? safe : `.${safe}`;
    })
    .join('');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  // A bad record key (e.g. an ASID that is not digits) carries the real issue inside it.
  if (issue.code === 'invalid_key' && issue.issues.length > 0) return describeIssue(issue.issues[0]!);
  if (issue.code === 'unrecognized_keys') {
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}: expected only the fields the schema defines (see schema/rules.schema.json)`;
  }
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) {
    return `missing: expected ${issue.expected}`;
  }
  // zod's own texts read "Invalid input: expected number, received string"; keep the part that says what to do.
  const message = issue.message.replace(/^Invalid (input|option|value)?:?\s*/i, '');
  return message.startsWith('expected') ? message : `expected ${message}`;
}

/** Refuses rules that may not be served on `listenHost` (see trust.ts), naming the first problem. */
export function checkTrust(rules: Rules, file: string, listenHost: string = rules.server.host): void {
  const [problem] = trustProblems(rules, listenHost);
  if (problem) throw new RulesError(file, formatPath(problem.path), problem.message);
}

/** Parses and validates rules text. Throws RulesError on the first problem. */
export function parseRules(text: string, file: string): Rules {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    const line = err.linePos?.[0];
    throw new RulesError(
      file,
      line ? `line ${line.line}, column ${line.col}` : '',
      `expected valid YAML (${err.code})`,
    );
  }
  const data: unknown = doc.toJS();
  const parsed = RulesSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RulesError(file, formatPath(issue.path), describeIssue(issue));
  }
  checkTrust(parsed.data, file);
  return parsed.data;
}

export async function loadRulesFile(file: string): Promise<Rules> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new RulesError(file, '', `expected a readable rules file (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parseRules(text, file);
}
