// Data plane (Wasm): the two-bank reader protocol. Readers announce the bank they read and never wait; the writer
// publishes a bank, then waits for the other one to have no reader before it touches it.

import { H_ACTIVE, H_HOLD, L_STATE, X_READER_RETRIES } from './layout';
import { bank0, bank1, base, lanePtr, lanes } from './plan';
import { bump } from './lanes';

/** Publishes `bank` to readers: every burst that starts afterwards uses it. */
export function publish(bank: u32): void {
  atomic.store<u32>(base + H_ACTIVE, bank & 1);
}

/** Returns how many lanes are inside a burst on `bank` right now; a writer waits for 0 before touching it. */
export function readersOn(bank: u32): u32 {
  let n: u32 = 0;
  for (let l: u32 = 0; l < lanes; l++) if (atomic.load<u32>(lanePtr(l) + L_STATE) == bank + 1) n++;
  return n;
}

/** Sets (1) or clears (0) the hold: while it is set every burst drops every frame, on the software path. */
export function setHold(on: u32): void {
  atomic.store<u32>(base + H_HOLD, on != 0 ? 1 : 0);
}

/**
 * Enters a burst: announces the bank this lane reads, then checks it is still the published one.
 * A writer flips first and scans second, so either it sees the announcement and waits, or the
 * reader sees the flip and retries on the new bank. Readers never wait for a writer.
 */
export function enter(lanePtrV: usize): usize {
  for (;;) {
    const c = atomic.load<u32>(base + H_ACTIVE);
    atomic.store<u32>(lanePtrV + L_STATE, c + 1);
    if (atomic.load<u32>(base + H_ACTIVE) == c) return c == 0 ? bank0 : bank1;
    bump(lanePtrV, X_READER_RETRIES);
  }
  return 0;
}

// @ts-ignore: decorator
@inline export function leave(lanePtrV: usize): void {
  atomic.store<u32>(lanePtrV + L_STATE, 0);
}
