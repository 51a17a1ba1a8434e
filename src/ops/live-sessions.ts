/**
 * The live-sessions gauge without a store count per scrape: on Redis `size()` is a full SCAN of the key space, and
 * every Prometheus server (and every replica of one) scraping every few seconds made that a steady load on the
 * store that slowed the calls sharing it. The count is taken at most once per `maxAgeMs` of the runtime's clock;
 * scrapes in between get the last count, and scrapes that arrive while a count is running share it. A count that
 * fails (the store unreachable) is remembered for the same time, so an outage is not hammered either.
 */
import type { RuntimeHolder } from '../runtime/runtime.js';

/** How long a count of the live sessions is served before the store is asked again. */
export const LIVE_SESSIONS_MAX_AGE_MS = 15_000;

/** `() => Promise<number>` for `Metrics.liveSessions`: the current runtime's `store.size()`, cached by its clock. */
export function cachedLiveSessions(
  holder: RuntimeHolder,
  maxAgeMs: number = LIVE_SESSIONS_MAX_AGE_MS,
): () => Promise<number> {
  let last: { at: number; count: Promise<number> } | undefined;
  return () => {
    const { clock, store } = holder.current.shared;
    const now = clock.now();
    // The clock moving backwards (a test clock, a system clock stepped back) counts as stale, never as fresh.
    if (last && now >= last.at && now - last.at < maxAgeMs) return last.count;
    const count = store.size();
    count.catch(() => undefined); // whoever awaits it sees the failure; a cached rejection must not go unhandled
    last = { at: now, count };
    return count;
  };
}
