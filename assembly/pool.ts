// Data plane (Wasm): the lane pool's zero-copy bookkeeping. Every frame in a ring pins the pool line it starts on; the lane
// places new frames only on lines whose frame is unpinned, and under pressure takes pending (untaken) frames back from the
// slowest ring.

import {
  C_POOL_DROPS, CLIENT_COUNTER_BYTES, H_DELIVERER, H_REVOKING, L_CURSOR, L_ORIGIN, NO_SPACE, POOL_LINE_SHIFT, RING_DATA, RING_HEAD,
  RING_RELEASED, RING_BUSY, RING_TAIL, S_LENGTH, S_OFFSET, S_STATE, SLOT_BYTES, SLOT_LANE, SLOT_REVOKED, SLOT_TAKEN, X_POOL_DROPS,
  X_POOL_FULL,
} from './layout';
import { backOff, base, clientCounters, clients, lanePtr, lanes, pinsOff, poolBytes, poolLines, ringBytes, rings } from './plan';
import { bump, ownsLane } from './lanes';

/** Address of client `c`'s ring. */
// @ts-ignore: decorator
@inline export function ringAt(c: u32): usize {
  return rings + <usize>c * (RING_DATA + <usize>ringBytes);
}

/** Adds `delta` to the pin count of the line the frame at `off` starts on (pins at `pins`; `off` is inside the pool). */
// @ts-ignore: decorator
@inline export function pinFrame(pins: usize, off: u32, delta: i32): void {
  atomic.add<u32>(pins + (<usize>(off >> POOL_LINE_SHIFT) << 2), <u32>delta);
}

/** True when the slot's frame lies inside a lane's pool (a hostile writer may have changed a slot). */
// @ts-ignore: decorator
@inline export function slotSane(off: u32, len: u32, lane: u32): bool {
  return lane < lanes && len != 0 && len <= poolBytes && off <= poolBytes - len;
}

/**
 * The answer of a run of lines `pos`..`pos` + `need` - 1 that overlaps a frame described in a burst (`count` descriptors at
 * `descs`, all inside the bytes [`lo`, `hi`)): how many lines past `pos` the search may skip minus one, or NO_SPACE when
 * the run overlaps none of them.
 */
function overlapSkip(pos: u32, need: u32, descs: usize, count: u32, lo: u32, hi: u32): u32 {
  const a = pos << POOL_LINE_SHIFT;
  const b = (pos + need) << POOL_LINE_SHIFT;
  if (b <= lo || a >= hi) return NO_SPACE;
  for (let j: u32 = 0; j < count; j++) {
    const off = load<u32>(descs + (<usize>j << 3));
    const len = load<u32>(descs + (<usize>j << 3), 4);
    if (len == 0 || len > poolBytes || off > poolBytes - len) continue;
    // The frame's last line is past `pos` (it ends after the run starts): the search resumes after it.
    if (off < b && off + len > a) return ((off + len + (<u32>1 << POOL_LINE_SHIFT) - 1) >> POOL_LINE_SHIFT) - pos - 1;
  }
  return NO_SPACE;
}

/**
 * Finds free lines for `len` bytes in one run within the window of the current batch, ending inside the pool; moves the
 * cursor past them. With `count` non-zero the run also avoids every frame described at `descs` (see overlapSkip).
 */
function findLines(lp: usize, len: u32, descs: usize, count: u32, lo: u32, hi: u32): u32 {
  const need = (len + (<u32>1 << POOL_LINE_SHIFT) - 1) >> POOL_LINE_SHIFT;
  const pins = lp + pinsOff;
  const back = lp + backOff;
  let c = load<u32>(lp + L_CURSOR);
  let origin = load<u32>(lp + L_ORIGIN);
  // The window is one lap from where the batch began, so a batch never reuses its own frames' lines.
  if (c - origin > poolLines) origin = c;
  const end = origin + poolLines;
  while (end - c >= need && <i32>(end - c) > 0) {
    const pos = c % poolLines;
    // The last line may be partly past the pool's end: a run there must still hold the whole frame.
    if (pos + need > poolLines || (pos << POOL_LINE_SHIFT) + len > poolBytes) {
      c += poolLines - pos;
      continue;
    }
    let busy: u32 = NO_SPACE;
    for (let k: u32 = 0; k < need; k++) {
      // A line is free when the frame that last covered it is unpinned; only this lane writes the distances.
      const line = pos + k;
      const dist = load<u32>(back + (<usize>line << 2));
      const head = dist <= line ? line - dist : line;
      if (atomic.load<u32>(pins + (<usize>head << 2)) != 0) {
        busy = k;
        break;
      }
    }
    if (busy == NO_SPACE && count != 0) busy = overlapSkip(pos, need, descs, count, lo, hi);
    if (busy == NO_SPACE) {
      for (let k: u32 = 0; k < need; k++) store<u32>(back + (<usize>(pos + k) << 2), k);
      store<u32>(lp + L_CURSOR, c + need);
      return pos << POOL_LINE_SHIFT;
    }
    c += busy + 1;
  }
  return NO_SPACE;
}

/**
 * Returns an offset in the pool of the lane at `lp` for `len` bytes the ring producer writes during a burst (a frame's
 * other form, see egress.ts), or NO_SPACE: free lines after the batch's frames that overlap none of the `count` frames
 * the burst describes at `descs` (inside [`lo`, `hi`)). When the batch's window is used up the search starts over from
 * the pool's start, as a new batch would: pins and the burst's descriptors still guard every frame in use. Takes nothing
 * back from rings.
 */
export function poolPlace(lp: usize, len: u32, descs: usize, count: u32, lo: u32, hi: u32): u32 {
  if (len == 0 || len > poolBytes) return NO_SPACE;
  const at = findLines(lp, len, descs, count, lo, hi);
  if (at != NO_SPACE) return at;
  store<u32>(lp + L_CURSOR, 0);
  store<u32>(lp + L_ORIGIN, 0);
  return findLines(lp, len, descs, count, lo, hi);
}

/**
 * Takes back the pending frames of lane `lane` in client `c`'s ring, oldest first, at most `max`; each is counted against
 * that client. A compare-and-swap on the slot's state decides each frame against a consumer taking it at the same time.
 */
function revokeIn(lane: u32, c: u32, max: u32): u32 {
  const r = ringAt(c);
  // A consumer busy in its ring may be using plain stores (it saw no revocation running): leave that ring alone.
  if (atomic.load<u32>(r + RING_BUSY) != 0) return 0;
  const slots = ringBytes / SLOT_BYTES;
  const head = atomic.load<u32>(r + RING_HEAD);
  const tail = atomic.load<u32>(r + RING_TAIL);
  if (head - tail > slots) return 0;
  const pins = lanePtr(lane) + pinsOff;
  const cc = clientCounters + <usize>c * CLIENT_COUNTER_BYTES;
  let n: u32 = 0;
  for (let i = tail; i != head && n < max; i++) {
    const s = r + RING_DATA + (<usize>(i & (slots - 1)) * SLOT_BYTES);
    const off = load<u32>(s + S_OFFSET);
    const len = load<u32>(s + S_LENGTH);
    if (!slotSane(off, len, lane)) continue;
    if (atomic.cmpxchg<u32>(s + S_STATE, lane, lane | SLOT_REVOKED) != lane) continue;
    pinFrame(pins, off, -1);
    store<u64>(cc + C_POOL_DROPS, load<u64>(cc + C_POOL_DROPS) + 1);
    n++;
  }
  return n;
}

/** Takes back the oldest half (at least one) of the pending frames in the ring with the most of them; returns how many. */
function revokeSlowest(lane: u32): u32 {
  let worst: u32 = NO_SPACE;
  let most: u32 = 0;
  const slots = ringBytes / SLOT_BYTES;
  for (let c: u32 = 0; c < clients; c++) {
    const r = ringAt(c);
    const pending = atomic.load<u32>(r + RING_HEAD) - atomic.load<u32>(r + RING_TAIL);
    if (pending <= slots && pending > most) {
      most = pending;
      worst = c;
    }
  }
  if (worst == NO_SPACE) return 0;
  const n = revokeIn(lane, worst, (most + 1) >> 1);
  if (n != 0) return n;
  // The slowest ring's pending frames sit in other lanes' pools: take this lane's back from every ring.
  let all: u32 = 0;
  for (let c: u32 = 0; c < clients; c++) all += revokeIn(lane, c, slots);
  return all;
}

/**
 * Returns an offset in lane `lane`'s pool where a frame of `len` bytes may be written (on POOL_LINE boundaries), or
 * NO_SPACE: the first free run of lines from the pool's start for a batch's first frame, the next free run after the
 * previous frame for the others. `begin` non-zero starts a new batch: the frames placed since the last begin are described and not yet
 * delivered, so the lines they use are not free although nothing pins them; a later frame of a batch that finds no room
 * gets NO_SPACE at once (the batch ends there). When a batch's first frame finds every line pinned, only the lane
 * that produces into rings takes pending frames back (it alone writes slots, so no slot changes under it); views a
 * consumer has taken are never taken back.
 */
export function poolAlloc(lane: u32, len: u32, begin: u32): u32 {
  if (lane >= lanes || ownsLane(lane) == 0 || len == 0 || len > poolBytes) return NO_SPACE;
  const lp = lanePtr(lane);
  // A batch fills the pool from its start (first fit), as bursts did before frames stayed in the pool: while consumers
  // keep up, frames land where they always did, and pinned lines are skipped.
  if (begin != 0) {
    store<u32>(lp + L_CURSOR, 0);
    store<u32>(lp + L_ORIGIN, 0);
  }
  for (;;) {
    const at = findLines(lp, len, 0, 0, 0, 0);
    if (at != NO_SPACE) return at;
    // Later frames of a batch only end it: the next batch sees the whole pool, and takes frames back only then.
    if (begin == 0) return NO_SPACE;
    const producer = atomic.load<u32>(base + H_DELIVERER) == lane + 1;
    let taken: u32 = 0;
    if (producer) {
      // Announced before any ring's busy mark is read: a consumer that marks its ring later sees this and uses CAS.
      atomic.add<u32>(base + H_REVOKING, 1);
      taken = revokeSlowest(lane);
      atomic.sub<u32>(base + H_REVOKING, 1);
    }
    if (taken == 0) break;
    for (let k: u32 = 0; k < taken; k++) bump(lp, X_POOL_DROPS);
  }
  bump(lp, X_POOL_FULL);
  return NO_SPACE;
}

/**
 * Empties client `client`'s ring for a new owner of its id: unpins every frame still in it (pending or taken, the old
 * consumer is gone) and realigns the indices. Only for an id no bank delivers to.
 */
export function ringEmpty(client: u32): void {
  const r = ringAt(client);
  const slots = ringBytes / SLOT_BYTES;
  const head = atomic.load<u32>(r + RING_HEAD);
  const released = atomic.load<u32>(r + RING_RELEASED);
  if (head - released <= slots) {
    for (let i = released; i != head; i++) {
      const s = r + RING_DATA + (<usize>(i & (slots - 1)) * SLOT_BYTES);
      const st = atomic.load<u32>(s + S_STATE);
      const lane = st & SLOT_LANE;
      const off = load<u32>(s + S_OFFSET);
      const len = load<u32>(s + S_LENGTH);
      if ((st & SLOT_REVOKED) != 0 || (st & ~(SLOT_LANE | SLOT_TAKEN)) != 0 || !slotSane(off, len, lane)) continue;
      atomic.store<u32>(s + S_STATE, lane | SLOT_REVOKED);
      pinFrame(lanePtr(lane) + pinsOff, off, -1);
    }
  }
  atomic.store<u32>(r + RING_TAIL, head);
  atomic.store<u32>(r + RING_RELEASED, head);
  // An old consumer that died inside a take left its ring marked busy, which keeps the producer from taking frames back.
  atomic.store<u32>(r + RING_BUSY, 0);
}

/**
 * The consumer's instant discard, for client `client`'s ring: takes back every pending frame (compare-and-swap, as the
 * producer does) and unpins it; then, when the consumer holds no taken views (`held` 0), releases up to the head.
 * Returns the frames discarded. Corrupt indices are left for the consumer's own checks (nothing is touched).
 */
export function ringDiscard(client: u32, held: u32): u32 {
  if (client >= clients) return 0;
  const r = ringAt(client);
  const slots = ringBytes / SLOT_BYTES;
  const head = atomic.load<u32>(r + RING_HEAD);
  const tail = atomic.load<u32>(r + RING_TAIL);
  const released = atomic.load<u32>(r + RING_RELEASED);
  if (head - tail > slots || tail - released > slots || head - released > slots) return 0;
  atomic.store<u32>(r + RING_BUSY, 1);
  // With no revocation running, none starts on this ring while it is busy: plain stores decide each slot.
  const plain = atomic.load<u32>(base + H_REVOKING) == 0;
  let n: u32 = 0;
  for (let i = tail; i != head; i++) {
    const s = r + RING_DATA + (<usize>(i & (slots - 1)) * SLOT_BYTES);
    const st = load<u32>(s + S_STATE);
    const lane = st & SLOT_LANE;
    const off = load<u32>(s + S_OFFSET);
    const len = load<u32>(s + S_LENGTH);
    if (st != lane || !slotSane(off, len, lane)) continue;
    if (plain) store<u32>(s + S_STATE, lane | SLOT_REVOKED);
    else if (atomic.cmpxchg<u32>(s + S_STATE, lane, lane | SLOT_REVOKED) != lane) continue;
    pinFrame(lanePtr(lane) + pinsOff, off, -1);
    n++;
  }
  atomic.store<u32>(r + RING_TAIL, head);
  atomic.store<u32>(r + RING_BUSY, 0);
  if (held == 0) atomic.store<u32>(r + RING_RELEASED, head);
  return n;
}
