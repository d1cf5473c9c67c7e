// Ports: middleware that wraps any FramePort — a pcapng tap, a tracer, a seeded fault injector, and a MAC learner for
// guests whose MAC nobody configured.

import { MacslotError, isMacslotError, show } from '../errors.js';
import { escapeText } from '../text.js';
import type { NicClient } from '../nic/nic.js';
import { ETH_DST, ETH_SRC, etherType, hasEthernetHeader, isMulticastSrc, srcKey } from '../wire/ethernet.js';
import { formatMac, Mac } from '../wire/mac.js';
import type { FramePort, PortCloseReason } from './port.js';

/** Passes everything through; subclasses override the two directions. */
abstract class PortWrapper implements FramePort {
  readonly name: string;
  protected readonly inner: FramePort;
  protected receiver: ((frame: Uint8Array) => void) | undefined;

  constructor(inner: FramePort, name?: string) {
    this.inner = inner;
    this.name = name ?? inner.name;
    inner.onFrame((frame) => this.fromPeer(frame));
  }

  send(frame: Uint8Array): boolean {
    return this.toPeer(frame);
  }
  onFrame(receiver: (frame: Uint8Array) => void): void {
    this.receiver = receiver;
  }
  onClose(listener: (reason: PortCloseReason) => void): void {
    this.inner.onClose(listener);
  }
  close(): void {
    this.inner.close();
  }
  drops(): Readonly<Record<string, number>> {
    return this.inner.drops?.() ?? {};
  }
  protected deliver(frame: Uint8Array): void {
    this.receiver?.(frame);
  }
  protected abstract fromPeer(frame: Uint8Array): void;
  protected abstract toPeer(frame: Uint8Array): boolean;
}

// ---- pcapng tap -------------------------------------------------------------------------

const BT_SHB = 0x0a0d0d0a;
const BT_IDB = 1;
const BT_EPB = 6;
const OPT_IF_NAME = 2;
const OPT_IF_TSRESOL = 9;
const OPT_EPB_FLAGS = 2;
const TAP_SNAPLEN = 262144;

/** Options of a PcapngTap. */
export interface PcapngTapOptions {
  /** Nanoseconds since the epoch for each record. Default: Date.now() in milliseconds, as nanoseconds. */
  clock?: () => number;
  /**
   * Called once, with the sink's error, when the sink first throws (the tap is off from then on). Its own throws are ignored.
   * Default: nothing; `error` and `lost` still tell.
   */
  onError?: (error: unknown) => void;
}

/**
 * A pcapng capture with one interface per port, written block by block to `sink`. Each block is a
 * fresh buffer the sink may keep. Inbound (from the peer) and outbound frames carry epb_flags.
 *
 * A sink that throws (a full disk, a reader gone from a pipe) turns the tap off, never the traffic it watches: from then on
 * nothing is written, `error` holds the sink's first error, `onError` has been called once, frames are counted in `lost`,
 * and addInterface still answers (a fresh id that records nothing), so ports added later work unrecorded. Only close(),
 * its owner's act, makes addInterface throw.
 */
export class PcapngTap {
  readonly #sink: (bytes: Uint8Array) => void;
  readonly #clock: () => number;
  readonly #onError: ((error: unknown) => void) | undefined;
  #interfaces = 0;
  #closed = false;
  #failed = false;
  #error: unknown;
  /** Frames recorded. */
  frames = 0;
  /** Frames not recorded because the sink had failed. */
  lost = 0;

  /** Writes the section header at once; throws INVALID_ARGUMENT when `sink` is not a function. */
  constructor(sink: (bytes: Uint8Array) => void, options: PcapngTapOptions = {}) {
    if (typeof sink !== 'function') throw new MacslotError('INVALID_ARGUMENT', `tap sink must be a function, got ${show(sink)}`);
    this.#sink = sink;
    this.#clock = options.clock ?? (() => Date.now() * 1e6);
    this.#onError = options.onError;
    const b = new Uint8Array(28);
    const v = new DataView(b.buffer);
    v.setUint32(0, BT_SHB, true);
    v.setUint32(4, 28, true);
    v.setUint32(8, 0x1a2b3c4d, true);
    v.setUint16(12, 1, true);
    v.setUint16(14, 0, true);
    v.setInt32(16, -1, true);
    v.setInt32(20, -1, true);
    v.setUint32(24, 28, true);
    this.#emit(b);
  }

  /**
   * Adds an interface named `name` (Ethernet, nanosecond timestamps); returns its id. Throws PORT_CLOSED after close(); once the
   * sink has failed it still returns a fresh id, on which nothing is recorded.
   */
  addInterface(name: string): number {
    if (this.#closed) throw new MacslotError('PORT_CLOSED', `tap is closed; cannot add interface ${show(name)}`);
    if (this.#failed) return this.#interfaces++;
    const nameBytes = new TextEncoder().encode(String(name)).subarray(0, 256);
    const namePad = (nameBytes.length + 3) & ~3;
    const len = 16 + 4 + namePad + 8 + 4 + 4;
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    v.setUint32(0, BT_IDB, true);
    v.setUint32(4, len, true);
    v.setUint16(8, 1, true);
    v.setUint32(12, TAP_SNAPLEN, true);
    let p = 16;
    v.setUint16(p, OPT_IF_NAME, true);
    v.setUint16(p + 2, nameBytes.length, true);
    b.set(nameBytes, p + 4);
    p += 4 + namePad;
    v.setUint16(p, OPT_IF_TSRESOL, true);
    v.setUint16(p + 2, 1, true);
    b[p + 4] = 9;
    p += 8;
    // End of options, then the trailing length.
    p += 4;
    v.setUint32(p, len, true);
    this.#emit(b);
    return this.#interfaces++;
  }

  /**
   * Records one frame on interface `id`, inbound or outbound. Never throws: after close() or for an unknown id it records nothing;
   * once the sink has failed it counts the frame in `lost`.
   */
  record(id: number, frame: Uint8Array, inbound: boolean): void {
    if (this.#closed || !(id >= 0 && id < this.#interfaces)) return;
    if (this.#failed) {
      this.lost++;
      return;
    }
    const cap = Math.min(frame.length, TAP_SNAPLEN);
    const pad = (cap + 3) & ~3;
    const len = 28 + pad + 12 + 4;
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    let ns = 0;
    try {
      ns = Math.max(0, Math.floor(this.#clock()));
    } catch {
      ns = 0;
    }
    v.setUint32(0, BT_EPB, true);
    v.setUint32(4, len, true);
    v.setUint32(8, id, true);
    v.setUint32(12, Math.floor(ns / 0x1_0000_0000), true);
    v.setUint32(16, ns % 0x1_0000_0000, true);
    v.setUint32(20, cap, true);
    v.setUint32(24, frame.length, true);
    b.set(frame.subarray(0, cap), 28);
    let p = 28 + pad;
    v.setUint16(p, OPT_EPB_FLAGS, true);
    v.setUint16(p + 2, 4, true);
    v.setUint32(p + 4, inbound ? 1 : 2, true);
    p += 8 + 4;
    v.setUint32(p, len, true);
    if (this.#emit(b)) this.frames++;
    else this.lost++;
  }

  /** The sink's first error once it has failed (the tap is off); undefined while it works. */
  get error(): unknown {
    return this.#error;
  }

  /** Whether the sink has failed: the tap is off, and the ports it watches go on unrecorded. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Stops recording. Idempotent. */
  close(): void {
    this.#closed = true;
  }

  /** Hands `b` to the sink; returns false, and turns the tap off, when the sink throws. */
  #emit(b: Uint8Array): boolean {
    try {
      this.#sink(b);
      return true;
    } catch (err) {
      // A failing sink (a full disk) must not break the traffic it watches: the capture just stops.
      this.#failed = true;
      this.#error = err;
      try {
        this.#onError?.(err);
      } catch {
        // The report of a failure must not become one.
      }
      return false;
    }
  }
}

class TapPort extends PortWrapper {
  readonly #tap: PcapngTap;
  readonly #id: number;
  constructor(inner: FramePort, tap: PcapngTap, iface: string) {
    super(inner);
    this.#tap = tap;
    this.#id = tap.addInterface(iface);
  }
  protected fromPeer(frame: Uint8Array): void {
    this.#tap.record(this.#id, frame, true);
    this.deliver(frame);
  }
  protected toPeer(frame: Uint8Array): boolean {
    const ok = this.inner.send(frame);
    if (ok) this.#tap.record(this.#id, frame, false);
    return ok;
  }
}

/**
 * Returns `port` wrapped so every frame in either direction is recorded on a new interface of `tap` named `iface` (default the port's
 * name). Throws PORT_CLOSED when the tap is closed; a tap whose sink failed still wraps, recording nothing.
 */
export function tapPort(port: FramePort, tap: PcapngTap, iface?: string): FramePort {
  return new TapPort(port, tap, iface ?? port.name);
}

// ---- tracer -----------------------------------------------------------------------------

/** Returns a one-line summary of a frame: length, destination, source and EtherType. Never throws. */
export function describeFrame(frame: Uint8Array): string {
  if (!hasEthernetHeader(frame)) return `${frame.length} B runt`;
  const type = etherType(frame).toString(16).padStart(4, '0');
  return (
    `${frame.length} B ${formatMac(frame.subarray(ETH_DST, ETH_DST + 6))} < ${formatMac(frame.subarray(ETH_SRC, ETH_SRC + 6))} type ` +
    `0x${type}`
  );
}

class TracePort extends PortWrapper {
  readonly #log: (line: string) => void;
  constructor(inner: FramePort, log: (line: string) => void) {
    super(inner);
    this.#log = log;
  }
  #say(line: string): void {
    try {
      this.#log(line);
    } catch {
      // Tracing is advisory; it never changes what happens to the frame.
    }
  }
  protected fromPeer(frame: Uint8Array): void {
    this.#say(`${this.name} in  ${describeFrame(frame)}`);
    this.deliver(frame);
  }
  protected toPeer(frame: Uint8Array): boolean {
    const ok = this.inner.send(frame);
    this.#say(`${this.name} out ${describeFrame(frame)}${ok ? '' : ' (dropped)'}`);
    return ok;
  }
}

/** Returns `port` wrapped so every frame in either direction is described to `log`, one line each. */
export function tracePort(port: FramePort, log: (line: string) => void): FramePort {
  return new TracePort(port, log);
}

// ---- fault injector ---------------------------------------------------------------------

/** Rates in 0..1 of each fault, a seed, and which directions suffer them. */
export interface FaultOptions {
  /** Rate of frames dropped. */
  drop?: number;
  /** Rate of frames sent twice. */
  duplicate?: number;
  /** A reordered frame is held back and released after the next one in the same direction. */
  reorder?: number;
  /** A truncated frame keeps a random prefix shorter than itself. */
  truncate?: number;
  /** Same seed, same faults for the same traffic. Default 1. */
  seed?: number;
  /** Default `both`. */
  direction?: 'send' | 'receive' | 'both';
}

/** How many of each fault a fault injector applied. */
export interface FaultCounts {
  /** Frames dropped. */
  dropped: number;
  /** Frames duplicated. */
  duplicated: number;
  /** Frames held back behind the next. */
  reordered: number;
  /** Frames cut short. */
  truncated: number;
}

/** A port wrapped by `faultPort`, with the faults it applied so far. */
export interface FaultyPort extends FramePort {
  /** Faults applied so far. */
  readonly faults: Readonly<FaultCounts>;
}

function rate(v: number | undefined, name: string): number {
  const r = v ?? 0;
  if (typeof r !== 'number' || !(r >= 0 && r <= 1))
    throw new MacslotError('INVALID_ARGUMENT', `fault rate ${name} must be in 0..1, got ${show(v)}`);
  return r;
}

class FaultPort extends PortWrapper implements FaultyPort {
  readonly faults: FaultCounts = { dropped: 0, duplicated: 0, reordered: 0, truncated: 0 };
  readonly #rates: { drop: number; duplicate: number; reorder: number; truncate: number };
  readonly #send: boolean;
  readonly #receive: boolean;
  #state: number;
  readonly #held: { send: Uint8Array | undefined; receive: Uint8Array | undefined } = { send: undefined, receive: undefined };

  constructor(inner: FramePort, o: FaultOptions) {
    super(inner);
    this.#rates = {
      drop: rate(o.drop, 'drop'),
      duplicate: rate(o.duplicate, 'duplicate'),
      reorder: rate(o.reorder, 'reorder'),
      truncate: rate(o.truncate, 'truncate'),
    };
    const d = o.direction ?? 'both';
    if (d !== 'send' && d !== 'receive' && d !== 'both')
      throw new MacslotError('INVALID_ARGUMENT', `fault direction must be send, receive or both, got ${show(d)}`);
    this.#send = d !== 'receive';
    this.#receive = d !== 'send';
    this.#state = (o.seed ?? 1) >>> 0;
  }

  /** mulberry32: small, seedable, good enough to spread faults. */
  #next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  }

  /** Applies the faults to one frame; calls `out` for each frame that goes on (a copy where it was changed or held). */
  #apply(frame: Uint8Array, dir: 'send' | 'receive', out: (f: Uint8Array) => boolean): boolean {
    const r = this.#rates;
    if (this.#next() < r.drop) {
      this.faults.dropped++;
      return true;
    }
    let f = frame;
    if (this.#next() < r.truncate && f.length > 0) {
      this.faults.truncated++;
      f = f.slice(0, Math.floor(this.#next() * f.length));
    }
    if (this.#next() < r.reorder && this.#held[dir] === undefined) {
      this.faults.reordered++;
      this.#held[dir] = f.slice();
      return true;
    }
    let ok = out(f);
    if (this.#next() < r.duplicate) {
      this.faults.duplicated++;
      ok = out(f) && ok;
    }
    const held = this.#held[dir];
    if (held !== undefined) {
      this.#held[dir] = undefined;
      out(held);
    }
    return ok;
  }

  protected fromPeer(frame: Uint8Array): void {
    if (!this.#receive) return this.deliver(frame);
    this.#apply(frame, 'receive', (f) => {
      this.deliver(f);
      return true;
    });
  }
  protected toPeer(frame: Uint8Array): boolean {
    if (!this.#send) return this.inner.send(frame);
    return this.#apply(frame, 'send', (f) => this.inner.send(f));
  }
}

/**
 * Returns `port` wrapped with seeded faults (drop, duplicate, reorder, truncate) at the given rates. Throws INVALID_ARGUMENT for a rate
 * outside 0..1 or an unknown direction.
 */
export function faultPort(port: FramePort, options: FaultOptions): FaultyPort {
  return new FaultPort(port, options);
}

// ---- MAC learner ------------------------------------------------------------------------

/** How a MAC learner decides and reports. */
export interface LearnOptions {
  /**
   * Returns why `mac` must not be learnt (e.g. "the NIC's primary MAC"), or undefined to let the NIC decide. A refused
   * source is dropped and counted as `mac-protected`. A throwing check refuses.
   */
  protect?: (mac: Mac) => string | undefined;
  /** Receives one line per MAC learnt or refused (at most MAX_REFUSAL_LOGS refusals per port). */
  log?: (line: string) => void;
}

// A guest that sends from a new source on every frame must not turn each frame into a log line.
const MAX_REFUSAL_LOGS = 16;

class LearnPort extends PortWrapper {
  readonly #client: NicClient;
  readonly #refusals: Record<string, number> = {};
  readonly #protect: ((mac: Mac) => string | undefined) | undefined;
  readonly #log: ((line: string) => void) | undefined;
  #logged = 0;
  // The source last refused and the NIC's generation then: until the NIC changes, asking again for it cannot succeed.
  #refusedSource = -1;
  #refusedAt = -1;
  #reason = '';

  constructor(inner: FramePort, client: NicClient, o: LearnOptions) {
    super(inner);
    this.#client = client;
    this.#protect = o.protect;
    this.#log = o.log;
  }
  protected fromPeer(frame: Uint8Array): void {
    const c = this.#client;
    // Only while the client holds no MAC, and only a unicast source.
    if (c.open && c.slotCount === 0 && hasEthernetHeader(frame) && !isMulticastSrc(frame) && !this.#take(c, frame)) return;
    this.deliver(frame);
  }
  protected toPeer(frame: Uint8Array): boolean {
    return this.inner.send(frame);
  }
  override drops(): Readonly<Record<string, number>> {
    const own = super.drops();
    if (Object.keys(this.#refusals).length === 0) return own;
    const all: Record<string, number> = { ...own };
    for (const [k, v] of Object.entries(this.#refusals)) all[k] = (all[k] ?? 0) + v;
    return all;
  }
  #say(line: string): void {
    try {
      this.#log?.(line);
    } catch {
      // The log is advisory.
    }
  }
  /** Returns why `mac` is protected, or undefined. */
  #protected(mac: Mac): string | undefined {
    if (this.#protect === undefined) return undefined;
    try {
      return this.#protect(mac);
    } catch (err) {
      return `the protection check failed (${err instanceof Error ? err.message : String(err)})`;
    }
  }
  /**
   * Makes the frame's source the client's MAC; returns false when it is protected or the NIC refuses it (the frame is then dropped and
   * counted).
   */
  #take(c: NicClient, frame: Uint8Array): boolean {
    const source = srcKey(frame);
    if (source !== this.#refusedSource || this.#refusedAt !== c.nic.generation) {
      // Zero is no address; the frame goes on, and the data plane drops it for want of one.
      if (source === 0) return true;
      const mac = Mac.fromBytes(frame, ETH_SRC, 6);
      const why = this.#protected(mac);
      let detail: string;
      if (why === undefined) {
        try {
          c.addressAdd(mac);
          this.#say(`${escapeText(this.name)}: learnt ${mac.toString()} for client ${escapeText(c.name)}`);
          return true;
        } catch (err) {
          this.#reason = isMacslotError(err) ? err.code.toLowerCase().replaceAll('_', '-') : 'error';
          detail = err instanceof Error ? err.message : String(err);
        }
      } else {
        this.#reason = 'mac-protected';
        detail = why;
      }
      this.#refusedSource = source;
      this.#refusedAt = c.nic.generation;
      if (this.#logged < MAX_REFUSAL_LOGS) {
        this.#logged++;
        const more = this.#logged === MAX_REFUSAL_LOGS ? ` (further refusals on this port are counted, not logged)` : '';
        this.#say(
          `${escapeText(this.name)}: refused to learn ${mac.toString()} for client ${escapeText(c.name)}: ${escapeText(detail)}${more}`,
        );
      }
    }
    this.#refusals[this.#reason] = (this.#refusals[this.#reason] ?? 0) + 1;
    return false;
  }
}

/**
 * Returns `port` wrapped so the first frame with a unicast source makes that source `client`'s MAC (an added slot),
 * for guests whose MAC nobody configured. Unlike a learning bridge it is exclusive: a MAC active for anyone else is
 * not taken, nor one `options.protect` names (counted as `mac-protected`), and the guest's frames are dropped (counted
 * by the refusal's code, e.g. `mac-in-use`) until the NIC changes and the MAC is free. Each MAC learnt or refused is
 * logged. Once the client holds a MAC, frames pass untouched. Never throws.
 */
export function learnMacPort(port: FramePort, client: NicClient, options: LearnOptions = {}): FramePort {
  return new LearnPort(port, client, options);
}
