// Reprogramming under load: a worker classifies over 10 million frames while the main thread makes over 100,000 filter changes, and every
// verdict must come from a state the filter really had.
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { DataPlane, Mac, Nic, RULES, classifyFrame, verdictRule, type Verdict } from 'macslot';

const FRAMES = 10_000_000;
const CALLS = 100_000;
const FRAME_LENGTH = 60;
// Control words shared with the worker (see test/fixtures/stress-worker.mjs).
const GO = 0;
const STOP = 1;
const GEN = 2;
const BURSTS = 3;
const CHURN_FRAMES = 4;
const FAILED = 5;

const now = (): number => performance.timeOrigin + performance.now();

function frameTo(dst: string): Uint8Array {
  const f = new Uint8Array(FRAME_LENGTH);
  Mac.parse(dst).writeTo(f, 0);
  Mac.parse('02:99:00:00:00:01').writeTo(f, 6);
  f[12] = 0x08;
  return f;
}

/**
 * The verdict word the data plane must produce for a reference verdict, and the bits that matter (a group's index is the data plane's own).
 */
function expectation(v: Verdict): { word: number; mask: number } {
  const low = RULES.indexOf(v.rule) | (v.path === 'software' ? 0x80 : 0);
  if (v.rule === 'unicast-exact' || v.rule === 'software') return { word: (low | (v.deliver[0]! << 16)) >>> 0, mask: 0xffff_ffff };
  return { word: low, mask: 0xffff };
}

interface WorkerReport {
  lane: number;
  frames: number;
  bursts: number;
  churnFrames: number;
  stableMissed: number;
  absentAccepted: number;
  mixedBurst: number;
  neverAState: number;
  staleState: number;
  samples: unknown[];
  widestWindow: number;
  straddled: number;
  firstBurstGen: number;
  lastState: number;
  finalGen: number;
  finalWords: number[];
  startedAt: number;
  endedAt: number;
}

describe('live reprogramming under load', () => {
  it('never misses a stable key, never accepts an absent one, and shows only states the filter had, in order', async () => {
    const t0 = now();
    // A small table (64 slots for about 20 keys) so probe runs form and deletions shift stable keys around.
    const nic = new Nic({
      primary: '00:14:4f:00:00:00',
      factory: { base: '00:14:4f:00:00:01', count: 4 },
      unicastEntries: 24,
      multicastEntries: 4,
      maxAddresses: 24,
      maxClients: 8,
    });
    const dp = await DataPlane.create(nic, { lanes: 2, burst: 1024, poolBytes: 1024 * 64, maxGroups: 4, seed: 0x5eed_0001 });
    const a = nic.openClient('a');
    const b = nic.openClient('b');
    const c = nic.openClient('c');

    const stable: { mac: string; owner: number }[] = [{ mac: '00:14:4f:00:00:00', owner: nic.primaryClient.id }];
    stable.push({ mac: a.addressReserve().mac.toString(), owner: a.id }, { mac: b.addressReserve().mac.toString(), owner: b.id });
    for (const [i, cl] of [a, a, a, a, b, b, b, b, c, c, c, c].entries()) {
      const mac = `02:5a:00:00:01:${(0x10 + i).toString(16)}`;
      cl.addressAdd(mac);
      stable.push({ mac, owner: cl.id });
    }
    c.multicastJoin('01:00:5e:00:00:fb');
    const stableOther = ['01:00:5e:00:00:fb', 'ff:ff:ff:ff:ff:ff'];
    // Near misses of live keys, unreserved factory MACs and groups nobody joined.
    const absent = [
      '02:5a:00:00:01:90',
      '02:5a:00:00:81:10',
      '06:5a:00:00:01:11',
      '00:14:4f:00:00:03',
      '00:14:4f:00:00:05',
      '02:5a:00:00:02:02',
      '01:00:5e:00:00:fc',
      '33:33:00:00:00:02',
    ];

    const PAIR = ['02:5a:00:00:02:01', '02:5a:00:00:02:03'] as const;
    const TOGGLED = '02:5a:00:00:03:01';
    const MOVING = '02:5a:00:00:04:01';
    const GROUP = '01:00:5e:00:00:01';
    const pairSlot = b.addressAdd(PAIR[0]).slot;
    let toggledSlot = -1;
    let movingSlot = -1;
    // Call i changes one churn key; the whole schedule repeats every PERIOD calls.
    const PERIOD = 16;
    const step = (i: number): void => {
      const n = i >> 2;
      switch (i & 3) {
        case 0:
          b.addressModify(pairSlot, PAIR[(n + 1) & 1]!);
          break;
        case 1:
          if ((n & 1) === 0) toggledSlot = c.addressAdd(TOGGLED).slot;
          else c.addressRemove(toggledSlot);
          break;
        case 2:
          // Owned by a, gone, owned by c, gone: a MAC that moves between clients.
          if ((n & 3) === 0) movingSlot = a.addressAdd(MOVING).slot;
          else if ((n & 3) === 1) a.addressRemove(movingSlot);
          else if ((n & 3) === 2) movingSlot = c.addressAdd(MOVING).slot;
          else c.addressRemove(movingSlot);
          break;
        default:
          if ((n & 1) === 0) a.multicastJoin(GROUP);
          else a.multicastLeave(GROUP);
      }
    };

    const macs = [...stable.map((s) => s.mac), ...stableOther, ...absent, ...PAIR, TOGGLED, MOVING, GROUP];
    const K = macs.length;
    const stableKeys = [...Array(stable.length + stableOther.length).keys()];
    const absentKeys = absent.map((_, i) => stableKeys.length + i);
    const churnKeys = [...Array(K).keys()].slice(stableKeys.length + absentKeys.length);
    const frames = new Uint8Array(K * FRAME_LENGTH);
    macs.forEach((m, j) => frames.set(frameTo(m), j * FRAME_LENGTH));
    const frameOf = (j: number): Uint8Array => frames.subarray(j * FRAME_LENGTH, (j + 1) * FRAME_LENGTH);
    const referenceRow = (): { word: number; mask: number }[] =>
      macs.map((_, j) => expectation(classifyFrame(nic.filterState(), frameOf(j))));

    // One period run ahead of time gives, from the reference classifier, the expected verdicts of every state the filter will pass through.
    const rows = [referenceRow()];
    for (let i = 0; i < PERIOD; i++) {
      step(i);
      rows.push(referenceRow());
    }
    expect(rows[PERIOD]).toEqual(rows[0]);
    for (const row of rows) {
      stable.forEach((s, j) =>
        expect(row[j]).toEqual({ word: (RULES.indexOf('unicast-exact') | (s.owner << 16)) >>> 0, mask: 0xffff_ffff }),
      );
      expect(row.slice(stable.length, stableKeys.length).map((e) => verdictRule(e.word))).toEqual(['multicast-exact', 'broadcast']);
      for (const j of absentKeys) expect(verdictRule(row[j]!.word)).toMatch(/^drop-/);
    }
    // Every churn key really changes, or the schedule would prove nothing about it.
    for (const j of churnKeys) expect(new Set(rows.map((r) => r[j]!.word)).size).toBeGreaterThanOrEqual(2);
    const want = new Uint32Array(PERIOD * K);
    const mask = new Uint32Array(PERIOD * K);
    rows.slice(0, PERIOD).forEach((row, s) => row.forEach((e, j) => ((want[s * K + j] = e.word), (mask[s * K + j] = e.mask))));

    const control = new SharedArrayBuffer(64);
    const ctl = new Int32Array(control);
    Atomics.store(ctl, GEN, PERIOD);
    const worker = new Worker(new URL('./fixtures/stress-worker.mjs', import.meta.url), {
      workerData: {
        handle: dp.handle(),
        control,
        frames,
        frameLength: FRAME_LENGTH,
        keyCount: K,
        period: PERIOD,
        want,
        mask,
        stableKeys,
        absentKeys,
        firstGen: PERIOD,
      },
    });
    const failed = once(worker, 'error').then(([err]) => Promise.reject(err as Error));
    const exited = once(worker, 'exit');
    const ready = (await Promise.race([once(worker, 'message'), failed]))[0] as { ready: boolean; lane: number; burst: number };
    expect(ready).toEqual({ ready: true, lane: 1, burst: 1024 });
    const report = Promise.race([once(worker, 'message').then(([m]) => m as WorkerReport), failed]);

    // The worker runs on its own thread, so this thread may spin: first until bursts are flowing, then through the changes.
    Atomics.store(ctl, GO, 1);
    Atomics.notify(ctl, GO);
    const deadline = now() + 45_000;
    while (Atomics.load(ctl, BURSTS) === 0 && Atomics.load(ctl, FAILED) === 0 && now() < deadline);
    let events = 0;
    const unsubscribe = nic.on(() => events++);
    const loopStart = now();
    let i = PERIOD;
    while (
      (i - PERIOD < CALLS || Atomics.load(ctl, CHURN_FRAMES) < FRAMES) &&
      Atomics.load(ctl, FAILED) === 0 &&
      ((i & 1023) !== 0 || now() < deadline)
    ) {
      step(i);
      i++;
      Atomics.store(ctl, GEN, i);
    }
    const loopEnd = now();
    Atomics.store(ctl, STOP, 1);
    unsubscribe();
    const calls = i - PERIOD;
    const r = await report;
    await exited;

    const { stableMissed, absentAccepted, mixedBurst, neverAState, staleState, samples } = r;
    expect({ stableMissed, absentAccepted, mixedBurst, neverAState, staleState, samples }).toEqual({
      stableMissed: 0,
      absentAccepted: 0,
      mixedBurst: 0,
      neverAState: 0,
      staleState: 0,
      samples: [],
    });
    expect(r.churnFrames).toBeGreaterThanOrEqual(FRAMES);
    expect(calls).toBeGreaterThanOrEqual(CALLS);
    // One event, so one published state, per call: the states the worker matched against are all the states there were.
    expect(events).toBe(calls);
    // The worker's first burst began before any change returned, and it ran a burst after the last one (finalGen below).
    expect(r.firstBurstGen).toBe(PERIOD);
    // By the clocks too, the worker ran through (nearly) all of the main loop; the slack absorbs clock skew between threads.
    const overlap = Math.min(r.endedAt, loopEnd) - Math.max(r.startedAt, loopStart);
    expect(overlap).toBeGreaterThan(0.9 * (loopEnd - loopStart));
    // Changes landed in the middle of bursts, not only between them.
    expect(r.straddled).toBeGreaterThan(0);

    // The worker's lane counted every frame it classified, and nothing else ran a burst yet.
    const counters = dp.counters();
    expect(Object.values(counters.rules).reduce((x, y) => x + y, 0)).toBe(r.frames);
    expect(Number.isSafeInteger(counters.readerRetries) && counters.readerRetries >= 0).toBe(true);

    // With the changes over, the worker's last burst, this thread and the reference all agree on the final state.
    expect(r.finalGen).toBe(i);
    expect(r.lastState).toBe(i);
    const finalRow = referenceRow();
    expect(finalRow).toEqual(rows[i % PERIOD]);
    expect(r.finalWords.map((w, j) => (w & finalRow[j]!.mask) >>> 0)).toEqual(finalRow.map((e) => e.word));
    for (let j = 0; j < K; j++) expect(dp.classify(frameOf(j))).toEqual(classifyFrame(nic.filterState(), frameOf(j)));

    const workerMs = r.endedAt - r.startedAt;
    console.log(
      `stress: worker ${r.frames} frames in ${r.bursts} bursts over ${workerMs.toFixed(0)} ms ` +
        `(${(r.frames / workerMs / 1000).toFixed(1)} Mframes/s), ` +
        `${r.churnFrames} during the changes; main ${calls} changes in ${(loopEnd - loopStart).toFixed(0)} ms; ` +
        `${r.straddled} bursts overlapped a change (widest: ${r.widestWindow} states); readerRetries ${counters.readerRetries}; whole ` +
        `test ${(now() - t0).toFixed(0)} ms`,
    );
  }, 90_000);
});
