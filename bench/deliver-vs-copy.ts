// Benchmark: zero-copy delivery against another build's delivery (e.g. the copying rings before descriptors), interleaved
// round by round in one process, on the same frames, checksummed. Ratios are medians of per-round ratios.
// Usage: npx tsx bench/deliver-vs-copy.ts <other build's dist/index.js> [--macs 1024] [--sizes 64|mix] [--rounds 9]

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DataPlane, RxBatch, type RxRing } from '../dist/index.js';
import { machineNow, roundStats } from './figures.js';
import { fillFrames, foldVerdicts, scenario } from './traffic.js';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    macs: { type: 'string', default: '1024' },
    sizes: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '9' },
  },
});
if (positionals.length !== 1) {
  process.stderr.write('usage: npx tsx bench/deliver-vs-copy.ts <other build dist/index.js> [--macs N] [--sizes 64|mix] [--rounds N]\n');
  process.exit(2);
}
const FRAMES = 1 << 19;
const BURST = 256;
const MACS = Number(args.macs);
const SIZES = args.sizes === 'mix' ? 'mix' : '64';
const ROUNDS = Math.max(3, Number(args.rounds) | 0);
const other = (await import(pathToFileURL(resolve(positionals[0]!)).href)) as { DataPlane: typeof DataPlane };

type Mode = 'classify' | 'discard' | 'views';

/** One variant: a timed pass over every frame in bursts (returns Mpps), and the checksum of the verdicts of such a pass. */
async function variant(DP: typeof DataPlane, mode: Mode): Promise<{ pass: () => number; checksum: () => number }> {
  const s = scenario(MACS);
  const dp = await DP.create(s.nic, { burst: FRAMES, poolBytes: FRAMES * 64 + 2048, lanes: 3, ringBytes: 1 << 16, seed: 42 });
  const rings: RxRing[] = [s.nic.primaryClient, ...s.clients].map((c) => dp.ring(c.id));
  const all = new Uint32Array(FRAMES * 2);
  fillFrames(s, dp.pool, all, FRAMES, SIZES, 0, MACS);
  const views: Uint32Array[] = [];
  for (let at = 0; at < FRAMES; at += BURST) views.push(all.subarray(2 * at, 2 * (at + BURST)));
  const batch = new RxBatch(4096);
  const run = (sum: boolean): number => {
    let acc = 0;
    for (const v of views) {
      dp.descriptors.set(v);
      if (mode === 'classify') dp.classifyBurst(BURST);
      else {
        dp.rxBurst(BURST);
        if (mode === 'discard') for (const r of rings) r.discard();
        else for (const r of rings) while (r.rxBurstInto(batch) > 0) r.release();
      }
      if (sum) acc = foldVerdicts(acc, dp.verdicts, BURST);
    }
    return acc;
  };
  return {
    pass: () => {
      const t = performance.now();
      run(false);
      return FRAMES / (performance.now() - t) / 1000;
    },
    checksum: () => run(true),
  };
}

const variants: [string, Awaited<ReturnType<typeof variant>>][] = [
  ['this build: classify, burst 256', await variant(DataPlane, 'classify')],
  ['other build: classify + deliver, discard', await variant(other.DataPlane, 'discard')],
  ['this build: classify + deliver, discard', await variant(DataPlane, 'discard')],
  ['this build: classify + deliver, views released', await variant(DataPlane, 'views')],
];
const machine = machineNow();
for (let r = 0; r < 2; r++) for (const [, v] of variants) v.pass();
const mpps = variants.map(() => [] as number[]);
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < variants.length; k++) {
    const i = (k + r) % variants.length;
    mpps[i]!.push(variants[i]![1].pass());
  }
}
const sums = variants.map(([, v]) => v.checksum());
console.log(`deliver vs copy — ${MACS} MACs, ${SIZES} B, ${ROUNDS} rounds, load ${machine.loadStart.toFixed(1)}`);
variants.forEach(([name], i) => {
  const st = roundStats(mpps[i]!, 'Mpps');
  const ratio = roundStats(
    mpps[i]!.map((x, k) => x / mpps[1]![k]!),
    '×',
  );
  console.log(
    `${name.padEnd(48)} ${st.value.toFixed(1).padStart(6)} Mpps (${st.lo!.toFixed(1)}–${st.hi!.toFixed(1)})  ` +
      `vs other build's deliver ${ratio.value.toFixed(2)}× (${ratio.lo!.toFixed(2)}–${ratio.hi!.toFixed(2)})`,
  );
});
if (new Set(sums).size !== 1) {
  console.error(`CHECKSUM MISMATCH: ${sums.join(', ')}`);
  process.exit(1);
}
console.log(`checksums agree (${sums[0]})`);
