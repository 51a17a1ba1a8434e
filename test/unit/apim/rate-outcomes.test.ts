/**
 * The in-process limiter's outcomes (counted in ers_bridge_apim_rate_total) and spike arrest: apim.rateLimit with
 * `spikeArrest` is burst 1, one call every 1/requestsPerSecond s (issue 17).
 */
import { describe, expect, it } from 'vitest';
import { RateLimited, RateLimiter, type RateOutcome } from '../../../src/apim/rate-limiter.js';
import { rateLimitOf } from '../../../src/runtime/runtime.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { rulesFor } from '../../helpers/rules.js';

const rules = (rateLimit: Record<string, unknown>) =>
  rulesFor({
    apim: {
      baseUrl: 'http://127.0.0.1:1/referrals/FHIR',
      tokenUrl: 'http://127.0.0.1:1/oauth2/token',
      rateLimit,
    } as never,
    asids: { '999000000001': {} },
  });

describe('rate limiter outcomes and spike arrest', () => {
  it('tells admitted, queued then admitted, and refused', async () => {
    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
    const seen: RateOutcome[] = [];
    const limiter = new RateLimiter({ requestsPerSecond: 10, burst: 1, maxQueue: 1, maxWaitMs: 1000 }, clock, (o) =>
      seen.push(o),
    );
    await limiter.acquire();
    const waiting = limiter.acquire();
    await expect(limiter.acquire()).rejects.toBeInstanceOf(RateLimited);
    await clock.advance(100);
    await waiting;
    expect(seen).toEqual(['admitted', 'queued', 'refused', 'admitted']);
  });

  it('spikeArrest: burst 1 whatever burst says; otherwise burst defaults to the rate', () => {
    expect(rateLimitOf(rules({ requestsPerSecond: 10, spikeArrest: true }))).toEqual({
      requestsPerSecond: 10,
      burst: 1,
      maxQueue: 50,
      maxWaitMs: 5000,
    });
    expect(rateLimitOf(rules({ requestsPerSecond: 10, burst: 7, spikeArrest: true }))?.burst).toBe(1);
    expect(rateLimitOf(rules({ requestsPerSecond: 10 }))?.burst).toBe(10);
    expect(rateLimitOf(rules({ requestsPerSecond: 2.5, burst: 4 }))?.burst).toBe(4);
  });

  it('spike arrest spaces calls evenly: one each 100 ms at 10/s, none two at once', async () => {
    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
    const limiter = new RateLimiter(rateLimitOf(rules({ requestsPerSecond: 10, spikeArrest: true })), clock);
    const at: number[] = [];
    const start = clock.now();
    const calls = Array.from({ length: 10 }, () => limiter.acquire().then(() => at.push(clock.now() - start)));
    await clock.advance(1000);
    await Promise.all(calls);
    expect(at).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
  });
});
