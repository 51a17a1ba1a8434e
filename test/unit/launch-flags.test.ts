/**
 * ers-bridge's node flags (--max-semi-space-size=8: see bin/ers-bridge.js) are written once, in the shebang of
 * bin/ers-bridge.js, and repeated wherever node is named instead: the Dockerfile's ENTRYPOINT and `npm start`. The
 * bench reads them from the shebang. That the executable really runs with them is test/integration/launch-flags.test.ts.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { productNodeFlags } from '../../bench/lib/targets.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** The flags after `node` in `#!/usr/bin/env -S node <flags>`. */
function shebangFlags(): string[] {
  const first = read('bin/ers-bridge.js').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env -S node((?: --[a-z0-9-]+(?:=\S+)?)+)$/.exec(first);
  if (!m) throw new Error(`bin/ers-bridge.js: not a "#!/usr/bin/env -S node <flags>" line: ${first}`);
  return m[1]!.trim().split(' ');
}

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
  it('the shebang bounds the young generation: --max-semi-space-size=8', () => {
    expect(shebangFlags()).toEqual(['--max-semi-space-size=8']);
  });

  it("the Dockerfile's ENTRYPOINT gives node the shebang's flags", () => {
    expect(entrypointFlags()).toEqual(shebangFlags());
  });

  it("`npm start` (the demo) gives node the shebang's flags", () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts['start']!;
    const m = /^node (.*) bin\/ers-bridge\.js demo$/.exec(start);
    expect(m, start).not.toBeNull();
    expect(m![1]!.split(' ')).toEqual(shebangFlags());
  });

  it('the bench launches ers-bridge with the same flags (productNodeFlags reads the shebang)', () => {
    expect(productNodeFlags(ROOT)).toEqual(shebangFlags());
  });

  it('bin/ers-bridge.js is executable, so the kernel runs it through its shebang', () => {
    expect(statSync(join(ROOT, 'bin', 'ers-bridge.js')).mode & 0o111).not.toBe(0);
  });
});
