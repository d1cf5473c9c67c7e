// Per-guest uplinks: one uplink (a passt) per guest MAC behind a single switch uplink port, each guest with its own stable IPv4 address.

import { MacslotError, show } from '../errors.js';
import { escapeText } from '../text.js';
import type { FramePort, PortCloseReason } from '../port/port.js';
import { Mac } from '../wire/mac.js';

/** The IPv4 network the per-guest uplinks hand out addresses in. */
export interface GuestNetwork {
  /** The subnet, `A.B.C.D/LEN` (LEN 8..30). Default `10.0.2.0/24`. */
  subnet?: string;
  /** The gateway every guest is given, inside the subnet. Default the subnet's second address (`10.0.2.2`). */
  gateway?: string;
  /** The DNS server every guest is given, inside the subnet. Default the subnet's third address (`10.0.2.3`). */
  dns?: string;
  /** The first and last address handed to guests, inclusive, inside the subnet. Default the subnet's 15th address to its last but one. */
  range?: readonly [string, string];
  /** How many uplinks may run at once. Default 64. */
  maxUplinks?: number;
  /**
   * The guests' IPv6 prefix, `H:H:H:H::/64` (four groups, then `::/64`). Default `fd00:6d73:0:0::/64`. A guest's IPv6 address,
   * and the gateway's and DNS server's, are this prefix with their IPv4 address as the last 32 bits.
   */
  subnet6?: string;
}

/** What a started uplink for one guest needs to know. */
export interface GuestUplinkRequest {
  /** The guest's MAC. */
  readonly mac: string;
  /** The guest's IPv4 address. */
  readonly address: string;
  /** The subnet's prefix length. */
  readonly prefixLength: number;
  /** The gateway's IPv4 address. */
  readonly gateway: string;
  /** The DNS server's IPv4 address. */
  readonly dns: string;
  /** The guest's IPv6 address (the IPv6 prefix with the IPv4 address as its last 32 bits). */
  readonly address6: string;
  /** The gateway's IPv6 address. */
  readonly gateway6: string;
  /** The DNS server's IPv6 address. */
  readonly dns6: string;
}

/** One running uplink of one guest, as its starter returns it. */
export interface GuestUplinkHandle {
  /** The port to the uplink; it closes when the uplink ends. */
  readonly port: FramePort;
  /** The uplink's process id, when it is a process. */
  readonly pid: number | undefined;
  /** Ends the uplink; resolves once it is gone. */
  close(): Promise<void>;
  /** Ends the uplink at once, synchronously: for a process about to exit. */
  kill(): void;
}

/** Starts the uplink of one guest; rejects when it cannot. */
export type GuestUplinkStarter = (request: GuestUplinkRequest) => Promise<GuestUplinkHandle>;

/** The state of a guest's uplink: starting, up, waiting to restart after it ended, refused (over the cap), or stopped. */
export type GuestUplinkState = 'starting' | 'up' | 'restarting' | 'refused' | 'stopped';

/** A guest's uplink as counters show it; plain data. */
export interface GuestUplinkInfo {
  /** The guest's MAC. */
  readonly mac: string;
  /** The guest's IPv4 address; null while it is refused because every address of the range is held. */
  readonly address: string | null;
  /** The guest's IPv6 address given by its uplink's DHCPv6 (null with `address`); its router advertisements give the prefix. */
  readonly address6: string | null;
  /** The uplink's state. */
  readonly state: GuestUplinkState;
  /** The uplink's process id while it runs, else null. */
  readonly pid: number | null;
  /** How many times the uplink was restarted after it ended on its own. */
  readonly restarts: number;
  /** Frames from the guest given to its uplink. */
  readonly toUplink: number;
  /** Frames from the uplink given to the guest. */
  readonly fromUplink: number;
  /**
   * Frames dropped, by reason: `starting` (queue full while it starts), `refused` (over the cap), `no-address` (every address
   * of the range is held), `neighbour-arp` and `neighbour-nd` (kept from the uplink, see GuestUplinks).
   */
  readonly drops: Readonly<Record<string, number>>;
  /** Why the uplink is refused or last failed, else null. */
  readonly error: string | null;
}

/** Options of GuestUplinks. */
export interface GuestUplinksOptions extends GuestNetwork {
  /** Starts one guest's uplink. */
  start: GuestUplinkStarter;
  /** The port's name in logs and tables. Default `uplinks`. */
  name?: string;
  /** Receives one line per event (start, stop, restart, refusal). */
  log?: (line: string) => void;
  /** First restart delay in ms, doubled after each restart up to 5000. Default 200. */
  restartDelayMs?: number;
}

interface Guest {
  readonly mac: Mac;
  /** Null while refused for want of an address. */
  address: number | null;
  /** The value of GuestUplinks' release count when it was last refused an address: no new try until an address may be free. */
  triedAt: number;
  state: GuestUplinkState;
  handle: GuestUplinkHandle | undefined;
  queue: Uint8Array[];
  restarts: number;
  toUplink: number;
  fromUplink: number;
  drops: Record<string, number>;
  error: string | null;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const QUEUE_WHILE_STARTING = 64;
const MAX_ND_SOURCES = 4096;

/** Returns the 32-bit value of dotted IPv4 `text`; throws INVALID_ARGUMENT naming `what`. */
function parseIpv4(text: unknown, what: string): number {
  const m = typeof text === 'string' ? /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text) : null;
  const parts = m ? m.slice(1).map(Number) : [];
  if (!m || parts.some((p) => p > 255)) throw new MacslotError('INVALID_ARGUMENT', `${what} ${show(text)} is not an IPv4 address`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** Returns dotted text of a 32-bit IPv4 value. */
function ipv4Text(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** The checked network: base, prefix length, gateway, DNS and range as numbers. */
export interface ResolvedGuestNetwork {
  /** The subnet's first address. */
  readonly base: number;
  /** The prefix length. */
  readonly prefixLength: number;
  /** The gateway. */
  readonly gateway: number;
  /** The DNS server. */
  readonly dns: number;
  /** The first address handed out. */
  readonly first: number;
  /** The last address handed out. */
  readonly last: number;
  /** The cap on running uplinks. */
  readonly maxUplinks: number;
  /** The IPv6 prefix's four groups, lower case without leading zeros (`fd00:6d73:0:0`). */
  readonly prefix6: string;
}

const PREFIX6 = /^([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4}):([0-9a-fA-F]{1,4})::\/64$/;

/** Returns the IPv6 address of prefix `prefix6` (four groups) with IPv4 value `v` as its last 32 bits, as RFC 5952 writes it. */
function ipv6Of(prefix6: string, v: number): string {
  const groups = [...prefix6.split(':').map((g) => parseInt(g, 16)), 0, 0, v >>> 16, v & 0xffff];
  // The longest run of two or more zero groups (the first of equal ones) becomes `::`.
  let at = -1;
  let length = 1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > length) [at, length] = [i, j - i];
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  return at < 0 ? hex(groups) : `${hex(groups.slice(0, at))}::${hex(groups.slice(at + length))}`;
}

/** Returns the eight bytes of prefix `prefix6` (four groups). */
function prefixBytes(prefix6: string): number[] {
  return prefix6.split(':').flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 255]);
}

/** Checks a GuestNetwork and fills its defaults; throws INVALID_ARGUMENT naming the bad field. */
export function resolveGuestNetwork(n: GuestNetwork): ResolvedGuestNetwork {
  const subnet = n.subnet ?? '10.0.2.0/24';
  const m = typeof subnet === 'string' ? /^([^/]+)\/(\d{1,2})$/.exec(subnet) : null;
  const len = m ? Number(m[2]) : NaN;
  if (!m || !(len >= 8 && len <= 30))
    throw new MacslotError('INVALID_ARGUMENT', `subnet ${show(subnet)} is not A.B.C.D/LEN with LEN in 8..30`);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  const base = parseIpv4(m[1], 'subnet');
  if ((base & ~mask) !== 0) throw new MacslotError('INVALID_ARGUMENT', `subnet ${show(subnet)} has host bits set`);
  const top = (base | ~mask) >>> 0;
  const inside = (v: number, what: string, text: unknown): number => {
    if (v <= base || v >= top) throw new MacslotError('INVALID_ARGUMENT', `${what} ${show(text)} is not a host address of ${subnet}`);
    return v;
  };
  const gateway = inside(n.gateway === undefined ? base + 2 : parseIpv4(n.gateway, 'gateway'), 'gateway', n.gateway);
  const dns = inside(n.dns === undefined ? base + 3 : parseIpv4(n.dns, 'dns'), 'dns', n.dns);
  const range = n.range;
  if (range !== undefined && (!Array.isArray(range) || range.length !== 2))
    throw new MacslotError('INVALID_ARGUMENT', `range ${show(range)} is not [first, last]`);
  const first = inside(range === undefined ? Math.min(base + 15, top - 1) : parseIpv4(range[0], 'range[0]'), 'range[0]', range?.[0]);
  const last = inside(range === undefined ? top - 1 : parseIpv4(range[1], 'range[1]'), 'range[1]', range?.[1]);
  if (last < first) throw new MacslotError('INVALID_ARGUMENT', `range ${show(range)} ends before it starts`);
  const maxUplinks = n.maxUplinks ?? 64;
  if (!Number.isInteger(maxUplinks) || maxUplinks < 1 || maxUplinks > 4096)
    throw new MacslotError('INVALID_ARGUMENT', `maxUplinks must be an integer in 1..4096, got ${show(maxUplinks)}`);
  const usable = last - first + 1 - [gateway, dns].filter((v) => v >= first && v <= last).length;
  if (usable < 1) throw new MacslotError('INVALID_ARGUMENT', `range ${show(range)} holds no address besides the gateway and DNS`);
  const subnet6 = n.subnet6 ?? 'fd00:6d73:0:0::/64';
  const p6 = typeof subnet6 === 'string' ? PREFIX6.exec(subnet6) : null;
  if (!p6) throw new MacslotError('INVALID_ARGUMENT', `subnet6 ${show(subnet6)} is not an IPv6 prefix H:H:H:H::/64`);
  const prefix6 = p6
    .slice(1)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':');
  return { base, prefixLength: len, gateway, dns, first, last, maxUplinks, prefix6 };
}

/** FNV-1a of the MAC's six bytes: where a MAC's address search starts, so the same MAC gets the same address across restarts. */
function macHash(mac: Mac): number {
  let h = 0x811c9dc5;
  for (const b of mac.toBytes()) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

function frameMac(frame: Uint8Array, at: number): Mac {
  return Mac.fromBytes(frame, at, 6);
}

/**
 * A switch's uplink port that gives each guest its own uplink (e.g. a passt), started when the guest first sends to
 * the uplink. A frame is given to the uplink of its source MAC (the switch's anti-spoofing makes that the sender's);
 * what an uplink sends is addressed to its guest only (a broadcast or multicast destination becomes the guest's MAC),
 * so no guest sees another's DHCP or router advertisements.
 *
 * Addresses: a MAC's address is found from a hash of the MAC, probing forward past addresses held by other MACs, and
 * kept for the pool's life, so a guest that reconnects with the same MAC (a named client keeps its MAC through its
 * lease) gets the same address, and the same MAC usually gets it across restarts too.
 *
 * Guest to guest: an uplink answers ARP for every address but its guest's own. So an ARP request for an address of the
 * subnet other than the gateway and the DNS server is kept from the sender's uplink: only the real guest can answer
 * it, the guests resolve each other directly, and their IP traffic stays unicast between their MACs inside the switch.
 * Likewise a neighbour solicitation for an IPv6 address another guest has sent from is kept from the uplink.
 */
export class GuestUplinks implements FramePort {
  /** The port's name. */
  readonly name: string;
  /** The checked network. */
  readonly network: ResolvedGuestNetwork;
  readonly #start: GuestUplinkStarter;
  readonly #log: (line: string) => void;
  readonly #restartMs: number;
  readonly #guests = new Map<number | string, Guest>();
  /** Addresses taken, to the MAC key that holds them (kept after a guest stops, for its return). */
  readonly #taken = new Map<number, number | string>();
  /** IPv6 sources seen from guests, to the MAC key that sent them (bounded, oldest forgotten first). */
  readonly #ndSources = new Map<string, number | string>();
  /** Guests stopped so far: an address may be free again only after one stops. */
  #stops = 0;
  /** Uplinks starting or ending, so stop() resolves only once every one of them is gone. */
  readonly #pending = new Set<Promise<unknown>>();
  /** The IPv6 prefix's bytes and the gateway's and DNS server's IPv6 addresses as ipv6Key text, for the NS check. */
  readonly #prefix6: number[];
  readonly #ownV6: Set<string>;
  #receiver: (frame: Uint8Array) => void = () => {};
  #closeListener: ((reason: PortCloseReason) => void) | undefined;
  #closed = false;

  /** Throws INVALID_ARGUMENT for a bad network. */
  constructor(options: GuestUplinksOptions) {
    this.network = resolveGuestNetwork(options);
    this.#prefix6 = prefixBytes(this.network.prefix6);
    const v6Key = (v: number): string =>
      [...this.#prefix6, 0, 0, 0, 0, v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]
        .map((b) => b.toString(16).padStart(2, '0'))
        .join('');
    this.#ownV6 = new Set([v6Key(this.network.gateway), v6Key(this.network.dns)]);
    if (typeof options.start !== 'function')
      throw new MacslotError('INVALID_ARGUMENT', `start must be a function, got ${show(options.start)}`);
    this.#start = options.start;
    this.name = options.name ?? 'uplinks';
    this.#restartMs = options.restartDelayMs ?? 200;
    const log = options.log;
    this.#log = (line) => {
      try {
        log?.(line);
      } catch {
        // The log is advisory.
      }
    };
  }

  /** Gives a frame from the switch to the uplink of its source MAC, starting it if needed. Never throws. */
  send(frame: Uint8Array): boolean {
    if (this.#closed || frame.length < 14 || (frame[6]! & 1) !== 0) return false;
    const mac = frameMac(frame, 6);
    this.#noteNdSource(frame, mac.key);
    let g = this.#guests.get(mac.key);
    if (g === undefined || g.state === 'stopped' || g.state === 'refused') g = this.#open(mac);
    const kept = this.#keptFromUplink(frame, mac.key);
    if (kept !== undefined) return this.#drop(g, kept);
    if (g.state === 'up' && g.handle !== undefined) {
      g.toUplink++;
      return g.handle.port.send(frame);
    }
    if (g.state === 'refused') return this.#drop(g, g.address === null ? 'no-address' : 'refused');
    if (g.queue.length >= QUEUE_WHILE_STARTING) return this.#drop(g, 'starting');
    g.queue.push(frame.slice());
    return true;
  }

  /** Sets the receiver of frames from every uplink. */
  onFrame(receiver: (frame: Uint8Array) => void): void {
    this.#receiver = receiver;
  }

  /** Sets the listener called when the pool closes. */
  onClose(listener: (reason: PortCloseReason) => void): void {
    this.#closeListener = listener;
  }

  /** Stops every uplink (without waiting; see stop()). Idempotent. */
  close(): void {
    void this.stop();
  }

  /** Stops every uplink; resolves once all are gone. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#closeListener?.({ kind: 'local' });
      } catch {
        // Nothing is thrown into a listener's caller.
      }
    }
    await Promise.all([...this.#guests.values()].map((g) => this.#stopGuest(g)));
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  /** Ends every uplink at once, synchronously: for a process about to exit. */
  kill(): void {
    this.#closed = true;
    for (const g of this.#guests.values()) {
      clearTimeout(g.timer);
      g.state = 'stopped';
      g.handle?.kill();
      g.handle = undefined;
    }
  }

  /**
   * Returns the address of `mac`, starting its uplink now if it has none running. Throws QUOTA_EXCEEDED when the cap
   * of running uplinks is reached or every address of the range is held, PORT_CLOSED after close(), INVALID_MAC for a
   * bad MAC.
   */
  open(mac: string | Mac): string {
    const m = typeof mac === 'string' ? Mac.parse(mac) : mac;
    const g = this.#guests.get(m.key);
    if (g !== undefined && g.state !== 'stopped' && g.state !== 'refused' && g.address !== null) return ipv4Text(g.address);
    if (this.#closed) throw new MacslotError('PORT_CLOSED', `the uplinks are closed; none for ${m.toString()}`);
    const opened = this.#open(m);
    if (opened.state === 'refused' || opened.address === null)
      throw new MacslotError('QUOTA_EXCEEDED', (opened.error ?? 'refused').replace(/^QUOTA_EXCEEDED: /, ''));
    return ipv4Text(opened.address);
  }

  /** Stops the uplink of `mac` (its client was released); its address stays reserved for its return. */
  async release(mac: string | Mac): Promise<void> {
    const m = typeof mac === 'string' ? Mac.parse(mac) : mac;
    const g = this.#guests.get(m.key);
    if (g !== undefined) await this.#stopGuest(g);
  }

  /** Returns the guest uplink of `mac`, or undefined. */
  guest(mac: string | Mac): GuestUplinkInfo | undefined {
    const m = typeof mac === 'string' ? Mac.parse(mac) : mac;
    const g = this.#guests.get(m.key);
    return g === undefined ? undefined : info(g, this.network.prefix6);
  }

  /** Returns every guest uplink, stopped ones included (they keep their address). */
  counters(): GuestUplinkInfo[] {
    return [...this.#guests.values()].map((g) => info(g, this.network.prefix6));
  }

  /** Frames dropped by every uplink, by reason. */
  drops(): Readonly<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const g of this.#guests.values()) for (const [k, v] of Object.entries(g.drops)) out[k] = (out[k] ?? 0) + v;
    return out;
  }

  #drop(g: Guest, reason: string): false {
    g.drops[reason] = (g.drops[reason] ?? 0) + 1;
    return false;
  }

  /**
   * Returns the guest record of `mac`, with its uplink starting, or refused: over the cap, or for want of an address (each
   * refusal logged once, when the guest becomes refused, not once per frame). Never throws.
   */
  #open(mac: Mac): Guest {
    let g = this.#guests.get(mac.key);
    if (g === undefined) {
      g = {
        mac,
        address: null,
        triedAt: -1,
        state: 'starting',
        handle: undefined,
        queue: [],
        restarts: 0,
        toUplink: 0,
        fromUplink: 0,
        drops: {},
        error: null,
        timer: undefined,
      };
      this.#guests.set(mac.key, g);
    }
    if (g.address === null && g.triedAt !== this.#stops) {
      g.triedAt = this.#stops;
      g.address = this.#assign(mac);
    }
    if (g.address === null) {
      if (g.state !== 'refused') {
        const { first, last } = this.network;
        g.error = `QUOTA_EXCEEDED: every address of ${ipv4Text(first)}..${ipv4Text(last)} is held; none for ${mac.toString()}`;
        this.#log(`${escapeText(this.name)}: ${g.error.replace(/^QUOTA_EXCEEDED: /, '')}`);
        g.state = 'refused';
      }
      return g;
    }
    const running = [...this.#guests.values()].filter(
      (x) => x !== g && (x.state === 'starting' || x.state === 'up' || x.state === 'restarting'),
    ).length;
    if (running >= this.network.maxUplinks) {
      // Said once per refusal, not once per frame.
      if (g.state !== 'refused')
        this.#log(`${escapeText(this.name)}: the cap of ${this.network.maxUplinks} uplinks is reached; ${mac.toString()} gets none`);
      g.state = 'refused';
      g.error =
        `QUOTA_EXCEEDED: the cap of ${this.network.maxUplinks} running uplinks is reached; ${mac.toString()} gets none (raise ` +
        `maxUplinks)`;
      return g;
    }
    g.state = 'starting';
    g.error = null;
    this.#launch(g);
    return g;
  }

  /** Returns the address of `mac`: the one it had, else the first free one from its hash, else null when none is free. */
  #assign(mac: Mac): number | null {
    for (const [a, k] of this.#taken) if (k === mac.key) return a;
    const { first, last, gateway, dns } = this.network;
    const size = last - first + 1;
    const start = macHash(mac) % size;
    for (let i = 0; i < size; i++) {
      const a = first + ((start + i) % size);
      if (a === gateway || a === dns || this.#taken.has(a)) continue;
      this.#taken.set(a, mac.key);
      return a;
    }
    // Every address is reserved: give up the one of a guest that is stopped, if any.
    for (const [a, k] of this.#taken) {
      const holder = this.#guests.get(k);
      if (holder === undefined || holder.state === 'stopped') {
        this.#guests.delete(k);
        this.#taken.set(a, mac.key);
        return a;
      }
    }
    return null;
  }

  #launch(g: Guest): void {
    const n = this.network;
    if (g.address === null) return;
    const request: GuestUplinkRequest = {
      mac: g.mac.toString(),
      address: ipv4Text(g.address),
      prefixLength: n.prefixLength,
      gateway: ipv4Text(n.gateway),
      dns: ipv4Text(n.dns),
      address6: ipv6Of(n.prefix6, g.address),
      gateway6: ipv6Of(n.prefix6, n.gateway),
      dns6: ipv6Of(n.prefix6, n.dns),
    };
    let started: Promise<GuestUplinkHandle>;
    try {
      started = this.#start(request);
    } catch (err) {
      started = Promise.reject(err);
    }
    const done = started.then(
      (handle) => {
        if (this.#closed || g.state !== 'starting') {
          handle.kill();
          return;
        }
        g.handle = handle;
        g.state = 'up';
        this.#log(`${escapeText(this.name)}: uplink of ${g.mac.toString()} is up at ${request.address} (pid ${handle.pid ?? '-'})`);
        handle.port.onFrame((f) => this.#fromUplink(g, f));
        handle.port.onClose(() => this.#ended(g, handle));
        for (const f of g.queue.splice(0)) {
          g.toUplink++;
          handle.port.send(f);
        }
      },
      (err: unknown) => {
        g.error = err instanceof Error ? err.message : String(err);
        this.#log(`${escapeText(this.name)}: uplink of ${g.mac.toString()} did not start: ${escapeText(g.error)}`);
        if (g.state === 'starting') this.#retry(g);
      },
    );
    this.#track(done);
  }

  #track(p: Promise<unknown>): void {
    const t = p.catch(() => {}).finally(() => this.#pending.delete(t));
    this.#pending.add(t);
  }

  /** The uplink of `g` ended: restart it with the same address unless it was stopped. */
  #ended(g: Guest, handle: GuestUplinkHandle): void {
    if (g.handle !== handle) return;
    g.handle = undefined;
    if (this.#closed || g.state !== 'up') return;
    this.#log(`${escapeText(this.name)}: uplink of ${g.mac.toString()} ended; restarting it with ${ipv4Text(g.address ?? 0)}`);
    this.#track(handle.close());
    this.#retry(g);
  }

  #retry(g: Guest): void {
    if (this.#closed) return;
    g.state = 'restarting';
    g.queue = [];
    const delay = Math.min(5000, this.#restartMs * 2 ** Math.min(g.restarts, 5));
    g.timer = setTimeout(() => {
      g.timer = undefined;
      if (this.#closed || g.state !== 'restarting') return;
      g.restarts++;
      g.state = 'starting';
      this.#launch(g);
    }, delay);
    (g.timer as { unref?: () => void }).unref?.();
  }

  async #stopGuest(g: Guest): Promise<void> {
    clearTimeout(g.timer);
    g.timer = undefined;
    if (g.state !== 'stopped') this.#stops++;
    g.state = 'stopped';
    g.queue = [];
    const h = g.handle;
    g.handle = undefined;
    if (h !== undefined) {
      this.#log(`${escapeText(this.name)}: uplink of ${g.mac.toString()} stopped`);
      const closing = h.close();
      this.#track(closing);
      await closing.catch(() => {});
    }
  }

  /** A frame from `g`'s uplink goes to `g` only: a group destination becomes the guest's MAC. */
  #fromUplink(g: Guest, frame: Uint8Array): void {
    if (frame.length < 14 || g.state !== 'up') return;
    let f = frame;
    if (!frameMac(frame, 0).equals(g.mac)) {
      f = frame.slice();
      f.set(g.mac.toBytes(), 0);
    }
    g.fromUplink++;
    try {
      this.#receiver(f);
    } catch {
      // The switch's receiver never throws; a frame is all that could be lost.
    }
  }

  /** Returns why `frame` (from `key`) must not reach its uplink, or undefined. */
  #keptFromUplink(frame: Uint8Array, key: number | string): string | undefined {
    const type = (frame[12]! << 8) | frame[13]!;
    if (type === 0x0806 && frame.length >= 42) {
      // ARP request (op 1) for IPv4: the target protocol address at 38.
      if (((frame[20]! << 8) | frame[21]!) !== 1) return undefined;
      const target = ((frame[38]! << 24) | (frame[39]! << 16) | (frame[40]! << 8) | frame[41]!) >>> 0;
      const n = this.network;
      const mask = (0xffffffff << (32 - n.prefixLength)) >>> 0;
      if ((target & mask) === n.base && target !== n.gateway && target !== n.dns) return 'neighbour-arp';
      return undefined;
    }
    if (type === 0x86dd && frame.length >= 14 + 40 + 24 && frame[20] === 58 && frame[54] === 135) {
      // Neighbour solicitation: the target address at 14 + 40 + 8. One in the guests' prefix is for a guest, unless it is the
      // gateway's or the DNS server's.
      const target = ipv6Key(frame, 62);
      if (this.#prefix6.every((b, i) => frame[62 + i] === b) && !this.#ownV6.has(target)) return 'neighbour-nd';
      const holder = this.#ndSources.get(target);
      if (holder !== undefined && holder !== key) return 'neighbour-nd';
    }
    return undefined;
  }

  /** Remembers the IPv6 source address a guest sends from, so solicitations for it are kept from other guests' uplinks. */
  #noteNdSource(frame: Uint8Array, key: number | string): void {
    if (frame.length < 54 || ((frame[12]! << 8) | frame[13]!) !== 0x86dd) return;
    const source = ipv6Key(frame, 22);
    if (/^0+$/.test(source)) return;
    if (this.#ndSources.get(source) === key) return;
    this.#ndSources.delete(source);
    if (this.#ndSources.size >= MAX_ND_SOURCES) this.#ndSources.delete(this.#ndSources.keys().next().value!);
    this.#ndSources.set(source, key);
  }
}

function ipv6Key(frame: Uint8Array, at: number): string {
  let s = '';
  for (let i = at; i < at + 16; i++) s += frame[i]!.toString(16).padStart(2, '0');
  return s;
}

function info(g: Guest, prefix6: string): GuestUplinkInfo {
  return {
    mac: g.mac.toString(),
    address: g.address === null ? null : ipv4Text(g.address),
    address6: g.address === null ? null : ipv6Of(prefix6, g.address),
    state: g.state,
    pid: g.handle?.pid ?? null,
    restarts: g.restarts,
    toUplink: g.toUplink,
    fromUplink: g.fromUplink,
    drops: { ...g.drops },
    error: g.error,
  };
}
