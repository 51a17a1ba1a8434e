/**
 * The legacy side: the HSCN e-RS API (or anything legacy-compatible) for `passthrough`, `canary` and `shadow`.
 *
 * Legacy clients keep one session, ers-bridge's. A call bound for the legacy host needs a session there too, so
 * ers-bridge opens one on first use — A001 with the client's own A001 token (its CIS1 ticket) and A002 with the role
 * the client selected — keeps its key sealed in the ers-bridge session, and closes it on A003. The A001 token is kept
 * in the session only while the rules send calls here (any mode but translate); a session made under translate-only
 * rules has none, and a call for the legacy host on it is refused (LegacyTokenMissing: create a new session).
 * The call itself goes through unchanged except for the session key and hop-by-hop headers, over mutual TLS as HSCN
 * required.
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { UpstreamBody } from '../apim/upstream.js';
import { LEGACY_PREFIX } from '../legacy/identify.js';
import type { LegacyAnswer } from '../pipeline/types.js';
import { updateLocked } from '../sessions/locking.js';
import { SESSION_TYPE_INFO, type Session, sessionWith } from '../sessions/session.js';
import { SessionEnded, type SessionStore } from '../sessions/store.js';
import { type LegacyHost, LegacySessionRefused, LegacyTokenMissing } from './host.js';

export type { LegacyHost } from './host.js';

/** Hop-by-hop and connection-specific request headers that never go through, plus the session key (replaced). */
const DROP_REQUEST = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
  'http_x_session_key',
  'http-x-session-key',
]);
const DROP_RESPONSE = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Pure: the headers sent to the legacy host — the client's, unchanged, but for the session key and hop-by-hop ones. */
export function legacyRequestHeaders(
  rawHeaders: readonly string[],
  legacyKey: string,
  bodyLength?: number,
): Record<string, string> {
  const listed = new Set<string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === 'connection') {
      for (const n of rawHeaders[i + 1]!.split(',')) listed.add(n.trim().toLowerCase());
    }
  }
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (DROP_REQUEST.has(lower) || listed.has(lower)) continue;
    const existing = Object.keys(out).find((k) => k.toLowerCase() === lower);
    if (existing) out[existing] = `${out[existing]}, ${rawHeaders[i + 1]}`;
    else out[name] = rawHeaders[i + 1]!;
  }
  out['HTTP_X_SESSION_KEY'] = legacyKey;
  if (bodyLength !== undefined) out['content-length'] = String(bodyLength);
  return out;
}

/** Pure: the legacy host's answer headers, as they were (hop-by-hop ones aside). */
export function legacyAnswerHeaders(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || DROP_RESPONSE.has(name)) continue;
    // The legacy spelling of the transaction id header, kept exactly (undici lower-cases names).
    const key = name === 'x_ers_transaction_id' ? 'X_ERS_TRANSACTION_ID' : name;
    out[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** Pure: the path at the legacy host of a call received as `rawUrl` (under /ers-api): the same, under its base. */
export function legacyPathFor(baseUrl: URL, rawUrl: string): string {
  const base = baseUrl.pathname.replace(/\/+$/, '');
  return `${base}${rawUrl.slice(LEGACY_PREFIX.length)}`;
}

async function readJson(
  res: Dispatcher.ResponseData,
): Promise<{ status: number; json: Record<string, unknown> | undefined; text: string }> {
  const text = await res.body.text();
  try {
    return { status: res.statusCode, json: JSON.parse(text) as Record<string, unknown>, text };
  } catch {
    return { status: res.statusCode, json: undefined, text };
  }
}

function legacySessionError(step: string, status: number, text: string): LegacySessionRefused {
  const said = text
    .replace(/[^\x20-\x7e]/g, ' ')
    .trim()
    .slice(0, 200);
  return new LegacySessionRefused(step, status, said);
}

/** Opens a session at the legacy host for this ers-bridge session (A001, then A002 with the selected role). */
async function openLegacySession(host: LegacyHost, session: Session, correlationId: string): Promise<string> {
  const token = session.legacyToken;
  if (token === undefined) throw new LegacyTokenMissing();
  const base = host.baseUrl.pathname.replace(/\/+$/, '');
  const common = {
    XAPI_ASID: session.asid,
    'content-type': 'application/json',
    accept: 'application/json',
    'x-correlation-id': correlationId,
  };
  const a001 = await readJson(
    await host.upstream.request({
      method: 'POST',
      path: `${base}/v1/ProfessionalSession`,
      headers: common,
      body: Buffer.from(JSON.stringify({ typeInfo: SESSION_TYPE_INFO, token })),
    }),
  );
  const id = a001.json?.['id'];
  if (a001.status !== 201 || typeof id !== 'string')
    throw legacySessionError('A001 (create session)', a001.status, a001.text);
  const a002 = await readJson(
    await host.upstream.request({
      method: 'PUT',
      path: `${base}/v1/ProfessionalSession/${encodeURIComponent(id)}`,
      headers: { ...common, HTTP_X_SESSION_KEY: id },
      body: Buffer.from(JSON.stringify({ typeInfo: SESSION_TYPE_INFO, token, permission: session.permission })),
    }),
  );
  if (a002.status !== 200) throw legacySessionError('A002 (select role)', a002.status, a002.text);
  return id;
}

/** The legacy host's session key for this ers-bridge session, opened on first use (once, under the session lock). */
export async function legacySessionKey(
  store: SessionStore,
  host: LegacyHost,
  key: string,
  session: Session,
  correlationId: string,
): Promise<string> {
  if (session.legacySession?.key) return session.legacySession.key;
  let opened: string | undefined;
  const updated = await updateLocked(
    store,
    key,
    async (current) => {
      if (current.legacySession?.key) return current;
      opened = await openLegacySession(host, current, correlationId);
      return sessionWith(current, { legacySession: { key: opened } });
    },
    undefined,
    session.asid,
  );
  const legacyKey = updated?.legacySession?.key ?? opened;
  if (!legacyKey) throw new SessionEnded('its legacy session was being opened');
  return legacyKey;
}

export interface LegacyCallInput {
  store: SessionStore;
  host: LegacyHost;
  key: string;
  session: Session;
  /** The request target as the client sent it (path and query, under /ers-api). */
  rawUrl: string;
  method: string;
  rawHeaders: readonly string[];
  body: UpstreamBody;
  bodyLength?: number;
  correlationId: string;
  signal: AbortSignal | undefined;
}

/** Sends a legacy call to the legacy host unchanged (but for the session key) and returns its answer as it is. */
export async function callLegacy(input: LegacyCallInput): Promise<LegacyAnswer> {
  const legacyKey = await legacySessionKey(input.store, input.host, input.key, input.session, input.correlationId);
  const res = await input.host.upstream.request({
    method: input.method,
    path: legacyPathFor(input.host.baseUrl, input.rawUrl),
    headers: legacyRequestHeaders(input.rawHeaders, legacyKey, input.bodyLength),
    body: input.body,
    ...(input.signal ? { signal: input.signal } : {}),
  });
  const headers = legacyAnswerHeaders(res.headers);
  if (input.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304) {
    await res.body.dump();
    return { status: res.statusCode, headers, body: undefined };
  }
  return { status: res.statusCode, headers, body: res.body as Readable };
}

/** Closes the legacy host's session too (A003), best effort: the client's A003 succeeds regardless. */
export async function closeLegacySession(host: LegacyHost, session: Session): Promise<void> {
  const legacyKey = session.legacySession?.key;
  if (!legacyKey) return;
  const base = host.baseUrl.pathname.replace(/\/+$/, '');
  try {
    const res = await host.upstream.request({
      method: 'DELETE',
      path: `${base}/v1/ProfessionalSession/${encodeURIComponent(legacyKey)}`,
      headers: { XAPI_ASID: session.asid, HTTP_X_SESSION_KEY: legacyKey },
      body: undefined,
    });
    await res.body.dump();
  } catch {
    // The legacy session will lapse on its own.
  }
}
