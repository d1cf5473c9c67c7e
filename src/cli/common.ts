// Command line: what several subcommands share (configuration files, output streams, the progress bar, frame building).

import { createReadStream, readFileSync, readSync, writeSync } from 'node:fs';
import { CaptureWriter, type CaptureWriterOptions } from '../capture/writer.js';
import { buildFromConfig, loadConfig, type ConfiguredNic, type MacslotConfig } from '../config/config.js';
import { DataPlane, type DataPlaneOptions } from '../dataplane/dataplane.js';
import { MacslotError, isMacslotError, show } from '../errors.js';
import { AtomicFile, CaptureFile } from '../node/capture.js';

/** The file name that means standard input (for a capture read) or standard output (for a capture written). */
export const STDIO = '-';

/** A bad command line (missing or malformed option or argument): the command exits 2 and shows its help. */
export class UsageError extends MacslotError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/** Returns true for the error of a write to a pipe whose reader has gone (`macslot … | head`). */
export function isBrokenPipe(err: unknown): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === 'EPIPE';
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `data` to `fd` synchronously, so output never piles up in memory whatever the reader's pace.
 * Waits and retries while a non-blocking pipe is full; throws the system's error (EPIPE included) otherwise.
 */
export function writeFully(fd: number, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  for (let off = 0; off < bytes.length; ) {
    try {
      off += writeSync(fd, bytes, off, bytes.length - off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

/** Reads what is available into `buffer` (waiting while a non-blocking pipe is empty); returns the byte count, 0 at the end. */
export function readSome(fd: number, buffer: Uint8Array): number {
  for (;;) {
    try {
      return readSync(fd, buffer, 0, buffer.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

/** Returns the bytes of the capture at `path` (standard input for `-`) as an async iterable of chunks. */
export function captureInput(path: string): AsyncIterable<Uint8Array> {
  return path === STDIO ? process.stdin : createReadStream(path, { highWaterMark: 1 << 20 });
}

/** A capture being written: to a file that appears under its name on `commit()`, or to standard output for `-`. */
export interface CaptureOutput {
  readonly writer: CaptureWriter;
  /** Flushes the frames and makes the file appear (a no-op beyond flushing for standard output). */
  commit(): void;
  /** Discards a file not yet committed. Never throws. */
  abort(): void;
}

/** Opens the capture output `path`, or standard output for `-`; throws INVALID_ARGUMENT on a bad option or the file system's error. */
export function captureOutput(path: string, options: CaptureWriterOptions): CaptureOutput {
  if (path !== STDIO) return new CaptureFile(path, options);
  const writer = new CaptureWriter((bytes) => writeFully(1, bytes), options);
  return { writer, commit: () => void writer.close(), abort: () => {} };
}

/** Where a subcommand writes; tests pass their own. */
export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** True when stderr is a terminal: only then is a progress bar drawn. */
  readonly tty: boolean;
}

/** A byte stream being written: to a file that appears under its name on `commit()`, or to standard output for `-`. */
export interface ByteOutput {
  /** Appends bytes; throws the system's error. */
  write(bytes: Uint8Array): void;
  /** Makes the file appear under its name (nothing to do for standard output). */
  commit(): void;
  /** Discards a file not yet committed. Never throws. */
  abort(): void;
}

/** Opens `path` for writing under a temporary name, or standard output for `-`; throws the file system's error. */
export function byteOutput(path: string): ByteOutput {
  if (path !== STDIO) return new AtomicFile(path);
  return { write: (bytes) => writeFully(1, bytes), commit: () => {}, abort: () => {} };
}

/** Returns the validated configuration in `path`; throws CONFIG_INVALID naming the file and the JSON path. */
export function readConfigFile(path: string): MacslotConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new MacslotError('CONFIG_INVALID', `cannot read ${show(path)}: ${(err as Error).message}`);
  }
  try {
    return loadConfig(text, path);
  } catch (err) {
    if (isMacslotError(err, 'CONFIG_INVALID'))
      throw new MacslotError('CONFIG_INVALID', `${path}: ${err.message.replace(/^CONFIG_INVALID: /, '')}`);
    throw err;
  }
}

/** Builds the NIC of the configuration in `path`; throws CONFIG_INVALID naming the file and the JSON path. */
export function nicFromFile(path: string, options: { vlans?: boolean } = {}): ConfiguredNic {
  const config = readConfigFile(path);
  try {
    return buildFromConfig(config, options);
  } catch (err) {
    if (isMacslotError(err, 'CONFIG_INVALID'))
      throw new MacslotError('CONFIG_INVALID', `${path}: ${err.message.replace(/^CONFIG_INVALID: /, '')}`);
    throw err;
  }
}

/**
 * Creates the Wasm data plane of a configured NIC: with its VLANs applied (frames arrive on the wire, port `'uplink'`) when
 * the file uses them, so it classifies on (MAC, VID) and counts `drop-vlan`.
 */
export async function dataPlaneFor(configured: ConfiguredNic, options: Omit<DataPlaneOptions, 'vlans'>): Promise<DataPlane> {
  const dp = await DataPlane.create(configured.nic, { ...options, vlans: configured.vlans !== undefined });
  try {
    if (configured.vlans !== undefined) dp.setVlans(configured.vlans, 'uplink');
  } catch (err) {
    dp.close();
    if (isMacslotError(err, 'INVALID_ARGUMENT'))
      throw new MacslotError(
        'CONFIG_INVALID',
        `the wire's VLANs (nic.vlans, default every client VLAN and 1): ${err.message.replace(/^INVALID_ARGUMENT: /, '')}`,
      );
    throw err;
  }
  return dp;
}

/** Returns a required option's value; throws INVALID_ARGUMENT naming the option when it is missing. */
export function required<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new UsageError(`missing ${name}`);
  return value;
}

/** Returns a positive integer option; throws INVALID_ARGUMENT with the bad value. */
export function intOption(value: string | undefined, name: string, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`${name} ${show(value)} is not an integer in ${min}..${max}`);
  return n;
}

/** Formats a count with thousands separators, the same in every locale. */
export function count(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * Returns a progress reporter that draws `[=====>    ] 45%  120.3 MB/s  1.50 Mfps  ETA 3s` on a
 * terminal at most ten times a second, and does nothing when stderr is not a terminal.
 */
export function progressBar(io: Io, total: number): { update(done: number, frames: number): void; done(): void } {
  if (!io.tty || total <= 0) return { update() {}, done() {} };
  const start = performance.now();
  let last = 0;
  let drawn = false;
  return {
    update(done, frames) {
      const now = performance.now();
      if (now - last < 100) return;
      last = now;
      const secs = Math.max((now - start) / 1000, 1e-3);
      const frac = Math.min(done / total, 1);
      const width = 30;
      const fill = Math.round(frac * width);
      const bar = '='.repeat(Math.max(fill - 1, 0)) + (fill > 0 ? '>' : '') + ' '.repeat(width - fill);
      const rate = done / secs;
      const eta = rate > 0 ? Math.ceil((total - done) / rate) : 0;
      io.err(
        `\r\x1b[2K[${bar}] ${(frac * 100).toFixed(0).padStart(3)}%  ${(rate / 1e6).toFixed(1)} MB/s  ${(frames / secs / 1e6).toFixed(2)} ` +
          `Mfps  ETA ${eta}s`,
      );
      drawn = true;
    },
    done() {
      if (drawn) io.err('\r\x1b[2K');
    },
  };
}
