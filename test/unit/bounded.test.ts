/**
 * readWhole, the one bounded reader for client bodies, upstream answers and captured answers: what it gives back,
 * and that a source it stops reading can fail afterwards without an uncaught exception (destroying an undici body
 * emits an AbortError once ers-bridge has stopped listening: it crashed the process before this was handled).
 */
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { readWhole } from '../../src/http/bounded.js';

class TooBig extends Error {}
const bound = (limit: number, onOverflow: 'keep' | 'destroy') => ({ limit, onOverflow, tooLarge: () => new TooBig() });

/** A stream whose destroy() fails with an error, as undici's BodyReadable does (UND_ERR_ABORTED). */
function abortingOnDestroy(chunks: Buffer[]): Readable {
  return new Readable({
    read() {
      const next = chunks.shift();
      this.push(next ?? null);
    },
    destroy(_err, cb) {
      cb(Object.assign(new Error('Request aborted'), { code: 'UND_ERR_ABORTED' }));
    },
  });
}

const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);

describe('readWhole', () => {
  afterEach(() => {
    process.off('uncaughtException', onUncaught);
    uncaught.length = 0;
  });

  it('gives back one chunk as it is (no copy) and several as one buffer', async () => {
    const one = Buffer.from('{"a":1}');
    expect(await readWhole(Readable.from([one], { objectMode: false }), bound(100, 'destroy'))).toBe(one);
    const many = await readWhole(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), bound(100, 'destroy'));
    expect(many.toString()).toBe('abcd');
  });

  it('past the limit with destroy: the error asked for, and the source failing afterwards is not uncaught', async () => {
    process.on('uncaughtException', onUncaught);
    const source = abortingOnDestroy([Buffer.alloc(60), Buffer.alloc(60)]);
    await expect(readWhole(source, bound(100, 'destroy'))).rejects.toBeInstanceOf(TooBig);
    await new Promise((r) => setTimeout(r, 20));
    expect(source.destroyed).toBe(true);
    expect(uncaught).toEqual([]);
  });

  it('past the limit with keep: the source is left open (paused), for the answer still to be sent', async () => {
    const source = abortingOnDestroy([Buffer.alloc(60), Buffer.alloc(60), Buffer.alloc(60)]);
    await expect(readWhole(source, bound(100, 'keep'))).rejects.toBeInstanceOf(TooBig);
    expect(source.destroyed).toBe(false);
    expect(source.isPaused()).toBe(true);
  });

  it("a source's own failure is turned into the caller's error", async () => {
    const source = new Readable({
      read() {
        this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      },
    });
    const err = await readWhole(source, { ...bound(100, 'destroy'), onSourceError: () => new Error('upstream reset') })
      .then(() => undefined)
      .catch((e: Error) => e.message);
    expect(err).toBe('upstream reset');
  });
});
