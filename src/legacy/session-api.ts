/**
 * The legacy session endpoints, emulated: A001 create, A002 select role, A003 delete. Plain application/json, as
 * the HSCN API used. For application-restricted ASIDs the session's user and permission come from the rules (the
 * organisation and business function registered on the APIM application); the legacy `token` is accepted as opaque,
 * echoed in the answers, and kept only while the rules send calls to the legacy host (see SessionDeps).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Readable } from 'node:stream';
import { permissionsFromRoles } from '../apim/practitioner-roles.js';
import type { Cis2Client } from '../auth/cis2.js';
import { type GrantTarget, grantForIdToken, type SignInGrant } from '../auth/sign-in-grant.js';
import { isSessionJsonRequestType, withoutUtf8Bom } from '../http/media-type.js';
import { closeLegacySession, type LegacyHost } from '../legacy-host/legacy-call.js';
import { loadSession } from '../pipeline/steps.js';
import { type ApplicationRestrictedConfig, TEST_USER_TOKEN_PREFIX } from '../rules/schema.js';
import type { Caller } from '../runtime/caller.js';
import type { Clock } from '../runtime/clock.js';
import type { EphemeralStore } from '../sessions/ephemeral-store.js';
import { updateLocked } from '../sessions/locking.js';
import {
  newSessionKey,
  normaliseSignInCode,
  type ProfessionalPermission,
  type ProfessionalUser,
  SESSION_TYPE_INFO,
  type Session,
  sessionBody,
  sessionWith,
} from '../sessions/session.js';
import { SessionEnded, type SessionStore } from '../sessions/store.js';
import { readBounded } from '../translation/body.js';
import type { IncomingHeaders } from '../translation/request.js';
import { LegacyError } from './errors.js';

/** What the session endpoints work with. */
export interface SessionDeps {
  store: SessionStore;
  signInCodes: EphemeralStore<SignInGrant>;
  cis2: Cis2Client | undefined;
  /** Where a CIS2 user's sign-in is completed for the calling ASID. */
  grantTarget: GrantTarget;
  absoluteTimeoutSeconds: number;
  /** The legacy host, whose session (opened for passthrough, canary, shadow) A003 closes too. */
  legacy: LegacyHost;
  /**
   * Whether sessions keep the client's A001 token: only while the rules send calls to the legacy host, which needs
   * it to open a legacy session. Otherwise nothing the client sent is kept, so a session's size does not depend on it.
   */
  keepLegacyToken: boolean;
  /**
   * Whether APIM is open access here (apim.auth none: the NHS sandbox, Dev1, Dev3), the only place test users
   * (`asids.<asid>.testUsers`, A001 token `test-user:<id>`) exist. Default false.
   */
  openAccess?: boolean;
  clock: Clock;
}

export interface SessionCallResult {
  status: number;
  body?: unknown;
  sessionKey: string;
}

const MAX_LEGACY_TOKEN = 8192;
const SESSION_BODY_LIMIT = 64 * 1024;

/**
 * Step (client): a session call's JSON body, bounded, without a UTF-8 BOM (before anything reads it); a body of
 * another media type is refused. The HSCN API documented application/json; isSessionJsonRequestType says what else
 * is taken and why (charset variants, any JSON type, and the wildcard type, which says no more than no header).
 */
export async function readSessionBody(source: Readable, headers: IncomingHeaders, what: string): Promise<Buffer> {
  const ct = typeof headers['content-type'] === 'string' ? headers['content-type'] : undefined;
  if (ct !== undefined && ct !== '' && !isSessionJsonRequestType(ct)) {
    throw new LegacyError('UNSUPPORTED_MEDIA_TYPE', `${what} takes a JSON body: send Content-Type: application/json.`);
  }
  const tooLarge = () =>
    new LegacyError('BODY_TOO_LARGE', `The ${what} body is larger than ${SESSION_BODY_LIMIT} bytes.`);
  const declared = headers['content-length'];
  if (declared !== undefined && Number(declared) > SESSION_BODY_LIMIT) throw tooLarge();
  return withoutUtf8Bom(await readBounded(source, SESSION_BODY_LIMIT, tooLarge));
}

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

/**
 * For an ASID that authenticates A001 with a secret (systems that cannot present a certificate): the token must be
 * it. Both sides are hashed first, so the comparison takes the same time whatever was sent.
 */
function refuseWrongA001Secret(caller: Caller, token: string): void {
  if (caller.a001Secret === undefined) return;
  const digest = (s: string) => createHash('sha256').update(s.trim(), 'utf8').digest();
  if (timingSafeEqual(digest(token), digest(caller.a001Secret))) return;
  throw new LegacyError(
    'A001_SECRET_REFUSED',
    `A001: ASID ${caller.asid} authenticates its sessions with an A001 secret, and the "token" sent is not it. Send the A001 secret the ers-bridge operators gave this system as the token.`,
  );
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * The user an A001 token `test-user:<id>` names: one of the ASID's `testUsers`, with the roles the rules give. A
 * test-environment aid with no credential behind it, so it exists only where there is nothing to protect: the rules
 * accept testUsers only with apim.auth none, and ers-bridge then holds no APIM credential and sends no token, so a
 * test user reaches only what an open-access APIM (the NHS sandbox) answers anyone. Checked here again at run time.
 */
function testUser(deps: SessionDeps, caller: Caller, id: string): ProfessionalUser {
  const users = caller.config.accessMode === 'user-restricted' ? caller.config.testUsers : undefined;
  if (deps.openAccess !== true || users === undefined) {
    throw new LegacyError(
      'TEST_USER_REFUSED',
      `A001: "${TEST_USER_TOKEN_PREFIX}<id>" tokens name the test users of open-access test environments (apim.auth none), and this environment has none for ASID ${caller.asid}. Sign in with CIS2 (/login?asid=${caller.asid}) and send the one-time code or a CIS2 ID token as the token.`,
    );
  }
  const user = Object.hasOwn(users, id) ? users[id] : undefined;
  if (user === undefined) {
    throw new LegacyError(
      'TEST_USER_REFUSED',
      `A001: ASID ${caller.asid} has no test user ${safe(id)}. Name one of asids."${caller.asid}".testUsers in the rules: "${TEST_USER_TOKEN_PREFIX}<12-digit user id>".`,
    );
  }
  return {
    identifier: id,
    firstName: user.firstName,
    lastName: user.lastName,
    middleName: null,
    permissions: permissionsFromRoles(user.roles, deps.grantTarget.organisationNames),
  };
}

/** A user A001: the legacy `token` is a CIS2 ID token or a one-time sign-in code from ers-bridge's sign-in page. */
async function userGrant(
  deps: SessionDeps,
  caller: Caller,
  token: string,
  correlationId: string,
): Promise<SignInGrant> {
  const value = token.trim();
  if (JWT_SHAPE.test(value)) {
    if (!deps.cis2) throw new LegacyError('CIS2_UNAVAILABLE', 'CIS2 sign-in is not configured for this environment.');
    const identity = await deps.cis2.verifyIdToken(value);
    return grantForIdToken(deps.grantTarget, value, identity, correlationId);
  }
  const code = normaliseSignInCode(value);
  if (code) {
    const grant = await deps.signInCodes.take(code);
    if (!grant) {
      throw new LegacyError(
        'SIGN_IN_CODE_UNKNOWN',
        "The sign-in code is unknown, has expired or was already used. Sign in again at ers-bridge's /login page and enter the new code.",
      );
    }
    if (grant.asid !== caller.asid) {
      throw new LegacyError(
        'SIGN_IN_CODE_WRONG_ASID',
        'The sign-in code was issued for another system (ASID); it cannot be used with this one. Sign in again from this system.',
      );
    }
    return grant;
  }
  throw new LegacyError(
    'USER_TOKEN_NOT_RECOGNISED',
    `A001: for the user-restricted ASID ${caller.asid} the "token" must be a CIS2 ID token or the one-time code shown by ers-bridge's sign-in page (/login?asid=${caller.asid}).`,
  );
}

/** A001 Create Professional Session. */
export async function createSession(
  deps: SessionDeps,
  caller: Caller,
  body: Buffer,
  correlationId: string,
): Promise<SessionCallResult> {
  const now = deps.clock.now();
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
  refuseWrongA001Secret(caller, token);
  const { absoluteTimeoutSeconds } = deps;
  let session: Session;
  if (caller.config.accessMode === 'application-restricted') {
    session = {
      asid: caller.asid,
      accessMode: 'application-restricted',
      user: sharedApplicationUser(caller.config, caller.asid),
      permission: null,
      createdAt: now,
      lastUsedAt: now,
      expiresAt: now + absoluteTimeoutSeconds * 1000,
    };
  } else if (token.trim().startsWith(TEST_USER_TOKEN_PREFIX)) {
    session = {
      asid: caller.asid,
      accessMode: 'user-restricted',
      user: testUser(deps, caller, token.trim().slice(TEST_USER_TOKEN_PREFIX.length)),
      permission: null,
      // No APIM tokens: an open-access APIM takes none (the token step sends none under apim.auth none).
      onBehalfOf: null,
      createdAt: now,
      lastUsedAt: now,
      expiresAt: now + absoluteTimeoutSeconds * 1000,
    };
  } else {
    const grant = await userGrant(deps, caller, token, correlationId);
    session = {
      asid: caller.asid,
      accessMode: 'user-restricted',
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
  // Set on the literal rather than spread into it: a spread before further properties leaves V8's fast path
  // (src/runtime/copy-with.ts).
  if (deps.keepLegacyToken) session.legacyToken = token;
  const key = newSessionKey();
  // Held: a failover right after A001 must not lose the session the client was just given (issue 16).
  await deps.store.create(key, session, 'create');
  // The legacy API echoed the client's token: the request's, whether or not the session keeps it.
  return { status: 201, body: sessionBody(key, session, token), sessionKey: key };
}

/** The session named in an A002/A003 path (and header), bound to the calling ASID; no role needed yet. */
function pathSession(deps: SessionDeps, caller: Caller, headers: IncomingHeaders, keyInPath: string) {
  return loadSession(deps.store, headers, {
    asid: caller.asid,
    requireRole: false,
    keyFromPath: keyInPath,
    userRestricted: caller.config.accessMode === 'user-restricted',
  });
}

/** A002 Select Role. Accepts `{token,typeInfo,permission}` or the whole A001 answer with `permission` filled in. */
export async function selectRole(
  deps: SessionDeps,
  caller: Caller,
  headers: IncomingHeaders,
  keyInPath: string,
  body: Buffer,
): Promise<SessionCallResult> {
  const { key, session } = await pathSession(deps, caller, headers, keyInPath);
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
  const updated = await updateLocked(
    deps.store,
    key,
    (current) =>
      sessionWith(current, {
        permission: chosen, // shared with user.permissions; sessions are replaced, never mutated
        onBehalfOf,
        lastUsedAt: deps.clock.now(),
      }),
    deps.clock,
    session.asid,
    'select-role',
  );
  if (!updated) throw new SessionEnded('the role was being selected');
  // The token echoed: the A002 body's (both shapes real clients send carry one), else the kept one, else "".
  const echoed = typeof json['token'] === 'string' ? json['token'] : undefined;
  return { status: 200, body: sessionBody(key, updated, echoed ?? updated.legacyToken ?? ''), sessionKey: key };
}

/** A003 Delete Professional Session. */
export async function deleteSession(
  deps: SessionDeps,
  caller: Caller,
  headers: IncomingHeaders,
  keyInPath: string,
): Promise<SessionCallResult> {
  const { key, session } = await pathSession(deps, caller, headers, keyInPath);
  await deps.store.delete(key, session.asid);
  // The session ers-bridge opened at the legacy host (passthrough, canary, shadow) ends with it.
  await closeLegacySession(deps.legacy, session);
  return { status: 204, sessionKey: key };
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
