/**
 * The object store A042 redirects to. It is another origin than APIM, so it has a client of its own: TLS always
 * verified (APIM's extra CA certificates trusted too), every stage bounded in time (connect, headers, each pause in
 * the body, and the whole download), no redirect followed, nothing cached, no credential or cookie sent.
 *
 * The link is a bearer URL — whoever holds it may download the file until it expires — so it is never logged, never
 * put in an error and never handed to the legacy client: an ObjectStoreError carries at most the store's host name.
 */
import type { Readable } from 'node:stream';
import { Agent } from 'undici';
import { readWhole } from '../http/bounded.js';
import { classifyTransport, UpstreamError } from './upstream.js';

export interface ObjectStoreOptions {
  connectMs: number;
  headersMs: number;
  bodyMs: number;
  totalMs: number;
  /** Extra CA certificates (PEM) to trust. Verification itself is never disabled. */
  ca?: string | string[];
  /** Connections per object-store origin (default 16). */
  connections?: number;
}

export type ObjectStoreFailure = 'link' | 'status' | 'timeout' | 'tls-unverified' | 'unreachable' | 'too-large';

/** What went wrong reaching the object store. The fault table (src/pipeline/faults.ts) words it for the client. */
export class ObjectStoreError extends Error {
  constructor(
    readonly kind: ObjectStoreFailure,
    readonly detail: {
      /** The object store's host (never its URL: the path and query are the credential). */
      host?: string;
      /** For status: what the object store answered. */
      status?: number;
      /** The system's error code (ECONNREFUSED, an OpenSSL verify code…). */
      code?: string;
      /** For link: why the link was not followed. */
      why?: string;
      /** For too-large: the file's size (when known) and the limit. */
      bytes?: number;
      limit?: number;
    } = {},
  ) {
    super(
      `object store: ${kind}${detail.status ? ` (HTTP ${detail.status})` : ''}${detail.code ? ` (${detail.code})` : ''}`,
    );
    this.name = 'ObjectStoreError';
  }
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Step (pure): the link of A042's 307, if ers-bridge will follow it — an absolute https URL (plain http only on
 * loopback, for a stand-in), with no user name or password in it. Throws ObjectStoreError('link') otherwise.
 */
export function objectStoreLink(location: string | undefined): URL {
  if (location === undefined || location.trim() === '') {
    throw new ObjectStoreError('link', { why: 'the 307 carried no Location' });
  }
  let url: URL;
  try {
    url = new URL(location.trim());
  } catch {
    throw new ObjectStoreError('link', { why: 'its Location is not an absolute URL' });
  }
  if (url.username !== '' || url.password !== '') {
    throw new ObjectStoreError('link', { host: url.hostname, why: 'its Location carries a user name or password' });
  }
  const plainLoopback = url.protocol === 'http:' && LOOPBACK.has(url.hostname);
  if (url.protocol !== 'https:' && !plainLoopback) {
    throw new ObjectStoreError('link', {
      host: url.hostname,
      why: `its Location is not https (${url.protocol.replace(/:$/, '')})`,
    });
  }
  return url;
}

/** The file as the object store answered it: its headers and its bytes (a stream, or read whole when unsized). */
export interface ObjectStoreFile {
  contentType: string | undefined;
  contentDisposition: string | undefined;
  /** The file's size in bytes. */
  length: number;
  body: Readable | Buffer;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export class ObjectStoreClient {
  private readonly agent: Agent;

  constructor(private readonly options: ObjectStoreOptions) {
    this.agent = new Agent({
      connections: options.connections ?? 16,
      pipelining: 1,
      keepAliveTimeout: 4_000,
      headersTimeout: options.headersMs,
      bodyTimeout: options.bodyMs,
      connect: { timeout: options.connectMs, rejectUnauthorized: true, ...(options.ca ? { ca: options.ca } : {}) },
    });
  }

  /**
   * Downloads the file behind the link: 200 and at most `limit` bytes, or ObjectStoreError. A file of known size is
   * streamed (the whole download still bounded by `totalMs`); one sent without Content-Length is read whole up to
   * `limit`, so the legacy client always gets A006's Content-Length.
   */
  async download(link: URL, limit: number, signal?: AbortSignal): Promise<ObjectStoreFile> {
    const deadline = AbortSignal.timeout(this.options.totalMs);
    const host = link.hostname;
    const failed = (e: unknown) => this.failure(e, host, deadline);
    let res: Awaited<ReturnType<Agent['request']>>;
    try {
      res = await this.agent.request({
        origin: link.origin,
        path: `${link.pathname}${link.search}`,
        method: 'GET',
        // Nothing of the legacy call or of APIM goes to the object store: the link itself is the credential.
        headers: { accept: '*/*', 'cache-control': 'no-store' },
        signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
      });
    } catch (e) {
      throw failed(e);
    }
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      throw new ObjectStoreError('status', { host, status: res.statusCode });
    }
    const contentType = first(res.headers['content-type']);
    const contentDisposition = first(res.headers['content-disposition']);
    const declared = first(res.headers['content-length']);
    if (declared !== undefined && /^\d{1,15}$/.test(declared)) {
      const length = Number(declared);
      if (length > limit) {
        res.body.on('error', () => undefined); // destroying an unread body reports an abort nobody waits for
        res.body.destroy();
        throw new ObjectStoreError('too-large', { host, bytes: length, limit });
      }
      return { contentType, contentDisposition, length, body: res.body };
    }
    const bytes = await readWhole(res.body, {
      limit,
      onOverflow: 'destroy',
      tooLarge: () => new ObjectStoreError('too-large', { host, limit }),
      onSourceError: failed,
    });
    return { contentType, contentDisposition, length: bytes.length, body: bytes };
  }

  /** Every transport failure as an ObjectStoreError naming only the host. */
  private failure(e: unknown, host: string, deadline: AbortSignal): ObjectStoreError {
    if (e instanceof ObjectStoreError) return e;
    if (deadline.aborted) return new ObjectStoreError('timeout', { host });
    const t = classifyTransport(e, 'the object store', host);
    const code = t instanceof UpstreamError ? t.code : '';
    const kind = t instanceof UpstreamError ? t.kind : 'aborted';
    if (kind === 'connect-timeout' || kind === 'headers-timeout' || kind === 'body-timeout' || kind === 'timeout') {
      return new ObjectStoreError('timeout', { host, ...(code ? { code } : {}) });
    }
    if (kind === 'tls-unverified') return new ObjectStoreError('tls-unverified', { host, code });
    return new ObjectStoreError('unreachable', { host, ...(code ? { code } : {}) });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
