// Benchmark worker: attaches a lane to the shared data plane and classifies its own stream of frames.
import { workerData, parentPort } from 'node:worker_threads';
import { DataPlane, Mac } from '../dist/index.js';

const { handle, macs, groups, frames, iterations, seed } = workerData;
const dp = await DataPlane.attach(handle);
let s = (seed * 2654435761) >>> 0 || 1;
const random = () => ((s ^= s << 13), (s ^= s >>> 17), (s ^= s << 5), (s >>> 0) / 2 ** 32);
const bc = Mac.parse('ff:ff:ff:ff:ff:ff');
for (let i = 0; i < frames; i++) {
  const r = random();
  const dst =
    r < 0.8
      ? Mac.parse(macs[Math.floor(random() * macs.length)])
      : r < 0.9
        ? Mac.fromNumber(0x060000000000 + Math.floor(random() * 2 ** 40))
        : r < 0.95
          ? bc
          : Mac.parse(groups[Math.floor(random() * groups.length)]);
  dst.writeTo(dp.pool, i * 64);
  dp.descriptors[2 * i] = i * 64;
  dp.descriptors[2 * i + 1] = 64;
}
for (let i = 0; i < 3; i++) dp.classifyBurst(frames);
const times = [];
for (let i = 0; i < iterations; i++) {
  const t = performance.now();
  dp.classifyBurst(frames);
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
// The process's resident memory while this worker is live and has touched its pool's pages.
const rss = process.memoryUsage().rss;
// Give the lane back before reporting, so the next run can claim it.
dp.close();
parentPort.postMessage({ mpps: frames / times[Math.floor(times.length / 2)] / 1000, rss });
