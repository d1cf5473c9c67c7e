// Data plane (Wasm): lanes, one per thread running bursts. Claims with owner epochs, reclaiming a dead owner's lane,
// and the lane's striped counters.

import { CLAIM_EPOCH, CLAIM_OWNER, H_CLAIMS, H_DELIVERER, L_COUNTERS, L_STATE, STRIPES } from './layout';
import { base, lanePtr, lanes, touchedOff, words } from './plan';

// The claim token of the lane this instance (thread) took, 0 for none: one instance runs one lane.
let ownToken: u32 = 0;

function claimWord(lane: u32): usize {
  return base + H_CLAIMS + <usize>lane * 4;
}

/**
 * Claims lane `lane` for this instance's thread; returns its token (non-zero) on success, 0 if it is taken or out of range.
 * The lane's delivery bookkeeping starts empty: an owner that died mid-burst leaves nothing the next one would publish.
 */
export function claimLane(lane: u32): u32 {
  if (lane >= lanes || ownToken != 0) return 0;
  const at = claimWord(lane);
  const cur = atomic.load<u32>(at);
  if ((cur & CLAIM_OWNER) != 0) return 0;
  const token = ((cur & ~CLAIM_OWNER) + CLAIM_EPOCH) | (lane + 1);
  if (atomic.cmpxchg<u32>(at, cur, token) != cur) return 0;
  memory.fill(lanePtr(lane) + touchedOff, 0, <usize>words * 4);
  ownToken = token;
  return token;
}

/** Gives lane `lane` back, if this instance still owns it. */
export function releaseLane(lane: u32): void {
  if (lane >= lanes || ownToken == 0 || (ownToken & CLAIM_OWNER) != lane + 1) return;
  atomic.cmpxchg<u32>(claimWord(lane), ownToken, ownToken & ~CLAIM_OWNER);
  ownToken = 0;
}

/** Returns 1 while this instance owns lane `lane` (it was not reclaimed), else 0. */
export function ownsLane(lane: u32): u32 {
  return lane < lanes && ownToken != 0 && atomic.load<u32>(claimWord(lane)) == ownToken ? 1 : 0;
}

/** Returns lane `lane`'s reader state: 0 outside a burst, 1 + the bank while inside one. */
export function laneState(lane: u32): u32 {
  return lane < lanes ? atomic.load<u32>(lanePtr(lane) + L_STATE) : 0;
}

/**
 * Takes lane `lane` back from an owner that died (or stalled) inside a burst: frees its claim under a new epoch, so the old
 * owner's token never matches again, withdraws its bank announcement and its ring-producer role. Returns 1 if it was claimed.
 */
export function reclaimLane(lane: u32): u32 {
  if (lane >= lanes) return 0;
  const at = claimWord(lane);
  const cur = atomic.load<u32>(at);
  // A free lane has no owner to revoke, but a stale announcement of it is withdrawn all the same.
  const taken = (cur & CLAIM_OWNER) != 0;
  if (taken && atomic.cmpxchg<u32>(at, cur, (cur & ~CLAIM_OWNER) + CLAIM_EPOCH) != cur) return 0;
  if (taken) atomic.cmpxchg<u32>(base + H_DELIVERER, lane + 1, 0);
  atomic.store<u32>(lanePtr(lane) + L_STATE, 0);
  return taken ? 1 : 0;
}

// @ts-ignore: decorator
@inline export function bump(lanePtrV: usize, counter: u32): void {
  const at = lanePtrV + L_COUNTERS + (<usize>(counter * STRIPES) << 3);
  store<u64>(at, load<u64>(at) + 1);
}

/** Counts a verdict in the copy picked by the frame index (see STRIPES). */
// @ts-ignore: decorator
@inline export function bumpStriped(lanePtrV: usize, counter: u32, i: u32): void {
  const at = lanePtrV + L_COUNTERS + (<usize>(counter * STRIPES + (i & (STRIPES - 1))) << 3);
  store<u64>(at, load<u64>(at) + 1);
}
