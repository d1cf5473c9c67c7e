// Data plane (Wasm): delivery. Copies classified frames into the receive rings of their clients (one producer lane at a
// time) and owns the rings' and clients' bookkeeping.

import {
  B_FLAGS, B_PROMISC_COUNT, C_BROADCAST, C_BYTES, C_FRAMES, C_MULTICAST, C_RING_DROPS, CLIENT_COUNTER_BYTES, H_DELIVERER, R_BROADCAST,
  R_DROP_UNKNOWN, R_MC_ALL, R_MC_EXACT, R_MC_HASH, R_PROMISC, REC_HEADER, REC_WRAP, RING_DATA, RING_HEAD, RING_SHADOW, RING_SLEEPERS,
  RING_TAIL, V_NO_REF, V_REF_SHIFT, V_RULE_MASK, X_DELIVERIES, X_RING_CORRUPT, X_RING_FULL,
} from './layout';
import {
  base, bcastOff, burst, clientCounters, clients, descOff, groupsOff, lanePtr, lanes, poolOff, promiscOff, ringBytes, rings, touchedOff,
  verdictOff, words,
} from './plan';
import { enter, leave } from './reader';
import { bump, bumpStriped, ownsLane } from './lanes';
import { classifyOne, held } from './classify';

/**
 * Gives client `client` an empty ring and zero counters (its id was reused). Only for an id no bank delivers to:
 * no producer touches the ring meanwhile. The indices are realigned, should a hostile writer have skewed them.
 */
export function clientReset(client: u32): void {
  if (client >= clients) return;
  const r = rings + <usize>client * (RING_DATA + <usize>ringBytes);
  const head = (atomic.load<u32>(r + RING_HEAD) + 7) & ~7;
  atomic.store<u32>(r + RING_TAIL, head);
  atomic.store<u32>(r + RING_HEAD, head);
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

/** Copies exactly `len` bytes; inline vector moves beat a memory.copy call for frame-sized copies. */
// @ts-ignore: decorator
@inline function copyFrame(dst: usize, src: usize, len: u32): void {
  let i: u32 = 0;
  for (; i + 16 <= len; i += 16) v128.store(dst + <usize>i, v128.load(src + <usize>i));
  for (; i + 8 <= len; i += 8) store<u64>(dst + <usize>i, load<u64>(src + <usize>i));
  for (; i < len; i++) store<u8>(dst + <usize>i, load<u8>(src + <usize>i));
}

/** Copies one frame into a client's ring; full or corrupt rings drop it and count for that client only. */
function enqueue(lp: usize, client: u32, src: usize, len: u32, verdict: u32, rule: u32, multicast: bool): void {
  const r = rings + <usize>client * (RING_DATA + <usize>ringBytes);
  const cc = clientCounters + <usize>client * CLIENT_COUNTER_BYTES;
  // Within a burst the producer advances a private copy of the head; one atomic store per ring publishes it at the end.
  const touchedWord = lp + touchedOff + (<usize>(client >> 5) << 2);
  const bit: u32 = 1 << (client & 31);
  const touched = (load<u32>(touchedWord) & bit) != 0;
  const head = touched ? load<u32>(r + RING_SHADOW) : atomic.load<u32>(r + RING_HEAD);
  const tail = atomic.load<u32>(r + RING_TAIL);
  const used = head - tail;
  // Indices are free-running byte counts on 8-byte records; anything else is a corrupt ring.
  if (used > ringBytes || ((head | tail) & 7) != 0) {
    bump(lp, X_RING_CORRUPT);
    store<u64>(cc + C_RING_DROPS, load<u64>(cc + C_RING_DROPS) + 1);
    return;
  }
  const need = (REC_HEADER + len + 7) & ~7;
  const pos = head & (ringBytes - 1);
  const toEnd = ringBytes - pos;
  const pad: u32 = toEnd < need ? toEnd : 0;
  if (ringBytes - used < need + pad) {
    bump(lp, X_RING_FULL);
    store<u64>(cc + C_RING_DROPS, load<u64>(cc + C_RING_DROPS) + 1);
    return;
  }
  const data = r + RING_DATA;
  let at = pos;
  if (pad != 0) {
    store<u32>(data + <usize>pos, REC_WRAP);
    at = 0;
  }
  store<u32>(data + <usize>at, len);
  store<u32>(data + <usize>at, verdict, 4);
  copyFrame(data + <usize>at + REC_HEADER, src, len);
  store<u32>(r + RING_SHADOW, head + pad + need);
  store<u32>(touchedWord, load<u32>(touchedWord) | bit);
  store<u64>(cc + C_FRAMES, load<u64>(cc + C_FRAMES) + 1);
  store<u64>(cc + C_BYTES, load<u64>(cc + C_BYTES) + <u64>len);
  if (rule == R_BROADCAST) store<u64>(cc + C_BROADCAST, load<u64>(cc + C_BROADCAST) + 1);
  else if (multicast) store<u64>(cc + C_MULTICAST, load<u64>(cc + C_MULTICAST) + 1);
  bump(lp, X_DELIVERIES);
}

/** Delivers to every client set in `set` (and `extra`, a second bitmap or 0), skipping `exclude` and `skip`. */
function fanOut(
  lp: usize, set: usize, extra: usize, exclude: u32, skip: u32, src: usize, len: u32, verdict: u32, rule: u32, multicast: bool,
): void {
  for (let w: u32 = 0; w < words; w++) {
    let bits = load<u32>(set + (<usize>w << 2));
    if (extra != 0) bits |= load<u32>(extra + (<usize>w << 2));
    while (bits != 0) {
      const c = (w << 5) + ctz(bits);
      if (c != exclude && c != skip && c < clients) enqueue(lp, c, src, len, verdict, rule, multicast);
      bits &= bits - 1;
    }
  }
}

/**
 * Classifies `count` frames of lane `lane` like classifyBurst, then copies each into the ring of
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
  for (let i: u32 = 0; i < count; i++) {
    const v = classifyOne(bank, lp, i, flags, anyPromisc);
    store<u32>(verdicts + (<usize>i << 2), v);
    const rule = v & V_RULE_MASK;
    bumpStriped(lp, rule, i);
    if (rule >= R_DROP_UNKNOWN) continue;
    const d = lp + descOff + (<usize>i << 3);
    const src = lp + poolOff + <usize>load<u32>(d);
    const len = load<u32>(d, 4);
    const multicast = (load<u8>(src) & 1) != 0;
    const ref = v >> V_REF_SHIFT;
    if (rule == R_BROADCAST) {
      fanOut(lp, bank + bcastOff, anyPromisc ? promisc : 0, exclude, V_NO_REF, src, len, v, rule, multicast);
    } else if (rule == R_MC_EXACT || rule == R_MC_HASH || rule == R_MC_ALL) {
      const members = bank + groupsOff + <usize>ref * <usize>words * 4;
      fanOut(lp, members, anyPromisc ? promisc : 0, exclude, V_NO_REF, src, len, v, rule, multicast);
    } else if (rule == R_PROMISC) {
      fanOut(lp, promisc, 0, exclude, V_NO_REF, src, len, v, rule, multicast);
    } else {
      // Unicast to one client, plus any promiscuous ones (without delivering twice).
      if (ref != exclude && ref < clients) enqueue(lp, ref, src, len, v, rule, multicast);
      if (anyPromisc) fanOut(lp, promisc, 0, exclude, ref, src, len, v, rule, multicast);
    }
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
      const r = rings + <usize>c * (RING_DATA + <usize>ringBytes);
      atomic.store<u32>(r + RING_HEAD, load<u32>(r + RING_SHADOW));
      // The head was published with a sequentially consistent store before this load: either the
      // sleeper sees the new head before it waits, or this load sees its flag and wakes it.
      if (atomic.load<u32>(r + RING_SLEEPERS) != 0) atomic.notify(r + RING_HEAD, 1);
      bits &= bits - 1;
    }
  }
  return live ? count : 0;
}
