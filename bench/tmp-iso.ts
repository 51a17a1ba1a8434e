import { spawn } from 'node:child_process';
import { Pool } from 'undici';
const fake = spawn(process.execPath, ['--import', 'tsx', 'bench/upstream.ts', 'legacy'], { stdio: ['ignore', 'pipe', 'inherit'] });
const origin: string = await new Promise((r) => fake.stdout!.on('data', (d) => { const m = /http:\/\/127\.0\.0\.1:\d+/.exec(String(d)); if (m) r(m[0]); }));
const pool = new Pool(origin, { connections: 8 });
const path = '/ers-api/STU3/v1/ReferralRequest/000000070000';
async function one() { const r = await pool.request({ method: 'GET', path, headers: { accept: 'application/fhir+json' } }); await r.body.arrayBuffer(); return r.statusCode; }
for (let i = 0; i < 2000; i++) await one();
async function measure(name: string, n: number, gapMs: number | undefined, parallel = 1) {
  const c0 = process.cpuUsage(); const t0 = performance.now();
  for (let i = 0; i < n; i += parallel) {
    await Promise.all(Array.from({ length: parallel }, one));
    if (gapMs !== undefined && gapMs < 0) { const end = performance.now() - gapMs; let x = 0; const o: Record<string, number> = {}; while (performance.now() < end) { o[`k${x++ % 5000}`] = x; JSON.stringify(o).length; } }
    else if (gapMs !== undefined) await new Promise((r) => setTimeout(r, gapMs));
  }
  const c = process.cpuUsage(c0);
  if (gapMs !== undefined && gapMs < 0) { c.user -= (n / parallel) * -gapMs * 1000; }
  console.log(name.padEnd(28), ((c.user + c.system) / n).toFixed(1), 'µs CPU/request', ((performance.now() - t0) / n * 1000).toFixed(0), 'µs wall/request');
}
for (let k = 0; k < 2; k++) {
  await measure('back-to-back x1', 5000, undefined);
  await measure('back-to-back x10', 5000, undefined, 10);
  await measure('gap 0 ms (setTimeout 0)', 3000, 0);
  await measure('gap 1 ms', 2000, 1);
  await measure('gap 2 ms', 1000, 2);
  await measure('spin 1 ms (spin subtracted)', 1000, -1);
  await measure('spin 0.2 ms (subtracted)', 3000, -0.2);
}
fake.kill();
await pool.close();
