// Node ports: WebSocket relays (one Ethernet frame per binary message), the protocol of v86's relay_url and similar relays.

import type { IncomingMessage } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { MacslotError, show } from '../errors.js';
import { QEMU_MAX_FRAME } from '../port/framing.js';
import { PortBase, type FramePort } from '../port/port.js';
import type { Listener } from './stream.js';

/** How a WebSocket port behaves. */
export interface WebSocketPortOptions {
  name?: string;
  /** Bytes buffered for a peer that is not reading before frames are dropped. Default 1 MiB. */
  maxQueueBytes?: number;
  log?: (line: string) => void;
}

/**
 * The part of a WebSocket the port uses; a `WebSocket` from the `ws` package is one. Declared here so that
 * the public types do not need `ws`'s type declarations, which are not a dependency.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array, options: { binary: boolean }): void;
  terminate(): void;
  on(event: string, listener: (...args: any[]) => void): unknown;
}

class WsPort extends PortBase {
  readonly #ws: WebSocketLike;
  readonly #maxQueue: number;

  constructor(ws: WebSocketLike, o: WebSocketPortOptions) {
    super(o.name ?? 'ws', o.log);
    this.#ws = ws;
    this.#maxQueue = o.maxQueueBytes ?? 1 << 20;
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (this.closed) return;
      if (!isBinary) return this.dropped.drop('text-message', 'a text message is not a frame');
      const frame = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
      this.inlet.push(frame);
    });
    ws.on('close', () => this.shut({ kind: 'peer' }));
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.dropped.drop('oversize', `a message above ${QEMU_MAX_FRAME} bytes; closing the peer`);
      else this.dropped.drop('protocol', err.message);
      this.shut({ kind: 'error', error: new MacslotError('PEER_INVALID', `${this.name}: ${err.message}`) });
    });
  }

  send(frame: Uint8Array): boolean {
    if (this.closed || this.#ws.readyState !== WebSocket.OPEN) return false;
    if (this.#ws.bufferedAmount + frame.length > this.#maxQueue) {
      this.dropped.drop('backpressure', `the peer is not reading; ${this.#ws.bufferedAmount} bytes are queued (limit ${this.#maxQueue})`);
      return false;
    }
    // A copy: ws may send after this call returns, and the caller's view is only valid now.
    this.#ws.send(Buffer.from(frame), { binary: true });
    return true;
  }
  protected dispose(): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) this.#ws.terminate();
  }
}

/** Returns a port over an open (or opening) WebSocket; closing the port terminates the socket. */
export function webSocketPort(ws: WebSocketLike, options: WebSocketPortOptions = {}): FramePort {
  return new WsPort(ws, options);
}

/**
 * Listens for WebSocket relay clients on `host:port` (port 0 picks one) and calls `onPort` with a
 * port and the name in the URL path (`ws://host:port/vm-a` → "vm-a"; none for `/`). Messages above
 * QEMU's frame size close the peer. Resolves once listening; rejects with INVALID_ARGUMENT when it cannot.
 */
export async function listenWebSocket(address: { host: string; port: number }, onPort: (port: FramePort, name: string | undefined) => void, options: WebSocketPortOptions = {}): Promise<Listener> {
  const wss = new WebSocketServer({ host: address.host, port: address.port, maxPayload: QEMU_MAX_FRAME });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', (err) => reject(new MacslotError('INVALID_ARGUMENT', `cannot listen on ws://${address.host}:${address.port}: ${err.message}`)));
  });
  wss.on('error', () => {});
  const a = wss.address();
  const where = typeof a === 'string' || a === null ? `ws://${address.host}:${address.port}` : typeof a === 'string' ? a : `ws://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
  let n = 0;
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!.replace(/^\/+/, ''));
    const port = webSocketPort(ws, { ...options, name: `${where}/${path}#${++n}` });
    try {
      onPort(port, path === '' ? undefined : path);
    } catch {
      port.close();
    }
  });
  return {
    address: where,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

/** Connects to a WebSocket relay at `url`; resolves with the port, rejects with PEER_INVALID when it cannot connect. */
export async function connectWebSocket(url: string, options: WebSocketPortOptions = {}): Promise<FramePort> {
  const ws = new WebSocket(url, { maxPayload: QEMU_MAX_FRAME });
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
  } catch (err) {
    ws.terminate();
    throw new MacslotError('PEER_INVALID', `cannot connect to ${show(url)}: ${(err as Error).message}`);
  }
  return webSocketPort(ws, { ...options, name: options.name ?? url });
}
