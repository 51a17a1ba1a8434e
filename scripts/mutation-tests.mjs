// Which unit tests pin a module, for `npm run mutation`: the test files under test/unit that import it, directly or
// through a test helper (a non-test file under test/unit that imports it). Each module is mutated against these
// alone, so a mutant is run only against the tests written for that code (a static mutant, one in a module-level
// constant, runs every test chosen for its module: all of test/unit would take hours).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const IMPORT = /\b(?:from|import)\s*\(?\s*'([^']+)'/g;

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The project files a test file imports, as paths from the project root (`src/x/y.ts`). */
function importsOf(file, root) {
  const out = new Set();
  for (const [, spec] of readFileSync(file, 'utf8').matchAll(IMPORT)) {
    if (!spec.startsWith('.')) continue;
    out.add(relative(root, resolve(dirname(file), spec)).replace(/\.js$/, '.ts'));
  }
  return out;
}

/** The test files (`test/unit/**\/*.test.ts`) that reach `module` (`src/...ts`) directly or through helpers. */
export function testsFor(module, root = process.cwd()) {
  const files = walk(join(root, 'test/unit')).map((f) => relative(root, f));
  const imports = new Map(files.map((f) => [f, importsOf(join(root, f), root)]));
  const reaching = new Set([module]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [f, deps] of imports) {
      if (reaching.has(f) || f.endsWith('.test.ts')) continue;
      if ([...deps].some((d) => reaching.has(d))) {
        reaching.add(f);
        grew = true;
      }
    }
  }
  return files.filter((f) => f.endsWith('.test.ts') && [...imports.get(f)].some((d) => reaching.has(d))).sort();
}
