/**
 * The legacy session endpoints, emulated: A001 create, A002 select role, A003 delete. Plain application/json, as
 * the HSCN API used. For application-restricted ASIDs the session's user and permission come from the rules (the
 * organisation and business function registered on the APIM application); the legacy `token` is accepted as opaque.
 */
import { loadSession, requireAsid } from '../pipeline/steps.js';
import type { Runtime } from '../runtime.js';
import {
  newSessionKey,
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

function applicationUser(rt: Runtime, asid: string): ProfessionalUser {
  const cfg = rt.asids.get(asid)!.config;
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

/** A001 Create Professional Session. */
export async function createSession(
  rt: Runtime,
  headers: IncomingHeaders,
  body: Buffer,
  now: number,
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
  if (asid.config.accessMode !== 'application-restricted') {
    throw new LegacyError('ASID_NOT_APPLICATION_RESTRICTED', `ASID ${asid.asid} is not application-restricted.`);
  }
  const { absoluteTimeoutSeconds } = rt.rules.sessions;
  const session: Session = {
    asid: asid.asid,
    accessMode: 'application-restricted',
    legacyToken: token,
    user: applicationUser(rt, asid.asid),
    permission: null,
    createdAt: now,
    lastUsedAt: now,
    expiresAt: now + absoluteTimeoutSeconds * 1000,
  };
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
  const updated: Session = { ...session, permission: { ...chosen }, lastUsedAt: now };
  if (!(await rt.store.update(key, updated))) {
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
  const { key } = await loadSession(rt.store, headers, asid.asid, { requireRole: false, keyFromPath: keyInPath });
  await rt.store.delete(key);
  return { status: 204, sessionKey: key, asid: asid.asid };
}

function offered(s: Session): string {
  return s.user.permissions.map((o) => `${o.businessFunction} at ${o.orgIdentifier}`).join('; ');
}

function safe(v: string): string {
  return JSON.stringify(v.slice(0, 60));
}
