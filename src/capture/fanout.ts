// Capture files: many captures written side by side from batches of frames, each frame to any set of them, with no
// call, view or object per frame.

import { MacslotError, show } from '../errors.js';
import type { FrameBatch } from './batch.js';
import { MAX_RECORD, PCAP_MAX_SECONDS, PCAP_RECORD_HEADER_LEN, PCAPNG_MAX_SECONDS, type CaptureFormat } from './format.js';
import { checkCaptureOptions, writeFileHeader, writeRecordHeader } from './writer.js';

/** How a `CaptureFanout` writes. */
export interface CaptureFanoutOptions {
  /** Default `pcap` (microseconds). pcapng is written with nanosecond timestamps, as `CaptureWriter` does. */
  format?: CaptureFormat;
  /** Link type of every frame. Default 1, Ethernet. */
  linkType?: number;
  /** Longest captured part of a frame; longer frames are cut and keep their original length. Default 262144. */
  snaplen?: number;
  /** Bytes each output buffers before its sink is called; a multiple of 8, at least 4 KiB. Default 256 KiB. */
  bufferBytes?: number;
  /**
   * Memory for the buffers, `CaptureFanout.storeBytes(outputs, bufferBytes)` bytes from `storeOffset`. Give the `store`
   * of the batches written, so each frame is copied within one memory. Default: memory of its own.
   */
  store?: Uint8Array;
  /** Where the buffers start in `store`; a multiple of 8. Default 0. */
  storeOffset?: number;
}

const NS = 1_000_000_000;
const MIN_BUFFER = 4096;

/**
 * Writes one capture per sink, each byte for byte what a `CaptureWriter` with the same options writes for the same
 * frames. `writeBatch` sends each frame of a batch to the outputs its route lists; every output's records go into its
 * own buffer, handed to its sink (which must use or copy the bytes before returning) when full and on `flush`.
 */
export class CaptureFanout {
  /** Number of outputs. */
  readonly outputs: number;
  /** The file format written. */
  readonly format: CaptureFormat;
  /** Link type of every frame. */
  readonly linkType: number;
  /** Longest captured part of a frame. */
  readonly snaplen: number;
  /** Bytes each output buffers. */
  readonly bufferBytes: number;
  /** Frames written to each output. */
  readonly frames: Float64Array;
  /** Bytes of each output so far, headers included. */
  readonly bytes: Float64Array;
  readonly #sinks: readonly ((bytes: Uint8Array) => void)[];
  readonly #store: Uint8Array;
  readonly #view: DataView;
  readonly #start: Int32Array;
  readonly #pos: Int32Array;
  readonly #maxSeconds: number;
  readonly #scratch = new Uint8Array(32);
  readonly #scratchView = new DataView(this.#scratch.buffer);
  #closed = false;

  /** Bytes of store `outputs` outputs of `bufferBytes` each take. */
  static storeBytes(outputs: number, bufferBytes: number): number {
    return outputs * bufferBytes;
  }

  /** Starts one capture per sink (their headers are buffered at once); throws INVALID_ARGUMENT on a bad option. */
  constructor(sinks: readonly ((bytes: Uint8Array) => void)[], options: CaptureFanoutOptions = {}) {
    const { format, linkType, snaplen } = checkCaptureOptions(options);
    const size = options.bufferBytes ?? 256 * 1024;
    if (!Number.isInteger(size) || size < MIN_BUFFER || size % 8 !== 0 || size > 1 << 30) {
      throw new MacslotError('INVALID_ARGUMENT', `bufferBytes ${show(size)} is not a multiple of 8 in ${MIN_BUFFER}..${1 << 30}`);
    }
    const n = sinks.length;
    const base = options.storeOffset ?? 0;
    const store = options.store ?? new Uint8Array(CaptureFanout.storeBytes(n, size));
    if (!Number.isInteger(base) || base < 0 || base % 8 !== 0 || base + CaptureFanout.storeBytes(n, size) > store.length) {
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `${n} buffers of ${size} bytes from offset ${show(base)} do not fit a ${store.length}-byte store`,
      );
    }
    this.outputs = n;
    this.format = format;
    this.linkType = linkType;
    this.snaplen = snaplen;
    this.bufferBytes = size;
    this.#sinks = sinks;
    this.#store = store;
    this.#view = new DataView(store.buffer, store.byteOffset, store.byteLength);
    this.#maxSeconds = format === 'pcapng' ? PCAPNG_MAX_SECONDS : PCAP_MAX_SECONDS;
    this.frames = new Float64Array(n);
    this.bytes = new Float64Array(n);
    this.#start = new Int32Array(n);
    this.#pos = new Int32Array(n);
    for (let o = 0; o < n; o++) {
      const at = base + o * size;
      const header = writeFileHeader(new DataView(store.buffer, store.byteOffset + at, 64), format, linkType, snaplen);
      this.#start[o] = at;
      this.#pos[o] = at + header;
      this.bytes[o] = header;
    }
  }

  /**
   * Writes every frame `i` of `batch` to the outputs `routeOutputs[routeStart[r] .. routeStart[r + 1])`, where
   * `r = routeOf[i]`; a negative `r` writes it nowhere. Throws INVALID_ARGUMENT, as `CaptureWriter.write` does, on a
   * frame above 262144 bytes or a timestamp the format cannot hold, on an output index out of range, or after `close()`.
   */
  writeBatch(batch: FrameBatch, routeOf: Int32Array, routeStart: Int32Array, routeOutputs: Int32Array): void {
    if (this.#closed) throw new MacslotError('INVALID_ARGUMENT', 'write after close');
    const n = batch.count;
    // Checked once per batch rather than per delivery.
    for (let k = 0; k < routeOutputs.length; k++) this.#output(routeOutputs[k]!);
    const store = this.#store;
    const desc = batch.descriptors;
    const records = batch.record;
    const orig = batch.originalLength;
    const source = batch.store;
    const same = source.buffer === this.#store.buffer;
    const shift = source.byteOffset - this.#store.byteOffset;
    const pos = this.#pos;
    const start = this.#start;
    const size = this.bufferBytes;
    const frames = this.frames;
    const bytes = this.bytes;
    const snaplen = this.snaplen;
    // Records already in this format's resolution, little-endian, are copied whole.
    const verbatim = this.format !== 'pcapng' && batch.recordFormat === this.format;
    for (let i = 0; i < n; i++) {
      const r = routeOf[i]!;
      if (r < 0) continue;
      let k = routeStart[r]!;
      const kEnd = routeStart[r + 1]!;
      if (k >= kEnd) continue;
      const len = desc[2 * i + 1]!;
      const rec = records[i]!;
      if (verbatim && rec >= 0 && len <= snaplen && orig[i]! >= len) {
        const need = PCAP_RECORD_HEADER_LEN + len;
        for (; k < kEnd; k++) {
          const o = routeOutputs[k]!;
          let p = pos[o]!;
          if (p + need > start[o]! + size) {
            this.#drain(o);
            p = pos[o]!;
            if (need > size) {
              this.#sinks[o]!(source.subarray(rec, rec + need));
              frames[o]!++;
              bytes[o]! += need;
              continue;
            }
          }
          if (same) store.copyWithin(p, rec + shift, rec + shift + need);
          else store.set(source.subarray(rec, rec + need), p);
          pos[o] = p + need;
          frames[o]!++;
          bytes[o]! += need;
        }
        continue;
      }
      for (; k < kEnd; k++) this.#encode(routeOutputs[k]!, batch, i);
    }
  }

  /** Hands every output's buffered bytes to its sink. */
  flush(): void {
    for (let o = 0; o < this.outputs; o++) this.#drain(o);
  }

  /** Flushes and refuses further writes. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
  }

  #output(o: number): number {
    if (!(o >= 0 && o < this.outputs)) throw new MacslotError('INVALID_ARGUMENT', `output ${show(o)} is not 0..${this.outputs - 1}`);
    return o;
  }

  #drain(o: number): void {
    const from = this.#start[o]!;
    const to = this.#pos[o]!;
    if (to === from) return;
    this.#pos[o] = from;
    this.#sinks[o]!(this.#store.subarray(from, to));
  }

  /** Encodes frame `i` of `batch` as one record of output `o`, as `CaptureWriter.write` does. */
  #encode(o: number, batch: FrameBatch, i: number): void {
    const off = batch.descriptors[2 * i]!;
    const length = batch.descriptors[2 * i + 1]!;
    const seconds = batch.seconds[i]!;
    const nanoseconds = batch.nanoseconds[i]!;
    if (length > MAX_RECORD) {
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `frame window ${show({ offset: off, length })} is outside its ${batch.store.length}-byte source or above ${MAX_RECORD} bytes`,
      );
    }
    if (!(seconds >= 0 && seconds <= this.#maxSeconds && nanoseconds < NS)) {
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `timestamp ${show({ seconds, nanoseconds })} is outside what a ${this.format} file holds ` +
          `(0..${this.#maxSeconds} s, nanoseconds below 10^9)`,
      );
    }
    const pcapng = this.format === 'pcapng';
    const cap = Math.min(length, this.snaplen);
    const orig = Math.max(batch.originalLength[i]!, cap);
    const padded = (cap + 3) & ~3;
    const need = pcapng ? 32 + padded : 16 + cap;
    const source = batch.store;
    const store = this.#store;
    let p = this.#pos[o]!;
    if (p + need > this.#start[o]! + this.bufferBytes) {
      this.#drain(o);
      p = this.#pos[o]!;
      if (need > this.bufferBytes) {
        // Larger than a whole buffer: header, frame and trailer go to the sink directly.
        const sink = this.#sinks[o]!;
        const h = writeRecordHeader(this.#scratchView, 0, this.format, cap, orig, seconds, nanoseconds, need);
        sink(this.#scratch.subarray(0, h));
        sink(source.subarray(off, off + cap));
        if (pcapng) {
          const pad = padded - cap;
          this.#scratch.fill(0, 0, pad);
          this.#scratchView.setUint32(pad, need, true);
          sink(this.#scratch.subarray(0, pad + 4));
        }
        this.frames[o]!++;
        this.bytes[o]! += need;
        return;
      }
    }
    p = writeRecordHeader(this.#view, p, this.format, cap, orig, seconds, nanoseconds, need);
    if (source.buffer === store.buffer) {
      const s = off + source.byteOffset - store.byteOffset;
      store.copyWithin(p, s, s + cap);
    } else store.set(source.subarray(off, off + cap), p);
    p += cap;
    if (pcapng) {
      for (const e = p + padded - cap; p < e; p++) store[p] = 0;
      this.#view.setUint32(p, need, true);
      p += 4;
    }
    this.#pos[o] = p;
    this.frames[o]!++;
    this.bytes[o]! += need;
  }
}
