// Benchmark: `macslot filter` against `tcpdump -r in.pcap -w out.pcap 'ether dst A or …'` on one capture of 64-byte frames for 16 clients.
// Usage: npm run bench:filter [-- --size MB (default 1024)] [--runs N] [--dir DIR] [--keep]

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readCaptureFile } from '../dist/node/index.js';
import { machineNow, roundStats, saveFigures } from './figures.js';

const { values: args } = parseArgs({
  options: { size: { type: 'string', default: '1024' }, runs: { type: 'string', default: '1' }, dir: { type: 'string' }, keep: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false } },
});
const MB = args.quick ? 64 : Number(args.size);
const RUNS = Number(args.runs);
const machine = machineNow();
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

const macs = Array.from({ length: 16 }, (_, i) => `00:14:4f:00:01:${(i + 1).toString(16).padStart(2, '0')}`);
const config = {
  nic: { primary: '00:14:4f:00:01:00', factory: { base: macs[0], count: 16 }, unicastEntries: 16 },
  clients: macs.map((_, i) => ({ name: `vm-${String(i).padStart(2, '0')}`, address: 'factory' })),
};
writeFileSync(join(dir, 'nic.json'), JSON.stringify(config, null, 2));
const input = join(dir, 'in.pcap');

function run(cmd: string, argv: string[]): number {
  const t = performance.now();
  const r = spawnSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}): ${r.stderr.toString()}`);
  return ms;
}

process.stderr.write(`[bench:filter] generating ${MB} MB (${frames} frames of ${FRAME} bytes, 16 clients, 90% theirs, 10% unknown unicast) in ${dir}\n`);
run(process.execPath, [cli, 'gen', input, '--config', join(dir, 'nic.json'), '--frames', String(frames), '--size', String(FRAME), '--mix', 'unicast=90,unknown=10', '--seed', '1']);
const bytes = statSync(input).size;
// Both tools read from the page cache: warm it once so neither pays the disk for the other.
readFileSync(input);

const filterExpr = macs.map((m) => `ether dst ${m}`).join(' or ');
const results: { tool: string; ms: number }[] = [];
let delivered = 0;
let matched = 0;
// Each run writes fresh files after the previous run's dirty pages are on disk, so neither tool pays
// for the other's write-back or for truncating an old output.
const fresh = (): void => {
  rmSync(join(dir, 'out'), { recursive: true, force: true });
  rmSync(join(dir, 'tcpdump.pcap'), { force: true });
  spawnSync('sync');
};
for (let r = 0; r < RUNS; r++) {
  fresh();
  results.push({ tool: 'macslot filter (16 outputs)', ms: run(process.execPath, [cli, 'filter', input, '--config', join(dir, 'nic.json'), '--out', join(dir, 'out')]) });
  fresh();
  results.push({ tool: 'tcpdump -r -w (1 output)', ms: run(tcpdump, ['-r', input, '-w', join(dir, 'tcpdump.pcap'), filterExpr]) });
}
// The last tcpdump run's output stays; run macslot once more (untimed) so the frame counts below compare the two.
rmSync(join(dir, 'out'), { recursive: true, force: true });
run(process.execPath, [cli, 'filter', input, '--config', join(dir, 'nic.json'), '--out', join(dir, 'out')]);
for (const name of config.clients.map((c) => c.name)) {
  await readCaptureFile(join(dir, 'out', `${name}.pcap`), () => void delivered++);
}
await readCaptureFile(join(dir, 'tcpdump.pcap'), () => void matched++);
if (delivered !== matched) throw new Error(`macslot delivered ${delivered} frames to the 16 clients, tcpdump matched ${matched}`);

const best = (tool: string): number => Math.min(...results.filter((x) => x.tool === tool).map((x) => x.ms));
const m = best('macslot filter (16 outputs)');
const t = best('tcpdump -r -w (1 output)');
const row = (tool: string, ms: number): string => `| ${tool} | ${(ms / 1000).toFixed(2)} s | ${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s | ${(frames / 1e6 / (ms / 1000)).toFixed(2)} Mfps |`;
console.log(`capture: ${(bytes / 1e6).toFixed(0)} MB, ${frames} frames of ${FRAME} bytes; ${matched} frames for the 16 clients (both tools agree)`);
console.log('| tool | time (best of ' + RUNS + ') | rate | frames |');
console.log('|---|---|---|---|');
console.log(row('macslot filter (16 outputs)', m));
console.log(row(`tcpdump -r -w 'ether dst A or …' (1 output)`, t));
console.log(`macslot / tcpdump speed: ${(t / m).toFixed(2)}×`);
// The named figure (bench/figures.ts): the median of the per-run ratios (each run times both tools back to back).
const perRun = Array.from({ length: RUNS }, (_, k) => results[2 * k + 1]!.ms / results[2 * k]!.ms);
saveFigures('filter', machine, args.quick!, { 'filter_vs_tcpdump.16macs': roundStats(perRun, '×') });
if (!args.keep && args.dir === undefined) rmSync(dir, { recursive: true, force: true });
