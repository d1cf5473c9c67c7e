// Data plane (Wasm): the memory layout, defined here once. The TypeScript side asks for every pointer.

/** "macs": marks a planned memory. */
@inline export const MAGIC: u32 = 0x7363_616d;
@inline export const LAYOUT_VERSION: u32 = 4;
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
/** Atomic: the bank readers use (0 or 1). Alone on its line. */
@inline export const H_ACTIVE: usize = 128;
/** Atomic: 1 + the lane allowed to produce into client rings, 0 for none. */
@inline export const H_DELIVERER: usize = 192;
/**
 * Atomic lane claims, one word each: the low byte is 1 + lane while taken, 0 while free; the bits above count claims, so a
 * token (the whole word) names one owner and a lane reclaimed from a dead owner never matches that owner's token again.
 */
@inline export const H_CLAIMS: usize = 256;
@inline export const CLAIM_OWNER: u32 = 0xff;
@inline export const CLAIM_EPOCH: u32 = 0x100;
/** Atomic: non-zero while the writer could not bring the filter in step with the NIC; every burst then drops (fails closed). */
@inline export const H_HOLD: usize = 384;
/** Atomic: corrupt ring indices found and reset by consumers (RxRing.poll). */
@inline export const H_RING_RESETS: usize = 448;
@inline export const HEADER_BYTES: usize = 512;

// A lane: reader state (own line), then counters, descriptors, verdicts, keys, kinds, pool.
@inline export const L_STATE: usize = 0;
@inline export const L_COUNTERS: usize = 64;
/** Rules counted per lane, then the extra counters below. */
@inline export const RULE_COUNT: u32 = 12;
@inline export const X_RING_FULL: u32 = 12;
@inline export const X_RING_CORRUPT: u32 = 13;
@inline export const X_READER_RETRIES: u32 = 14;
@inline export const X_DELIVERIES: u32 = 15;
@inline export const LANE_COUNTERS: u32 = 16;
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
/** Verdict word: rule in bits 0..4, software path in bit 7, client or group index in bits 16..31. */
@inline export const V_RULE_MASK: u32 = 0x1f;
@inline export const V_SOFTWARE: u32 = 0x80;
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

// Per-client counters (u64 each).
@inline export const C_FRAMES: usize = 0;
@inline export const C_BYTES: usize = 8;
@inline export const C_BROADCAST: usize = 16;
@inline export const C_MULTICAST: usize = 24;
@inline export const C_RING_DROPS: usize = 32;
@inline export const CLIENT_COUNTER_BYTES: usize = 40;

// A client ring: producer index, consumer index (each on its own line), then the data.
@inline export const RING_HEAD: usize = 0;
@inline export const RING_TAIL: usize = 64;
/** Producer-owned: the head as advanced during the current burst, published to RING_HEAD once per burst. */
@inline export const RING_SHADOW: usize = 4;
/** Consumer-owned: non-zero while a consumer sleeps (or is about to) on RING_HEAD, so the producer only wakes rings someone waits on. */
@inline export const RING_SLEEPERS: usize = 68;
@inline export const RING_DATA: usize = 128;
/** Record: u32 length, u32 verdict, then the frame padded to 8 bytes. */
@inline export const REC_HEADER: u32 = 8;
@inline export const REC_WRAP: u32 = 0xffff_ffff;
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
