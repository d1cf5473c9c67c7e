// Device filters (Wasm): the receive address filters of e1000, virtio-net, ne2k and ixgbe over one small ordinary memory
// per device. The TypeScript profiles turn register writes into the state below; this file only classifies bursts.
// It is its own module (assembly/device.ts, built next to the data plane), so it shares no layout with the slot filter.

// ---- Layout (byte offsets in the imported memory); src/device/engine.ts reads every one through the exports below. ----
@inline const S_KIND: usize = 0;
@inline const S_FLAGS: usize = 4;
@inline const S_MO: usize = 8;
@inline const S_VET: usize = 12;
@inline const S_PRIMARY_LO: usize = 16;
@inline const S_PRIMARY_HI: usize = 20;
@inline const S_MIN_LEN: usize = 24;
/** Longest frame the device stores (e1000: 1518 without RCTL.LPE, 16380 with it, no limit with SBP). */
@inline const S_MAX_LEN: usize = 28;
@inline const S_MAR: usize = 32;
/** One u64 per reason. */
@inline const COUNTERS: usize = 64;
@inline const MTA: usize = 256;
@inline const UTA: usize = 768;
@inline const VFTA: usize = 1280;
@inline const CRC_TABLE: usize = 1792;
@inline const TABLE: usize = 3072;
@inline const TABLE_SLOTS: u32 = 512;
@inline const DESC: usize = 11264;
@inline const VERDICTS: usize = 13312;
@inline const POOL: usize = 16384;
@inline const BURST: u32 = 256;
@inline const POOL_BYTES: u32 = 524288;

// Device kinds.
@inline const K_E1000: u32 = 0;
@inline const K_VIRTIO: u32 = 1;
@inline const K_NE2K: u32 = 2;
@inline const K_IXGBE: u32 = 3;

// State flags, one meaning per bit whatever the device (each profile maps its registers onto them).
@inline const F_ENABLED: u32 = 1 << 0;
@inline const F_UPE: u32 = 1 << 1;
@inline const F_MPE: u32 = 1 << 2;
@inline const F_BAM: u32 = 1 << 3;
@inline const F_VFE: u32 = 1 << 4;
@inline const F_CFIEN: u32 = 1 << 5;
@inline const F_CFI: u32 = 1 << 6;
@inline const F_MFE: u32 = 1 << 7;
@inline const F_UTA: u32 = 1 << 8;
@inline const F_PROMISC: u32 = 1 << 9;
@inline const F_NOMULTI: u32 = 1 << 10;
@inline const F_NOUNI: u32 = 1 << 11;
@inline const F_UNI_OVERFLOW: u32 = 1 << 12;
@inline const F_MULTI_OVERFLOW: u32 = 1 << 13;
@inline const F_MONITOR: u32 = 1 << 14;
@inline const F_PRIMARY: u32 = 1 << 15;

// Reasons, in the order of DEVICE_REASONS (src/device/reasons.ts). Ids below D_FIRST_DROP accept.
@inline const D_EXACT: u32 = 0;
@inline const D_PRIMARY: u32 = 1;
@inline const D_BROADCAST: u32 = 2;
@inline const D_MC_HASH: u32 = 3;
@inline const D_UC_HASH: u32 = 4;
@inline const D_MC_PROMISC: u32 = 5;
@inline const D_UC_PROMISC: u32 = 6;
@inline const D_PROMISC: u32 = 7;
@inline const D_MC_OVERFLOW: u32 = 8;
@inline const D_UC_OVERFLOW: u32 = 9;
@inline const D_NO_MATCH: u32 = 10;
@inline const D_VLAN: u32 = 11;
@inline const D_CFI: u32 = 12;
@inline const D_DROP_BROADCAST: u32 = 13;
@inline const D_NOMULTI: u32 = 14;
@inline const D_NOUNI: u32 = 15;
@inline const D_DISABLED: u32 = 16;
@inline const D_MONITOR: u32 = 17;
@inline const D_RUNT: u32 = 18;
@inline const D_BAD_DESC: u32 = 19;
@inline const D_OVERSIZE: u32 = 20;
@inline const REASONS: u32 = 21;
/** Verdict word: reason in bits 0..7, entry index (RAR or table position) in bits 16..31, 0xffff for none. */
@inline const NO_REF: u32 = 0xffff_0000;
@inline const MISS: u32 = 0xffff_ffff;
@inline const BROADCAST: u64 = 0xffff_ffff_ffff;
/** Exact-table keys carry a used bit, and which half of virtio-net's MAC table they sit in. */
@inline const KEY_USED: u64 = 1 << 48;
@inline const KEY_MULTI: u64 = 1 << 49;

export function statePtr(): usize { return 0; }
export function marPtr(): usize { return S_MAR; }
export function countersPtr(): usize { return COUNTERS; }
export function mtaPtr(): usize { return MTA; }
export function utaPtr(): usize { return UTA; }
export function vftaPtr(): usize { return VFTA; }
export function descriptorsPtr(): usize { return DESC; }
export function verdictsPtr(): usize { return VERDICTS; }
export function poolPtr(): usize { return POOL; }
export function poolBytes(): u32 { return POOL_BYTES; }
export function burstSize(): u32 { return BURST; }
export function reasonCount(): u32 { return REASONS; }
export function memoryBytes(): usize { return POOL + <usize>POOL_BYTES; }

/** Fills the CRC-32 table (reflected polynomial 0xEDB88320) used by the ne2k hash; call once after instantiation. */
export function init(): void {
  for (let n: u32 = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xedb8_8320 ^ (c >> 1) : c >> 1;
    store<u32>(CRC_TABLE + (<usize>n << 2), c);
  }
  tableClear();
}

/** Empties the exact-match table. */
export function tableClear(): void {
  memory.fill(TABLE, 0, <usize>TABLE_SLOTS * 16);
}

// @ts-ignore: decorator
@inline function slotOf(key: u64): u32 {
  return <u32>((key * 0x9e37_79b9_7f4a_7c15) >> 55);
}

/**
 * Adds MAC `hi:lo` (bytes 4..5 and 0..3, little-endian) in table half `multi` (virtio-net) with entry index `ref`; the
 * first insert of a key wins, as the lowest matching RAR does. Returns 0 when the table is full (it never is below 511).
 */
export function tableInsert(lo: u32, hi: u32, multi: u32, ref: u32): u32 {
  const key = ((<u64>(hi & 0xffff) << 32) | <u64>lo) | KEY_USED | (multi != 0 ? KEY_MULTI : 0);
  let h = slotOf(key);
  for (let i: u32 = 0; i < TABLE_SLOTS; i++) {
    const e = TABLE + (<usize>h << 4);
    const k = load<u64>(e);
    if (k == key) return 1;
    if (k == 0) {
      store<u64>(e, key);
      store<u32>(e, ref & 0xffff, 8);
      return 1;
    }
    h = (h + 1) & (TABLE_SLOTS - 1);
  }
  return 0;
}

// @ts-ignore: decorator
@inline function lookup(da: u64, multi: u64): u32 {
  const key = da | KEY_USED | multi;
  let h = slotOf(key);
  // The table holds at most 129 keys in 512 slots, so a probe ends at an empty slot long before it wraps.
  while (true) {
    const e = TABLE + (<usize>h << 4);
    const k = load<u64>(e);
    if (k == key) return load<u32>(e, 8);
    if (k == 0) return MISS;
    h = (h + 1) & (TABLE_SLOTS - 1);
  }
  return MISS;
}

// @ts-ignore: decorator
@inline function bitIn(table: usize, i: u32): bool {
  return (load<u8>(table + <usize>(i >> 3)) & (<u8>1 << <u8>(i & 7))) != 0;
}

/** The 12-bit hash vector of e1000/ixgbe: w = a4 | a5 << 8 shifted by 4, 3, 2, 0 for MO 0..3. */
// @ts-ignore: decorator
@inline function vector(w: u32, mo: u32): u32 {
  return (w >> ((<u32>0x0234 >> ((mo & 3) << 2)) & 0xf)) & 0xfff;
}

/** VLAN stage shared by e1000 and ixgbe: returns a drop reason, or MISS when the frame passes. */
// @ts-ignore: decorator
@inline function vlanStage(p: usize, len: u32, flags: u32): u32 {
  // A frame too short to hold the tag control word is never taken as tagged.
  if (len < 18) return MISS;
  // Bytes 12..15 in one load: the TPID and the TCI, each big-endian on the wire.
  const word = bswap<u32>(load<u32>(p, 12));
  if (word >> 16 != load<u32>(S_VET)) return MISS;
  const tci = word & 0xffff;
  if ((flags & F_CFIEN) != 0 && ((tci >> 12) & 1) != ((flags & F_CFI) != 0 ? 1 : 0)) return D_CFI | NO_REF;
  if ((flags & F_VFE) != 0 && !bitIn(VFTA, tci & 0xfff)) return D_VLAN | NO_REF;
  return MISS;
}

function e1000(p: usize, len: u32, flags: u32, da: u64, w: u32): u32 {
  const v = vlanStage(p, len, flags);
  if (v != MISS) return v;
  const group = (<u32>da & 1) != 0;
  if (da == BROADCAST) {
    if ((flags & F_BAM) != 0) return D_BROADCAST | NO_REF;
  } else if (group) {
    if ((flags & F_MPE) != 0) return D_MC_PROMISC | NO_REF;
  } else if ((flags & F_UPE) != 0) return D_UC_PROMISC | NO_REF;
  const ref = lookup(da, 0);
  if (ref != MISS) return D_EXACT | (ref << 16);
  // Every class of destination is hashed, unicast and broadcast included.
  if (bitIn(MTA, vector(w, load<u32>(S_MO)))) return (group ? D_MC_HASH : D_UC_HASH) | NO_REF;
  return D_NO_MATCH | NO_REF;
}

function virtio(p: usize, len: u32, flags: u32, da: u64): u32 {
  if ((flags & F_PROMISC) != 0) return D_PROMISC | NO_REF;
  if (len >= 18 && load<u8>(p, 12) == 0x81 && load<u8>(p, 13) == 0) {
    const vid = ((<u32>load<u8>(p, 14) << 8) | <u32>load<u8>(p, 15)) & 0xfff;
    if (!bitIn(VFTA, vid)) return D_VLAN | NO_REF;
  }
  if ((<u32>da & 1) != 0) {
    if (da == BROADCAST) return (flags & F_BAM) != 0 ? D_BROADCAST | NO_REF : D_DROP_BROADCAST | NO_REF;
    if ((flags & F_NOMULTI) != 0) return D_NOMULTI | NO_REF;
    if ((flags & F_MPE) != 0) return D_MC_PROMISC | NO_REF;
    if ((flags & F_MULTI_OVERFLOW) != 0) return D_MC_OVERFLOW | NO_REF;
    const ref = lookup(da, KEY_MULTI);
    return ref != MISS ? D_EXACT | (ref << 16) : D_NO_MATCH | NO_REF;
  }
  if ((flags & F_NOUNI) != 0) return D_NOUNI | NO_REF;
  if ((flags & F_UPE) != 0) return D_UC_PROMISC | NO_REF;
  if ((flags & F_UNI_OVERFLOW) != 0) return D_UC_OVERFLOW | NO_REF;
  if ((flags & F_PRIMARY) != 0 && da == ((<u64>load<u32>(S_PRIMARY_HI) << 32) | <u64>load<u32>(S_PRIMARY_LO)))
    return D_PRIMARY | NO_REF;
  const ref = lookup(da, 0);
  return ref != MISS ? D_EXACT | (ref << 16) : D_NO_MATCH | NO_REF;
}

/** The DP8390 hash: top 6 bits of the Ethernet CRC-32 of the destination, i.e. the low 6 bits of the reflected CRC, reversed. */
// @ts-ignore: decorator
@inline function marIndex(p: usize): u32 {
  let r: u32 = 0xffff_ffff;
  for (let i: usize = 0; i < 6; i++) r = load<u32>(CRC_TABLE + (<usize>((r ^ <u32>load<u8>(p + i)) & 0xff) << 2)) ^ (r >> 8);
  return ((r & 1) << 5) | ((r & 2) << 3) | ((r & 4) << 1) | ((r >> 1) & 4) | ((r >> 3) & 2) | ((r >> 5) & 1);
}

function ne2k(p: usize, flags: u32, da: u64): u32 {
  if ((flags & F_MONITOR) != 0) return D_MONITOR | NO_REF;
  if (da == BROADCAST) return (flags & F_BAM) != 0 ? D_BROADCAST | NO_REF : D_DROP_BROADCAST | NO_REF;
  if ((<u32>da & 1) != 0) {
    if ((flags & F_MFE) != 0 && bitIn(S_MAR, marIndex(p))) return D_MC_HASH | NO_REF;
    return D_NO_MATCH | NO_REF;
  }
  if ((flags & F_PROMISC) != 0) return D_PROMISC | NO_REF;
  const ref = lookup(da, 0);
  return ref != MISS ? D_EXACT | (ref << 16) : D_NO_MATCH | NO_REF;
}

function ixgbe(p: usize, len: u32, flags: u32, da: u64, w: u32): u32 {
  let pass = MISS;
  const ref = lookup(da, 0);
  if (ref != MISS) pass = D_EXACT | (ref << 16);
  else if (da == BROADCAST) {
    if ((flags & F_BAM) != 0) pass = D_BROADCAST | NO_REF;
  } else if ((<u32>da & 1) != 0) {
    if ((flags & F_MPE) != 0) pass = D_MC_PROMISC | NO_REF;
    else if ((flags & F_MFE) != 0 && bitIn(MTA, vector(w, load<u32>(S_MO)))) pass = D_MC_HASH | NO_REF;
  } else if ((flags & F_UPE) != 0) pass = D_UC_PROMISC | NO_REF;
  else if ((flags & F_UTA) != 0 && bitIn(UTA, vector(w, load<u32>(S_MO)))) pass = D_UC_HASH | NO_REF;
  if (pass == MISS) return D_NO_MATCH | NO_REF;
  const v = vlanStage(p, len, flags);
  return v != MISS ? v : pass;
}

/** Verdict for one frame at `p` of `len` bytes, already inside the pool. */
// @ts-ignore: decorator
@inline function classifyFrame(p: usize, len: u32, kind: u32, flags: u32, minLen: u32, maxLen: u32): u32 {
  if (len < minLen) return D_RUNT | NO_REF;
  if (len > maxLen) return D_OVERSIZE | NO_REF;
  if ((flags & F_ENABLED) == 0) return D_DISABLED | NO_REF;
  const lo = load<u32>(p);
  const w = <u32>load<u16>(p, 4);
  const da = (<u64>w << 32) | <u64>lo;
  if (kind == K_E1000) return e1000(p, len, flags, da, w);
  if (kind == K_VIRTIO) return virtio(p, len, flags, da);
  if (kind == K_NE2K) return ne2k(p, flags, da);
  return ixgbe(p, len, flags, da, w);
}

/**
 * Classifies `count` frames described by {u32 offset, u32 length} pairs into the pool and writes one verdict word each;
 * counts each reason. A descriptor outside the pool is a counted drop. Returns the number classified (0 above the burst).
 */
export function classifyBurst(count: u32): u32 {
  if (count > BURST) return 0;
  const kind = load<u32>(S_KIND);
  const flags = load<u32>(S_FLAGS);
  // Fewer than 14 bytes hold no Ethernet header: every device drops them, whatever its own runt rule.
  const minLen = max<u32>(load<u32>(S_MIN_LEN), 14);
  const maxLen = load<u32>(S_MAX_LEN);
  for (let i: u32 = 0; i < count; i++) {
    const d = DESC + (<usize>i << 3);
    const off = load<u32>(d);
    const len = load<u32>(d, 4);
    const v = len > POOL_BYTES || off > POOL_BYTES - len
      ? D_BAD_DESC | NO_REF
      : classifyFrame(POOL + <usize>off, len, kind, flags, minLen, maxLen);
    store<u32>(VERDICTS + (<usize>i << 2), v);
    const c = COUNTERS + (<usize>(v & 0xff) << 3);
    store<u64>(c, load<u64>(c) + 1);
  }
  return count;
}
