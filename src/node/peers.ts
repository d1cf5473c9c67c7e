// Node ports: real peers started as child processes — vde_plug on stdio, and passt as an uplink on a UNIX socket in a temporary directory.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MacslotError, isMacslotError, show } from '../errors.js';
import { escapeText } from '../text.js';
import { VDE_FRAMING } from '../port/framing.js';
import type { FramePort } from '../port/port.js';
import { pipePort, socketPort, type StreamPortOptions } from './stream.js';

/** How a child peer is started. */
export interface SpawnPeerOptions extends Omit<StreamPortOptions, 'framing'> {
  /** The program. Default `vde_plug` or `passt`. */
  command?: string;
}

function lines(child: ChildProcess, name: string, log: ((line: string) => void) | undefined): void {
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    for (const l of text.split('\n')) if (l.trim() !== '') say(log, `${escapeText(name)}: ${escapeText(l.trim())}`);
  });
}

function stop(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
}

/**
 * Starts `vde_plug VNL...` and returns a port over its standard input and output (u16 BE length per
 * frame). Closing the port ends the process; the process ending closes the port. Throws
 * INVALID_ARGUMENT for an empty VNL list; a missing program closes the port with its spawn error.
 */
export function spawnVdePlug(vnl: string | readonly string[], options: SpawnPeerOptions = {}): FramePort {
  const args = typeof vnl === 'string' ? [vnl] : [...vnl];
  if (args.length === 0 || args.some((a) => typeof a !== 'string'))
    throw new MacslotError('INVALID_ARGUMENT', `vde_plug needs one or two VNL strings, got ${show(vnl)}`);
  const name = options.name ?? `vde:${args.join(' ')}`;
  const child = spawn(options.command ?? 'vde_plug', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  lines(child, name, options.log);
  const port = pipePort(child.stdout!, child.stdin!, () => stop(child), { ...options, name, framing: VDE_FRAMING });
  child.on('error', (err) => {
    options.log?.(`${name}: cannot start: ${err.message}`);
    port.close();
  });
  child.on('exit', () => port.close());
  return port;
}

/** A running passt and the port connected to it. */
export interface PasstPeer {
  /** The port connected to passt. */
  readonly port: FramePort;
  /** passt's UNIX socket. */
  readonly socketPath: string;
  /**  undefined;|passt's process id, once known. */
  readonly pid: number | undefined;
  /** Closes the port, ends passt and removes its directory; resolves when passt has exited. */
  close(): Promise<void>;
  /** Ends passt at once (SIGKILL) and removes its directory, synchronously: for a process about to exit. Idempotent. */
  kill(): void;
}

/** Options of spawnPasst. */
export interface SpawnPasstOptions extends SpawnPeerOptions {
  /** More arguments for passt. */
  extraArgs?: readonly string[];
  /** How long passt may take to listen on its socket, in ms. Default 5000. */
  timeoutMs?: number;
  /** Aborting it during start-up ends passt, removes its directory and rejects with PORT_CLOSED. */
  signal?: AbortSignal;
}

// Every passt started and not yet cleaned up, so that a process exiting in a hurry (a second signal) leaves none behind.
const livePassts = new Set<() => void>();
let exitHook = false;

function onExitKill(kill: () => void): void {
  livePassts.add(kill);
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const k of [...livePassts]) k();
  });
}

// Connecting to a socket file that is not listening yet fails with these; passt binds before it listens.
const NOT_YET = new Set(['ECONNREFUSED', 'ENOENT', 'EAGAIN']);

/**
 * Starts `passt -f -s SOCKET -t none -u none` (plus `extraArgs`) in a new private temporary directory (mode 0700;
 * when run as root, passt runs as nobody and the directory is nobody's) and resolves with a port connected to it
 * (QEMU stream framing). passt creates its socket file before it listens, so the connect is retried until
 * `timeoutMs` (default 5000). Each line passt prints goes to `log`, escaped. The directory is removed when passt is
 * closed or killed, when start-up fails or is aborted, and when the process exits. Rejects with PEER_INVALID when
 * passt exits or does not listen in time, naming its last output, or PORT_CLOSED when `signal` aborts.
 */
export async function spawnPasst(options: SpawnPasstOptions = {}): Promise<PasstPeer> {
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1)
    throw new MacslotError('INVALID_ARGUMENT', `timeoutMs must be a positive integer, got ${show(options.timeoutMs)}`);
  if (options.signal?.aborted) throw new MacslotError('PORT_CLOSED', 'passt start-up was aborted before it began');
  const dir = mkdtempSync(join(tmpdir(), 'macslot-passt-'));
  chmodSync(dir, 0o700);
  const extra = [...(options.extraArgs ?? [])];
  // passt refuses to stay root and becomes nobody; it must then own the private directory to create its socket.
  if (process.getuid?.() === 0 && !extra.includes('--runas')) {
    chownSync(dir, NOBODY, NOBODY);
    extra.unshift('--runas', `${NOBODY}:${NOBODY}`);
  }
  const socketPath = join(dir, 'passt.sock');
  const args = ['-f', '-s', socketPath, '-t', 'none', '-u', 'none', ...extra];
  const name = options.name ?? `passt:${socketPath}`;
  let child: ChildProcess;
  try {
    child = spawn(options.command ?? 'passt', args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new MacslotError('PEER_INVALID', `cannot start passt: ${(err as Error).message}`);
  }
  let output = '';
  let partial = '';
  const log = options.log;
  const collect = (b: Buffer): void => {
    const text = b.toString('utf8');
    output = (output + text).slice(-2000);
    const parts = (partial + text).split('\n');
    partial = parts.pop()!.slice(-4096);
    for (const l of parts) if (l.trim() !== '') say(log, `${escapeText(name)}: ${escapeText(l.trim())}`);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  // passt's last output, on one line, for an error message.
  const said = (): string => escapeText(output.trim(), 2000) || 'no output';
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  let removed = false;
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    }
    if (!removed) {
      removed = true;
      rmSync(dir, { recursive: true, force: true });
    }
    livePassts.delete(kill);
  };
  onExitKill(kill);
  const cleanup = async (): Promise<void> => {
    stop(child);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())]);
    kill();
  };
  let failed: Error | undefined;
  child.once('error', (err) => (failed = err));
  let port: FramePort;
  try {
    port = await passtConnect(
      socketPath,
      Date.now() + timeoutMs,
      () => {
        if (options.signal?.aborted) return new MacslotError('PORT_CLOSED', 'passt start-up was aborted');
        if (failed !== undefined || child.exitCode !== null || child.signalCode !== null) {
          return new MacslotError(
            'PEER_INVALID',
            `passt did not offer ${show(socketPath)}${failed ? ` (${failed.message})` : ''}: ${said()}`,
          );
        }
        return undefined;
      },
      { ...options, name },
    );
  } catch (err) {
    await cleanup();
    if (isMacslotError(err, 'PEER_INVALID') && !err.message.includes(said()))
      throw new MacslotError('PEER_INVALID', `${err.message.replace(/^PEER_INVALID: /, '')}: ${said()}`);
    throw err;
  }
  child.on('exit', () => port.close());
  say(log, `${escapeText(name)}: passt started (pid ${child.pid ?? '?'}) in ${escapeText(dir)}`);
  let closing: Promise<void> | undefined;
  return {
    port,
    socketPath,
    pid: child.pid,
    close: () => {
      closing ??= (async () => {
        port.close();
        await cleanup();
      })();
      return closing;
    },
    kill: () => {
      port.close();
      kill();
    },
  };
}

const NOBODY = 65534;

function say(log: ((line: string) => void) | undefined, line: string): void {
  try {
    log?.(line);
  } catch {
    // The log is advisory.
  }
}

/**
 * Connects to `path` until `deadline`, retrying while the socket is not there or not listening yet; `check` ends the wait early with its
 * error.
 */
async function passtConnect(
  path: string,
  deadline: number,
  check: () => MacslotError | undefined,
  options: StreamPortOptions,
): Promise<FramePort> {
  for (;;) {
    const stopped = check();
    if (stopped !== undefined) throw stopped;
    if (existsSync(path)) {
      const socket = connect(path);
      const err = await new Promise<(Error & { code?: string }) | undefined>((resolve) => {
        socket.once('connect', () => resolve(undefined));
        socket.once('error', resolve);
      });
      if (err === undefined) return socketPort(socket, options);
      socket.destroy();
      if (!NOT_YET.has(err.code ?? '')) throw new MacslotError('PEER_INVALID', `cannot connect to ${show(path)}: ${err.message}`);
    }
    if (Date.now() > deadline) throw new MacslotError('PEER_INVALID', `passt did not listen on ${show(path)} in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Connects to a passt (or any QEMU stream peer) already listening at `path`; resolves with the port, rejects with PEER_INVALID when it
 * cannot connect.
 */
export async function connectStream(path: string, options: StreamPortOptions = {}): Promise<FramePort> {
  const socket = connect(path);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
  } catch (err) {
    socket.destroy();
    throw new MacslotError('PEER_INVALID', `cannot connect to ${show(path)}: ${(err as Error).message}`);
  }
  return socketPort(socket, { ...options, name: options.name ?? `unix:${path}` });
}
