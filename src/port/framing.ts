// Ports: length-prefixed frame codecs for byte streams (QEMU stream and socket: u32 BE; vde_plug stdio: u16 BE).

import { MacslotError, show } from '../errors.js';

/** QEMU's NET_BUFSIZE: a stream peer announcing a longer frame is broken or hostile, and QEMU itself drops the connection. */
export const QEMU_MAX_FRAME = 4096 + 65536;
/** The most a 16-bit length prefix can announce. */
export const VDE_MAX_FRAME = 0xffff;

/** How a stream frames packets: prefix width in bytes and the longest frame the framing allows. */
export interface StreamFraming {
  /**  4;|Width of the big-endian length prefix. */
  readonly prefixBytes: 2 | 4;
  /** Longest frame the framing allows. */
  readonly maxFrame: number;
}

/** The framing of QEMU `-netdev stream` and the legacy `-netdev socket` (and passt). */
export const QEMU_FRAMING: StreamFraming = Object.freeze({ prefixBytes: 4, maxFrame: QEMU_MAX_FRAME });
/** The framing of vde_plug on its standard input and output. */
export const VDE_FRAMING: StreamFraming = Object.freeze({ prefixBytes: 2, maxFrame: VDE_MAX_FRAME });

/** Returns `frame` with its length prefix, in a new buffer. Throws INVALID_ARGUMENT when the frame is longer than the framing allows. */
export function encodeFrame(framing: StreamFraming, frame: Uint8Array): Uint8Array {
  if (frame.length > framing.maxFrame)
    throw new MacslotError('INVALID_ARGUMENT', `frame of ${show(frame.length)} bytes is longer than the framing's ${framing.maxFrame}`);
  const out = new Uint8Array(framing.prefixBytes + frame.length);
  const n = frame.length;
  if (framing.prefixBytes === 4) {
    out[0] = n >>> 24;
    out[1] = (n >>> 16) & 0xff;
    out[2] = (n >>> 8) & 0xff;
    out[3] = n & 0xff;
  } else {
    out[0] = n >>> 8;
    out[1] = n & 0xff;
  }
  out.set(frame, framing.prefixBytes);
  return out;
}

/**
 * Splits a byte stream into frames. Chunks may cut prefixes and frames anywhere. A frame handed to
 * `onFrame` is a view valid only during the call. After a length above the framing's maximum the
 * decoder is broken for good: the stream can no longer be resynchronised, so its peer must be closed.
 */
export class FrameDecoder {
  /** The framing decoded. */
  readonly framing: StreamFraming;
  readonly #onFrame: (frame: Uint8Array) => void;
  readonly #onRange: ((bytes: Uint8Array, start: number, end: number) => void) | undefined;
  // Holds a partial frame (or prefix) across chunks; grown only up to the announced length.
  #buf: Uint8Array = new Uint8Array(0);
  #have = 0;
  #need = -1;
  #prefix = new Uint8Array(4);
  #prefixHave = 0;
  #broken: number | undefined;

  /**
   * Creates a decoder that calls `onFrame` with each complete frame; given `onRange`, it calls that instead with the
   * frame's place, `bytes[start, end)` (valid only during the call), so no frame costs a view.
   */
  constructor(
    framing: StreamFraming,
    onFrame: (frame: Uint8Array) => void,
    onRange?: (bytes: Uint8Array, start: number, end: number) => void,
  ) {
    this.framing = framing;
    this.#onFrame = onFrame;
    this.#onRange = onRange;
  }

  /** The bogus length that broke the stream, or undefined while it is healthy. */
  get broken(): number | undefined {
    return this.#broken;
  }

  /** Bytes of an incomplete frame or prefix held back: non-zero when the stream ends, the last frame was truncated. */
  get pending(): number {
    return this.#need < 0 ? this.#prefixHave : this.framing.prefixBytes + this.#have;
  }

  /**
   * Feeds a chunk; returns false (and ignores the rest, now and later) once a length above the maximum arrives. Never throws on any input.
   */
  push(chunk: Uint8Array): boolean {
    if (this.#broken !== undefined) return false;
    const pb = this.framing.prefixBytes;
    let i = 0;
    while (i < chunk.length) {
      if (this.#need < 0) {
        // Fast path: a whole frame inside the chunk is passed as a view, without copying.
        if (this.#prefixHave === 0 && chunk.length - i >= pb) {
          const n =
            pb === 4
              ? ((chunk[i]! << 24) | (chunk[i + 1]! << 16) | (chunk[i + 2]! << 8) | chunk[i + 3]!) >>> 0
              : (chunk[i]! << 8) | chunk[i + 1]!;
          if (n > this.framing.maxFrame) return this.#break(n);
          if (chunk.length - i - pb >= n) {
            if (this.#onRange !== undefined) this.#onRange(chunk, i + pb, i + pb + n);
            else this.#onFrame(chunk.subarray(i + pb, i + pb + n));
            i += pb + n;
            continue;
          }
          this.#start(n);
          i += pb;
          continue;
        }
        this.#prefix[this.#prefixHave++] = chunk[i++]!;
        if (this.#prefixHave < pb) continue;
        const p = this.#prefix;
        const n = pb === 4 ? ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0 : (p[0]! << 8) | p[1]!;
        this.#prefixHave = 0;
        if (n > this.framing.maxFrame) return this.#break(n);
        this.#start(n);
        if (n === 0) this.#finish();
        continue;
      }
      const take = Math.min(this.#need - this.#have, chunk.length - i);
      this.#buf.set(chunk.subarray(i, i + take), this.#have);
      this.#have += take;
      i += take;
      if (this.#have === this.#need) this.#finish();
    }
    return true;
  }

  #start(n: number): void {
    if (this.#buf.length < n) this.#buf = new Uint8Array(Math.max(n, Math.min(this.#buf.length * 2, this.framing.maxFrame)));
    this.#need = n;
    this.#have = 0;
  }

  #finish(): void {
    const n = this.#need;
    this.#need = -1;
    this.#have = 0;
    if (this.#onRange !== undefined) this.#onRange(this.#buf, 0, n);
    else this.#onFrame(this.#buf.subarray(0, n));
  }

  #break(n: number): false {
    this.#broken = n;
    this.#buf = new Uint8Array(0);
    return false;
  }
}
