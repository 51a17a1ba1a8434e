#!/usr/bin/env node
// `npm run mutation [-- --mutate src/legacy/errors.ts[,src/x.ts]] [other Stryker flags]`: StrykerJS
// (stryker.config.mjs), one module at a time against the unit tests that import it (scripts/mutation-tests.mjs), each
// with its own incremental file; then the per-module scores and thresholds (scripts/mutation-report.mjs).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** A digest of a module's tests (their paths and contents): when it changes, the static mutants are tested again. */
function testsDigest(tests) {
  const hash = createHash('sha256');
  for (const t of tests) hash.update(`${t}\0${readFileSync(t, 'utf8')}\0`);
  return hash.digest('hex');
}

/**
 * Stryker 9.6's incremental mode keeps a static mutant's last result even when tests were added or changed (it cannot
 * tell which tests reach one), so a survivor stays a survivor. When the module's tests changed since the last run,
 * its static mutants are dropped from the incremental file, and Stryker tests them again.
 */
function forgetStaticResults(incrementalFile, digestFile, digest) {
  if (!existsSync(incrementalFile)) return;
  if (existsSync(digestFile) && readFileSync(digestFile, 'utf8') === digest) return;
  const report = JSON.parse(readFileSync(incrementalFile, 'utf8'));
  let dropped = 0;
  for (const file of Object.values(report.files ?? {})) {
    const before = file.mutants.length;
    file.mutants = file.mutants.filter((m) => m.static !== true);
    dropped += before - file.mutants.length;
  }
  writeFileSync(incrementalFile, JSON.stringify(report));
  if (dropped > 0) console.log(`tests changed since the last run: ${dropped} static mutant(s) will be tested again`);
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
  const incrementalFile = `reports/incremental/${slug}.json`;
  const digestFile = `reports/incremental/${slug}.tests.sha256`;
  const digest = testsDigest(tests);
  forgetStaticResults(incrementalFile, digestFile, digest);
  rmSync('reports/mutation/mutation.json', { force: true });
  const stryker = spawnSync(
    process.execPath,
    [
      'node_modules/@stryker-mutator/core/bin/stryker.js',
      'run',
      '--mutate',
      module,
      '--incrementalFile',
      incrementalFile,
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
  writeFileSync(digestFile, digest);
}
const report = spawnSync(process.execPath, ['scripts/mutation-report.mjs', ...modules], { stdio: 'inherit' });
process.exit(report.status ?? 1);
