/**
 * Where the Redis session store keeps each key. Two layouts, chosen once from the connection:
 *
 * - One node or Sentinel (unchanged since the first Redis release, so a rolling upgrade keeps every live session):
 *   `<prefix>session:<hash>`, `<prefix>asid-sessions:<ASID>`, `<prefix>lock:<hash>`, `<prefix>session-asids`.
 * - Redis Cluster: every key of one ASID carries the hash tag `{asid:<ASID>}`, so they share one hash slot and A001's
 *   script (the session, the ASID's index, the evictions) stays one atomic call on one node:
 *   `<prefix>{asid:<ASID>}:session:<hash>`, `<prefix>{asid:<ASID>}:index`, `<prefix>{asid:<ASID>}:lock:<hash>`. The
 *   list of ASIDs is a key of its own, `<prefix>{session-asids}`, in whatever slot that tag hashes to: it is never in
 *   the same call as an ASID's keys. Different ASIDs hash to different slots, so the sessions spread over the nodes.
 *
 * `<hash>` is sessionKeyHash(session key): the raw key is never in Redis. The cluster layout finds a session only
 * under its ASID, so the store needs the caller's ASID to read, delete or lock one (SessionStore's `asid`).
 */

export interface SessionKeys {
  /** Whether this layout needs the ASID to find a session (the cluster one). */
  readonly byAsid: boolean;
  /** The sealed session record. */
  session(asid: string, hash: string): string;
  /** What session(asid, hash) is with the hash left off: A001's script builds the keys of the sessions it evicts. */
  sessionPrefix(asid: string): string;
  /** The ASID's index: its sessions' key hashes by creation time (the quota). */
  index(asid: string): string;
  /** The session's lock (SET NX PX). */
  lock(asid: string, hash: string): string;
  /** The set of ASIDs that have an index. */
  readonly asids: string;
}

/** One Redis node or a Sentinel-found primary: the original layout. */
export function singleNodeKeys(prefix: string): SessionKeys {
  return {
    byAsid: false,
    session: (_asid, hash) => `${prefix}session:${hash}`,
    sessionPrefix: () => `${prefix}session:`,
    index: (asid) => `${prefix}asid-sessions:${asid}`,
    lock: (_asid, hash) => `${prefix}lock:${hash}`,
    asids: `${prefix}session-asids`,
  };
}

/** Redis Cluster: one hash slot per ASID (the prefix's characters include no brace, so the tag is the ASID's). */
export function clusterKeys(prefix: string): SessionKeys {
  const tagged = (asid: string) => `${prefix}{asid:${asid}}:`;
  return {
    byAsid: true,
    session: (asid, hash) => `${tagged(asid)}session:${hash}`,
    sessionPrefix: (asid) => `${tagged(asid)}session:`,
    index: (asid) => `${tagged(asid)}index`,
    lock: (asid, hash) => `${tagged(asid)}lock:${hash}`,
    asids: `${prefix}{session-asids}`,
  };
}
