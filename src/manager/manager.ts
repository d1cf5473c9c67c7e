// Management layer: the MAC manager, the seed's "first computer application" that allocates MACs for many guests across NICs, without
// collisions and with the same MAC across sessions.

import { cryptoRandom, MacBlock, randomAddr, type MacBlockSpec, type RandomSource } from '../alloc/generate.js';
import { MacslotError, show } from '../errors.js';
import type { Nic, NicClient } from '../nic/nic.js';
import type { NicEvent } from '../nic/types.js';
import { Mac, type MacLike } from '../wire/mac.js';
import { deriveKey, deriveMac } from './derive.js';
import {
  emptyStoreData,
  MemoryStore,
  recordLapsed,
  type DisplacedRecord,
  type MacRecord,
  type MacStore,
  type NewClaimRequest,
  type RecordPolicy,
  type RecordStore,
  type StoreData,
  type StoredRecord,
} from './store.js';

/** How a request chooses its MAC, after `dladm create-vnic -m`; `auto` tries factory, then the block, then random. */
export type AllocationPolicy = 'factory' | 'random' | 'block' | 'fixed' | 'derived' | 'auto';
/** The policy that actually produced a lease's MAC. */
export type LeasePolicy = 'factory' | 'random' | 'block' | 'fixed' | 'derived';

/** How long after its expiry a lease still held by a session stays taken for every other session (see the store). */
export { LAPSE_GRACE_MS } from './store.js';

/** Runs `callback` once after `delayMs` and returns a function that cancels it; the manager's lease timers go through it. */
export type SetTimer = (callback: () => void, delayMs: number) => () => void;

// setTimeout's longest delay; a later expiry re-arms when this one fires.
const MAX_DELAY = 0x7fff_ffff;
// The leases sweep() reports, at most: the most recent ones when nobody asks for them.
const MAX_LAPSED = 4_096;
// On a concurrent store: the MACs of a block or prefix one claim tries, and how many claims an allocation makes
// before it gives up (each one learns that its MACs are taken).
const CANDIDATES = 8;
const MAX_CLAIMS = 64;
// The longest TTL a record-level operation takes; a longer one goes through a whole-store transaction.
const MAX_RECORD_TTL = 0x7fff_ffff;

/** No records: what record-level allocations check MACs against, so only this host's NICs and neighbours count. */
const NO_RECORDS: StoreData = emptyStoreData();

/** Web Crypto's bytes drawn 4 KiB at a time: a pick takes a few bytes, and a call to the generator costs more than the pick. */
function pooledCryptoRandom(): RandomSource {
  const pool = new Uint8Array(4_096);
  let at = pool.length;
  return (out) => {
    if (out.length > pool.length) return cryptoRandom(out);
    if (at + out.length > pool.length) {
      cryptoRandom(pool);
      at = 0;
    }
    // Copied byte by byte (a pick takes six): a subarray view would cost more than the copy. Handed-out bytes do not stay
    // behind in the pool.
    for (let i = 0; i < out.length; i++, at++) {
      out[i] = pool[at]!;
      pool[at] = 0;
    }
  };
}

/** A real timer that does not keep the process alive. */
const unrefTimer: SetTimer = (callback, delayMs) => {
  const t = setTimeout(callback, delayMs);
  (t as { unref?: () => void }).unref?.();
  return () => clearTimeout(t);
};

/** Limits per guest. A guest's MACs count on every NIC and in every process sharing the store. */
export interface Quota {
  /** Most MACs a guest holds at once, over all NICs. */
  maxMacs?: number;
  /**
   * Largest fraction (0..1] of one NIC's hardware slots (factory slots or exact unicast entries, whichever is more) a guest may hold; at
   * least one.
   */
  hardwareShare?: number;
}

/** How a manager is built. */
export interface MacManagerOptions {
  /** The NICs it manages: one, a list (named nic0, nic1, ...), or a record of name → NIC. Names identify NICs in the store. */
  nics: Nic | readonly Nic[] | Readonly<Record<string, Nic>>;
  /** Shared state; default a new MemoryStore (this manager alone). */
  store?: MacStore;
  /** MACs known to be on the network (routers, other hosts); never handed out. */
  neighbours?: Iterable<MacLike>;
  /** The quota of every guest without its own. */
  quota?: Quota;
  /** Quotas of named guests. */
  quotas?: Readonly<Record<string, Quota>>;
  /** Block for the `block` policy and the fallback of `auto`, e.g. "02:08:20/24". */
  block?: MacBlockSpec;
  /** Prefix for `random` and `derived` when the request gives none. */
  prefix?: string;
  /** Secret for `derived` MACs (a string, or 16 bytes). */
  secret?: string | Uint8Array;
  /** Milliseconds since the epoch; inject one to test leases. Default Date.now. */
  clock?: () => number;
  /** Schedules the lapse of leases on `clock`'s time; inject one with `clock` to test leases. Default setTimeout, unref'd. */
  setTimer?: SetTimer;
  /** Random source for random and block picks. Default Web Crypto. */
  random?: RandomSource;
  /** This manager's session id in the store. Default random. */
  session?: string;
}

/** What a guest asks for. Only `guest` is required. */
export interface AllocateRequest {
  /** The guest (VM, container, app); also the name of its NIC client. */
  guest: string;
  /** Which of the guest's interfaces; the MAC is remembered per guest, NIC and interface. Default "0". */
  iface?: string;
  /** NIC name. Default: the first NIC. */
  nic?: string;
  /** Default `auto`. */
  policy?: AllocationPolicy;
  /** The MAC for `fixed`. */
  mac?: MacLike;
  /** The block for `block` (default: the manager's). */
  block?: MacBlockSpec;
  /** `next` free MAC of the block (default) or a `random` one. */
  order?: 'next' | 'random';
  /** Prefix for `random` and `derived` (default: the manager's). */
  prefix?: string;
  /** Lease time-to-live in milliseconds; the MAC is free for others once it passes unless renewed. Default none. */
  ttlMs?: number;
  /** Hand back the MAC this identity had before when it is still free (default true). */
  persist?: boolean;
  /** When the remembered MAC is taken: `error` (default, MAC_IN_USE) or `reallocate` a new one, reported in `previous`. */
  onConflict?: 'error' | 'reallocate';
  /** Take over the identity's MAC although another session's unexpired lease still holds it (after that session crashed). */
  reclaim?: boolean;
}

/** A MAC held for a guest. */
export interface Lease {
  /** The guest holding it. */
  readonly guest: string;
  /** The guest's interface it is for. */
  readonly iface: string;
  /** Name of the NIC it is on. */
  readonly nic: string;
  /** The MAC. */
  readonly mac: Mac;
  /** The NIC slot holding it. */
  readonly slot: number;
  /** The policy that produced the MAC (for a restored MAC, the one that first produced it). */
  readonly policy: LeasePolicy;
  /** The policy the request named. */
  readonly requested: AllocationPolicy;
  /** True when this is the MAC the identity had in an earlier session. */
  readonly restored: boolean;
  /** The identity's earlier MAC when it was taken and a new one was allocated instead. */
  readonly previous: Mac | undefined;
  /** Clock time the lease lapses, or undefined for none. */
  readonly expires: number | undefined;
  /** The guest's client on the NIC; the guest may use it directly. */
  readonly client: NicClient;
}

/** A guest's current holdings as this manager sees them. */
export interface GuestUsage {
  /** MACs held, over all NICs: leases plus direct reservations. */
  readonly macs: number;
  /** MACs per NIC name. */
  readonly perNic: Readonly<Record<string, number>>;
  /** Of them, reservations the guest made on a NIC itself. */
  readonly direct: number;
  /** The quota that applies. */
  readonly quota: Readonly<Quota>;
}

/**
 * A reservation on one of this manager's NICs that the manager did not grant and reports instead: `store` when the
 * store assigns the MAC to someone else (a guest bypassed the manager), `quota` when a guest's own reservation on
 * the NIC (through `Lease.client`) takes it past its quota. Neither is taken away from the guest.
 */
export interface StoreConflict {
  /**  'quota';|Why it is reported: the store gives the MAC to another, or it exceeds the guest's quota. */
  readonly reason: 'store' | 'quota';
  /** The reserved MAC. */
  readonly mac: Mac;
  /** Name of the NIC. */
  readonly nic: string;
  /** The slot reserved. */
  readonly slot: number;
  /** Name of the client that reserved it. */
  readonly client: string;
  /** The store's record of the MAC (for `quota`, the guest's own record of it, or undefined before the store has one). */
  readonly record: Readonly<MacRecord> | undefined;
}

const POLICIES: readonly AllocationPolicy[] = ['factory', 'random', 'block', 'fixed', 'derived', 'auto'];
const PENDING = Symbol('pending');

interface LeaseState {
  readonly key: string;
  readonly guest: string;
  readonly iface: string;
  readonly nic: string;
  mac: Mac;
  slot: number;
  readonly factorySlot: boolean;
  readonly policy: LeasePolicy;
  readonly requested: AllocationPolicy;
  readonly restored: boolean;
  readonly previous: Mac | undefined;
  expires: number | undefined;
  readonly ttlMs: number | undefined;
  readonly client: NicClient;
}

interface SlotUse {
  client: string;
  mac: Mac;
  /** The MAC's canonical text, the store's key. */
  text: string;
  lease: LeaseState | typeof PENDING | undefined;
}

interface NicEntry {
  readonly name: string;
  readonly nic: Nic;
  readonly slots: Map<number, SlotUse>;
  /** Factory MAC of each factory slot (index slot - 1), undefined where it cannot be known. */
  readonly factory: readonly (Mac | undefined)[];
  readonly capacity: number;
  off: () => void;
}

/** A request after validation, with its defaults filled in. */
type Checked = AllocateRequest & { guest: string; iface: string; nic: string; policy: AllocationPolicy };

interface Identity {
  readonly guest: string;
  readonly nic: string;
  readonly iface: string;
}

/** One transaction's view: the draft store data and what it implies. */
interface Ctx {
  readonly data: StoreData;
  readonly now: number;
  readonly byIdentity: Map<string, string>;
  readonly counts: Map<string, number>;
  readonly undo: (() => void)[];
  readonly added: LeaseState[];
  /** Leases whose TTL had passed when the transaction began, released from their NICs. */
  readonly swept: Lease[];
}

/** Where a MAC went on its NIC. */
interface Placed {
  readonly slot: number;
  readonly mac: Mac;
  readonly factorySlot: boolean;
}

const idKey = (i: Identity): string => `${i.nic}\u0000${i.guest}\u0000${i.iface}`;
const sameIdentity = (r: MacRecord, i: Identity): boolean =>
  r.policy !== 'direct' && r.guest === i.guest && r.nic === i.nic && r.iface === i.iface;
/** True once the record no longer binds its MAC for others: at its expiry when released, LAPSE_GRACE_MS later while a session holds it. */
const lapsed = recordLapsed;
const sameDisplaced = (d: DisplacedRecord, i: Identity): boolean => d.guest === i.guest && d.nic === i.nic && d.iface === i.iface;

/** Returns the entry of an identity whose MAC someone else took, or undefined. */
function displacedOf(data: StoreData, id: Identity): DisplacedRecord | undefined {
  return data.displaced?.find((d) => sameDisplaced(d, id));
}

/** Forgets that the identity lost a MAC (it has one again, or asked to be forgotten). */
function undisplace(data: StoreData, id: Identity): void {
  if (data.displaced === undefined) return;
  const rest = data.displaced.filter((d) => !sameDisplaced(d, id));
  if (rest.length > 0) data.displaced = rest;
  else delete data.displaced;
}

function name(value: unknown, what: string, max = 256): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max)
    throw new MacslotError('INVALID_ARGUMENT', `${what} must be a non-empty string of at most ${max} characters, got ${show(value)}`);
  return value;
}

function checkQuota(q: unknown, who: string): Quota {
  if (q === undefined) return {};
  if (q === null || typeof q !== 'object') throw new MacslotError('INVALID_ARGUMENT', `quota of ${who} must be an object, got ${show(q)}`);
  const { maxMacs, hardwareShare } = q as Quota;
  if (maxMacs !== undefined && (!Number.isInteger(maxMacs) || maxMacs < 0))
    throw new MacslotError('INVALID_ARGUMENT', `maxMacs of ${who} must be an integer ≥ 0, got ${show(maxMacs)}`);
  if (hardwareShare !== undefined && (typeof hardwareShare !== 'number' || !(hardwareShare > 0 && hardwareShare <= 1))) {
    throw new MacslotError('INVALID_ARGUMENT', `hardwareShare of ${who} must be a number in (0, 1], got ${show(hardwareShare)}`);
  }
  const out: Quota = {};
  if (maxMacs !== undefined) out.maxMacs = maxMacs;
  if (hardwareShare !== undefined) out.hardwareShare = hardwareShare;
  return out;
}

function randomSession(random: RandomSource): string {
  const b = new Uint8Array(8);
  random(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/**
 * Allocates MACs for many guests over one or more NICs: reserves on each guest's behalf and hands
 * back its client, keeps every MAC unique across its NICs, known neighbours and every process
 * sharing the store, enforces per-guest quotas, and gives each guest identity its MAC back in the
 * next session.
 */
export class MacManager {
  /** This manager's id in the store's `holder` fields. */
  readonly session: string;
  /** Where leases persist. */
  readonly store: MacStore;
  readonly #nics = new Map<string, NicEntry>();
  readonly #inUse = new Map<number | string, { nic: string; slot: number }>();
  readonly #hardware = new Map<number | string, string>();
  readonly #neighbours = new Set<number | string>();
  readonly #leases = new Map<string, LeaseState>();
  readonly #ownClients = new Set<NicClient>();
  readonly #blocks = new Map<string, MacBlock>();
  readonly #quota: Quota;
  readonly #quotas = new Map<string, Quota>();
  readonly #block: MacBlockSpec | undefined;
  readonly #prefix: string | undefined;
  readonly #secret: string | Uint8Array | undefined;
  readonly #clock: () => number;
  readonly #setTimer: SetTimer;
  readonly #random: RandomSource;
  #conflicts: StoreConflict[] = [];
  /** Leases that lapsed since the last sweep(), oldest first. */
  #lapsed: Lease[] = [];
  /** The armed lapse timer: the expiry it is for, and how to cancel it. */
  #timer: { at: number; cancel: () => void } | undefined;
  #placing = false;
  #closed = false;
  /** The store's record-level operations when it runs them side by side (MacStore.concurrent); else undefined. */
  readonly #records: RecordStore | undefined;
  /** Record-level allocations under way, by identity: a second one for the same identity waits for the first. */
  readonly #allocating = new Map<string, Promise<unknown>>();
  /** MACs (by key) that record-level claims of this manager are trying now, so its other allocations pick others. */
  readonly #claiming = new Set<number | string>();
  /** MACs (by key) that a record-level claim found taken in the store; picks pass over them. */
  readonly #seenTaken = new Set<number | string>();

  /** Builds a manager over `options.nics`; throws INVALID_ARGUMENT (or INVALID_MAC for a neighbour) on a bad option. */
  constructor(options: MacManagerOptions) {
    if (options === null || typeof options !== 'object')
      throw new MacslotError('INVALID_ARGUMENT', `manager options must be an object, got ${show(options)}`);
    const list = this.#nicList(options.nics);
    this.store = options.store ?? new MemoryStore();
    const rs = this.store as Partial<RecordStore>;
    this.#records =
      this.store.concurrent === true &&
      typeof rs.claimNew === 'function' &&
      typeof rs.release === 'function' &&
      typeof rs.renew === 'function'
        ? (this.store as unknown as RecordStore)
        : undefined;
    // A store with its own clock (a database's) times leases by it, so every host sharing it agrees on expiries.
    const storeClock = this.store.clock;
    this.#clock = options.clock ?? (storeClock !== undefined ? () => storeClock.call(this.store) : Date.now);
    this.#setTimer = options.setTimer ?? unrefTimer;
    this.#random = options.random ?? pooledCryptoRandom();
    this.session = options.session === undefined ? randomSession(this.#random) : name(options.session, 'session', 128);
    this.#quota = checkQuota(options.quota, 'every guest');
    for (const [g, q] of Object.entries(options.quotas ?? {})) this.#quotas.set(g, checkQuota(q, show(g)));
    if (options.block !== undefined) this.#blockFor(options.block);
    this.#block = options.block;
    if (options.prefix !== undefined) new MacBlock(options.prefix);
    this.#prefix = options.prefix;
    if (options.secret !== undefined) deriveKey(options.secret);
    this.#secret = options.secret;
    if (typeof this.#clock !== 'function' || typeof this.#random !== 'function' || typeof this.#setTimer !== 'function') {
      throw new MacslotError('INVALID_ARGUMENT', 'clock, setTimer and random must be functions');
    }
    this.setNeighbours(options.neighbours ?? []);
    for (const [n, nic] of list) this.#attach(n, nic);
  }

  /** Returns the managed NICs' names, in the order given. */
  get nicNames(): string[] {
    return [...this.#nics.keys()];
  }

  /** Returns the NIC called `nicName`; throws INVALID_ARGUMENT for an unknown name. */
  nic(nicName: string): Nic {
    return this.#entry(nicName).nic;
  }

  /** Replaces the list of MACs known on the network; throws INVALID_MAC for a bad entry (the old list stays). */
  setNeighbours(macs: Iterable<MacLike>): void {
    const keys = [...macs].map((m) => Mac.from(m).key);
    this.#neighbours.clear();
    for (const k of keys) this.#neighbours.add(k);
  }

  /** Sets one guest's quota (undefined: back to the default); throws INVALID_ARGUMENT. It applies to later requests. */
  setQuota(guest: string, quota: Quota | undefined): void {
    name(guest, 'guest');
    if (quota === undefined) this.#quotas.delete(guest);
    else this.#quotas.set(guest, checkQuota(quota, show(guest)));
  }

  /**
   * Resolves with a lease for the request (the existing one when this identity already holds one here); rejects with MacslotError:
   * INVALID_ARGUMENT, QUOTA_EXCEEDED, MAC_IN_USE, NO_FREE_SLOT, NOT_SUPPORTED, BLOCK_EXHAUSTED, or a store error.
   */
  async allocate(request: AllocateRequest): Promise<Lease> {
    // allocateMany([request]), without its arrays.
    this.#live();
    const r = this.#checkRequest(request);
    if (this.#records !== undefined) {
      const lease = await this.#allocateByRecord(r, this.#records);
      if (lease !== undefined) return lease;
    }
    return this.#transact((ctx) => this.#snapshot(this.#allocateOne(ctx, r)));
  }

  /**
   * Resolves with one lease per request, all committed in one store transaction, or rejects with the first failure and holds none of them.
   */
  async allocateMany(requests: readonly AllocateRequest[]): Promise<Lease[]> {
    this.#live();
    if (!Array.isArray(requests)) throw new MacslotError('INVALID_ARGUMENT', `expected an array of requests, got ${show(requests)}`);
    const checked = requests.map((r) => this.#checkRequest(r));
    if (checked.length === 1 && this.#records !== undefined) {
      const lease = await this.#allocateByRecord(checked[0]!, this.#records);
      if (lease !== undefined) return [lease];
    }
    return this.#transact((ctx) => checked.map((r) => this.#snapshot(this.#allocateOne(ctx, r))));
  }

  /**
   * Resolves once the lease's MAC is released from its NIC; the store remembers it for the identity's next session unless `forget`. Rejects
   * with NOT_RESERVED when this manager holds no such lease.
   */
  async release(lease: Pick<Lease, 'guest' | 'nic'> & { iface?: string }, options: { forget?: boolean } = {}): Promise<void> {
    this.#live();
    const key = idKey({ guest: lease.guest, nic: lease.nic, iface: lease.iface ?? '0' });
    const records = this.#records;
    if (records !== undefined && options.forget !== true) {
      const st = this.#leases.get(key);
      if (st === undefined)
        throw new MacslotError(
          'NOT_RESERVED',
          `this manager holds no lease for guest ${show(lease.guest)} interface ${show(lease.iface ?? '0')} on ${show(lease.nic)}`,
        );
      // Off the NIC first, as in a transaction: if the store cannot record the release, the record stays held until
      // its lease lapses or the next whole-store transaction finds the MAC on no NIC.
      this.#dropLease(st);
      await records.release(st.mac.toString(), this.session);
      return;
    }
    await this.#transact((ctx) => {
      const st = this.#leases.get(key);
      if (st === undefined)
        throw new MacslotError(
          'NOT_RESERVED',
          `this manager holds no lease for guest ${show(lease.guest)} interface ${show(lease.iface ?? '0')} on ${show(lease.nic)}`,
        );
      this.#dropLease(st);
      const rec = ctx.data.records[st.mac.toString()];
      if (rec !== undefined && sameIdentity(rec, st)) {
        if (options.forget === true) delete ctx.data.records[st.mac.toString()];
        else Object.assign(rec, { holder: null, updated: ctx.now });
      }
      if (options.forget === true) undisplace(ctx.data, st);
    });
  }

  /**
   * Resolves with the lease extended to now + `ttlMs` (default its original TTL); rejects with NOT_RESERVED when it lapsed or is not held,
   * INVALID_ARGUMENT for a bad TTL.
   */
  async renew(lease: Pick<Lease, 'guest' | 'nic'> & { iface?: string }, ttlMs?: number): Promise<Lease> {
    this.#live();
    if (ttlMs !== undefined) this.#checkTtl(ttlMs);
    const key = idKey({ guest: lease.guest, nic: lease.nic, iface: lease.iface ?? '0' });
    const held = this.#leases.get(key);
    const ttl = ttlMs ?? held?.ttlMs;
    if (this.#records !== undefined && held !== undefined && ttl !== undefined && ttl <= MAX_RECORD_TTL)
      return this.#renewByRecord(held, ttl, this.#records);
    return this.#transact((ctx) => {
      const st = this.#leases.get(key);
      if (st === undefined)
        throw new MacslotError(
          'NOT_RESERVED',
          `no live lease for guest ${show(lease.guest)} interface ${show(lease.iface ?? '0')} on ${show(lease.nic)} (released, or its ` +
            `TTL passed)`,
        );
      const ttl = ttlMs ?? st.ttlMs;
      st.expires = ttl === undefined ? undefined : ctx.now + ttl;
      const rec = ctx.data.records[st.mac.toString()];
      if (rec !== undefined) Object.assign(rec, { expires: st.expires ?? null, updated: ctx.now });
      return this.#snapshot(st);
    });
  }

  /**
   * Resolves with the leases that lapsed since the last call (at most the latest 4,096), each already off its NIC, once
   * the store records them as released. A lease lapses on its own when its TTL passes (a timer on `clock`, cleared by
   * close); every transaction also lapses what is due. Rejects only with a store error.
   */
  async sweep(): Promise<Lease[]> {
    this.#live();
    return this.#transact(() => this.#lapsed.splice(0));
  }

  /** Resolves once direct reservations and guest changes are written to the store; rejects with a store error. */
  async sync(): Promise<void> {
    this.#live();
    await this.#transact(() => undefined);
  }

  /**
   * Resolves with `count` distinct MACs the policy (`random` or `block`) would hand out now: valid,
   * unicast, free in the store, on every NIC and among neighbours. Nothing is reserved. Rejects with
   * INVALID_ARGUMENT, BLOCK_EXHAUSTED or a store error.
   */
  async generate(count: number, request: Pick<AllocateRequest, 'policy' | 'block' | 'order' | 'prefix'> = {}): Promise<Mac[]> {
    this.#live();
    if (!Number.isSafeInteger(count) || count < 0)
      throw new MacslotError('INVALID_ARGUMENT', `count must be an integer ≥ 0, got ${show(count)}`);
    const policy = request.policy ?? 'random';
    if (policy !== 'random' && policy !== 'block')
      throw new MacslotError('INVALID_ARGUMENT', `generate takes the "random" or "block" policy, got ${show(policy)}`);
    const data = await this.store.read();
    const now = this.#clock();
    const picked = new Set<number | string>();
    const id: Identity = { guest: '\u0000', nic: '\u0000', iface: '\u0000' };
    const taken = (m: Mac): boolean => picked.has(m.key) || this.#takenReason(data, now, m, id, policy) !== undefined;
    const out: Mac[] = [];
    for (let i = 0; i < count; i++) {
      const mac = this.#pick(policy, request, taken);
      picked.add(mac.key);
      out.push(mac);
    }
    return out;
  }

  /** Returns this manager's live leases, optionally one guest's. Never fails. */
  leases(guest?: string): Lease[] {
    return [...this.#leases.values()].filter((l) => guest === undefined || l.guest === guest).map((l) => this.#snapshot(l));
  }

  /** Returns what `guest` holds on this manager's NICs (leases and direct reservations) and its quota. Never fails. */
  usage(guest: string): GuestUsage {
    const perNic: Record<string, number> = {};
    let macs = 0;
    let direct = 0;
    for (const e of this.#nics.values()) {
      for (const [slot, u] of e.slots) {
        if (slot === 0 || u.client !== guest) continue;
        macs++;
        perNic[e.name] = (perNic[e.name] ?? 0) + 1;
        if (u.lease === undefined) direct++;
      }
    }
    return { macs, perNic, direct, quota: this.#quotaOf(guest) };
  }

  /**
   * Returns, as of the last transaction, the MACs on this manager's NICs that the store gives to someone else, and the direct reservations
   * past a quota. Never fails.
   */
  conflicts(): StoreConflict[] {
    return [...this.#conflicts];
  }

  /**
   * Moves every MAC and multicast group the guest holds on the manager's other NICs to `toNic`, in one step: each MAC
   * leaves its NIC before it becomes active on the target, so it is never on two NICs, and the store records the new
   * NIC with the same MAC. Leases keep their interface, TTL and MAC; the guest's own added MACs move too. Resolves with
   * the moved leases (their `client` is the guest's client on the target). On any failure nothing moved: rejects with
   * INVALID_ARGUMENT (unknown NIC or guest), NOT_SUPPORTED (a factory slot's MAC belongs to its NIC: release it and
   * allocate on the target), MAC_IN_USE (the MAC is active or a factory MAC on the target, or the guest already has
   * that interface there), QUOTA_EXCEEDED (the target's hardware share), NO_FREE_SLOT (the target is full), or a store error.
   */
  async migrate(guest: string, toNic: string): Promise<Lease[]> {
    this.#live();
    name(guest, 'guest');
    const target = this.#entry(toNic);
    if (guest === target.nic.primaryClient.name)
      throw new MacslotError('INVALID_ARGUMENT', `guest ${show(guest)} is the name of ${toNic}'s primary client`);
    let sources: NicEntry[] = [];
    const moved = await this.#transact((ctx) => {
      // Read inside the transaction, so a client opened while it waited for the store's lock moves too.
      sources = [...this.#nics.values()].filter((e) => e !== target && e.nic.client(guest) !== undefined);
      return this.#migrate(ctx, guest, target, sources).map((st) => this.#snapshot(st));
    });
    // Only once the store has the move: clients the manager opened for the guest and that now hold nothing close.
    for (const e of sources) {
      const c = e.nic.client(guest);
      if (c !== undefined && this.#ownClients.has(c) && c.slots().length === 0) {
        this.#ownClients.delete(c);
        c.close();
      }
    }
    return moved;
  }

  /**
   * Resolves once every lease is released (remembered for the next session) and direct reservations are dropped from the store; the manager
   * stops following its NICs. Closing twice is a no-op.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#transact((ctx) => {
        for (const st of [...this.#leases.values()]) {
          this.#dropLease(st);
          const rec = ctx.data.records[st.mac.toString()];
          if (rec !== undefined && sameIdentity(rec, st) && rec.holder === this.session)
            Object.assign(rec, { holder: null, updated: ctx.now });
        }
        for (const [k, r] of Object.entries(ctx.data.records))
          if (r.holder === this.session && r.policy === 'direct') delete ctx.data.records[k];
      });
    } finally {
      this.#closed = true;
      this.#disarm();
      for (const e of this.#nics.values()) e.off();
    }
  }

  // ---- internals -------------------------------------------------------

  #nicList(nics: MacManagerOptions['nics']): [string, Nic][] {
    let list: [string, Nic][];
    if (Array.isArray(nics)) list = nics.map((n, i) => [`nic${i}`, n]);
    else if (nics !== null && typeof nics === 'object' && typeof (nics as Nic).openClient === 'function') list = [['nic0', nics as Nic]];
    else if (nics !== null && typeof nics === 'object') list = Object.entries(nics as Record<string, Nic>);
    else throw new MacslotError('INVALID_ARGUMENT', `nics must be a Nic, an array of them or a record of them, got ${show(nics)}`);
    if (list.length === 0) throw new MacslotError('INVALID_ARGUMENT', 'a manager needs at least one NIC');
    const seen = new Set<Nic>();
    for (const [n, nic] of list) {
      name(n, 'NIC name', 64);
      if (nic === null || typeof nic !== 'object' || typeof nic.openClient !== 'function')
        throw new MacslotError('INVALID_ARGUMENT', `NIC ${show(n)} is not a Nic: ${show(nic)}`);
      if (seen.has(nic)) throw new MacslotError('INVALID_ARGUMENT', `NIC ${show(n)} is listed twice`);
      seen.add(nic);
    }
    return list;
  }

  #attach(nicName: string, nic: Nic): void {
    const support = nic.addressSupport();
    const factory: (Mac | undefined)[] = [];
    const first = support.firstFactory;
    const last = support.lastFactory;
    // A reserved slot reports its active MAC, so an overridden factory MAC is recovered from a contiguous factory range when there is one.
    const contiguous =
      first !== undefined &&
      last !== undefined &&
      first.kind === 'mac48' &&
      last.kind === 'mac48' &&
      last.toNumber() - first.toNumber() === support.totalSlots - 1;
    const slots = new Map<number, SlotUse>();
    for (const info of nic.slots()) {
      if (info.slot >= 1 && info.slot <= support.totalSlots) {
        const f =
          !info.reserved || info.kind === 'factory' ? info.mac : contiguous ? Mac.fromNumber(first.toNumber() + info.slot - 1) : undefined;
        factory.push(f);
        if (f !== undefined) this.#hardware.set(f.key, nicName);
      }
      if (info.slot === 0) this.#hardware.set(info.mac.key, nicName);
      if (info.reserved || info.slot === 0) {
        slots.set(info.slot, { client: info.owner ?? '', mac: info.mac, text: info.mac.toString(), lease: undefined });
        this.#inUse.set(info.mac.key, { nic: nicName, slot: info.slot });
      }
    }
    const entry: NicEntry = {
      name: nicName,
      nic,
      slots,
      factory,
      capacity: Math.max(support.totalSlots, support.totalUnicastEntries),
      off: () => undefined,
    };
    entry.off = nic.on((ev) => this.#onEvent(entry, ev));
    this.#nics.set(nicName, entry);
  }

  /** Follows reservations made by anyone on the NIC, so direct ones count and a guest's own changes move its lease. */
  #onEvent(e: NicEntry, ev: NicEvent): void {
    // On a concurrent store allocations do not pass through a whole-store transaction, which is what records a guest's
    // own reservations and MAC changes: one runs soon instead, so other hosts learn of the MAC without waiting for sync().
    if (this.#records !== undefined && !this.#placing && (ev.type === 'reserved' || ev.type === 'modified')) this.#syncSoon();
    if (ev.type === 'reserved') {
      e.slots.set(ev.slot, { client: ev.client, mac: ev.mac, text: ev.mac.toString(), lease: this.#placing ? PENDING : undefined });
      this.#inUse.set(ev.mac.key, { nic: e.name, slot: ev.slot });
    } else if (ev.type === 'modified') {
      const use = e.slots.get(ev.slot);
      if (use === undefined) return;
      this.#inUse.delete(use.mac.key);
      use.mac = ev.mac;
      use.text = ev.mac.toString();
      this.#inUse.set(ev.mac.key, { nic: e.name, slot: ev.slot });
      if (typeof use.lease === 'object') use.lease.mac = ev.mac;
    } else if (ev.type === 'released') {
      const use = e.slots.get(ev.slot);
      if (use === undefined) return;
      e.slots.delete(ev.slot);
      const at = this.#inUse.get(use.mac.key);
      if (at?.nic === e.name && at.slot === ev.slot) this.#inUse.delete(use.mac.key);
      if (typeof use.lease === 'object' && this.#leases.get(use.lease.key) === use.lease) this.#leases.delete(use.lease.key);
    }
  }

  #syncing = false;

  /** Runs one whole-store transaction after the current turn (at most one waiting); its failure is left to the next. */
  #syncSoon(): void {
    if (this.#syncing || this.#closed) return;
    this.#syncing = true;
    setTimeout(() => {
      this.#syncing = false;
      if (!this.#closed) this.#transact(() => undefined).catch(() => undefined);
    }, 0);
  }

  #live(): void {
    if (this.#closed) throw new MacslotError('CLIENT_CLOSED', 'this MAC manager is closed');
  }

  #entry(nicName: string): NicEntry {
    const e = this.#nics.get(nicName);
    if (e === undefined)
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `no NIC named ${show(nicName)} (this manager has ${[...this.#nics.keys()].map((n) => show(n)).join(', ')})`,
      );
    return e;
  }

  #quotaOf(guest: string): Quota {
    return this.#quotas.get(guest) ?? this.#quota;
  }

  #blockFor(spec: MacBlockSpec): MacBlock {
    const key = typeof spec === 'string' ? spec : JSON.stringify(spec);
    let b = this.#blocks.get(key);
    if (b === undefined) {
      b = new MacBlock(spec);
      this.#blocks.set(key, b);
    }
    return b;
  }

  #checkTtl(ttl: unknown): void {
    if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl <= 0)
      throw new MacslotError('INVALID_ARGUMENT', `ttlMs must be a positive integer of milliseconds, got ${show(ttl)}`);
  }

  #checkRequest(r: AllocateRequest): Checked {
    if (r === null || typeof r !== 'object') throw new MacslotError('INVALID_ARGUMENT', `a request must be an object, got ${show(r)}`);
    const guest = name(r.guest, 'guest');
    const iface = r.iface === undefined ? '0' : name(r.iface, 'iface', 64);
    const nicName = r.nic ?? this.#nics.keys().next().value!;
    const e = this.#entry(nicName);
    if (guest === e.nic.primaryClient.name)
      throw new MacslotError('INVALID_ARGUMENT', `guest ${show(guest)} is the name of ${nicName}'s primary client`);
    const policy = r.policy ?? 'auto';
    if (!POLICIES.includes(policy))
      throw new MacslotError('INVALID_ARGUMENT', `policy must be one of ${POLICIES.join(', ')}, got ${show(policy)}`);
    if (policy === 'fixed' && r.mac === undefined)
      throw new MacslotError('INVALID_ARGUMENT', `the fixed policy needs a mac (guest ${show(guest)})`);
    if (r.mac !== undefined) Mac.from(r.mac);
    if (r.order !== undefined && r.order !== 'next' && r.order !== 'random')
      throw new MacslotError('INVALID_ARGUMENT', `order must be "next" or "random", got ${show(r.order)}`);
    if (r.onConflict !== undefined && r.onConflict !== 'error' && r.onConflict !== 'reallocate')
      throw new MacslotError('INVALID_ARGUMENT', `onConflict must be "error" or "reallocate", got ${show(r.onConflict)}`);
    if (r.ttlMs !== undefined) this.#checkTtl(r.ttlMs);
    if (r.block !== undefined) this.#blockFor(r.block);
    if (r.prefix !== undefined) new MacBlock(r.prefix);
    if (policy === 'block' && r.block === undefined && this.#block === undefined)
      throw new MacslotError('INVALID_ARGUMENT', `the block policy needs a block, in the request or the manager (guest ${show(guest)})`);
    if (policy === 'derived' && this.#secret === undefined)
      throw new MacslotError('INVALID_ARGUMENT', `the derived policy needs the manager's secret (guest ${show(guest)})`);
    return { ...r, guest, iface, nic: nicName, policy };
  }

  async #transact<T>(body: (ctx: Ctx) => T): Promise<T> {
    const undo: (() => void)[] = [];
    const added: LeaseState[] = [];
    const rollback = (): void => {
      for (const st of added) if (this.#leases.get(st.key) === st) this.#leases.delete(st.key);
      added.length = 0;
      for (const fn of undo.splice(0).reverse()) {
        try {
          fn();
        } catch {
          // Undo steps only release what this transaction reserved; a failure there leaves the slot to the guest, which is safe.
        }
      }
    };
    try {
      return await this.store.transact((data) => {
        const ctx = this.#context(data, undo, added);
        try {
          return body(ctx);
        } catch (err) {
          rollback();
          throw err;
        }
      });
    } catch (err) {
      rollback();
      throw err;
    } finally {
      this.#arm();
    }
  }

  /** Arms the lapse timer for the earliest expiry among the leases (none: disarmed). */
  #arm(): void {
    let next: number | undefined;
    if (!this.#closed)
      for (const st of this.#leases.values()) if (st.expires !== undefined && (next === undefined || st.expires < next)) next = st.expires;
    if (next === this.#timer?.at) return;
    this.#disarm();
    if (next === undefined) return;
    const at = next;
    const timer = { at, cancel: (): void => undefined };
    this.#timer = timer;
    timer.cancel = this.#setTimer(
      () => {
        if (this.#timer === timer) this.#timer = undefined;
        this.#onTimer();
      },
      Math.min(Math.max(0, at - this.#clock()), MAX_DELAY),
    );
  }

  #disarm(): void {
    const t = this.#timer;
    this.#timer = undefined;
    t?.cancel();
  }

  /** The lapse timer: takes every due lease off its NIC now, then records the release in the store. */
  #onTimer(): void {
    if (this.#closed) return;
    let dropped = 0;
    const records = this.#records;
    try {
      const due = this.#lapse(this.#clock());
      dropped = due.length;
      if (records !== undefined) for (const l of due) records.release(l.mac.toString(), this.session).catch(() => undefined);
    } catch {
      // Nothing is thrown into a timer; the next transaction lapses whatever is still due.
      dropped = 1;
    }
    this.#arm();
    // A failed commit leaves the records held until their expiry passes the grace, or the next transaction fixes them.
    if (dropped > 0 && this.#records === undefined) this.#transact(() => undefined).catch(() => undefined);
  }

  /** Takes every lease due at `now` off its NIC and forgets it locally; returns them. */
  #lapse(now: number): Lease[] {
    const out: Lease[] = [];
    for (const st of [...this.#leases.values()]) {
      if (st.expires === undefined || st.expires > now) continue;
      out.push(this.#snapshot(st));
      this.#dropLease(st);
    }
    if (out.length > 0) {
      this.#lapsed.push(...out);
      if (this.#lapsed.length > MAX_LAPSED) this.#lapsed.splice(0, this.#lapsed.length - MAX_LAPSED);
    }
    return out;
  }

  #context(data: StoreData, undo: (() => void)[], added: LeaseState[]): Ctx {
    const now = this.#clock();
    const ctx: Ctx = { data, now, byIdentity: new Map(), counts: new Map(), undo, added, swept: [] };
    ctx.swept.push(...this.#sweepExpired(ctx));
    const mine = this.#reconcile(ctx);
    const records = data.records;
    // Counting is only needed when some quota applies; it costs a string per record per transaction.
    const counting = this.#quotas.size > 0 || this.#quota.maxMacs !== undefined || this.#quota.hardwareShare !== undefined;
    for (const mac in records) {
      const r = records[mac]!;
      if (r.holder === this.session && !mine.has(mac)) {
        // Held by this session but on no NIC any more: a guest released it, or moved its lease to another MAC (then the identity lives on
        // the new record only).
        if (r.policy === 'direct' || this.#leases.has(idKey(r))) {
          delete records[mac];
          continue;
        }
        r.holder = null;
        r.updated = now;
      }
      if (r.policy !== 'direct') ctx.byIdentity.set(idKey(r), mac);
      if (counting && r.holder !== null && !lapsed(r, now)) this.#count(ctx, r.guest, r.nic, 1);
    }
    // A direct reservation the store gives to someone else is still the guest's slot, so it counts against its quota.
    if (counting) for (const c of this.#conflicts) this.#count(ctx, c.client, c.nic, 1);
    if (counting) this.#conflicts.push(...this.#quotaExcess(ctx));
    return ctx;
  }

  /**
   * Returns the direct reservations that take their guest past its quota. The manager cannot refuse them: the NIC
   * grants a client's reservation at once, while the quota counts the guest's MACs in every process sharing the
   * store, which only a store transaction can see. Taking an active MAC from a running guest would break its traffic
   * without a word, so the excess is reported and the guest gets QUOTA_EXCEEDED from the manager until it is back
   * within quota. The most recent reservations (highest slots) are the ones reported.
   */
  #quotaExcess(ctx: Ctx): StoreConflict[] {
    const reported = new Set(this.#conflicts.map((c) => `${c.nic}\u0000${c.slot}`));
    const byGuest = new Map<string, { e: NicEntry; slot: number; use: SlotUse }[]>();
    for (const e of this.#nics.values()) {
      for (const [slot, use] of e.slots) {
        if (slot === 0 || use.lease !== undefined || reported.has(`${e.name}\u0000${slot}`)) continue;
        const list = byGuest.get(use.client) ?? [];
        list.push({ e, slot, use });
        byGuest.set(use.client, list);
      }
    }
    const out: StoreConflict[] = [];
    for (const [guest, list] of byGuest) {
      const q = this.#quotaOf(guest);
      const flagged = new Set<(typeof list)[number]>();
      const flagLast = (items: typeof list, excess: number): void => {
        if (excess > 0) for (const d of items.slice(Math.max(0, items.length - excess))) flagged.add(d);
      };
      if (q.maxMacs !== undefined) flagLast(list, (ctx.counts.get(guest) ?? 0) - q.maxMacs);
      if (q.hardwareShare !== undefined) {
        for (const e of this.#nics.values()) {
          const limit = Math.max(1, Math.floor(q.hardwareShare * e.capacity));
          flagLast(
            list.filter((d) => d.e === e),
            (ctx.counts.get(`${guest}\u0000${e.name}`) ?? 0) - limit,
          );
        }
      }
      for (const d of flagged) {
        const rec = ctx.data.records[d.use.text];
        out.push({
          reason: 'quota',
          mac: d.use.mac,
          nic: d.e.name,
          slot: d.slot,
          client: guest,
          record: rec === undefined ? undefined : { ...rec },
        });
      }
    }
    return out;
  }

  #count(ctx: Ctx, guest: string, nicName: string, n: number): void {
    ctx.counts.set(guest, (ctx.counts.get(guest) ?? 0) + n);
    const k = `${guest}\u0000${nicName}`;
    ctx.counts.set(k, (ctx.counts.get(k) ?? 0) + n);
  }

  #sweepExpired(ctx: Ctx): Lease[] {
    const out = this.#lapse(ctx.now);
    for (const l of out) {
      const rec = ctx.data.records[l.mac.toString()];
      if (rec !== undefined && sameIdentity(rec, l) && rec.holder === this.session) Object.assign(rec, { holder: null, updated: ctx.now });
    }
    return out;
  }

  /** Writes `rec` for `mac`; an identity whose record it replaces is remembered as displaced, and `rec`'s identity no longer is. */
  #claim(ctx: Ctx, mac: string, rec: MacRecord): void {
    const old = ctx.data.records[mac];
    if (old !== undefined && old.policy !== 'direct' && !(rec.policy !== 'direct' && sameIdentity(old, rec))) {
      undisplace(ctx.data, old);
      (ctx.data.displaced ??= []).push({ guest: old.guest, nic: old.nic, iface: old.iface, mac, policy: old.policy, updated: ctx.now });
    }
    if (rec.policy !== 'direct') undisplace(ctx.data, rec);
    ctx.data.records[mac] = rec;
  }

  /**
   * Records what is on the NICs in the draft (direct reservations, MACs a guest changed itself) and returns the MACs this session holds
   * there.
   */
  #reconcile(ctx: Ctx): Set<string> {
    const { data, now } = ctx;
    const conflicts: StoreConflict[] = [];
    const mine = new Set<string>();
    for (const e of this.#nics.values()) {
      for (const [slot, use] of e.slots) {
        if (slot === 0 || use.lease === PENDING) continue;
        const mac = use.text;
        const rec = data.records[mac];
        const lease = use.lease;
        const guest = lease === undefined ? use.client : lease.guest;
        const iface = lease === undefined ? `slot ${slot}` : lease.iface;
        const ours = rec !== undefined && rec.holder === this.session && rec.guest === guest && rec.nic === e.name && rec.iface === iface;
        if (ours) {
          mine.add(mac);
        } else if (rec === undefined || lapsed(rec, now) || (lease !== undefined && sameIdentity(rec, lease))) {
          const policy = lease === undefined ? 'direct' : lease.policy;
          this.#claim(ctx, mac, { guest, nic: e.name, iface, policy, holder: this.session, expires: lease?.expires ?? null, updated: now });
          mine.add(mac);
        } else {
          conflicts.push({ reason: 'store', mac: use.mac, nic: e.name, slot, client: use.client, record: { ...rec } });
        }
      }
    }
    this.#conflicts = conflicts;
    return mine;
  }

  /** Returns why `mac` cannot go to `id` now, or undefined when it is free for it. */
  #takenReason(data: StoreData, now: number, mac: Mac, id: Identity, policy: AllocationPolicy | RecordPolicy): string | undefined {
    if (!mac.isValidUnicast) return `not a valid unicast MAC (${mac.isZero ? 'zero' : 'multicast'})`;
    const key = mac.key;
    if (this.#neighbours.has(key)) return 'a known neighbour on the network';
    const at = this.#inUse.get(key);
    if (at !== undefined)
      return (
        `active on ${at.nic} slot ` +
        `${at.slot}${at.slot === 0 ? ' (its primary)' : ` (client ${show(this.#nics.get(at.nic)?.slots.get(at.slot)?.client)})`}`
      );
    const hw = this.#hardware.get(key);
    if (hw !== undefined && policy !== 'factory') return `a factory MAC of ${hw}`;
    const rec = data === NO_RECORDS ? undefined : data.records[mac.toString()];
    if (rec !== undefined && !lapsed(rec, now) && !sameIdentity(rec, id)) {
      return (
        `${rec.holder === null ? 'remembered for' : 'held by'} guest ${show(rec.guest)} interface ${show(rec.iface)} on ${rec.nic} ` +
        `in ${this.store.location}${rec.holder === null ? '' : ` (session ${rec.holder})`}`
      );
    }
    return undefined;
  }

  #checkQuota(ctx: Ctx, e: NicEntry, guest: string): void {
    const q = this.#quotaOf(guest);
    const total = ctx.counts.get(guest) ?? 0;
    if (q.maxMacs !== undefined && total + 1 > q.maxMacs) {
      throw new MacslotError('QUOTA_EXCEEDED', `guest ${show(guest)} holds ${total} MACs and its quota is ${q.maxMacs}`);
    }
    if (q.hardwareShare !== undefined) {
      const limit = Math.max(1, Math.floor(q.hardwareShare * e.capacity));
      const here = ctx.counts.get(`${guest}\u0000${e.name}`) ?? 0;
      if (here + 1 > limit) {
        throw new MacslotError(
          'QUOTA_EXCEEDED',
          `guest ${show(guest)} holds ${here} MACs on ${e.name}; its share ${q.hardwareShare} of ${e.capacity} hardware slots allows ` +
            `${limit}`,
        );
      }
    }
  }

  #clientFor(e: NicEntry, guest: string, undo: (() => void)[]): NicClient {
    const existing = e.nic.client(guest);
    if (existing !== undefined) return existing;
    const c = e.nic.openClient(guest);
    this.#ownClients.add(c);
    undo.push(() => {
      if (c.slots().length === 0) {
        this.#ownClients.delete(c);
        c.close();
      }
    });
    return c;
  }

  #freeFactorySlot(ctx: Ctx, e: NicEntry, id: Identity): number | undefined {
    for (let i = 0; i < e.factory.length; i++) {
      const f = e.factory[i];
      if (f !== undefined && !e.slots.has(i + 1) && this.#takenReason(ctx.data, ctx.now, f, id, 'factory') === undefined) return i + 1;
    }
    return undefined;
  }

  #pick(policy: 'random' | 'block', r: Pick<AllocateRequest, 'block' | 'order' | 'prefix'>, taken: (m: Mac) => boolean): Mac {
    if (policy === 'block') {
      const spec = r.block ?? this.#block;
      if (spec === undefined) throw new MacslotError('INVALID_ARGUMENT', 'the block policy needs a block, in the request or the manager');
      const block = this.#blockFor(spec);
      return r.order === 'random' ? block.random(taken, this.#random) : block.next(taken);
    }
    const prefix = r.prefix ?? this.#prefix;
    if (prefix !== undefined) return this.#blockFor(prefix).random(taken, this.#random);
    return randomAddr({ taken, random: this.#random, attempts: 256 });
  }

  /**
   * Allocates through the store's record-level claims (a concurrent store): for an identity the store remembers
   * nothing of, one claim tries several free-looking MACs and the store's UNIQUE constraint decides; MACs found taken
   * are passed over on the next claim. Resolves undefined, having claimed nothing, when a whole-store transaction
   * must decide instead: a guest under a quota (it counts MACs across hosts), a factory slot, an identity the store
   * remembers (its MAC comes back, or it was displaced), or a TTL too long for the store.
   */
  async #allocateByRecord(r: Checked, records: RecordStore): Promise<Lease | undefined> {
    const id: Identity = { guest: r.guest, nic: r.nic, iface: r.iface };
    const key = idKey(id);
    for (let p = this.#allocating.get(key); p !== undefined; p = this.#allocating.get(key)) await p.catch(() => undefined);
    this.#live();
    // Leases due now leave first (their timer may not have run yet), as every whole-store transaction does.
    if (this.#timer !== undefined && this.#timer.at <= this.#clock()) this.#lapseDue(records);
    const held = this.#leases.get(key);
    if (held !== undefined) {
      if (r.policy === 'fixed' && !held.mac.equals(Mac.from(r.mac!))) return undefined;
      return this.#snapshot(held);
    }
    const e = this.#entry(r.nic);
    const q = this.#quotaOf(r.guest);
    const auto = r.policy === 'auto';
    if (
      q.maxMacs !== undefined ||
      q.hardwareShare !== undefined ||
      r.policy === 'factory' ||
      (auto && e.factory.length > 0) ||
      (r.ttlMs !== undefined && r.ttlMs > MAX_RECORD_TTL)
    )
      return undefined;
    const run = this.#claimFresh(e, key, id, r, records);
    this.#allocating.set(key, run);
    try {
      const lease = await run;
      this.#armSooner(lease?.expires);
      return lease;
    } finally {
      if (this.#allocating.get(key) === run) this.#allocating.delete(key);
    }
  }

  /**
   * Arms the lapse timer for a new expiry when it comes before the armed one, without a look at every lease. A timer
   * left armed for a lease that went away fires for nothing and re-arms.
   */
  #armSooner(expires: number | undefined): void {
    if (expires !== undefined && !this.#closed && (this.#timer === undefined || expires < this.#timer.at)) this.#arm();
  }

  async #claimFresh(e: NicEntry, key: string, id: Identity, r: Checked, records: RecordStore): Promise<Lease | undefined> {
    const none = NO_RECORDS;
    const policy: LeasePolicy =
      r.policy === 'fixed' || r.policy === 'derived'
        ? r.policy
        : r.policy === 'block' || (r.policy === 'auto' && (r.block ?? this.#block) !== undefined)
          ? 'block'
          : 'random';
    let last: unknown;
    const learned = { forgotten: false };
    for (let round = 0; round < MAX_CLAIMS; round++) {
      const macs = this.#candidates(none, id, r, policy, learned);
      const texts = macs.map((m) => m.toString());
      const req: NewClaimRequest = {
        mac: texts[0]!,
        alternatives: texts.slice(1),
        guest: id.guest,
        nic: id.nic,
        iface: id.iface,
        policy,
        holder: this.session,
      };
      if (r.ttlMs !== undefined) req.ttlMs = r.ttlMs;
      for (const m of macs) this.#claiming.add(m.key);
      let rec: StoredRecord | undefined;
      try {
        rec = await records.claimNew(req);
      } catch (err) {
        if (!(err instanceof MacslotError) || err.code !== 'MAC_IN_USE' || policy === 'fixed' || policy === 'derived') throw err;
        for (const m of macs) this.#seenTaken.add(m.key);
        last = err;
        continue;
      } finally {
        for (const m of macs) this.#claiming.delete(m.key);
      }
      if (rec === undefined) return undefined;
      return this.#placeClaimed(e, key, id, r, rec, { macs, texts }, policy, records);
    }
    throw last;
  }

  /** The MACs one record-level claim tries: the fixed or derived one, or up to CANDIDATES picks of the block or prefix. */
  #candidates(none: StoreData, id: Identity, r: Checked, policy: LeasePolicy, learned: { forgotten: boolean }): Mac[] {
    const now = this.#clock();
    if (policy === 'fixed' || policy === 'derived') {
      const prefix = r.prefix ?? this.#prefix;
      const mac =
        policy === 'fixed'
          ? Mac.from(r.mac!)
          : deriveMac(`${id.guest}/${id.iface}@${id.nic}`, this.#secret!, prefix === undefined ? {} : { prefix });
      const reason = this.#takenReason(none, now, mac, id, policy);
      if (reason !== undefined && policy === 'fixed') throw new MacslotError('MAC_IN_USE', `${mac.toString()} is ${reason}`);
      if (reason !== undefined)
        throw new MacslotError(
          'MAC_IN_USE',
          `the derived MAC ${mac.toString()} of guest ${show(id.guest)} interface ${show(id.iface)} is ${reason}; use another prefix or ` +
            `identity`,
        );
      return [mac];
    }
    const out: Mac[] = [];
    const taken = (m: Mac): boolean => {
      for (const o of out) if (o.equals(m)) return true;
      const k = m.key;
      return this.#claiming.has(k) || this.#seenTaken.has(k) || this.#takenReason(none, now, m, id, 'random') !== undefined;
    };
    // Random picks rarely collide, so two do; `next` picks of hosts sharing a block collide until they spread out.
    const count = r.order === 'random' ? 2 : CANDIDATES;
    for (let i = 0; i < count; i++) {
      let mac: Mac;
      try {
        mac = this.#pick(policy === 'block' ? 'block' : 'random', r, taken);
      } catch (err) {
        if (out.length > 0) break;
        // What the claims learned may be stale (MACs freed since): forget it and look once more before giving up.
        if (!(err instanceof MacslotError) || this.#seenTaken.size === 0 || learned.forgotten) throw err;
        this.#seenTaken.clear();
        learned.forgotten = true;
        i--;
        continue;
      }
      out.push(mac);
    }
    return out;
  }

  /**
   * Puts a MAC the store has just recorded for the identity on its NIC. When that fails (the manager closed meanwhile,
   * the NIC is full, a guest reserved the MAC directly), the claim is released again and the error rejects.
   */
  #placeClaimed(
    e: NicEntry,
    key: string,
    id: Identity,
    r: Checked,
    rec: StoredRecord,
    tried: { macs: Mac[]; texts: string[] },
    policy: LeasePolicy,
    records: RecordStore,
  ): Lease {
    const i = tried.texts.indexOf(rec.mac);
    const mac = i >= 0 ? tried.macs[i]! : Mac.parse(rec.mac);
    // No transaction's bookkeeping: the store has recorded the claim already, so only the NIC and this manager change.
    const undo: (() => void)[] = [];
    let st: LeaseState | undefined;
    try {
      this.#live();
      const reason = this.#takenReason(NO_RECORDS, rec.updated, mac, id, policy);
      if (reason !== undefined) throw new MacslotError('MAC_IN_USE', `${rec.mac} is ${reason}`);
      const client = this.#clientFor(e, id.guest, undo);
      const placed = this.#place(undo, client, { mac });
      // The lease's expiry is the store's, exactly: the claim's time plus its TTL.
      st = this.#lease(e, key, id, r, client, placed, policy, false, undefined, rec.updated);
      return this.#snapshot(st);
    } catch (err) {
      if (st !== undefined && this.#leases.get(key) === st) this.#leases.delete(key);
      for (const fn of undo.reverse()) {
        try {
          fn();
        } catch {
          // As in a transaction's rollback: what cannot be undone stays with the guest.
        }
      }
      records.release(rec.mac, this.session).catch(() => undefined);
      throw err;
    }
  }

  /** Resolves with the lease renewed through the store's record-level renew; a lease the store no longer gives it is dropped. */
  async #renewByRecord(st: LeaseState, ttl: number, records: RecordStore): Promise<Lease> {
    let rec: StoredRecord;
    try {
      rec = await records.renew(st.mac.toString(), this.session, ttl);
    } catch (err) {
      if (!(err instanceof MacslotError) || err.code !== 'MAC_IN_USE') throw err;
      // The store says the lease lapsed or went to another: it leaves the NIC now, as the lapse timer would have done.
      if (this.#leases.get(st.key) === st) this.#dropLease(st);
      this.#arm();
      throw new MacslotError(
        'NOT_RESERVED',
        `no live lease for guest ${show(st.guest)} interface ${show(st.iface)} on ${show(st.nic)} ` +
          `(${err.message.replace(/^MAC_IN_USE: /, '')})`,
      );
    }
    if (this.#leases.get(st.key) !== st)
      throw new MacslotError(
        'NOT_RESERVED',
        `no live lease for guest ${show(st.guest)} interface ${show(st.iface)} on ${show(st.nic)} (released, or its TTL passed)`,
      );
    st.expires = rec.expires ?? undefined;
    this.#armSooner(st.expires);
    return this.#snapshot(st);
  }

  /** Takes due leases off their NICs and records their release through the store's record-level release. */
  #lapseDue(records: RecordStore): void {
    for (const l of this.#lapse(this.#clock())) records.release(l.mac.toString(), this.session).catch(() => undefined);
  }

  /** Reserves `mac` (or factory `slot`) for the guest on the NIC, recording how to undo it. */
  #place(undo: (() => void)[], client: NicClient, target: { slot: number } | { mac: Mac }): Placed {
    this.#placing = true;
    try {
      if ('slot' in target) {
        const r = client.addressReserve({ slot: target.slot });
        undo.push(() => client.addressUnreserve(r.slot));
        return { slot: r.slot, mac: r.mac, factorySlot: true };
      }
      const r = client.addressAdd(target.mac);
      undo.push(() => client.addressRemove(r.slot));
      return { slot: r.slot, mac: r.mac, factorySlot: false };
    } finally {
      this.#placing = false;
    }
  }

  #allocateOne(ctx: Ctx, r: Checked): LeaseState {
    const id: Identity = { guest: r.guest, nic: r.nic, iface: r.iface };
    const key = idKey(id);
    const held = this.#leases.get(key);
    if (held !== undefined) {
      if (r.policy === 'fixed' && !held.mac.equals(Mac.from(r.mac!))) {
        throw new MacslotError(
          'MAC_IN_USE',
          `guest ${show(r.guest)} interface ${show(r.iface)} on ${r.nic} already holds ${held.mac.toString()}; release it before asking ` +
            `for ${Mac.from(r.mac!).toString()}`,
        );
      }
      return held;
    }
    const e = this.#entry(r.nic);
    this.#checkQuota(ctx, e, r.guest);
    const fixed = r.mac === undefined ? undefined : Mac.from(r.mac);
    let previous: Mac | undefined;
    const remembered = ctx.byIdentity.get(key);
    const lost = remembered === undefined ? displacedOf(ctx.data, id) : undefined;
    if (remembered !== undefined) {
      const rec = ctx.data.records[remembered]!;
      const mac = Mac.parse(remembered);
      if (r.policy === 'fixed' && !mac.equals(fixed!)) {
        // An explicit MAC replaces the remembered one.
        previous = mac;
        delete ctx.data.records[remembered];
      } else if (r.persist !== false) {
        const restored = this.#restore(ctx, e, id, r, rec, mac);
        if (restored !== undefined) return restored;
        previous = mac;
        delete ctx.data.records[remembered];
      }
    } else if (lost !== undefined) {
      // Another identity took this one's MAC after its lease lapsed: it comes back only if free again, and never silently.
      const mac = Mac.parse(lost.mac);
      const rec: MacRecord = {
        guest: id.guest,
        nic: id.nic,
        iface: id.iface,
        policy: lost.policy,
        holder: null,
        expires: null,
        updated: lost.updated,
      };
      if (r.policy === 'fixed' && !mac.equals(fixed!)) previous = mac;
      else if (r.persist !== false) {
        const restored = this.#restore(ctx, e, id, r, rec, mac);
        if (restored !== undefined) return restored;
        previous = mac;
      }
    }
    return this.#fresh(ctx, e, id, r, previous, fixed);
  }

  /** Gives the identity its remembered MAC; returns undefined when it must be reallocated, throws MAC_IN_USE when it may not. */
  #restore(ctx: Ctx, e: NicEntry, id: Identity, r: Checked, rec: MacRecord, mac: Mac): LeaseState | undefined {
    if (rec.holder !== null && rec.holder !== this.session && !lapsed(rec, ctx.now) && r.reclaim !== true) {
      throw new MacslotError(
        'MAC_IN_USE',
        `${mac.toString()} of guest ${show(id.guest)} interface ${show(id.iface)} on ${id.nic} is held by session ${rec.holder} in ` +
          `${this.store.location}; pass reclaim: true once that session is gone, or wait for its lease to lapse`,
      );
    }
    let reason = this.#takenReason(ctx.data, ctx.now, mac, id, rec.policy);
    let slot: number | undefined;
    if (reason === undefined && rec.policy === 'factory') {
      const i = e.factory.findIndex((f) => f?.equals(mac) === true);
      if (i < 0) reason = `not a factory MAC of ${e.name}`;
      else slot = i + 1;
    }
    if (reason !== undefined) {
      if (r.onConflict === 'reallocate') return undefined;
      throw new MacslotError(
        'MAC_IN_USE',
        `the remembered MAC ${mac.toString()} of guest ${show(id.guest)} interface ${show(id.iface)} on ${id.nic} is ${reason}; pass ` +
          `onConflict: "reallocate" to get a new one`,
      );
    }
    const client = this.#clientFor(e, id.guest, ctx.undo);
    const placed = this.#place(ctx.undo, client, slot !== undefined ? { slot } : { mac });
    return this.#record(ctx, e, id, r, client, placed, rec.policy as LeasePolicy, true, undefined);
  }

  #fresh(ctx: Ctx, e: NicEntry, id: Identity, r: Checked, previous: Mac | undefined, fixed: Mac | undefined): LeaseState {
    let policy: LeasePolicy;
    let target: { slot: number } | { mac: Mac };
    const taken = (m: Mac): boolean => this.#takenReason(ctx.data, ctx.now, m, id, 'random') !== undefined;
    const request = r.policy;
    if (request === 'factory' || (request === 'auto' && e.factory.length > 0 && this.#freeFactorySlot(ctx, e, id) !== undefined)) {
      if (e.factory.length === 0)
        throw new MacslotError('NOT_SUPPORTED', `${e.name} has no factory MACs beyond its primary (guest ${show(id.guest)})`);
      const slot = this.#freeFactorySlot(ctx, e, id);
      if (slot === undefined)
        throw new MacslotError(
          'NO_FREE_SLOT',
          `no free factory slot among ${e.factory.length} on ${e.name} (reserved, held in ${this.store.location}, or neighbours) for ` +
            `guest ${show(id.guest)}`,
        );
      policy = 'factory';
      target = { slot };
    } else if (request === 'fixed') {
      const reason = this.#takenReason(ctx.data, ctx.now, fixed!, id, 'fixed');
      if (reason !== undefined) throw new MacslotError('MAC_IN_USE', `${fixed!.toString()} is ${reason}`);
      policy = 'fixed';
      target = { mac: fixed! };
    } else if (request === 'derived') {
      const prefix = r.prefix ?? this.#prefix;
      const mac = deriveMac(`${id.guest}/${id.iface}@${id.nic}`, this.#secret!, prefix === undefined ? {} : { prefix });
      const reason = this.#takenReason(ctx.data, ctx.now, mac, id, 'derived');
      if (reason !== undefined)
        throw new MacslotError(
          'MAC_IN_USE',
          `the derived MAC ${mac.toString()} of guest ${show(id.guest)} interface ${show(id.iface)} is ${reason}; use another prefix or ` +
            `identity`,
        );
      policy = 'derived';
      target = { mac };
    } else {
      policy = request === 'block' || (request === 'auto' && (r.block ?? this.#block) !== undefined) ? 'block' : 'random';
      target = { mac: this.#pick(policy, r, taken) };
    }
    const client = this.#clientFor(e, id.guest, ctx.undo);
    const placed = this.#place(ctx.undo, client, target);
    return this.#record(ctx, e, id, r, client, placed, policy, false, previous);
  }

  #record(
    ctx: Ctx,
    e: NicEntry,
    id: Identity,
    r: Checked,
    client: NicClient,
    placed: Placed,
    policy: LeasePolicy,
    restored: boolean,
    previous: Mac | undefined,
  ): LeaseState {
    const st = this.#lease(e, idKey(id), id, r, client, placed, policy, restored, previous, ctx.now);
    const use = e.slots.get(placed.slot);
    const text = use?.mac.equals(placed.mac) ? use.text : placed.mac.toString();
    this.#claim(ctx, text, {
      guest: id.guest,
      nic: id.nic,
      iface: id.iface,
      policy,
      holder: this.session,
      expires: st.expires ?? null,
      updated: ctx.now,
    });
    ctx.byIdentity.set(st.key, text);
    this.#count(ctx, id.guest, id.nic, 1);
    ctx.added.push(st);
    return st;
  }

  /** The lease of a MAC just placed on its NIC, at store time `now`, made this manager's (its slot's and its identity's). */
  #lease(
    e: NicEntry,
    key: string,
    id: Identity,
    r: Checked,
    client: NicClient,
    placed: Placed,
    policy: LeasePolicy,
    restored: boolean,
    previous: Mac | undefined,
    now: number,
  ): LeaseState {
    const expires = r.ttlMs === undefined ? undefined : now + r.ttlMs;
    const st: LeaseState = {
      key,
      guest: id.guest,
      iface: id.iface,
      nic: id.nic,
      mac: placed.mac,
      slot: placed.slot,
      factorySlot: placed.factorySlot,
      policy,
      requested: r.policy,
      restored,
      previous,
      expires,
      ttlMs: r.ttlMs,
      client,
    };
    const use = e.slots.get(placed.slot);
    if (use !== undefined) use.lease = st;
    this.#leases.set(key, st);
    return st;
  }

  /** Releases a lease's slot on its NIC (when the guest has not already) and forgets it locally. */
  #dropLease(st: LeaseState): void {
    if (this.#leases.get(st.key) === st) this.#leases.delete(st.key);
    const e = this.#nics.get(st.nic);
    const use = e?.slots.get(st.slot);
    if (use?.lease === st && st.client.open) {
      if (st.factorySlot) st.client.addressUnreserve(st.slot);
      else st.client.addressRemove(st.slot);
    }
    if (this.#ownClients.has(st.client) && st.client.open && st.client.slots().length === 0) {
      this.#ownClients.delete(st.client);
      st.client.close();
    }
  }

  /** Checks a migration against the target, then moves each MAC (off the source first) and each group; every step has its undo. */
  #migrate(ctx: Ctx, guest: string, target: NicEntry, sources: NicEntry[]): LeaseState[] {
    const moves: { e: NicEntry; slot: number; use: SlotUse }[] = [];
    for (const e of sources)
      for (const [slot, use] of e.slots) if (slot !== 0 && use.client === guest && use.lease !== PENDING) moves.push({ e, slot, use });
    const ids = new Set<string>();
    for (const { e, slot, use } of moves) {
      const mac = use.text;
      const st = typeof use.lease === 'object' ? use.lease : undefined;
      if (st?.factorySlot === true || (st === undefined && slot <= e.factory.length)) {
        throw new MacslotError(
          'NOT_SUPPORTED',
          `${mac} of guest ${show(guest)} is in factory slot ${slot} of ${e.name}; a factory MAC belongs to its NIC, so release it and ` +
            `allocate on ${target.name}`,
        );
      }
      if (this.#hardware.get(use.mac.key) === target.name)
        throw new MacslotError('MAC_IN_USE', `${mac} of guest ${show(guest)} on ${e.name} is a factory MAC of ${target.name}`);
      const at = [...target.slots.values()].find((u) => u.text === mac);
      if (at !== undefined)
        throw new MacslotError(
          'MAC_IN_USE',
          `${mac} of guest ${show(guest)} on ${e.name} is active on ${target.name} (client ${show(at.client)})`,
        );
      if (st === undefined) continue;
      const id: Identity = { guest, nic: target.name, iface: st.iface };
      const key = idKey(id);
      if (this.#leases.has(key) || ids.has(key))
        throw new MacslotError('MAC_IN_USE', `guest ${show(guest)} already has interface ${show(st.iface)} on ${target.name}`);
      ids.add(key);
      const there = ctx.byIdentity.get(key);
      const rec = there === undefined ? undefined : ctx.data.records[there];
      if (rec !== undefined && rec.holder !== null && rec.holder !== this.session && !lapsed(rec, ctx.now)) {
        throw new MacslotError(
          'MAC_IN_USE',
          `guest ${show(guest)} interface ${show(st.iface)} on ${target.name} is held by session ${rec.holder} in ${this.store.location}`,
        );
      }
    }
    const q = this.#quotaOf(guest);
    if (q.hardwareShare !== undefined) {
      const limit = Math.max(1, Math.floor(q.hardwareShare * target.capacity));
      const here = ctx.counts.get(`${guest}\u0000${target.name}`) ?? 0;
      if (here + moves.length > limit) {
        throw new MacslotError(
          'QUOTA_EXCEEDED',
          `guest ${show(guest)} would hold ${here + moves.length} MACs on ${target.name}; its share ${q.hardwareShare} of ` +
            `${target.capacity} hardware slots allows ${limit}`,
        );
      }
    }
    const client = this.#clientFor(target, guest, ctx.undo);
    const out: LeaseState[] = [];
    for (const m of moves) {
      const st = this.#moveOne(ctx, m.e, m.slot, m.use, target, client);
      if (st !== undefined) out.push(st);
    }
    for (const e of sources) this.#moveGroups(ctx, e.nic.client(guest)!, client);
    return out;
  }

  /** Moves one MAC: off its source slot, then onto the target; returns its lease there, if it was a lease. */
  #moveOne(ctx: Ctx, e: NicEntry, slot: number, use: SlotUse, target: NicEntry, client: NicClient): LeaseState | undefined {
    const src = e.nic.client(use.client)!;
    const mac = use.mac;
    const old = typeof use.lease === 'object' ? use.lease : undefined;
    src.addressRemove(slot);
    ctx.undo.push(() => {
      const r = src.addressAdd(mac);
      if (old === undefined) return;
      old.slot = r.slot;
      const back = e.slots.get(r.slot);
      if (back !== undefined) back.lease = old;
      this.#leases.set(old.key, old);
    });
    const placed = this.#place(ctx.undo, client, { mac });
    const rec = ctx.data.records[use.text];
    const ours = rec !== undefined && rec.holder === this.session && rec.nic === e.name && rec.guest === use.client;
    if (old === undefined) {
      // The guest's own reservation, placed by the manager: it stays a direct one, followed like any other.
      const now = target.slots.get(placed.slot);
      if (now !== undefined) now.lease = undefined;
      if (ours) Object.assign(rec, { nic: target.name, iface: `slot ${placed.slot}`, updated: ctx.now });
      return undefined;
    }
    const id: Identity = { guest: old.guest, nic: target.name, iface: old.iface };
    const key = idKey(id);
    // The identity's remembered MAC on the target, if any, gives way to the MAC that moves in.
    const there = ctx.byIdentity.get(key);
    if (there !== undefined && there !== use.text) delete ctx.data.records[there];
    const st: LeaseState = { ...old, key, nic: target.name, slot: placed.slot, client };
    if (ours) {
      Object.assign(rec, { nic: target.name, updated: ctx.now });
      undisplace(ctx.data, id);
    } else
      this.#claim(ctx, use.text, {
        guest: st.guest,
        nic: st.nic,
        iface: st.iface,
        policy: st.policy,
        holder: this.session,
        expires: st.expires ?? null,
        updated: ctx.now,
      });
    ctx.byIdentity.delete(old.key);
    ctx.byIdentity.set(key, use.text);
    const now = target.slots.get(placed.slot);
    if (now !== undefined) now.lease = st;
    this.#leases.set(key, st);
    ctx.added.push(st);
    return st;
  }

  /** Joins the target to each of the source client's groups (as often as the source had joined), then leaves them on the source. */
  #moveGroups(ctx: Ctx, src: NicClient, dst: NicClient): void {
    for (const group of src.groups()) {
      dst.multicastJoin(group);
      ctx.undo.push(() => dst.multicastLeave(group));
      let joins = 0;
      while (src.groups().includes(group)) {
        src.multicastLeave(group);
        joins++;
        ctx.undo.push(() => src.multicastJoin(group));
      }
      for (let i = 1; i < joins; i++) {
        dst.multicastJoin(group);
        ctx.undo.push(() => dst.multicastLeave(group));
      }
    }
  }

  #snapshot(st: LeaseState): Lease {
    return Object.freeze({
      guest: st.guest,
      iface: st.iface,
      nic: st.nic,
      mac: st.mac,
      slot: st.slot,
      policy: st.policy,
      requested: st.requested,
      restored: st.restored,
      previous: st.previous,
      expires: st.expires,
      client: st.client,
    });
  }
}
