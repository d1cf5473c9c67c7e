// Data plane: the writer. It follows the NIC's changes and commits them to the two banks (left-right over one shared table:
// it writes only the bank no reader uses, and table entries only in slots neither bank holds, then publishes the bank),
// holds the filter closed when a change cannot be applied, and rebuilds it from the NIC. Only the data plane created from
// the NIC has one; lanes attached in workers do not.

import { MacslotError } from '../errors.js';
import { mtaIndex } from '../filter/hash.js';
import { ChurnMap } from '../nic/churn-map.js';
import type { Nic, NicChange } from '../nic/nic.js';
import type { GroupStage, NicEvent, Placement } from '../nic/types.js';
import { Mac } from '../wire/mac.js';
import type { Exports } from './instance.js';
import {
  HASH_BYTES,
  F_ALLMULTI,
  F_HASH,
  F_HASH_TYPE_SHIFT,
  F_PROMISC,
  M_GROUP,
  M_HARDWARE,
  M_INDEX,
  M_STAGE_SHIFT,
  STAGE_ALL,
  STAGE_EXACT,
  STAGE_HASH,
} from './layout.generated.js';
import { RECORD_WORDS, UnicastMirror } from './mirror.js';
import type { VlanImage } from './vlan.js';

/** What the writer reports (see DataPlaneEvent). */
export type WriterEvent =
  | { readonly type: 'lane-reclaimed'; readonly lane: number }
  | { readonly type: 'held'; readonly error: unknown }
  | { readonly type: 'recovered' };

const STAGE: Record<GroupStage, number> = { exact: STAGE_EXACT, hash: STAGE_HASH, all: STAGE_ALL };
/** Shared by every change that needs no bank operation; never mutated. */
const NO_OPS: readonly Op[] = [];
const TIDY: Op = { op: 'tidy' };
// First retry of a held filter; doubled up to the cap while rebuilding keeps failing.
const RECOVER_FIRST_MS = 10;
const RECOVER_MAX_MS = 5000;

type Op =
  | { op: 'put'; mac: Mac; meta: number }
  | { op: 'del'; mac: Mac }
  | { op: 'flags'; flags: number }
  | { op: 'client'; id: number; broadcast: boolean; promiscuous: boolean }
  | { op: 'member'; g: number; id: number; on: boolean }
  | { op: 'clear-group'; g: number }
  | { op: 'hash'; bit: number; on: boolean }
  | { op: 'vlans'; vlans: VlanImage | undefined }
  | { op: 'tidy' };

/** Returns the meta word of a unicast MAC owned by client `clientId`: its index, and whether the NIC's hardware holds it. */
function unicastMeta(clientId: number, hardware: boolean): number {
  return (clientId & M_INDEX) | (hardware ? M_HARDWARE : 0);
}

/** Keeps the banks in step with one NIC. */
export class FilterWriter {
  readonly #x: Exports;
  readonly #nic: Nic;
  // The lane of the thread that writes: its own waits never reclaim it.
  readonly #lane: number;
  readonly #report: (e: WriterEvent) => void;
  readonly #unsubscribe: () => void;
  readonly #unguard: () => void;
  readonly #staging: Uint8Array;
  // The staging area as tableLoad records (see RECORD_WORDS).
  readonly #records: Uint32Array;
  readonly #maxClients: number;
  readonly #maxGroups: number;
  readonly #stallMs: number;
  readonly #tidyAt: number;
  // Operations the idle bank still lacks, or 'copy' after a reload: the idle bank is then rebuilt from the active one.
  #pending: Op[] | 'copy' = [];
  #closed = false;
  // Set while the filter is held (fails closed) until a rebuild from the NIC succeeds; the timer retries that rebuild.
  #held = false;
  #recoverTimer: ReturnType<typeof setTimeout> | undefined;
  #recoverDelay = RECOVER_FIRST_MS;
  // Mirror of what the banks hold, so each NIC event turns into a few precise bank operations.
  readonly #groups = new ChurnMap<number | string, { g: number; stage: GroupStage }>();
  readonly #freeGroups: number[] = [];
  readonly #hashRefs = new Uint16Array(HASH_BYTES * 8);
  // Active unicast MACs per client id (ids are below the NIC's client capacity).
  readonly #activeCount: Int32Array;
  // The active unicast MACs as bulk-load records, with their owners: anti-spoof checks cost one
  // lookup per frame, and a rebuild copies records instead of walking the NIC's state.
  readonly #mirror: UnicastMirror;
  readonly #clientBits = new Map<number, { broadcast: boolean; promiscuous: boolean }>();
  #flags = 0;
  #hashType = 0;
  readonly #memory: WebAssembly.Memory;
  // The VLAN state both banks hold (undefined: no VLAN filtering).
  #vlans: VlanImage | undefined;

  /**
   * Programs both banks of `memory` with the NIC's filter and follows the NIC from now on. Throws, leaving no listener or
   * guard on the NIC, when the filter cannot be loaded (e.g. the NIC holds more groups than `maxGroups`).
   */
  constructor(
    x: Exports,
    memory: WebAssembly.Memory,
    nic: Nic,
    lane: number,
    maxGroups: number,
    stallMs: number,
    report: (e: WriterEvent) => void,
  ) {
    this.#x = x;
    this.#memory = memory;
    this.#nic = nic;
    this.#lane = lane;
    this.#report = report;
    this.#staging = new Uint8Array(memory.buffer, x.stagingPtr(), 8);
    this.#records = new Uint32Array(memory.buffer, x.stagingPtr(), x.stagedRecords() * RECORD_WORDS);
    this.#maxClients = x.clientCapacity();
    this.#maxGroups = maxGroups;
    this.#stallMs = stallMs;
    this.#tidyAt = x.tableSlots() >> 4;
    this.#activeCount = new Int32Array(Math.max(this.#maxClients, nic.maxClients));
    this.#mirror = new UnicastMirror(nic.maxAddresses);
    for (let g = maxGroups - 1; g >= 0; g--) this.#freeGroups.push(g);
    // Limits are checked before the NIC changes: a refused change leaves the NIC and the filter as they were.
    this.#unguard = nic.guard((c) => this.#check(c));
    this.#unsubscribe = nic.on((e) => this.#follow(e));
    try {
      this.#loadFrom(nic);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** True while the filter is held (fails closed). */
  get held(): boolean {
    return this.#held;
  }

  /** Returns the client id owning the active unicast MAC with `key` (a `Mac.key`), or -1: one lookup, for anti-spoof. */
  owner(key: number | string): number {
    return this.#mirror.owner(key);
  }

  /** Rebuilds the filter from the NIC in the idle bank and publishes it; a held filter's mirrors too, lifting the hold. */
  reload(): void {
    if (this.#held) this.#recover();
    else this.#rebuild(this.#nic);
  }

  /** Turns VLAN filtering on with `vlans` (or off, undefined) in both banks, the left-right way like every other change. */
  setVlans(vlans: VlanImage | undefined): void {
    this.#commit([{ op: 'vlans', vlans }]);
  }

  /** Stops following the NIC. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unguard();
    this.#unsubscribe();
    if (this.#recoverTimer !== undefined) clearTimeout(this.#recoverTimer);
    this.#recoverTimer = undefined;
  }

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
      if (this.#x.tableLoad(bank, n) !== n)
        throw new MacslotError('NO_FREE_SLOT', `the data plane table is full; cannot load ${this.#mirror.count} unicast MACs`);
    }
    const ops: Op[] = [];
    for (const [key, g] of state.groups) {
      const mac = typeof key === 'number' ? Mac.fromNumber(key) : Mac.parse(key);
      ops.push(...this.#groupAdd(mac, g.stage));
      const idx = this.#groups.get(mac.key)!.g;
      for (const id of g.members) ops.push({ op: 'member', g: idx, id, on: true });
    }
    for (const c of nic.clients()) ops.push(...this.#refreshClient(c.id));
    if (this.#vlans !== undefined) ops.push({ op: 'vlans', vlans: this.#vlans });
    for (const op of ops) this.#apply(bank, op);
  }

  #loadFrom(nic: Nic): void {
    // Ownership and the active MACs do not depend on a bank's layout: events keep them current from here on.
    for (const [key, e] of nic.filterState().unicast) {
      const mac = typeof key === 'number' ? Mac.fromNumber(key) : Mac.parse(key);
      this.#mirror.put(mac, unicastMeta(e.client, e.hardware));
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
    if (!this.#mirror.put(mac, meta))
      throw new MacslotError(
        'NO_FREE_SLOT',
        `the data plane mirrors at most ${this.#nic.maxAddresses} active MACs; cannot add ${mac.toString()}`,
      );
    return { op: 'put', mac, meta };
  }

  #unicastMeta(clientId: number, placement: Placement | undefined): number {
    return unicastMeta(clientId, placement !== 'software');
  }

  #groupAdd(mac: Mac, stage: GroupStage): Op[] {
    const g = this.#freeGroups.pop();
    if (g === undefined)
      throw new MacslotError('NO_FREE_SLOT', `the data plane holds no more multicast groups; cannot add ${mac.toString()}`);
    this.#groups.set(mac.key, { g, stage });
    return [
      { op: 'clear-group', g },
      { op: 'put', mac, meta: M_GROUP | g | (STAGE[stage] << M_STAGE_SHIFT) },
      ...this.#hashRef(mac, stage, +1),
    ];
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
    const c = this.#nic.client(id);
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
      throw new MacslotError(
        'NO_FREE_SLOT',
        `cannot join ${c.group.toString()}: the data plane holds at most ${this.#maxGroups} multicast groups (maxGroups)`,
      );
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
    const nic = this.#nic;
    this.#mirror.clear();
    this.#activeCount.fill(0);
    for (const [key, e] of nic.filterState().unicast) {
      const mac = typeof key === 'number' ? Mac.fromNumber(key) : Mac.parse(key);
      if (!this.#mirror.put(mac, unicastMeta(e.client, e.hardware)))
        throw new MacslotError('NO_FREE_SLOT', 'the data plane mirror is full');
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
        ops.push(
          { op: 'put', mac: e.group, meta: M_GROUP | entry.g | (STAGE[e.stage] << M_STAGE_SHIFT) },
          ...this.#hashRef(e.group, e.stage, +1),
        );
        break;
      }
      case 'mode': {
        const f =
          (this.#flags & ~(F_PROMISC | F_ALLMULTI)) |
          (e.mode === 'promiscuous' ? F_PROMISC : 0) |
          (e.reasons.includes('multicast-overflow') ? F_ALLMULTI : 0);
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
        if (o.op === 'put' && ok !== 1)
          throw new MacslotError('NO_FREE_SLOT', `the data plane table is full; cannot add ${o.mac.toString()}`);
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
      case 'tidy':
        x.tableTidy(bank);
        break;
      case 'vlans': {
        this.#vlans = o.vlans;
        const ptr = x.bankVlanPtr(bank);
        const view = new Uint8Array(this.#memory.buffer, ptr, o.vlans?.image.length ?? 0);
        // Off: the word alone turns filtering off. An image covers the whole region, so nothing stale survives the next one.
        if (o.vlans !== undefined) view.set(o.vlans.image);
        x.bankSetVlan(bank, o.vlans?.word ?? 0);
        break;
      }
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
    // Deleted control bytes lengthen probes: past a sixteenth of the slots the bank is tidied first (the other bank replays it).
    if (x.tableTombs(target) > this.#tidyAt) ops.unshift(TIDY);
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
        if (l !== this.#lane && x.laneState(l) === bank + 1 && x.reclaimLane(l) === 1) this.#report({ type: 'lane-reclaimed', lane: l });
      }
    }
  }
}
