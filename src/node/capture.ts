// Node helpers: capture files on disk, read as a stream of chunks and written under a temporary name until complete.

import { closeSync, createReadStream, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { scanCapture, type CaptureReader, type CaptureSummary } from '../capture/reader.js';
import { CaptureWriter, type CaptureWriterOptions } from '../capture/writer.js';
import { MacslotError, show } from '../errors.js';

/** Returns a file's bytes as an async iterable of chunks (1 MiB by default); opening errors surface on iteration. */
export function captureChunks(path: string, options: { chunkBytes?: number } = {}): AsyncIterable<Uint8Array> {
  return createReadStream(path, { highWaterMark: options.chunkBytes ?? 1 << 20 });
}

/**
 * Reads every frame of the pcap or pcapng file at `path` in constant memory, calling `onFrame` with
 * the reader on each; returns the totals. Throws CAPTURE_INVALID naming the file and byte offset.
 */
export function readCaptureFile(path: string, onFrame: (reader: CaptureReader) => void, options: { chunkBytes?: number } = {}): Promise<CaptureSummary> {
  return scanCapture(captureChunks(path, options), path, onFrame);
}

/**
 * A file written under a hidden temporary name in the same directory and renamed onto `path` by
 * `commit()`, so an interrupted run never leaves a partial file under the real name.
 */
export class AtomicFile {
  readonly path: string;
  readonly tempPath: string;
  #fd: number | undefined;

  /** Creates the temporary file; throws the file system's error when the directory is not writable. */
  constructor(path: string) {
    this.path = path;
    this.tempPath = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.partial`);
    this.#fd = openSync(this.tempPath, 'wx', 0o644);
  }

  /** Appends bytes; throws INVALID_ARGUMENT after commit or abort. */
  write(bytes: Uint8Array): void {
    const fd = this.#fd;
    if (fd === undefined) throw new MacslotError('INVALID_ARGUMENT', `${show(this.path)} is already committed or aborted`);
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
  }

  /** Closes the file and renames it into place; with `durable`, syncs it to disk first. Idempotent once done. */
  commit(options: { durable?: boolean } = {}): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    if (options.durable) fsyncSync(fd);
    closeSync(fd);
    renameSync(this.tempPath, this.path);
  }

  /** Closes and deletes the temporary file; never throws. */
  abort(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    try {
      closeSync(fd);
    } catch {
      // Already closed by the OS; the unlink below still matters.
    }
    try {
      unlinkSync(this.tempPath);
    } catch {
      // Nothing left to remove.
    }
  }
}

/** A capture file being written: frames go to `writer`; `commit()` makes it appear under its name. */
export class CaptureFile {
  readonly writer: CaptureWriter;
  readonly file: AtomicFile;

  /** Starts the capture at a temporary name; throws INVALID_ARGUMENT on a bad option or the file system's error. */
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
