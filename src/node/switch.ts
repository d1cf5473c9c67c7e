// Node switch: the listeners and child peers around a Switch — stream, datagram and WebSocket listeners, vde_plug ports and the uplink.

import { MacslotError, show } from '../errors.js';
import { tapPort, type PcapngTap } from '../port/middleware.js';
import { QueueBudget, type FramePort } from '../port/port.js';
import type { Switch } from '../switch/switch.js';
import { listenDgram } from './dgram.js';
import type { GuestUplinks } from '../switch/uplinks.js';
import { passtUplinks, type PasstUplinksOptions } from './passt-pool.js';
import { connectStream, spawnPasst, spawnVdePlug, type PasstPeer } from './peers.js';
import { listenStream, type Listener } from './stream.js';
import { listenWebSocket } from './websocket.js';

/** Where the switch listens. `name` gives every connection of that listener one configured client. */
export type ListenSpec =
  | {
      /** The protocol. */
      readonly kind: 'unix';
      /** The UNIX socket's path. */
      readonly path: string;
      /** The client every connection of this listener gets. */
      readonly name?: string;
    }
  | {
      /** The protocol. */
      readonly kind: 'tcp';
      /** The host to listen on. */
      readonly host: string;
      /** The port to listen on (0 for any). */
      readonly port: number;
      /** The client every connection of this listener gets. */
      readonly name?: string;
    }
  | {
      /** The protocol. */
      readonly kind: 'udp';
      /** The host to listen on. */
      readonly host: string;
      /** The port to listen on (0 for any). */
      readonly port: number;
    }
  | {
      /** The protocol. */
      readonly kind: 'ws';
      /** The host to listen on. */
      readonly host: string;
      /** The port to listen on (0 for any). */
      readonly port: number;
    };

/**
 * The switch's wire side: passt started in a temporary directory, an existing stream socket (e.g. a passt you run), vde_plug on a VNL, or
 * none.
 */
export type UplinkSpec =
  | {
      /** What the uplink is. */
      readonly kind: 'none';
    }
  | {
      /** What the uplink is: one passt per guest, each giving its guest its own address (see passtUplinks). */
      readonly kind: 'passt';
    }
  | {
      /** What the uplink is: a single passt shared by every guest (they all get its one address). */
      readonly kind: 'passt-shared';
    }
  | {
      /** What the uplink is. */
      readonly kind: 'stream';
      /** The stream socket's path. */
      readonly path: string;
    }
  | {
      /** What the uplink is. */
      readonly kind: 'vde';
      /** The VDE network locator given to vde_plug. */
      readonly vnl: string;
    };

function hostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new MacslotError('INVALID_ARGUMENT', `${what} ${show(text)} is not HOST:PORT`);
  return { host: m[1] ?? m[2]!, port };
}

/**
 * Returns the listen spec of `unix:PATH[@NAME]`, `tcp:HOST:PORT[@NAME]`, `udp:HOST:PORT` or
 * `ws:HOST:PORT` (also `ws://HOST:PORT`). Throws INVALID_ARGUMENT naming the bad text.
 */
export function parseListen(text: string): ListenSpec {
  const at = text.lastIndexOf('@');
  const [body, name] =
    at > 0 && (text.startsWith('unix:') || text.startsWith('tcp:')) ? [text.slice(0, at), text.slice(at + 1)] : [text, undefined];
  if (name !== undefined && name.length === 0)
    throw new MacslotError('INVALID_ARGUMENT', `--listen ${show(text)} has an empty client name after @`);
  const withName = name === undefined ? {} : { name };
  if (body.startsWith('unix:') && body.length > 5) return { kind: 'unix', path: body.slice(5), ...withName };
  if (body.startsWith('tcp:')) return { kind: 'tcp', ...hostPort(body.slice(4), '--listen tcp:'), ...withName };
  if (body.startsWith('udp:')) return { kind: 'udp', ...hostPort(body.slice(4), '--listen udp:') };
  if (body.startsWith('ws://')) return { kind: 'ws', ...hostPort(body.slice(5).replace(/\/$/, ''), '--listen ws://') };
  if (body.startsWith('ws:')) return { kind: 'ws', ...hostPort(body.slice(3), '--listen ws:') };
  throw new MacslotError('INVALID_ARGUMENT', `--listen ${show(text)} is not unix:PATH, tcp:HOST:PORT, udp:HOST:PORT or ws:HOST:PORT`);
}

/** Returns the uplink spec of `none`, `passt`, `passt-shared`, `stream:PATH` or `vde:VNL`. Throws INVALID_ARGUMENT naming the bad text. */
export function parseUplink(text: string): UplinkSpec {
  if (text === 'none') return { kind: 'none' };
  if (text === 'passt') return { kind: 'passt' };
  if (text === 'passt-shared') return { kind: 'passt-shared' };
  if (text.startsWith('stream:') && text.length > 7) return { kind: 'stream', path: text.slice(7) };
  if (text.startsWith('vde:') && text.length > 4) return { kind: 'vde', vnl: text.slice(4) };
  throw new MacslotError('INVALID_ARGUMENT', `--uplink ${show(text)} is not none, passt, stream:PATH or vde:VNL (or passt-shared)`);
}

/** A switch being served: where it listens, and how to stop. */
export interface ServedSwitch {
  /** The switch served. */
  readonly switch: Switch;
  /** Where each listener listens, in `listen` order. */
  readonly addresses: readonly string[];
  /**  undefined;|The shared passt uplink (`passt-shared`), when one was started. */
  readonly passt: PasstPeer | undefined;
  /**  undefined;|The per-guest passt uplinks (`passt`): each guest's address and uplink state. */
  readonly uplinks: GuestUplinks | undefined;
  /** The listeners, each with its counters (clients, refusals by reason, idle releases). */
  readonly listeners: readonly Listener[];
  /** The budget all peers' send queues share. */
  readonly queueBudget: QueueBudget;
  /**
   * Stops listening and closes every port, child and the switch at once, without waiting for peers to hang up;
   * resolves when all are closed and passt has exited.
   */
  close(): Promise<void>;
  /** Ends every child (passt with SIGKILL, its directory removed) and closes every port, synchronously: for a process about to exit. */
  kill(): void;
}

/** What to serve besides the listeners. */
export interface ServeOptions {
  /** Where to listen for peers. */
  listen?: readonly ListenSpec[];
  /** The NIC's wire side. Default none. */
  uplink?: UplinkSpec;
  /** vde_plug VNLs, each started as a child and attached as a client port. */
  vde?: readonly string[];
  /** Bytes held for a peer that stops reading. Default 1 MiB. */
  maxQueueBytes?: number;
  /** Bytes all peers' send queues may hold together; beyond it the slow peers lose frames (`queue-budget`). Default 64 MiB. */
  queueBudgetBytes?: number;
  /** Connections (or datagram sources) each listener serves at once. Default 256. */
  maxClientsPerListener?: number;
  /** A datagram source silent this long loses its port and its client (0: never). Default 300 000 (5 min). */
  idleMs?: number;
  /**
   * A stream peer that leaves a frame unfinished, or a WebSocket peer that answers no ping, this long is closed (0: never). Default 30 000.
   */
  frameTimeoutMs?: number;
  /** A WebSocket connection that has not completed its upgrade this long is closed. Default 10 000. */
  handshakeTimeoutMs?: number;
  /** Receives one line per event (connections, refusals, first drops). */
  log?: (line: string) => void;
  /** Records every port's frames, the uplink's included, each port on its own interface named after it. */
  tap?: PcapngTap;
  /** Aborting it while serveSwitch starts (passt may take seconds) undoes what started and rejects with PORT_CLOSED. */
  signal?: AbortSignal;
  /** The per-guest passt uplinks' network (subnet, gateway, DNS, range, cap) and passt's options. Default passtUplinks' defaults. */
  guestNetwork?: PasstUplinksOptions;
}

/**
 * Serves `sw`: listens where told, starts the uplink and the vde_plug ports, and attaches every
 * connection. Resolves once all listen; rejects with INVALID_ARGUMENT or PEER_INVALID (after undoing
 * what it started) when a listener or the uplink cannot start.
 */
export async function serveSwitch(sw: Switch, options: ServeOptions): Promise<ServedSwitch> {
  const log = options.log;
  const queueBudget = new QueueBudget(options.queueBudgetBytes);
  const common = {
    ...(log ? { log } : {}),
    ...(options.maxQueueBytes !== undefined ? { maxQueueBytes: options.maxQueueBytes } : {}),
    ...(options.frameTimeoutMs !== undefined ? { frameTimeoutMs: options.frameTimeoutMs } : {}),
    queueBudget,
  };
  const limited = {
    ...common,
    ...(options.maxClientsPerListener !== undefined ? { maxClients: options.maxClientsPerListener } : {}),
    ...(options.idleMs !== undefined ? { idleMs: options.idleMs } : {}),
    ...(options.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: options.handshakeTimeoutMs } : {}),
  };
  const listeners: Listener[] = [];
  const children: FramePort[] = [];
  let passt: PasstPeer | undefined;
  let uplinks: GuestUplinks | undefined;
  const tap = options.tap;
  const wrap = (port: FramePort): FramePort => {
    if (tap === undefined) return port;
    try {
      return tapPort(port, tap);
    } catch {
      // The tap is closed (the switch is stopping): the port still works, unrecorded.
      return port;
    }
  };
  // `listener` is where a pinned name may come from; `secret` what a WebSocket peer presented for its name.
  const attach = (port: FramePort, name?: string, listener?: string, secret?: string): void => {
    const o = {
      ...(name === undefined ? {} : { name }),
      ...(listener === undefined ? {} : { listener }),
      ...(secret === undefined ? {} : { secret }),
    };
    sw.attach(wrap(port), o).catch(() => {
      // Refusals are counted and logged by the switch, which also closed the port.
    });
  };
  const undo = async (): Promise<void> => {
    await Promise.all(listeners.map((l) => l.close()));
    for (const c of children) c.close();
    await Promise.all([passt?.close(), uplinks?.stop()]);
  };
  try {
    // A name given to a listener is that listener's alone: pinned before any connection can arrive anywhere.
    for (const spec of options.listen ?? [])
      if ((spec.kind === 'unix' || spec.kind === 'tcp') && spec.name !== undefined) sw.pinName(spec.name, listenLabel(spec));
    for (const spec of options.listen ?? []) {
      switch (spec.kind) {
        case 'unix':
          listeners.push(await listenStream({ path: spec.path }, (p) => attach(p, spec.name, listenLabel(spec)), limited));
          break;
        case 'tcp':
          listeners.push(await listenStream({ host: spec.host, port: spec.port }, (p) => attach(p, spec.name, listenLabel(spec)), limited));
          break;
        case 'udp':
          listeners.push(await listenDgram({ host: spec.host, port: spec.port }, (p) => attach(p), limited));
          break;
        case 'ws':
          listeners.push(
            await listenWebSocket(
              { host: spec.host, port: spec.port },
              (p, name, secret) => attach(p, name, listenLabel(spec), secret),
              limited,
            ),
          );
          break;
      }
    }
    const up = options.uplink ?? { kind: 'none' };
    if (up.kind === 'passt') {
      uplinks = passtUplinks({ ...(log ? { log } : {}), ...options.guestNetwork });
      sw.attachGuestUplinks(uplinks, wrap(uplinks));
    } else if (up.kind === 'passt-shared') {
      passt = await spawnPasst({ ...common, ...(options.signal ? { signal: options.signal } : {}) });
      sw.attachUplink(wrap(passt.port));
    } else if (up.kind === 'stream') {
      sw.attachUplink(wrap(await connectStream(up.path, common)));
    } else if (up.kind === 'vde') {
      const p = spawnVdePlug(up.vnl, common);
      children.push(p);
      sw.attachUplink(wrap(p));
    }
    for (const vnl of options.vde ?? []) {
      const p = spawnVdePlug(vnl, common);
      children.push(p);
      attach(p);
    }
  } catch (err) {
    await undo();
    throw err;
  }
  for (const l of listeners) log?.(`listening on ${l.address}`);
  let closing: Promise<void> | undefined;
  return {
    switch: sw,
    addresses: listeners.map((l) => l.address),
    passt,
    uplinks,
    listeners,
    queueBudget,
    close: () => {
      closing ??= (async () => {
        // All at once: a listener's close waits for its connections, which only end when the switch closes their ports.
        const stopping = Promise.all(listeners.map((l) => l.close().catch(() => {})));
        for (const c of children) c.close();
        await Promise.all([stopping, sw.close(), passt?.close(), uplinks?.stop()]);
      })();
      return closing;
    },
    kill: () => {
      passt?.kill();
      uplinks?.kill();
      for (const c of children) c.close();
      for (const p of sw.ports()) p.close();
    },
  };
}

/** The name a listen spec's connections carry as their `listener`. */
function listenLabel(spec: ListenSpec): string {
  return spec.kind === 'unix' ? `unix:${spec.path}` : `${spec.kind}:${spec.host}:${spec.port}`;
}
