/**
 * The CIS2 stand-in: a small OpenID Provider standing in for NHS Care Identity Service 2 as ers-bridge uses it, for
 * the demo and for integrators (`ers-bridge demo` runs one). Built on jose rather than a general OpenID Provider so
 * the product ships no extra run-time dependency for a demo piece, and so it answers exactly CIS2's surface:
 *
 *   <issuer>/.well-known/openid-configuration   discovery
 *   <issuer>/connect/jwk_uri                     the signing keys (RS256, as CIS2 signs)
 *   <issuer>/authorize                           authorization-code flow: registered redirect URI (exact match),
 *                                                PKCE S256 required, state and nonce carried; a page to pick a test
 *                                                user or cancel (access_denied)
 *   <issuer>/access_token                        the code for tokens: client authentication as the client is
 *                                                registered (client_secret_post, client_secret_basic or
 *                                                private_key_jwt), single-use codes bound to client, redirect URI
 *                                                and PKCE verifier
 *   <issuer>/userinfo                            names and organisations, for the access token
 *   /demo/id-token                               a fresh ID token for a test user, as plain text, for scripts;
 *                                                from this machine only (loopback peer and Host: ./loopback.ts)
 *
 * The issuer has CIS2's realm path (`/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare`). ID tokens
 * carry what ers-bridge and APIM check: `iss`, `sub`, `aud` (= `azp`, the client id), `exp`, `iat`, `auth_time`,
 * `nonce`, `acr`, `amr`, `id_assurance_level`, `authentication_assurance_level`, and the user's names. Everything is
 * in memory; the signing key is generated at start. It listens on 127.0.0.1 unless told otherwise.
 */
import { createHash, generateKeyPairSync, type JsonWebKey, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { createLocalJWKSet, type JWK, jwtVerify, SignJWT } from 'jose';
import { LRUCache } from 'lru-cache';
import { isLoopbackAddress, isLoopbackHostHeader } from './loopback.js';
import { CIS2_STYLE_CSS, errorPage, sendCis2Page, signInPage } from './pages.js';
import type { Cis2StandInUser } from './users.js';

export { isLoopbackAddress, isLoopbackHostHeader } from './loopback.js';
export { apimUsersOf, type Cis2StandInRole, type Cis2StandInUser, DEMO_CIS2_USER } from './users.js';

/** CIS2's realm path for healthcare workers (INT and live): the issuer is the origin plus this. */
export const CIS2_REALM_PATH = '/openam/oauth2/realms/root/realms/NHSIdentity/realms/Healthcare';
/** Where scripts get an ID token without signing in (loopback only). */
export const DEMO_ID_TOKEN_PATH = '/demo/id-token';
export const DEFAULT_ID_TOKEN_TTL_SECONDS = 300;
const ACCESS_TOKEN_TTL_SECONDS = 3600;
/** A sign-in page may be left open this long; a code must be redeemed within a minute. */
const INTERACTION_TTL_MS = 10 * 60 * 1000;
const CODE_TTL_MS = 60 * 1000;
const FORM = 'application/x-www-form-urlencoded';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const DEFAULT_ACR = 'AAL2_OR_AAL3_ANY';

/** How a client authenticates at the token endpoint, as registered with CIS2. */
export type Cis2StandInClientAuth =
  | { method: 'client_secret_post' | 'client_secret_basic'; secret: string }
  | { method: 'private_key_jwt'; jwks: { keys: JsonWebKey[] } };

/** A relying party registered with the stand-in (ers-bridge). */
export interface Cis2StandInClient {
  clientId: string;
  /** Exact-match redirect URIs; `setRedirectUris` replaces them once the relying party's address is known. */
  redirectUris: string[];
  auth: Cis2StandInClientAuth;
}

export interface Cis2StandInOptions {
  /** Default 127.0.0.1 (loopback only). */
  host?: string;
  /** Default 0 (an ephemeral port). */
  port?: number;
  clients: Cis2StandInClient[];
  users: readonly Cis2StandInUser[];
  /** ID token lifetime (default 300 s). */
  idTokenTtlSeconds?: number;
  /** ms since the epoch (default Date.now). */
  now?: () => number;
  logger?: boolean;
}

export interface Cis2StandIn {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** origin + CIS2's realm path: what ID tokens carry as `iss` and the rules' `cis2.issuer`. */
  issuer: string;
  /** Where its public signing keys are served. */
  jwksUri: string;
  /** The public signing keys. */
  jwks: { keys: JsonWebKey[] };
  /** `GET` it from this machine for a fresh ID token. */
  demoIdTokenUrl: string;
  /** Replaces a client's redirect URIs (the relying party's callback is known once it listens). */
  setRedirectUris(clientId: string, uris: string[]): void;
  /** A fresh ID token for a user, for a client (default: the first registered), as the token endpoint issues them. */
  mintIdToken(sub: string, options?: { clientId?: string; nonce?: string }): Promise<string>;
  close(): Promise<void>;
}

export interface BuiltCis2StandIn extends Cis2StandIn {
  app: FastifyInstance;
  listen(): Promise<void>;
}

interface Interaction {
  clientId: string;
  redirectUri: string;
  state: string | undefined;
  nonce: string | undefined;
  codeChallenge: string;
  scope: string;
  acr: string;
}

interface AuthorizationCode extends Interaction {
  sub: string;
  authTime: number;
}

interface AccessGrant {
  sub: string;
  expiresAt: number;
}

/** An OAuth error answer: `{error, error_description}` with its status. */
class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time string equality (by digest, so lengths do not leak either). */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

function one(v: unknown): string | undefined {
  return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
}

/** `application/x-www-form-urlencoded` decoding of one Basic credential part (RFC 6749 §2.3.1); undefined if malformed. */
function formDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

function checkClient(c: Cis2StandInClient): Cis2StandInClient {
  if (typeof c.clientId !== 'string' || c.clientId === '') throw new Error('cis2-standin: a client needs a clientId');
  if (c.auth.method === 'private_key_jwt') {
    if (!Array.isArray(c.auth.jwks?.keys)) throw new Error(`cis2-standin: client ${c.clientId} needs jwks.keys`);
  } else if (typeof c.auth.secret !== 'string' || c.auth.secret === '') {
    throw new Error(`cis2-standin: client ${c.clientId} needs a secret`);
  }
  return { ...c, redirectUris: [...c.redirectUris] };
}

/** Builds the stand-in without listening (`app.inject` works at once; `listen()` binds it). */
export async function buildCis2StandIn(options: Cis2StandInOptions): Promise<BuiltCis2StandIn> {
  const host = options.host ?? '127.0.0.1';
  const now = options.now ?? Date.now;
  const idTokenTtl = options.idTokenTtlSeconds ?? DEFAULT_ID_TOKEN_TTL_SECONDS;
  if (!Number.isInteger(idTokenTtl) || idTokenTtl <= 0)
    throw new Error('cis2-standin: idTokenTtlSeconds must be a positive integer');
  const clients = new Map(options.clients.map((c) => [c.clientId, checkClient(c)]));
  if (clients.size === 0) throw new Error('cis2-standin: register at least one client');
  const users = new Map(options.users.map((u) => [u.sub, u]));
  if (users.size === 0) throw new Error('cis2-standin: give at least one user');

  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `cis2-standin-${randomBytes(4).toString('hex')}`;
  const publicJwk: JsonWebKey = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  let origin = `http://${host.includes(':') ? `[${host}]` : host}:${options.port ?? 0}`;
  const issuer = () => origin + CIS2_REALM_PATH;
  const endpoint = (path: string) => issuer() + path;

  const interactions = new LRUCache<string, Interaction>({ max: 10_000, ttl: INTERACTION_TTL_MS });
  const codes = new LRUCache<string, AuthorizationCode>({ max: 10_000, ttl: CODE_TTL_MS });
  const accessTokens = new LRUCache<string, AccessGrant>({ max: 10_000, ttl: ACCESS_TOKEN_TTL_SECONDS * 1000 });
  const usedAssertions = new LRUCache<string, true>({ max: 10_000, ttl: 10 * 60 * 1000 });

  /** An ID token as CIS2 issues them (RS256, `typ` JWT), for `clientId`; `extra` adds or overrides claims. */
  const idTokenFor = (user: Cis2StandInUser, clientId: string, extra: Record<string, unknown>) => {
    const iat = Math.floor(now() / 1000);
    return new SignJWT({
      sub: user.sub,
      azp: clientId,
      auth_time: iat,
      acr: DEFAULT_ACR,
      amr: user.amr,
      id_assurance_level: user.idAssuranceLevel,
      authentication_assurance_level: user.authenticationAssuranceLevel,
      given_name: user.givenName,
      family_name: user.familyName,
      name: `${user.givenName} ${user.familyName}`,
      ...extra,
    })
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .setIssuer(issuer())
      .setAudience(clientId)
      .setIssuedAt(iat)
      .setExpirationTime(iat + idTokenTtl)
      .sign(privateKey);
  };

  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 64 * 1024, forceCloseConnections: true });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(FORM, { parseAs: 'string' }, (_req, body, done) => {
    done(null, new URLSearchParams(body as string));
  });
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, _body, done) => done(null, undefined));

  const sendOAuthError = (reply: FastifyReply, e: OAuthError) =>
    reply
      .code(e.status)
      .headers({ 'cache-control': 'no-store', pragma: 'no-cache', ...e.headers })
      .send({ error: e.error, error_description: e.description });
  const stylesheet = endpoint('/style.css');

  app.get(`${CIS2_REALM_PATH}/.well-known/openid-configuration`, async () => ({
    issuer: issuer(),
    authorization_endpoint: endpoint('/authorize'),
    token_endpoint: endpoint('/access_token'),
    userinfo_endpoint: endpoint('/userinfo'),
    jwks_uri: endpoint('/connect/jwk_uri'),
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic', 'private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ['RS256', 'RS512'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['openid', 'profile', 'associatedorgs', 'nhsperson'],
    claims_supported: [
      'sub',
      'iss',
      'aud',
      'azp',
      'exp',
      'iat',
      'auth_time',
      'nonce',
      'acr',
      'amr',
      'id_assurance_level',
      'authentication_assurance_level',
      'given_name',
      'family_name',
      'name',
      'nhsid_useruid',
      'nhsid_user_orgs',
    ],
    acr_values_supported: ['AAL3_ANY', 'AAL2_OR_AAL3_ANY', 'AAL2_ANY'],
    authorization_response_iss_parameter_supported: true,
  }));

  app.get(`${CIS2_REALM_PATH}/connect/jwk_uri`, async () => ({ keys: [publicJwk] }));
  app.get(`${CIS2_REALM_PATH}/style.css`, async (_req, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'no-cache').send(CIS2_STYLE_CSS),
  );

  app.get(`${CIS2_REALM_PATH}/authorize`, async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const clientId = one(q['client_id']);
    const client = clientId === undefined ? undefined : clients.get(clientId);
    if (client === undefined) {
      return sendCis2Page(
        reply,
        400,
        errorPage(
          stylesheet,
          'Unknown application',
          `No application with client id ${clientId ?? '(none)'} is registered with this CIS2 stand-in.`,
        ),
      );
    }
    const redirectUri = one(q['redirect_uri']);
    if (redirectUri === undefined || !client.redirectUris.includes(redirectUri)) {
      return sendCis2Page(
        reply,
        400,
        errorPage(
          stylesheet,
          'Unregistered return address',
          `The redirect_uri ${redirectUri ?? '(none)'} is not registered for ${client.clientId}: it must match exactly.`,
        ),
      );
    }
    const state = one(q['state']);
    const back = (error: string, description: string) => {
      const to = new URL(redirectUri);
      to.searchParams.set('error', error);
      to.searchParams.set('error_description', description);
      if (state !== undefined) to.searchParams.set('state', state);
      to.searchParams.set('iss', issuer());
      return reply.code(303).header('location', to.href).header('cache-control', 'no-store').send();
    };
    if (one(q['response_type']) !== 'code') return back('unsupported_response_type', 'response_type must be code');
    const scope = one(q['scope']) ?? '';
    if (!scope.split(' ').includes('openid')) return back('invalid_scope', 'scope must include openid');
    const codeChallenge = one(q['code_challenge']);
    if (
      codeChallenge === undefined ||
      !/^[A-Za-z0-9_-]{43}$/.test(codeChallenge) ||
      one(q['code_challenge_method']) !== 'S256'
    ) {
      return back('invalid_request', 'PKCE is required: code_challenge with code_challenge_method S256');
    }
    if (one(q['prompt'])?.split(' ').includes('none')) return back('login_required', 'the user must sign in');
    const interaction = randomBytes(24).toString('base64url');
    interactions.set(interaction, {
      clientId: client.clientId,
      redirectUri,
      state,
      nonce: one(q['nonce']),
      codeChallenge,
      scope,
      acr: one(q['acr_values'])?.split(' ')[0] ?? DEFAULT_ACR,
    });
    const page = signInPage({
      stylesheet,
      action: endpoint('/sign-in'),
      interaction,
      clientId: client.clientId,
      users: [...users.values()],
    });
    return sendCis2Page(reply, 200, page, [new URL(redirectUri).origin]);
  });

  app.post(`${CIS2_REALM_PATH}/sign-in`, async (req, reply) => {
    const form = req.body instanceof URLSearchParams ? req.body : new URLSearchParams();
    const id = form.get('interaction') ?? '';
    const interaction = interactions.get(id);
    if (interaction === undefined) {
      return sendCis2Page(
        reply,
        400,
        errorPage(
          stylesheet,
          'This sign-in has expired',
          'This sign-in page was left open too long, or was already used.',
        ),
      );
    }
    interactions.delete(id);
    const to = new URL(interaction.redirectUri);
    if (interaction.state !== undefined) to.searchParams.set('state', interaction.state);
    to.searchParams.set('iss', issuer());
    const user = users.get(form.get('user') ?? '');
    if (form.get('cancel') !== null) {
      to.searchParams.set('error', 'access_denied');
      to.searchParams.set('error_description', 'The user cancelled the sign-in');
    } else if (user === undefined) {
      return sendCis2Page(
        reply,
        400,
        errorPage(stylesheet, 'Unknown user', 'Choose one of the test users on the sign-in page.'),
      );
    } else {
      const code = randomBytes(32).toString('base64url');
      codes.set(code, { ...interaction, sub: user.sub, authTime: Math.floor(now() / 1000) });
      to.searchParams.set('code', code);
    }
    return reply.code(303).header('location', to.href).header('cache-control', 'no-store').send();
  });

  /** Authenticates the client at the token endpoint the way it is registered, and no other way. */
  const authenticateClient = async (req: FastifyRequest, form: URLSearchParams): Promise<Cis2StandInClient> => {
    const invalid = (why: string) => new OAuthError(401, 'invalid_client', why);
    const authorization = one(req.headers.authorization);
    let presented: { method: Cis2StandInClientAuth['method']; clientId: string; secret?: string };
    if (authorization?.toLowerCase().startsWith('basic ')) {
      const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const clientId = formDecode(decoded.slice(0, colon));
      const secret = formDecode(decoded.slice(colon + 1));
      if (colon < 0 || clientId === undefined || secret === undefined) throw invalid('malformed Basic credentials');
      presented = { method: 'client_secret_basic', clientId, secret };
    } else if (form.has('client_assertion')) {
      if (form.get('client_assertion_type') !== JWT_BEARER)
        throw invalid(`client_assertion_type must be ${JWT_BEARER}`);
      const assertion = form.get('client_assertion')!;
      let iss: unknown;
      try {
        iss = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8')).iss;
      } catch {
        throw invalid('malformed client_assertion');
      }
      if (typeof iss !== 'string') throw invalid('client_assertion has no iss');
      presented = { method: 'private_key_jwt', clientId: iss };
    } else if (form.has('client_secret')) {
      presented = {
        method: 'client_secret_post',
        clientId: form.get('client_id') ?? '',
        secret: form.get('client_secret')!,
      };
    } else {
      throw invalid('no client authentication');
    }
    const client = clients.get(presented.clientId);
    if (client === undefined) throw invalid('unknown client');
    if (form.has('client_id') && form.get('client_id') !== client.clientId)
      throw invalid('client_id does not match the client authentication');
    if (client.auth.method !== presented.method) {
      throw invalid(`this client is registered for ${client.auth.method}, not ${presented.method}`);
    }
    if (client.auth.method === 'private_key_jwt') {
      const assertion = form.get('client_assertion')!;
      try {
        const { payload } = await jwtVerify(assertion, createLocalJWKSet({ keys: client.auth.jwks.keys as JWK[] }), {
          issuer: client.clientId,
          subject: client.clientId,
          audience: [issuer(), endpoint('/access_token')],
          algorithms: ['RS256', 'RS512'],
          requiredClaims: ['exp', 'jti'],
          currentDate: new Date(now()),
          maxTokenAge: '5m',
        });
        const jti = `${client.clientId}|${String(payload.jti)}`;
        if (usedAssertions.has(jti)) throw new Error('jti reused');
        usedAssertions.set(jti, true);
      } catch {
        throw invalid('client_assertion verification failed');
      }
    } else if (!sameSecret(presented.secret ?? '', client.auth.secret)) {
      throw invalid('wrong client secret');
    }
    return client;
  };

  app.post(`${CIS2_REALM_PATH}/access_token`, async (req, reply) => {
    try {
      if (!(req.body instanceof URLSearchParams))
        throw new OAuthError(400, 'invalid_request', `Content-Type must be ${FORM}`);
      const form = req.body;
      const client = await authenticateClient(req, form);
      if (form.get('grant_type') !== 'authorization_code') {
        throw new OAuthError(400, 'unsupported_grant_type', 'grant_type must be authorization_code');
      }
      const presented = form.get('code') ?? '';
      const code = codes.get(presented);
      // Single use: a code is gone once presented, whatever happens next.
      codes.delete(presented);
      if (code === undefined || code.clientId !== client.clientId) {
        throw new OAuthError(400, 'invalid_grant', 'the code is unknown, expired, used, or not for this client');
      }
      if (form.get('redirect_uri') !== code.redirectUri) {
        throw new OAuthError(400, 'invalid_grant', 'redirect_uri does not match the authorization request');
      }
      const verifier = form.get('code_verifier') ?? '';
      if (
        !/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) ||
        sha256(verifier).toString('base64url') !== code.codeChallenge
      ) {
        throw new OAuthError(400, 'invalid_grant', 'code_verifier does not match the code_challenge');
      }
      const user = users.get(code.sub)!;
      const accessToken = randomBytes(32).toString('base64url');
      accessTokens.set(accessToken, { sub: user.sub, expiresAt: now() + ACCESS_TOKEN_TTL_SECONDS * 1000 });
      const idToken = await idTokenFor(user, client.clientId, {
        auth_time: code.authTime,
        acr: code.acr,
        ...(code.nonce !== undefined ? { nonce: code.nonce } : {}),
      });
      return reply.headers({ 'cache-control': 'no-store', pragma: 'no-cache' }).send({
        access_token: accessToken,
        token_type: 'Bearer',
        expires_in: ACCESS_TOKEN_TTL_SECONDS,
        scope: code.scope,
        id_token: idToken,
      });
    } catch (e) {
      if (e instanceof OAuthError) return sendOAuthError(reply, e);
      throw e;
    }
  });

  const userinfo = async (req: FastifyRequest, reply: FastifyReply) => {
    const authorization = one(req.headers.authorization) ?? '';
    const grant = /^Bearer (\S+)$/i.test(authorization) ? accessTokens.get(authorization.slice(7)) : undefined;
    if (grant === undefined || grant.expiresAt <= now()) {
      return sendOAuthError(
        reply,
        new OAuthError(401, 'invalid_token', 'the access token is unknown or expired', {
          'www-authenticate': 'Bearer error="invalid_token"',
        }),
      );
    }
    const user = users.get(grant.sub)!;
    return reply.header('cache-control', 'no-store').send({
      sub: user.sub,
      given_name: user.givenName,
      family_name: user.familyName,
      name: `${user.givenName} ${user.familyName}`,
      nhsid_useruid: user.sub,
      nhsid_user_orgs: user.roles.map((r) => ({ org_code: r.odsCode, org_name: r.orgName })),
    });
  };
  app.get(`${CIS2_REALM_PATH}/userinfo`, userinfo);
  app.post(`${CIS2_REALM_PATH}/userinfo`, userinfo);

  const firstClient = options.clients[0]!.clientId;
  const mintIdToken: Cis2StandIn['mintIdToken'] = async (sub, opts = {}) => {
    const user = users.get(sub);
    if (user === undefined) throw new Error(`cis2-standin: no user ${sub}`);
    const clientId = opts.clientId ?? firstClient;
    if (!clients.has(clientId)) throw new Error(`cis2-standin: no client ${clientId}`);
    return idTokenFor(user, clientId, opts.nonce !== undefined ? { nonce: opts.nonce } : {});
  };

  app.get(DEMO_ID_TOKEN_PATH, async (req, reply) => {
    const refuse = (why: string) =>
      reply.code(403).type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(`${why}\n`);
    if (!isLoopbackAddress(req.socket.remoteAddress)) {
      return refuse(
        `${DEMO_ID_TOKEN_PATH} answers only on this machine (a loopback address); sign in at the authorize endpoint instead.`,
      );
    }
    if (!isLoopbackHostHeader(req.headers.host)) {
      return refuse(
        `${DEMO_ID_TOKEN_PATH} answers only requests addressed to a loopback host (Host: 127.0.0.1, [::1] or localhost).`,
      );
    }
    const q = req.query as Record<string, unknown>;
    const sub = one(q['user']) ?? options.users[0]!.sub;
    const clientId = one(q['client_id']) ?? firstClient;
    if (!users.has(sub) || !clients.has(clientId)) {
      return reply.code(404).type('text/plain; charset=utf-8').send(`no test user ${sub} or client ${clientId}\n`);
    }
    return reply
      .type('text/plain; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(await mintIdToken(sub, { clientId }));
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({
      error: 'not_found',
      error_description: `the CIS2 stand-in serves nothing at ${req.url.split('?', 1)[0]}`,
    }),
  );
  app.setErrorHandler((err: { statusCode?: number; message?: string }, _req, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) app.log.error(err);
    return reply.code(status).send({
      error: status >= 500 ? 'server_error' : 'invalid_request',
      error_description: status >= 500 ? 'internal error' : (err.message ?? 'bad request'),
    });
  });

  return {
    app,
    get origin() {
      return origin;
    },
    get issuer() {
      return issuer();
    },
    get jwksUri() {
      return endpoint('/connect/jwk_uri');
    },
    jwks: { keys: [publicJwk] },
    get demoIdTokenUrl() {
      return origin + DEMO_ID_TOKEN_PATH;
    },
    setRedirectUris(clientId, uris) {
      const client = clients.get(clientId);
      if (client === undefined) throw new Error(`cis2-standin: no client ${clientId}`);
      client.redirectUris = [...uris];
    },
    mintIdToken,
    close: () => app.close(),
    listen: async () => {
      await app.listen({ host, port: options.port ?? 0 });
      const address = app.server.address() as AddressInfo;
      const h = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      origin = `http://${h === '0.0.0.0' || h === '[::]' ? '127.0.0.1' : h}:${address.port}`;
    },
  };
}

/** Starts the stand-in on `host:port` (default 127.0.0.1 and an ephemeral port). */
export async function startCis2StandIn(options: Cis2StandInOptions): Promise<Cis2StandIn> {
  const built = await buildCis2StandIn(options);
  await built.listen();
  return built;
}
