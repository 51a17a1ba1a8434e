/**
 * bin/ers-bridge.js run as an executable (the kernel reads its shebang, `#!/usr/bin/env -S NAME=value … node <flags>`):
 * it starts, its environment reaches the process and its node flags reach V8. A preload (through NODE_OPTIONS, which leaves the command line's flags as they are)
 * reports what the ers-bridge process got: node's execArgv, its MALLOC_ARENA_MAX, and V8's heap size limit, which
 * includes the young generation (3 semi-spaces), compared with the same node run with the flags and with another.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { productLaunch } from '../../bench/lib/targets.js';
import { keepForScan } from '../helpers/harness.js';

const BIN = fileURLToPath(new URL('../../bin/ers-bridge.js', import.meta.url));
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
// The shebang's flags (test/unit/launch-flags.test.ts pins what they are; here, that the process gets them).
const FLAGS = productLaunch(fileURLToPath(new URL('../../', import.meta.url))).nodeFlags;

interface Seen {
  execPath: string;
  execArgv: string[];
  heapSizeLimit: number;
  mallocArenaMax: string | null;
}

describe('bin/ers-bridge.js as an executable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ers-bridge-launch-'));
  const preload = join(dir, 'report-launch.cjs');
  writeFileSync(
    preload,
    "process.stderr.write('LAUNCH ' + JSON.stringify({ execPath: process.execPath, execArgv: process.execArgv, " +
      "heapSizeLimit: require('v8').getHeapStatistics().heap_size_limit, " +
      "mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? null }) + '\\n');\n",
  );
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const seen = (stderr: string): Seen => {
    const line = stderr.split('\n').find((l) => l.startsWith('LAUNCH '));
    if (!line) throw new Error(`the preload did not report:\n${stderr}`);
    return JSON.parse(line.slice('LAUNCH '.length)) as Seen;
  };

  it('runs through its shebang: V8 gets the young-generation bound, glibc the malloc arenas', async () => {
    const { stdout, stderr } = await promisify(execFile)(BIN, ['--version'], {
      // A caller's own MALLOC_ARENA_MAX does not stay: env sets the shebang's over it.
      env: {
        ...process.env,
        MALLOC_ARENA_MAX: '8',
        ERS_BRIDGE_FROM_SOURCE: '1',
        NODE_OPTIONS: `--require "${preload}"`,
      },
      timeout: 15_000,
    });
    keepForScan(`${stdout}${stderr}`); // what the ers-bridge process wrote, for the suite-wide log scan
    expect(stdout.trim()).toBe(VERSION);
    const product = seen(stderr);
    expect(product.execArgv).toEqual(FLAGS);
    expect(product.mallocArenaMax).toBe('2');
    // The same node binary (the one env found on PATH), with the flags and without.
    const reference = (flags: string[]) =>
      seen(
        spawnSync(product.execPath, [...flags, '--require', preload, '-e', ''], {
          encoding: 'utf8',
          env: { ...process.env, NODE_OPTIONS: '' },
          timeout: 15_000,
        }).stderr,
      );
    // V8 got the flag: the heap limit (which counts 3 semi-spaces) is that of the same node given it, and not that of
    // node given another young generation.
    expect(product.heapSizeLimit).toBe(reference(FLAGS).heapSizeLimit);
    expect(product.heapSizeLimit).not.toBe(reference([]).heapSizeLimit);
  });
});
