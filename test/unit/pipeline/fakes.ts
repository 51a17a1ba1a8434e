/**
 * Small fakes shared by the pipeline and APIM unit tests: endpoints from the real table, sessions, an in-memory
 * store on a manual clock, APIM answers shaped like undici's Dispatcher.ResponseData, and ApimCalls.
 */
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { vi } from 'vitest';
import { type ApimCall, bufferBody } from '../../../src/apim/dispatch.js';
import { ENDPOINTS, type EndpointDef } from '../../../src/legacy/endpoints.js';
import { LegacyError } from '../../../src/legacy/errors.js';
import type { AsidConfig } from '../../../src/rules/schema.js';
import type { Clock } from '../../../src/runtime/clock.js';
import { MemorySessionStore } from '../../../src/sessions/memory-store.js';
import type { Session } from '../../../src/sessions/session.js';
import type { BaseUrls } from '../../../src/translation/response.js';

/** An endpoint of the real table, by A-code (the first one) or by legacy path pattern. */
export function endpoint(codeOrPath: string): EndpointDef {
  const found = ENDPOINTS.find((e) => e.code === codeOrPath || e.legacyPath === codeOrPath);
  if (!found) throw new Error(`no endpoint ${codeOrPath}`);
  return found;
}

export const URLS: BaseUrls = {
  apimBase: 'https://apim.test/referrals/FHIR',
  legacyBase: 'https://bridge.test/ers-api',
  hscnBase: 'https://api.hscn.test/ers-api',
};

export const HOUR = 3_600_000;

/** An application-restricted session with a role selected, alive for a day from `now`. */
export function appSession(now = 0, overrides: Partial<Session> = {}): Session {
  return {
    asid: '200000000001',
    accessMode: 'application-restricted',
    legacyToken: 'legacy-token',
    user: { identifier: '555555555555', firstName: 'App', lastName: 'User', middleName: null, permissions: [] },
    permission: { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'R69', orgName: 'Test Trust' },
    createdAt: now,
    lastUsedAt: now,
    expiresAt: now + 24 * HOUR,
    ...overrides,
  };
}

/** A user-restricted session with APIM tokens: access for 10 minutes, refresh for 12 hours from `now`. */
export function userSession(now = 0, overrides: Partial<Session> = {}): Session {
  return appSession(now, {
    asid: '200000000002',
    accessMode: 'user-restricted',
    permission: { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'RCD', orgName: 'Provider Trust' },
    apim: {
      accessToken: 'access-1',
      accessExpiresAt: now + 600_000,
      refreshToken: 'refresh-1',
      refreshExpiresAt: now + 12 * HOUR,
    },
    ...overrides,
  });
}

/** The in-memory store, reading the given clock (idle timeout an hour). */
export function memoryStore(clock: Clock): MemorySessionStore {
  return new MemorySessionStore({ idleTimeoutSeconds: 3600, maxSessions: 100, now: () => clock.now() });
}

export function appAsid(overrides: Partial<AsidConfig> = {}): AsidConfig {
  return {
    accessMode: 'application-restricted',
    organisation: { odsCode: 'R69', name: 'Test Trust' },
    businessFunction: 'REFERRING_CLINICIAN',
    ...overrides,
  } as AsidConfig;
}

export function userAsid(overrides: Partial<AsidConfig> = {}): AsidConfig {
  return { accessMode: 'user-restricted', ...overrides } as AsidConfig;
}

export type FakeBody = Readable & { dump: ReturnType<typeof vi.fn>; text: () => Promise<string> };

/**
 * An APIM answer shaped like undici's Dispatcher.ResponseData: the body is a Readable of `body` with `dump` (a spy
 * that drains it) and `text`. Pass chunks as an array to stream them one by one.
 */
export function apimResponse(
  statusCode: number,
  headers: Record<string, string | string[]> = {},
  body: string | Buffer | Buffer[] = '',
): Dispatcher.ResponseData & { body: FakeBody } {
  const chunks = Array.isArray(body) ? body : [Buffer.from(body)];
  const readable = Readable.from(chunks.filter((c) => c.length > 0)) as FakeBody;
  readable.dump = vi.fn(async () => {
    readable.resume();
  });
  readable.text = async () => {
    const parts: Buffer[] = [];
    for await (const c of readable) parts.push(c as Buffer);
    return Buffer.concat(parts).toString('utf8');
  };
  return {
    statusCode,
    statusText: '',
    headers,
    body: readable,
    trailers: {},
    opaque: null,
    context: {},
  } as unknown as Dispatcher.ResponseData & { body: FakeBody };
}

/** One call to APIM as the wrappers see it. */
export function apimCall(ep: EndpointDef = endpoint('A005'), overrides: Partial<ApimCall> = {}): ApimCall {
  return {
    endpoint: ep,
    request: { method: ep.method, path: `/referrals/FHIR${ep.apimPath}`, headers: { 'x-correlation-id': 'corr-1' } },
    body: bufferBody(undefined),
    ...overrides,
  };
}

/** What a promise rejected with (fails the test when it resolves). */
export async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** The LegacyError a call threw (fails the test when it threw something else or nothing). */
export function thrownBy(fn: () => unknown): LegacyError {
  try {
    fn();
  } catch (e) {
    if (e instanceof LegacyError) return e;
    throw e;
  }
  throw new Error('expected a LegacyError');
}

/** The LegacyError a promise rejected with. */
export async function legacyRejection(p: Promise<unknown>): Promise<LegacyError> {
  const e = await rejectionOf(p);
  if (!(e instanceof LegacyError)) throw e;
  return e;
}
