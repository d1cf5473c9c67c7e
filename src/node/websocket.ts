// Node ports: WebSocket relays (one Ethernet frame per binary message), the protocol of v86's relay_url and similar relays.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { MacslotError, show } from '../errors.js';
import { QEMU_MAX_FRAME } from '../port/framing.js';
import { PortBase, ioBegin, ioEnd, sendQueueAdmits, type FramePort, type QueueBudget, type QueueShare } from '../port/port.js';
import { escapeText, isPrintable } from '../text.js';
import {
  DEFAULT_FRAME_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_CLIENTS,
  ListenerBook,
  intOption,
  type ListenerLimits,
} from './listener.js';
import type { Listener } from './stream.js';

/** How a WebSocket port behaves. */
export interface WebSocketPortOptions {
  /** The port's name in counters and logs. */
  name?: string;
  /** Bytes buffered for a peer that is not reading before frames are dropped. Default 1 MiB. */
  maxQueueBytes?: number;
  /** A budget shared with other ports; frames beyond it are dropped and counted as `queue-budget`. */
  queueBudget?: QueueBudget;
  /**
   * Ping the peer this often and close it when neither a message nor a pong came back since the
   * last ping (0: never), so a peer stalled in the middle of a frame is released. Default 30 000.
   */
  frameTimeoutMs?: number;
  /** Receives one line per event (connections, first drops). */
  log?: (line: string) => void;
}

/**
 * The part of a WebSocket the port uses; a `WebSocket` from the `ws` package is one. Declared here so that
 * the public types do not need `ws`'s type declarations, which are not a dependency.
 */
export interface WebSocketLike {
  /** How binary messages arrive; the port sets it. */
  binaryType: string;
  /** The connection state (1 while open). */
  readonly readyState: number;
  /** Bytes queued for sending. */
  readonly bufferedAmount: number;
  /** Sends one binary message; `cb` reports its end. */
  send(data: Uint8Array, options: { binary: boolean }, cb?: (err?: Error) => void): void;
  /** Closes the connection at once. */
  terminate(): void;
  /** Used for the liveness ping of `frameTimeoutMs` when present. */
  ping?(): void;
  /** Listens for an event (`message`, `close`, `error`, `pong`). */
  // biome-ignore lint/suspicious/noExplicitAny: the ws library's listeners take event-specific arguments; any keeps each assignable.
  on(event: string, listener: (...args: any[]) => void): unknown;
}

/** How a WebSocket listener behaves. */
export interface WebSocketListenOptions extends WebSocketPortOptions, ListenerLimits {
  /** Close a connection that has not completed its upgrade within this many ms. Default 10 000. */
  handshakeTimeoutMs?: number;
}

/** Longest client name a URL path may give. */
const MAX_NAME = 256;

class WsPort extends PortBase {
  readonly #ws: WebSocketLike;
  readonly #maxQueue: number;
  readonly #share: QueueShare | undefined;
  #held = 0;
  #heard = true;
  #pinger: ReturnType<typeof setInterval> | undefined;

  constructor(ws: WebSocketLike, o: WebSocketPortOptions) {
    super(o.name ?? 'ws', o.log);
    this.#ws = ws;
    this.#maxQueue = intOption('maxQueueBytes', o.maxQueueBytes, 1 << 20, 1, Number.MAX_SAFE_INTEGER);
    const every = intOption('frameTimeoutMs', o.frameTimeoutMs, DEFAULT_FRAME_TIMEOUT_MS, 0);
    this.#share = o.queueBudget?.share();
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      this.#heard = true;
      if (this.closed) return;
      if (!isBinary) return this.dropped.drop('text-message', 'a text message is not a frame');
      const frame = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
      // A frame read from the socket: a switch takes every frame of this turn as one burst.
      ioBegin();
      try {
        this.inlet.push(frame);
      } finally {
        ioEnd();
      }
    });
    ws.on('pong', () => (this.#heard = true));
    ws.on('close', () => this.shut({ kind: 'peer' }));
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
        this.dropped.drop('oversize', `a message above ${QEMU_MAX_FRAME} bytes; closing the peer`);
      else this.dropped.drop('protocol', err.message);
      this.shut({ kind: 'error', error: new MacslotError('PEER_INVALID', `${this.name}: ${err.message}`) });
    });
    if (every > 0 && typeof ws.ping === 'function') {
      this.#pinger = setInterval(() => this.#beat(every), every);
      this.#pinger.unref?.();
    }
  }

  #beat(every: number): void {
    if (this.closed || this.#ws.readyState !== WebSocket.OPEN) return;
    if (!this.#heard) {
      this.dropped.drop('frame-timeout', `no message and no answer to a ping for ${every} ms; closing the peer`);
      this.shut({ kind: 'error', error: new MacslotError('PEER_INVALID', `${this.name} stopped answering for ${every} ms`) });
      return;
    }
    this.#heard = false;
    try {
      this.#ws.ping?.();
    } catch {
      // Closing under us; the close event ends the port.
    }
  }

  send(frame: Uint8Array): boolean {
    if (this.closed || this.#ws.readyState !== WebSocket.OPEN) return false;
    const n = frame.length;
    if (!sendQueueAdmits(this.dropped, n, this.#held, this.#maxQueue, this.#share)) return false;
    this.#held += n;
    this.#share?.take(n);
    // A copy: ws may send after this call returns, and the caller's view is only valid now.
    this.#ws.send(Buffer.from(frame), { binary: true }, () => {
      this.#held -= n;
      this.#share?.give(n);
    });
    return true;
  }

  protected dispose(): void {
    if (this.#pinger !== undefined) clearInterval(this.#pinger);
    this.#share?.close();
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) this.#ws.terminate();
  }
}

/** Returns a port over an open (or opening) WebSocket; closing the port terminates the socket. Throws INVALID_ARGUMENT for a bad option. */
export function webSocketPort(ws: WebSocketLike, options: WebSocketPortOptions = {}): FramePort {
  return new WsPort(ws, options);
}

/** The client name in a request's URL path: undefined for `/`, or an error saying why the path is refused. */
function pathName(url: string | undefined): { name: string | undefined } | { error: string } {
  const raw = (url ?? '/').split('?')[0]!.replace(/^\/+/, '');
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    return { error: `the path ${escapeText(raw, 64)} is not valid percent-encoded UTF-8` };
  }
  if (name.length > MAX_NAME) return { error: `the path names a client of ${name.length} characters (at most ${MAX_NAME})` };
  if (!isPrintable(name)) return { error: `the path ${escapeText(name, 64)} holds control or invisible characters` };
  return { name: name === '' ? undefined : name };
}

/** The `secret` query parameter of a request's URL (`ws://h:p/vm-a?secret=…`), for a name protected by one; never logged. */
function secretOf(url: string | undefined): string | undefined {
  const q = (url ?? '').indexOf('?');
  if (q < 0) return undefined;
  try {
    return new URLSearchParams((url ?? '').slice(q + 1)).get('secret') ?? undefined;
  } catch {
    return undefined;
  }
}

/** Answers an HTTP request on `socket` with `status` and closes it; used before any upgrade. */
function refuseHttp(socket: Duplex, status: number, text: string): void {
  try {
    if (socket.writable) socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  } catch {
    // The peer is gone already.
  }
  socket.destroy();
}

/**
 * Listens for WebSocket relay clients on `host:port` (port 0 picks one) and calls `onPort` with a
 * port, the name in the URL path (`ws://host:port/vm-a` → "vm-a"; none for `/`) and the `secret` query
 * parameter, if any (`/vm-a?secret=…`). Resolves once
 * listening; rejects with INVALID_ARGUMENT for a bad option or when it cannot listen.
 *
 * Nothing a peer sends ends the process: a path that is not valid percent-encoded UTF-8, holds control
 * characters or is longer than 256 characters is answered 400 (`bad-path`); a request that is not an
 * upgrade 426 (`not-websocket`); a bad upgrade 400 (`bad-handshake`); headers above Node's limit 431
 * (`oversize-header`); an upgrade not completed within `handshakeTimeoutMs` is closed
 * (`handshake-timeout`); beyond `maxClients` connections (default 256) 503 (`limit`). Each is counted
 * in `counters().refused` and logged once. Messages above QEMU's frame size close the peer.
 */
export async function listenWebSocket(
  address: { host: string; port: number },
  onPort: (port: FramePort, name: string | undefined, secret?: string) => void,
  options: WebSocketListenOptions = {},
): Promise<Listener> {
  const maxClients = intOption('maxClients', options.maxClients, DEFAULT_MAX_CLIENTS, 1);
  const handshake = intOption('handshakeTimeoutMs', options.handshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS, 1);
  intOption('frameTimeoutMs', options.frameTimeoutMs, DEFAULT_FRAME_TIMEOUT_MS, 0);
  intOption('maxQueueBytes', options.maxQueueBytes, 1 << 20, 1, Number.MAX_SAFE_INTEGER);
  const { maxClients: _m, handshakeTimeoutMs: _h, ...portOptions } = options;
  const book = new ListenerBook(`ws://${address.host}:${address.port}`, maxClients, options.log);
  const wss = new WebSocketServer({ noServer: true, maxPayload: QEMU_MAX_FRAME, perMessageDeflate: false });
  const server = createServer();
  /** Connections that have not completed an upgrade, with the timer that ends them. */
  const pending = new Map<Socket, ReturnType<typeof setTimeout>>();
  const settle = (socket: Socket): void => {
    const t = pending.get(socket);
    if (t !== undefined) clearTimeout(t);
    pending.delete(socket);
  };
  const sockets = new Set<Socket>();
  let n = 0;
  server.on(
    'connection',
    book.guard(
      (socket: Socket) => {
        socket.on('error', () => {});
        if (book.full) {
          book.refuse('limit', `${maxClients} connections are open (maxClients)`);
          refuseHttp(socket, 503, 'Service Unavailable');
          return;
        }
        book.opened();
        sockets.add(socket);
        socket.once('close', () => {
          book.closed();
          sockets.delete(socket);
          settle(socket);
        });
        const timer = setTimeout(() => {
          if (!pending.has(socket)) return;
          pending.delete(socket);
          book.refuse('handshake-timeout', `no completed upgrade within ${handshake} ms (handshakeTimeoutMs)`);
          socket.destroy();
        }, handshake);
        timer.unref?.();
        pending.set(socket, timer);
      },
      (socket: Socket) => socket.destroy(),
    ),
  );
  server.on(
    'request',
    book.guard(
      (_req: IncomingMessage, res: ServerResponse) => {
        book.refuse('not-websocket', 'a plain HTTP request, not a WebSocket upgrade');
        res.writeHead(426, { Connection: 'close', Upgrade: 'websocket' });
        res.end();
      },
      (_req: IncomingMessage, res: ServerResponse) => res.destroy(),
    ),
  );
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    try {
      if (err.code === 'HPE_HEADER_OVERFLOW') {
        book.refuse('oversize-header', 'request headers above the HTTP server limit');
        refuseHttp(socket, 431, 'Request Header Fields Too Large');
      } else if (err.code === 'ECONNRESET' || err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        socket.destroy();
      } else {
        book.refuse('bad-request', `malformed HTTP (${err.code ?? err.message})`);
        refuseHttp(socket, 400, 'Bad Request');
      }
    } catch {
      socket.destroy();
    }
  });
  wss.on('wsClientError', (err: Error, socket: Duplex) => {
    book.refuse('bad-handshake', err.message);
    refuseHttp(socket, 400, 'Bad Request');
  });
  server.on(
    'upgrade',
    book.guard(
      (req: IncomingMessage, socket: Socket, head: Buffer) => {
        const parsed = pathName(req.url);
        if ('error' in parsed) {
          book.refuse('bad-path', parsed.error);
          return refuseHttp(socket, 400, 'Bad Request');
        }
        wss.handleUpgrade(req, socket, head, (ws) => {
          try {
            settle(socket);
            const label = parsed.name === undefined ? '' : escapeText(parsed.name);
            const port = webSocketPort(ws, { ...portOptions, name: `${book.address}/${label}#${++n}` });
            book.handOver(port, () => onPort(port, parsed.name, secretOf(req.url)));
          } catch (err) {
            book.refuse('error', err instanceof Error ? err.message : String(err));
            ws.terminate();
          }
        });
      },
      (_req: IncomingMessage, socket: Socket) => socket.destroy(),
    ),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new MacslotError('INVALID_ARGUMENT', `cannot listen on ws://${address.host}:${address.port}: ${err.message}`)),
    );
    server.listen(address.port, address.host, resolve);
  });
  server.on('error', () => {});
  const a = server.address();
  book.address =
    typeof a === 'string' || a === null
      ? `ws://${address.host}:${address.port}`
      : `ws://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
  return {
    address: book.address,
    counters: () => book.counters(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        for (const s of sockets) s.destroy();
        for (const t of pending.values()) clearTimeout(t);
        pending.clear();
        wss.close();
        server.close(() => resolve());
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
