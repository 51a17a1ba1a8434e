/**
 * The memory store's index from session key hashes to rows, held outside the JS heap. A hash is SHA-256 in base64url
 * ({@link sessionKeyHash}: 43 characters); per row the index keeps those characters in one byte array and the next
 * row of its bucket's chain in another, and per bucket its first row. A Map keyed by the hash cost a 64 B string and
 * ≈ 40 B of table a session, all of it traced by every major GC; this costs 47 B a row and 4–8 B a bucket, none of it
 * traced (issue 15). Rows are the store's: it hands the index a row number with each hash.
 */
import { grownTo } from './number-slab.js';

/** The length of a session key hash: 32 bytes of SHA-256 in unpadded base64url. */
export const KEY_HASH_LENGTH = 43;

const NONE = -1;

/** base64url character → its 6-bit value (other characters → their low 6 bits: the bucket stays deterministic). */
const SIXBITS = new Uint8Array(128);
for (let c = 0; c < 128; c++) SIXBITS[c] = c & 63;
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'].entries()) {
  SIXBITS[c.charCodeAt(0)] = i;
}

export class KeyIndex {
  /** Per row, the hash's characters (KEY_HASH_LENGTH bytes). */
  private chars: Uint8Array;
  /** Per row, the next row in its bucket (NONE at the end). */
  private chain: Int32Array;
  /** Per bucket, its first row (NONE when empty); a power of two long, at least as long as the index holds rows. */
  private buckets: Int32Array;
  private count = 0;

  constructor(private readonly initialRows = 1024) {
    this.chars = new Uint8Array(initialRows * KEY_HASH_LENGTH);
    this.chain = new Int32Array(initialRows);
    this.buckets = new Int32Array(powerOfTwoAtLeast(initialRows)).fill(NONE);
  }

  get size(): number {
    return this.count;
  }

  /** The row held under this hash, or -1. */
  find(hash: string): number {
    checkLength(hash);
    for (let row = this.buckets[this.bucketOf(hash)]!; row !== NONE; row = this.chain[row]!) {
      if (this.holds(row, hash)) return row;
    }
    return NONE;
  }

  /** Holds `row` under `hash`, which the index must not hold already. */
  add(hash: string, row: number): void {
    checkLength(hash);
    this.ensureRow(row);
    const at = row * KEY_HASH_LENGTH;
    for (let i = 0; i < KEY_HASH_LENGTH; i++) this.chars[at + i] = hash.charCodeAt(i);
    if (this.count >= this.buckets.length) this.rehash(this.buckets.length * 2);
    const bucket = this.bucketOf(hash);
    this.chain[row] = this.buckets[bucket]!;
    this.buckets[bucket] = row;
    this.count++;
  }

  /** Forgets `row` (held under some hash); the row may then be handed out again. */
  remove(row: number): void {
    const bucket = this.bucketOfRow(row);
    let previous = NONE;
    for (let at = this.buckets[bucket]!; at !== NONE; previous = at, at = this.chain[at]!) {
      if (at !== row) continue;
      if (previous === NONE) this.buckets[bucket] = this.chain[row]!;
      else this.chain[previous] = this.chain[row]!;
      this.count--;
      return;
    }
  }

  /** The hashes held, in no particular order (for white-box tests and checks; not on any request's path). */
  *keys(): IterableIterator<string> {
    for (let bucket = 0; bucket < this.buckets.length; bucket++) {
      for (let row = this.buckets[bucket]!; row !== NONE; row = this.chain[row]!) yield this.hashOf(row);
    }
  }

  clear(): void {
    this.chars = new Uint8Array(this.initialRows * KEY_HASH_LENGTH);
    this.chain = new Int32Array(this.initialRows);
    this.buckets = new Int32Array(powerOfTwoAtLeast(this.initialRows)).fill(NONE);
    this.count = 0;
  }

  private holds(row: number, hash: string): boolean {
    const at = row * KEY_HASH_LENGTH;
    for (let i = 0; i < KEY_HASH_LENGTH; i++) if (this.chars[at + i] !== hash.charCodeAt(i)) return false;
    return true;
  }

  private hashOf(row: number): string {
    const at = row * KEY_HASH_LENGTH;
    return String.fromCharCode(...this.chars.subarray(at, at + KEY_HASH_LENGTH));
  }

  /** The first five characters' 30 bits: SHA-256 output, so uniform. */
  private bucketOf(hash: string): number {
    let h = 0;
    for (let i = 0; i < 5; i++) h = h * 64 + SIXBITS[hash.charCodeAt(i) & 127]!;
    return h & (this.buckets.length - 1);
  }

  private bucketOfRow(row: number): number {
    const at = row * KEY_HASH_LENGTH;
    let h = 0;
    for (let i = 0; i < 5; i++) h = h * 64 + SIXBITS[this.chars[at + i]! & 127]!;
    return h & (this.buckets.length - 1);
  }

  private rehash(length: number): void {
    const old = this.buckets;
    this.buckets = new Int32Array(length).fill(NONE);
    for (let bucket = 0; bucket < old.length; bucket++) {
      for (let row = old[bucket]!; row !== NONE; ) {
        const next = this.chain[row]!;
        const into = this.bucketOfRow(row);
        this.chain[row] = this.buckets[into]!;
        this.buckets[into] = row;
        row = next;
      }
    }
  }

  private ensureRow(row: number): void {
    if (row < this.chain.length) return;
    this.chain = grownTo(this.chain, row + 1);
    this.chars = grownTo(this.chars, this.chain.length * KEY_HASH_LENGTH);
  }
}

function checkLength(hash: string): void {
  // The store computes every hash itself (sessionKeyHash); another length is a programming error, not bad input.
  if (hash.length !== KEY_HASH_LENGTH) throw new Error(`a session key hash is ${KEY_HASH_LENGTH} characters`);
}

function powerOfTwoAtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
