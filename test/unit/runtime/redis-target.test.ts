import { describe, expect, it } from 'vitest';
import { secretResolver } from '../../../src/rules/secrets.js';
import { redisTargetOf } from '../../../src/runtime/process-state.js';

describe('redisTargetOf: the rules’ sessions.redis as what the connection is given', () => {
  const choice = {
    resolveSecret: secretResolver({ REDIS_PASSWORD: 'p1', SENTINEL_PASSWORD: 's1', REDIS_URL: 'redis://:x@r:6379' }),
  };

  it('a Sentinel group: host:port split (IPv6 in brackets), secrets resolved, unset credentials left out', async () => {
    const t = await redisTargetOf(
      {
        sentinel: {
          sentinels: ['sentinel-0:26379', '[fd00::2]:26380', '10.0.0.3:26381'],
          masterName: 'ers-sessions',
          username: 'ers',
          password: 'env:REDIS_PASSWORD',
          sentinelPassword: 'env:SENTINEL_PASSWORD',
          tls: true,
        },
        keyPrefix: 'ers-bridge:',
        timeoutMs: 2000,
      },
      'prod.yaml',
      choice,
    );
    expect(t).toEqual({
      sentinels: [
        { host: 'sentinel-0', port: 26379 },
        { host: 'fd00::2', port: 26380 },
        { host: '10.0.0.3', port: 26381 },
      ],
      masterName: 'ers-sessions',
      username: 'ers',
      password: 'p1',
      sentinelPassword: 's1',
      tls: true,
    });
    const bare = await redisTargetOf(
      { sentinel: { sentinels: ['s:1'], masterName: 'm', tls: false }, keyPrefix: 'x:', timeoutMs: 2000 },
      'prod.yaml',
      choice,
    );
    expect(bare).toEqual({ sentinels: [{ host: 's', port: 1 }], masterName: 'm', tls: false });
  });

  it('one node: the URL as written, or the one its secret reference holds', async () => {
    expect(await redisTargetOf({ url: 'redis://r:6379', keyPrefix: 'x:', timeoutMs: 2000 }, 'a.yaml', choice)).toBe(
      'redis://r:6379',
    );
    expect(await redisTargetOf({ url: 'env:REDIS_URL', keyPrefix: 'x:', timeoutMs: 2000 }, 'a.yaml', choice)).toBe(
      'redis://:x@r:6379',
    );
  });

  it('a cluster: seed nodes split (IPv6 in brackets), the password resolved, unset credentials left out', async () => {
    const t = await redisTargetOf(
      {
        cluster: {
          nodes: ['redis-0:6379', '[fd00::3]:6380'],
          username: 'ers',
          password: 'env:REDIS_PASSWORD',
          tls: true,
        },
        keyPrefix: 'x:',
        timeoutMs: 2000,
      },
      'prod.yaml',
      choice,
    );
    expect(t).toEqual({
      nodes: [
        { host: 'redis-0', port: 6379 },
        { host: 'fd00::3', port: 6380 },
      ],
      username: 'ers',
      password: 'p1',
      tls: true,
    });
    const bare = await redisTargetOf(
      { cluster: { nodes: ['r:1'], tls: false }, keyPrefix: 'x:', timeoutMs: 2000 },
      'a.yaml',
      choice,
    );
    expect(bare).toEqual({ nodes: [{ host: 'r', port: 1 }], tls: false });
  });

  it('a missing secret names the field it was for', async () => {
    await expect(
      redisTargetOf(
        {
          sentinel: { sentinels: ['s:1'], masterName: 'm', password: 'env:NOPE', tls: false },
          keyPrefix: 'x:',
          timeoutMs: 1,
        },
        'prod.yaml',
        choice,
      ),
    ).rejects.toThrow(/sessions\.redis\.sentinel\.password/);
  });
});
