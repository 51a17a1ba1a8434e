/**
 * Request bodies on their way to APIM.
 *
 * - FHIR JSON bodies are small: read whole (bounded), links rewritten, sent as one buffer (so a retry is trivial).
 * - Files (A020 uploads, up to the 5 MB e-RS limit) are streamed to APIM as they arrive, while the chunks are kept,
 *   so that the one retry after an APIM 401 can send the same bytes again without asking the client.
 */
import type { Readable } from 'node:stream';
import { readWhole } from '../http/bounded.js';
import { ClientAborted } from '../http/errors.js';
import { LegacyError } from '../legacy/errors.js';

export function tooLarge(limit: number): LegacyError {
  return new LegacyError(
    'BODY_TOO_LARGE',
    `The request body is larger than ${limit} bytes, the most ers-bridge accepts (e-RS takes files of up to 5 MB); send a smaller file.`,
  );
}

/** Refuses at once a body whose declared Content-Length is over the limit. */
export function checkDeclaredLength(contentLength: string | undefined, limit: number): void {
  if (contentLength === undefined) return;
  // Digits only (RFC 9110): Number() alone would take "0x10" or "1e3".
  const n = /^\d{1,16}$/.test(contentLength) ? Number(contentLength) : Number.NaN;
  if (!Number.isSafeInteger(n)) {
    throw new LegacyError('BAD_HEADER', 'The Content-Length header is not a valid length.');
  }
  if (n > limit) throw tooLarge(limit);
}

/** Reads a client's whole body, refusing it as soon as it passes `limit`. */
export function readBounded(source: Readable, limit: number, tooLargeError = () => tooLarge(limit)): Promise<Buffer> {
  // Stop reading without destroying the request: destroying it would reset the socket before the 413 is sent.
  return readWhole(source, {
    limit,
    tooLarge: tooLargeError,
    onOverflow: 'keep',
    onSourceError: () => new ClientAborted(),
  });
}

/** A streamed body that can be sent a second time: the first send streams it, a later one replays the bytes. */
export class ReplayableBody {
  private sends = 0;

  private readonly chunks: Buffer[] = [];
  private size = 0;
  private done = false;
  private readonly iterator: AsyncIterator<Buffer>;
  private failure: Error | undefined;

  constructor(
    source: Readable,
    private readonly limit: number,
  ) {
    // destroyOnReturn false: stopping early must not reset the client's connection before its answer is sent.
    this.iterator = source.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>;
  }

  /** Bytes received so far. */
  get received(): number {
    return this.size;
  }

  /** The error that ended reading (e.g. the body passed the limit), if any. */
  get error(): Error | undefined {
    return this.failure;
  }

  private async pull(): Promise<Buffer | undefined> {
    if (this.failure) throw this.failure;
    if (this.done) return undefined;
    // Pull by hand (not for-await) so that a consumer stopping early does not destroy the client's stream.
    let next: IteratorResult<Buffer>;
    try {
      next = await this.iterator.next();
    } catch {
      this.failure = new ClientAborted();
      this.done = true;
      throw this.failure;
    }
    const { value, done } = next;
    if (done) {
      this.done = true;
      return undefined;
    }
    if (this.size + value.length > this.limit) {
      this.failure = tooLarge(this.limit);
      this.done = true;
      await this.iterator.return?.();
      throw this.failure;
    }
    this.size += value.length;
    this.chunks.push(value);
    return value;
  }

  /** What to send next: the live stream the first time, the whole body after that. */
  async next(): Promise<AsyncIterable<Buffer> | Buffer> {
    return this.sends++ === 0 ? this.live() : this.whole();
  }

  /** The first send: yields chunks as the client sends them. */
  async *live(): AsyncGenerator<Buffer> {
    for (const c of this.chunks) yield c;
    for (;;) {
      const c = await this.pull();
      if (c === undefined) return;
      yield c;
    }
  }

  /** The whole body, reading whatever the first send left unread. */
  async whole(): Promise<Buffer> {
    while ((await this.pull()) !== undefined) {
      // keep reading
    }
    return Buffer.concat(this.chunks, this.size);
  }
}
