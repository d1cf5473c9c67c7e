// Browser page: a Nic and its data plane on the main thread, classification in a Web Worker over shared memory, checked against the reference.
import { DataPlane, Mac, Nic, classifyFrame } from '/dist/index.js';

function frames(nic, n) {
  const macs = nic.slots().map((s) => s.mac.toString());
  const extra = ['ff:ff:ff:ff:ff:ff', '33:33:00:00:00:01', '01:00:5e:00:00:fb', '01:00:5e:00:00:01', '02:00:00:00:99:99', '33:33:ff:00:00:01'];
  const pool = [...macs, ...extra];
  const out = [];
  let s = 17;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const len = i % 97 === 0 ? s % 14 : 60 + (s % 1400);
    const f = new Uint8Array(len);
    if (len >= 6) Mac.parse(pool[s % pool.length]).writeTo(f);
    out.push(f);
  }
  return out;
}

async function run() {
  const nic = new Nic({ primary: '00:14:4f:00:00:00', factory: { base: '00:14:4f:00:00:01', count: 4 }, multicastEntries: 1, maxClients: 16 });
  const dp = await DataPlane.create(nic);
  const a = nic.openClient('a');
  const b = nic.openClient('b', { broadcast: false });
  const tap = nic.openClient('tap', { allowPromiscuous: true });
  a.addressReserve();
  const rb = b.addressReserve();
  b.addressModify(rb.slot, '02:08:20:00:00:0b');
  a.multicastJoin('33:33:00:00:00:01');
  b.multicastJoin('01:00:5e:00:00:fb');
  const list = frames(nic, 4000);

  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  const ask = (msg) =>
    new Promise((resolve, reject) => {
      worker.onmessage = (e) => (e.data.error ? reject(new Error(e.data.error)) : resolve(e.data));
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage(msg);
    });
  let mismatches = 0;
  const check = (words) =>
    words.forEach((w, i) => {
      const want = classifyFrame(nic.filterState(), list[i]);
      if (JSON.stringify(dp.decode(w)) !== JSON.stringify(want)) mismatches++;
    });
  await ask({ handle: dp.handle() });
  check((await ask({ frames: list })).verdicts);
  tap.setPromiscuous(true);
  check((await ask({ frames: list })).verdicts);
  // The main-thread convenience path agrees too.
  for (const f of list.slice(0, 500)) if (JSON.stringify(dp.classify(f)) !== JSON.stringify(classifyFrame(nic.filterState(), f))) mismatches++;
  return { ok: mismatches === 0, frames: list.length * 2 + 500, mismatches, isolated: crossOriginIsolated, shared: dp.memory.buffer instanceof SharedArrayBuffer };
}

run().then(
  (r) => (window.__result = r),
  (err) => (window.__result = { error: String(err && err.stack ? err.stack : err) }),
);
