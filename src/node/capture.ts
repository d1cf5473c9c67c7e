// Node helpers: capture files on disk, read as a stream of chunks and written by the output rule (see output-file.ts).

import { createReadStream } from 'node:fs';
import { scanCapture, type CaptureReader, type CaptureSummary } from '../capture/reader.js';
import { CaptureWriter, type CaptureWriterOptions } from '../capture/writer.js';
import { AtomicFile } from './output-file.js';

export { AtomicFile } from './output-file.js';

/** Returns a file's bytes as an async iterable of chunks (1 MiB by default); opening errors surface on iteration. */
export function captureChunks(path: string, options: { chunkBytes?: number } = {}): AsyncIterable<Uint8Array> {
  return createReadStream(path, { highWaterMark: options.chunkBytes ?? 1 << 20 });
}

/**
 * Reads every frame of the pcap or pcapng file at `path` in constant memory, calling `onFrame` with
 * the reader on each; returns the totals. Throws CAPTURE_INVALID naming the file and byte offset.
 */
export function readCaptureFile(
  path: string,
  onFrame: (reader: CaptureReader) => void,
  options: { chunkBytes?: number } = {},
): Promise<CaptureSummary> {
  return scanCapture(captureChunks(path, options), path, onFrame);
}

/**
 * A capture file being written: frames go to `writer`; `commit()` makes it appear under its name. It
 * follows the output rule of `AtomicFile`: a symlink is followed, a FIFO or character device (say
 * `/dev/stdout`) is written as a stream, and a dangling link, directory, socket or block device is
 * refused with INVALID_ARGUMENT naming the path.
 */
export class CaptureFile {
  /** Where the frames go. */
  readonly writer: CaptureWriter;
  /** The file being written. */
  readonly file: AtomicFile;

  /** Starts the capture at a temporary name; throws INVALID_ARGUMENT on a bad option or a refused path, or the file system's error. */
  constructor(path: string, options: CaptureWriterOptions = {}) {
    this.file = new AtomicFile(path);
    const file = this.file;
    try {
      this.writer = new CaptureWriter((bytes) => file.write(bytes), options);
    } catch (err) {
      file.abort();
      throw err;
    }
  }

  /** Flushes, closes and renames into place; returns the file's size in bytes. */
  commit(options: { durable?: boolean } = {}): number {
    const size = this.writer.close();
    this.file.commit(options);
    return size;
  }

  /** Discards the partial file. Never throws. */
  abort(): void {
    this.file.abort();
  }
}
