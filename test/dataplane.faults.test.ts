// Fault injection: a change the data plane cannot apply is refused before the NIC changes; a worker that dies inside a burst
// is reclaimed with its bank announcement and its delivery claim; a failure that cannot be refused fails closed, is reported
// and repaired. After each fault the verdicts equal the reference classifier's.
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DataPlane, type DataPlaneEvent, Mac, MacslotError, Nic, classifyFrame } from 'macslot';

const PRIMARY = '00:14:4f:00:00:00';
const UNKNOWN = '02:77:00:00:00:01';

const frameTo = (dst: string | Mac, length = 60): Uint8Array => {
  const f = new Uint8Array(length).fill(0x5a);
  Mac.from(dst).writeTo(f, 0);
  Mac.parse('02:99:00:00:00:01').writeTo(f, 6);
  return f;
};

const groupMac = (i: number): string =>
  `01:00:5e:${((i >> 16) & 0x7f).toString(16).padStart(2, '0')}:` +
  `${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;

/** Every destination the NIC knows (unicast MACs and groups), plus broadcast, an unknown unicast and an unknown group. */
function destinations(nic: Nic, extra: string[] = []): string[] {
  const s = nic.filterState();
  const keys = [...s.unicast.keys(), ...s.groups.keys()].map((k) => (typeof k === 'number' ? Mac.fromNumber(k) : Mac.parse(k)).toString());
  return [...keys, 'ff:ff:ff:ff:ff:ff', UNKNOWN, '01:00:5e:7f:7f:7f', ...extra];
}

/** The verdicts of `lanes` (each classifying one frame at a time through the Wasm filter) equal the reference classifier's. */
function expectReference(nic: Nic, lanes: DataPlane[], extra: string[] = []): void {
  const state = nic.filterState();
  for (const dst of destinations(nic, extra)) {
    const want = classifyFrame(state, frameTo(dst));
    for (const dp of lanes)
      expect({ dst, lane: dp.lane, verdict: dp.classify(frameTo(dst)) }).toEqual({ dst, lane: dp.lane, verdict: want });
  }
}

/** The raw exports over the data plane's memory, to look at a lane's reader state the way the writer does. */
function rawOf(dp: DataPlane): { attach(): number; laneState(lane: number): number } {
  const raw = new WebAssembly.Instance(dp.module, { env: { memory: dp.memory } }).exports as unknown as {
    attach(): number;
    laneState(lane: number): number;
  };
  expect(raw.attach()).toBe(1);
  return raw;
}

const workers = new Set<Worker>();
afterEach(async () => {
  for (const w of workers) await w.terminate();
  workers.clear();
});

/** Starts burst workers until one is terminated while inside a burst; returns its lane, still claimed by the dead worker. */
async function killInsideBurst(dp: DataPlane, deliver: boolean): Promise<number> {
  const raw = rawOf(dp);
  for (let attempt = 0; attempt < 50; attempt++) {
    const w = new Worker(new URL('./fixtures/burst-worker.mjs', import.meta.url), {
      workerData: { handle: dp.handle(), frame: frameTo(UNKNOWN), deliver },
    });
    workers.add(w);
    const [msg] = (await once(w, 'message')) as [{ lane: number; deliver: boolean }];
    expect(msg.deliver).toBe(deliver);
    const deadline = Date.now() + 30_000;
    while (raw.laneState(msg.lane) === 0 && Date.now() < deadline);
    await w.terminate();
    workers.delete(w);
    if (raw.laneState(msg.lane) !== 0) return msg.lane;
    // It died between two bursts: take the lane back for the next attempt.
    dp.reclaimLane(msg.lane);
  }
  throw new Error('no worker was terminated inside a burst in 50 attempts');
}

// ---- group capacity ----------------------------------------------------------------------------------------------

const GROUP_LIMITS: { name: string; maxGroups: number | undefined; capacity: number }[] = [
  { name: 'the default 256 groups', maxGroups: undefined, capacity: 256 },
  { name: 'maxGroups 4', maxGroups: 4, capacity: 4 },
  { name: 'maxGroups 1', maxGroups: 1, capacity: 1 },
];

describe('a group beyond the data plane capacity', () => {
  it.each(GROUP_LIMITS)(
    '$name: the next distinct group is refused before the NIC changes; verdicts stay exact',
    async ({ maxGroups, capacity }) => {
      const nic = new Nic({ primary: PRIMARY, multicastEntries: 4, maxClients: 8 });
      const dp = await DataPlane.create(nic, { lanes: 2, seed: 7, ...(maxGroups === undefined ? {} : { maxGroups }) });
      const worker = await DataPlane.attach(dp.handle());
      const a = nic.openClient('a');
      const b = nic.openClient('b');
      a.addressAdd('02:00:00:00:00:0a');
      for (let i = 0; i < capacity; i++) (i % 2 === 0 ? a : b).multicastJoin(groupMac(i));
      // Joining a group the data plane already holds is no new group: always allowed.
      b.multicastJoin(groupMac(0));

      const before = { generation: nic.generation, a: a.groups(), b: b.groups(), groups: nic.filterState().groups.size };
      const extra = groupMac(capacity);
      let refused: unknown;
      try {
        b.multicastJoin(extra);
      } catch (err) {
        refused = err;
      }
      expect(refused).toBeInstanceOf(MacslotError);
      expect(refused).toMatchObject({ code: 'NO_FREE_SLOT' });
      expect({ generation: nic.generation, a: a.groups(), b: b.groups(), groups: nic.filterState().groups.size }).toEqual(before);
      expect(before.groups).toBe(capacity);
      expectReference(nic, [dp, worker], [extra]);

      // Room made, the same group joins, and the filter follows.
      const freed = groupMac(capacity - 1);
      for (const c of [a, b]) while (c.groups().includes(freed)) c.multicastLeave(freed);
      b.multicastJoin(extra);
      expect(dp.held).toBe(false);
      expectReference(nic, [dp, worker], [extra]);
      worker.close();
      dp.close();
    },
  );

  it('a NIC holding more groups than maxGroups: create fails with NO_FREE_SLOT and leaves no guard behind', async () => {
    const nic = new Nic({ primary: PRIMARY, maxClients: 4 });
    for (let i = 0; i < 3; i++) nic.primaryClient.multicastJoin(groupMac(i));
    await expect(DataPlane.create(nic, { lanes: 1, maxGroups: 2 })).rejects.toMatchObject({ code: 'NO_FREE_SLOT' });
    nic.primaryClient.multicastJoin(groupMac(3));
    expect(nic.primaryClient.groups()).toHaveLength(4);
  });

  it('a closed data plane refuses nothing', async () => {
    const nic = new Nic({ primary: PRIMARY, maxClients: 4 });
    const dp = await DataPlane.create(nic, { lanes: 1, maxGroups: 1 });
    nic.primaryClient.multicastJoin(groupMac(1));
    dp.close();
    nic.primaryClient.multicastJoin(groupMac(2));
    expect(nic.primaryClient.groups()).toHaveLength(2);
  });
});

// ---- dead workers ------------------------------------------------------------------------------------------------

const DEATHS: { name: string; deliver: boolean }[] = [
  { name: 'a classifying worker', deliver: false },
  { name: 'the ring-producing worker', deliver: true },
];

describe('a worker terminated inside a burst', () => {
  it.each(DEATHS)(
    '$name: its lane is reclaimed with its announcement and delivery claim; writers stop waiting; verdicts exact',
    async ({ deliver }) => {
      const STALL = 200;
      const nic = new Nic({ primary: PRIMARY, factory: { base: '00:14:4f:00:00:01', count: 4 }, maxClients: 8 });
      const dp = await DataPlane.create(nic, { lanes: 2, burst: 4096, poolBytes: 4096 * 64, stallMs: STALL, seed: 3 });
      const a = nic.openClient('a');
      a.addressReserve();
      if (deliver) dp.releaseDelivery();
      const lane = await killInsideBurst(dp, deliver);
      const events: DataPlaneEvent[] = [];
      dp.on((e) => events.push(e));
      const raw = rawOf(dp);
      expect(raw.laneState(lane)).not.toBe(0);

      // Changes alternate banks: within two, one needs the bank the dead lane announced. It waits for stallMs once at most.
      const started = Date.now();
      const slot = a.addressAdd('02:00:00:00:00:a0').slot;
      a.multicastJoin(groupMac(5));
      expect(events).toEqual([{ type: 'lane-reclaimed', lane }]);
      expect(raw.laneState(lane)).toBe(0);
      // Afterwards no change waits: 40 changes take far less than one stall each.
      const after = Date.now();
      for (let i = 0; i < 20; i++) {
        a.addressModify(slot, `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`);
        a.multicastJoin(groupMac(100 + i));
      }
      expect(Date.now() - after).toBeLessThan(10 * STALL);
      expect(after - started).toBeLessThan(30 * STALL);
      expect(events).toHaveLength(1);
      expect(dp.held).toBe(false);

      // The delivery claim is free again, the lane can be attached again, and every lane classifies like the reference.
      expect(dp.claimDelivery()).toBe(true);
      const again = await DataPlane.attach(dp.handle(), { lane });
      expect(again.lane).toBe(lane);
      expectReference(nic, [dp, again]);
      const ring = dp.ring(a.id);
      ring.drain();
      const mine = frameTo('02:00:00:00:01:13');
      expect(dp.receive(mine).deliver).toEqual([a.id]);
      expect(ring.drain()).toEqual([mine]);
      again.close();
      dp.close();
    },
  );

  it('reclaimLane takes a lane back at once: its owner then gets DATA_PLANE, never a verdict from a stale claim', async () => {
    const nic = new Nic({ primary: PRIMARY, maxClients: 4 });
    const dp = await DataPlane.create(nic, { lanes: 3 });
    const events: DataPlaneEvent[] = [];
    dp.on((e) => events.push(e));
    const w = await DataPlane.attach(dp.handle());
    expect(w.claimDelivery()).toBe(false);
    dp.releaseDelivery();
    expect(w.claimDelivery()).toBe(true);
    expect(dp.reclaimLane(w.lane)).toBe(true);
    expect(events).toEqual([{ type: 'lane-reclaimed', lane: w.lane }]);
    expect(dp.reclaimLane(w.lane)).toBe(false);
    for (const call of [
      () => w.classify(frameTo(PRIMARY)),
      () => w.classifyBurst(1),
      () => w.rxBurst(1),
      () => w.classifyKeys([Mac.parse(PRIMARY)]),
      () => w.claimDelivery(),
    ]) {
      expect(call).toThrow(expect.objectContaining({ code: 'DATA_PLANE' }));
    }
    // The delivery claim went with the lane.
    expect(dp.claimDelivery()).toBe(true);
    for (const bad of [dp.lane, -1, 3, 1.5, Number.NaN])
      expect(() => dp.reclaimLane(bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    // A new owner of the same lane works; the old handle stays refused.
    const next = await DataPlane.attach(dp.handle(), { lane: w.lane });
    expect(next.classify(frameTo(PRIMARY))).toEqual(classifyFrame(nic.filterState(), frameTo(PRIMARY)));
    expect(() => w.classify(frameTo(PRIMARY))).toThrow(expect.objectContaining({ code: 'DATA_PLANE' }));
    next.close();
    w.close();
    dp.close();
  });
});

// ---- failures that cannot be refused --------------------------------------------------------------------------------

describe('a failure while following a change', () => {
  it('fails closed, is reported, never reaches the NIC listener microtask, and recovers to exact verdicts', async () => {
    const nic = new Nic({ primary: PRIMARY, factory: { base: '00:14:4f:00:00:01', count: 2 }, maxClients: 8 });
    const dp = await DataPlane.create(nic, { lanes: 2 });
    const worker = await DataPlane.attach(dp.handle());
    const events: DataPlaneEvent[] = [];
    const recovered = new Promise<void>((resolve) =>
      dp.on((e) => {
        events.push(e);
        if (e.type === 'recovered') resolve();
      }),
    );
    const a = nic.openClient('a');
    const b = nic.openClient('b');
    a.addressReserve();
    b.multicastJoin(groupMac(9));
    const injected = new Error('injected fault');
    // The data plane asks the NIC about the client while it follows the change: that question fails, once.
    const spy = vi.spyOn(nic, 'client').mockImplementationOnce(() => {
      throw injected;
    });
    const added = '02:00:00:00:00:b1';
    expect(() => b.addressAdd(added)).not.toThrow();
    spy.mockRestore();
    expect(events).toEqual([{ type: 'held', error: injected }]);
    expect(dp.held).toBe(true);

    // Held: bursts deliver nothing (drop, software path); the creating thread answers from the NIC's state in software.
    const ring = dp.ring(b.id);
    ring.drain();
    worker.pool.set(frameTo(added), 0);
    worker.descriptors.set([0, 60]);
    worker.classifyBurst(1);
    expect(worker.decode(worker.verdicts[0]!)).toEqual({ deliver: [], rule: 'drop-unknown', path: 'software' });
    expect(dp.receive(frameTo(added)).deliver).toEqual([]);
    expect(ring.drain()).toEqual([]);
    expect(dp.classify(frameTo(added))).toEqual(classifyFrame(nic.filterState(), frameTo(added)));

    await recovered;
    expect(dp.held).toBe(false);
    expect(events.map((e) => e.type)).toEqual(['held', 'recovered']);
    expectReference(nic, [dp, worker], [added]);
    expect(dp.receive(frameTo(added)).deliver).toEqual([b.id]);
    expect(ring.drain()).toEqual([frameTo(added)]);
    worker.close();
    dp.close();
  });

  it('the next change rebuilds a held filter at once', async () => {
    const nic = new Nic({ primary: PRIMARY, maxClients: 8 });
    const dp = await DataPlane.create(nic, { lanes: 1 });
    const events: string[] = [];
    dp.on((e) => events.push(e.type));
    const a = nic.openClient('a');
    vi.spyOn(nic, 'client').mockImplementationOnce(() => {
      throw new Error('injected fault');
    });
    a.addressAdd('02:00:00:00:00:c1');
    expect(dp.held).toBe(true);
    a.multicastJoin(groupMac(3));
    expect(events).toEqual(['held', 'recovered']);
    expectReference(nic, [dp]);
    dp.close();
  });

  it('reload() lifts a hold at once', async () => {
    const nic = new Nic({ primary: PRIMARY, maxClients: 8 });
    const dp = await DataPlane.create(nic, { lanes: 1 });
    const events: string[] = [];
    dp.on((e) => events.push(e.type));
    const a = nic.openClient('a');
    vi.spyOn(nic, 'client').mockImplementationOnce(() => {
      throw new Error('injected fault');
    });
    a.addressAdd('02:00:00:00:00:d1');
    expect(dp.held).toBe(true);
    dp.reload();
    expect(dp.held).toBe(false);
    expect(events).toEqual(['held', 'recovered']);
    expectReference(nic, [dp]);
    dp.close();
  });

  it('a listener that throws is ignored and breaks nothing', async () => {
    const nic = new Nic({ primary: PRIMARY, maxClients: 4 });
    const dp = await DataPlane.create(nic, { lanes: 2, stallMs: 50 });
    dp.on(() => {
      throw new Error('listener fault');
    });
    const w = await DataPlane.attach(dp.handle());
    expect(dp.reclaimLane(w.lane)).toBe(true);
    expectReference(nic, [dp]);
    w.close();
    dp.close();
  });
});
