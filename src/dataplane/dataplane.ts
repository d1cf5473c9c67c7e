// Data plane: the Wasm filter over one fixed WebAssembly.Memory, kept in step with a Nic, with zero-copy bursts and per-client
// rings. This class puts together the lane's reader (reader.ts), the writer that follows the NIC (writer.ts, only on the
// data plane created from the NIC) and transmit with anti-spoof (src/switch/transmit.ts).

import { MacslotError, show } from '../errors.js';
import { LIMITS } from '../limits.js';
import { classifyFrame, classifyKey, RULES, type Verdict } from '../filter/reference.js';
import { classifyVlanFrame } from '../filter/vlan.js';
import type { VlanMembership } from '../vlan/membership.js';
import { checkUplink, vlanImage } from './vlan.js';
import { checkVid } from '../vlan/tag.js';
import type { Nic } from '../nic/nic.js';
import type { Mac } from '../wire/mac.js';
import { instantiate } from './instance.js';
import { compileDataPlane, type Build } from './module.js';
import { LaneReader, type ClientCounters, type LaneCounters } from './reader.js';
import type { RxRing } from './ring.js';
import { Transmit } from '../switch/transmit.js';
import { FilterWriter } from './writer.js';

export type { ClientCounters } from './reader.js';

/** Sizes of the data plane's memory; client and address capacity follow the NIC. The memory never grows after creation. */
export interface DataPlaneOptions {
  /** Threads that may run bursts at once (the creating one included). Default 4. */
  lanes?: number;
  /** Most frames per burst call. Default 256. */
  burst?: number;
  /** Bytes of each lane's frame pool. Default burst × 2048. */
  poolBytes?: number;
  /** Bytes of each client's receive ring (rounded up to a power of two, at least one largest frame). Default 16 KiB. */
  ringBytes?: number;
  /** Most multicast groups joined at once. Default `LIMITS.groups` (256), the most a configuration file may list. */
  maxGroups?: number;
  /** Which embedded module to run with shared memory. Default `release`; ordinary memory always runs `release-unshared`. */
  build?: Build;
  /** A compiled module to run instead, on shared memory only: e.g. `compileDebugDataPlane()` from `macslot/debug`. */
  module?: WebAssembly.Module;
  /** Use a SharedArrayBuffer-backed memory. Default: whenever the platform allows it. */
  shared?: boolean;
  /** Seed of the table's keyed hash. Default random. */
  seed?: number;
  /**
   * Plans room for VLAN filtering (`setVlans`): per bank a byte per VID and a client bitmap for each of up to 255 VLANs
   * (4 KiB + 1 KiB per 32 clients). Default false.
   */
  vlans?: boolean;
  /**
   * How long a lane may stay inside one burst on the bank the writer needs before it counts as dead (its worker was
   * terminated or hangs) and is reclaimed. Default 1000 ms.
   */
  stallMs?: number;
}

/**
 * What the data plane reports: `lane-reclaimed` when a lane's owner died inside a burst and the lane was taken back;
 * `held` when a NIC change could not be applied (the filter then fails closed: every burst drops, and `classify` on the
 * creating thread takes the software path); `recovered` when the filter is rebuilt from the NIC and in step again.
 */
export type DataPlaneEvent =
  | {
      /** What happened. */
      readonly type: 'lane-reclaimed';
      /** The lane taken back. */
      readonly lane: number;
    }
  | {
      /** What happened. */
      readonly type: 'held';
      /** Why the change could not be applied. */
      readonly error: unknown;
    }
  | {
      /** What happened. */
      readonly type: 'recovered';
    };

/** What a worker needs to attach: structured-cloneable, pass it with postMessage. */
export interface DataPlaneHandle {
  /** The compiled data plane. */
  readonly module: WebAssembly.Module;
  /** The shared memory holding the filter, lanes and rings. */
  readonly memory: WebAssembly.Memory;
  /** Longest frame accepted, in bytes. */
  readonly maxFrameLength: number;
}

/** NIC-wide counters summed over every lane. */
export interface DataPlaneCounters extends LaneCounters {
  /** Frames `send` dropped because their source MAC was not the sender's. */
  readonly spoofed: number;
}

const PAGE = 65536;
const STALL_MS = 1000;
const GIB = 1 << 30;

function positive(value: number | undefined, name: string, fallback: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1 || v > max)
    throw new MacslotError('INVALID_ARGUMENT', `${name} must be an integer in 1..${max}, got ${show(value)}`);
  return v;
}

function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer === 'function' && memory.buffer instanceof SharedArrayBuffer;
}

function sharedAvailable(): boolean {
  const g = globalThis as { SharedArrayBuffer?: unknown; crossOriginIsolated?: boolean };
  return typeof g.SharedArrayBuffer === 'function' && g.crossOriginIsolated !== false;
}

/**
 * The per-frame filter in WebAssembly. Create it from a Nic on the control thread (it follows the
 * NIC's changes), or attach to an existing one's memory from a worker with `DataPlane.attach`.
 */
export class DataPlane {
  /** The shared memory holding the filter, lanes and rings. */
  readonly memory: WebAssembly.Memory;
  /** The compiled data plane, for workers to attach. */
  readonly module: WebAssembly.Module;
  /** This thread's lane: its pool, descriptors and verdicts are its own. */
  readonly lane: number;
  /** Longest frame accepted, in bytes. */
  readonly maxFrameLength: number;
  /**
   * The lane's frame pool: write frames here, then describe them in `descriptors`. Delivered frames stay here until every
   * receiver released them: while rings hold frames, write only where `reserve` (or `load`) places them.
   */
  readonly pool: Uint8Array;
  /** Pairs of (offset into `pool`, length), one pair per frame of the next burst. */
  readonly descriptors: Uint32Array;
  /**
   * One verdict word per frame after a burst: rule in bits 0..4, software path bit 7, client or group in bits 16..31.
   * Read them with `verdictRule`, `verdictRef` and `verdictPath`, or `decode`.
   */
  readonly verdicts: Uint32Array;
  /** Most frames per burst. */
  readonly burst: number;
  /**
   * Bytes the accept filter takes in the memory, with everything its reader safety needs: the shared table and both banks
   * (control bytes, hash filter, client and group bitmaps).
   */
  readonly filterBytes: number;
  readonly #reader: LaneReader;
  // Only on the data plane created from the NIC: the writer following it, and transmit.
  readonly #nic: Nic | undefined;
  #writer: FilterWriter | undefined;
  // The VLAN membership set by setVlans, for the software answer of a held filter.
  #vlans: { vlans: VlanMembership<number | string>; uplink: number | string } | undefined;
  #transmit: Transmit | undefined;
  #events: readonly ((e: DataPlaneEvent) => void)[] = [];

  private constructor(reader: LaneReader, module: WebAssembly.Module, nic: Nic | undefined) {
    this.#reader = reader;
    this.module = module;
    this.memory = reader.memory;
    this.lane = reader.lane;
    this.maxFrameLength = reader.maxFrameLength;
    this.pool = reader.pool;
    this.descriptors = reader.descriptors;
    this.verdicts = reader.verdicts;
    this.burst = reader.burst;
    this.filterBytes = reader.x.filterBytes();
    this.#nic = nic;
  }

  /**
   * Creates the data plane for `nic` in a new fixed-size memory, programmed with the NIC's current
   * filter and following every later change. Throws INVALID_ARGUMENT for sizes out of range, DATA_PLANE for a module
   * whose layout is not this library's.
   */
  static async create(nic: Nic, options: DataPlaneOptions = {}): Promise<DataPlane> {
    const lanes = positive(options.lanes, 'lanes', 4, 16);
    const burst = positive(options.burst, 'burst', 256, 1 << 20);
    const maxFrame = nic.maxFrameLength;
    const poolBytes = positive(options.poolBytes, 'poolBytes', burst * 2048, 1 << 30);
    const ringBytes = positive(options.ringBytes, 'ringBytes', 16384, 1 << 28);
    // Client and address capacity come from the NIC, so every id it hands out has a ring and a bit.
    const maxClients = nic.maxClients;
    const maxAddresses = nic.maxAddresses;
    const maxGroups = positive(options.maxGroups, 'maxGroups', LIMITS.groups, 65535);
    const stallMs = positive(options.stallMs, 'stallMs', STALL_MS, 3_600_000);
    // The memory's size is a product of these; say which product is too big before anything is laid out.
    const ringData = 2 ** Math.ceil(Math.log2(Math.max(ringBytes, maxFrame + 16)));
    const lanePools = lanes * poolBytes;
    const ringsTotal = maxClients * ringData;
    if (lanePools + ringsTotal > GIB) {
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `data plane sizes need over 1 GiB: lanes × poolBytes = ${lanes} × ${poolBytes} = ${lanePools} bytes, ` +
          `NIC maxClients × ring = ${maxClients} × ${ringData} = ${ringsTotal} bytes; the limit is ${GIB}`,
      );
    }
    const shared = options.shared ?? sharedAvailable();
    const seedWords = new Uint32Array(2);
    if (options.seed !== undefined) {
      seedWords[0] = options.seed >>> 0;
      seedWords[1] = Math.floor(options.seed / 0x1_0000_0000) >>> 0;
    } else globalThis.crypto.getRandomValues(seedWords);
    // A module declares its memory shared or not; pick the one that matches the memory.
    if (options.module !== undefined && !shared)
      throw new MacslotError('INVALID_ARGUMENT', 'a module given in options runs on shared memory only');
    const module = options.module ?? (await compileDataPlane(shared ? (options.build ?? 'release') : 'release-unshared'));
    if (options.vlans !== undefined && typeof options.vlans !== 'boolean')
      throw new MacslotError('INVALID_ARGUMENT', `vlans must be a boolean, got ${show(options.vlans)}`);
    const vlans = options.vlans === true ? 1 : 0;
    const args = [
      maxClients,
      maxAddresses,
      maxGroups,
      poolBytes,
      burst,
      ringBytes,
      maxFrame,
      lanes,
      seedWords[0]!,
      seedWords[1]!,
      vlans,
    ] as const;
    // A scratch instance computes the layout's size: the layout lives in one place, the Wasm module.
    const scratch = instantiate(module, new WebAssembly.Memory({ initial: 1, maximum: 1, shared }));
    const bytes = scratch.plan(...args);
    if (bytes === 0) throw new MacslotError('INVALID_ARGUMENT', `data plane sizes out of range: ${show(options)}`);
    const pages = Math.ceil(bytes / PAGE);
    if (pages > 16384)
      throw new MacslotError('INVALID_ARGUMENT', `data plane needs ${bytes} bytes, over the 1 GiB limit: ${show(options)}`);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
    const x = instantiate(module, memory);
    if (x.plan(...args) !== bytes || x.ruleCount() !== RULES.length)
      throw new MacslotError('DATA_PLANE', 'the embedded module does not match this library version');
    x.claimLane(0);
    x.claimDelivery(0);
    const dp = new DataPlane(new LaneReader(x, memory, 0, maxFrame), module, nic);
    try {
      dp.#writer = new FilterWriter(x, memory, nic, 0, maxGroups, stallMs, (e) => dp.#report(e));
    } catch (err) {
      // E.g. the NIC already holds more groups than maxGroups: the writer left no listener or guard behind on it.
      dp.close();
      throw err;
    }
    dp.#transmit = new Transmit(dp.#reader, dp.#writer, nic);
    return dp;
  }

  /**
   * Attaches to a data plane created elsewhere (typically in a worker); claims a free lane. Throws DATA_PLANE when none is
   * free, or when the module's layout is not this library's.
   */
  static async attach(handle: DataPlaneHandle, options: { lane?: number } = {}): Promise<DataPlane> {
    const x = instantiate(handle.module, handle.memory);
    if (x.attach() !== 1) throw new MacslotError('DATA_PLANE', 'the memory given to attach holds no data plane');
    let lane = -1;
    if (options.lane !== undefined) {
      if (x.claimLane(options.lane) !== 0) lane = options.lane;
    } else {
      for (let l = 1; l < x.laneCount() && lane < 0; l++) if (x.claimLane(l) !== 0) lane = l;
    }
    if (lane < 0)
      throw new MacslotError(
        'DATA_PLANE',
        `no free lane${options.lane !== undefined ? ` (lane ${options.lane} is taken or out of range)` : ''}`,
      );
    return new DataPlane(new LaneReader(x, handle.memory, lane, handle.maxFrameLength), handle.module, undefined);
  }

  /**
   * Returns what a worker needs to attach. Throws NOT_SUPPORTED when the memory is not shared: a worker would get a
   * copy, and posting it fails (in a browser, a page that is not cross-origin isolated has no shared memory).
   */
  handle(): DataPlaneHandle {
    this.#reader.live();
    if (!isShared(this.memory)) {
      throw new MacslotError(
        'NOT_SUPPORTED',
        'a worker lane needs shared memory, and this data plane has ordinary memory: it was created with shared: false, or ' +
          'SharedArrayBuffer is unavailable (a browser page must be cross-origin isolated: Cross-Origin-Opener-Policy: ' +
          'same-origin and Cross-Origin-Embedder-Policy: require-corp)',
      );
    }
    return { module: this.module, memory: this.memory, maxFrameLength: this.maxFrameLength };
  }

  /** Makes this lane the one that delivers frames into client rings (rxBurst); returns false if another lane holds that role. */
  claimDelivery(): boolean {
    return this.#reader.claimDelivery();
  }

  /** Gives up the ring-producer role. */
  releaseDelivery(): void {
    this.#reader.releaseDelivery();
  }

  // ---- bursts -----------------------------------------------------------------------

  /** Classifies the first `count` described frames into `verdicts`; returns `count`. Throws INVALID_ARGUMENT above `burst`. */
  classifyBurst(count: number): number {
    return this.#reader.classifyBurst(count);
  }

  /**
   * Classifies the first `count` described frames and puts a descriptor of each into the rings of its receivers, never
   * to `exclude` (a client id); the frame itself stays in the pool until every receiver released it. Returns `count`.
   * Throws DATA_PLANE when another lane is the ring producer.
   */
  rxBurst(count: number, exclude?: number): number {
    return this.#reader.rxBurst(count, exclude);
  }

  /** Copies `frames` into free pool lines and describes them; returns how many fit (pool or burst full). */
  load(frames: readonly Uint8Array[]): number {
    return this.#reader.load(frames);
  }

  /**
   * Returns an offset in `pool` where `length` bytes may be written without touching a frame a ring still holds, or -1
   * when none is free. When every line is pinned, the ring producer first takes pending (unread) frames back from the
   * slowest rings, counted in their clients' `poolDrops`; views a consumer took are never taken back. `begin` (default
   * true) starts a new batch: pass false for the second and later frames of one burst, so they do not reuse each other's
   * lines; such a later frame gets -1 as soon as the batch has no room left (end the burst there and begin another).
   * Under VLANs, rxBurst writes the tagged or untagged forms of frames after the batch, clear of every frame it describes:
   * deliver a batch in one rxBurst, as frames reserved and not described may be written over once the pool wraps.
   */
  reserve(length: number, begin = true): number {
    this.#reader.live();
    if (!Number.isInteger(length) || length < 0)
      throw new MacslotError('INVALID_ARGUMENT', `length must be a non-negative integer, got ${show(length)}`);
    return this.#reader.reserve(length, begin);
  }

  /** Returns the verdict of one frame (a copy goes through the pool). Never throws for any byte content. */
  classify(frame: Uint8Array): Verdict {
    this.#reader.live();
    // A held filter drops every burst; the creating thread still answers, from the NIC's state in software.
    if (this.#writer?.held === true && this.#nic !== undefined) {
      const v = this.#vlans;
      if (v === undefined) return classifyFrame(this.#nic.filterState(), frame);
      const r = classifyVlanFrame(this.#nic.filterState(), v.vlans, v.uplink, frame);
      return { deliver: r.deliver, rule: r.rule, path: r.path };
    }
    this.#reader.single(frame);
    this.#reader.classifyBurst(1);
    return this.#reader.decode(this.verdicts[0]!);
  }

  /** Classifies and delivers one frame; returns its verdict. Throws DATA_PLANE when this lane is not the ring producer. */
  receive(frame: Uint8Array): Verdict {
    this.#reader.live();
    this.#reader.single(frame);
    this.#reader.rxBurst(1);
    return this.#reader.decode(this.verdicts[0]!);
  }

  /** Classifies and delivers every frame, in bursts; returns the number delivered through the filter. */
  receiveBurst(frames: readonly Uint8Array[]): number {
    return this.#reader.receiveBurst(frames);
  }

  /**
   * Classifies destination keys (MAC-48 or EUI-64) directly, for link layers other than Ethernet; returns one verdict each.
   * Under VLAN filtering (`setVlans`) a key is classified on (key, VID) as an untagged frame from the uplink would be: in
   * `vid` when given, else in the uplink's native VLAN; a VLAN the uplink does not carry (or no native VLAN) is `drop-vlan`,
   * and only the clients of the VLAN receive, as for frames (the rule counters count the rule before this VLAN step).
   * Throws INVALID_ARGUMENT for a `vid` outside 1..4094, or given to a data plane without VLANs.
   */
  classifyKeys(keys: readonly Mac[], vid?: number): Verdict[] {
    this.#reader.live();
    const v = this.#vlans;
    if (vid !== undefined) {
      checkVid(vid);
      if (v === undefined) throw new MacslotError('INVALID_ARGUMENT', `vid ${show(vid)} given, but this data plane filters no VLANs`);
    }
    const nic = this.#nic;
    const out =
      this.#writer?.held === true && nic !== undefined
        ? keys.map((k) => classifyKey(nic.filterState(), k))
        : this.#reader.classifyKeys(keys);
    if (v === undefined) return out;
    const up = v.vlans.get(v.uplink);
    const at = vid ?? up?.pvid;
    const dropped: Verdict = { deliver: [], rule: 'drop-vlan', path: 'hardware' };
    if (at === undefined || up?.vids.includes(at) !== true) return out.map(() => dropped);
    return out.map((r) => {
      if (r.rule.startsWith('drop-')) return r;
      const deliver = r.deliver.filter((id) => v.vlans.isMember(id, at));
      return deliver.length === 0 && r.rule !== 'broadcast' ? dropped : { ...r, deliver };
    });
  }

  /**
   * Turns a verdict word into a rule, a path and the delivery set, read from the published filter. For the rule, the
   * path or the reference alone, `verdictRule`, `verdictPath` and `verdictRef` read the word without the filter.
   */
  decode(word: number): Verdict {
    return this.#reader.decode(word);
  }

  // ---- rings, counters, transmit ----------------------------------------------------

  /** Returns the receive ring of client `id` (its frames, in order). Throws INVALID_ARGUMENT outside the client capacity. */
  ring(id: number): RxRing {
    return this.#reader.ring(id);
  }

  /** Returns client `id`'s receive counters. Throws INVALID_ARGUMENT outside the client capacity. */
  clientCounters(id: number): ClientCounters {
    return this.#reader.clientCounters(id);
  }

  /** Returns the NIC-wide counters summed over every lane. */
  counters(): DataPlaneCounters {
    return { ...this.#reader.counters(), spoofed: this.#transmit?.spoofed ?? 0 };
  }

  /** Sets where frames sent by clients go after local delivery (the wire). */
  setUplink(fn: ((frame: Uint8Array, from: number) => void) | undefined): void {
    this.#reader.live();
    this.#transmit?.setUplink(fn);
  }

  /**
   * Transmits `frame` from client `id`: stamps the client's active MAC as source (or, with
   * `antiSpoof`, drops and counts a frame whose source is not one of the client's MACs),
   * delivers it to every other local client that accepts it, and hands it to the uplink.
   * Returns false when the frame was dropped.
   */
  send(id: number, frame: Uint8Array, options: { antiSpoof?: boolean } = {}): boolean {
    this.#reader.live();
    if (this.#transmit === undefined) throw new MacslotError('DATA_PLANE', 'send needs the data plane created from the Nic');
    return this.#transmit.send(id, frame, options.antiSpoof === true);
  }

  /**
   * Returns transmit and anti-spoof, the switch's side of this data plane (its burst stage included), for the switch's
   * forwarding engine. Throws DATA_PLANE on a data plane attached from a handle. @internal
   */
  transmitter(): Transmit {
    this.#reader.live();
    if (this.#transmit === undefined) throw new MacslotError('DATA_PLANE', 'transmit needs the data plane created from the Nic');
    return this.#transmit;
  }

  /**
   * Rebuilds the whole filter from the NIC's current state in the idle bank and publishes it, e.g.
   * after a bank was found corrupt; lifts a hold. Readers never wait. Throws NOT_SUPPORTED on a data plane
   * attached without its NIC, CLIENT_CLOSED after close().
   */
  reload(): void {
    this.#reader.live();
    if (this.#writer === undefined)
      throw new MacslotError(
        'NOT_SUPPORTED',
        `lane ${this.lane} was attached from a handle; only the data plane created with the NIC can rebuild the filter`,
      );
    this.#writer.reload();
  }

  /**
   * Filters on (MAC, VID) from now on: frames arrive on port `uplink` of `vlans` (its PVID takes untagged frames in; a VID
   * it does not carry, or a tag cut short, is `drop-vlan`), and reach only the clients (ports keyed by client id) of their
   * VLAN; a frame whose receivers are all outside its VLAN is `drop-vlan`, broadcast reaches the VLAN's clients. Each
   * client receives the frame as its port sends it (`vlanEgressFrame`): untagged on an access port and in a trunk's native
   * VLAN, tagged with the frame's VID otherwise; a form the pool has no room for is a counted drop (`poolFull`, the
   * client's `poolDrops`). The membership is copied: call again after changing it; `undefined` turns VLAN filtering off.
   * Both banks change the left-right way, so no burst sees half a change. Needs a data plane created with
   * `{ vlans: true }`. Throws NOT_SUPPORTED without that room or on a data plane attached from a handle, INVALID_ARGUMENT
   * when the uplink carries more than 255 VLANs.
   */
  setVlans(vlans: VlanMembership<number | string> | undefined, uplink: number | string = 'uplink'): void {
    this.#reader.live();
    if (this.#writer === undefined)
      throw new MacslotError(
        'NOT_SUPPORTED',
        `lane ${this.lane} was attached from a handle; only the data plane created with the NIC sets VLANs`,
      );
    if (this.#reader.x.bankVlanPtr(0) === 0)
      throw new MacslotError('NOT_SUPPORTED', 'this data plane was created without room for VLANs; create it with { vlans: true }');
    const image = vlans === undefined ? undefined : vlanImage(vlans, checkUplink(uplink), this.#reader.maxClients);
    this.#writer.setVlans(image);
    this.#vlans = vlans === undefined ? undefined : { vlans, uplink };
  }

  /**
   * Subscribes to the data plane's reports (see DataPlaneEvent); returns the function that unsubscribes. A listener that
   * throws is ignored: a report never breaks the change that caused it.
   */
  on(listener: (event: DataPlaneEvent) => void): () => void {
    this.#reader.live();
    if (!this.#events.includes(listener)) this.#events = [...this.#events, listener];
    return () => {
      this.#events = this.#events.filter((l) => l !== listener);
    };
  }

  /** True while the filter is held (fails closed) after a change it could not apply, until it is rebuilt. */
  get held(): boolean {
    return this.#writer?.held ?? false;
  }

  /**
   * Takes lane `lane` back at once from an owner known to be gone (e.g. its worker's `exit` event), with its bank
   * announcement and its ring-producer role; the owner's later calls throw DATA_PLANE. Writers also reclaim by themselves
   * a lane stuck inside a burst for `stallMs`. Returns false when the lane was free. Throws INVALID_ARGUMENT for this
   * data plane's own lane or a lane out of range.
   */
  reclaimLane(lane: number): boolean {
    this.#reader.live();
    const x = this.#reader.x;
    if (!Number.isInteger(lane) || lane < 0 || lane >= x.laneCount() || lane === this.lane) {
      throw new MacslotError('INVALID_ARGUMENT', `lane must be another lane in 0..${x.laneCount() - 1}, got ${show(lane)}`);
    }
    if (x.reclaimLane(lane) !== 1) return false;
    this.#report({ type: 'lane-reclaimed', lane });
    return true;
  }

  /** Stops following the NIC and gives the lane back. Idempotent; every other method then throws CLIENT_CLOSED. */
  close(): void {
    if (this.#reader.closed) return;
    this.#writer?.close();
    this.#events = [];
    this.#reader.close();
  }

  #report(e: DataPlaneEvent): void {
    for (const l of this.#events) {
      try {
        l(e);
      } catch {
        // A report is advice: its listener's failure must not undo or break the change being reported.
      }
    }
  }
}
