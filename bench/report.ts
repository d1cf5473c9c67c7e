// Benchmarks: renders the figures of the results files as the tables of BENCHMARKS.md, between its figure markers, and
// merges every script's named figures (bench/figures.ts) into one file.
// Usage: tsx bench/report.ts [results.json] [BENCHMARKS.md]
// Reads bench/results/latest.json (npm run bench), and bench/results/switch.json and filter.json when they exist;
// writes BENCHMARKS.md and bench/results/figures.json.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../src/node/output-file.js';
import { FIGURES, figuresPath, type Figure, type FigureFile, type FigureName, type FigureSpec } from './figures.js';

interface Row {
  scenario: string;
  sizes: string;
  macs: number;
  variant: string;
  burst: string | number;
  mpps: number;
  lo?: number;
  hi?: number;
  rounds?: number;
}
interface Ratio extends Figure {
  scenario: string;
  sizes: string;
  macs: number;
  of: string;
  to: string;
}
interface Results extends FigureFile {
  machine: FigureFile['machine'] & { seconds: number; rounds: number; warmRounds: number };
  cc: string;
  rows: Row[];
  ratios: Ratio[];
  workers: Record<string, number>;
  controlPlane: Record<string, number>;
  warmup: Record<string, number>;
  memory: Record<string, number>;
  failures: string[];
}

const BEGIN = '<!-- figures:begin (bench/report.ts writes this part) -->';
const END = '<!-- figures:end -->';
const MERGED = 'bench/results/figures.json';

const [jsonPath = figuresPath('run'), mdPath = 'BENCHMARKS.md'] = process.argv.slice(2);
const r = JSON.parse(await readFile(jsonPath, 'utf8')) as Results;
if (r.failures.length > 0) throw new Error(`${jsonPath} records checksum failures; refusing to publish its figures`);
if (r.quick) throw new Error(`${jsonPath} comes from a --quick run; publish a full run`);
if (r.figures === undefined || r.ratios === undefined)
  throw new Error(`${jsonPath} has no named figures: it predates interleaved rounds; run npm run bench`);

// The other scripts' results, when present and not from a quick run.
const others: FigureFile[] = [];
for (const script of ['switch', 'filter'] as const) {
  const path = figuresPath(script);
  if (!existsSync(path)) continue;
  const f = JSON.parse(await readFile(path, 'utf8')) as FigureFile;
  if (!f.quick) others.push(f);
}
const sourceOf = new Map<FigureName, FigureFile>();
for (const f of [r, ...others]) for (const name of Object.keys(f.figures) as FigureName[]) sourceOf.set(name, f);
const figure = (name: FigureName): Figure | undefined => sourceOf.get(name)?.figures[name];

const f1 = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const range = (x: { lo?: number; hi?: number }, fmt: (n: number) => string = f1): string =>
  x.lo === undefined || x.hi === undefined ? '' : ` (${fmt(x.lo)}–${fmt(x.hi)})`;
const MACS = [64, 1024, 4096];
const NATIVE_SAME = 'C -O3 (same algorithm)';
const NATIVE_SWISS = 'C -O3 Swiss table (native anchor)';
const cell = (variant: string, scenario: string, sizes: string, burst?: string | number): string[] =>
  MACS.map((m) => {
    const row = r.rows.find(
      (x) =>
        x.variant === variant &&
        x.scenario === scenario &&
        x.sizes === sizes &&
        x.macs === m &&
        (burst === undefined || String(x.burst) === String(burst)),
    );
    return row ? `${f1(row.mpps)}${range(row)}` : '—';
  });
const table = (rows: [string, string[]][], head = 'variant'): string =>
  [
    `| ${head} | 64 MACs | 1,024 MACs | 4,096 MACs |`,
    '|---|---|---|---|',
    ...rows.map(([name, cells]) => `| ${name} | ${cells.join(' | ')} |`),
  ].join('\n');

const stream = table([
  ['Wasm classify', cell('Wasm classify', 'stream', '64', 'whole')],
  ['Wasm classify, burst 256', cell('Wasm classify', 'stream', '64', 256)],
  ['Wasm classify, burst 32', cell('Wasm classify', 'stream', '64', 32)],
  ['Wasm classify + deliver, burst 256', cell('Wasm classify + deliver', 'stream', '64')],
  [NATIVE_SWISS, cell(NATIVE_SWISS, 'stream', '64')],
  [NATIVE_SAME, cell(NATIVE_SAME, 'stream', '64')],
  ['JS Map (number key)', cell('JS Map (number key)', 'stream', '64')],
  ['JS Map (string key)', cell('JS Map (string key)', 'stream', '64')],
  ['TS reference filter', cell('TS reference filter', 'stream', '64')],
  ['promiscuous fallback (software filter; timed alone)', cell('promiscuous fallback (software filter)', 'stream', '64')],
  ['memory-read ceiling (JS)', cell('memory-read ceiling (JS)', 'stream', '64')],
]);
const other = table([
  ['Wasm classify, cache, 64 B', cell('Wasm classify', 'cache', '64')],
  [`${NATIVE_SWISS}, cache, 64 B`, cell(NATIVE_SWISS, 'cache', '64')],
  [`${NATIVE_SAME}, cache, 64 B`, cell(NATIVE_SAME, 'cache', '64')],
  ['JS Map (number key), cache, 64 B', cell('JS Map (number key)', 'cache', '64')],
  ['Wasm classify + deliver, cache, 64 B', cell('Wasm classify + deliver', 'cache', '64')],
  ['Wasm classify, stream, 60–1514 B', cell('Wasm classify', 'stream', 'mix')],
  ['Wasm classify + deliver, stream, 60–1514 B', cell('Wasm classify + deliver', 'stream', 'mix')],
  ['JS Map (number key), stream, 60–1514 B', cell('JS Map (number key)', 'stream', 'mix')],
]);
const x2 = (n: number): string => `${n.toFixed(2)}×`;
const ratioCells = (of: string, to: string, scenario: string, sizes: string): string[] =>
  MACS.map((m) => {
    const q = r.ratios.find((y) => y.of === of && y.to === to && y.scenario === scenario && y.sizes === sizes && y.macs === m);
    return q ? `${x2(q.value)}${range(q, (n) => n.toFixed(2))}` : '—';
  });
const ratioTable = table(
  [
    ['Wasm classify / JS Map (number key), stream, 64 B', ratioCells('Wasm classify', 'JS Map (number key)', 'stream', '64')],
    [`Wasm classify / ${NATIVE_SWISS}, stream, 64 B`, ratioCells('Wasm classify', NATIVE_SWISS, 'stream', '64')],
    [`Wasm classify / ${NATIVE_SAME}, stream, 64 B`, ratioCells('Wasm classify', NATIVE_SAME, 'stream', '64')],
    [`${NATIVE_SAME} / ${NATIVE_SWISS}, stream, 64 B`, ratioCells(NATIVE_SAME, NATIVE_SWISS, 'stream', '64')],
    ['Wasm classify / JS Map (number key), cache, 64 B', ratioCells('Wasm classify', 'JS Map (number key)', 'cache', '64')],
    [`Wasm classify / ${NATIVE_SWISS}, cache, 64 B`, ratioCells('Wasm classify', NATIVE_SWISS, 'cache', '64')],
    ['Wasm classify / JS Map (number key), stream, 60–1514 B', ratioCells('Wasm classify', 'JS Map (number key)', 'stream', 'mix')],
  ],
  'ratio (median of per-round ratios, lowest–highest round)',
);

const w = r.workers;
const c = r.controlPlane;
const us = (v: number): string => `${v.toFixed(1)} µs`;
const u = r.warmup;
const mem = r.memory;
const facts = [
  '| figure | value |',
  '|---|---|',
  `| one worker, classify, 1,024 MACs | ${f1(w.oneWorkerMpps!)} Mpps |`,
  `| two workers on one shared memory (median of ${w.scalingRounds} interleaved rounds) | ${f1(w.twoWorkersMpps!)} Mpps ` +
    `(${x2(w.scaling!)}; rounds ${w.scalingLo!.toFixed(2)}–${w.scalingHi!.toFixed(2)}) |`,
  '| one change through the NIC API until the next burst sees it, p50 / p99: reserve (`addressAdd`) | ' +
    `${us(c.reserveP50Us!)} / ${us(c.reserveP99Us!)} |`,
  `| … modify (\`addressModify\`) | ${us(c.modifyP50Us!)} / ${us(c.modifyP99Us!)} |`,
  `| … unreserve (\`addressRemove\`) | ${us(c.unreserveP50Us!)} / ${us(c.unreserveP99Us!)} |`,
  '| the same MAC added and removed, again and again (both calls), p50 / p99 | ' +
    `${us(c.sameMacAddRemoveP50Us!)} / ${us(c.sameMacAddRemoveP99Us!)} |`,
  '| full rebuild of 4,096 entries (`reload()`), p50 / p99 | ' +
    `${c.rebuild4096P50Us!.toFixed(0)} µs / ${c.rebuild4096P99Us!.toFixed(0)} µs |`,
  `| a fresh data plane for a NIC with 4,096 MACs (memory, instance, load) | ${c.attachAndLoad4096Us!.toFixed(0)} µs |`,
  `| classify (bursts of 256 over 65,536 frames) while ~1,000 changes per second arrive | ${f1(c.mppsWhileChanging!)} Mpps ` +
    `(${c.changesPerSecond!.toFixed(0)} changes/s) |`,
  `| JS heap growth over ${c.hotPathHeapBursts!.toLocaleString('en-US')} bursts of 256 after a warm-up (allocations on the hot path) | ` +
    `${c.hotPathHeapBytes!.toLocaleString('en-US')} B (${(c.hotPathHeapBytes! / c.hotPathHeapBursts!).toFixed(2)} B per burst) |`,
  '| warm-up, one 32,768-frame burst called 30 times: first call, steady state (flattered by the repetition), calls until steady | ' +
    `${u.firstCallNsPerFrame!.toFixed(1)} ns/frame, ${u.steadyNsPerFrame!.toFixed(1)} ns/frame, ${u.callsUntilSteady} |`,
  `| release \`.wasm\` | ${mem.wasmBytes!.toLocaleString('en-US')} bytes |`,
  '| filter memory per active MAC at 1,024 / 4,096 MACs (`filterBytes`: everything the reader-safety scheme needs, ' +
    'room for 256 groups) | ' +
    `${mem.bytesPerMacAt1024!.toFixed(0)} / ${mem.bytesPerMacAt4096!.toFixed(0)} bytes |`,
  `| extra resident memory for one worker | ${(w.workerRssBytes! / 2 ** 20).toFixed(0)} MiB (a Node isolate plus its 1M-frame pool) |`,
].join('\n');

// Every named figure with a target, judged on the median; a range that straddles the target is said so.
const fmtFigure = (f: Figure): string => {
  const v = (n: number): string => (f.unit === '×' ? n.toFixed(2) : f1(n));
  const unit = f.unit === '×' ? '×' : ` ${f.unit}`;
  return `${v(f.value)}${unit}${f.lo === undefined ? '' : ` (rounds ${v(f.lo)}–${v(f.hi!)})`}`;
};
const meets = (t: NonNullable<FigureSpec['target']>, v: number): boolean => (t.op === '>=' ? v >= t.value : v <= t.value);
const judge = (spec: FigureSpec, f: Figure | undefined): string => {
  const t = spec.target!;
  if (f === undefined) return 'not measured in these results';
  const ok = meets(t, f.value);
  const straddles = f.lo !== undefined && f.hi !== undefined && meets(t, f.lo) !== meets(t, f.hi);
  return `${ok ? 'met' : '**missed**'}${straddles ? ' (rounds on both sides)' : ''}`;
};
const targetRows = (Object.entries(FIGURES) as [FigureName, FigureSpec][])
  .filter(([, spec]) => spec.target !== undefined)
  .map(([name, spec]) => {
    const f = figure(name);
    const t = spec.target!;
    const src = sourceOf.get(name);
    const from =
      src === undefined
        ? `\`npm run ${spec.script === 'run' ? 'bench' : `bench:${spec.script}`}\``
        : `${src.script}, ${src.machine.date.slice(0, 10)}`;
    return `| \`${name}\` | ${spec.what} | ${t.op === '>=' ? '≥' : '≤'} ${t.value}${spec.unit === '×' ? '×' : ` ${spec.unit}`} | ${
      f === undefined ? '—' : fmtFigure(f)
    } | ${judge(spec, f)} | ${from} |`;
  });
const anchors = (['vs_c_swiss.64macs', 'vs_c_swiss.1024macs', 'vs_c_swiss.4096macs'] as const).map((n) => figure(n));
const targets = [
  '| name | figure | target | measured (median, rounds lowest–highest) | | from |',
  '|---|---|---|---|---|---|',
  ...targetRows,
  `| \`vs_c_swiss.*\` | Wasm classify / the C Swiss table (native anchor), 64 / 1,024 / 4,096 MACs | (reported) | ${anchors
    .map((f) => (f === undefined ? '—' : fmtFigure(f)))
    .join(' / ')} | | run |`,
].join('\n');

const load = (f: FigureFile): string =>
  `1-minute load average ${f.machine.loadStart.toFixed(1)} at the start, ${f.machine.loadEnd?.toFixed(1) ?? '?'} at the end`;
const gib = (r.machine.memoryBytes / 2 ** 30).toFixed(0);
const block = [
  BEGIN,
  `- **Machine:** ${r.machine.cpu}, ${r.machine.cores} cores, ${gib} GiB; Node ${r.machine.node}; ${r.cc}.`,
  `- **Run:** ${r.machine.date.slice(0, 16).replace('T', ' ')} UTC, ${r.machine.seconds.toFixed(0)} s; ${load(r)}. ` +
    `Each figure is the median of ${r.machine.rounds} interleaved rounds (after ${r.machine.warmRounds} unrecorded), ` +
    'in parentheses the lowest and highest round. ' +
    `Raw figures: [\`${jsonPath}\`](${jsonPath}); every named figure: [\`${MERGED}\`](${MERGED}).`,
  ...others.map((f) => `- **\`bench:${f.script}\`:** ${f.machine.date.slice(0, 16).replace('T', ' ')} UTC; ${load(f)}.`),
  '',
  '### Classification, stream, 64-byte frames (Mpps)',
  '',
  stream,
  '',
  '### Other scenarios (Mpps)',
  '',
  other,
  '',
  '### Ratios',
  '',
  ratioTable,
  '',
  '### Workers, control plane, memory',
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

// One file with every named figure, its meaning and target, and the run it comes from.
const merged = {
  sources: Object.fromEntries([r, ...others].map((f) => [f.script, { machine: f.machine, quick: f.quick }])),
  figures: Object.fromEntries(
    (Object.entries(FIGURES) as [FigureName, FigureSpec][]).map(([name, spec]) => [
      name,
      { ...spec, ...(figure(name) ?? { value: null }), from: sourceOf.get(name)?.script ?? null },
    ]),
  ),
};
writeFileAtomic(MERGED, JSON.stringify(merged, null, 2) + '\n');
const read = [jsonPath, ...others.map((f) => figuresPath(f.script as FigureSpec['script']))];
console.log(`wrote the figures of ${read.join(', ')} into ${mdPath} and ${MERGED}`);
