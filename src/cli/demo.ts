// Command line: `macslot demo`, the main job on a built-in NIC, clients and traffic through the Wasm data plane.

import { buildFromConfig } from '../config/config.js';
import { DEMO_CONFIG } from '../config/demo.js';
import { DataPlane } from '../dataplane/dataplane.js';
import { RULES, classifyFrame } from '../filter/reference.js';
import type { Nic } from '../nic/nic.js';
import { ETH_FRAME_LEN, ETH_HLEN, ETH_SRC, ETH_TYPE, ETH_ZLEN } from '../wire/ethernet.js';
import { Mac } from '../wire/mac.js';
import { count } from './common.js';
import { table } from './table.js';

/** The built-in setup, in the configuration file's format (shared with the live page). */
export { DEMO_CONFIG };

/** One kind of built-in frame: its destination, why it is in the mix, its length and its share. */
interface DemoFrame {
  readonly dst: string;
  readonly note: string;
  readonly length: number;
  readonly weight: number;
}

const OVERFLOW_MACS = ['02:08:20:00:00:a1', '02:08:20:00:00:a2', '02:08:20:00:00:a3'];
const BURST = 256;
const REPLAY = 64 * 1024;
const TIMED = 1 << 20;

function traffic(vmD: string): DemoFrame[] {
  return [
    { dst: '00:14:4f:00:00:01', note: "vm-a's factory MAC", length: 64, weight: 8 },
    { dst: '02:08:20:00:00:0b', note: "vm-b's local MAC", length: 64, weight: 8 },
    { dst: '00:14:4f:00:00:03', note: "vm-c's factory slot 3", length: 590, weight: 6 },
    { dst: vmD, note: "vm-d's random MAC", length: 64, weight: 6 },
    { dst: '00:14:4f:00:00:00', note: 'the primary', length: 64, weight: 2 },
    { dst: 'ff:ff:ff:ff:ff:ff', note: 'broadcast (ARP)', length: ETH_ZLEN, weight: 4 },
    { dst: '33:33:00:00:00:01', note: 'IPv6 all-nodes', length: 86, weight: 4 },
    { dst: '01:00:5e:00:00:fb', note: 'mDNS (IPv4 multicast)', length: ETH_FRAME_LEN, weight: 2 },
    { dst: '01:00:5e:00:00:fc', note: 'a group nobody joined', length: 64, weight: 2 },
    { dst: '00:00:5e:00:53:99', note: 'unknown unicast', length: 64, weight: 4 },
    { dst: OVERFLOW_MACS[0]!, note: 'a MAC vm-a adds later', length: 64, weight: 4 },
    { dst: '00:14:4f:00:00:01', note: 'malformed: a 10-byte runt', length: 10, weight: 1 },
    { dst: '00:14:4f:00:00:01', note: 'malformed: 9000 bytes, over 1522', length: 9000, weight: 1 },
  ];
}

function frameTo(dst: string, length: number, seq: number): Uint8Array {
  const frame = new Uint8Array(length);
  const d = Mac.parse(dst).toBytes();
  frame.set(d.subarray(0, Math.min(6, length)));
  if (length >= ETH_HLEN) {
    frame.set([0x02, 0x99, 0, 0, (seq >> 8) & 0xff, seq & 0xff], ETH_SRC);
    frame.set(dst.startsWith('33:33') ? [0x86, 0xdd] : [0x08, 0x00], ETH_TYPE);
  }
  return frame;
}

/** The repeating pattern: each kind as often as its weight, interleaved. */
function pattern(kinds: readonly DemoFrame[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  const max = Math.max(...kinds.map((k) => k.weight));
  for (let round = 0; round < max; round++) kinds.forEach((k, i) => round < k.weight && out.push(frameTo(k.dst, k.length, out.length + i)));
  return out;
}

/** Loads the pattern into the pool once: descriptors of a whole burst cycle through it. */
function load(dp: DataPlane, frames: readonly Uint8Array[]): void {
  const offsets: number[] = [];
  let off = 0;
  for (const f of frames) {
    dp.pool.set(f, off);
    offsets.push(off);
    off = (off + f.length + 7) & ~7;
  }
  for (let i = 0; i < BURST; i++) {
    const k = i % frames.length;
    dp.descriptors[2 * i] = offsets[k]!;
    dp.descriptors[2 * i + 1] = frames[k]!.length;
  }
}

/** Runs `total` frames through rxBurst, draining every ring after each burst as a consumer would. */
function replay(dp: DataPlane, nic: Nic, total: number): void {
  const rings = nic.clients().map((c) => dp.ring(c.id));
  for (let done = 0; done < total; done += BURST) {
    dp.rxBurst(BURST);
    for (const r of rings) r.poll(() => {});
  }
}

/** Returns frames per second of classification alone and of classification plus delivery into the rings. */
function throughput(dp: DataPlane, nic: Nic): { classify: number; deliver: number } {
  // Best of three: a shared machine only ever makes a run slower, never faster.
  let classify = 0;
  let deliver = 0;
  for (let run = 0; run < 3; run++) {
    let t = performance.now();
    for (let done = 0; done < TIMED; done += BURST) dp.classifyBurst(BURST);
    classify = Math.max(classify, TIMED / ((performance.now() - t) / 1000));
    t = performance.now();
    replay(dp, nic, TIMED / 4);
    deliver = Math.max(deliver, TIMED / 4 / ((performance.now() - t) / 1000));
  }
  return { classify, deliver };
}

/** Frames per second of the software filter (the reference classifier) over the demo's mix, best of three. */
function softwareRate(nic: Nic, kinds: readonly { dst: string; length: number }[]): number {
  const state = nic.filterState();
  const frames = kinds.map((k, i) => frameTo(k.dst, k.length, i));
  const rounds = 4096;
  let best = 0;
  let sink = 0;
  for (let run = 0; run < 3; run++) {
    const t = performance.now();
    for (let r = 0; r < rounds; r++) for (const f of frames) sink += classifyFrame(state, f).deliver.length;
    best = Math.max(best, (rounds * frames.length) / ((performance.now() - t) / 1000));
  }
  // The sum keeps the work from being optimized away; it is never zero for this mix.
  return sink > 0 ? best : 0;
}

const mpps = (fps: number): string => `${(fps / 1e6).toFixed(1)} Mpps`;

/** Runs the demo; `write` receives each line as it is produced. Only the throughput lines differ between runs. */
export async function runDemo(write: (line: string) => void): Promise<void> {
  const { nic, clients } = buildFromConfig(DEMO_CONFIG);
  const dp = await DataPlane.create(nic, { lanes: 1, burst: BURST, poolBytes: 1 << 20, ringBytes: 1 << 16, seed: 1 });
  const name = (id: number): string => nic.client(id)?.name ?? `#${id}`;
  const vmD = nic.addressGet(clients[3]!.slots()[0]!).mac.toString();
  const kinds = traffic(vmD);
  const s = nic.addressSupport();
  write('macslot demo: one NIC with many MACs, its clients, and traffic through the Wasm data plane');
  write('');
  write(`NIC: primary ${nic.primary.toString()}, ${s.totalSlots} factory MACs ${s.firstFactory?.toString()}..${s.lastFactory?.toString()}`);
  write(
    `     ${s.totalUnicastEntries} exact unicast entries, ${s.totalMulticastEntries} exact multicast entries, a 4096-bit multicast hash`,
  );
  write('');
  write('Clients, set up in order as a configuration file would:');
  write(
    table(
      ['client', 'address', 'multicast', 'broadcast', 'promiscuous'],
      DEMO_CONFIG.clients.map((c) => [
        c.name,
        c.address ?? '-',
        (c.multicast ?? []).join(', ') || '-',
        c.broadcast === false ? 'no' : 'yes',
        c.promiscuous ? 'yes' : 'no',
      ]),
    ),
  );
  write('');
  write('Slot table (addressGet for every slot):');
  const slotTable = (): string =>
    table(
      ['slot', 'address', 'kind', 'in use', 'client', 'filter'],
      nic.slots().map(({ slot }) => {
        const i = nic.addressGet(slot);
        return [String(i.slot), i.mac.toString(), i.kind, i.reserved ? 'yes' : 'no', i.owner ?? '-', i.placement ?? '-'];
      }),
    );
  write(slotTable());
  write('');
  const mode = (): string => {
    const m = nic.addressSupport();
    return `${m.mode}${m.promiscReasons.length ? ` [${m.promiscReasons.join(', ')}]` : ''}`;
  };

  const verdictTable = (): string =>
    table(
      ['destination', 'what', 'length', 'rule', 'path', 'delivered to'],
      kinds.map((k) => {
        const v = dp.classify(frameTo(k.dst, k.length, 0));
        return [k.dst, k.note, String(k.length), v.rule, v.path, v.deliver.map(name).join(', ') || '-'];
      }),
    );
  // Share of the mix that reaches the software path: what a host pays for when its NIC stops filtering.
  const softwareFraction = (): number => {
    const total = kinds.reduce((a, k) => a + k.weight, 0);
    return kinds.reduce((a, k) => a + (dp.classify(frameTo(k.dst, k.length, 0)).path === 'software' ? k.weight : 0), 0) / total;
  };
  const softwareShare = (): string => `${(softwareFraction() * 100).toFixed(0)}% of the frames`;
  const frames = pattern(kinds);
  load(dp, frames);
  const counts = (): void => {
    const before = new Map(nic.clients().map((c) => [c.id, dp.clientCounters(c.id)]));
    const rulesBefore = dp.counters().rules;
    replay(dp, nic, REPLAY);
    write(`Per-client deliveries of ${count(REPLAY)} frames (the ${frames.length}-frame mix above, repeated):`);
    write(
      table(
        ['client', 'frames', 'bytes', 'broadcast', 'multicast', 'ring drops'],
        nic.clients().map((c) => {
          const a = dp.clientCounters(c.id);
          const b = before.get(c.id)!;
          return [
            c.name,
            count(a.frames - b.frames),
            count(a.bytes - b.bytes),
            count(a.broadcast - b.broadcast),
            count(a.multicast - b.multicast),
            count(a.ringDrops - b.ringDrops),
          ];
        }),
      ),
    );
    const rules = dp.counters().rules;
    const delta = RULES.map((r) => [r, rules[r] - rulesBefore[r]] as const).filter(([, n]) => n > 0);
    write(
      `Verdicts: ${delta
        .filter(([r]) => !r.startsWith('drop-'))
        .map(([r, n]) => `${r} ${count(n)}`)
        .join(', ')}`,
    );
    write(
      `Drop reasons: ${delta
        .filter(([r]) => r.startsWith('drop-'))
        .map(([r, n]) => `${r} ${count(n)}`)
        .join(', ')}`,
    );
  };

  write(`Traffic, one frame of each kind (NIC mode: ${mode()}):`);
  write(verdictTable());
  write('');
  counts();
  const first = throughput(dp, nic);
  write(`Throughput: ${mpps(first.classify)} classified, ${mpps(first.deliver)} classified and delivered into the rings`);
  write('  (a short mix repeated flatters every figure here; BENCHMARKS.md measures a million distinct frames)');
  write('');

  write('The tap turns promiscuous mode off, so the NIC filters in hardware again:');
  clients[4]!.setPromiscuous(false);
  write(`  NIC mode: ${mode()}; the software path sees ${softwareShare()}`);
  const filtered = throughput(dp, nic);
  write(`  Throughput: ${mpps(filtered.classify)} classified, ${mpps(filtered.deliver)} classified and delivered`);
  write('');

  write(`vm-a adds ${OVERFLOW_MACS.length} MACs; every exact entry is taken (vm-b's groups hold the multicast ones):`);
  for (const m of OVERFLOW_MACS) clients[0]!.addressAdd(m);
  write(`  NIC mode: ${mode()}: it accepts everything and software picks the receivers, still failing closed`);
  write('');
  write(slotTable());
  write('');
  write('Traffic after the overflow:');
  write(verdictTable());
  write('');
  counts();
  const overflow = throughput(dp, nic);
  write(`Throughput: ${mpps(overflow.classify)} classified, ${mpps(overflow.deliver)} classified and delivered`);
  // What the fallback costs a host: every frame on the software path goes through the software filter.
  const soft = softwareRate(nic, kinds);
  const share = softwareFraction();
  const effective = 1 / ((1 - share) / overflow.classify + share / soft);
  write(`Cost of the fallback: the software path now sees ${softwareShare()} (every unknown unicast and unjoined group).`);
  write(`  The software filter classifies ${mpps(soft)}, the Wasm filter ${mpps(overflow.classify)}; a host that filters its`);
  write(
    `  software share itself reaches ${mpps(effective)}, ${(filtered.classify / effective).toFixed(0)}× slower than with every MAC in ` +
      `hardware (best of 3 runs each)`,
  );
  write('');
  write('vm-a closes; freed entries take the software-held MACs back into hardware:');
  clients[0]!.close();
  write(`  NIC mode: ${mode()}`);
  dp.close();
}
