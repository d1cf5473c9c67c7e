// Data plane (Wasm): delivery. Puts a descriptor of each classified frame into the receive rings of its clients (one
// producer lane at a time; the frame stays in the lane's pool, pinned until every receiver released it; under VLANs each
// receiver's descriptor points at the form its port sends, see egress.ts) and owns the rings' and clients' bookkeeping.

import {
  B_FLAGS, B_PROMISC_COUNT, B_VLAN, V_VLAN_SHIFT, C_BROADCAST, C_BYTES, C_FRAMES, C_MULTICAST, C_RING_DROPS, CLIENT_COUNTER_BYTES,
  H_DELIVERER, R_BROADCAST,
  R_DROP_UNKNOWN, R_MC_ALL, R_MC_EXACT, R_MC_HASH, R_PROMISC, RING_DATA, RING_HEAD, RING_RELEASED, RING_SHADOW, RING_SLEEPERS,
  S_LENGTH, S_OFFSET, S_STATE, S_VERDICT, SLOT_BYTES, V_NO_REF, V_REF_SHIFT, V_RULE_MASK, X_DELIVERIES, X_RING_CORRUPT, X_RING_FULL,
} from './layout';
import {
  base, bcastOff, burst, clientCounters, clients, descOff, groupsOff, lanePtr, lanes, pinsOff, poolOff, promiscOff, ringBytes,
  touchedOff, verdictOff, words,
} from './plan';
import { pinFrame, ringAt, ringEmpty } from './pool';
import { enter, leave } from './reader';
import { bump, bumpStriped, ownsLane } from './lanes';
import { classifyOne, held } from './classify';
import { vlanMembers } from './vlan';
import { egressBurst, egressEnd, egressFrame, egressLength, egressOffset, egressPick, egressTook, FORM_NONE } from './egress';

/**
 * Gives client `client` an empty ring and zero counters (its id was reused). Only for an id no bank delivers to:
 * no producer touches the ring meanwhile. The frames left in it are unpinned.
 */
export function clientReset(client: u32): void {
  if (client >= clients) return;
  ringEmpty(client);
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

/**
 * Puts a descriptor of the frame at `off` (lane `lane`'s pool) into a client's ring; returns 1 if it did. Full or corrupt
 * rings drop it and count for that client only. The caller pins the frame's pool lines once for all its receivers.
 */
function enqueue(lp: usize, lane: u32, client: u32, off: u32, len: u32, verdict: u32, rule: u32, multicast: bool): u32 {
  const r = ringAt(client);
  const cc = clientCounters + <usize>client * CLIENT_COUNTER_BYTES;
  const slots = ringBytes / SLOT_BYTES;
  // Within a burst the producer advances a private copy of the head; one atomic store per ring publishes it at the end.
  const touchedWord = lp + touchedOff + (<usize>(client >> 5) << 2);
  const bit: u32 = 1 << (client & 31);
  const touched = (load<u32>(touchedWord) & bit) != 0;
  const head = touched ? load<u32>(r + RING_SHADOW) : atomic.load<u32>(r + RING_HEAD);
  // Slots are reused once released, not when taken: a taken frame's view stays valid until its release.
  const used = head - atomic.load<u32>(r + RING_RELEASED);
  if (used > slots) {
    bump(lp, X_RING_CORRUPT);
    store<u64>(cc + C_RING_DROPS, load<u64>(cc + C_RING_DROPS) + 1);
    return 0;
  }
  if (used == slots) {
    bump(lp, X_RING_FULL);
    store<u64>(cc + C_RING_DROPS, load<u64>(cc + C_RING_DROPS) + 1);
    return 0;
  }
  const slot = r + RING_DATA + <usize>(head & (slots - 1)) * SLOT_BYTES;
  store<u32>(slot + S_OFFSET, off);
  store<u32>(slot + S_LENGTH, len);
  store<u32>(slot + S_VERDICT, verdict);
  // Plain: the head's atomic store at the end of the burst publishes the whole slot.
  store<u32>(slot + S_STATE, lane);
  store<u32>(r + RING_SHADOW, head + 1);
  store<u32>(touchedWord, load<u32>(touchedWord) | bit);
  store<u64>(cc + C_FRAMES, load<u64>(cc + C_FRAMES) + 1);
  store<u64>(cc + C_BYTES, load<u64>(cc + C_BYTES) + <u64>len);
  if (rule == R_BROADCAST) store<u64>(cc + C_BROADCAST, load<u64>(cc + C_BROADCAST) + 1);
  else if (multicast) store<u64>(cc + C_MULTICAST, load<u64>(cc + C_MULTICAST) + 1);
  bump(lp, X_DELIVERIES);
  return 1;
}

/**
 * Puts a descriptor of the frame into client `client`'s ring: without VLANs (`vlan` 0) the frame as received, else the form
 * the client's VLAN egress asks for (see egress.ts), which egressEnd() pins.
 */
// @ts-ignore: decorator
@inline function deliverTo(
  lp: usize, lane: u32, client: u32, off: u32, len: u32, verdict: u32, rule: u32, multicast: bool, vlan: usize,
): u32 {
  if (vlan == 0) return enqueue(lp, lane, client, off, len, verdict, rule, multicast);
  const f = egressPick(client);
  if (f == FORM_NONE) return 0;
  const n = enqueue(lp, lane, client, egressOffset(f), egressLength(f), verdict, rule, multicast);
  if (n != 0) egressTook(f);
  return n;
}

/**
 * Delivers to every client set in `set` (and `extra`, a second bitmap or 0) and in `vlan` (the frame's VLAN members, or 0
 * without VLANs), skipping `exclude` and `skip`.
 */
function fanOut(
  lp: usize, lane: u32, set: usize, extra: usize, vlan: usize, exclude: u32, skip: u32, off: u32, len: u32, verdict: u32, rule: u32,
  multicast: bool,
): u32 {
  let n: u32 = 0;
  for (let w: u32 = 0; w < words; w++) {
    let bits = load<u32>(set + (<usize>w << 2));
    if (extra != 0) bits |= load<u32>(extra + (<usize>w << 2));
    if (vlan != 0) bits &= load<u32>(vlan + (<usize>w << 2));
    while (bits != 0) {
      const c = (w << 5) + ctz(bits);
      if (c != exclude && c != skip && c < clients) n += deliverTo(lp, lane, c, off, len, verdict, rule, multicast, vlan);
      bits &= bits - 1;
    }
  }
  return n;
}

/**
 * Classifies `count` frames of lane `lane` like classifyBurst, then puts a descriptor of each into the ring of
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
  const vcfg = load<u32>(bank + B_VLAN);
  const pins = lp + pinsOff;
  if (vcfg != 0) egressBurst(lp, count);
  for (let i: u32 = 0; i < count; i++) {
    const v = classifyOne(bank, lp, i, flags, anyPromisc, vcfg);
    store<u32>(verdicts + (<usize>i << 2), v);
    const rule = v & V_RULE_MASK;
    bumpStriped(lp, rule, i);
    if (rule >= R_DROP_UNKNOWN) continue;
    const d = lp + descOff + (<usize>i << 3);
    const off = load<u32>(d);
    const len = load<u32>(d, 4);
    const multicast = (load<u8>(lp + poolOff + <usize>off) & 1) != 0;
    const ref = v >> V_REF_SHIFT;
    // Under VLAN filtering only the members of the frame's VLAN receive it.
    const slot = (v >> V_VLAN_SHIFT) & 0xff;
    const vlan = slot != 0 ? vlanMembers(bank, slot) : 0;
    if (vlan != 0) egressFrame(bank, vcfg, slot, off, len);
    let n: u32 = 0;
    if (rule == R_BROADCAST) {
      n = fanOut(lp, lane, bank + bcastOff, anyPromisc ? promisc : 0, vlan, exclude, V_NO_REF, off, len, v, rule, multicast);
    } else if (rule == R_MC_EXACT || rule == R_MC_HASH || rule == R_MC_ALL) {
      const members = bank + groupsOff + <usize>ref * <usize>words * 4;
      n = fanOut(lp, lane, members, anyPromisc ? promisc : 0, vlan, exclude, V_NO_REF, off, len, v, rule, multicast);
    } else if (rule == R_PROMISC) {
      n = fanOut(lp, lane, promisc, 0, vlan, exclude, V_NO_REF, off, len, v, rule, multicast);
    } else {
      // Unicast to one client, plus any promiscuous ones (without delivering twice).
      const inVlan = vlan == 0 || (ref < clients && (load<u32>(vlan + (<usize>(ref >> 5) << 2)) & (<u32>1 << (ref & 31))) != 0);
      if (ref != exclude && ref < clients && inVlan) n = deliverTo(lp, lane, ref, off, len, v, rule, multicast, vlan);
      if (anyPromisc) n += fanOut(lp, lane, promisc, 0, vlan, exclude, ref, off, len, v, rule, multicast);
    }
    // One pin per receiver, added once per frame (classify checked the frame lies inside the pool); under VLANs per form.
    if (vlan != 0) egressEnd();
    else if (n != 0) pinFrame(pins, off, <i32>n);
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
      const r = ringAt(c);
      atomic.store<u32>(r + RING_HEAD, load<u32>(r + RING_SHADOW));
      // The head was published with a sequentially consistent store before this load: either the
      // sleeper sees the new head before it waits, or this load sees its flag and wakes it.
      if (atomic.load<u32>(r + RING_SLEEPERS) != 0) atomic.notify(r + RING_HEAD, 1);
      bits &= bits - 1;
    }
  }
  return live ? count : 0;
}
