// Benchmark baselines: what users run instead of macslot, classifying the same frames and folding the same checksum.

import { RULES, classifyFrame, type FilterState } from '../dist/index.js';
import type { Scenario } from './traffic.js';

const R = Object.fromEntries(RULES.map((r, i) => [r, i])) as Record<(typeof RULES)[number], number>;

/**
 * A classifier over (pool, descriptors, count) that writes one verdict word per frame into `out`, as the data plane
 * does (rule in bits 0..4, client in bits 16..31), so every variant does the same work; checksums fold `out` afterwards.
 */
export type Classifier = (pool: Uint8Array, desc: Uint32Array, count: number, out: Uint32Array) => void;

/** JS Map keyed by the 48-bit destination as a number: what JS relays and emulators do today. */
export function mapByNumber(s: Scenario): Classifier {
  const table = new Map<number, number>();
  for (const m of s.macs) table.set(m.toNumber(), s.nic.client(s.nic.slots().find((x) => x.mac.equals(m))!.owner!)!.id);
  s.groups.forEach((g, i) => table.set(g.toNumber(), -1 - i));
  return (pool, desc, count, out) => {
    for (let i = 0; i < count; i++) {
      const o = desc[2 * i]!;
      const key =
        (pool[o]! * 256 + pool[o + 1]!) * 0x1_0000_0000 +
        (((pool[o + 2]! << 24) | (pool[o + 3]! << 16) | (pool[o + 4]! << 8) | pool[o + 5]!) >>> 0);
      out[i] = verdict(key === 0xffff_ffff_ffff, (pool[o]! & 1) === 1, table.get(key));
    }
  };
}

/** JS Map keyed by the MAC string. */
export function mapByString(s: Scenario): Classifier {
  const table = new Map<string, number>();
  for (const m of s.macs) table.set(m.toString(), s.nic.client(s.nic.slots().find((x) => x.mac.equals(m))!.owner!)!.id);
  s.groups.forEach((g, i) => table.set(g.toString(), -1 - i));
  const hex = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));
  return (pool, desc, count, out) => {
    for (let i = 0; i < count; i++) {
      const o = desc[2 * i]!;
      const key =
        `${hex[pool[o]!]}:${hex[pool[o + 1]!]}:${hex[pool[o + 2]!]}:` + `${hex[pool[o + 3]!]}:${hex[pool[o + 4]!]}:${hex[pool[o + 5]!]}`;
      out[i] = verdict(key === 'ff:ff:ff:ff:ff:ff', (pool[o]! & 1) === 1, table.get(key));
    }
  };
}

function verdict(broadcast: boolean, group: boolean, hit: number | undefined): number {
  if (broadcast) return R.broadcast;
  if (group) return hit !== undefined && hit < 0 ? R['multicast-exact'] : R['drop-multicast'];
  return hit !== undefined && hit >= 0 ? R['unicast-exact'] | (hit << 16) : R['drop-unknown'];
}

/** The TypeScript reference filter (also the software path of the promiscuous fallback). */
export function reference(state: FilterState): Classifier {
  return (pool, desc, count, out) => {
    for (let i = 0; i < count; i++) {
      const o = desc[2 * i]!;
      const v = classifyFrame(state, pool.subarray(o, o + desc[2 * i + 1]!));
      out[i] = R[v.rule] | ((v.deliver[0] ?? 0) << 16);
    }
  };
}

/** The memory-read ceiling: reads each frame's destination and nothing else (their sum goes to out[0]). */
export function ceiling(): Classifier {
  return (pool, desc, count, out) => {
    const words = new Uint32Array(pool.buffer, pool.byteOffset, pool.length >>> 2);
    const halves = new Uint16Array(pool.buffer, pool.byteOffset, pool.length >>> 1);
    let sum = 0;
    for (let i = 0; i < count; i++) {
      const o = desc[2 * i]!;
      sum = (sum + words[o >>> 2]! + halves[(o >>> 1) + 2]!) | 0;
    }
    out[0] = sum;
  };
}
