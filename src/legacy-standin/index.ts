/**
 * The legacy stand-in: a stand-in for the withdrawn NHS e-RS HSCN/CIS1 API (the "XAPI"), so a migration team can
 * practise MIGRATION.md's sequence (passthrough → shadow → canary → translate) against a real legacy host, and so
 * the tests prove those modes: the session endpoints A001/A002/A003 and a few STU3 data calls, answered from the NHS
 * example payloads, behind optional mutual TLS with a Spine endpoint certificate. `ers-bridge emulate-legacy` runs
 * it on its own; `ers-bridge demo --mode shadow|canary|passthrough` starts it behind the demo.
 *
 * - A001 `POST /ers-api/v1/ProfessionalSession`: `XAPI_ASID` required (and known, when `asids` is given) → else 403;
 *   JSON body with a non-empty `token` (any CIS1 ticket is valid except {@link EXPIRED_TICKET} → 403; a missing
 *   token or a body that is not a JSON object → 422) → 201 with the ProfessionalSession (`id:
 *   "pro-api-session:<uuid>"`, the ticket's user, `permission: null`).
 * - A002 `PUT /ers-api/v1/ProfessionalSession/{id}`: `XAPI_ASID` as A001; `HTTP_X_SESSION_KEY` equal to the path id
 *   and naming a live session of the same ASID → else 403; body `permission` missing or malformed → 422; a `token`
 *   or `id` in the body that is not the session's → 403; a permission the user does not hold (business function +
 *   org) → 403; else 200 with the session, `permission` set to the user's `{businessFunction, orgIdentifier,
 *   orgName}`. A role can be selected again.
 * - A003 `DELETE /ers-api/v1/ProfessionalSession/{id}`: same checks as A002 → 204, no body; the session is gone.
 * - Data calls `/ers-api/STU3/v1/...`: `XAPI_ASID` (known) and `HTTP_X_SESSION_KEY` of a live session of that ASID with
 *   a role selected → else 403 eRS-OperationOutcome-1. Then answered from the NHS examples in
 *   `fixtures/ers-api/examples` (the same ones, chosen the same way, as the APIM stand-in), with `_baseUrl_/STU3/`
 *   replaced by `<network base>/STU3/v1/` (and `_baseUrl_/R4/` by `<network base>/R4/v1/`):
 *     A004 GET  CodeSystem/{type}                          by CodeSystem id
 *     A005 GET  ReferralRequest/{ubrn}[/_history/{v}]       by UBRN, `ETag: W/"<meta.versionId>"`; 404 NO_SUCH_REQUEST
 *     A006 GET  Binary/{id}                                 the example attachment PDF (ids `att-n-n` or a UUID)
 *     A007 POST ReferralRequest/{ubrn}/$ers.generateCRI     the clinical information PDF, for a known UBRN
 *     A008 POST ReferralRequest/$ers.fetchworklist          by deep equality of the body with the request examples
 *                                                           (their links in the legacy form) → 422 when none matches;
 *                                                           without referralRequestVersion, which APIM added after
 *                                                           HSCN was withdrawn (APIM_ADDED_EXTENSIONS)
 *     A013 POST ReferralRequest/{ubrn}/$ers.acceptReferral  `If-Match` required (400), must be `W/"<n>"` (400) with n
 *                                                           the referral's current version (409 VERSION_CONFLICT)
 *   A known path with another method → 405; any other path under `/ers-api/STU3/v1/` → 404 (after the session check);
 *   any other path at all → 404.
 * - Every answer carries `X_ERS_TRANSACTION_ID: <uuid>-1` (that exact spelling); JSON data answers carry the legacy
 *   `Content-Disposition: inline;filename=f.txt`.
 * - Every request is recorded in `received` (method, url, raw header names in the case received, lower-cased headers,
 *   body, client certificate CN under mutual TLS) before it is answered — before any artificial delay, so a test can
 *   see a slow request arrive; the oldest records go beyond `maxRecorded`. `delayMs` then holds the answer back;
 *   `fail` can replace it with a forced status.
 * - Live sessions are bounded (`maxSessions`): beyond it A001 ends the oldest session, so a long-running stand-in's
 *   memory stays bounded whatever its clients do.
 *
 * Error bodies: the STU3 eRS-OperationOutcome-1 shape (profile and coding system as published). Session endpoints
 * answer `application/json`, data calls `application/fhir+json`.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { BODY_EXAMPLES } from '../apim-standin/examples.js';
import { exampleBytes, exampleJsonFiles, exampleText } from '../apim-standin/fixtures.js';
import { jsonEqual } from '../apim-standin/json.js';
import { BODY_LIMIT_BYTES, keepRawBodies, recordOf } from '../apim-standin/recording.js';
import { STU3_ERROR_SYSTEM, STU3_OUTCOME_PROFILE } from '../apim-standin/responses.js';

// ─── types ──────────────────────────────────────────────────────────────────────────────────────────────────────

/** One entry of `ProfessionalSession.user.permissions` (and the selected `permission`). */
export interface LegacyPermission {
  businessFunction: string;
  orgIdentifier: string;
  orgName: string;
}

/** `ProfessionalSession.user`: the smartcard holder behind a CIS1 ticket. */
export interface LegacyUser {
  /** 12-digit smartcard user id. */
  identifier: string;
  firstName: string;
  lastName: string;
  middleName?: string | null;
  permissions: LegacyPermission[];
}

/** A live professional session. */
export interface LegacySession {
  id: string;
  /** The ASID that created it; other ASIDs cannot use it. */
  asid: string;
  /** The CIS1 ticket it was created with. */
  token: string;
  user: LegacyUser;
  /** The role selected with A002; null until then (the session is unusable for data calls). */
  permission: LegacyPermission | null;
  createdAt: number;
}

/** One request as the stand-in received it, recorded before it was answered. */
export interface LegacyRecordedRequest {
  method: string;
  /** Path + query as received. */
  url: string;
  /** Header names in the case received, in order. */
  rawHeaders: Array<[string, string]>;
  /** Lower-cased node headers. */
  headers: Record<string, string | string[] | undefined>;
  /** The body (empty until the body has been read; complete before any delay or answer). */
  body: Buffer;
  /** CN of the client certificate presented over mutual TLS. */
  clientCertCN?: string;
  at: number;
}

export interface LegacyStandInTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** CA(s) trusted for client certificates. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Ask for a client certificate and refuse the TLS handshake without one signed by `ca`. Default false. */
  requireClientCert?: boolean;
}

export interface LegacyStandInOptions {
  /** The listen address. Default 127.0.0.1. */
  host?: string;
  /** The listen port. Default 0 (a free one). */
  port?: number;
  /** HTTPS with these credentials; plain HTTP without. */
  tls?: LegacyStandInTls;
  /** The ASIDs the host knows; any non-empty `XAPI_ASID` is accepted when omitted. */
  asids?: string[];
  /** Users by CIS1 ticket (the A001 body `token`); every other ticket is {@link DEFAULT_LEGACY_USER}. */
  users?: Record<string, LegacyUser>;
  /**
   * The base URL bodies embed (what a client calls the host, e.g. `https://api.int1.ers.ncrs.nhs.uk/ers-api`) and
   * A008 request bodies are compared in. Default: the stand-in's own `baseUrl`.
   */
  networkBaseUrl?: string;
  /** Holds every answer back by this many ms (after the request has been recorded). */
  delayMs?: number | ((req: LegacyRecordedRequest) => number);
  /** A status to answer instead (with an eRS-OperationOutcome-1 body), or undefined to answer normally. */
  fail?: (req: LegacyRecordedRequest) => number | undefined;
  /** Requests kept in `received` at most (the oldest go first). Default: all of them; 0 keeps none. */
  maxRecorded?: number;
  /** Live sessions at most; beyond it A001 ends the oldest one. Default {@link DEFAULT_MAX_SESSIONS}. */
  maxSessions?: number;
}

export interface LegacyStandIn {
  /** `http(s)://<host>:<port>`, as bound (127.0.0.1 when listening on every address). */
  origin: string;
  /** origin + `/ers-api` */
  baseUrl: string;
  /** The base URL bodies embed (`networkBaseUrl`, default `baseUrl`). */
  networkBaseUrl: string;
  /** Every request, in order of arrival. */
  received: LegacyRecordedRequest[];
  /** Live sessions by id. */
  sessions: Map<string, LegacySession>;
  close(): Promise<void>;
}

// ─── constants ──────────────────────────────────────────────────────────────────────────────────────────────────

const LEGACY_BASE_PATH = '/ers-api';
export const SESSION_TYPE_INFO = 'uk.nhs.ers.xapi.dto.v1.session.ProfessionalSession';
/** The CIS1 ticket A001 refuses (403), as an expired or logged-out smartcard session. */
export const EXPIRED_TICKET = 'expired-ticket';
const TRANSACTION_ID_HEADER = 'X_ERS_TRANSACTION_ID';
/** The data calls the stand-in answers (see above); any other data call gets 404. */
export const LEGACY_STANDIN_CODES: readonly string[] = ['A004', 'A005', 'A006', 'A007', 'A008', 'A013'];
/** Live sessions a stand-in keeps by default. */
export const DEFAULT_MAX_SESSIONS = 10_000;

/** The user behind every CIS1 ticket not named in `users`: a provider clinician at R69 and a referrer at R68. */
export const DEFAULT_LEGACY_USER: LegacyUser = {
  identifier: '555020964101',
  firstName: 'SA Assurance',
  lastName: 'GP-Card',
  middleName: null,
  permissions: [
    { businessFunction: 'SERVICE_PROVIDER_CLINICIAN', orgIdentifier: 'R69', orgName: 'BTL NHS TRUST R69' },
    { businessFunction: 'REFERRING_CLINICIAN', orgIdentifier: 'R68', orgName: 'GP PRACTICE R68' },
  ],
};

const JSON_TYPE = 'application/json';
const FHIR_JSON = 'application/fhir+json';
const SESSION_PATH = `${LEGACY_BASE_PATH}/v1/ProfessionalSession`;
const STU3_PREFIX = `${LEGACY_BASE_PATH}/STU3/v1`;
const ATTACHMENT_ID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|att-\d+(?:-\d+)*)$/i;
const IF_MATCH = /^W\/"(\d+)"$/;

const CODE_SYSTEMS = 'stu3/getCodeSystem/responses';
const REFERRALS = 'stu3/retrieveReferralRequest/responses';
const CRI_PDF =
  'stu3/retrieveClinicalInformation/responses/000000070000_Clinical_Information_Summary_20210706114852.pdf';
const ATTACHMENT_PDF = 'stu3/retrieveAttachment/responses/example_attachment.pdf';
const ACCEPT_RESPONSE = 'stu3/acceptReferral/responses/ExampleResponse.json';

// ─── replies ────────────────────────────────────────────────────────────────────────────────────────────────────

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer;
}

interface Issue {
  /** FHIR issue.code, e.g. `forbidden`, `invalid`, `not-found`. */
  code: string;
  /** eRS-APIErrorCode-1 code, e.g. FORBIDDEN, NO_ACCESS, NO_SUCH_REQUEST. */
  errorCode: string;
  diagnostics: string;
}

function outcomeBody(issue: Issue): Buffer {
  return Buffer.from(
    JSON.stringify({
      resourceType: 'OperationOutcome',
      meta: { profile: [STU3_OUTCOME_PROFILE] },
      issue: [
        {
          severity: 'error',
          code: issue.code,
          details: { coding: [{ system: STU3_ERROR_SYSTEM, code: issue.errorCode }] },
          diagnostics: issue.diagnostics,
        },
      ],
    }),
  );
}

/** An eRS-OperationOutcome-1 answer; `application/json` on the session endpoints, FHIR JSON on data calls. */
function outcome(status: number, issue: Issue, contentType = FHIR_JSON): Reply {
  return { status, headers: { 'content-type': contentType }, body: outcomeBody(issue) };
}

function json(status: number, value: unknown, contentType: string, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': contentType, ...headers }, body: Buffer.from(JSON.stringify(value)) };
}

/** A FHIR JSON answer with the legacy API's `Content-Disposition` quirk. */
/**
 * Worklist item extensions APIM added by design after HSCN was withdrawn in August 2024 (A008 referralRequestVersion,
 * live December 2025; A023 communicationRequestVersion, January 2026): the HSCN API never answered them, so the
 * stand-in leaves them out of the NHS examples, as a recorded legacy answer lacks them. ers-bridge's comparison
 * presets (src/comparison/presets.ts) count them as ignored by preset.
 */
export const APIM_ADDED_EXTENSIONS: readonly string[] = ['referralRequestVersion', 'communicationRequestVersion'];

/** A worklist (List) without the item extensions of APIM_ADDED_EXTENSIONS. */
export function withoutApimAdditions(list: unknown): unknown {
  const doc = list as { entry?: Array<{ extension?: Array<{ extension?: Array<{ url?: unknown }> }> }> };
  for (const entry of doc.entry ?? []) {
    for (const ext of entry.extension ?? []) {
      if (Array.isArray(ext.extension)) {
        ext.extension = ext.extension.filter((x) => !APIM_ADDED_EXTENSIONS.includes(String(x.url)));
      }
    }
  }
  return list;
}

function fhirText(status: number, text: string, headers: Record<string, string> = {}): Reply {
  return {
    status,
    headers: { 'content-type': FHIR_JSON, 'content-disposition': 'inline;filename=f.txt', ...headers },
    body: Buffer.from(text, 'utf8'),
  };
}

function pdf(rel: string, filename: string): Reply {
  const bytes = exampleBytes(rel);
  return {
    status: 200,
    headers: {
      'content-type': 'application/pdf',
      'content-disposition': `attachment; filename="${filename}"`,
      'content-length': String(bytes.length),
    },
    body: bytes,
  };
}

const forbidden = (diagnostics: string, contentType?: string) =>
  outcome(403, { code: 'forbidden', errorCode: 'FORBIDDEN', diagnostics }, contentType);
const noAccess = (diagnostics: string, contentType?: string) =>
  outcome(403, { code: 'forbidden', errorCode: 'NO_ACCESS', diagnostics }, contentType);

const methodNotAllowed = (method: string, contentType: string) =>
  outcome(
    405,
    { code: 'not-supported', errorCode: 'METHOD_NOT_ALLOWED', diagnostics: `${method} is not allowed here` },
    contentType,
  );

// ─── fixtures in the legacy form ────────────────────────────────────────────────────────────────────────────────

/** An example's text as the legacy host serves it: `_baseUrl_/STU3/` → `<base>/STU3/v1/`, `_baseUrl_/R4/` likewise. */
function legacyText(rel: string, base: string): string {
  return exampleText(rel)
    .replaceAll('_baseUrl_/STU3/', `${base}/STU3/v1/`)
    .replaceAll('_baseUrl_/R4/', `${base}/R4/v1/`)
    .replaceAll('_baseUrl_', base);
}

const idIndexes = new Map<string, Map<string, string>>();

function indexById(dir: string): Map<string, string> {
  let index = idIndexes.get(dir);
  if (index === undefined) {
    index = new Map();
    for (const name of exampleJsonFiles(dir)) {
      const id = (JSON.parse(exampleText(`${dir}/${name}`)) as { id?: unknown }).id;
      if (typeof id === 'string') index.set(id, `${dir}/${name}`);
    }
    idIndexes.set(dir, index);
  }
  return index;
}

function versionOf(rel: string): string | undefined {
  const v = (JSON.parse(exampleText(rel)) as { meta?: { versionId?: unknown } }).meta?.versionId;
  return typeof v === 'string' ? v : undefined;
}

// ─── request helpers ────────────────────────────────────────────────────────────────────────────────────────────

function header(req: LegacyRecordedRequest, lowerName: string): string | undefined {
  const v = req.headers[lowerName];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s.trim() === '' ? undefined : s.trim();
}

function parseJsonObject(body: Buffer): Record<string, unknown> | undefined {
  if (body.length === 0) return undefined;
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function peerCN(raw: IncomingMessage): string | undefined {
  const socket = raw.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cn = socket.getPeerCertificate()?.subject?.CN as string | string[] | undefined;
  return Array.isArray(cn) ? cn[0] : cn;
}

function segments(path: string): string[] | undefined {
  try {
    return path
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
}

/** `host:port` of a bound address; a wildcard address is reached on loopback. */
function hostOf(address: AddressInfo): string {
  const wildcard = address.address === '0.0.0.0' || address.address === '::';
  const host = wildcard ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${host}:${address.port}`;
}

// ─── the server ─────────────────────────────────────────────────────────────────────────────────────────────────

/** Starts the legacy stand-in, by default on 127.0.0.1 and a free port. */
export async function startLegacyStandIn(options: LegacyStandInOptions = {}): Promise<LegacyStandIn> {
  const knownAsids = options.asids === undefined ? undefined : new Set(options.asids);
  const users = new Map(Object.entries(options.users ?? {}));
  const sessions = new Map<string, LegacySession>();
  const received: LegacyRecordedRequest[] = [];
  const maxRecorded = options.maxRecorded ?? Number.POSITIVE_INFINITY;
  const maxSessions = Math.max(1, options.maxSessions ?? DEFAULT_MAX_SESSIONS);
  const closing = new AbortController();
  let origin = '';
  const baseUrl = () => origin + LEGACY_BASE_PATH;
  const networkBase = () => (options.networkBaseUrl ?? baseUrl()).replace(/\/+$/, '');

  const tls = options.tls;
  const common = { logger: false, bodyLimit: BODY_LIMIT_BYTES, forceCloseConnections: true } as const;
  // The HTTPS instance differs from the HTTP one only in its raw server type, which nothing here depends on.
  const app: FastifyInstance =
    tls === undefined
      ? Fastify(common)
      : (Fastify({
          ...common,
          https: {
            cert: tls.cert,
            key: tls.key,
            ca: tls.ca,
            requestCert: tls.requireClientCert === true,
            rejectUnauthorized: tls.requireClientCert === true,
          },
        }) as unknown as FastifyInstance);

  const records = new WeakMap<IncomingMessage, LegacyRecordedRequest>();

  keepRawBodies(app);

  app.addHook('onRequest', (req, reply, done) => {
    const record: LegacyRecordedRequest = recordOf(req);
    const cn = peerCN(req.raw);
    if (cn !== undefined) record.clientCertCN = cn;
    records.set(req.raw, record);
    if (maxRecorded > 0) {
      received.push(record);
      if (received.length > maxRecorded) received.splice(0, received.length - maxRecorded);
    }
    // Set on the raw response so the name keeps its exact spelling on the wire.
    reply.raw.setHeader(TRANSACTION_ID_HEADER, `${randomUUID()}-1`);
    done();
  });

  // ── the ASID and session checks ──

  function checkAsid(req: LegacyRecordedRequest, contentType: string): Reply | string {
    const asid = header(req, 'xapi_asid');
    if (asid === undefined) return forbidden('The XAPI_ASID header is missing', contentType);
    if (knownAsids !== undefined && !knownAsids.has(asid)) {
      return forbidden(`ASID ${asid} is not valid for this endpoint`, contentType);
    }
    return asid;
  }

  /** The live session named by `HTTP_X_SESSION_KEY` (and by the path id, when given) for this ASID, or a 403. */
  function sessionFor(
    req: LegacyRecordedRequest,
    asid: string,
    pathId: string | undefined,
    contentType: string,
  ): Reply | LegacySession {
    const key = header(req, 'http_x_session_key');
    if (key === undefined) return noAccess('The HTTP_X_SESSION_KEY header is missing', contentType);
    if (pathId !== undefined && key !== pathId) {
      return noAccess('HTTP_X_SESSION_KEY does not match the session in the path', contentType);
    }
    const session = sessions.get(key);
    if (session === undefined || session.asid !== asid) {
      return noAccess('The session key is not valid or has expired', contentType);
    }
    return session;
  }

  function sessionBody(session: LegacySession): Record<string, unknown> {
    return {
      typeInfo: SESSION_TYPE_INFO,
      id: session.id,
      token: session.token,
      user: { ...session.user, middleName: session.user.middleName ?? null },
      permission: session.permission,
    };
  }

  // ── A001–A003 ──

  function createSession(req: LegacyRecordedRequest): Reply {
    const asid = checkAsid(req, JSON_TYPE);
    if (typeof asid !== 'string') return asid;
    const body = parseJsonObject(req.body);
    if (body === undefined) {
      return outcome(
        422,
        {
          code: 'invalid',
          errorCode: 'INVALID_VALUE',
          diagnostics: 'The body must be a ProfessionalSession JSON object',
        },
        JSON_TYPE,
      );
    }
    const token = typeof body.token === 'string' ? body.token.trim() : '';
    if (token === '') {
      return outcome(
        422,
        { code: 'required', errorCode: 'MISSING_VALUE', diagnostics: 'token: a CIS1 SSO ticket is required' },
        JSON_TYPE,
      );
    }
    if (token === EXPIRED_TICKET) return forbidden('The CIS1 SSO ticket is not valid or has expired', JSON_TYPE);
    const session: LegacySession = {
      id: `pro-api-session:${randomUUID()}`,
      asid,
      token: body.token as string,
      user: structuredClone(users.get(token) ?? DEFAULT_LEGACY_USER),
      permission: null,
      createdAt: Date.now(),
    };
    // Maps keep insertion order: the first key is the oldest session.
    while (sessions.size >= maxSessions) sessions.delete(sessions.keys().next().value!);
    sessions.set(session.id, session);
    return json(201, sessionBody(session), JSON_TYPE);
  }

  function selectRole(req: LegacyRecordedRequest, pathId: string): Reply {
    const asid = checkAsid(req, JSON_TYPE);
    if (typeof asid !== 'string') return asid;
    const session = sessionFor(req, asid, pathId, JSON_TYPE);
    if (!('asid' in session)) return session;
    const body = parseJsonObject(req.body);
    const wanted = body?.permission as Record<string, unknown> | null | undefined;
    if (
      typeof wanted !== 'object' ||
      wanted === null ||
      typeof wanted.businessFunction !== 'string' ||
      typeof wanted.orgIdentifier !== 'string'
    ) {
      return outcome(
        422,
        {
          code: 'required',
          errorCode: 'MISSING_VALUE',
          diagnostics: 'permission: {businessFunction, orgIdentifier} is required',
        },
        JSON_TYPE,
      );
    }
    if (body?.token !== undefined && body.token !== session.token) {
      return forbidden('The token does not belong to this session', JSON_TYPE);
    }
    if (body?.id !== undefined && body.id !== session.id) {
      return forbidden('The id does not match the session in the path', JSON_TYPE);
    }
    const held = session.user.permissions.find(
      (p) => p.businessFunction === wanted.businessFunction && p.orgIdentifier === wanted.orgIdentifier,
    );
    if (held === undefined) {
      return forbidden(
        `The user does not hold business function ${wanted.businessFunction} at organisation ${wanted.orgIdentifier}`,
        JSON_TYPE,
      );
    }
    session.permission = { ...held };
    return json(200, sessionBody(session), JSON_TYPE);
  }

  function deleteSession(req: LegacyRecordedRequest, pathId: string): Reply {
    const asid = checkAsid(req, JSON_TYPE);
    if (typeof asid !== 'string') return asid;
    const session = sessionFor(req, asid, pathId, JSON_TYPE);
    if (!('asid' in session)) return session;
    sessions.delete(session.id);
    return { status: 204 };
  }

  // ── STU3 data calls ──

  function notFound(diagnostics: string): Reply {
    return outcome(404, { code: 'not-found', errorCode: 'NOT_FOUND', diagnostics });
  }

  function noSuchRequest(ubrn: string): Reply {
    return outcome(404, {
      code: 'not-found',
      errorCode: 'NO_SUCH_REQUEST',
      diagnostics: `No request with UBRN ${ubrn} exists`,
    });
  }

  function serve(rel: string, status = 200, etag = false): Reply {
    const version = versionOf(rel);
    const headers: Record<string, string> = etag && version !== undefined ? { etag: `W/"${version}"` } : {};
    return fhirText(status, legacyText(rel, networkBase()), headers);
  }

  function codeSystem(type: string): Reply {
    const rel = indexById(CODE_SYSTEMS).get(type);
    return rel === undefined ? notFound(`No CodeSystem of type ${type}`) : serve(rel);
  }

  function referral(ubrn: string, version: string | undefined): Reply {
    const rel = indexById(REFERRALS).get(ubrn);
    if (rel === undefined) return noSuchRequest(ubrn);
    const latest = versionOf(rel);
    if (version !== undefined && version !== latest) {
      return outcome(404, {
        code: 'not-found',
        errorCode: 'HISTORY_NOT_SUPPORTED',
        diagnostics: `Only the latest version (${latest}) of ${ubrn} can be retrieved`,
      });
    }
    return serve(rel, 200, true);
  }

  function attachment(id: string): Reply {
    if (!ATTACHMENT_ID.test(id)) return notFound(`No attachment ${id}`);
    return pdf(ATTACHMENT_PDF, 'example_attachment.pdf');
  }

  function clinicalInformation(ubrn: string): Reply {
    if (!indexById(REFERRALS).has(ubrn)) return noSuchRequest(ubrn);
    const example = CRI_PDF.slice(CRI_PDF.lastIndexOf('/') + 1);
    return pdf(CRI_PDF, `${ubrn}${example.slice(example.indexOf('_'))}`);
  }

  function worklist(req: LegacyRecordedRequest): Reply {
    const set = BODY_EXAMPLES.A008!;
    const requestDir = `${set.dir}/requests`;
    let body: unknown;
    try {
      body = JSON.parse(req.body.toString('utf8'));
    } catch {
      body = undefined;
    }
    const base = networkBase();
    const name = exampleJsonFiles(requestDir).find((n) =>
      jsonEqual(body, JSON.parse(legacyText(`${requestDir}/${n}`, base))),
    );
    if (name === undefined) {
      return outcome(422, {
        code: 'invalid',
        errorCode: 'INVALID_VALUE',
        diagnostics: `legacy stand-in: the body equals none of the worklist examples in ${requestDir}, with links under ${base}/STU3/v1/`,
      });
    }
    const stem = name.replace(/\.json$/, '');
    // As HSCN answered: without the fields APIM added after HSCN was withdrawn (referralRequestVersion).
    const rel = `${set.dir}/responses/${set.responses?.[stem] ?? stem}.json`;
    return fhirText(200, JSON.stringify(withoutApimAdditions(JSON.parse(legacyText(rel, networkBase()))), null, 2));
  }

  function accept(req: LegacyRecordedRequest, ubrn: string): Reply {
    const rel = indexById(REFERRALS).get(ubrn);
    if (rel === undefined) return noSuchRequest(ubrn);
    const ifMatch = header(req, 'if-match');
    if (ifMatch === undefined) {
      return outcome(400, {
        code: 'required',
        errorCode: 'MISSING_VALUE',
        diagnostics: 'The If-Match header is required',
      });
    }
    const m = IF_MATCH.exec(ifMatch);
    if (m === null) {
      return outcome(400, {
        code: 'value',
        errorCode: 'INVALID_VALUE',
        diagnostics: `If-Match must be W/"<version>"; got ${ifMatch}`,
      });
    }
    const latest = versionOf(rel);
    if (m[1] !== latest) {
      return outcome(409, {
        code: 'conflict',
        errorCode: 'VERSION_CONFLICT',
        diagnostics: `Version ${m[1]} is not the latest version (${latest}) of ${ubrn}`,
      });
    }
    const exampleId = (JSON.parse(exampleText(ACCEPT_RESPONSE)) as { id?: string }).id;
    if (exampleId !== ubrn) {
      return outcome(422, {
        code: 'invalid',
        errorCode: 'INVALID_REQUEST_STATE',
        diagnostics: `legacy stand-in: the accept-referral example is for UBRN ${exampleId} only`,
      });
    }
    return serve(ACCEPT_RESPONSE, 200, true);
  }

  /** The endpoint below `/ers-api/STU3/v1` at these path segments, with the one method it takes. */
  function routeData(parts: string[], req: LegacyRecordedRequest): { method: string; run: () => Reply } | undefined {
    const [resource, a, b, c] = parts;
    if (resource === 'CodeSystem' && parts.length === 2) return { method: 'GET', run: () => codeSystem(a!) };
    if (resource === 'Binary' && parts.length === 2) return { method: 'GET', run: () => attachment(a!) };
    if (resource !== 'ReferralRequest') return undefined;
    if (parts.length === 2 && a === '$ers.fetchworklist') return { method: 'POST', run: () => worklist(req) };
    if (parts.length === 2) return { method: 'GET', run: () => referral(a!, undefined) };
    if (parts.length === 4 && b === '_history') return { method: 'GET', run: () => referral(a!, c) };
    if (parts.length === 3 && b === '$ers.generateCRI') return { method: 'POST', run: () => clinicalInformation(a!) };
    if (parts.length === 3 && b === '$ers.acceptReferral') return { method: 'POST', run: () => accept(req, a!) };
    return undefined;
  }

  function dataCall(req: LegacyRecordedRequest, parts: string[]): Reply {
    const asid = checkAsid(req, FHIR_JSON);
    if (typeof asid !== 'string') return asid;
    const session = sessionFor(req, asid, undefined, FHIR_JSON);
    if (!('asid' in session)) return session;
    if (session.permission === null) {
      return noAccess('No role has been selected for this session (A002 Select Role)');
    }
    const route = routeData(parts, req);
    if (route === undefined) return notFound(`No endpoint at ${req.url.split('?', 1)[0]}`);
    return route.method === req.method ? route.run() : methodNotAllowed(req.method, FHIR_JSON);
  }

  function answer(req: LegacyRecordedRequest): Reply {
    const path = req.url.split('?', 1)[0]!;
    if (path === SESSION_PATH) {
      return req.method === 'POST' ? createSession(req) : methodNotAllowed(req.method, JSON_TYPE);
    }
    if (path.startsWith(`${SESSION_PATH}/`)) {
      const rest = segments(path.slice(SESSION_PATH.length));
      if (rest?.length === 1) {
        if (req.method === 'PUT') return selectRole(req, rest[0]!);
        if (req.method === 'DELETE') return deleteSession(req, rest[0]!);
        return methodNotAllowed(req.method, JSON_TYPE);
      }
    }
    if (path.startsWith(`${STU3_PREFIX}/`)) {
      const parts = segments(path.slice(STU3_PREFIX.length));
      if (parts !== undefined) return dataCall(req, parts);
    }
    return { status: 404, headers: { 'content-type': 'text/plain' }, body: Buffer.from('Not Found') };
  }

  function send(reply: FastifyReply, result: Reply): FastifyReply {
    reply.code(result.status);
    for (const [name, value] of Object.entries(result.headers ?? {})) reply.header(name, value);
    return result.body !== undefined && result.body.length > 0 ? reply.send(result.body) : reply.send();
  }

  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
    url: '/*',
    exposeHeadRoute: false,
    handler: async (req, reply) => {
      const record = records.get(req.raw)!;
      record.body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const delay = typeof options.delayMs === 'function' ? options.delayMs(record) : (options.delayMs ?? 0);
      if (delay > 0) await sleep(delay, undefined, { signal: closing.signal });
      const forced = options.fail?.(record);
      if (forced !== undefined) {
        return send(
          reply,
          outcome(forced, {
            code: 'exception',
            errorCode: forced === 503 ? 'SERVICE_UNAVAILABLE' : 'FORCED_FAILURE',
            diagnostics: `legacy stand-in: forced ${forced}`,
          }),
        );
      }
      return send(reply, answer(record));
    },
  });

  app.setErrorHandler((err: { statusCode?: number; message?: string }, _req, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
    return reply
      .code(status)
      .type('text/plain')
      .send(status >= 500 ? 'Internal Server Error' : (err.message ?? 'Bad Request'));
  });

  await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  origin = `${tls === undefined ? 'http' : 'https'}://${hostOf(app.server.address() as AddressInfo)}`;

  return {
    origin,
    baseUrl: baseUrl(),
    networkBaseUrl: networkBase(),
    received,
    sessions,
    close: async () => {
      closing.abort();
      await app.close();
    },
  };
}
