// Node ports: QEMU -netdev dgram (one frame per UDP datagram), a port per remote address on one socket.

import { createSocket, type Socket } from 'node:dgram';
import { MacslotError, show } from '../errors.js';
import { QEMU_MAX_FRAME } from '../port/framing.js';
import { PortBase, type FramePort } from '../port/port.js';
import type { Listener } from './stream.js';

/** How a datagram listener behaves. */
export interface DgramOptions {
  /** Close a peer's port after this long without a datagram from it (0: never). Default 0. */
  idleMs?: number;
  /** Bytes the socket may hold unsent before frames are dropped. Default 1 MiB. */
  maxQueueBytes?: number;
  log?: (line: string) => void;
}

class DgramPort extends PortBase {
  readonly #socket: Socket;
  readonly #host: string;
  readonly #port: number;
  readonly #maxQueue: number;
  readonly #forget: () => void;
  lastSeen = Date.now();

  constructor(socket: Socket, host: string, port: number, maxQueue: number, forget: () => void, log: ((line: string) => void) | undefined) {
    super(`udp:${host}:${port}`, log);
    this.#socket = socket;
    this.#host = host;
    this.#port = port;
    this.#maxQueue = maxQueue;
    this.#forget = forget;
  }

  deliver(frame: Uint8Array): void {
    this.lastSeen = Date.now();
    if (frame.length > QEMU_MAX_FRAME) return this.dropped.drop('oversize', `a ${frame.length}-byte datagram is above ${QEMU_MAX_FRAME}`);
    this.inlet.push(frame);
  }

  send(frame: Uint8Array): boolean {
    if (this.closed) return false;
    let queued = 0;
    try {
      queued = this.#socket.getSendQueueSize();
    } catch {
      return false;
    }
    if (queued + frame.length > this.#maxQueue) {
      this.dropped.drop('backpressure', `${queued} bytes are waiting to be sent (limit ${this.#maxQueue})`);
      return false;
    }
    // Buffer.from copies: the datagram is sent later, the caller's view is only valid now.
    this.#socket.send(Buffer.from(frame), this.#port, this.#host, (err) => {
      if (err) this.dropped.drop('send-error', err.message);
    });
    return true;
  }

  protected dispose(): void {
    this.#forget();
  }
}

/**
 * Listens for QEMU `-netdev dgram` peers on a UDP address (host 127.0.0.1 or ::1 for loopback; port 0
 * picks one) and calls `onPort` the first time each remote address sends. Resolves once bound;
 * rejects with INVALID_ARGUMENT when it cannot bind. UNIX datagram sockets are not offered: Node's
 * dgram module has none.
 */
export async function listenDgram(address: { host: string; port: number }, onPort: (port: FramePort) => void, options: DgramOptions = {}): Promise<Listener> {
  const idle = options.idleMs ?? 0;
  if (!Number.isInteger(idle) || idle < 0) throw new MacslotError('INVALID_ARGUMENT', `idleMs must be a non-negative integer, got ${show(idle)}`);
  const maxQueue = options.maxQueueBytes ?? 1 << 20;
  const socket = createSocket({ type: address.host.includes(':') ? 'udp6' : 'udp4' });
  const peers = new Map<string, DgramPort>();
  socket.on('message', (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    let p = peers.get(key);
    if (p === undefined) {
      const port = new DgramPort(socket, rinfo.address, rinfo.port, maxQueue, () => peers.delete(key), options.log);
      peers.set(key, port);
      p = port;
      try {
        onPort(port);
      } catch {
        port.close();
        return;
      }
    }
    p.deliver(msg);
  });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('error', (err) => reject(new MacslotError('INVALID_ARGUMENT', `cannot bind udp:${address.host}:${address.port}: ${err.message}`)));
    socket.bind(address.port, address.host, resolve);
  });
  const timer =
    idle > 0
      ? setInterval(() => {
          const now = Date.now();
          for (const p of [...peers.values()]) if (now - p.lastSeen > idle) p.shut({ kind: 'peer' });
        }, Math.min(idle, 1000))
      : undefined;
  timer?.unref();
  const a = socket.address();
  return {
    address: `udp:${a.address}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        if (timer !== undefined) clearInterval(timer);
        for (const p of [...peers.values()]) p.shut({ kind: 'local' });
        socket.close(() => resolve());
      }),
  };
}
