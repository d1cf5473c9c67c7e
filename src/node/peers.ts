// Node ports: real peers started as child processes — vde_plug on stdio, and passt as an uplink on a UNIX socket in a temporary directory.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MacslotError, show } from '../errors.js';
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
    for (const l of text.split('\n')) if (l.trim() !== '') log?.(`${name}: ${l.trim()}`);
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
  if (args.length === 0 || args.some((a) => typeof a !== 'string')) throw new MacslotError('INVALID_ARGUMENT', `vde_plug needs one or two VNL strings, got ${show(vnl)}`);
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
  readonly port: FramePort;
  readonly socketPath: string;
  readonly pid: number | undefined;
  /** Closes the port, ends passt and removes its directory; resolves when passt has exited. */
  close(): Promise<void>;
}

/**
 * Starts `passt -f -s SOCKET -t none -u none` (plus `extraArgs`) in a new temporary directory and
 * resolves with a port connected to it (QEMU stream framing). Rejects with PEER_INVALID when passt
 * exits or its socket does not appear within `timeoutMs` (default 5000), naming its last output.
 */
export async function spawnPasst(options: SpawnPeerOptions & { extraArgs?: readonly string[]; timeoutMs?: number } = {}): Promise<PasstPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'macslot-passt-'));
  // passt drops to an unprivileged user when started as root, and must still reach its socket here.
  chmodSync(dir, 0o777);
  const socketPath = join(dir, 'passt.sock');
  const args = ['-f', '-s', socketPath, '-t', 'none', '-u', 'none', ...(options.extraArgs ?? [])];
  const child = spawn(options.command ?? 'passt', args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  let output = '';
  const collect = (b: Buffer): void => {
    output = (output + b.toString('utf8')).slice(-2000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const cleanup = async (): Promise<void> => {
    stop(child);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  let failed: Error | undefined;
  child.once('error', (err) => (failed = err));
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  while (!existsSync(socketPath)) {
    if (failed !== undefined || child.exitCode !== null || Date.now() > deadline) {
      await cleanup();
      throw new MacslotError('PEER_INVALID', `passt did not offer ${show(socketPath)}${failed ? ` (${failed.message})` : ''}: ${output.trim() || 'no output'}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  let port: FramePort;
  try {
    port = await connectStream(socketPath, { ...options, name: options.name ?? `passt:${socketPath}` });
  } catch (err) {
    await cleanup();
    throw err;
  }
  child.on('exit', () => port.close());
  lines(child, port.name, options.log);
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
  };
}

/** Connects to a passt (or any QEMU stream peer) already listening at `path`; resolves with the port, rejects with PEER_INVALID when it cannot connect. */
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
