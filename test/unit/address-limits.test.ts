/**
 * The per-address limits (src/http/address-limits.ts) and how an address is counted (src/http/client-address.ts),
 * on a manual clock.
 */
import { describe, expect, it } from 'vitest';
import { FailureWindows, StartRate } from '../../src/http/address-limits.js';
import { addressKey } from '../../src/http/client-address.js';
import { ManualClock } from '../helpers/manual-clock.js';

describe('StartRate (a token bucket per address)', () => {
  it('allows the rate at once, then one start per 1/rate, per address', async () => {
    const clock = new ManualClock(Date.parse('2025-03-01T08:00:00Z'));
    const rate = new StartRate(clock);
    for (let i = 0; i < 30; i++) expect(rate.take('10.0.0.1', 30)).toBe(0);
    expect(rate.take('10.0.0.1', 30)).toBe(2_000);
    expect(rate.take('10.0.0.2', 30), 'another address is not affected').toBe(0);
    await clock.advance(1_000);
    expect(rate.take('10.0.0.1', 30)).toBe(1_000);
    await clock.advance(1_000);
    expect(rate.take('10.0.0.1', 30)).toBe(0);
    expect(rate.take('10.0.0.1', 30)).toBeGreaterThan(0);
    await clock.advance(60_000);
    for (let i = 0; i < 30; i++) expect(rate.take('10.0.0.1', 30)).toBe(0);
    expect(rate.take('10.0.0.1', 30)).toBeGreaterThan(0);
  });

  it('a flood from one address is refused after the rate, whatever its size', () => {
    const clock = new ManualClock(0);
    const rate = new StartRate(clock);
    let allowed = 0;
    for (let i = 0; i < 10_000; i++) if (rate.take('192.0.2.7', 30) === 0) allowed++;
    expect(allowed).toBe(30);
  });

  it('keeps at most maxAddresses addresses', () => {
    const clock = new ManualClock(0);
    const rate = new StartRate(clock, 100);
    for (let i = 0; i < 1_000; i++) rate.take(`10.0.${i >> 8}.${i & 255}`, 30);
    expect((rate as unknown as { buckets: { size: number } }).buckets.size).toBe(100);
  });
});

describe('FailureWindows (failures per address in fixed windows)', () => {
  it('refuses an address after more than `allowed` failures until its window ends; logs once', async () => {
    const clock = new ManualClock(Date.parse('2025-03-01T08:00:00Z'));
    const w = new FailureWindows(clock, 10, 60_000);
    for (let i = 1; i <= 10; i++) {
      expect(w.fail('10.0.0.1')).toEqual({ failures: i, refusedMs: 0, newlyRefused: false });
      await clock.advance(1_000);
    }
    expect(w.refusedFor('10.0.0.1')).toBe(0);
    expect(w.fail('10.0.0.1')).toEqual({ failures: 11, refusedMs: 50_000, newlyRefused: true });
    expect(w.refusedFor('10.0.0.1')).toBe(50_000);
    expect(w.fail('10.0.0.1').newlyRefused).toBe(false);
    expect(w.refusedFor('10.0.0.2')).toBe(0);
    await clock.advance(49_999);
    expect(w.refusedFor('10.0.0.1')).toBe(1);
    await clock.advance(1);
    expect(w.refusedFor('10.0.0.1')).toBe(0);
    expect(w.fail('10.0.0.1')).toEqual({ failures: 1, refusedMs: 0, newlyRefused: false });
  });

  it('keeps at most maxAddresses addresses', () => {
    const w = new FailureWindows(new ManualClock(0), 10, 60_000, 50);
    for (let i = 0; i < 500; i++) w.fail(`10.1.${i >> 8}.${i & 255}`);
    expect((w as unknown as { windows: { size: number } }).windows.size).toBe(50);
  });
});

describe('addressKey', () => {
  it('counts IPv4 as it is, IPv4-mapped IPv6 as IPv4, IPv6 by its /64', () => {
    expect(addressKey('192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2::99')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff:0:0:1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:DB8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
    expect(addressKey('not an address')).toBe('not an address');
  });
});
