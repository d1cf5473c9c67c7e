// Data plane (Wasm): classification. Turns a burst of described frames (or bare keys) into verdict words, counted per rule.

import {
  B_CTRL, B_FLAGS, B_PROMISC_COUNT, B_VLAN, CTRL_EMPTY, F_ALLMULTI, F_HASH, F_HASH_TYPE_SHIFT, F_PROMISC, H_HOLD, H_MAX_FRAME, H_POOL_BYTES,
  H_SEED_HI, H_SEED_LO, H_SLOTS, H_TABLE, KIND_EUI64, KIND_MAC48, MISS, R_BROADCAST, R_DROP_BAD_DESC, R_DROP_MC, R_DROP_OVERSIZE,
  R_DROP_RUNT, R_DROP_UNKNOWN, R_PROMISC, R_UNICAST, V_NO_REF, V_REF_SHIFT, V_RULE_MASK, V_SOFTWARE, V_VLAN_SHIFT, VL_PVID_MASK,
  VL_PVID_SHIFT,
} from './layout';
import {
  base, burst, descOff, groupCount, hashOff, keysOff, kindsOff, lanePtr, lanes, maxFrame, poolBytes, poolOff, refsOff, rulesOff, seed,
  table, verdictOff, clients, vlanBitsOff, vlanMapOff, words,
} from './plan';
import { homeGroup, lookupIn, mixWith } from './table';
import { enter, leave } from './reader';
import { bumpStriped, ownsLane } from './lanes';
import { VLAN_DROP, vlanAdmit, vlanSettle, vlanTpidLE } from './vlan';

/** Verdict for a destination key (`k`: the bytes little-endian, `kind` 0 MAC-48 / 1 EUI-64), `a45` its last two bytes little-endian. */
// @ts-ignore: decorator
@inline function decide(bank: usize, k: u64, kind: u32, a45: u32, flags: u32, anyPromisc: bool): u32 {
  const ctrl = bank + B_CTRL;
  return decideIn(ctrl, table, table + refsOff, table + rulesOff, groupCount, seed, bank + hashOff, k, kind, a45, flags, anyPromisc);
}

/** decide() with the table's parameters passed in. */
// @ts-ignore: decorator
@inline function decideIn(
  ctrl: usize, keys: usize, refs: usize, rules: usize, g: u32, sd: u64, hash: usize, k: u64, kind: u32, a45: u32, flags: u32,
  anyPromisc: bool,
): u32 {
  // The verdict of a key in the table was computed when it was written: a hit returns it as it is.
  const hit = lookupIn(ctrl, keys, refs, rules, g, sd, k, kind);
  if (hit != MISS) return hit;
  if ((<u32>k & 1) != 0) {
    if (kind == 0 ? k == 0xffff_ffff_ffff : k == 0xffff_ffff_ffff_ffff) return R_BROADCAST | (V_NO_REF << V_REF_SHIFT);
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
  if ((flags & F_PROMISC) == 0) return R_DROP_UNKNOWN | (V_NO_REF << V_REF_SHIFT);
  return (anyPromisc ? R_PROMISC : R_DROP_UNKNOWN) | V_SOFTWARE | (V_NO_REF << V_REF_SHIFT);
}

/**
 * Verdict for the descriptor at `d` into a pool at `pool` of `poolLen` bytes: checks the window once, at the edge, then reads the
 * destination.
 */
// @ts-ignore: decorator
@inline function classifyAt(
  ctrl: usize, keys: usize, refs: usize, rules: usize, g: u32, sd: u64, hash: usize, d: usize, pool: usize, poolLen: u32,
  frameMax: u32, flags: u32, anyPromisc: bool,
): u32 {
  const off = load<u32>(d);
  const len = load<u32>(d, 4);
  if (len > poolLen || off > poolLen - len) return R_DROP_BAD_DESC | (V_NO_REF << V_REF_SHIFT);
  if (len < 14) return R_DROP_RUNT | (V_NO_REF << V_REF_SHIFT);
  if (len > frameMax) return R_DROP_OVERSIZE | (V_NO_REF << V_REF_SHIFT);
  const p = pool + <usize>off;
  const lo = load<u32>(p);
  const hi = load<u16>(p, 4);
  return decideIn(ctrl, keys, refs, rules, g, sd, hash, (<u64>hi << 32) | <u64>lo, 0, <u32>hi, flags, anyPromisc);
}

/** Marks a batch key that is a verdict already: the frame failed an edge check. */
const EDGE: u64 = 1 << 63;

/** The destination key of the descriptor at `d`, or EDGE with the verdict of the edge check it failed. */
// @ts-ignore: decorator
@inline function edgeKey(d: usize, pool: usize, poolLen: u32, frameMax: u32): u64 {
  const off = load<u32>(d);
  const len = load<u32>(d, 4);
  if (len > poolLen || off > poolLen - len) return EDGE | <u64>(R_DROP_BAD_DESC | (V_NO_REF << V_REF_SHIFT));
  if (len < 14) return EDGE | <u64>(R_DROP_RUNT | (V_NO_REF << V_REF_SHIFT));
  if (len > frameMax) return EDGE | <u64>(R_DROP_OVERSIZE | (V_NO_REF << V_REF_SHIFT));
  const p = pool + <usize>off;
  // The frame is at least 14 bytes long, so its first 8 are inside it: one load, then the 6 of the destination.
  return load<u64>(p) & 0xffff_ffff_ffff;
}

/** A key's MAC bits; edgeKeyVlan() also carries the frame's VLAN slot in bits 48..55. */
const MAC_BITS: u64 = 0xffff_ffff_ffff;

/** edgeKey() under VLAN filtering (bank VLAN word `cfg`): the frame is admitted into a VLAN first, its slot kept in the key. */
// @ts-ignore: decorator
@inline function edgeKeyVlan(bank: usize, cfg: u32, d: usize, pool: usize, poolLen: u32, frameMax: u32): u64 {
  const off = load<u32>(d);
  const len = load<u32>(d, 4);
  if (len > poolLen || off > poolLen - len) return EDGE | <u64>(R_DROP_BAD_DESC | (V_NO_REF << V_REF_SHIFT));
  if (len < 14) return EDGE | <u64>(R_DROP_RUNT | (V_NO_REF << V_REF_SHIFT));
  const p = pool + <usize>off;
  const a = vlanAdmit(bank, p, len, cfg);
  if (a == 0) return EDGE | <u64>VLAN_DROP;
  // The bridge's tag comes off on the way in: the length limit is the untagged frame's.
  if (len - ((a >> 8) << 2) > frameMax) return EDGE | <u64>(R_DROP_OVERSIZE | (V_NO_REF << V_REF_SHIFT));
  return (load<u64>(p) & MAC_BITS) | (<u64>(a & 0xff) << 48);
}

/** classifyAt() under VLAN filtering: the verdict on (MAC, VID). */
// @ts-ignore: decorator
@inline function classifyTagged(
  bank: usize, cfg: u32, ctrl: usize, keys: usize, refs: usize, rules: usize, g: u32, sd: u64, hash: usize, d: usize, pool: usize,
  poolLen: u32, frameMax: u32, flags: u32, anyPromisc: bool,
): u32 {
  const k = edgeKeyVlan(bank, cfg, d, pool, poolLen, frameMax);
  if ((k & EDGE) != 0) return <u32>k;
  const key = k & MAC_BITS;
  const v = decideIn(ctrl, keys, refs, rules, g, sd, hash, key, 0, <u32>(key >> 32), flags, anyPromisc);
  return vlanSettle(v, <u32>(k >> 48) & 0xff, bank, anyPromisc);
}

/**
 * Finishes a batch frame whose home group's control bytes `c` (group `grp`) were loaded with the rest of the batch: a tag
 * match there is the verdict; a full group sends the probe on (rare at 7/8 load); else the key is not in the table.
 */
// @ts-ignore: decorator
@inline function finish(
  c: v128, grp: u32, h: u64, k: u64, ctrl: usize, keys: usize, refs: usize, rules: usize, g: u32, sd: u64, hash: usize, flags: u32,
  anyPromisc: bool,
): u32 {
  if ((k & EDGE) != 0) return <u32>k;
  let m = i8x16.bitmask(i8x16.eq(c, i8x16.splat(<i8>(<u32>h & 0x3f))));
  while (m != 0) {
    const idx = (<usize>grp << 4) + <usize>ctz(m);
    if (load<u64>(keys + (idx << 3)) == k) return <u32>load<u8>(rules + idx) | (<u32>load<u16>(refs + (idx << 1)) << V_REF_SHIFT);
    m &= m - 1;
  }
  if (i8x16.bitmask(i8x16.eq(c, i8x16.splat(<i8>CTRL_EMPTY))) == 0) {
    return decideIn(ctrl, keys, refs, rules, g, sd, hash, k, 0, <u32>(k >> 32), flags, anyPromisc);
  }
  return decideIn(ctrl, keys, refs, rules, 0, sd, hash, k, 0, <u32>(k >> 32), flags, anyPromisc);
}

/** Verdict for descriptor i of a lane. */
// @ts-ignore: decorator
@inline export function classifyOne(bank: usize, lp: usize, i: u32, flags: u32, anyPromisc: bool, cfg: u32): u32 {
  const d = lp + descOff + (<usize>i << 3);
  if (cfg != 0) {
    return classifyTagged(
      bank, cfg, bank + B_CTRL, table, table + refsOff, table + rulesOff, groupCount, seed, bank + hashOff, d, lp + poolOff, poolBytes,
      maxFrame, flags, anyPromisc,
    );
  }
  return classifyAt(
    bank + B_CTRL, table, table + refsOff, table + rulesOff, groupCount, seed, bank + hashOff, d, lp + poolOff, poolBytes, maxFrame,
    flags, anyPromisc,
  );
}

/** Bit `i` of a byte, for i in 0..7, by byte (an i8x16.swizzle table). */
const BIT_OF: v128 = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0);

/**
 * vlanSettle() for four verdicts `v0`..`v3` of frames in the VLAN slots of `sl` (one per 32-bit lane), stored at `out`. The
 * common cases, a drop, broadcast and a unicast hit whose client is in the VLAN (a bit test in the slot's bitmap at `bitsX4` +
 * slot × `strideX4`, `nX4` clients), for the four at once; any other verdict goes to vlanSettle() alone. Same words.
 */
// @ts-ignore: decorator
@inline function settle4(
  v0: u32, v1: u32, v2: u32, v3: u32, sl: v128, out: usize, bank: usize, anyPromisc: bool, bitsX4: v128, strideX4: v128,
  nX4: v128,
): void {
  let v = i32x4.splat(v0);
  v = i32x4.replace_lane(v, 1, v1);
  v = i32x4.replace_lane(v, 2, v2);
  v = i32x4.replace_lane(v, 3, v3);
  const rule = v128.and(v, i32x4.splat(V_RULE_MASK));
  const ref = i32x4.shr_u(v, V_REF_SHIFT);
  const uni = v128.and(i32x4.eq(rule, i32x4.splat(R_UNICAST)), i32x4.lt_u(ref, nX4));
  // A lane that is not a unicast hit in range tests client 0's bit, inside the bitmap, and does not use it.
  const at = v128.and(ref, uni);
  const byte = i32x4.add(i32x4.add(i32x4.mul(sl, strideX4), bitsX4), i32x4.shr_u(at, 3));
  let b = v128.load8_lane(<usize>i32x4.extract_lane(byte, 0), i32x4.splat(0), 0);
  b = v128.load8_lane(<usize>i32x4.extract_lane(byte, 1), b, 4);
  b = v128.load8_lane(<usize>i32x4.extract_lane(byte, 2), b, 8);
  b = v128.load8_lane(<usize>i32x4.extract_lane(byte, 3), b, 12);
  const mask = v128.and(i8x16.swizzle(BIT_OF, v128.and(at, i32x4.splat(7))), i32x4.splat(0xff));
  const member = v128.andnot(uni, i32x4.eq(v128.and(b, mask), i32x4.splat(0)));
  const keep = i32x4.ge_u(rule, i32x4.splat(R_DROP_UNKNOWN));
  const fast = v128.or(v128.or(keep, i32x4.eq(rule, i32x4.splat(R_BROADCAST))), member);
  v128.store(out, v128.bitselect(v, v128.or(v, i32x4.shl(sl, V_VLAN_SHIFT)), keep));
  if (!i32x4.all_true(fast)) {
    const slow = ~i32x4.bitmask(fast);
    if ((slow & 1) != 0) store<u32>(out, vlanSettle(v0, i32x4.extract_lane(sl, 0), bank, anyPromisc));
    if ((slow & 2) != 0) store<u32>(out, vlanSettle(v1, i32x4.extract_lane(sl, 1), bank, anyPromisc), 4);
    if ((slow & 4) != 0) store<u32>(out, vlanSettle(v2, i32x4.extract_lane(sl, 2), bank, anyPromisc), 8);
    if ((slow & 8) != 0) store<u32>(out, vlanSettle(v3, i32x4.extract_lane(sl, 3), bank, anyPromisc), 12);
  }
}

/** Four frames of the VLAN loop (descriptors at `d`, verdicts at `out`) one by one: the batch has one out of the common case. */
function tagged4(
  bank: usize, cfg: u32, ctrl: usize, keys: usize, refs: usize, rules: usize, g: u32, sd: u64, hash: usize, d: usize, pool: usize,
  poolLen: u32, frameMax: u32, flags: u32, anyPromisc: bool, out: usize,
): void {
  for (let i: usize = 0; i < 4; i++) {
    const v = classifyTagged(bank, cfg, ctrl, keys, refs, rules, g, sd, hash, d + (i << 3), pool, poolLen, frameMax, flags, anyPromisc);
    store<u32>(out + (i << 2), v);
  }
}

/**
 * classifyBurst()'s loop under VLAN filtering (bank VLAN word `cfg`): descriptors from `d`, verdicts from `out` to `end`.
 * A loop of its own, so the untagged loop carries no VLAN test; the VLAN's constants are read once per burst.
 */
function burstVlan(
  bank: usize, cfg: u32, ctrl: usize, keys: usize, refs: usize, rules: usize, g: u32, sd: u64, hash: usize, pool: usize,
  poolLen: u32, frameMax: u32, flags: u32, anyPromisc: bool, d: usize, out: usize, end: usize,
): void {
  const map = bank + vlanMapOff;
  const stride = <usize>words << 2;
  // Slots count from 1: slot s's client bitmap is at bits + s × stride.
  const bits = bank + vlanBitsOff - stride;
  const n = clients;
  const tpidLE = vlanTpidLE(cfg);
  const pvid = (cfg >> VL_PVID_SHIFT) & VL_PVID_MASK;
  const poolLenX4 = i32x4.splat(poolLen);
  const frameMaxX4 = i32x4.splat(frameMax);
  const tpidX4 = i32x4.splat(tpidLE);
  const pvidX4 = i32x4.splat(pvid);
  const bitsX4 = i32x4.splat(<u32>bits);
  const strideX4 = i32x4.splat(<u32>stride);
  const nX4 = i32x4.splat(n);
  const zero = i32x4.splat(0);
  // Batches of four, as in the untagged loop, with the VLAN checks of all four frames done at once: a batch with any
  // frame out of the common case (a bad window, shorter than 22 bytes, oversize, VID 0 or a VLAN the uplink does not
  // carry) is classified frame by frame by classifyTagged() instead.
  const end4 = out + ((end - out) & ~(<usize>15));
  while (out < end4) {
    const d01 = v128.load(d);
    const d23 = v128.load(d, 16);
    const offs = i32x4.shuffle(d01, d23, 0, 2, 4, 6);
    const lens = i32x4.shuffle(d01, d23, 1, 3, 5, 7);
    const window = v128.or(i32x4.gt_u(lens, poolLenX4), i32x4.gt_u(offs, i32x4.sub(poolLenX4, lens)));
    if (v128.any_true(v128.or(window, i32x4.lt_u(lens, i32x4.splat(22))))) {
      tagged4(bank, cfg, ctrl, keys, refs, rules, g, sd, hash, d, pool, poolLen, frameMax, flags, anyPromisc, out);
      d += 32;
      out += 16;
      continue;
    }
    const p0 = pool + <usize>i32x4.extract_lane(offs, 0);
    const p1 = pool + <usize>i32x4.extract_lane(offs, 1);
    const p2 = pool + <usize>i32x4.extract_lane(offs, 2);
    const p3 = pool + <usize>i32x4.extract_lane(offs, 3);
    // Bytes 12..15 of each frame: the TPID and the TCI when tagged, little-endian (see vlanTpidLE()).
    let w = v128.load32_zero(p0, 12);
    w = v128.load32_lane(p1, w, 1, 12);
    w = v128.load32_lane(p2, w, 2, 12);
    w = v128.load32_lane(p3, w, 3, 12);
    const tag = i32x4.eq(v128.and(w, i32x4.splat(0xffff)), tpidX4);
    const tv = v128.or(v128.and(i32x4.shr_u(w, 8), i32x4.splat(0xf00)), i32x4.shr_u(w, 24));
    const vid = v128.bitselect(tv, pvidX4, v128.andnot(tag, i32x4.eq(tv, i32x4.splat(0))));
    const over = i32x4.gt_u(i32x4.sub(lens, v128.and(tag, i32x4.splat(4))), frameMaxX4);
    // The VLAN slots of the four frames, one per 32-bit lane.
    let sl = v128.load8_lane(map + <usize>i32x4.extract_lane(vid, 0), zero, 0);
    sl = v128.load8_lane(map + <usize>i32x4.extract_lane(vid, 1), sl, 4);
    sl = v128.load8_lane(map + <usize>i32x4.extract_lane(vid, 2), sl, 8);
    sl = v128.load8_lane(map + <usize>i32x4.extract_lane(vid, 3), sl, 12);
    if (v128.any_true(v128.or(v128.or(over, i32x4.eq(vid, zero)), i32x4.eq(sl, zero)))) {
      tagged4(bank, cfg, ctrl, keys, refs, rules, g, sd, hash, d, pool, poolLen, frameMax, flags, anyPromisc, out);
      d += 32;
      out += 16;
      continue;
    }
    // The hash and probe steps repeat the untagged loop's: a helper shared by both loops would hand the verdicts over
    // through memory, measured 1-2 % slower per tagged frame.
    const m0 = load<u64>(p0) & MAC_BITS;
    const m1 = load<u64>(p1) & MAC_BITS;
    const m2 = load<u64>(p2) & MAC_BITS;
    const m3 = load<u64>(p3) & MAC_BITS;
    const h0 = mixWith(m0, sd);
    const h1 = mixWith(m1, sd);
    const h2 = mixWith(m2, sd);
    const h3 = mixWith(m3, sd);
    const g0 = homeGroup(h0, g);
    const g1 = homeGroup(h1, g);
    const g2 = homeGroup(h2, g);
    const g3 = homeGroup(h3, g);
    const c0 = v128.load(ctrl + (<usize>g0 << 4));
    const c1 = v128.load(ctrl + (<usize>g1 << 4));
    const c2 = v128.load(ctrl + (<usize>g2 << 4));
    const c3 = v128.load(ctrl + (<usize>g3 << 4));
    const v0 = finish(c0, g0, h0, m0, ctrl, keys, refs, rules, g, sd, hash, flags, anyPromisc);
    const v1 = finish(c1, g1, h1, m1, ctrl, keys, refs, rules, g, sd, hash, flags, anyPromisc);
    const v2 = finish(c2, g2, h2, m2, ctrl, keys, refs, rules, g, sd, hash, flags, anyPromisc);
    const v3 = finish(c3, g3, h3, m3, ctrl, keys, refs, rules, g, sd, hash, flags, anyPromisc);
    settle4(v0, v1, v2, v3, sl, out, bank, anyPromisc, bitsX4, strideX4, nX4);
    d += 32;
    out += 16;
  }
  while (out < end) {
    store<u32>(out, classifyTagged(bank, cfg, ctrl, keys, refs, rules, g, sd, hash, d, pool, poolLen, frameMax, flags, anyPromisc));
    d += 8;
    out += 4;
  }
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
  const vcfg = load<u32>(bank + B_VLAN);
  // Burst-invariant values come from the header into locals, which the loop keeps in registers; a
  // mutable global is reloaded on every use.
  const g = load<u32>(base + H_SLOTS) >> 4;
  const keys = <usize>load<u32>(base + H_TABLE);
  const refs = keys + <usize>g * 16 * 8;
  const rules = refs + <usize>g * 16 * 2;
  const sd = (<u64>load<u32>(base + H_SEED_HI) << 32) | <u64>load<u32>(base + H_SEED_LO);
  const poolLen = load<u32>(base + H_POOL_BYTES);
  const frameMax = load<u32>(base + H_MAX_FRAME);
  const ctrl = bank + B_CTRL;
  const hash = ctrl + (hashOff - B_CTRL);
  const pool = lp + poolOff;
  let d = lp + descOff;
  let out = verdicts;
  const end = verdicts + (<usize>count << 2);
  if (vcfg != 0) {
    burstVlan(bank, vcfg, ctrl, keys, refs, rules, g, sd, hash, pool, poolLen, frameMax, flags, anyPromisc, d, out, end);
  } else {
    // Batches of four: every key, hash and home group's control bytes first, so their loads overlap, then the probes.
    const end4 = verdicts + ((<usize>count & ~(<usize>3)) << 2);
    while (out < end4) {
      const k0 = edgeKey(d, pool, poolLen, frameMax);
      const k1 = edgeKey(d + 8, pool, poolLen, frameMax);
      const k2 = edgeKey(d + 16, pool, poolLen, frameMax);
      const k3 = edgeKey(d + 24, pool, poolLen, frameMax);
      const h0 = mixWith(k0, sd);
      const h1 = mixWith(k1, sd);
      const h2 = mixWith(k2, sd);
      const h3 = mixWith(k3, sd);
      const g0 = homeGroup(h0, g);
      const g1 = homeGroup(h1, g);
      const g2 = homeGroup(h2, g);
      const g3 = homeGroup(h3, g);
      const c0 = v128.load(ctrl + (<usize>g0 << 4));
      const c1 = v128.load(ctrl + (<usize>g1 << 4));
      const c2 = v128.load(ctrl + (<usize>g2 << 4));
      const c3 = v128.load(ctrl + (<usize>g3 << 4));
      store<u32>(out, finish(c0, g0, h0, k0, ctrl, keys, refs, rules, g, sd, hash, flags, anyPromisc));
      store<u32>(out, finish(c1, g1, h1, k1, ctrl, keys, refs, rules, g, sd, hash, flags, anyPromisc), 4);
      store<u32>(out, finish(c2, g2, h2, k2, ctrl, keys, refs, rules, g, sd, hash, flags, anyPromisc), 8);
      store<u32>(out, finish(c3, g3, h3, k3, ctrl, keys, refs, rules, g, sd, hash, flags, anyPromisc), 12);
      d += 32;
      out += 16;
    }
    while (out < end) {
      store<u32>(out, classifyAt(ctrl, keys, refs, rules, g, sd, hash, d, pool, poolLen, frameMax, flags, anyPromisc));
      d += 8;
      out += 4;
    }
  }
  leave(lp);
  // A lane reclaimed during the burst may have read a bank being rewritten: its verdicts are void.
  if (ownsLane(lane) == 0) return 0;
  // Counting in a second pass keeps the classify loop free of read-modify-write traffic.
  for (let i: u32 = 0; i < count; i++) bumpStriped(lp, load<u32>(verdicts + (<usize>i << 2)) & V_RULE_MASK, i);
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
    const kind: u32 = load<u8>(lp + kindsOff + <usize>i) != KIND_MAC48 ? KIND_EUI64 : KIND_MAC48;
    const k = kind != 0 ? load<u64>(p) : (<u64>load<u16>(p, 4) << 32) | <u64>load<u32>(p);
    const a45 = kind != 0 ? <u32>load<u16>(p, 6) : <u32>load<u16>(p, 4);
    const v = decide(bank, k, kind, a45, load<u32>(bank + B_FLAGS), load<u32>(bank + B_PROMISC_COUNT) != 0);
    store<u32>(lp + verdictOff + (<usize>i << 2), v);
    bumpStriped(lp, v & V_RULE_MASK, i);
  }
  leave(lp);
  return ownsLane(lane) != 0 ? count : 0;
}

/**
 * While the writer holds the filter (it could not keep it in step with the NIC), a burst reads no bank: every frame is
 * dropped on the software path, counted, and nothing is delivered. Leaves the bank and returns true when held.
 */
export function held(lp: usize, count: u32): bool {
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
