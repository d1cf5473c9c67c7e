// NIC (control plane): a Map for keys that come and go and come back, such as a MAC added and removed again and again.
//
// V8's Map keeps a deleted entry in its key's bucket chain until the table rehashes, and a lookup of an absent key walks
// that whole chain. Deleting and re-adding one key thousands of times therefore made each change cost tens of µs.
// Here a delete only marks the entry empty (an in-place update that adds nothing to the chain), and the map is rebuilt
// once empty entries outnumber live ones, so every operation stays O(1) amortized.

/** A Map of non-undefined values whose deletes leave a reusable empty entry; iteration skips empty entries. */
export class ChurnMap<K, V> {
  #map = new Map<K, V | undefined>();
  #size = 0;
  #empty = 0;
  // Iterations in progress walk the current Map, so it is not replaced under them.
  #iterating = 0;

  /** Returns the number of live entries. */
  get size(): number {
    return this.#size;
  }

  /** Returns the value of `key`, or undefined when it has none. */
  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  /** Returns whether `key` has a value. */
  has(key: K): boolean {
    return this.#map.get(key) !== undefined;
  }

  /** Sets the value of `key` (never undefined); returns this map. */
  set(key: K, value: V): this {
    if (this.#map.get(key) === undefined) {
      if (this.#map.has(key)) this.#empty--;
      this.#size++;
    }
    this.#map.set(key, value);
    return this;
  }

  /** Removes the value of `key`; returns whether it had one. */
  delete(key: K): boolean {
    if (this.#map.get(key) === undefined) return false;
    this.#map.set(key, undefined);
    this.#size--;
    this.#empty++;
    if (this.#empty > 64 && this.#empty > this.#size && this.#iterating === 0) this.#compact();
    return true;
  }

  /** Removes every entry (an iteration in progress sees the entries it started with). */
  clear(): void {
    this.#map = new Map();
    this.#size = 0;
    this.#empty = 0;
  }

  /** Returns the live [key, value] pairs, in insertion order of their entries. */
  *entries(): IterableIterator<[K, V]> {
    this.#iterating++;
    try {
      for (const [k, v] of this.#map) if (v !== undefined) yield [k, v];
    } finally {
      this.#iterating--;
    }
  }

  /** Returns the live keys. */
  *keys(): IterableIterator<K> {
    for (const [k] of this.entries()) yield k;
  }

  /** Returns the live values. */
  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  #compact(): void {
    const next = new Map<K, V>();
    for (const [k, v] of this.#map) if (v !== undefined) next.set(k, v);
    this.#map = next;
    this.#empty = 0;
  }
}

/** A Set built the same way as ChurnMap, for members that leave and rejoin. */
export class ChurnSet<K> {
  readonly #map = new ChurnMap<K, true>();

  /** Returns the number of members. */
  get size(): number {
    return this.#map.size;
  }

  /** Returns whether `key` is a member. */
  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** Adds `key`; returns this set. */
  add(key: K): this {
    this.#map.set(key, true);
    return this;
  }

  /** Removes `key`; returns whether it was a member. */
  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  /** Returns the members. */
  values(): IterableIterator<K> {
    return this.#map.keys();
  }

  [Symbol.iterator](): IterableIterator<K> {
    return this.#map.keys();
  }
}
