// Data plane (Wasm): the accept filter's table and banks. One shared array of slots (key, reference, rule byte) in aligned
// groups of 16, at most 7/8 full, and per bank a control byte per slot (Swiss-table tags, SIMD-probed a group at a time).
// A bank holds a key when its control byte for the key's slot is full. The writer changes only the idle bank's control
// bytes, and writes an entry only into a slot neither bank holds, so no reader of the published bank sees a write.

import {
  B_CTRL, B_FLAGS, B_PROMISC_COUNT, B_TOMBS, B_VLAN, CTRL_DELETED, CTRL_EMPTY, H_BANK_BYTES, KIND_EUI64, KIND_MAC48, M_HARDWARE, M_INDEX,
  M_STAGE_SHIFT, MISS, R_MC_ALL, R_MC_EXACT, R_MC_HASH, R_SOFTWARE, R_UNICAST, SR_KEY_LO, SR_KIND, SR_META, STAGE_EXACT, STAGE_HASH,
  STAGED_RECORD, STAGED_RECORDS, TAG_EUI64, V_REF_SHIFT, V_SOFTWARE,
} from './layout';
import {
  bankPtr, bcastOff, clients, groupCount, groups, groupsOff, hashOff, load32, promiscOff, refsOff, resetBank, rulesOff, seed, slots,
  staging, table, vlanBytes, words,
} from './plan';

const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

// @ts-ignore: decorator
@inline export function mixWith(k: u64, sd: u64): u64 {
  const h = (k ^ sd) * HASH_MUL;
  return h ^ (h >> 32);
}

/** The key's home group: the high half of the hash scaled to the group count (no power of two needed). */
// @ts-ignore: decorator
@inline export function homeGroup(h: u64, g: u32): u32 {
  return <u32>(((h >> 32) * <u64>g) >> 32);
}

/** The key's control tag: its kind in bit 6, so a MAC-48 probe never matches an EUI-64 entry, and 6 low hash bits. */
// @ts-ignore: decorator
@inline export function tagOf(h: u64, kind: u32): u8 {
  return <u8>((<u32>h & 0x3f) | (kind != 0 ? <u32>TAG_EUI64 : 0));
}

/**
 * Returns the verdict word of key `k` of kind `kind` (0 MAC-48, 1 EUI-64) in the bank whose control bytes are at `ctrl`, or
 * MISS. A hit is a tag match, a key compare and the two loads that make the precomputed verdict.
 */
// @ts-ignore: decorator
@inline export function lookupIn(ctrl: usize, keys: usize, refs: usize, rules: usize, g: u32, sd: u64, k: u64, kind: u32): u32 {
  const h = mixWith(k, sd);
  let grp = homeGroup(h, g);
  const tag = i8x16.splat(<i8>tagOf(h, kind));
  // Bounded even on a corrupt table: one pass over every group at most.
  for (let probe: u32 = 0; probe < g; probe++) {
    const at = <usize>grp << 4;
    const c = v128.load(ctrl + at);
    let m = i8x16.bitmask(i8x16.eq(c, tag));
    while (m != 0) {
      const idx = at + <usize>ctz(m);
      if (load<u64>(keys + (idx << 3)) == k) {
        return <u32>load<u8>(rules + idx) | (<u32>load<u16>(refs + (idx << 1)) << V_REF_SHIFT);
      }
      m &= m - 1;
    }
    if (i8x16.bitmask(i8x16.eq(c, i8x16.splat(<i8>CTRL_EMPTY))) != 0) return MISS;
    grp = grp + 1 == g ? 0 : grp + 1;
  }
  return MISS;
}

/** Returns the verdict word a key with meta word `meta` decides: computed once, when the key is written. */
function verdictOf(meta: u32, multicast: bool): u32 {
  const ref = (meta & M_INDEX) << V_REF_SHIFT;
  if (multicast) {
    const stage = (meta >> M_STAGE_SHIFT) & 3;
    if (stage == STAGE_EXACT) return R_MC_EXACT | ref;
    return (stage == STAGE_HASH ? R_MC_HASH : R_MC_ALL) | V_SOFTWARE | ref;
  }
  return (meta & M_HARDWARE) != 0 ? R_UNICAST | ref : R_SOFTWARE | V_SOFTWARE | ref;
}

// @ts-ignore: decorator
@inline function isFull(c: u8): bool {
  return c < CTRL_EMPTY;
}

/** Returns the slot holding key `k` (hash `h`, tag `tag`) in the bank whose control bytes are at `ctrl`, or -1. */
function findSlot(ctrl: usize, k: u64, h: u64, tag: u8): i32 {
  let grp = homeGroup(h, groupCount);
  for (let probe: u32 = 0; probe < groupCount; probe++) {
    const at = <usize>grp << 4;
    const c = v128.load(ctrl + at);
    let m = i8x16.bitmask(i8x16.eq(c, i8x16.splat(<i8>tag)));
    while (m != 0) {
      const idx = at + <usize>ctz(m);
      if (load<u64>(table + (idx << 3)) == k) return <i32>idx;
      m &= m - 1;
    }
    if (i8x16.bitmask(i8x16.eq(c, i8x16.splat(<i8>CTRL_EMPTY))) != 0) return -1;
    grp = grp + 1 == groupCount ? 0 : grp + 1;
  }
  return -1;
}

/** Returns the verdict word stored in slot `idx`. */
// @ts-ignore: decorator
@inline function slotVerdict(idx: usize): u32 {
  return <u32>load<u8>(table + rulesOff + idx) | (<u32>load<u16>(table + refsOff + (idx << 1)) << V_REF_SHIFT);
}

// @ts-ignore: decorator
@inline function writeSlot(idx: usize, k: u64, v: u32): void {
  store<u64>(table + (idx << 3), k);
  store<u16>(table + refsOff + (idx << 1), <u16>(v >> V_REF_SHIFT));
  store<u8>(table + rulesOff + idx, <u8>v);
}

/** Marks full slot `idx` of bank `b` deleted: a probe goes on past it, and the slot is free once no bank holds it. */
function dropSlot(b: usize, idx: usize): void {
  store<u8>(b + B_CTRL + idx, CTRL_DELETED);
  store<u32>(b + B_TOMBS, load<u32>(b + B_TOMBS) + 1);
}

/** Turns the empty control bytes of group `grp` of bank `b` into deleted ones: probes then go on past the group. */
function passGroup(b: usize, grp: u32): void {
  const at = b + B_CTRL + (<usize>grp << 4);
  let e = i8x16.bitmask(i8x16.eq(v128.load(at), i8x16.splat(<i8>CTRL_EMPTY)));
  if (e == 0) return;
  store<u32>(b + B_TOMBS, load<u32>(b + B_TOMBS) + popcnt(e));
  while (e != 0) {
    store<u8>(at + <usize>ctz(e), CTRL_DELETED);
    e &= e - 1;
  }
}

/** Makes slot `idx` (group `to`) of bank `b` reachable from home group `from`: no group on the way may stop a probe. */
function linkSlot(b: usize, from: u32, to: u32, idx: usize, tag: u8): void {
  for (let grp = from; grp != to; grp = grp + 1 == groupCount ? 0 : grp + 1) passGroup(b, grp);
  store<u8>(b + B_CTRL + idx, tag);
}

/**
 * Puts key `k` with verdict `v` in bank `b` (`o` is the other bank, which readers may be using):
 * - held by `b` with this verdict: nothing to do;
 * - held by `o` with this verdict (the other bank's copy of the same change): `b` points at the same slot;
 * - held by `b` in a slot `o` does not hold: the verdict is rewritten in place;
 * - else a new slot that neither bank holds, the first on the key's probe path.
 * Returns 1, or 0 when no slot is free.
 */
function put(b: usize, o: usize, k: u64, kind: u32, v: u32): u32 {
  // Broadcast is decided before the table (its verdict is fixed), so it is never stored.
  if (kind == KIND_MAC48 ? k == 0xffff_ffff_ffff : k == 0xffff_ffff_ffff_ffff) return 1;
  const h = mixWith(k, seed);
  const tag = tagOf(h, kind);
  const mine = findSlot(b + B_CTRL, k, h, tag);
  if (mine >= 0 && slotVerdict(<usize>mine) == v) return 1;
  const theirs = findSlot(o + B_CTRL, k, h, tag);
  if (theirs >= 0 && theirs != mine && slotVerdict(<usize>theirs) == v) {
    if (mine >= 0) dropSlot(b, <usize>mine);
    linkSlot(b, homeGroup(h, groupCount), <u32>theirs >> 4, <usize>theirs, tag);
    return 1;
  }
  if (mine >= 0) {
    if (!isFull(load<u8>(o + B_CTRL + <usize>mine))) {
      writeSlot(<usize>mine, k, v);
      return 1;
    }
    dropSlot(b, <usize>mine);
  }
  return allocate(b, o, k, h, tag, v);
}

/** Writes key `k` with verdict `v` into the first slot on its probe path that neither bank holds, for bank `b`; 0 when none. */
function allocate(b: usize, o: usize, k: u64, h: u64, tag: u8, v: u32): u32 {
  let grp = homeGroup(h, groupCount);
  for (let probe: u32 = 0; probe < groupCount; probe++) {
    const at = <usize>grp << 4;
    // Bit set where the control byte is not full (EMPTY or DELETED have the high bit).
    const freeMine = i8x16.bitmask(v128.load(b + B_CTRL + at));
    const freeTheirs = i8x16.bitmask(v128.load(o + B_CTRL + at));
    const usable = freeMine & freeTheirs;
    if (usable != 0) {
      const idx = at + <usize>ctz(usable);
      writeSlot(idx, k, v);
      store<u8>(b + B_CTRL + idx, tag);
      return 1;
    }
    // Every free slot here is the other bank's: the key goes further, so this group must not end its probe.
    passGroup(b, grp);
    grp = grp + 1 == groupCount ? 0 : grp + 1;
  }
  return 0;
}

/** put() for a key bank `b` does not hold yet (a bank being rebuilt): one probe fewer. */
function putNew(b: usize, o: usize, k: u64, kind: u32, v: u32): u32 {
  if (kind == KIND_MAC48 ? k == 0xffff_ffff_ffff : k == 0xffff_ffff_ffff_ffff) return 1;
  const h = mixWith(k, seed);
  const tag = tagOf(h, kind);
  const theirs = findSlot(o + B_CTRL, k, h, tag);
  if (theirs >= 0 && slotVerdict(<usize>theirs) == v && !isFull(load<u8>(b + B_CTRL + <usize>theirs))) {
    linkSlot(b, homeGroup(h, groupCount), <u32>theirs >> 4, <usize>theirs, tag);
    return 1;
  }
  return allocate(b, o, k, h, tag, v);
}

function stagedKey(len: u32): u64 {
  return len == 8 ? load<u64>(staging) : (<u64>load<u16>(staging, 4) << 32) | <u64>load<u32>(staging);
}

/**
 * Inserts or updates the key staged in the staging buffer (6 or 8 bytes) with `meta` in `bank`.
 * Returns 1, or 0 when the length is wrong or the table is full. Only for a bank no reader uses.
 */
export function tablePut(bank: u32, len: u32, meta: u32): u32 {
  if (len != 6 && len != 8) return 0;
  const k = stagedKey(len);
  return put(bankPtr(bank), bankPtr(bank == 0 ? 1 : 0), k, len == 8 ? KIND_EUI64 : KIND_MAC48, verdictOf(meta, (<u32>k & 1) != 0));
}

/**
 * Puts `count` staged records (see STAGED_RECORD) into `bank`, which must not hold their keys yet (a bank being rebuilt): one
 * call for many keys. Returns how many were put; fewer than `count` means the table is full (or `count` was above
 * STAGED_RECORDS: then 0).
 */
export function tableLoad(bank: u32, count: u32): u32 {
  if (count > STAGED_RECORDS) return 0;
  const b = bankPtr(bank);
  const o = bankPtr(bank == 0 ? 1 : 0);
  // Loop-invariant values in locals: a mutable global is reloaded on every use.
  const g = groupCount;
  const sd = seed;
  const keys = table;
  const refs = table + refsOff;
  const rules = table + rulesOff;
  const end = staging + <usize>count * STAGED_RECORD;
  for (let rec = staging; rec < end; rec += STAGED_RECORD) {
    const kind = load<u32>(rec, SR_KIND) != 0 ? KIND_EUI64 : KIND_MAC48;
    const k = kind != 0 ? load<u64>(rec, SR_KEY_LO) : load<u64>(rec, SR_KEY_LO) & 0xffff_ffff_ffff;
    const v = verdictOf(load<u32>(rec, SR_META), (<u32>k & 1) != 0);
    // Most keys sit in their home group in the other bank with the same verdict: the rebuilt bank points at that slot.
    const h = mixWith(k, sd);
    const tag = tagOf(h, kind);
    const at = <usize>homeGroup(h, g) << 4;
    let m = i8x16.bitmask(i8x16.eq(v128.load(o + B_CTRL + at), i8x16.splat(<i8>tag)));
    let done = false;
    while (m != 0) {
      const idx = at + <usize>ctz(m);
      if (load<u64>(keys + (idx << 3)) == k) {
        const same = (<u32>load<u8>(rules + idx) | (<u32>load<u16>(refs + (idx << 1)) << V_REF_SHIFT)) == v;
        if (same && !isFull(load<u8>(b + B_CTRL + idx))) {
          store<u8>(b + B_CTRL + idx, tag);
          done = true;
        }
        break;
      }
      m &= m - 1;
    }
    if (!done && putNew(b, o, k, kind, v) == 0) return <u32>((rec - staging) / STAGED_RECORD);
  }
  return count;
}

/** Returns how many records tableLoad takes per call. */
export function stagedRecords(): u32 { return STAGED_RECORDS; }

/** Removes the staged key from `bank` (its control byte becomes DELETED). Returns 1 if it was there. */
export function tableDelete(bank: u32, len: u32): u32 {
  if (len != 6 && len != 8) return 0;
  const k = stagedKey(len);
  const h = mixWith(k, seed);
  const b = bankPtr(bank);
  const found = findSlot(b + B_CTRL, k, h, tagOf(h, len == 8 ? KIND_EUI64 : KIND_MAC48));
  if (found < 0) return 0;
  dropSlot(b, <usize>found);
  return 1;
}

/** Returns the deleted control bytes of `bank` since it was last tidied. */
export function tableTombs(bank: u32): u32 {
  return load<u32>(bankPtr(bank) + B_TOMBS);
}

/**
 * Recomputes `bank`'s free control bytes from the keys it holds: EMPTY, except in groups some key's probe path crosses
 * (DELETED there). Deleted slots pile up with changes and lengthen misses; this clears them. Only for a bank no reader uses.
 */
export function tableTidy(bank: u32): void {
  const b = bankPtr(bank);
  const ctrl = b + B_CTRL;
  const n = <usize>slots;
  for (let i: usize = 0; i < n; i++) if (!isFull(load<u8>(ctrl + i))) store<u8>(ctrl + i, CTRL_EMPTY);
  store<u32>(b + B_TOMBS, 0);
  for (let i: usize = 0; i < n; i++) {
    if (!isFull(load<u8>(ctrl + i))) continue;
    const home = homeGroup(mixWith(load<u64>(table + (i << 3)), seed), groupCount);
    const at = <u32>(i >> 4);
    for (let grp = home; grp != at; grp = grp + 1 == groupCount ? 0 : grp + 1) passGroup(b, grp);
  }
}

// ---- the rest of a bank ----------------------------------------------------------------

/** Sets the NIC flags word of `bank` (promiscuous, all-multicast, hash on, hash filter type). */
export function bankSetFlags(bank: u32, flags: u32): void {
  store<u32>(bankPtr(bank) + B_FLAGS, flags);
}

/**
 * Sets `bank`'s VLAN word (see B_VLAN); the map and slot bitmaps are written through bankVlanPtr first. Returns 0, leaving
 * VLAN filtering off, when the memory has no VLAN region.
 */
export function bankSetVlan(bank: u32, word: u32): u32 {
  if (vlanBytes == 0) return 0;
  store<u32>(bankPtr(bank) + B_VLAN, word);
  return 1;
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

/** Makes `to` an exact copy of `from` (used to bring a stale bank up to date in one step); the entries are shared already. */
export function bankCopy(from: u32, to: u32): void {
  if ((from ^ to) != 1) return;
  memory.copy(bankPtr(to), bankPtr(from), <usize>load32(H_BANK_BYTES));
}
