#!/usr/bin/env node
// `npm run mutation [-- --mutate src/legacy/errors.ts[,src/x.ts]] [other Stryker flags]`: StrykerJS
// (stryker.config.mjs), one module at a time against the unit tests that import it (scripts/mutation-tests.mjs), each
// with its own incremental file; then the per-module scores and thresholds (scripts/mutation-report.mjs).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import config from '../stryker.config.mjs';
import { testsFor } from './mutation-tests.mjs';

/** `src/apim/wrappers/*.ts` → the files it names (the only glob form the config uses). */
function expand(pattern) {
  if (!pattern.includes('*')) return [pattern];
  const dir = dirname(pattern);
  const suffix = basename(pattern).replace('*', '');
  return readdirSync(dir)
    .filter((f) => f.endsWith(suffix))
    .map((f) => join(dir, f))
    .sort();
}

const args = process.argv.slice(2);
const i = args.findIndex((a) => a === '--mutate' || a === '-m');
const modules = i >= 0 ? args[i + 1].split(',').flatMap(expand) : config.mutate.flatMap(expand);
const passed = i >= 0 ? [...args.slice(0, i), ...args.slice(i + 2)] : args;

mkdirSync('reports/mutation/modules', { recursive: true });
mkdirSync('reports/incremental', { recursive: true });
for (const [n, module] of modules.entries()) {
  const slug = module
    .replace(/^src\//, '')
    .replace(/\.ts$/, '')
    .replaceAll('/', '__');
  const tests = testsFor(module);
  console.log(`\n[mutation ${n + 1}/${modules.length}] ${module} against ${tests.length} test file(s)`);
  if (tests.length === 0) {
    console.error(`no unit test under test/unit imports ${module}: nothing can kill its mutants`);
    process.exit(1);
  }
  rmSync('reports/mutation/mutation.json', { force: true });
  const stryker = spawnSync(
    process.execPath,
    [
      'node_modules/@stryker-mutator/core/bin/stryker.js',
      'run',
      '--mutate',
      module,
      '--incrementalFile',
      `reports/incremental/${slug}.json`,
      ...passed,
    ],
    { stdio: 'inherit', env: { ...process.env, ERS_MUTATION_TESTS: tests.join(',') } },
  );
  if (stryker.status !== 0) process.exit(stryker.status ?? 1);
  if (!existsSync('reports/mutation/mutation.json')) {
    console.error(`Stryker wrote no reports/mutation/mutation.json for ${module}`);
    process.exit(1);
  }
  copyFileSync('reports/mutation/mutation.json', `reports/mutation/modules/${slug}.json`);
}
const report = spawnSync(process.execPath, ['scripts/mutation-report.mjs', ...modules], { stdio: 'inherit' });
process.exit(report.status ?? 1);
