import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ClientAborted } from '../../../src/http/errors.js';
import { prepareBodies } from '../../../src/pipeline/bodies.js';
import { endpoint, legacyRejection, rejectionOf, URLS } from './fakes.js';

const b = (s: string) => Buffer.from(s, 'utf8');

/** A source that counts how many chunks were pulled from it. */
function counted(chunks: Buffer[]) {
  const state = { pulled: 0 };
  async function* gen() {
    for (const c of chunks) {
      state.pulled++;
      yield c;
    }
  }
  return { source: Readable.from(gen()), state };
}

async function collect(body: unknown): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const parts: Buffer[] = [];
  for await (const c of body as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

const A004 = endpoint('A004'); // no body
const A010 = endpoint('A010'); // FHIR JSON
const A020 = endpoint('A020'); // a file

describe('prepareBodies', () => {
  it('an operation without a body: no bodies, and the source is not read', async () => {
    const { source, state } = counted([b('ignored')]);
    const bodies = await prepareBodies(A004, { 'content-length': '7' }, source, 100, URLS, true);
    expect(await bodies.apim.next()).toBeUndefined();
    expect(bodies.apim.length).toBeUndefined();
    expect(bodies.legacy).toEqual({ first: undefined });
    expect(bodies.whole).toBeUndefined();
    expect(state.pulled).toBe(0);
  });

  it('FHIR JSON: links rewritten for APIM (both spellings, ers-bridge and HSCN bases); the legacy side gets the original', async () => {
    const text = JSON.stringify({
      a: `${URLS.legacyBase}/STU3/v1/ReferralRequest/000000070000`,
      b: `${URLS.hscnBase}/R4/v1/HealthcareService/svc-1`,
    });
    const escaped = `,"c":"${URLS.legacyBase.replaceAll('/', '\\/')}\\/STU3\\/v1\\/Slot"}`;
    const raw = b(text.slice(0, -1) + escaped);
    const bodies = await prepareBodies(
      A010,
      {},
      Readable.from([raw.subarray(0, 20), raw.subarray(20)]),
      10_000,
      URLS,
      false,
    );

    const forApim = (await bodies.apim.next()) as Buffer;
    const sent = JSON.parse(forApim.toString('utf8'));
    expect(sent).toEqual({
      a: `${URLS.apimBase}/STU3/ReferralRequest/000000070000`,
      b: `${URLS.apimBase}/R4/HealthcareService/svc-1`,
      c: `${URLS.apimBase}/STU3/Slot`,
    });
    expect(forApim.toString()).toContain('https:\\/\\/apim.test\\/referrals\\/FHIR\\/STU3\\/Slot');
    expect(bodies.apim.length).toBe(forApim.length);
    expect(await bodies.apim.next()).toBe(forApim); // the same bytes on a resend
    expect(bodies.legacy.first).toEqual(raw);
    expect(bodies.legacy.length).toBe(raw.length);
    expect(bodies.whole).toEqual(raw);
  });

  it('a file: APIM streams it first, and replays the whole bytes on a second send', async () => {
    const chunks = [b('%PDF-1.7\n'), b('page one\n'), b('%%EOF')];
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const { source, state } = counted(chunks);
    const bodies = await prepareBodies(A020, { 'content-length': String(total) }, source, 10_000, URLS, false);
    expect(state.pulled).toBe(0); // nothing is read before the first send
    expect(bodies.apim.length).toBe(total);
    expect(bodies.whole).toBeUndefined();

    const first = await bodies.apim.next();
    expect(Buffer.isBuffer(first)).toBe(false);
    expect((await collect(first)).toString()).toBe('%PDF-1.7\npage one\n%%EOF');
    const second = await bodies.apim.next();
    expect(Buffer.isBuffer(second)).toBe(true);
    expect((second as Buffer).toString()).toBe('%PDF-1.7\npage one\n%%EOF');
  });

  it('a file: the legacy side gets the live stream, with the declared length', async () => {
    const bodies = await prepareBodies(
      A020,
      { 'content-length': '6' },
      Readable.from([b('ab'), b('cdef')]),
      100,
      URLS,
      false,
    );
    expect(Buffer.isBuffer(bodies.legacy.first)).toBe(false);
    expect(bodies.legacy.length).toBe(6);
    expect((await collect(bodies.legacy.first)).toString()).toBe('abcdef');
  });

  it('a file with no Content-Length: no length is claimed', async () => {
    const bodies = await prepareBodies(A020, {}, Readable.from([b('ab')]), 100, URLS, false);
    expect(bodies.apim.length).toBeUndefined();
    expect(bodies.legacy).not.toHaveProperty('length');
  });

  it('a file read whole (shadow or recording): buffered, and its bytes never rewritten', async () => {
    const raw = b(`file mentioning ${URLS.legacyBase}/STU3/v1/Binary/x`);
    const bodies = await prepareBodies(A020, {}, Readable.from([raw]), 1000, URLS, true);
    expect(await bodies.apim.next()).toEqual(raw);
    expect(bodies.apim.length).toBe(raw.length);
    expect(bodies.legacy).toEqual({ first: raw, length: raw.length });
    expect(bodies.whole).toEqual(raw);
  });

  it('a declared Content-Length over the limit → BODY_TOO_LARGE before anything is read', async () => {
    const { source, state } = counted([b('x')]);
    const e = await legacyRejection(prepareBodies(A010, { 'content-length': '101' }, source, 100, URLS, false));
    expect(e.reason).toBe('BODY_TOO_LARGE');
    expect(e.status).toBe(413);
    expect(state.pulled).toBe(0);
  });

  it('an invalid Content-Length → BAD_HEADER', async () => {
    for (const cl of ['abc', '-1', '1.5']) {
      const e = await legacyRejection(
        prepareBodies(A020, { 'content-length': cl }, Readable.from([]), 100, URLS, false),
      );
      expect(e.reason).toBe('BAD_HEADER');
      expect(e.status).toBe(400);
    }
  });

  it('a body passing the limit while read → BODY_TOO_LARGE', async () => {
    const e = await legacyRejection(
      prepareBodies(A010, {}, Readable.from([Buffer.alloc(60), Buffer.alloc(60)]), 100, URLS, false),
    );
    expect(e.reason).toBe('BODY_TOO_LARGE');
  });

  it('a client that goes away mid-body → ClientAborted, read whole or streamed', async () => {
    const broken = () =>
      new Readable({
        read() {
          this.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
        },
      });
    expect(await rejectionOf(prepareBodies(A010, {}, broken(), 100, URLS, false))).toBeInstanceOf(ClientAborted);
    const bodies = await prepareBodies(A020, {}, broken(), 100, URLS, false);
    expect(await rejectionOf(collect(await bodies.apim.next()))).toBeInstanceOf(ClientAborted);
  });

  it('a streamed file passing the limit fails the send with BODY_TOO_LARGE', async () => {
    const bodies = await prepareBodies(A020, {}, Readable.from([Buffer.alloc(60), Buffer.alloc(60)]), 100, URLS, false);
    const e = await legacyRejection(collect(await bodies.apim.next()));
    expect(e.reason).toBe('BODY_TOO_LARGE');
  });
});

describe('checkDeclaredLength', () => {
  it('takes digits only: hex, exponent and signed forms are not lengths', async () => {
    const { checkDeclaredLength } = await import('../../../src/translation/body.js');
    for (const bad of ['0x10', '1e3', '+5', '-1', ' 5', '5.0', '']) {
      expect(() => checkDeclaredLength(bad, 100), bad).toThrow(/not a valid length/);
    }
    expect(() => checkDeclaredLength('100', 100)).not.toThrow();
    expect(() => checkDeclaredLength('101', 100)).toThrow(/larger than 100 bytes/);
  });
});
