#!/usr/bin/env node
// `npm run mutation [-- --mutate src/legacy/errors.ts]`: StrykerJS (stryker.config.mjs, incremental), then the
// per-module scores and thresholds (scripts/mutation-report.mjs) for the modules mutated in this run.
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const stryker = spawnSync(process.execPath, ['node_modules/@stryker-mutator/core/bin/stryker.js', 'run', ...args], {
  stdio: 'inherit',
});
if (stryker.status !== 0) process.exit(stryker.status ?? 1);
const i = args.findIndex((a) => a === '--mutate' || a === '-m');
const only = i >= 0 ? args[i + 1].split(',').map((f) => f.replace(/:.*$/, '')) : [];
const report = spawnSync(process.execPath, ['scripts/mutation-report.mjs', ...only], { stdio: 'inherit' });
process.exit(report.status ?? 1);
