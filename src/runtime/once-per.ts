/**
 * Values derived from objects that do not change once made (a runtime, a caller, a URL, a metrics registry), each
 * worked out once and kept as long as its object lives: the request path reads them on every call.
 */

/** One value per object. */
export class OncePer<K extends object, V> {
  private readonly values = new WeakMap<K, V>();

  constructor(private readonly derive: (owner: K) => V) {}

  of(owner: K): V {
    let value = this.values.get(owner);
    if (value === undefined) {
      value = this.derive(owner);
      this.values.set(owner, value);
    }
    return value;
  }
}

/**
 * One value per object and key, at most `max` keys an object: keys may come from a request (a Host name), so past
 * the bound a value is derived again each time rather than kept.
 */
export class BoundedPer<K extends object, V> {
  private readonly values = new WeakMap<K, Map<string, V>>();

  constructor(
    private readonly max: number,
    private readonly derive: (owner: K, key: string) => V,
  ) {}

  of(owner: K, key: string): V {
    let byKey = this.values.get(owner);
    if (!byKey) {
      byKey = new Map();
      this.values.set(owner, byKey);
    }
    let value = byKey.get(key);
    if (value === undefined) {
      value = this.derive(owner, key);
      if (byKey.size < this.max) byKey.set(key, value);
    }
    return value;
  }
}
