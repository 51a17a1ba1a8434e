/**
 * The numbers of many rows in one Float64Array, a fixed number of fields per row, with freed rows reused. A number
 * kept in an object's field is a separate 16-byte box in V8 when it is not a small integer (epoch milliseconds, a
 * counter past 2³¹), and a box for the collector to trace; here a number costs 8 B, outside the heap (issue 15).
 */
/** A copy of `array` at least `length` long (doubling), for the typed arrays that grow with the rows they hold. */
export function grownTo<T extends Float64Array | Int32Array | Uint8Array>(array: T, length: number): T {
  let size = Math.max(1, array.length);
  while (size < length) size *= 2;
  const grown = new (array.constructor as new (n: number) => T)(size);
  grown.set(array);
  return grown;
}

export class NumberSlab {
  private numbers: Float64Array;
  /** Rows given back, reused before the slab grows. */
  private readonly free: number[] = [];
  /** Rows ever handed out (the high-water mark). */
  private used = 0;

  constructor(
    private readonly fields: number,
    initialRows = 1024,
  ) {
    this.numbers = new Float64Array(Math.max(1, initialRows) * fields);
  }

  /** A row for a new record; its fields hold whatever the last holder left, so set them all. */
  take(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if ((this.used + 1) * this.fields > this.numbers.length) {
      this.numbers = grownTo(this.numbers, (this.used + 1) * this.fields);
    }
    return this.used++;
  }

  /** Gives a row back: the record that held it must not read or write it again. */
  give(row: number): void {
    this.free.push(row);
  }

  get(row: number, field: number): number {
    return this.numbers[row * this.fields + field]!;
  }

  set(row: number, field: number, value: number): void {
    this.numbers[row * this.fields + field] = value;
  }

  /** Forgets every row (the records are gone) and the memory grown for them. */
  clear(initialRows = 1024): void {
    this.numbers = new Float64Array(Math.max(1, initialRows) * this.fields);
    this.free.length = 0;
    this.used = 0;
  }
}
