/**
 * The forward step's I/O: one undici Pool per upstream origin, with keep-alive, TLS verification always on, and
 * connect/headers/body timeouts. A transport failure becomes an UpstreamError saying what went wrong and whether
 * the request certainly never reached the upstream's application (so it may be sent again).
 */
import { type Dispatcher, Pool, errors as undiciErrors } from 'undici';
import { ClientAborted } from '../http/errors.js';

export interface UpstreamOptions {
  connections: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** Extra CA certificates (PEM) to trust, e.g. for a test stand-in on TLS. Verification itself is never disabled. */
  ca?: string | string[];
  /** A client certificate and key (PEM) for mutual TLS, as the HSCN legacy hosts required. */
  cert?: string;
  key?: string;
}

/**
 * Certificate verification failures (OpenSSL's verify codes and Node's TLS errors): the upstream is refused, never
 * retried, and reported as such.
 */
const TLS_VERIFY_FAILURE =
  /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET|ERR_TLS|INVALID_PURPOSE|INVALID_CA|PATH_LENGTH_EXCEEDED|CA_KEY_TOO_SMALL|EE_KEY_TOO_SMALL|CA_MD_TOO_WEAK|HOSTNAME_MISMATCH|SUBJECT_ISSUER_MISMATCH|AKID_SKID_MISMATCH|KEYUSAGE_NO_CERTSIGN|UNHANDLED_CRITICAL/i;

export type UpstreamBody = Buffer | AsyncIterable<Buffer> | undefined;

export interface UpstreamRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: UpstreamBody;
  signal?: AbortSignal;
  /**
   * The pool partition (an APIM application's tag): each partition has its own connections, so one application's
   * hung calls never take another's. Absent: the default partition.
   */
  partition?: string;
}

/** Partitions at most (one per APIM application of the rules; a bound against a runaway caller). */
const MAX_PARTITIONS = 1_000;

export class Upstream {
  private readonly pools = new Map<string, Pool>();

  constructor(
    readonly origin: string,
    private readonly options: UpstreamOptions,
    readonly name = 'APIM',
  ) {}

  private poolFor(partition = ''): Pool {
    let pool = this.pools.get(partition);
    if (!pool) {
      if (this.pools.size >= MAX_PARTITIONS)
        throw new Error(`${this.name}: more than ${MAX_PARTITIONS} pool partitions`);
      const o = this.options;
      pool = new Pool(this.origin, {
        connections: o.connections,
        pipelining: 1,
        keepAliveTimeout: 4_000,
        headersTimeout: o.headersTimeoutMs,
        bodyTimeout: o.bodyTimeoutMs,
        connect: {
          timeout: o.connectTimeoutMs,
          rejectUnauthorized: true,
          ...(o.ca ? { ca: o.ca } : {}),
          ...(o.cert && o.key ? { cert: o.cert, key: o.key } : {}),
        },
      });
      this.pools.set(partition, pool);
    }
    return pool;
  }

  /** Sends a request; resolves with the answer (any status), rejects with an UpstreamError on transport failure. */
  request(req: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    let answer: Promise<Dispatcher.ResponseData>;
    try {
      const options = {
        method: req.method as Dispatcher.HttpMethod,
        path: req.path,
        headers: req.headers,
        // undici streams async iterables as request bodies; its typings only list Readable.
        body: (req.body ?? null) as Dispatcher.RequestOptions['body'],
        signal: req.signal,
      } satisfies Dispatcher.RequestOptions;
      answer = this.poolFor(req.partition).request(options);
    } catch (e) {
      return Promise.reject(this.transportError(e));
    }
    return answer.catch((e: unknown) => {
      throw this.transportError(e);
    });
  }

  /** Classifies an undici/socket failure; the fault table (src/pipeline/faults.ts) says what the client is told. */
  transportError(e: unknown): UpstreamError | ClientAborted {
    return classifyTransport(e, this.name, this.origin);
  }

  /** The pools' figures, summed over every partition. */
  stats(): { connected: number; free: number; pending: number; running: number; size: number } {
    const out = { connected: 0, free: 0, pending: 0, running: 0, size: 0 };
    for (const pool of this.pools.values()) {
      const s = pool.stats;
      out.connected += s.connected;
      out.free += s.free;
      out.pending += s.pending;
      out.running += s.running;
      out.size += s.size;
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
  }

  get timeouts(): UpstreamOptions {
    return this.options;
  }
}

/** What went wrong between ers-bridge and an upstream. */
export type UpstreamFailure =
  | 'connect-timeout'
  | 'headers-timeout'
  | 'body-timeout'
  | 'timeout'
  | 'tls-unverified'
  | 'unreachable'
  | 'reset'
  | 'aborted'
  | 'unreadable'
  | 'too-large';

/** A failure of the connection to an upstream (APIM or the legacy host), or an answer ers-bridge cannot use. */
export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamFailure,
    /** The upstream, as operators name it: "APIM", "the legacy e-RS host". */
    readonly upstream: string,
    readonly origin: string,
    /** The system's error code (ECONNREFUSED, an OpenSSL verify code…), when there is one. */
    readonly code: string,
    /** The request certainly never reached the upstream's application (refused or reset): safe to send again. */
    readonly retryable = false,
    /** For too-large: the bound that was passed, and what the answer was read for. */
    readonly limit?: { bytes: number; purpose: 'translate' | 'compare' },
  ) {
    super(`${upstream}: ${kind}${code ? ` (${code})` : ''}`);
    this.name = 'UpstreamError';
  }
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
const RESET = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_CLOSED']);

/** Pure: the UpstreamError for whatever undici or the socket threw (a client that left is not an upstream fault). */
export function classifyTransport(e: unknown, upstream: string, origin: string): UpstreamError | ClientAborted {
  if (e instanceof UpstreamError || e instanceof ClientAborted) return e;
  const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = err?.code ?? err?.cause?.code ?? '';
  const fail = (kind: UpstreamFailure, retryable = false) => new UpstreamError(kind, upstream, origin, code, retryable);
  if (err instanceof undiciErrors.ConnectTimeoutError || code === 'UND_ERR_CONNECT_TIMEOUT')
    return fail('connect-timeout');
  if (err instanceof undiciErrors.HeadersTimeoutError || code === 'UND_ERR_HEADERS_TIMEOUT')
    return fail('headers-timeout');
  if (err instanceof undiciErrors.BodyTimeoutError || code === 'UND_ERR_BODY_TIMEOUT') return fail('body-timeout');
  if (TLS_VERIFY_FAILURE.test(code)) return fail('tls-unverified');
  if (UNREACHABLE.has(code)) return fail('unreachable', code === 'ECONNREFUSED');
  if (RESET.has(code)) return fail('reset', true);
  if (err?.name === 'TimeoutError' || (err?.cause as { name?: string } | undefined)?.name === 'TimeoutError') {
    return fail('timeout');
  }
  if (err?.name === 'AbortError' || code === 'UND_ERR_ABORTED') return fail('aborted');
  return fail('unreadable');
}
