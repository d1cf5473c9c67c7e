// Data plane: the Wasm filter over one fixed WebAssembly.Memory, kept in step with a Nic, with zero-copy bursts and per-client rings.

import { MacslotError, show } from '../errors.js';
import { mtaIndex } from '../filter/hash.js';
import { classifyFrame, classifyKey, RULES, type Rule, type Verdict } from '../filter/reference.js';
import { ChurnMap } from '../nic/churn-map.js';
import type { Nic, NicChange } from '../nic/nic.js';
import type { GroupStage, NicEvent, Placement } from '../nic/types.js';
import { Mac } from '../wire/mac.js';
import { compileDataPlane, type Build } from './module.js';
import { RxRing } from './ring.js';
import { RECORD_WORDS, UnicastMirror } from './mirror.js';

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
  /** Most multicast groups joined at once. Default 256. */
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

/** Per-client receive counters. */
export interface ClientCounters {
  /** Frames delivered. */
  readonly frames: number;
  /** Bytes of those frames. */
  readonly bytes: number;
  /** Broadcast frames among them. */
  readonly broadcast: number;
  /** Multicast frames among them. */
  readonly multicast: number;
  /** Frames lost because the client's receive ring was full. */
  readonly ringDrops: number;
}

/** NIC-wide counters summed over every lane. */
export interface DataPlaneCounters {
  /** Frames decided by each rule. */
  readonly rules: Readonly<Record<Rule, number>>;
  /** Deliveries lost to full receive rings. */
  readonly ringFull: number;
  /** Receive rings found corrupt (their frames are dropped, never read out of bounds). */
  readonly ringCorrupt: number;
  /** Bursts that re-read the filter because it changed under them. */
  readonly readerRetries: number;
  /** Frame deliveries to clients (a broadcast to three clients counts three). */
  readonly deliveries: number;
  /** Frames `send` dropped because their source MAC was not the sender's. */
  readonly spoofed: number;
}

interface Exports {
  plan(clients: number, entries: number, groups: number, pool: number, burst: number, ring: number, maxFrame: number, lanes: number, seedLo: number, seedHi: number): number;
  attach(): number;
  descriptorsPtr(lane: number): number;
  verdictsPtr(lane: number): number;
  keysPtr(lane: number): number;
  kindsPtr(lane: number): number;
  poolPtr(lane: number): number;
  laneCountersPtr(lane: number): number;
  clientCountersPtr(): number;
  ringPtr(client: number): number;
  ringDataBytes(): number;
  stagingPtr(): number;
  activeBank(): number;
  bankBytes(): number;
  tablePut(bank: number, len: number, meta: number): number;
  tableLoad(bank: number, count: number): number;
  stagedRecords(): number;
  tableDelete(bank: number, len: number): number;
  bankSetFlags(bank: number, flags: number): void;
  bankSetClient(bank: number, client: number, broadcast: number, promiscuous: number): void;
  bankSetMember(bank: number, g: number, client: number, on: number): void;
  bankClearGroup(bank: number, g: number): void;
  bankSetHashBit(bank: number, i: number, on: number): void;
  bankCopy(from: number, to: number): void;
  bankReset(bank: number): void;
  bankBroadcastPtr(bank: number): number;
  bankPromiscPtr(bank: number): number;
  bankGroupPtr(bank: number, g: number): number;
  publish(bank: number): void;
  readersOn(bank: number): number;
  claimLane(lane: number): number;
  releaseLane(lane: number): void;
  ownsLane(lane: number): number;
  laneState(lane: number): number;
  reclaimLane(lane: number): number;
  setHold(on: number): void;
  ringResetsPtr(): number;
  clientReset(client: number): void;
  claimDelivery(lane: number): number;
  releaseDelivery(lane: number): void;
  classifyBurst(lane: number, count: number): number;
  classifyKeys(lane: number, count: number): number;
  rxBurst(lane: number, count: number, exclude: number): number;
  ruleCount(): number;
  laneCounterCount(): number;
  counterStripes(): number;
  poolBytesPerLane(): number;
  clientCapacity(): number;
  laneCount(): number;
}

// Meta and verdict encodings, as assembly/layout.ts defines them.
const M_HARDWARE = 1 << 17;
const M_GROUP = 1 << 18;
const M_STAGE_SHIFT = 20;
const STAGE: Record<GroupStage, number> = { exact: 0, hash: 1, all: 2 };
const F_PROMISC = 1;
const F_ALLMULTI = 2;
const F_HASH = 4;
const F_HASH_TYPE_SHIFT = 8;
const V_SOFTWARE = 0x80;
const NO_CLIENT = 0xffff_ffff;
/** Shared by every change that needs no bank operation; never mutated. */
const NO_OPS: readonly Op[] = [];
const CLIENT_COUNTER_WORDS = 10;
const PAGE = 65536;
const STALL_MS = 1000;
// First retry of a held filter; doubled up to the cap while rebuilding keeps failing.
const RECOVER_FIRST_MS = 10;
const RECOVER_MAX_MS = 5000;
const GIB = 1 << 30;

type Op =
  | { op: 'put'; mac: Mac; meta: number }
  | { op: 'del'; mac: Mac }
  | { op: 'flags'; flags: number }
  | { op: 'client'; id: number; broadcast: boolean; promiscuous: boolean }
  | { op: 'member'; g: number; id: number; on: boolean }
  | { op: 'clear-group'; g: number }
  | { op: 'hash'; bit: number; on: boolean };

function positive(value: number | undefined, name: string, fallback: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1 || v > max) throw new MacslotError('INVALID_ARGUMENT', `${name} must be an integer in 1..${max}, got ${show(value)}`);
  return v;
}

function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer === 'function' && memory.buffer instanceof SharedArrayBuffer;
}

function sharedAvailable(): boolean {
  const g = globalThis as { SharedArrayBuffer?: unknown; crossOriginIsolated?: boolean };
  return typeof g.SharedArrayBuffer === 'function' && g.crossOriginIsolated !== false;
}

function u64(view: Uint32Array, word: number): number {
  return view[word]! + view[word + 1]! * 0x1_0000_0000;
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
  /** The lane's frame pool: write frames here, then describe them in `descriptors`. */
  readonly pool: Uint8Array;
  /** Pairs of (offset into `pool`, length), one pair per frame of the next burst. */
  readonly descriptors: Uint32Array;
  /** One verdict word per frame after a burst: rule in bits 0..4, software path bit 7, client or group in bits 16..31. */
  readonly verdicts: Uint32Array;
  /** Most frames per burst. */
  readonly burst: number;
  /** Bytes the accept filter takes in the memory: both banks (table, hash filter, client and group bitmaps). */
  readonly filterBytes: number;
  readonly #x: Exports;
  readonly #nic: Nic | undefined;
  readonly #unsubscribe: (() => void) | undefined;
  readonly #keys: Uint8Array;
  readonly #kinds: Uint8Array;
  readonly #staging: Uint8Array;
  // The staging area as tableLoad records (see RECORD_WORDS).
  readonly #records: Uint32Array;
  readonly #words: number;
  readonly #maxClients: number;
  readonly #maxGroups: number;
  // Operations the idle bank still lacks, or 'copy' after a reload: the idle bank is then rebuilt from the active one.
  #pending: Op[] | 'copy' = [];
  #closed = false;
  #spoofed = 0;
  readonly #unguard: (() => void) | undefined;
  readonly #stallMs: number;
  #events: readonly ((e: DataPlaneEvent) => void)[] = [];
  // Set while the filter is held (fails closed) until a rebuild from the NIC succeeds; the timer retries that rebuild.
  #held = false;
  #recoverTimer: ReturnType<typeof setTimeout> | undefined;
  #recoverDelay = RECOVER_FIRST_MS;
  // Mirror of what the banks hold, so each NIC event turns into a few precise bank operations.
  readonly #groups = new ChurnMap<number | string, { g: number; stage: GroupStage }>();
  readonly #freeGroups: number[] = [];
  readonly #hashRefs = new Uint16Array(4096);
  // Active unicast MACs per client id (ids are below the NIC's client capacity).
  readonly #activeCount: Int32Array;
  // The active unicast MACs as bulk-load records, with their owners: anti-spoof checks cost one
  // lookup per frame, and a rebuild copies records instead of walking the NIC's state.
  readonly #mirror: UnicastMirror;
  readonly #clientBits = new Map<number, { broadcast: boolean; promiscuous: boolean }>();
  #flags = 0;
  #hashType = 0;
  #uplink: ((frame: Uint8Array, from: number) => void) | undefined;

  private constructor(
    x: Exports, module: WebAssembly.Module, memory: WebAssembly.Memory, lane: number, maxFrame: number, nic: Nic | undefined, maxGroups: number,
    stallMs = STALL_MS,
  ) {
    this.#x = x;
    this.module = module;
    this.memory = memory;
    this.lane = lane;
    this.maxFrameLength = maxFrame;
    const buf = memory.buffer;
    const desc = x.descriptorsPtr(lane);
    const verdicts = x.verdictsPtr(lane);
    this.burst = (verdicts - desc) / 8;
    this.filterBytes = 2 * x.bankBytes();
    this.descriptors = new Uint32Array(buf, desc, this.burst * 2);
    this.verdicts = new Uint32Array(buf, verdicts, this.burst);
    this.#keys = new Uint8Array(buf, x.keysPtr(lane), this.burst * 8);
    this.#kinds = new Uint8Array(buf, x.kindsPtr(lane), this.burst);
    this.pool = new Uint8Array(buf, x.poolPtr(lane), x.poolBytesPerLane());
    this.#staging = new Uint8Array(buf, x.stagingPtr(), 8);
    this.#records = new Uint32Array(buf, x.stagingPtr(), x.stagedRecords() * 4);
    this.#maxClients = x.clientCapacity();
    this.#words = (this.#maxClients + 31) >> 5;
    this.#nic = nic;
    this.#maxGroups = maxGroups;
    this.#activeCount = new Int32Array(Math.max(this.#maxClients, nic?.maxClients ?? 0));
    this.#mirror = new UnicastMirror(nic?.maxAddresses ?? 0);
    for (let g = maxGroups - 1; g >= 0; g--) this.#freeGroups.push(g);
    this.#stallMs = stallMs;
    // Limits are checked before the NIC changes: a refused change leaves the NIC and the filter as they were.
    this.#unguard = nic?.guard((c) => this.#check(c));
    this.#unsubscribe = nic?.on((e) => this.#follow(e));
  }

  /**
   * Creates the data plane for `nic` in a new fixed-size memory, programmed with the NIC's current
   * filter and following every later change. Throws INVALID_ARGUMENT for sizes out of range.
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
    const maxGroups = positive(options.maxGroups, 'maxGroups', 256, 65535);
    const stallMs = positive(options.stallMs, 'stallMs', STALL_MS, 3_600_000);
    // The memory's size is a product of these; say which product is too big before anything is laid out.
    const ringData = 2 ** Math.ceil(Math.log2(Math.max(ringBytes, maxFrame + 16)));
    const lanePools = lanes * poolBytes;
    const ringsTotal = maxClients * ringData;
    if (lanePools + ringsTotal > GIB) {
      throw new MacslotError('INVALID_ARGUMENT', `data plane sizes need over 1 GiB: lanes × poolBytes = ${lanes} × ${poolBytes} = ${lanePools} bytes, `
        + `NIC maxClients × ring = ${maxClients} × ${ringData} = ${ringsTotal} bytes; the limit is ${GIB}`);
    }
    const shared = options.shared ?? sharedAvailable();
    const seedWords = new Uint32Array(2);
    if (options.seed !== undefined) {
      seedWords[0] = options.seed >>> 0;
      seedWords[1] = Math.floor(options.seed / 0x1_0000_0000) >>> 0;
    } else globalThis.crypto.getRandomValues(seedWords);
    // A module declares its memory shared or not; pick the one that matches the memory.
    if (options.module !== undefined && !shared) throw new MacslotError('INVALID_ARGUMENT', 'a module given in options runs on shared memory only');
    const module = options.module ?? (await compileDataPlane(shared ? (options.build ?? 'release') : 'release-unshared'));
    const args = [maxClients, maxAddresses, maxGroups, poolBytes, burst, ringBytes, maxFrame, lanes, seedWords[0]!, seedWords[1]!] as const;
    // A scratch instance computes the layout's size: the layout lives in one place, the Wasm module.
    const scratch = instantiate(module, new WebAssembly.Memory({ initial: 1, maximum: 1, shared }));
    const bytes = scratch.plan(...args);
    if (bytes === 0) throw new MacslotError('INVALID_ARGUMENT', `data plane sizes out of range: ${show(options)}`);
    const pages = Math.ceil(bytes / PAGE);
    if (pages > 16384) throw new MacslotError('INVALID_ARGUMENT', `data plane needs ${bytes} bytes, over the 1 GiB limit: ${show(options)}`);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
    const x = instantiate(module, memory);
    if (x.plan(...args) !== bytes || x.ruleCount() !== RULES.length) throw new MacslotError('DATA_PLANE', 'the embedded module does not match this library version');
    x.claimLane(0);
    x.claimDelivery(0);
    const dp = new DataPlane(x, module, memory, 0, maxFrame, nic, maxGroups, stallMs);
    try {
      dp.#loadFrom(nic);
    } catch (err) {
      // E.g. the NIC already holds more groups than maxGroups: leave no listener or guard behind on it.
      dp.close();
      throw err;
    }
    return dp;
  }

  /** Attaches to a data plane created elsewhere (typically in a worker); claims a free lane. Throws DATA_PLANE when none is free. */
  static async attach(handle: DataPlaneHandle, options: { lane?: number } = {}): Promise<DataPlane> {
    const x = instantiate(handle.module, handle.memory);
    if (x.attach() !== 1) throw new MacslotError('DATA_PLANE', 'the memory given to attach holds no data plane');
    let lane = -1;
    if (options.lane !== undefined) {
      if (x.claimLane(options.lane) !== 0) lane = options.lane;
    } else {
      for (let l = 1; l < x.laneCount() && lane < 0; l++) if (x.claimLane(l) !== 0) lane = l;
    }
    if (lane < 0) throw new MacslotError('DATA_PLANE', `no free lane${options.lane !== undefined ? ` (lane ${options.lane} is taken or out of range)` : ''}`);
    return new DataPlane(x, handle.module, handle.memory, lane, handle.maxFrameLength, undefined, 0);
  }

  /**
   * Returns what a worker needs to attach. Throws NOT_SUPPORTED when the memory is not shared: a worker would get a
   * copy, and posting it fails (in a browser, a page that is not cross-origin isolated has no shared memory).
   */
  handle(): DataPlaneHandle {
    this.#live();
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

  /** Makes this lane the one that copies frames into client rings (rxBurst); returns false if another lane holds that role. */
  claimDelivery(): boolean {
    this.#owned();
    return this.#x.claimDelivery(this.lane) === 1;
  }

  /** Gives up the ring-producer role. */
  releaseDelivery(): void {
    this.#live();
    this.#x.releaseDelivery(this.lane);
  }

  // ---- bursts -----------------------------------------------------------------------

  /** Classifies the first `count` described frames into `verdicts`; returns `count`. Throws INVALID_ARGUMENT above `burst`. */
  classifyBurst(count: number): number {
    this.#checkCount(count);
    if (this.#x.classifyBurst(this.lane, count) !== count || count === 0) this.#owned();
    return count;
  }

  /**
   * Classifies the first `count` described frames and copies each into the rings of its receivers,
   * never to `exclude` (a client id). Returns `count`. Throws DATA_PLANE when another lane is the ring producer.
   */
  rxBurst(count: number, exclude?: number): number {
    this.#checkCount(count);
    if (count === 0) return 0;
    const n = this.#x.rxBurst(this.lane, count, exclude ?? NO_CLIENT);
    if (n !== count) this.#owned();
    if (n !== count) throw new MacslotError('DATA_PLANE', `lane ${this.lane} is not the ring producer; call claimDelivery() first`);
    return n;
  }

  /** Copies `frames` into the pool and describes them; returns how many fit (pool or burst full). */
  load(frames: readonly Uint8Array[]): number {
    this.#live();
    let off = 0;
    let i = 0;
    for (; i < frames.length && i < this.burst; i++) {
      const f = frames[i]!;
      if (off + f.length > this.pool.length) break;
      this.pool.set(f, off);
      this.descriptors[2 * i] = off;
      this.descriptors[2 * i + 1] = f.length;
      off = (off + f.length + 7) & ~7;
    }
    return i;
  }

  /** Returns the verdict of one frame (a copy goes through the pool). Never throws for any byte content. */
  classify(frame: Uint8Array): Verdict {
    this.#live();
    // A held filter drops every burst; the creating thread still answers, from the NIC's state in software.
    if (this.#held && this.#nic !== undefined) return classifyFrame(this.#nic.filterState(), frame);
    this.#single(frame);
    this.classifyBurst(1);
    return this.decode(this.verdicts[0]!);
  }

  /** Classifies and delivers one frame; returns its verdict. Throws DATA_PLANE when this lane is not the ring producer. */
  receive(frame: Uint8Array): Verdict {
    this.#single(frame);
    this.rxBurst(1);
    return this.decode(this.verdicts[0]!);
  }

  /** Classifies and delivers every frame, in bursts; returns the number delivered through the filter. */
  receiveBurst(frames: readonly Uint8Array[]): number {
    this.#live();
    let done = 0;
    while (done < frames.length) {
      const n = this.load(frames.slice(done, done + this.burst));
      if (n === 0) {
        // Bigger than the whole pool: still classified (as bad descriptor), never silently skipped.
        this.descriptors[0] = 0;
        this.descriptors[1] = frames[done]!.length;
        this.rxBurst(1);
        done++;
        continue;
      }
      this.rxBurst(n);
      done += n;
    }
    return done;
  }

  /** Classifies destination keys (MAC-48 or EUI-64) directly, for link layers other than Ethernet; returns one verdict each. */
  classifyKeys(keys: readonly Mac[]): Verdict[] {
    this.#live();
    const nic = this.#nic;
    if (this.#held && nic !== undefined) return keys.map((k) => classifyKey(nic.filterState(), k));
    const out: Verdict[] = [];
    for (let start = 0; start < keys.length; start += this.burst) {
      const chunk = keys.slice(start, start + this.burst);
      chunk.forEach((k, i) => {
        this.#keys.fill(0, i * 8, i * 8 + 8);
        k.writeTo(this.#keys, i * 8);
        this.#kinds[i] = k.kind === 'eui64' ? 1 : 0;
      });
      if (this.#x.classifyKeys(this.lane, chunk.length) !== chunk.length) this.#owned();
      for (let i = 0; i < chunk.length; i++) out.push(this.decode(this.verdicts[i]!));
    }
    return out;
  }

  /** Turns a verdict word into a rule, a path and the delivery set, read from the published filter. */
  decode(word: number): Verdict {
    this.#live();
    const rule = RULES[word & 0x1f] ?? 'drop-bad-descriptor';
    const path = (word & V_SOFTWARE) !== 0 ? 'software' : 'hardware';
    const ref = word >>> 16;
    const bank = this.#x.activeBank();
    const promisc = this.#bitmap(this.#x.bankPromiscPtr(bank));
    let set: number[];
    switch (rule) {
      case 'broadcast': set = [...this.#bitmap(this.#x.bankBroadcastPtr(bank)), ...promisc]; break;
      case 'multicast-exact': case 'multicast-hash': case 'multicast-all': set = [...this.#bitmap(this.#x.bankGroupPtr(bank, ref)), ...promisc]; break;
      case 'unicast-exact': case 'software': set = [ref, ...promisc]; break;
      case 'promiscuous': set = promisc; break;
      default: set = [];
    }
    return { deliver: [...new Set(set)].sort((a, b) => a - b), rule, path };
  }

  #bitmap(ptr: number): number[] {
    const out: number[] = [];
    if (ptr === 0) return out;
    const w = new Uint32Array(this.memory.buffer, ptr, this.#words);
    for (let i = 0; i < w.length; i++) for (let b = w[i]!; b !== 0; b &= b - 1) out.push(i * 32 + (31 - Math.clz32(b & -b)));
    return out;
  }

  #single(frame: Uint8Array): void {
    if (frame.length <= this.pool.length) this.pool.set(frame, 0);
    this.descriptors[0] = 0;
    this.descriptors[1] = frame.length;
  }

  #checkCount(count: number): void {
    this.#live();
    if (!Number.isInteger(count) || count < 0 || count > this.burst) throw new MacslotError('INVALID_ARGUMENT', `burst count must be 0..${this.burst}, got ${show(count)}`);
  }

  // ---- rings, counters, transmit ----------------------------------------------------

  /** Returns the receive ring of client `id` (its frames, in order). Throws INVALID_ARGUMENT outside the client capacity. */
  ring(id: number): RxRing {
    this.#checkClient(id);
    return new RxRing(this.memory.buffer, this.#x.ringPtr(id), this.#x.ringDataBytes(), this.maxFrameLength, id, this.#x.ringResetsPtr());
  }

  /** Returns client `id`'s receive counters. Throws INVALID_ARGUMENT outside the client capacity. */
  clientCounters(id: number): ClientCounters {
    this.#checkClient(id);
    const v = new Uint32Array(this.memory.buffer, this.#x.clientCountersPtr() + id * CLIENT_COUNTER_WORDS * 4, CLIENT_COUNTER_WORDS);
    return { frames: u64(v, 0), bytes: u64(v, 2), broadcast: u64(v, 4), multicast: u64(v, 6), ringDrops: u64(v, 8) };
  }

  /** Returns the NIC-wide counters summed over every lane. */
  counters(): DataPlaneCounters {
    this.#live();
    const n = this.#x.laneCounterCount();
    const sums = new Array<number>(n).fill(0);
    const stripes = this.#x.counterStripes();
    for (let l = 0; l < this.#x.laneCount(); l++) {
      const v = new Uint32Array(this.memory.buffer, this.#x.laneCountersPtr(l), n * stripes * 2);
      for (let i = 0; i < n * stripes; i++) sums[Math.floor(i / stripes)]! += u64(v, 2 * i);
    }
    const rules = Object.fromEntries(RULES.map((r, i) => [r, sums[i]!])) as Record<Rule, number>;
    const k = RULES.length;
    // Consumers count the corrupt indices they reset in one shared word; producers count theirs per lane.
    const resets = new Uint32Array(this.memory.buffer, this.#x.ringResetsPtr(), 1)[0]!;
    return { rules, ringFull: sums[k]!, ringCorrupt: sums[k + 1]! + resets, readerRetries: sums[k + 2]!, deliveries: sums[k + 3]!, spoofed: this.#spoofed };
  }

  /** Sets where frames sent by clients go after local delivery (the wire). */
  setUplink(fn: ((frame: Uint8Array, from: number) => void) | undefined): void {
    this.#live();
    this.#uplink = fn;
  }

  /**
   * Transmits `frame` from client `id`: stamps the client's active MAC as source (or, with
   * `antiSpoof`, drops and counts a frame whose source is not one of the client's MACs),
   * delivers it to every other local client that accepts it, and hands it to the uplink.
   * Returns false when the frame was dropped.
   */
  send(id: number, frame: Uint8Array, options: { antiSpoof?: boolean } = {}): boolean {
    this.#live();
    const nic = this.#nic;
    if (nic === undefined) throw new MacslotError('DATA_PLANE', 'send needs the data plane created from the Nic');
    const client = nic.client(id);
    if (client === undefined) throw new MacslotError('INVALID_ARGUMENT', `no open client with id ${show(id)}`);
    let out: Uint8Array;
    if (options.antiSpoof) {
      // The per-frame path of a switch: one lookup of the source among the active MACs, no objects.
      if (frame.length < 14 || frame.length > this.maxFrameLength) return false;
      const src = (frame[6]! * 0x10000 + frame[7]! * 0x100 + frame[8]!) * 0x100_0000 + ((frame[9]! << 16) | (frame[10]! << 8) | frame[11]!);
      if (this.#mirror.owner(src) !== id) {
        this.#spoofed++;
        return false;
      }
      out = frame.slice();
    } else {
      const own = client.slots().map((s) => nic.addressGet(s)).filter((s) => s.active && s.mac.kind === 'mac48');
      if (frame.length < 14 || frame.length > this.maxFrameLength || own.length === 0) {
        this.#spoofed += own.length === 0 ? 1 : 0;
        return false;
      }
      out = frame.slice();
      own[0]!.mac.writeTo(out, 6);
    }
    this.#single(out);
    this.rxBurst(1, id);
    this.#uplink?.(out, id);
    return true;
  }

  /**
   * Rebuilds the whole filter from the NIC's current state in the idle bank and publishes it, e.g.
   * after a bank was found corrupt; lifts a hold. Readers never wait. Throws NOT_SUPPORTED on a data plane
   * attached without its NIC, CLIENT_CLOSED after close().
   */
  reload(): void {
    this.#live();
    if (this.#nic === undefined) throw new MacslotError('NOT_SUPPORTED', `lane ${this.lane} was attached from a handle; only the data plane created with the NIC can rebuild the filter`);
    // A held filter's mirrors may be behind the NIC: they are rebuilt too, and the hold lifts.
    if (this.#held) this.#recover();
    else this.#rebuild(this.#nic);
  }

  /**
   * Subscribes to the data plane's reports (see DataPlaneEvent); returns the function that unsubscribes. A listener that
   * throws is ignored: a report never breaks the change that caused it.
   */
  on(listener: (event: DataPlaneEvent) => void): () => void {
    this.#live();
    if (!this.#events.includes(listener)) this.#events = [...this.#events, listener];
    return () => {
      this.#events = this.#events.filter((l) => l !== listener);
    };
  }

  /** True while the filter is held (fails closed) after a change it could not apply, until it is rebuilt. */
  get held(): boolean {
    return this.#held;
  }

  /**
   * Takes lane `lane` back at once from an owner known to be gone (e.g. its worker's `exit` event), with its bank
   * announcement and its ring-producer role; the owner's later calls throw DATA_PLANE. Writers also reclaim by themselves
   * a lane stuck inside a burst for `stallMs`. Returns false when the lane was free. Throws INVALID_ARGUMENT for this
   * data plane's own lane or a lane out of range.
   */
  reclaimLane(lane: number): boolean {
    this.#live();
    if (!Number.isInteger(lane) || lane < 0 || lane >= this.#x.laneCount() || lane === this.lane) {
      throw new MacslotError('INVALID_ARGUMENT', `lane must be another lane in 0..${this.#x.laneCount() - 1}, got ${show(lane)}`);
    }
    if (this.#x.reclaimLane(lane) !== 1) return false;
    this.#report({ type: 'lane-reclaimed', lane });
    return true;
  }

  /** Stops following the NIC and gives the lane back. Idempotent; every other method then throws CLIENT_CLOSED. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unguard?.();
    this.#unsubscribe?.();
    if (this.#recoverTimer !== undefined) clearTimeout(this.#recoverTimer);
    this.#events = [];
    this.#x.releaseDelivery(this.lane);
    this.#x.releaseLane(this.lane);
  }

  #live(): void {
    if (this.#closed) throw new MacslotError('CLIENT_CLOSED', `this data plane (lane ${this.lane}) is closed`);
  }

  /** Throws unless this thread still owns its lane: DATA_PLANE once it was reclaimed (its owner was taken for dead). */
  #owned(): void {
    this.#live();
    if (this.#x.ownsLane(this.lane) !== 1) throw new MacslotError('DATA_PLANE', `lane ${this.lane} was reclaimed (its owner was stuck inside a burst); attach again`);
  }

  #checkClient(id: number): void {
    this.#live();
    if (!Number.isInteger(id) || id < 0 || id >= this.#maxClients) throw new MacslotError('INVALID_ARGUMENT', `client id ${show(id)} is outside 0..${this.#maxClients - 1}`);
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

  // ---- programming (the writer side) ------------------------------------------------

  /** Forgets the bank-layout mirrors and programs `bank`, which must be empty, with the NIC's whole filter. */
  #program(nic: Nic, bank: number): void {
    const state = nic.filterState();
    this.#hashType = state.hashFilterType ?? 0;
    this.#groups.clear();
    this.#freeGroups.length = 0;
    for (let g = this.#maxGroups - 1; g >= 0; g--) this.#freeGroups.push(g);
    this.#hashRefs.fill(0);
    this.#clientBits.clear();
    this.#apply(bank, { op: 'flags', flags: this.#flagsFor(nic) });
    // The bulk of a rebuild: the mirror's records go to Wasm through the staging area, many per call.
    const staged = this.#records;
    const perCall = staged.length / RECORD_WORDS;
    const all = this.#mirror.records();
    for (let at = 0; at < this.#mirror.count; at += perCall) {
      const n = Math.min(perCall, this.#mirror.count - at);
      staged.set(all.subarray(at * RECORD_WORDS, (at + n) * RECORD_WORDS));
      if (this.#x.tableLoad(bank, n) !== n) throw new MacslotError('NO_FREE_SLOT', `the data plane table is full; cannot load ${this.#mirror.count} unicast MACs`);
    }
    const ops: Op[] = [];
    for (const [key, g] of state.groups) {
      const mac = typeof key === 'number' ? Mac.fromNumber(key) : Mac.parse(key);
      ops.push(...this.#groupAdd(mac, g.stage));
      const idx = this.#groups.get(mac.key)!.g;
      for (const id of g.members) ops.push({ op: 'member', g: idx, id, on: true });
    }
    for (const c of nic.clients()) ops.push(...this.#refreshClient(c.id));
    for (const op of ops) this.#apply(bank, op);
  }

  #loadFrom(nic: Nic): void {
    // Ownership and the active MACs do not depend on a bank's layout: events keep them current from here on.
    for (const [key, e] of nic.filterState().unicast) {
      const mac = typeof key === 'number' ? Mac.fromNumber(key) : Mac.parse(key);
      this.#mirror.put(mac, (e.client & 0xffff) | (e.hardware ? M_HARDWARE : 0));
      this.#activeCount[e.client]!++;
    }
    // Both banks start identical: program bank 0, copy it, publish it.
    this.#program(nic, 0);
    this.#x.bankCopy(0, 1);
    this.#x.publish(0);
  }

  #flagsFor(nic: Nic): number {
    const s = nic.addressSupport();
    const state = nic.filterState();
    let f = 0;
    if (s.mode === 'promiscuous') f |= F_PROMISC;
    if (s.promiscReasons.includes('multicast-overflow')) f |= F_ALLMULTI;
    if (state.hashFilterType !== null) f |= F_HASH | (state.hashFilterType << F_HASH_TYPE_SHIFT);
    return f;
  }

  /** Records an active unicast MAC in the mirror and returns the operation that puts it in a bank. */
  #mirrorPut(mac: Mac, meta: number): Op {
    if (!this.#mirror.put(mac, meta)) throw new MacslotError('NO_FREE_SLOT', `the data plane mirrors at most ${this.#nic?.maxAddresses ?? 0} active MACs; cannot add ${mac.toString()}`);
    return { op: 'put', mac, meta };
  }

  #unicastMeta(clientId: number, placement: Placement | undefined): number {
    return (clientId & 0xffff) | (placement === 'software' ? 0 : M_HARDWARE);
  }

  #groupAdd(mac: Mac, stage: GroupStage): Op[] {
    const g = this.#freeGroups.pop();
    if (g === undefined) throw new MacslotError('NO_FREE_SLOT', `the data plane holds no more multicast groups; cannot add ${mac.toString()}`);
    this.#groups.set(mac.key, { g, stage });
    return [{ op: 'clear-group', g }, { op: 'put', mac, meta: M_GROUP | g | (STAGE[stage] << M_STAGE_SHIFT) }, ...this.#hashRef(mac, stage, +1)];
  }

  #hashRef(mac: Mac, stage: GroupStage, delta: 1 | -1): Op[] {
    if (stage !== 'hash') return [];
    const bit = mtaIndex(mac.byte(mac.length - 2), mac.byte(mac.length - 1), this.#hashType);
    const before = this.#hashRefs[bit]!;
    this.#hashRefs[bit] = before + delta;
    if (before === 0 && delta > 0) return [{ op: 'hash', bit, on: true }];
    if (before === 1 && delta < 0) return [{ op: 'hash', bit, on: false }];
    return [];
  }

  #refreshClient(id: number): readonly Op[] {
    const c = this.#nic?.client(id);
    const broadcast = c?.broadcast === true && this.#activeCount[id]! > 0;
    const promiscuous = c?.promiscuous ?? false;
    const prev = this.#clientBits.get(id);
    if ((prev?.broadcast ?? false) === broadcast && (prev?.promiscuous ?? false) === promiscuous) return NO_OPS;
    this.#clientBits.set(id, { broadcast, promiscuous });
    if (id >= this.#maxClients) return NO_OPS;
    return [{ op: 'client', id, broadcast, promiscuous }];
  }

  /** Refuses, before the NIC changes, a change this data plane could not apply. */
  #check(c: NicChange): void {
    if (this.#closed) return;
    if (c.type === 'group-add' && c.groups > this.#maxGroups) {
      throw new MacslotError('NO_FREE_SLOT', `cannot join ${c.group.toString()}: the data plane holds at most ${this.#maxGroups} multicast groups (maxGroups)`);
    }
  }

  /**
   * Follows one NIC event. Never throws: it runs inside the NIC's change, after the change took effect. What cannot be
   * applied holds the filter (fail closed), is reported, and is repaired by a rebuild from the NIC.
   */
  #follow(e: NicEvent): void {
    if (this.#closed) return;
    try {
      if (e.type === 'client-opened') this.#resetClient(e.clientId);
      if (this.#held) this.#recover();
      else this.#followOne(e);
    } catch (err) {
      this.#hold(err);
    }
  }

  /** Fails closed: every burst drops until `#recover` rebuilds the filter; retried on a timer, and on the next change. */
  #hold(err: unknown): void {
    const first = !this.#held;
    this.#held = true;
    this.#x.setHold(1);
    if (first) this.#report({ type: 'held', error: err });
    if (this.#recoverTimer === undefined) {
      const t = setTimeout(() => {
        this.#recoverTimer = undefined;
        if (this.#closed || !this.#held) return;
        try {
          this.#recover();
        } catch (again) {
          this.#recoverDelay = Math.min(this.#recoverDelay * 2, RECOVER_MAX_MS);
          this.#hold(again);
        }
      }, this.#recoverDelay);
      (t as { unref?: () => void }).unref?.();
      this.#recoverTimer = t;
    }
  }

  /** Rebuilds the mirrors and the filter from the NIC's state, then lifts the hold. Throws when it cannot. */
  #recover(): void {
    const nic = this.#nic!;
    this.#mirror.clear();
    this.#activeCount.fill(0);
    for (const [key, e] of nic.filterState().unicast) {
      const mac = typeof key === 'number' ? Mac.fromNumber(key) : Mac.parse(key);
      if (!this.#mirror.put(mac, (e.client & 0xffff) | (e.hardware ? M_HARDWARE : 0))) throw new MacslotError('NO_FREE_SLOT', 'the data plane mirror is full');
      this.#activeCount[e.client]!++;
    }
    this.#rebuild(nic);
    this.#held = false;
    this.#recoverDelay = RECOVER_FIRST_MS;
    this.#x.setHold(0);
    if (this.#recoverTimer !== undefined) clearTimeout(this.#recoverTimer);
    this.#recoverTimer = undefined;
    this.#report({ type: 'recovered' });
  }

  /** Programs the idle bank from scratch with the NIC's filter and publishes it; the other bank is copied at the next change. */
  #rebuild(nic: Nic): void {
    const x = this.#x;
    const target = 1 - x.activeBank();
    this.#waitIdle(target);
    x.bankReset(target);
    this.#program(nic, target);
    x.publish(target);
    this.#pending = 'copy';
  }

  /**
   * A client id is being reused: its ring and counters must not show the previous client's frames. The closed client's
   * bits left the published bank; once the other bank has no reader either, no burst can still deliver to the id.
   */
  #resetClient(id: number): void {
    if (id >= this.#maxClients) return;
    this.#waitIdle(1 - this.#x.activeBank());
    this.#x.clientReset(id);
  }

  /** Turns one NIC event into bank operations and commits them. */
  #followOne(e: NicEvent): void {
    const ops: Op[] = [];
    switch (e.type) {
      case 'reserved':
        if (e.active) {
          ops.push(this.#mirrorPut(e.mac, this.#unicastMeta(e.clientId, e.placement)));
          this.#activeCount[e.clientId]!++;
        }
        break;
      case 'modified':
        if (e.previous) {
          ops.push({ op: 'del', mac: e.previous });
          this.#mirror.delete(e.previous.key);
        } else this.#activeCount[e.clientId]!++;
        ops.push(this.#mirrorPut(e.mac, this.#unicastMeta(e.clientId, e.placement)));
        break;
      case 'released':
        if (e.mac) {
          ops.push({ op: 'del', mac: e.mac });
          this.#activeCount[e.clientId]!--;
          this.#mirror.delete(e.mac.key);
        }
        break;
      case 'placed':
        ops.push(this.#mirrorPut(e.mac, this.#unicastMeta(e.clientId, e.placement)));
        break;
      case 'joined': {
        const key = e.group.key;
        if (!this.#groups.has(key)) ops.push(...this.#groupAdd(e.group, e.stage ?? 'exact'));
        ops.push({ op: 'member', g: this.#groups.get(key)!.g, id: e.clientId, on: true });
        break;
      }
      case 'left': {
        const key = e.group.key;
        const entry = this.#groups.get(key);
        if (entry === undefined) break;
        ops.push({ op: 'member', g: entry.g, id: e.clientId, on: e.member });
        if (e.stage === undefined) {
          ops.push({ op: 'del', mac: e.group }, ...this.#hashRef(e.group, entry.stage, -1));
          this.#groups.delete(key);
          this.#freeGroups.push(entry.g);
        }
        break;
      }
      case 'group-stage': {
        const entry = this.#groups.get(e.group.key);
        if (entry === undefined) break;
        ops.push(...this.#hashRef(e.group, entry.stage, -1));
        entry.stage = e.stage;
        ops.push({ op: 'put', mac: e.group, meta: M_GROUP | entry.g | (STAGE[e.stage] << M_STAGE_SHIFT) }, ...this.#hashRef(e.group, e.stage, +1));
        break;
      }
      case 'mode': {
        const f = (this.#flags & ~(F_PROMISC | F_ALLMULTI)) | (e.mode === 'promiscuous' ? F_PROMISC : 0) | (e.reasons.includes('multicast-overflow') ? F_ALLMULTI : 0);
        ops.push({ op: 'flags', flags: f });
        break;
      }
      case 'client-opened':
      case 'client-changed':
      case 'client-closed':
        break;
    }
    if ('clientId' in e) ops.push(...this.#refreshClient(e.clientId));
    if (ops.length > 0) this.#commit(ops);
  }

  #apply(bank: number, o: Op): void {
    const x = this.#x;
    switch (o.op) {
      case 'put':
      case 'del': {
        o.mac.writeTo(this.#staging, 0);
        const ok = o.op === 'put' ? x.tablePut(bank, o.mac.length, o.meta) : x.tableDelete(bank, o.mac.length);
        if (o.op === 'put' && ok !== 1) throw new MacslotError('NO_FREE_SLOT', `the data plane table is full; cannot add ${o.mac.toString()}`);
        break;
      }
      case 'flags':
        this.#flags = o.flags;
        x.bankSetFlags(bank, o.flags);
        break;
      case 'client':
        x.bankSetClient(bank, o.id, o.broadcast ? 1 : 0, o.promiscuous ? 1 : 0);
        break;
      case 'member':
        x.bankSetMember(bank, o.g, o.id, o.on ? 1 : 0);
        break;
      case 'clear-group':
        x.bankClearGroup(bank, o.g);
        break;
      case 'hash':
        x.bankSetHashBit(bank, o.bit, o.on ? 1 : 0);
        break;
    }
  }

  /**
   * Left-right commit: bring the idle bank up to date (once no reader is inside it), apply the new
   * operations there, publish it, and keep the operations to replay on the other bank next time.
   * Readers never wait; the writer waits at most for bursts that started before the last publish.
   */
  #commit(ops: Op[]): void {
    const x = this.#x;
    const target = 1 - x.activeBank();
    this.#waitIdle(target);
    if (this.#pending === 'copy') x.bankCopy(1 - target, target);
    else for (const op of this.#pending) this.#apply(target, op);
    for (const op of ops) this.#apply(target, op);
    x.publish(target);
    this.#pending = ops;
  }

  /**
   * Waits until no lane reads `bank`. Only bursts that began before the last publish can be inside it, so a lane that
   * stays there for `stallMs` is stuck in one burst: its owner died or hangs. That lane is reclaimed (see reclaimLane)
   * and the wait ends: a writer never waits on a dead reader longer than that, and only once per dead lane.
   */
  #waitIdle(bank: number): void {
    const x = this.#x;
    if (x.readersOn(bank) === 0) return;
    const started = Date.now();
    let spins = 0;
    while (x.readersOn(bank) !== 0) {
      if ((++spins & 1023) !== 0 || Date.now() - started < this.#stallMs) continue;
      for (let l = 0; l < x.laneCount(); l++) {
        if (l !== this.lane && x.laneState(l) === bank + 1 && x.reclaimLane(l) === 1) this.#report({ type: 'lane-reclaimed', lane: l });
      }
    }
  }
}

function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): Exports {
  return new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Exports;
}
