// Node persistence layer: the MAC store as one JSON file, replaced atomically under an inter-process lock file.

import * as nodeFs from 'node:fs';
import { hostname, homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { MacslotError, show } from '../errors.js';
import { emptyStoreData, SerialQueue, StoreCodec, type MacStore, type StoreData } from '../manager/store.js';

/** The file operations the store uses; pass a wrapper to inject faults. Node's `fs` fits. */
export interface FileSystem {
  openSync(path: string, flags: string, mode?: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  readFileSync(path: string, encoding: 'utf8'): string;
  unlinkSync(path: string): void;
  mkdirSync(path: string, options: { recursive: true; mode?: number }): unknown;
  readdirSync(path: string): string[];
  statSync(path: string): { mtimeMs: number };
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
  env?: Readonly<Record<string, string | undefined>>;
  platform?: string;
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
    if (typeof home !== 'string' || home.length === 0) throw new MacslotError('INVALID_ARGUMENT', `no home directory to hold the MAC store (got ${show(home)}); pass a path`);
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
  return j(xdg !== undefined && xdg.startsWith('/') ? xdg : j(need(), '.local', 'state'), 'macslot', 'macs.json');
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
}

// A lock file with no readable owner is only stale once it is this old: its writer may be between creating and filling it.
const UNREADABLE_LOCK_GRACE_MS = 2000;

/**
 * The MAC store as one JSON file, shared by every process on the host. Each transaction takes an
 * O_EXCL lock file beside it (a dead holder's lock is broken by checking its pid), re-reads the file,
 * and replaces it atomically: temporary file, fsync, rename, fsync of the directory. A corrupt file
 * fails closed with STORE_CORRUPT; it is never treated as empty.
 */
export class FileStore implements MacStore {
  readonly path: string;
  readonly location: string;
  readonly lockPath: string;
  readonly #fs: FileSystem;
  readonly #timeout: number;
  readonly #alive: (pid: number) => boolean;
  readonly #dir: string;
  readonly #tempPrefix: string;
  readonly #queue = new SerialQueue();
  readonly #codec: StoreCodec;
  readonly #host = hostname();

  /** Uses `options.path` (or the default path); throws INVALID_ARGUMENT for a bad option. Nothing touches the disk until the first call. */
  constructor(options: FileStoreOptions | string = {}) {
    const o = typeof options === 'string' ? { path: options } : options;
    if (o === null || typeof o !== 'object') throw new MacslotError('INVALID_ARGUMENT', `FileStore options must be an object or a path, got ${show(options)}`);
    const p = o.path ?? defaultStorePath();
    if (typeof p !== 'string' || p.length === 0) throw new MacslotError('INVALID_ARGUMENT', `store path must be a non-empty string, got ${show(p)}`);
    this.path = isAbsolute(p) ? p : resolve(p);
    this.location = this.path;
    this.#codec = new StoreCodec(this.location);
    this.lockPath = `${this.path}.lock`;
    this.#dir = dirname(this.path);
    this.#tempPrefix = `${basename(this.path)}.tmp-`;
    this.#fs = o.fs ?? (nodeFs as unknown as FileSystem);
    const timeout = o.lockTimeoutMs ?? 10_000;
    if (!Number.isFinite(timeout) || timeout < 0) throw new MacslotError('INVALID_ARGUMENT', `lockTimeoutMs must be a number ≥ 0, got ${show(timeout)}`);
    this.#timeout = timeout;
    this.#alive = o.isAlive ?? defaultAlive;
  }

  transact<T>(fn: (data: StoreData) => T): Promise<T> {
    return this.#queue.run(async () => {
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
      const text = this.#readText();
      return text === undefined ? emptyStoreData() : this.#codec.parse(text);
    });
  }

  #io(what: string, err: unknown): MacslotError {
    return new MacslotError('STORE_IO', `the MAC store ${this.path} could not ${what}: ${describe(err)}; the previous store is unchanged`);
  }

  #readText(): string | undefined {
    try {
      return this.#fs.readFileSync(this.path, 'utf8');
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw this.#io('be read', err);
    }
  }

  #write(text: string): void {
    const fs = this.#fs;
    const temp = join(this.#dir, `${this.#tempPrefix}${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    const bytes = new TextEncoder().encode(text);
    let fd: number;
    try {
      fd = fs.openSync(temp, 'wx', 0o600);
    } catch (err) {
      throw this.#io(`create ${temp}`, err);
    }
    try {
      try {
        for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off, bytes.length - off, off);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(temp, this.path);
    } catch (err) {
      try {
        fs.unlinkSync(temp);
      } catch {
        // The next lock holder sweeps temporary files left behind.
      }
      throw this.#io('be written', err);
    }
    // Without syncing the directory the rename itself may not survive a power cut. Windows cannot open a directory to sync it.
    if (process.platform !== 'win32') {
      let dfd: number | undefined;
      try {
        dfd = fs.openSync(this.#dir, 'r');
        fs.fsyncSync(dfd);
      } catch (err) {
        throw new MacslotError('STORE_IO', `the MAC store ${this.path} was replaced but its directory could not be synced: ${describe(err)}; the change may not survive a crash`);
      } finally {
        if (dfd !== undefined) fs.closeSync(dfd);
      }
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
    for (const n of names) {
      if (!n.startsWith(this.#tempPrefix)) continue;
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
    const m = /^(\d+) (\S+)/.exec(text);
    return { text, info: m === null ? undefined : { pid: Number(m[1]), host: m[2]! } };
  }

  #stale(path: string, lock: { info: LockInfo | undefined }): boolean {
    if (lock.info === undefined) {
      try {
        return Date.now() - this.#fs.statSync(path).mtimeMs > UNREADABLE_LOCK_GRACE_MS;
      } catch {
        return false;
      }
    }
    // A lock from another host cannot be checked from here, so it is never broken: fail closed.
    return lock.info.host === this.#host && lock.info.pid !== process.pid && !this.#alive(lock.info.pid);
  }

  #tryCreate(path: string): boolean {
    let fd: number;
    try {
      this.#fs.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      fd = this.#fs.openSync(path, 'wx', 0o600);
    } catch (err) {
      if (errno(err) === 'EEXIST') return false;
      throw this.#io(`create the lock ${path}`, err);
    }
    try {
      const b = new TextEncoder().encode(`${process.pid} ${this.#host} ${new Date().toISOString()}\n`);
      this.#fs.writeSync(fd, b, 0, b.length, 0);
    } catch {
      // An empty lock still excludes others; it turns stale after the grace period if this process dies.
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
      if (this.#tryCreate(this.lockPath)) return;
      const held = this.#readLock(this.lockPath);
      if (held === undefined) continue;
      if (this.#stale(this.lockPath, held)) {
        this.#breakStale(held.text);
        continue;
      }
      if (Date.now() - start >= this.#timeout) {
        const who = held.info === undefined ? 'an unknown process' : `process ${held.info.pid} on ${held.info.host}`;
        throw new MacslotError('STORE_LOCKED', `the MAC store ${this.path} is locked by ${who} (lock file ${this.lockPath}) for over ${this.#timeout} ms`);
      }
      // Jittered and growing, so waiting processes do not retry in lockstep.
      await sleep(Math.min(20, 1 + attempt) * (0.5 + Math.random()));
    }
  }

  #unlock(): void {
    this.#unlinkQuiet(this.lockPath);
  }
}
