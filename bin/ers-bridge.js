#!/usr/bin/env -S node --max-semi-space-size=8
// ers-bridge's node flags are on the line above (env -S splits them: GNU coreutils 8.30 or later). The Dockerfile's
// ENTRYPOINT gives node the same ones, and the bench reads them from this line to launch ers-bridge as it runs.
// --max-semi-space-size=8 (MiB): V8's young generation, 16 MiB per semi-space by default on 64-bit (32 MiB
// committed), is most of the process's growth under load; 8 halves it for a proxy whose calls are short-lived, for a
// little more scavenge time per call (measured in docs/benchmarks.md). A flag on node's command line wins over the
// same flag in NODE_OPTIONS, so NODE_OPTIONS cannot change this one: run node yourself instead,
// `node --max-semi-space-size=16 bin/ers-bridge.js …` (for the image, override its entrypoint the same way).
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
