// Data plane (Wasm): the memory layout, defined here once. The TypeScript side asks for every pointer.

/** "macs": marks a planned memory. */
@inline export const MAGIC: u32 = 0x7363_616d;
@inline export const LAYOUT_VERSION: u32 = 7;
/** Lanes: one per thread running bursts, each with its own pool, descriptors, verdicts and counters. */
@inline export const MAX_LANES: u32 = 16;
@inline export const LINE: usize = 64;

// Header fields (u32 each), at the start of the planned region.
@inline export const H_MAGIC: usize = 0;
@inline export const H_VERSION: usize = 4;
@inline export const H_CLIENTS: usize = 8;
@inline export const H_WORDS: usize = 12;
@inline export const H_SLOTS: usize = 16;
@inline export const H_GROUPS: usize = 20;
@inline export const H_POOL_BYTES: usize = 24;
@inline export const H_BURST: usize = 28;
@inline export const H_RING_BYTES: usize = 32;
@inline export const H_MAX_FRAME: usize = 36;
@inline export const H_LANES: usize = 40;
@inline export const H_SEED_LO: usize = 44;
@inline export const H_SEED_HI: usize = 48;
@inline export const H_BANK0: usize = 52;
@inline export const H_BANK1: usize = 56;
@inline export const H_BANK_BYTES: usize = 60;
@inline export const H_LANE0: usize = 64;
@inline export const H_LANE_BYTES: usize = 68;
@inline export const H_CLIENT_COUNTERS: usize = 72;
@inline export const H_RINGS: usize = 76;
@inline export const H_STAGING: usize = 80;
@inline export const H_TOTAL: usize = 84;
/** The shared table (keys, references, rule bytes), which both banks index. */
@inline export const H_TABLE: usize = 88;
@inline export const H_TABLE_BYTES: usize = 92;
/** Bytes of each bank's VLAN region (map and slot bitmaps); 0 when the memory was planned without VLANs. */
@inline export const H_VLAN_BYTES: usize = 96;
/** Atomic: the bank readers use (0 or 1). Alone on its line. */
@inline export const H_ACTIVE: usize = 128;
/** Atomic: 1 + the lane allowed to produce into client rings, 0 for none. */
@inline export const H_DELIVERER: usize = 192;
/**
 * Atomic lane claims, one word each: the low byte is 1 + lane while taken, 0 while free; the bits above count claims, so a
 * token (the whole word) names one owner and a lane reclaimed from a dead owner never matches that owner's token again.
 */
@inline export const H_CLAIMS: usize = 256;
/**
 * Atomic: non-zero while the ring producer takes frames back from rings. A consumer that marks its ring busy and then
 * finds this zero may take and discard with plain stores: the producer, which sets this and then reads each ring's busy
 * mark, leaves a busy ring alone.
 */
@inline export const H_REVOKING: usize = 320;
@inline export const CLAIM_OWNER: u32 = 0xff;
@inline export const CLAIM_EPOCH: u32 = 0x100;
/** Atomic: non-zero while the writer could not bring the filter in step with the NIC; every burst then drops (fails closed). */
@inline export const H_HOLD: usize = 384;
/** Atomic: corrupt ring indices found and reset by consumers (RxRing.poll). */
@inline export const H_RING_RESETS: usize = 448;
@inline export const HEADER_BYTES: usize = 512;

// A lane: reader state (own line), then counters, descriptors, verdicts, keys, kinds, pool.
@inline export const L_STATE: usize = 0;
/** Lane-owned: the pool allocator's next line and the line where the current batch began. */
@inline export const L_CURSOR: usize = 4;
@inline export const L_ORIGIN: usize = 8;
@inline export const L_COUNTERS: usize = 64;
/** Rules counted per lane, then the extra counters below. */
@inline export const RULE_COUNT: u32 = 13;
@inline export const X_RING_FULL: u32 = 13;
@inline export const X_RING_CORRUPT: u32 = 14;
@inline export const X_READER_RETRIES: u32 = 15;
@inline export const X_DELIVERIES: u32 = 16;
/** Pending deliveries the producer took back from the slowest rings to free pool lines (each also counted for its client). */
@inline export const X_POOL_DROPS: u32 = 17;
/** Frames refused a place in the pool: every free line was held by views consumers had taken and not released. */
@inline export const X_POOL_FULL: u32 = 18;
@inline export const LANE_COUNTERS: u32 = 19;
/** Each counter has this many copies, picked by frame index, so consecutive frames never wait on one memory word. */
@inline export const STRIPES: u32 = 4;

// Rule ids, in the order of the TypeScript RULES list.
@inline export const R_BROADCAST: u32 = 0;
@inline export const R_MC_EXACT: u32 = 1;
@inline export const R_MC_HASH: u32 = 2;
@inline export const R_MC_ALL: u32 = 3;
@inline export const R_UNICAST: u32 = 4;
@inline export const R_SOFTWARE: u32 = 5;
@inline export const R_PROMISC: u32 = 6;
@inline export const R_DROP_UNKNOWN: u32 = 7;
@inline export const R_DROP_MC: u32 = 8;
@inline export const R_DROP_RUNT: u32 = 9;
@inline export const R_DROP_OVERSIZE: u32 = 10;
@inline export const R_DROP_BAD_DESC: u32 = 11;
/** A VLAN the uplink does not carry, a tag cut short, or a frame whose receivers are all outside its VLAN. */
@inline export const R_DROP_VLAN: u32 = 12;
/**
 * Verdict word: rule in bits 0..4, software path in bit 7, the frame's VLAN slot in bits 8..15 (0 without VLANs), client or
 * group index in bits 16..31.
 */
@inline export const V_RULE_MASK: u32 = 0x1f;
@inline export const V_SOFTWARE: u32 = 0x80;
@inline export const V_VLAN_SHIFT: u32 = 8;
@inline export const V_VLAN_MASK: u32 = 0xff00;
@inline export const V_REF_SHIFT: u32 = 16;
@inline export const V_NO_REF: u32 = 0xffff;
/** rxBurst's `exclude` when no client is excluded. */
@inline export const NO_CLIENT: u32 = 0xffff_ffff;
/** A key's kind, in staged records and lane key kinds: MAC-48 (6 bytes) or EUI-64 (8 bytes). */
@inline export const KIND_MAC48: u32 = 0;
@inline export const KIND_EUI64: u32 = 1;

// A bank: one reader-safe view of the accept filter. The table's entries are shared by both banks; each bank has its own
// control bytes over them (which slots hold a key, with its tag), flags, hash filter, client and group bitmaps.
@inline export const B_FLAGS: usize = 0;
@inline export const B_PROMISC_COUNT: usize = 4;
/** Deleted control bytes in the bank since it was last tidied. */
@inline export const B_TOMBS: usize = 8;
/** VLAN filtering: 0 when off; else VL_ON, the bridge's TPID (bits 0..15) and the uplink's PVID (bits 16..27, 0 for none). */
@inline export const B_VLAN: usize = 12;
@inline export const B_CTRL: usize = 64;
@inline export const F_PROMISC: u32 = 1;
@inline export const F_ALLMULTI: u32 = 2;
@inline export const F_HASH: u32 = 4;
@inline export const F_HASH_TYPE_SHIFT: u32 = 8;

/**
 * The shared table: slots in aligned groups of GROUP_WIDTH, each an 8-byte key (a MAC-48 in the low 48 bits, or an EUI-64),
 * a 16-bit reference (client or group index) and a rule byte (the low byte of the verdict word the key decides).
 */
@inline export const KEY_BYTES: usize = 8;
@inline export const REF_BYTES: usize = 2;
@inline export const RULE_BYTES: usize = 1;
/** Control byte: FULL holds a 7-bit tag (bit 6 the key's kind, bits 0..5 from its hash); EMPTY ends a probe, DELETED does not. */
@inline export const CTRL_EMPTY: u8 = 0x80;
@inline export const CTRL_DELETED: u8 = 0xfe;
@inline export const TAG_EUI64: u8 = 0x40;
@inline export const GROUP_WIDTH: usize = 16;
/** Groups per table: keys × LOAD_DEN / LOAD_NUM slots at least, so at most 7/8 of the slots are full. */
@inline export const LOAD_NUM: u32 = 7;
@inline export const LOAD_DEN: u32 = 8;
/** Meta word (the writer's description of a key): client or group index (16 bits), hardware flag, group flag, group stage. */
@inline export const M_INDEX: u32 = 0xffff;
@inline export const M_HARDWARE: u32 = 1 << 17;
@inline export const M_GROUP: u32 = 1 << 18;
@inline export const M_STAGE_SHIFT: u32 = 20;
@inline export const STAGE_EXACT: u32 = 0;
@inline export const STAGE_HASH: u32 = 1;
@inline export const STAGE_ALL: u32 = 2;
@inline export const MISS: u32 = 0xffff_ffff;
@inline export const HASH_BYTES: usize = 512;

// VLANs, per bank after the group bitmaps: a byte per VID (0: the uplink does not carry it; else its slot 1..VLAN_SLOTS),
// then one client bitmap per slot (the clients in that VLAN), then one per slot of the clients that get it untagged.
@inline export const VL_ON: u32 = 0x8000_0000;
@inline export const VL_TPID_MASK: u32 = 0xffff;
@inline export const VL_PVID_SHIFT: u32 = 16;
@inline export const VL_PVID_MASK: u32 = 0xfff;
@inline export const VLAN_IDS: usize = 4096;
@inline export const VLAN_SLOTS: u32 = 255;
@inline export const TPID_8021Q: u32 = 0x8100;
@inline export const TPID_8021AD: u32 = 0x88a8;

// Per-client counters (u64 each).
@inline export const C_FRAMES: usize = 0;
@inline export const C_BYTES: usize = 8;
@inline export const C_BROADCAST: usize = 16;
@inline export const C_MULTICAST: usize = 24;
@inline export const C_RING_DROPS: usize = 32;
/** Frames taken back from this client's ring before it read them, because the pool ran out of free lines. */
@inline export const C_POOL_DROPS: usize = 40;
@inline export const CLIENT_COUNTER_BYTES: usize = 48;

// A client ring of descriptors: producer index, consumer indices (each side on its own line), then the slots. Indices are
// free-running slot counts: released <= tail <= head, head - released <= slots.
@inline export const RING_HEAD: usize = 0;
@inline export const RING_TAIL: usize = 64;
/** Producer-owned: the head as advanced during the current burst, published to RING_HEAD once per burst. */
@inline export const RING_SHADOW: usize = 4;
/** Consumer-owned: non-zero while a consumer sleeps (or is about to) on RING_HEAD, so the producer only wakes rings someone waits on. */
@inline export const RING_SLEEPERS: usize = 68;
/** Consumer-owned: slots before it are released (their frames' pool lines unpinned); the producer reuses slots up to here. */
@inline export const RING_RELEASED: usize = 72;
/** Consumer-owned, atomic: non-zero while the consumer takes or discards frames (see H_REVOKING). */
@inline export const RING_BUSY: usize = 76;
@inline export const RING_DATA: usize = 128;
/** Slot: u32 pool offset, u32 length, u32 verdict, u32 state (the lane whose pool holds the frame, plus the state bits below). */
@inline export const SLOT_BYTES: u32 = 16;
@inline export const S_OFFSET: usize = 0;
@inline export const S_LENGTH: usize = 4;
@inline export const S_VERDICT: usize = 8;
@inline export const S_STATE: usize = 12;
@inline export const SLOT_LANE: u32 = 0xff;
/** Set by the consumer's compare-and-swap when it takes the frame: the producer can no longer take it back. */
@inline export const SLOT_TAKEN: u32 = 0x100;
/** Set by the producer's compare-and-swap when it takes a pending frame back (pool pressure): the consumer skips it. */
@inline export const SLOT_REVOKED: u32 = 0x200;
/**
 * Pool lines: a frame in a ring pins the line it starts on (one u32 count per line, after the lane's pool). Frames placed
 * by poolAlloc own whole lines, and each line they cover records its distance to the frame's first line (a u32 per line,
 * after the counts), so the allocator finds the count that guards any line.
 */
@inline export const POOL_LINE: u32 = 64;
@inline export const POOL_LINE_SHIFT: u32 = 6;
/** poolAlloc's answer when no free run of lines is left. */
@inline export const NO_SPACE: u32 = 0xffff_ffff;
/** The writer's staging area: one key for tablePut/tableDelete, or up to STAGED_RECORDS records for tableLoad. */
@inline export const STAGING_BYTES: usize = 16384;
/** A tableLoad record: u32 key bytes 0..3, u32 key bytes 4..7 (little-endian), u32 kind (0 MAC-48, 1 EUI-64), u32 meta. */
@inline export const STAGED_RECORD: usize = 16;
@inline export const SR_KEY_LO: usize = 0;
@inline export const SR_KEY_HI: usize = 4;
@inline export const SR_KIND: usize = 8;
@inline export const SR_META: usize = 12;
@inline export const STAGED_RECORDS: u32 = <u32>(STAGING_BYTES / STAGED_RECORD);

@inline export function align(n: usize, a: usize): usize {
  return (n + a - 1) & ~(a - 1);
}
