// Benchmark driver: every variant on the same frames in one run, checksummed, printed as a table and written as JSON and SVG.
// Usage: npm run bench [-- --quick] [--json bench/results/latest.json] [--svg bench/results/throughput.svg]

import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { Bench } from 'tinybench';
import { DataPlane, Mac, wasmBytes } from '../dist/index.js';
import { writeFileAtomic } from '../dist/node/index.js';
import { ceiling, mapByNumber, mapByString, reference, type Classifier } from './baselines.js';
import { chart } from './chart.js';
import { nativeRun } from './native/run.js';
import { FRAME_STRIDE, fillFrames, foldVerdicts, scenario } from './traffic.js';

const { values: args } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, json: { type: 'string' }, svg: { type: 'string' } },
});
const QUICK = args.quick!;
const FRAMES = QUICK ? 1 << 18 : 1 << 20;
const MAC_COUNTS = QUICK ? [64, 4096] : [64, 1024, 4096];
const ITER = QUICK ? 3 : 7;
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

function wasmPass(dp: DataPlane, all: Uint32Array, count: number, burst: number, deliver: boolean, checksum: boolean): number {
  let sum = 0;
  const views = burst === count ? [] : viewsOf(all, count, burst);
  for (let start = 0, b = 0; start < count; start += burst, b++) {
    const n = Math.min(burst, count - start);
    if (burst !== count) dp.descriptors.set(views[b]!);
    if (deliver) {
      dp.rxBurst(n);
      resetRings(dp);
    } else dp.classifyBurst(n);
    if (checksum) sum = foldVerdicts(sum, dp.verdicts, n);
  }
  return sum;
}

let ringViews: Int32Array[] = [];
function resetRings(dp: DataPlane): void {
  // An instant consumer: frees each ring so delivery is measured, not back-pressure.
  for (const v of ringViews) Atomics.store(v, 16, Atomics.load(v, 0));
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

async function classification(macs: number): Promise<void> {
  const s = scenario(macs);
  const dp = await DataPlane.create(s.nic, { burst: FRAMES, poolBytes: FRAMES * 64 + 2048, lanes: 3, ringBytes: 1 << 16, seed: 42 });
  ringViews = [s.nic.primaryClient, ...s.clients].map((c) => new Int32Array(dp.memory.buffer, dp.ring(c.id).byteOffset, 32));
  if (!tieredUp) {
    // The engine runs a module's first calls in its baseline compiler and swaps in optimized code once it is hot,
    // in the background; without this the first figures of the suite can catch the baseline code.
    progress('warming up the Wasm module');
    fillFrames(s, dp.pool, dp.descriptors, FRAMES, '64', 0, macs);
    for (const until = performance.now() + (QUICK ? 200 : 500); performance.now() < until; ) {
      dp.classifyBurst(FRAMES);
      dp.rxBurst(256);
      resetRings(dp);
    }
    tieredUp = true;
  }
  const all = new Uint32Array(FRAMES * 2);
  for (const sc of ['stream', 'cache'] as const) {
    for (const sizes of ['64', 'mix'] as const) {
      if (sc === 'cache' && sizes === 'mix') continue;
      fillFrames(s, dp.pool, all, FRAMES, sizes, sc === 'cache' ? (2 << 20) / 64 : 0, macs);
      dp.descriptors.set(all);
      const base = { scenario: sc, sizes, macs, frames: FRAMES } as const;
      const bursts: (number | 'whole')[] = sizes === '64' && sc === 'stream' ? ['whole', 256, 32] : ['whole'];
      let expected: number | undefined;
      for (const b of bursts) {
        const burst = b === 'whole' ? FRAMES : b;
        progress(`${macs} MACs, ${sc}, ${sizes} B, Wasm classify, burst ${b}`);
        const ms = await time('wasm', () => wasmPass(dp, all, FRAMES, burst, false, false));
        const sum = wasmPass(dp, all, FRAMES, burst, false, true);
        expected ??= sum;
        record({ ...base, variant: 'Wasm classify', burst: b, checksum: sum }, ms);
      }
      progress(`${macs} MACs, ${sc}, ${sizes} B, Wasm classify + deliver`);
      const msD = await time('deliver', () => wasmPass(dp, all, FRAMES, 256, true, false));
      record({ ...base, variant: 'Wasm classify + deliver', burst: 256, checksum: wasmPass(dp, all, FRAMES, 256, true, true) }, msD);
      dp.descriptors.set(all);
      const view = all;
      const out = new Uint32Array(FRAMES);
      const baselines: [string, Classifier, number][] = [
        ['JS Map (number key)', mapByNumber(s), FRAMES],
        ['JS Map (string key)', mapByString(s), FRAMES],
        ['TS reference filter', reference(s.nic.filterState()), SLOW_FRAMES],
        ['memory-read ceiling (JS)', ceiling(), FRAMES],
      ];
      for (const [name, fn, n] of baselines) {
        progress(`${macs} MACs, ${sc}, ${sizes} B, ${name}`);
        const ms = await time(name, () => fn(dp.pool, view, n, out));
        const sum = name.startsWith('memory') ? null : foldVerdicts(0, out, n);
        const want = n === FRAMES ? expected! : wasmPass(dp, all, n, n, false, true);
        if (sum !== null && sum !== want) failures.push(`${name} at ${macs} MACs (${sc}, ${sizes}): checksum ${sum} ≠ Wasm ${want}`);
        record({ ...base, frames: n, variant: name, burst: 'whole', checksum: sum }, ms);
      }
      if (sizes === '64') {
        const native = nativeRun(dp.pool.subarray(0, (sc === 'cache' ? (2 << 20) : FRAMES * 64)), all, FRAMES, s.macs, s.groups, s.nic, ITER, dp.maxFrameLength);
        if (native.ok) {
          if (native.checksum !== expected) failures.push(`native C at ${macs} MACs (${sc}): checksum ${native.checksum} ≠ Wasm ${expected}`);
          rows.push({ ...base, variant: 'C -O3 (same algorithm)', burst: 'whole', mpps: native.mpps, nsPerFrame: 1000 / native.mpps, checksum: native.checksum });
        } else if (!notes.includes(native.reason)) notes.push(native.reason);
      }
    }
  }
  dp.close();
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
  record({ variant: 'promiscuous fallback (software filter)', scenario: 'stream', sizes: '64', macs, burst: 'whole', frames: SLOW_FRAMES, checksum: sum }, ms);
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
        const w = new Worker(new URL('./worker.mjs', import.meta.url), { workerData: { handle: dp.handle(), macs: macList, groups, frames: FRAMES, iterations: ITER, seed: i + 1 } });
        return new Promise<{ mpps: number; rss: number }>((resolve, reject) => {
          w.once('message', (m: { mpps: number; rss: number }) => void w.terminate().then(() => resolve(m)));
          w.once('error', reject);
        });
      }),
    );
  progress(`two workers, ${macs} MACs`);
  // Resident memory of the process with the worker live (measured in the worker) against before it started,
  // after a full collection, so memory the earlier sections left for the collector does not come off the figure.
  await collectGarbage();
  const rssBefore = process.memoryUsage().rss;
  const [first] = await run(1);
  const one = first!.mpps;
  const rssOne = first!.rss - rssBefore;
  const two = (await run(2)).reduce((a, b) => a + b.mpps, 0);
  dp.close();
  return { oneWorkerMpps: one, twoWorkersMpps: two, scaling: two / one, workerRssBytes: rssOne };
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
function cpuModel(): string {
  return cpus()[0]?.model ?? 'unknown';
}

const started = Date.now();
for (const m of MAC_COUNTS) {
  await classification(m);
  await fallback(m);
}
const extra = { workers: await workers(1024), controlPlane: await controlPlane(), warmup: await warmup(), memory: await memory() };
progress('done\n');

const machine = { cpu: cpuModel(), cores: cpus().length, memoryBytes: totalmem(), node: process.version, date: new Date().toISOString(), quick: QUICK, seconds: (Date.now() - started) / 1000 };
let gcc = 'none';
try {
  gcc = execFileSync('cc', ['--version'], { encoding: 'utf8' }).split('\n')[0]!;
} catch {
  notes.push('no C compiler found: the native comparison was skipped');
}
const result = { machine: { ...machine, cc: gcc }, rows, ...extra, notes, failures };

const fmt = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const head = ['variant', 'scenario', 'size', 'MACs', 'burst', 'Mpps', 'ns/frame', 'vs Map'];
const mapRate = (r: Row): number | undefined => rows.find((x) => x.variant === 'JS Map (number key)' && x.macs === r.macs && x.scenario === r.scenario && x.sizes === r.sizes)?.mpps;
const lines = rows.map((r) => [r.variant, r.scenario, r.sizes, String(r.macs), String(r.burst), fmt(r.mpps), fmt(r.nsPerFrame), mapRate(r) ? `${(r.mpps / mapRate(r)!).toFixed(2)}×` : '']);
const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
const show = (l: string[]): string => l.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log(`macslot bench — ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}${QUICK ? ' (quick)' : ''}`);
console.log(show(head));
for (const l of lines) console.log(show(l));
console.log('\nworkers', JSON.stringify(extra.workers));
console.log('control plane', JSON.stringify(extra.controlPlane));
console.log('warm-up', JSON.stringify(extra.warmup));
console.log('memory', JSON.stringify(extra.memory));
for (const n of notes) console.log(`note: ${n}`);

if (args.json) {
  await mkdir(dirname(args.json), { recursive: true });
  writeFileAtomic(args.json, JSON.stringify(result, null, 2) + '\n');
}
if (args.svg) {
  await mkdir(dirname(args.svg), { recursive: true });
  writeFileAtomic(args.svg, chart(rows));
}
if (failures.length > 0) {
  console.error(`\nCHECKSUM MISMATCH — variants disagree:\n${failures.join('\n')}`);
  process.exit(1);
}
console.log(`\nall variants agree (checksums match); ${machine.seconds.toFixed(0)} s`);
