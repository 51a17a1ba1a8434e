/**
 * The times of many records in one Float64Array, a fixed number of fields per slot. A time kept in an object's field
 * is a separate 16-byte box in V8 (epoch milliseconds are too large for its small integers), so five times a session
 * cost 80 B of heap plus five objects for the collector to trace; here they cost 40 B, outside the heap (issue 15).
 */
export class TimeSlab {
  private times: Float64Array;
  /** Slots given back, reused before the slab grows. */
  private readonly free: number[] = [];
  /** Slots ever handed out (the high-water mark). */
  private used = 0;

  constructor(
    private readonly fields: number,
    initialSlots = 1024,
  ) {
    this.times = new Float64Array(initialSlots * fields);
  }

  /** A slot for a new record; its fields hold whatever the last holder left, so set them all. */
  take(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if ((this.used + 1) * this.fields > this.times.length) {
      const grown = new Float64Array(this.times.length * 2);
      grown.set(this.times);
      this.times = grown;
    }
    return this.used++;
  }

  /** Gives a slot back: the record that held it must not read or write it again. */
  give(slot: number): void {
    this.free.push(slot);
  }

  get(slot: number, field: number): number {
    return this.times[slot * this.fields + field]!;
  }

  set(slot: number, field: number, value: number): void {
    this.times[slot * this.fields + field] = value;
  }

  /** Forgets every slot (the records are gone) and the memory grown for them. */
  clear(initialSlots = 1024): void {
    this.times = new Float64Array(initialSlots * this.fields);
    this.free.length = 0;
    this.used = 0;
  }
}
