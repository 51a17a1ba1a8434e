#!/usr/bin/env node
// Reads StrykerJS's JSON reports, one per module (reports/mutation/modules/*.json, kept by scripts/mutation.mjs), prints every mutated module's score, writes the
// table into docs/testing.md between its markers, and exits non-zero when a module is below its threshold
// (Stryker's own thresholds.break is one global number). Run by `npm run mutation` after Stryker.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';

const REPORTS = 'reports/mutation/modules';
const DOC = 'docs/testing.md';
const BEGIN = '<!-- mutation-scores:begin -->';
const END = '<!-- mutation-scores:end -->';
const DEFAULT_THRESHOLD = 85;
const THRESHOLDS = {
  'src/comparison/redact.ts': 95,
  'src/sessions/crypto.ts': 95,
  'src/legacy/errors.ts': 95,
};

// A mutant killed by a test, a timeout or a run-time error counts as detected; survived and no-coverage as not.
// Compile errors (the TypeScript checker) and ignored (Stryker disable) mutants are left out, as Stryker does.
const DETECTED = new Set(['Killed', 'Timeout', 'RuntimeError']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);

if (!existsSync(REPORTS) || readdirSync(REPORTS).length === 0) {
  console.error(`no report in ${REPORTS}: run npm run mutation first`);
  process.exit(2);
}
const files = {};
for (const name of readdirSync(REPORTS).filter((n) => n.endsWith('.json'))) {
  Object.assign(files, JSON.parse(readFileSync(`${REPORTS}/${name}`, 'utf8')).files);
}
const only = process.argv.slice(2);
const rows = [];
for (const [file, { mutants }] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
  if (only.length > 0 && !only.includes(file)) continue;
  let detected = 0;
  let undetected = 0;
  let ignored = 0;
  let refused = 0;
  for (const m of mutants) {
    if (DETECTED.has(m.status)) detected++;
    else if (UNDETECTED.has(m.status)) undetected++;
    else if (m.status === 'Ignored') ignored++;
    else if (m.status === 'CompileError') refused++;
  }
  const total = detected + undetected;
  // A module whose every mutant the type checker refuses has no score (shown as n/a, and not a failure).
  const score = total === 0 ? undefined : (100 * detected) / total;
  const threshold = THRESHOLDS[file] ?? DEFAULT_THRESHOLD;
  rows.push({
    file,
    score,
    threshold,
    detected,
    undetected,
    ignored,
    refused,
    ok: score === undefined || score >= threshold,
  });
}

const lines = [
  '| module | score | threshold | killed | survived | disabled (equivalent) |',
  '|---|---:|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| \`${r.file}\` | ${r.score === undefined ? `n/a (all ${r.refused} refused by the type checker)` : `${r.score.toFixed(1)} %`} | ${r.threshold} % | ${r.detected} | ${r.undetected} | ${r.ignored} |${r.ok ? '' : ' **below**'}`,
  ),
];
console.log(lines.join('\n'));

if (existsSync(DOC)) {
  const doc = readFileSync(DOC, 'utf8');
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start >= 0 && end > start) {
    // A one-module run updates that module's row and keeps the others.
    const kept = new Map();
    for (const line of doc.slice(start + BEGIN.length, end).split('\n')) {
      const m = /^\| `([^`]+)` \|/.exec(line);
      if (m) kept.set(m[1], line);
    }
    for (const [i, r] of rows.entries()) kept.set(r.file, lines[i + 2]);
    const table = [lines[0], lines[1], ...[...kept.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, l]) => l)];
    writeFileSync(DOC, `${doc.slice(0, start + BEGIN.length)}\n${table.join('\n')}\n${doc.slice(end)}`);
  }
}

const below = rows.filter((r) => !r.ok);
if (below.length > 0) {
  console.error(
    `\nbelow threshold: ${below.map((r) => `${r.file} ${r.score.toFixed(1)} % < ${r.threshold} %`).join(', ')}`,
  );
  process.exit(1);
}
