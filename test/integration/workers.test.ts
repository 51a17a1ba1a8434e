/**
 * One process per core: `ers-bridge serve --workers 2` — both workers share the port and the Redis sessions, the
 * primary stops them gracefully on SIGTERM; and several workers without a shared store are refused.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  APP_ASID,
  type Harness,
  harnessRules,
  keepForScan,
  legacyCall,
  openSession,
  startHarness,
} from '../helpers/harness.js';
import { connectTestRedisOrFail, deleteKeysUnder, TEST_REDIS_URL, uniqueKeyPrefix } from '../helpers/redis-replicas.js';
import { rulesText } from '../helpers/rules.js';

const BIN = fileURLToPath(new URL('../../bin/ers-bridge.js', import.meta.url));

describe('serve --workers', () => {
  let h: Harness;
  let redis: Redis;
  const prefix = uniqueKeyPrefix();
  const dir = mkdtempSync(join(tmpdir(), 'ers-bridge-workers-'));

  beforeAll(async () => {
    redis = await connectTestRedisOrFail();
    h = await startHarness();
  });
  afterAll(async () => {
    await deleteKeysUnder(redis, prefix);
    redis.disconnect();
    await h?.close();
  });

  function spawnServe(
    rulesFile: string,
    extraEnv: Record<string, string> = {},
  ): { child: ChildProcess; output: () => string } {
    let text = '';
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--rules', rulesFile, '--port', '0', '--ops-port', '0', '--workers', '2'],
      {
        env: {
          ...process.env,
          ERS_BRIDGE_FROM_SOURCE: '1',
          ...h.env,
          SESSION_KEY_1: randomBytes(32).toString('base64'),
          ...extraEnv,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // its own process group, so a failed test can stop the workers too
      },
    );
    child.stdout!.on('data', (d) => {
      text += d;
    });
    child.stderr!.on('data', (d) => {
      text += d;
    });
    child.on('exit', () => keepForScan(text));
    return { child, output: () => text };
  }

  it('two workers share the port and the sessions, and stop gracefully with the primary', async () => {
    const file = join(dir, 'rules.yaml');
    writeFileSync(
      file,
      rulesText(
        harnessRules(h.standIn, {
          sessions: {
            store: 'redis',
            redis: { url: TEST_REDIS_URL, keyPrefix: prefix },
            encryption: { current: 'k1', keys: { k1: 'env:SESSION_KEY_1' } },
          },
        }),
      ),
    );
    const { child, output } = spawnServe(file);
    try {
      const listening = () =>
        [...output().matchAll(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/g)].map((m) => m[1]!);
      await vi.waitFor(() => expect(listening().length, output()).toBe(2), { timeout: 15_000, interval: 50 });
      const addresses = listening();
      expect(addresses[0]).toBe(addresses[1]); // one port, shared
      const harness = { ...h, bridgeUrl: addresses[0]! } as Harness;
      const key = await openSession(harness);
      const results = await Promise.all(
        Array.from({ length: 20 }, () =>
          legacyCall(harness, 'GET', '/ers-api/STU3/v1/ReferralRequest/000000070000', {
            XAPI_ASID: APP_ASID,
            HTTP_X_SESSION_KEY: key,
            Connection: 'close', // a new connection each time, so the primary spreads them over the workers
          }),
        ),
      );
      expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
      // Each call is logged by the worker that answered it; the lines reach the pipe after the answers.
      const a005Lines = () =>
        output()
          .split('\n')
          .filter((l) => l.includes('"aCode":"A005"'));
      await vi.waitUntil(() => a005Lines().filter((l) => l.includes('"msg":"legacy call"')).length >= 20, {
        timeout: 5_000,
        interval: 20,
      });
      const pids = new Set(a005Lines().map((l) => JSON.parse(l).pid as number));
      expect(pids.size).toBe(2); // both workers answered, with sessions from Redis
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(output().match(/ers-bridge stopped/g)?.length).toBe(2);
    } finally {
      if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGKILL');
    }
  });

  it('several workers with the in-memory store are refused (exit 2): they could not share sessions', async () => {
    const file = join(dir, 'memory.yaml');
    writeFileSync(file, rulesText(harnessRules(h.standIn)));
    const { child, output } = spawnServe(file);
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(2);
    expect(output()).toMatch(/shared session store/);
  });
});
