// Interface layer: the slot-managed NIC control plane (the seed's Address Support/Reserve/Unreserve/Modify/Get/Add/Remove).

import { cryptoRandom, randomAddr, type RandomSource } from '../alloc/generate.js';
import { MacslotError, reportListenerError, show } from '../errors.js';
import { LIMITS } from '../limits.js';
import { HASH_BITS, mtaIndex } from '../filter/hash.js';
import type { FilterState, GroupEntry, UnicastEntry } from '../filter/state.js';
import { DEFAULT_MAX_FRAME, ETH_HLEN } from '../wire/ethernet.js';
import { Mac, type MacLike } from '../wire/mac.js';
import { ChurnMap, ChurnSet } from './churn-map.js';
import type {
  AddressKind,
  AddressSupport,
  ClientOptions,
  GroupStage,
  NicConfig,
  NicEvent,
  NicMode,
  OverflowPolicy,
  Placement,
  PromiscReason,
  Reservation,
  SlotInfo,
} from './types.js';

interface SlotState {
  readonly slot: number;
  readonly factory: Mac | undefined;
  owner: ClientState | undefined;
  active: Mac | undefined;
  placement: Placement | undefined;
  /** Order in which software placements happened, so the oldest is promoted first. */
  seq: number;
}

interface ClientState {
  readonly id: number;
  readonly name: string;
  open: boolean;
  readonly slots: ChurnSet<number>;
  readonly groups: ChurnMap<string, number>;
  promiscuous: boolean;
  broadcast: boolean;
  allowPromiscuous: boolean;
}

interface GroupState {
  readonly mac: Mac;
  readonly refs: ChurnMap<number, number>;
  stage: GroupStage;
}

type Listener = (event: NicEvent) => void;

/** A change about to take effect, shown to each guard (see `Nic.guard`) before anything changes. */
export type NicChange = {
  /** The change: a group about to be joined. */
  readonly type: 'group-add';
  /** The group. */
  readonly group: Mac;
  /** How many groups the NIC will hold with it. */
  readonly groups: number;
};
type Guard = (change: NicChange) => void;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

const PROMISC_ORDER: readonly PromiscReason[] = ['user', 'unicast-overflow', 'multicast-overflow', 'no-capability'];

function count(value: unknown, name: string, fallback: number, max = 1 << 20): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new MacslotError('INVALID_ARGUMENT', `${name} must be an integer in 0..${max}, got ${show(value)}`);
  }
  return value;
}

function factoryList(spec: NicConfig['factory']): Mac[] {
  if (spec === undefined) return [];
  if (Array.isArray(spec)) {
    if (spec.length > LIMITS.factory)
      throw new MacslotError('INVALID_ARGUMENT', `factory lists ${spec.length} MACs; at most ${LIMITS.factory}`);
    return spec.map((m) => Mac.from(m));
  }
  const { base, count: n } = spec as { base: MacLike; count: number };
  const first = Mac.from(base);
  count(n, 'factory.count', 0, LIMITS.factory);
  if (first.kind !== 'mac48' || first.toNumber() + n > 2 ** 48)
    throw new MacslotError('INVALID_ARGUMENT', `factory block ${first.toString()} + ${n} leaves MAC-48 space`);
  return Array.from({ length: n }, (_, i) => Mac.fromNumber(first.toNumber() + i));
}

/** Dense slot-number → state table. */
class SlotTable {
  readonly #a: (SlotState | undefined)[] = [];
  get(n: number): SlotState | undefined {
    return this.#a[n];
  }
  has(n: number): boolean {
    return this.#a[n] !== undefined;
  }
  set(n: number, s: SlotState): void {
    this.#a[n] = s;
  }
  delete(n: number): void {
    this.#a[n] = undefined;
  }
  /** Slot numbers in use, ascending. */
  *keys(): IterableIterator<number> {
    for (let n = 0; n < this.#a.length; n++) if (this.#a[n] !== undefined) yield n;
  }
}

/** A network interface device that owns several MAC identifiers at once. Every slot operation goes through a client. */
export class Nic {
  /** The primary MAC, held in slot 0. */
  readonly primary: Mac;
  /** What happens when the filter is full. */
  readonly overflow: OverflowPolicy;
  /** True when a reserved MAC goes into the filter at once. */
  readonly autoActivate: boolean;
  /** Longest frame accepted, in bytes without FCS. */
  readonly maxFrameLength: number;
  readonly #factoryCount: number;
  readonly #unicastEntries: number;
  readonly #multicastEntries: number;
  readonly #hashType: number | null;
  readonly #maxClients: number;
  readonly #maxAddresses: number;
  readonly #random: RandomSource;
  // Slot-indexed array, not a Map: a Map re-keyed with the same slot on every add/remove keeps deleted entries in that key's chain until it
  // rehashes, which made addressAdd grow to tens of µs.
  readonly #slots = new SlotTable();
  // Keys come and go and come back (the same MAC added and removed again): see ChurnMap.
  readonly #active = new ChurnMap<number | string, SlotState>();
  readonly #groups = new ChurnMap<string, GroupState>();
  readonly #clients: (ClientState | undefined)[] = [];
  readonly #handles = new Map<number, NicClient>();
  /** Factory MAC key → its slot number. */
  readonly #factorySlots = new Map<number | string, number>();
  readonly #hashRefs = new Uint16Array(HASH_BITS);
  // Replaced, never mutated, on (un)subscribe: an emit walks the array it started with and copies nothing.
  #listeners: readonly Listener[] = [];
  #guards: readonly Guard[] = [];
  #unicastUsed = 0;
  #multicastUsed = 0;
  // Kept as counts so every change stays O(1) when nothing overflowed, at any number of active MACs.
  readonly #counts = { software: 0, borrowed: 0, hash: 0, all: 0, promiscuous: 0 };
  #seq = 0;
  #addedHint = 0;
  #generation = 0;
  #mode: { mode: NicMode; reasons: readonly PromiscReason[] };
  #modeKeyNow: number;
  #stateCache: FilterState | undefined;
  /** The client that owns slot 0 (the primary address); it cannot be closed. */
  readonly primaryClient: NicClient;

  /** Builds a NIC; throws INVALID_MAC or INVALID_ARGUMENT on a bad configuration. */
  constructor(config: NicConfig) {
    if (config === null || typeof config !== 'object')
      throw new MacslotError('INVALID_ARGUMENT', `NIC config must be an object, got ${show(config)}`);
    this.primary = Mac.from(config.primary);
    if (!this.primary.isValidUnicast)
      throw new MacslotError('INVALID_MAC', `primary ${this.primary.toString()} must be a non-zero unicast MAC`);
    const factory = factoryList(config.factory);
    const seen = new Set<number | string>([this.primary.key]);
    for (const mac of factory) {
      if (!mac.isValidUnicast) throw new MacslotError('INVALID_MAC', `factory MAC ${mac.toString()} must be a non-zero unicast MAC`);
      if (seen.has(mac.key))
        throw new MacslotError('INVALID_ARGUMENT', `factory MAC ${mac.toString()} appears twice (or equals the primary)`);
      seen.add(mac.key);
    }
    this.#factoryCount = factory.length;
    this.#unicastEntries = count(config.unicastEntries, 'unicastEntries', factory.length, LIMITS.entries);
    this.#multicastEntries = count(config.multicastEntries, 'multicastEntries', 16, LIMITS.entries);
    const hash = config.multicastHash ?? true;
    if (typeof hash === 'object' && hash !== null && ![0, 1, 2, 3].includes(hash.filterType)) {
      throw new MacslotError('INVALID_ARGUMENT', `multicastHash.filterType must be 0..3, got ${show(hash.filterType)}`);
    }
    this.#hashType = hash === false ? null : hash === true ? 0 : hash.filterType;
    const overflow = config.overflow ?? 'promiscuous';
    if (overflow !== 'promiscuous' && overflow !== 'reject')
      throw new MacslotError('INVALID_ARGUMENT', `overflow must be "promiscuous" or "reject", got ${show(overflow)}`);
    this.overflow = overflow;
    this.autoActivate = config.autoActivate ?? true;
    this.#maxClients = count(config.maxClients, 'maxClients', 1024, LIMITS.clients);
    this.#maxAddresses = count(config.maxAddresses, 'maxAddresses', 4096, LIMITS.addresses);
    this.maxFrameLength = count(config.maxFrameLength, 'maxFrameLength', DEFAULT_MAX_FRAME, LIMITS.frameLength);
    if (this.#maxClients < 1 || this.#maxAddresses < 1 || this.maxFrameLength < ETH_HLEN) {
      throw new MacslotError('INVALID_ARGUMENT', `maxClients and maxAddresses must be ≥ 1 and maxFrameLength ≥ ${ETH_HLEN}`);
    }
    this.#random = config.random ?? cryptoRandom;

    this.#slots.set(0, { slot: 0, factory: this.primary, owner: undefined, active: this.primary, placement: 'primary', seq: 0 });
    factory.forEach((mac, i) => {
      this.#slots.set(i + 1, { slot: i + 1, factory: mac, owner: undefined, active: undefined, placement: undefined, seq: 0 });
      this.#factorySlots.set(mac.key, i + 1);
    });
    this.#mode = this.#computeMode();
    this.#modeKeyNow = this.#modeKey();
    this.primaryClient = this.#open(config.primaryClient ?? 'primary', { allowPromiscuous: true });
    const slot0 = this.#slots.get(0)!;
    slot0.owner = this.#clients[0]!;
    this.#clients[0]!.slots.add(0);
    this.#active.set(this.primary.key, slot0);
  }

  /** Most clients open at once (ids are 0..maxClients-1). */
  get maxClients(): number {
    return this.#maxClients;
  }

  /** Most active unicast MACs at once, the primary included. */
  get maxAddresses(): number {
    return this.#maxAddresses;
  }

  /** Monotonic count of filter changes; a data plane compares it to know it is current. */
  get generation(): number {
    return this.#generation;
  }

  /** Subscribes to change events; returns the function that unsubscribes. */
  on(listener: Listener): () => void {
    if (!this.#listeners.includes(listener)) this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  /**
   * Registers a check that runs before a change takes effect: it throws (a MacslotError) to refuse the change, and the
   * NIC stays as it was. A data plane uses it for limits it cannot exceed, such as its multicast group capacity.
   * Returns the function that removes the check.
   */
  guard(check: Guard): () => void {
    if (!this.#guards.includes(check)) this.#guards = [...this.#guards, check];
    return () => {
      this.#guards = this.#guards.filter((g) => g !== check);
    };
  }

  /** Opens a client handle; throws NAME_IN_USE, TOO_MANY_CLIENTS or INVALID_ARGUMENT. */
  openClient(name: string, options: ClientOptions = {}): NicClient {
    return this.#open(name, options);
  }

  /** Returns the open client with this name or id, or undefined. */
  client(nameOrId: string | number): NicClient | undefined {
    const state = typeof nameOrId === 'number' ? this.#clients[nameOrId] : this.#clients.find((c) => c?.name === nameOrId);
    return state?.open ? this.#handles.get(state.id) : undefined;
  }

  /** Returns every open client, by ascending id. */
  clients(): NicClient[] {
    return this.#clients.filter((c): c is ClientState => c?.open === true).map((c) => this.#handles.get(c.id)!);
  }

  /** Returns the capability report (Address Support). Never fails. */
  addressSupport(): AddressSupport {
    return {
      multipleFactory: this.#factoryCount > 0,
      totalSlots: this.#factoryCount,
      availableSlots: this.#reservable(),
      firstFactory: this.#slots.get(1)?.factory,
      lastFactory: this.#factoryCount > 0 ? this.#slots.get(this.#factoryCount)!.factory : undefined,
      totalUnicastEntries: this.#unicastEntries,
      availableUnicastEntries: this.#unicastEntries - this.#unicastUsed,
      totalMulticastEntries: this.#multicastEntries,
      availableMulticastEntries: this.#multicastEntries - this.#multicastUsed,
      mode: this.#mode.mode,
      promiscReasons: this.#mode.reasons,
    };
  }

  /** Returns a slot's MAC, reservation, owner and kind (Address Get); throws INVALID_SLOT for a slot that does not exist. */
  addressGet(slot: number): SlotInfo {
    const s = this.#slotState(slot);
    const mac = s.active ?? s.factory!;
    return {
      slot: s.slot,
      mac,
      reserved: s.owner !== undefined,
      active: s.active !== undefined,
      owner: s.owner?.name,
      kind: this.#kindOf(s, mac),
      placement: s.placement,
    };
  }

  /** Returns every existing slot (primary, factory, added) by ascending number. */
  slots(): SlotInfo[] {
    return [...this.#slots.keys()].map((n) => this.addressGet(n));
  }

  /** Returns the accept filter as plain data for a classifier; cached until the next change. */
  filterState(): FilterState {
    if (this.#stateCache?.generation === this.#generation) return this.#stateCache;
    const unicast = new Map<number | string, UnicastEntry>();
    for (const [key, s] of this.#active) unicast.set(key, { client: s.owner!.id, slot: s.slot, hardware: s.placement !== 'software' });
    const groups = new Map<number | string, GroupEntry>();
    for (const g of this.#groups.values()) groups.set(g.mac.key, { members: [...g.refs.keys()].sort((a, b) => a - b), stage: g.stage });
    const hashBits = new Uint8Array(HASH_BITS / 8);
    this.#hashRefs.forEach((n, i) => {
      if (n > 0) hashBits[i >> 3]! |= 1 << (i & 7);
    });
    const open = this.#clients.filter((c): c is ClientState => c?.open === true);
    const reasons = this.#mode.reasons;
    this.#stateCache = {
      generation: this.#generation,
      unicast,
      groups,
      hashFilterType: this.#hashType,
      hashBits,
      promiscuous: this.#mode.mode === 'promiscuous',
      allMulticast: reasons.includes('multicast-overflow'),
      promiscuousClients: open.filter((c) => c.promiscuous).map((c) => c.id),
      broadcastClients: open.filter((c) => c.broadcast && [...c.slots].some((n) => this.#slots.get(n)!.active)).map((c) => c.id),
      maxFrameLength: this.maxFrameLength,
    };
    return this.#stateCache;
  }

  // ---- internals -------------------------------------------------------

  /** How many `addressReserve()` calls in a row would succeed now: free factory slots, bounded by what activation can place. */
  #reservable(): number {
    let free = 0;
    for (let s = 1; s <= this.#factoryCount; s++) {
      const slot = this.#slots.get(s)!;
      if (slot.owner === undefined && (!this.autoActivate || !this.#active.has(slot.factory!.key))) free++;
    }
    if (!this.autoActivate) return free;
    free = Math.min(free, this.#maxAddresses - this.#active.size);
    if (this.overflow === 'reject')
      free = Math.min(free, this.#unicastEntries - this.#unicastUsed + this.#multicastEntries - this.#multicastUsed);
    return Math.max(0, free);
  }

  #emit(event: DistributiveOmit<NicEvent, 'generation'>): void {
    this.#generation++;
    // Stamped in place: each event literal is built for this call only, and a spread copy cost more than the rest of a change.
    const full = event as { generation: number } & typeof event;
    full.generation = this.#generation;
    for (const l of this.#listeners) {
      try {
        l(full as NicEvent);
      } catch (err) {
        // A failing listener must not leave the NIC half-changed, nor end the process from a microtask.
        reportListenerError(err);
      }
    }
  }

  /** Re-derives the mode after a change and emits it when it moved; must run before listeners see the change's effects. */
  #settle(): void {
    this.#rebalance();
    // The mode depends on these three counts alone: when none crossed zero there is nothing to recompute.
    const key = this.#modeKey();
    if (key === this.#modeKeyNow) return;
    this.#modeKeyNow = key;
    const next = this.#computeMode();
    if (next.mode !== this.#mode.mode || next.reasons.join() !== this.#mode.reasons.join()) {
      this.#mode = next;
      this.#emit({ type: 'mode', mode: next.mode, reasons: next.reasons });
    }
  }

  #modeKey(): number {
    return (this.#counts.promiscuous > 0 ? 1 : 0) | (this.#counts.software > 0 ? 2 : 0) | (this.#counts.all > 0 ? 4 : 0);
  }
  #computeMode(): { mode: NicMode; reasons: readonly PromiscReason[] } {
    const reasons = new Set<PromiscReason>();
    if (this.#counts.promiscuous > 0) reasons.add('user');
    if (this.#counts.software > 0) reasons.add(this.#unicastEntries + this.#multicastEntries > 0 ? 'unicast-overflow' : 'no-capability');
    if (this.#counts.all > 0) reasons.add('multicast-overflow');
    const list = PROMISC_ORDER.filter((r) => reasons.has(r));
    const promiscuous = list.some((r) => r !== 'multicast-overflow');
    return { mode: promiscuous ? 'promiscuous' : list.length > 0 ? 'all-multicast' : 'filtered', reasons: list };
  }

  #open(name: string, options: ClientOptions): NicClient {
    if (typeof name !== 'string' || name.length === 0 || name.length > LIMITS.clientName) {
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `client name must be a non-empty string of at most ${LIMITS.clientName} characters, got ${show(name)}`,
      );
    }
    if (this.#clients.some((c) => c?.open && c.name === name))
      throw new MacslotError('NAME_IN_USE', `a client named ${show(name)} is already open`);
    let id = this.#clients.findIndex((c) => c === undefined || !c.open);
    if (id < 0) id = this.#clients.length;
    if (id >= this.#maxClients)
      throw new MacslotError('TOO_MANY_CLIENTS', `cannot open ${show(name)}: ${this.#maxClients} clients are open`);
    const state: ClientState = {
      id,
      name,
      open: true,
      slots: new ChurnSet(),
      groups: new ChurnMap(),
      promiscuous: false,
      broadcast: options.broadcast ?? true,
      allowPromiscuous: options.allowPromiscuous ?? false,
    };
    this.#clients[id] = state;
    const handle = new NicClient(this, state.name, state.id, {
      reserve: (o) => this.#reserve(state, o),
      unreserve: (slot) => this.#release(state, slot, 'factory'),
      modify: (slot, mac) => this.#modify(state, slot, mac),
      add: (mac) => this.#add(state, mac),
      remove: (slot) => this.#release(state, slot, 'added'),
      join: (mac) => this.#join(state, mac),
      leave: (mac) => this.#leave(state, mac),
      setPromiscuous: (on) => this.#setFlags(state, on, state.broadcast),
      setBroadcast: (on) => this.#setFlags(state, state.promiscuous, on),
      close: () => this.#close(state),
      state: () => state,
    });
    this.#handles.set(id, handle);
    this.#emit({ type: 'client-opened', client: name, clientId: id });
    return handle;
  }

  #slotState(slot: number): SlotState {
    const s = Number.isInteger(slot) ? this.#slots.get(slot) : undefined;
    if (s === undefined)
      throw new MacslotError(
        'INVALID_SLOT',
        `slot ${show(slot)} does not exist (primary 0, factory 1..${this.#factoryCount}, added slots while in use)`,
      );
    return s;
  }

  #owned(client: ClientState, slot: number): SlotState {
    this.#live(client);
    const s = this.#slotState(slot);
    if (s.slot === 0 && client.id !== 0)
      throw new MacslotError('NOT_OWNER', `slot 0 holds the NIC's primary address ${this.primary.toString()}; no client may change it`);
    if (s.owner === undefined) throw new MacslotError('NOT_RESERVED', `slot ${slot} is not reserved`);
    if (s.owner !== client) throw new MacslotError('NOT_OWNER', `slot ${slot} belongs to ${show(s.owner.name)}, not ${show(client.name)}`);
    if (s.slot === 0)
      throw new MacslotError(
        'NOT_OWNER',
        `slot 0 holds the NIC's primary address ${this.primary.toString()}; it cannot be changed or released`,
      );
    return s;
  }

  #live(client: ClientState): void {
    if (!client.open) throw new MacslotError('CLIENT_CLOSED', `client ${show(client.name)} is closed`);
  }

  #kindOf(s: SlotState, mac: Mac): AddressKind {
    if (s.slot === 0) return 'primary';
    if (s.factory !== undefined && mac.equals(s.factory)) return 'factory';
    return mac.isLocal ? 'local' : 'cloned';
  }

  /** Validates a MAC that is to become active in slot `s`; throws INVALID_MAC or MAC_IN_USE. */
  #checkActivatable(mac: Mac, s: SlotState | undefined): void {
    if (!mac.isValidUnicast)
      throw new MacslotError('INVALID_MAC', `${mac.toString()} cannot be an active address: it is ${mac.isZero ? 'zero' : 'multicast'}`);
    const holder = this.#active.get(mac.key);
    if (holder !== undefined && holder !== s) {
      throw new MacslotError(
        'MAC_IN_USE',
        `${mac.toString()} is active in slot ` +
          `${holder.slot}${holder.slot === 0 ? " (the NIC's primary)" : ` of ${show(holder.owner?.name)}`}`,
      );
    }
    // A factory MAC is active only in its own slot: elsewhere it would block that slot for every client.
    const home = this.#factorySlots.get(mac.key);
    if (home !== undefined && home !== s?.slot) {
      throw new MacslotError(
        'MAC_IN_USE',
        `${mac.toString()} is the factory MAC of slot ${home}; reserve that slot (addressReserve({ slot: ${home} })) to use it`,
      );
    }
  }

  /** Picks a filter stage for a new active unicast MAC; throws NO_FREE_SLOT under the reject policy. */
  #place(mac: Mac): Placement {
    if (this.#active.size >= this.#maxAddresses)
      throw new MacslotError('NO_FREE_SLOT', `cannot activate ${mac.toString()}: ${this.#maxAddresses} addresses are active`);
    if (this.#unicastUsed < this.#unicastEntries) {
      this.#unicastUsed++;
      return 'unicast';
    }
    if (this.#multicastUsed < this.#multicastEntries) {
      this.#multicastUsed++;
      return 'multicast';
    }
    if (this.overflow === 'reject')
      throw new MacslotError(
        'NO_FREE_SLOT',
        `cannot activate ${mac.toString()}: all ${this.#unicastEntries} unicast and ${this.#multicastEntries} multicast entries are in ` +
          `use and overflow is "reject"`,
      );
    return 'software';
  }

  #unplace(p: Placement | undefined): void {
    if (p === 'unicast') this.#unicastUsed--;
    else if (p === 'multicast') this.#multicastUsed--;
  }

  /** Moves software-held MACs and hashed groups into freed hardware entries, so promiscuous mode ends as soon as it can. */
  #rebalance(): void {
    // Nothing waits for an entry: the common case, left without building anything.
    if (this.#counts.software === 0 && this.#counts.borrowed === 0 && this.#counts.all === 0 && this.#counts.hash === 0) return;
    const freeUnicast = (): boolean => this.#unicastUsed < this.#unicastEntries;
    const freeMulticast = (): boolean => this.#multicastUsed < this.#multicastEntries;
    const waiting =
      this.#counts.software > 0 && (freeUnicast() || freeMulticast())
        ? [...this.#active.values()].filter((s) => s.placement === 'software').sort((a, b) => a.seq - b.seq)
        : [];
    for (const s of waiting) {
      let p: Placement;
      if (this.#unicastUsed < this.#unicastEntries) p = 'unicast';
      else if (this.#multicastUsed < this.#multicastEntries) p = 'multicast';
      else break;
      if (p === 'unicast') this.#unicastUsed++;
      else this.#multicastUsed++;
      this.#setPlacement(s, p);
      this.#emit({ type: 'placed', slot: s.slot, mac: s.active!, placement: p, clientId: s.owner!.id });
    }
    // A unicast MAC borrowing a multicast entry moves back when a unicast entry frees, so groups get their entries.
    for (const s of this.#counts.borrowed > 0 && freeUnicast() ? this.#active.values() : []) {
      if (s.placement !== 'multicast' || !freeUnicast()) continue;
      this.#multicastUsed--;
      this.#unicastUsed++;
      this.#setPlacement(s, 'unicast');
      this.#emit({ type: 'placed', slot: s.slot, mac: s.active!, placement: 'unicast', clientId: s.owner!.id });
    }
    for (const stage of ['all', 'hash'] as const) {
      if (this.#counts[stage] === 0 || !freeMulticast()) continue;
      for (const g of this.#groups.values()) {
        if (g.stage !== stage || !freeMulticast()) continue;
        if (g.stage === 'hash') this.#hashRefs[this.#hashIndex(g.mac)]!--;
        this.#multicastUsed++;
        this.#setStage(g, 'exact');
        this.#emit({ type: 'group-stage', group: g.mac, stage: 'exact' });
      }
    }
  }

  #setPlacement(s: SlotState, p: Placement | undefined): void {
    if (s.placement === 'software') this.#counts.software--;
    if (s.placement === 'multicast') this.#counts.borrowed--;
    if (p === 'software') this.#counts.software++;
    if (p === 'multicast') this.#counts.borrowed++;
    s.placement = p;
  }

  #setStage(g: GroupState, stage: GroupStage | undefined): void {
    if (g.stage === 'hash' || g.stage === 'all') this.#counts[g.stage]--;
    if (stage === 'hash' || stage === 'all') this.#counts[stage]++;
    if (stage !== undefined) g.stage = stage;
  }

  #activate(s: SlotState, mac: Mac): void {
    this.#setPlacement(s, this.#place(mac));
    s.active = mac;
    s.seq = ++this.#seq;
    this.#active.set(mac.key, s);
  }

  #deactivate(s: SlotState): void {
    if (s.active === undefined) return;
    this.#active.delete(s.active.key);
    this.#unplace(s.placement);
    s.active = undefined;
    this.#setPlacement(s, undefined);
  }

  #reserve(client: ClientState, options: { slot?: number } = {}): Reservation {
    this.#live(client);
    if (this.#factoryCount === 0)
      throw new MacslotError(
        'NOT_SUPPORTED',
        `this NIC has no factory MACs beyond its primary ${this.primary.toString()}; use addressAdd, or the promiscuous path`,
      );
    let s: SlotState | undefined;
    if (options.slot !== undefined) {
      const n = options.slot;
      if (!Number.isInteger(n) || n < 1 || n > this.#factoryCount)
        throw new MacslotError('INVALID_SLOT', `slot ${show(n)} is not a factory slot (1..${this.#factoryCount})`);
      s = this.#slots.get(n)!;
      if (s.owner !== undefined) throw new MacslotError('SLOT_BUSY', `slot ${n} is reserved by ${show(s.owner.name)}`);
      if (this.autoActivate) this.#checkActivatable(s.factory!, s);
    } else {
      for (let n = 1; n <= this.#factoryCount && s === undefined; n++) {
        const c = this.#slots.get(n)!;
        if (c.owner === undefined && (!this.autoActivate || !this.#active.has(c.factory!.key))) s = c;
      }
      if (s === undefined)
        throw new MacslotError(
          'NO_FREE_SLOT',
          `no free factory slot among ${this.#factoryCount} (reserved, or their MAC is active elsewhere)`,
        );
    }
    if (this.autoActivate) this.#activate(s, s.factory!);
    s.owner = client;
    client.slots.add(s.slot);
    this.#emit({
      type: 'reserved',
      slot: s.slot,
      mac: s.factory!,
      active: this.autoActivate,
      placement: s.placement,
      client: client.name,
      clientId: client.id,
    });
    this.#settle();
    return { slot: s.slot, mac: s.factory! };
  }

  #add(client: ClientState, macLike: MacLike | undefined): Reservation {
    this.#live(client);
    const mac =
      macLike === undefined
        ? randomAddr({ random: this.#random, taken: (m) => this.#active.has(m.key) || this.#factorySlots.has(m.key) })
        : Mac.from(macLike);
    this.#checkActivatable(mac, undefined);
    // Lowest free added-slot number; the hint keeps this O(1) amortized with thousands of added MACs.
    let n = Math.max(this.#addedHint, this.#factoryCount + 1);
    while (this.#slots.has(n)) n++;
    this.#addedHint = n + 1;
    const s: SlotState = { slot: n, factory: undefined, owner: client, active: undefined, placement: undefined, seq: 0 };
    this.#activate(s, mac);
    this.#slots.set(n, s);
    client.slots.add(n);
    this.#emit({ type: 'reserved', slot: n, mac, active: true, placement: s.placement, client: client.name, clientId: client.id });
    this.#settle();
    return { slot: n, mac };
  }

  #modify(client: ClientState, slot: number, macLike: MacLike): void {
    const s = this.#owned(client, slot);
    const mac = Mac.from(macLike);
    this.#checkActivatable(mac, s);
    const previous = s.active;
    if (previous?.equals(mac)) return;
    if (previous === undefined) {
      this.#activate(s, mac);
    } else {
      // Reuse the slot's filter entry: the old MAC leaves and the new one enters in one step, so nothing is lost on failure.
      this.#active.delete(previous.key);
      s.active = mac;
      this.#active.set(mac.key, s);
    }
    this.#emit({ type: 'modified', slot: s.slot, mac, previous, placement: s.placement!, client: client.name, clientId: client.id });
    this.#settle();
  }

  #release(client: ClientState, slot: number, via: 'factory' | 'added'): void {
    const s = this.#owned(client, slot);
    const isFactory = s.factory !== undefined;
    if (via === 'factory' && !isFactory)
      throw new MacslotError('INVALID_SLOT', `slot ${slot} was added with addressAdd; release it with addressRemove`);
    if (via === 'added' && isFactory)
      throw new MacslotError('INVALID_SLOT', `slot ${slot} is a factory slot; release it with addressUnreserve`);
    const mac = s.active;
    this.#deactivate(s);
    s.owner = undefined;
    client.slots.delete(s.slot);
    if (!isFactory) {
      this.#slots.delete(s.slot);
      this.#addedHint = Math.min(this.#addedHint, s.slot);
    }
    this.#emit({ type: 'released', slot: s.slot, mac, client: client.name, clientId: client.id });
    this.#settle();
  }

  #hashIndex(mac: Mac): number {
    return mtaIndex(mac.byte(mac.length - 2), mac.byte(mac.length - 1), this.#hashType ?? 0);
  }

  #join(client: ClientState, macLike: MacLike): void {
    this.#live(client);
    const mac = Mac.from(macLike);
    if (!mac.isMulticast || mac.isBroadcast)
      throw new MacslotError(
        'INVALID_MAC',
        `${mac.toString()} is not a multicast group${mac.isBroadcast ? ' (broadcast is received without joining)' : ''}`,
      );
    const key = mac.toString();
    let g = this.#groups.get(key);
    if (g === undefined) {
      let stage: GroupStage;
      if (this.#multicastUsed < this.#multicastEntries) stage = 'exact';
      else if (this.#hashType !== null) stage = 'hash';
      else if (this.overflow === 'promiscuous') stage = 'all';
      else
        throw new MacslotError(
          'NO_FREE_SLOT',
          `cannot join ${key}: all ${this.#multicastEntries} multicast entries are in use, there is no hash filter, and overflow is ` +
            `"reject"`,
        );
      for (const check of this.#guards) check({ type: 'group-add', group: mac, groups: this.#groups.size + 1 });
      if (stage === 'exact') this.#multicastUsed++;
      if (stage === 'hash') this.#hashRefs[this.#hashIndex(mac)]!++;
      g = { mac, refs: new ChurnMap(), stage: 'exact' };
      this.#setStage(g, stage);
      this.#groups.set(key, g);
    }
    g.refs.set(client.id, (g.refs.get(client.id) ?? 0) + 1);
    client.groups.set(key, (client.groups.get(key) ?? 0) + 1);
    this.#emit({ type: 'joined', group: mac, client: client.name, clientId: client.id, stage: g.stage, member: true });
    this.#settle();
  }

  #leave(client: ClientState, macLike: MacLike, all = false): void {
    this.#live(client);
    const mac = Mac.from(macLike);
    const key = mac.toString();
    const mine = client.groups.get(key);
    if (mine === undefined) throw new MacslotError('NOT_MEMBER', `client ${show(client.name)} has not joined ${key}`);
    const g = this.#groups.get(key)!;
    const left = all ? 0 : mine - 1;
    if (left > 0) {
      client.groups.set(key, left);
      g.refs.set(client.id, left);
    } else {
      client.groups.delete(key);
      g.refs.delete(client.id);
    }
    if (g.refs.size === 0) {
      if (g.stage === 'exact') this.#multicastUsed--;
      if (g.stage === 'hash') this.#hashRefs[this.#hashIndex(mac)]!--;
      this.#setStage(g, undefined);
      this.#groups.delete(key);
    }
    this.#emit({
      type: 'left',
      group: mac,
      client: client.name,
      clientId: client.id,
      stage: g.refs.size > 0 ? g.stage : undefined,
      member: g.refs.has(client.id),
    });
    this.#settle();
  }

  #setFlags(client: ClientState, promiscuous: boolean, broadcast: boolean): void {
    this.#live(client);
    if (typeof promiscuous !== 'boolean' || typeof broadcast !== 'boolean')
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `expected a boolean, got ${show(typeof promiscuous !== 'boolean' ? promiscuous : broadcast)}`,
      );
    if (promiscuous && !client.promiscuous && !client.allowPromiscuous) {
      throw new MacslotError('NOT_PERMITTED', `client ${show(client.name)} was not granted promiscuous mode by the NIC's owner`);
    }
    if (promiscuous === client.promiscuous && broadcast === client.broadcast) return;
    this.#counts.promiscuous += Number(promiscuous) - Number(client.promiscuous);
    client.promiscuous = promiscuous;
    client.broadcast = broadcast;
    this.#emit({ type: 'client-changed', client: client.name, clientId: client.id, promiscuous, broadcast });
    this.#settle();
  }

  #close(client: ClientState): void {
    if (!client.open) return;
    if (client.id === 0) throw new MacslotError('NOT_PERMITTED', `the primary client ${show(client.name)} cannot be closed`);
    for (const key of [...client.groups.keys()]) this.#leave(client, key, true);
    for (const n of [...client.slots].sort((a, b) => a - b))
      this.#release(client, n, this.#slots.get(n)!.factory !== undefined ? 'factory' : 'added');
    if (client.promiscuous) this.#setFlags(client, false, client.broadcast);
    client.open = false;
    this.#handles.delete(client.id);
    this.#emit({ type: 'client-closed', client: client.name, clientId: client.id });
    this.#settle();
  }
}

interface ClientOps {
  reserve(options?: { slot?: number }): Reservation;
  unreserve(slot: number): void;
  modify(slot: number, mac: MacLike): void;
  add(mac: MacLike | undefined): Reservation;
  remove(slot: number): void;
  join(mac: MacLike): void;
  leave(mac: MacLike): void;
  setPromiscuous(on: boolean): void;
  setBroadcast(on: boolean): void;
  close(): void;
  state(): Readonly<ClientState>;
}

/** A guest, VM, zone or application's handle on a NIC. It may change only what it reserved. */
export class NicClient {
  /** The NIC this client is on. */
  readonly nic: Nic;
  /** The client's unique name on its NIC. */
  readonly name: string;
  /** Small integer id, the client's bit in the data plane's delivery set. */
  readonly id: number;
  readonly #ops: ClientOps;

  /** Created by `Nic.openClient`; not constructed directly. @internal */
  constructor(nic: Nic, name: string, id: number, ops: ClientOps) {
    this.nic = nic;
    this.name = name;
    this.id = id;
    this.#ops = ops;
  }

  /**
   * Reserves any free factory slot, or `slot`; returns it with its MAC. Throws NOT_SUPPORTED, INVALID_SLOT, SLOT_BUSY, NO_FREE_SLOT,
   * MAC_IN_USE.
   */
  addressReserve(options: { slot?: number } = {}): Reservation {
    return this.#ops.reserve(options);
  }
  /** Releases a reserved factory slot and removes its active MAC. Throws INVALID_SLOT, NOT_RESERVED, NOT_OWNER. */
  addressUnreserve(slot: number): void {
    this.#ops.unreserve(slot);
  }
  /**
   * Makes `mac` the slot's active MAC; the old one stays on failure. Throws INVALID_MAC, MAC_IN_USE (active elsewhere, or another
   * slot's factory MAC), NOT_RESERVED, NOT_OWNER, NO_FREE_SLOT.
   */
  addressModify(slot: number, mac: MacLike): void {
    this.#ops.modify(slot, mac);
  }
  /** Returns a slot's MAC and state (Address Get). Throws INVALID_SLOT. */
  addressGet(slot: number): SlotInfo {
    return this.nic.addressGet(slot);
  }
  /**
   * Adds a system-specified MAC (random local when omitted) in a new slot; returns it. Throws INVALID_MAC, MAC_IN_USE (active, or a
   * factory MAC: those are taken with addressReserve), NO_FREE_SLOT.
   */
  addressAdd(mac?: MacLike): Reservation {
    return this.#ops.add(mac);
  }
  /** Removes a MAC added with addressAdd. Throws INVALID_SLOT, NOT_RESERVED, NOT_OWNER. */
  addressRemove(slot: number): void {
    this.#ops.remove(slot);
  }
  /** Joins a multicast group (reference-counted). Throws INVALID_MAC, NO_FREE_SLOT under the reject policy. */
  multicastJoin(group: MacLike): void {
    this.#ops.join(group);
  }
  /** Leaves a group joined before, once per join. Throws NOT_MEMBER. */
  multicastLeave(group: MacLike): void {
    this.#ops.leave(group);
  }
  /** Turns promiscuous reception on or off. Throws NOT_PERMITTED unless the NIC's owner granted it. */
  setPromiscuous(on: boolean): void {
    this.#ops.setPromiscuous(on);
  }
  /** Opts in or out of broadcast frames. Never fails on an open client. */
  setBroadcast(on: boolean): void {
    this.#ops.setBroadcast(on);
  }
  /** Releases every slot, group and mode this client holds. Closing twice is a no-op; the primary client cannot close (NOT_PERMITTED). */
  close(): void {
    this.#ops.close();
  }
  /** True until `close()`. */
  get open(): boolean {
    return this.#ops.state().open;
  }
  /** True while the client receives every frame. */
  get promiscuous(): boolean {
    return this.#ops.state().promiscuous;
  }
  /** True while the client receives broadcast frames. */
  get broadcast(): boolean {
    return this.#ops.state().broadcast;
  }
  /** How many slots this client holds; cheaper than `slots().length` on a per-frame path. */
  get slotCount(): number {
    return this.#ops.state().slots.size;
  }
  /** Returns the slot numbers this client holds, ascending. */
  slots(): number[] {
    return [...this.#ops.state().slots].sort((a, b) => a - b);
  }
  /** Returns the groups this client has joined, canonical text. */
  groups(): string[] {
    return [...this.#ops.state().groups.keys()];
  }
}
