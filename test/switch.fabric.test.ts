// The forwarding engine on bursts: frames read from I/O in one turn go through the data plane together, each frame's
// verdict decides its way, only the rings that received frames are read, and a stream port writes once per turn.
import { Writable, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DataPlane, Nic, bindClient, bindUplink, ioBegin, ioEnd, memoryPortPair, type FramePort } from 'macslot';
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
