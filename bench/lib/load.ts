/**
 * Load generation: autocannon's programmatic API in this process. autocannon's own latency histogram has 1 ms
 * resolution, too coarse for sub-millisecond comparisons, so every response time (float ms from process.hrtime) is
 * also collected here and the percentiles are computed exactly from those samples.
 */
import autocannon from 'autocannon';
import { cpuSnapshot, foreignCpuPct, mapSplit, type ThreadSplitMs, threadSplitMs, treeCpuMs } from './cpu.js';

export interface LoadResult {
  connections: number;
  /** Seconds of load in all the rounds together. */
  durationS: number;
  requests: number;
  rps: number;
  /** Requests per second of each round (interleaved with the other targets' rounds). */
  roundsRps: number[];
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  max: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  bytesPerResponse: number;
  /** Share of the machine's CPU used by processes outside the benchmark while this target was measured. */
  foreignCpuPct: number;
  /** CPU time the server process tree (the proxy; for direct, the upstream) spent per request, in µs. */
  serverCpuUsPerRequest?: number;
  /** The same, round by round (to compare targets round by round: each round of every target is interleaved). */
  roundsCpuUs?: number[];
  /** CPU time of the extra processes (e.g. redis-server) per request, in µs. */
  extraCpuUsPerRequest?: number;
  /** The server process's own CPU per request (µs), split: main thread user/system, other threads user/system. */
  serverThreadsUs?: ThreadSplitMs;
}

export interface LoadRun {
  connections: number;
  durationS: number;
  requests: number;
  samples: Float64Array;
  bytes: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  foreignPct: number;
  serverCpuMs?: number;
  serverThreadsMs?: ThreadSplitMs;
  extraCpuMs?: number;
}

export interface LoadOptions {
  url: string;
  headers: Record<string, string>;
  connections: number;
  durationS: number;
  /** The server whose CPU time per request is measured (the root of its process tree). */
  serverPid?: number;
  /** Other processes of the setup (not our children), e.g. redis-server: their CPU is measured, not "foreign". */
  extraPids?: number[];
}

class Samples {
  private buf = new Float64Array(1 << 16);
  length = 0;
  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = v;
  }
  values(): Float64Array {
    return this.buf.slice(0, this.length);
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** One autocannon run; every response time is kept. */
export function runLoad(options: LoadOptions): Promise<LoadRun> {
  const samples = new Samples();
  let bytes = 0;
  const extra = options.extraPids ?? [];
  const before = cpuSnapshot(extra);
  const extraBefore = extra.reduce((n, pid) => n + treeCpuMs(pid), 0);
  const serverBefore = options.serverPid !== undefined ? treeCpuMs(options.serverPid) : undefined;
  const threadsBefore = options.serverPid !== undefined ? threadSplitMs(options.serverPid) : undefined;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        headers: options.headers,
        connections: options.connections,
        duration: options.durationS,
        pipelining: 1,
        timeout: 10,
      },
      (err, result) => {
        if (err) return reject(err);
        const { foreignPct } = foreignCpuPct(before, cpuSnapshot(extra));
        const extraCpuMs = extra.length ? extra.reduce((n, pid) => n + treeCpuMs(pid), 0) - extraBefore : undefined;
        const serverCpuMs =
          serverBefore !== undefined && options.serverPid !== undefined
            ? treeCpuMs(options.serverPid) - serverBefore
            : undefined;
        const threadsAfter = options.serverPid !== undefined ? threadSplitMs(options.serverPid) : undefined;
        const serverThreadsMs =
          threadsBefore && threadsAfter ? mapSplit((k) => threadsAfter[k] - threadsBefore[k]) : undefined;
        resolve({
          ...(serverCpuMs !== undefined ? { serverCpuMs } : {}),
          ...(serverThreadsMs ? { serverThreadsMs } : {}),
          ...(extraCpuMs !== undefined ? { extraCpuMs } : {}),
          connections: options.connections,
          durationS: result.duration,
          requests: result.requests.total,
          samples: samples.values(),
          bytes,
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          foreignPct,
        });
      },
    );
    instance.on('response', (_client: unknown, _status: number, resBytes: number, responseTime: number) => {
      samples.push(responseTime);
      bytes += resBytes;
    });
  });
}

/** The rounds of one target as one result: percentiles over every sample of every round. */
export function combine(runs: LoadRun[]): LoadResult {
  const total = runs.reduce((n, r) => n + r.samples.length, 0);
  const sorted = new Float64Array(total);
  let at = 0;
  for (const r of runs) {
    sorted.set(r.samples, at);
    at += r.samples.length;
  }
  sorted.sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const durationS = runs.reduce((n, r) => n + r.durationS, 0);
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  return {
    connections: runs[0]?.connections ?? 0,
    durationS,
    requests,
    rps: requests / durationS,
    roundsRps: runs.map((r) => Math.round(r.requests / r.durationS)),
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    mean: total ? sum / total : Number.NaN,
    max: total ? sorted[total - 1]! : Number.NaN,
    non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    timeouts: runs.reduce((n, r) => n + r.timeouts, 0),
    bytesPerResponse: total ? runs.reduce((n, r) => n + r.bytes, 0) / total : 0,
    foreignCpuPct: runs.reduce((n, r) => n + r.foreignPct * r.durationS, 0) / durationS,
    ...(runs.every((r) => r.serverCpuMs !== undefined) && requests > 0
      ? {
          serverCpuUsPerRequest: (1000 * runs.reduce((n, r) => n + r.serverCpuMs!, 0)) / requests,
          roundsCpuUs: runs.map((r) => (r.requests > 0 ? (1000 * r.serverCpuMs!) / r.requests : Number.NaN)),
        }
      : {}),
    ...(runs.every((r) => r.serverThreadsMs !== undefined) && requests > 0
      ? { serverThreadsUs: mapSplit((k) => (1000 * runs.reduce((n, r) => n + r.serverThreadsMs![k], 0)) / requests) }
      : {}),
    ...(runs.every((r) => r.extraCpuMs !== undefined) && requests > 0
      ? { extraCpuUsPerRequest: (1000 * runs.reduce((n, r) => n + r.extraCpuMs!, 0)) / requests }
      : {}),
  };
}
