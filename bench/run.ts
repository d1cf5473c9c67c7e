// Benchmark driver: every variant on the same frames in one run, interleaved round by round, checksummed, printed as a table
// and written as JSON (with the stable figure names of bench/figures.ts) and SVG.
// Usage: npm run bench [-- --quick] [--json bench/results/latest.json] [--svg bench/results/throughput.svg]
//        [--macs 1024,4096] [--classify-only] (only those MAC counts; only the classify and deliver figures)
//        [--vlan-only] (only the tagged-vs-untagged figure)

import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { Bench } from 'tinybench';
import { DataPlane, Mac, RxBatch, VlanMembership, wasmBytes, type RxRing } from '../dist/index.js';
import { writeFileAtomic } from '../dist/node/index.js';
import { ceiling, mapByNumber, mapByString, reference, type Classifier } from './baselines.js';
import { chart } from './chart.js';
import { FIGURES, machineNow, roundStats, saveFigures, type Figure, type FigureName } from './figures.js';
import { NATIVE_FLAGS, nativeStart, type NativeServer } from './native/run.js';
import { FRAME_STRIDE, fillFrames, foldVerdicts, scenario } from './traffic.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    svg: { type: 'string' },
    rounds: { type: 'string' },
    macs: { type: 'string' },
    'classify-only': { type: 'boolean', default: false },
    'vlan-only': { type: 'boolean', default: false },
  },
});
const QUICK = args.quick!;
const FRAMES = QUICK ? 1 << 18 : 1 << 20;
const MAC_COUNTS = args.macs !== undefined ? args.macs.split(',').map(Number) : QUICK ? [64, 4096] : [64, 1024, 4096];
const CLASSIFY_ONLY = args['classify-only']!;
const ITER = QUICK ? 3 : 7;
// Interleaved rounds: an unrecorded warm-up round (the module is already optimized; this warms each variant), then
// recorded ones (--rounds, at least 3).
const WARM_ROUNDS = 1;
const ROUNDS = Math.max(3, Number(args.rounds ?? (QUICK ? 3 : 9)) | 0);
const NATIVE_SAME = 'C -O3 (same algorithm)';
const NATIVE_SWISS = 'C -O3 Swiss table (native anchor)';
const SLOW_FRAMES = QUICK ? 1 << 14 : 1 << 16;

interface Row {
  variant: string;
  scenario: 'stream' | 'cache';
  sizes: '64' | 'mix';
  macs: number;
  burst: number | 'whole';
  mpps: number;
  nsPerFrame: number;
  checksum: number | null;
  frames: number;
  /** The lowest and highest per-round Mpps, and the number of rounds (interleaved variants). */
  lo?: number;
  hi?: number;
  rounds?: number;
}
const rows: Row[] = [];
const failures: string[] = [];
const progress = (msg: string): void => void process.stderr.write(`\r\x1b[2K[bench] ${msg}`);

async function time(name: string, fn: () => void): Promise<number> {
  const bench = new Bench({ name, time: 0, iterations: ITER, warmupIterations: 3, warmupTime: 0 });
  bench.add(name, fn);
  await bench.run();
  const r = bench.tasks[0]!.result as { state: string; latency?: { p50: number } };
  if (r.state !== 'completed' || r.latency === undefined) throw new Error(`${name}: ${r.state}`);
  return r.latency.p50;
}

function record(row: Omit<Row, 'mpps' | 'nsPerFrame'>, ms: number): void {
  rows.push({ ...row, mpps: row.frames / ms / 1000, nsPerFrame: (ms * 1e6) / row.frames });
}

/** Runs `count` frames of the lane through the data plane in bursts of `burst`; returns the verdict checksum. */
// Each burst's descriptors as a view of the whole set, made once, so a timed pass copies descriptors but allocates nothing.
const burstViews = new Map<string, Uint32Array[]>();
function viewsOf(all: Uint32Array, count: number, burst: number): Uint32Array[] {
  const key = `${count}/${burst}`;
  let views = burstViews.get(key);
  if (views === undefined || views[0]!.buffer !== all.buffer) {
    views = [];
    for (let start = 0; start < count; start += burst) views.push(all.subarray(2 * start, 2 * Math.min(start + burst, count)));
    burstViews.set(key, views);
  }
  return views;
}

/** How a deliver pass's consumer empties the rings: discarded unread (in Wasm), or taken as views and released (rxBurstInto). */
type Consumer = 'discard' | 'views';

function wasmPass(dp: DataPlane, all: Uint32Array, count: number, burst: number, deliver: Consumer | false, checksum: boolean): number {
  let sum = 0;
  const views = burst === count ? [] : viewsOf(all, count, burst);
  for (let start = 0, b = 0; start < count; start += burst, b++) {
    const n = Math.min(burst, count - start);
    if (burst !== count) dp.descriptors.set(views[b]!);
    if (deliver !== false) {
      dp.rxBurst(n);
      resetRings(dp, deliver);
    } else dp.classifyBurst(n);
    if (checksum) sum = foldVerdicts(sum, dp.verdicts, n);
  }
  // Bursts overwrite the head of the descriptor area: put the whole set's head back for whole-buffer passes.
  if (burst !== count) dp.descriptors.set(views[0]!);
  return sum;
}

let rings: RxRing[] = [];
const consumerBatch = new RxBatch(4096);
function resetRings(dp: DataPlane, consumer: Consumer): void {
  // An instant consumer: empties each ring, so delivery is measured, not back-pressure. Rings carry descriptors, so the
  // consumer's part is unpinning each frame it got: discard does it in Wasm; 'views' takes every frame as a view
  // (rxBurstInto) and releases it, as a zero-copy reader in JavaScript would. The suite checks afterwards that no ring
  // dropped a frame and that every pool line was released.
  if (consumer === 'discard') for (const r of rings) r.discard();
  else {
    for (const r of rings) {
      while (r.rxBurstInto(consumerBatch) > 0) r.release();
    }
  }
  void dp;
}

let tieredUp = false;

/** Runs a full garbage collection and lets the engine unmap what it freed (array buffers are swept in the background). */
async function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  await new Promise((resolve) => setTimeout(resolve, 200));
  gc();
}

/** One variant of a figure: a timed pass (returns milliseconds) and, after the rounds, the checksum of its verdicts. */
interface Variant {
  variant: string;
  burst: number | 'whole';
  frames: number;
  pass: () => number | Promise<number>;
  checksum: () => number | null;
}

/** A ratio of two variants of one figure: the median of their per-round throughput ratios, with its range. */
interface Ratio extends Figure {
  name: string;
  scenario: Row['scenario'];
  sizes: Row['sizes'];
  macs: number;
  of: string;
  to: string;
}
const ratios: Ratio[] = [];

/**
 * Runs the variants interleaved: each round times one pass of every variant, starting at a different variant each
 * round (so none always follows the same one), after WARM_ROUNDS unrecorded rounds. Returns each variant's per-round Mpps.
 */
async function interleave(label: string, variants: Variant[]): Promise<number[][]> {
  const perRound = variants.map(() => [] as number[]);
  for (let r = -WARM_ROUNDS; r < ROUNDS; r++) {
    progress(`${label}, round ${r < 0 ? 'warm-up' : `${r + 1} of ${ROUNDS}`}`);
    for (let k = 0; k < variants.length; k++) {
      const i = (k + r + WARM_ROUNDS) % variants.length;
      const v = variants[i]!;
      const ms = await v.pass();
      if (r >= 0) perRound[i]!.push(v.frames / ms / 1000);
    }
  }
  return perRound;
}

function timed(fn: () => void): () => number {
  return () => {
    const t = performance.now();
    fn();
    return performance.now() - t;
  };
}

async function classification(macs: number): Promise<void> {
  const s = scenario(macs);
  const dp = await DataPlane.create(s.nic, { burst: FRAMES, poolBytes: FRAMES * 64 + 2048, lanes: 3, ringBytes: 1 << 16, seed: 42 });
  rings = [s.nic.primaryClient, ...s.clients].map((c) => dp.ring(c.id));
  if (!tieredUp) {
    // The engine runs a module's first calls in its baseline compiler and swaps in optimized code once it is hot,
    // in the background; without this the first figures of the suite can catch the baseline code.
    progress('warming up the Wasm module');
    fillFrames(s, dp.pool, dp.descriptors, FRAMES, '64', 0, macs);
    for (const until = performance.now() + (QUICK ? 200 : 500); performance.now() < until; ) {
      dp.classifyBurst(FRAMES);
      dp.rxBurst(256);
      resetRings(dp, 'discard');
    }
    tieredUp = true;
  }
  const all = new Uint32Array(FRAMES * 2);
  const out = new Uint32Array(FRAMES);
  for (const sc of ['stream', 'cache'] as const) {
    for (const sizes of ['64', 'mix'] as const) {
      if (sc === 'cache' && sizes === 'mix') continue;
      fillFrames(s, dp.pool, all, FRAMES, sizes, sc === 'cache' ? (2 << 20) / 64 : 0, macs);
      dp.descriptors.set(all);
      const base = { scenario: sc, sizes, macs } as const;
      const label = `${macs} MACs, ${sc}, ${sizes} B`;
      const main = sizes === '64' && sc === 'stream';
      const variants: Variant[] = [];
      const wasm = (variant: string, b: number | 'whole', deliver: Consumer | false): Variant => {
        const burst = b === 'whole' ? FRAMES : b;
        return {
          variant,
          burst: b,
          frames: FRAMES,
          pass: timed(() => wasmPass(dp, all, FRAMES, burst, deliver, false)),
          checksum: () => wasmPass(dp, all, FRAMES, burst, deliver, true),
        };
      };
      variants.push(wasm('Wasm classify', 'whole', false));
      if (main) variants.push(wasm('Wasm classify', 256, false), wasm('Wasm classify', 32, false));
      variants.push(wasm('Wasm classify + deliver', 256, 'discard'));
      if (main) variants.push(wasm('Wasm classify + deliver, views released', 256, 'views'));
      const baselines: [string, Classifier, number][] = [['JS Map (number key)', mapByNumber(s), FRAMES]];
      if (main) {
        baselines.push(
          ['JS Map (string key)', mapByString(s), SLOW_FRAMES],
          ['TS reference filter', reference(s.nic.filterState()), SLOW_FRAMES],
          ['memory-read ceiling (JS)', ceiling(), FRAMES],
        );
      }
      for (const [variant, fn, n] of baselines) {
        const memory = variant.startsWith('memory');
        variants.push({
          variant,
          burst: 'whole',
          frames: n,
          pass: timed(() => fn(dp.pool, all, n, out)),
          checksum: () => {
            if (memory) return null;
            fn(dp.pool, all, n, out);
            return foldVerdicts(0, out, n);
          },
        });
      }
      let native: NativeServer | undefined;
      if (sizes === '64') {
        const poolBytes = sc === 'cache' ? 2 << 20 : FRAMES * 64;
        // The data plane's key capacity: the NIC's address capacity and the default group capacity (LIMITS.groups).
        const capacity = s.nic.maxAddresses + 256;
        const started = await nativeStart(
          dp.pool.subarray(0, poolBytes),
          all,
          FRAMES,
          s.macs,
          s.groups,
          s.nic,
          dp.maxFrameLength,
          capacity,
        );
        if (started.ok) {
          native = started.server;
          for (const [variant, kind] of [
            [NATIVE_SAME, 'same'],
            [NATIVE_SWISS, 'swiss'],
          ] as const) {
            let last: number | null = null;
            const server = native;
            variants.push({
              variant,
              burst: 'whole',
              frames: FRAMES,
              pass: async () => {
                const p = await server.pass(kind);
                // The counters are part of the data plane's work; their total proves every pass counted every frame.
                if (kind === 'same' && p.counted !== FRAMES)
                  failures.push(`${variant} at ${macs} MACs (${sc}): counted ${p.counted} verdicts of ${FRAMES}`);
                last = p.checksum;
                return p.ms;
              },
              checksum: () => last,
            });
          }
        } else if (!notes.includes(started.reason)) notes.push(started.reason);
      }
      let perRound: number[][];
      try {
        perRound = await interleave(label, variants);
      } finally {
        native?.close();
      }
      dp.descriptors.set(all);
      const expected = wasmPass(dp, all, FRAMES, FRAMES, false, true);
      const expectedSlow = wasmPass(dp, all, SLOW_FRAMES, SLOW_FRAMES, false, true);
      variants.forEach((v, i) => {
        const sum = v.checksum();
        const want = v.frames === FRAMES ? expected : expectedSlow;
        if (sum !== null && sum !== want)
          failures.push(`${v.variant} (burst ${v.burst}) at ${macs} MACs (${sc}, ${sizes}): checksum ${sum} ≠ Wasm ${want}`);
        const st = roundStats(perRound[i]!, 'Mpps');
        rows.push({
          ...base,
          variant: v.variant,
          burst: v.burst,
          frames: v.frames,
          checksum: sum,
          mpps: st.value,
          nsPerFrame: 1000 / st.value,
          lo: st.lo!,
          hi: st.hi!,
          rounds: st.rounds!,
        });
      });
      // Ratios of Wasm classify (whole) to each reference, from the same rounds.
      const idx = (variant: string, burst: number | 'whole' = 'whole'): number =>
        variants.findIndex((v) => v.variant === variant && v.burst === burst);
      const pairs: [string, string][] = [
        ['Wasm classify', 'JS Map (number key)'],
        ['Wasm classify', NATIVE_SAME],
        ['Wasm classify', NATIVE_SWISS],
        [NATIVE_SAME, NATIVE_SWISS],
      ];
      for (const [of, to] of pairs) {
        const a = idx(of);
        const b = idx(to);
        if (a < 0 || b < 0) continue;
        const per = perRound[a]!.map((x, k) => x / perRound[b]![k]!);
        ratios.push({ name: `${of} / ${to}`, ...base, of, to, ...roundStats(per, '×') });
      }
    }
  }
  // A full ring would make the delivery figures measure drops: the instant consumer must have kept every ring free.
  const ringDrops = [s.nic.primaryClient, ...s.clients].reduce((n, c) => n + dp.clientCounters(c.id).ringDrops, 0);
  if (ringDrops > 0)
    failures.push(`classify + deliver at ${macs} MACs: ${ringDrops} frames dropped on full rings (the consumer did not keep up)`);
  // Every delivered frame was released again: nothing was taken back from a ring and no reserve found the pool full.
  const { poolDrops, poolFull } = dp.counters();
  if (poolDrops + poolFull > 0)
    failures.push(`classify + deliver at ${macs} MACs: ${poolDrops} pool drops, ${poolFull} pool-full refusals`);
  dp.close();
}

/**
 * Tagged against untagged: the same 64-byte frames (every client and the uplink in VLAN 10, untagged on the uplink), classified
 * whole-buffer, interleaved: untagged through a data plane without VLAN filtering, untagged through one with it (in the
 * uplink's native VLAN 10), and 802.1Q-tagged (VID 10) through one with it. `tagged / untagged` compares the two kinds of
 * traffic under VLAN filtering; `tagged / untagged without VLANs` adds what filtering on (MAC, VID) costs at all.
 * Every client is in the VLAN, so all three must reach the same verdicts: the checksums must match.
 */
async function vlanTagging(macs: number): Promise<void> {
  const s = scenario(macs);
  const options = { burst: FRAMES, poolBytes: FRAMES * 64 + 2048, lanes: 1, ringBytes: 1 << 16, seed: 42 };
  const plain = await DataPlane.create(s.nic, options);
  const untagged = await DataPlane.create(s.nic, { ...options, vlans: true });
  const tagged = await DataPlane.create(s.nic, { ...options, vlans: true });
  const vlans = new VlanMembership<number | string>();
  vlans.set('uplink', { trunk: [10], native: 10 });
  for (const c of [s.nic.primaryClient, ...s.clients]) vlans.set(c.id, { access: 10 });
  untagged.setVlans(vlans, 'uplink');
  tagged.setVlans(vlans, 'uplink');
  const all = new Uint32Array(FRAMES * 2);
  fillFrames(s, plain.pool, all, FRAMES, '64', 0, macs);
  fillFrames(s, untagged.pool, all, FRAMES, '64', 0, macs);
  fillFrames(s, tagged.pool, all, FRAMES, '64', 0, macs);
  // The tag goes in at byte 12 (TPID 0x8100, VID 10), then the EtherType: the frames stay 64 bytes.
  for (let i = 0; i < FRAMES; i++) tagged.pool.set([0x81, 0x00, 0x00, 0x0a, 0x08, 0x00], i * FRAME_STRIDE + 12);
  plain.descriptors.set(all);
  untagged.descriptors.set(all);
  tagged.descriptors.set(all);
  const variant = (name: string, dp: DataPlane): Variant => ({
    variant: name,
    burst: 'whole',
    frames: FRAMES,
    pass: timed(() => dp.classifyBurst(FRAMES)),
    checksum: () => {
      dp.classifyBurst(FRAMES);
      return foldVerdicts(0, dp.verdicts, FRAMES);
    },
  });
  // Run alone, the module must still reach its optimized code before the first round (see classification()).
  for (const until = performance.now() + (QUICK ? 200 : 500); performance.now() < until; ) {
    plain.classifyBurst(FRAMES);
    untagged.classifyBurst(FRAMES);
    tagged.classifyBurst(FRAMES);
  }
  const variants = [
    variant('Wasm classify, untagged, no VLANs', plain),
    variant('Wasm classify, untagged, VLAN filtering', untagged),
    variant('Wasm classify, 802.1Q-tagged, VLAN filtering', tagged),
  ];
  const perRound = await interleave(`${macs} MACs, tagged against untagged`, variants);
  const [want, ...got] = variants.map((v) => v.checksum());
  got.forEach((sum, i) => {
    if (sum !== want) failures.push(`${variants[i + 1]!.variant} at ${macs} MACs: checksum ${sum} ≠ untagged without VLANs ${want}`);
  });
  const base = { scenario: 'stream', sizes: '64', macs } as const;
  variants.forEach((v, i) => {
    const st = roundStats(perRound[i]!, 'Mpps');
    rows.push({
      ...base,
      variant: v.variant,
      burst: 'whole',
      frames: FRAMES,
      checksum: v.checksum(),
      mpps: st.value,
      nsPerFrame: 1000 / st.value,
      lo: st.lo!,
      hi: st.hi!,
      rounds: st.rounds!,
    });
  });
  const per = (of: number, to: number): number[] => perRound[of]!.map((x, k) => x / perRound[to]![k]!);
  ratios.push({ name: 'tagged / untagged', ...base, of: variants[2]!.variant, to: variants[1]!.variant, ...roundStats(per(2, 1), '×') });
  ratios.push({
    name: 'tagged / untagged without VLANs',
    ...base,
    of: variants[2]!.variant,
    to: variants[0]!.variant,
    ...roundStats(per(2, 0), '×'),
  });
  plain.close();
  untagged.close();
  tagged.close();
}

async function fallback(macs: number): Promise<void> {
  const s = scenario(macs, true);
  const dp = await DataPlane.create(s.nic, { burst: SLOW_FRAMES, poolBytes: SLOW_FRAMES * 64 + 2048, lanes: 1, seed: 42 });
  const all = new Uint32Array(SLOW_FRAMES * 2);
  fillFrames(s, dp.pool, all, SLOW_FRAMES, '64', 0, macs);
  dp.descriptors.set(all);
  progress(`${macs} MACs, promiscuous fallback`);
  const sw = reference(s.nic.filterState());
  const out = new Uint32Array(SLOW_FRAMES);
  const ms = await time('fallback', () => sw(dp.pool, all, SLOW_FRAMES, out));
  const sum = foldVerdicts(0, out, SLOW_FRAMES);
  const want = wasmPass(dp, all, SLOW_FRAMES, SLOW_FRAMES, false, true);
  if (sum !== want) failures.push(`promiscuous fallback at ${macs} MACs: checksum ${sum} ≠ Wasm ${want}`);
  record(
    {
      variant: 'promiscuous fallback (software filter)',
      scenario: 'stream',
      sizes: '64',
      macs,
      burst: 'whole',
      frames: SLOW_FRAMES,
      checksum: sum,
    },
    ms,
  );
  dp.close();
}

async function workers(macs: number): Promise<Record<string, number>> {
  const s = scenario(macs);
  const dp = await DataPlane.create(s.nic, { burst: FRAMES, poolBytes: FRAMES * 64 + 2048, lanes: 3, seed: 42 });
  const macList = s.macs.map((m) => m.toString());
  const groups = s.groups.map((g) => g.toString());
  const run = (n: number): Promise<{ mpps: number; rss: number }[]> =>
    Promise.all(
      Array.from({ length: n }, (_, i) => {
        const w = new Worker(new URL('./worker.mjs', import.meta.url), {
          workerData: { handle: dp.handle(), macs: macList, groups, frames: FRAMES, iterations: ITER, seed: i + 1 },
        });
        return new Promise<{ mpps: number; rss: number }>((resolve, reject) => {
          w.once('message', (m: { mpps: number; rss: number }) => void w.terminate().then(() => resolve(m)));
          w.once('error', reject);
        });
      }),
    );
  // Resident memory of the process with the worker live (measured in the worker) against before it started,
  // after a full collection, so memory the earlier sections left for the collector does not come off the figure.
  await collectGarbage();
  const rssBefore = process.memoryUsage().rss;
  const [first] = await run(1);
  const rssOne = first!.rss - rssBefore;
  // One worker and two, interleaved round by round; the scaling is the median of the per-round ratios.
  const ones: number[] = [];
  const twos: number[] = [];
  for (let r = 0; r < (QUICK ? 1 : 3); r++) {
    progress(`one and two workers, ${macs} MACs, round ${r + 1}`);
    ones.push((await run(1))[0]!.mpps);
    twos.push((await run(2)).reduce((a, b) => a + b.mpps, 0));
  }
  dp.close();
  const scaling = roundStats(
    twos.map((t, i) => t / ones[i]!),
    '×',
  );
  return {
    oneWorkerMpps: roundStats(ones, 'Mpps').value,
    twoWorkersMpps: roundStats(twos, 'Mpps').value,
    scaling: scaling.value,
    scalingLo: scaling.lo!,
    scalingHi: scaling.hi!,
    scalingRounds: scaling.rounds!,
    workerRssBytes: rssOne,
  };
}

async function controlPlane(): Promise<Record<string, number>> {
  progress('control plane');
  const s = scenario(4096);
  const CHURN_FRAMES = 65_536;
  const dp = await DataPlane.create(s.nic, { burst: 256, poolBytes: CHURN_FRAMES * FRAME_STRIDE + 2048, seed: 42 });
  const client = s.clients[0]!;
  const probe = new Uint8Array(64);
  const sees = (mac: Mac, rule: string): boolean => {
    mac.writeTo(probe);
    return dp.classify(probe).rule === rule;
  };
  // Each change is timed from the call to its return: the NIC has then committed it to the idle bank and
  // published that bank, so every burst that starts afterwards uses it. Each is then checked, untimed, by
  // classifying a frame to the MAC in a fresh burst.
  const ROUNDS = QUICK ? 2000 : 20000;
  const reserve: number[] = [];
  const modify: number[] = [];
  const unreserve: number[] = [];
  const same: number[] = [];
  const macs = Array.from({ length: ROUNDS * 2 }, (_, i) => Mac.fromNumber(0x0a00_0000_0000 + i));
  const sameMac = Mac.fromNumber(0x0a00_ffff_0000);
  for (let i = -ROUNDS / 4; i < ROUNDS; i++) {
    // The first quarter warms up the path and is not recorded.
    const a = macs[(i + ROUNDS) % ROUNDS]!;
    const b = macs[ROUNDS + ((i + ROUNDS) % ROUNDS)]!;
    let t = performance.now();
    const { slot } = client.addressAdd(a);
    const tReserve = performance.now() - t;
    if (!sees(a, 'unicast-exact')) failures.push(`control plane: reserve ${i} not visible to the next burst`);
    t = performance.now();
    client.addressModify(slot, b);
    const tModify = performance.now() - t;
    if (!sees(b, 'unicast-exact') || !sees(a, 'drop-unknown')) failures.push(`control plane: modify ${i} not visible to the next burst`);
    t = performance.now();
    client.addressRemove(slot);
    const tUnreserve = performance.now() - t;
    if (!sees(b, 'drop-unknown')) failures.push(`control plane: unreserve ${i} not visible to the next burst`);
    // The same MAC added and removed again and again: each add must cost what any other does.
    t = performance.now();
    client.addressRemove(client.addressAdd(sameMac).slot);
    const tSame = performance.now() - t;
    if (i < 0) continue;
    reserve.push(tReserve);
    modify.push(tModify);
    unreserve.push(tUnreserve);
    same.push(tSame);
  }
  const pct = (xs: number[], p: number): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length * p)]! * 1000;
  const rebuild: number[] = [];
  for (let i = 0; i < (QUICK ? 3 : 10); i++) {
    const t = performance.now();
    (await DataPlane.create(s.nic, { burst: 256, lanes: 1, seed: 42 })).close();
    rebuild.push(performance.now() - t);
  }
  rebuild.sort((a, b) => a - b);
  // A full rebuild of the table alone: every entry re-derived from the NIC into the idle bank, then published.
  const reload: number[] = [];
  for (let i = -(QUICK ? 100 : 1000); i < (QUICK ? 100 : 1000); i++) {
    const t = performance.now();
    dp.reload();
    // The first half warms up the path and is not recorded.
    if (i >= 0) reload.push(performance.now() - t);
  }
  reload.sort((a, b) => a - b);
  const probeAll = new Uint8Array(64);
  s.macs[s.macs.length - 1]!.writeTo(probeAll);
  if (dp.classify(probeAll).rule !== 'unicast-exact') failures.push('control plane: a MAC went missing across rebuilds');
  // Throughput while 1,000 changes per second arrive.
  // 65,536 distinct frames walked in bursts of 256: a replayed handful would let the branch predictor learn them.
  const all = new Uint32Array(CHURN_FRAMES * 2);
  fillFrames(s, dp.pool, all, CHURN_FRAMES, '64', 0, 7);
  let at = 0;
  const until = performance.now() + (QUICK ? 300 : 1000);
  let frames = 0;
  let changes = 0;
  let nextChange = performance.now();
  const t0 = performance.now();
  while (performance.now() < until) {
    for (let k = 0; k < 64; k++) {
      dp.descriptors.set(all.subarray(at, at + 512));
      at = (at + 512) % all.length;
      frames += dp.classifyBurst(256);
    }
    if (performance.now() >= nextChange) {
      client.addressRemove(client.addressAdd().slot);
      changes++;
      nextChange += 1;
    }
  }
  const churnMpps = frames / (performance.now() - t0) / 1000;
  // Allocations on the hot path: heap growth over many bursts after a warm-up. A path that allocated even
  // one small object per burst would grow the heap by megabytes here; a flat heap shows a few hundred bytes of noise.
  for (let i = 0; i < 2000; i++) dp.classifyBurst(256);
  const HEAP_BURSTS = 50_000;
  const heap0 = process.memoryUsage().heapUsed;
  for (let i = 0; i < HEAP_BURSTS; i++) dp.classifyBurst(256);
  const heapDelta = process.memoryUsage().heapUsed - heap0;
  dp.close();
  return {
    reserveP50Us: pct(reserve, 0.5),
    reserveP99Us: pct(reserve, 0.99),
    modifyP50Us: pct(modify, 0.5),
    modifyP99Us: pct(modify, 0.99),
    unreserveP50Us: pct(unreserve, 0.5),
    unreserveP99Us: pct(unreserve, 0.99),
    sameMacAddRemoveP50Us: pct(same, 0.5),
    sameMacAddRemoveP99Us: pct(same, 0.99),
    attachAndLoad4096Us: rebuild[Math.floor(rebuild.length / 2)]! * 1000,
    rebuild4096P50Us: reload[Math.floor(reload.length * 0.5)]! * 1000,
    rebuild4096P99Us: reload[Math.floor(reload.length * 0.99)]! * 1000,
    mppsWhileChanging: churnMpps,
    changesPerSecond: changes / ((performance.now() - t0) / 1000),
    hotPathHeapBytes: heapDelta,
    hotPathHeapBursts: HEAP_BURSTS,
  };
}

async function warmup(): Promise<Record<string, number>> {
  progress('warm-up');
  const s = scenario(1024);
  const dp = await DataPlane.create(s.nic, { burst: 32768, poolBytes: 32768 * 64, lanes: 1, seed: 42 });
  const all = new Uint32Array(65536);
  fillFrames(s, dp.pool, all, 32768, '64', 0, 3);
  dp.descriptors.set(all);
  const ns: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t = performance.now();
    dp.classifyBurst(32768);
    ns.push(((performance.now() - t) * 1e6) / 32768);
  }
  const steady = [...ns.slice(10)].sort((a, b) => a - b)[10]!;
  const until = ns.findIndex((v) => v <= steady * 1.1) + 1;
  dp.close();
  return { firstCallNsPerFrame: ns[0]!, steadyNsPerFrame: steady, callsUntilSteady: until };
}

async function memory(): Promise<Record<string, number>> {
  // Measured on the data plane a NIC of this many active MACs gets with the default group capacity (256).
  const per = async (macs: number): Promise<number> => {
    const dp = await DataPlane.create(scenario(macs).nic, { lanes: 1, burst: 256 });
    dp.close();
    return dp.filterBytes / macs;
  };
  return { bytesPerMacAt4096: await per(4096), bytesPerMacAt1024: await per(1024), wasmBytes: wasmBytes('release').length };
}

const notes: string[] = [];

/** The figures of this run under their stable names (bench/figures.ts). */
function namedFigures(extra: {
  workers: Record<string, number>;
  controlPlane: Record<string, number>;
  memory: Record<string, number>;
}): Partial<Record<FigureName, Figure>> {
  const figures: Partial<Record<FigureName, Figure>> = {};
  const fromRow = (r: Row | undefined): Figure | undefined =>
    r === undefined
      ? undefined
      : { value: r.mpps, unit: 'Mpps', ...(r.rounds === undefined ? {} : { lo: r.lo!, hi: r.hi!, rounds: r.rounds }) };
  const main = (variant: string, macs: number, burst: number | 'whole'): Row | undefined =>
    rows.find((r) => r.variant === variant && r.scenario === 'stream' && r.sizes === '64' && r.macs === macs && r.burst === burst);
  const ratio = (to: string, macs: number): Figure | undefined => {
    const r = ratios.find((x) => x.of === 'Wasm classify' && x.to === to && x.scenario === 'stream' && x.sizes === '64' && x.macs === macs);
    return r === undefined ? undefined : { value: r.value, unit: '×', lo: r.lo!, hi: r.hi!, rounds: r.rounds! };
  };
  const put = (name: FigureName, f: Figure | undefined): void => {
    if (f !== undefined && Number.isFinite(f.value)) figures[name] = f;
  };
  for (const m of [64, 1024, 4096] as const) {
    put(`classify.${m}macs`, fromRow(main('Wasm classify', m, 'whole')));
    put(`classify_deliver.${m}macs`, fromRow(main('Wasm classify + deliver', m, 256)));
    put(`vs_map.${m}macs`, ratio('JS Map (number key)', m));
    put(`vs_c_swiss.${m}macs`, ratio(NATIVE_SWISS, m));
    put(`vs_c_same.${m}macs`, ratio(NATIVE_SAME, m));
  }
  const c = extra.controlPlane;
  const w = extra.workers;
  put('bytes_per_mac.1024macs', { value: extra.memory.bytesPerMacAt1024!, unit: 'B' });
  put('bytes_per_mac.4096macs', { value: extra.memory.bytesPerMacAt4096!, unit: 'B' });
  put('change_visible.p50_us', { value: Math.max(c.reserveP50Us!, c.modifyP50Us!, c.unreserveP50Us!), unit: 'µs' });
  put('change_visible.p99_us', { value: Math.max(c.reserveP99Us!, c.modifyP99Us!, c.unreserveP99Us!), unit: 'µs' });
  put('workers.scaling', { value: w.scaling!, unit: '×', lo: w.scalingLo!, hi: w.scalingHi!, rounds: w.scalingRounds! });
  put('rebuild_4096.p50_us', { value: c.rebuild4096P50Us!, unit: 'µs' });
  // Figure name ← ratio name: tagged under VLAN filtering against untagged without it, and against untagged under it.
  for (const [name, of] of [
    ['vlan_tagged_vs_untagged.1024macs', 'tagged / untagged without VLANs'],
    ['vlan_tagged_vs_untagged_filtering.1024macs', 'tagged / untagged'],
  ] as const) {
    const r = ratios.find((x) => x.name === of && x.macs === 1024);
    if (r !== undefined) put(name, { value: r.value, unit: '×', lo: r.lo!, hi: r.hi!, rounds: r.rounds! });
  }
  for (const name of Object.keys(figures) as FigureName[]) {
    if (FIGURES[name].unit !== figures[name]!.unit) throw new Error(`${name}: unit ${figures[name]!.unit}, named as ${FIGURES[name].unit}`);
  }
  return figures;
}

const machineAtStart = machineNow();
const started = Date.now();
const VLAN_ONLY = args['vlan-only']!;
for (const m of VLAN_ONLY ? [] : MAC_COUNTS) {
  await classification(m);
  if (!CLASSIFY_ONLY) await fallback(m);
}
if (VLAN_ONLY || MAC_COUNTS.includes(1024)) await vlanTagging(1024);
const extra =
  CLASSIFY_ONLY || VLAN_ONLY
    ? { workers: {}, controlPlane: {}, warmup: {}, memory: {} }
    : { workers: await workers(1024), controlPlane: await controlPlane(), warmup: await warmup(), memory: await memory() };
progress('done\n');

const machine = { ...machineAtStart, quick: QUICK, seconds: (Date.now() - started) / 1000, rounds: ROUNDS, warmRounds: WARM_ROUNDS };
let gcc = 'none';
try {
  gcc = `${execFileSync('cc', ['--version'], { encoding: 'utf8' }).split('\n')[0]!} ${NATIVE_FLAGS.join(' ')}`;
} catch {
  notes.push('no C compiler found: the native comparison was skipped');
}
const figures = namedFigures(extra);

const fmt = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const head = ['variant', 'scenario', 'size', 'MACs', 'burst', 'Mpps', 'rounds range', 'ns/frame', 'vs Map (medians)'];
const mapRate = (r: Row): number | undefined =>
  rows.find((x) => x.variant === 'JS Map (number key)' && x.macs === r.macs && x.scenario === r.scenario && x.sizes === r.sizes)?.mpps;
const range = (r: { lo?: number; hi?: number }): string => (r.lo === undefined ? '' : `${fmt(r.lo)}–${fmt(r.hi!)}`);
const lines = rows.map((r) => [
  r.variant,
  r.scenario,
  r.sizes,
  String(r.macs),
  String(r.burst),
  fmt(r.mpps),
  range(r),
  fmt(r.nsPerFrame),
  mapRate(r) ? `${(r.mpps / mapRate(r)!).toFixed(2)}×` : '',
]);
const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
const show = (l: string[]): string => l.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log(
  `macslot bench — ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ` +
    `load ${machine.loadStart.toFixed(1)}${QUICK ? ' (quick)' : ''}`,
);
console.log(`Mpps: median of ${ROUNDS} interleaved rounds (after ${WARM_ROUNDS} unrecorded), with the lowest and highest round`);
console.log(show(head));
for (const l of lines) console.log(show(l));
console.log('\nworkers', JSON.stringify(extra.workers));
console.log('control plane', JSON.stringify(extra.controlPlane));
console.log('warm-up', JSON.stringify(extra.warmup));
console.log('memory', JSON.stringify(extra.memory));
console.log('\nratios (median of per-round ratios, lowest–highest round):');
for (const r of ratios)
  console.log(
    `  ${r.name}, ${r.scenario}, ${r.sizes} B, ${r.macs} MACs: ` + `${r.value.toFixed(2)}× (${r.lo!.toFixed(2)}–${r.hi!.toFixed(2)})`,
  );
for (const n of notes) console.log(`note: ${n}`);

if (args.json) saveFigures('run', machine, QUICK, figures, { cc: gcc, rows, ratios, ...extra, notes, failures }, args.json);
if (args.svg) {
  await mkdir(dirname(args.svg), { recursive: true });
  writeFileAtomic(args.svg, chart(rows));
}
if (failures.length > 0) {
  console.error(`\nCHECKSUM MISMATCH — variants disagree:\n${failures.join('\n')}`);
  process.exit(1);
}
console.log(`\nall variants agree (checksums match); ${machine.seconds.toFixed(0)} s`);
