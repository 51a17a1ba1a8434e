import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LegacyError } from '../../src/legacy/errors.js';
import { checkDeclaredLength, ReplayableBody, readBounded, tooLarge } from '../../src/translation/body.js';

const b = (s: string) => Buffer.from(s, 'utf8');

async function rejection(p: Promise<unknown>): Promise<LegacyError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(LegacyError);
    return e as LegacyError;
  }
  throw new Error('expected a rejection');
}

describe('readBounded', () => {
  it('under the limit: all bytes, in order', async () => {
    const out = await readBounded(Readable.from([b('abc'), b('def'), b('g')]), 100);
    expect(out.toString()).toBe('abcdefg');
  });

  it('exactly at the limit is accepted', async () => {
    const out = await readBounded(Readable.from([b('abc'), b('def')]), 6);
    expect(out.length).toBe(6);
  });

  it('an empty body is an empty buffer', async () => {
    const out = await readBounded(Readable.from([] as Buffer[]), 10);
    expect(out.length).toBe(0);
  });

  it('one byte over the limit → 413 BODY_TOO_LARGE, and the source is left open (so the 413 can still be sent)', async () => {
    const src = Readable.from([b('abc'), b('defg'), b('never read')]);
    const err = await rejection(readBounded(src, 6));
    expect(err.status).toBe(413);
    expect(err.reason).toBe('BODY_TOO_LARGE');
    expect(err.diagnostics).toContain('6 bytes');
    expect(err.diagnostics).toMatch(/send a smaller file/);
    // Destroying the request would reset the client's connection before the answer goes out.
    expect(src.destroyed).toBe(false);
  });

  it('stops reading at the chunk that passes the limit', async () => {
    let pulled = 0;
    async function* gen() {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield Buffer.alloc(10, i);
      }
    }
    await rejection(readBounded(Readable.from(gen()), 25));
    expect(pulled).toBeLessThan(10);
  });

  it('binary bytes survive intact', async () => {
    const chunks = Array.from({ length: 20 }, () => randomBytes(1000));
    const out = await readBounded(Readable.from(chunks), 1_000_000);
    expect(out.equals(Buffer.concat(chunks))).toBe(true);
  });
});

describe('checkDeclaredLength', () => {
  it('absent is fine', () => {
    expect(() => checkDeclaredLength(undefined, 10)).not.toThrow();
  });

  it.each(['0', '9', '10'])('%s with a limit of 10 is fine', (v) => {
    expect(() => checkDeclaredLength(v, 10)).not.toThrow();
  });

  it('over the limit → 413 BODY_TOO_LARGE', () => {
    try {
      checkDeclaredLength('11', 10);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(LegacyError);
      expect((e as LegacyError).status).toBe(413);
      expect((e as LegacyError).reason).toBe('BODY_TOO_LARGE');
    }
  });

  it.each(['abc', '-1', '1.5', '9007199254740993', 'NaN', 'Infinity'])('%s is not a valid length → 400', (v) => {
    try {
      checkDeclaredLength(v, 10_000_000);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(LegacyError);
      expect((e as LegacyError).status).toBe(400);
      expect((e as LegacyError).reason).toBe('BAD_HEADER');
      expect((e as LegacyError).diagnostics).toContain('Content-Length');
    }
  });

  it('tooLarge names the limit', () => {
    const e = tooLarge(5_000_000);
    expect(e.status).toBe(413);
    expect(e.diagnostics).toContain('5000000');
  });
});

describe('ReplayableBody', () => {
  it('live() yields each chunk as the client sends it (no buffering of the whole body)', async () => {
    const src = new PassThrough();
    const body = new ReplayableBody(src, 1000);
    const it = body.live()[Symbol.asyncIterator]();
    src.write(b('first'));
    const one = await it.next();
    expect(one.done).toBe(false);
    expect(one.value!.toString()).toBe('first');
    expect(body.received).toBe(5);
    src.write(b('second'));
    const two = await it.next();
    expect(two.value!.toString()).toBe('second');
    src.end();
    expect((await it.next()).done).toBe(true);
    expect((await body.whole()).toString()).toBe('firstsecond');
  });

  it('whole() after a complete live() returns identical bytes', async () => {
    const chunks = Array.from({ length: 30 }, (_, i) => randomBytes(100 + i));
    const body = new ReplayableBody(Readable.from(chunks), 1_000_000);
    const seen: Buffer[] = [];
    for await (const c of body.live()) seen.push(c);
    expect(Buffer.concat(seen).equals(Buffer.concat(chunks))).toBe(true);
    const whole = await body.whole();
    expect(whole.equals(Buffer.concat(chunks))).toBe(true);
    expect(body.received).toBe(whole.length);
    expect(body.error).toBeUndefined();
  });

  it('whole() after a partially consumed live() still returns all bytes', async () => {
    const src = Readable.from([b('aa'), b('bb'), b('cc'), b('dd')]);
    const body = new ReplayableBody(src, 1000);
    for await (const c of body.live()) {
      expect(c.toString()).toBe('aa');
      break;
    }
    expect(src.destroyed).toBe(false);
    expect((await body.whole()).toString()).toBe('aabbccdd');
  });

  it('whole() can be called first, and twice', async () => {
    const body = new ReplayableBody(Readable.from([b('x'), b('y')]), 1000);
    expect((await body.whole()).toString()).toBe('xy');
    expect((await body.whole()).toString()).toBe('xy');
  });

  it('a second live() replays the kept chunks', async () => {
    const body = new ReplayableBody(Readable.from([b('a'), b('b'), b('c')]), 1000);
    for await (const _ of body.live()) {
      // drain
    }
    const again: string[] = [];
    for await (const c of body.live()) again.push(c.toString());
    expect(again).toEqual(['a', 'b', 'c']);
  });

  it('an over-limit stream throws 413 from live() and sets error', async () => {
    const body = new ReplayableBody(Readable.from([b('aaaa'), b('bbbb'), b('cccc')]), 6);
    const got: string[] = [];
    let caught: unknown;
    try {
      for await (const c of body.live()) got.push(c.toString());
    } catch (e) {
      caught = e;
    }
    expect(got).toEqual(['aaaa']);
    expect(caught).toBeInstanceOf(LegacyError);
    expect((caught as LegacyError).status).toBe(413);
    expect((caught as LegacyError).reason).toBe('BODY_TOO_LARGE');
    expect(body.error).toBe(caught);
  });

  it('an over-limit stream throws 413 from whole() and sets error', async () => {
    const body = new ReplayableBody(Readable.from([b('aaaa'), b('bbbb')]), 6);
    const err = await rejection(body.whole());
    expect(err.status).toBe(413);
    expect(body.error).toBe(err);
  });

  it('whole() after the limit was passed does not hand out a body (it rejects with the 413)', async () => {
    const body = new ReplayableBody(Readable.from([b('aaaa'), b('bbbb'), b('cccc')]), 6);
    await rejection(
      (async () => {
        for await (const _ of body.live()) {
          // drain until it fails
        }
      })(),
    );
    expect(body.error).toBeInstanceOf(LegacyError);
    // A retry after the failure must not send a truncated or zero-padded body to APIM.
    const outcome = await body.whole().then(
      (buf) => `resolved with ${buf.length} bytes ${JSON.stringify(buf.toString('latin1'))}`,
      (e: unknown) => e,
    );
    expect(outcome).toBeInstanceOf(LegacyError);
    expect((outcome as LegacyError).status).toBe(413);
  });
});
