// Reprogramming under load: a worker classifies 10 million frames while the main thread makes 100,000 filter changes.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { DataPlane, Mac, Nic, classifyFrame } from 'macslot';

describe('live reprogramming under load', () => {
  it('never misses a stable key, never accepts an absent one, and shows only real states', async () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00', unicastEntries: 64, multicastEntries: 8, maxClients: 8 });
    const dp = await DataPlane.create(nic, { lanes: 2, burst: 4096, poolBytes: 4096 * 64 });
    const [a, b, c] = ['a', 'b', 'c'].map((n) => nic.openClient(n)) as [ReturnType<Nic['openClient']>, ReturnType<Nic['openClient']>, ReturnType<Nic['openClient']>];
    const stable = [a, a, b, b].map((cl, i) => ({ mac: `02:00:00:00:01:0${i}`, allowed: [cl.id], mayMiss: false }));
    stable.forEach((k, i) => [a, a, b, b][i]!.addressAdd(k.mac));
    const absent = [0, 1, 2, 3].map((i) => ({ mac: `02:00:00:00:02:0${i}`, allowed: [] as number[], mayMiss: true }));
    const pairSlot = b.addressAdd('02:00:00:00:03:01').slot;
    const pair = ['02:00:00:00:03:01', '02:00:00:00:03:02'].map((mac) => ({ mac, allowed: [b.id], mayMiss: true, pair: true }));
    const toggled = { mac: '02:00:00:00:04:01', allowed: [c.id], mayMiss: true };
    const moving = { mac: '02:00:00:00:05:01', allowed: [a.id, c.id], mayMiss: true };
    const keys = [...stable, ...absent, ...pair, toggled, moving];

    const flag = new SharedArrayBuffer(4);
    const worker = new Worker(new URL('./fixtures/stress-worker.mjs', import.meta.url), { workerData: { handle: dp.handle(), keys, flag } });
    const result = new Promise<{ frames: number; bursts: number; violations: number; samples: unknown[]; ms: number; lane: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    // Let the worker start its loop before the changes begin, so the two really overlap.
    await new Promise((r) => setTimeout(r, 200));
    let calls = 0;
    let toggledSlot: number | undefined;
    let movingSlot: { client: typeof a; slot: number } | undefined;
    const t0 = Date.now();
    for (let i = 0; calls < 100_000; i++) {
      switch (i % 4) {
        case 0:
          b.addressModify(pairSlot, pair[(i >> 2) % 2 === 0 ? 1 : 0]!.mac);
          break;
        case 1:
          if (toggledSlot === undefined) toggledSlot = c.addressAdd(toggled.mac).slot;
          else (c.addressRemove(toggledSlot), (toggledSlot = undefined));
          break;
        case 2:
          if (movingSlot === undefined) {
            const owner = (i >> 2) % 2 === 0 ? a : c;
            movingSlot = { client: owner, slot: owner.addressAdd(moving.mac).slot };
          } else (movingSlot.client.addressRemove(movingSlot.slot), (movingSlot = undefined));
          break;
        case 3:
          if ((i >> 2) % 2 === 0) a.multicastJoin('33:33:00:00:00:01');
          else a.multicastLeave('33:33:00:00:00:01');
          break;
      }
      calls++;
    }
    const mainMs = Date.now() - t0;
    Atomics.store(new Int32Array(flag), 0, 1);
    const r = await result;
    await worker.terminate();

    expect(r.samples).toEqual([]);
    expect(r.violations).toBe(0);
    expect(r.frames).toBeGreaterThanOrEqual(10_000_000);
    expect(calls).toBeGreaterThanOrEqual(100_000);
    // The worker was classifying for the whole time the changes ran.
    expect(r.ms).toBeGreaterThanOrEqual(mainMs);
    expect(r.lane).toBe(1);
    expect(dp.counters().readerRetries).toBeGreaterThanOrEqual(0);

    // Afterwards the data plane agrees with the reference on every key.
    for (const k of keys) {
      const f = new Uint8Array(64);
      Mac.parse(k.mac).writeTo(f);
      expect(dp.classify(f)).toEqual(classifyFrame(nic.filterState(), f));
    }
    console.log(`stress: ${r.frames} frames in ${r.ms} ms (${(r.frames / r.ms / 1000).toFixed(1)} Mpps) beside ${calls} changes in ${mainMs} ms; reader retries ${dp.counters().readerRetries}`);
  }, 120_000);
});
