/**
 * `ers-bridge rules check`: every problem of each rules file at once, one RulesError (one line) each — all YAML
 * errors, else every schema issue, else every trust problem; with `resolveSecrets`, every secret reference that
 * cannot be resolved, then (once all resolve) what building the runtime refuses (keys that do not import, a weak
 * admin token, …). `serve` and reloads still stop at the first problem (parseRules).
 */
import { formatPath, RulesError, validateRulesFile } from '../rules/load.js';
import type { Rules } from '../rules/schema.js';
import { secretReferences } from '../rules/schema-walk.js';
import { SecretError, type SecretResolver, secretResolver } from '../rules/secrets.js';
import { buildRuntime, closeRuntime } from '../runtime/runtime.js';

export interface RulesCheckOptions {
  resolveSecrets?: boolean;
  /** Default: the process environment and the working directory, as `serve` resolves them. */
  resolveSecret?: SecretResolver;
}

/** The problems of one rules file; none means it is good. */
export async function rulesFileProblems(file: string, options: RulesCheckOptions = {}): Promise<RulesError[]> {
  const { rules, errors } = await validateRulesFile(file);
  if (!rules) return errors;
  if (!options.resolveSecrets) return [];
  return secretProblems(file, rules, options.resolveSecret ?? secretResolver());
}

/** Tries every secret reference of the rules; when all resolve, builds (and closes) the runtime as `serve` would. */
async function secretProblems(file: string, rules: Rules, resolve: SecretResolver): Promise<RulesError[]> {
  const problems: RulesError[] = [];
  for (const { path, ref } of secretReferences(rules)) {
    try {
      await resolve(ref);
    } catch (e) {
      if (!(e instanceof SecretError)) throw e;
      problems.push(new RulesError(file, formatPath(path), e.message));
    }
  }
  if (problems.length > 0) return problems;
  try {
    const rt = await buildRuntime(file, rules, { resolveSecret: resolve, env: {} });
    await closeRuntime(rt);
  } catch (e) {
    if (e instanceof RulesError) return [e];
    throw e;
  }
  return [];
}
