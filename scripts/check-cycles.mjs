#!/usr/bin/env node
// Fails when the TypeScript modules under a folder import each other in a cycle — type-only imports, re-exports and
// `import('…')` type references included, since each is a dependency a reader has to follow. Part of `npm run lint`.
// usage: node scripts/check-cycles.mjs [folder]   (default: src)
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? 'src');

function sources(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.m?tsx?$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

// Relative specifiers in `import … from`, `export … from`, side-effect imports and `import('…')`.
const SPECIFIERS = [
  /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]/g,
  /\bimport\s*['"](\.{1,2}\/[^'"]+)['"]/g,
  /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g,
];

function target(from, specifier) {
  const base = resolve(dirname(from), specifier).replace(/\.(m?js|tsx?)$/, '');
  return ['.ts', '.mts', '.tsx', '/index.ts'].map((ext) => base + ext).find((p) => existsSync(p));
}

const files = sources(root);
const graph = new Map(
  files.map((file) => {
    const text = readFileSync(file, 'utf8');
    const deps = new Set();
    for (const re of SPECIFIERS) {
      for (const m of text.matchAll(re)) {
        const t = target(file, m[1]);
        if (t) deps.add(t);
      }
    }
    return [file, [...deps].sort()];
  }),
);

// Depth-first search; a back edge to a module still on the path closes a cycle.
const state = new Map(); // undefined: unseen, 1: on the path, 2: done
const path = [];
const cycles = new Set();
function visit(file) {
  state.set(file, 1);
  path.push(file);
  for (const dep of graph.get(file) ?? []) {
    if (state.get(dep) === 1) {
      const loop = path.slice(path.indexOf(dep)).map((f) => relative(root, f));
      // The same cycle found from another starting point is reported once.
      const start = loop.indexOf([...loop].sort()[0]);
      cycles.add([...loop.slice(start), ...loop.slice(0, start)].join(' → '));
    } else if (!state.has(dep)) visit(dep);
  }
  path.pop();
  state.set(file, 2);
}
for (const file of files) if (!state.has(file)) visit(file);

for (const c of cycles) console.error(`import cycle: ${c} → ${c.split(' → ')[0]}`);
console.log(`${files.length} modules under ${relative(process.cwd(), root) || '.'}: ${cycles.size} import cycle(s)`);
process.exit(cycles.size > 0 ? 1 : 0);
