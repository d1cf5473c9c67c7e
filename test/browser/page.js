// Browser test page script: a Nic and its data plane on the main thread, bursts in a module Web Worker, every verdict checked against the
// reference filter.

const FRAMES_PER_ROUND = 4000;
const RING_FRAMES = 96;
const DEADLINE_MS = 40_000;

const G_EXACT_1 = '01:00:5e:00:00:01';
const G_EXACT_2 = '33:33:00:00:00:01';
const G_HASH_1 = '01:00:5e:7f:12:34';
const G_HASH_2 = '33:33:ff:ab:cd:ef';

// Seeded, so a failing frame can be regenerated from the round and its index.
function mulberry32(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function macBytes(Mac, text) {
  const out = new Uint8Array(6);
  Mac.parse(text).writeTo(out, 0);
  return out;
}

// Mostly addresses the filter knows, plus hash colliders, random unicast and multicast, runts and oversize frames.
function makeFrames(Mac, targets, maxFrameLength, count, seed) {
  const rand = mulberry32(seed);
  const known = targets.map((t) => macBytes(Mac, t));
  const frames = [];
  for (let i = 0; i < count; i++) {
    const r = rand();
    let len;
    if (r < 0.02) len = Math.floor(rand() * 14);
    else if (r < 0.04) len = maxFrameLength + 1 + Math.floor(rand() * 400);
    else len = 60 + Math.floor(rand() * (1514 - 60 + 1));
    const dst = new Uint8Array(6);
    const pick = rand();
    if (pick < 0.75) dst.set(known[Math.floor(rand() * known.length)]);
    else {
      for (let j = 0; j < 6; j++) dst[j] = Math.floor(rand() * 256);
      if (pick < 0.85) dst[0] &= 0xfe;
      else if (pick < 0.93) dst[0] |= 0x01;
      else dst.set([0x33, 0x33], 0);
    }
    const f = new Uint8Array(len);
    f.set(dst.subarray(0, Math.min(6, len)));
    for (let j = 6; j < len; j++) f[j] = (i * 31 + j * 7) & 0xff;
    frames.push(f);
  }
  return frames;
}

function sameVerdict(a, b) {
  return a.rule === b.rule && a.path === b.path && a.deliver.length === b.deliver.length && a.deliver.every((x, i) => x === b.deliver[i]);
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function hex(bytes) {
  return Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

// One reply at a time: the page sends a request and waits for the reply of the expected type.
function channel(worker, errors) {
  let waiting;
  worker.onmessage = (event) => {
    const w = waiting;
    waiting = undefined;
    if (w === undefined) errors.push(`unexpected worker message ${JSON.stringify(event.data?.type)}`);
    else if (event.data?.type === 'error') w.reject(new Error(`worker: ${event.data.message}`));
    else if (event.data?.type !== w.type) w.reject(new Error(`worker replied ${JSON.stringify(event.data?.type)}, expected ${w.type}`));
    else w.resolve(event.data);
  };
  worker.onerror = (event) => {
    const text = `worker error: ${event.message} at ${event.filename}:${event.lineno}`;
    errors.push(text);
    waiting?.reject(new Error(text));
    waiting = undefined;
  };
  worker.onmessageerror = () => errors.push('worker messageerror: a message could not be deserialized');
  return (type, message, transfer = []) =>
    new Promise((resolve, reject) => {
      waiting = { type, resolve, reject };
      if (message !== undefined) worker.postMessage(message, transfer);
    });
}

function pack(frames) {
  const lengths = new Uint32Array(frames.length);
  let total = 0;
  frames.forEach((f, i) => {
    lengths[i] = f.length;
    total += f.length;
  });
  const bytes = new Uint8Array(total);
  let off = 0;
  for (const f of frames) {
    bytes.set(f, off);
    off += f.length;
  }
  return { bytes: bytes.buffer, lengths: lengths.buffer };
}

async function run() {
  const result = {
    ok: false,
    isolated: globalThis.crossOriginIsolated === true,
    shared: false,
    workerShared: false,
    workerIsolated: false,
    workerLane: -1,
    frames: 0,
    mismatches: 0,
    mainMismatches: 0,
    samples: [],
    rules: {},
    ring: { expected: 0, frames: 0, mismatches: 0, woke: false, waitedMs: -1, ringDrops: 0 },
    errors: [],
  };
  const note = (text) => {
    if (result.samples.length < 8) result.samples.push(text);
  };
  let worker;
  try {
    if (!result.isolated) throw new Error('the page is not cross-origin isolated; SharedArrayBuffer is unavailable');
    const { Nic, DataPlane, Mac, classifyFrame } = await import('/dist/index.js');

    const nic = new Nic({
      primary: '00:14:4f:00:00:00',
      factory: { base: '00:14:4f:00:00:01', count: 6 },
      unicastEntries: 3,
      multicastEntries: 3,
      maxClients: 16,
    });
    const a = nic.openClient('vm-a');
    const b = nic.openClient('vm-b');
    const c = nic.openClient('vm-c');
    const e = nic.openClient('vm-e');
    const sniffer = nic.openClient('sniffer', { allowPromiscuous: true });
    const ra = a.addressReserve();
    const rb = b.addressReserve();
    b.addressModify(rb.slot, '02:08:20:00:00:0b');
    c.addressReserve();
    a.multicastJoin(G_EXACT_1);
    b.multicastJoin(G_EXACT_2);
    // Unicast entries are full: the first borrows the last multicast entry, the second overflows into software.
    e.addressAdd('02:08:20:00:00:e1');
    const e2 = e.addressAdd('02:08:20:00:00:e2');
    // No exact multicast entry is left, so these land in the hash stage.
    c.multicastJoin(G_HASH_1);
    c.multicastJoin(G_HASH_2);
    a.multicastJoin(G_HASH_1);
    c.setBroadcast(false);
    sniffer.setPromiscuous(true);
    const stages = [...nic.filterState().groups.values()].map((g) => g.stage).sort();
    if (stages.join() !== 'exact,exact,hash,hash') throw new Error(`setup expected two exact and two hash groups, got ${stages.join()}`);

    const dp = await DataPlane.create(nic, { ringBytes: 1 << 18 });
    result.shared = dp.memory.buffer instanceof SharedArrayBuffer;

    worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    const ask = channel(worker, result.errors);
    const attached = await ask('attached', { type: 'attach', handle: dp.handle() });
    result.workerShared = attached.shared;
    result.workerIsolated = attached.isolated;
    result.workerLane = attached.lane;

    const targets = new Set(['ff:ff:ff:ff:ff:ff', G_EXACT_1, G_EXACT_2, G_HASH_1, G_HASH_2, ra.mac.toString(), rb.mac.toString()]);
    // Same last two bytes as a hashed group: the hash admits them, software must still refuse them.
    for (const g of [G_HASH_1, G_HASH_2]) {
      const bytes = macBytes(Mac, g);
      bytes[2] ^= 0x5a;
      targets.add(Mac.fromBytes(bytes).toString());
      bytes[0] = 0x03;
      targets.add(Mac.fromBytes(bytes).toString());
    }
    const addTargets = () => {
      for (const s of nic.slots()) targets.add(s.mac.toString());
    };

    const round = async (n, seed) => {
      addTargets();
      const frames = makeFrames(Mac, [...targets], nic.maxFrameLength, FRAMES_PER_ROUND, seed);
      const packed = pack(frames);
      const { words } = await ask('verdicts', { type: 'classify', round: n, ...packed }, [packed.bytes, packed.lengths]);
      if (words.length !== frames.length) throw new Error(`round ${n}: ${words.length} verdicts for ${frames.length} frames`);
      const state = nic.filterState();
      frames.forEach((frame, i) => {
        const want = classifyFrame(state, frame);
        result.rules[want.rule] = (result.rules[want.rule] ?? 0) + 1;
        const got = dp.decode(words[i]);
        if (!sameVerdict(got, want)) {
          result.mismatches++;
          note(
            `round ${n} frame ${i} (${frame.length} B to ${hex(frame)}): worker ${JSON.stringify(got)}, reference ${JSON.stringify(want)}`,
          );
        }
        const main = dp.classify(frame);
        if (!sameVerdict(main, want)) {
          result.mainMismatches++;
          note(
            `round ${n} frame ${i} (${frame.length} B to ${hex(frame)}): main thread ${JSON.stringify(main)}, reference ` +
              `${JSON.stringify(want)}`,
          );
        }
      });
      result.frames += frames.length;
      return frames;
    };

    await round(1, 0x6d61_6301);

    // Reprogram while the worker stays attached: it must see every change through the shared memory alone.
    sniffer.setPromiscuous(false);
    e.addressRemove(e2.slot);
    b.multicastLeave(G_EXACT_2);
    a.addressModify(ra.slot, '02:08:20:00:00:0a');
    const late = nic.openClient('vm-late');
    late.multicastJoin(G_EXACT_1);
    e.setBroadcast(false);
    if (nic.addressSupport().mode !== 'filtered') throw new Error(`round 2 expected the filtered mode, got ${nic.addressSupport().mode}`);

    const frames2 = await round(2, 0x6d61_6302);

    // Delivery: the main thread produces into the rings, the worker consumes them straight from shared memory.
    const ringFrames = frames2.slice(0, RING_FRAMES);
    const ids = nic.clients().map((cl) => cl.id);
    const state = nic.filterState();
    const expected = new Map(ids.map((id) => [id, []]));
    for (const f of ringFrames) for (const id of classifyFrame(state, f).deliver) expected.get(id)?.push(f);
    const busiest = ids.reduce((best, id) => (expected.get(id).length > expected.get(best).length ? id : best), ids[0]);
    result.ring.expected = [...expected.values()].reduce((s, l) => s + l.length, 0);
    await ask('armed', { type: 'watch', id: busiest, ids, counts: ids.map((id) => expected.get(id).length) });
    // Claim the reply before producing: the worker's answer is a later task, so it cannot arrive unclaimed.
    const ringsPromise = ask('rings');
    dp.load(ringFrames);
    dp.rxBurst(ringFrames.length);
    const rings = await ringsPromise;
    result.ring.woke = rings.woke;
    result.ring.waitedMs = Math.round(rings.waitedMs);
    for (const { id, frames, verdicts } of rings.rings) {
      const want = expected.get(id) ?? [];
      result.ring.frames += frames.length;
      result.ring.ringDrops += dp.clientCounters(id).ringDrops;
      if (frames.length !== want.length) {
        result.ring.mismatches++;
        note(`ring of client ${id}: ${frames.length} frames, reference delivers ${want.length}`);
        continue;
      }
      frames.forEach((f, i) => {
        const wantVerdict = classifyFrame(state, want[i]);
        const gotVerdict = dp.decode(verdicts[i]);
        if (!sameBytes(f, want[i]) || !sameVerdict(gotVerdict, wantVerdict)) {
          result.ring.mismatches++;
          note(
            `ring of client ${id} frame ${i}: got ${f.length} B to ${hex(f)} ${JSON.stringify(gotVerdict)}, want ${want[i].length} B to ` +
              `${hex(want[i])} ${JSON.stringify(wantVerdict)}`,
          );
        }
      });
    }

    await ask('closed', { type: 'close' });
    dp.close();
  } catch (err) {
    result.errors.push(String(err?.stack ?? err));
  } finally {
    worker?.terminate();
  }
  result.ok =
    result.isolated &&
    result.shared &&
    result.workerShared &&
    result.workerIsolated &&
    result.frames >= 1000 &&
    result.mismatches === 0 &&
    result.mainMismatches === 0 &&
    result.ring.mismatches === 0 &&
    result.ring.frames === result.ring.expected &&
    result.errors.length === 0;
  return result;
}

function deadline(ms) {
  return new Promise((resolve) => setTimeout(() => resolve({ ok: false, errors: [`the page gave no result within ${ms} ms`] }), ms));
}

globalThis.macslotResult = Promise.race([run(), deadline(DEADLINE_MS)]).then((r) => {
  document.getElementById('out').textContent = JSON.stringify(r, null, 2);
  return r;
});
