// Benchmark figures: the stable names of every figure the targets are judged on, the statistics of interleaved rounds,
// and the per-script results files that bench/report.ts merges (bench/results/<script>.json).

import { mkdirSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../src/node/output-file.js';

/** One figure: its value (for interleaved variants the median of per-round values) and, when measured in rounds, their range. */
export interface Figure {
  value: number;
  unit: string;
  /** The lowest and highest per-round value, when the figure comes from interleaved rounds. */
  lo?: number;
  hi?: number;
  rounds?: number;
  note?: string;
}

/** A target: the figure must be at least (`>=`) or at most (`<=`) `value`. */
export interface Target {
  op: '>=' | '<=';
  value: number;
}

/** What a stable name means, which script writes it, and its target if the issue sets one. */
export interface FigureSpec {
  what: string;
  script: 'run' | 'switch' | 'filter';
  unit: string;
  target?: Target;
}

const at = (n: number): string => `${n.toLocaleString('en-US')} active MACs`;
const classifySpec = (m: number, min: number): FigureSpec => ({
  what: `Wasm classify, stream of 64-byte frames, one call over all frames, ${at(m)}`,
  script: 'run',
  unit: 'Mpps',
  target: { op: '>=', value: min },
});
const ratio = (what: string, script: FigureSpec['script'], target?: number): FigureSpec =>
  target === undefined ? { what, script, unit: '×' } : { what, script, unit: '×', target: { op: '>=', value: target } };

/** Every figure under its stable name. Names never change meaning; a new measure gets a new name. */
export const FIGURES = {
  'classify.64macs': classifySpec(64, 148.8),
  'classify.1024macs': classifySpec(1024, 148.8),
  'classify.4096macs': classifySpec(4096, 120),
  'classify_deliver.64macs': { what: `Wasm classify + deliver, bursts of 256, stream, 64 B, ${at(64)}`, script: 'run', unit: 'Mpps' },
  'classify_deliver.1024macs': {
    what: `Wasm classify + deliver, bursts of 256, stream, 64 B, ${at(1024)}`,
    script: 'run',
    unit: 'Mpps',
    target: { op: '>=', value: 100 },
  },
  'classify_deliver.4096macs': { what: `Wasm classify + deliver, bursts of 256, stream, 64 B, ${at(4096)}`, script: 'run', unit: 'Mpps' },
  'vs_map.64macs': ratio(`Wasm classify / number-keyed JS Map, per round, stream, 64 B, ${at(64)}`, 'run', 5),
  'vs_map.1024macs': ratio(`Wasm classify / number-keyed JS Map, per round, stream, 64 B, ${at(1024)}`, 'run', 5),
  'vs_map.4096macs': ratio(`Wasm classify / number-keyed JS Map, per round, stream, 64 B, ${at(4096)}`, 'run', 5),
  'vs_c_swiss.64macs': ratio(`Wasm classify / C Swiss table (GCC -O3, SSE2 groups; the native anchor), per round, ${at(64)}`, 'run'),
  'vs_c_swiss.1024macs': ratio(`Wasm classify / C Swiss table (native anchor), per round, ${at(1024)}`, 'run'),
  'vs_c_swiss.4096macs': ratio(`Wasm classify / C Swiss table (native anchor), per round, ${at(4096)}`, 'run'),
  'vs_c_same.64macs': ratio(`Wasm classify / C -O3 of the data plane's own algorithm, per round, ${at(64)}`, 'run', 0.9),
  'vs_c_same.1024macs': ratio(`Wasm classify / C -O3 of the data plane's own algorithm, per round, ${at(1024)}`, 'run', 0.9),
  'vs_c_same.4096macs': ratio(`Wasm classify / C -O3 of the data plane's own algorithm, per round, ${at(4096)}`, 'run', 0.9),
  'bytes_per_mac.1024macs': { what: `DataPlane.filterBytes / ${at(1024)}`, script: 'run', unit: 'B' },
  'bytes_per_mac.4096macs': { what: `DataPlane.filterBytes / ${at(4096)}`, script: 'run', unit: 'B', target: { op: '<=', value: 18 } },
  'change_visible.p50_us': {
    what: 'one change through the NIC API until the next burst sees it, p50, slowest of reserve / modify / unreserve',
    script: 'run',
    unit: 'µs',
  },
  'change_visible.p99_us': {
    what: 'one change through the NIC API until the next burst sees it, p99, slowest of reserve / modify / unreserve',
    script: 'run',
    unit: 'µs',
    target: { op: '<=', value: 1 },
  },
  'vlan_tagged_vs_untagged.1024macs': ratio(
    'Wasm classify of 802.1Q-tagged frames under VLAN filtering / the same frames untagged without it, per round, stream, 64 B, ' +
      '1,024 active MACs',
    'run',
    0.8,
  ),
  'vlan_tagged_vs_untagged_filtering.1024macs': ratio(
    'Wasm classify of 802.1Q-tagged frames / the same frames untagged (native VLAN), both under VLAN filtering, per round, ' +
      'stream, 64 B, 1,024 active MACs',
    'run',
    0.8,
  ),
  'workers.scaling': ratio('two workers on one shared memory / one worker, classify, 1,024 MACs', 'run', 1.8),
  'rebuild_4096.p50_us': {
    what: 'full rebuild of 4,096 entries (reload()), p50',
    script: 'run',
    unit: 'µs',
    target: { op: '<=', value: 40 },
  },
  'switch_vs_relay.2clients': ratio(
    'switch / batching flooding relay, frames reaching their destination per second, 2 clients',
    'switch',
    1,
  ),
  'switch_vs_relay.16clients': ratio(
    'switch / batching flooding relay, frames reaching their destination per second, 16 clients',
    'switch',
    5,
  ),
  'switch_cpu_us_per_frame.2clients': { what: "the switch's own CPU time per frame delivered, 2 clients", script: 'switch', unit: 'µs' },
  'switch_cpu_us_per_frame.16clients': { what: "the switch's own CPU time per frame delivered, 16 clients", script: 'switch', unit: 'µs' },
  'switch_young_gcs_per_mframe.2clients': {
    what: "young-generation collections in the switch's process per million frames delivered, 2 clients",
    script: 'switch',
    unit: 'per M frames',
  },
  'switch_young_gcs_per_mframe.16clients': {
    what: "young-generation collections in the switch's process per million frames delivered, 16 clients",
    script: 'switch',
    unit: 'per M frames',
  },
  'switch_heap_growth_bytes.2clients': { what: "the switch's heap growth over one window, 2 clients", script: 'switch', unit: 'B' },
  'switch_heap_growth_bytes.16clients': { what: "the switch's heap growth over one window, 16 clients", script: 'switch', unit: 'B' },
  'filter_vs_tcpdump.16macs': ratio(
    'tcpdump time / macslot filter time, one capture of 64-byte frames, 16 MACs (16 outputs against one)',
    'filter',
    2,
  ),
  'filter_vs_tcpdump.256macs': ratio('tcpdump time / macslot filter time, 256 MACs (256 outputs against one)', 'filter', 5),
} as const satisfies Record<string, FigureSpec>;

/** A stable figure name. */
export type FigureName = keyof typeof FIGURES;

/** The median, lowest and highest of a list of per-round values. */
export function roundStats(values: readonly number[], unit: string): Figure {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return { value: NaN, unit, rounds: 0 };
  const mid = s.length >> 1;
  const value = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { value, unit, lo: s[0]!, hi: s[s.length - 1]!, rounds: s.length };
}

/** The machine and its load (1-minute load average at the start and at the end of the script). */
export interface Machine {
  cpu: string;
  cores: number;
  memoryBytes: number;
  node: string;
  date: string;
  loadStart: number;
  loadEnd?: number;
}

/** Describes this machine now; pass it back to `saveFigures`, which adds the load at the end. */
export function machineNow(): Machine {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryBytes: totalmem(),
    node: process.version,
    date: new Date().toISOString(),
    loadStart: loadavg()[0]!,
  };
}

/** The results file of one script. */
export interface FigureFile {
  script: string;
  machine: Machine;
  quick: boolean;
  figures: Partial<Record<FigureName, Figure>>;
  [extra: string]: unknown;
}

/** The default results file of a script: bench/results/<script>.json (the main suite keeps latest.json). */
export function figuresPath(script: FigureSpec['script']): string {
  return script === 'run' ? 'bench/results/latest.json' : `bench/results/${script}.json`;
}

/** Writes a script's figures (and any extra raw data) to its results file, adding the load at the end. */
export function saveFigures(
  script: FigureSpec['script'],
  machine: Machine,
  quick: boolean,
  figures: Partial<Record<FigureName, Figure>>,
  extra: Record<string, unknown> = {},
  path = figuresPath(script),
): void {
  for (const name of Object.keys(figures)) {
    if (!(name in FIGURES)) throw new Error(`unknown figure name ${name}: add it to FIGURES in bench/figures.ts`);
  }
  const file: FigureFile = { script, machine: { ...machine, loadEnd: loadavg()[0]! }, quick, figures, ...extra };
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, JSON.stringify(file, null, 2) + '\n');
}
