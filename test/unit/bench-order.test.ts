/**
 * The bench's round order (bench/lib/order.ts): every round measures every target once, the same way in every run,
 * and no target is measured behind the same one in every round (a fixed rotation did that, and the slot behind the
 * direct run was dearer: issue 15).
 */
import { describe, expect, it } from 'vitest';
import { roundOrder } from '../../bench/lib/order.js';

describe('bench round order', () => {
  it('is a permutation of the targets, the same in every run', () => {
    for (const n of [1, 2, 7, 9]) {
      for (let r = 0; r < 6; r++) {
        const order = roundOrder(n, r);
        expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
        expect(roundOrder(n, r)).toEqual(order);
      }
    }
  });

  it('gives no target the same predecessor in all six rounds, nor the same first place', () => {
    for (const n of [5, 6, 7, 8]) {
      const rounds = Array.from({ length: 6 }, (_, r) => roundOrder(n, r));
      // the whole run as the bench measures it: round after round, so a round's first follows the last round's last
      const sequence = rounds.flat();
      for (let target = 0; target < n; target++) {
        const before = new Set<number>();
        sequence.forEach((t, i) => {
          if (t === target && i > 0) before.add(sequence[i - 1]!);
        });
        expect(before.size, `target ${target} of ${n}`).toBeGreaterThan(1);
      }
      expect(new Set(rounds.map((o) => o[0])).size).toBeGreaterThan(1);
    }
  });
});
