/**
 * Comparisons a team can decide a go-live on (issue 14), with real `ers-bridge serve` processes:
 *  - two replicas on one Redis (a key prefix of this file's own, deleted afterwards): comparisons made on one appear on
 *    the other's page, which names both replicas; a reset confirmed on one replica (GET the form, POST it to the
 *    other) clears them for both; every key the comparisons leave in Redis expires, and holds nothing personal;
 *  - one replica with the memory session store and comparison.file: restarted, it shows its earlier comparisons.
 * The legacy stand-in and the APIM stand-in run in the test process; ers-bridge shadows A005 (the legacy host
 * answers, APIM is compared).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest';
import { type ApimStandIn, startApimStandIn } from '../../src/apim-standin/index.js';
import { newApimApp } from '../helpers/apim-app.js';
import { type LegacyStandIn, startLegacyStandIn } from '../helpers/legacy-standin.js';
import {
  A005_PATH,
  a001Body,
  type BridgeProcess,
  callBridge,
  connectTestRedisOrFail,
  deleteKeysUnder,
  expectStatus,
  keysUnder,
  SESSION_PATH,
  spawnBridge,
  TEST_REDIS_URL,
  uniqueKeyPrefix,
} from '../helpers/redis-replicas.js';
import { type RulesOptions, rulesText } from '../helpers/rules.js';

const APP_ASID = '999000000001';
const ADMIN_TOKEN = randomBytes(24).toString('hex');
const bearer = { Authorization: `Bearer ${ADMIN_TOKEN}` };

let admin: Redis;
let prefix: string;
let legacy: LegacyStandIn;
let standIn: ApimStandIn;
let dir: string;
let env: Record<string, string>;
let base: RulesOptions;
const running: BridgeProcess[] = [];

function dumpOnFailure(): void {
  onTestFailed(() => {
    for (const p of running) console.error(`--- output of ers-bridge ${p.name} (${p.url}) ---\n${p.output()}`);
  });
}

async function start(name: string, rules: RulesOptions): Promise<BridgeProcess> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, rulesText(rules));
  const p = await spawnBridge(name, file, env);
  running.push(p);
  return p;
}

/** A session on a replica, with its role selected. */
async function session(p: BridgeProcess): Promise<Record<string, string>> {
  const a001 = expectStatus(
    await callBridge(
      p.url,
      'POST',
      SESSION_PATH,
      { XAPI_ASID: APP_ASID, 'Content-Type': 'application/json' },
      a001Body('ticket'),
    ),
    201,
    `A001 on ${p.name}`,
  );
  const s = a001.json();
  expectStatus(
    await callBridge(
      p.url,
      'PUT',
      `${SESSION_PATH}/${s.id}`,
      { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: s.id, 'Content-Type': 'application/json' },
      JSON.stringify({ ...s, permission: s.user.permissions[0] }),
    ),
    200,
    `A002 on ${p.name}`,
  );
  return { XAPI_ASID: APP_ASID, HTTP_X_SESSION_KEY: s.id };
}

async function adminGet(
  p: BridgeProcess,
  path: string,
): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  const res = await request(`${p.url}${path}`, { headers: bearer });
  return { status: res.statusCode, text: await res.body.text(), headers: res.headers };
}

async function summaryOf(p: BridgeProcess): Promise<any> {
  const res = await adminGet(p, '/admin/compare');
  expect(res.status).toBe(200);
  return JSON.parse(res.text);
}

const a005Of = (s: any) => s.codes.find((c: { aCode: string }) => c.aCode === 'A005');

beforeAll(async () => {
  admin = await connectTestRedisOrFail();
  prefix = uniqueKeyPrefix();
  dir = mkdtempSync(join(tmpdir(), 'ers-bridge-shared-cmp-'));
  legacy = await startLegacyStandIn({});
  const app = await newApimApp({ asid: APP_ASID });
  standIn = await startApimStandIn({ apps: [app.standInApp] });
  env = { ADMIN_TOKEN, SESSION_KEY_1: randomBytes(32).toString('base64'), ...app.env };
  base = {
    environment: 'test-shared-comparisons',
    legacy: { host: 'api.int1.ers.ncrs.nhs.uk', baseUrl: legacy.baseUrl, production: false },
    apim: { baseUrl: standIn.baseUrl, tokenUrl: standIn.tokenUrl },
    modes: { default: 'translate', routes: { A005: 'shadow' }, shadow: { primary: 'legacy', timeoutMs: 3000 } },
    admin: { token: 'env:ADMIN_TOKEN' },
    asids: { [APP_ASID]: { apim: app.apim } },
  };
}, 30_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
  await standIn?.close();
  await legacy?.close();
  if (admin) {
    await deleteKeysUnder(admin, prefix);
    admin.disconnect();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('two replicas on one Redis', () => {
  let p1: BridgeProcess;
  let p2: BridgeProcess;

  beforeAll(async () => {
    const rules: RulesOptions = {
      ...base,
      sessions: {
        store: 'redis',
        redis: { url: TEST_REDIS_URL, keyPrefix: prefix },
        encryption: { current: 'k1', keys: { k1: 'env:SESSION_KEY_1' } },
      },
    };
    [p1, p2] = await Promise.all([start('replica-1', rules), start('replica-2', rules)]);
  }, 60_000);

  it("comparisons made on one replica appear on the other's page, which names both replicas", async () => {
    dumpOnFailure();
    const onP1 = await session(p1);
    for (let i = 0; i < 3; i++)
      expectStatus(await callBridge(p1.url, 'GET', A005_PATH, onP1), 200, 'A005 on replica 1');
    await vi.waitUntil(async () => a005Of(await summaryOf(p2))?.compared === 3, { timeout: 10_000, interval: 100 });

    const onP2 = await session(p2);
    expectStatus(await callBridge(p2.url, 'GET', A005_PATH, onP2), 200, 'A005 on replica 2');
    await vi.waitUntil(async () => a005Of(await summaryOf(p1))?.compared === 4, { timeout: 10_000, interval: 100 });

    // Call counts are coalesced and written once a second: wait until both replicas' pages have settled on 4 calls.
    const callsOf = (s: any) => s.asids.find((a: { asid: string }) => a.asid === APP_ASID)?.codes?.[0]?.calls;
    await vi.waitUntil(
      async () => {
        const [a, b] = await Promise.all([summaryOf(p1), summaryOf(p2)]);
        return callsOf(a) === 4 && callsOf(b) === 4;
      },
      { timeout: 10_000, interval: 100 },
    );
    const [s1, s2] = await Promise.all([summaryOf(p1), summaryOf(p2)]);
    expect(s1.scope).toBe('shared');
    // The same figures, whichever replica answers.
    expect(s2.codes).toEqual(s1.codes);
    expect(s2.asids).toEqual(s1.asids);
    expect(a005Of(s2)).toMatchObject({
      compared: 4,
      different: 4,
      topFields: [{ path: 'header:content-disposition', count: 4 }],
    });
    const id1 = `${hostname()}:${p1.child.pid}`;
    const id2 = `${hostname()}:${p2.child.pid}`;
    expect(s2.replicas.map((r: { id: string; records: number }) => [r.id, r.records]).sort()).toEqual(
      [
        [id1, 3],
        [id2, 1],
      ].sort(),
    );
    // Readiness counts the calls of both replicas (coalesced, written within a second).
    await vi.waitUntil(async () => (await summaryOf(p2)).asids[0]?.codes[0]?.calls === 4, {
      timeout: 10_000,
      interval: 100,
    });

    const page = await adminGet(p2, '/admin/compare/ui?window=hour');
    expect(page.status).toBe(200);
    expect(page.text).toContain('Every ers-bridge replica sharing this Redis');
    expect(page.text).toContain(`<code>${id1}</code>: 3 comparisons`);
    expect(page.text).toContain(`<code>${id2}</code> (this page): 1 comparison`);
    expect(page.text).toMatch(/Last hour: <time datetime="[^"]+">[^<]+(GMT|BST)<\/time> to/);
    // The trend's points are the same on both replicas.
    const t1 = JSON.parse((await adminGet(p1, '/admin/compare/trend?window=hour')).text);
    const t2 = JSON.parse((await adminGet(p2, '/admin/compare/trend?window=hour')).text);
    expect(t2.points).toEqual(t1.points);
    expect(t2.points.reduce((n: number, p: any) => n + (p.codes.A005?.compared ?? 0), 0)).toBe(4);
  });

  it('what the comparisons keep in Redis expires, is bounded, and holds no session key or NHS number', async () => {
    const keys = (await keysUnder(admin, `${prefix}cmp:`)).sort();
    expect(keys.length).toBeGreaterThan(4);
    for (const k of keys) expect(await admin.pttl(k), k).toBeGreaterThan(0);
    const kinds = new Set(keys.map((k) => k.slice(`${prefix}cmp:`.length).replace(/:.*$/, '')));
    expect([...kinds].sort()).toEqual(['b5', 'b60', 'idx5', 'idx60', 'meta', 'replicas', 's']);
    expect(await admin.llen(`${prefix}cmp:s:A005`)).toBe(4);
    const text = (
      await Promise.all(
        keys.map(async (k) => {
          const type = await admin.type(k);
          if (type === 'hash') return JSON.stringify(await admin.hgetall(k));
          if (type === 'list') return JSON.stringify(await admin.lrange(k, '0', '-1'));
          if (type === 'zset') return JSON.stringify(await admin.zrange(k, '0', '-1'));
          return String(await admin.get(k));
        }),
      )
    ).join('\n');
    expect(text).not.toMatch(/pro-api-session:[0-9a-f]/);
    const fixture = readFileSync(
      new URL('../../fixtures/ers-api/examples/stu3/retrieveReferralRequest/responses/Unbooked.json', import.meta.url),
      'utf8',
    );
    const nhsNumbers = [...fixture.matchAll(/"value":\s*"(\d{10})"/g)].map((m) => m[1]!);
    expect(nhsNumbers.length).toBeGreaterThan(0);
    for (const n of nhsNumbers) expect(text).not.toContain(n);
  });

  it('a reset confirmed on one replica (GET the form, POST it to the other) clears the figures for both', async () => {
    dumpOnFailure();
    const form = await adminGet(p1, '/admin/compare/reset');
    expect(form.status).toBe(200);
    expect(form.text).toContain('for every replica sharing this Redis');
    const token = /name="confirm" value="([^"]+)"/.exec(form.text)?.[1];
    expect(token).toBeDefined();
    // A forged post (no confirmation, or another site's Origin) changes nothing.
    const forged = await request(`${p2.url}/admin/compare/reset`, {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'confirm=guess',
    });
    expect(forged.statusCode).toBe(403);
    await forged.body.text();
    const cross = await request(`${p2.url}/admin/compare/reset`, {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      body: `confirm=${encodeURIComponent(token!)}`,
    });
    expect(cross.statusCode).toBe(403);
    await cross.body.text();
    expect(a005Of(await summaryOf(p2)).compared).toBe(4);

    const done = await request(`${p2.url}/admin/compare/reset`, {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/x-www-form-urlencoded' },
      body: `confirm=${encodeURIComponent(token!)}`,
    });
    expect(done.statusCode).toBe(303);
    expect(done.headers['location']).toBe('/admin/compare/ui?reset=done');
    await done.body.text();
    for (const p of [p1, p2]) {
      const s = await summaryOf(p);
      expect(s.records, p.name).toBe(0);
      expect(s.codes).toEqual([]);
      expect(s.resetAt).toEqual(expect.any(String));
    }
    // The confirmation was used: it does not work twice.
    const again = await request(`${p1.url}/admin/compare/reset`, {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/x-www-form-urlencoded' },
      body: `confirm=${encodeURIComponent(token!)}`,
    });
    expect(again.statusCode).toBe(403);
    await again.body.text();
  });
});

describe('the memory session store and comparison.file', () => {
  it('a restarted process shows its earlier comparisons, read back from the file', async () => {
    dumpOnFailure();
    const rules: RulesOptions = { ...base, comparison: { file: join(dir, 'memory', 'compare.jsonl') } };
    const first = await start('memory-1', rules);
    const headers = await session(first);
    for (let i = 0; i < 2; i++) expectStatus(await callBridge(first.url, 'GET', A005_PATH, headers), 200, 'A005');
    await vi.waitUntil(async () => a005Of(await summaryOf(first))?.compared === 2, { timeout: 10_000, interval: 100 });
    const before = await summaryOf(first);
    expect(before.scope).toBe('process');
    await first.stop();
    running.splice(running.indexOf(first), 1);

    const second = await start('memory-2', rules);
    const after = await summaryOf(second);
    expect(a005Of(after)).toEqual(a005Of(before));
    expect(after.asids).toEqual(before.asids);
    expect(after.replicas).toEqual([{ id: `${hostname()}:${first.child.pid}`, records: 2 }]);
    expect(second.output()).toContain('comparisons read back from comparison.file');
    const page = await adminGet(second, '/admin/compare/ui');
    expect(page.text).toContain('This process only');
    expect(page.text).toMatch(/2 comparisons recorded since/);
  }, 60_000);
});
