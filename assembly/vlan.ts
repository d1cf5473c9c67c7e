// Data plane (Wasm): VLANs. Reads a frame's 802.1Q / 802.1ad tags (never past the frame), admits it into a VLAN by the
// uplink's membership, and settles a verdict on (MAC, VID): receivers outside the frame's VLAN do not count.

import {
  R_BROADCAST, R_DROP_UNKNOWN, R_DROP_VLAN, R_MC_ALL, R_MC_EXACT, R_MC_HASH, R_SOFTWARE, R_UNICAST, TPID_8021AD, TPID_8021Q,
  V_NO_REF, V_REF_SHIFT, V_RULE_MASK, V_VLAN_SHIFT, VL_PVID_MASK, VL_PVID_SHIFT, VL_TPID_MASK,
} from './layout';
import { clients, groupsOff, promiscOff, vlanBitsOff, vlanMapOff, words } from './plan';

/** The verdict of a frame its VLAN does not admit. */
// @ts-ignore: decorator
@inline export const VLAN_DROP: u32 = R_DROP_VLAN | (V_NO_REF << V_REF_SHIFT);

/** The big-endian u16 at `p` + `at`. */
// @ts-ignore: decorator
@inline function be16(p: usize, at: usize): u32 {
  return <u32>bswap<u16>(load<u16>(p + at));
}

// @ts-ignore: decorator
@inline function isTpid(t: u32): bool {
  return t == TPID_8021Q || t == TPID_8021AD;
}

/**
 * The VLAN a frame of `len` bytes (at least 14) at `p` travels in, under the bank's VLAN word `cfg`: its slot (1..255) in
 * bits 0..7 and, in bit 8, whether it carries the bridge's tag (4 bytes the frame loses on the way in); 0 for drop-vlan.
 * A tag-like EtherType in a frame too short for the tag and the EtherType after it is a cut tag: nothing past it is read.
 */
// @ts-ignore: decorator
@inline export function vlanAdmit(bank: usize, p: usize, len: u32, cfg: u32): u32 {
  const outer = be16(p, 12);
  let vid = (cfg >> VL_PVID_SHIFT) & VL_PVID_MASK;
  let tagged: u32 = 0;
  if (isTpid(outer)) {
    if (len < 18) return 0;
    if (len < 22 && isTpid(be16(p, 16))) return 0;
    // A tag of the other kind is payload to this bridge: the frame travels untagged, in the PVID's VLAN.
    if (outer == (cfg & VL_TPID_MASK)) {
      tagged = 1;
      const tv = be16(p, 14) & 0xfff;
      // VID 0 is a priority tag: the frame is in the PVID's VLAN.
      if (tv != 0) vid = tv;
    }
  }
  if (vid == 0) return 0;
  const slot = <u32>load<u8>(bank + vlanMapOff + <usize>vid);
  return slot == 0 ? 0 : slot | (tagged << 8);
}

/**
 * The TPID of VLAN word `cfg` as the low half of a little-endian u32 load at a frame's byte 12 reads it; a value no 16-bit
 * half can equal when that TPID is neither 802.1Q nor 802.1ad (vlanAdmit() reads no tag then).
 */
// @ts-ignore: decorator
@inline export function vlanTpidLE(cfg: u32): u32 {
  const t = cfg & VL_TPID_MASK;
  return isTpid(t) ? <u32>bswap<u16>(<u16>t) : 0x1_0000;
}

/** True when a bitmap of receivers other than the verdict's own client (`set`, 0 for none, or-ed with `extra`) meets `members`. */
function meets(set: usize, extra: usize, members: usize): bool {
  for (let w: u32 = 0; w < words; w++) {
    const o = <usize>w << 2;
    let b: u32 = set != 0 ? load<u32>(set + o) : 0;
    if (extra != 0) b |= load<u32>(extra + o);
    if ((b & load<u32>(members + o)) != 0) return true;
  }
  return false;
}

/** The client bitmap of VLAN slot `slot` (1..255) in `bank`. */
// @ts-ignore: decorator
@inline export function vlanMembers(bank: usize, slot: u32): usize {
  return bank + vlanBitsOff + <usize>(slot - 1) * <usize>words * 4;
}

/**
 * Settles verdict `v` of a frame in VLAN slot `slot`: a drop stays as it is; broadcast stays (it reaches the VLAN's
 * receivers, possibly none); any other verdict with no receiver in the VLAN becomes drop-vlan. The slot goes into the word.
 */
export function vlanSettle(v: u32, slot: u32, bank: usize, anyPromisc: bool): u32 {
  const rule = v & V_RULE_MASK;
  if (rule >= R_DROP_UNKNOWN) return v;
  const tagged = v | (slot << V_VLAN_SHIFT);
  if (rule == R_BROADCAST) return tagged;
  const members = vlanMembers(bank, slot);
  const ref = v >> V_REF_SHIFT;
  const promisc = anyPromisc ? bank + promiscOff : 0;
  if (rule == R_MC_EXACT || rule == R_MC_HASH || rule == R_MC_ALL) {
    return meets(bank + groupsOff + <usize>ref * <usize>words * 4, promisc, members) ? tagged : VLAN_DROP;
  }
  if ((rule == R_UNICAST || rule == R_SOFTWARE) && ref < clients) {
    if ((load<u32>(members + (<usize>(ref >> 5) << 2)) & (<u32>1 << (ref & 31))) != 0) return tagged;
  }
  return promisc != 0 && meets(0, promisc, members) ? tagged : VLAN_DROP;
}
