// Data plane (Wasm): the accept filter's banks. A SIMD-probed hash table of MAC keys (Swiss-table control bytes,
// linear runs without tombstones) and the rest of a bank: flags, hash filter, client and group bitmaps.

import {
  B_CTRL, B_FLAGS, B_PROMISC_COUNT, CTRL_EMPTY, ENTRY, GROUP_WIDTH, H_BANK_BYTES, H_SEED_HI, H_SEED_LO, H_SLOTS, KIND_EUI64, KIND_MAC48,
  M_EUI64, MISS, SR_KEY_LO, SR_KIND, SR_META, STAGED_RECORD, STAGED_RECORDS,
} from './layout';
import {
  bankPtr, base, bcastOff, clients, entriesOff, groups, groupsOff, hashOff, load32, promiscOff, resetBank, seed, slotMask, slots, staging,
  words,
} from './plan';

const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

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
@inline export function lookupIn(ctrl: usize, entries: usize, mask: u32, sd: u64, k: u64, kind: u32): u32 {
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
  const kind: u32 = len == 8 ? KIND_EUI64 : KIND_MAC48;
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
    const kind = load<u32>(rec, SR_KIND);
    const k = kind != 0 ? load<u64>(rec, SR_KEY_LO) : load<u64>(rec, SR_KEY_LO) & 0xffff_ffff_ffff;
    const meta = load<u32>(rec, SR_META);
    const stored = kind != 0 ? meta | M_EUI64 : meta & ~M_EUI64;
    if (insert(ctrl, entries, mask, sd, k, stored) == 0) return <u32>((rec - staging) / STAGED_RECORD);
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
