/**
 * The memory store's key index lives in typed arrays: it must find exactly the row each hash was added with, through
 * bucket collisions, removals anywhere in a chain, growth past its first size and reuse of rows.
 */
import { describe, expect, it } from 'vitest';
import { KEY_HASH_LENGTH, KeyIndex } from '../../../src/sessions/key-index.js';
import { newSessionKey, sessionKeyHash } from '../../../src/sessions/session.js';

/** Hashes sharing their first five characters land in one bucket at any table size. */
function sameBucket(count: number): string[] {
  const tail = sessionKeyHash('tail').slice(5);
  return Array.from({ length: count }, (_, i) => `AAAAA${tail.slice(0, -3)}${String(i).padStart(3, '0')}`);
}

describe('KeyIndex', () => {
  it('finds each hash at its row, and nothing for a hash never added', () => {
    const index = new KeyIndex(4);
    const hashes = Array.from({ length: 50 }, () => sessionKeyHash(newSessionKey()));
    for (const [row, h] of hashes.entries()) index.add(h, row);
    expect(index.size).toBe(50);
    for (const [row, h] of hashes.entries()) expect(index.find(h)).toBe(row);
    expect(index.find(sessionKeyHash(newSessionKey()))).toBe(-1);
    expect([...index.keys()].sort()).toEqual([...hashes].sort());
  });

  it('keeps a bucket chain whole when its first, middle or last row is removed', () => {
    const index = new KeyIndex(8);
    const hashes = sameBucket(6);
    for (const [row, h] of hashes.entries()) index.add(h, row);
    // added last is first in the chain: remove the first (5), a middle one (2) and the last (0)
    for (const row of [5, 2, 0]) index.remove(row);
    expect(index.size).toBe(3);
    for (const row of [1, 3, 4]) expect(index.find(hashes[row]!)).toBe(row);
    for (const row of [5, 2, 0]) expect(index.find(hashes[row]!)).toBe(-1);
    // a removed row taken again for another hash is found under the new hash only
    const other = sessionKeyHash(newSessionKey());
    index.add(other, 2);
    expect(index.find(other)).toBe(2);
    expect(index.find(hashes[2]!)).toBe(-1);
  });

  it('differs from a held hash in its last character only: not found', () => {
    const index = new KeyIndex();
    const h = sessionKeyHash(newSessionKey());
    index.add(h, 0);
    const last = h.at(-1) === 'A' ? 'B' : 'A';
    expect(index.find(`${h.slice(0, -1)}${last}`)).toBe(-1);
    expect(index.find(h)).toBe(0);
  });

  it('grows from one row to 20,000 with rows added, removed and reused, and every hash stays found', () => {
    const index = new KeyIndex(1);
    const held = new Map<number, string>();
    for (let row = 0; row < 20_000; row++) {
      const h = sessionKeyHash(`key-${row}`);
      index.add(h, row);
      held.set(row, h);
      if (row % 3 === 0) {
        index.remove(row - Math.floor(row / 2));
        held.delete(row - Math.floor(row / 2));
      }
    }
    expect(index.size).toBe(held.size);
    for (const [row, h] of held) expect(index.find(h)).toBe(row);
  });

  it('refuses a hash of another length (a programming error, not a caller error)', () => {
    const index = new KeyIndex();
    expect(() => index.find('short')).toThrow(`${KEY_HASH_LENGTH} characters`);
    expect(() => index.add('x'.repeat(64), 0)).toThrow(`${KEY_HASH_LENGTH} characters`);
  });

  it('clear forgets every hash', () => {
    const index = new KeyIndex(2);
    const hashes = Array.from({ length: 10 }, (_, i) => sessionKeyHash(`k${i}`));
    for (const [row, h] of hashes.entries()) index.add(h, row);
    index.clear();
    expect(index.size).toBe(0);
    for (const h of hashes) expect(index.find(h)).toBe(-1);
    expect([...index.keys()]).toEqual([]);
  });
});
