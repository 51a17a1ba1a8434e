import { describe, expect, it, vi } from 'vitest';
import { BoundedPer, OncePer } from '../../../src/runtime/once-per.js';

describe('OncePer', () => {
  it('derives a value once per object and gives the same value back after', () => {
    const derive = vi.fn((o: { n: number }) => ({ twice: o.n * 2 }));
    const per = new OncePer(derive);
    const a = { n: 1 };
    const b = { n: 2 };
    const first = per.of(a);
    expect(first).toEqual({ twice: 2 });
    expect(per.of(a)).toBe(first);
    expect(per.of(b)).toEqual({ twice: 4 });
    expect(derive).toHaveBeenCalledTimes(2);
  });
});

describe('BoundedPer', () => {
  it('keeps at most `max` keys an object; past them each value is derived again, never kept', () => {
    const derive = vi.fn((o: { tag: string }, key: string) => `${o.tag}:${key}`);
    const per = new BoundedPer(2, derive);
    const owner = { tag: 'rt' };
    expect(per.of(owner, 'a')).toBe('rt:a');
    expect(per.of(owner, 'b')).toBe('rt:b');
    expect(per.of(owner, 'a')).toBe('rt:a');
    expect(derive).toHaveBeenCalledTimes(2);
    expect(per.of(owner, 'c')).toBe('rt:c');
    expect(per.of(owner, 'c')).toBe('rt:c');
    expect(derive).toHaveBeenCalledTimes(4);
  });

  it('counts keys per object: another object has its own bound', () => {
    const per = new BoundedPer(1, (o: { tag: string }, key: string) => ({ v: `${o.tag}:${key}` }));
    const x = { tag: 'x' };
    const y = { tag: 'y' };
    const kept = per.of(x, 'k');
    expect(per.of(x, 'k')).toBe(kept);
    const other = per.of(y, 'k');
    expect(other).toEqual({ v: 'y:k' });
    expect(per.of(y, 'k')).toBe(other);
  });
});
