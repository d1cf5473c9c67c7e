// Data plane: the consumer side of a client's receive ring in shared memory (single producer, single consumer).

import { MacslotError } from '../errors.js';

/** Ring header: producer index at byte 0, consumer index at byte 64, sleeper flag at byte 68, data from byte 128 (as laid out in assembly/layout.ts). */
const HEAD = 0;
const TAIL = 64 / 4;
const SLEEPERS = 68 / 4;
const DATA = 128;
const REC_HEADER = 8;
const WRAP = 0xffff_ffff;

/** Reads the frames the data plane delivered to one client. Safe to use from another thread than the producer. */
export class RxRing {
  readonly client: number;
  /** Address of the ring in the data plane's memory: producer index at +0, consumer index at +64, records from +128. */
  readonly byteOffset: number;
  readonly #idx: Int32Array;
  readonly #data: Uint8Array;
  readonly #words: DataView;
  readonly #mask: number;
  readonly #maxFrame: number;

  /** Wraps the ring at `ptr` of `buffer`; used by DataPlane.ring(). */
  constructor(buffer: ArrayBufferLike, ptr: number, dataBytes: number, maxFrame: number, client: number) {
    this.client = client;
    this.byteOffset = ptr;
    this.#idx = new Int32Array(buffer, ptr, DATA / 4);
    this.#data = new Uint8Array(buffer, ptr + DATA, dataBytes);
    this.#words = new DataView(buffer, ptr + DATA, dataBytes);
    this.#mask = dataBytes - 1;
    this.#maxFrame = maxFrame;
  }

  /** Returns the bytes waiting to be read. */
  get pending(): number {
    return (Atomics.load(this.#idx, HEAD) - Atomics.load(this.#idx, TAIL)) >>> 0;
  }

  /**
   * Calls `fn` with each waiting frame (a view valid only during the call) and its verdict word,
   * up to `max` frames; returns how many it read. Throws RING_CORRUPT on a record that cannot be valid.
   */
  poll(fn: (frame: Uint8Array, verdict: number) => void, max = Infinity): number {
    let n = 0;
    let tail = Atomics.load(this.#idx, TAIL) >>> 0;
    const head = Atomics.load(this.#idx, HEAD) >>> 0;
    while (n < max && tail !== head) {
      const pos = tail & this.#mask;
      const len = this.#words.getUint32(pos, true);
      if (len === WRAP) {
        tail = (tail + (this.#mask + 1 - pos)) >>> 0;
        continue;
      }
      if (len > this.#maxFrame || pos + REC_HEADER + len > this.#mask + 1) {
        throw new MacslotError('RING_CORRUPT', `ring of client ${this.client} holds a record of length ${len} at ${pos}`);
      }
      fn(this.#data.subarray(pos + REC_HEADER, pos + REC_HEADER + len), this.#words.getUint32(pos + 4, true));
      tail = (tail + ((REC_HEADER + len + 7) & ~7)) >>> 0;
      // Publishing per frame frees space early, so a slow consumer never stalls the producer longer than needed.
      Atomics.store(this.#idx, TAIL, tail | 0);
      n++;
    }
    Atomics.store(this.#idx, TAIL, tail | 0);
    return n;
  }

  /** Returns the next frame as a copy, or undefined when the ring is empty. */
  read(): Uint8Array | undefined {
    let out: Uint8Array | undefined;
    this.poll((f) => (out = f.slice()), 1);
    return out;
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
