// Capture files: a streaming pcap and pcapng reader over pushed chunks, with constant memory whatever the lengths inside say.

import { MacslotError, show } from '../errors.js';
import type { FrameBatch } from './batch.js';
import {
  BT_EPB,
  BT_IDB,
  BT_OPB,
  BT_SHB,
  BT_SPB,
  MAX_BLOCK,
  MAX_INTERFACES,
  MAX_RECORD,
  OPT_ENDOFOPT,
  OPT_IF_TSRESOL,
  PCAP_HEADER_LEN,
  PCAP_MAGIC_NS,
  PCAP_MAGIC_NS_SWAPPED,
  PCAP_MAGIC_US,
  PCAP_MAGIC_US_SWAPPED,
  PCAP_RECORD_HEADER_LEN,
  PCAPNG_BOM,
  type CaptureFormat,
} from './format.js';

const START = 0;
const PCAP_HEADER = 1;
const PCAP_RECORD = 2;
const NG_BLOCK = 3;
const PCAPNG_BOM_SWAPPED = 0x4d3c2b1a;
const EMPTY = new Uint8Array(0);

/** One interface of a pcapng section (or the single one of a pcap file). */
interface Interface {
  readonly linkType: number;
  readonly snaplen: number;
  /** Timestamp units per second as 10^decimal when decimal ≥ 0, else 2^binary. */
  readonly decimal: number;
  readonly binary: number;
}

/**
 * Reads pcap (µs or ns, either byte order) and pcapng (SHB, IDB, EPB, SPB, OPB; several sections
 * and interfaces) from chunks handed to `push`, and exposes one frame at a time through its fields.
 * A frame is a window `buffer[dataOffset, dataOffset + capturedLength)`, valid until the next call;
 * nothing is allocated per frame and at most one largest block is ever buffered.
 */
export class CaptureReader {
  /** Name used in error messages (usually the file path). */
  readonly name: string;
  /** The input's format, known after the first `next()` that got enough bytes. */
  format: CaptureFormat | undefined;
  /** True when the current section is little-endian. */
  littleEndian = true;
  // ---- the current frame ----
  /** Bytes holding the current frame (a chunk, or the reader's own carry buffer). */
  buffer: Uint8Array = EMPTY;
  /** Where the current frame starts in `buffer`. */
  dataOffset = 0;
  /** Bytes captured (≤ originalLength when the snapshot length cut the frame). */
  capturedLength = 0;
  /** Length of the frame on the wire. */
  originalLength = 0;
  /** Link type of the frame's interface (1 = Ethernet). */
  linkType = 0;
  /** Interface of the frame within its section (always 0 for pcap). */
  interfaceId = 0;
  /** Timestamp: whole seconds since the epoch, and the nanoseconds beyond them. */
  seconds = 0;
  /** Nanoseconds past `seconds`. */
  nanoseconds = 0;
  /** Byte offset in the input where the current frame's record or block starts. */
  offset = 0;
  // ---- totals ----
  /** Frames returned so far. */
  frames = 0;
  /** pcapng blocks of types this reader does not interpret, skipped whole. */
  skippedBlocks = 0;
  /** pcapng sections seen. */
  sections = 0;

  #state = START;
  #chunk: Uint8Array = EMPTY;
  #chunkView: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  #pos = 0;
  readonly #carry = new Uint8Array(MAX_BLOCK);
  readonly #carryView: DataView<ArrayBufferLike> = new DataView(this.#carry.buffer);
  #carryLen = 0;
  #src: Uint8Array = EMPTY;
  #view: DataView<ArrayBufferLike> = this.#chunkView;
  #at = 0;
  #want = 0;
  #consumed = 0;
  #ifaces: Interface[] = [];
  /** nextBatch read the current frame but had no room for it: it is returned first by the next nextBatch or next(). */
  #held = false;

  /** Creates a reader; `name` appears in every error it throws. */
  constructor(name = 'capture') {
    this.name = name;
  }

  /** Returns the current frame as a view (allocates one view; hot loops use `buffer` and `dataOffset`). */
  get data(): Uint8Array {
    return this.buffer.subarray(this.dataOffset, this.dataOffset + this.capturedLength);
  }

  /** Returns the number of input bytes fully consumed so far. */
  get position(): number {
    return this.#consumed;
  }

  /** Hands the reader the next chunk of input; throws INVALID_ARGUMENT unless `next()` returned false on the previous one. */
  push(chunk: Uint8Array): void {
    if (this.#pos < this.#chunk.length || this.#held) {
      const unread = this.#held
        ? 'a frame nextBatch() read is not yet returned'
        : `${this.#chunk.length - this.#pos} bytes of the previous chunk are unread`;
      throw new MacslotError('INVALID_ARGUMENT', `${show(this.name)}: push() before next() returned false; ${unread}`);
    }
    this.#chunk = chunk;
    this.#chunkView = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.#pos = 0;
  }

  /**
   * Advances to the next frame; returns false when the pushed input is used up (push more, or call
   * `end()`). Throws CAPTURE_INVALID, naming the input and the byte offset, on a malformed file.
   */
  next(): boolean {
    if (this.#held) {
      this.#held = false;
      return true;
    }
    for (;;) {
      switch (this.#state) {
        case START: {
          if (!this.#need(4)) return false;
          const magic = this.#view.getUint32(this.#at, true);
          if (magic === BT_SHB) {
            this.format = 'pcapng';
            this.#state = NG_BLOCK;
          } else if (magic === PCAP_MAGIC_US || magic === PCAP_MAGIC_NS) {
            this.littleEndian = true;
            this.format = magic === PCAP_MAGIC_NS ? 'pcap-ns' : 'pcap';
            this.#state = PCAP_HEADER;
          } else if (magic === PCAP_MAGIC_US_SWAPPED || magic === PCAP_MAGIC_NS_SWAPPED) {
            this.littleEndian = false;
            this.format = magic === PCAP_MAGIC_NS_SWAPPED ? 'pcap-ns' : 'pcap';
            this.#state = PCAP_HEADER;
          } else {
            throw this.#fail(0, `magic 0x${magic.toString(16).padStart(8, '0')} is neither pcap nor pcapng`);
          }
          break;
        }
        case PCAP_HEADER: {
          if (!this.#need(PCAP_HEADER_LEN)) return false;
          const v = this.#view;
          const at = this.#at;
          const major = v.getUint16(at + 4, this.littleEndian);
          if (major !== 2) throw this.#fail(4, `pcap version ${major} is not 2`);
          const snaplen = v.getUint32(at + 16, this.littleEndian);
          // The upper bits of the link type field carry FCS information, not the link type.
          const linkType = v.getUint32(at + 20, this.littleEndian) & 0x0fff_ffff;
          const ns = this.format === 'pcap-ns';
          this.#ifaces = [{ linkType, snaplen, decimal: ns ? 9 : 6, binary: -1 }];
          this.#consume(PCAP_HEADER_LEN);
          this.#state = PCAP_RECORD;
          break;
        }
        case PCAP_RECORD: {
          if (!this.#need(PCAP_RECORD_HEADER_LEN)) return false;
          const le = this.littleEndian;
          const incl = this.#view.getUint32(this.#at + 8, le);
          if (incl > MAX_RECORD) throw this.#fail(this.#consumed, `record length ${incl} is above the ${MAX_RECORD}-byte limit`);
          if (!this.#need(PCAP_RECORD_HEADER_LEN + incl)) return false;
          const v = this.#view;
          const at = this.#at;
          this.seconds = v.getUint32(at, le);
          const frac = v.getUint32(at + 4, le);
          const ns = this.format === 'pcap-ns';
          // A fraction of a second that is a second or more has no exact meaning: refuse it rather than pass it on.
          if (frac >= (ns ? 1e9 : 1e6))
            throw this.#fail(
              this.#consumed + 4,
              `${ns ? 'nanosecond' : 'microsecond'} fraction ${frac} is not below ${ns ? '1,000,000,000' : '1,000,000'}`,
            );
          this.nanoseconds = ns ? frac : frac * 1000;
          this.capturedLength = incl;
          this.originalLength = v.getUint32(at + 12, le);
          this.linkType = this.#ifaces[0]!.linkType;
          this.interfaceId = 0;
          this.#frame(at + PCAP_RECORD_HEADER_LEN, PCAP_RECORD_HEADER_LEN + incl);
          return true;
        }
        default: {
          if (this.#block()) return true;
          if (this.#want !== 0) return false;
        }
      }
    }
  }

  /**
   * Adds the next frames to `batch` until it holds `capacity`, `max` more were added, or the pushed input is used up;
   * returns how many were added. Frames of a chunk that is a view inside `batch.store` are described in place; others
   * are copied into its spill area; a frame it has no room for ends the batch and starts the next one. Throws
   * CAPTURE_INVALID as `next()` does, but only when it adds nothing: a malformed record after good ones ends the batch,
   * and the next call throws. Afterwards the per-frame fields describe the last frame added.
   */
  nextBatch(batch: FrameBatch, max = batch.capacity): number {
    const start = batch.count;
    const limit = Math.min(batch.capacity, start + Math.max(0, max));
    const base = batch.baseOf(this.#chunk);
    if (start === 0) batch.spillUsed = 0;
    if (this.#held && batch.count < limit) {
      // The frame the previous call read but had no room for.
      if (!this.#take(batch, base)) return 0;
      this.#held = false;
    }
    while (batch.count < limit) {
      if (this.#state === PCAP_RECORD && this.#carryLen === 0 && base >= 0) {
        this.#pcapRun(batch, limit, base);
        if (batch.count >= limit) break;
      }
      // Anything else (a header, a pcapng block, a record straddling chunks, an error) goes one frame at a time.
      let got: boolean;
      if (batch.count === start) got = this.next();
      else {
        try {
          got = this.next();
        } catch {
          // Nothing was consumed: the same call fails the same way next time, after the good frames are handled.
          break;
        }
      }
      if (!got) break;
      if (!this.#take(batch, base)) {
        // No room left in the spill area: the frame stays current and starts the next batch.
        this.#held = true;
        break;
      }
    }
    return batch.count - start;
  }

  /** Describes whole little-endian or big-endian pcap records lying in the current chunk, as `next()` would one by one. */
  #pcapRun(batch: FrameBatch, limit: number, base: number): void {
    const v = this.#chunkView;
    const end = this.#chunk.length;
    const le = this.littleEndian;
    const ns = this.format === 'pcap-ns';
    const fracLimit = ns ? 1e9 : 1e6;
    const scale = ns ? 1 : 1000;
    const linkType = this.#ifaces[0]!.linkType;
    const desc = batch.descriptors;
    const orig = batch.originalLength;
    const secs = batch.seconds;
    const nanos = batch.nanoseconds;
    const types = batch.linkType;
    const offsets = batch.offset;
    const records = batch.record;
    const first = batch.count;
    let i = first;
    let pos = this.#pos;
    let consumed = this.#consumed;
    let data = 0;
    while (i < limit && pos + PCAP_RECORD_HEADER_LEN <= end) {
      const incl = v.getUint32(pos + 8, le);
      data = pos + PCAP_RECORD_HEADER_LEN;
      // Records the slow path must see: too long (an error), straddling the chunk's end, or with a bad fraction.
      if (incl > MAX_RECORD || data + incl > end) break;
      const frac = v.getUint32(pos + 4, le);
      if (frac >= fracLimit) break;
      desc[2 * i] = base + data;
      desc[2 * i + 1] = incl;
      orig[i] = v.getUint32(pos + 12, le);
      secs[i] = v.getUint32(pos, le);
      nanos[i] = frac * scale;
      types[i] = linkType;
      offsets[i] = consumed;
      records[i] = le ? base + pos : -1;
      i++;
      pos = data + incl;
      consumed += PCAP_RECORD_HEADER_LEN + incl;
    }
    if (i === first) return;
    const last = i - 1;
    batch.recordFormat = ns ? 'pcap-ns' : 'pcap';
    batch.count = i;
    this.buffer = this.#chunk;
    this.dataOffset = desc[2 * last]! - base;
    this.capturedLength = desc[2 * last + 1]!;
    this.originalLength = orig[last]!;
    this.seconds = secs[last]!;
    this.nanoseconds = nanos[last]!;
    this.linkType = linkType;
    this.interfaceId = 0;
    this.offset = offsets[last]!;
    this.frames += i - first;
    this.#pos = pos;
    this.#consumed = consumed;
  }

  /**
   * Adds the current frame to `batch`: in place when it lies in a chunk inside the store, else copied into the spill area;
   * false when the spill area has no room for it.
   */
  #take(batch: FrameBatch, base: number): boolean {
    const i = batch.count;
    const len = this.capturedLength;
    let at: number;
    let record = -1;
    if (base >= 0 && this.buffer === this.#chunk) {
      at = base + this.dataOffset;
      if (this.littleEndian && (this.format === 'pcap' || this.format === 'pcap-ns')) {
        record = at - PCAP_RECORD_HEADER_LEN;
        batch.recordFormat = this.format;
      }
    } else {
      if (batch.spillBytes - batch.spillUsed < len) return false;
      at = batch.spillOffset + batch.spillUsed;
      batch.store.set(this.buffer.subarray(this.dataOffset, this.dataOffset + len), at);
      batch.spillUsed += (len + 7) & ~7;
    }
    batch.descriptors[2 * i] = at;
    batch.descriptors[2 * i + 1] = len;
    batch.originalLength[i] = this.originalLength;
    batch.seconds[i] = this.seconds;
    batch.nanoseconds[i] = this.nanoseconds;
    batch.linkType[i] = this.linkType;
    batch.offset[i] = this.offset;
    batch.record[i] = record;
    batch.count = i + 1;
    return true;
  }

  /** Declares the input complete; throws CAPTURE_INVALID when it ended inside a header, record or block. */
  end(): void {
    if (this.#carryLen > 0 || this.#pos < this.#chunk.length) {
      const have = this.#carryLen + (this.#chunk.length - this.#pos);
      const what = this.#state === START || this.#state === PCAP_HEADER ? 'header' : this.#state === PCAP_RECORD ? 'record' : 'block';
      throw this.#fail(this.#consumed, `truncated ${what}: ${have} of ${Math.max(this.#want, have + 1)} bytes`);
    }
    if (this.#state === START || this.#state === PCAP_HEADER)
      throw this.#fail(this.#consumed, `truncated header: the input ends after ${this.#consumed} bytes`);
  }

  /** One pcapng block: returns true when it produced a frame; sets #want to 0 after a consumed non-frame block. */
  #block(): boolean {
    if (!this.#need(12)) return false;
    let v = this.#view;
    let at = this.#at;
    const type = v.getUint32(at, this.littleEndian);
    if (type === BT_SHB) {
      const bom = v.getUint32(at + 8, true);
      if (bom === PCAPNG_BOM) this.littleEndian = true;
      else if (bom === PCAPNG_BOM_SWAPPED) this.littleEndian = false;
      else
        throw this.#fail(
          this.#consumed + 8,
          `section byte-order magic 0x${bom.toString(16).padStart(8, '0')} is not 0x1a2b3c4d in either order`,
        );
    }
    const le = this.littleEndian;
    const len = v.getUint32(at + 4, le);
    const start = this.#consumed;
    // A length under 12 could never advance past the block: refuse it rather than loop on it.
    if (len < 12) throw this.#fail(start + 4, `block length ${len} is below the 12-byte minimum`);
    if (len % 4 !== 0) throw this.#fail(start + 4, `block length ${len} is not a multiple of 4`);
    if (len > MAX_BLOCK) throw this.#fail(start + 4, `block length ${len} is above the ${MAX_BLOCK}-byte limit`);
    if (!this.#need(len)) return false;
    v = this.#view;
    at = this.#at;
    const trailer = v.getUint32(at + len - 4, le);
    if (trailer !== len) throw this.#fail(start + len - 4, `block trailer length ${trailer} disagrees with its header length ${len}`);
    switch (type) {
      case BT_SHB: {
        if (len < 28) throw this.#fail(start + 4, `section header length ${len} is below 28`);
        const major = v.getUint16(at + 12, le);
        if (major !== 1) throw this.#fail(start + 12, `pcapng version ${major} is not 1`);
        this.#ifaces = [];
        this.sections++;
        break;
      }
      case BT_IDB: {
        if (len < 20) throw this.#fail(start + 4, `interface block length ${len} is below 20`);
        if (this.#ifaces.length >= MAX_INTERFACES) throw this.#fail(start, `more than ${MAX_INTERFACES} interfaces in one section`);
        const linkType = v.getUint16(at + 8, le);
        const snaplen = v.getUint32(at + 12, le);
        let decimal = 6;
        let binary = -1;
        this.#options(at + 16, at + len - 4, start + 16, (code, value, valueLen) => {
          if (code === OPT_IF_TSRESOL && valueLen >= 1) {
            const r = this.#view.getUint8(value);
            if ((r & 0x80) !== 0) {
              decimal = -1;
              binary = r & 0x7f;
            } else {
              decimal = r;
              binary = -1;
            }
          }
        });
        this.#ifaces.push({ linkType, snaplen, decimal, binary });
        break;
      }
      case BT_EPB:
      case BT_OPB: {
        if (len < 32) throw this.#fail(start + 4, `packet block length ${len} is below 32`);
        const id = type === BT_EPB ? v.getUint32(at + 8, le) : v.getUint16(at + 8, le);
        const iface = this.#ifaces[id];
        if (iface === undefined)
          throw this.#fail(start + 8, `interface ${id} is not described in this section (${this.#ifaces.length} interfaces)`);
        const cap = v.getUint32(at + 20, le);
        if (cap > MAX_RECORD) throw this.#fail(start + 20, `captured length ${cap} is above the ${MAX_RECORD}-byte limit`);
        if (28 + cap + 4 > len) throw this.#fail(start + 20, `captured length ${cap} runs past its ${len}-byte block`);
        this.#timestamp(iface, v.getUint32(at + 12, le), v.getUint32(at + 16, le));
        if (this.seconds > Number.MAX_SAFE_INTEGER)
          throw this.#fail(start + 12, `timestamp of ${this.seconds} s is too far in the future to hold exactly`);
        this.capturedLength = cap;
        this.originalLength = v.getUint32(at + 24, le);
        this.linkType = iface.linkType;
        this.interfaceId = id;
        this.#frame(at + 28, len);
        return true;
      }
      case BT_SPB: {
        if (len < 16) throw this.#fail(start + 4, `simple packet block length ${len} is below 16`);
        const iface = this.#ifaces[0];
        if (iface === undefined) throw this.#fail(start, 'a simple packet block comes before any interface');
        const orig = v.getUint32(at + 8, le);
        let cap = Math.min(orig, len - 16);
        if (iface.snaplen > 0) cap = Math.min(cap, iface.snaplen);
        // A simple packet carries no timestamp.
        this.seconds = 0;
        this.nanoseconds = 0;
        this.capturedLength = cap;
        this.originalLength = orig;
        this.linkType = iface.linkType;
        this.interfaceId = 0;
        this.#frame(at + 12, len);
        return true;
      }
      default:
        this.skippedBlocks++;
    }
    this.#consume(len);
    this.#want = 0;
    return false;
  }

  /** Walks a pcapng option list in [from, to); throws CAPTURE_INVALID when an option runs past its block. */
  #options(from: number, to: number, fileOffset: number, fn: (code: number, value: number, length: number) => void): void {
    const v = this.#view;
    const le = this.littleEndian;
    let p = from;
    while (p + 4 <= to) {
      const code = v.getUint16(p, le);
      const olen = v.getUint16(p + 2, le);
      if (code === OPT_ENDOFOPT) return;
      const padded = (olen + 3) & ~3;
      if (p + 4 + padded > to) throw this.#fail(fileOffset + (p - from), `option ${code} of length ${olen} runs past its block`);
      fn(code, p + 4, olen);
      p += 4 + padded;
    }
  }

  #timestamp(iface: Interface, hi: number, lo: number): void {
    if (iface.decimal >= 0 && iface.decimal <= 9) {
      // Long division in 16-bit limbs keeps a 64-bit count exact in doubles for units up to 10^9 per second.
      const unit = 10 ** iface.decimal;
      let cur = hi >>> 16;
      let q = Math.floor(cur / unit);
      let r = cur - q * unit;
      cur = r * 65536 + (hi & 0xffff);
      let d = Math.floor(cur / unit);
      r = cur - d * unit;
      q = q * 65536 + d;
      cur = r * 65536 + (lo >>> 16);
      d = Math.floor(cur / unit);
      r = cur - d * unit;
      q = q * 65536 + d;
      cur = r * 65536 + (lo & 0xffff);
      d = Math.floor(cur / unit);
      r = cur - d * unit;
      this.seconds = q * 65536 + d;
      this.nanoseconds = r * 10 ** (9 - iface.decimal);
      return;
    }
    // Rare resolutions (finer than ns, or powers of two) take the exact but slower BigInt path.
    const ts = (BigInt(hi) << 32n) | BigInt(lo);
    const unit = iface.decimal >= 0 ? 10n ** BigInt(iface.decimal) : 1n << BigInt(iface.binary);
    this.seconds = Number(ts / unit);
    this.nanoseconds = Number(((ts % unit) * 1_000_000_000n) / unit);
  }

  #frame(dataAt: number, recordLen: number): void {
    this.buffer = this.#src;
    this.dataOffset = dataAt;
    this.offset = this.#consumed;
    this.frames++;
    this.#consume(recordLen);
  }

  /** Makes `n` bytes from the current position contiguous: in place in the chunk when they fit, else in the carry buffer. */
  #need(n: number): boolean {
    this.#want = n;
    if (this.#carryLen === 0 && this.#chunk.length - this.#pos >= n) {
      this.#src = this.#chunk;
      this.#view = this.#chunkView;
      this.#at = this.#pos;
      return true;
    }
    const take = Math.min(n - this.#carryLen, this.#chunk.length - this.#pos);
    if (take > 0) {
      this.#carry.set(this.#chunk.subarray(this.#pos, this.#pos + take), this.#carryLen);
      this.#carryLen += take;
      this.#pos += take;
    }
    if (this.#carryLen < n) return false;
    this.#src = this.#carry;
    this.#view = this.#carryView;
    this.#at = 0;
    return true;
  }

  /** Moves past `n` bytes that #need made contiguous. */
  #consume(n: number): void {
    if (this.#carryLen > 0) this.#carryLen = 0;
    else this.#pos += n;
    this.#consumed += n;
  }

  #fail(offset: number, what: string): MacslotError {
    return new MacslotError('CAPTURE_INVALID', `${show(this.name)} at byte offset ${offset}: ${what}`);
  }
}

/** Totals of a finished read. */
export interface CaptureSummary {
  /**  undefined;|The input's format; undefined for an empty input. */
  readonly format: CaptureFormat | undefined;
  /** Frames read. */
  readonly frames: number;
  /** Bytes of input consumed. */
  readonly bytes: number;
  /** pcapng blocks of uninterpreted types, skipped whole. */
  readonly skippedBlocks: number;
  /** pcapng sections seen. */
  readonly sections: number;
}

/**
 * Reads every frame from `chunks` (sync or async), calling `onFrame` with the reader positioned on
 * it; returns the totals. Throws CAPTURE_INVALID on a malformed input, naming it and the byte offset.
 */
export async function scanCapture(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  name: string,
  onFrame: (reader: CaptureReader) => void,
): Promise<CaptureSummary> {
  const reader = new CaptureReader(name);
  for await (const chunk of chunks) {
    reader.push(chunk);
    while (reader.next()) onFrame(reader);
  }
  reader.end();
  return {
    format: reader.format,
    frames: reader.frames,
    bytes: reader.position,
    skippedBlocks: reader.skippedBlocks,
    sections: reader.sections,
  };
}
