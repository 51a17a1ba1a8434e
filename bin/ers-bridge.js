#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=8 --no-allocation-site-pretenuring
// How ers-bridge runs is on the line above (env -S splits it: GNU coreutils 8.30 or later). The Dockerfile's ENV and
// ENTRYPOINT and `npm start` say the same, and the bench reads this line to launch ers-bridge as it runs.
// --max-semi-space-size=8 (MiB): V8's young generation, 16 MiB per semi-space by default on 64-bit (32 MiB
// committed), is most of the process's growth under load; 8 halves it for a proxy whose calls are short-lived, for
// more frequent scavenges (with 16, 100,000 sessions measured 145.0–152.3 MB over four runs, at the 150 MB bound or
// over it, and with pretenuring off it saved no CPU measurable: issue 15).
// --no-allocation-site-pretenuring: V8 otherwise decides, per object literal in the code, to allocate its objects
// straight in the old generation once 85% of one sample of them survived a scavenge. Under load at start-up (a cold
// JIT, small semi-spaces, 50 calls in flight) some per-call literal qualified in 10 of 17 probed processes, for the
// process's whole life; every young object it pointed to then outlived the scavenges until the next full GC, and
// ≈ 2.9 kB a call (each request's IncomingMessage, ServerResponse, fastify Request and Reply) was promoted instead
// of ≈ 145 B, for ≈ 10% more CPU a call (issue 15). Without pretenuring, 8 of 8 were the cheap kind.
// MALLOC_ARENA_MAX=2: glibc gives each thread that allocates (V8's garbage-collection helpers, libuv's pool) a malloc
// arena of its own, up to 8 a core; two in all kept ≈ 6 MiB less RSS under load (issue 15).
// A flag on node's command line wins over the same flag in NODE_OPTIONS, and env sets MALLOC_ARENA_MAX over the
// caller's: to change either, run node yourself, e.g. `node --max-semi-space-size=16 bin/ers-bridge.js …` (for the
// image, override its entrypoint the same way).
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
