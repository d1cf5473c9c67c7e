// Node persistence layer: the MAC store as one JSON file, replaced atomically under an inter-process lock file.

import * as nodeFs from 'node:fs';
import { hostname, homedir, uptime } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { MacslotError, show } from '../errors.js';
import { DocumentStore, emptyStoreData, SerialQueue, StoreCodec, type StoreData } from '../manager/store.js';
import { AtomicFile, resolveOutput, type OutputFileSystem } from './output-file.js';

/** The file operations the store uses; pass a wrapper to inject faults. Node's `fs` fits. */
export interface FileSystem {
  /** Opens a file; returns its descriptor. */
  openSync(path: string, flags: string, mode?: number): number;
  /** Writes bytes; returns how many were written. */
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number;
  /** Flushes a file to disk. */
  fsyncSync(fd: number): void;
  /** Closes a descriptor. */
  closeSync(fd: number): void;
  /** Renames a file, replacing the target. */
  renameSync(from: string, to: string): void;
  /** Returns a file's text. */
  readFileSync(path: string, encoding: 'utf8'): string;
  /** Deletes a file. */
  unlinkSync(path: string): void;
  /** Creates a directory and its parents. */
  mkdirSync(path: string, options: { recursive: true; mode?: number }): unknown;
  /** Returns the names in a directory. */
  readdirSync(path: string): string[];
  /** Returns a file's modification time. */
  statSync(path: string): {
    /** Last modification, in milliseconds since the epoch. */
    mtimeMs: number;
  };
  /** Creates a hard link; default Node's. Locks are created whole with it: written under a private name, then linked. */
  linkSync?(existing: string, newPath: string): void;
}

/** Options for a FileStore. */
export interface FileStoreOptions {
  /** The store file. Default `defaultStorePath()`. */
  path?: string;
  /** File operations; default Node's fs. */
  fs?: FileSystem;
  /** How long to wait for another process's lock before STORE_LOCKED. Default 10 s. */
  lockTimeoutMs?: number;
  /** Whether a process id is alive on this host; default `process.kill(pid, 0)`. */
  isAlive?: (pid: number) => boolean;
}

/** Where to look for the default path; each defaults to this process's value. */
export interface StorePathEnv {
  /** Environment variables (XDG_STATE_HOME, LOCALAPPDATA, HOME). */
  env?: Readonly<Record<string, string | undefined>>;
  /** The platform, as `process.platform` names it. */
  platform?: string;
  /** The home directory. */
  home?: string;
}

/**
 * Returns the default store file: `$XDG_STATE_HOME/macslot/macs.json` (else `~/.local/state/...`)
 * on Linux and other Unixes, `~/Library/Application Support/macslot/macs.json` on macOS, and
 * `%LOCALAPPDATA%\macslot\macs.json` on Windows. Throws INVALID_ARGUMENT when no home is known.
 */
export function defaultStorePath(where: StorePathEnv = {}): string {
  const env = where.env ?? process.env;
  const platform = where.platform ?? process.platform;
  const home = where.home ?? homedir();
  const need = (): string => {
    if (typeof home !== 'string' || home.length === 0)
      throw new MacslotError('INVALID_ARGUMENT', `no home directory to hold the MAC store (got ${show(home)}); pass a path`);
    return home;
  };
  // Built with the target platform's separator, so a path computed for Windows on Linux still reads right.
  const j = (...parts: string[]): string => parts.join(platform === 'win32' ? '\\' : '/');
  if (platform === 'win32') {
    const local = env.LOCALAPPDATA;
    return j(local !== undefined && local.length > 0 ? local : j(need(), 'AppData', 'Local'), 'macslot', 'macs.json');
  }
  if (platform === 'darwin') return j(need(), 'Library', 'Application Support', 'macslot', 'macs.json');
  // The XDG spec says to ignore a relative XDG_STATE_HOME.
  const xdg = env.XDG_STATE_HOME;
  return j(xdg?.startsWith('/') ? xdg : j(need(), '.local', 'state'), 'macslot', 'macs.json');
}

function errno(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : show(err);
}

const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));

function defaultAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return errno(err) !== 'ESRCH';
  }
}

interface LockInfo {
  pid: number;
  host: string;
  /** The holder's start time in clock ticks since boot (/proc/<pid>/stat), when known. */
  start: string | undefined;
  /** The kernel's boot id when the lock was taken, when known. */
  boot: string | undefined;
}

function readText(path: string): string | undefined {
  try {
    return nodeFs.readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The start time of process `pid` in clock ticks since boot, from /proc (Linux); undefined elsewhere or when it is gone. */
function processStart(pid: number): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // The command name may hold spaces and parentheses: fields are counted from the last ')'; starttime is field 22.
  const field = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  return field !== undefined && /^\d+$/.test(field) ? field : undefined;
}

const BOOT_ID = readText('/proc/sys/kernel/random/boot_id')?.trim() || undefined;
let ownStart: string | undefined | null = null;
const selfStart = (): string | undefined => (ownStart === null ? (ownStart = processStart(process.pid)) : ownStart);

// A lock with no readable holder is never broken while its holder might live: only when it predates the last boot by this much.
const BEFORE_BOOT_MS = 60_000;
// Creating a hard link fails with these where the file system has none; locks are then created and filled in two steps.
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/**
 * The MAC store as one JSON file, shared by every process on the host. Each transaction takes a lock
 * file beside it, created whole (written under a private name, then hard-linked into place, so it never
 * exists without its holder's identity: pid, host, process start time and boot id; a dead holder's lock
 * is broken, a pid reused by another process included). It re-reads the file and replaces it
 * atomically: temporary file, fsync, rename, fsync of the directory. The path follows the output rule
 * (see `resolveOutput`): a symlink is followed and stays a link (the lock and the temporary file live
 * beside its target); a dangling link or anything but a regular file is STORE_IO. A corrupt file
 * fails closed with STORE_CORRUPT; neither is ever treated as empty.
 */
export class FileStore extends DocumentStore {
  /** The store file's path. */
  readonly path: string;
  readonly location: string;
  readonly #fs: FileSystem;
  readonly #writeFs: Partial<OutputFileSystem>;
  readonly #timeout: number;
  readonly #alive: (pid: number) => boolean;
  /** The regular file the path leads to, as of the last call. */
  #target: string;
  readonly #queue = new SerialQueue();
  readonly #codec: StoreCodec;
  readonly #host = hostname();

  /** Uses `options.path` (or the default path); throws INVALID_ARGUMENT for a bad option. Nothing touches the disk until the first call. */
  constructor(options: FileStoreOptions | string = {}) {
    super();
    const o = typeof options === 'string' ? { path: options } : options;
    if (o === null || typeof o !== 'object')
      throw new MacslotError('INVALID_ARGUMENT', `FileStore options must be an object or a path, got ${show(options)}`);
    const p = o.path ?? defaultStorePath();
    if (typeof p !== 'string' || p.length === 0)
      throw new MacslotError('INVALID_ARGUMENT', `store path must be a non-empty string, got ${show(p)}`);
    this.path = isAbsolute(p) ? p : resolve(p);
    this.location = this.path;
    this.#codec = new StoreCodec(this.location);
    this.#target = this.path;
    const fs = o.fs ?? (nodeFs as unknown as FileSystem);
    this.#fs = fs;
    this.#writeFs = {
      openSync: (path, flags, mode) => fs.openSync(path, String(flags), mode),
      writeSync: (fd, buffer, offset, length, position) => fs.writeSync(fd, buffer, offset, length, position),
      fsyncSync: (fd) => fs.fsyncSync(fd),
      closeSync: (fd) => fs.closeSync(fd),
      renameSync: (from, to) => fs.renameSync(from, to),
      unlinkSync: (path) => fs.unlinkSync(path),
      readdirSync: (path) => fs.readdirSync(path),
    };
    const timeout = o.lockTimeoutMs ?? 10_000;
    if (!Number.isFinite(timeout) || timeout < 0)
      throw new MacslotError('INVALID_ARGUMENT', `lockTimeoutMs must be a number ≥ 0, got ${show(timeout)}`);
    this.#timeout = timeout;
    this.#alive = o.isAlive ?? defaultAlive;
  }

  /** The lock file: beside the store's file, or beside its target when the path is a symlink (as of the last call). */
  get lockPath(): string {
    return `${this.#target}.lock`;
  }

  get #dir(): string {
    return dirname(this.#target);
  }

  get #tempPrefix(): string {
    return `${basename(this.#target)}.tmp-`;
  }

  transact<T>(fn: (data: StoreData) => T): Promise<T> {
    return this.#queue.run(async () => {
      this.#resolve();
      await this.#lock();
      try {
        this.#sweepTemps();
        const before = this.#readText();
        const data = before === undefined ? emptyStoreData() : this.#codec.parse(before);
        const result = fn(data);
        const after = this.#codec.serialize(data);
        if (after !== before) this.#write(after);
        return result;
      } finally {
        this.#unlock();
      }
    });
  }

  read(): Promise<StoreData> {
    // Reads need no lock: the file is only ever replaced whole, so any read sees one complete version.
    return this.#queue.run(() => {
      this.#resolve();
      const text = this.#readText();
      return text === undefined ? emptyStoreData() : this.#codec.parse(text);
    });
  }

  #io(what: string, err: unknown): MacslotError {
    return new MacslotError('STORE_IO', `the MAC store ${this.path} could not ${what}: ${describe(err)}; the previous store is unchanged`);
  }

  /** Follows the path to the regular file it names; STORE_IO for a dangling link, a directory, a FIFO, a device or a socket. */
  #resolve(): void {
    const out = resolveOutput(this.path, { code: 'STORE_IO' });
    if (out.kind === 'stream')
      throw new MacslotError(
        'STORE_IO',
        `the MAC store ${show(this.path)} is a FIFO, a device or an open descriptor, not a regular file; it is left as it is`,
      );
    this.#target = out.target;
  }

  #readText(): string | undefined {
    try {
      return this.#fs.readFileSync(this.#target, 'utf8');
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw this.#io('be read', err);
    }
  }

  #write(text: string): void {
    let file: AtomicFile;
    try {
      file = new AtomicFile(this.#target, {
        fs: this.#writeFs,
        code: 'STORE_IO',
        mode: 0o600,
        tempName: (name) => `${name}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`,
      });
    } catch (err) {
      throw this.#io('be replaced', err);
    }
    try {
      file.write(new TextEncoder().encode(text));
      // Without syncing the directory the rename itself may not survive a power cut (AtomicFile skips it where it cannot).
      file.commit({ durable: true });
    } catch (err) {
      file.abort();
      if (file.committed)
        throw new MacslotError(
          'STORE_IO',
          `the MAC store ${this.path} was replaced but its directory could not be synced: ${describe(err)}; the change may not survive a ` +
            `crash`,
        );
      throw this.#io('be written', err);
    }
  }

  /** Removes temporary files of writers that died mid-write; only the lock holder writes, so none of them is live. */
  #sweepTemps(): void {
    let names: string[];
    try {
      names = this.#fs.readdirSync(this.#dir);
    } catch {
      return;
    }
    const lockTemp = `${basename(this.lockPath)}.`;
    for (const n of names) {
      if (n.startsWith(lockTemp) && n.endsWith('.new')) {
        // A lock being created: only a dead creator's is removed (a live one would retry anyway).
        const pid = Number(/^(?:break\.)?(\d+)\.[a-z0-9]+\.new$/.exec(n.slice(lockTemp.length))?.[1] ?? 0);
        if (pid === 0 || pid === process.pid || this.#alive(pid)) continue;
      } else if (!n.startsWith(this.#tempPrefix)) continue;
      try {
        this.#fs.unlinkSync(join(this.#dir, n));
      } catch {
        // Already gone, or not ours to remove; the store does not depend on it.
      }
    }
  }

  #readLock(path: string): { text: string; info: LockInfo | undefined } | undefined {
    let text: string;
    try {
      text = this.#fs.readFileSync(path, 'utf8');
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw this.#io(`read the lock ${path}`, err);
    }
    const m = /^(\d+) (\S+)(.*)/.exec(text);
    if (m === null) return { text, info: undefined };
    const field = (key: string): string | undefined => {
      const v = new RegExp(` ${key}=(\\S+)`).exec(m[3]!)?.[1];
      return v === undefined || v === '-' ? undefined : v;
    };
    return { text, info: { pid: Number(m[1]), host: m[2]!, start: field('start'), boot: field('boot') } };
  }

  /** True only when the lock's holder is surely dead; anything uncertain counts as alive (fail closed). */
  #stale(path: string, lock: { info: LockInfo | undefined }): boolean {
    const info = lock.info;
    if (info === undefined) {
      // Locks are created whole, so an unreadable one is foreign or damaged: stale only if it predates this boot.
      try {
        return this.#fs.statSync(path).mtimeMs < Date.now() - uptime() * 1000 - BEFORE_BOOT_MS;
      } catch {
        return false;
      }
    }
    // A lock from another host cannot be checked from here, so it is never broken.
    if (info.host !== this.#host) return false;
    // Taken before the machine last booted: its holder is gone, whatever its pid now names.
    if (info.boot !== undefined && BOOT_ID !== undefined && info.boot !== BOOT_ID) return true;
    if (info.pid === process.pid) {
      // This process's own pid: its own lock if the start time matches (another FileStore here holds it), else a
      // previous process with the same pid (a restarted container). Without start times it cannot tell: alive.
      const mine = selfStart();
      return info.start !== undefined && mine !== undefined && info.start !== mine;
    }
    if (!this.#alive(info.pid)) return true;
    // The pid is alive, but it may have been reused by another process since the lock was taken.
    const now = info.start === undefined ? undefined : processStart(info.pid);
    return now !== undefined && now !== info.start;
  }

  /** The identity written into a lock: pid, host, start time, boot id, and when (for people reading it). */
  #identity(): string {
    return `${process.pid} ${this.#host} start=${selfStart() ?? '-'} boot=${BOOT_ID ?? '-'} since=${new Date().toISOString()}\n`;
  }

  /** Creates the lock file at `path` with its content in one step; false when it already exists. */
  #tryCreate(path: string): boolean {
    const fs = this.#fs;
    const bytes = new TextEncoder().encode(this.#identity());
    const temp = `${path}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.new`;
    let fd: number;
    try {
      fs.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      fd = fs.openSync(temp, 'wx', 0o600);
    } catch (err) {
      throw this.#io(`create the lock ${path}`, err);
    }
    try {
      try {
        for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off, bytes.length - off, off);
      } finally {
        fs.closeSync(fd);
      }
      (fs.linkSync ?? nodeFs.linkSync)(temp, path);
      return true;
    } catch (err) {
      const e = errno(err);
      // ENOENT: a holder swept the private file (it took this pid for a dead one); the caller retries.
      if (e === 'EEXIST' || e === 'ENOENT') return false;
      if (NO_LINKS.has(e)) return this.#tryCreateInPlace(path, bytes);
      throw this.#io(`create the lock ${path}`, err);
    } finally {
      this.#unlinkQuiet(temp);
    }
  }

  /** Where the file system has no hard links: create with O_EXCL, then fill (a stalled creator leaves an unreadable lock, never broken). */
  #tryCreateInPlace(path: string, bytes: Uint8Array): boolean {
    let fd: number;
    try {
      fd = this.#fs.openSync(path, 'wx', 0o600);
    } catch (err) {
      if (errno(err) === 'EEXIST') return false;
      throw this.#io(`create the lock ${path}`, err);
    }
    try {
      this.#fs.writeSync(fd, bytes, 0, bytes.length, 0);
    } catch {
      // An empty lock still excludes others.
    } finally {
      this.#fs.closeSync(fd);
    }
    return true;
  }

  /**
   * Breaks a dead process's lock. Two waiters may both see it dead; the break lock makes only one of
   * them remove it, after checking it still holds the dead owner's text, so a fresh lock taken in
   * between is never removed.
   */
  #breakStale(observed: string): void {
    const breaker = `${this.lockPath}.break`;
    if (!this.#tryCreate(breaker)) {
      const b = this.#readLock(breaker);
      if (b !== undefined && this.#stale(breaker, b)) this.#unlinkQuiet(breaker);
      return;
    }
    try {
      const now = this.#readLock(this.lockPath);
      if (now !== undefined && now.text === observed) this.#unlinkQuiet(this.lockPath);
    } finally {
      this.#unlinkQuiet(breaker);
    }
  }

  #unlinkQuiet(path: string): void {
    try {
      this.#fs.unlinkSync(path);
    } catch {
      // Someone else removed it first.
    }
  }

  async #lock(): Promise<void> {
    const start = Date.now();
    for (let attempt = 0; ; attempt++) {
      // Reading first costs one call while the lock is held; creating one costs five.
      const held = this.#readLock(this.lockPath);
      if (held === undefined) {
        if (this.#tryCreate(this.lockPath)) return;
        continue;
      }
      if (this.#stale(this.lockPath, held)) {
        this.#breakStale(held.text);
        continue;
      }
      if (Date.now() - start >= this.#timeout) {
        const who =
          held.info === undefined
            ? 'an unknown process (the lock file names none; remove it if no macslot process runs)'
            : `process ${held.info.pid} on ${held.info.host}`;
        throw new MacslotError(
          'STORE_LOCKED',
          `the MAC store ${this.path} is locked by ${who} (lock file ${this.lockPath}) for over ${this.#timeout} ms`,
        );
      }
      // Jittered and growing, so waiting processes do not retry in lockstep.
      await sleep(Math.min(20, 1 + attempt) * (0.5 + Math.random()));
    }
  }

  #unlock(): void {
    this.#unlinkQuiet(this.lockPath);
  }
}
