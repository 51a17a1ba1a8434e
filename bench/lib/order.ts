/** The order in which the bench measures its targets, round after round. */

/**
 * The order of the candidates in round `r`: a shuffle seeded by the round (the same in every run). A fixed rotation
 * (A B C…, then B C… A) keeps each target behind the same one in every round, so whatever one run leaves behind (the
 * direct run's upstream at 25,000 req/s, its load generator's garbage) is always paid by the same next target.
 */
export function roundOrder(n: number, r: number): number[] {
  let seed = (0x9e3779b9 ^ (r * 0x85ebca6b)) >>> 0;
  const next = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
