// Data plane loader: a packed mirror of the active unicast MACs, kept by the NIC's events, in the record
// format the Wasm table loads in bulk. A rebuild then copies it instead of walking the NIC's state.

import { ChurnMap } from '../nic/churn-map.js';
import type { Mac } from '../wire/mac.js';
import { KIND_EUI64, KIND_MAC48, M_INDEX, SR_KEY_HI, SR_KEY_LO, SR_KIND, SR_META, STAGED_RECORD } from './layout.generated.js';

/** Words per record: key bytes 0..3 and 4..7 (little-endian), kind (0 MAC-48, 1 EUI-64), meta. */
export const RECORD_WORDS = STAGED_RECORD / 4;
// The record's fields, as word indices.
const KEY_LO = SR_KEY_LO / 4;
const KEY_HI = SR_KEY_HI / 4;
const KIND = SR_KIND / 4;
const META = SR_META / 4;

/** Active unicast MACs as packed records, with each one's owner. Order is not kept: removal moves the last record into the gap. */
export class UnicastMirror {
  readonly #records: Uint32Array;
  readonly #index = new ChurnMap<number | string, number>();
  // The key of each record, so removal can re-point the record it moves in O(1).
  readonly #keys: (number | string)[] = [];
  #count = 0;

  /** Holds up to `capacity` MACs. */
  constructor(capacity: number) {
    this.#records = new Uint32Array(Math.max(1, capacity) * RECORD_WORDS);
  }

  /** Returns how many MACs the mirror holds. */
  get count(): number {
    return this.#count;
  }

  /** Returns the records of every held MAC (a view, valid until the next change). */
  records(): Uint32Array {
    return this.#records.subarray(0, this.#count * RECORD_WORDS);
  }

  /** Returns the client id that owns `key` (a `Mac.key`), or -1 when no active MAC has it. */
  owner(key: number | string): number {
    const i = this.#index.get(key);
    return i === undefined ? -1 : this.#records[i * RECORD_WORDS + META]! & M_INDEX;
  }

  /** Adds `mac`, or updates its meta when held; returns false when the mirror is full. */
  put(mac: Mac, meta: number): boolean {
    let i = this.#index.get(mac.key);
    if (i === undefined) {
      if ((this.#count + 1) * RECORD_WORDS > this.#records.length) return false;
      i = this.#count++;
      this.#index.set(mac.key, i);
      this.#keys[i] = mac.key;
    }
    const r = this.#records;
    const at = i * RECORD_WORDS;
    let lo = 0;
    let hi = 0;
    for (let n = 0; n < 4; n++) lo |= mac.byte(n) << (8 * n);
    for (let n = 4; n < mac.length; n++) hi |= mac.byte(n) << (8 * (n - 4));
    r[at + KEY_LO] = lo >>> 0;
    r[at + KEY_HI] = hi >>> 0;
    r[at + KIND] = mac.kind === 'eui64' ? KIND_EUI64 : KIND_MAC48;
    r[at + META] = meta;
    return true;
  }

  /** Removes the MAC with `key`; returns whether it was held. */
  delete(key: number | string): boolean {
    const i = this.#index.get(key);
    if (i === undefined) return false;
    this.#index.delete(key);
    const last = --this.#count;
    if (i !== last) {
      this.#records.copyWithin(i * RECORD_WORDS, last * RECORD_WORDS, (last + 1) * RECORD_WORDS);
      const moved = this.#keys[last]!;
      this.#keys[i] = moved;
      this.#index.set(moved, i);
    }
    this.#keys.length = last;
    return true;
  }

  /** Forgets every MAC. */
  clear(): void {
    this.#index.clear();
    this.#keys.length = 0;
    this.#count = 0;
  }
}
