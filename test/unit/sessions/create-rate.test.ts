/** The A001 rate per ASID: a token bucket on the injected clock, refusing at once with the seconds to wait. */
import { describe, expect, it } from 'vitest';
import { CreateRate, SessionRateLimited } from '../../../src/sessions/create-rate.js';
import { ManualClock } from '../../helpers/manual-clock.js';

function refusal(rate: CreateRate): SessionRateLimited {
  try {
    rate.take();
  } catch (e) {
    if (e instanceof SessionRateLimited) return e;
    throw e;
  }
  throw new Error('expected SessionRateLimited');
}

describe('CreateRate', () => {
  it('allows the burst at once, then refuses with the seconds until a token is back', () => {
    const clock = new ManualClock(1_000_000);
    const rate = new CreateRate({ rate: 2, burst: 5 }, clock);
    for (let i = 0; i < 5; i++) rate.take();
    expect(refusal(rate).retryAfterSeconds).toBe(1);
    const slow = new CreateRate({ rate: 0.1, burst: 1 }, clock);
    slow.take();
    expect(refusal(slow).retryAfterSeconds).toBe(10);
  });

  it('refills at the rate, never beyond the burst', async () => {
    const clock = new ManualClock(1_000_000);
    const rate = new CreateRate({ rate: 10, burst: 3 }, clock);
    for (let i = 0; i < 3; i++) rate.take();
    refusal(rate);
    await clock.advance(100); // one token
    rate.take();
    refusal(rate);
    await clock.advance(60_000); // a long quiet spell: still only the burst
    for (let i = 0; i < 3; i++) rate.take();
    refusal(rate);
  });

  it('a refusal costs nothing: waiting the Retry-After is enough', async () => {
    const clock = new ManualClock(1_000_000);
    const rate = new CreateRate({ rate: 1, burst: 1 }, clock);
    rate.take();
    for (let i = 0; i < 50; i++) refusal(rate);
    await clock.advance(refusal(rate).retryAfterSeconds * 1000);
    rate.take();
  });

  it('a clock stepped back neither adds nor takes tokens', () => {
    let now = 1_000_000;
    const clock = { now: () => now, sleep: async () => undefined, after: () => ({ cancel() {} }) };
    const rate = new CreateRate({ rate: 1, burst: 2 }, clock);
    rate.take();
    now -= 60_000;
    rate.take();
    refusal(rate);
    now += 1_000;
    rate.take();
  });
});
