/**
 * Sealing session records (src/sessions/crypto.ts): what opens, and every refusal. Keys are made inside the tests,
 * so a broken module fails tests rather than the file's loading.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Keyring, KeyringError, UnreadableRecordError } from '../../../src/sessions/crypto.js';

const b64 = () => randomBytes(32).toString('base64');
const AAD = 'session:abc';

function flip(text: string): string {
  const b = Buffer.from(text, 'base64');
  b[0] = b[0]! ^ 1;
  return b.toString('base64');
}

describe('Keyring: keys', () => {
  it('takes base64 and hex keys, trimmed, and seals with the current one', () => {
    const hex = randomBytes(32).toString('hex');
    const ring = new Keyring({ a: ` ${b64()}\n`, b: ` ${hex.toUpperCase()}\n` }, 'b');
    const sealed = ring.seal('hello', AAD);
    expect(sealed.kid).toBe('b');
    expect(sealed.v).toBe(1);
    expect(ring.open(sealed, AAD)).toBe('hello');
    // the hex key is read as hex (its 32 bytes), not as base64 (48 bytes, refused)
    const sameKey = new Keyring({ x: Buffer.from(hex, 'hex').toString('base64') }, 'x');
    expect(sameKey.open({ ...sealed, kid: 'x' }, AAD)).toBe('hello');
  });

  it.each([
    ['base64 of 16 bytes', randomBytes(16).toString('base64')],
    ['base64 of 31 bytes', randomBytes(31).toString('base64')],
    ['base64 of 33 bytes', randomBytes(33).toString('base64')],
    ['hex of 31 bytes', randomBytes(31).toString('hex')],
    ['empty', ''],
    ['64 hex digits after other text', `zz${randomBytes(32).toString('hex')}`],
    ['64 hex digits before other text', `${randomBytes(32).toString('hex')}zz`],
  ])('refuses a key of the wrong length: %s', (_, key) => {
    expect(() => new Keyring({ k1: key }, 'k1')).toThrow(KeyringError);
    expect(() => new Keyring({ k1: key }, 'k1')).toThrow(
      'encryption key k1: expected 32 bytes as base64 or hex (openssl rand -base64 32)',
    );
  });

  it('refuses a current key that is not in the keyring', () => {
    const make = () => new Keyring({ k1: b64() }, 'k2');
    expect(make).toThrow(KeyringError);
    expect(make).toThrow('the current encryption key k2 is not among the keys');
    try {
      make();
    } catch (e) {
      expect((e as Error).name).toBe('KeyringError');
    }
  });

  it('keeps old keys for opening after rotation', () => {
    const k1 = b64();
    const old = new Keyring({ k1 }, 'k1').seal('before', AAD);
    const rotated = new Keyring({ k1, k2: b64() }, 'k2');
    expect(rotated.open(old, AAD)).toBe('before');
    expect(rotated.seal('after', AAD).kid).toBe('k2');
  });
});

describe('Keyring: sealing and opening', () => {
  it('round-trips text, with a fresh IV and a 16-byte tag each time', () => {
    const ring = new Keyring({ k: b64() }, 'k');
    const text = '{"asid":"200000000123","name":"Zoë"}';
    const a = ring.seal(text, AAD);
    const b = ring.seal(text, AAD);
    expect(Buffer.from(a.iv, 'base64')).toHaveLength(12);
    expect(Buffer.from(a.tag, 'base64')).toHaveLength(16);
    expect(a.iv).not.toBe(b.iv);
    expect(a.ct).not.toBe(b.ct);
    expect(Buffer.from(a.ct, 'base64').toString('utf8')).not.toContain('asid');
    expect(Buffer.from(a.ct, 'base64')).toHaveLength(Buffer.byteLength(text, 'utf8'));
    expect(Object.keys(a).sort()).toEqual(['ct', 'iv', 'kid', 'tag', 'v']);
    expect(ring.open(a, AAD)).toBe(text);
    expect(ring.open(b, AAD)).toBe(text);
  });

  const refusal = (fn: () => unknown, reason: string) => {
    expect(fn).toThrow(UnreadableRecordError);
    expect(fn).toThrow(`session record cannot be read: ${reason}`);
    try {
      fn();
    } catch (e) {
      expect((e as Error).name).toBe('UnreadableRecordError');
    }
  };

  it.each([
    ['null', null],
    ['a string', 'sealed'],
    ['version 2', { v: 2 }],
    ['version "1"', { v: '1' }],
    ['no version', { v: undefined }],
    ['a numeric kid', { kid: 7 }],
    ['no iv', { iv: '' }],
    ['no tag', { tag: undefined }],
    ['no ciphertext', { ct: '' }],
  ])('refuses what is not a sealed record: %s', (_, change) => {
    const ring = new Keyring({ k: b64() }, 'k');
    const sealed = ring.seal('secret', AAD);
    const record = change === null || typeof change === 'string' ? change : { ...sealed, ...change };
    refusal(() => ring.open(record, AAD), 'not a sealed record');
  });

  it('refuses a record sealed with a key id not in the keyring', () => {
    const sealed = new Keyring({ gone: b64() }, 'gone').seal('secret', AAD);
    const ring = new Keyring({ k: b64() }, 'k');
    refusal(() => ring.open(sealed, AAD), 'sealed with key gone, which is not in the keyring');
  });

  it.each([
    ['tampered ciphertext', (r: Record<string, string>) => ({ ...r, ct: flip(r['ct']!) })],
    ['tampered tag', (r: Record<string, string>) => ({ ...r, tag: flip(r['tag']!) })],
    ['tampered iv', (r: Record<string, string>) => ({ ...r, iv: flip(r['iv']!) })],
  ])('refuses a %s', (_, tamper) => {
    const ring = new Keyring({ k: b64() }, 'k');
    const sealed = ring.seal('secret', AAD) as unknown as Record<string, string>;
    refusal(() => ring.open(tamper(sealed), AAD), 'authentication failed (tampered, moved or sealed with another key)');
  });

  it('refuses a record moved under another store key (AAD), or sealed with another key of the same id', () => {
    const ring = new Keyring({ k: b64() }, 'k');
    const sealed = ring.seal('secret', AAD);
    const reason = 'authentication failed (tampered, moved or sealed with another key)';
    refusal(() => ring.open(sealed, 'session:other'), reason);
    refusal(() => ring.open(sealed, ''), reason);
    refusal(() => new Keyring({ k: b64() }, 'k').open(sealed, AAD), reason);
    expect(ring.open(sealed, AAD)).toBe('secret');
  });
});
