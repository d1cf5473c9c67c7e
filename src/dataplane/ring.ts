// Data plane: the consumer side of a client's receive ring in shared memory (single producer, single consumer).

import { REC_HEADER, REC_WRAP as WRAP, RING_DATA as DATA, RING_HEAD, RING_SLEEPERS, RING_TAIL } from './layout.generated.js';

// The ring header's words, as indices of an Int32Array over it.
const HEAD = RING_HEAD / 4;
const TAIL = RING_TAIL / 4;
const SLEEPERS = RING_SLEEPERS / 4;

/** Reads the frames the data plane delivered to one client. Safe to use from another thread than the producer. */
export class RxRing {
  /** Id of the client the ring delivers to. */
  readonly client: number;
  /** Address of the ring in the data plane's memory: the header (producer and consumer indices), then the records. */
  readonly byteOffset: number;
  readonly #idx: Int32Array;
  readonly #data: Uint8Array;
  readonly #words: DataView;
  readonly #mask: number;
  readonly #maxFrame: number;
  readonly #resets: Int32Array | undefined;

  /** Wraps the ring at `ptr` of `buffer`; used by DataPlane.ring(). `resetsPtr` addresses the shared count of corrupt rings reset. */
  constructor(buffer: ArrayBufferLike, ptr: number, dataBytes: number, maxFrame: number, client: number, resetsPtr?: number) {
    this.client = client;
    this.byteOffset = ptr;
    this.#idx = new Int32Array(buffer, ptr, DATA / 4);
    this.#data = new Uint8Array(buffer, ptr + DATA, dataBytes);
    this.#words = new DataView(buffer, ptr + DATA, dataBytes);
    this.#mask = dataBytes - 1;
    this.#maxFrame = maxFrame;
    this.#resets = resetsPtr === undefined ? undefined : new Int32Array(buffer, resetsPtr, 1);
  }

  /** Returns the bytes waiting to be read. */
  get pending(): number {
    return (Atomics.load(this.#idx, HEAD) - Atomics.load(this.#idx, TAIL)) >>> 0;
  }

  /**
   * Calls `fn` with each waiting frame (a view valid only during the call) and its verdict word, up to `max` frames;
   * returns how many it read. Indices or a record that cannot be valid (a hostile or broken writer) are counted as the
   * data plane's `ringCorrupt`, the ring is emptied, and poll returns: it never throws for the ring's content.
   */
  poll(fn: (frame: Uint8Array, verdict: number) => void, max = Infinity): number {
    let n = 0;
    let tail = Atomics.load(this.#idx, TAIL) >>> 0;
    const head = Atomics.load(this.#idx, HEAD) >>> 0;
    if (tail === head) return 0;
    const size = this.#mask + 1;
    // Free-running byte counts on 8-byte records: never more pending than the ring holds, never misaligned.
    if ((head - tail) >>> 0 > size || ((head | tail) & 7) !== 0) return this.#reset(head, n);
    while (n < max && tail !== head) {
      const pos = tail & this.#mask;
      const left = (head - tail) >>> 0;
      const len = this.#words.getUint32(pos, true);
      if (len === WRAP) {
        if (size - pos > left) return this.#reset(head, n);
        tail = (tail + (size - pos)) >>> 0;
        continue;
      }
      const need = (REC_HEADER + len + 7) & ~7;
      if (len > this.#maxFrame || pos + REC_HEADER + len > size || need > left) return this.#reset(head, n);
      fn(this.#data.subarray(pos + REC_HEADER, pos + REC_HEADER + len), this.#words.getUint32(pos + 4, true));
      tail = (tail + need) >>> 0;
      // Publishing per frame frees space early, so a slow consumer never stalls the producer longer than needed.
      Atomics.store(this.#idx, TAIL, tail | 0);
      n++;
    }
    Atomics.store(this.#idx, TAIL, tail | 0);
    return n;
  }

  /** Empties a corrupt ring (everything up to `head` is dropped), counts it, and returns `n` (frames read before). */
  #reset(head: number, n: number): number {
    Atomics.store(this.#idx, TAIL, head | 0);
    if (this.#resets !== undefined) Atomics.add(this.#resets, 0, 1);
    return n;
  }

  /** Returns the next frame as a copy, or undefined when the ring is empty. */
  read(): Uint8Array | undefined {
    let out: Uint8Array | undefined;
    this.poll((f) => (out = f.slice()), 1);
    return out;
  }

  /**
   * Drops every waiting frame unread, as a consumer that only needs the ring empty (a benchmark's instant consumer);
   * returns the bytes freed. Frames delivered meanwhile stay for the next read.
   */
  discard(): number {
    const head = Atomics.load(this.#idx, HEAD);
    const freed = (head - Atomics.load(this.#idx, TAIL)) >>> 0;
    Atomics.store(this.#idx, TAIL, head);
    return freed;
  }

  /** Returns every waiting frame as copies. */
  drain(): Uint8Array[] {
    const out: Uint8Array[] = [];
    this.poll((f) => out.push(f.slice()));
    return out;
  }

  /**
   * Blocks until the ring has data or `timeoutMs` passes; returns true when data is waiting.
   * Uses Atomics.wait, so it throws where blocking is not allowed (a browser's main thread).
   */
  wait(timeoutMs: number): boolean {
    // Announce the sleep before the last look, so the producer either sees the flag or we see its frame.
    Atomics.store(this.#idx, SLEEPERS, 1);
    try {
      const head = Atomics.load(this.#idx, HEAD);
      if (head !== Atomics.load(this.#idx, TAIL)) return true;
      Atomics.wait(this.#idx, HEAD, head, timeoutMs);
      return Atomics.load(this.#idx, HEAD) !== Atomics.load(this.#idx, TAIL);
    } finally {
      Atomics.store(this.#idx, SLEEPERS, 0);
    }
  }
}
