// The differential loop the device-profile tests share: random register states, random frames, the Wasm burst path
// against a plain model, verdict by verdict and counter by counter.
import { Buffer } from 'node:buffer';
import { expect } from 'vitest';
import { deviceVerdict, type DeviceFilter } from 'macslot';
import { type ModelVerdict, prng } from './device-models.js';

/** What one differential run needs. */
export interface Differential {
  readonly profile: DeviceFilter;
  readonly model: { classify(f: Uint8Array): ModelVerdict };
  readonly seed: number;
  /** Frames in all (at least 1,000,000 for the test). */
  readonly frames: number;
  /** Frames between two register-state changes. */
  readonly perState: number;
  /** Changes the register state of both sides (the same writes) and returns the addresses worth aiming at. */
  mutate(rng: () => number): number[][];
  /** Draws a frame aimed at those addresses. */
  draw(rng: () => number, targets: readonly number[][]): Uint8Array;
}

/** Runs a differential test and returns how many frames each reason decided (so a test can check coverage). */
export function runDifferential(d: Differential): Map<string, number> {
  const rng = prng(d.seed);
  const seen = new Map<string, number>();
  const before = d.profile.counters();
  let done = 0;
  let targets = d.mutate(rng);
  while (done < d.frames) {
    if (done % d.perState === 0 && done > 0) targets = d.mutate(rng);
    const batch: Uint8Array[] = [];
    const n = Math.min(d.profile.burst, d.perState - (done % d.perState), d.frames - done);
    for (let i = 0; i < n; i++) batch.push(d.draw(rng, targets));
    expect(d.profile.load(batch)).toBe(n);
    d.profile.classifyBurst(n);
    for (let i = 0; i < n; i++) {
      const got = deviceVerdict(d.profile.verdicts[i]!);
      const want = d.model.classify(batch[i]!);
      const gotPlain = got.entry === undefined ? { reason: got.reason } : { reason: got.reason, entry: got.entry };
      if (gotPlain.reason !== want.reason || gotPlain.entry !== want.entry) {
        const hex = Buffer.from(batch[i]!.subarray(0, 18)).toString('hex');
        expect({ frame: hex, length: batch[i]!.length, ...gotPlain }).toEqual({ frame: hex, length: batch[i]!.length, ...want });
      }
      seen.set(want.reason, (seen.get(want.reason) ?? 0) + 1);
    }
    done += n;
  }
  const after = d.profile.counters();
  for (const [reason, count] of seen) expect(after[reason as keyof typeof after] - before[reason as keyof typeof before]).toBe(count);
  return seen;
}

/** A random element. */
export function pick<T>(rng: () => number, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]!;
}

/** Six random bytes, with the group bit as asked (or random). */
export function randomMac(rng: () => number, group?: boolean): number[] {
  const m = Array.from({ length: 6 }, () => Math.floor(rng() * 256));
  if (group !== undefined) m[0] = group ? m[0]! | 1 : m[0]! & 0xfe;
  return m;
}

/** A copy of `mac` with one random bit flipped: a near miss. */
export function nearMiss(rng: () => number, mac: readonly number[]): number[] {
  const m = [...mac];
  const bit = Math.floor(rng() * 48);
  m[bit >> 3]! ^= 1 << (bit & 7);
  return m;
}

/**
 * A destination: one of `targets` with probability `hit`, then a near miss of one (0.1), broadcast (0.1), else random
 * bytes.
 */
export function randomDestination(rng: () => number, targets: readonly (readonly number[])[], hit: number): number[] {
  const r = rng();
  if (r < hit) return [...pick(rng, targets)];
  if (r < hit + 0.1) return nearMiss(rng, pick(rng, targets));
  if (r < hit + 0.2) return [255, 255, 255, 255, 255, 255];
  return randomMac(rng);
}

/** A length: mostly ordinary, sometimes a runt or just around the 14-, 18- and 60-byte edges. */
export function randomLength(rng: () => number): number {
  const r = rng();
  if (r < 0.05) return Math.floor(rng() * 14);
  if (r < 0.15) return pick(rng, [14, 15, 16, 17, 18, 19, 59, 60, 61]);
  return 60 + Math.floor(rng() * 140);
}
