/**
 * A full garbage collection on demand, for tests that measure what memory stays held. Vitest's workers run without
 * `--expose-gc`; V8 lets the flag be set at run time, and a new context then has `gc` (a documented V8 flag, set
 * through node:v8's setFlagsFromString). `fullGc()` says whether it could collect; a test that measures should fail
 * rather than read numbers polluted by garbage when it cannot.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | undefined;

function gcFunction(): (() => void) | undefined {
  if (collect) return collect;
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') {
    collect = exposed;
  } else {
    setFlagsFromString('--expose-gc');
    const fromContext = runInNewContext('gc') as unknown;
    if (typeof fromContext === 'function') collect = fromContext as () => void;
  }
  return collect;
}

/** Runs full collections until the heap stops shrinking (weak references and finalizers need more than one). */
export function fullGc(): boolean {
  const gc = gcFunction();
  if (!gc) return false;
  let last = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 6; i++) {
    gc();
    const used = process.memoryUsage().heapUsed;
    if (used >= last - 64 * 1024) break;
    last = used;
  }
  return true;
}
