// Capture files: pcap (µs or ns) and pcapng writers that fill one fixed buffer and hand it to a sink.

import { MacslotError, show } from '../errors.js';
import {
  BT_EPB,
  BT_IDB,
  BT_SHB,
  LINKTYPE_ETHERNET,
  MAX_RECORD,
  OPT_IF_TSRESOL,
  PCAP_MAX_SECONDS,
  PCAPNG_MAX_SECONDS,
  PCAP_MAGIC_NS,
  PCAP_MAGIC_US,
  PCAPNG_BOM,
  type CaptureFormat,
} from './format.js';

/** How a capture is written. */
export interface CaptureWriterOptions {
  /**
   * Default `pcap` (microseconds; seconds up to 2^32 - 1). pcapng timestamps are written in nanoseconds (a 64-bit count, seconds up to
   * 18,446,744,072).
   */
  format?: CaptureFormat;
  /** Link type of every frame. Default 1, Ethernet. */
  linkType?: number;
  /** Longest captured part of a frame; longer frames are cut and keep their original length. Default 262144. */
  snaplen?: number;
  /** Bytes buffered before the sink is called. Default 256 KiB. */
  bufferBytes?: number;
}

const NS = 1_000_000_000;
// Word copies write host-order words; the fast path is taken only where that is little-endian, as the files are.
const LITTLE_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Writes frames as pcap or pcapng through `sink`, which receives views of one internal buffer and
 * must use (or copy) them before returning. Nothing is allocated per frame.
 */
export class CaptureWriter {
  /** The file format written. */
  readonly format: CaptureFormat;
  /** Link type of every frame. */
  readonly linkType: number;
  /** Longest captured part of a frame; longer frames are cut. */
  readonly snaplen: number;
  /** Frames written. */
  frames = 0;
  /** Bytes of the file so far, headers included. */
  bytes = 0;
  readonly #sink: (bytes: Uint8Array) => void;
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  readonly #words: Int32Array;
  #lastSource: Uint8Array | undefined;
  #sourceWords: Int32Array | undefined;
  #len = 0;
  #closed = false;
  readonly #maxSeconds: number;

  /** Starts a capture (its header is buffered at once); throws INVALID_ARGUMENT on a bad option. */
  constructor(sink: (bytes: Uint8Array) => void, options: CaptureWriterOptions = {}) {
    const { format, linkType, snaplen } = checkCaptureOptions(options);
    const bufferBytes = Math.max(options.bufferBytes ?? 256 * 1024, MAX_RECORD + 64);
    this.format = format;
    this.#maxSeconds = format === 'pcapng' ? PCAPNG_MAX_SECONDS : PCAP_MAX_SECONDS;
    this.linkType = linkType;
    this.snaplen = snaplen;
    this.#sink = sink;
    this.#buf = new Uint8Array(bufferBytes);
    this.#view = new DataView(this.#buf.buffer);
    this.#words = new Int32Array(this.#buf.buffer, 0, this.#buf.length >> 2);
    this.#len = writeFileHeader(this.#view, format, linkType, snaplen);
    this.bytes = this.#len;
  }

  /**
   * Appends the frame `source[offset, offset + length)` with its timestamp and wire length
   * (default `length`). Throws INVALID_ARGUMENT on a bad timestamp or length, or after close().
   */
  write(source: Uint8Array, offset: number, length: number, seconds = 0, nanoseconds = 0, originalLength = length): void {
    if (this.#closed) throw new MacslotError('INVALID_ARGUMENT', 'write after close');
    if (!(length >= 0 && length <= MAX_RECORD && offset >= 0 && offset + length <= source.length)) {
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `frame window ${show({ offset, length })} is outside its ${source.length}-byte source or above ${MAX_RECORD} bytes`,
      );
    }
    if (!(seconds >= 0 && seconds <= this.#maxSeconds && nanoseconds >= 0 && nanoseconds < NS)) {
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `timestamp ${show({ seconds, nanoseconds })} is outside what a ${this.format} file holds (0..${this.#maxSeconds} s, nanoseconds ` +
          `below 10^9)`,
      );
    }
    const cap = Math.min(length, this.snaplen);
    const orig = Math.max(originalLength, cap);
    const padded = (cap + 3) & ~3;
    const need = this.format === 'pcapng' ? 32 + padded : 16 + cap;
    if (this.#len + need > this.#buf.length) this.flush();
    let p = writeRecordHeader(this.#view, this.#len, this.format, cap, orig, seconds, nanoseconds, need);
    this.#copy(source, offset, p, cap);
    p += cap;
    if (this.format === 'pcapng') {
      for (; (p & 3) !== 0; p++) this.#buf[p] = 0;
      this.#view.setUint32(p, need, true);
      p += 4;
    }
    this.#len = p;
    this.bytes += need;
    this.frames++;
  }

  /**
   * Appends `source[offset, offset + length)` verbatim: one whole pcap record (16-byte header, then
   * the frame) already in this writer's format, little-endian, within its snaplen. For copying records
   * between captures of the same format without re-encoding them. Throws INVALID_ARGUMENT on a pcapng
   * writer, a window outside `source` or not holding exactly one record, or after close().
   */
  writeRecord(source: Uint8Array, offset: number, length: number): void {
    if (this.#closed) throw new MacslotError('INVALID_ARGUMENT', 'write after close');
    if (this.format === 'pcapng') throw new MacslotError('INVALID_ARGUMENT', 'writeRecord copies pcap records; this writer writes pcapng');
    if (!(length >= 16 && offset >= 0 && offset + length <= source.length)) {
      throw new MacslotError('INVALID_ARGUMENT', `record window ${show({ offset, length })} is outside its ${source.length}-byte source`);
    }
    const cap = source[offset + 8]! | (source[offset + 9]! << 8) | (source[offset + 10]! << 16) | (source[offset + 11]! << 24);
    if (cap !== length - 16 || cap > this.snaplen)
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `record window ${show({ offset, length })} holds a ${cap >>> 0}-byte frame, not one record of at most ${this.snaplen} bytes`,
      );
    if (this.#len + length > this.#buf.length) this.flush();
    this.#copy(source, offset, this.#len, length);
    this.#len += length;
    this.bytes += length;
    this.frames++;
  }

  /** Copies `n` bytes of `source` from `offset` into the buffer at `p`. */
  #copy(source: Uint8Array, offset: number, p: number, n: number): void {
    const buf = this.#buf;
    if (n > 256) {
      buf.set(source.subarray(offset, offset + n), p);
      return;
    }
    // Short frames: a loop beats creating a subarray per frame, and whole words beat bytes when both sides are aligned.
    if (source !== this.#lastSource) {
      this.#lastSource = source;
      this.#sourceWords =
        LITTLE_HOST && (source.byteOffset & 3) === 0 ? new Int32Array(source.buffer, source.byteOffset, source.length >> 2) : undefined;
    }
    const sw = this.#sourceWords;
    let i = 0;
    if (sw !== undefined && ((p | offset) & 3) === 0) {
      const dw = this.#words;
      const d0 = p >> 2;
      const s0 = offset >> 2;
      const k1 = n >> 2;
      for (let k = 0; k < k1; k++) dw[d0 + k] = sw[s0 + k]!;
      i = k1 << 2;
    }
    for (; i < n; i++) buf[p + i] = source[offset + i]!;
  }

  /** Appends a whole frame; see `write`. */
  writeFrame(frame: Uint8Array, seconds = 0, nanoseconds = 0, originalLength = frame.length): void {
    this.write(frame, 0, frame.length, seconds, nanoseconds, originalLength);
  }

  /** Hands everything buffered to the sink. */
  flush(): void {
    if (this.#len === 0) return;
    const n = this.#len;
    this.#len = 0;
    this.#sink(this.#buf.subarray(0, n));
  }

  /** Flushes and refuses further writes; returns the file's size in bytes. Idempotent. */
  close(): number {
    if (!this.#closed) {
      this.flush();
      this.#closed = true;
    }
    return this.bytes;
  }
}

/** The format, link type and snaplen of `options` with their defaults; throws INVALID_ARGUMENT on a bad one. */
export function checkCaptureOptions(options: Pick<CaptureWriterOptions, 'format' | 'linkType' | 'snaplen'>): {
  format: CaptureFormat;
  linkType: number;
  snaplen: number;
} {
  const format = options.format ?? 'pcap';
  if (format !== 'pcap' && format !== 'pcap-ns' && format !== 'pcapng')
    throw new MacslotError('INVALID_ARGUMENT', `capture format ${show(format)} is not pcap, pcap-ns or pcapng`);
  const linkType = options.linkType ?? LINKTYPE_ETHERNET;
  if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0xffff)
    throw new MacslotError('INVALID_ARGUMENT', `link type ${show(linkType)} is not 0..65535`);
  const snaplen = options.snaplen ?? MAX_RECORD;
  if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > MAX_RECORD)
    throw new MacslotError('INVALID_ARGUMENT', `snaplen ${show(snaplen)} is not 1..${MAX_RECORD}`);
  return { format, linkType, snaplen };
}

/**
 * Writes a capture's file header at the start of `v`: pcap's 24 bytes, or a pcapng section and one nanosecond interface
 * (60 bytes). Returns its length.
 */
export function writeFileHeader(v: DataView, format: CaptureFormat, linkType: number, snaplen: number): number {
  if (format === 'pcapng') {
    // Section header: version 1.0, section length unknown (-1), no options.
    v.setUint32(0, BT_SHB, true);
    v.setUint32(4, 28, true);
    v.setUint32(8, PCAPNG_BOM, true);
    v.setUint16(12, 1, true);
    v.setUint16(14, 0, true);
    v.setInt32(16, -1, true);
    v.setInt32(20, -1, true);
    v.setUint32(24, 28, true);
    // One interface with nanosecond timestamps (if_tsresol = 9), then end of options.
    v.setUint32(28, BT_IDB, true);
    v.setUint32(32, 32, true);
    v.setUint16(36, linkType, true);
    v.setUint16(38, 0, true);
    v.setUint32(40, snaplen, true);
    v.setUint16(44, OPT_IF_TSRESOL, true);
    v.setUint16(46, 1, true);
    v.setUint32(48, 9, true);
    v.setUint32(52, 0, true);
    v.setUint32(56, 32, true);
    return 60;
  }
  v.setUint32(0, format === 'pcap-ns' ? PCAP_MAGIC_NS : PCAP_MAGIC_US, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setInt32(8, 0, true);
  v.setUint32(12, 0, true);
  v.setUint32(16, snaplen, true);
  v.setUint32(20, linkType, true);
  return 24;
}

/**
 * Writes the header of one record at `p` of `v` (a pcap record header, or an enhanced packet block's first 28 bytes of
 * `blockLength` in all) for a frame of `cap` captured bytes; returns where its data goes. Timestamps are checked by the caller.
 */
export function writeRecordHeader(
  v: DataView,
  p: number,
  format: CaptureFormat,
  cap: number,
  orig: number,
  seconds: number,
  nanoseconds: number,
  blockLength: number,
): number {
  const secs = Math.floor(seconds);
  const nanos = Math.floor(nanoseconds);
  if (format === 'pcapng') {
    // 64-bit nanosecond count split exactly into 32-bit halves without BigInt.
    const sh = Math.floor(secs / 65536);
    const sl = secs - sh * 65536;
    const a = sh * NS;
    let hi = Math.floor(a / 65536);
    let lo = (a - hi * 65536) * 65536 + sl * NS + nanos;
    const carry = Math.floor(lo / 0x1_0000_0000);
    hi += carry;
    lo -= carry * 0x1_0000_0000;
    v.setUint32(p, BT_EPB, true);
    v.setUint32(p + 4, blockLength, true);
    v.setUint32(p + 8, 0, true);
    v.setUint32(p + 12, hi, true);
    v.setUint32(p + 16, lo, true);
    v.setUint32(p + 20, cap, true);
    v.setUint32(p + 24, orig, true);
    return p + 28;
  }
  v.setUint32(p, secs, true);
  v.setUint32(p + 4, format === 'pcap-ns' ? nanos : Math.floor(nanos / 1000), true);
  v.setUint32(p + 8, cap, true);
  v.setUint32(p + 12, orig, true);
  return p + 16;
}
