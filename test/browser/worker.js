// Browser worker: attaches to the page's data plane and classifies bursts with the zero-copy path.
import { DataPlane } from '/dist/index.js';

let dp;
onmessage = async (e) => {
  try {
    if (e.data.handle) {
      dp = await DataPlane.attach(e.data.handle);
      postMessage({ lane: dp.lane });
      return;
    }
    const frames = e.data.frames;
    const verdicts = [];
    for (let start = 0; start < frames.length; start += dp.burst) {
      const n = dp.load(frames.slice(start, start + dp.burst));
      dp.classifyBurst(n);
      verdicts.push(...dp.verdicts.subarray(0, n));
    }
    postMessage({ verdicts });
  } catch (err) {
    postMessage({ error: String(err && err.stack ? err.stack : err) });
  }
};
