// Capture files: a batch of frames described in typed arrays, filled by `CaptureReader.nextBatch` without a call or an
// object per frame.

import { MacslotError, show } from '../errors.js';
import { MAX_BLOCK } from './format.js';

/** Where a `FrameBatch` keeps its frames. */
export interface FrameBatchOptions {
  /**
   * Bytes the frames are described in. Chunks pushed into the reader that are views of this same memory are used in place
   * (zero-copy); any other frame is copied into the spill area. Default: a buffer of its own holding just the spill area.
   */
  store?: Uint8Array;
  /** Where the spill area starts in `store`. Default 0. */
  spillOffset?: number;
  /** Bytes of the spill area; at least one largest block. Default `MAX_BLOCK`. */
  spillBytes?: number;
  /** Pairs of (offset into `store`, captured length), one pair per frame; e.g. a data plane's `descriptors`. Default its own. */
  descriptors?: Uint32Array;
}

/**
 * Up to `capacity` frames, one slot per frame across typed arrays: frame `i` is
 * `store[descriptors[2i], descriptors[2i] + descriptors[2i + 1])`, with its wire length, timestamp, link type and the
 * input offset of its record. `reset()` empties it; the frames stay valid until the reader is given its next chunk.
 */
export class FrameBatch {
  /** Most frames held. */
  readonly capacity: number;
  /** Bytes the frames lie in. */
  readonly store: Uint8Array;
  /** Pairs of (offset into `store`, captured length). */
  readonly descriptors: Uint32Array;
  /** Length of each frame on the wire. */
  readonly originalLength: Uint32Array;
  /** Whole seconds of each frame's timestamp. */
  readonly seconds: Float64Array;
  /** Nanoseconds past `seconds`, below 10^9. */
  readonly nanoseconds: Uint32Array;
  /** Link type of each frame's interface. */
  readonly linkType: Uint32Array;
  /** Byte offset in the input where each frame's record or block starts. */
  readonly offset: Float64Array;
  /**
   * Where each frame's whole little-endian pcap record (16-byte header, then the frame) starts in `store`, or -1 when the
   * frame is not held as such a record. Such records are in the resolution `recordFormat` names.
   */
  readonly record: Int32Array;
  /** The resolution of the records `record` points at: `pcap` (microseconds) or `pcap-ns`. */
  recordFormat: 'pcap' | 'pcap-ns' = 'pcap';
  /** Frames held. */
  count = 0;
  /** Where the spill area starts in `store`. */
  readonly spillOffset: number;
  /** Bytes of the spill area. */
  readonly spillBytes: number;
  /** Bytes of the spill area in use. */
  spillUsed = 0;

  /** Creates an empty batch; throws INVALID_ARGUMENT when the areas do not fit their memory. */
  constructor(capacity: number, options: FrameBatchOptions = {}) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 24)
      throw new MacslotError('INVALID_ARGUMENT', `batch capacity ${show(capacity)} is not 1..${1 << 24}`);
    const spillBytes = options.spillBytes ?? MAX_BLOCK;
    const spillOffset = options.spillOffset ?? 0;
    const store = options.store ?? new Uint8Array(spillOffset + spillBytes);
    const descriptors = options.descriptors ?? new Uint32Array(2 * capacity);
    if (!Number.isInteger(spillBytes) || spillBytes < MAX_BLOCK)
      throw new MacslotError('INVALID_ARGUMENT', `spill area of ${show(spillBytes)} bytes is below one largest block (${MAX_BLOCK})`);
    if (!Number.isInteger(spillOffset) || spillOffset < 0 || spillOffset + spillBytes > store.length) {
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `spill area ${show({ spillOffset, spillBytes })} is outside its ${store.length}-byte store`,
      );
    }
    if (descriptors.length < 2 * capacity)
      throw new MacslotError('INVALID_ARGUMENT', `${descriptors.length} descriptor words cannot describe ${capacity} frames`);
    this.capacity = capacity;
    this.store = store;
    this.descriptors = descriptors;
    this.spillOffset = spillOffset;
    this.spillBytes = spillBytes;
    this.originalLength = new Uint32Array(capacity);
    this.seconds = new Float64Array(capacity);
    this.nanoseconds = new Uint32Array(capacity);
    this.linkType = new Uint32Array(capacity);
    this.offset = new Float64Array(capacity);
    this.record = new Int32Array(capacity);
  }

  /** Empties the batch (its spill area included). */
  reset(): void {
    this.count = 0;
    this.spillUsed = 0;
  }

  /** Where `chunk` starts in `store`, or -1 when it is not a view inside it. */
  baseOf(chunk: Uint8Array): number {
    const s = this.store;
    if (chunk.buffer !== s.buffer) return -1;
    const at = chunk.byteOffset - s.byteOffset;
    return at >= 0 && at + chunk.length <= s.length ? at : -1;
  }
}
