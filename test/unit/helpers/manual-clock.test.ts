import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../helpers/manual-clock.js';

describe('ManualClock', () => {
  it('starts where told and moves only on advance', async () => {
    const clock = new ManualClock(1000);
    expect(clock.now()).toBe(1000);
    await clock.advance(250);
    expect(clock.now()).toBe(1250);
    expect(new ManualClock().now()).toBe(0);
  });

  it('runs due timers in time order (ties in scheduling order), each at its own time', async () => {
    const clock = new ManualClock();
    const ran: string[] = [];
    clock.after(30, () => ran.push(`c@${clock.now()}`));
    clock.after(10, () => ran.push(`a@${clock.now()}`));
    clock.after(10, () => ran.push(`b@${clock.now()}`));
    clock.after(31, () => ran.push('late'));
    await clock.advance(30);
    expect(ran).toEqual(['a@10', 'b@10', 'c@30']);
    expect(clock.pending()).toBe(1);
  });

  it('runs timers scheduled by timers within the same advance', async () => {
    const clock = new ManualClock();
    const ran: number[] = [];
    const tick = () => {
      ran.push(clock.now());
      if (ran.length < 5) clock.after(10, tick);
    };
    clock.after(10, tick);
    await clock.advance(35);
    expect(ran).toEqual([10, 20, 30]);
    await clock.advance(100);
    expect(ran).toEqual([10, 20, 30, 40, 50]);
    expect(clock.pending()).toBe(0);
  });

  it('resolves sleeps, and lets what awaited them run before the next timer', async () => {
    const clock = new ManualClock();
    const seen: number[] = [];
    const loop = async () => {
      for (let i = 0; i < 3; i++) {
        await clock.sleep(50);
        await Promise.resolve();
        seen.push(clock.now());
      }
    };
    const done = loop();
    await clock.advance(150);
    await done;
    expect(seen).toEqual([50, 100, 150]);
  });

  it('a cancelled timer never runs; advance(0) runs what is due now', async () => {
    const clock = new ManualClock();
    let ran = 0;
    clock.after(5, () => ran++).cancel();
    clock.after(0, () => ran++);
    await clock.advance(0);
    expect(ran).toBe(1);
    await clock.advance(10);
    expect(ran).toBe(1);
    await expect(clock.advance(-1)).rejects.toThrow();
  });
});
