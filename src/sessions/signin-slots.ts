/**
 * Slots for sign-ins in progress: each sign-in started at /login claims one slot for its ASID and one for its client
 * address, and gives them back when its callback takes it (or when it expires). Beyond `perAsid` or `perAddress` a new
 * sign-in is refused, so a flood of sign-ins started by strangers is turned away instead of pushing out the sign-ins
 * people are completing (the pending store never evicts either: src/sessions/ephemeral-store.ts).
 *
 * A slot is a member (a random id, stored with the pending sign-in) scored by when it expires, in a set per ASID and a
 * set per address:
 * - in memory: a Map per ASID and per address, in claim order; expired members dropped from the front on every claim,
 *   and all sets swept once a lifetime, so memory stays bounded by the per-ASID caps (addresses are only counted for
 *   ASIDs in the rules);
 * - on Redis (shared by every replica): a sorted set per ASID and per address, `<prefix>signin-slots:asid:<ASID>` and
 *   `<prefix>signin-slots:address:<sha256(address)>`, claimed by one Lua script (expired members dropped, both caps
 *   checked, both members added, both keys' TTL set to the sign-in's lifetime) and released with ZREM. A sorted set
 *   rather than an INCR counter: a counter only ever falls on take, so sign-ins that are abandoned (a user who closes
 *   the CIS2 page) would hold their count for as long as new ones kept the key alive, and a busy ASID would lock itself
 *   out; expired members drop out by themselves.
 * - on Redis Cluster: the same keys, but the two sets are in different hash slots (an address is shared by every
 *   ASID, so it cannot carry an ASID's tag without turning the per-address cap into a per-ASID-and-address one), so a
 *   claim is two one-key scripts: in the address's set first, then in the ASID's, and the address's member removed
 *   again if the ASID's cap refuses. Neither cap is ever exceeded; between the two calls a concurrent claim from the
 *   same address may be refused by a member about to be removed (it errs on the side of refusing), and a store
 *   failure between them may leave the address's member until it expires (the sign-in's lifetime).
 */
import { createHash } from 'node:crypto';
import type { Rules } from '../rules/schema.js';
import type { RedisConnection } from './redis-store.js';

export interface SlotClaim {
  asid: string;
  /** The client address as the limits count it (src/http/client-address.ts). */
  address: string;
  /** The slot's id (random, kept with the pending sign-in to release it). */
  slot: string;
  /** The sign-in's lifetime: the slot is free again after it, taken or not. */
  ttlMs: number;
  perAsid: number;
  perAddress: number;
}

export type ClaimOutcome =
  | { ok: true }
  /** Refused: which cap was reached, and when its oldest slot frees up. */
  | { ok: false; limit: 'asid' | 'address'; retryAfterMs: number };

export interface SignInSlots {
  claim(claim: SlotClaim): Promise<ClaimOutcome>;
  /** Gives a slot back (a no-op when it has expired or was never claimed). */
  release(asid: string, address: string, slot: string): Promise<void>;
}

interface NowSource {
  now(): number;
}

/** Slots in this process (one node). */
export class MemorySignInSlots implements SignInSlots {
  private readonly byAsid = new Map<string, Map<string, number>>();
  private readonly byAddress = new Map<string, Map<string, number>>();
  private lastSweep: number;
  private longestTtl = 0;

  constructor(private readonly clock: NowSource) {
    this.lastSweep = clock.now();
  }

  async claim(c: SlotClaim): Promise<ClaimOutcome> {
    const now = this.clock.now();
    this.longestTtl = Math.max(this.longestTtl, c.ttlMs);
    if (now - this.lastSweep >= this.longestTtl) this.sweep(now);
    const address = live(this.byAddress, c.address, now);
    if (address && address.size >= c.perAddress) return refused('address', address, now);
    const asid = live(this.byAsid, c.asid, now);
    if (asid && asid.size >= c.perAsid) return refused('asid', asid, now);
    const expires = now + c.ttlMs;
    setOf(this.byAddress, c.address).set(c.slot, expires);
    setOf(this.byAsid, c.asid).set(c.slot, expires);
    return { ok: true };
  }

  async release(asid: string, address: string, slot: string): Promise<void> {
    remove(this.byAsid, asid, slot);
    remove(this.byAddress, address, slot);
  }

  /** Slots held now, for tests and metrics: by ASID and by address. */
  held(kind: 'asid' | 'address', key: string): number {
    return live(kind === 'asid' ? this.byAsid : this.byAddress, key, this.clock.now())?.size ?? 0;
  }

  /** Drops every expired member, and the sets left empty (addresses that never came back). */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const sets of [this.byAsid, this.byAddress]) {
      for (const [key, set] of sets) {
        for (const [slot, expires] of set) if (expires <= now) set.delete(slot);
        if (set.size === 0) sets.delete(key);
      }
    }
  }
}

function setOf(sets: Map<string, Map<string, number>>, key: string): Map<string, number> {
  let set = sets.get(key);
  if (!set) {
    set = new Map();
    sets.set(key, set);
  }
  return set;
}

/** The key's set with its expired members dropped from the front (claims are in time order), or undefined. */
function live(sets: Map<string, Map<string, number>>, key: string, now: number): Map<string, number> | undefined {
  const set = sets.get(key);
  if (!set) return undefined;
  for (const [slot, expires] of set) {
    if (expires > now) break;
    set.delete(slot);
  }
  if (set.size === 0) {
    sets.delete(key);
    return undefined;
  }
  return set;
}

function remove(sets: Map<string, Map<string, number>>, key: string, slot: string): void {
  const set = sets.get(key);
  if (!set) return;
  set.delete(slot);
  if (set.size === 0) sets.delete(key);
}

function refused(limit: 'asid' | 'address', set: Map<string, number>, now: number): ClaimOutcome {
  let oldest = Number.POSITIVE_INFINITY;
  for (const expires of set.values()) oldest = Math.min(oldest, expires);
  return { ok: false, limit, retryAfterMs: Math.max(1, oldest - now) };
}

/**
 * KEYS: the address's set, the ASID's set. ARGV: now, the new member's expiry, the member, the per-address cap, the
 * per-ASID cap, the keys' TTL in ms. Returns {0} when claimed, or {1 (address) | 2 (ASID), oldest expiry}.
 */
const CLAIM = `
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
redis.call('zremrangebyscore', KEYS[2], '-inf', ARGV[1])
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[4]) then
  return {1, redis.call('zrange', KEYS[1], 0, 0, 'WITHSCORES')[2]}
end
if redis.call('zcard', KEYS[2]) >= tonumber(ARGV[5]) then
  return {2, redis.call('zrange', KEYS[2], 0, 0, 'WITHSCORES')[2]}
end
redis.call('zadd', KEYS[1], ARGV[2], ARGV[3])
redis.call('zadd', KEYS[2], ARGV[2], ARGV[3])
redis.call('pexpire', KEYS[1], ARGV[6])
redis.call('pexpire', KEYS[2], ARGV[6])
return {0}
`;

/**
 * One set's part of CLAIM, for a cluster. KEYS: the set. ARGV: now, the new member's expiry, the member, the cap, the
 * key's TTL in ms. Returns {0} when claimed, or {1, oldest expiry}.
 */
const CLAIM_ONE = `
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[4]) then
  return {1, redis.call('zrange', KEYS[1], 0, 0, 'WITHSCORES')[2]}
end
redis.call('zadd', KEYS[1], ARGV[2], ARGV[3])
redis.call('pexpire', KEYS[1], ARGV[5])
return {0}
`;

/**
 * Slots shared by every replica, on the process's Redis connection: one script over both sets on one node, two
 * one-key scripts on a cluster (see above). Scores are the runtime clock's milliseconds.
 */
export class RedisSignInSlots implements SignInSlots {
  constructor(
    private readonly conn: RedisConnection,
    /** e.g. `ers-bridge:signin-slots:` */
    private readonly keyPrefix: string,
    private readonly clock: NowSource,
  ) {}

  private keys(asid: string, address: string): [string, string] {
    const a = createHash('sha256').update(address).digest('base64url');
    return [`${this.keyPrefix}address:${a}`, `${this.keyPrefix}asid:${asid}`];
  }

  async claim(c: SlotClaim): Promise<ClaimOutcome> {
    const now = this.clock.now();
    const [addressKey, asidKey] = this.keys(c.asid, c.address);
    const ttl = Math.max(1, Math.ceil(c.ttlMs));
    const r = this.conn.cluster
      ? await this.claimInCluster(addressKey, asidKey, c, now, ttl)
      : ((await this.conn.run((redis) =>
          redis.eval(CLAIM, 2, addressKey, asidKey, now, now + ttl, c.slot, c.perAddress, c.perAsid, ttl),
        )) as [number, string?]);
    if (r[0] === 0) return { ok: true };
    const oldest = Number(r[1]);
    return {
      ok: false,
      limit: r[0] === 1 ? 'address' : 'asid',
      retryAfterMs: Math.max(1, Number.isFinite(oldest) ? oldest - now : ttl),
    };
  }

  /** CLAIM's answer from two one-key claims (a cluster): the address's, then the ASID's. */
  private async claimInCluster(
    addressKey: string,
    asidKey: string,
    c: SlotClaim,
    now: number,
    ttl: number,
  ): Promise<[number, string?]> {
    const one = (key: string, cap: number) =>
      this.conn.run(
        async (redis) => (await redis.eval(CLAIM_ONE, 1, key, now, now + ttl, c.slot, cap, ttl)) as [number, string?],
      );
    const byAddress = await one(addressKey, c.perAddress);
    if (byAddress[0] !== 0) return [1, byAddress[1]];
    let byAsid: [number, string?];
    try {
      byAsid = await one(asidKey, c.perAsid);
    } catch (e) {
      await this.conn.run((redis) => redis.zrem(addressKey, c.slot)).catch(() => undefined);
      throw e;
    }
    if (byAsid[0] === 0) return [0];
    await this.conn.run((redis) => redis.zrem(addressKey, c.slot));
    return [2, byAsid[1]];
  }

  async release(asid: string, address: string, slot: string): Promise<void> {
    const [addressKey, asidKey] = this.keys(asid, address);
    if (this.conn.cluster) {
      // Two slots: two calls (each a no-op when the member has gone).
      await Promise.all([
        this.conn.run((redis) => redis.zrem(addressKey, slot)),
        this.conn.run((redis) => redis.zrem(asidKey, slot)),
      ]);
      return;
    }
    await this.conn.run((redis) => redis.multi().zrem(addressKey, slot).zrem(asidKey, slot).exec());
  }
}

/** The pending store's own bound beside the slots: the most sign-ins the ASIDs may hold, at least 10 000. */
export function pendingStoreCapacity(rules: Rules): number {
  const perAsid = rules.cis2?.limits.pendingPerAsid ?? 0;
  const users = Object.values(rules.asids).filter((a) => a.accessMode === 'user-restricted').length;
  return Math.min(100_000, Math.max(10_000, perAsid * users));
}
