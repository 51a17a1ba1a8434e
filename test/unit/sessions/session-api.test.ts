/**
 * The session endpoints' handling of the legacy token — kept only while the rules send calls to the legacy host,
 * echoed in A001 and A002 answers either way — and what an application-restricted session costs in the memory store.
 */
import { describe, expect, it } from 'vitest';
import type { GrantTarget, SignInGrant } from '../../../src/auth/sign-in-grant.js';
import { createSession, type SessionDeps, selectRole } from '../../../src/legacy/session-api.js';
import type { LegacyHost } from '../../../src/legacy-host/host.js';
import type { Caller } from '../../../src/runtime/caller.js';
import { CreateRate } from '../../../src/sessions/create-rate.js';
import { MemoryEphemeralStore } from '../../../src/sessions/ephemeral-store.js';
import { MemorySessionStore } from '../../../src/sessions/memory-store.js';
import { SESSION_TYPE_INFO } from '../../../src/sessions/session.js';
import { fullGc } from '../../helpers/gc.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { appAsid } from '../pipeline/fakes.js';

const ASID = '200000000001';
const TICKET = 'AQIC5wM2LY4Sfcyw@AAJTSQACMDE=#';
const PERMISSION = { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'R69' };

function setup(keepLegacyToken: boolean, limits = { maxSessions: 100, maxPerAsid: 100 }) {
  const clock = new ManualClock(Date.parse('2025-03-01T08:00:00Z'));
  const store = new MemorySessionStore({
    idleTimeoutSeconds: 3600,
    maxSessions: limits.maxSessions,
    limits: { maxPerAsid: limits.maxPerAsid },
    now: () => clock.now(),
  });
  const deps: SessionDeps = {
    store,
    signInCodes: new MemoryEphemeralStore<SignInGrant>(10, () => clock.now()),
    cis2: undefined,
    grantTarget: { asid: ASID } as GrantTarget,
    absoluteTimeoutSeconds: 43_200,
    legacy: {} as LegacyHost,
    keepLegacyToken,
    clock,
  };
  const caller = {
    asid: ASID,
    config: appAsid(),
    a001Rate: new CreateRate({ rate: 1e6, burst: 1e6 }, clock),
  } as unknown as Caller;
  return { clock, store, deps, caller };
}

const a001Body = (token: string) => Buffer.from(JSON.stringify({ typeInfo: SESSION_TYPE_INFO, token }));

async function a001(s: ReturnType<typeof setup>, token = TICKET) {
  const r = await createSession(s.deps, s.caller, a001Body(token), 'corr-1');
  return { ...r, body: r.body as { id: string; token: string; user: unknown; permission: unknown } };
}

async function a002(s: ReturnType<typeof setup>, key: string, body: Record<string, unknown>) {
  const headers = { http_x_session_key: key };
  const r = await selectRole(s.deps, s.caller, headers, key, Buffer.from(JSON.stringify(body)));
  return r.body as { id: string; token: string; permission: unknown };
}

describe('A001/A002 and the legacy token', () => {
  it('translate only: the session keeps no token; A001 echoes the one sent', async () => {
    const s = setup(false);
    const r = await a001(s);
    expect(r.status).toBe(201);
    expect(r.body.token).toBe(TICKET);
    const stored = (await s.store.get(r.sessionKey))!;
    expect('legacyToken' in stored).toBe(false);
    expect(JSON.stringify(stored)).not.toContain(TICKET);
  });

  it('rules that send calls to the legacy host: the session keeps the token (to open a legacy session)', async () => {
    const s = setup(true);
    const r = await a001(s);
    expect(r.body.token).toBe(TICKET);
    expect((await s.store.get(r.sessionKey))!.legacyToken).toBe(TICKET);
  });

  it('A002 echoes the token of its body ({token,typeInfo,permission})', async () => {
    const s = setup(false);
    const { sessionKey } = await a001(s);
    const body = await a002(s, sessionKey, {
      typeInfo: SESSION_TYPE_INFO,
      token: 'ticket-in-a002',
      permission: PERMISSION,
    });
    expect(body.token).toBe('ticket-in-a002');
    expect(body.permission).toMatchObject(PERMISSION);
  });

  it('A002 with the whole A001 answer echoes the token in it', async () => {
    const s = setup(false);
    const { body: session } = await a001(s);
    const body = await a002(s, session.id, { ...session, permission: PERMISSION });
    expect(body.token).toBe(TICKET);
  });

  it('A002 without a token: the kept one, else ""', async () => {
    const kept = setup(true);
    const k1 = (await a001(kept)).sessionKey;
    expect((await a002(kept, k1, { permission: PERMISSION })).token).toBe(TICKET);
    const none = setup(false);
    const k2 = (await a001(none)).sessionKey;
    expect((await a002(none, k2, { permission: PERMISSION })).token).toBe('');
  });
});

describe('memory per application-restricted session', () => {
  /** Heap held per session after `count` A001s with tokens of `tokenBytes`, measured across full GCs. */
  async function heapPerSession(keepLegacyToken: boolean, count: number, tokenBytes: number): Promise<number> {
    const s = setup(keepLegacyToken, { maxSessions: count, maxPerAsid: count });
    const body = a001Body('t'.repeat(tokenBytes));
    await createSession(s.deps, s.caller, body, 'warm-up'); // the shared user object and code paths, before measuring
    expect(fullGc(), 'a full GC is needed to measure what is held').toBe(true);
    const before = process.memoryUsage().heapUsed;
    for (let i = 1; i < count; i++) await createSession(s.deps, s.caller, body, 'corr');
    fullGc();
    const after = process.memoryUsage().heapUsed;
    expect(await s.store.size()).toBe(count); // the store is still held (and measured)
    return (after - before) / (count - 1);
  }

  it('50 000 sessions from A001s with 8 KB tokens hold at most 1 KB of heap each (translate)', async () => {
    const perSession = await heapPerSession(false, 50_000, 8192);
    console.info(`heap per application-restricted session: ${perSession.toFixed(0)} B`);
    expect(perSession).toBeLessThanOrEqual(1024);
    expect(perSession).toBeGreaterThan(0);
  });

  it('the measurement sees a kept token: ~8 KB more per session when the rules need it', async () => {
    const perSession = await heapPerSession(true, 2_000, 8192);
    expect(perSession).toBeGreaterThan(8192);
  });
});
