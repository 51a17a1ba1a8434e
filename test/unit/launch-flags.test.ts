/**
 * How ers-bridge runs (MALLOC_ARENA_MAX=2, --max-semi-space-size=8 and --no-allocation-site-pretenuring: see bin/ers-bridge.js) is written once, in the
 * shebang of bin/ers-bridge.js, and repeated wherever node is named instead: the Dockerfile's ENV and ENTRYPOINT and
 * `npm start`. The bench reads it from the shebang. That the executable really runs with them is test/integration/launch-flags.test.ts.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { productLaunch } from '../../bench/lib/targets.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** The environment and the flags of `#!/usr/bin/env -S NAME=value … node <flags>`. */
function shebang(): { env: string[]; flags: string[] } {
  const first = read('bin/ers-bridge.js').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env -S((?: [A-Z_]+=\S+)*) node((?: --[a-z0-9-]+(?:=\S+)?)+)$/.exec(first);
  if (!m) throw new Error(`bin/ers-bridge.js: not a "#!/usr/bin/env -S NAME=value … node <flags>" line: ${first}`);
  return { env: m[1]!.trim().split(' ').filter(Boolean), flags: m[2]!.trim().split(' ') };
}
const shebangFlags = () => shebang().flags;

/** The node flags of the Dockerfile's ENTRYPOINT (exec form): between "node" and "bin/ers-bridge.js". */
function entrypointFlags(): string[] {
  const lines = read('Dockerfile')
    .split('\n')
    .filter((l) => l.startsWith('ENTRYPOINT'));
  expect(lines).toHaveLength(1);
  const argv = JSON.parse(lines[0]!.slice('ENTRYPOINT'.length)) as string[];
  expect(argv[0]).toBe('node');
  expect(argv.at(-1)).toBe('bin/ers-bridge.js');
  return argv.slice(1, -1);
}

describe("ers-bridge's node flags", () => {
  it('the shebang sets the young generation (8 MiB semi-spaces), no allocation-site pretenuring and two malloc arenas', () => {
    expect(shebangFlags()).toEqual(['--max-semi-space-size=8', '--no-allocation-site-pretenuring']);
    expect(shebang().env).toEqual(['MALLOC_ARENA_MAX=2']);
  });

  it("the Dockerfile's ENTRYPOINT gives node the shebang's flags, and its ENV the shebang's environment", () => {
    expect(entrypointFlags()).toEqual(shebangFlags());
    const envLines = read('Dockerfile')
      .split('\n')
      .filter((l) => /^ENV MALLOC_/.test(l))
      .map((l) => l.slice('ENV '.length));
    expect(envLines).toEqual(shebang().env);
  });

  it("`npm start` (the demo) gives node the shebang's environment and flags", () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts['start']!;
    const m = /^((?:[A-Z_]+=\S+ )*)node (.*) bin\/ers-bridge\.js demo$/.exec(start);
    expect(m, start).not.toBeNull();
    expect(m![1]!.trim().split(' ')).toEqual(shebang().env);
    expect(m![2]!.split(' ')).toEqual(shebangFlags());
  });

  it('the bench launches ers-bridge the same way (productLaunch reads the shebang)', () => {
    const launch = productLaunch(ROOT);
    expect(launch.nodeFlags).toEqual(shebangFlags());
    expect(Object.entries(launch.env).map(([k, v]) => `${k}=${v}`)).toEqual(shebang().env);
  });

  it('bin/ers-bridge.js is executable, so the kernel runs it through its shebang', () => {
    expect(statSync(join(ROOT, 'bin', 'ers-bridge.js')).mode & 0o111).not.toBe(0);
  });
});
