// Data plane: the reader side of one lane. Its pool, descriptors and verdicts, bursts through the published filter, the
// client rings and the counters. It holds no writer state: a worker's attached data plane is only this.

import { MacslotError, show } from '../errors.js';
import { RULES, type Rule, type Verdict } from '../filter/reference.js';
import type { Mac } from '../wire/mac.js';
import type { Exports } from './instance.js';
import {
  KIND_EUI64,
  KIND_MAC48,
  NO_CLIENT,
  C_BROADCAST,
  C_BYTES,
  C_FRAMES,
  C_MULTICAST,
  C_POOL_DROPS,
  C_RING_DROPS,
  CLIENT_COUNTER_BYTES,
  H_REVOKING,
  H_RING_RESETS,
  NO_SPACE,
  LANE_COUNTERS,
  STRIPES,
  X_DELIVERIES,
  X_POOL_DROPS,
  X_POOL_FULL,
  X_READER_RETRIES,
  X_RING_CORRUPT,
  X_RING_FULL,
  V_VLAN_MASK,
  V_VLAN_SHIFT,
  VLAN_IDS,
} from './layout.generated.js';
import { VLAN_HLEN } from '../vlan/tag.js';
import { RxRing, type RingLanes } from './ring.js';
import { verdictPath, verdictRef, verdictRule } from './verdict.js';

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
  /**
   * Frames taken back from the client's ring before it read them, because the pool ran out of free lines (a slow consumer),
   * and, under VLANs, frames not delivered because the pool had no room for the form (tagged or untagged) the client needs.
   */
  readonly poolDrops: number;
}

/** Lane counters summed over every lane (the `spoofed` count of DataPlaneCounters comes from transmit). */
export interface LaneCounters {
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
  /** Deliveries taken back from the slowest rings to free pool lines (each also counted in that client's `poolDrops`). */
  readonly poolDrops: number;
  /**
   * Frames refused a place in the pool: every line was held by views consumers had taken and not released; under VLANs
   * also a frame's tagged or untagged form that found no room (its receivers count it in their `poolDrops`).
   */
  readonly poolFull: number;
}

function u64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 0x1_0000_0000;
}

/** One lane of a data plane: what a thread needs to run bursts and read rings. */
export class LaneReader {
  /** The instance (this thread's) of the module. */
  readonly x: Exports;
  /** The shared memory. */
  readonly memory: WebAssembly.Memory;
  /** This thread's lane. */
  readonly lane: number;
  /** Longest frame accepted, in bytes. */
  readonly maxFrameLength: number;
  /** The lane's frame pool. */
  readonly pool: Uint8Array;
  /** Pairs of (offset into `pool`, length), one pair per frame of the next burst. */
  readonly descriptors: Uint32Array;
  /** One verdict word per frame after a burst. */
  readonly verdicts: Uint32Array;
  /** Most frames per burst. */
  readonly burst: number;
  /** Client capacity (ids 0..n-1). */
  readonly maxClients: number;
  readonly #keys: Uint8Array;
  readonly #kinds: Uint8Array;
  readonly #words: number;
  #ringLanes: RingLanes | undefined;
  #closed = false;

  /** Wraps lane `lane` of the instance `x`, which already claimed it. */
  constructor(x: Exports, memory: WebAssembly.Memory, lane: number, maxFrame: number) {
    this.x = x;
    this.memory = memory;
    this.lane = lane;
    this.maxFrameLength = maxFrame;
    const buf = memory.buffer;
    const desc = x.descriptorsPtr(lane);
    const verdicts = x.verdictsPtr(lane);
    this.burst = (verdicts - desc) / 8;
    this.descriptors = new Uint32Array(buf, desc, this.burst * 2);
    this.verdicts = new Uint32Array(buf, verdicts, this.burst);
    this.#keys = new Uint8Array(buf, x.keysPtr(lane), this.burst * 8);
    this.#kinds = new Uint8Array(buf, x.kindsPtr(lane), this.burst);
    this.pool = new Uint8Array(buf, x.poolPtr(lane), x.poolBytesPerLane());
    this.maxClients = x.clientCapacity();
    this.#words = (this.maxClients + 31) >> 5;
  }

  /** True once `close` ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Throws CLIENT_CLOSED after close(). */
  live(): void {
    if (this.#closed) throw new MacslotError('CLIENT_CLOSED', `this data plane (lane ${this.lane}) is closed`);
  }

  /** Throws unless this thread still owns its lane: DATA_PLANE once it was reclaimed (its owner was taken for dead). */
  owned(): void {
    this.live();
    if (this.x.ownsLane(this.lane) !== 1)
      throw new MacslotError('DATA_PLANE', `lane ${this.lane} was reclaimed (its owner was stuck inside a burst); attach again`);
  }

  /** Throws INVALID_ARGUMENT for a client id outside the capacity. */
  checkClient(id: number): void {
    this.live();
    if (!Number.isInteger(id) || id < 0 || id >= this.maxClients)
      throw new MacslotError('INVALID_ARGUMENT', `client id ${show(id)} is outside 0..${this.maxClients - 1}`);
  }

  /** See DataPlane.claimDelivery. */
  claimDelivery(): boolean {
    this.owned();
    return this.x.claimDelivery(this.lane) === 1;
  }

  /** See DataPlane.releaseDelivery. */
  releaseDelivery(): void {
    this.live();
    this.x.releaseDelivery(this.lane);
  }

  /** See DataPlane.classifyBurst. */
  classifyBurst(count: number): number {
    this.#checkCount(count);
    if (this.x.classifyBurst(this.lane, count) !== count || count === 0) this.owned();
    return count;
  }

  /** See DataPlane.rxBurst. */
  rxBurst(count: number, exclude?: number): number {
    this.#checkCount(count);
    if (count === 0) return 0;
    const n = this.x.rxBurst(this.lane, count, exclude ?? NO_CLIENT);
    if (n !== count) this.owned();
    if (n !== count) throw new MacslotError('DATA_PLANE', `lane ${this.lane} is not the ring producer; call claimDelivery() first`);
    return n;
  }

  /** See DataPlane.load. */
  load(frames: readonly Uint8Array[]): number {
    this.live();
    let i = 0;
    for (; i < frames.length && i < this.burst; i++) {
      const f = frames[i]!;
      const off = this.reserve(f.length, i === 0);
      if (off < 0) break;
      this.pool.set(f, off);
      this.descriptors[2 * i] = off;
      this.descriptors[2 * i + 1] = f.length;
    }
    return i;
  }

  /**
   * Returns a pool offset where `length` bytes may be written without touching a frame a ring still holds, or -1 when
   * none is free (for a batch's first frame, after taking pending frames back from the slowest rings). `begin` starts a
   * new batch: the frames placed since the previous begin are taken as not yet delivered, so their lines are not handed
   * out again, and a later frame that finds no room ends the batch.
   */
  reserve(length: number, begin = true): number {
    if (length === 0) return -1;
    const off = this.x.poolAlloc(this.lane, length, begin ? 1 : 0) >>> 0;
    return off === NO_SPACE ? -1 : off;
  }

  /**
   * Describes `frame` as the only frame of the next burst, copied to free pool lines. With no free line (or no bytes) it
   * is described out of the pool, so the burst drops it as a bad descriptor (or a runt) and reads nothing.
   */
  single(frame: Uint8Array): void {
    const off = this.reserve(frame.length);
    if (off >= 0) this.pool.set(frame, off);
    this.descriptors[0] = off >= 0 ? off : this.pool.length;
    this.descriptors[1] = frame.length;
  }

  /** See DataPlane.receiveBurst. */
  receiveBurst(frames: readonly Uint8Array[]): number {
    this.live();
    let done = 0;
    while (done < frames.length) {
      const n = this.load(frames.slice(done, done + this.burst));
      if (n === 0) {
        // Bigger than the whole pool, or no free line: still classified (as bad descriptor), never silently skipped.
        this.descriptors[0] = this.pool.length;
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

  /** Classifies `keys` in the published filter; returns one verdict each. */
  classifyKeys(keys: readonly Mac[]): Verdict[] {
    this.live();
    const out: Verdict[] = [];
    for (let start = 0; start < keys.length; start += this.burst) {
      const chunk = keys.slice(start, start + this.burst);
      chunk.forEach((k, i) => {
        this.#keys.fill(0, i * 8, i * 8 + 8);
        k.writeTo(this.#keys, i * 8);
        this.#kinds[i] = k.kind === 'eui64' ? KIND_EUI64 : KIND_MAC48;
      });
      if (this.x.classifyKeys(this.lane, chunk.length) !== chunk.length) this.owned();
      for (let i = 0; i < chunk.length; i++) out.push(this.decode(this.verdicts[i]!));
    }
    return out;
  }

  /** See DataPlane.decode. */
  decode(word: number): Verdict {
    this.live();
    const rule = verdictRule(word);
    const ref = verdictRef(word);
    const bank = this.x.activeBank();
    const promisc = this.#bitmap(this.x.bankPromiscPtr(bank));
    let set: number[];
    switch (rule) {
      case 'broadcast':
        set = [...this.#bitmap(this.x.bankBroadcastPtr(bank)), ...promisc];
        break;
      case 'multicast-exact':
      case 'multicast-hash':
      case 'multicast-all':
        set = [...this.#bitmap(this.x.bankGroupPtr(bank, ref)), ...promisc];
        break;
      case 'unicast-exact':
      case 'software':
        set = [ref, ...promisc];
        break;
      case 'promiscuous':
        set = promisc;
        break;
      default:
        set = [];
    }
    // A frame classified under VLAN filtering reaches only the clients of its VLAN (slot in bits 8..15).
    const slot = (word & V_VLAN_MASK) >>> V_VLAN_SHIFT;
    if (slot !== 0 && rule !== 'drop-vlan') {
      const vlan = new Set(this.#bitmap(this.x.bankVlanPtr(bank) + VLAN_IDS + (slot - 1) * this.#words * 4));
      set = set.filter((id) => vlan.has(id));
    }
    return { deliver: [...new Set(set)].sort((a, b) => a - b), rule, path: verdictPath(word) };
  }

  #bitmap(ptr: number): number[] {
    const out: number[] = [];
    if (ptr === 0) return out;
    const w = new Uint32Array(this.memory.buffer, ptr, this.#words);
    for (let i = 0; i < w.length; i++) for (let b = w[i]!; b !== 0; b &= b - 1) out.push(i * 32 + (31 - Math.clz32(b & -b)));
    return out;
  }

  #checkCount(count: number): void {
    this.live();
    if (!Number.isInteger(count) || count < 0 || count > this.burst)
      throw new MacslotError('INVALID_ARGUMENT', `burst count must be 0..${this.burst}, got ${show(count)}`);
  }

  /** See DataPlane.ring. */
  ring(id: number): RxRing {
    this.checkClient(id);
    return new RxRing(
      this.memory.buffer,
      this.x.ringPtr(id),
      this.x.ringSlots(),
      // A frame delivered under VLAN filtering keeps the bridge's tag, which the length limit does not count.
      this.maxFrameLength + (this.x.bankVlanPtr(0) !== 0 ? VLAN_HLEN : 0),
      id,
      this.#lanes(),
      this.x.ringResetsPtr(),
    );
  }

  /** Every lane's pool and pin counts, which ring descriptors point into. */
  #lanes(): RingLanes {
    if (this.#ringLanes === undefined) {
      const buf = this.memory.buffer;
      const n = this.x.laneCount();
      const pools: Uint8Array[] = [];
      const pins: Int32Array[] = [];
      for (let l = 0; l < n; l++) {
        pools.push(new Uint8Array(buf, this.x.poolPtr(l), this.x.poolBytesPerLane()));
        pins.push(new Int32Array(buf, this.x.pinsPtr(l), this.x.poolLineCount()));
      }
      const x = this.x;
      // The header's revoking word, found from another header word's address and the layout's offsets.
      const revoking = new Int32Array(buf, x.ringResetsPtr() - H_RING_RESETS + H_REVOKING, 1);
      this.#ringLanes = { pools, pins, revoking, discard: (client, held) => x.ringDiscard(client, held) };
    }
    return this.#ringLanes;
  }

  /** See DataPlane.clientCounters. */
  clientCounters(id: number): ClientCounters {
    this.checkClient(id);
    const v = new DataView(this.memory.buffer, this.x.clientCountersPtr() + id * CLIENT_COUNTER_BYTES, CLIENT_COUNTER_BYTES);
    return {
      frames: u64(v, C_FRAMES),
      bytes: u64(v, C_BYTES),
      broadcast: u64(v, C_BROADCAST),
      multicast: u64(v, C_MULTICAST),
      ringDrops: u64(v, C_RING_DROPS),
      poolDrops: u64(v, C_POOL_DROPS),
    };
  }

  /** Returns the lane counters summed over every lane (each counter is STRIPES adjacent u64 copies). */
  counters(): LaneCounters {
    this.live();
    const sums = new Array<number>(LANE_COUNTERS).fill(0);
    for (let l = 0; l < this.x.laneCount(); l++) {
      const v = new DataView(this.memory.buffer, this.x.laneCountersPtr(l), LANE_COUNTERS * STRIPES * 8);
      for (let i = 0; i < LANE_COUNTERS * STRIPES; i++) sums[Math.floor(i / STRIPES)]! += u64(v, 8 * i);
    }
    const rules = Object.fromEntries(RULES.map((r, i) => [r, sums[i]!])) as Record<Rule, number>;
    // Consumers count the corrupt indices they reset in one shared word; producers count theirs per lane.
    const resets = new Uint32Array(this.memory.buffer, this.x.ringResetsPtr(), 1)[0]!;
    return {
      rules,
      ringFull: sums[X_RING_FULL]!,
      ringCorrupt: sums[X_RING_CORRUPT]! + resets,
      readerRetries: sums[X_READER_RETRIES]!,
      deliveries: sums[X_DELIVERIES]!,
      poolDrops: sums[X_POOL_DROPS]!,
      poolFull: sums[X_POOL_FULL]!,
    };
  }

  /** Gives the lane and the ring-producer role back. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.x.releaseDelivery(this.lane);
    this.x.releaseLane(this.lane);
  }
}
