// Data plane: the consumer side of a client's receive ring in shared memory (single producer, single consumer). The ring
// holds descriptors; the frames stay in the producing lane's pool, pinned until this consumer releases them.

import { MacslotError, show } from '../errors.js';
import {
  POOL_LINE_SHIFT,
  RING_BUSY,
  RING_DATA as DATA,
  RING_HEAD,
  RING_RELEASED,
  RING_SLEEPERS,
  RING_TAIL,
  S_LENGTH,
  S_OFFSET,
  S_STATE,
  S_VERDICT,
  SLOT_BYTES,
  SLOT_LANE,
  SLOT_REVOKED,
  SLOT_TAKEN,
} from './layout.generated.js';

// The ring header's words, as indices of an Int32Array over it.
const HEAD = RING_HEAD / 4;
const TAIL = RING_TAIL / 4;
const SLEEPERS = RING_SLEEPERS / 4;
const RELEASED = RING_RELEASED / 4;
const BUSY = RING_BUSY / 4;
// A slot's words, as indices from the slot's first word.
const W = SLOT_BYTES / 4;
const OFF = S_OFFSET / 4;
const LEN = S_LENGTH / 4;
const VERDICT = S_VERDICT / 4;
const STATE = S_STATE / 4;
const MIN_FRAME = 14;

/**
 * Frames taken from a ring by `RxRing.rxBurstInto`, as parallel arrays allocated once: frame `i` is
 * `pools[lanes[i]]` from `offsets[i]`, `lengths[i]` bytes long, with verdict word `verdicts[i]`. The bytes stay valid
 * until the ring's `release` gives the frame back.
 */
export class RxBatch {
  /** Most frames one call fills in. */
  readonly capacity: number;
  /** Byte offset of each frame in its lane's pool. */
  readonly offsets: Uint32Array;
  /** Length of each frame in bytes. */
  readonly lengths: Uint32Array;
  /** Verdict word of each frame (read it with `verdictRule`, `verdictRef`, `verdictPath`). */
  readonly verdicts: Uint32Array;
  /** Lane whose pool holds each frame. */
  readonly lanes: Uint8Array;
  /** Frames filled in by the last rxBurstInto. */
  count = 0;
  /** Every lane's pool, indexed by `lanes[i]`; set by the ring that fills the batch. */
  pools: readonly Uint8Array[] = [];

  /** Allocates a batch for up to `capacity` frames. Throws INVALID_ARGUMENT outside 1..65536. */
  constructor(capacity = 256) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 65536)
      throw new MacslotError('INVALID_ARGUMENT', `batch capacity must be an integer in 1..65536, got ${show(capacity)}`);
    this.capacity = capacity;
    this.offsets = new Uint32Array(capacity);
    this.lengths = new Uint32Array(capacity);
    this.verdicts = new Uint32Array(capacity);
    this.lanes = new Uint8Array(capacity);
  }

  /** Returns frame `i` as a view into its pool (valid until released). Allocates the view: hot paths index `pools` instead. */
  frame(i: number): Uint8Array {
    if (!Number.isInteger(i) || i < 0 || i >= this.count)
      throw new MacslotError('INVALID_ARGUMENT', `frame index must be in 0..${this.count - 1}, got ${show(i)}`);
    const off = this.offsets[i]!;
    return this.pools[this.lanes[i]!]!.subarray(off, off + this.lengths[i]!);
  }
}

/** Where the frames a ring describes live: each lane's pool and its pin counts (one per pool line). */
export interface RingLanes {
  /** Each lane's frame pool. */
  readonly pools: readonly Uint8Array[];
  /** Each lane's pin counts. */
  readonly pins: readonly Int32Array[];
  /** The module's fast discard (assembly/pool.ts ringDiscard), when the consumer's thread has an instance. */
  readonly discard?: (client: number, held: number) => number;
  /** The header word that is non-zero while the producer takes frames back (H_REVOKING). */
  readonly revoking?: Int32Array;
}

/** Reads the frames the data plane delivered to one client. Safe to use from another thread than the producer. */
export class RxRing {
  /** Id of the client the ring delivers to. */
  readonly client: number;
  /** Address of the ring in the data plane's memory: the header (producer and consumer indices), then the slots. */
  readonly byteOffset: number;
  readonly #idx: Int32Array;
  readonly #slots: Int32Array;
  readonly #size: number;
  readonly #maxFrame: number;
  readonly #resets: Int32Array | undefined;
  readonly #lanes: RingLanes;
  // Frames taken and not yet released; they are the oldest taken ones, right after the released index.
  #held = 0;
  // One frame's batch for the copying paths, allocated once.
  readonly #one = new RxBatch(1);

  /**
   * Wraps the ring at `ptr` of `buffer` with `slots` descriptor slots; used by DataPlane.ring(). `resetsPtr` addresses the
   * shared count of corrupt rings reset; `lanes` gives the pools the descriptors point into.
   * @internal
   */
  constructor(buffer: ArrayBufferLike, ptr: number, slots: number, maxFrame: number, client: number, lanes: RingLanes, resetsPtr?: number) {
    this.client = client;
    this.byteOffset = ptr;
    this.#idx = new Int32Array(buffer, ptr, DATA / 4);
    this.#slots = new Int32Array(buffer, ptr + DATA, slots * W);
    this.#size = slots;
    this.#maxFrame = maxFrame;
    this.#lanes = lanes;
    this.#resets = resetsPtr === undefined ? undefined : new Int32Array(buffer, resetsPtr, 1);
  }

  /** Returns the frames waiting to be taken. */
  get pending(): number {
    const n = (Atomics.load(this.#idx, HEAD) - Atomics.load(this.#idx, TAIL)) >>> 0;
    return n > this.#size ? 0 : n;
  }

  /** Returns the frames taken by rxBurstInto and not yet released. */
  get held(): number {
    return this.#held;
  }

  /**
   * Takes up to `max` waiting frames (default the batch's capacity) into `batch` without copying them; returns how many.
   * Each frame's bytes stay valid, and unchanged, until `release` gives it back. Allocates nothing. Indices or a slot
   * that cannot be valid (a hostile or broken writer) are counted as the data plane's `ringCorrupt` and the waiting
   * frames are dropped: it never throws for the ring's content.
   */
  rxBurstInto(batch: RxBatch, max = batch.capacity): number {
    batch.pools = this.#lanes.pools;
    const n = this.#take(batch, Math.min(max, batch.capacity));
    batch.count = n;
    this.#held += n;
    return n;
  }

  /**
   * Gives back the oldest `count` frames taken by rxBurstInto (default: all of them); their views are invalid afterwards
   * and their pool lines are free again once every receiver released them. Returns how many were released.
   */
  release(count = this.#held): number {
    if (!Number.isInteger(count) || count < 0)
      throw new MacslotError('INVALID_ARGUMENT', `release count must be a non-negative integer, got ${show(count)}`);
    const want = Math.min(count, this.#held);
    let released = Atomics.load(this.#idx, RELEASED) >>> 0;
    const tail = Atomics.load(this.#idx, TAIL) >>> 0;
    let n = 0;
    while (n < want && released !== tail) {
      const s = (released & (this.#size - 1)) * W;
      // Plain read: a state this consumer set to taken is changed by no one until the slot is released.
      const st = this.#slots[s + STATE]!;
      if ((st & ~SLOT_LANE) === SLOT_TAKEN) {
        this.#unpin(st & SLOT_LANE, this.#slots[s + OFF]! >>> 0, this.#slots[s + LEN]! >>> 0);
        n++;
      }
      released = (released + 1) >>> 0;
    }
    this.#held -= n;
    // With nothing held, the slots up to the tail (frames taken back or discarded) are free too.
    if (this.#held === 0 || n < want) {
      this.#held = 0;
      released = tail;
    }
    Atomics.store(this.#idx, RELEASED, released | 0);
    return n;
  }

  /**
   * Calls `fn` with each waiting frame (a view valid only during the call) and its verdict word, up to `max` frames;
   * returns how many it read. Each frame is released when `fn` returns (or throws). Throws INVALID_ARGUMENT while frames
   * taken by rxBurstInto are held: releases go in order.
   */
  poll(fn: (frame: Uint8Array, verdict: number) => void, max = Infinity): number {
    this.#orderly('poll');
    const one = this.#one;
    let n = 0;
    while (n < max && this.rxBurstInto(one) === 1) {
      n++;
      try {
        fn(one.frame(0), one.verdicts[0]!);
      } finally {
        this.release(1);
      }
    }
    return n;
  }

  /** Returns the next frame as a copy (the copying path: the pool is released at once), or undefined when none waits. */
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
   * Drops every waiting frame unread, as a consumer that only needs the ring empty (a benchmark's instant consumer);
   * returns how many it dropped. Frames delivered meanwhile stay for the next read; held views stay valid.
   */
  discard(): number {
    if (this.#lanes.discard !== undefined) return this.#lanes.discard(this.client, this.#held);
    let n = 0;
    const head = Atomics.load(this.#idx, HEAD) >>> 0;
    let tail = Atomics.load(this.#idx, TAIL) >>> 0;
    if ((head - tail) >>> 0 > this.#size) return 0;
    for (; tail !== head; tail = (tail + 1) >>> 0) if (this.#revoke((tail & (this.#size - 1)) * W)) n++;
    Atomics.store(this.#idx, TAIL, head | 0);
    if (this.#held === 0) Atomics.store(this.#idx, RELEASED, head | 0);
    return n;
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

  #orderly(what: string): void {
    if (this.#held !== 0)
      throw new MacslotError('INVALID_ARGUMENT', `${what}: ${this.#held} frames taken by rxBurstInto are still held; release them first`);
  }

  /** Takes up to `max` frames into `batch`: a compare-and-swap on each slot's state decides it against the producer. */
  #take(batch: RxBatch, max: number): number {
    const head = Atomics.load(this.#idx, HEAD) >>> 0;
    let tail = Atomics.load(this.#idx, TAIL) >>> 0;
    const released = Atomics.load(this.#idx, RELEASED) >>> 0;
    // Free-running slot counts: released <= tail <= head, never more in use than the ring holds.
    if ((head - released) >>> 0 > this.#size || (tail - released) >>> 0 > (head - released) >>> 0) return this.#reset(head, 0);
    if (tail === head) return 0;
    const slots = this.#slots;
    const pools = this.#lanes.pools;
    // Busy first, then the producer's revoking word: with none running, none starts on this ring until busy is cleared,
    // so a plain store takes each frame (assembly/layout.ts, H_REVOKING).
    Atomics.store(this.#idx, BUSY, 1);
    const revoking = this.#lanes.revoking;
    const plain = revoking !== undefined && Atomics.load(revoking, 0) === 0;
    let n = 0;
    while (n < max && tail !== head) {
      const s = (tail & (this.#size - 1)) * W;
      // Plain read after the head's atomic load; the compare-and-swap below is what decides.
      const st = slots[s + STATE]!;
      const lane = st & SLOT_LANE;
      const off = slots[s + OFF]! >>> 0;
      const len = slots[s + LEN]! >>> 0;
      if ((st & SLOT_REVOKED) === 0) {
        const pool = pools[lane];
        if (st !== lane || pool === undefined || len < MIN_FRAME || len > this.#maxFrame || off + len > pool.length) {
          Atomics.store(this.#idx, TAIL, tail | 0);
          Atomics.store(this.#idx, BUSY, 0);
          return this.#reset(head, n);
        }
        if (plain) slots[s + STATE] = lane | SLOT_TAKEN;
        if (plain || Atomics.compareExchange(slots, s + STATE, lane, lane | SLOT_TAKEN) === lane) {
          batch.offsets[n] = off;
          batch.lengths[n] = len;
          batch.verdicts[n] = slots[s + VERDICT]!;
          batch.lanes[n] = lane;
          n++;
        }
      }
      tail = (tail + 1) >>> 0;
    }
    Atomics.store(this.#idx, TAIL, tail | 0);
    Atomics.store(this.#idx, BUSY, 0);
    return n;
  }

  /** Takes back the pending frame in slot word `s` as the producer would; returns true if this call did. */
  #revoke(s: number): boolean {
    const st = Atomics.load(this.#slots, s + STATE);
    const lane = st & SLOT_LANE;
    const off = this.#slots[s + OFF]! >>> 0;
    const len = this.#slots[s + LEN]! >>> 0;
    const pool = this.#lanes.pools[lane];
    if (st !== lane || pool === undefined || len === 0 || off + len > pool.length) return false;
    if (Atomics.compareExchange(this.#slots, s + STATE, lane, lane | SLOT_REVOKED) !== lane) return false;
    this.#unpin(lane, off, len);
    return true;
  }

  #unpin(lane: number, off: number, len: number): void {
    const pins = this.#lanes.pins[lane];
    const line = off >>> POOL_LINE_SHIFT;
    if (pins === undefined || len === 0 || line >= pins.length) return;
    Atomics.sub(pins, line, 1);
  }

  /**
   * Drops what waits in a corrupt ring (the pending frames it can still read are taken back and unpinned), counts it,
   * and returns `n` (frames taken before). Views already held stay valid and are released as usual.
   */
  #reset(head: number, n: number): number {
    const released = Atomics.load(this.#idx, RELEASED) >>> 0;
    let tail = Atomics.load(this.#idx, TAIL) >>> 0;
    if ((head - released) >>> 0 <= this.#size && (tail - released) >>> 0 <= (head - released) >>> 0) {
      for (; tail !== head; tail = (tail + 1) >>> 0) this.#revoke((tail & (this.#size - 1)) * W);
    } else {
      // Indices past repair: whatever they described stays pinned (fails closed: the pool loses lines, no view is reused).
      this.#held = 0;
      Atomics.store(this.#idx, RELEASED, head | 0);
    }
    Atomics.store(this.#idx, TAIL, head | 0);
    if (this.#resets !== undefined) Atomics.add(this.#resets, 0, 1);
    return n;
  }
}
