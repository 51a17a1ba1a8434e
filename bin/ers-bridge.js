#!/usr/bin/env node
// The ers-bridge command. Runs the compiled CLI (dist/) when built, else the TypeScript sources through tsx
// (a development install). ERS_BRIDGE_FROM_SOURCE=1 forces the sources (the tests use it, so a stale build never
// stands in for the code under test).
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli/main.js', import.meta.url);
let mod;
if (process.env.ERS_BRIDGE_FROM_SOURCE !== '1' && existsSync(built)) {
  mod = await import(built.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
process.exitCode = await mod.main(process.argv.slice(2));
