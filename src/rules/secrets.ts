/**
 * Secret references (`env:NAME`, `file:/path`) are resolved only when a secret is needed, never logged, and never
 * echoed: errors name the reference, not the value.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';

export class SecretError extends Error {
  constructor(
    readonly ref: string,
    message: string,
  ) {
    super(message);
    this.name = 'SecretError';
  }
}

export type SecretResolver = (ref: string) => Promise<string>;

/** Resolves references against the process environment and the file system; relative paths against `baseDir`. */
export function secretResolver(env: NodeJS.ProcessEnv = process.env, baseDir = process.cwd()): SecretResolver {
  return async (ref) => {
    if (ref.startsWith('env:')) {
      const name = ref.slice(4);
      const value = env[name];
      if (value === undefined || value === '') {
        throw new SecretError(ref, `secret ${ref}: environment variable ${name} is not set`);
      }
      return value;
    }
    if (ref.startsWith('file:')) {
      const p = ref.slice(5);
      const path = isAbsolute(p) ? p : resolve(baseDir, p);
      try {
        return (await readFile(path, 'utf8')).trim();
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? 'error';
        throw new SecretError(ref, `secret ${ref}: cannot read ${path} (${code})`);
      }
    }
    // Do not echo the value: it may be a secret pasted where a reference belongs.
    throw new SecretError('(not a reference)', 'a secret reference must be env:NAME or file:/path');
  };
}

/** How a secret reference is shown to people: the reference itself, never the value. */
export function maskSecret(value: string): string {
  if (value.length <= 4) return '****';
  return `${value.slice(0, 2)}…(${value.length} chars)`;
}
