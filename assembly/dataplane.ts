// Data plane (Wasm): the accept filter (SIMD-probed hash table), burst classification, fan-out into client rings, and the two-bank reader protocol.

import {
  align, B_CTRL, B_FLAGS, B_PROMISC_COUNT, C_BROADCAST, C_BYTES, C_FRAMES, C_MULTICAST, C_RING_DROPS, CLIENT_COUNTER_BYTES, CTRL_EMPTY,
  CLAIM_EPOCH, CLAIM_OWNER, ENTRY, F_ALLMULTI, F_HASH, F_HASH_TYPE_SHIFT, F_PROMISC, GROUP_WIDTH, H_ACTIVE, H_BANK0, H_BANK1, H_BANK_BYTES, H_BURST, H_CLAIMS,
  H_CLIENT_COUNTERS, H_CLIENTS, H_DELIVERER, H_GROUPS, H_HOLD, H_LANE0, H_LANE_BYTES, H_LANES, H_MAGIC, H_MAX_FRAME, H_POOL_BYTES, H_RING_BYTES,
  H_RING_RESETS, H_RINGS, H_SEED_HI, H_SEED_LO, H_SLOTS, H_STAGING, H_TOTAL, H_VERSION, H_WORDS, HASH_BYTES, HEADER_BYTES, L_COUNTERS, L_STATE,
  LANE_COUNTERS, LAYOUT_VERSION, LINE, M_EUI64, M_GROUP, M_HARDWARE, M_INDEX, M_STAGE_SHIFT, MAGIC, MAX_LANES, MISS, R_BROADCAST,
  R_DROP_BAD_DESC, R_DROP_MC, R_DROP_OVERSIZE, R_DROP_RUNT, R_DROP_UNKNOWN, R_MC_ALL, R_MC_EXACT, R_MC_HASH, R_PROMISC, R_SOFTWARE,
  R_UNICAST, REC_HEADER, REC_WRAP, RING_DATA, RING_HEAD, RING_SHADOW, RING_SLEEPERS, RING_TAIL, RULE_COUNT, STAGE_EXACT, STAGE_HASH, STAGED_RECORD, STAGED_RECORDS, STAGING_BYTES, V_NO_REF,
  STRIPES, V_REF_SHIFT, V_SOFTWARE, X_DELIVERIES, X_READER_RETRIES, X_RING_CORRUPT, X_RING_FULL,
} from './layout';

// Cached from the header by plan() or attach(); every instance (thread) has its own copy.
let base: usize = 0;
let clients: u32 = 0;
let words: u32 = 0;
let slots: u32 = 0;
let slotMask: u32 = 0;
let groups: u32 = 0;
let poolBytes: u32 = 0;
let burst: u32 = 0;
let ringBytes: u32 = 0;
let maxFrame: u32 = 0;
let lanes: u32 = 0;
let seed: u64 = 0;
let bank0: usize = 0;
let bank1: usize = 0;
let laneBase: usize = 0;
let laneBytes: usize = 0;
let clientCounters: usize = 0;
let rings: usize = 0;
let staging: usize = 0;
// Bank-relative offsets, derived from the sizes above.
let entriesOff: usize = 0;
let hashOff: usize = 0;
let bcastOff: usize = 0;
let promiscOff: usize = 0;
let groupsOff: usize = 0;
// Lane-relative offsets.
let descOff: usize = 0;
let verdictOff: usize = 0;
let keysOff: usize = 0;
let kindsOff: usize = 0;
let touchedOff: usize = 0;
let poolOff: usize = 0;
// The claim token of the lane this instance (thread) took, 0 for none: one instance runs one lane.
let ownToken: u32 = 0;

const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

function derive(): void {
  const n = <usize>slots;
  entriesOff = align(B_CTRL + n + GROUP_WIDTH, 16);
  hashOff = align(entriesOff + n * ENTRY, LINE);
  bcastOff = hashOff + HASH_BYTES;
  promiscOff = bcastOff + <usize>words * 4;
  groupsOff = promiscOff + <usize>words * 4;
  descOff = align(L_COUNTERS + <usize>(LANE_COUNTERS * STRIPES) * 8, LINE);
  verdictOff = descOff + <usize>burst * 8;
  keysOff = align(verdictOff + <usize>burst * 4, 16);
  kindsOff = keysOff + <usize>burst * 8;
  touchedOff = align(kindsOff + <usize>burst, 4);
  poolOff = align(touchedOff + <usize>words * 4, LINE);
  slotMask = slots - 1;
}

function load32(field: usize): u32 {
  return load<u32>(base + field);
}

function readHeader(): void {
  clients = load32(H_CLIENTS);
  words = load32(H_WORDS);
  slots = load32(H_SLOTS);
  groups = load32(H_GROUPS);
  poolBytes = load32(H_POOL_BYTES);
  burst = load32(H_BURST);
  ringBytes = load32(H_RING_BYTES);
  maxFrame = load32(H_MAX_FRAME);
  lanes = load32(H_LANES);
  seed = (<u64>load32(H_SEED_HI) << 32) | <u64>load32(H_SEED_LO);
  bank0 = <usize>load32(H_BANK0);
  bank1 = <usize>load32(H_BANK1);
  laneBase = <usize>load32(H_LANE0);
  laneBytes = <usize>load32(H_LANE_BYTES);
  clientCounters = <usize>load32(H_CLIENT_COUNTERS);
  rings = <usize>load32(H_RINGS);
  staging = <usize>load32(H_STAGING);
  derive();
}

function nextPow2(n: u32): u32 {
  return n <= 1 ? 1 : <u32>1 << (32 - clz(n - 1));
}

/**
 * Lays out every region for the given sizes, writes the header, and returns the bytes the memory
 * needs (0 when a size is out of range). It writes only the header, so it also runs on a scratch memory.
 */
export function plan(
  maxClients: u32, maxEntries: u32, maxGroups: u32, pool: u32, burstMax: u32, ring: u32, frameMax: u32, laneCount: u32, seedLo: u32, seedHi: u32,
): usize {
  if (maxClients < 1 || maxClients > 0xffff || maxGroups > 0xffff || laneCount < 1 || laneCount > MAX_LANES) return 0;
  if (burstMax < 1 || burstMax > 1 << 20 || frameMax < 14 || frameMax > 1 << 18 || pool < frameMax || pool > 1 << 30) return 0;
  if (maxEntries < 1 || maxEntries > 1 << 22) return 0;
  const ringData = nextPow2(ring < frameMax + 16 ? frameMax + 16 : ring);
  base = align(__heap_base, LINE);
  clients = maxClients;
  words = (maxClients + 31) >> 5;
  slots = nextPow2((maxEntries + maxGroups) * 2);
  if (slots < <u32>GROUP_WIDTH) slots = <u32>GROUP_WIDTH;
  groups = maxGroups;
  poolBytes = pool;
  burst = burstMax;
  ringBytes = ringData;
  maxFrame = frameMax;
  lanes = laneCount;
  derive();
  // Sizes multiply up past 2^32 (16 lanes of 300 MB pools): the layout is summed in 64 bits, and refused above the limit.
  const bankBytes64 = (<u64>groupsOff + <u64>groups * <u64>words * 4 + <u64>LINE - 1) & ~(<u64>LINE - 1);
  const laneSize64 = (<u64>poolOff + <u64>pool + <u64>LINE - 1) & ~(<u64>LINE - 1);
  const countersEnd = <u64>base + <u64>HEADER_BYTES + 2 * bankBytes64 + laneSize64 * <u64>laneCount + <u64>maxClients * <u64>CLIENT_COUNTER_BYTES;
  const total64 = ((countersEnd + <u64>LINE - 1) & ~(<u64>LINE - 1)) + <u64>maxClients * (<u64>RING_DATA + <u64>ringData) + <u64>STAGING_BYTES;
  if (total64 > <u64>0xffff_0000) return 0;
  const bankBytes = <usize>bankBytes64;
  const laneSize = <usize>laneSize64;
  let at = base + HEADER_BYTES;
  bank0 = at; at += bankBytes;
  bank1 = at; at += bankBytes;
  laneBase = at; laneBytes = laneSize; at += laneSize * <usize>laneCount;
  clientCounters = at; at = align(at + <usize>maxClients * CLIENT_COUNTER_BYTES, LINE);
  rings = at; at += <usize>maxClients * (RING_DATA + <usize>ringData);
  staging = at; at += STAGING_BYTES;
  const total = at;
  if (total <= <usize>memory.size() << 16) {
    store<u32>(base + H_MAGIC, MAGIC);
    store<u32>(base + H_VERSION, LAYOUT_VERSION);
    store<u32>(base + H_CLIENTS, clients);
    store<u32>(base + H_WORDS, words);
    store<u32>(base + H_SLOTS, slots);
    store<u32>(base + H_GROUPS, groups);
    store<u32>(base + H_POOL_BYTES, poolBytes);
    store<u32>(base + H_BURST, burst);
    store<u32>(base + H_RING_BYTES, ringBytes);
    store<u32>(base + H_MAX_FRAME, maxFrame);
    store<u32>(base + H_LANES, lanes);
    store<u32>(base + H_SEED_LO, seedLo);
    store<u32>(base + H_SEED_HI, seedHi);
    store<u32>(base + H_BANK0, <u32>bank0);
    store<u32>(base + H_BANK1, <u32>bank1);
    store<u32>(base + H_BANK_BYTES, <u32>bankBytes);
    store<u32>(base + H_LANE0, <u32>laneBase);
    store<u32>(base + H_LANE_BYTES, <u32>laneSize);
    store<u32>(base + H_CLIENT_COUNTERS, <u32>clientCounters);
    store<u32>(base + H_RINGS, <u32>rings);
    store<u32>(base + H_STAGING, <u32>staging);
    store<u32>(base + H_TOTAL, <u32>total);
    seed = (<u64>seedHi << 32) | <u64>seedLo;
    resetBank(bank0);
    resetBank(bank1);
  }
  return total;
}

/** Reads the layout from a memory another instance planned; returns 1, or 0 when the memory is not a planned one. */
export function attach(): u32 {
  base = align(__heap_base, LINE);
  if (load<u32>(base + H_MAGIC) != MAGIC || load<u32>(base + H_VERSION) != LAYOUT_VERSION) return 0;
  readHeader();
  return 1;
}

function resetBank(bank: usize): void {
  memory.fill(bank, 0, B_CTRL);
  memory.fill(bank + B_CTRL, CTRL_EMPTY, <usize>slots + GROUP_WIDTH);
  // Entries behind an empty control byte are never read, so only the hash bits and bitmaps after them are cleared.
  memory.fill(bank + hashOff, 0, groupsOff + <usize>groups * <usize>words * 4 - hashOff);
}

// ---- pointers for the TypeScript side -------------------------------------------------

/** Returns the address of bank 0 or 1. */
export function bankPtr(b: u32): usize { return b == 0 ? bank0 : bank1; }
/** Returns the address of lane `lane`, or 0 outside 0..lanes-1. */
export function lanePtr(lane: u32): usize { return lane < lanes ? laneBase + <usize>lane * laneBytes : 0; }
export function laneCountersPtr(lane: u32): usize { return lanePtr(lane) + L_COUNTERS; }
export function descriptorsPtr(lane: u32): usize { return lanePtr(lane) + descOff; }
export function verdictsPtr(lane: u32): usize { return lanePtr(lane) + verdictOff; }
export function keysPtr(lane: u32): usize { return lanePtr(lane) + keysOff; }
export function kindsPtr(lane: u32): usize { return lanePtr(lane) + kindsOff; }
export function poolPtr(lane: u32): usize { return lanePtr(lane) + poolOff; }
export function clientCountersPtr(): usize { return clientCounters; }
export function ringPtr(client: u32): usize { return client < clients ? rings + <usize>client * (RING_DATA + <usize>ringBytes) : 0; }
export function stagingPtr(): usize { return staging; }
export function activeBank(): u32 { return atomic.load<u32>(base + H_ACTIVE); }
/** Returns the bytes of one bank (the whole accept filter: table, hash filter, client and group bitmaps). */
export function bankBytes(): u32 { return load32(H_BANK_BYTES); }

// ---- the table ---------------------------------------------------------------------

// @ts-ignore: decorator
@inline function mix(k: u64): u64 {
  return mixWith(k, seed);
}

// @ts-ignore: decorator
@inline function mixWith(k: u64, sd: u64): u64 {
  const h = (k ^ sd) * HASH_MUL;
  return h ^ (h >> 32);
}

/** Returns the meta word of key `k` of kind `kind` (0 MAC-48, 1 EUI-64) in `bank`, or MISS. */
// @ts-ignore: decorator
@inline function lookup(bank: usize, k: u64, kind: u32): u32 {
  return lookupIn(bank + B_CTRL, bank + entriesOff, slotMask, seed, k, kind);
}

/** lookup() with the table's parameters passed in, so a burst loop can hold them in locals. */
// @ts-ignore: decorator
@inline function lookupIn(ctrl: usize, entries: usize, mask: u32, sd: u64, k: u64, kind: u32): u32 {
  const h = mixWith(k, sd);
  let pos = <u32>h & mask;
  const tag = i8x16.splat(<i8>(h >> 57));
  const empty = i8x16.splat(<i8>CTRL_EMPTY);
  // At half load most keys sit in their home slot and most misses meet an empty one: settle those without SIMD.
  const home = load<u8>(ctrl + <usize>pos);
  if (home == CTRL_EMPTY) return MISS;
  if (home == <u8>(h >> 57)) {
    const ent = entries + <usize>pos * ENTRY;
    if (load<u64>(ent) == k) {
      const meta = load<u32>(ent, 8);
      if (((meta & M_EUI64) != 0) == (kind != 0)) return meta;
    }
  }
  // Bounded even on a corrupt table: one pass over every group at most.
  for (let probe: u32 = 0; probe <= mask >> 4; probe++) {
    const g = v128.load(ctrl + <usize>pos);
    let m = i8x16.bitmask(i8x16.eq(g, tag));
    const e = i8x16.bitmask(i8x16.eq(g, empty));
    // Entries sit before the first empty slot of their probe run, so later matches are strangers.
    if (e != 0) m &= (e & (0 - e)) - 1;
    while (m != 0) {
      const idx = (pos + ctz(m)) & mask;
      const ent = entries + <usize>idx * ENTRY;
      if (load<u64>(ent) == k) {
        const meta = load<u32>(ent, 8);
        if (((meta & M_EUI64) != 0) == (kind != 0)) return meta;
      }
      m &= m - 1;
    }
    if (e != 0) return MISS;
    pos = (pos + <u32>GROUP_WIDTH) & mask;
  }
  return MISS;
}

// @ts-ignore: decorator
@inline function setCtrl(ctrl: usize, mask: u32, idx: u32, v: u8): void {
  store<u8>(ctrl + <usize>idx, v);
  // The first group is mirrored past the end, so a 16-byte load near the end needs no wrap.
  if (idx < <u32>GROUP_WIDTH) store<u8>(ctrl + <usize>mask + 1 + <usize>idx, v);
}

function stagedKey(len: u32): u64 {
  return len == 8 ? load<u64>(staging) : (<u64>load<u16>(staging, 4) << 32) | <u64>load<u32>(staging);
}

function findIndex(bank: usize, k: u64, kind: u32): i32 {
  const h = mix(k);
  let pos = <u32>h & slotMask;
  const entries = bank + entriesOff;
  for (let i: u32 = 0; i < slots; i++) {
    const idx = (pos + i) & slotMask;
    if (load<u8>(bank + B_CTRL + <usize>idx) == CTRL_EMPTY) return -1;
    const ent = entries + <usize>idx * ENTRY;
    if (load<u64>(ent) == k && ((load<u32>(ent, 8) & M_EUI64) != 0) == (kind != 0)) return <i32>idx;
  }
  return -1;
}

/**
 * Inserts or updates the key staged in the staging buffer (6 or 8 bytes) with `meta` in `bank`.
 * Returns 1, or 0 when the length is wrong or the table is full. Only for a bank no reader uses.
 */
export function tablePut(bank: u32, len: u32, meta: u32): u32 {
  if (len != 6 && len != 8) return 0;
  const b = bankPtr(bank);
  const kind: u32 = len == 8 ? 1 : 0;
  const k = stagedKey(len);
  const m = kind != 0 ? meta | M_EUI64 : meta & ~M_EUI64;
  const found = findIndex(b, k, kind);
  if (found >= 0) {
    store<u32>(b + entriesOff + <usize>found * ENTRY, m, 8);
    return 1;
  }
  return insert(b + B_CTRL, b + entriesOff, slotMask, seed, k, m);
}

/**
 * Puts key `k` with meta `m` in the first empty slot of its run (the home slot, most often, at the loads the
 * table is sized for; else 16 control bytes at a time); returns 1, or 0 when the table is full.
 */
// @ts-ignore: decorator
@inline function insert(ctrl: usize, entries: usize, mask: u32, sd: u64, k: u64, m: u32): u32 {
  const h = mixWith(k, sd);
  let idx = <u32>h & mask;
  if (load<u8>(ctrl + <usize>idx) != CTRL_EMPTY) {
    let pos = idx;
    let found = false;
    for (let probe: u32 = 0; probe <= mask >> 4; probe++) {
      const e = i8x16.bitmask(i8x16.eq(v128.load(ctrl + <usize>pos), i8x16.splat(<i8>CTRL_EMPTY)));
      if (e != 0) {
        idx = (pos + ctz(e)) & mask;
        found = true;
        break;
      }
      pos = (pos + <u32>GROUP_WIDTH) & mask;
    }
    if (!found) return 0;
  }
  const ent = entries + <usize>idx * ENTRY;
  store<u64>(ent, k);
  store<u32>(ent, m, 8);
  setCtrl(ctrl, mask, idx, <u8>(h >> 57));
  return 1;
}

/**
 * Inserts `count` staged records (see STAGED_RECORD) into `bank`, which must not hold their keys yet
 * (a bank being rebuilt): no lookup first, one call for many keys. Returns how many were inserted;
 * fewer than `count` means the table is full (or `count` was above STAGED_RECORDS: then 0).
 */
export function tableLoad(bank: u32, count: u32): u32 {
  if (count > STAGED_RECORDS) return 0;
  const b = bankPtr(bank);
  // Loop-invariant values in locals: a mutable global is reloaded on every use.
  const ctrl = b + B_CTRL;
  const entries = b + entriesOff;
  const mask = load<u32>(base + H_SLOTS) - 1;
  const sd = (<u64>load<u32>(base + H_SEED_HI) << 32) | <u64>load<u32>(base + H_SEED_LO);
  const end = staging + <usize>count * STAGED_RECORD;
  for (let rec = staging; rec < end; rec += STAGED_RECORD) {
    const kind = load<u32>(rec, 8);
    const k = kind != 0 ? load<u64>(rec) : load<u64>(rec) & 0xffff_ffff_ffff;
    const meta = load<u32>(rec, 12);
    if (insert(ctrl, entries, mask, sd, k, kind != 0 ? meta | M_EUI64 : meta & ~M_EUI64) == 0) return <u32>((rec - staging) / STAGED_RECORD);
  }
  return count;
}

/** Returns how many records tableLoad takes per call. */
export function stagedRecords(): u32 { return STAGED_RECORDS; }

/** Removes the staged key from `bank` by shifting its run back (no tombstones). Returns 1 if it was there. */
export function tableDelete(bank: u32, len: u32): u32 {
  if (len != 6 && len != 8) return 0;
  const b = bankPtr(bank);
  const found = findIndex(b, stagedKey(len), len == 8 ? 1 : 0);
  if (found < 0) return 0;
  let hole = <u32>found;
  let j = hole;
  const entries = b + entriesOff;
  for (let n: u32 = 0; n < slots; n++) {
    j = (j + 1) & slotMask;
    if (load<u8>(b + B_CTRL + <usize>j) == CTRL_EMPTY) break;
    const ent = entries + <usize>j * ENTRY;
    const home = <u32>mix(load<u64>(ent)) & slotMask;
    // Move j into the hole unless its home lies cyclically in (hole, j]: then the hole does not break its run.
    const stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
    if (!stays) {
      memory.copy(entries + <usize>hole * ENTRY, ent, ENTRY);
      setCtrl(b + B_CTRL, slotMask, hole, load<u8>(b + B_CTRL + <usize>j));
      hole = j;
    }
  }
  setCtrl(b + B_CTRL, slotMask, hole, CTRL_EMPTY);
  return 1;
}

// ---- the rest of a bank ----------------------------------------------------------------

/** Sets the NIC flags word of `bank` (promiscuous, all-multicast, hash on, hash filter type). */
export function bankSetFlags(bank: u32, flags: u32): void {
  store<u32>(bankPtr(bank) + B_FLAGS, flags);
}

function setBit(at: usize, bit: u32, on: bool): void {
  const w = at + (<usize>(bit >> 5) << 2);
  const mask: u32 = 1 << (bit & 31);
  store<u32>(w, on ? load<u32>(w) | mask : load<u32>(w) & ~mask);
}

/** Sets one client's broadcast and promiscuous bits in `bank`; keeps the promiscuous count exact. */
export function bankSetClient(bank: u32, client: u32, broadcast: bool, promiscuous: bool): void {
  if (client >= clients) return;
  const b = bankPtr(bank);
  const was = (load<u32>(b + promiscOff + (<usize>(client >> 5) << 2)) >> (client & 31)) & 1;
  setBit(b + bcastOff, client, broadcast);
  setBit(b + promiscOff, client, promiscuous);
  const now: u32 = promiscuous ? 1 : 0;
  store<u32>(b + B_PROMISC_COUNT, load<u32>(b + B_PROMISC_COUNT) + now - was);
}

/** Sets or clears a client's membership of group index `g` in `bank`. */
export function bankSetMember(bank: u32, g: u32, client: u32, on: bool): void {
  if (g >= groups || client >= clients) return;
  setBit(bankPtr(bank) + groupsOff + <usize>g * <usize>words * 4, client, on);
}

/** Clears every member of group index `g` in `bank`. */
export function bankClearGroup(bank: u32, g: u32): void {
  if (g >= groups) return;
  memory.fill(bankPtr(bank) + groupsOff + <usize>g * <usize>words * 4, 0, <usize>words * 4);
}

/** Sets or clears bit `i` (0..4095) of the multicast hash in `bank`. */
export function bankSetHashBit(bank: u32, i: u32, on: bool): void {
  const b = bankPtr(bank) + hashOff;
  const at = b + <usize>((i & 4095) >> 3);
  const mask = <u8>(<u32>1 << (i & 7));
  store<u8>(at, on ? load<u8>(at) | mask : load<u8>(at) & ~mask);
}

/** Empties `bank`: no keys, groups, client bits or flags; a full rebuild starts from here. */
export function bankReset(bank: u32): void {
  resetBank(bankPtr(bank));
}

/** Makes `to` an exact copy of `from` (used to bring a stale bank up to date in one step). */
export function bankCopy(from: u32, to: u32): void {
  if (from == to) return;
  memory.copy(bankPtr(to), bankPtr(from), <usize>load32(H_BANK_BYTES));
}

/** Publishes `bank` to readers: every burst that starts afterwards uses it. */
export function publish(bank: u32): void {
  atomic.store<u32>(base + H_ACTIVE, bank & 1);
}

/** Returns how many lanes are inside a burst on `bank` right now; a writer waits for 0 before touching it. */
export function readersOn(bank: u32): u32 {
  let n: u32 = 0;
  for (let l: u32 = 0; l < lanes; l++) if (atomic.load<u32>(lanePtr(l) + L_STATE) == bank + 1) n++;
  return n;
}

function claimWord(lane: u32): usize {
  return base + H_CLAIMS + <usize>lane * 4;
}

/**
 * Claims lane `lane` for this instance's thread; returns its token (non-zero) on success, 0 if it is taken or out of range.
 * The lane's delivery bookkeeping starts empty: an owner that died mid-burst leaves nothing the next one would publish.
 */
export function claimLane(lane: u32): u32 {
  if (lane >= lanes || ownToken != 0) return 0;
  const at = claimWord(lane);
  const cur = atomic.load<u32>(at);
  if ((cur & CLAIM_OWNER) != 0) return 0;
  const token = ((cur & ~CLAIM_OWNER) + CLAIM_EPOCH) | (lane + 1);
  if (atomic.cmpxchg<u32>(at, cur, token) != cur) return 0;
  memory.fill(lanePtr(lane) + touchedOff, 0, <usize>words * 4);
  ownToken = token;
  return token;
}

/** Gives lane `lane` back, if this instance still owns it. */
export function releaseLane(lane: u32): void {
  if (lane >= lanes || ownToken == 0 || (ownToken & CLAIM_OWNER) != lane + 1) return;
  atomic.cmpxchg<u32>(claimWord(lane), ownToken, ownToken & ~CLAIM_OWNER);
  ownToken = 0;
}

/** Returns 1 while this instance owns lane `lane` (it was not reclaimed), else 0. */
export function ownsLane(lane: u32): u32 {
  return lane < lanes && ownToken != 0 && atomic.load<u32>(claimWord(lane)) == ownToken ? 1 : 0;
}

/** Returns lane `lane`'s reader state: 0 outside a burst, 1 + the bank while inside one. */
export function laneState(lane: u32): u32 {
  return lane < lanes ? atomic.load<u32>(lanePtr(lane) + L_STATE) : 0;
}

/**
 * Takes lane `lane` back from an owner that died (or stalled) inside a burst: frees its claim under a new epoch, so the old
 * owner's token never matches again, withdraws its bank announcement and its ring-producer role. Returns 1 if it was claimed.
 */
export function reclaimLane(lane: u32): u32 {
  if (lane >= lanes) return 0;
  const at = claimWord(lane);
  const cur = atomic.load<u32>(at);
  // A free lane has no owner to revoke, but a stale announcement of it is withdrawn all the same.
  const taken = (cur & CLAIM_OWNER) != 0;
  if (taken && atomic.cmpxchg<u32>(at, cur, (cur & ~CLAIM_OWNER) + CLAIM_EPOCH) != cur) return 0;
  if (taken) atomic.cmpxchg<u32>(base + H_DELIVERER, lane + 1, 0);
  atomic.store<u32>(lanePtr(lane) + L_STATE, 0);
  return taken ? 1 : 0;
}

/** Sets (1) or clears (0) the hold: while it is set every burst drops every frame, on the software path. */
export function setHold(on: u32): void {
  atomic.store<u32>(base + H_HOLD, on != 0 ? 1 : 0);
}

/** Returns the address of the count of ring resets done by consumers. */
export function ringResetsPtr(): usize { return base + H_RING_RESETS; }

/**
 * Gives client `client` an empty ring and zero counters (its id was reused). Only for an id no bank delivers to:
 * no producer touches the ring meanwhile. The indices are realigned, should a hostile writer have skewed them.
 */
export function clientReset(client: u32): void {
  if (client >= clients) return;
  const r = rings + <usize>client * (RING_DATA + <usize>ringBytes);
  const head = (atomic.load<u32>(r + RING_HEAD) + 7) & ~7;
  atomic.store<u32>(r + RING_TAIL, head);
  atomic.store<u32>(r + RING_HEAD, head);
  memory.fill(clientCounters + <usize>client * CLIENT_COUNTER_BYTES, 0, CLIENT_COUNTER_BYTES);
}

/** Makes `lane` the only producer into client rings; returns 1 if it now is, 0 if another lane is. */
export function claimDelivery(lane: u32): u32 {
  if (lane >= lanes) return 0;
  const prev = atomic.cmpxchg<u32>(base + H_DELIVERER, 0, lane + 1);
  return prev == 0 || prev == lane + 1 ? 1 : 0;
}

/** Stops `lane` being the ring producer. */
export function releaseDelivery(lane: u32): void {
  atomic.cmpxchg<u32>(base + H_DELIVERER, lane + 1, 0);
}

// ---- the reader protocol ---------------------------------------------------------------

/**
 * Enters a burst: announces the bank this lane reads, then checks it is still the published one.
 * A writer flips first and scans second, so either it sees the announcement and waits, or the
 * reader sees the flip and retries on the new bank. Readers never wait for a writer.
 */
function enter(lanePtrV: usize): usize {
  for (;;) {
    const c = atomic.load<u32>(base + H_ACTIVE);
    atomic.store<u32>(lanePtrV + L_STATE, c + 1);
    if (atomic.load<u32>(base + H_ACTIVE) == c) return c == 0 ? bank0 : bank1;
    bump(lanePtrV, X_READER_RETRIES);
  }
  return 0;
}

// @ts-ignore: decorator
@inline function leave(lanePtrV: usize): void {
  atomic.store<u32>(lanePtrV + L_STATE, 0);
}

// @ts-ignore: decorator
@inline function bump(lanePtrV: usize, counter: u32): void {
  const at = lanePtrV + L_COUNTERS + (<usize>(counter * STRIPES) << 3);
  store<u64>(at, load<u64>(at) + 1);
}

/** Counts a verdict in the copy picked by the frame index (see STRIPES). */
// @ts-ignore: decorator
@inline function bumpStriped(lanePtrV: usize, counter: u32, i: u32): void {
  const at = lanePtrV + L_COUNTERS + (<usize>(counter * STRIPES + (i & (STRIPES - 1))) << 3);
  store<u64>(at, load<u64>(at) + 1);
}

// ---- classification ----------------------------------------------------------------------

/** Verdict for a destination key (`k`: the bytes little-endian, `kind` 0 MAC-48 / 1 EUI-64), `a45` its last two bytes little-endian. */
// @ts-ignore: decorator
@inline function decide(bank: usize, k: u64, kind: u32, a45: u32, flags: u32, anyPromisc: bool): u32 {
  return decideIn(bank + B_CTRL, bank + entriesOff, slotMask, seed, bank + hashOff, k, kind, a45, flags, anyPromisc);
}

/** decide() with the table's parameters passed in. */
// @ts-ignore: decorator
@inline function decideIn(ctrl: usize, entries: usize, mask: u32, sd: u64, hash: usize, k: u64, kind: u32, a45: u32, flags: u32, anyPromisc: bool): u32 {
  if ((<u32>k & 1) != 0) {
    if (kind == 0 ? k == 0xffff_ffff_ffff : k == 0xffff_ffff_ffff_ffff) return R_BROADCAST | (V_NO_REF << V_REF_SHIFT);
    const meta = lookupIn(ctrl, entries, mask, sd, k, kind);
    if (meta != MISS) {
      const stage = (meta >> M_STAGE_SHIFT) & 3;
      const ref = (meta & M_INDEX) << V_REF_SHIFT;
      if (stage == STAGE_EXACT) return R_MC_EXACT | ref;
      return (stage == STAGE_HASH ? R_MC_HASH : R_MC_ALL) | V_SOFTWARE | ref;
    }
    let admitted = (flags & (F_ALLMULTI | F_PROMISC)) != 0;
    if (!admitted && (flags & F_HASH) != 0) {
      // Shifts 4, 3, 2, 0 for filter types 0..3, packed one nibble each.
      const shift = (<u32>0x0234 >> (((flags >> F_HASH_TYPE_SHIFT) & 3) << 2)) & 0xf;
      const i = (a45 >> shift) & 0xfff;
      admitted = (load<u8>(hash + <usize>(i >> 3)) & (<u8>1 << <u8>(i & 7))) != 0;
    }
    if (!admitted) return R_DROP_MC | (V_NO_REF << V_REF_SHIFT);
    return (anyPromisc ? R_PROMISC : R_DROP_MC) | V_SOFTWARE | (V_NO_REF << V_REF_SHIFT);
  }
  const meta = lookupIn(ctrl, entries, mask, sd, k, kind);
  if (meta != MISS) {
    const ref = (meta & M_INDEX) << V_REF_SHIFT;
    return (meta & M_HARDWARE) != 0 ? R_UNICAST | ref : R_SOFTWARE | V_SOFTWARE | ref;
  }
  if ((flags & F_PROMISC) == 0) return R_DROP_UNKNOWN | (V_NO_REF << V_REF_SHIFT);
  return (anyPromisc ? R_PROMISC : R_DROP_UNKNOWN) | V_SOFTWARE | (V_NO_REF << V_REF_SHIFT);
}

/** Verdict for the descriptor at `d` into a pool at `pool` of `poolLen` bytes: checks the window once, at the edge, then reads the destination. */
// @ts-ignore: decorator
@inline function classifyAt(ctrl: usize, entries: usize, mask: u32, sd: u64, hash: usize, d: usize, pool: usize, poolLen: u32, frameMax: u32, flags: u32, anyPromisc: bool): u32 {
  const off = load<u32>(d);
  const len = load<u32>(d, 4);
  if (len > poolLen || off > poolLen - len) return R_DROP_BAD_DESC | (V_NO_REF << V_REF_SHIFT);
  if (len < 14) return R_DROP_RUNT | (V_NO_REF << V_REF_SHIFT);
  if (len > frameMax) return R_DROP_OVERSIZE | (V_NO_REF << V_REF_SHIFT);
  const p = pool + <usize>off;
  const lo = load<u32>(p);
  const hi = load<u16>(p, 4);
  return decideIn(ctrl, entries, mask, sd, hash, (<u64>hi << 32) | <u64>lo, 0, <u32>hi, flags, anyPromisc);
}

/** Verdict for descriptor i of a lane. */
// @ts-ignore: decorator
@inline function classifyOne(bank: usize, lp: usize, i: u32, flags: u32, anyPromisc: bool): u32 {
  return classifyAt(bank + B_CTRL, bank + entriesOff, slotMask, seed, bank + hashOff, lp + descOff + (<usize>i << 3), lp + poolOff, poolBytes, maxFrame, flags, anyPromisc);
}

/**
 * Classifies `count` frames described in lane `lane` ({u32 offset, u32 length} into the lane's pool)
 * and writes one verdict word each. Returns the number classified (0 for a bad lane or count).
 */
export function classifyBurst(lane: u32, count: u32): u32 {
  if (lane >= lanes || count > burst || ownsLane(lane) == 0) return 0;
  const lp = lanePtr(lane);
  const bank = enter(lp);
  const verdicts = lp + verdictOff;
  if (held(lp, count)) return ownsLane(lane) != 0 ? count : 0;
  // The bank cannot change during a burst, so its flags are read once.
  const flags = load<u32>(bank + B_FLAGS);
  const anyPromisc = load<u32>(bank + B_PROMISC_COUNT) != 0;
  // Burst-invariant values come from the header into locals, which the loop keeps in registers; a
  // mutable global is reloaded on every use.
  const mask = load<u32>(base + H_SLOTS) - 1;
  const sd = (<u64>load<u32>(base + H_SEED_HI) << 32) | <u64>load<u32>(base + H_SEED_LO);
  const poolLen = load<u32>(base + H_POOL_BYTES);
  const frameMax = load<u32>(base + H_MAX_FRAME);
  const ctrl = bank + B_CTRL;
  const entries = ctrl + (entriesOff - B_CTRL);
  const hash = ctrl + (hashOff - B_CTRL);
  const pool = lp + poolOff;
  let d = lp + descOff;
  let out = verdicts;
  const end = verdicts + (<usize>count << 2);
  while (out < end) {
    store<u32>(out, classifyAt(ctrl, entries, mask, sd, hash, d, pool, poolLen, frameMax, flags, anyPromisc));
    d += 8;
    out += 4;
  }
  leave(lp);
  // A lane reclaimed during the burst may have read a bank being rewritten: its verdicts are void.
  if (ownsLane(lane) == 0) return 0;
  // Counting in a second pass keeps the classify loop free of read-modify-write traffic.
  for (let i: u32 = 0; i < count; i++) bumpStriped(lp, load<u32>(verdicts + (<usize>i << 2)) & 0x1f, i);
  return count;
}

/**
 * Classifies `count` keys of lane `lane` (8 bytes each; kind byte 0 = MAC-48 in the first 6 bytes,
 * 1 = EUI-64) and writes one verdict word each. Returns the number classified.
 */
export function classifyKeys(lane: u32, count: u32): u32 {
  if (lane >= lanes || count > burst || ownsLane(lane) == 0) return 0;
  const lp = lanePtr(lane);
  const bank = enter(lp);
  if (held(lp, count)) return ownsLane(lane) != 0 ? count : 0;
  for (let i: u32 = 0; i < count; i++) {
    const p = lp + keysOff + (<usize>i << 3);
    const kind: u32 = load<u8>(lp + kindsOff + <usize>i) != 0 ? 1 : 0;
    const k = kind != 0 ? load<u64>(p) : (<u64>load<u16>(p, 4) << 32) | <u64>load<u32>(p);
    const a45 = kind != 0 ? <u32>load<u16>(p, 6) : <u32>load<u16>(p, 4);
    const v = decide(bank, k, kind, a45, load<u32>(bank + B_FLAGS), load<u32>(bank + B_PROMISC_COUNT) != 0);
    store<u32>(lp + verdictOff + (<usize>i << 2), v);
    bumpStriped(lp, v & 0x1f, i);
  }
  leave(lp);
  return ownsLane(lane) != 0 ? count : 0;
}

// ---- delivery -----------------------------------------------------------------------------

/** Copies exactly `len` bytes; inline vector moves beat a memory.copy call for frame-sized copies. */
// @ts-ignore: decorator
@inline function copyFrame(dst: usize, src: usize, len: u32): void {
  let i: u32 = 0;
  for (; i + 16 <= len; i += 16) v128.store(dst + <usize>i, v128.load(src + <usize>i));
  for (; i + 8 <= len; i += 8) store<u64>(dst + <usize>i, load<u64>(src + <usize>i));
  for (; i < len; i++) store<u8>(dst + <usize>i, load<u8>(src + <usize>i));
}

/** Copies one frame into a client's ring; full or corrupt rings drop it and count for that client only. */
function enqueue(lp: usize, client: u32, src: usize, len: u32, verdict: u32, rule: u32, multicast: bool): void {
  const r = rings + <usize>client * (RING_DATA + <usize>ringBytes);
  const cc = clientCounters + <usize>client * CLIENT_COUNTER_BYTES;
  // Within a burst the producer advances a private copy of the head; one atomic store per ring publishes it at the end.
  const touchedWord = lp + touchedOff + (<usize>(client >> 5) << 2);
  const bit: u32 = 1 << (client & 31);
  const touched = (load<u32>(touchedWord) & bit) != 0;
  const head = touched ? load<u32>(r + RING_SHADOW) : atomic.load<u32>(r + RING_HEAD);
  const tail = atomic.load<u32>(r + RING_TAIL);
  const used = head - tail;
  // Indices are free-running byte counts on 8-byte records; anything else is a corrupt ring.
  if (used > ringBytes || ((head | tail) & 7) != 0) {
    bump(lp, X_RING_CORRUPT);
    store<u64>(cc + C_RING_DROPS, load<u64>(cc + C_RING_DROPS) + 1);
    return;
  }
  const need = (REC_HEADER + len + 7) & ~7;
  const pos = head & (ringBytes - 1);
  const toEnd = ringBytes - pos;
  const pad: u32 = toEnd < need ? toEnd : 0;
  if (ringBytes - used < need + pad) {
    bump(lp, X_RING_FULL);
    store<u64>(cc + C_RING_DROPS, load<u64>(cc + C_RING_DROPS) + 1);
    return;
  }
  const data = r + RING_DATA;
  let at = pos;
  if (pad != 0) {
    store<u32>(data + <usize>pos, REC_WRAP);
    at = 0;
  }
  store<u32>(data + <usize>at, len);
  store<u32>(data + <usize>at, verdict, 4);
  copyFrame(data + <usize>at + REC_HEADER, src, len);
  store<u32>(r + RING_SHADOW, head + pad + need);
  store<u32>(touchedWord, load<u32>(touchedWord) | bit);
  store<u64>(cc + C_FRAMES, load<u64>(cc + C_FRAMES) + 1);
  store<u64>(cc + C_BYTES, load<u64>(cc + C_BYTES) + <u64>len);
  if (rule == R_BROADCAST) store<u64>(cc + C_BROADCAST, load<u64>(cc + C_BROADCAST) + 1);
  else if (multicast) store<u64>(cc + C_MULTICAST, load<u64>(cc + C_MULTICAST) + 1);
  bump(lp, X_DELIVERIES);
}

/** Delivers to every client set in `set` (and `extra`, a second bitmap or 0), skipping `exclude` and `skip`. */
function fanOut(lp: usize, set: usize, extra: usize, exclude: u32, skip: u32, src: usize, len: u32, verdict: u32, rule: u32, multicast: bool): void {
  for (let w: u32 = 0; w < words; w++) {
    let bits = load<u32>(set + (<usize>w << 2));
    if (extra != 0) bits |= load<u32>(extra + (<usize>w << 2));
    while (bits != 0) {
      const c = (w << 5) + ctz(bits);
      if (c != exclude && c != skip && c < clients) enqueue(lp, c, src, len, verdict, rule, multicast);
      bits &= bits - 1;
    }
  }
}

/**
 * Classifies `count` frames of lane `lane` like classifyBurst, then copies each into the ring of
 * every receiving client except `exclude` (a client id; 0xffffffff for none). Wakes each ring that
 * got frames. Returns the number classified, or 0 when this lane is not the ring producer.
 */
export function rxBurst(lane: u32, count: u32, exclude: u32): u32 {
  if (lane >= lanes || count > burst || ownsLane(lane) == 0) return 0;
  if (atomic.load<u32>(base + H_DELIVERER) != lane + 1) return 0;
  const lp = lanePtr(lane);
  const bank = enter(lp);
  if (held(lp, count)) return ownsLane(lane) != 0 ? count : 0;
  const verdicts = lp + verdictOff;
  const promisc = bank + promiscOff;
  const anyPromisc = load<u32>(bank + B_PROMISC_COUNT) != 0;
  const flags = load<u32>(bank + B_FLAGS);
  for (let i: u32 = 0; i < count; i++) {
    const v = classifyOne(bank, lp, i, flags, anyPromisc);
    store<u32>(verdicts + (<usize>i << 2), v);
    const rule = v & 0x1f;
    bumpStriped(lp, rule, i);
    if (rule >= R_DROP_UNKNOWN) continue;
    const d = lp + descOff + (<usize>i << 3);
    const src = lp + poolOff + <usize>load<u32>(d);
    const len = load<u32>(d, 4);
    const multicast = (load<u8>(src) & 1) != 0;
    const ref = v >> V_REF_SHIFT;
    if (rule == R_BROADCAST) {
      fanOut(lp, bank + bcastOff, anyPromisc ? promisc : 0, exclude, V_NO_REF, src, len, v, rule, multicast);
    } else if (rule == R_MC_EXACT || rule == R_MC_HASH || rule == R_MC_ALL) {
      fanOut(lp, bank + groupsOff + <usize>ref * <usize>words * 4, anyPromisc ? promisc : 0, exclude, V_NO_REF, src, len, v, rule, multicast);
    } else if (rule == R_PROMISC) {
      fanOut(lp, promisc, 0, exclude, V_NO_REF, src, len, v, rule, multicast);
    } else {
      // Unicast to one client, plus any promiscuous ones (without delivering twice).
      if (ref != exclude && ref < clients) enqueue(lp, ref, src, len, v, rule, multicast);
      if (anyPromisc) fanOut(lp, promisc, 0, exclude, ref, src, len, v, rule, multicast);
    }
  }
  leave(lp);
  // Publish each touched ring's head, then ring its doorbell if a consumer sleeps on it. A lane reclaimed during the
  // burst publishes nothing: what it wrote past the heads stays unseen, and the rings belong to the next producer.
  const live = ownsLane(lane) != 0;
  const touched = lp + touchedOff;
  for (let w: u32 = 0; w < words; w++) {
    let bits = load<u32>(touched + (<usize>w << 2));
    if (bits == 0) continue;
    store<u32>(touched + (<usize>w << 2), 0);
    if (!live) continue;
    while (bits != 0) {
      const c = (w << 5) + ctz(bits);
      const r = rings + <usize>c * (RING_DATA + <usize>ringBytes);
      atomic.store<u32>(r + RING_HEAD, load<u32>(r + RING_SHADOW));
      // The head was published with a sequentially consistent store before this load: either the
      // sleeper sees the new head before it waits, or this load sees its flag and wakes it.
      if (atomic.load<u32>(r + RING_SLEEPERS) != 0) atomic.notify(r + RING_HEAD, 1);
      bits &= bits - 1;
    }
  }
  return live ? count : 0;
}

/**
 * While the writer holds the filter (it could not keep it in step with the NIC), a burst reads no bank: every frame is
 * dropped on the software path, counted, and nothing is delivered. Leaves the bank and returns true when held.
 */
function held(lp: usize, count: u32): bool {
  if (atomic.load<u32>(base + H_HOLD) == 0) return false;
  leave(lp);
  const verdicts = lp + verdictOff;
  for (let i: u32 = 0; i < count; i++) {
    const v = R_DROP_UNKNOWN | V_SOFTWARE | (V_NO_REF << V_REF_SHIFT);
    store<u32>(verdicts + (<usize>i << 2), v);
    bumpStriped(lp, R_DROP_UNKNOWN, i);
  }
  return true;
}


/** Returns the number of rules (the verdict ids 0..n-1), so the TypeScript side can check it agrees. */
export function ruleCount(): u32 { return RULE_COUNT; }
/** Returns the number of counters per lane (rules, then extras). */
export function laneCounterCount(): u32 { return LANE_COUNTERS; }
/** Returns the copies of each counter; a counter's value is the sum of its copies (u64 each, adjacent). */
export function counterStripes(): u32 { return STRIPES; }
/** Returns the address of `bank`'s broadcast bitmap (one bit per client). */
export function bankBroadcastPtr(bank: u32): usize { return bankPtr(bank) + bcastOff; }
/** Returns the address of `bank`'s promiscuous bitmap. */
export function bankPromiscPtr(bank: u32): usize { return bankPtr(bank) + promiscOff; }
/** Returns the address of group `g`'s member bitmap in `bank`, or 0 outside the group capacity. */
export function bankGroupPtr(bank: u32, g: u32): usize { return g < groups ? bankPtr(bank) + groupsOff + <usize>g * <usize>words * 4 : 0; }
/** Returns the ring data size in bytes (a power of two). */
export function ringDataBytes(): u32 { return ringBytes; }
/** Returns the bytes of each lane's frame pool. */
export function poolBytesPerLane(): u32 { return poolBytes; }
/** Returns the client capacity (ids 0..n-1). */
export function clientCapacity(): u32 { return clients; }
/** Returns the number of lanes. */
export function laneCount(): u32 { return lanes; }
