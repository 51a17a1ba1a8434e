/**
 * The forward step's I/O: one undici Pool per upstream origin, with keep-alive, TLS verification always on, and
 * connect/headers/body timeouts. Upstream failures become legacy-shaped errors with a diagnostics text that says
 * which side failed and what to check.
 */
import { type Dispatcher, Pool, errors as undiciErrors } from 'undici';
import { LegacyError } from '../legacy/errors.js';

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
}

export class Upstream {
  private readonly pool: Pool;

  constructor(
    readonly origin: string,
    private readonly options: UpstreamOptions,
    readonly name = 'APIM',
  ) {
    this.pool = new Pool(origin, {
      connections: options.connections,
      pipelining: 1,
      keepAliveTimeout: 4_000,
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyTimeoutMs,
      connect: {
        timeout: options.connectTimeoutMs,
        rejectUnauthorized: true,
        ...(options.ca ? { ca: options.ca } : {}),
        ...(options.cert && options.key ? { cert: options.cert, key: options.key } : {}),
      },
    });
  }

  /** Sends a request; resolves with APIM's answer (any status), rejects with a LegacyError on transport failure. */
  async request(req: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    try {
      const options = {
        method: req.method as Dispatcher.HttpMethod,
        path: req.path,
        headers: req.headers,
        // undici streams async iterables as request bodies; its typings only list Readable.
        body: (req.body ?? null) as Dispatcher.RequestOptions['body'],
        signal: req.signal,
      } satisfies Dispatcher.RequestOptions;
      return await this.pool.request(options);
    } catch (e) {
      if (e instanceof LegacyError) throw e;
      throw this.transportError(e);
    }
  }

  /** Maps an undici/socket error to the legacy error a client gets. */
  transportError(e: unknown): LegacyError {
    const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const code = err?.code ?? err?.cause?.code ?? '';
    const name = this.name;
    if (err instanceof undiciErrors.ConnectTimeoutError || code === 'UND_ERR_CONNECT_TIMEOUT') {
      return new LegacyError(
        'UPSTREAM_TIMEOUT',
        `${name} did not accept a connection in time; try again shortly. If it persists, check the network path from ers-bridge to ${this.origin}.`,
      );
    }
    if (err instanceof undiciErrors.HeadersTimeoutError || code === 'UND_ERR_HEADERS_TIMEOUT') {
      return new LegacyError(
        'UPSTREAM_TIMEOUT',
        `${name} did not answer in time; the request may or may not have been processed. Check its state before repeating a change.`,
      );
    }
    if (err instanceof undiciErrors.BodyTimeoutError || code === 'UND_ERR_BODY_TIMEOUT') {
      return new LegacyError('UPSTREAM_TIMEOUT', `${name} stopped sending its answer part-way; try again.`);
    }
    if (TLS_VERIFY_FAILURE.test(code)) {
      return new LegacyError(
        'UPSTREAM_UNREACHABLE',
        `The TLS certificate of ${name} could not be verified (${code}); ers-bridge never sends requests to an unverified server. Check the CA configuration.`,
      );
    }
    if (
      code === 'ECONNREFUSED' ||
      code === 'ENOTFOUND' ||
      code === 'EAI_AGAIN' ||
      code === 'EHOSTUNREACH' ||
      code === 'ENETUNREACH'
    ) {
      return new LegacyError(
        'UPSTREAM_UNREACHABLE',
        `${name} could not be reached (${code}); try again shortly. If it persists, check ers-bridge's network and DNS.`,
        { retryable: code === 'ECONNREFUSED' },
      );
    }
    if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED') {
      return new LegacyError(
        'UPSTREAM_UNREACHABLE',
        `The connection to ${name} was closed before it answered; the request may or may not have been processed.`,
        { retryable: true },
      );
    }
    if (err?.name === 'TimeoutError' || (err?.cause as { name?: string } | undefined)?.name === 'TimeoutError') {
      return new LegacyError('UPSTREAM_TIMEOUT', `${name} did not answer within the time allowed.`);
    }
    if (err?.name === 'AbortError' || code === 'UND_ERR_ABORTED') {
      return new LegacyError('UPSTREAM_UNREACHABLE', 'The request was abandoned because the client went away.');
    }
    return new LegacyError(
      'UPSTREAM_BAD_RESPONSE',
      `${name} answered in a way ers-bridge could not read (${code || 'invalid response'}).`,
    );
  }

  stats(): { connected: number; free: number; pending: number; running: number; size: number } {
    const s = this.pool.stats;
    return { connected: s.connected, free: s.free, pending: s.pending, running: s.running, size: s.size };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  get timeouts(): UpstreamOptions {
    return this.options;
  }
}
