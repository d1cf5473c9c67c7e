// Benchmark of the device profiles: each profile's Wasm burst path on the same kind of traffic, in interleaved rounds.
// Usage: npm run bench:devices [-- --quick] [--json bench/results/devices.json]
// Two figures per profile: `cache` classifies bursts of 256 described frames over 8,192 distinct 64-byte frames already in
// the pool (the data plane's own work), `copy` also copies every frame into the pool first (what `load` + `classifyBurst`
// cost an emulator that holds its frames elsewhere). The e1000 with VLAN filtering on is also timed on all-tagged against
// all-untagged frames.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { E1000, E1000_RCTL, Ixgbe, IXGBE_BITS, Ne2k, NE2K_BITS, VirtioNet, type DeviceFilter } from '../dist/index.js';
import { rng } from './traffic.js';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, json: { type: 'string' } } });
const QUICK = args.quick!;
const ROUNDS = QUICK ? 3 : 9;
const PASSES = QUICK ? 64 : 256;
const DISTINCT = 8192;
const FRAME = 64;

const random = rng(0xbe0c);
const macBytes = (group: boolean): number[] => {
  const m = Array.from({ length: 6 }, () => Math.floor(random() * 256));
  m[0] = group ? m[0]! | 1 : m[0]! & 0xfe;
  return m;
};
const UNICAST = Array.from({ length: 15 }, () => macBytes(false));
const GROUPS = Array.from({ length: 8 }, () => macBytes(true));
const toMac = (b: readonly number[]): string => b.map((x) => x.toString(16).padStart(2, '0')).join(':');

/** 80 % known unicast, 10 % unknown unicast, 5 % broadcast, 5 % multicast (half joined); `tagged` of them with a VLAN tag. */
function traffic(tagged: number): Uint8Array[] {
  return Array.from({ length: DISTINCT }, () => {
    const f = new Uint8Array(FRAME);
    const r = random();
    const dst =
      r < 0.8
        ? UNICAST[Math.floor(random() * UNICAST.length)]!
        : r < 0.9
          ? macBytes(false)
          : r < 0.95
            ? [255, 255, 255, 255, 255, 255]
            : random() < 0.5
              ? GROUPS[Math.floor(random() * GROUPS.length)]!
              : macBytes(true);
    f.set(dst);
    f.set([0x02, 0, 0, 0, 0, 1], 6);
    if (random() < tagged) f.set([0x81, 0x00, 0x00, 1 + Math.floor(random() * 8)], 12);
    else f.set([0x08, 0x00], 12);
    return f;
  });
}

async function profiles(): Promise<{ e1000: E1000; ixgbe: Ixgbe; 'virtio-net': VirtioNet; ne2k: Ne2k }> {
  const e1000 = await E1000.create();
  UNICAST.forEach((m, n) => e1000.setReceiveAddress(n, toMac(m)));
  e1000.setVFTA(0, 0x1fe);
  e1000.setRCTL(E1000_RCTL.EN | E1000_RCTL.BAM | E1000_RCTL.VFE);
  const ixgbe = await Ixgbe.create();
  UNICAST.forEach((m, n) => ixgbe.setReceiveAddress(n, toMac(m)));
  ixgbe.setFCTRL(IXGBE_BITS.FCTRL_BAM);
  ixgbe.setMCSTCTRL(IXGBE_BITS.MCSTCTRL_MFE);
  ixgbe.setRXCTRL(IXGBE_BITS.RXCTRL_RXEN);
  const virtio = await VirtioNet.create({ mac: toMac(UNICAST[0]!) });
  virtio.setRxMode('promisc', false);
  virtio.macTableSet(UNICAST.slice(1).map(toMac), GROUPS.map(toMac));
  for (let vid = 1; vid <= 8; vid++) virtio.vlanAdd(vid);
  const ne2k = await Ne2k.create({ mac: toMac(UNICAST[0]!) });
  for (let i = 0; i < 8; i++) ne2k.setMAR(i, 0x5a);
  ne2k.setRCR(NE2K_BITS.RCR_AB | NE2K_BITS.RCR_AM | NE2K_BITS.RCR_PRO);
  ne2k.setCR(NE2K_BITS.CR_STA);
  return { e1000, ixgbe, 'virtio-net': virtio, ne2k };
}

/** Puts the frames into the pool once, 64 bytes apart. */
function preload(d: DeviceFilter, frames: readonly Uint8Array[]): void {
  frames.forEach((f, i) => d.pool.set(f, i * FRAME));
}

/** Classifies PASSES × 8,192 frames already in the pool, 256 per burst; returns Mpps. */
function cachePass(d: DeviceFilter): number {
  const n = d.burst;
  const t0 = performance.now();
  let sum = 0;
  for (let p = 0; p < PASSES; p++) {
    for (let start = 0; start < DISTINCT; start += n) {
      for (let i = 0; i < n; i++) {
        d.descriptors[2 * i] = (start + i) * FRAME;
        d.descriptors[2 * i + 1] = FRAME;
      }
      d.classifyBurst(n);
      sum += d.verdicts[n - 1]!;
    }
  }
  const ms = performance.now() - t0;
  if (sum < 0) throw new Error('unreachable');
  return (PASSES * DISTINCT) / ms / 1000;
}

/** Copies each burst's frames into the pool, then classifies them; returns Mpps. */
function copyPass(d: DeviceFilter, frames: readonly Uint8Array[]): number {
  const n = d.burst;
  const passes = PASSES / 4;
  const t0 = performance.now();
  for (let p = 0; p < passes; p++)
    for (let start = 0; start < DISTINCT; start += n) {
      d.load(frames.slice(start, start + n));
      d.classifyBurst(n);
    }
  return (passes * DISTINCT) / (performance.now() - t0) / 1000;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const mixed = traffic(0.2);
const tagged = traffic(1);
const untagged = traffic(0);
const devs = await profiles();
const vlanDev = (await profiles()).e1000;
const tagDev = (await profiles()).e1000;
preload(vlanDev, untagged);
preload(tagDev, tagged);

type Variant = { name: string; run: () => number };
const variants: Variant[] = [];
for (const [name, d] of Object.entries(devs)) {
  variants.push({ name: `${name} cache`, run: () => (preload(d, mixed), cachePass(d)) });
  variants.push({ name: `${name} copy`, run: () => copyPass(d, mixed) });
}
variants.push({ name: 'e1000 VFE untagged cache', run: () => cachePass(vlanDev) });
variants.push({ name: 'e1000 VFE tagged cache', run: () => cachePass(tagDev) });

const results = new Map<string, number[]>(variants.map((v) => [v.name, []]));
const ratios: number[] = [];
const loadStart = loadavg()[0]!;
for (const v of variants) v.run();
for (let r = 0; r < ROUNDS; r++) {
  const round = new Map<string, number>();
  for (let k = 0; k < variants.length; k++) {
    const v = variants[(k + r) % variants.length]!;
    round.set(v.name, v.run());
    results.get(v.name)!.push(round.get(v.name)!);
  }
  ratios.push(round.get('e1000 VFE tagged cache')! / round.get('e1000 VFE untagged cache')!);
  process.stderr.write(`\r[bench:devices] round ${r + 1}/${ROUNDS}`);
}
process.stderr.write('\n');

const figures: Record<string, { value: number; lo: number; hi: number; rounds: number; unit: string }> = {};
for (const [name, xs] of results)
  figures[name] = { value: median(xs), lo: Math.min(...xs), hi: Math.max(...xs), rounds: xs.length, unit: 'Mpps' };
const ratio = { value: median(ratios), lo: Math.min(...ratios), hi: Math.max(...ratios), rounds: ratios.length, unit: '×' };
console.log('| variant | Mpps (median) | lowest | highest |');
console.log('|---|---|---|---|');
for (const [name, f] of Object.entries(figures))
  console.log(`| ${name} | ${f.value.toFixed(1)} | ${f.lo.toFixed(1)} | ${f.hi.toFixed(1)} |`);
console.log(
  `| e1000 tagged / untagged (median of per-round ratios) | ${ratio.value.toFixed(2)}× | ${ratio.lo.toFixed(2)} | ${ratio.hi.toFixed(2)} |`,
);
if (args.json !== undefined) {
  mkdirSync('bench/results', { recursive: true });
  const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, loadStart, loadEnd: loadavg()[0]! };
  writeFileSync(args.json, `${JSON.stringify({ script: 'devices', machine, quick: QUICK, figures, taggedRatio: ratio }, null, 2)}\n`);
}
