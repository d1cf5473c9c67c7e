// Output files: the one rule for every file written to disk. Symlinks are followed, never replaced; a
// regular file is replaced atomically in its own directory; a FIFO or character device is written as a
// stream; a dangling link, a directory, a socket or a block device is refused with an error naming it.

import * as nodeFs from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { MacslotError, show, type MacslotErrorCode } from '../errors.js';

/** What the rule needs to know about a file; Node's `fs.Stats` fits. */
export interface OutputStats {
  /** Permission and type bits. */
  readonly mode: number;
  /** True for a regular file. */
  isFile(): boolean;
  /** True for a directory. */
  isDirectory(): boolean;
  /** True for a symbolic link (from lstat). */
  isSymbolicLink(): boolean;
  /** True for a FIFO. */
  isFIFO(): boolean;
  /** True for a character device. */
  isCharacterDevice(): boolean;
  /** True for a block device. */
  isBlockDevice(): boolean;
  /** True for a socket. */
  isSocket(): boolean;
}

/** The file operations output files use; Node's `fs` fits, and any subset can be replaced to inject faults. */
export interface OutputFileSystem {
  /** Opens a file; returns its descriptor. */
  openSync(path: string, flags: string | number, mode?: number): number;
  /** Writes bytes; returns how many were written. */
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number;
  /** Flushes a file to disk. */
  fsyncSync(fd: number): void;
  /** Sets an open file's permissions. */
  fchmodSync(fd: number, mode: number): void;
  /** Closes a descriptor. */
  closeSync(fd: number): void;
  /** Renames a file, replacing the target. */
  renameSync(from: string, to: string): void;
  /** Deletes a file. */
  unlinkSync(path: string): void;
  /** Returns the names in a directory. */
  readdirSync(path: string): string[];
  /** Describes a path without following a final symbolic link. */
  lstatSync(path: string): OutputStats;
  /** Describes a path, following symbolic links. */
  statSync(path: string): OutputStats;
  /** Returns a symbolic link's target. */
  readlinkSync(path: string): string;
  /** Returns the path with every symbolic link resolved. */
  realpathSync(path: string): string;
}

/** Where an output's bytes go, as `resolveOutput` found it. */
export interface OutputTarget {
  /** The path as given, made absolute. */
  readonly path: string;
  /** The file written: `path` itself, or the end of its chain of symlinks. */
  readonly target: string;
  /**
   * `new`: nothing exists there yet, it is created atomically; `file`: a regular file, replaced
   * atomically in its own directory; `stream`: a FIFO, a character device, or an alias of an open
   * descriptor (`/dev/stdout`, `/proc/self/fd/N`), written in place, front to back.
   */
  readonly kind: 'new' | 'file' | 'stream';
  /** Permission bits of the file being replaced, kept by its replacement. */
  readonly mode: number | undefined;
  /** For a stream onto a regular file (another process's descriptor alias): append, as the descriptor's owner does. */
  readonly append: boolean;
  /** The descriptor of this process the path names (`/dev/stdout`, `/dev/fd/N`): written through it, never closed. */
  readonly fd: number | undefined;
}

/** Options of `resolveOutput`, `AtomicFile` and `writeFileAtomic`. */
export interface OutputOptions {
  /** File operations; default Node's fs. Missing members are Node's. */
  fs?: Partial<OutputFileSystem>;
  /** Error code of a refused path. Default INVALID_ARGUMENT. */
  code?: MacslotErrorCode;
}

/** Options of an `AtomicFile`. */
export interface AtomicFileOptions extends OutputOptions {
  /** Permission bits of a new file (before the umask). Default 0o644; a replaced file keeps its own. */
  mode?: number;
  /**
   * Name of the temporary file in the target's directory, given the target's name. Default
   * `.<name>.<host>.<pid>.<random>.partial`; with the default, partial files of dead processes on this
   * host are removed when the next one for the same name is opened.
   */
  tempName?: (name: string) => string;
}

const HOST = hostname();
const PAUSE = new Int32Array(new SharedArrayBuffer(4));
const MAX_HOPS = 40;

function errno(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : show(err);
}

function withNode(fs: Partial<OutputFileSystem> | undefined): OutputFileSystem {
  const base = nodeFs as unknown as OutputFileSystem;
  return fs === undefined ? base : { ...base, ...fs };
}

function refuse(code: MacslotErrorCode, path: string, why: string): MacslotError {
  return new MacslotError(code, `${show(path)} ${why}`);
}

/** Names what kind of non-regular file `st` is, or undefined for a regular file, FIFO or character device. */
function refusedKind(st: OutputStats): string | undefined {
  if (st.isFile() || st.isFIFO() || st.isCharacterDevice()) return undefined;
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * Walks the chain of links from `path`: `alias` when one lives in /proc (an open descriptor's alias, not
 * a name to rename over), with `fd` when that descriptor is this process's own.
 */
function viaDescriptor(fs: OutputFileSystem, path: string): { alias: boolean; fd: number | undefined } {
  let cur = path;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    let link: string;
    try {
      if (!fs.lstatSync(cur).isSymbolicLink()) break;
      const dir = fs.realpathSync(dirname(cur));
      if (dir === '/proc' || dir.startsWith('/proc/')) {
        const own = dir === `/proc/${process.pid}/fd` && /^\d+$/.test(basename(cur));
        return { alias: true, fd: own ? Number(basename(cur)) : undefined };
      }
      link = fs.readlinkSync(cur);
    } catch {
      break;
    }
    cur = isAbsolute(link) ? link : resolve(dirname(cur), link);
  }
  return { alias: false, fd: undefined };
}

/** Refuses a new file whose nearest existing ancestor is a dangling symlink (an unmounted volume, say). */
function danglingAncestor(fs: OutputFileSystem, code: MacslotErrorCode, abs: string): void {
  for (let d = dirname(abs); ; d = dirname(d)) {
    try {
      if (!fs.lstatSync(d).isSymbolicLink()) return;
    } catch (err) {
      if (errno(err) === 'ENOENT' && dirname(d) !== d) continue;
      return;
    }
    try {
      fs.statSync(d);
    } catch (err) {
      if (errno(err) === 'ENOENT') throw refuse(code, abs, `lies under ${show(d)}, a symbolic link to something that does not exist`);
    }
    return;
  }
}

/**
 * Applies the output rule to `path` and returns where its bytes go. Follows symlinks (the link stays a
 * link); refuses a dangling link, a link loop, a directory, a socket and a block device with
 * `options.code` (default INVALID_ARGUMENT) naming the path. Never creates or changes anything.
 */
export function resolveOutput(path: string, options: OutputOptions = {}): OutputTarget {
  const fs = withNode(options.fs);
  const code = options.code ?? 'INVALID_ARGUMENT';
  const abs = resolve(path);
  let st: OutputStats;
  try {
    st = fs.lstatSync(abs);
  } catch (err) {
    if (errno(err) !== 'ENOENT') throw refuse(code, abs, `cannot be inspected: ${message(err)}`);
    danglingAncestor(fs, code, abs);
    return { path: abs, target: abs, kind: 'new', mode: undefined, append: false, fd: undefined };
  }
  if (st.isSymbolicLink()) {
    try {
      st = fs.statSync(abs);
    } catch (err) {
      const e = errno(err);
      let to = '?';
      try {
        to = fs.readlinkSync(abs);
      } catch {
        // The link vanished meanwhile; the message still names the path.
      }
      if (e === 'ENOENT' || e === 'ENOTDIR')
        throw refuse(
          code,
          abs,
          `is a symbolic link to ${show(to)}, which does not exist (a dangling link is never read as empty nor replaced)`,
        );
      if (e === 'ELOOP') throw refuse(code, abs, 'is a loop of symbolic links');
      throw refuse(code, abs, `is a symbolic link whose target cannot be inspected: ${message(err)}`);
    }
    // This process's own descriptor (a pipe, a socket, a redirected file): written through, sharing its offset.
    const via = viaDescriptor(fs, abs);
    if (via.fd !== undefined && !st.isDirectory())
      return { path: abs, target: abs, kind: 'stream', mode: undefined, append: false, fd: via.fd };
    if (via.alias && st.isFile()) return { path: abs, target: abs, kind: 'stream', mode: undefined, append: true, fd: undefined };
  }
  const bad = refusedKind(st);
  if (bad !== undefined) throw refuse(code, abs, `is ${bad}; output files are never written over one`);
  if (!st.isFile()) return { path: abs, target: abs, kind: 'stream', mode: undefined, append: false, fd: undefined };
  const linked = fs.lstatSync(abs).isSymbolicLink();
  let target = abs;
  if (linked) {
    try {
      target = fs.realpathSync(abs);
    } catch (err) {
      throw refuse(code, abs, `is a symbolic link whose target cannot be resolved: ${message(err)}`);
    }
  }
  return { path: abs, target, kind: 'file', mode: st.mode & 0o7777, append: false, fd: undefined };
}

function defaultTemp(name: string): string {
  return `.${name}.${HOST}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.partial`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errno(err) !== 'ESRCH';
  }
}

/** Removes default-named partial files for `name` in `dir` left by dead processes of this host. */
function sweepPartials(fs: OutputFileSystem, dir: string, name: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const head = `.${name}.${HOST}.`;
  for (const n of names) {
    if (!n.startsWith(head)) continue;
    const m = /^(\d+)\.[a-z0-9]+\.partial$/.exec(n.slice(head.length));
    const pid = m === null ? 0 : Number(m[1]);
    if (pid <= 0 || pid === process.pid || alive(pid)) continue;
    try {
      fs.unlinkSync(join(dir, n));
    } catch {
      // Gone already, or not ours to remove.
    }
  }
}

/**
 * A file written by the output rule (see `resolveOutput`). A new or regular file is written under a
 * temporary name in the target's directory and renamed onto the target by `commit()`, so an
 * interrupted run never leaves a partial file under the real name and a symlink stays a link. A FIFO
 * or character device is opened and written in place; `commit()` closes it.
 */
export class AtomicFile {
  /** The path as given, made absolute. */
  readonly path: string;
  /** Where the bytes go and how. */
  readonly output: OutputTarget;
  /** The temporary file, or undefined when the target is written as a stream. */
  readonly tempPath: string | undefined;
  readonly #fs: OutputFileSystem;
  readonly #code: MacslotErrorCode;
  #fd: number | undefined;
  #committed = false;
  /** The descriptor is this process's own (standard output, say): never closed here. */
  #borrowed = false;

  /** Applies the rule and opens the temporary file (or the stream); throws its refusal or the file system's error. */
  constructor(path: string, options: AtomicFileOptions = {}) {
    const fs = withNode(options.fs);
    this.#fs = fs;
    this.#code = options.code ?? 'INVALID_ARGUMENT';
    const out = resolveOutput(path, options);
    this.path = out.path;
    this.output = out;
    if (out.kind === 'stream') {
      const c = nodeFs.constants;
      this.tempPath = undefined;
      if (out.fd !== undefined) {
        this.#fd = out.fd;
        this.#borrowed = true;
        return;
      }
      // No O_CREAT: if the FIFO or device vanished meanwhile, failing beats creating a regular file in its place.
      this.#fd = fs.openSync(out.target, c.O_WRONLY | (c.O_NOCTTY ?? 0) | (out.append ? c.O_APPEND : 0));
      return;
    }
    const dir = dirname(out.target);
    const name = basename(out.target);
    if (options.tempName === undefined) sweepPartials(fs, dir, name);
    this.tempPath = join(dir, (options.tempName ?? defaultTemp)(name));
    const fd = fs.openSync(this.tempPath, 'wx', options.mode ?? 0o644);
    this.#fd = fd;
    if (out.mode !== undefined) {
      try {
        fs.fchmodSync(fd, out.mode);
      } catch (err) {
        this.abort();
        throw err;
      }
    }
  }

  /** True once the bytes are in place under the target's name (or the stream is closed). */
  get committed(): boolean {
    return this.#committed;
  }

  /** Appends bytes; throws INVALID_ARGUMENT after commit or abort, or the file system's error. */
  write(bytes: Uint8Array): void {
    const fd = this.#fd;
    if (fd === undefined) throw new MacslotError('INVALID_ARGUMENT', `${show(this.path)} is already committed or aborted`);
    for (let off = 0; off < bytes.length; ) {
      try {
        off += this.#fs.writeSync(fd, bytes, off, bytes.length - off, null);
      } catch (err) {
        // A borrowed descriptor may be a non-blocking pipe: wait for its reader rather than buffer without bound.
        if (errno(err) !== 'EAGAIN') throw err;
        Atomics.wait(PAUSE, 0, 0, 1);
      }
    }
  }

  /**
   * Closes the file and renames it onto the target; with `durable`, syncs the file first and the
   * directory after. Refuses (deleting the temporary file) when something other than a regular file
   * took the target's place meanwhile. Idempotent once done; on failure nothing is left behind.
   */
  commit(options: { durable?: boolean } = {}): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    const fs = this.#fs;
    const temp = this.tempPath;
    try {
      try {
        if (options.durable === true && temp !== undefined) fs.fsyncSync(fd);
      } finally {
        if (!this.#borrowed) fs.closeSync(fd);
      }
      if (temp === undefined) {
        this.#committed = true;
        return;
      }
      this.#recheck();
      fs.renameSync(temp, this.output.target);
    } catch (err) {
      if (temp !== undefined) this.#unlinkQuiet(temp);
      throw err;
    }
    this.#committed = true;
    if (options.durable === true) this.syncDirectory();
  }

  /** Syncs the target's directory, so a rename survives a power cut; a no-op on Windows and for streams. */
  syncDirectory(): void {
    if (process.platform === 'win32' || this.tempPath === undefined) return;
    const fs = this.#fs;
    const dfd = fs.openSync(dirname(this.output.target), 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  }

  /** Closes and deletes the temporary file (a stream is only closed); never throws. */
  abort(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    try {
      if (!this.#borrowed) this.#fs.closeSync(fd);
    } catch {
      // Already closed by the OS; the unlink below still matters.
    }
    if (this.tempPath !== undefined) this.#unlinkQuiet(this.tempPath);
  }

  /** The target must still be absent or a regular file: a rename never replaces anything else. */
  #recheck(): void {
    let st: OutputStats;
    try {
      st = this.#fs.lstatSync(this.output.target);
    } catch (err) {
      if (errno(err) === 'ENOENT') return;
      throw err;
    }
    if (!st.isFile())
      throw refuse(
        this.#code,
        this.output.target,
        'was replaced by something other than a regular file while being written; it is left as it is',
      );
  }

  #unlinkQuiet(path: string): void {
    try {
      this.#fs.unlinkSync(path);
    } catch {
      // Nothing left to remove.
    }
  }
}

/** Writes `data` to `path` by the output rule, durably (see `AtomicFile`); throws its refusal or the file system's error. */
export function writeFileAtomic(path: string, data: Uint8Array | string, options: AtomicFileOptions = {}): void {
  const file = new AtomicFile(path, options);
  try {
    file.write(typeof data === 'string' ? new TextEncoder().encode(data) : data);
    file.commit({ durable: true });
  } catch (err) {
    file.abort();
    throw err;
  }
}
