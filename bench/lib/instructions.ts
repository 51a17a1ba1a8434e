/**
 * The cost of one call in machine instructions, counted by valgrind's callgrind: unlike CPU time it does not depend
 * on what else the machine (or the host under a VM) is doing. It still varies between runs by up to 25% (when V8's
 * compiler and garbage collector run is not fixed), so it is a cross-check on the CPU µs/req column, not a replacement: it also
 * leaves out the kernel (the socket writes) and how fast each instruction runs (cache misses), and under valgrind
 * every process is about 50× slower, so more calls are in flight per wake-up than at the same connections natively.
 *
 * The server runs under `valgrind --tool=callgrind --instr-atstart=no` (near native speed until instrumentation is
 * switched on); after a warm-up, `callgrind_control` switches it on, zeroes the counters, the bench sends exactly
 * `requests` calls, and a dump gives the instructions of all the server's threads for those calls.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import autocannon from 'autocannon';
import type { Wrapper } from './targets.js';

/** valgrind's version, or undefined when it is not installed (the part is then skipped). */
export function valgrindVersion(): string | undefined {
  try {
    return execFileSync('valgrind', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

/** Runs node under callgrind, collecting nothing until `countPerCall` switches instrumentation on. */
export function callgrindWrapper(outFile: string): Wrapper {
  return {
    command: ['valgrind', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${outFile}`, '--dump-line=no'],
    // node and tsx start several times slower under valgrind
    readyTimeoutMs: 240_000,
  };
}

/** Exactly `amount` calls at `connections`; what came back. */
function send(
  url: string,
  headers: Record<string, string>,
  connections: number,
  amount: number,
): Promise<{ requests: number; non2xx: number; errors: number }> {
  return new Promise((resolve, reject) => {
    autocannon({ url, headers, connections, amount, pipelining: 1, timeout: 60 }, (err, result) =>
      err ? reject(err) : resolve({ requests: result.requests.total, non2xx: result.non2xx, errors: result.errors }),
    );
  });
}

function control(pid: number, ...args: string[]): void {
  execFileSync('callgrind_control', [...args, String(pid)], { stdio: 'ignore', timeout: 60_000 });
}

/** The `summary:` (instructions) of the newest dump written to `outFile`.<n>. */
function lastDumpInstructions(outFile: string): number {
  const dir = dirname(outFile);
  const stem = basename(outFile);
  const dumps = readdirSync(dir)
    .filter((f) => f.startsWith(`${stem}.`) && /^\d+$/.test(f.slice(stem.length + 1)))
    .sort((a, b) => Number(a.slice(stem.length + 1)) - Number(b.slice(stem.length + 1)));
  const last = dumps.at(-1);
  if (!last) throw new Error(`callgrind wrote no dump beside ${outFile}`);
  const m = /^summary:\s+(\d+)/m.exec(readFileSync(join(dir, last), 'utf8'));
  if (!m) throw new Error(`callgrind dump ${last}: no summary line`);
  return Number(m[1]);
}

export interface InstructionCount {
  /** Instructions (all the server's threads, user space) per call answered. */
  perCall: number;
  requests: number;
  non2xx: number;
  errors: number;
}

/**
 * Warm-up (uninstrumented, so the JIT settles at near native speed), then a short instrumented warm-up (valgrind
 * translates the code again once instrumentation is on), then the counted calls.
 */
export async function countPerCall(o: {
  pid: number;
  outFile: string;
  url: string;
  headers: Record<string, string>;
  connections: number;
  warmup: number;
  requests: number;
}): Promise<InstructionCount> {
  await send(o.url, o.headers, o.connections, o.warmup);
  control(o.pid, '--instr=on');
  await send(o.url, o.headers, o.connections, Math.max(50, Math.round(o.requests / 10)));
  control(o.pid, '--zero');
  const sent = await send(o.url, o.headers, o.connections, o.requests);
  control(o.pid, '--dump');
  const instructions = lastDumpInstructions(o.outFile);
  return { ...sent, perCall: sent.requests > 0 ? instructions / sent.requests : Number.NaN };
}
