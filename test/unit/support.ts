/** Shared helpers for the unit tests: project paths and temp directories (never under /work/shared). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (absolute, no trailing slash). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/+$/, '');

export function projectPath(...parts: string[]): string {
  return join(ROOT, ...parts);
}

/** A fresh temp directory under os.tmpdir(); call the returned cleanup when done. */
export function makeTempDir(prefix = 'ers-bridge-unit-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A small deterministic PRNG (mulberry32) so that generated cases are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
