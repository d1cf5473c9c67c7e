// Switch: transmit and anti-spoof. A frame a client sends is checked (or stamped) with the client's source MAC, delivered
// to the other local clients through the data plane's rings, and handed on with its verdict. Frames are staged in the
// lane's pool and go through the data plane in bursts; `send` is the one-frame form behind `DataPlane.send`.

import { MacslotError, show } from '../errors.js';
import type { Nic } from '../nic/nic.js';
import { ETH_SRC, hasEthernetHeader, macKeyAt } from '../wire/ethernet.js';
import { NO_CLIENT } from '../dataplane/layout.generated.js';
import type { LaneReader } from '../dataplane/reader.js';
import type { FilterWriter } from '../dataplane/writer.js';

/** What `TransmitBurst.flush` reports: each frame with its verdict, then each group of frames the rings received. */
export interface TransmitSink {
  /**
   * Frame `pool[offset, offset + length)` from client `from` (-1: from the wire) went through the data plane with
   * `verdict`; the bytes stay valid until the call returns.
   */
  transmitted(from: number, pool: Uint8Array, offset: number, length: number, verdict: number): void;
  /** The frames reported since the last call are in their receivers' rings: read them out now. */
  delivered(): void;
}

// Frames up to this long are copied word by word from a place in a larger buffer, rather than through a view of it.
const SMALL_FRAME = 256;

/** `TransmitBurst.stage` results. */
export const STAGED = 1;
/** The frame was dropped: its source is not a MAC of the sender (counted as spoofed). */
export const SPOOFED = 0;
/** The burst is full: flush, then stage the frame again. */
export const BURST_FULL = -1;

/** Sends clients' frames through the lane of the data plane that follows `nic`. */
export class Transmit {
  readonly #reader: LaneReader;
  readonly #writer: FilterWriter;
  readonly #nic: Nic;
  #uplink: ((frame: Uint8Array, from: number) => void) | undefined;
  #burst: TransmitBurst | undefined;
  #spoofed = 0;

  /** Sends through `reader`'s lane; `writer` knows each active MAC's owner. */
  constructor(reader: LaneReader, writer: FilterWriter, nic: Nic) {
    this.#reader = reader;
    this.#writer = writer;
    this.#nic = nic;
  }

  /** Frames dropped because their source MAC was not the sender's (or the sender had none). */
  get spoofed(): number {
    return this.#spoofed;
  }

  /** See DataPlane.setUplink. */
  setUplink(fn: ((frame: Uint8Array, from: number) => void) | undefined): void {
    this.#uplink = fn;
  }

  /** Returns the burst stage of this lane (one per data plane): frames staged there go out on `flush`. */
  burst(): TransmitBurst {
    this.#burst ??= new TransmitBurst(this.#reader, this);
    return this.#burst;
  }

  /**
   * Checks the source MAC at `bytes[srcAt…]` against client `id`'s MACs: returns 1 when it is one of them, 0 when it must be dropped
   * (counted as spoofed), 2 when it must be sent with `mac` written as its source (anti-spoof off, another source).
   */
  admit(id: number, bytes: Uint8Array, srcAt: number, antiSpoof: boolean, mac: Uint8Array): number {
    if (this.#writer.owner(macKeyAt(bytes, srcAt)) === id) return 1;
    if (antiSpoof) {
      this.#spoofed++;
      return 0;
    }
    const nic = this.#nic;
    const own = nic
      .client(id)
      ?.slots()
      .find((s) => {
        const info = nic.addressGet(s);
        return info.active && info.mac.kind === 'mac48';
      });
    if (own === undefined) {
      this.#spoofed++;
      return 0;
    }
    nic.addressGet(own).mac.writeTo(mac, 0);
    return 2;
  }

  /** See DataPlane.send. */
  send(id: number, frame: Uint8Array, antiSpoof: boolean): boolean {
    const nic = this.#nic;
    const client = nic.client(id);
    if (client === undefined) throw new MacslotError('INVALID_ARGUMENT', `no open client with id ${show(id)}`);
    if (!hasEthernetHeader(frame) || frame.length > this.#reader.maxFrameLength) return false;
    // Frames staged for a burst go first: they were sent earlier, and the one-frame path reuses the pool.
    if (this.#burst !== undefined && this.#burst.staged > 0) this.#burst.flush();
    const mac = new Uint8Array(6);
    const how = this.admit(id, frame, ETH_SRC, antiSpoof, mac);
    if (how === 0) return false;
    const out = frame.slice();
    if (how === 2) out.set(mac, ETH_SRC);
    this.#reader.single(out);
    this.#reader.rxBurst(1, id);
    this.#uplink?.(out, id);
    return true;
  }
}

/**
 * Frames staged in the lane's pool, sent through the data plane together. Frames of one sender in a row share one
 * `rxBurst` (a burst excludes one sender from its own broadcast), cut so that one burst never holds more bytes than half a
 * receive ring: the sink reads the rings out after each, so a burst cannot overflow a ring its consumer keeps up with.
 */
export class TransmitBurst {
  readonly #reader: LaneReader;
  readonly #tx: Transmit;
  readonly #pool: Uint8Array;
  readonly #poolView: DataView;
  // The last buffer small frames were copied from, and a view of it: one view per chunk read, not per frame.
  #src: Uint8Array | undefined;
  #srcView: DataView | undefined;
  readonly #offset: Uint32Array;
  readonly #length: Uint32Array;
  // Per client: the last source admitted (a MAC it holds), until the NIC changes (see forgetSources).
  readonly #known: Uint8Array;
  readonly #knownHi: Int32Array;
  readonly #knownLo: Int32Array;
  readonly #from: Int32Array;
  readonly #mac = new Uint8Array(6);
  readonly #runBytes: number;
  #sink: TransmitSink | undefined;
  #count = 0;
  #used = 0;
  #done = 0;
  #flushing = false;

  /** Stages into `reader`'s pool; `tx` checks sources. */
  constructor(reader: LaneReader, tx: Transmit) {
    this.#reader = reader;
    this.#tx = tx;
    this.#pool = reader.pool;
    this.#poolView = new DataView(reader.pool.buffer, reader.pool.byteOffset, reader.pool.byteLength);
    this.#offset = new Uint32Array(reader.burst);
    this.#length = new Uint32Array(reader.burst);
    this.#from = new Int32Array(reader.burst);
    this.#known = new Uint8Array(reader.maxClients);
    this.#knownHi = new Int32Array(reader.maxClients);
    this.#knownLo = new Int32Array(reader.maxClients);
    this.#runBytes = Math.max(reader.maxFrameLength + 16, reader.x.ringDataBytes() >>> 1);
  }

  /** Frames staged and not yet flushed. */
  get staged(): number {
    return this.#count - this.#done;
  }

  /** Forgets the sources admitted so far; call it on every change of the NIC (a MAC removed or moved). */
  forgetSources(): void {
    this.#known.fill(0);
  }

  /** Sets who hears of each frame and each delivery (the switch's fabric). */
  setSink(sink: TransmitSink | undefined): void {
    this.#sink = sink;
  }

  /**
   * Stages `frame` from client `from` (-1: from the wire, no source check), copied into the pool. Returns STAGED,
   * SPOOFED (dropped and counted) or BURST_FULL (nothing staged: flush first). The frame must have an Ethernet header
   * and fit `maxFrameLength`; the caller checks both.
   */
  stage(from: number, frame: Uint8Array, antiSpoof: boolean): number {
    return this.stageRange(from, frame, 0, frame.length, antiSpoof);
  }

  /** As `stage`, for the frame `bytes[start, end)`: nothing is allocated per frame of up to SMALL_FRAME bytes. */
  stageRange(from: number, bytes: Uint8Array, start: number, end: number, antiSpoof: boolean): number {
    const n = this.#count;
    const len = end - start;
    const pool = this.#pool;
    if (n >= this.#offset.length || this.#used + len > pool.length) return BURST_FULL;
    let how = 1;
    if (from >= 0) {
      // The source a client sent from last, if it was one of its MACs, is admitted again without a lookup.
      const s = start + ETH_SRC;
      const hi = (bytes[s]! << 8) | bytes[s + 1]!;
      const lo = (bytes[s + 2]! << 24) | (bytes[s + 3]! << 16) | (bytes[s + 4]! << 8) | bytes[s + 5]!;
      if (this.#known[from] !== 1 || this.#knownHi[from] !== hi || this.#knownLo[from] !== lo) {
        how = this.#tx.admit(from, bytes, s, antiSpoof, this.#mac);
        if (how === 0) return SPOOFED;
        if (how === 1 && from < this.#known.length) {
          this.#known[from] = 1;
          this.#knownHi[from] = hi;
          this.#knownLo[from] = lo;
        }
      }
    }
    const at = this.#used;
    if (start === 0 && end === bytes.length) pool.set(bytes, at);
    else if (len <= SMALL_FRAME) this.#copySmall(bytes, start, len, at);
    else pool.set(bytes.subarray(start, end), at);
    if (how === 2) pool.set(this.#mac, at + ETH_SRC);
    this.#offset[n] = at;
    this.#length[n] = len;
    this.#from[n] = from;
    this.#count = n + 1;
    this.#used = (at + len + 7) & ~7;
    return STAGED;
  }

  /** Copies `bytes[start, start + len)` to the pool at `at` in 32-bit words, through a view made once per source buffer. */
  #copySmall(bytes: Uint8Array, start: number, len: number, at: number): void {
    let v = this.#srcView;
    if (this.#src !== bytes) {
      this.#src = bytes;
      v = this.#srcView = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    const pv = this.#poolView;
    let k = 0;
    for (; k + 4 <= len; k += 4) pv.setUint32(at + k, v!.getUint32(start + k, true), true);
    for (; k < len; k++) this.#pool[at + k] = bytes[start + k]!;
  }

  /**
   * Sends every staged frame through the data plane, in order, telling the sink each frame's verdict and, after each
   * burst, that the rings hold its frames. Frames staged meanwhile (a port answering synchronously) go out in the same
   * call. Does nothing when called from inside the sink.
   */
  flush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#done < this.#count) this.#run();
    } finally {
      this.#count = 0;
      this.#done = 0;
      this.#used = 0;
      this.#flushing = false;
    }
  }

  /** Sends one run: frames of one sender in a row, within the burst and byte limits. */
  #run(): void {
    const r = this.#reader;
    const desc = r.descriptors;
    const start = this.#done;
    const from = this.#from[start]!;
    const end = this.#count;
    let k = start;
    let bytes = 0;
    for (; k < end && this.#from[k] === from; k++) {
      const len = this.#length[k]!;
      bytes += (len + 15) & ~7;
      if (k > start && bytes > this.#runBytes) break;
      desc[2 * (k - start)] = this.#offset[k]!;
      desc[2 * (k - start) + 1] = len;
    }
    const m = k - start;
    this.#done = k;
    r.rxBurst(m, from < 0 ? NO_CLIENT : from);
    const sink = this.#sink;
    if (sink === undefined) return;
    const verdicts = r.verdicts;
    const pool = this.#pool;
    for (let i = 0; i < m; i++) sink.transmitted(from, pool, this.#offset[start + i]!, this.#length[start + i]!, verdicts[i]!);
    sink.delivered();
  }
}
