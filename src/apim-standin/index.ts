/**
 * The APIM stand-in: a local server as strict as NHS England's API Management platform in front of the e-RS FHIR
 * API — the OAuth token endpoint (signed-JWT client credentials; CIS2 token exchange and refresh for user-restricted
 * access), and the e-RS STU3/R4 endpoints answered from the NHS example payloads. Used by the demo, by tests and by
 * integrators (`ers-bridge emulate-apim`).
 *
 * Every request is recorded (with its raw header names) before it is answered, so tests can assert exactly what
 * reached "APIM".
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { compileRoutes, loadCatalogue } from './catalogue.js';
import { Cis2Keys } from './cis2.js';
import { handleErsRequest } from './ers-gateway.js';
import { FixtureView } from './fixtures.js';
import { StandInObjectStore } from './object-store.js';
import { BODY_LIMIT_BYTES, keepRawBodies, recordOf } from './recording.js';
import type { StandInReply } from './responses.js';
import { baseUrl, type StandInState, tokenUrl } from './state.js';
import { DEFAULT_REFRESH_WINDOW_SECONDS, handleTokenRequest } from './token-endpoint.js';
import { TokenStore } from './tokens.js';
import type { ApimStandIn, RecordedRequest, StandInApp, StandInOptions, StandInUser } from './types.js';

export { LARGE_ATTACHMENT_BYTES, TEST_ATTACHMENTS } from './attachments.js';
export { GATEWAY_ERRORS } from './ers-gateway.js';
export { BODY_LIMIT_BYTES, rawHeaderPairs } from './recording.js';
export type { StandInState } from './state.js';
export { DEFAULT_REFRESH_WINDOW_SECONDS, TOKEN_ERRORS } from './token-endpoint.js';
export type { IssuedToken, IssueOptions, RefreshTokenRecord, TokenUser } from './tokens.js';
export type {
  AccessMode,
  ApimStandIn,
  RecordedRequest,
  StandInApp,
  StandInCis2Options,
  StandInObjectStoreView,
  StandInOptions,
  StandInTls,
  StandInUser,
  StandInUserRole,
} from './types.js';

/** Request bodies are buffered raw up to this size (A020 uploads are at most 5 MB). */
export const DEFAULT_TOKEN_URL_PATH = '/oauth2/token';
export const DEFAULT_BASE_PATH = '/referrals/FHIR';
export const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 599;

/** A stand-in that has not necessarily started listening: the fastify instance plus its state. */
export interface BuiltApimStandIn extends ApimStandIn {
  app: FastifyInstance;
  state: StandInState;
  /** Listens on the options' host and port and sets `origin` from the bound address. */
  listen(): Promise<void>;
}

function normalisePath(path: string, what: string): string {
  if (!path.startsWith('/')) throw new Error(`apim-standin: ${what} must start with '/' (got ${path})`);
  return path.replace(/\/+$/, '');
}

function checkApp(app: StandInApp): StandInApp {
  if (typeof app.apiKey !== 'string' || app.apiKey === '') throw new Error('apim-standin: an app needs an apiKey');
  if (app.accessMode !== 'application-restricted' && app.accessMode !== 'user-restricted') {
    throw new Error(`apim-standin: app ${app.apiKey} has an unknown accessMode`);
  }
  if (!Array.isArray(app.jwks?.keys)) throw new Error(`apim-standin: app ${app.apiKey} needs jwks.keys`);
  return app;
}

function checkUser(sub: string, user: StandInUser): StandInUser {
  if (typeof sub !== 'string' || sub === '') throw new Error('apim-standin: a user needs a non-empty id (sub)');
  if (!Array.isArray(user?.roles)) throw new Error(`apim-standin: user ${sub} needs a roles array`);
  for (const role of user.roles) {
    if (typeof role?.odsCode !== 'string' || role.odsCode.trim() === '') {
      throw new Error(`apim-standin: user ${sub} has a role without an odsCode`);
    }
    if (typeof role.orgName !== 'string')
      throw new Error(`apim-standin: user ${sub} role ${role.odsCode} needs orgName`);
    if (!Array.isArray(role.businessFunctions) || !role.businessFunctions.every((bf) => typeof bf === 'string')) {
      throw new Error(`apim-standin: user ${sub} role ${role.odsCode} needs a businessFunctions string array`);
    }
  }
  return user;
}

function sendReply(reply: FastifyReply, result: StandInReply): FastifyReply {
  reply.code(result.status);
  for (const [name, value] of Object.entries(result.headers ?? {})) reply.header(name, value);
  return result.body !== undefined && result.body.length > 0 ? reply.send(result.body) : reply.send();
}

/** The origin the stand-in calls itself: the public URL if given, else the bound address (loopback for a wildcard). */
function originFor(
  publicUrl: string | undefined,
  address: Pick<AddressInfo, 'address' | 'port' | 'family'>,
  scheme: 'http' | 'https' = 'http',
): string {
  if (publicUrl) return new URL(publicUrl).origin;
  const wildcard = address.address === '0.0.0.0' || address.address === '::';
  const host = wildcard ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}

/** Builds the stand-in without listening (use `app.inject`, or `startApimStandIn` for a real port). */
export async function buildApimStandIn(options: StandInOptions): Promise<BuiltApimStandIn> {
  const host = options.host ?? '127.0.0.1';
  const tokenUrlPath = normalisePath(options.tokenUrlPath ?? DEFAULT_TOKEN_URL_PATH, 'tokenUrlPath');
  const basePath = normalisePath(options.basePath ?? DEFAULT_BASE_PATH, 'basePath');
  const ttl = options.accessTokenTtlSeconds ?? DEFAULT_ACCESS_TOKEN_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl <= 0)
    throw new Error('apim-standin: accessTokenTtlSeconds must be a positive integer');
  const refreshWindowSeconds = options.refreshWindowSeconds ?? DEFAULT_REFRESH_WINDOW_SECONDS;
  if (typeof refreshWindowSeconds !== 'number' || !(refreshWindowSeconds > 0)) {
    throw new Error('apim-standin: refreshWindowSeconds must be a positive number');
  }

  const catalogue = loadCatalogue();
  const retired = new Set(options.retire ?? []);
  for (const code of retired) {
    if (!catalogue.some((op) => op.code === code))
      throw new Error(`apim-standin: cannot retire ${code}: no such operation`);
  }
  const tls = options.tls;
  const scheme = tls ? 'https' : 'http';
  const state: StandInState = {
    origin: options.publicUrl
      ? new URL(options.publicUrl).origin
      : originFor(
          undefined,
          { address: host, port: options.port ?? 0, family: host.includes(':') ? 'IPv6' : 'IPv4' },
          scheme,
        ),
    basePath,
    tokenUrlPath,
    accessTokenTtlSeconds: ttl,
    refreshWindowSeconds,
    now: nowOf(options.clock),
    apps: new Map(),
    users: new Map(),
    cis2: options.cis2 === undefined ? undefined : new Cis2Keys(options.cis2),
    tokens: new TokenStore(),
    usedJtis: new Map(),
    received: [],
    tokenRequests: [],
    // A retired operation's routes are gone: it answers as any path APIM does not serve.
    routes: compileRoutes(catalogue.filter((op) => !retired.has(op.code))),
    fixtures: new FixtureView(() => baseUrl(state)),
    objectStore: new StandInObjectStore(
      host,
      nowOf(options.clock),
      options.objectStoreLinkTtlSeconds,
      options.publicUrl ? new URL(options.publicUrl).hostname : undefined,
      tls,
    ),
    retired,
    failWith: new Map(Object.entries(options.failWith ?? {})),
  };
  for (const app of options.apps) state.apps.set(app.apiKey, checkApp(app));
  for (const [sub, user] of Object.entries(options.users ?? {})) state.users.set(sub, checkUser(sub, user));

  const common = { logger: options.logger ?? false, bodyLimit: BODY_LIMIT_BYTES, forceCloseConnections: true };
  // The HTTPS instance differs from the HTTP one only in its raw server type, which nothing here depends on.
  const app: FastifyInstance = tls
    ? (Fastify({ ...common, https: { cert: tls.cert, key: tls.key } }) as unknown as FastifyInstance)
    : Fastify(common);
  const records = new WeakMap<IncomingMessage, RecordedRequest>();

  // Every body is kept raw: the token endpoint parses its form itself, the gateway compares JSON itself, and A020
  // uploads are arbitrary files.
  keepRawBodies(app);

  app.addHook('onRequest', (req, reply, done) => {
    const record = recordOf(req);
    records.set(req.raw, record);
    const path = req.url.split('?', 1)[0];
    (path === state.tokenUrlPath ? state.tokenRequests : state.received).push(record);
    // APIM answers with the e-RS transaction id as X-Request-ID and mirrors X-Correlation-ID.
    reply.header('x-request-id', `${randomUUID()}-1`);
    const correlationId = req.headers['x-correlation-id'];
    if (typeof correlationId === 'string') reply.header('x-correlation-id', correlationId);
    done();
  });

  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
    url: '/*',
    exposeHeadRoute: false,
    handler: async (req, reply) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const record = records.get(req.raw);
      if (record !== undefined) record.body = body;
      const path = req.url.split('?', 1)[0];
      const result =
        path === state.tokenUrlPath
          ? await handleTokenRequest(req.method, req.headers['content-type'], body, state)
          : handleErsRequest({ method: req.method, url: req.url, headers: req.headers, body }, state);
      return sendReply(reply, result);
    },
  });

  app.setErrorHandler((err: { statusCode?: number; message?: string }, _req, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) app.log.error(err);
    return reply
      .code(status)
      .type('text/plain')
      .send(status >= 500 ? 'Internal Server Error' : (err.message ?? 'Bad Request'));
  });

  return {
    app,
    state,
    get origin() {
      return state.origin;
    },
    get baseUrl() {
      return baseUrl(state);
    },
    get tokenUrl() {
      return tokenUrl(state);
    },
    received: state.received,
    tokenRequests: state.tokenRequests,
    objectStore: state.objectStore,
    revokeAccessTokens: () => state.tokens.revokeAll(),
    addApp: (newApp: StandInApp) => {
      state.apps.set(newApp.apiKey, checkApp(newApp));
    },
    addUser: (sub: string, user: StandInUser) => {
      state.users.set(sub, checkUser(sub, user));
    },
    close: async () => {
      await state.objectStore.close();
      await app.close();
    },
    listen: async () => {
      await state.objectStore.listen();
      await app.listen({ host, port: options.port ?? 0 });
      const address = app.server.address() as AddressInfo;
      state.origin = originFor(options.publicUrl, address, scheme);
    },
  };
}

/** Starts the stand-in on `host:port` (default 127.0.0.1 and an ephemeral port). */
export async function startApimStandIn(options: StandInOptions): Promise<ApimStandIn> {
  const built = await buildApimStandIn(options);
  await built.listen();
  return built;
}

function nowOf(clock: StandInOptions['clock']): () => number {
  if (clock === undefined) return Date.now;
  return typeof clock === 'function' ? clock : () => clock.now();
}
