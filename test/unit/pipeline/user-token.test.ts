import { describe, expect, it, vi } from 'vitest';
import { TokenUnavailableError } from '../../../src/auth/apim-oauth.js';
import type { ApimUserTokens, UserTokenSet } from '../../../src/auth/user-token.js';
import { knownFault } from '../../../src/pipeline/faults.js';
import { obtainUserToken, type UserTokenDeps, type UserTokenSubject } from '../../../src/pipeline/user-token.js';
import type { Session } from '../../../src/sessions/session.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { HOUR, legacyRejection, memoryStore, rejectionOf, userSession } from './fakes.js';

const START = Date.parse('2025-03-01T08:00:00Z');
const KEY = 'pro-api-session:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
const ASID = '200000000002';

function tokenSet(n: number, now: number): UserTokenSet {
  return {
    accessToken: `access-${n}`,
    accessExpiresAt: now + 599_000,
    refreshToken: `refresh-${n}`,
    refreshExpiresAt: now + 12 * HOUR,
  };
}

/** A store holding one user session (access token `access-1` expiring `accessInMs` from now), and the deps. */
async function setup(accessInMs = 600_000, overrides: Partial<Session> = {}) {
  const clock = new ManualClock(START);
  const store = memoryStore(clock);
  const base = userSession(START);
  const session: Session = { ...base, apim: { ...base.apim!, accessExpiresAt: START + accessInMs }, ...overrides };
  await store.create(KEY, session);
  const refresh = vi.fn(async (_refreshToken: string) => tokenSet(2, clock.now()));
  const userTokens = { refresh } as unknown as ApimUserTokens;
  const deps: UserTokenDeps = { store, renewals: new Map(), clock };
  const who: UserTokenSubject = { asid: ASID, userTokens, key: KEY, session };
  return { clock, store, refresh, deps, who, session };
}

describe('obtainUserToken', () => {
  it('a fresh token is returned as is, without a refresh', async () => {
    const { deps, who, refresh } = await setup(30_001);
    expect(await obtainUserToken(deps, who)).toBe('access-1');
    expect(refresh).not.toHaveBeenCalled();
  });

  it('within 30 s of its expiry: refreshed with the refresh token, the new tokens stored', async () => {
    const { deps, who, refresh, store, clock } = await setup(30_000);
    expect(await obtainUserToken(deps, who)).toBe('access-2');
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(refresh).toHaveBeenCalledWith('refresh-1');
    expect((await store.get(KEY))!.apim).toEqual(tokenSet(2, clock.now()));
    expect(deps.renewals.size).toBe(0);
    // the lock is free again
    expect(await store.lock(KEY, 1000)).toBeTypeOf('function');
  });

  it('`rejected` forces a refresh even while the token is fresh', async () => {
    const { deps, who, refresh } = await setup(600_000);
    expect(await obtainUserToken(deps, who, 'access-1')).toBe('access-2');
    expect(refresh).toHaveBeenCalledTimes(1);
  });

  it('concurrent calls share one refresh', async () => {
    const { deps, who, refresh, clock } = await setup(10_000);
    let finish!: (t: UserTokenSet) => void;
    refresh.mockImplementationOnce(() => new Promise((resolve) => (finish = resolve)));
    const a = obtainUserToken(deps, who);
    const b = obtainUserToken(deps, who);
    const c = obtainUserToken(deps, who, 'access-1');
    expect(deps.renewals.size).toBe(1);
    await clock.advance(0);
    expect(refresh).toHaveBeenCalledTimes(1);
    finish(tokenSet(2, clock.now()));
    expect(await Promise.all([a, b, c])).toEqual(['access-2', 'access-2', 'access-2']);
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(deps.renewals.size).toBe(0);
  });

  it('a token renewed meanwhile (by another request or replica) is used without a refresh', async () => {
    const { deps, who, refresh, store, session, clock } = await setup(10_000);
    await store.update(KEY, { ...session, apim: tokenSet(7, clock.now()) });
    expect(await obtainUserToken(deps, who)).toBe('access-7');
    expect(refresh).not.toHaveBeenCalled();
  });

  it('a stored token that is the one APIM just refused is not reused', async () => {
    const { deps, who, refresh } = await setup(600_000);
    // the store still holds access-1, which is fresh by the clock, but APIM refused it
    expect(await obtainUserToken(deps, who, 'access-1')).toBe('access-2');
    expect(refresh).toHaveBeenCalledTimes(1);
  });

  it('past refreshExpiresAt → SESSION_SIGN_IN_AGAIN, the session deleted, no refresh sent', async () => {
    const base = userSession(START).apim!;
    const { deps, who, refresh, store, clock } = await setup(600_000, {
      apim: { ...base, accessExpiresAt: START + 5 * 60_000, refreshExpiresAt: START + 5 * 60_000 },
    });
    await clock.advance(5 * 60_000);
    const e = await legacyRejection(obtainUserToken(deps, who));
    expect(e.reason).toBe('SESSION_SIGN_IN_AGAIN');
    expect(e.status).toBe(403);
    expect(e.diagnostics).toContain('12-hour refresh window');
    expect(refresh).not.toHaveBeenCalled();
    expect(await store.get(KEY)).toBeUndefined();
  });

  it('a refresh APIM refuses → SESSION_SIGN_IN_AGAIN and the session deleted', async () => {
    const { deps, who, refresh, store } = await setup(0);
    refresh.mockRejectedValueOnce(new Error('invalid_grant'));
    const e = await legacyRejection(obtainUserToken(deps, who));
    expect(e.reason).toBe('SESSION_SIGN_IN_AGAIN');
    expect(e.diagnostics).toContain('APIM did not renew the access token');
    expect(await store.get(KEY)).toBeUndefined();
    expect(await store.lock(KEY, 1000)).toBeTypeOf('function');
  });

  it('a refresh that never left ers-bridge (TokenUnavailableError notSent) → rethrown as is, session kept', async () => {
    const { deps, who, refresh, store } = await setup(0);
    const notSent = new TokenUnavailableError('ECONNREFUSED', true);
    refresh.mockRejectedValueOnce(notSent);
    expect(await rejectionOf(obtainUserToken(deps, who))).toBe(notSent);
    expect((await store.get(KEY))!.apim!.refreshToken).toBe('refresh-1');
    expect(deps.renewals.size).toBe(0);
  });

  it('a TokenUnavailableError that may have been sent ends the session (the refresh token may be spent)', async () => {
    const { deps, who, refresh, store } = await setup(0);
    refresh.mockRejectedValueOnce(new TokenUnavailableError('timed out', false));
    expect((await legacyRejection(obtainUserToken(deps, who))).reason).toBe('SESSION_SIGN_IN_AGAIN');
    expect(await store.get(KEY)).toBeUndefined();
  });

  it('no APIM token or no session any more → SESSION_SIGN_IN_AGAIN', async () => {
    const noToken = await setup(0, { apim: undefined });
    expect((await legacyRejection(obtainUserToken(noToken.deps, noToken.who))).reason).toBe('SESSION_SIGN_IN_AGAIN');
    const gone = await setup(0);
    await gone.store.delete(KEY);
    expect((await legacyRejection(obtainUserToken(gone.deps, gone.who))).diagnostics).toContain('has ended');
    expect(gone.refresh).not.toHaveBeenCalled();
  });

  it('another holder of the lock: waits, and uses its renewed token once it is in the store', async () => {
    const { deps, who, refresh, store, session, clock } = await setup(0);
    const theirs = await store.lock(KEY, 20_000);
    expect(theirs).toBeTypeOf('function');
    let result: string | undefined;
    const p = obtainUserToken(deps, who).then((t) => (result = t));
    await clock.advance(1000);
    expect(result).toBeUndefined();
    await store.update(KEY, { ...session, apim: tokenSet(3, clock.now()) });
    await clock.advance(50);
    expect(result).toBe('access-3');
    await p;
    expect(refresh).not.toHaveBeenCalled();
  });

  it('the wait gives up after 15 s → TOKEN_ENDPOINT_UNAVAILABLE 503 with retry-after 5; the session is kept', async () => {
    const { deps, who, refresh, store, clock } = await setup(0);
    await store.lock(KEY, 20_000);
    let settled = false;
    const caught = rejectionOf(obtainUserToken(deps, who)).finally(() => (settled = true));
    await clock.advance(14_900);
    expect(settled).toBe(false);
    await clock.advance(200);
    const e = await caught;
    expect(settled).toBe(true);
    expect(e).toMatchObject({ reason: 'TOKEN_ENDPOINT_UNAVAILABLE', status: 503, headers: { 'retry-after': '5' } });
    expect(refresh).not.toHaveBeenCalled();
    expect(await store.get(KEY)).toBeDefined();
    expect(deps.renewals.size).toBe(0);
  });
});

describe('obtainUserToken: a single-use refresh token is never sent twice', () => {
  it('the session is marked as spending its refresh token, held by the store, before the token is sent', async () => {
    const { deps, who, refresh, store, clock } = await setup(0);
    const held = vi.spyOn(store, 'updateHeld');
    refresh.mockImplementationOnce(async (token: string) => {
      // At the moment the token leaves ers-bridge, the store already says it is being spent.
      expect((await store.get(KEY))!.apim).toMatchObject({ refreshToken: token, refreshSpending: true });
      return tokenSet(2, clock.now());
    });
    expect(await obtainUserToken(deps, who)).toBe('access-2');
    expect(held).toHaveBeenCalledTimes(1);
    expect(held.mock.calls[0]![1].apim).toMatchObject({ refreshToken: 'refresh-1', refreshSpending: true });
    // The renewed tokens replace the mark.
    expect((await store.get(KEY))!.apim).toEqual(tokenSet(2, clock.now()));
  });

  it('a session still marked (a renewal cut off by a restart or a failover): ended, its token not sent again', async () => {
    const base = userSession(START).apim!;
    const { deps, who, refresh, store } = await setup(0, {
      apim: { ...base, accessExpiresAt: START, refreshSpending: true },
    });
    const e = await legacyRejection(obtainUserToken(deps, who));
    expect(e.reason).toBe('SESSION_SIGN_IN_AGAIN');
    expect(e.diagnostics).toContain('cut off half-way');
    expect(refresh).not.toHaveBeenCalled();
    expect(await store.get(KEY)).toBeUndefined();
  });

  it('a mark the replicas did not hold in time: the token is not sent, the session kept unmarked, 503 to retry', async () => {
    const { deps, who, refresh, store } = await setup(0);
    vi.spyOn(store, 'updateHeld').mockImplementationOnce(async (key, s) => {
      await store.update(key, s); // written on the primary, not confirmed by a replica
      return 'not-held';
    });
    const e = await rejectionOf(obtainUserToken(deps, who));
    expect(knownFault(e)).toMatchObject({ reason: 'STORE_UNAVAILABLE', status: 503 });
    expect(refresh).not.toHaveBeenCalled();
    const kept = (await store.get(KEY))!.apim!;
    expect(kept.refreshToken).toBe('refresh-1');
    expect(kept.refreshSpending).toBeUndefined();
    // The next call renews normally.
    expect(await obtainUserToken(deps, who)).toBe('access-2');
  });

  it('a refresh that never left ers-bridge clears the mark again', async () => {
    const { deps, who, refresh, store } = await setup(0);
    refresh.mockRejectedValueOnce(new TokenUnavailableError('ECONNREFUSED', true));
    await rejectionOf(obtainUserToken(deps, who));
    expect((await store.get(KEY))!.apim!.refreshSpending).toBeUndefined();
  });
});
