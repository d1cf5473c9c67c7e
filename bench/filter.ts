// Benchmark: `macslot filter` against `tcpdump -r in.pcap -w out.pcap 'ether dst A or …'` on captures of 64-byte frames
// for 16 and for 256 clients, interleaved (macslot, tcpdump, macslot, tcpdump, …): each round's ratio is tcpdump's
// time over macslot's, and the figure is the median of the rounds' ratios with their spread.
// Figures `filter_vs_tcpdump.<n>macs` go to bench/results/filter.json (or --json FILE).
// Usage: npm run bench:filter [-- --size MB (default 1024)] [--rounds N (default 5)] [--macs 16,256] [--dir DIR] [--keep]
//        [--json FILE] [--quick]

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readCaptureFile } from '../dist/node/index.js';
import { machineNow, roundStats, saveFigures, type Figure, type FigureName } from './figures.js';

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '1024' },
    rounds: { type: 'string', default: '5' },
    // Older name of --rounds.
    runs: { type: 'string' },
    macs: { type: 'string', default: '16,256' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const MB = args.quick ? 64 : Number(args.size);
const ROUNDS = Number(args.runs ?? (args.quick ? '3' : args.rounds));
const CASES = args.macs.split(',').map(Number);
const FRAME = 64;
const frames = Math.floor((MB * 1024 * 1024 - 24) / (16 + FRAME));
const dir = args.dir ?? mkdtempSync(join(tmpdir(), 'macslot-bench-filter-'));
const cli = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const tcpdump = ['/usr/sbin/tcpdump', '/usr/bin/tcpdump'].find((p) => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
});
if (tcpdump === undefined) throw new Error('tcpdump is not installed (apt-get install tcpdump)');
for (const n of CASES) if (!Number.isInteger(n) || n < 1 || n > 4096) throw new Error(`--macs ${n}: 1..4096 MACs`);

function run(cmd: string, argv: string[]): number {
  const t = performance.now();
  const r = spawnSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}): ${r.stderr.toString()}`);
  return ms;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface CaseResult {
  macs: number;
  frames: number;
  bytes: number;
  delivered: number;
  rounds: { macslotMs: number; tcpdumpMs: number; ratio: number }[];
  macslotMs: number;
  tcpdumpMs: number;
  ratio: number;
  ratioMin: number;
  ratioMax: number;
}

async function runCase(n: number): Promise<CaseResult> {
  const cdir = join(dir, `macs-${n}`);
  rmSync(cdir, { recursive: true, force: true });
  spawnSync('mkdir', ['-p', cdir]);
  const mac = (i: number): string =>
    `00:14:4f:00:${((i >> 8) + 1).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
  const macs = Array.from({ length: n }, (_, i) => mac(i + 1));
  const config = {
    nic: { primary: mac(0), factory: { base: macs[0], count: n }, unicastEntries: n, maxClients: n + 2, maxAddresses: n + 2 },
    clients: macs.map((_, i) => ({ name: `vm-${String(i).padStart(4, '0')}`, address: 'factory' })),
  };
  const nic = join(cdir, 'nic.json');
  writeFileSync(nic, JSON.stringify(config, null, 2));
  const input = join(cdir, 'in.pcap');
  process.stderr.write(
    `[bench:filter] ${n} MACs: generating ${MB} MB (${frames} frames of ${FRAME} bytes, 90% theirs, 10% unknown unicast)\n`,
  );
  run(process.execPath, [
    cli,
    'gen',
    input,
    '--config',
    nic,
    '--frames',
    String(frames),
    '--size',
    String(FRAME),
    '--mix',
    'unicast=90,unknown=10',
    '--seed',
    '1',
  ]);
  const bytes = statSync(input).size;
  // Both tools read from the page cache: warm it once so neither pays the disk for the other.
  readFileSync(input);
  const filterExpr = macs.map((m) => `ether dst ${m}`).join(' or ');
  const out = join(cdir, 'out');
  const tcpOut = join(cdir, 'tcpdump.pcap');
  // Each run writes fresh files after the previous run's dirty pages are on disk, so neither tool pays
  // for the other's write-back or for truncating an old output.
  const fresh = (): void => {
    rmSync(out, { recursive: true, force: true });
    rmSync(tcpOut, { force: true });
    spawnSync('sync');
  };
  const rounds: CaseResult['rounds'] = [];
  for (let r = 0; r < ROUNDS; r++) {
    fresh();
    const macslotMs = run(process.execPath, [cli, 'filter', input, '--config', nic, '--out', out]);
    fresh();
    const tcpdumpMs = run(tcpdump!, ['-r', input, '-w', tcpOut, filterExpr]);
    rounds.push({ macslotMs, tcpdumpMs, ratio: tcpdumpMs / macslotMs });
    process.stderr.write(
      `[bench:filter] ${n} MACs, round ${r + 1}: macslot ${(macslotMs / 1000).toFixed(2)} s, tcpdump ${(tcpdumpMs / 1000).toFixed(2)} s\n`,
    );
  }
  // The last round's outputs: both tools must have picked the same frames.
  rmSync(out, { recursive: true, force: true });
  run(process.execPath, [cli, 'filter', input, '--config', nic, '--out', out]);
  let delivered = 0;
  let matched = 0;
  for (const c of config.clients) await readCaptureFile(join(out, `${c.name}.pcap`), () => void delivered++);
  await readCaptureFile(tcpOut, () => void matched++);
  if (delivered !== matched) throw new Error(`${n} MACs: macslot delivered ${delivered} frames to the clients, tcpdump matched ${matched}`);
  if (!args.keep && args.dir === undefined) rmSync(cdir, { recursive: true, force: true });
  const ratios = rounds.map((x) => x.ratio);
  return {
    macs: n,
    frames,
    bytes,
    delivered,
    rounds,
    macslotMs: median(rounds.map((x) => x.macslotMs)),
    tcpdumpMs: median(rounds.map((x) => x.tcpdumpMs)),
    ratio: median(ratios),
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
  };
}

const machine = machineNow();
const results: CaseResult[] = [];
for (const n of CASES) results.push(await runCase(n));

const rate = (bytes: number, ms: number): string => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
const fps = (n: number, ms: number): string => `${(n / 1e6 / (ms / 1000)).toFixed(2)} Mfps`;
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}; ${ROUNDS} interleaved rounds per case`);
console.log(
  '| MACs (outputs) | capture | macslot filter, median | tcpdump -r -w, median | macslot / tcpdump: median of rounds (min–max) |',
);
console.log('|---|---|---|---|---|');
for (const r of results) {
  console.log(
    `| ${r.macs} | ${(r.bytes / 1e6).toFixed(0)} MB, ${r.frames} frames, ${r.delivered} for the clients (both tools agree) | ` +
      `${(r.macslotMs / 1000).toFixed(2)} s, ${rate(r.bytes, r.macslotMs)}, ${fps(r.frames, r.macslotMs)} | ` +
      `${(r.tcpdumpMs / 1000).toFixed(2)} s, ${rate(r.bytes, r.tcpdumpMs)}, ${fps(r.frames, r.tcpdumpMs)} | ` +
      `**${r.ratio.toFixed(2)}×** (${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)}) |`,
  );
}
const figures: Partial<Record<FigureName, Figure>> = {};
for (const r of results) {
  const name = `filter_vs_tcpdump.${r.macs}macs`;
  if (name === 'filter_vs_tcpdump.16macs' || name === 'filter_vs_tcpdump.256macs')
    figures[name] = roundStats(
      r.rounds.map((x) => x.ratio),
      '×',
    );
}
saveFigures('filter', machine, args.quick, figures, { sizeMB: MB, cases: results }, args.json);
if (!args.keep && args.dir === undefined) rmSync(dir, { recursive: true, force: true });
