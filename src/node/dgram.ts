// Node ports: QEMU -netdev dgram (one frame per UDP datagram), a port per remote address on one socket.

import { createSocket, type Socket } from 'node:dgram';
import { MacslotError } from '../errors.js';
import { QEMU_MAX_FRAME } from '../port/framing.js';
import { PortBase, ioBegin, ioEnd, type FramePort, type QueueBudget, type QueueShare } from '../port/port.js';
import { DEFAULT_DGRAM_IDLE_MS, DEFAULT_MAX_CLIENTS, ListenerBook, intOption, type ListenerLimits } from './listener.js';
import type { Listener } from './stream.js';

/** How a datagram listener behaves. */
export interface DgramOptions extends ListenerLimits {
  /** Close a source's port after this long without a datagram from it (0: never), so its client is released. Default 300 000 (5 min). */
  idleMs?: number;
  /** Bytes the socket may hold unsent for one source before frames to it are dropped. Default 1 MiB. */
  maxQueueBytes?: number;
  /** A budget shared with other ports; frames beyond it are dropped and counted as `queue-budget`. */
  queueBudget?: QueueBudget;
  /** Accepted for symmetry with stream listeners; a datagram is always a whole frame. */
  frameTimeoutMs?: number;
  /** Receives one line per event (new sources, first drops). */
  log?: (line: string) => void;
}

class DgramPort extends PortBase {
  readonly #socket: Socket;
  readonly #host: string;
  readonly #port: number;
  readonly #maxQueue: number;
  readonly #share: QueueShare | undefined;
  readonly #forget: () => void;
  #held = 0;
  lastSeen = Date.now();

  constructor(
    socket: Socket,
    host: string,
    port: number,
    o: { maxQueue: number; budget: QueueBudget | undefined; forget: () => void; log: ((line: string) => void) | undefined },
  ) {
    super(`udp:${host}:${port}`, o.log);
    this.#socket = socket;
    this.#host = host;
    this.#port = port;
    this.#maxQueue = o.maxQueue;
    this.#share = o.budget?.share();
    this.#forget = o.forget;
  }

  deliver(frame: Uint8Array): void {
    this.lastSeen = Date.now();
    if (frame.length > QEMU_MAX_FRAME) return this.dropped.drop('oversize', `a ${frame.length}-byte datagram is above ${QEMU_MAX_FRAME}`);
    // A datagram read from the socket: a switch takes every frame of this turn as one burst.
    ioBegin();
    try {
      this.inlet.push(frame);
    } finally {
      ioEnd();
    }
  }

  send(frame: Uint8Array): boolean {
    if (this.closed) return false;
    const n = frame.length;
    if (this.#held + n > this.#maxQueue) {
      this.dropped.drop('backpressure', `${this.#held} bytes are waiting to be sent (limit ${this.#maxQueue})`);
      return false;
    }
    if (this.#share !== undefined && !this.#share.admits(n)) {
      this.dropped.drop('queue-budget', `all queues together hold their budget; ${this.#held} bytes wait here`);
      return false;
    }
    this.#held += n;
    this.#share?.take(n);
    try {
      // Buffer.from copies: the datagram is sent later, the caller's view is only valid now.
      this.#socket.send(Buffer.from(frame), this.#port, this.#host, (err) => {
        this.#held -= n;
        this.#share?.give(n);
        if (err) this.dropped.drop('send-error', err.message);
      });
    } catch (err) {
      // The socket closed under us.
      this.#held -= n;
      this.#share?.give(n);
      this.dropped.drop('send-error', err instanceof Error ? err.message : String(err));
      return false;
    }
    return true;
  }

  protected dispose(): void {
    this.#share?.close();
    this.#forget();
  }
}

/**
 * Listens for QEMU `-netdev dgram` peers on a UDP address (host 127.0.0.1 or ::1 for loopback; port 0
 * picks one) and calls `onPort` the first time each remote address sends. A source silent for
 * `idleMs` (default 5 min) loses its port, counted as released `idle`; datagrams from new sources
 * beyond `maxClients` (default 256) are dropped and counted as refused `limit`. Resolves once bound;
 * rejects with INVALID_ARGUMENT for a bad option or when it cannot bind. UNIX datagram sockets are not
 * offered: Node's dgram module has none.
 */
export async function listenDgram(
  address: { host: string; port: number },
  onPort: (port: FramePort) => void,
  options: DgramOptions = {},
): Promise<Listener> {
  const idle = intOption('idleMs', options.idleMs, DEFAULT_DGRAM_IDLE_MS, 0);
  const maxQueue = intOption('maxQueueBytes', options.maxQueueBytes, 1 << 20, 1, Number.MAX_SAFE_INTEGER);
  const maxClients = intOption('maxClients', options.maxClients, DEFAULT_MAX_CLIENTS, 1);
  const book = new ListenerBook(`udp:${address.host}:${address.port}`, maxClients, options.log);
  const socket = createSocket({ type: address.host.includes(':') ? 'udp6' : 'udp4' });
  const peers = new Map<string, DgramPort>();
  const admit = (key: string, host: string, port: number): DgramPort | undefined => {
    if (book.full) {
      book.refuse('limit', `${maxClients} sources hold a port (maxClients); datagrams from new ones are dropped`);
      return undefined;
    }
    const p = new DgramPort(socket, host, port, {
      maxQueue,
      budget: options.queueBudget,
      forget: () => {
        if (peers.get(key) === p) {
          peers.delete(key);
          book.closed();
        }
      },
      log: options.log,
    });
    peers.set(key, p);
    book.opened();
    if (!book.handOver(p, () => onPort(p))) return undefined;
    return p.closed ? undefined : p;
  };
  socket.on(
    'message',
    book.guard(
      (msg: Buffer, rinfo: { address: string; port: number }) => {
        const key = `${rinfo.address}:${rinfo.port}`;
        const p = peers.get(key) ?? admit(key, rinfo.address, rinfo.port);
        p?.deliver(msg);
      },
      () => {},
    ),
  );
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('error', (err) =>
      reject(new MacslotError('INVALID_ARGUMENT', `cannot bind udp:${address.host}:${address.port}: ${err.message}`)),
    );
    socket.bind(address.port, address.host, resolve);
  });
  const timer =
    idle > 0
      ? setInterval(
          book.guard(
            () => {
              const now = Date.now();
              for (const p of [...peers.values()]) {
                if (now - p.lastSeen < idle) continue;
                book.release('idle', `${p.name} sent nothing for ${idle} ms (idleMs); its port is closed`);
                p.shut({ kind: 'peer' });
              }
            },
            () => {},
          ),
          Math.max(10, Math.min(Math.ceil(idle / 4), 1000)),
        )
      : undefined;
  timer?.unref();
  const a = socket.address();
  book.address = `udp:${a.address}:${a.port}`;
  return {
    address: book.address,
    counters: () => book.counters(),
    close: () =>
      new Promise<void>((resolve) => {
        if (timer !== undefined) clearInterval(timer);
        for (const p of [...peers.values()]) p.shut({ kind: 'local' });
        socket.close(() => resolve());
      }),
  };
}
