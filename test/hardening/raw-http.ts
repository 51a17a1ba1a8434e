/**
 * Raw HTTP/1.1 over `node:net`, for requests an HTTP client would refuse to send (smuggling shapes, bad header
 * bytes, unnormalised paths). Also the checks the hardening tests share: what "legacy-shaped" means, and which
 * headers and paths may ever reach the APIM stand-in.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { ApimStandIn, BuiltApimStandIn, RecordedRequest } from '../../src/apim-standin/index.js';
import type { LegacyResponse } from '../helpers/harness.js';

export interface RawResponse extends LegacyResponse {
  /** The server closed the connection (within `closeWaitMs` of the answer). */
  closed: boolean;
  /** A socket error seen before any answer (e.g. ECONNRESET), if any. */
  error?: string;
  /** Whether a complete answer was read. */
  answered: boolean;
}

export interface RawOptions {
  /** Bytes to send after the head, in pieces (each written after the previous one drained). */
  body?: Iterable<Buffer | string>;
  /** Give up after this long in total (default 10 s). */
  timeoutMs?: number;
  /**
   * After a complete answer, wait up to this long for the server to close the connection (default 0: return at once;
   * `closed` then says only whether it had closed already). The wait ends early when the connection closes.
   */
  closeWaitMs?: number;
  /** Stop writing the body once an answer has arrived (default true). */
  stopWritingOnAnswer?: boolean;
  /** The answer has no body whatever its headers say (the answer to a HEAD request). */
  headRequest?: boolean;
}

function parseAnswer(buf: Buffer, noBody = false): Omit<RawResponse, 'closed' | 'error' | 'answered'> | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const head = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '');
  if (!m) return undefined;
  const headers: Record<string, string | string[] | undefined> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    if (i === -1) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    const prev = headers[name];
    headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  const rest = buf.subarray(end + 4);
  let body: Buffer;
  const te = String(headers['transfer-encoding'] ?? '').toLowerCase();
  if (noBody) {
    body = Buffer.alloc(0);
  } else if (te.includes('chunked')) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', at);
      if (lineEnd === -1) return undefined;
      const size = Number.parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16);
      if (!Number.isFinite(size)) return undefined;
      if (size === 0) break;
      if (rest.length < lineEnd + 2 + size + 2) return undefined;
      parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else {
    const cl = headers['content-length'];
    const n = typeof cl === 'string' ? Number(cl) : 0;
    if (rest.length < n) return undefined;
    body = rest.subarray(0, n);
  }
  const status = Number(m[1]);
  return { status, headers, body, json: () => JSON.parse(body.toString('utf8')) };
}

/**
 * Sends `head` (request line and headers, CRLFs included, exactly as given) and then the body pieces, and reads one
 * answer. Never throws: a connection reset or a timeout comes back as `answered: false`.
 */
export async function rawRequest(port: number, head: string | Buffer, options: RawOptions = {}): Promise<RawResponse> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const closeWaitMs = options.closeWaitMs ?? 0;
  const stopWriting = options.stopWritingOnAnswer ?? true;
  return new Promise<RawResponse>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = Buffer.alloc(0);
    let answer: ReturnType<typeof parseAnswer>;
    let error: string | undefined;
    let settled = false;
    let closeTimer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(overall);
      clearTimeout(closeTimer);
      socket.destroy();
      const a = answer ?? parseAnswer(received, options.headRequest);
      resolve(
        a
          ? { ...a, closed, answered: true, ...(error ? { error } : {}) }
          : {
              status: 0,
              headers: {},
              body: received,
              json: () => JSON.parse(received.toString('utf8')),
              closed,
              answered: false,
              ...(error ? { error } : {}),
            },
      );
    };
    const overall = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (!answer) {
        answer = parseAnswer(received, options.headRequest);
        if (answer) closeTimer = setTimeout(() => finish(false), closeWaitMs);
      }
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e.code ?? e.message;
    });
    socket.on('close', () => finish(true));
    socket.on('connect', async () => {
      const write = (data: Buffer | string) =>
        new Promise<void>((r) => {
          if (socket.destroyed || !socket.writable) return r();
          const ok = socket.write(data, () => r());
          if (!ok) socket.once('drain', () => r());
        });
      await write(head);
      for (const piece of options.body ?? []) {
        if (socket.destroyed || settled || (stopWriting && answer)) break;
        await write(piece);
      }
    });
  });
}

/** A request head: request line, headers in the given order and spelling, blank line. */
export function rawHead(method: string, target: string, headers: Array<[string, string]>): string {
  return `${method} ${target} HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
}

const ERS_PROFILE = 'https://fhir.nhs.uk/STU3/StructureDefinition/eRS-OperationOutcome-1';

/**
 * Whether an answer is an eRS OperationOutcome (JSON, the eRS profile). With `bridge`, it must also carry a
 * `urn:ers-bridge:error` coding (an answer ers-bridge made itself). Returns a reason when it is not, else undefined.
 */
export function notLegacyShaped(
  res: { status: number; headers: Record<string, unknown>; body: Buffer },
  options: { bridge: boolean; head?: boolean },
): string | undefined {
  const ct = String(res.headers['content-type'] ?? '');
  if (!/^application\/(fhir\+)?json/.test(ct)) return `content-type ${ct || '(none)'}`;
  if (options.head) return undefined; // no body to look at
  let body: any;
  try {
    body = JSON.parse(res.body.toString('utf8'));
  } catch {
    return `body is not JSON: ${res.body.subarray(0, 120).toString('utf8')}`;
  }
  if (body?.resourceType !== 'OperationOutcome') return `not an OperationOutcome: ${res.body.subarray(0, 120)}`;
  if (body.meta?.profile?.[0] !== ERS_PROFILE) return 'no eRS-OperationOutcome-1 profile';
  const codings: Array<{ system?: string; code?: string }> = body.issue?.[0]?.details?.coding ?? [];
  if (options.bridge && !codings.some((c) => c.system === 'urn:ers-bridge:error' && typeof c.code === 'string')) {
    return `no urn:ers-bridge:error coding: ${JSON.stringify(codings)}`;
  }
  const diagnostics = body.issue?.[0]?.diagnostics;
  if (options.bridge && (typeof diagnostics !== 'string' || /\bat .+:\d+:\d+\)?/.test(diagnostics))) {
    return 'diagnostics missing or with a stack trace';
  }
  return undefined;
}

/** The ers-bridge reason of a legacy-shaped answer, if any. */
export function bridgeReason(res: { body: Buffer }): string | undefined {
  try {
    const body = JSON.parse(res.body.toString('utf8'));
    return body?.issue?.[0]?.details?.coding?.find((c: { system?: string }) => c.system === 'urn:ers-bridge:error')
      ?.code;
  } catch {
    return undefined;
  }
}

/** A header name as compared: lower case, `_` read as `-`. */
const normName = (name: string): string => name.toLowerCase().replaceAll('_', '-');

/**
 * What is wrong with the headers of one request the stand-in received, if anything. `allowedTokens` decides which
 * `Authorization` values are ers-bridge's own (tokens the stand-in issued); application-restricted sessions never
 * carry `NHSD-*`.
 */
export function forbiddenHeaders(r: RecordedRequest, allowedToken: (token: string) => boolean): string[] {
  const problems: string[] = [];
  const authorizations: string[] = [];
  for (const [name, value] of r.rawHeaders) {
    const n = normName(name);
    if (n === 'authorization') {
      authorizations.push(value);
      const m = /^Bearer (\S+)$/.exec(value);
      if (!m || !allowedToken(m[1]!)) problems.push(`authorization not issued by the stand-in: ${name}`);
    } else if (
      n.startsWith('nhsd-') ||
      n.startsWith('x-ers-') ||
      n.startsWith('x-forwarded-') ||
      n === 'forwarded' ||
      n === 'cookie' ||
      n === 'xapi-asid' ||
      n === 'http-x-session-key' ||
      n === 'xapi-fqdn'
    ) {
      problems.push(`forbidden header ${name}`);
    }
  }
  if (authorizations.length > 1) problems.push(`${authorizations.length} authorization headers`);
  return problems;
}

/** What is wrong with the path of one request the stand-in received, if anything. */
export function badUpstreamPath(r: RecordedRequest): string | undefined {
  const path = r.url.split('?', 1)[0]!;
  if (!path.startsWith('/referrals/FHIR/STU3/') && !path.startsWith('/referrals/FHIR/R4/')) {
    return `path outside the e-RS prefixes: ${path}`;
  }
  let decoded = path;
  // Decode until stable (at most a few rounds): a double-encoded dot segment counts too.
  for (let i = 0; i < 4; i++) {
    let next: string;
    try {
      next = decodeURIComponent(decoded);
    } catch {
      break;
    }
    if (next === decoded) break;
    decoded = next;
  }
  if (decoded.split(/[/\\]/).some((s) => s === '..' || s === '.') || decoded.includes('..')) {
    return `decoded path contains a dot segment: ${path}`;
  }
  if (/\\/.test(path) || /%(2f|5c|00)/i.test(path)) return `encoded slash, backslash or NUL: ${path}`;
  return undefined;
}

/**
 * A check for `Authorization` values: true only for access tokens the stand-in issued (recorded from now on, and
 * any live token it still holds). The harness's stand-in is a BuiltApimStandIn; its token store is reached through
 * `state`.
 */
export function issuedTokenCheck(standIn: ApimStandIn): (token: string) => boolean {
  const state = (standIn as BuiltApimStandIn).state;
  const issued = new Set<string>();
  const original = state.tokens.issue.bind(state.tokens);
  state.tokens.issue = (options) => {
    const t = original(options);
    issued.add(t.accessToken);
    return t;
  };
  return (token) => issued.has(token) || state.tokens.lookup(token) !== undefined;
}

/**
 * The statuses MIGRATION.md's Troubleshooting table documents for each reason. A number in the status column is
 * the status; the cause column's own exceptions are added (MALFORMED_REQUEST is 408 when the request is not completed
 * in time; LEGACY_SESSION_FAILED is 502 when the legacy host failed itself); `APIM's status` allows any 4xx/5xx.
 */
export function documentedStatuses(): Map<string, (status: number) => boolean> {
  const text = readFileSync(new URL('../../MIGRATION.md', import.meta.url), 'utf8');
  const map = new Map<string, (status: number) => boolean>();
  for (const m of text.matchAll(/^\| `([A-Z0-9_]+)` \| ([^|]+) \|([^|]*)\|/gm)) {
    const [, reason, statusText, cause] = m as unknown as [string, string, string, string];
    const n = Number(statusText.trim());
    if (Number.isInteger(n)) {
      const extra = [...cause.matchAll(/\((\d{3}) when|; (\d{3}) when/g)].map((x) => Number(x[1] ?? x[2]));
      const allowed = new Set([n, ...extra]);
      map.set(reason, (s) => allowed.has(s));
    } else {
      map.set(reason, (s) => s >= 400 && s <= 599);
    }
  }
  return map;
}
