// attachV86 against a stand-in for v86's bus (MAC taking and following, clashes, hostile frames, copies, netN, closing), and a real virtio
// card.
import { describe, expect, it, vi } from 'vitest';
import {
  DataPlane,
  Mac,
  MacslotError,
  Nic,
  attachV86,
  bindClient,
  bindUplink,
  memoryPortPair,
  type NicClient,
  type V86Event,
  type V86Like,
} from 'macslot';
import { HAVE_GUEST, REQUIRED, bootIpxe, frame, waitFor } from './fixtures/v86.js';

type Fn = (data: unknown) => void;

/** The two halves of v86's bus: the card's side (what a device registers and sends) and the adapter's side (`emulator.bus`). */
class FakeCard implements V86Like {
  readonly received: Uint8Array[] = [];
  readonly #adapter = new Map<string, Fn[]>();
  readonly #device = new Map<string, Fn[]>();
  readonly bus = {
    register: (name: string, fn: Fn): void => void this.#adapter.set(name, [...(this.#adapter.get(name) ?? []), fn]),
    unregister: (name: string, fn: Fn): void =>
      void this.#adapter.set(
        name,
        (this.#adapter.get(name) ?? []).filter((f) => f !== fn),
      ),
    send: (name: string, data?: unknown): void => {
      for (const fn of this.#device.get(name) ?? []) fn(data);
    },
  };
  constructor(readonly net = 0) {
    this.#device.set(`net${net}-receive`, [(f) => this.received.push(f as Uint8Array)]);
  }
  /** What the card does when the guest transmits. */
  transmit(data: unknown): void {
    for (const fn of this.#adapter.get(`net${this.net}-send`) ?? []) fn(data);
  }
  announce(mac: unknown): void {
    for (const fn of this.#adapter.get(`net${this.net}-mac`) ?? []) fn(mac);
  }
  listeners(): number {
    return [...this.#adapter.values()].reduce((n, l) => n + l.length, 0);
  }
}

const GUEST = '00:22:15:aa:bb:01';
const OTHER = '00:22:15:aa:bb:02';

async function setup() {
  const nic = new Nic({ primary: '00:14:4f:00:00:00', factory: { base: '00:14:4f:00:00:01', count: 4 } });
  const dp = await DataPlane.create(nic);
  const vm = nic.openClient('vm');
  const peer = nic.openClient('peer');
  const peerMac = peer.addressReserve().mac;
  // The peer sends and receives through a port of its own, and the wire is a port too: what reaches it is what the NIC put on the wire.
  const [peerPort, peerEnd] = memoryPortPair('peer', 'peer-end');
  bindClient(dp, peer, peerPort);
  const [uplink, wireEnd] = memoryPortPair('uplink', 'wire');
  bindUplink(dp, uplink);
  const wire: Uint8Array[] = [];
  wireEnd.onFrame((f) => wire.push(f));
  return { nic, dp, vm, peer, peerMac, peerEnd, wire };
}

/** A stand-in card attached to `vm` and bound to the data plane, as an emulator embedding macslot would wire it. */
function attachBound(dp: DataPlane, vm: NicClient, options?: Parameters<typeof attachV86>[2]) {
  const card = new FakeCard();
  const port = attachV86(card, vm, options);
  bindClient(dp, vm, port);
  return { card, port };
}

function record(port: { on(l: (e: V86Event) => void): () => void }): V86Event[] {
  const events: V86Event[] = [];
  port.on((e) => events.push(e));
  return events;
}

describe('taking the guest MAC', () => {
  it('makes the announced MAC the active MAC of the slot the client holds (a cloned MAC), and gives the slot back on close', async () => {
    const { nic, dp, vm } = await setup();
    const { slot, mac: factory } = vm.addressReserve();
    const { card, port } = attachBound(dp, vm);
    const events = record(port);
    card.announce(GUEST);
    expect(nic.addressGet(slot)).toMatchObject({ owner: 'vm', active: true, kind: 'cloned' });
    expect(nic.addressGet(slot).mac.toString()).toBe(GUEST);
    expect(events).toEqual([{ type: 'mac', mac: Mac.parse(GUEST), previous: factory, slot, from: 'event' }]);
    expect(port.guestMac?.toString()).toBe(GUEST);
    expect(dp.classify(frame(GUEST, OTHER)).deliver).toEqual([vm.id]);
    port.close();
    expect(nic.addressGet(slot).mac.equals(factory)).toBe(true);
    expect(card.listeners()).toBe(0);
  });

  it('takes the MAC from the first frame when no announcement came, in a slot it adds and removes on close', async () => {
    const { nic, dp, vm, wire } = await setup();
    const { card, port } = attachBound(dp, vm);
    expect(vm.slots()).toEqual([]);
    card.transmit(frame('ff:ff:ff:ff:ff:ff', GUEST));
    expect(vm.slots()).toHaveLength(1);
    const slot = vm.slots()[0]!;
    expect(nic.addressGet(slot)).toMatchObject({ kind: 'cloned', active: true });
    expect(port.slot).toBe(slot);
    expect(wire.map((w) => Mac.fromBytes(w, 6, 6).toString())).toEqual([GUEST]);
    expect(port.counters().fromGuest).toEqual({ frames: 1, bytes: 60 });
    port.close();
    expect(vm.slots()).toEqual([]);
  });

  it('follows the guest when its frames start carrying a new source MAC (an NE2000 driver rewriting its station address)', async () => {
    const { dp, vm, wire } = await setup();
    const { slot, mac: factory } = vm.addressReserve();
    const { card, port } = attachBound(dp, vm);
    const events = record(port);
    card.announce(GUEST);
    card.transmit(frame('ff:ff:ff:ff:ff:ff', GUEST));
    card.transmit(frame('ff:ff:ff:ff:ff:ff', OTHER));
    expect(vm.addressGet(slot).mac.toString()).toBe(OTHER);
    expect(events.map((e) => e.type === 'mac' && [e.mac.toString(), e.previous?.toString(), e.from])).toEqual([
      [GUEST, factory.toString(), 'event'],
      [OTHER, GUEST, 'frame'],
    ]);
    // Anti-spoofing stays on, and both frames left with the guest's MAC of the moment.
    expect(wire.map((w) => Mac.fromBytes(w, 6, 6).toString())).toEqual([GUEST, OTHER]);
    expect(dp.classify(frame(GUEST, OTHER)).rule).toBe('drop-unknown');
    expect(port.counters().macChanges).toBe(2);
  });

  it('with follow off, drops frames from another source as spoofed instead of moving the MAC', async () => {
    const { dp, vm, wire } = await setup();
    const { card, port } = attachBound(dp, vm, { follow: false });
    card.announce(GUEST);
    card.transmit(frame('ff:ff:ff:ff:ff:ff', OTHER));
    expect(port.guestMac?.toString()).toBe(GUEST);
    expect(port.counters().guestDrops.spoofed).toBe(1);
    expect(wire).toEqual([]);
  });
});

describe('a MAC active in another client', () => {
  it('surfaces as MAC_IN_USE, counted, drops the guest frames instead of sharing, and takes the MAC once it is free', async () => {
    const { nic, dp, vm, peer, wire } = await setup();
    const held = peer.addressAdd(GUEST);
    const { card, port } = attachBound(dp, vm);
    const events = record(port);
    expect(() => card.announce(GUEST)).not.toThrow();
    expect(events).toHaveLength(1);
    const clash = events[0]!;
    expect(clash.type).toBe('mac-in-use');
    expect(clash.type === 'mac-in-use' && clash.error).toBeInstanceOf(MacslotError);
    expect(clash.type === 'mac-in-use' && clash.error.code).toBe('MAC_IN_USE');
    card.transmit(frame('ff:ff:ff:ff:ff:ff', GUEST));
    card.transmit(frame('ff:ff:ff:ff:ff:ff', GUEST));
    expect(wire).toEqual([]);
    expect(port.counters()).toMatchObject({ macInUse: 1, guestDrops: { 'mac-in-use': 2 } });
    // The peer keeps its MAC: frames to it still go to the peer only.
    expect(dp.classify(frame(GUEST, OTHER)).deliver).toEqual([peer.id]);
    expect(port.slot).toBeUndefined();

    peer.addressRemove(held.slot);
    await Promise.resolve();
    expect(events.at(-1)).toMatchObject({ type: 'mac', from: 'retry' });
    expect(dp.classify(frame(GUEST, OTHER)).deliver).toEqual([vm.id]);
    card.transmit(frame('ff:ff:ff:ff:ff:ff', GUEST));
    expect(wire.map((w) => Mac.fromBytes(w, 6, 6).toString())).toEqual([GUEST]);
    expect(nic.addressGet(port.slot!).owner).toBe('vm');
  });

  it('reports any other failure to take the MAC as an error event, never a throw', async () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00', maxAddresses: 1 });
    const vm = nic.openClient('vm');
    const card = new FakeCard();
    const port = attachV86(card, vm);
    const events = record(port);
    port.onFrame(() => undefined);
    expect(() => card.transmit(frame('ff:ff:ff:ff:ff:ff', GUEST))).not.toThrow();
    expect(events).toMatchObject([{ type: 'error', during: 'mac', error: { code: 'NO_FREE_SLOT' } }]);
    expect(port.counters().guestDrops.unclaimed).toBe(1);
  });
});

describe('frames from the guest', () => {
  it('drops and counts hostile or odd frames without throwing into the emulator', async () => {
    const { dp, vm, wire } = await setup();
    const { card, port } = attachBound(dp, vm);
    card.announce(GUEST);
    const odd: unknown[] = [
      undefined,
      'frame',
      [1, 2, 3],
      new Uint16Array(30),
      new Uint8Array(0),
      new Uint8Array(13),
      frame('ff:ff:ff:ff:ff:ff', GUEST, 1523),
      frame('ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01'),
      frame('ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00'),
    ];
    for (const x of odd) expect(() => card.transmit(x)).not.toThrow();
    expect(port.counters().guestDrops).toMatchObject({ 'not-bytes': 4, runt: 2, oversize: 1, 'bad-source': 2 });
    expect(wire).toEqual([]);
    // A bad frame does not move the guest's MAC.
    expect(port.guestMac?.toString()).toBe(GUEST);
    card.transmit(frame('ff:ff:ff:ff:ff:ff', GUEST, 1522));
    expect(wire).toHaveLength(1);
  });

  it('copies each frame at the boundary: the card reusing its buffer does not change what was sent', async () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00' });
    const vm = nic.openClient('vm');
    const card = new FakeCard();
    const port = attachV86(card, vm);
    const got: Uint8Array[] = [];
    port.onFrame((f) => got.push(f));
    const ram = new Uint8Array(256);
    const view = ram.subarray(64, 124);
    view.set(frame('ff:ff:ff:ff:ff:ff', GUEST, 60, 0x11));
    card.transmit(view);
    ram.fill(0xee);
    view.set(frame('ff:ff:ff:ff:ff:ff', GUEST, 60, 0x22));
    card.transmit(view);
    expect(got.map((f) => f[20])).toEqual([0x11, 0x22]);
    expect(got[0]!.buffer).not.toBe(ram.buffer);
  });

  it('counts a receiver that throws as an error drop and keeps going', async () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00' });
    const card = new FakeCard();
    const port = attachV86(card, nic.openClient('vm'));
    const events = record(port);
    port.onFrame(() => {
      throw new Error('receiver bug');
    });
    expect(() => card.transmit(frame('ff:ff:ff:ff:ff:ff', GUEST))).not.toThrow();
    expect(port.counters().guestDrops.error).toBe(1);
    expect(events.at(-1)).toMatchObject({ type: 'error', during: 'send' });
  });
});

describe('frames to the guest', () => {
  it('bound with bindClient, hands the card only what the filter gives the client, and never the guest its own source', async () => {
    const { dp, vm, peerEnd, peerMac } = await setup();
    const { card, port } = attachBound(dp, vm);
    card.announce(GUEST);
    peerEnd.send(frame(GUEST, peerMac.toString(), 60, 1));
    peerEnd.send(frame('00:22:15:00:00:99', peerMac.toString(), 60, 2));
    peerEnd.send(frame('ff:ff:ff:ff:ff:ff', peerMac.toString(), 60, 3));
    expect(card.received.map((f) => f[20])).toEqual([1, 3]);
    expect(port.send(frame(GUEST, GUEST))).toBe(false);
    expect(port.counters()).toMatchObject({ toGuest: { frames: 2, bytes: 120 }, hostDrops: { echo: 1 } });
  });

  it('refuses odd frames handed to send, and everything after close', async () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00' });
    const card = new FakeCard();
    const port = attachV86(card, nic.openClient('vm'));
    expect(port.send('x' as unknown as Uint8Array)).toBe(false);
    expect(port.send(new Uint8Array(10))).toBe(false);
    expect(port.send(new Uint8Array(2000))).toBe(false);
    const f = frame(GUEST, OTHER);
    expect(port.send(f)).toBe(true);
    expect(card.received[0]).toEqual(f);
    expect(card.received[0]).not.toBe(f);
    port.close();
    expect(port.send(f)).toBe(false);
    expect(port.counters().hostDrops).toMatchObject({ 'not-bytes': 1, runt: 1, oversize: 1, closed: 1 });
  });

  it('maps any card netN to its own events', async () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00' });
    const vm = nic.openClient('vm');
    const card = new FakeCard(1);
    const port = attachV86(card, vm, { net: 1 });
    expect(port.name).toBe('v86:net1');
    card.announce(GUEST);
    expect(port.guestMac?.toString()).toBe(GUEST);
    port.send(frame(GUEST, OTHER));
    expect(card.received).toHaveLength(1);
  });
});

describe('lifecycle and bad input', () => {
  it('closes with reason peer when its client closes, and with reason local once on close()', async () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00' });
    const vm = nic.openClient('vm');
    const card = new FakeCard();
    const port = attachV86(card, vm);
    const reasons: unknown[] = [];
    port.onClose((r) => reasons.push(r));
    vm.close();
    expect(reasons).toEqual([{ kind: 'peer' }]);
    expect(card.listeners()).toBe(0);
    const other = nic.openClient('other');
    const p2 = attachV86(card, other);
    p2.onClose((r) => reasons.push(r));
    p2.close();
    p2.close();
    expect(reasons).toEqual([{ kind: 'peer' }, { kind: 'local' }]);
  });

  it('throws MacslotError with the offending value for bad arguments', async () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00' });
    const vm = nic.openClient('vm');
    const cases: [unknown, unknown, unknown, string, RegExp][] = [
      [null, vm, {}, 'INVALID_ARGUMENT', /null/],
      [{ bus: 42 }, vm, {}, 'INVALID_ARGUMENT', /42/],
      [new FakeCard(), { id: 3 }, {}, 'INVALID_ARGUMENT', /"id":3/],
      [new FakeCard(), vm, { net: -1 }, 'INVALID_ARGUMENT', /-1/],
      [new FakeCard(), vm, { net: 1.5 }, 'INVALID_ARGUMENT', /1\.5/],
      [new FakeCard(), vm, { maxFrameLength: 5 }, 'INVALID_ARGUMENT', /5/],
      [new FakeCard(), vm, 'options', 'INVALID_ARGUMENT', /"options"/],
    ];
    for (const [emulator, client, options, code, message] of cases) {
      let err: unknown;
      try {
        attachV86(emulator as V86Like, client as typeof vm, options as object);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(options)).toBeInstanceOf(MacslotError);
      expect(err).toMatchObject({ code });
      expect((err as Error).message).toMatch(message);
    }
    attachV86(new FakeCard(), vm);
    expect(() => attachV86(new FakeCard(), vm)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('"vm"') }),
    );
    const gone = nic.openClient('gone');
    gone.close();
    expect(() => attachV86(new FakeCard(), gone)).toThrow(expect.objectContaining({ code: 'CLIENT_CLOSED' }));
  });

  it('reports a malformed net0-mac announcement as an error event', async () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00' });
    const card = new FakeCard();
    const port = attachV86(card, nic.openClient('vm'));
    const events = record(port);
    expect(() => card.announce('zz:zz')).not.toThrow();
    expect(() => card.announce('ff:ff:ff:ff:ff:ff')).not.toThrow();
    expect(() => card.announce('00:22:15:ff:fe:00:00:01')).not.toThrow();
    expect(() => card.announce(42)).not.toThrow();
    expect(events).toMatchObject([
      { type: 'error', during: 'mac', error: { code: 'INVALID_MAC' } },
      { type: 'error', during: 'mac', error: { code: 'INVALID_MAC' } },
      { type: 'error', during: 'mac', error: { code: 'INVALID_MAC' } },
      { type: 'error', during: 'mac', error: { code: 'INVALID_MAC' } },
    ]);
    expect(port.guestMac).toBeUndefined();
  });
});

(HAVE_GUEST || REQUIRED ? describe : describe.skip)('a real v86 virtio card', () => {
  it('takes the MAC the card announces and delivers frames into it', async () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00', factory: { base: '00:14:4f:00:00:01', count: 1 } });
    const dp = await DataPlane.create(nic);
    const vm = nic.openClient('vm');
    const peer = nic.openClient('peer');
    const peerMac = peer.addressAdd('02:00:00:00:00:09').mac;
    const [peerPort, peerEnd] = memoryPortPair();
    bindClient(dp, peer, peerPort);
    vm.addressReserve();
    // Not started: the card exists and announces its MAC, but no driver posted receive buffers, so v86 says it had none.
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const emulator = bootIpxe('virtio', false);
    try {
      const port = attachV86(emulator, vm);
      bindClient(dp, vm, port);
      const mac = await waitFor('the virtio card to announce its MAC', 10_000, () => port.guestMac);
      expect(mac.oui).toBe('00:22:15');
      expect(nic.addressGet(1)).toMatchObject({ kind: 'cloned', owner: 'vm' });
      expect(nic.addressGet(1).mac.equals(mac)).toBe(true);
      peerEnd.send(frame(mac.toString(), peerMac.toString()));
      expect(port.counters().toGuest.frames).toBe(1);
      expect(log).toHaveBeenCalledWith('No buffer to write into!');
      expect(port.counters().hostDrops.error).toBe(0);
      port.close();
    } finally {
      log.mockRestore();
      await emulator.destroy();
    }
  });
});
