// Switch: the forwarding engine. Attaches NIC clients and the NIC's wire side (the uplink) to ports, with per-port counters
// and drops by reason, and moves frames between them in bursts: frames read in one turn of the event loop go through the
// data plane together, each frame's verdict is handed over explicitly, and only the rings that received frames are read.

import type { DataPlane } from '../dataplane/dataplane.js';
import { R_DROP_UNKNOWN, R_SOFTWARE, R_UNICAST, V_REF_SHIFT, V_RULE_MASK } from '../dataplane/layout.generated.js';
import type { RxRing } from '../dataplane/ring.js';
import { MacslotError, isMacslotError, show } from '../errors.js';
import { RULES } from '../filter/reference.js';
import type { Nic, NicClient } from '../nic/nic.js';
import { ETH_DST, ETH_HLEN, ETH_SRC } from '../wire/ethernet.js';
import { Mac } from '../wire/mac.js';
import { DropCounter, inIo, type FramePort, type PortCloseReason } from '../port/port.js';
import { VlanMembership } from '../vlan/membership.js';
import { insertTag, stripTag } from '../vlan/tag.js';
import { BURST_FULL, SPOOFED, type TransmitBurst, type TransmitSink } from './transmit.js';

// Node runs setImmediate callbacks after the turn's I/O callbacks, which is when a burst is complete; browsers have none,
// and a zero timeout also runs after the current task.
const turnSchedule: (fn: () => void) => void =
  (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate ?? ((fn) => void setTimeout(fn, 0));

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

const EMPTY: readonly ClientBindingImpl[] = [];
// Drop rules are `drop-<reason>`; a port counts them as `filter-<reason>`.
const RULE_NAMES: readonly string[] = RULES.map((r) => r.replace(/^drop-/, ''));

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
  readonly sendOut = (frame: Uint8Array): void => {
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
  };
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
  /** Marked while the current burst delivered to this client's ring. */
  touched = false;
  ringDropsAtBind = 0;
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
  /** The port's receivers: made once per binding, so no frame costs a closure. */
  readonly receive = (frame: Uint8Array): void => this.fabric.fromClient(this, frame, 0, frame.length);
  readonly receiveRange = (bytes: Uint8Array, start: number, end: number): void => this.fabric.fromClient(this, bytes, start, end);
  counters(): PortCounters {
    const ringDrops = this.fabric.dp.clientCounters(this.client.id).ringDrops - this.ringDropsAtBind;
    return this.snapshot({ 'ring-full': ringDrops });
  }
  unbind(): void {
    this.fabric.unbindClient(this);
  }
  /** Sends every frame waiting in the ring out of the port. */
  drain(): void {
    try {
      // Under VLANs the data plane delivers each frame as the port sends it, tagged or not.
      this.ring.poll(this.sendOut);
    } catch (err) {
      this.drop('ring-corrupt', isMacslotError(err) ? err.message : String(err));
    }
  }
}

class UplinkBindingImpl extends Counted implements PortBinding {
  readonly fabric: Fabric;
  constructor(fabric: Fabric, port: FramePort, o: BindUplinkOptions) {
    super(port, o.log);
    this.fabric = fabric;
  }
  readonly receive = (frame: Uint8Array): void => this.fabric.fromUplink(this, frame, 0, frame.length);
  readonly receiveRange = (bytes: Uint8Array, start: number, end: number): void => this.fabric.fromUplink(this, bytes, start, end);
  counters(): PortCounters {
    return this.snapshot();
  }
  unbind(): void {
    this.fabric.unbindUplink(this);
  }
}

/**
 * Everything attached to one data plane. Frames from ports are staged in the data plane's burst; frames handed over from
 * I/O (see ioBegin) go out together at the end of the event loop's turn, any other frame at once. Each frame's verdict
 * comes back through `transmitted`; after each burst only the rings it delivered to are read out to their ports.
 */
class Fabric implements TransmitSink {
  readonly dp: DataPlane;
  readonly clients = new Map<number, ClientBindingImpl>();
  uplink: UplinkBindingImpl | undefined;
  // The data plane follows one NIC, learnt from the first client bound; a client of another NIC has no ring here.
  nic: Nic | undefined;
  readonly #burst: TransmitBurst;
  /** Bound clients by id, for the per-frame lookups. */
  readonly #byId: (ClientBindingImpl | undefined)[] = [];
  /** Clients whose rings the current burst delivered to, and whether it delivered to many (broadcast, multicast). */
  readonly #touched: ClientBindingImpl[] = [];
  #flood = false;
  /** Bound promiscuous clients (they receive unicast too); recomputed after a NIC change. */
  #promiscuous: readonly ClientBindingImpl[] | undefined = EMPTY;
  #unwatch: (() => void) | undefined;
  #scheduled = false;
  /** The ports' VLANs (clients by id, the uplink by `uplinkKey`); undefined for a switch without VLANs. */
  vlans: VlanMembership<number | string> | undefined;
  uplinkKey: number | string = 'uplink';
  readonly #turn = (): void => {
    this.#scheduled = false;
    this.#flush();
  };

  constructor(dp: DataPlane) {
    this.dp = dp;
    this.#burst = dp.transmitter().burst();
    this.#burst.setSink(this);
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
    // Frames staged for the ring of an earlier holder of this client id go out to nobody first.
    this.#flush();
    const ring = this.dp.ring(client.id);
    // Frames queued for an earlier holder of this client id are not this port's.
    ring.discard();
    const b = new ClientBindingImpl(this, client, port, ring, o);
    b.ringDropsAtBind = this.dp.clientCounters(client.id).ringDrops;
    this.clients.set(client.id, b);
    this.#byId[client.id] = b;
    this.#promiscuous = undefined;
    // After a NIC change (a promiscuous flag, a MAC removed or moved) the clients that take every frame and the sources
    // each client may send from are found again.
    this.#burst.forgetSources();
    this.#unwatch ??= this.nic.on(() => {
      this.#promiscuous = undefined;
      this.#burst.forgetSources();
    });
    port.onFrame(b.receive);
    port.onFrameRange?.(b.receiveRange);
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
    port.onFrame(b.receive);
    port.onFrameRange?.(b.receiveRange);
    port.onClose((reason) => {
      this.unbindUplink(b);
      o.onClose?.(reason);
    });
    return b;
  }

  unbindClient(b: ClientBindingImpl): void {
    if (this.clients.get(b.client.id) !== b) return;
    this.clients.delete(b.client.id);
    this.#byId[b.client.id] = undefined;
    this.#promiscuous = undefined;
    if (this.clients.size === 0) {
      this.#unwatch?.();
      this.#unwatch = undefined;
    }
    b.port.onFrame(() => {});
  }

  unbindUplink(b: UplinkBindingImpl): void {
    if (this.uplink !== b) return;
    this.uplink = undefined;
    b.port.onFrame(() => {});
  }

  /**
   * Applies `vlans` from now on: the data plane classifies on (MAC, VID) over every VLAN of every port, and each port's
   * membership admits and tags frames on the way in and out. Throws as DataPlane.setVlans does (NOT_SUPPORTED without
   * `{ vlans: true }`); `undefined` turns VLANs off.
   */
  setVlans(vlans: VlanMembership<number | string> | undefined, uplink: number | string): void {
    this.#flush();
    if (vlans === undefined) {
      this.dp.setVlans(undefined);
      this.vlans = undefined;
      return;
    }
    // Inside the switch every frame carries the switch's tag: the data plane's own uplink carries every VLAN of every port,
    // and each client port keeps its PVID, so the data plane's egress strips the tag where the port sends untagged.
    const inner = new VlanMembership<number | string>({ protocol: vlans.tpid === 0x88a8 ? '802.1ad' : '802.1Q' });
    const all = new Set<number>();
    for (const port of vlans.ports()) {
      const { vids, pvid } = vlans.get(port)!;
      for (const v of vids) all.add(v);
      if (typeof port === 'number') inner.set(port, pvid === undefined ? { trunk: vids } : { trunk: vids, native: pvid });
    }
    if (all.size > 0) inner.set(SWITCH_PORT, { trunk: [...all] });
    this.dp.setVlans(inner, SWITCH_PORT);
    this.vlans = vlans;
    this.uplinkKey = uplink;
  }

  /**
   * Under VLANs, the frame `bytes[start, end)` from port `key` as it travels inside the switch: with the switch's tag for
   * its VLAN, or undefined when the port's membership drops it (counted on `b`).
   */
  #vlanIn(b: Counted, key: number | string, bytes: Uint8Array, start: number, end: number): Uint8Array | undefined {
    const v = this.vlans!;
    const ing = v.ingress(key, start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
    if ('drop' in ing) {
      b.drop('vlan', `${ing.why}${ing.vid === undefined ? '' : ` (VLAN ${ing.vid})`}`);
      return undefined;
    }
    if (ing.frame.length > this.dp.maxFrameLength) {
      b.drop('oversize', `a ${ing.frame.length}-byte frame is longer than the NIC's ${this.dp.maxFrameLength}`);
      return undefined;
    }
    return insertTag(ing.frame, ing.vid, 0, v.tpid);
  }

  /** A frame from a client's port: `bytes[start, end)`, valid during the call. */
  fromClient(b: ClientBindingImpl, bytes: Uint8Array, start: number, end: number): void {
    if (this.vlans !== undefined && this.clients.get(b.client.id) === b && end - start >= ETH_HLEN) {
      const f = this.#vlanIn(b, b.client.id, bytes, start, end);
      if (f === undefined) return;
      bytes = f;
      start = 0;
      end = f.length;
    }
    const len = end - start;
    const limit = this.vlans === undefined ? this.dp.maxFrameLength : this.dp.maxFrameLength + 4;
    if (this.clients.get(b.client.id) !== b || !b.client.open) return b.drop('closed', 'a frame arrived after the client was detached');
    if (len < ETH_HLEN) return b.drop('runt', `a ${len}-byte frame is shorter than an Ethernet header`);
    if (len > limit) return b.drop('oversize', `a ${len}-byte frame is longer than the NIC's ${this.dp.maxFrameLength}`);
    if (b.client.slotCount === 0) return b.drop('no-address', `client ${show(b.client.name)} holds no MAC`);
    // Storm control: the destination's group bit (broadcast included).
    if ((bytes[start + ETH_DST]! & 1) !== 0 && b.storm !== undefined && !b.storm.take()) {
      return b.drop('storm', `broadcast and multicast above ${b.stormRate} frames per second`);
    }
    const got = this.#stage(b, b.client.id, bytes, start, end, b.antiSpoof);
    if (got === BURST_FULL) return;
    if (got === SPOOFED) {
      // The detail is formatted only for the first drop of its reason.
      const source = (): string => show(Mac.fromBytes(bytes, start + ETH_SRC, 6).toString());
      return b.drop('spoofed', () => `source ${source()} is not a MAC of client ${show(b.client.name)}`);
    }
    b.rx.frames++;
    b.rx.bytes += len;
    this.#after();
  }

  /** A frame from the uplink's port: `bytes[start, end)`, valid during the call. */
  fromUplink(b: UplinkBindingImpl, bytes: Uint8Array, start: number, end: number): void {
    if (this.uplink !== b) return;
    if (this.vlans !== undefined && end - start >= ETH_HLEN) {
      const f = this.#vlanIn(b, this.uplinkKey, bytes, start, end);
      if (f === undefined) return;
      bytes = f;
      start = 0;
      end = f.length;
    }
    const len = end - start;
    const limit = this.vlans === undefined ? this.dp.maxFrameLength : this.dp.maxFrameLength + 4;
    if (len < ETH_HLEN) return b.drop('runt', `a ${len}-byte frame is shorter than an Ethernet header`);
    if (len > limit) return b.drop('oversize', `a ${len}-byte frame is longer than the NIC's ${this.dp.maxFrameLength}`);
    if (this.#stage(b, -1, bytes, start, end, false) === BURST_FULL) return;
    this.#after();
  }

  /** Stages one frame; with the burst full, sends it first (or, inside a burst, drops the frame and counts it). */
  #stage(b: Counted, from: number, bytes: Uint8Array, start: number, end: number, antiSpoof: boolean): number {
    const burst = this.#burst;
    let got: number;
    try {
      got = burst.stageRange(from, bytes, start, end, antiSpoof);
      if (got === BURST_FULL) {
        this.#flush();
        got = burst.stageRange(from, bytes, start, end, antiSpoof);
      }
    } catch (err) {
      b.drop('error', isMacslotError(err) ? err.message : String(err));
      return BURST_FULL;
    }
    // Still full: frames keep arriving while a burst is being switched (a port answering synchronously, in a loop).
    if (got === BURST_FULL) b.drop('reentrant-overflow', 'the burst filled while one was being switched');
    return got;
  }

  /** After a frame was staged: from I/O, its burst goes out at the end of the turn; otherwise at once. */
  #after(): void {
    if (!inIo()) return this.#flush();
    if (this.#scheduled) return;
    this.#scheduled = true;
    turnSchedule(this.#turn);
  }

  #flush(): void {
    try {
      this.#burst.flush();
    } catch (err) {
      // The lane was reclaimed or the data plane closed: the staged frames are lost, counted on the uplink when there is one.
      this.uplink?.drop('error', isMacslotError(err) ? err.message : String(err));
    }
  }

  /** One frame's verdict, handed over by the burst: to the uplink when it is not for a local owner; marks its rings. */
  transmitted(from: number, pool: Uint8Array, offset: number, length: number, verdict: number): void {
    const rule = verdict & V_RULE_MASK;
    if (rule === R_UNICAST || rule === R_SOFTWARE) {
      const to = this.#byId[verdict >>> V_REF_SHIFT];
      if (to !== undefined && !to.touched && to.ring.pending > 0) {
        to.touched = true;
        this.#touched.push(to);
      }
    } else if (rule < R_DROP_UNKNOWN) this.#flood = true;
    if (from >= 0) {
      // Bridge mode: a unicast frame for a local owner never touches the wire.
      const u = this.uplink;
      if (u !== undefined && rule !== R_UNICAST && rule !== R_SOFTWARE) {
        const frame = pool.subarray(offset, offset + length);
        const v = this.vlans;
        if (v === undefined) u.sendOut(frame);
        else {
          const out = v.egress(this.uplinkKey, stripTag(frame), vidOf(frame));
          if (out !== undefined) u.sendOut(out);
          else u.drop('vlan', 'a frame of a VLAN the uplink does not carry');
        }
      }
      return;
    }
    const u = this.uplink;
    if (u === undefined) return;
    if (rule >= R_DROP_UNKNOWN) {
      const name = rule === R_DROP_UNKNOWN ? 'no-owner' : `filter-${ruleName(rule)}`;
      const dst = Mac.fromBytes(pool, offset + ETH_DST, 6).toString();
      return u.drop(name, `no client accepts a frame for ${dst}`);
    }
    u.rx.frames++;
    u.rx.bytes += length;
  }

  /** The burst's frames are in the rings: read out those it delivered to (every ring with frames after a flood). */
  delivered(): void {
    if (this.#flood) {
      this.#flood = false;
      for (const b of this.#touched) b.touched = false;
      this.#touched.length = 0;
      for (const b of this.clients.values()) if (b.ring.pending > 0) b.drain();
      return;
    }
    const touched = this.#touched;
    for (let i = 0; i < touched.length; i++) {
      const b = touched[i]!;
      b.touched = false;
      b.drain();
    }
    touched.length = 0;
    const p = this.#promiscuous ?? this.#findPromiscuous();
    for (let i = 0; i < p.length; i++) if (p[i]!.ring.pending > 0) p[i]!.drain();
  }

  #findPromiscuous(): readonly ClientBindingImpl[] {
    const p = [...this.clients.values()].filter((b) => b.client.open && b.client.promiscuous);
    this.#promiscuous = p.length === 0 ? EMPTY : p;
    return this.#promiscuous;
  }
}

/** The port key of the data plane's own uplink under VLANs (not a port of the switch). */
const SWITCH_PORT = '\u0000switch';

/** The VID of the switch's tag on a frame inside the switch. */
function vidOf(frame: Uint8Array): number {
  return ((frame[14]! << 8) | frame[15]!) & 0xfff;
}

function ruleName(rule: number): string {
  return RULE_NAMES[rule] ?? 'bad-descriptor';
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
 * NIC, DATA_PLANE for a data plane attached from a handle. The data path never throws: bad frames are
 * dropped and counted by reason. Frames a transport reads from I/O in one turn of the event loop are
 * switched together at the end of that turn; others before the port's receiver returns.
 */
export function bindClient(dp: DataPlane, client: NicClient, port: FramePort, options: BindClientOptions = {}): ClientBinding {
  return fabricOf(dp).bindClient(client, port, options);
}

/**
 * Applies VLANs to the switch of `dp` (which must have been created with `{ vlans: true }`): clients by id and the uplink
 * by `uplink` (default 'uplink') are ports of `vlans`, as on a VLAN-filtering Linux bridge. A frame is admitted by its
 * port (the PVID for untagged ones; a VLAN the port does not carry is dropped and counted as `vlan`), classified on
 * (MAC, VID), and leaves each receiving port tagged or untagged as that port's membership says; broadcast and multicast
 * stay inside their VLAN. The membership is copied into the data plane: call again after changing it; `undefined` turns
 * VLANs off. Frames under VLANs are copied once on the way in (with the switch's tag) and once more in the data plane for
 * the ports that send them untagged; frames to the uplink once on the way out.
 */
export function setSwitchVlans(
  dp: DataPlane,
  vlans: VlanMembership<number | string> | undefined,
  uplink: number | string = 'uplink',
): void {
  fabricOf(dp).setVlans(vlans, uplink);
}

/**
 * Attaches the NIC's wire side to `port`: what clients send leaves through it (except unicast for a
 * local owner), and frames from it go through the accept filter to the clients. Returns the binding;
 * throws INVALID_ARGUMENT when the data plane already has one.
 */
export function bindUplink(dp: DataPlane, port: FramePort, options: BindUplinkOptions = {}): PortBinding {
  return fabricOf(dp).bindUplink(port, options);
}
