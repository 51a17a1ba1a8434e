/**
 * Reads a V8 `.cpuprofile` (node --cpu-prof) and summarises it: functions by self time (url:line, mapped back to
 * src/*.ts through dist's source maps), self time by package, and ers-bridge's own functions by inclusive time.
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileRow {
  fn: string;
  location: string;
  selfMs: number;
  /** Share of all sampled time (idle included). */
  pctTotal: number;
  /** Share of busy time (idle excluded). */
  pctBusy: number;
}

export interface ProfileSummary {
  file: string;
  sampledMs: number;
  idleMs: number;
  busyMs: number;
  samples: number;
  /** Whether only the samples taken under load were kept (else the whole process lifetime). */
  windowed: boolean;
  topSelf: ProfileRow[];
  byPackage: Array<{ pkg: string; selfMs: number; pctBusy: number }>;
  topInclusiveOwn: Array<{ fn: string; location: string; totalMs: number; pctBusy: number }>;
  /** ers-bridge's own functions (src/, dist/) by self time. */
  topSelfOwn: ProfileRow[];
}

const maps = new Map<string, SourceMap | null>();

function sourceMapFor(path: string): SourceMap | null {
  if (maps.has(path)) return maps.get(path)!;
  let map: SourceMap | null = null;
  const file = `${path}.map`;
  if (existsSync(file)) {
    try {
      map = new SourceMap(JSON.parse(readFileSync(file, 'utf8')));
    } catch {
      map = null;
    }
  }
  maps.set(path, map);
  return map;
}

/** `file:line` (1-based), relative to the repository, mapped to the TypeScript source when a source map exists. */
function locate(frame: CallFrame, root: string): string {
  const { url, lineNumber, columnNumber } = frame;
  if (!url) return '';
  if (!url.startsWith('file://')) return `${url}:${lineNumber + 1}`;
  const path = fileURLToPath(url);
  const map = path.endsWith('.js') ? sourceMapFor(path) : null;
  if (map && lineNumber >= 0) {
    const entry = map.findEntry(lineNumber, Math.max(0, columnNumber)) as {
      originalSource?: string;
      originalLine?: number;
    };
    if (entry?.originalSource && entry.originalLine !== undefined) {
      const src = entry.originalSource.startsWith('file://')
        ? fileURLToPath(entry.originalSource)
        : resolve(dirname(path), entry.originalSource);
      return `${relative(root, src)}:${entry.originalLine + 1}`;
    }
  }
  return `${relative(root, path)}:${lineNumber + 1}`;
}

function packageOf(frame: CallFrame, root: string): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native/builtin)';
  if (url.startsWith('node:')) return `node core (${url.slice(5).split('/').slice(0, 2).join('/')})`;
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + 14).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const rel = relative(root, path);
  if (rel.startsWith('dist/') || rel.startsWith('src/'))
    return `ers-bridge ${rel.split('/').slice(1, -1).join('/') || '.'}`;
  return rel;
}

const IDLE = new Set(['(idle)']);

/**
 * `window` (CLOCK_MONOTONIC microseconds, the clock of both V8's profiler and process.hrtime) keeps only the samples
 * taken while the load ran, leaving start-up (module loading, compilation) out.
 */
export function summariseProfile(
  file: string,
  root: string,
  top = 15,
  window?: { fromUs: number; toUs: number },
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) byId.set(n.id, n);
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const selfByNode = new Map<number, number>();
  let total = 0;
  let kept = 0;
  let at = profile.startTime;
  const inWindow = (t: number) => !window || (t >= window.fromUs && t <= window.toUs);
  // When the window misses the profile entirely (another clock), every sample counts.
  const windowed = window !== undefined && profile.startTime <= window.toUs && profile.endTime >= window.fromUs;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (windowed && !inWindow(at)) continue;
    kept++;
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    const id = profile.samples[i]!;
    selfByNode.set(id, (selfByNode.get(id) ?? 0) + dt);
  }

  const keyOf = (f: CallFrame) => `${f.functionName}\u0000${f.url}\u0000${f.lineNumber}\u0000${f.columnNumber}`;
  const self = new Map<string, { frame: CallFrame; ms: number }>();
  const pkgs = new Map<string, number>();
  let idle = 0;
  for (const [id, ms] of selfByNode) {
    const frame = byId.get(id)!.callFrame;
    if (IDLE.has(frame.functionName)) idle += ms;
    const k = keyOf(frame);
    const e = self.get(k) ?? { frame, ms: 0 };
    e.ms += ms;
    self.set(k, e);
    if (!IDLE.has(frame.functionName)) {
      const pkg = packageOf(frame, root);
      pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + ms);
    }
  }
  const busy = total - idle;

  // Inclusive time of ers-bridge's own functions: each sample counts once for every distinct own frame on its stack.
  const ownRoots = [resolve(root, 'dist'), resolve(root, 'src')];
  const isOwn = (f: CallFrame) =>
    f.url.startsWith('file://') && ownRoots.some((r) => fileURLToPath(f.url).startsWith(`${r}/`));
  const inclusive = new Map<string, { frame: CallFrame; ms: number }>();
  for (const [id, ms] of selfByNode) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)!.callFrame;
      if (!isOwn(frame)) continue;
      const k = keyOf(frame);
      if (seen.has(k)) continue;
      seen.add(k);
      const e = inclusive.get(k) ?? { frame, ms: 0 };
      e.ms += ms;
      inclusive.set(k, e);
    }
  }

  const name = (f: CallFrame) => f.functionName || '(anonymous)';
  const row = (e: { frame: CallFrame; ms: number }): ProfileRow => ({
    fn: name(e.frame),
    location: locate(e.frame, root),
    selfMs: e.ms,
    pctTotal: (100 * e.ms) / total,
    pctBusy: (100 * e.ms) / busy,
  });
  return {
    file,
    sampledMs: total,
    idleMs: idle,
    busyMs: busy,
    samples: kept,
    windowed,
    topSelf: [...self.values()]
      .filter((e) => !IDLE.has(e.frame.functionName))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map(row),
    topSelfOwn: [...self.values()]
      .filter((e) => isOwn(e.frame))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map(row),
    byPackage: [...pkgs.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 40)
      .map(([pkg, ms]) => ({ pkg, selfMs: ms, pctBusy: (100 * ms) / busy })),
    topInclusiveOwn: [...inclusive.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((e) => ({
        fn: name(e.frame),
        location: locate(e.frame, root),
        totalMs: e.ms,
        pctBusy: (100 * e.ms) / busy,
      })),
  };
}
