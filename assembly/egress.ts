// Data plane (Wasm): egress under VLAN filtering. Each receiver gets a frame as a VLAN-filtering bridge's port sends it:
// untagged on an access port and in a trunk's native VLAN, tagged with the frame's VID on the trunk's other VLANs. A frame
// has at most two forms besides the one received (without the bridge's tag; with its VLAN's tag); each is written into the
// lane's pool once per frame, only when a receiver needs it, and pinned like the received one.

import { C_POOL_DROPS, CLIENT_COUNTER_BYTES, NO_SPACE, VL_PVID_MASK, VL_PVID_SHIFT, VL_TPID_MASK, X_POOL_FULL } from './layout';
import { clientCounters, descOff, pinsOff, poolBytes, poolOff, vlanUntagOff, words } from './plan';
import { pinFrame, poolPlace } from './pool';
import { bump } from './lanes';

/** The frame as received. */
export const FORM_RX: u32 = 0;
/** Without the bridge's tag. */
export const FORM_UNTAGGED: u32 = 1;
/** With the tag of the frame's VLAN (inserted, or a priority tag given the VID). */
export const FORM_TAGGED: u32 = 2;
/** No form: the pool had no room for the one the receiver needs. */
export const FORM_NONE: u32 = 3;

const MADE: u32 = 1;
const FAILED: u32 = 2;

// How the frame came in: without the bridge's tag, with it (and a VID), or with a priority tag (VID 0).
const RX_UNTAGGED: u32 = 0;
const RX_TAGGED: u32 = 1;
const RX_PRIORITY: u32 = 2;

// The burst and the frame being delivered. One instance runs one lane, so this state is that lane's.
let lp: usize = 0;
let count: u32 = 0;
// The bytes the burst's frames span, found once per burst when a first form is written.
let spanKnown = false;
let spanLo: u32 = 0;
let spanHi: u32 = 0;
let rxKind: u32 = 0;
let tpid: u32 = 0;
let pvid: u32 = 0;
let untagBits: usize = 0;
// Per form (FORM_RX, FORM_UNTAGGED, FORM_TAGGED): offset, length, state (0 not written yet, MADE, FAILED), receivers.
let off0: u32 = 0;
let len0: u32 = 0;
let got0: u32 = 0;
let off1: u32 = 0;
let len1: u32 = 0;
let state1: u32 = 0;
let got1: u32 = 0;
let off2: u32 = 0;
let len2: u32 = 0;
let state2: u32 = 0;
let got2: u32 = 0;

// @ts-ignore: decorator
@inline function be16(p: usize, at: usize): u32 {
  return <u32>bswap<u16>(load<u16>(p + at));
}

// @ts-ignore: decorator
@inline function put16(p: usize, at: usize, v: u32): void {
  store<u16>(p + at, bswap<u16>(<u16>v));
}

/** Starts a burst of `n` described frames of the lane at `lanePtr` under VLAN filtering. */
export function egressBurst(lanePtr: usize, n: u32): void {
  lp = lanePtr;
  count = n;
  spanKnown = false;
}

/**
 * Starts the delivery of the frame at `off`, `len` bytes (admitted, so a bridge tag in it is whole), in VLAN slot `slot`
 * of `bank` under VLAN word `cfg`.
 */
export function egressFrame(bank: usize, cfg: u32, slot: u32, off: u32, len: u32): void {
  const p = lp + poolOff + <usize>off;
  tpid = cfg & VL_TPID_MASK;
  pvid = (cfg >> VL_PVID_SHIFT) & VL_PVID_MASK;
  rxKind = RX_UNTAGGED;
  const inside = len <= poolBytes && off <= poolBytes - len;
  if (inside && len >= 18 && be16(p, 12) == tpid) rxKind = (be16(p, 14) & 0xfff) != 0 ? RX_TAGGED : RX_PRIORITY;
  untagBits = bank + vlanUntagOff + <usize>(slot - 1) * <usize>words * 4;
  off0 = off;
  len0 = len;
  got0 = 0;
  got1 = 0;
  got2 = 0;
  // Classify checked the frame lies inside the pool; should its descriptor have changed since, no form is copied from it.
  state1 = inside ? 0 : FAILED;
  state2 = inside ? 0 : FAILED;
}

/** The form client `c` receives the current frame in; FORM_NONE, counted for the client, when the pool has no room for it. */
export function egressPick(c: u32): u32 {
  const untagged = (load<u32>(untagBits + (<usize>(c >> 5) << 2)) & (<u32>1 << (c & 31))) != 0;
  let f: u32;
  if (untagged) f = rxKind == RX_UNTAGGED ? FORM_RX : untaggedForm();
  else f = rxKind == RX_TAGGED ? FORM_RX : taggedForm();
  if (f == FORM_NONE) {
    const cc = clientCounters + <usize>c * CLIENT_COUNTER_BYTES;
    store<u64>(cc + C_POOL_DROPS, load<u64>(cc + C_POOL_DROPS) + 1);
  }
  return f;
}

/** The pool offset of form `f` of the current frame. */
export function egressOffset(f: u32): u32 {
  return f == FORM_RX ? off0 : f == FORM_UNTAGGED ? off1 : off2;
}

/** The length of form `f` of the current frame. */
export function egressLength(f: u32): u32 {
  return f == FORM_RX ? len0 : f == FORM_UNTAGGED ? len1 : len2;
}

/** Notes one receiver's descriptor of form `f`. */
export function egressTook(f: u32): void {
  if (f == FORM_RX) got0++;
  else if (f == FORM_UNTAGGED) got1++;
  else got2++;
}

/** Ends the current frame: pins each form once per receiver (a written form held one pin of its own until now). */
export function egressEnd(): void {
  const pins = lp + pinsOff;
  if (got0 != 0) pinFrame(pins, off0, <i32>got0);
  if (state1 == MADE) pinFrame(pins, off1, <i32>got1 - 1);
  if (state2 == MADE) pinFrame(pins, off2, <i32>got2 - 1);
}

/** The bytes the burst's frames span (descriptors outside the pool were never delivered and are left out). */
function spanFind(): void {
  let lo: u32 = 0xffff_ffff;
  let hi: u32 = 0;
  const d = lp + descOff;
  for (let j: u32 = 0; j < count; j++) {
    const o = load<u32>(d + (<usize>j << 3));
    const n = load<u32>(d + (<usize>j << 3), 4);
    if (n == 0 || n > poolBytes || o > poolBytes - n) continue;
    if (o < lo) lo = o;
    if (o + n > hi) hi = o + n;
  }
  spanLo = lo;
  spanHi = hi;
  spanKnown = true;
}

/**
 * A place for `len` bytes in the pool that no frame of the burst and no pinned frame uses, pinned once at once (so a
 * second form of the same frame cannot take it); NO_SPACE, counted as the lane's poolFull, when there is none.
 */
function place(len: u32): u32 {
  if (!spanKnown) spanFind();
  const at = poolPlace(lp, len, lp + descOff, count, spanLo, spanHi);
  if (at == NO_SPACE) {
    bump(lp, X_POOL_FULL);
    return NO_SPACE;
  }
  pinFrame(lp + pinsOff, at, 1);
  return at;
}

/** The frame without the bridge's tag (its first 12 bytes, then everything after the tag), written once. */
function untaggedForm(): u32 {
  if (state1 == MADE) return FORM_UNTAGGED;
  if (state1 == FAILED) return FORM_NONE;
  const n = len0 - 4;
  const at = place(n);
  if (at == NO_SPACE) {
    state1 = FAILED;
    return FORM_NONE;
  }
  const src = lp + poolOff + <usize>off0;
  const dst = lp + poolOff + <usize>at;
  memory.copy(dst, src, 12);
  memory.copy(dst + 12, src + 16, <usize>(n - 12));
  off1 = at;
  len1 = n;
  state1 = MADE;
  return FORM_UNTAGGED;
}

/**
 * The frame with its VLAN's tag, written once: an untagged frame gets a tag of the uplink's PVID (priority 0) after its
 * addresses; a priority-tagged one keeps its priority and DEI and takes the PVID as its VID.
 */
function taggedForm(): u32 {
  if (state2 == MADE) return FORM_TAGGED;
  if (state2 == FAILED) return FORM_NONE;
  const n = rxKind == RX_PRIORITY ? len0 : len0 + 4;
  const at = place(n);
  if (at == NO_SPACE) {
    state2 = FAILED;
    return FORM_NONE;
  }
  const src = lp + poolOff + <usize>off0;
  const dst = lp + poolOff + <usize>at;
  if (rxKind == RX_PRIORITY) {
    memory.copy(dst, src, <usize>n);
    put16(dst, 14, (be16(src, 14) & 0xf000) | pvid);
  } else {
    memory.copy(dst, src, 12);
    put16(dst, 12, tpid);
    put16(dst, 14, pvid);
    memory.copy(dst + 16, src + 12, <usize>(len0 - 12));
  }
  off2 = at;
  len2 = n;
  state2 = MADE;
  return FORM_TAGGED;
}
