// Benchmark traffic: a NIC with N active MACs and the frame mix every variant classifies
// (80% hits, 10% unknown, 5% broadcast, 5% multicast).

import { Mac, Nic, RULES, verdictRef, verdictRuleId, type NicClient } from '../dist/index.js';

export const FRAME_STRIDE = 64;
export const CLIENTS = 16;
export const GROUPS = 8;

/** A deterministic xorshift generator, so every run and every variant sees the same frames. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

export interface Scenario {
  readonly nic: Nic;
  readonly clients: NicClient[];
  readonly macs: Mac[];
  readonly groups: Mac[];
}

/** Builds a NIC whose N MACs and 8 groups all sit in exact entries (or, with `fallback`, all in software). */
export function scenario(activeMacs: number, fallback = false): Scenario {
  const nic = new Nic({
    primary: '00:14:4f:00:00:00',
    unicastEntries: fallback ? 0 : activeMacs + 64,
    multicastEntries: fallback ? 0 : GROUPS,
    multicastHash: !fallback,
    maxAddresses: activeMacs + 65,
    maxClients: 64,
  });
  const clients = Array.from({ length: CLIENTS }, (_, i) => nic.openClient(`vm${i}`));
  const macs: Mac[] = [];
  for (let i = 0; i < activeMacs; i++) macs.push(clients[i % CLIENTS]!.addressAdd(Mac.fromNumber(0x0200_0000_0000 + i * 7919)).mac);
  const groups = Array.from({ length: GROUPS }, (_, g) => Mac.fromNumber(0x0100_5e00_0000 + g));
  groups.forEach((g, i) => clients[i]!.multicastJoin(g));
  return { nic, clients, macs, groups };
}

/**
 * Writes `count` frames at FRAME_STRIDE into `pool` and their (offset, length) pairs into `desc`.
 * `sizes`: 64-byte frames, or a 60–1514-byte mix (frames then overlap; only their bytes are read).
 * `picks` > 0 makes the descriptors point at random frames among the first `picks` (a cache-resident set).
 */
export function fillFrames(
  s: Scenario,
  pool: Uint8Array,
  desc: Uint32Array,
  count: number,
  sizes: '64' | 'mix',
  picks = 0,
  seed = 1,
): void {
  const random = rng(seed);
  const distinct = picks > 0 ? picks : count;
  for (let i = 0; i < distinct; i++) {
    const r = random();
    let dst: Mac;
    if (r < 0.8) dst = s.macs[Math.floor(random() * s.macs.length)]!;
    else if (r < 0.9) dst = Mac.fromNumber(0x0600_0000_0000 + Math.floor(random() * 2 ** 40));
    else if (r < 0.95) dst = Mac.parse('ff:ff:ff:ff:ff:ff');
    else if (random() < 0.5) dst = s.groups[Math.floor(random() * GROUPS)]!;
    else dst = Mac.fromNumber(0x0100_5e00_1000 + Math.floor(random() * 4096));
    dst.writeTo(pool, i * FRAME_STRIDE);
    pool[i * FRAME_STRIDE + 12] = 0x08;
  }
  for (let i = 0; i < count; i++) {
    const frame = picks > 0 ? Math.floor(random() * picks) : i;
    desc[2 * i] = frame * FRAME_STRIDE;
    desc[2 * i + 1] = sizes === '64' ? 64 : 60 + Math.floor(random() * 1455);
  }
}

const UNICAST = RULES.indexOf('unicast-exact');
const SOFTWARE = RULES.indexOf('software');

/** Folds one verdict (rule id, and the client for unicast) into a running checksum. */
export function fold(sum: number, rule: number, client: number): number {
  const v = rule === UNICAST || rule === SOFTWARE ? rule * 0x10001 + client : rule * 0x10001;
  return (Math.imul(sum, 31) + v) | 0;
}

/** Folds the first `n` verdict words (rule in bits 0..4, client in bits 16..31) into `sum`. */
export function foldVerdicts(sum: number, verdicts: Uint32Array, n: number): number {
  for (let i = 0; i < n; i++) sum = fold(sum, verdictRuleId(verdicts[i]!), verdictRef(verdicts[i]!));
  return sum;
}
