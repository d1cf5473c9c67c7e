// The forwarding engine on bursts: frames read from I/O in one turn go through the data plane together, each frame's
// verdict decides its way, only the rings that received frames are read, and a stream port writes once per turn.
import { Writable, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  DataPlane,
  Mac,
  Nic,
  VlanMembership,
  bindClient,
  bindUplink,
  insertTag,
  ioBegin,
  ioEnd,
  memoryPortPair,
  parseVlan,
  setSwitchVlans,
  type FramePort,
} from 'macslot';
import { pipePort } from 'macslot/node';
import { tagOf, tagged } from './support/frames.js';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const C = '02:00:00:00:00:0c';
const D = '02:00:00:00:00:0d';
const UNKNOWN = '02:99:00:00:00:01';
const BROADCAST = 'ff:ff:ff:ff:ff:ff';

/** A port driven by the test: `rx` hands it a frame from its peer; what the switch sends is kept with the pass it came in. */
interface TestPort extends FramePort {
  rx(frame: Uint8Array): void;
  readonly got: Uint8Array[];
  /** For each frame in `got`, the synchronous pass that sent it: frames of one pass share a number. */
  readonly passes: number[];
}

function testPort(name: string): TestPort {
  let receiver: ((f: Uint8Array) => void) | undefined;
  let pass = 0;
  let marked = false;
  const got: Uint8Array[] = [];
  const passes: number[] = [];
  return {
    name,
    got,
    passes,
    rx: (f) => receiver?.(f),
    send(frame) {
      got.push(frame.slice());
      passes.push(pass);
      if (!marked) {
        marked = true;
        queueMicrotask(() => {
          marked = false;
          pass++;
        });
      }
      return true;
    },
    onFrame: (r) => (receiver = r),
    onClose: () => {},
    close: () => {},
  };
}

/** Resolves once `check` holds, looking again after every turn of the event loop; fails after `ms`. */
async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setImmediate(r));
  }
}

async function fabric(macs: readonly string[]) {
  const nic = new Nic({ primary: '02:00:00:00:00:01' });
  const dp = await DataPlane.create(nic);
  const ports = macs.map((mac, i) => {
    const client = nic.openClient(`c${i}`);
    client.addressAdd(mac);
    const port = testPort(`test:${i}`);
    bindClient(dp, client, port);
    return { client, port };
  });
  const uplink = testPort('test:uplink');
  bindUplink(dp, uplink);
  return { nic, dp, ports, uplink };
}

/** Hands frames to ports as a transport does with what it read from I/O in one callback. */
function fromIo(run: () => void): void {
  ioBegin();
  try {
    run();
  } finally {
    ioEnd();
  }
}

describe('the switch on bursts', () => {
  it('frames read from I/O in one turn are switched together at its end, in one pass, in order', async () => {
    const { dp, ports } = await fabric([A, B, C]);
    const [a, b, c] = ports.map((p) => p.port);
    fromIo(() => {
      a!.rx(tagged(C, A, 1));
      a!.rx(tagged(C, A, 2));
    });
    fromIo(() => b!.rx(tagged(C, B, 3)));
    fromIo(() => a!.rx(tagged(C, A, 4)));
    // Nothing is switched before the turn ends.
    expect(c!.got).toHaveLength(0);
    await until(() => c!.got.length === 4);
    expect(c!.got.map(tagOf)).toEqual([1, 2, 3, 4]);
    expect(new Set(c!.passes).size).toBe(1);
    dp.close();
  });

  it('a frame handed over outside I/O is switched before its receiver returns', async () => {
    const { dp, ports } = await fabric([A, B]);
    const [a, b] = ports.map((p) => p.port);
    a!.rx(tagged(B, A, 7));
    expect(b!.got.map(tagOf)).toEqual([7]);
    dp.close();
  });

  it("each frame's own verdict decides whether it leaves through the uplink, within one burst", async () => {
    const { dp, ports, uplink } = await fabric([A, B, C]);
    const [a, b, c] = ports.map((p) => p.port);
    fromIo(() => {
      a!.rx(tagged(B, A, 1));
      a!.rx(tagged(UNKNOWN, A, 2));
      a!.rx(tagged(B, A, 3));
      a!.rx(tagged(BROADCAST, A, 4));
      a!.rx(tagged(C, A, 5));
    });
    await until(() => c!.got.length === 2);
    expect(uplink.got.map(tagOf)).toEqual([2, 4]);
    expect(b!.got.map(tagOf)).toEqual([1, 3, 4]);
    expect(c!.got.map(tagOf)).toEqual([4, 5]);
    // Never back to the sender, whoever else shares the burst.
    expect(a!.got).toHaveLength(0);
    dp.close();
  });

  it('frames of several senders in one burst: broadcast never returns to its own sender', async () => {
    const { dp, ports } = await fabric([A, B, C]);
    const [a, b, c] = ports.map((p) => p.port);
    fromIo(() => {
      a!.rx(tagged(BROADCAST, A, 1));
      b!.rx(tagged(BROADCAST, B, 2));
      c!.rx(tagged(BROADCAST, C, 3));
      a!.rx(tagged(BROADCAST, A, 4));
    });
    await until(() => a!.got.length === 2 && b!.got.length === 3 && c!.got.length === 3);
    expect(a!.got.map(tagOf)).toEqual([2, 3]);
    expect(b!.got.map(tagOf)).toEqual([1, 3, 4]);
    expect(c!.got.map(tagOf)).toEqual([1, 2, 4]);
    dp.close();
  });

  it('frames from the uplink in one turn are filtered and counted per frame', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const dp = await DataPlane.create(nic);
    const client = nic.openClient('a');
    client.addressAdd(A);
    const port = testPort('test:a');
    bindClient(dp, client, port);
    const uplink = testPort('test:uplink');
    const binding = bindUplink(dp, uplink);
    fromIo(() => {
      uplink.rx(tagged(A, UNKNOWN, 1));
      uplink.rx(tagged(B, UNKNOWN, 2));
      uplink.rx(tagged(A, UNKNOWN, 3));
    });
    await until(() => port.got.length === 2);
    expect(port.got.map(tagOf)).toEqual([1, 3]);
    const counters = binding.counters();
    expect(counters.rx.frames).toBe(2);
    expect(counters.drops['no-owner']).toBe(1);
    dp.close();
  });

  it('reads only the rings the burst delivered to', async () => {
    const { dp, ports } = await fabric([A, B, D]);
    const [a, b, d] = ports.map((p) => p.port);
    const dId = ports[2]!.client.id;
    // A frame put into D's ring behind the switch's back: only a burst that delivers to D reads it out.
    dp.receive(tagged(D, UNKNOWN, 9));
    expect(dp.ring(dId).pending).toBeGreaterThan(0);
    a!.rx(tagged(B, A, 1));
    expect(b!.got.map(tagOf)).toEqual([1]);
    expect(d!.got).toHaveLength(0);
    expect(dp.ring(dId).pending).toBeGreaterThan(0);
    a!.rx(tagged(D, A, 2));
    expect(d!.got.map(tagOf)).toEqual([9, 2]);
    expect(dp.ring(dId).pending).toBe(0);
    dp.close();
  });

  it('a source admitted before is refused once the client no longer holds it', async () => {
    const { dp, ports } = await fabric([A, B]);
    const [a, b] = ports.map((p) => p.port);
    const client = ports[0]!.client;
    fromIo(() => {
      a!.rx(tagged(B, A, 1));
      a!.rx(tagged(B, A, 2));
    });
    await until(() => b!.got.length === 2);
    const slotOfA = client.slots()[0]!;
    client.addressAdd(C);
    client.addressRemove(slotOfA);
    fromIo(() => {
      a!.rx(tagged(B, A, 3));
      a!.rx(tagged(B, C, 4));
    });
    await until(() => b!.got.length === 3);
    expect(b!.got.map(tagOf)).toEqual([1, 2, 4]);
    expect(dp.counters().spoofed).toBe(1);
    dp.close();
  });

  it('a burst larger than a receive ring loses nothing when its consumer keeps up', async () => {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const dp = await DataPlane.create(nic, { ringBytes: 4096 });
    const [a, b] = [A, B].map((mac, i) => {
      const client = nic.openClient(`c${i}`);
      client.addressAdd(mac);
      const port = testPort(`test:${i}`);
      bindClient(dp, client, port);
      return port;
    });
    // 200 frames of 60 bytes: about four rings' worth, in one turn.
    fromIo(() => {
      for (let i = 0; i < 200; i++) a!.rx(tagged(B, A, i));
    });
    await until(() => b!.got.length === 200);
    expect(b!.got.map(tagOf)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(dp.clientCounters(1).ringDrops).toBe(0);
    dp.close();
  });
});

describe('stream ports write once per turn', () => {
  /** A writable that keeps each write it is given (no writev: a batch of writes would show as many). */
  function recorder(): { out: Writable; writes: Buffer[] } {
    const writes: Buffer[] = [];
    const out = new Writable({
      write(chunk: Buffer, _enc, done) {
        writes.push(Buffer.from(chunk));
        done();
      },
    });
    return { out, writes };
  }

  it('frames sent in one turn leave in one write, framed and in order; the next turn writes again', async () => {
    const { out, writes } = recorder();
    const port = pipePort(new PassThrough(), out, () => {});
    for (let i = 0; i < 100; i++) expect(port.send(tagged(B, A, i))).toBe(true);
    await until(() => writes.length === 1);
    const one = writes[0]!;
    expect(one.length).toBe(100 * (4 + 60));
    for (let i = 0; i < 100; i++) {
      expect(one.readUInt32BE(i * 64)).toBe(60);
      expect(tagOf(one.subarray(i * 64 + 4, i * 64 + 64))).toBe(i);
    }
    port.send(tagged(B, A, 100));
    port.send(tagged(B, A, 101));
    await until(() => writes.length === 2);
    expect(writes[1]!.length).toBe(2 * 64);
    expect(tagOf(writes[1]!.subarray(4, 64))).toBe(100);
    expect(tagOf(writes[1]!.subarray(68, 128))).toBe(101);
    port.close();
  });

  it('a turn with more than one buffer of frames writes them in order', async () => {
    const { out, writes } = recorder();
    const port = pipePort(new PassThrough(), out, () => {}, { maxQueueBytes: 1 << 22 });
    const n = 3000;
    for (let i = 0; i < n; i++) port.send(tagged(B, A, i & 0xff));
    await until(() => writes.reduce((t, w) => t + w.length, 0) === n * 64);
    const all = Buffer.concat(writes);
    for (let i = 0; i < n; i++) expect(tagOf(all.subarray(i * 64 + 4, i * 64 + 64))).toBe(i & 0xff);
    expect(writes.length).toBeLessThan(10);
    port.close();
  });

  it('hands frames read to a range receiver as places in the bytes read, and to onFrame once that is set again', async () => {
    const input = new PassThrough();
    const port = pipePort(input, recorder().out, () => {});
    const views: (number | undefined)[] = [];
    const ranges: (number | undefined)[] = [];
    port.onFrame((f) => views.push(tagOf(f)));
    port.onFrameRange!((bytes, start, end) => ranges.push(tagOf(bytes.subarray(start, end))));
    const framed = (tag: number): Buffer => {
      const f = tagged(B, A, tag);
      const out = Buffer.alloc(4 + f.length);
      out.writeUInt32BE(f.length, 0);
      out.set(f, 4);
      return out;
    };
    const two = Buffer.concat([framed(1), framed(2)]);
    // The second frame cut across two reads still arrives whole.
    input.write(two.subarray(0, 100));
    input.write(two.subarray(100));
    await until(() => ranges.length === 2);
    expect(ranges).toEqual([1, 2]);
    expect(views).toEqual([]);
    port.onFrame((f) => views.push(tagOf(f)));
    input.write(framed(3));
    await until(() => views.length === 1);
    expect(views).toEqual([3]);
    expect(ranges).toEqual([1, 2]);
    port.close();
  });

  it('a memory port pair is unaffected: delivery stays synchronous', () => {
    const [x, y] = memoryPortPair();
    const got: number[] = [];
    y.onFrame((f) => got.push(tagOf(f)!));
    x.send(tagged(B, A, 5));
    expect(got).toEqual([5]);
  });
});

describe('frames left in a ring nobody reads', () => {
  it('keep their bytes while the switch goes on switching (bursts are placed on free pool lines)', async () => {
    const { nic, dp, ports } = await fabric([A, B]);
    const [a, b] = ports.map((p) => p.port);
    // The primary client has no port: what it receives stays in its ring, pinned in the pool.
    const primary = dp.ring(nic.primaryClient.id);
    a!.rx(tagged(BROADCAST, A, 1));
    expect(primary.pending).toBe(1);
    for (let i = 0; i < 50; i++) fromIo(() => a!.rx(tagged(B, A, 100 + i)));
    await until(() => b!.got.length === 51);
    expect(primary.drain().map(tagOf)).toEqual([1]);
    dp.close();
  });
});

// ---- VLANs through the switch ----------------------------------------------------------------------------------------

/** A 60-byte frame from `src` to `dst`, untagged, or tagged with `vid` (802.1Q). */
function vlanFrame(dst: string, src: string, vid?: number): Uint8Array {
  const f = new Uint8Array(60);
  f.set(Mac.parse(dst).toBytes(), 0);
  f.set(Mac.parse(src).toBytes(), 6);
  f[12] = 0x08;
  if (vid === undefined) return f;
  if (vid !== 0) return insertTag(f, vid);
  // A priority tag (VID 0), which insertTag does not write.
  const p = insertTag(f, 1);
  p[15] = 0;
  return p;
}

/** How a frame left a port: `u` untagged, `t<vid>` tagged. */
const seen = (f: Uint8Array): string => (parseVlan(f).kind === 'tagged' ? `t${(((f[14]! << 8) | f[15]!) & 0xfff).toString()}` : 'u');

// In the style of Linux's bridge_vlan_aware selftest: a is an access port of VLAN 10, b of VLAN 20, t a trunk of 10 and
// 20 with native 10; the uplink a trunk of 10 and 20 without a native VLAN. Each row: one frame into one port, and what
// every port sends out.
const A_MAC = '02:00:00:00:00:0a';
const B_MAC = '02:00:00:00:00:0b';
const T_MAC = '02:00:00:00:00:0c';
const VLAN_TRUTH: { name: string; from: 'a' | 'b' | 't' | 'uplink'; frame: Uint8Array; out: Record<string, string[]> }[] = [
  { name: 'a: broadcast, untagged', from: 'a', frame: vlanFrame(BROADCAST, A_MAC), out: { t: ['u'], uplink: ['t10'] } },
  { name: 'b: broadcast, untagged', from: 'b', frame: vlanFrame(BROADCAST, B_MAC), out: { t: ['t20'], uplink: ['t20'] } },
  { name: 't: broadcast, untagged (native 10)', from: 't', frame: vlanFrame(BROADCAST, T_MAC), out: { a: ['u'], uplink: ['t10'] } },
  { name: 't: broadcast, tagged 20', from: 't', frame: vlanFrame(BROADCAST, T_MAC, 20), out: { b: ['u'], uplink: ['t20'] } },
  { name: 't: broadcast, tagged 30 (not on the trunk)', from: 't', frame: vlanFrame(BROADCAST, T_MAC, 30), out: {} },
  { name: 'a: tagged 20 on an access port of 10', from: 'a', frame: vlanFrame(BROADCAST, A_MAC, 20), out: {} },
  { name: 'a: priority-tagged (VID 0): VLAN 10', from: 'a', frame: vlanFrame(BROADCAST, A_MAC, 0), out: { t: ['u'], uplink: ['t10'] } },
  { name: 'uplink: untagged (no native VLAN)', from: 'uplink', frame: vlanFrame(BROADCAST, UNKNOWN), out: {} },
  { name: 'uplink: broadcast, tagged 10', from: 'uplink', frame: vlanFrame(BROADCAST, UNKNOWN, 10), out: { a: ['u'], t: ['u'] } },
  { name: 'uplink: broadcast, tagged 20', from: 'uplink', frame: vlanFrame(BROADCAST, UNKNOWN, 20), out: { b: ['u'], t: ['t20'] } },
  { name: 'uplink: to a, tagged 10', from: 'uplink', frame: vlanFrame(A_MAC, UNKNOWN, 10), out: { a: ['u'] } },
  { name: 'uplink: to a, tagged 20 (a is not in 20)', from: 'uplink', frame: vlanFrame(A_MAC, UNKNOWN, 20), out: {} },
  { name: 'a: to b (another VLAN): out of the uplink only', from: 'a', frame: vlanFrame(B_MAC, A_MAC), out: { uplink: ['t10'] } },
  { name: 'a: to t (native 10): untagged', from: 'a', frame: vlanFrame(T_MAC, A_MAC), out: { t: ['u'] } },
  { name: 'b: to t (VLAN 20 on the trunk): tagged', from: 'b', frame: vlanFrame(T_MAC, B_MAC), out: { t: ['t20'] } },
];

describe('VLANs through the switch', () => {
  async function vlanSwitch() {
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const dp = await DataPlane.create(nic, { vlans: true });
    const ports: Record<string, TestPort> = {};
    const vlans = new VlanMembership<number | string>();
    for (const [name, mac, spec] of [
      ['a', A_MAC, { access: 10 }],
      ['b', B_MAC, { access: 20 }],
      ['t', T_MAC, { trunk: [10, 20], native: 10 }],
    ] as const) {
      const client = nic.openClient(name);
      client.addressAdd(mac);
      ports[name] = testPort(`test:${name}`);
      bindClient(dp, client, ports[name]!);
      vlans.set(client.id, spec);
    }
    ports.uplink = testPort('test:uplink');
    const uplink = bindUplink(dp, ports.uplink);
    vlans.set('uplink', { trunk: [10, 20] });
    setSwitchVlans(dp, vlans);
    return { dp, ports, uplink };
  }

  it.each(VLAN_TRUTH)('$name', async ({ from, frame, out }) => {
    const { dp, ports } = await vlanSwitch();
    try {
      ports[from]!.rx(frame);
      const got = Object.fromEntries(
        Object.entries(ports)
          .filter(([, p]) => p.got.length > 0)
          .map(([name, p]) => [name, p.got.map(seen)]),
      );
      expect(got).toEqual(out);
    } finally {
      dp.close();
    }
  });

  it('counts the frames each port drops for VLANs, and needs a data plane planned for them', async () => {
    const { dp, ports, uplink } = await vlanSwitch();
    try {
      ports.uplink!.rx(vlanFrame(BROADCAST, UNKNOWN));
      ports.uplink!.rx(vlanFrame(BROADCAST, UNKNOWN, 30));
      expect(uplink.counters().drops.vlan).toBe(2);
      const plain = await DataPlane.create(new Nic({ primary: '02:00:00:00:00:01' }));
      try {
        expect(() => setSwitchVlans(plain, new VlanMembership())).toThrow(expect.objectContaining({ code: 'NOT_SUPPORTED' }));
      } finally {
        plain.close();
      }
    } finally {
      dp.close();
    }
  });
});
