// Node ports: length-prefixed byte streams (QEMU -netdev stream/socket over UNIX or TCP, vde_plug stdio) and their listeners.

import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { MacslotError, show } from '../errors.js';
import { FrameDecoder, QEMU_FRAMING, encodeFrame, type StreamFraming } from '../port/framing.js';
import { PortBase, type FramePort } from '../port/port.js';

/** How a stream port behaves. */
export interface StreamPortOptions {
  /** Name for logs and tables. Default `stream`. */
  name?: string;
  /** Default QEMU's (u32 BE length, at most 69632 bytes). */
  framing?: StreamFraming;
  /** Bytes the port may hold for a peer that is not reading; frames beyond it are dropped and counted. Default 1 MiB. */
  maxQueueBytes?: number;
  /** Receives one line for the first drop of each reason, and for a peer closed for a bogus length. */
  log?: (line: string) => void;
}

const DEFAULT_QUEUE = 1 << 20;

function queueLimit(v: number | undefined): number {
  const n = v ?? DEFAULT_QUEUE;
  if (!Number.isInteger(n) || n < 1) throw new MacslotError('INVALID_ARGUMENT', `maxQueueBytes must be a positive integer, got ${show(v)}`);
  return n;
}

/** A FramePort over a readable and a writable byte stream with a length prefix per frame. */
class StreamPort extends PortBase {
  readonly #out: Writable;
  readonly #release: () => void;
  readonly #decoder: FrameDecoder;
  readonly #maxQueue: number;
  readonly #log: ((line: string) => void) | undefined;
  #corked = false;

  constructor(input: Readable, output: Writable, release: () => void, o: StreamPortOptions) {
    super(o.name ?? 'stream', o.log);
    this.#out = output;
    this.#release = release;
    this.#maxQueue = queueLimit(o.maxQueueBytes);
    this.#log = o.log;
    this.#decoder = new FrameDecoder(o.framing ?? QEMU_FRAMING, (frame) => this.inlet.push(frame));
    input.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      if (!this.#decoder.push(chunk)) {
        const n = this.#decoder.broken!;
        this.dropped.drop('invalid-length', `length prefix ${n} is above the framing's maximum ${this.#decoder.framing.maxFrame}; closing the peer`);
        this.#say(`${this.name}: closed: bogus length ${n} (maximum ${this.#decoder.framing.maxFrame})`);
        this.shut({ kind: 'error', error: new MacslotError('PEER_INVALID', `${this.name} announced a ${n}-byte frame, above ${this.#decoder.framing.maxFrame}`) });
      }
    });
    const ended = (): void => {
      if (this.#decoder.pending > 0) this.dropped.drop('truncated', `the peer went away ${this.#decoder.pending} bytes into a frame`);
      this.shut({ kind: 'peer' });
    };
    input.on('end', ended);
    input.on('close', ended);
    output.on('close', ended);
    const failed = (err: Error): void => {
      const code = (err as { code?: string }).code;
      // A reset or broken pipe is how peers usually leave; it is not the port's fault.
      if (code === 'ECONNRESET' || code === 'EPIPE') return ended();
      this.shut({ kind: 'error', error: err });
    };
    input.on('error', failed);
    output.on('error', failed);
  }

  send(frame: Uint8Array): boolean {
    if (this.closed) return false;
    const f = this.#decoder.framing;
    if (frame.length > f.maxFrame) {
      this.dropped.drop('oversize', `a ${frame.length}-byte frame is longer than the framing's ${f.maxFrame}`);
      return false;
    }
    if (this.#out.writableLength + frame.length + f.prefixBytes > this.#maxQueue) {
      this.dropped.drop('backpressure', `the peer is not reading; ${this.#out.writableLength} bytes are queued (limit ${this.#maxQueue})`);
      return false;
    }
    // Frames sent in one turn of the event loop leave in one writev instead of one syscall each.
    if (!this.#corked) {
      this.#corked = true;
      this.#out.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.#out.uncork();
      });
    }
    // encodeFrame copies, so the caller's buffer (a ring view) may be reused at once.
    this.#out.write(encodeFrame(f, frame));
    return true;
  }

  #say(line: string): void {
    try {
      this.#log?.(line);
    } catch {
      // Advisory.
    }
  }

  protected dispose(): void {
    this.#release();
  }
}

/** Returns a port over a connected socket (QEMU framing unless told otherwise); closing the port destroys the socket. */
export function socketPort(socket: Socket, options: StreamPortOptions = {}): FramePort {
  socket.setNoDelay?.(true);
  return new StreamPort(socket, socket, () => socket.destroy(), options);
}

/** Returns a port over a pair of streams, e.g. a child's stdout and stdin; `dispose` runs once when the port closes. */
export function pipePort(input: Readable, output: Writable, dispose: () => void, options: StreamPortOptions = {}): FramePort {
  return new StreamPort(input, output, dispose, options);
}

/** Where a stream listener listens: a UNIX socket path, or a TCP host and port (port 0: any free one). */
export type StreamAddress = { path: string } | { host: string; port: number };

/** A listening socket; `address` is where it ended up (the real port for port 0). */
export interface Listener {
  readonly address: string;
  /** Stops listening (live ports stay open); resolves when the socket is closed. */
  close(): Promise<void>;
}

/**
 * Listens for QEMU `-netdev stream`/`socket` peers (or any stream peer) and calls `onPort` with a
 * port for each connection. Resolves once listening; rejects with INVALID_ARGUMENT when the address
 * cannot be listened on. A stale UNIX socket file at `path` is replaced; any other file is refused.
 */
export async function listenStream(address: StreamAddress, onPort: (port: FramePort) => void, options: StreamPortOptions = {}): Promise<Listener> {
  const server: Server = createServer({ noDelay: true });
  let n = 0;
  const label = 'path' in address ? `unix:${address.path}` : `tcp:${address.host}:${address.port}`;
  server.on('connection', (socket) => {
    const port = socketPort(socket, { ...options, name: `${options.name ?? label}#${++n}` });
    try {
      onPort(port);
    } catch {
      port.close();
    }
  });
  if ('path' in address) {
    if (existsSync(address.path)) {
      if (!lstatSync(address.path).isSocket()) throw new MacslotError('INVALID_ARGUMENT', `${show(address.path)} exists and is not a socket; refusing to replace it`);
      unlinkSync(address.path);
    }
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new MacslotError('INVALID_ARGUMENT', `cannot listen on ${label}: ${err.message}`)));
    if ('path' in address) server.listen(address.path, resolve);
    else server.listen(address.port, address.host, resolve);
  });
  server.on('error', () => {});
  const a = server.address();
  const where = typeof a === 'string' || a === null ? label : `tcp:${a.address}:${a.port}`;
  return {
    address: where,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('path' in address) {
          try {
            unlinkSync(address.path);
          } catch {
            // Already removed.
          }
        }
      }),
  };
}
