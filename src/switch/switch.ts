// Switch: one NIC shared by many ports in bridge mode — a client (and its slot) per connection, frames delivered only where the filter
// says.

import { DataPlane, type DataPlaneOptions } from '../dataplane/dataplane.js';
import { MacslotError, isMacslotError, show } from '../errors.js';
import { escapeText } from '../text.js';
import { MacManager, type AllocateRequest } from '../manager/manager.js';
import type { Nic, NicClient } from '../nic/nic.js';
import {
  bindClient,
  bindUplink,
  checkStormControl,
  setSwitchVlans,
  type ClientBinding,
  type FlowCounters,
  type PortBinding,
  type PortCounters,
  type StormControl,
} from './fabric.js';
import { learnMacPort } from '../port/middleware.js';
import { VlanMembership, type PortVlans, type VlanProtocol } from '../vlan/membership.js';
import type { FramePort, PortCloseReason } from '../port/port.js';
import { Mac } from '../wire/mac.js';
import type { GuestUplinkInfo, GuestUplinkState, GuestUplinks } from './uplinks.js';

/** A client the switch hands to a connection: by name, or to connections in arrival order. */
export interface SwitchClientSpec {
  /** The client's unique name. */
  name: string;
  /**
   * `factory`, `factory:N`, `random`, `random:<prefix>`, `auto`, `learn` (the guest's own source MAC) or a MAC. Default: the switch's
   * `allocation`.
   */
  address?: string;
  /** Groups joined when the client is set up. */
  multicast?: readonly string[];
  /** Receive broadcast. Default true. */
  broadcast?: boolean;
  /** The client's VLANs when the switch applies VLANs (see SwitchOptions.vlans). Default `{ access: 1 }`. */
  vlans?: PortVlans;
}

/** How a switch is built. Only `nic` is required. */
export interface SwitchOptions {
  /** The NIC to switch. */
  nic: Nic;
  /** Options of the data plane the switch creates. */
  dataPlane?: DataPlaneOptions;
  /** Clients handed out by name, or in arrival order to connections that give none. */
  clients?: readonly SwitchClientSpec[];
  /**
   * Address policy of connections beyond the listed clients: `random`, `factory`, `auto` through the manager,
   * `learn` to take the MAC the guest sends from (see learnMacPort), or `none` to refuse them. Default `auto`.
   */
  allocation?: 'random' | 'factory' | 'auto' | 'learn' | 'none';
  /** The manager that allocates `random`/`factory`/`auto` MACs. Default: a new one over `nic`. */
  manager?: MacManager;
  /**
   * true: drop (and count as `spoofed`) a frame whose source MAC is not one of the sender's MACs. false: send it with
   * the sender's own MAC as its source instead (the data plane rewrites it). A port never sends as another. Default true.
   */
  antiSpoof?: boolean;
  /** MACs known on the network (a router, a host on the wire): no port ever learns them. Default none. */
  neighbours?: readonly string[];
  /**
   * Secrets of client names: a connection that asks for one of these names by itself (a WebSocket path) must present
   * the secret, compared in constant time before the client is set up; such names are never handed out in arrival
   * order. Connections of a listener the name is pinned to (see pinName) need none. Default none.
   */
  secrets?: Readonly<Record<string, string>>;
  /**
   * Storm control of every client port: broadcast and multicast frames it sends pass at `rate` per second after a
   * burst of `burst` (default `rate`); the rest are dropped and counted as `storm`. false: no limit.
   * Default `{ rate: 1000, burst: 1000 }`.
   */
  stormControl?: StormControl | false;
  /** Keep a disconnected client's slot this long for the same name (0: release at once). Default 0. */
  leaseTtlMs?: number;
  /** Receives one line per notable event: connections, refusals, the first drop of each reason per port. */
  log?: (line: string) => void;
  /**
   * Apply VLANs, as a VLAN-filtering Linux bridge: the uplink's membership (and the tag's protocol); each client takes
   * its spec's `vlans`, `{ access: 1 }` without one. Default: no VLANs.
   */
  vlans?: SwitchVlans;
}

/** The switch's VLANs: the uplink's membership and the tag it reads and writes. */
export interface SwitchVlans {
  /** The uplink's VLANs (a trunk, usually, with or without a native VLAN). */
  uplink: PortVlans;
  /** The tag the switch reads and writes. Default: `802.1Q`. */
  protocol?: VlanProtocol;
}

/** A connected port as the switch reports it. */
export interface SwitchPortInfo extends PortCounters {
  /** The port's id, unique for the switch's life. */
  readonly id: number;
  /** Name of the port's client. */
  readonly client: string;
  /** The port's active MAC; null while it has none (a `learn` port before its first frame). */
  readonly mac: string | null;
  /** With per-guest uplinks: the guest's IPv4 address, null before its first frame to the uplink. */
  readonly address?: string | null;
  /** With per-guest uplinks: the state of the guest's uplink, null before its first frame to the uplink. */
  readonly uplinkState?: GuestUplinkState | null;
}

/** What `counters()` returns; plain data, ready for JSON. */
export interface SwitchCounters {
  /** The connected ports. */
  readonly ports: readonly SwitchPortInfo[];
  /** The uplink's counters; null without one. */
  readonly uplink: PortCounters | null;
  /** Sums over ports that have disconnected. */
  readonly closed: {
    /** How many ports have disconnected. */
    readonly ports: number;
    /** Frames and bytes they received from their peers. */
    readonly rx: FlowCounters;
    /** Frames and bytes they sent to their peers. */
    readonly tx: FlowCounters;
    /** Their drops, by reason. */
    readonly drops: Readonly<Record<string, number>>;
  };
  /** Connections refused, by error code. */
  readonly refused: Readonly<Record<string, number>>;
  /** Clients kept under a lease after their port disconnected. */
  readonly leased: readonly string[];
  /** Frames the data plane dropped because their source was not the sender's, over all ports. */
  readonly spoofed: number;
  /** With per-guest uplinks: every guest's address and uplink, released guests' included (they keep their address). */
  readonly guests?: readonly GuestUplinkInfo[];
}

/** A port attached to the switch. */
export interface SwitchPort {
  /** The port's id, unique for the switch's life. */
  readonly id: number;
  /** The attached port. */
  readonly port: FramePort;
  /** The port's client. */
  readonly client: NicClient;
  /** The client's active MAC. */
  readonly mac: Mac | undefined;
  /** Returns the port's counters. */
  counters(): SwitchPortInfo;
  /** Closes the port; its client is released or leased as configured. */
  close(): void;
}

interface Holding {
  readonly name: string;
  readonly client: NicClient;
  readonly release: () => Promise<void>;
  /** The client's MAC is the one its guest sends from. */
  readonly learn: boolean;
  timer: unknown;
}

const SPEC_ADDRESS = /^(factory|factory:\d+|random|random:.+|auto|learn)$/;
/** The storm control of a switch that is told nothing. */
export const DEFAULT_STORM_CONTROL: Readonly<Required<StormControl>> = { rate: 1000, burst: 1000 };
// Sources seen from the uplink that learn refuses; bounded, oldest forgotten first.
const MAX_UPLINK_SOURCES = 4096;

/** True when `a` equals `b`; the time taken depends on the lengths only, never on where they differ. */
function sameSecret(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) diff |= (x[i % Math.max(x.length, 1)] ?? 0) ^ (y[i % Math.max(y.length, 1)] ?? 0);
  return diff === 0;
}

/** The uplink as attached: records the unicast sources it sends from, so no port learns them. */
class UplinkWatch implements FramePort {
  readonly name: string;
  readonly #inner: FramePort;
  readonly #seen: (frame: Uint8Array) => void;
  constructor(inner: FramePort, seen: (frame: Uint8Array) => void) {
    this.#inner = inner;
    this.name = inner.name;
    this.#seen = seen;
  }
  send(frame: Uint8Array): boolean {
    return this.#inner.send(frame);
  }
  onFrame(receiver: (frame: Uint8Array) => void): void {
    this.#inner.onFrame((frame) => {
      this.#seen(frame);
      receiver(frame);
    });
  }
  onClose(listener: (reason: PortCloseReason) => void): void {
    this.#inner.onClose(listener);
  }
  close(): void {
    this.#inner.close();
  }
  drops(): Readonly<Record<string, number>> {
    return this.#inner.drops?.() ?? {};
  }
}

function unref(t: unknown): void {
  (t as { unref?: () => void } | null)?.unref?.();
}

/** One NIC switched among ports: unicast only to its owner, broadcast and joined multicast to every accepting client but the sender. */
export class Switch {
  /** The NIC switched. */
  readonly nic: Nic;
  /** The data plane that classifies every frame. */
  readonly dataPlane: DataPlane;
  /** The MAC manager that hands out clients' MACs and leases. */
  readonly manager: MacManager;
  /** True when frames with a source MAC not the port's are dropped. */
  readonly antiSpoof: boolean;
  /** How long a disconnected client's MAC is kept for its return. */
  readonly leaseTtlMs: number;
  /** How MACs are chosen for connections beyond the listed clients. */
  readonly allocation: 'random' | 'factory' | 'auto' | 'learn' | 'none';
  /** The storm control of every client port, or undefined for none. */
  readonly stormControl: Readonly<Required<StormControl>> | undefined;
  readonly #specs: readonly SwitchClientSpec[];
  /** MACs no port learns, with the reason: the NIC's own, neighbours, configured clients' fixed MACs. */
  readonly #protected = new Map<number | string, string>();
  /** Unicast sources seen from the uplink, oldest first. */
  readonly #uplinkSources = new Set<number>();
  readonly #secrets: ReadonlyMap<string, string>;
  /** Names a listener was given (`--listen unix:PATH@NAME`): only that listener's connections get them. */
  readonly #pins = new Map<string, string>();
  readonly #ownManager: boolean;
  readonly #log: (line: string) => void;
  readonly #ports = new Map<number, { port: SwitchPortImpl; binding: ClientBinding; holding: Holding }>();
  /** Names held: by a live port, or leased after a disconnect. */
  readonly #held = new Map<string, { holding: Holding; live: boolean }>();
  /** Names being set up, so two connections never race for one. */
  readonly #pending = new Set<string>();
  readonly #closedTotals = { ports: 0, rx: { frames: 0, bytes: 0 }, tx: { frames: 0, bytes: 0 }, drops: {} as Record<string, number> };
  // The data plane's last count, kept when it closes: a closed data plane answers nothing.
  #spoofedAtClose: number | undefined;
  readonly #refused: Record<string, number> = {};
  readonly #releasing = new Set<Promise<void>>();
  #uplink: PortBinding | undefined;
  #guestUplinks: GuestUplinks | undefined;
  #nextId = 1;
  #anon = 0;
  #closed = false;

  // The ports' VLANs (clients by id, the uplink as 'uplink'); undefined for a switch without VLANs.
  readonly #vlans: VlanMembership<number | string> | undefined;

  private constructor(o: SwitchOptions, dp: DataPlane, manager: MacManager, ownManager: boolean) {
    this.nic = o.nic;
    this.dataPlane = dp;
    this.manager = manager;
    this.#ownManager = ownManager;
    this.antiSpoof = o.antiSpoof ?? true;
    this.leaseTtlMs = o.leaseTtlMs ?? 0;
    this.allocation = o.allocation ?? 'auto';
    this.#specs = o.clients ?? [];
    this.stormControl =
      o.stormControl === false ? undefined : o.stormControl === undefined ? DEFAULT_STORM_CONTROL : checkStormControl(o.stormControl);
    this.#secrets = new Map(Object.entries(o.secrets ?? {}));
    this.#protectInit(o);
    if (o.vlans !== undefined) {
      this.#vlans = new VlanMembership<number | string>(o.vlans.protocol === undefined ? {} : { protocol: o.vlans.protocol });
      this.#vlans.set('uplink', o.vlans.uplink);
      setSwitchVlans(dp, this.#vlans);
    }
    const log = o.log;
    this.#log = (line) => {
      try {
        log?.(line);
      } catch {
        // The log is advisory.
      }
    };
  }

  /**
   * Resolves with a switch over `options.nic`; rejects with INVALID_ARGUMENT for a bad option (a duplicate or malformed client, a bad TTL
   * or policy).
   */
  static async create(options: SwitchOptions): Promise<Switch> {
    if (options === null || typeof options !== 'object')
      throw new MacslotError('INVALID_ARGUMENT', `switch options must be an object, got ${show(options)}`);
    const ttl = options.leaseTtlMs ?? 0;
    if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0 || ttl > 2 ** 31 - 1)
      throw new MacslotError('INVALID_ARGUMENT', `leaseTtlMs must be an integer in 0..${2 ** 31 - 1}, got ${show(ttl)}`);
    const alloc = options.allocation ?? 'auto';
    if (!['random', 'factory', 'auto', 'learn', 'none'].includes(alloc))
      throw new MacslotError('INVALID_ARGUMENT', `allocation must be random, factory, auto, learn or none, got ${show(alloc)}`);
    const names = new Set<string>();
    for (const [i, c] of (options.clients ?? []).entries()) {
      if (c === null || typeof c !== 'object' || typeof c.name !== 'string' || c.name.length === 0)
        throw new MacslotError('INVALID_ARGUMENT', `clients[${i}] needs a non-empty name, got ${show(c)}`);
      if (names.has(c.name)) throw new MacslotError('INVALID_ARGUMENT', `clients[${i}].name ${show(c.name)} appears twice`);
      names.add(c.name);
      if (c.address !== undefined && !SPEC_ADDRESS.test(c.address)) {
        let ok = false;
        try {
          ok = Mac.parse(c.address).isValidUnicast;
        } catch {
          ok = false;
        }
        if (!ok)
          throw new MacslotError(
            'INVALID_ARGUMENT',
            `clients[${i}].address ${show(c.address)} is not factory, factory:N, random, random:<prefix>, auto, learn or a unicast MAC`,
          );
      }
    }
    if (options.stormControl !== undefined && options.stormControl !== false) checkStormControl(options.stormControl);
    for (const [i, n] of (options.neighbours ?? []).entries()) {
      try {
        Mac.parse(n);
      } catch {
        throw new MacslotError('INVALID_ARGUMENT', `neighbours[${i}] ${show(n)} is not a MAC`);
      }
    }
    const secrets = options.secrets ?? {};
    if (secrets === null || typeof secrets !== 'object')
      throw new MacslotError('INVALID_ARGUMENT', `secrets must be an object of name → secret, got ${show(secrets)}`);
    for (const [n, v] of Object.entries(secrets)) {
      if (typeof v !== 'string' || v.length < 8 || v.length > 1024)
        throw new MacslotError('INVALID_ARGUMENT', `the secret of ${show(n)} must be a string of 8 to 1024 characters`);
    }
    if (options.vlans !== undefined) {
      // Every membership is checked before anything is built: a bad VID is INVALID_ARGUMENT here, not a refused port later.
      const probe = new VlanMembership<string>(options.vlans.protocol === undefined ? {} : { protocol: options.vlans.protocol });
      probe.set('uplink', options.vlans.uplink);
      for (const c of options.clients ?? []) if (c.vlans !== undefined) probe.set(c.name, c.vlans);
    }
    const dp = await DataPlane.create(options.nic, options.vlans === undefined ? options.dataPlane : { ...options.dataPlane, vlans: true });
    // The switch's own manager never hands out a neighbour's MAC either.
    const manager = options.manager ?? new MacManager({ nics: { nic0: options.nic }, neighbours: options.neighbours ?? [] });
    return new Switch(options, dp, manager, options.manager === undefined);
  }

  /**
   * Resolves with the port attached to a client: the one named `name` (a listed client or a lease
   * kept for it), else the first listed client not connected, pinned or protected by a secret, else a
   * new one under `allocation`. `listener` says which listener the connection came from (see pinName);
   * `secret` is what the peer presented for a name that has one.
   * Rejects with PORT_CLOSED after close(), NAME_IN_USE when the name is connected, NOT_PERMITTED when
   * the name is pinned to another listener or its secret is missing or wrong, TOO_MANY_CLIENTS when no
   * client can be handed out, or the manager's error (MAC_IN_USE, NO_FREE_SLOT, …); the port is closed
   * and the refusal counted and logged in every such case.
   */
  async attach(port: FramePort, options: { name?: string; listener?: string; secret?: string } = {}): Promise<SwitchPort> {
    let closedEarly = false;
    port.onClose(() => (closedEarly = true));
    let name: string | undefined;
    try {
      if (this.#closed) throw new MacslotError('PORT_CLOSED', `the switch is closed; refusing ${show(port.name)}`);
      name = this.#pickName(options.name, options.listener, options.secret);
      this.#pending.add(name);
      const holding = await this.#take(name, options.name !== undefined);
      this.#pending.delete(name);
      if (closedEarly || this.#closed) {
        this.#held.set(name, { holding, live: false });
        this.#release(name);
        throw new MacslotError('PORT_CLOSED', `${show(port.name)} closed while its client ${show(name)} was set up`);
      }
      this.#held.set(name, { holding, live: true });
      const id = this.#nextId++;
      const sp = new SwitchPortImpl(this, id, port, holding.client);
      const learner = holding.learn
        ? learnMacPort(port, holding.client, { protect: (mac) => this.#protectedReason(mac, holding.client), log: this.#log })
        : port;
      const binding = bindClient(this.dataPlane, holding.client, learner, {
        antiSpoof: this.antiSpoof,
        log: this.#log,
        ...(this.stormControl !== undefined ? { storm: this.stormControl } : {}),
        onClose: (reason) => this.#disconnect(id, reason.kind === 'error' ? `error: ${reason.error.message}` : reason.kind),
      });
      this.#ports.set(id, { port: sp, binding, holding });
      if (this.#vlans !== undefined) {
        this.#vlans.set(holding.client.id, this.#specs.find((x) => x.name === name)?.vlans ?? { access: 1 });
        setSwitchVlans(this.dataPlane, this.#vlans);
      }
      this.#log(
        `${escapeText(port.name)}: connected as ${escapeText(holding.client.name)} ` +
          `${sp.mac?.toString() ?? (holding.learn ? '(MAC from its first frame)' : '(no MAC)')}`,
      );
      return sp;
    } catch (err) {
      if (name !== undefined) this.#pending.delete(name);
      const code = isMacslotError(err) ? err.code : 'ERROR';
      this.#refused[code] = (this.#refused[code] ?? 0) + 1;
      this.#log(`${escapeText(port.name)}: refused: ${escapeText(err instanceof Error ? err.message : String(err))}`);
      port.close();
      throw err;
    }
  }

  /** Attaches the uplink (the wire side); returns its binding. Throws INVALID_ARGUMENT when one is attached, PORT_CLOSED after close(). */
  attachUplink(port: FramePort): PortBinding {
    if (this.#closed) throw new MacslotError('PORT_CLOSED', `the switch is closed; refusing uplink ${show(port.name)}`);
    const watched = new UplinkWatch(port, (frame) => this.#noteUplinkSource(frame));
    const b = bindUplink(this.dataPlane, watched, {
      log: this.#log,
      onClose: (reason) => {
        if (this.#uplink === b) this.#uplink = undefined;
        this.#log(`${escapeText(port.name)}: uplink closed (${escapeText(reason.kind === 'error' ? reason.error.message : reason.kind)})`);
      },
    });
    this.#uplink = b;
    this.#log(`${escapeText(port.name)}: uplink attached`);
    return b;
  }

  /**
   * Attaches per-guest uplinks as the uplink: each guest's frames to the wire go to its own uplink, which is stopped
   * when the guest's client is released. Throws as attachUplink.
   */
  attachGuestUplinks(uplinks: GuestUplinks, port: FramePort = uplinks): PortBinding {
    const b = this.attachUplink(port);
    this.#guestUplinks = uplinks;
    return b;
  }

  /** Returns the live ports. */
  ports(): SwitchPort[] {
    return [...this.#ports.values()].map((p) => p.port);
  }

  /** Returns every counter as plain data (JSON-ready). Never throws. */
  counters(): SwitchCounters {
    const t = this.#closedTotals;
    return {
      ports: [...this.#ports.values()].map((p) => p.port.counters()),
      uplink: this.#uplink?.counters() ?? null,
      closed: { ports: t.ports, rx: { ...t.rx }, tx: { ...t.tx }, drops: { ...t.drops } },
      refused: { ...this.#refused },
      leased: [...this.#held].filter(([, h]) => !h.live).map(([n]) => n),
      spoofed: this.#spoofedAtClose ?? this.dataPlane.counters().spoofed,
      ...(this.#guestUplinks !== undefined ? { guests: this.#guestUplinks.counters() } : {}),
    };
  }

  /** Resolves once every port and the uplink are closed and every client released. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of [...this.#ports.values()]) p.port.port.close();
    this.#uplink?.port.close();
    const names = [...this.#held.keys()];
    await Promise.all(names.map((n) => this.#release(n)));
    if (this.#ownManager) await this.manager.close().catch(() => {});
    this.#spoofedAtClose = this.dataPlane.counters().spoofed;
    this.dataPlane.close();
  }

  /** Returns port `id`'s counters; used by SwitchPort. */
  portCounters(id: number, client: NicClient, mac: Mac | undefined): SwitchPortInfo {
    const p = this.#ports.get(id);
    const c = p?.binding.counters() ?? { name: '', rx: { frames: 0, bytes: 0 }, tx: { frames: 0, bytes: 0 }, drops: {} };
    const base = { id, client: client.name, mac: mac?.toString() ?? null, ...c };
    if (this.#guestUplinks === undefined) return base;
    const g = mac === undefined ? undefined : this.#guestUplinks.guest(mac);
    return { ...base, address: g?.address ?? null, uplinkState: g?.state ?? null };
  }

  /**
   * Pins client `name` to the listener called `listener`: only attaches that carry `{ listener }` get it, even
   * when a connection of another listener arrives first; no connection gets it in arrival order. Throws
   * INVALID_ARGUMENT when `name` is pinned to another listener already.
   */
  pinName(name: string, listener: string): void {
    if (typeof name !== 'string' || name.length === 0 || typeof listener !== 'string')
      throw new MacslotError('INVALID_ARGUMENT', `pinName needs a client name and a listener, got ${show(name)}, ${show(listener)}`);
    const had = this.#pins.get(name);
    if (had !== undefined && had !== listener)
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `client ${show(name)} is already pinned to ${show(had)}; cannot pin it to ${show(listener)} too`,
      );
    this.#pins.set(name, listener);
  }

  /** Returns the name a connection gets, after the pins and secrets allow it; throws as attach() rejects. */
  #pickName(requested: string | undefined, listener: string | undefined, secret: string | undefined): string {
    if (requested !== undefined) {
      if (typeof requested !== 'string' || requested.length === 0 || requested.length > 256)
        throw new MacslotError(
          'INVALID_ARGUMENT',
          `port name must be a non-empty string of at most 256 characters, got ${show(requested)}`,
        );
      const pin = this.#pins.get(requested);
      if (pin !== undefined && pin !== listener)
        throw new MacslotError('NOT_PERMITTED', `client ${show(requested)} is reserved for ${show(pin)}`);
      const want = this.#secrets.get(requested);
      // A pinned listener's connections are the name's by configuration; everyone else proves it.
      if (want !== undefined && pin === undefined && !sameSecret(typeof secret === 'string' ? secret : '', want)) {
        throw new MacslotError(
          'NOT_PERMITTED',
          `client ${show(requested)} needs its secret${secret === undefined ? '' : ', and the one given is wrong'}`,
        );
      }
      if (this.#pending.has(requested) || this.#held.get(requested)?.live === true)
        throw new MacslotError('NAME_IN_USE', `client ${show(requested)} is already connected`);
      if (!this.#specs.some((s) => s.name === requested) && !this.#held.has(requested) && this.allocation === 'none') {
        throw new MacslotError('TOO_MANY_CLIENTS', `client ${show(requested)} is not in the configuration and allocation is "none"`);
      }
      return requested;
    }
    const free = this.#specs.find(
      (s) => !this.#pins.has(s.name) && !this.#secrets.has(s.name) && !this.#pending.has(s.name) && this.#held.get(s.name)?.live !== true,
    );
    if (free !== undefined) return free.name;
    if (this.allocation === 'none')
      throw new MacslotError(
        'TOO_MANY_CLIENTS',
        `all ${this.#specs.length} configured clients are connected, pinned or protected, and allocation is "none"`,
      );
    for (;;) {
      const n = `port-${++this.#anon}`;
      if (!this.#held.has(n) && !this.#pending.has(n) && !this.#pins.has(n) && !this.#secrets.has(n) && this.nic.client(n) === undefined)
        return n;
    }
  }

  /** Fills the MACs no port learns: the NIC's primary and factory MACs, the neighbours, configured clients' MACs. */
  #protectInit(o: SwitchOptions): void {
    for (const s of this.nic.slots()) {
      // A slot without an active MAC reports its factory MAC; an active one is the factory's unless it was changed.
      if (s.kind === 'primary' || s.kind === 'factory')
        this.#protected.set(s.mac.key, s.kind === 'primary' ? "the NIC's primary MAC" : 'a factory MAC of the NIC');
    }
    for (const n of o.neighbours ?? []) this.#protected.set(Mac.parse(n).key, 'a neighbour');
    for (const c of o.clients ?? []) {
      if (c.address === undefined || SPEC_ADDRESS.test(c.address)) continue;
      this.#protected.set(Mac.parse(c.address).key, `reserved for client ${show(c.name)}`);
    }
  }

  /** Remembers a unicast source the uplink sent from (bounded: the oldest is forgotten first). */
  #noteUplinkSource(frame: Uint8Array): void {
    if (frame.length < 12 || (frame[6]! & 1) !== 0) return;
    const key = Mac.fromBytes(frame, 6, 6).key as number;
    if (this.#uplinkSources.has(key)) return;
    // A local port's own MAC coming back (a hub or a loop on the wire side) is not the wire's: its guest may learn it again.
    if (this.nic.filterState().unicast.has(key)) return;
    if (this.#uplinkSources.size >= MAX_UPLINK_SOURCES) this.#uplinkSources.delete(this.#uplinkSources.values().next().value!);
    this.#uplinkSources.add(key);
  }

  /** Returns why a port of `client` must not learn `mac`, or undefined. */
  #protectedReason(mac: Mac, client: NicClient): string | undefined {
    const fixed = this.#protected.get(mac.key);
    if (fixed !== undefined) return fixed;
    if (this.#uplinkSources.has(mac.key as number)) return 'a source seen from the uplink';
    for (const l of this.manager.leases()) if (l.mac.equals(mac) && l.guest !== client.name) return `leased to ${show(l.guest)}`;
    return undefined;
  }

  /** Sets up (or takes back from its lease) the client called `name`. */
  async #take(name: string, wanted: boolean): Promise<Holding> {
    const kept = this.#held.get(name);
    if (kept !== undefined && !kept.live) {
      clearTimeout(kept.holding.timer as number);
      kept.holding.timer = undefined;
      if (kept.holding.client.open) return kept.holding;
      this.#held.delete(name);
    }
    const spec = this.#specs.find((s) => s.name === name);
    const address = spec?.address ?? this.allocation;
    let holding: Holding;
    if (address === 'learn') {
      // No MAC yet: the port's learner adds the guest's own on its first frame, and closing the client releases it.
      const client = this.nic.openClient(name, { broadcast: spec?.broadcast ?? true });
      holding = { name, client, release: async () => client.close(), learn: true, timer: undefined };
    } else if (address.startsWith('factory:')) {
      const client = this.nic.openClient(name, { broadcast: spec?.broadcast ?? true });
      try {
        client.addressReserve({ slot: Number(address.slice(8)) });
      } catch (err) {
        client.close();
        throw err;
      }
      holding = { name, client, release: async () => client.close(), learn: false, timer: undefined };
    } else {
      const req: AllocateRequest = { guest: name, nic: 'nic0' };
      if (address === 'random' || address === 'factory' || address === 'auto') req.policy = address;
      else if (address.startsWith('random:')) Object.assign(req, { policy: 'random', prefix: address.slice(7) });
      else Object.assign(req, { policy: 'fixed', mac: address });
      if (this.#ownManager === false) delete req.nic;
      const lease = await this.manager.allocate(req);
      const client = lease.client;
      if (spec?.broadcast === false) client.setBroadcast(false);
      holding = {
        name,
        client,
        release: async () => {
          // Generated names never come back, so their records would only grow the store.
          await this.manager.release(lease, { forget: spec === undefined && !wanted }).catch(() => {});
          // The manager closes the clients it opened; one opened before it stays open otherwise.
          if (client.open && client.slots().length === 0) client.close();
        },
        learn: false,
        timer: undefined,
      };
    }
    try {
      for (const g of spec?.multicast ?? []) holding.client.multicastJoin(g);
    } catch (err) {
      await holding.release();
      throw err;
    }
    return holding;
  }

  #disconnect(id: number, why: string): void {
    const p = this.#ports.get(id);
    if (p === undefined) return;
    const c = p.port.counters();
    this.#ports.delete(id);
    if (this.#vlans !== undefined) {
      this.#vlans.delete(p.holding.client.id);
      try {
        setSwitchVlans(this.dataPlane, this.#vlans);
      } catch {
        // The data plane is closed (the switch is closing): no frame is switched any more.
      }
    }
    const t = this.#closedTotals;
    t.ports++;
    t.rx.frames += c.rx.frames;
    t.rx.bytes += c.rx.bytes;
    t.tx.frames += c.tx.frames;
    t.tx.bytes += c.tx.bytes;
    for (const [k, v] of Object.entries(c.drops)) t.drops[k] = (t.drops[k] ?? 0) + v;
    const name = p.holding.name;
    const h = this.#held.get(name);
    if (h === undefined) return;
    h.live = false;
    if (this.leaseTtlMs > 0 && !this.#closed) {
      this.#log(
        `${escapeText(p.port.port.name)}: disconnected (${escapeText(why)}); ${escapeText(name)} keeps ` +
          `${p.port.mac?.toString() ?? 'its slot'} for ${this.leaseTtlMs} ms`,
      );
      h.holding.timer = setTimeout(() => void this.#release(name), this.leaseTtlMs);
      unref(h.holding.timer);
    } else {
      this.#log(`${escapeText(p.port.port.name)}: disconnected (${escapeText(why)}); ${escapeText(name)} released`);
      void this.#release(name);
    }
  }

  #release(name: string): Promise<void> {
    const h = this.#held.get(name);
    if (h === undefined || h.live) return Promise.resolve();
    this.#held.delete(name);
    clearTimeout(h.holding.timer as number);
    // The guest's own uplink goes with its client; its address stays reserved for its return.
    const c = h.holding.client;
    const macs = c.open
      ? c
          .slots()
          .map((n) => c.addressGet(n))
          .filter((i) => i.active)
          .map((i) => i.mac)
      : [];
    for (const m of macs) void this.#guestUplinks?.release(m).catch(() => {});
    const p = h.holding.release().finally(() => this.#releasing.delete(p));
    this.#releasing.add(p);
    return p;
  }

  /** Resolves once every release in progress has finished, so slots can be counted. Never rejects. */
  async settled(): Promise<void> {
    while (this.#releasing.size > 0) await Promise.allSettled([...this.#releasing]);
  }
}

class SwitchPortImpl implements SwitchPort {
  readonly id: number;
  readonly port: FramePort;
  readonly client: NicClient;
  readonly #sw: Switch;
  constructor(sw: Switch, id: number, port: FramePort, client: NicClient) {
    this.#sw = sw;
    this.id = id;
    this.port = port;
    this.client = client;
  }
  get mac(): Mac | undefined {
    if (!this.client.open) return undefined;
    const s = this.client
      .slots()
      .map((n) => this.client.addressGet(n))
      .find((i) => i.active);
    return s?.mac;
  }
  counters(): SwitchPortInfo {
    return this.#sw.portCounters(this.id, this.client, this.mac);
  }
  close(): void {
    this.port.close();
  }
}
