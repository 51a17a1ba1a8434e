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

/** The whole body as one Buffer, or the `tooLarge()` error as soon as it passes the limit. */
export async function readWhole(source: Readable | AsyncIterable<Buffer>, bound: BoundedRead): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  const iterable =
    bound.onOverflow === 'keep' && 'iterator' in source && typeof source.iterator === 'function'
      ? (source as Readable).iterator({ destroyOnReturn: false })
      : source;
  try {
    for await (const chunk of iterable) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > bound.limit) {
        if (bound.onOverflow === 'destroy') (source as Readable).destroy?.();
        throw new TooLarge();
      }
      chunks.push(b);
    }
  } catch (e) {
    if (e instanceof TooLarge) throw bound.tooLarge();
    throw bound.onSourceError ? bound.onSourceError(e) : e;
  }
  return Buffer.concat(chunks, size);
}

class TooLarge extends Error {}
