/**
 * The session limits as the fault table answers them — the A001 rate, the record size, the full store, a session
 * without a legacy token — and the mode rule that decides whether sessions keep the token.
 */
import { describe, expect, it, vi } from 'vitest';
import { LegacyTokenMissing } from '../../../src/legacy-host/host.js';
import { legacySessionKey } from '../../../src/legacy-host/legacy-call.js';
import { faultFor, renderOutcome } from '../../../src/pipeline/faults.js';
import { sendsToLegacyHost } from '../../../src/pipeline/mode.js';
import type { ModeSettings } from '../../../src/rules/schema.js';
import { SessionRateLimited } from '../../../src/sessions/create-rate.js';
import { newSessionKey } from '../../../src/sessions/session.js';
import { SessionStoreFull, SessionTooLarge } from '../../../src/sessions/store.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { appSession, memoryStore, rejectionOf } from './fakes.js';

function outcome(e: Error, asid?: string) {
  const error = faultFor(e, asid ? { asid } : {});
  const answer = renderOutcome(error);
  const body = JSON.parse((answer.body as Buffer).toString('utf8'));
  const codes = body.issue[0].details.coding.map((c: { code: string }) => c.code);
  return { status: answer.status, headers: answer.headers, codes, diagnostics: body.issue[0].diagnostics as string };
}

describe('the fault table for session limits', () => {
  it('SessionRateLimited → 429 SESSION_RATE_LIMITED with Retry-After, naming the ASID', () => {
    const o = outcome(new SessionRateLimited(3), '200000000001');
    expect(o.status).toBe(429);
    expect(o.codes).toEqual(['TOO_MANY_REQUESTS', 'SESSION_RATE_LIMITED']);
    expect(o.headers['retry-after']).toBe('3');
    expect(o.diagnostics).toContain('200000000001');
    expect(o.diagnostics).toContain('wait 3 seconds');
  });

  it('SessionTooLarge → 422 SESSION_TOO_LARGE, saying the size and the limit; the connection stays open', () => {
    const o = outcome(new SessionTooLarge(40_000, 32_768));
    expect(o.status).toBe(422);
    expect(o.codes).toEqual(['INVALID_VALUE', 'SESSION_TOO_LARGE']);
    expect(o.diagnostics).toMatch(/40000 bytes.*32768/);
    expect(o.headers['connection']).toBeUndefined();
  });

  it('SessionStoreFull → 503 SESSION_STORE_FULL with Retry-After', () => {
    const o = outcome(new SessionStoreFull(200_000));
    expect(o.status).toBe(503);
    expect(o.codes).toEqual(['SERVICE_UNAVAILABLE', 'SESSION_STORE_FULL']);
    expect(o.headers['retry-after']).toBe('30');
  });

  it('LegacyTokenMissing → 403 LEGACY_SESSION_FAILED: create a new session', () => {
    const o = outcome(new LegacyTokenMissing());
    expect(o.status).toBe(403);
    expect(o.codes).toEqual(['FORBIDDEN', 'LEGACY_SESSION_FAILED']);
    expect(o.diagnostics).toMatch(/no A001 token.*Create a new session with A001/);
  });
});

describe('a legacy call on a session without a legacy token', () => {
  it('is refused before anything is sent to the legacy host', async () => {
    const clock = new ManualClock(Date.parse('2025-03-01T08:00:00Z'));
    const store = memoryStore(clock);
    const key = newSessionKey();
    const { legacyToken: _none, ...session } = appSession(clock.now());
    await store.create(key, session);
    const request = vi.fn();
    const host = { upstream: { request }, baseUrl: new URL('https://legacy.test/ers-api'), production: false };
    const e = await rejectionOf(legacySessionKey(store, host as never, key, session, 'corr-1'));
    expect(e).toBeInstanceOf(LegacyTokenMissing);
    expect(request).not.toHaveBeenCalled();
    expect((await store.get(key))?.legacySession).toBeUndefined();
  });
});

describe('sendsToLegacyHost', () => {
  const modes = (m: Partial<ModeSettings>): ModeSettings =>
    ({ default: 'translate', routes: {}, shadow: {}, ...m }) as ModeSettings;

  it('is false only when every route translates', () => {
    expect(sendsToLegacyHost(modes({}))).toBe(false);
    expect(sendsToLegacyHost(modes({ routes: { A005: 'translate', A006: { mode: 'translate' } } }))).toBe(false);
  });

  it('is true for passthrough, shadow or canary, by default or on any one route', () => {
    for (const m of ['passthrough', 'shadow', 'canary'] as const) {
      expect(sendsToLegacyHost(modes({ default: m })), m).toBe(true);
      expect(sendsToLegacyHost(modes({ routes: { A005: m } })), `route ${m}`).toBe(true);
      expect(sendsToLegacyHost(modes({ routes: { '/STU3/v1/ReferralRequest/{ubrn}': { mode: m } } }))).toBe(true);
    }
  });
});
