/**
 * Reading a whole body with a size bound: one reader for client request bodies, upstream answers and captured
 * answers. Past the bound it stops at once and throws what `tooLarge()` makes, so nothing unbounded is held.
 */
import type { Readable } from 'node:stream';

export interface BoundedRead {
  /** The most bytes accepted. */
  limit: number;
  /** The error to throw once the body passes the limit. */
  tooLarge: () => Error;
  /**
   * What to do with the source past the limit: 'keep' stops reading but leaves it open (a client's request, whose
   * connection must stay up until its 413 is sent); 'destroy' closes it (an upstream answer nobody will read).
   */
  onOverflow: 'keep' | 'destroy';
  /** Turns a failure of the source itself (a reset connection) into the caller's own error. */
  onSourceError?: (e: unknown) => Error;
}

/**
 * The whole body as one Buffer, or the `tooLarge()` error as soon as it passes the limit. A stream is read with its
 * 'data' and 'end' events (one promise a body, not one per chunk as an async iterator makes); a body of one chunk
 * is returned as that chunk, not copied.
 */
export function readWhole(source: Readable | AsyncIterable<Buffer>, bound: BoundedRead): Promise<Buffer> {
  if (!isReadable(source)) return readIterable(source, bound);
  if (source.readableEnded) return Promise.resolve(Buffer.alloc(0));
  if (source.destroyed) {
    const gone = Object.assign(new Error('the stream was closed before it was read'), { code: 'ECONNRESET' });
    return Promise.reject(bound.onSourceError ? bound.onSourceError(gone) : gone);
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = () => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('close', onClose);
      // Whatever the source says after this (destroying an undici body emits an AbortError) has been answered:
      // an 'error' with no listener left would be an uncaught exception.
      source.on('error', ignore);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > bound.limit) {
        finish();
        // 'keep': stop reading but leave the client's request open, so its 413 can still be sent.
        if (bound.onOverflow === 'destroy') source.destroy();
        else source.pause();
        reject(bound.tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      finish();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (e: unknown) => {
      finish();
      reject(bound.onSourceError ? bound.onSourceError(e) : e);
    };
    // Closed before its end (a client gone, an upstream reset without an error event): a failure of the source.
    const onClose = () => {
      if (source.readableEnded) return;
      onError(Object.assign(new Error('the stream closed before its end'), { code: 'ECONNRESET' }));
    };
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onError);
    source.on('close', onClose);
  });
}

function ignore(): void {}

function isReadable(source: Readable | AsyncIterable<Buffer>): source is Readable {
  return typeof (source as Readable).on === 'function' && typeof (source as Readable).pause === 'function';
}

async function readIterable(source: AsyncIterable<Buffer>, bound: BoundedRead): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of source) {
      size += chunk.length;
      if (size > bound.limit) throw new TooLarge();
      chunks.push(chunk);
    }
  } catch (e) {
    if (e instanceof TooLarge) throw bound.tooLarge();
    throw bound.onSourceError ? bound.onSourceError(e) : e;
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

class TooLarge extends Error {}
