// Browser test worker: attaches to the page's data plane over shared memory and runs bursts on its own lane.

import { DataPlane } from '/dist/index.js';

/** @type {DataPlane | undefined} */
let lane;

// Packs frames into the lane's pool in as few bursts as fit, the zero-copy path a real producer would use.
function classifyAll(dp, bytes, lengths) {
  const out = new Uint32Array(lengths.length);
  let src = 0;
  let i = 0;
  while (i < lengths.length) {
    let off = 0;
    let k = 0;
    while (i + k < lengths.length && k < dp.burst) {
      const len = lengths[i + k];
      if (off + len > dp.pool.length) break;
      dp.pool.set(bytes.subarray(src, src + len), off);
      dp.descriptors[2 * k] = off;
      dp.descriptors[2 * k + 1] = len;
      off += (len + 7) & ~7;
      src += len;
      k++;
    }
    if (k === 0) throw new Error(`frame ${i} (${lengths[i]} bytes) does not fit a pool of ${dp.pool.length} bytes`);
    const n = dp.classifyBurst(k);
    if (n !== k) throw new Error(`classifyBurst(${k}) returned ${n}`);
    out.set(dp.verdicts.subarray(0, k), i);
    i += k;
  }
  return out;
}

async function handle(msg) {
  switch (msg.type) {
    case 'attach': {
      lane = await DataPlane.attach(msg.handle);
      return {
        type: 'attached',
        lane: lane.lane,
        shared: lane.memory.buffer instanceof SharedArrayBuffer,
        isolated: self.crossOriginIsolated === true,
      };
    }
    case 'classify': {
      const words = classifyAll(lane, new Uint8Array(msg.bytes), new Uint32Array(msg.lengths));
      return [{ type: 'verdicts', round: msg.round, words }, [words.buffer]];
    }
    case 'watch': {
      // Tell the page to produce only once this thread is about to sleep, so the wake-up comes from the producer's doorbell.
      self.postMessage({ type: 'armed' });
      const started = performance.now();
      // 20 s: a busy machine may hold the page back for seconds, and it still rings the doorbell within that.
      const woke = lane.ring(msg.id).wait(20_000);
      const waitedMs = performance.now() - started;
      // The doorbell wakes this thread once the first ring's head is published; the producer publishes
      // the other rings' heads right after, so each ring is read until it holds what the page expects
      // (or a second passes: then the shortfall shows up as a mismatch).
      const deadline = performance.now() + 1000;
      const rings = msg.ids.map((id, k) => {
        const frames = [];
        const verdicts = [];
        do {
          lane.ring(id).poll((frame, verdict) => {
            frames.push(frame.slice());
            verdicts.push(verdict);
          });
        } while (frames.length < msg.counts[k] && performance.now() < deadline);
        return { id, frames, verdicts };
      });
      return { type: 'rings', woke, waitedMs, rings };
    }
    case 'close':
      lane.close();
      return { type: 'closed' };
    default:
      throw new Error(`unknown message ${JSON.stringify(msg.type)}`);
  }
}

self.onmessage = async (event) => {
  try {
    const reply = await handle(event.data);
    if (Array.isArray(reply)) self.postMessage(reply[0], reply[1]);
    else self.postMessage(reply);
  } catch (e) {
    self.postMessage({ type: 'error', message: String(e?.stack ?? e) });
  }
};
