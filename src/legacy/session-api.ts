/**
 * The legacy session endpoints, emulated: A001 create, A002 select role, A003 delete. Plain application/json, as
 * the HSCN API used. For application-restricted ASIDs the session's user and permission come from the rules (the
 * organisation and business function registered on the APIM application); the legacy `token` is accepted as opaque.
 */

import { Cis2Unavailable } from '../auth/cis2.js';
import { grantForIdToken } from '../auth/sign-in-grant.js';
import { closeLegacySession } from '../legacy-host/legacy-call.js';
import { loadSession, requireAsid } from '../pipeline/steps.js';
import type { ApplicationRestrictedConfig } from '../rules/schema.js';
import type { AsidRuntime, Runtime, SignInGrant } from '../runtime.js';
import { updateLocked } from '../sessions/locking.js';
import {
  newSessionKey,
  normaliseSignInCode,
  type ProfessionalPermission,
  type ProfessionalUser,
  SESSION_TYPE_INFO,
  type Session,
  sessionBody,
} from '../sessions/session.js';
import type { IncomingHeaders } from '../translation/request.js';
import { LegacyError } from './errors.js';

export interface SessionCallResult {
  status: number;
  body?: unknown;
  sessionKey?: string;
  asid?: string;
}

const MAX_LEGACY_TOKEN = 8192;

function parseJsonObject(body: Buffer, what: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new LegacyError(
      'BODY_INVALID_JSON',
      `The ${what} body is not valid JSON. Send a JSON object as documented for ${what}.`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new LegacyError('BODY_INVALID_JSON', `The ${what} body must be a JSON object.`);
  }
  return parsed as Record<string, unknown>;
}

function checkTypeInfo(body: Record<string, unknown>, what: string): void {
  if (body['typeInfo'] !== undefined && body['typeInfo'] !== SESSION_TYPE_INFO) {
    throw new LegacyError('BODY_INVALID_FIELD', `${what}: typeInfo must be "${SESSION_TYPE_INFO}" or absent.`);
  }
}

/**
 * The A001 user of an application-restricted ASID: the same for every session of that ASID, so one shared (never
 * mutated) object serves them all — a large share of a session's memory with the in-memory store.
 */
const APPLICATION_USERS = new WeakMap<ApplicationRestrictedConfig, ProfessionalUser>();
function sharedApplicationUser(cfg: ApplicationRestrictedConfig, asid: string): ProfessionalUser {
  let user = APPLICATION_USERS.get(cfg);
  if (!user) {
    user = applicationUser(cfg, asid);
    APPLICATION_USERS.set(cfg, user);
  }
  return user;
}

function applicationUser(cfg: ApplicationRestrictedConfig, asid: string): ProfessionalUser {
  const permission: ProfessionalPermission = {
    businessFunction: cfg.businessFunction,
    orgIdentifier: cfg.organisation.odsCode,
    orgName: cfg.organisation.name,
  };
  return {
    identifier: cfg.user?.identifier ?? asid.padStart(12, '0').slice(-12),
    firstName: cfg.user?.firstName ?? 'Application',
    lastName: cfg.user?.lastName ?? `ASID ${asid}`,
    middleName: null,
    permissions: [permission],
  };
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** A user A001: the legacy `token` is a CIS2 ID token or a one-time sign-in code from ers-bridge's sign-in page. */
async function userGrant(rt: Runtime, asid: AsidRuntime, token: string, correlationId: string): Promise<SignInGrant> {
  const value = token.trim();
  if (JWT_SHAPE.test(value)) {
    if (!rt.cis2) throw new LegacyError('CIS2_UNAVAILABLE', 'CIS2 sign-in is not configured for this environment.');
    const identity = await withCis2(() => rt.cis2!.verifyIdToken(value));
    return grantForIdToken(rt, asid, value, identity, correlationId);
  }
  const code = normaliseSignInCode(value);
  if (code) {
    const grant = await rt.signInCodes.take(code);
    if (!grant) {
      throw new LegacyError(
        'SIGN_IN_CODE_UNKNOWN',
        "The sign-in code is unknown, has expired or was already used. Sign in again at ers-bridge's /login page and enter the new code.",
      );
    }
    if (grant.asid !== asid.asid) {
      throw new LegacyError(
        'SIGN_IN_CODE_WRONG_ASID',
        'The sign-in code was issued for another system (ASID); it cannot be used with this one. Sign in again from this system.',
      );
    }
    return grant;
  }
  throw new LegacyError(
    'USER_TOKEN_NOT_RECOGNISED',
    `A001: for the user-restricted ASID ${asid.asid} the "token" must be a CIS2 ID token or the one-time code shown by ers-bridge's sign-in page (/login?asid=${asid.asid}).`,
  );
}

async function withCis2<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof Cis2Unavailable) {
      throw new LegacyError('CIS2_UNAVAILABLE', 'CIS2 could not be reached to check the sign-in; try again shortly.', {
        headers: { 'retry-after': '10' },
      });
    }
    throw e;
  }
}

/** A001 Create Professional Session. */
export async function createSession(
  rt: Runtime,
  headers: IncomingHeaders,
  body: Buffer,
  now: number,
  correlationId: string,
): Promise<SessionCallResult> {
  const asid = requireAsid(rt, headers);
  const json = parseJsonObject(body, 'A001 (create session)');
  checkTypeInfo(json, 'A001');
  const token = json['token'];
  if (typeof token !== 'string' || token.trim() === '') {
    throw new LegacyError(
      'BODY_MISSING_FIELD',
      'A001: the body needs a "token" string (the legacy smartcard ticket; for an application-restricted ASID any non-empty value).',
    );
  }
  if (token.length > MAX_LEGACY_TOKEN) {
    throw new LegacyError('BODY_INVALID_FIELD', `A001: "token" is longer than ${MAX_LEGACY_TOKEN} characters.`);
  }
  const { absoluteTimeoutSeconds } = rt.rules.sessions;
  let session: Session;
  if (asid.config.accessMode === 'application-restricted') {
    session = {
      asid: asid.asid,
      accessMode: 'application-restricted',
      legacyToken: token,
      user: sharedApplicationUser(asid.config, asid.asid),
      permission: null,
      createdAt: now,
      lastUsedAt: now,
      expiresAt: now + absoluteTimeoutSeconds * 1000,
    };
  } else {
    const grant = await userGrant(rt, asid, token, correlationId);
    session = {
      asid: asid.asid,
      accessMode: 'user-restricted',
      legacyToken: token,
      user: grant.user,
      permission: null,
      apim: grant.tokens,
      onBehalfOf: null,
      createdAt: now,
      lastUsedAt: now,
      // When APIM's refresh window ends first, the token step ends the session with a sign-in-again answer.
      expiresAt: now + absoluteTimeoutSeconds * 1000,
    };
  }
  const key = newSessionKey();
  await rt.store.create(key, session);
  return { status: 201, body: sessionBody(key, session), sessionKey: key, asid: asid.asid };
}

/** A002 Select Role. Accepts `{token,typeInfo,permission}` or the whole A001 answer with `permission` filled in. */
export async function selectRole(
  rt: Runtime,
  headers: IncomingHeaders,
  keyInPath: string,
  body: Buffer,
  now: number,
): Promise<SessionCallResult> {
  const asid = requireAsid(rt, headers);
  const { key, session } = await loadSession(rt.store, headers, asid.asid, {
    requireRole: false,
    keyFromPath: keyInPath,
    userRestricted: asid.config.accessMode === 'user-restricted',
  });
  const json = parseJsonObject(body, 'A002 (select role)');
  checkTypeInfo(json, 'A002');
  const p = json['permission'];
  if (typeof p !== 'object' || p === null || Array.isArray(p)) {
    throw new LegacyError(
      'BODY_MISSING_FIELD',
      `A002: the body needs "permission": {"businessFunction": ..., "orgIdentifier": ...}, one of the session's user.permissions (${offered(session)}).`,
    );
  }
  const { businessFunction, orgIdentifier } = p as Record<string, unknown>;
  if (typeof businessFunction !== 'string' || typeof orgIdentifier !== 'string') {
    throw new LegacyError(
      'BODY_MISSING_FIELD',
      'A002: permission.businessFunction and permission.orgIdentifier must both be strings.',
    );
  }
  const chosen = session.user.permissions.find(
    (o) => o.businessFunction === businessFunction && o.orgIdentifier === orgIdentifier,
  );
  if (!chosen) {
    throw new LegacyError(
      'PERMISSION_NOT_OFFERED',
      `A002: the permission ${safe(businessFunction)} at ${safe(orgIdentifier)} is not one this session offers. Choose one of: ${offered(session)}.`,
    );
  }
  const onBehalfOf = onBehalfOfFor(session, chosen, json['onBehalfOf']);
  // Patch only the role on the freshest copy: another replica may have renewed the tokens meanwhile.
  const updated = await updateLocked(rt.store, key, (current) => ({
    ...current,
    permission: chosen, // shared with user.permissions; sessions are replaced, never mutated
    onBehalfOf,
    lastUsedAt: now,
  }));
  if (!updated) {
    throw new LegacyError(
      'SESSION_UNKNOWN',
      'The session expired while the role was being selected; create a new one with A001.',
    );
  }
  return { status: 200, body: sessionBody(key, updated), sessionKey: key, asid: asid.asid };
}

/** A003 Delete Professional Session. */
export async function deleteSession(
  rt: Runtime,
  headers: IncomingHeaders,
  keyInPath: string,
): Promise<SessionCallResult> {
  const asid = requireAsid(rt, headers);
  const { key, session } = await loadSession(rt.store, headers, asid.asid, {
    requireRole: false,
    keyFromPath: keyInPath,
    userRestricted: asid.config.accessMode === 'user-restricted',
  });
  await rt.store.delete(key);
  // The session ers-bridge opened at the legacy host (passthrough, canary, shadow) ends with it.
  await closeLegacySession(rt.legacy, session);
  return { status: 204, sessionKey: key, asid: asid.asid };
}

const SPCA = 'SERVICE_PROVIDER_CLINICIAN_ADMIN';

/**
 * The on-behalf-of user for A002. Legacy A002 had no such field: an SPCA always acts for an SPC on APIM, so a
 * client selecting SPCA must add `onBehalfOf` (the SPC's 12-digit SDS user id). MIGRATION.md documents it.
 */
function onBehalfOfFor(session: Session, chosen: ProfessionalPermission, value: unknown): string | null {
  if (value === undefined || value === null || value === '') {
    if (session.accessMode === 'user-restricted' && chosen.businessFunction === SPCA) {
      throw new LegacyError(
        'ON_BEHALF_OF_INVALID',
        'A002: SERVICE_PROVIDER_CLINICIAN_ADMIN acts on behalf of a Service Provider Clinician on APIM. Add "onBehalfOf": "<the clinician\'s 12-digit user id>" to the A002 body.',
      );
    }
    return null;
  }
  if (typeof value !== 'string' || !/^\d{12}$/.test(value)) {
    throw new LegacyError('ON_BEHALF_OF_INVALID', 'A002: onBehalfOf must be a 12-digit SDS user id.');
  }
  if (session.accessMode !== 'user-restricted' || chosen.businessFunction !== SPCA) {
    throw new LegacyError(
      'ON_BEHALF_OF_INVALID',
      'A002: onBehalfOf is only for a signed-in user selecting SERVICE_PROVIDER_CLINICIAN_ADMIN; remove it.',
    );
  }
  return value;
}

function offered(s: Session): string {
  return s.user.permissions.map((o) => `${o.businessFunction} at ${o.orgIdentifier}`).join('; ');
}

function safe(v: string): string {
  return JSON.stringify(v.slice(0, 60));
}
