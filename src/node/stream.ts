// Node ports: length-prefixed byte streams (QEMU -netdev stream/socket over UNIX or TCP, vde_plug stdio) and their listeners.

import { lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { MacslotError, show } from '../errors.js';
import { FrameDecoder, QEMU_FRAMING, type StreamFraming } from '../port/framing.js';
import { escapeText } from '../text.js';
import { PortBase, ioBegin, ioEnd, sendQueueAdmits, type FramePort, type QueueBudget, type QueueShare } from '../port/port.js';
import {
  DEFAULT_FRAME_TIMEOUT_MS,
  DEFAULT_MAX_CLIENTS,
  ListenerBook,
  intOption,
  type ListenerCounters,
  type ListenerLimits,
} from './listener.js';

/** What bounds one peer: its own queue, its part of a shared budget, and how long it may take to finish a frame. */
export interface PeerLimits {
  /** Bytes the port may hold for a peer that is not reading; frames beyond it are dropped and counted as `backpressure`. Default 1 MiB. */
  maxQueueBytes?: number;
  /** A budget shared with other ports (e.g. every peer of a switch); frames beyond it are dropped and counted as `queue-budget`. */
  queueBudget?: QueueBudget;
  /** Close a stream peer that started a frame and did not finish it within this many ms (0: never). Default 30 000. */
  frameTimeoutMs?: number;
}

/** How a stream port behaves. */
export interface StreamPortOptions extends PeerLimits {
  /** Name for logs and tables. Default `stream`. */
  name?: string;
  /** Default QEMU's (u32 BE length, at most 69632 bytes). */
  framing?: StreamFraming;
  /** Receives one line for the first drop of each reason, and for a peer closed for a bogus length. */
  log?: (line: string) => void;
}

const DEFAULT_QUEUE = 1 << 20;
// Bytes of one write buffer: the frames one port sends in one turn, framed.
const BATCH_BYTES = 64 * 1024;

/** Checks the limits every port takes; throws INVALID_ARGUMENT naming the bad one. */
export function peerLimits(o: PeerLimits): { maxQueue: number; frameTimeout: number } {
  return {
    maxQueue: intOption('maxQueueBytes', o.maxQueueBytes, DEFAULT_QUEUE, 1, Number.MAX_SAFE_INTEGER),
    frameTimeout: intOption('frameTimeoutMs', o.frameTimeoutMs, DEFAULT_FRAME_TIMEOUT_MS, 0),
  };
}

/** A FramePort over a readable and a writable byte stream with a length prefix per frame. */
class StreamPort extends PortBase {
  readonly #out: Writable;
  readonly #release: () => void;
  readonly #decoder: FrameDecoder;
  readonly #maxQueue: number;
  readonly #frameTimeout: number;
  readonly #share: QueueShare | undefined;
  readonly #log: ((line: string) => void) | undefined;
  #held = 0;
  #frames = 0;
  // The frames of this turn, framed, and buffers whose writes have finished.
  #batch: Buffer | undefined;
  #fill = 0;
  #scheduled = false;
  readonly #spare: Buffer[] = [];
  readonly #flushLater = (): void => {
    this.#scheduled = false;
    this.#flushBatch();
  };
  /** When the frame now being received started (undefined: none is), and the timer that ends a stalled one. */
  #partialSince: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(input: Readable, output: Writable, release: () => void, o: StreamPortOptions) {
    super(o.name ?? 'stream', o.log);
    const limits = peerLimits(o);
    this.#out = output;
    this.#release = release;
    this.#maxQueue = limits.maxQueue;
    this.#frameTimeout = limits.frameTimeout;
    this.#share = o.queueBudget?.share();
    this.#log = o.log;
    this.#decoder = new FrameDecoder(
      o.framing ?? QEMU_FRAMING,
      (frame) => {
        this.#frames++;
        this.inlet.push(frame);
      },
      (bytes, start, end) => {
        this.#frames++;
        this.inlet.pushRange(bytes, start, end);
      },
    );
    input.on('data', (chunk: Buffer) => {
      ioBegin();
      try {
        this.#receive(chunk);
      } catch (err) {
        // Nothing a peer sends may escape into the event loop.
        this.shut({ kind: 'error', error: err instanceof Error ? err : new Error(String(err)) });
      } finally {
        ioEnd();
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

  #receive(chunk: Buffer): void {
    if (this.closed) return;
    const before = this.#frames;
    if (!this.#decoder.push(chunk)) {
      const n = this.#decoder.broken!;
      this.dropped.drop(
        'invalid-length',
        `length prefix ${n} is above the framing's maximum ${this.#decoder.framing.maxFrame}; closing the peer`,
      );
      this.#say(`${this.name}: closed: bogus length ${n} (maximum ${this.#decoder.framing.maxFrame})`);
      this.shut({
        kind: 'error',
        error: new MacslotError('PEER_INVALID', `${this.name} announced a ${n}-byte frame, above ${this.#decoder.framing.maxFrame}`),
      });
      return;
    }
    if (this.closed) return;
    // A frame's clock starts when its first byte arrives; completing any frame restarts it for the next.
    if (this.#decoder.pending === 0) this.#partialSince = undefined;
    else if (this.#frames !== before || this.#partialSince === undefined) this.#partialSince = Date.now();
    if (this.#partialSince !== undefined && this.#frameTimeout > 0 && this.#timer === undefined) this.#arm(this.#frameTimeout);
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const since = this.#partialSince;
      if (this.closed || since === undefined) return;
      const left = since + this.#frameTimeout - Date.now();
      if (left > 0) return this.#arm(left);
      const n = this.#decoder.pending;
      this.dropped.drop('frame-timeout', `the peer sent ${n} bytes of a frame and nothing more for ${this.#frameTimeout} ms; closing it`);
      this.shut({
        kind: 'error',
        error: new MacslotError('PEER_INVALID', `${this.name} left a frame unfinished for ${this.#frameTimeout} ms`),
      });
    }, ms);
    this.#timer.unref?.();
  }

  send(frame: Uint8Array): boolean {
    if (this.closed) return false;
    const f = this.#decoder.framing;
    const len = frame.length;
    if (len > f.maxFrame) {
      this.dropped.drop('oversize', `a ${len}-byte frame is longer than the framing's ${f.maxFrame}`);
      return false;
    }
    const n = len + f.prefixBytes;
    if (!sendQueueAdmits(this.dropped, n, this.#held, this.#maxQueue, this.#share)) return false;
    this.#held += n;
    this.#share?.take(n);
    // Frames sent in one turn of the event loop are framed into one buffer and leave in one write, after the current
    // callback: nothing is allocated per frame, and the caller's buffer (a ring view) may be reused at once.
    let b = this.#batch;
    if (b === undefined || this.#fill + n > b.length) {
      if (b !== undefined) this.#flushBatch();
      b = n > BATCH_BYTES ? Buffer.allocUnsafe(n) : (this.#spare.pop() ?? Buffer.allocUnsafe(BATCH_BYTES));
      this.#batch = b;
      if (!this.#scheduled) {
        this.#scheduled = true;
        process.nextTick(this.#flushLater);
      }
    }
    let at = this.#fill;
    if (f.prefixBytes === 4) {
      b[at] = len >>> 24;
      b[at + 1] = (len >>> 16) & 0xff;
      b[at + 2] = (len >>> 8) & 0xff;
      b[at + 3] = len & 0xff;
      at += 4;
    } else {
      b[at] = len >>> 8;
      b[at + 1] = len & 0xff;
      at += 2;
    }
    b.set(frame, at);
    this.#fill = at + len;
    return true;
  }

  /** Writes the frames batched so far in one write; the queue is counted down once the bytes left. */
  #flushBatch(): void {
    const b = this.#batch;
    const len = this.#fill;
    this.#batch = undefined;
    this.#fill = 0;
    if (b === undefined || len === 0 || this.closed) return;
    // The callback runs once the bytes left (or the stream was destroyed with them), so the queue is counted without
    // trusting writableLength's internals; the buffer is reused after that.
    this.#out.write(len === b.length ? b : b.subarray(0, len), () => {
      this.#held -= len;
      this.#share?.give(len);
      if (b.length === BATCH_BYTES && this.#spare.length < 2) this.#spare.push(b);
    });
  }

  #say(line: string): void {
    try {
      this.#log?.(escapeText(line, 1024));
    } catch {
      // Advisory.
    }
  }

  protected dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#share?.close();
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
export type StreamAddress =
  | {
      /** A UNIX socket's path. */
      path: string;
    }
  | {
      /** A TCP host. */
      host: string;
      /** A TCP port. */
      port: number;
    };

/** A listening socket; `address` is where it ended up (the real port for port 0). */
export interface Listener {
  /** Where it listens, e.g. `unix:/tmp/s.sock` or `tcp:127.0.0.1:5555`. */
  readonly address: string;
  /** Stops listening (live ports stay open); resolves when the socket is closed. */
  close(): Promise<void>;
  /** Returns its clients, refusals and releases as plain data. Never throws. */
  counters(): ListenerCounters;
}

/** How a stream listener behaves: its ports' options and limits, and how many connections it serves at once. */
export interface StreamListenOptions extends StreamPortOptions, ListenerLimits {}

/**
 * Makes `path` free for a new UNIX listener: absent, or a socket file no process serves (a connect
 * is refused), which is removed. Rejects with ADDRESS_IN_USE when a process answers there, and with
 * INVALID_ARGUMENT when the path is not a socket or cannot be probed; never removes anything else.
 */
async function socketPathClaim(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return;
    throw new MacslotError('INVALID_ARGUMENT', `cannot inspect ${show(path)}: ${(err as Error).message}`);
  }
  if (!isSocket) throw new MacslotError('INVALID_ARGUMENT', `${show(path)} exists and is not a socket; refusing to replace it`);
  const code = await new Promise<string | undefined>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(undefined);
    });
    probe.once('error', (err: Error & { code?: string }) => {
      probe.destroy();
      resolve(err.code ?? 'EUNKNOWN');
    });
  });
  if (code === undefined)
    throw new MacslotError('ADDRESS_IN_USE', `a live process is listening on ${show(path)}; refusing to take it over`);
  if (code === 'ENOENT') return;
  // EAGAIN: a live server whose backlog is full; EACCES: cannot tell. Only a refused connect proves the file stale.
  if (code !== 'ECONNREFUSED')
    throw new MacslotError('ADDRESS_IN_USE', `cannot tell whether ${show(path)} is served (${code}); refusing to replace it`);
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT')
      throw new MacslotError('INVALID_ARGUMENT', `cannot remove the stale socket ${show(path)}: ${(err as Error).message}`);
  }
}

/** The inode of the socket file at `path`, or undefined. */
function inodeOf(path: string): number | undefined {
  try {
    const st = lstatSync(path);
    return st.isSocket() ? st.ino : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Listens for QEMU `-netdev stream`/`socket` peers (or any stream peer) and calls `onPort` with a
 * port for each connection. Resolves once listening. Rejects with INVALID_ARGUMENT for a bad option or
 * an address that cannot be listened on, and with ADDRESS_IN_USE when a live process serves the UNIX
 * socket at `path`; a stale socket file there (nobody accepts) is replaced, any other file refused.
 * Beyond `maxClients` connections (default 256) a connection is closed at once and counted as `limit`.
 * Nothing a peer does, and nothing `onPort` throws, escapes: the peer is closed, counted and logged once.
 */
export async function listenStream(
  address: StreamAddress,
  onPort: (port: FramePort) => void,
  options: StreamListenOptions = {},
): Promise<Listener> {
  peerLimits(options);
  const maxClients = intOption('maxClients', options.maxClients, DEFAULT_MAX_CLIENTS, 1);
  const label = 'path' in address ? `unix:${address.path}` : `tcp:${address.host}:${address.port}`;
  if ('path' in address) await socketPathClaim(address.path);
  const server: Server = createServer({ noDelay: true });
  let n = 0;
  const book = new ListenerBook(label, maxClients, options.log);
  const { maxClients: _max, ...portOptions } = options;
  server.on(
    'connection',
    book.guard(
      (socket: Socket) => {
        socket.on('error', () => {});
        if (book.full) {
          book.refuse('limit', `${book.maxClients} connections are open (maxClients)`);
          socket.destroy();
          return;
        }
        book.opened();
        socket.once('close', () => book.closed());
        const port = socketPort(socket, { ...portOptions, name: `${options.name ?? label}#${++n}` });
        book.handOver(port, () => onPort(port));
      },
      (socket: Socket) => socket.destroy(),
    ),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new MacslotError('INVALID_ARGUMENT', `cannot listen on ${label}: ${err.message}`)));
    if ('path' in address) server.listen(address.path, resolve);
    else server.listen(address.port, address.host, resolve);
  });
  server.on('error', () => {});
  const a = server.address();
  const where = typeof a === 'string' || a === null ? label : `tcp:${a.address}:${a.port}`;
  const ino = 'path' in address ? inodeOf(address.path) : undefined;
  book.address = where;
  return {
    address: where,
    counters: () => book.counters(),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Remove the socket file only while it is still the one this listener made.
        if ('path' in address && ino !== undefined && inodeOf(address.path) === ino) {
          try {
            unlinkSync(address.path);
          } catch {
            // Already removed.
          }
        }
      }),
  };
}
