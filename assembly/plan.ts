// Data plane (Wasm): the memory plan. Lays the regions out (plan) or reads another instance's layout (attach), caches
// it per instance, and answers the TypeScript side's questions about addresses and sizes.

import {
  align, B_CTRL, CLIENT_COUNTER_BYTES, CTRL_EMPTY, GROUP_WIDTH, H_TABLE, H_TABLE_BYTES, KEY_BYTES, LOAD_DEN, LOAD_NUM, REF_BYTES,
  RULE_BYTES, H_ACTIVE, H_BANK0, H_BANK1, H_BANK_BYTES, H_BURST, H_CLIENT_COUNTERS,
  H_CLIENTS, H_GROUPS, H_LANE0, H_LANE_BYTES, H_LANES, H_MAGIC, H_MAX_FRAME, H_POOL_BYTES, H_RING_BYTES, H_RING_RESETS, H_RINGS, H_SEED_HI,
  H_SEED_LO, H_SLOTS, H_STAGING, H_TOTAL, H_VERSION, H_VLAN_BYTES, H_WORDS, HASH_BYTES, HEADER_BYTES, L_COUNTERS, LANE_COUNTERS,
  LAYOUT_VERSION, LINE,
  MAGIC, MAX_LANES, POOL_LINE, POOL_LINE_SHIFT, RING_DATA, RULE_COUNT, SLOT_BYTES, STAGING_BYTES, STRIPES, VLAN_IDS, VLAN_SLOTS,
} from './layout';

// Cached from the header by plan() or attach(); every instance (thread) has its own copy.
export let base: usize = 0;
export let clients: u32 = 0;
export let words: u32 = 0;
export let slots: u32 = 0;
/** Groups of GROUP_WIDTH slots in the table. */
export let groupCount: u32 = 0;
export let groups: u32 = 0;
export let poolBytes: u32 = 0;
export let burst: u32 = 0;
export let ringBytes: u32 = 0;
export let maxFrame: u32 = 0;
export let lanes: u32 = 0;
export let seed: u64 = 0;
export let bank0: usize = 0;
export let bank1: usize = 0;
let laneBase: usize = 0;
let laneBytes: usize = 0;
export let clientCounters: usize = 0;
export let rings: usize = 0;
export let staging: usize = 0;
// The shared table: keys, then references, then rule bytes (one per slot each).
export let table: usize = 0;
export let tableBytes: usize = 0;
export let refsOff: usize = 0;
export let rulesOff: usize = 0;
// Bank-relative offsets, derived from the sizes above.
export let hashOff: usize = 0;
export let bcastOff: usize = 0;
export let promiscOff: usize = 0;
export let groupsOff: usize = 0;
/**
 * The VLAN map (a byte per VID) and the client bitmaps of the VLAN slots, after the group bitmaps; then, per slot, the
 * clients that send the slot's VLAN untagged (access ports, and trunks whose native VLAN it is).
 */
export let vlanMapOff: usize = 0;
export let vlanBitsOff: usize = 0;
export let vlanUntagOff: usize = 0;
/** Bytes of the VLAN region of each bank: 0 when the memory was planned without VLANs. */
export let vlanBytes: usize = 0;
// Lane-relative offsets.
export let descOff: usize = 0;
export let verdictOff: usize = 0;
export let keysOff: usize = 0;
export let kindsOff: usize = 0;
export let touchedOff: usize = 0;
export let poolOff: usize = 0;
/** Pin counts (u32 per pool line) after the pool, then each line's distance to its frame's first line; their number. */
export let pinsOff: usize = 0;
export let backOff: usize = 0;
export let poolLines: u32 = 0;

function derive(): void {
  const n = <usize>slots;
  refsOff = n * KEY_BYTES;
  rulesOff = refsOff + n * REF_BYTES;
  tableBytes = align(rulesOff + n * RULE_BYTES, LINE);
  hashOff = align(B_CTRL + n, LINE);
  bcastOff = hashOff + HASH_BYTES;
  promiscOff = bcastOff + <usize>words * 4;
  groupsOff = promiscOff + <usize>words * 4;
  vlanMapOff = align(groupsOff + <usize>groups * <usize>words * 4, LINE);
  vlanBitsOff = vlanMapOff + VLAN_IDS;
  vlanUntagOff = vlanBitsOff + <usize>VLAN_SLOTS * <usize>words * 4;
  descOff = align(L_COUNTERS + <usize>(LANE_COUNTERS * STRIPES) * 8, LINE);
  verdictOff = descOff + <usize>burst * 8;
  keysOff = align(verdictOff + <usize>burst * 4, 16);
  kindsOff = keysOff + <usize>burst * 8;
  touchedOff = align(kindsOff + <usize>burst, 4);
  poolOff = align(touchedOff + <usize>words * 4, LINE);
  poolLines = (poolBytes + POOL_LINE - 1) >> POOL_LINE_SHIFT;
  pinsOff = align(poolOff + <usize>poolBytes, LINE);
  backOff = pinsOff + <usize>poolLines * 4;
  groupCount = slots / <u32>GROUP_WIDTH;
}

/** Reads header field `field` (a byte offset, see H_*). */
export function load32(field: usize): u32 {
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
  table = <usize>load32(H_TABLE);
  vlanBytes = <usize>load32(H_VLAN_BYTES);
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
  maxClients: u32, maxEntries: u32, maxGroups: u32, pool: u32, burstMax: u32, ring: u32, frameMax: u32, laneCount: u32,
  seedLo: u32, seedHi: u32, vlanRoom: u32,
): usize {
  if (maxClients < 1 || maxClients > 0xffff || maxGroups > 0xffff || laneCount < 1 || laneCount > MAX_LANES) return 0;
  if (burstMax < 1 || burstMax > 1 << 20 || frameMax < 14 || frameMax > 1 << 18 || pool < frameMax || pool > 1 << 30) return 0;
  if (maxEntries < 1 || maxEntries > 1 << 22) return 0;
  const ringData = nextPow2(ring < frameMax + 16 ? frameMax + 16 : ring);
  base = align(__heap_base, LINE);
  clients = maxClients;
  words = (maxClients + 31) >> 5;
  // At most 7/8 full at capacity, in whole groups: the table's size follows the keys, not the next power of two.
  const keys = <u64>maxEntries + <u64>maxGroups;
  const minSlots = (keys * <u64>LOAD_DEN + <u64>LOAD_NUM - 1) / <u64>LOAD_NUM;
  const groupsNeeded = (minSlots + <u64>GROUP_WIDTH - 1) / <u64>GROUP_WIDTH;
  slots = <u32>(groupsNeeded > 0 ? groupsNeeded : 1) * <u32>GROUP_WIDTH;
  groups = maxGroups;
  poolBytes = pool;
  burst = burstMax;
  ringBytes = ringData;
  maxFrame = frameMax;
  lanes = laneCount;
  vlanBytes = vlanRoom != 0 ? VLAN_IDS + 2 * <usize>VLAN_SLOTS * <usize>words * 4 : 0;
  derive();
  // Sizes multiply up past 2^32 (16 lanes of 300 MB pools): the layout is summed in 64 bits, and refused above the limit.
  const bankBytes64 = (<u64>vlanMapOff + <u64>vlanBytes + <u64>LINE - 1) & ~(<u64>LINE - 1);
  const laneSize64 = (<u64>backOff + <u64>poolLines * 4 + <u64>LINE - 1) & ~(<u64>LINE - 1);
  const countersEnd =
    <u64>base + <u64>HEADER_BYTES + <u64>tableBytes + 2 * bankBytes64 + laneSize64 * <u64>laneCount +
    <u64>maxClients * <u64>CLIENT_COUNTER_BYTES;
  const total64 =
    ((countersEnd + <u64>LINE - 1) & ~(<u64>LINE - 1)) + <u64>maxClients * (<u64>RING_DATA + <u64>ringData) + <u64>STAGING_BYTES;
  if (total64 > <u64>0xffff_0000) return 0;
  const bankBytes = <usize>bankBytes64;
  const laneSize = <usize>laneSize64;
  let at = base + HEADER_BYTES;
  table = at; at += tableBytes;
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
    store<u32>(base + H_TABLE, <u32>table);
    store<u32>(base + H_TABLE_BYTES, <u32>tableBytes);
    store<u32>(base + H_VLAN_BYTES, <u32>vlanBytes);
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

/** Empties the bank at `bank`: no keys, flags, hash bits or bitmaps. */
export function resetBank(bank: usize): void {
  memory.fill(bank, 0, B_CTRL);
  memory.fill(bank + B_CTRL, CTRL_EMPTY, <usize>slots);
  // The shared entries are not the bank's: a bank only forgets which slots it holds.
  memory.fill(bank + hashOff, 0, vlanMapOff + vlanBytes - hashOff);
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
/** Returns the address of lane `lane`'s pin counts (one u32 per POOL_LINE bytes of its pool). */
export function pinsPtr(lane: u32): usize { return lanePtr(lane) + pinsOff; }
/** Returns the number of pool lines (and pin counts) of each lane. */
export function poolLineCount(): u32 { return poolLines; }
/** Returns the descriptor slots of each ring (a power of two). */
export function ringSlots(): u32 { return ringBytes / SLOT_BYTES; }
export function clientCountersPtr(): usize { return clientCounters; }
export function ringPtr(client: u32): usize { return client < clients ? rings + <usize>client * (RING_DATA + <usize>ringBytes) : 0; }
export function stagingPtr(): usize { return staging; }
export function activeBank(): u32 { return atomic.load<u32>(base + H_ACTIVE); }
/** Returns the bytes of one bank (control bytes over the shared table, flags, hash filter, client and group bitmaps). */
export function bankBytes(): u32 { return load32(H_BANK_BYTES); }
/**
 * Returns the bytes of the whole accept filter: the shared table and both banks, everything the reader-safety scheme needs.
 */
export function filterBytes(): u32 { return load32(H_TABLE_BYTES) + 2 * load32(H_BANK_BYTES); }
/** Returns the slots of the shared table (whole groups). */
export function tableSlots(): u32 { return load32(H_SLOTS); }

/** Returns the address of the count of ring resets done by consumers. */
export function ringResetsPtr(): usize { return base + H_RING_RESETS; }

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
/**
 * Returns the address of `bank`'s VLAN map (a byte per VID), followed by the client bitmaps of its VLAN slots (members,
 * then those that get the VLAN untagged); 0 when the memory was planned without VLANs.
 */
export function bankVlanPtr(bank: u32): usize { return vlanBytes != 0 ? bankPtr(bank) + vlanMapOff : 0; }
/** Returns the ring data size in bytes (a power of two). */
export function ringDataBytes(): u32 { return ringBytes; }
/** Returns the bytes of each lane's frame pool. */
export function poolBytesPerLane(): u32 { return poolBytes; }
/** Returns the client capacity (ids 0..n-1). */
export function clientCapacity(): u32 { return clients; }
/** Returns the number of lanes. */
export function laneCount(): u32 { return lanes; }
