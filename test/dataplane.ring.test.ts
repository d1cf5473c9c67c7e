// Zero-copy delivery (src/dataplane/ring.ts, assembly/pool.ts): rings carry descriptors, frames stay in the lane's pool until
// every receiver released them, slow consumers lose their own oldest pending frames, and the copying paths read the same.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { DataPlane, Mac, Nic, RxBatch } from 'macslot';

const PRIMARY = '00:14:4f:00:00:00';
const MA = '02:00:00:00:00:0a';
const MB = '02:00:00:00:00:0b';
const BCAST = 'ff:ff:ff:ff:ff:ff';
/** 16 pool lines of 64 bytes: small enough that a few held frames fill it. */
const POOL = 1024;
const LINES = POOL / 64;

/** A frame to `dst` carrying `seq` (u32 at byte 14) and then `seq & 0xff` in every byte. */
function frame(dst: string, seq: number, length = 64): Uint8Array {
  const f = new Uint8Array(length).fill(seq & 0xff);
  Mac.parse(dst).writeTo(f, 0);
  new DataView(f.buffer).setUint32(14, seq, true);
  return f;
}
const seqOf = (f: Uint8Array): number => new DataView(f.buffer, f.byteOffset).getUint32(14, true);

async function setup(poolBytes = POOL) {
  const nic = new Nic({ primary: PRIMARY, unicastEntries: 4, maxFrameLength: 256, maxClients: 4 });
  const dp = await DataPlane.create(nic, { poolBytes, burst: 16, ringBytes: 4096, lanes: 2, seed: 7 });
  const a = nic.openClient('a');
  const b = nic.openClient('b');
  a.addressAdd(MA);
  b.addressAdd(MB);
  const p = nic.primaryClient;
  return { nic, dp, a, b, p, ra: dp.ring(a.id), rb: dp.ring(b.id), rp: dp.ring(p.id) };
}

/** Copies of the batch's frames, for comparing later. */
const copies = (batch: RxBatch): Uint8Array[] => Array.from({ length: batch.count }, (_, i) => batch.frame(i).slice());

describe('views', () => {
  it('a taken view stays valid and unchanged until release while the producer cycles the rest of the pool', async () => {
    const { dp, ra, rb } = await setup();
    const batch = new RxBatch(8);
    dp.receiveBurst([0, 1, 2, 3].map((i) => frame(MA, i, 100)));
    expect(ra.rxBurstInto(batch)).toBe(4);
    expect(ra.held).toBe(4);
    const before = copies(batch);
    // 400 frames to b through the 8 lines a does not hold: the pool is laid over many times.
    for (let i = 0; i < 400; i++) {
      dp.receive(frame(MB, 1000 + i, 64 + (i % 3) * 64));
      expect(rb.drain().map(seqOf)).toEqual([1000 + i]);
    }
    expect(copies(batch)).toEqual(before);
    expect(before.map(seqOf)).toEqual([0, 1, 2, 3]);
    expect(dp.counters()).toMatchObject({ poolFull: 0, poolDrops: 0 });
    expect(ra.release()).toBe(4);
    expect(ra.held).toBe(0);
  });

  it('the copying paths refuse to run while views are held (releases go in order)', async () => {
    const { dp, ra } = await setup();
    dp.receiveBurst([frame(MA, 1), frame(MA, 2)]);
    const batch = new RxBatch(1);
    expect(ra.rxBurstInto(batch)).toBe(1);
    for (const call of [() => ra.poll(() => undefined), () => ra.drain(), () => ra.read()])
      expect(call).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    ra.release();
    expect(ra.drain().map(seqOf)).toEqual([2]);
  });
});

const BAD_ARGUMENTS: { name: string; call: () => unknown }[] = [
  { name: 'a batch of 0 frames', call: () => new RxBatch(0) },
  { name: 'a batch of 1.5 frames', call: () => new RxBatch(1.5) },
  { name: 'a batch over 65536 frames', call: () => new RxBatch(65537) },
  { name: 'frame(0) of an empty batch', call: () => new RxBatch(4).frame(0) },
];

describe('arguments', () => {
  it.each(BAD_ARGUMENTS)('$name throws INVALID_ARGUMENT', ({ call }) => {
    expect(call).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('release(-1) and reserve(-1) throw INVALID_ARGUMENT', async () => {
    const { dp, ra } = await setup();
    expect(() => ra.release(-1)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => dp.reserve(-1)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('release and reuse', () => {
  it('release frees the oldest held frames first, and only their lines', async () => {
    const { dp, ra } = await setup();
    dp.receiveBurst(Array.from({ length: LINES }, (_, i) => frame(MA, i)));
    const batch = new RxBatch(LINES);
    expect(ra.rxBurstInto(batch)).toBe(LINES);
    // Every line is held by a view: nothing is free and nothing pending can be taken back.
    expect(dp.reserve(64)).toBe(-1);
    expect(dp.counters().poolFull).toBe(1);
    // Frames were placed from the pool's start, one line each.
    expect([...batch.offsets]).toEqual(Array.from({ length: LINES }, (_, i) => i * 64));
    expect(ra.release(1)).toBe(1);
    expect(dp.reserve(64)).toBe(0);
    expect(dp.reserve(128)).toBe(-1);
    // The second release frees the second oldest: lines 0 and 1 now make one free run of two.
    expect(ra.release(1)).toBe(1);
    expect(dp.reserve(128)).toBe(0);
    expect(ra.held).toBe(LINES - 2);
    // Asking for more than is held releases what is held.
    expect(ra.release(LINES)).toBe(LINES - 2);
    expect(ra.held).toBe(0);
  });

  it('reserve never places a frame past the pool end when the last line is partly outside the pool', async () => {
    // 300 bytes: four whole lines and 44 bytes of a fifth.
    const { dp } = await setup(300);
    expect(dp.reserve(250)).toBe(0);
    // Line 4 starts at 256: 64 bytes there would end at 320, past the pool.
    expect(dp.reserve(64, false)).toBe(-1);
    expect(dp.reserve(44, false)).toBe(256);
  });

  it('a broadcast frame is reused only after its last receiver released it', async () => {
    const { dp, ra, rb, rp } = await setup();
    dp.receiveBurst(Array.from({ length: LINES }, (_, i) => frame(BCAST, i)));
    const batches = [ra, rb, rp].map((ring) => {
      const batch = new RxBatch(LINES);
      expect(ring.rxBurstInto(batch)).toBe(LINES);
      return batch;
    });
    const first = batches[0]!.offsets[0]!;
    expect(batches.map((b) => b.offsets[0])).toEqual([first, first, first]);
    ra.release();
    expect(dp.reserve(64)).toBe(-1);
    rb.release();
    expect(dp.reserve(64)).toBe(-1);
    rp.release(1);
    expect(dp.reserve(64)).toBe(first);
    expect(dp.counters()).toMatchObject({ poolDrops: 0, poolFull: 2 });
  });
});

describe('slow consumers', () => {
  it('a consumer that never reads loses its oldest pending frames, counted against it only', async () => {
    const { dp, a, b, ra, rb } = await setup();
    const toB: number[] = [];
    for (let i = 0; i < 100; i++) {
      dp.receiveBurst([frame(MA, i, 100), frame(MB, i, 100)]);
      toB.push(...rb.drain().map(seqOf));
    }
    expect(toB).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(dp.clientCounters(b.id)).toMatchObject({ frames: 100, ringDrops: 0, poolDrops: 0 });
    const ca = dp.clientCounters(a.id);
    expect(ca.poolDrops).toBeGreaterThan(0);
    expect(ca).toMatchObject({ frames: 100, ringDrops: 0 });
    expect(dp.counters()).toMatchObject({ poolDrops: ca.poolDrops, poolFull: 0 });
    // What a kept is the newest frames, in order, whole.
    const kept = ra.drain();
    expect(kept.length + ca.poolDrops).toBe(100);
    expect(kept.map(seqOf)).toEqual(Array.from({ length: kept.length }, (_, i) => 100 - kept.length + i));
    for (const f of kept) expect([...f.subarray(18)]).toEqual(new Array(100 - 18).fill(seqOf(f) & 0xff));
  });

  it('views a consumer took are never taken back: a full pool refuses new frames instead', async () => {
    const { dp, b, ra, rb } = await setup();
    dp.receiveBurst(Array.from({ length: LINES }, (_, i) => frame(MA, i)));
    const batch = new RxBatch(LINES);
    ra.rxBurstInto(batch);
    const before = copies(batch);
    expect(dp.receive(frame(MB, 99)).rule).toBe('drop-bad-descriptor');
    expect(rb.drain()).toEqual([]);
    expect(dp.counters()).toMatchObject({ poolFull: 1, poolDrops: 0 });
    expect(copies(batch)).toEqual(before);
    ra.release();
    expect(dp.receive(frame(MB, 100)).rule).toBe('unicast-exact');
    expect(rb.drain().map(seqOf)).toEqual([100]);
    expect(dp.clientCounters(b.id).poolDrops).toBe(0);
  });

  it('a ring its consumer marks busy is not taken from until the mark clears; a reused id clears it', async () => {
    const { nic, dp, a, ra, rb } = await setup();
    // The consumer's busy mark (ring+76): set while it takes frames with plain stores.
    const busy = new Int32Array(dp.memory.buffer, ra.byteOffset + 76, 1);
    dp.receiveBurst(Array.from({ length: LINES }, (_, i) => frame(MA, i)));
    busy[0] = 1;
    expect(dp.receive(frame(MB, 1)).rule).toBe('drop-bad-descriptor');
    expect(dp.clientCounters(a.id).poolDrops).toBe(0);
    expect(dp.counters().poolFull).toBe(1);
    busy[0] = 0;
    expect(dp.receive(frame(MB, 2)).rule).toBe('unicast-exact');
    expect(rb.drain().map(seqOf)).toEqual([2]);
    expect(dp.clientCounters(a.id).poolDrops).toBeGreaterThan(0);
    // A consumer that died inside a take leaves the mark: the id's reset clears it.
    busy[0] = 1;
    a.close();
    expect(nic.openClient('c').id).toBe(a.id);
    expect(busy[0]).toBe(0);
  });

  it('a reused client id unpins what its old owner left in the ring', async () => {
    const { nic, dp, a, ra } = await setup();
    dp.receiveBurst(Array.from({ length: LINES }, (_, i) => frame(MA, i)));
    ra.rxBurstInto(new RxBatch(4));
    expect(dp.reserve(64)).not.toBe(-1);
    a.close();
    expect(nic.openClient('c').id).toBe(a.id);
    // The pending frames went with the reset, and the four views taken too: the whole pool is free again.
    for (let i = 0; i < LINES; i++) expect(dp.reserve(64, i === 0)).not.toBe(-1);
    expect(dp.counters().poolFull).toBe(0);
  });
});

describe('copying path', () => {
  it('drain, read, poll and rxBurstInto see the same frames and verdicts', async () => {
    const { dp, ra, rb, rp } = await setup();
    const sent = Array.from({ length: 6 }, (_, i) => frame(BCAST, i, 60 + i * 30));
    dp.receiveBurst(sent);
    const batch = new RxBatch(16);
    expect(rb.rxBurstInto(batch)).toBe(6);
    const viaBatch = copies(batch);
    const batchVerdicts = [...batch.verdicts.subarray(0, 6)];
    rb.release();
    const viaPoll: Uint8Array[] = [];
    const pollVerdicts: number[] = [];
    rp.poll((f, v) => (viaPoll.push(f.slice()), pollVerdicts.push(v)));
    const first = ra.read();
    const rest = ra.drain();
    expect(viaBatch).toEqual(sent);
    expect(viaPoll).toEqual(sent);
    expect([first, ...rest]).toEqual(sent);
    expect(pollVerdicts).toEqual(batchVerdicts);
    expect(batchVerdicts.map((v) => dp.decode(v).rule)).toEqual(new Array(6).fill('broadcast'));
    // Every receiver released: the whole pool is free again.
    for (let i = 0; i < LINES; i++) expect(dp.reserve(64, i === 0)).not.toBe(-1);
  });

  it('a copy outlives its release; a poll view is released even when the callback throws', async () => {
    const { dp, ra } = await setup();
    dp.receive(frame(MA, 5));
    const copy = ra.read()!;
    for (let i = 0; i < 3 * LINES; i++) dp.receive(frame(MA, 50 + i)), ra.discard();
    expect(seqOf(copy)).toBe(5);
    dp.receive(frame(MA, 6));
    expect(() =>
      ra.poll(() => {
        throw new Error('consumer failed');
      }),
    ).toThrow('consumer failed');
    expect(ra.held).toBe(0);
    expect(ra.pending).toBe(0);
  });
});

describe('across workers', () => {
  it('a consumer thread takes and releases views while this thread produces into a small pool', async () => {
    const { dp, a, ra } = await setup();
    // Set when this thread gives up: the consumer then reports what it has rather than waiting for the end marker.
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(new URL('./fixtures/ring-consumer.mjs', import.meta.url), {
      workerData: { handle: dp.handle(), client: a.id, batch: 4, stop: stop.buffer },
    });
    let giveUp: ReturnType<typeof setTimeout> | undefined;
    try {
      const ready = new Promise<void>((resolve, reject) => worker.once('message', () => resolve()).once('error', reject));
      const result = new Promise<{ received: number; last: number; errors: string[] }>((resolve, reject) =>
        worker.on('message', (m: { ready?: boolean }) => (m.ready ? undefined : resolve(m as never))).once('error', reject),
      );
      await ready;
      const N = 20_000;
      // Frames of 64 to 128 bytes (one or two lines): the consumer's four held views never fill the 16 lines.
      for (let i = 0; i < N; i += 8) dp.receiveBurst(Array.from({ length: 8 }, (_, k) => frame(MA, i + k, 64 + ((i + k) % 65))));
      // The end marker goes once the ring is empty, so it is neither dropped nor taken back.
      const deadline = Date.now() + 60_000;
      while (ra.pending > 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      const drained = ra.pending === 0;
      dp.receive(frame(MA, 0xffff_ffff));
      giveUp = setTimeout(() => Atomics.store(stop, 0, 1), drained ? 60_000 : 0);
      const { received, last, errors } = await result;
      expect(drained, 'the consumer emptied the ring within 60 s').toBe(true);
      expect(errors).toEqual([]);
      const c = dp.clientCounters(a.id);
      const lost = c.poolDrops + c.ringDrops + dp.counters().poolFull;
      expect(received).toBeGreaterThan(0);
      expect(received + lost).toBe(N);
      expect(last).toBeLessThanOrEqual(N - 1);
    } finally {
      clearTimeout(giveUp);
      await worker.terminate();
    }
  }, 180_000);
});
