/**
 * Encryption at rest for shared session stores: AES-256-GCM under a keyring. Each record names the id of the key
 * that sealed it, so keys rotate without downtime: new writes use the current key, old records still open with
 * theirs until they expire. The record's store key is bound in as additional authenticated data, so a sealed
 * record cannot be moved under another session's key.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export interface SealedRecord {
  v: 1;
  kid: string;
  iv: string;
  tag: string;
  ct: string;
}

export class KeyringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyringError';
  }
}

/** A record that cannot be opened: unknown key id, tampered, or not a sealed record at all. */
export class UnreadableRecordError extends Error {
  constructor(reason: string) {
    super(`session record cannot be read: ${reason}`);
    this.name = 'UnreadableRecordError';
  }
}

export class Keyring {
  private readonly keys = new Map<string, Buffer>();

  /** `keys` maps key ids to 32-byte keys given as base64 (or hex); `current` seals new records. */
  constructor(
    keys: Record<string, string>,
    readonly current: string,
  ) {
    for (const [kid, text] of Object.entries(keys)) {
      const key = decodeKey(text.trim());
      if (!key)
        throw new KeyringError(`encryption key ${kid}: expected 32 bytes as base64 or hex (openssl rand -base64 32)`);
      this.keys.set(kid, key);
    }
    if (!this.keys.has(current)) throw new KeyringError(`the current encryption key ${current} is not among the keys`);
  }

  seal(plaintext: string, aad: string): SealedRecord {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.current)!, iv);
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return {
      v: 1,
      kid: this.current,
      iv: iv.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
      ct: ct.toString('base64'),
    };
  }

  open(record: unknown, aad: string): string {
    const r = record as Partial<SealedRecord> | null;
    if (r?.v !== 1 || typeof r.kid !== 'string' || !r.iv || !r.tag || !r.ct)
      throw new UnreadableRecordError('not a sealed record');
    const key = this.keys.get(r.kid);
    if (!key) throw new UnreadableRecordError(`sealed with key ${r.kid}, which is not in the keyring`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(r.iv, 'base64'));
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(Buffer.from(r.tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(r.ct, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      throw new UnreadableRecordError('authentication failed (tampered, moved or sealed with another key)');
    }
  }
}

function decodeKey(text: string): Buffer | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  const b = Buffer.from(text, 'base64');
  return b.length === 32 ? b : undefined;
}
