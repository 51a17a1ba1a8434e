/**
 * Child processes of the benchmark: every one is registered when spawned and stopped (SIGTERM, then SIGKILL) by
 * `stopAll`, which the runner calls in a `finally` and on SIGINT/SIGTERM — nothing outlives `npm run bench`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  /** stdout + stderr captured so far (stdout only when it is not sent to a file). */
  output(): string;
  stop(graceMs?: number): Promise<void>;
  exited(): boolean;
}

const running = new Set<Proc>();

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** Send stdout to this file instead of a pipe (ers-bridge's pino log lines: a pipe would make it wait on us). */
  stdoutFile?: string;
  cwd?: string;
}

export function spawnProc(name: string, command: string, args: string[], options: SpawnOptions = {}): Proc {
  const fd = options.stdoutFile ? openSync(options.stdoutFile, 'a') : undefined;
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ['ignore', fd ?? 'pipe', 'pipe'],
  });
  if (fd !== undefined) closeSync(fd);
  let text = '';
  const keep = (d: Buffer) => {
    text += d.toString('utf8');
    if (text.length > 200_000) text = text.slice(-100_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const proc: Proc = {
    name,
    child,
    pid: child.pid ?? -1,
    output: () => text,
    exited,
    async stop(graceMs = 5000) {
      running.delete(proc);
      if (exited()) return;
      child.kill('SIGTERM');
      if (await waitForExit(child, graceMs)) return;
      child.kill('SIGKILL');
      await waitForExit(child, 3000);
    },
  };
  running.add(proc);
  child.once('exit', () => running.delete(proc));
  return proc;
}

export function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Resolves with the `count`-th match of `pattern` in the process's output; rejects on exit or timeout. */
export function waitForOutput(proc: Proc, pattern: RegExp, timeoutMs = 30_000, count = 1): Promise<RegExpExecArray> {
  const global = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
  return new Promise((resolve, reject) => {
    const find = () => {
      const matches = [...proc.output().matchAll(global)];
      return matches.length >= count ? (matches[count - 1] as RegExpExecArray) : undefined;
    };
    const cleanup = () => {
      clearTimeout(timer);
      proc.child.stdout?.off('data', check);
      proc.child.stderr?.off('data', check);
      proc.child.off('exit', onExit);
    };
    const check = () => {
      const m = find();
      if (m) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(new Error(`${proc.name} exited (code ${code}, signal ${signal}) before it was ready:\n${proc.output()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${proc.name} was not ready within ${timeoutMs} ms:\n${proc.output()}`));
    }, timeoutMs);
    proc.child.stdout?.on('data', check);
    proc.child.stderr?.on('data', check);
    proc.child.on('exit', onExit);
    check();
  });
}

/** Stops every child still running (in parallel), but those in `except`. */
export async function stopAll(except: Proc[] = []): Promise<void> {
  await Promise.all([...running].filter((p) => !except.includes(p)).map((p) => p.stop(8000).catch(() => undefined)));
}

/** The resident set size of a process, in MiB (VmRSS from /proc/<pid>/status). */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** The children of a process (e.g. the workers of `ers-bridge serve --workers`), from /proc. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
