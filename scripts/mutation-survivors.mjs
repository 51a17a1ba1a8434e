#!/usr/bin/env node
// `node scripts/mutation-survivors.mjs [src/x.ts ...]`: the mutants no test noticed in the last `npm run mutation`
// (reports/mutation/modules/*.json), one line each: file:line:column, mutator, the original code and what replaced it.
import { readdirSync, readFileSync } from 'node:fs';

const REPORTS = 'reports/mutation/modules';
const only = process.argv.slice(2);
for (const name of readdirSync(REPORTS).filter((n) => n.endsWith('.json'))) {
  for (const [file, { source, mutants }] of Object.entries(
    JSON.parse(readFileSync(`${REPORTS}/${name}`, 'utf8')).files,
  )) {
    if (only.length > 0 && !only.includes(file)) continue;
    const lines = source.split('\n');
    for (const m of mutants) {
      if (m.status !== 'Survived' && m.status !== 'NoCoverage') continue;
      const { start, end } = m.location;
      const original =
        start.line === end.line
          ? lines[start.line - 1].slice(start.column - 1, end.column - 1)
          : `${lines[start.line - 1].slice(start.column - 1)} …`;
      const cut = (s) => (s.length > 120 ? `${s.slice(0, 117)}...` : s).replaceAll('\n', ' ');
      console.log(
        `${file}:${start.line}:${start.column} ${m.mutatorName}${m.status === 'NoCoverage' ? ' (no coverage)' : ''}: ${cut(original)}  →  ${cut(m.replacement ?? '')}`,
      );
    }
  }
}
