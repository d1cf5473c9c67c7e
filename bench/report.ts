// Benchmarks: renders the figures of a results JSON as the tables of BENCHMARKS.md, between its figure markers.
// Usage: tsx bench/report.ts [results.json] [BENCHMARKS.md]

import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../src/node/output-file.js';

interface Row { scenario: string; sizes: string; macs: number; variant: string; burst: string | number; mpps: number }
interface Results {
  machine: { cpu: string; cores: number; memoryBytes: number; node: string; date: string; quick: boolean; seconds: number; cc: string };
  rows: Row[];
  workers: Record<string, number>;
  controlPlane: Record<string, number>;
  warmup: Record<string, number>;
  memory: Record<string, number>;
  failures: string[];
}

const BEGIN = '<!-- figures:begin (bench/report.ts writes this part) -->';
const END = '<!-- figures:end -->';

const [jsonPath = 'bench/results/latest.json', mdPath = 'BENCHMARKS.md'] = process.argv.slice(2);
const r = JSON.parse(await readFile(jsonPath, 'utf8')) as Results;
if (r.failures.length > 0) throw new Error(`${jsonPath} records checksum failures; refusing to publish its figures`);
if (r.machine.quick) throw new Error(`${jsonPath} comes from a --quick run; publish a full run`);

const f1 = (n: number): string => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
const MACS = [64, 1024, 4096];
const cell = (variant: string, scenario: string, sizes: string, burst?: string | number): string[] =>
  MACS.map((m) => {
    const row = r.rows.find((x) => x.variant === variant && x.scenario === scenario && x.sizes === sizes && x.macs === m && (burst === undefined || String(x.burst) === String(burst)));
    return row ? f1(row.mpps) : '—';
  });
const table = (rows: [string, string[]][]): string =>
  ['| variant | 64 MACs | 1,024 MACs | 4,096 MACs |', '|---|---|---|---|', ...rows.map(([name, cells]) => `| ${name} | ${cells.join(' | ')} |`)].join('\n');

const stream = table([
  ['Wasm classify', cell('Wasm classify', 'stream', '64', 'whole')],
  ['Wasm classify, burst 256', cell('Wasm classify', 'stream', '64', 256)],
  ['Wasm classify, burst 32', cell('Wasm classify', 'stream', '64', 32)],
  ['Wasm classify + deliver, burst 256', cell('Wasm classify + deliver', 'stream', '64')],
  ['C -O3 (same algorithm)', cell('C -O3 (same algorithm)', 'stream', '64')],
  ['JS Map (number key)', cell('JS Map (number key)', 'stream', '64')],
  ['JS Map (string key)', cell('JS Map (string key)', 'stream', '64')],
  ['TS reference filter', cell('TS reference filter', 'stream', '64')],
  ['promiscuous fallback (software filter)', cell('promiscuous fallback (software filter)', 'stream', '64')],
  ['memory-read ceiling (JS)', cell('memory-read ceiling (JS)', 'stream', '64')],
]);
const other = table([
  ['Wasm classify, cache, 64 B', cell('Wasm classify', 'cache', '64')],
  ['C -O3 (same algorithm), cache, 64 B', cell('C -O3 (same algorithm)', 'cache', '64')],
  ['JS Map (number key), cache, 64 B', cell('JS Map (number key)', 'cache', '64')],
  ['Wasm classify + deliver, cache, 64 B', cell('Wasm classify + deliver', 'cache', '64')],
  ['Wasm classify, stream, 60–1514 B', cell('Wasm classify', 'stream', 'mix')],
  ['Wasm classify + deliver, stream, 60–1514 B', cell('Wasm classify + deliver', 'stream', 'mix')],
  ['JS Map (number key), stream, 60–1514 B', cell('JS Map (number key)', 'stream', 'mix')],
]);

const ratio = (a: string, b: string, m: number): string => {
  const x = r.rows.find((y) => y.variant === a && y.scenario === 'stream' && y.sizes === '64' && y.macs === m && String(y.burst) === 'whole');
  const z = r.rows.find((y) => y.variant === b && y.scenario === 'stream' && y.sizes === '64' && y.macs === m);
  return x && z ? `${(x.mpps / z.mpps).toFixed(2)}×` : '—';
};
const w = r.workers;
const c = r.controlPlane;
const us = (v: number): string => `${v.toFixed(1)} µs`;
const changeP99 = Math.max(c.reserveP99Us!, c.modifyP99Us!, c.unreserveP99Us!);
const changeP50 = Math.max(c.reserveP50Us!, c.modifyP50Us!, c.unreserveP50Us!);
const u = r.warmup;
const mem = r.memory;
const facts = [
  '| figure | value |',
  '|---|---|',
  `| Wasm classify against the number-keyed \`Map\` (stream, 64 B; 64 / 1,024 / 4,096 MACs) | ${MACS.map((m) => ratio('Wasm classify', 'JS Map (number key)', m)).join(' / ')} |`,
  `| Wasm classify against C -O3 of the same algorithm | ${MACS.map((m) => ratio('Wasm classify', 'C -O3 (same algorithm)', m)).join(' / ')} |`,
  `| one worker, classify, 1,024 MACs | ${f1(w.oneWorkerMpps!)} Mpps |`,
  `| two workers on one shared memory | ${f1(w.twoWorkersMpps!)} Mpps (${w.scaling!.toFixed(2)}×) |`,
  `| one change through the NIC API until the next burst sees it, p50 / p99: reserve (\`addressAdd\`) | ${us(c.reserveP50Us!)} / ${us(c.reserveP99Us!)} |`,
  `| … modify (\`addressModify\`) | ${us(c.modifyP50Us!)} / ${us(c.modifyP99Us!)} |`,
  `| … unreserve (\`addressRemove\`) | ${us(c.unreserveP50Us!)} / ${us(c.unreserveP99Us!)} |`,
  `| the same MAC added and removed, again and again (both calls), p50 / p99 | ${us(c.sameMacAddRemoveP50Us!)} / ${us(c.sameMacAddRemoveP99Us!)} |`,
  `| full rebuild of 4,096 entries (\`reload()\`), p50 / p99 | ${c.rebuild4096P50Us!.toFixed(0)} µs / ${c.rebuild4096P99Us!.toFixed(0)} µs |`,
  `| a fresh data plane for a NIC with 4,096 MACs (memory, instance, load) | ${c.attachAndLoad4096Us!.toFixed(0)} µs |`,
  `| classify (bursts of 256 over 65,536 frames) while ~1,000 changes per second arrive | ${f1(c.mppsWhileChanging!)} Mpps (${c.changesPerSecond!.toFixed(0)} changes/s) |`,
  `| JS heap growth over ${c.hotPathHeapBursts!.toLocaleString('en-US')} bursts of 256 after a warm-up (allocations on the hot path) | ${c.hotPathHeapBytes!.toLocaleString('en-US')} B (${(c.hotPathHeapBytes! / c.hotPathHeapBursts!).toFixed(2)} B per burst) |`,
  `| warm-up, one 32,768-frame burst called 30 times: first call, steady state (flattered by the repetition), calls until steady | ${u.firstCallNsPerFrame!.toFixed(1)} ns/frame, ${u.steadyNsPerFrame!.toFixed(1)} ns/frame, ${u.callsUntilSteady} |`,
  `| release \`.wasm\` | ${mem.wasmBytes!.toLocaleString('en-US')} bytes |`,
  `| filter memory per active MAC at 1,024 / 4,096 MACs (\`filterBytes\`: two banks, room for 256 groups) | ${mem.bytesPerMacAt1024!.toFixed(0)} / ${mem.bytesPerMacAt4096!.toFixed(0)} bytes |`,
  `| extra resident memory for one worker | ${(w.workerRssBytes! / 2 ** 20).toFixed(0)} MiB (a Node isolate plus its 1M-frame pool) |`,
].join('\n');

// The targets of the benchmark issue, judged on this run's figures.
const mpps = (variant: string, m: number, burst?: string | number): number =>
  r.rows.find((x) => x.variant === variant && x.scenario === 'stream' && x.sizes === '64' && x.macs === m && (burst === undefined || String(x.burst) === String(burst)))?.mpps ?? NaN;
const wasm = MACS.map((m) => mpps('Wasm classify', m, 'whole'));
const map = MACS.map((m) => mpps('JS Map (number key)', m));
const native = MACS.map((m) => mpps('C -O3 (same algorithm)', m));
const deliver1024 = mpps('Wasm classify + deliver', 1024);
const verdict = (ok: boolean): string => (ok ? 'met' : '**missed**');
const targets = [
  '| target | measured | |',
  '|---|---|---|',
  `| classify-only, stream, 64 B: ≥ 148.8 Mpps at 64 and 1,024 MACs, ≥ 120 at 4,096 | ${wasm.map(f1).join(' / ')} Mpps | ${verdict(wasm[0]! >= 148.8 && wasm[1]! >= 148.8 && wasm[2]! >= 120)} |`,
  `| classify + deliver ≥ 100 Mpps at 1,024 MACs | ${f1(deliver1024)} Mpps | ${verdict(deliver1024 >= 100)} |`,
  `| ≥ 5× the number-keyed \`Map\` | ${wasm.map((v, i) => `${(v / map[i]!).toFixed(2)}×`).join(' / ')} | ${verdict(wasm.every((v, i) => v / map[i]! >= 5))} |`,
  `| ≥ 0.9× native C of the same algorithm | ${wasm.map((v, i) => `${(v / native[i]!).toFixed(2)}×`).join(' / ')} | ${verdict(wasm.every((v, i) => v / native[i]! >= 0.9))} |`,
  `| two workers ≥ 1.8× one | ${w.scaling!.toFixed(2)}× | ${verdict(w.scaling! >= 1.8)} |`,
  `| one change visible within 1 µs at p99 | ${us(changeP99)} (p50 ${us(changeP50)}; the slowest of reserve, modify, unreserve) | ${verdict(changeP99 <= 1)} |`,
  `| full rebuild of 4,096 entries within 40 µs | ${c.rebuild4096P50Us!.toFixed(0)} µs p50, ${c.rebuild4096P99Us!.toFixed(0)} µs p99 | ${verdict(c.rebuild4096P50Us! <= 40)} |`,
  `| ≤ 18 bytes per active MAC | ${mem.bytesPerMacAt1024!.toFixed(0)} / ${mem.bytesPerMacAt4096!.toFixed(0)} at 1,024 / 4,096 | ${verdict(mem.bytesPerMacAt4096! <= 18 && mem.bytesPerMacAt1024! <= 18)} |`,
].join('\n');

const gib = (r.machine.memoryBytes / 2 ** 30).toFixed(0);
const block = [
  BEGIN,
  `- **Machine:** ${r.machine.cpu}, ${r.machine.cores} cores, ${gib} GiB; Node ${r.machine.node}; ${r.machine.cc}.`,
  `- **Date:** ${r.machine.date.slice(0, 10)}; the full suite took ${r.machine.seconds.toFixed(0)} s. Raw figures: [\`${jsonPath}\`](${jsonPath}).`,
  '',
  '### Classification, stream, 64-byte frames (Mpps)',
  '',
  stream,
  '',
  '### Other scenarios (Mpps)',
  '',
  other,
  '',
  '### Ratios, workers, control plane, memory',
  '',
  facts,
  '',
  '### Against the targets',
  '',
  targets,
  END,
].join('\n');

const md = await readFile(mdPath, 'utf8');
const a = md.indexOf(BEGIN);
const b = md.indexOf(END);
if (a < 0 || b < a) throw new Error(`${mdPath} has no figure markers (${BEGIN} … ${END})`);
writeFileAtomic(mdPath, md.slice(0, a) + block + md.slice(b + END.length));
console.log(`wrote the figures of ${jsonPath} into ${mdPath}`);
