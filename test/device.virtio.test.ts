// The virtio-net profile: a named vector per rx-mode, MAC-table and VLAN combination, then the Wasm burst path against a
// plain model of QEMU's receive_filter and control commands over a million random frames and command sequences.
import { describe, expect, it } from 'vitest';
import { Nic, VIRTIO_NET_CTRL as C, VIRTIO_NET_ERR, VIRTIO_NET_OK, VirtioNet, type VirtioRxMode } from 'macslot';
import { VirtioModel, bytes, frame } from './support/device-models.js';
import { pick, randomLength, randomMac, runDifferential, randomDestination } from './support/device-diff.js';
import { thrownCode } from './support/errors.js';

const MAC = '52:54:00:12:34:56';
const OTHER = '02:00:00:00:00:07';
const GROUP = '01:00:5e:00:00:fb';
const BCAST = 'ff:ff:ff:ff:ff:ff';

type Step = (d: VirtioNet) => number;
const mode =
  (m: VirtioRxMode, on: boolean): Step =>
  (d) =>
    d.setRxMode(m, on);
const OFF: Step = mode('promisc', false);
const table =
  (u: string[], m: string[]): Step =>
  (d) =>
    d.macTableSet(u, m);
const many = (n: number, first: number): string[] =>
  Array.from(
    { length: n },
    (_, i) => `0${first}:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
  );

interface Vector {
  readonly steps: readonly Step[];
  readonly features?: { ctrlVlan?: boolean; ctrlRxExtra?: boolean };
  readonly dst: string;
  readonly length?: number;
  readonly type?: number;
  readonly tci?: number;
  readonly reason: string;
  readonly entry?: number;
  /** Acks of the steps, when not all OK. */
  readonly acks?: readonly number[];
}

const VECTORS: Record<string, Vector> = {
  'after reset promisc is on: any frame, even on an unknown VLAN': { steps: [], dst: OTHER, type: 0x8100, tci: 9, reason: 'promiscuous' },
  'promisc off: the primary MAC': { steps: [OFF], dst: MAC, reason: 'primary' },
  'promisc off: an unknown unicast address': { steps: [OFF], dst: OTHER, reason: 'drop-no-match' },
  'a unicast table entry': { steps: [OFF, table([OTHER], [GROUP])], dst: OTHER, reason: 'exact', entry: 0 },
  'a multicast table entry sits after the unicast ones': { steps: [OFF, table([OTHER], [GROUP])], dst: GROUP, reason: 'exact', entry: 1 },
  'a group address in the unicast part never matches': { steps: [OFF, table([GROUP], [])], dst: GROUP, reason: 'drop-no-match' },
  'a unicast address in the multicast part never matches': { steps: [OFF, table([], [OTHER])], dst: OTHER, reason: 'drop-no-match' },
  '65 unicast entries overflow: every unicast address passes': {
    steps: [OFF, table(many(65, 2), [])],
    dst: OTHER,
    reason: 'unicast-overflow',
  },
  'after a unicast overflow all 64 entries are free for multicast': {
    steps: [OFF, table(many(65, 2), many(64, 1))],
    dst: '01:00:00:00:00:3f',
    reason: 'exact',
    entry: 63,
  },
  '60 unicast + 5 multicast: the multicast list overflows': {
    steps: [OFF, table(many(60, 2), many(5, 1))],
    dst: GROUP,
    reason: 'multicast-overflow',
  },
  '60 unicast + 5 multicast: the unicast entries stay exact': {
    steps: [OFF, table(many(60, 2), many(5, 1))],
    dst: '02:00:00:00:00:3b',
    reason: 'exact',
    entry: 59,
  },
  allmulti: { steps: [OFF, mode('allmulti', true)], dst: GROUP, reason: 'multicast-promiscuous' },
  'nomulti wins over allmulti': { steps: [OFF, mode('allmulti', true), mode('nomulti', true)], dst: GROUP, reason: 'drop-nomulti' },
  'nomulti does not stop broadcast': { steps: [OFF, mode('nomulti', true)], dst: BCAST, reason: 'broadcast' },
  'nobcast drops broadcast, even with allmulti': {
    steps: [OFF, mode('allmulti', true), mode('nobcast', true)],
    dst: BCAST,
    reason: 'drop-broadcast',
  },
  alluni: { steps: [OFF, mode('alluni', true)], dst: OTHER, reason: 'unicast-promiscuous' },
  'nouni drops even the primary MAC': { steps: [OFF, mode('nouni', true)], dst: MAC, reason: 'drop-nouni' },
  'nouni leaves multicast alone': {
    steps: [OFF, mode('nouni', true), mode('allmulti', true)],
    dst: GROUP,
    reason: 'multicast-promiscuous',
  },
  'MAC_ADDR_SET moves the primary': { steps: [OFF, (d) => d.macAddrSet(OTHER)], dst: OTHER, reason: 'primary' },
  'CTRL_VLAN: VID 5 not added is dropped': { steps: [OFF], dst: MAC, type: 0x8100, tci: 5, reason: 'drop-vlan' },
  'CTRL_VLAN: VID 5 added passes': { steps: [OFF, (d) => d.vlanAdd(5)], dst: MAC, type: 0x8100, tci: 5, reason: 'primary' },
  'CTRL_VLAN: PCP and CFI bits do not take part (TCI 0xf005 is VID 5)': {
    steps: [OFF, (d) => d.vlanAdd(5)],
    dst: MAC,
    type: 0x8100,
    tci: 0xf005,
    reason: 'primary',
  },
  'CTRL_VLAN: VID 5 deleted again': {
    steps: [OFF, (d) => d.vlanAdd(5), (d) => d.vlanDel(5)],
    dst: MAC,
    type: 0x8100,
    tci: 5,
    reason: 'drop-vlan',
  },
  'the VLAN stage drops broadcast too': { steps: [OFF], dst: BCAST, type: 0x8100, tci: 5, reason: 'drop-vlan' },
  'an 802.1ad (0x88a8) tag is not filtered': { steps: [OFF], dst: MAC, type: 0x88a8, tci: 5, reason: 'primary' },
  'a 17-byte frame with TPID 0x8100 holds no TCI: untagged': { steps: [OFF], dst: MAC, length: 17, type: 0x8100, reason: 'primary' },
  'without CTRL_VLAN every VID passes, and VLAN_ADD is refused': {
    steps: [OFF, (d) => d.vlanAdd(5)],
    features: { ctrlVlan: false },
    dst: MAC,
    type: 0x8100,
    tci: 77,
    reason: 'primary',
    acks: [VIRTIO_NET_OK, VIRTIO_NET_ERR],
  },
  'VLAN_ADD of VID 4096 is refused': {
    steps: [OFF, (d) => d.vlanAdd(4096)],
    dst: MAC,
    reason: 'primary',
    acks: [VIRTIO_NET_OK, VIRTIO_NET_ERR],
  },
  'without CTRL_RX_EXTRA, NOUNI is refused and changes nothing': {
    steps: [OFF, mode('nouni', true)],
    features: { ctrlRxExtra: false },
    dst: MAC,
    reason: 'primary',
    acks: [VIRTIO_NET_OK, VIRTIO_NET_ERR],
  },
  'a TABLE_SET whose counts do not match its length is refused and the old table kept': {
    steps: [OFF, table([OTHER], []), (d) => d.control(C.MAC, C.MAC_TABLE_SET, Uint8Array.of(1, 0, 0, 0, 1, 2, 3))],
    dst: OTHER,
    reason: 'exact',
    entry: 0,
    acks: [VIRTIO_NET_OK, VIRTIO_NET_OK, VIRTIO_NET_ERR],
  },
  'an RX command with two data bytes is refused': {
    steps: [(d) => d.control(C.RX, C.RX_PROMISC, Uint8Array.of(0, 0))],
    dst: OTHER,
    reason: 'promiscuous',
    acks: [VIRTIO_NET_ERR],
  },
  'a 13-byte runt': { steps: [], dst: MAC, length: 13, reason: 'drop-runt' },
};

describe('virtio-net profile', () => {
  it.each(Object.entries(VECTORS))('%s', async (_name, v) => {
    const d = await VirtioNet.create({ mac: MAC, ...(v.features === undefined ? {} : { features: v.features }) });
    const acks = v.steps.map((s) => s(d));
    expect(acks).toEqual(v.acks ?? v.steps.map(() => VIRTIO_NET_OK));
    const f = frame(bytes(v.dst), v.length ?? 64, v.type, v.tci);
    const want = v.entry === undefined ? { reason: v.reason } : { reason: v.reason, entry: v.entry };
    expect(d.accept(f)).toEqual({ accept: !v.reason.startsWith('drop-'), ...want });
  });

  it('a config-space MAC write takes effect at the next reset', async () => {
    const d = await VirtioNet.create({ mac: MAC });
    d.setRxMode('promisc', false);
    d.writeRegister(5, 0x57);
    expect(d.accept(frame(bytes('52:54:00:12:34:57'), 64)).reason).toBe('primary');
    d.reset();
    expect(d.mac.toString()).toBe('52:54:00:12:34:57');
    expect(d.rxModes).toEqual(['promisc']);
  });

  const BAD: Record<string, { run: (d: VirtioNet) => unknown; code: string }> = {
    'config offset 6': { run: (d) => d.writeRegister(6, 0), code: 'INVALID_REGISTER' },
    'a config byte above 255': { run: (d) => d.writeRegister(0, 256), code: 'INVALID_ARGUMENT' },
    'an unknown rx mode': { run: (d) => d.setRxMode('everything' as VirtioRxMode, true), code: 'INVALID_ARGUMENT' },
    'control data that is not bytes': { run: (d) => d.control(0, 0, [1] as unknown as Uint8Array), code: 'INVALID_ARGUMENT' },
    'an EUI-64 table entry': { run: (d) => d.macTableSet(['02:00:00:ff:fe:00:00:01'], []), code: 'INVALID_MAC' },
    'a negative VID': { run: (d) => d.vlanAdd(-1), code: 'INVALID_ARGUMENT' },
  };
  it.each(Object.entries(BAD))('refuses %s with a MacslotError', async (_name, { run, code }) => {
    const d = await VirtioNet.create();
    expect(thrownCode(() => run(d))).toBe(code);
  });

  it('a Nic drives its control queue as Linux virtnet_set_rx_mode does', async () => {
    const nic = new Nic({ primary: MAC, factory: { base: '02:00:00:00:03:00', count: 1 } });
    const d = await VirtioNet.fromNic(nic, { mac: '52:54:00:00:00:01' });
    expect(d.mac.toString()).toBe(MAC);
    expect(d.accept(frame(bytes(MAC), 64)).reason).toBe('primary');
    const c = nic.openClient('guest');
    c.addressReserve();
    c.multicastJoin(GROUP);
    expect(d.accept(frame(bytes('02:00:00:00:03:00'), 64))).toEqual({ accept: true, reason: 'exact', entry: 0 });
    expect(d.accept(frame(bytes(GROUP), 64))).toEqual({ accept: true, reason: 'exact', entry: 1 });
    expect(d.accept(frame(bytes(OTHER), 64)).reason).toBe('drop-no-match');
    d.close();
  });

  it('the Wasm burst path agrees with the receive_filter model on 1,000,000 random frames and commands', { timeout: 300_000 }, async () => {
    const mac = bytes(MAC);
    const d = await VirtioNet.create({ mac: MAC });
    const model = new VirtioModel(mac);
    const run = (cls: number, cmd: number, data: Uint8Array): void => {
      expect(d.control(cls, cmd, data)).toBe(model.control(cls, cmd, data));
    };
    const seen = runDifferential({
      profile: d,
      model,
      seed: 0x1af4,
      frames: 1_000_000,
      perState: 1000,
      mutate(rng) {
        for (let cmd = 0; cmd <= 5; cmd++) run(C.RX, cmd, Uint8Array.of(rng() < (cmd === 0 ? 0.1 : 0.2) ? 1 + Math.floor(rng() * 255) : 0));
        if (rng() < 0.3) run(C.MAC, C.MAC_ADDR_SET, Uint8Array.from(randomMac(rng, rng() < 0.2)));
        const n = rng() < 0.1 ? 60 + Math.floor(rng() * 10) : Math.floor(rng() * 8);
        const m = rng() < 0.1 ? 60 + Math.floor(rng() * 10) : Math.floor(rng() * 8);
        const uni = Array.from({ length: n }, () => randomMac(rng, rng() < 0.1));
        const multi = Array.from({ length: m }, () => randomMac(rng, rng() < 0.9));
        const data = new Uint8Array(8 + 6 * (n + m));
        const view = new DataView(data.buffer);
        view.setUint32(0, n, true);
        uni.forEach((x, i) => data.set(x, 4 + 6 * i));
        view.setUint32(4 + 6 * n, m, true);
        multi.forEach((x, i) => data.set(x, 8 + 6 * n + 6 * i));
        // Sometimes a malformed table: cut short, or with a byte too many.
        const sent = rng() < 0.1 ? data.subarray(0, Math.floor(rng() * data.length)) : rng() < 0.05 ? Uint8Array.from([...data, 0]) : data;
        run(C.MAC, C.MAC_TABLE_SET, sent);
        for (let k = 0; k < 8; k++) {
          const vid = rng() < 0.95 ? Math.floor(rng() * 64) : 4096 + Math.floor(rng() * 100);
          run(C.VLAN, rng() < 0.7 ? C.VLAN_ADD : C.VLAN_DEL, Uint8Array.of(vid & 255, vid >> 8));
        }
        if (rng() < 0.05) run(pick(rng, [3, 7]), Math.floor(rng() * 4), new Uint8Array(1));
        return [...uni, ...multi, mac, model.mac];
      },
      draw(rng, targets) {
        const dst = randomDestination(rng, targets, 0.5);
        const type = rng() < 0.5 ? pick(rng, [0x8100, 0x88a8]) : 0x0800;
        return frame(dst, randomLength(rng), type, Math.floor(rng() * 64) | (Math.floor(rng() * 16) << 12));
      },
    });
    for (const reason of [
      'exact',
      'primary',
      'broadcast',
      'multicast-promiscuous',
      'unicast-promiscuous',
      'promiscuous',
      'multicast-overflow',
      'unicast-overflow',
      'drop-no-match',
      'drop-vlan',
      'drop-broadcast',
      'drop-nomulti',
      'drop-nouni',
      'drop-runt',
    ])
      expect(seen.get(reason) ?? 0, reason).toBeGreaterThan(100);
  });
});
