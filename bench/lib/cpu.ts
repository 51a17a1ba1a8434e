/**
 * How much of the machine something else used during a measurement: the CPU time of the whole machine (/proc/stat)
 * minus that of this process and all its descendants (/proc/<pid>/stat), as a share of the machine's capacity.
 * The benchmark shares its CPUs with whatever else runs; this figure says when a run was disturbed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

const TICKS_PER_S = 100; // USER_HZ: 100 on Linux for every mainstream architecture

function machineBusyTicks(): { busy: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest is already inside user)
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return { busy: user + nice + system + irq + softirq, steal };
}

function descendants(pid: number, out: Set<number>): void {
  out.add(pid);
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return;
  }
  for (const tid of tasks) {
    let children = '';
    try {
      children = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const c of children.trim().split(/\s+/).filter(Boolean)) descendants(Number(c), out);
  }
}

/** utime and stime (fields 14 and 15) of a /proc stat file, in ticks; zeros when it is gone. */
function statTicks(path: string): { user: number; sys: number } {
  try {
    const stat = readFileSync(path, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]), sys: Number(f[12]) };
  } catch {
    return { user: 0, sys: 0 };
  }
}

function processTicks(pid: number): number {
  const t = statTicks(`/proc/${pid}/stat`);
  return t.user + t.sys;
}

export interface CpuSnapshot {
  at: number;
  busy: number;
  steal: number;
  ours: Map<number, number>;
}

/** `extra`: processes that are part of the setup without being our children (e.g. a local redis-server). */
export function cpuSnapshot(extra: number[] = []): CpuSnapshot {
  const pids = new Set<number>(extra);
  descendants(process.pid, pids);
  const ours = new Map<number, number>();
  for (const pid of pids) ours.set(pid, processTicks(pid));
  const { busy, steal } = machineBusyTicks();
  return { at: performance.now(), busy, steal, ours };
}

/** The share (%) of the machine's CPU capacity used by processes other than ours between two snapshots. */
export function foreignCpuPct(a: CpuSnapshot, b: CpuSnapshot): { foreignPct: number; stealPct: number } {
  const capacity = ((b.at - a.at) / 1000) * TICKS_PER_S * availableParallelism();
  let ours = 0;
  for (const [pid, ticks] of b.ours) ours += ticks - (a.ours.get(pid) ?? ticks);
  const foreign = Math.max(0, b.busy - a.busy - ours);
  return {
    foreignPct: capacity > 0 ? (100 * foreign) / capacity : 0,
    stealPct: capacity > 0 ? (100 * (b.steal - a.steal)) / capacity : 0,
  };
}

/** CPU time (ms) used so far by a process and all its descendants (e.g. nginx's workers, cluster workers). */
export function treeCpuMs(rootPid: number): number {
  const pids = new Set<number>();
  descendants(rootPid, pids);
  let ticks = 0;
  for (const pid of pids) ticks += processTicks(pid);
  return (ticks * 1000) / TICKS_PER_S;
}

/** User and system CPU (ms) of one process's main thread and of all its other threads (V8's and libuv's). */
export interface ThreadSplitMs {
  mainUser: number;
  mainSys: number;
  otherUser: number;
  otherSys: number;
}

/**
 * Node 20 gives its threads no names (every /proc/<pid>/task/<tid>/comm is "node"), so the split is the one thing
 * /proc can tell: the main thread (tid = pid: JavaScript, the event loop) against the rest (GC helpers, libuv's pool).
 */
export function threadSplitMs(pid: number): ThreadSplitMs {
  const out: ThreadSplitMs = { mainUser: 0, mainSys: 0, otherUser: 0, otherSys: 0 };
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    // A thread that ended meanwhile counts zero (its time is in neither snapshot's sum thereafter).
    const t = statTicks(`/proc/${pid}/task/${tid}/stat`);
    const user = (t.user * 1000) / TICKS_PER_S;
    const sys = (t.sys * 1000) / TICKS_PER_S;
    if (Number(tid) === pid) {
      out.mainUser += user;
      out.mainSys += sys;
    } else {
      out.otherUser += user;
      out.otherSys += sys;
    }
  }
  return out;
}

const SPLIT_FIELDS = ['mainUser', 'mainSys', 'otherUser', 'otherSys'] as const;

/** `f` applied field by field to thread splits (a difference, a sum, a division). */
export function mapSplit(f: (field: (typeof SPLIT_FIELDS)[number]) => number): ThreadSplitMs {
  return Object.fromEntries(SPLIT_FIELDS.map((k) => [k, f(k)])) as unknown as ThreadSplitMs;
}

/** Processes whose command name (/proc/<pid>/comm) is `name`. */
export function pidsNamed(name: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/comm`, 'utf8').trim() === name) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
