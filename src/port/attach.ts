// Ports: attaching NIC clients and the NIC's wire side (the uplink) to ports, with per-port counters and drops by reason.

import type { DataPlane } from '../dataplane/dataplane.js';
import type { RxRing } from '../dataplane/ring.js';
import { MacslotError, isMacslotError, show } from '../errors.js';
import type { NicClient } from '../nic/nic.js';
import { verdictDrops, verdictRule } from '../dataplane/verdict.js';
import { ETH_DST, ETH_SRC, hasEthernetHeader, isMulticastDst } from '../wire/ethernet.js';
import { Mac } from '../wire/mac.js';
import { DropCounter, type FramePort, type PortCloseReason } from './port.js';

/** Frames and bytes in one direction. */
export interface FlowCounters {
  /** Frames. */
  frames: number;
  /** Bytes of those frames. */
  bytes: number;
}

/** A port's counters: `rx` came from its peer and was accepted, `tx` went out to its peer; drops by reason, the port's own included. */
export interface PortCounters {
  /** The port's name. */
  readonly name: string;
  /** Frames from the peer that were accepted. */
  readonly rx: Readonly<FlowCounters>;
  /** Frames sent to the peer. */
  readonly tx: Readonly<FlowCounters>;
  /** Frames dropped, by reason. */
  readonly drops: Readonly<Record<string, number>>;
}

/** How a client is attached. */
export interface BindClientOptions {
  /** Drop frames whose source MAC is not one of the client's active MACs. Default true. */
  antiSpoof?: boolean;
  /** Called once when the port closes (the binding is already gone then). */
  onClose?: (reason: PortCloseReason) => void;
  /** Receives one line for the first drop of each reason. */
  log?: (line: string) => void;
  /**
   * Storm control: broadcast and multicast frames from the port pass at most `rate` per second after a burst of `burst`
   * (default `rate`); the rest are dropped and counted as `storm`. Unicast is never limited. Default: no limit.
   */
  storm?: StormControl;
}

/** A per-port limit on broadcast and multicast frames (a token bucket). */
export interface StormControl {
  /** Frames per second, > 0. */
  readonly rate: number;
  /** Frames that may pass at once after a quiet spell, ≥ 1. Default `rate`. */
  readonly burst?: number;
}

/** Returns `s` checked (rate > 0, burst ≥ 1, both finite); throws INVALID_ARGUMENT naming the bad value. */
export function checkStormControl(s: StormControl): Required<StormControl> {
  if (s === null || typeof s !== 'object')
    throw new MacslotError('INVALID_ARGUMENT', `storm control must be {rate, burst?}, got ${show(s)}`);
  const { rate, burst = rate } = s;
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0)
    throw new MacslotError('INVALID_ARGUMENT', `storm control rate must be a number of frames per second > 0, got ${show(rate)}`);
  if (typeof burst !== 'number' || !Number.isFinite(burst) || burst < 1)
    throw new MacslotError('INVALID_ARGUMENT', `storm control burst must be a number ≥ 1, got ${show(burst)}`);
  return { rate, burst };
}

/** A token bucket: `take` is true while the rate allows one more frame. */
class Bucket {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #at: number;
  constructor(s: Required<StormControl>) {
    this.#rate = s.rate / 1000;
    this.#burst = s.burst;
    this.#tokens = s.burst;
    this.#at = performance.now();
  }
  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** How the uplink is attached. */
export interface BindUplinkOptions {
  /** Called once when the uplink's port closes. */
  onClose?: (reason: PortCloseReason) => void;
  /** Receives one line per event. */
  log?: (line: string) => void;
}

/** A live attachment of a port; `unbind` detaches it without closing the port or the client. */
export interface PortBinding {
  /** The attached port. */
  readonly port: FramePort;
  /** Returns a snapshot of the counters. */
  counters(): PortCounters;
  /** Detaches; idempotent. */
  unbind(): void;
}

/** A client's attachment. */
export interface ClientBinding extends PortBinding {
  /** The client the port is bound to. */
  readonly client: NicClient;
}

// Frames arriving while a frame is being switched (a port that answers synchronously) wait here; bounded so a loop cannot grow it.
const MAX_REENTRANT = 4096;
const LOCAL_RULES = new Set(['unicast-exact', 'software']);
const EMPTY_FRAME = new Uint8Array(0);

class Counted {
  readonly rx: FlowCounters = { frames: 0, bytes: 0 };
  readonly tx: FlowCounters = { frames: 0, bytes: 0 };
  readonly #drops: DropCounter;
  readonly port: FramePort;
  constructor(port: FramePort, log: ((line: string) => void) | undefined) {
    this.port = port;
    this.#drops = new DropCounter(port.name, log);
  }
  drop(reason: string, detail: string | (() => string)): void {
    this.#drops.drop(reason, detail);
  }
  /** Sends `frame` out of the port and counts it; a refusal is counted here unless the port counts its own drops. */
  sendOut(frame: Uint8Array): void {
    let ok = false;
    try {
      ok = this.port.send(frame);
    } catch {
      ok = false;
    }
    if (ok) {
      this.tx.frames++;
      this.tx.bytes += frame.length;
    } else if (this.port.drops === undefined) this.drop('not-sent', 'the port refused a frame');
  }
  snapshot(extra: Record<string, number> = {}): PortCounters {
    const drops: Record<string, number> = { ...this.#drops.snapshot() };
    let own: Readonly<Record<string, number>> = {};
    try {
      own = this.port.drops?.() ?? {};
    } catch {
      own = {};
    }
    for (const [k, v] of [...Object.entries(own), ...Object.entries(extra)]) if (v > 0) drops[k] = (drops[k] ?? 0) + v;
    return { name: this.port.name, rx: { ...this.rx }, tx: { ...this.tx }, drops };
  }
}

class ClientBindingImpl extends Counted implements ClientBinding {
  readonly client: NicClient;
  readonly ring: RxRing;
  readonly antiSpoof: boolean;
  readonly fabric: Fabric;
  readonly storm: Bucket | undefined;
  readonly stormRate: number;
  constructor(fabric: Fabric, client: NicClient, port: FramePort, ring: RxRing, o: BindClientOptions) {
    super(port, o.log);
    this.fabric = fabric;
    this.client = client;
    this.ring = ring;
    this.antiSpoof = o.antiSpoof ?? true;
    const storm = o.storm === undefined ? undefined : checkStormControl(o.storm);
    this.storm = storm === undefined ? undefined : new Bucket(storm);
    this.stormRate = storm?.rate ?? 0;
  }
  counters(): PortCounters {
    const ringDrops = this.fabric.dp.clientCounters(this.client.id).ringDrops - this.ringDropsAtBind;
    return this.snapshot({ 'ring-full': ringDrops });
  }
  ringDropsAtBind = 0;
  unbind(): void {
    this.fabric.unbindClient(this);
  }
}

class UplinkBindingImpl extends Counted implements PortBinding {
  readonly fabric: Fabric;
  constructor(fabric: Fabric, port: FramePort, o: BindUplinkOptions) {
    super(port, o.log);
    this.fabric = fabric;
  }
  counters(): PortCounters {
    return this.snapshot();
  }
  unbind(): void {
    this.fabric.unbindUplink(this);
  }
}

/** Everything attached to one data plane: switching a frame in means draining every bound client's ring out. */
class Fabric {
  readonly dp: DataPlane;
  readonly clients = new Map<number, ClientBindingImpl>();
  uplink: UplinkBindingImpl | undefined;
  #busy = false;
  readonly #queue: (() => void)[] = [];
  // One uplink frame at a time goes through dp.load; reusing this array keeps that path free of allocations.
  readonly #one: Uint8Array[] = [EMPTY_FRAME];

  constructor(dp: DataPlane) {
    this.dp = dp;
    dp.setUplink((frame) => this.#toUplink(frame));
  }

  bindClient(client: NicClient, port: FramePort, o: BindClientOptions): ClientBindingImpl {
    if (!client.open)
      throw new MacslotError('CLIENT_CLOSED', `client ${show(client.name)} is closed; cannot bind it to ${show(port.name)}`);
    this.nic ??= client.nic;
    if (client.nic !== this.nic)
      throw new MacslotError('INVALID_ARGUMENT', `client ${show(client.name)} belongs to another NIC than this data plane`);
    if (this.clients.has(client.id))
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `client ${show(client.name)} is already bound to ${show(this.clients.get(client.id)!.port.name)}`,
      );
    const ring = this.dp.ring(client.id);
    // Frames queued for an earlier holder of this client id are not this port's.
    ring.poll(() => {});
    const b = new ClientBindingImpl(this, client, port, ring, o);
    b.ringDropsAtBind = this.dp.clientCounters(client.id).ringDrops;
    this.clients.set(client.id, b);
    port.onFrame((frame) => this.#enter(b, frame, () => this.#fromClient(b, frame)));
    port.onClose((reason) => {
      this.unbindClient(b);
      o.onClose?.(reason);
    });
    return b;
  }

  bindUplink(port: FramePort, o: BindUplinkOptions): UplinkBindingImpl {
    if (this.uplink !== undefined)
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `the data plane already has an uplink (${show(this.uplink.port.name)}); cannot bind ${show(port.name)}`,
      );
    const b = new UplinkBindingImpl(this, port, o);
    this.uplink = b;
    port.onFrame((frame) => this.#enter(b, frame, () => this.#fromUplink(b, frame)));
    port.onClose((reason) => {
      this.unbindUplink(b);
      o.onClose?.(reason);
    });
    return b;
  }

  unbindClient(b: ClientBindingImpl): void {
    if (this.clients.get(b.client.id) !== b) return;
    this.clients.delete(b.client.id);
    b.port.onFrame(() => {});
  }

  unbindUplink(b: UplinkBindingImpl): void {
    if (this.uplink !== b) return;
    this.uplink = undefined;
    b.port.onFrame(() => {});
  }

  // The data plane follows one NIC, learnt from the first client bound; a client of another NIC has no ring here.
  nic: unknown;

  /** Runs one ingress, or queues it (copied) while another is in progress, then drains the rings. */
  #enter(b: Counted, frame: Uint8Array, run: () => void): void {
    if (this.#busy) {
      if (this.#queue.length >= MAX_REENTRANT) {
        b.drop('reentrant-overflow', `over ${MAX_REENTRANT} frames arrived while one was being switched`);
        return;
      }
      const copy = frame.slice();
      this.#queue.push(
        b instanceof ClientBindingImpl ? () => this.#fromClient(b, copy) : () => this.#fromUplink(b as UplinkBindingImpl, copy),
      );
      return;
    }
    this.#busy = true;
    try {
      run();
      this.#drain();
      for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
        next();
        this.#drain();
      }
    } finally {
      this.#busy = false;
    }
  }

  #fromClient(b: ClientBindingImpl, frame: Uint8Array): void {
    if (this.clients.get(b.client.id) !== b || !b.client.open) return b.drop('closed', 'a frame arrived after the client was detached');
    if (!hasEthernetHeader(frame)) return b.drop('runt', `a ${frame.length}-byte frame is shorter than an Ethernet header`);
    if (frame.length > this.dp.maxFrameLength)
      return b.drop('oversize', `a ${frame.length}-byte frame is longer than the NIC's ${this.dp.maxFrameLength}`);
    if (b.client.slotCount === 0) return b.drop('no-address', `client ${show(b.client.name)} holds no MAC`);
    // Storm control: the destination's group bit (broadcast included).
    if (isMulticastDst(frame) && b.storm !== undefined && !b.storm.take()) {
      return b.drop('storm', `broadcast and multicast above ${b.stormRate} frames per second`);
    }
    let ok = false;
    try {
      // The data plane copies the frame before anything else sees it, so the producer may reuse its buffer.
      ok = this.dp.send(b.client.id, frame, { antiSpoof: b.antiSpoof });
    } catch (err) {
      return b.drop('error', isMacslotError(err) ? err.message : String(err));
    }
    if (!ok)
      return b.drop(
        'spoofed',
        () => `source ${show(Mac.fromBytes(frame, ETH_SRC, 6).toString())} is not a MAC of client ${show(b.client.name)}`,
      );
    b.rx.frames++;
    b.rx.bytes += frame.length;
  }

  #toUplink(frame: Uint8Array): void {
    const u = this.uplink;
    if (u === undefined) return;
    // Bridge mode: a unicast frame for a local owner never touches the wire.
    if (LOCAL_RULES.has(verdictRule(this.dp.verdicts[0]!))) return;
    u.sendOut(frame);
  }

  #fromUplink(b: UplinkBindingImpl, frame: Uint8Array): void {
    if (this.uplink !== b) return;
    if (!hasEthernetHeader(frame)) return b.drop('runt', `a ${frame.length}-byte frame is shorter than an Ethernet header`);
    if (frame.length > this.dp.maxFrameLength)
      return b.drop('oversize', `a ${frame.length}-byte frame is longer than the NIC's ${this.dp.maxFrameLength}`);
    const dp = this.dp;
    this.#one[0] = frame;
    const loaded = dp.load(this.#one);
    this.#one[0] = EMPTY_FRAME;
    if (loaded !== 1) return b.drop('oversize', `a ${frame.length}-byte frame does not fit the data plane's pool`);
    try {
      dp.rxBurst(1);
    } catch (err) {
      return b.drop('error', isMacslotError(err) ? err.message : String(err));
    }
    const word = dp.verdicts[0]!;
    const rule = verdictRule(word);
    if (verdictDrops(word))
      return b.drop(
        rule.slice(5) === 'unknown' ? 'no-owner' : `filter-${rule.slice(5)}`,
        () => `no client accepts a frame for ${Mac.fromBytes(frame, ETH_DST, 6).toString()}`,
      );
    b.rx.frames++;
    b.rx.bytes += frame.length;
  }

  #drain(): void {
    for (const b of this.clients.values()) {
      if (b.ring.pending === 0) continue;
      try {
        b.ring.poll((f) => b.sendOut(f));
      } catch (err) {
        b.drop('ring-corrupt', isMacslotError(err) ? err.message : String(err));
      }
    }
  }
}

const fabrics = new WeakMap<DataPlane, Fabric>();

function fabricOf(dp: DataPlane): Fabric {
  let f = fabrics.get(dp);
  if (f === undefined) {
    f = new Fabric(dp);
    fabrics.set(dp, f);
  }
  return f;
}

/**
 * Attaches `client` to `port`: frames the data plane delivers to the client go out of the port, and
 * frames from the port are transmitted as the client (anti-spoof on by default). Returns the binding.
 * Throws CLIENT_CLOSED for a closed client, INVALID_ARGUMENT when it is already bound or of another
 * NIC. The data path never throws: bad frames are dropped and counted by reason. The data plane's
 * uplink hook belongs to the attachments from then on.
 */
export function bindClient(dp: DataPlane, client: NicClient, port: FramePort, options: BindClientOptions = {}): ClientBinding {
  return fabricOf(dp).bindClient(client, port, options);
}

/**
 * Attaches the NIC's wire side to `port`: what clients send leaves through it (except unicast for a
 * local owner), and frames from it go through the accept filter to the clients. Returns the binding;
 * throws INVALID_ARGUMENT when the data plane already has one.
 */
export function bindUplink(dp: DataPlane, port: FramePort, options: BindUplinkOptions = {}): PortBinding {
  return fabricOf(dp).bindUplink(port, options);
}
