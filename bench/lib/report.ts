/** The terminal table and docs/benchmarks.md, from the results of one run. */
import type { Results, TargetResult } from '../run.js';
import type { LoadResult } from './load.js';

const ms = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : v.toFixed(2));
const us = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : (v * 1000).toFixed(0));
const int = (v: number | undefined) => (v === undefined ? '–' : Math.round(v).toLocaleString('en-GB'));
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? '–' : `${(a / b).toFixed(2)}×`;

function bridgeOf(r: Results): TargetResult | undefined {
  return r.targets.find((t) => t.name === 'ers-bridge');
}

function throughputRows(r: Results): string[][] {
  const b = bridgeOf(r)?.throughput;
  return r.targets.map((t) => {
    const x = t.throughput;
    if (!x) return [t.name, t.skipped ?? 'skipped', '', '', '', '', '', '', '', '', ''];
    return [
      t.name,
      int(x.rps),
      x.roundsRps.map((v) => int(v)).join(' / '),
      ms(x.p50),
      ms(x.p90),
      ms(x.p99),
      `${x.non2xx} / ${x.errors + x.timeouts}`,
      int(x.serverCpuUsPerRequest),
      x.foreignCpuPct.toFixed(0),
      ratio(b?.rps, x.rps),
      ratio(x.p50, b?.p50),
    ];
  });
}
const THROUGHPUT_HEAD = [
  'target',
  'req/s',
  'rounds req/s',
  'p50 ms',
  'p90 ms',
  'p99 ms',
  'non-2xx / errors',
  'server CPU µs/req',
  'other load %',
  'ers-bridge rps ÷ this',
  'this p50 ÷ ers-bridge',
];

function lightRows(r: Results): string[][] {
  const direct = r.targets.find((t) => t.name === 'direct')?.light;
  return r.targets
    .filter((t) => t.light)
    .map((t) => {
      const l = t.light as LoadResult;
      return [
        t.name,
        int(l.rps),
        us(l.p50),
        us(l.p90),
        us(l.p99),
        direct ? us(l.p50 - direct.p50) : '–',
        `${l.non2xx} / ${l.errors + l.timeouts}`,
        int(l.serverCpuUsPerRequest),
        l.foreignCpuPct.toFixed(0),
      ];
    });
}
const LIGHT_HEAD = [
  'target',
  'req/s',
  'p50 µs',
  'p90 µs',
  'p99 µs',
  'added p50 over direct µs',
  'non-2xx / errors',
  'server CPU µs/req',
  'other load %',
];

function textTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function mdTable(head: string[], rows: string[][], leftColumns = 1): string {
  const esc = (s: string) => s.replaceAll('|', '\\|');
  return [
    `| ${head.map(esc).join(' | ')} |`,
    `|${head.map((_, i) => (i < leftColumns ? '---' : '--:')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

function targetRows(r: Results): string[][] {
  return r.targetsMet.map((t) => [
    t.target,
    t.figure,
    t.met === undefined ? 'not measured' : t.met ? 'met' : 'NOT met',
  ]);
}

/** ers-bridge CPU per shadow copy actually sent: the extra CPU per call divided by the share of calls copied. */
function perCopy(s: NonNullable<Results['shadow']>): number | undefined {
  const a = s.shadow.throughput?.serverCpuUsPerRequest;
  const b = s.translate.throughput?.serverCpuUsPerRequest;
  const c = s.shadowCopies ?? {};
  const count = (o: string) => Object.entries(c).find(([k]) => k.includes(`"${o}"`))?.[1] ?? 0;
  const all = count('sent') + count('dropped') + count('skipped');
  if (a === undefined || b === undefined || all === 0 || count('sent') === 0) return undefined;
  return (a - b) / (count('sent') / all);
}

/** Instructions per call under callgrind, each against @fastify/http-proxy and against ers-bridge (translate). */
function instructionRows(r: Results): string[][] {
  const x = r.instructions;
  if (!x || x.skipped) return [];
  const of = (name: string) => x.targets.find((t) => t.name === name)?.perCall;
  const fp = of('@fastify/http-proxy');
  const b = of('ers-bridge');
  return x.targets.map((t) => [
    t.name,
    int(t.perCall),
    ratio(t.perCall, fp),
    ratio(t.perCall, b),
    `${int(t.requests)} / ${t.non2xx}`,
  ]);
}
const INSTRUCTIONS_HEAD = ['server', 'instructions per call', '÷ @fastify/http-proxy', '÷ ers-bridge', 'calls / non-2xx'];

function instructionsTitle(r: Results): string | undefined {
  const x = r.instructions;
  if (!x) return undefined;
  if (x.skipped) return x.skipped;
  return (
    `Instructions per call (${x.valgrind} --tool=callgrind, user space, every thread of the server; ` +
    `${int(x.requests)} counted calls at ${x.connections} connections after ${int(x.warmup)} uncounted)`
  );
}

/** Where each Node proxy's CPU per call goes (50 connections): its main thread against V8's and libuv's threads. */
function threadSplit(r: Results): string | undefined {
  const parts: string[] = [];
  const shadows = [r.shadowSampled?.shadow, r.shadow?.shadow].filter((t): t is TargetResult => t !== undefined);
  for (const t of [...r.targets, ...shadows]) {
    const s = t.throughput?.serverThreadsUs;
    if (!s || t.name === 'direct' || t.name === 'nginx') continue;
    const other = s.otherUser + s.otherSys;
    const all = s.mainUser + s.mainSys + other;
    parts.push(
      `${t.name} main thread ${int(s.mainUser)} user + ${int(s.mainSys)} system, other threads ${int(s.otherUser)} + ${int(s.otherSys)}` +
        ` (${all > 0 ? ((100 * other) / all).toFixed(0) : '–'}% outside the main thread)`,
    );
  }
  return parts.length ? `CPU per call by thread (µs/req, 50 connections, /proc/<pid>/task): ${parts.join('; ')}` : undefined;
}

function sideFigures(r: Results): string[] {
  const out: string[] = [];
  const split = threadSplit(r);
  if (split) out.push(split);
  if (r.logInfo) {
    const info = r.targets.find((t) => t.name === 'ers-bridge (info)')?.throughput;
    const b = bridgeOf(r)?.throughput;
    out.push(
      `LOG_LEVEL=info: ${int(info?.rps)} req/s vs ${int(b?.rps)} at warn (${ratio(info?.rps, b?.rps)}); ` +
        `${int(r.logInfo.logLines)} log lines for ${int(r.logInfo.requests)} calls, ${(r.logInfo.logBytes / Math.max(1, r.logInfo.logLines)).toFixed(0)} B/line`,
    );
  }
  if (r.tokens) {
    out.push(
      `Token stampede: ${r.tokens.batch} concurrent cold A005 → ${r.tokens.tokenCallsTotal} token-endpoint call(s) ` +
        `(${r.tokens.tokenCallsDuringSession} during A001/A002, ${r.tokens.tokenCallsDuringBatch} during the batch); ` +
        `statuses ${JSON.stringify(r.tokens.statuses)}; ${r.tokens.wallMs.toFixed(0)} ms for the batch`,
    );
  }
  if (r.rss) {
    const x = r.rss;
    const per = (mib: number, base: number) => (((mib - base) * 1024 * 1024) / x.large).toFixed(0);
    out.push(
      `RSS (memory store), as is → after a full GC: ${x.startMiB.toFixed(1)} → ${x.afterGcMiB.start.toFixed(1)} MiB with 1 session, ` +
        `${x.afterSmallMiB.toFixed(1)} → ${x.afterGcMiB.small.toFixed(1)} MiB with ${int(x.small)}, ` +
        `${x.afterLargeMiB.toFixed(1)} → ${x.afterGcMiB.large.toFixed(1)} MiB with ${int(x.large)} (live ${int(x.liveSessions)}; ` +
        `≈ ${per(x.afterLargeMiB, x.startMiB)} B/session as is, ${per(x.afterGcMiB.large, x.afterGcMiB.start)} B after GC); ` +
        `V8 heap used ${x.heap.large.heapUsedMiB.toFixed(1)} → ${x.heapAfterGc.large.heapUsedMiB.toFixed(1)} MiB at ${int(x.large)} ` +
        `(${x.heapAfterGc.start.heapUsedMiB.toFixed(1)} MiB with 1 session after GC: ` +
        `≈ ${(((x.heapAfterGc.large.heapUsedMiB - x.heapAfterGc.start.heapUsedMiB) * 1024 * 1024) / x.large).toFixed(0)} B of live heap per session); ` +
        `heap total ${x.heapAfterGc.large.heapTotalMiB.toFixed(1)} MiB after GC; ${int(x.createRatePerS)} session calls/s; ${x.sessionErrors} errors` +
        (x.defaultYoungGeneration
          ? `; with V8's default young generation (${x.defaultYoungGeneration.nodeArg}): ` +
            `${x.defaultYoungGeneration.startMiB.toFixed(1)} MiB with 1 session, ` +
            `${x.defaultYoungGeneration.afterLargeMiB.toFixed(1)} MiB as is → ${x.defaultYoungGeneration.afterGcMiB.toFixed(1)} MiB after a full GC with ${int(x.large)}` +
            (x.defaultYoungGeneration.sessionErrors ? ` (${x.defaultYoungGeneration.sessionErrors} errors)` : '')
          : ''),
    );
  }
  if (r.flood) {
    const f = r.flood;
    out.push(
      `A001 flood (memory store, maxPerAsid 20,000): ${int(f.count)} A001 with ${f.tokenBytes / 1024} KB tokens on one ASID → ` +
        `RSS ${f.beforeMiB.toFixed(1)} → ${f.afterMiB.toFixed(1)} MiB as is, ${f.beforeGcMiB.toFixed(1)} → ${f.afterGcMiB.toFixed(1)} MiB after a full GC ` +
        `(V8 heap used after GC ${f.heapAfterGcMiB.before.toFixed(1)} → ${f.heapAfterGcMiB.after.toFixed(1)} MiB: ` +
        `≈ ${(((f.heapAfterGcMiB.after - f.heapAfterGcMiB.before) * 1024 * 1024) / f.count).toFixed(0)} B per session); ` +
        `statuses ${JSON.stringify(f.statuses)}; ${int(f.ratePerS)} A001/s`,
    );
  }
  for (const s of [r.shadow, r.shadowSampled]) {
    if (!s) continue;
    out.push(
      `Shadow (primary apim, sampleRate ${s.sampleRate ?? 1}) vs translate: ${int(s.shadow.throughput?.rps)} vs ${int(s.translate.throughput?.rps)} req/s ` +
        `(${s.rpsRatio.toFixed(2)}×); p50 under load ${ms(s.shadow.throughput?.p50)} vs ${ms(s.translate.throughput?.p50)} ms (${s.p50Ratio.toFixed(2)}×); ` +
        `p50 at 1 connection ${us(s.shadow.light?.p50)} vs ${us(s.translate.light?.p50)} µs (${s.lightP50Ratio.toFixed(2)}×); ` +
        `copies ${Object.entries(s.shadowCopies ?? {})
          .map(([k, v]) => `${/outcome="([^"]+)"/.exec(k)?.[1] ?? k} ${int(v)}`)
          .join(', ')}; ` +
        `compared ${int(s.compare?.compared)}, different ${int(s.compare?.different)} ` +
        `(status mismatches ${s.compare?.statusMismatches ?? '?'}, legacy errors ${s.compare?.secondaryErrors ?? '?'}` +
        `${s.compare?.topFields.length ? `; fields: ${s.compare.topFields.join(', ')}` : ''}); ` +
        `shadow ers-bridge CPU ${int(s.shadow.throughput?.serverCpuUsPerRequest)} vs ${int(s.translate.throughput?.serverCpuUsPerRequest)} µs/req` +
        `${perCopy(s) !== undefined ? ` (≈ ${int(perCopy(s))} µs of ers-bridge CPU per copy sent)` : ''}` +
        `${s.legacySeen ? `; legacy fake served ${s.legacySeen['served'] ?? '?'} A005 (both shadow runs), ${s.legacySeen['sessions'] ?? '?'} A001 on ${s.legacySeen['connections'] ?? '?'} connections` : ''}`,
    );
  }
  if (r.workers) {
    const w = r.workers;
    out.push(
      w.skipped
        ? w.skipped
        : `Redis session store: 1 process ${int(w.single?.rps)} req/s (p50 ${ms(w.single?.p50)} ms; ers-bridge CPU ${int(w.single?.serverCpuUsPerRequest)} µs/req, ` +
            `redis-server ${int(w.single?.extraCpuUsPerRequest)} µs/req; other load ${w.single?.foreignCpuPct.toFixed(0)}%), ` +
            `--workers ${w.workers} ${int(w.multi?.rps)} req/s (p50 ${ms(w.multi?.p50)} ms; ers-bridge CPU ${int(w.multi?.serverCpuUsPerRequest)} µs/req incl. the primary, ` +
            `redis-server ${int(w.multi?.extraCpuUsPerRequest)} µs/req; other load ${w.multi?.foreignCpuPct.toFixed(0)}%): ${w.ratio?.toFixed(2) ?? '–'}×`,
    );
  }
  if (r.upstream) {
    out.push(
      `Upstream check: served ${int(r.upstream['served'])}, refused without bearer ${r.upstream['unauthorised']}, ` +
        `refused with a legacy header ${r.upstream['leakedLegacyHeaders']}, unknown path ${r.upstream['notFound']}; ` +
        `${int(r.upstream['connections'])} connections accepted (keep-alive: every client reuses a few)`,
    );
  }
  return out;
}

function profileRows(r: Results): string[][] {
  const n = r.profile?.requests ?? 0;
  return (r.profile?.topSelf ?? []).map((p, i) => [
    String(i + 1),
    p.fn,
    p.location || '(native)',
    p.selfMs.toFixed(0),
    n ? ((p.selfMs * 1000) / n).toFixed(1) : '–',
    p.pctBusy.toFixed(1),
    p.pctTotal.toFixed(1),
  ]);
}
const PROFILE_HEAD = ['#', 'function', 'file:line', 'self ms', 'µs/req', '% of busy', '% of all'];

/** Self time per request by package, ers-bridge against @fastify/http-proxy (under the same profiler and load). */
function packageRows(r: Results, limit: number): string[][] {
  const a = r.profile;
  if (!a) return [];
  const b = r.profileBaseline;
  const per = (ms: number | undefined, n: number | undefined) => (ms === undefined || !n ? undefined : (ms * 1000) / n);
  const base = new Map((b?.byPackage ?? []).map((p) => [p.pkg, p.selfMs]));
  const f = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(1));
  const rows = a.byPackage.slice(0, limit).map((p) => {
    const mine = per(p.selfMs, a.requests);
    const theirs = per(base.get(p.pkg) ?? 0, b?.requests);
    return [p.pkg, f(mine), b ? f(theirs) : '–', p.pctBusy.toFixed(1)];
  });
  rows.push([
    'all (busy, idle excluded)',
    f(per(a.busyMs, a.requests)),
    b ? f(per(b.busyMs, b.requests)) : '–',
    '100.0',
  ]);
  return rows;
}
const PACKAGE_HEAD = ['package', 'ers-bridge µs/req', '@fastify/http-proxy µs/req', 'ers-bridge % of busy'];

export function renderTerminal(r: Results): string {
  const parts = [
    '',
    `ers-bridge benchmark — ${r.machine['nproc']} × ${r.machine['cpu']}, Node ${r.machine['node']}, ${r.build}, source ${r.source}; ers-bridge launched as ${launch(r)}`,
    '',
    `Throughput: ${r.config.connections} connections, ${r.config.rounds} interleaved rounds × ${r.config.roundS} s per target (after ${r.config.warmupS} s warm-up), A005 with a selected session, token cached`,
    textTable(THROUGHPUT_HEAD, throughputRows(r)),
    '',
    `Light load: 1 connection, ${r.config.rounds} interleaved rounds × ${r.config.lightRoundS} s per target (after ${r.config.lightWarmupS} s warm-up)`,
    textTable(LIGHT_HEAD, lightRows(r)),
    '',
    ...sideFigures(r),
    '',
    'Targets:',
    textTable(['target', 'figure', 'result'], targetRows(r)),
  ];
  const cgTitle = instructionsTitle(r);
  if (cgTitle) {
    parts.push('', cgTitle);
    if (!r.instructions?.skipped) parts.push(textTable(INSTRUCTIONS_HEAD, instructionRows(r)));
  }
  if (r.profile) {
    parts.push(
      '',
      `CPU profile of ers-bridge (node --cpu-prof, ${int(r.profile.loadRps)} req/s under the profiler; busy ${r.profile.busyMs.toFixed(0)} of ${r.profile.sampledMs.toFixed(0)} ms sampled, ${int(r.profile.requests)} requests): top ${r.profile.topSelf.length} by self time`,
      textTable(PROFILE_HEAD, profileRows(r)),
      '',
      `Self time per request by package (baseline: @fastify/http-proxy under the same profiler and load${r.profileBaseline ? `, ${int(r.profileBaseline.loadRps)} req/s` : ''}):`,
      textTable(PACKAGE_HEAD, packageRows(r, 15)),
    );
  }
  for (const t of r.targets) if (t.skipped) parts.push('', t.skipped);
  if (r.errors.length) parts.push('', 'ERRORS:', ...r.errors);
  return parts.join('\n');
}

/** A few sentences computed from the figures: what bounds the throughput and the latency on this machine. */
function reading(r: Results): string[] {
  const t = (name: string) => r.targets.find((x) => x.name === name);
  const b = t('ers-bridge');
  const fp = t('@fastify/http-proxy');
  const ng = t('nginx');
  const d = t('direct');
  const cpu = (x: TargetResult | undefined) => x?.throughput?.serverCpuUsPerRequest;
  const out: string[] = ['## Reading the figures', ''];
  if (cpu(b) !== undefined && cpu(fp) !== undefined) {
    out.push(
      `- Cost of one call (server CPU under load): ers-bridge ${int(cpu(b))} µs, @fastify/http-proxy ${int(cpu(fp))} µs ` +
        `(${ratio(cpu(b), cpu(fp))} of it)${cpu(ng) !== undefined ? `, nginx ${int(cpu(ng))} µs` : ''}; the upstream itself ` +
        `${int(cpu(d))} µs. With every process on the same ${r.machine['nproc']} CPUs, throughput follows the CPU per call ` +
        'of the whole chain (load generator + proxy + upstream), so req/s ratios are smaller than these cost ratios.',
    );
  }
  if (b?.light && d?.light) {
    out.push(
      `- At light load a call is CPU-bound in each process in turn: ers-bridge adds ${us(b.light.p50 - d.light.p50)} µs ` +
        `at the median and spends ${int(b.light.serverCpuUsPerRequest)} µs of CPU per call` +
        (fp?.light
          ? `; @fastify/http-proxy adds ${us(fp.light.p50 - d.light.p50)} µs (${int(fp.light.serverCpuUsPerRequest)} µs CPU)`
          : '') +
        (ng?.light
          ? `, nginx ${us(ng.light.p50 - d.light.p50)} µs (${int(ng.light.serverCpuUsPerRequest)} µs CPU)`
          : '') +
        '. The added median tracks the CPU per call.',
    );
  }
  const p = r.profile;
  if (p) {
    const writes = p.topSelf
      .filter((x) => x.fn === 'writev' || x.fn === 'writeLatin1String')
      .reduce((n, x) => n + x.selfMs, 0);
    out.push(
      `- Socket writes (\`writev\` to the client, \`writeLatin1String\` to the upstream) take ${((100 * writes) / p.busyMs).toFixed(0)}% ` +
        `of ers-bridge's busy time (${((writes * 1000) / p.requests).toFixed(0)} µs per call under the profiler): kernel time ` +
        'of loopback TCP in this VM, paid by every proxy. The rest of the profile is flat: see the tables below.',
    );
  }
  out.push('');
  return out;
}

/** How the bench launched ers-bridge: the environment and node flags of bin/ers-bridge.js's shebang. */
function launch(r: Results): string {
  const env = Object.entries(r.bridgeLaunchEnv ?? {}).map(([k, v]) => `${k}=${v}`);
  return [...env, 'node', ...(r.bridgeNodeFlags ?? []), 'bin/ers-bridge.js'].join(' ');
}

export function renderMarkdown(r: Results, elapsedS: number): string {
  const m = r.machine;
  const c = r.config;
  const lines: string[] = [];
  lines.push(
    '# ers-bridge benchmarks',
    '',
    `Generated by \`npm run bench\` (bench/run.ts) on ${r.date} in ${elapsedS.toFixed(0)} s${r.quick ? ' — **BENCH_QUICK run: short durations, indicative only**' : ''}. ` +
      'Every figure below comes from that one run; bench/results/latest.json holds them all. Rerun to refresh this page.',
    '',
    '## Machine',
    '',
    mdTable(
      ['', ''],
      [
        ['CPUs (nproc)', String(m['nproc'])],
        ['CPU model', String(m['cpu'])],
        ['memory', `${m['memoryGiB']} GiB`],
        ['Node.js', String(m['node'])],
        ['kernel', String(m['kernel'])],
        [
          'other load when the run started',
          `${m['otherLoadAtStartPct']}% of the CPUs (steal ${m['stealAtStartPct']}%)`,
        ],
        ['ers-bridge', `${r.versions['ers-bridge']} — ${r.build}; source ${r.source}; launched as \`${launch(r)}\``],
        [
          'versions',
          Object.entries(r.versions)
            .filter(([k]) => k !== 'ers-bridge')
            .map(([k, v]) => `${k} ${v}`)
            .join(', '),
        ],
      ],
      2,
    ),
    '',
    '## Method',
    '',
    '- **Workload**: a legacy A005, `GET /ers-api/STU3/v1/ReferralRequest/000000070000` with `XAPI_ASID` and ' +
      '`HTTP_X_SESSION_KEY` of a session created with A001 and given a role with A002; the APIM token is fetched by ' +
      'a warm-up and cached (tokens last 599 s, so no run renews one).',
    '- **Each component in its own process**: the fake APIM upstream (`bench/upstream.ts`, node:http, keep-alive) ' +
      'answers the NHS A005 example (`Unbooked.json`, 6.2 kB, `_baseUrl_` set to its own base, ' +
      '`application/fhir+json`), and refuses a call without a bearer token or with a legacy header left in; ' +
      `ers-bridge runs as \`${launch(r)} serve --rules <generated> --port 0\` (the environment and node flags of its bin ` +
      "script's shebang, which the Docker image's ENV and ENTRYPOINT give too: ers-bridge as it is launched) with stdout (its log) " +
      'to a file; `@fastify/http-proxy` (`bench/fastify-proxy.ts`) does only the prefix rewrite, a static ' +
      '`authorization` and removes `xapi_asid`/`http_x_session_key` (undici, 64 keep-alive connections, like ' +
      "ers-bridge's `apim.connections`); nginx gets a generated config (`rewrite`, `proxy_set_header`, upstream " +
      '`keepalive 64`, `worker_processes 1`, `access_log off`). The OAuth token endpoint is the APIM stand-in ' +
      '(`startApimStandIn`) inside the bench process, so its `tokenRequests` are counted exactly.',
    '- Neither baseline rewrites the links in the answer body and neither keeps sessions or tokens: they do less ' +
      'work than ers-bridge (which reads the whole JSON answer, rewrites its APIM links to the legacy base and ' +
      "checks the session, ASID policy and token on every call). The direct run is the upstream's own limit.",
    `- **Load**: autocannon ${r.versions['autocannon']} (programmatic, in the bench process), pipelining 1, the ` +
      'same settings for every target. All targets run at once (idle but for the one under load); each gets a ' +
      `${c.warmupS} s warm-up (discarded), then ${c.rounds} rounds of ${c.roundS} s at ${c.connections} ` +
      'connections, **interleaved** across targets, each round in its own order (a shuffle seeded by the round, ' +
      'so no target always runs behind the same one). Before each measured run the same process gets ' +
      `${c.rewarmS ?? 0} s of the same load, discarded (a process that idled while the others were measured paid ` +
      'for it in its next run: its first round measured 30–55% dearer than its later ones), then a pause (a full GC ' +
      `of the bench process and of the upstreams, then ${c.settleMs ?? 0} ms), so a disturbance of the machine hits ` +
      'every target alike; then the same ' +
      `with ${c.rounds} × ${c.lightRoundS} s on 1 connection ` +
      '(light load). req/s is over all rounds (each round shown); percentiles are computed exactly from every ' +
      'response time autocannon reports (its own histogram has 1 ms resolution).',
    `- **Processes**: ers-bridge, @fastify/http-proxy and each shadow bridge run as ${c.processes ?? 1} process(es) of ` +
      'the same code and rules; round r of a target goes to its process r mod n, and its figures are over all its ' +
      'rounds. Two processes of the same code can differ by ±25% in CPU per call for their whole life (V8 compiles ' +
      'and lays out memory differently in each; for ers-bridge it was mostly V8\'s allocation-site pretenuring, ' +
      'which its launch now switches off), so one process would make its luck the target\'s figure. The ' +
      'processes are started interleaved (process 1 of each target, then process 2 of each in rotated order, …): ' +
      'the processes started first stayed 10–20% dearer per call for their whole life on these machines, and ' +
      'started one target after another that cost whichever target came first. An idle ers-bridge, never ' +
      'measured, is started before them all.',
    '- **Server CPU µs/req**: CPU time (user + system, /proc/<pid>/stat) of the server under test — the proxy ' +
      "process (with nginx's and the cluster's worker processes); for direct, the upstream — divided by the " +
      'requests it answered. Unlike req/s it hardly depends on what else competes for the CPUs: it is the cost ' +
      'of one call.',
    "- **Other load %**: the share of the machine's CPU used by processes outside the benchmark while that " +
      'target was measured (/proc/stat minus the bench and its children). Anything above a few % means the figure ' +
      'was disturbed by something else running on the machine.',
    `- **Shared machine**: load generator, upstream and proxy compete for the same ${m['nproc']} CPU(s), so ` +
      'absolute numbers understate every proxy; compare the ratios, measured in the same run.',
    `- **Token stampede**: a fresh ers-bridge, one session (A001+A002), then ${c.tokenBatch} A005 at once ` +
      `(undici, up to ${c.tokenBatch} connections) before any token exists.`,
    `- **Memory**: a fresh ers-bridge (memory store, maxSessions and maxPerAsid ${c.sessionsLarge + 10_000}, the A001 rate raised, idle timeout 24 h), ` +
      `run as \`${launch(r)} …\`, the environment and node flags of its bin script and Docker image; ` +
      `VmRSS from /proc/<pid>/status 2 s after creating ${c.sessionsSmall} and ${c.sessionsLarge} sessions ` +
      '(A001 for all, A002 for half; 32 connections) — the figure the target is judged on — then again after a ' +
      'full GC (that process alone is started with `--expose-gc --require bench/gc-on-signal.cjs`, and SIGUSR2 ' +
      'runs `gc()`), with V8 heap figures from its /metrics. Then the same in a second fresh ers-bridge given ' +
      `\`${r.rss?.defaultYoungGeneration?.nodeArg ?? '--max-semi-space-size=16'}\` after those flags (the last one wins): ` +
      "V8's default young generation on 64-bit, to show what the flags save; reported beside the figure, not judged.",
    `- **A001 flood**: a fresh ers-bridge (memory store, the default session limits: maxPerAsid 20,000, maxRecordBytes 32 KB; ` +
      `the A001 rate raised so the flood reaches the store); ${c.floodA001} A001 with ${c.floodTokenBytes}-byte tokens on one ASID ` +
      '(32 connections); VmRSS 2 s before and after — the figure the target is judged on — and again after a full GC.',
    '- **Shadow**: `modes: { default: shadow, shadow: { primary: apim, sampleRate: 1 } }` (every call copied), and ' +
      'the same at `sampleRate: 0.1` (a tenth copied: the target is judged on this one), each with a legacy fake ' +
      '(`bench/upstream.ts legacy`, own process: A001/A002 and the same A005) as `legacy.baseUrl`, measured in the ' +
      'same interleaved rounds as ers-bridge (translate). The legacy fake and the comparison compete for the same CPUs, so the throughput ' +
      'cost includes the extra upstream work a real deployment would do elsewhere.',
    `- **Workers**: \`serve --workers ${r.workers?.workers ?? 2}\` against one process, both with the Redis ` +
      `session store (${c.redisUrl}, a unique key prefix, removed afterwards; sessions encrypted with a key from ` +
      'the environment).',
    `- **Profile**: ers-bridge once more under \`node --cpu-prof --cpu-prof-interval 500\` (${c.connections} ` +
      `connections, 2 s warm-up + ${c.profileDurationS} s; only the samples of the ${c.profileDurationS} s count); ` +
      'self time per function, mapped to src/ through the ' +
      "build's source maps. The profiles are kept at bench/results/ers-bridge.cpuprofile.tmp and " +
      'bench/results/fastify-http-proxy.cpuprofile.tmp (open them in Chrome DevTools → Performance, or rename to ' +
      '.cpuprofile).',
    '',
    `## Throughput — ${c.connections} connections, ${c.rounds} × ${c.roundS} s per target`,
    '',
    mdTable(THROUGHPUT_HEAD, throughputRows(r)),
    '',
    `## Light load — 1 connection, ${c.rounds} × ${c.lightRoundS} s per target`,
    '',
    mdTable(LIGHT_HEAD, lightRows(r)),
    '',
    '## Other figures',
    '',
    ...sideFigures(r).map((s) => `- ${s}`),
    '',
    '## Targets',
    '',
    mdTable(['target', 'figure', 'result'], targetRows(r)),
    '',
  );
  const cgTitle = instructionsTitle(r);
  if (cgTitle) {
    lines.push('## Instructions per call (callgrind)', '', `${cgTitle}.`, '');
    if (!r.instructions?.skipped) {
      lines.push(
        'CPU time per call on a shared VM moves by ±20% from round to round with the host\'s load; a count of the ' +
          'instructions executed does not depend on the host. It is not exact either: when V8 compiles and collects ' +
          'garbage (in threads of its own) varies from run to run: three runs of one build gave ers-bridge 430k to ' +
          '534k and @fastify/http-proxy 480k to 566k, so only differences well beyond 25% can be read from one run. ' +
          "It leaves out kernel time and each instruction's speed " +
          '(cache misses); the servers run one at a time, about 50× slower than natively.',
        '',
        mdTable(INSTRUCTIONS_HEAD, instructionRows(r)),
        '',
      );
    }
  }
  lines.push(...reading(r));
  if (r.profile) {
    const p = r.profile;
    lines.push(
      '## CPU profile of the hot path',
      '',
      `${int(p.loadRps)} req/s under the profiler; ${p.samples.toLocaleString('en-GB')} samples over ` +
        `${(p.sampledMs / 1000).toFixed(1)} s${p.windowed ? ' (the measured load only)' : ' (the whole process: the load window could not be matched)'}, ` +
        `of which ${(p.busyMs / 1000).toFixed(1)} s busy (not idle), for ${int(p.requests)} requests. ` +
        '"% of busy" is the share of non-idle time; µs/req divides by the requests answered in that time ' +
        '(the profiler itself adds to every figure).',
      '',
      `### Top ${p.topSelf.length} functions by self time`,
      '',
      mdTable(PROFILE_HEAD, profileRows(r), 3),
      '',
      '### Self time per request by package, against @fastify/http-proxy',
      '',
      r.profileBaseline
        ? `The baseline was profiled the same way right after (${int(r.profileBaseline.loadRps)} req/s under the profiler, ${int(r.profileBaseline.requests)} requests). "(native/builtin)" is mostly socket writes (\`writev\`, \`writeLatin1String\`): kernel time, which both pay.`
        : 'No baseline profile in this run.',
      '',
      mdTable(PACKAGE_HEAD, packageRows(r, 25)),
      '',
      "### ers-bridge's own functions by self time",
      '',
      mdTable(
        ['function', 'file:line', 'self ms', 'µs/req', '% of busy'],
        p.topSelfOwn.map((x) => [
          x.fn,
          x.location,
          x.selfMs.toFixed(0),
          p.requests ? ((x.selfMs * 1000) / p.requests).toFixed(1) : '–',
          x.pctBusy.toFixed(1),
        ]),
        2,
      ),
      '',
      "### ers-bridge's own functions by inclusive time",
      '',
      'Synchronous time only: an async function counts until its first await, and again for each resumption.',
      '',
      mdTable(
        ['function', 'file:line', 'total ms', '% of busy'],
        p.topInclusiveOwn.map((x) => [x.fn, x.location, x.totalMs.toFixed(0), x.pctBusy.toFixed(1)]),
        2,
      ),
      '',
    );
  }
  for (const t of r.targets) if (t.skipped) lines.push(`- ${t.skipped}`);
  if (r.errors.length) lines.push('## Errors', '', '```', ...r.errors, '```', '');
  return `${lines.join('\n')}\n`;
}
