import { describe, expect, it, vi } from 'vitest';
import { type ApimDispatch, type ApimWrapper, bufferBody, composeApim } from '../../../src/apim/dispatch.js';
import { FreshTokenRefused } from '../../../src/apim/errors.js';
import { forwardTo } from '../../../src/apim/forward.js';
import { RateLimited, RateLimiter, RetryBudget } from '../../../src/apim/rate-limiter.js';
import { type Upstream, UpstreamError } from '../../../src/apim/upstream.js';
import { apimPause, retryAfterSeconds } from '../../../src/apim/wrappers/apim-pause.js';
import { bearerToken, type TokenSource } from '../../../src/apim/wrappers/bearer-token.js';
import { connectionRetry } from '../../../src/apim/wrappers/connection-retry.js';
import { rateSlot } from '../../../src/apim/wrappers/rate-slot.js';
import { timing } from '../../../src/apim/wrappers/timing.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { apimCall, apimResponse, endpoint, rejectionOf } from '../pipeline/fakes.js';

const START = Date.parse('2025-03-01T12:00:00Z');

/** A fake `next`: answers each call with the next of `statuses` (the last one repeats). */
function answering(...statuses: number[]) {
  const responses: ReturnType<typeof apimResponse>[] = [];
  let i = 0;
  const next = vi.fn<ApimDispatch>(async () => {
    const r = apimResponse(statuses[Math.min(i++, statuses.length - 1)]!);
    responses.push(r);
    return { response: r };
  });
  return { next, responses };
}

const strictLimit = (clock: ManualClock) =>
  new RateLimiter({ requestsPerSecond: 1, burst: 1, maxQueue: 0, maxWaitMs: 0 }, clock);

describe('rateSlot', () => {
  it('takes a slot from the limiter before calling next', async () => {
    const limiter = strictLimit(new ManualClock(START));
    const acquire = vi.spyOn(limiter, 'acquire');
    const { next } = answering(200);
    const result = await rateSlot(limiter)(next)(apimCall());
    expect(result.response.statusCode).toBe(200);
    expect(acquire).toHaveBeenCalledTimes(1);
    expect(acquire.mock.invocationCallOrder[0]!).toBeLessThan(next.mock.invocationCallOrder[0]!);
  });

  it("the limiter's RateLimited propagates and next is not called; a second later there is a slot again", async () => {
    const clock = new ManualClock(START);
    const { next } = answering(200);
    const dispatch = rateSlot(strictLimit(clock))(next);
    await dispatch(apimCall());
    const e = await rejectionOf(dispatch(apimCall()));
    expect(e).toBeInstanceOf(RateLimited);
    expect((e as RateLimited).retryAfterSeconds).toBe(1);
    expect(next).toHaveBeenCalledTimes(1);
    await clock.advance(1000);
    await dispatch(apimCall());
    expect(next).toHaveBeenCalledTimes(2);
  });

  it('a slot granted at once goes straight on: next is called in the same turn, its promise returned as it is', () => {
    const limiter = strictLimit(new ManualClock(START));
    const answer = Promise.resolve({ response: apimResponse(200) });
    const next = vi.fn<ApimDispatch>(() => answer);
    const call = apimCall();
    const result = rateSlot(limiter)(next)(call);
    expect(next).toHaveBeenCalledTimes(1);
    expect(next).toHaveBeenCalledWith(call);
    expect(result).toBe(answer);
  });

  it('a queued slot: next is called only once the limiter admits the call, with the same call', async () => {
    const clock = new ManualClock(START);
    const limiter = new RateLimiter({ requestsPerSecond: 10, burst: 1, maxQueue: 1, maxWaitMs: 1000 }, clock);
    const { next } = answering(201);
    const dispatch = rateSlot(limiter)(next);
    await dispatch(apimCall());
    const call = apimCall(endpoint('A010'));
    const pending = dispatch(call);
    await Promise.resolve();
    await Promise.resolve();
    expect(next).toHaveBeenCalledTimes(1);
    await clock.advance(99);
    expect(next).toHaveBeenCalledTimes(1);
    await clock.advance(1);
    expect(next).toHaveBeenCalledTimes(2);
    expect(next).toHaveBeenLastCalledWith(call);
    expect((await pending).response.statusCode).toBe(201);
  });
});

describe('apimPause', () => {
  const roomyLimit = (clock: ManualClock) =>
    new RateLimiter({ requestsPerSecond: 100, burst: 100, maxQueue: 10, maxWaitMs: 0 }, clock);

  it("APIM's 429 with Retry-After: 3 pauses the limiter for 3 s; the answer itself is returned", async () => {
    const clock = new ManualClock(START);
    const limiter = roomyLimit(clock);
    const next = vi.fn<ApimDispatch>(async () => ({ response: apimResponse(429, { 'retry-after': '3' }) }));
    const result = await apimPause(limiter, clock)(next)(apimCall());
    expect(result.response.statusCode).toBe(429);
    const e = await rejectionOf(limiter.acquire());
    expect(e).toBeInstanceOf(RateLimited);
    expect((e as RateLimited).retryAfterSeconds).toBe(3);
    await clock.advance(3000);
    await expect(limiter.acquire()).resolves.toBeUndefined();
  });

  it('a Retry-After date is read against the clock given', async () => {
    const clock = new ManualClock(START);
    const limiter = roomyLimit(clock);
    const at = new Date(START + 10_000).toUTCString();
    const next = vi.fn<ApimDispatch>(async () => ({ response: apimResponse(429, { 'retry-after': at }) }));
    await apimPause(limiter, clock)(next)(apimCall());
    expect(((await rejectionOf(limiter.acquire())) as RateLimited).retryAfterSeconds).toBe(10);
  });

  it('any other status does not pause, even with a Retry-After', async () => {
    const clock = new ManualClock(START);
    const limiter = roomyLimit(clock);
    const pause = vi.spyOn(limiter, 'pause');
    for (const status of [200, 401, 503]) {
      const next = vi.fn<ApimDispatch>(async () => ({ response: apimResponse(status, { 'retry-after': '3' }) }));
      await apimPause(limiter, clock)(next)(apimCall());
    }
    expect(pause).not.toHaveBeenCalled();
    await expect(limiter.acquire()).resolves.toBeUndefined();
  });

  describe('retryAfterSeconds', () => {
    const now = START;
    it.each([
      ['3', 3],
      ['2.1', 3],
      ['0', 0],
      ['86400', 3600],
      [undefined, 1],
      ['', 1],
      ['soon', 1],
      // Not a delay in seconds: a negative or infinite number falls to the HTTP-date reading, which refuses it.
      ['-5', 1],
      ['Infinity', 1],
      [['4', '9'], 4],
    ] as Array<[string | string[] | undefined, number]>)('%o → %i', (value, seconds) => {
      expect(retryAfterSeconds(value, now)).toBe(seconds);
    });

    it('an HTTP date: the seconds from now, rounded up, at least 1, at most 3600', () => {
      expect(retryAfterSeconds(new Date(now + 4_500).toUTCString(), now)).toBe(4);
      expect(retryAfterSeconds(new Date(now + 120_000).toUTCString(), now)).toBe(120);
      expect(retryAfterSeconds(new Date(now - 60_000).toUTCString(), now)).toBe(1);
      expect(retryAfterSeconds(new Date(now + 7_200_000).toUTCString(), now)).toBe(3600);
      // the same date read later gives fewer seconds
      const at = new Date(now + 60_000).toUTCString();
      expect(retryAfterSeconds(at, now + 30_000)).toBe(30);
    });
  });
});

describe('timing', () => {
  it("adds upstreamMs: the time next took, in ms to 3 decimals, keeping next's result", async () => {
    const now = vi.spyOn(performance, 'now').mockReturnValueOnce(1000).mockReturnValueOnce(1012.34567);
    try {
      const next = vi.fn<ApimDispatch>(async () => ({ response: apimResponse(200), tokenRenewed: true }));
      const result = await timing()(next)(apimCall());
      expect(result.upstreamMs).toBe(12.346);
      expect(result.tokenRenewed).toBe(true);
      expect(result.response.statusCode).toBe(200);
    } finally {
      now.mockRestore();
    }
  });

  it('a real measurement is a number ≥ 0', async () => {
    const { next } = answering(204);
    const result = await timing()(next)(apimCall());
    expect(typeof result.upstreamMs).toBe('number');
    expect(result.upstreamMs).toBeGreaterThanOrEqual(0);
  });
});

describe('bearerToken', () => {
  function tokens(current: string | undefined, fresh = 'token-2') {
    return {
      current: vi.fn<TokenSource['current']>(async () => current),
      renew: vi.fn<TokenSource['renew']>(async () => fresh),
    };
  }

  it('sends the current token as Authorization: Bearer, leaving the call given unchanged', async () => {
    const t = tokens('token-1');
    const { next } = answering(200);
    const call = apimCall();
    const result = await bearerToken(t)(next)(call);
    expect(next.mock.calls[0]![0].request.headers['authorization']).toBe('Bearer token-1');
    expect(next.mock.calls[0]![0].request.headers['x-correlation-id']).toBe('corr-1');
    expect(call.request.headers).not.toHaveProperty('authorization');
    expect(result.tokenRenewed).toBeUndefined();
  });

  it('no token from the source (open sandbox) → no Authorization header', async () => {
    const t = tokens(undefined);
    const { next } = answering(200, 401);
    const call = apimCall();
    await bearerToken(t)(next)(call);
    expect(next).toHaveBeenCalledWith(call);
    expect(next.mock.calls[0]![0].request.headers).not.toHaveProperty('authorization');
  });

  it('401 → the answer is dumped, the token renewed once (given the refused one) and the call sent again', async () => {
    const t = tokens('token-1', 'token-2');
    const { next, responses } = answering(401, 200);
    const result = await bearerToken(t)(next)(apimCall());
    expect(responses[0]!.body.dump).toHaveBeenCalledTimes(1);
    expect(t.renew).toHaveBeenCalledTimes(1);
    expect(t.renew).toHaveBeenCalledWith('token-1');
    expect(next).toHaveBeenCalledTimes(2);
    expect(next.mock.calls[1]![0].request.headers['authorization']).toBe('Bearer token-2');
    expect(result.response).toBe(responses[1]);
    expect(result.tokenRenewed).toBe(true);
    expect(responses[1]!.body.dump).not.toHaveBeenCalled();
  });

  it('401 to the fresh token too → FreshTokenRefused, both answers dumped, no third try', async () => {
    const t = tokens('token-1');
    const { next, responses } = answering(401, 401);
    const e = await rejectionOf(bearerToken(t)(next)(apimCall()));
    expect(e).toBeInstanceOf(FreshTokenRefused);
    expect(next).toHaveBeenCalledTimes(2);
    expect(responses.map((r) => r.body.dump.mock.calls.length)).toEqual([1, 1]);
    expect(t.renew).toHaveBeenCalledTimes(1);
  });

  it('any other status (403, 429, 500) → returned as is, never renewed', async () => {
    for (const status of [403, 429, 500]) {
      const t = tokens('token-1');
      const { next, responses } = answering(status);
      const result = await bearerToken(t)(next)(apimCall());
      expect(result.response.statusCode).toBe(status);
      expect(t.renew).not.toHaveBeenCalled();
      expect(next).toHaveBeenCalledTimes(1);
      expect(responses[0]!.body.dump).not.toHaveBeenCalled();
    }
  });
});

describe('connectionRetry', () => {
  const refused = () => new UpstreamError('unreachable', 'APIM', 'https://apim.test', 'ECONNREFUSED', true);
  /** A next that throws the given errors first, then answers 200. */
  function failing(...errors: Error[]) {
    let i = 0;
    return vi.fn<ApimDispatch>(async () => {
      const e = errors[i++];
      if (e) throw e;
      return { response: apimResponse(200) };
    });
  }
  const readOnly = endpoint('A005');
  const write = endpoint('A010');

  it('a retryable failure on a read-only operation is retried once', async () => {
    const next = failing(refused());
    const result = await connectionRetry(new RetryBudget())(next)(apimCall(readOnly));
    expect(result.response.statusCode).toBe(200);
    expect(next).toHaveBeenCalledTimes(2);
  });

  it('only once: a second failure is thrown', async () => {
    const second = refused();
    const next = failing(refused(), second);
    expect(await rejectionOf(connectionRetry(new RetryBudget())(next)(apimCall(readOnly)))).toBe(second);
    expect(next).toHaveBeenCalledTimes(2);
  });

  it('an operation with side effects is never retried', async () => {
    const e = refused();
    const next = failing(e);
    expect(await rejectionOf(connectionRetry(new RetryBudget())(next)(apimCall(write)))).toBe(e);
    expect(next).toHaveBeenCalledTimes(1);
  });

  it('not when the call was aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const next = failing(refused());
    await rejectionOf(connectionRetry(new RetryBudget())(next)(apimCall(readOnly, { signal: controller.signal })));
    expect(next).toHaveBeenCalledTimes(1);
  });

  it('a failure that is not retryable (a timeout, or not an UpstreamError) is not retried', async () => {
    for (const e of [new UpstreamError('headers-timeout', 'APIM', '', ''), new Error('bug')]) {
      const next = failing(e);
      expect(await rejectionOf(connectionRetry(new RetryBudget())(next)(apimCall(readOnly)))).toBe(e);
      expect(next).toHaveBeenCalledTimes(1);
    }
  });

  it('not when the retry budget is spent; the budget refills with its window', async () => {
    const clock = new ManualClock(START);
    const budget = new RetryBudget(0.1, 0, 10_000, clock);
    const dispatch = (next: ApimDispatch) => connectionRetry(budget)(next)(apimCall(readOnly));
    const first = failing(refused());
    await dispatch(first); // 1 call: 0.1 of a retry available, so one is taken
    expect(first).toHaveBeenCalledTimes(2);
    const second = failing(refused());
    await rejectionOf(dispatch(second)); // 2 calls, 1 retry already: 1 ≥ 0.2
    expect(second).toHaveBeenCalledTimes(1);
    await clock.advance(10_000);
    const third = failing(refused());
    await dispatch(third);
    expect(third).toHaveBeenCalledTimes(2);
  });

  it('counts one call in the budget per call, retried or not', async () => {
    const budget = new RetryBudget();
    const call = vi.spyOn(budget, 'call');
    const allow = vi.spyOn(budget, 'allowRetry');
    await connectionRetry(budget)(failing(refused()))(apimCall(readOnly));
    expect(call).toHaveBeenCalledTimes(1);
    expect(allow).toHaveBeenCalledTimes(1);
    await connectionRetry(budget)(failing())(apimCall(readOnly));
    expect(call).toHaveBeenCalledTimes(2);
    expect(allow).toHaveBeenCalledTimes(1);
  });
});

describe('composeApim', () => {
  it('the first wrapper sees the call first and the result last', async () => {
    const order: string[] = [];
    const named =
      (name: string): ApimWrapper =>
      (next) =>
      async (call) => {
        order.push(`${name} in`);
        const result = await next(call);
        order.push(`${name} out`);
        return result;
      };
    const forward = vi.fn<ApimDispatch>(async () => {
      order.push('forward');
      return { response: apimResponse(200) };
    });
    await composeApim([named('a'), named('b'), named('c')], forward)(apimCall());
    expect(order).toEqual(['a in', 'b in', 'c in', 'forward', 'c out', 'b out', 'a out']);
  });

  it('no wrappers: the forward step itself', () => {
    const forward: ApimDispatch = async () => ({ response: apimResponse(200) });
    expect(composeApim([], forward)).toBe(forward);
  });
});

describe('bufferBody', () => {
  it('the same bytes on every next(), and their length', async () => {
    const bytes = Buffer.from('{"resourceType":"Parameters"}');
    const body = bufferBody(bytes);
    expect(body.length).toBe(bytes.length);
    expect(await body.next()).toBe(bytes);
    expect(await body.next()).toBe(bytes);
  });

  it('no body: undefined, with no length', async () => {
    const body = bufferBody(undefined);
    expect(await body.next()).toBeUndefined();
    expect('length' in body).toBe(false);
  });
});

describe('forwardTo', () => {
  function fakeUpstream() {
    const response = apimResponse(200);
    const request = vi.fn(async (_req: unknown) => response);
    return { upstream: { request } as unknown as Upstream, request, response };
  }

  it('sends method, path, headers, the body of call.body.next() and the signal; returns the answer', async () => {
    const { upstream, request, response } = fakeUpstream();
    const bytes = Buffer.from('abc');
    const next = vi.fn(async () => bytes);
    const signal = new AbortController().signal;
    const call = apimCall(endpoint('A010'), {
      request: { method: 'POST', path: '/referrals/FHIR/STU3/x?y=1', headers: { a: '1' } },
      body: { next, length: 3 },
      signal,
    });
    const result = await forwardTo(upstream)(call);
    expect(result).toEqual({ response });
    expect(next).toHaveBeenCalledTimes(1);
    expect(request).toHaveBeenCalledWith({
      method: 'POST',
      path: '/referrals/FHIR/STU3/x?y=1',
      headers: { a: '1' },
      body: bytes,
      signal,
    });
  });

  it('no signal → none passed; no body → undefined', async () => {
    const { upstream, request } = fakeUpstream();
    await forwardTo(upstream)(apimCall());
    const sent = request.mock.calls[0]![0] as Record<string, unknown>;
    expect(sent).not.toHaveProperty('signal');
    expect(sent['body']).toBeUndefined();
  });
});
