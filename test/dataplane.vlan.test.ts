// The Wasm data plane with VLANs (DataPlane.setVlans) against the reference filter (classifyVlanFrame, vlanEgressFrame):
// verdicts, the bytes each client's ring receives, and the counters, over random NICs, VLAN memberships and frames; then
// cut tags, and a table of what access ports and trunks receive.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import {
  DataPlane,
  Mac,
  MacslotError,
  Nic,
  RULES,
  RxBatch,
  classifyVlanFrame,
  type NicClient,
  type PortVlans,
  type Rule,
  type VlanProtocol,
  VlanMembership,
  vlanEgressFrame,
} from 'macslot';

const SEED = Number(process.env.MACSLOT_DIFF_SEED ?? 20261202);
const UPLINK = 'uplink';
const VIDS = [1, 2, 3, 10, 100, 4094];
const GROUPS = ['01:00:5e:00:00:01', '33:33:00:00:00:01', '01:00:5e:00:00:fb', '01:80:c2:00:00:0e'];
const MAX_FRAME = 1518;
const BURST = 256;

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}
const below = (random: () => number, n: number): number => Math.floor(random() * n);
const pick = <T>(random: () => number, xs: readonly T[]): T => xs[below(random, xs.length)]!;

/** A NIC with a few clients holding addresses, groups, broadcast and promiscuous settings drawn from `random`. */
function makeNic(random: () => number): Nic {
  const nic = new Nic({
    primary: '00:14:4f:00:00:00',
    factory: { base: '00:14:4f:00:00:01', count: 2 },
    unicastEntries: below(random, 4),
    multicastEntries: below(random, 3),
    overflow: random() < 0.5 ? 'promiscuous' : 'reject',
    multicastHash: random() < 0.5 ? false : { filterType: below(random, 4) as 0 | 1 | 2 | 3 },
    maxClients: 8,
    maxFrameLength: MAX_FRAME,
  });
  const clients: NicClient[] = [nic.primaryClient];
  for (let i = 0; i < 5; i++) clients.push(nic.openClient(`c${i}`, { allowPromiscuous: i >= 3, broadcast: random() < 0.8 }));
  for (const c of clients) {
    try {
      if (random() < 0.7) c.addressAdd();
      if (random() < 0.3) c.addressReserve();
      for (const g of GROUPS) if (random() < 0.3) c.multicastJoin(g);
      if (random() < 0.2) c.setPromiscuous(true);
    } catch (err) {
      if (!(err instanceof MacslotError)) throw err;
    }
  }
  return nic;
}

function someVids(random: () => number): number[] {
  const out = VIDS.filter(() => random() < 0.4);
  return out.length > 0 ? out : [pick(random, VIDS)];
}

function portSpec(random: () => number): PortVlans | undefined {
  const r = random();
  if (r < 0.1) return undefined;
  if (r < 0.5) return { access: pick(random, VIDS) };
  const trunk = someVids(random);
  return random() < 0.5 ? { trunk, native: pick(random, trunk) } : { trunk };
}

/** A membership for the uplink and client ids 0..7 (some without any), 802.1Q mostly. */
function makeVlans(random: () => number): VlanMembership<number | string> {
  const protocol: VlanProtocol = random() < 0.8 ? '802.1Q' : '802.1ad';
  const vlans = new VlanMembership<number | string>({ protocol });
  const up = random() < 0.9 ? portSpec(random) : undefined;
  if (up !== undefined) vlans.set(UPLINK, up);
  for (let id = 0; id < 8; id++) {
    const spec = portSpec(random);
    if (spec !== undefined) vlans.set(id, spec);
  }
  return vlans;
}

const TPIDS = [0x8100, 0x88a8];

/** Writes a frame into `out` at `at` and returns its length: a destination, then no tag, one, two, or a cut one. */
function writeFrame(random: () => number, out: Uint8Array, at: number, dst: Uint8Array, tag: number): number {
  const r = random();
  const put16 = (o: number, v: number): void => {
    out[at + o] = v >> 8;
    out[at + o + 1] = v & 0xff;
  };
  const vid = (): number => {
    const q = random();
    return q < 0.75 ? pick(random, VIDS) : q < 0.85 ? 0 : q < 0.9 ? 4095 : below(random, 4096);
  };
  let header: number;
  let len: number;
  if (r < 0.35) {
    put16(12, random() < 0.9 ? 0x0800 : 0x86dd);
    header = 14;
  } else if (r < 0.75) {
    put16(12, pick(random, TPIDS));
    put16(14, (below(random, 8) << 13) | vid());
    put16(16, 0x0800);
    header = 18;
  } else if (r < 0.9) {
    put16(12, pick(random, TPIDS));
    put16(14, vid());
    put16(16, pick(random, TPIDS));
    put16(18, vid());
    put16(20, 0x0800);
    header = 22;
  } else {
    // A cut tag: a TPID at byte 12 or 16 and the frame ending inside or right after that tag.
    put16(12, pick(random, TPIDS));
    put16(14, vid());
    put16(16, random() < 0.5 ? pick(random, TPIDS) : 0x0800);
    for (let b = 18; b < 22; b++) out[at + b] = below(random, 256);
    len = 14 + below(random, 8);
    out.set(dst, at);
    return len;
  }
  const q = random();
  if (q < 0.01) len = below(random, 14);
  else if (q < 0.04) len = MAX_FRAME - 1 + below(random, 7);
  else len = Math.max(header, 60 + below(random, 80));
  out.set(dst.subarray(0, Math.min(6, len)), at);
  for (let b = 6; b < 12 && b < len; b++) out[at + b] = (tag >>> ((b & 3) * 8)) & 0xff;
  for (let b = header; b < len; b++) out[at + b] = (tag + b) & 0xff;
  return len;
}

function destinations(nic: Nic, random: () => number): Uint8Array[] {
  const slots = nic.slots().map((s) => s.mac.toBytes().subarray(0, 6));
  const groups = GROUPS.map((g) => Mac.parse(g).toBytes());
  const out: Uint8Array[] = [...slots, ...slots, ...groups, Mac.parse('ff:ff:ff:ff:ff:ff').toBytes()];
  for (let i = 0; i < 3; i++) out.push(Uint8Array.from({ length: 6 }, () => below(random, 256)));
  return out;
}

interface Tally {
  frames: number;
  rules: Map<Rule, number>;
}

/** One NIC, several VLAN memberships in turn (each set while the data plane runs), `perVlans` frames under each. */
async function compare(seed: number, memberships: number, perVlans: number, tally: Tally): Promise<void> {
  const random = xorshift(seed);
  const nic = makeNic(random);
  const poolBytes = BURST * (MAX_FRAME + 16);
  const ringBytes = BURST * (MAX_FRAME + 16) * 2;
  const dp = await DataPlane.create(nic, { burst: BURST, poolBytes, ringBytes, seed, vlans: true });
  try {
    const rings = Array.from({ length: nic.maxClients }, (_, id) => dp.ring(id));
    const offsets = new Uint32Array(BURST);
    const lengths = new Uint32Array(BURST);
    const queues: (Buffer | undefined)[][] = rings.map(() => []);
    // Bytes each client's counters must show as delivered: the length of the form it received.
    const delivered: number[] = [];
    for (let m = 0; m < memberships; m++) {
      const vlans = makeVlans(random);
      // Now and then VLAN filtering goes off and on again, and the filter is rebuilt: the VLAN state must survive both.
      if (random() < 0.1) dp.setVlans(undefined);
      dp.setVlans(vlans, UPLINK);
      if (random() < 0.2) dp.reload();
      const state = nic.filterState();
      const dsts = destinations(nic, random);
      const before = dp.counters();
      const expectRules = new Map<Rule, number>();
      const decoded = new Map<number, ReturnType<DataPlane['decode']>>();
      for (let done = 0; done < perVlans; ) {
        const n = Math.min(BURST, perVlans - done);
        let off = 0;
        for (let i = 0; i < n; i++) {
          const len = writeFrame(random, dp.pool, off, pick(random, dsts), tally.frames + done + i);
          offsets[i] = off;
          lengths[i] = len;
          dp.descriptors[2 * i] = off;
          dp.descriptors[2 * i + 1] = len;
          off += len + below(random, 8);
        }
        expect(dp.classifyBurst(n)).toBe(n);
        const viaClassify = dp.verdicts.slice(0, n);
        expect(dp.rxBurst(n)).toBe(n);
        for (let i = 0; i < n; i++) {
          const frame = dp.pool.subarray(offsets[i]!, offsets[i]! + lengths[i]!);
          const ref = classifyVlanFrame(state, vlans, UPLINK, frame);
          const word = dp.verdicts[i]!;
          let got = decoded.get(word);
          if (got === undefined) decoded.set(word, (got = dp.decode(word)));
          const want = { deliver: ref.deliver, rule: ref.rule, path: ref.path };
          if (word !== viaClassify[i] || got.rule !== want.rule || got.path !== want.path || got.deliver.join() !== want.deliver.join()) {
            const head = Buffer.from(frame.subarray(0, 22)).toString('hex');
            expect({ head, length: frame.length, got, classifyBurst: viaClassify[i] }).toEqual({
              head,
              length: frame.length,
              got: want,
              classifyBurst: word,
            });
          }
          expectRules.set(ref.rule, (expectRules.get(ref.rule) ?? 0) + 2);
          tally.rules.set(ref.rule, (tally.rules.get(ref.rule) ?? 0) + 1);
          for (const id of ref.deliver) {
            const out = vlanEgressFrame(vlans, UPLINK, frame, id);
            queues[id]!.push(out === undefined ? undefined : Buffer.from(out));
            delivered[id] = (delivered[id] ?? 0) + (out?.length ?? 0);
          }
        }
        // Each client's ring holds exactly the frames of its VLANs that the reference delivers to it, in order, each as
        // the client's port sends it (untagged on an access port and in a trunk's native VLAN, tagged otherwise).
        for (let id = 0; id < rings.length; id++) {
          const want = queues[id]!;
          let k = 0;
          rings[id]!.poll((got) => {
            const frame = want[k++];
            if (frame === undefined || Buffer.compare(got, frame) !== 0)
              expect({ client: id, record: k - 1, got: Buffer.from(got).toString('hex') }).toEqual({
                client: id,
                record: k - 1,
                got: frame?.toString('hex'),
              });
          });
          expect([id, k]).toEqual([id, want.length]);
          want.length = 0;
        }
        done += n;
      }
      tally.frames += perVlans;
      const after = dp.counters();
      for (const rule of RULES) expect([rule, after.rules[rule] - before.rules[rule]]).toEqual([rule, expectRules.get(rule) ?? 0]);
      expect({ ringFull: after.ringFull, ringCorrupt: after.ringCorrupt, poolFull: after.poolFull }).toEqual({
        ringFull: 0,
        ringCorrupt: 0,
        poolFull: 0,
      });
    }
    for (let id = 0; id < rings.length; id++) expect([id, dp.clientCounters(id).bytes]).toEqual([id, delivered[id] ?? 0]);
  } finally {
    dp.close();
  }
}

describe('Wasm data plane with VLANs against the reference filter', () => {
  it('agrees on 1,024,000 frames over random NICs and VLAN memberships', async () => {
    const tally: Tally = { frames: 0, rules: new Map() };
    for (let world = 0; world < 16; world++) await compare(SEED + world * 7919, 16, 4000, tally);
    expect(tally.frames).toBeGreaterThanOrEqual(1_000_000);
    // Every verdict a well-formed descriptor can get under VLANs must have been reached, drop-vlan among them.
    for (const rule of RULES.filter((r) => r !== 'drop-bad-descriptor'))
      expect([rule, (tally.rules.get(rule) ?? 0) > 0]).toEqual([rule, true]);
  }, 300_000);
});

// ---- cut and hostile tags ------------------------------------------------------------------------------------------

const CLIENT_MAC = '02:00:00:00:00:05';
const hexBytes = (s: string): number[] => s.split(' ').map((b) => Number.parseInt(b, 16));
/** A frame to CLIENT_MAC whose bytes from 12 on are `rest` (hex, space-separated). */
const toClient = (rest: string): Uint8Array => Uint8Array.from([...Mac.parse(CLIENT_MAC).toBytes(), 2, 0, 0, 0, 0, 1, ...hexBytes(rest)]);

// The uplink is a trunk of VLANs 10 and 20 with native 10; the client (id 1) is an access port of VLAN 20.
const CUT_TAGS: { name: string; frame: Uint8Array; rule: Rule; deliver: number[] }[] = [
  { name: '0x8100 at byte 12, frame ends there (14 bytes)', frame: toClient('81 00'), rule: 'drop-vlan', deliver: [] },
  { name: '0x8100 and half a TCI (15 bytes)', frame: toClient('81 00 00'), rule: 'drop-vlan', deliver: [] },
  { name: '0x8100 and a TCI for VLAN 20, no EtherType (16 bytes)', frame: toClient('81 00 00 14'), rule: 'drop-vlan', deliver: [] },
  { name: '0x8100, VLAN 20, one byte of EtherType (17 bytes)', frame: toClient('81 00 00 14 08'), rule: 'drop-vlan', deliver: [] },
  { name: '0x8100, VLAN 20, EtherType (18 bytes): whole', frame: toClient('81 00 00 14 08 00'), rule: 'unicast-exact', deliver: [1] },
  { name: '0x88a8 outer on an 802.1Q bridge, cut (16 bytes)', frame: toClient('88 a8 00 14'), rule: 'drop-vlan', deliver: [] },
  { name: 'outer 0x8100, inner TPID cut (20 bytes)', frame: toClient('81 00 00 14 81 00 00 0a'), rule: 'drop-vlan', deliver: [] },
  {
    name: 'outer 0x8100, inner tag without EtherType (21 bytes)',
    frame: toClient('81 00 00 14 88 a8 00 0a 08'),
    rule: 'drop-vlan',
    deliver: [],
  },
  {
    name: 'outer 0x8100 VLAN 20, whole inner tag (22 bytes)',
    frame: toClient('81 00 00 14 81 00 00 0a 08 00'),
    rule: 'unicast-exact',
    deliver: [1],
  },
  { name: 'untagged: in the native VLAN 10, not the client’s', frame: toClient('08 00'), rule: 'drop-vlan', deliver: [] },
  { name: 'priority tag (VID 0): native VLAN 10', frame: toClient('81 00 e0 00 08 00'), rule: 'drop-vlan', deliver: [] },
  { name: 'VID 4095', frame: toClient('81 00 0f ff 08 00'), rule: 'drop-vlan', deliver: [] },
  { name: 'VLAN 30, not on the uplink', frame: toClient('81 00 00 1e 08 00'), rule: 'drop-vlan', deliver: [] },
  { name: 'VID bits above 12 ignored (PCP 7, DEI): VLAN 20', frame: toClient('81 00 f0 14 08 00'), rule: 'unicast-exact', deliver: [1] },
  { name: 'runt (13 bytes) stays a runt', frame: toClient('81').subarray(0, 13), rule: 'drop-runt', deliver: [] },
];

describe('cut and hostile tags', () => {
  it.each(CUT_TAGS)('$name', async ({ frame, rule, deliver }) => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00', maxClients: 4 });
    const client = nic.openClient('c');
    client.addressAdd(CLIENT_MAC);
    const vlans = new VlanMembership<number | string>();
    vlans.set(UPLINK, { trunk: [10, 20], native: 10 });
    vlans.set(client.id, { access: 20 });
    const dp = await DataPlane.create(nic, { burst: 4, poolBytes: 4096, vlans: true });
    try {
      dp.setVlans(vlans, UPLINK);
      // The frame ends exactly at the end of the pool: a read past it would leave the pool.
      const at = dp.pool.length - frame.length;
      dp.pool.fill(0x81);
      dp.pool.set(frame, at);
      dp.descriptors[0] = at;
      dp.descriptors[1] = frame.length;
      const before = dp.counters().rules[rule];
      expect(dp.rxBurst(1)).toBe(1);
      const got = dp.decode(dp.verdicts[0]!);
      const ref = classifyVlanFrame(nic.filterState(), vlans, UPLINK, frame);
      expect({ rule: got.rule, deliver: got.deliver }).toEqual({ rule, deliver });
      expect({ rule: ref.rule, deliver: ref.deliver }).toEqual({ rule, deliver });
      expect(dp.counters().rules[rule] - before).toBe(1);
      expect(dp.ring(client.id).drain().length).toBe(deliver.length);
    } finally {
      dp.close();
    }
  });

  it('counts nothing as drop-vlan once VLAN filtering is off again', async () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00', maxClients: 4 });
    const client = nic.openClient('c');
    client.addressAdd(CLIENT_MAC);
    const vlans = new VlanMembership<number | string>();
    vlans.set(UPLINK, { trunk: [10] });
    const dp = await DataPlane.create(nic, { burst: 4, poolBytes: 4096, vlans: true });
    try {
      const frame = toClient('81 00 00 14 08 00');
      dp.setVlans(vlans, UPLINK);
      expect(dp.classify(frame).rule).toBe('drop-vlan');
      dp.setVlans(undefined);
      expect(dp.classify(frame).rule).toBe('unicast-exact');
      expect(dp.counters().rules['drop-vlan']).toBe(1);
    } finally {
      dp.close();
    }
  });
});

// ---- egress: what access ports and trunks receive --------------------------------------------------------------------

// The uplink is an 802.1Q trunk of VLANs 10, 20 and 30 with native 30. Clients: A (access 10), B (access 30), T (trunk 10,
// 20, 30 without a native VLAN), N (trunk 10, 20, 30, native 10).
const PORTS = { A: { access: 10 }, B: { access: 30 }, T: { trunk: [10, 20, 30] }, N: { trunk: [10, 20, 30], native: 10 } } as const;
type PortName = keyof typeof PORTS;
const MACS: Record<PortName, string> = { A: '02:00:00:00:00:0a', B: '02:00:00:00:00:0b', T: '02:00:00:00:00:0c', N: '02:00:00:00:00:0d' };
const BROADCAST = 'ff:ff:ff:ff:ff:ff';

/** A frame to `dst` whose bytes from 12 on are `head` (hex), then a payload that makes it `length` bytes long. */
function egressFrame(dst: string, head: string, length = 64): Uint8Array {
  const front = [...Mac.parse(dst).toBytes(), 2, 0, 0, 0, 0, 1, ...hexBytes(head)];
  return Uint8Array.from({ length }, (_, i) => (i < front.length ? front[i]! : i & 0xff));
}

/** What a port receives: the frame as it came, without its outer tag, with a tag inserted, or with its VID rewritten. */
type Egress = 'as-received' | 'untagged' | { insert: number } | { vid: number };

function expected(frame: Uint8Array, e: Egress): Uint8Array {
  if (e === 'as-received') return frame;
  if (e === 'untagged') return Uint8Array.from([...frame.subarray(0, 12), ...frame.subarray(16)]);
  if ('insert' in e) return Uint8Array.from([...frame.subarray(0, 12), 0x81, 0, e.insert >> 8, e.insert & 0xff, ...frame.subarray(12)]);
  const out = frame.slice();
  out[14] = (out[14]! & 0xf0) | (e.vid >> 8);
  out[15] = e.vid & 0xff;
  return out;
}

const EGRESS: { name: string; frame: Uint8Array; receive: Partial<Record<PortName, Egress>> }[] = [
  { name: 'VLAN 10 tagged to an access port: untagged', frame: egressFrame(MACS.A, '81 00 a0 0a 08 00'), receive: { A: 'untagged' } },
  {
    name: 'VLAN 10 tagged to a trunk: as received (priority and DEI kept)',
    frame: egressFrame(MACS.T, '81 00 b0 0a 08 00'),
    receive: { T: 'as-received' },
  },
  {
    name: 'VLAN 10 tagged to a trunk whose native VLAN is 10: untagged',
    frame: egressFrame(MACS.N, '81 00 00 0a 08 00'),
    receive: { N: 'untagged' },
  },
  {
    name: 'VLAN 20 tagged to a trunk with another native VLAN: tagged',
    frame: egressFrame(MACS.N, '81 00 00 14 08 00'),
    receive: { N: 'as-received' },
  },
  {
    name: 'untagged (uplink native 30) to an access port of 30: as received',
    frame: egressFrame(MACS.B, '08 00'),
    receive: { B: 'as-received' },
  },
  {
    name: 'untagged (uplink native 30) to a trunk without native: tag 30 inserted',
    frame: egressFrame(MACS.T, '08 00'),
    receive: { T: { insert: 30 } },
  },
  {
    name: 'untagged, 1,518 bytes, to a trunk: a 1,522-byte tagged frame',
    frame: egressFrame(MACS.T, '08 00', 1518),
    receive: { T: { insert: 30 } },
  },
  {
    name: 'priority tag (VID 0, PCP 5) to a trunk: VID 30, priority kept',
    frame: egressFrame(MACS.T, '81 00 a0 00 08 00'),
    receive: { T: { vid: 30 } },
  },
  {
    name: 'priority tag (VID 0) to an access port of 30: untagged',
    frame: egressFrame(MACS.B, '81 00 e0 00 08 00'),
    receive: { B: 'untagged' },
  },
  {
    name: '802.1ad outer tag on an 802.1Q bridge is payload: VLAN 30, tag inserted before it on a trunk',
    frame: egressFrame(MACS.T, '88 a8 00 0a 08 00'),
    receive: { T: { insert: 30 } },
  },
  {
    name: '802.1ad outer tag on an 802.1Q bridge to an access port of 30: as received, S-tag kept',
    frame: egressFrame(MACS.B, '88 a8 00 0a 08 00'),
    receive: { B: 'as-received' },
  },
  {
    name: 'Q-in-Q (802.1Q outer VLAN 10, inner tag) to an access port: only the outer tag comes off',
    frame: egressFrame(MACS.A, '81 00 00 0a 81 00 00 05 08 00'),
    receive: { A: 'untagged' },
  },
  {
    name: 'broadcast in VLAN 10: access and native untagged, trunk tagged, VLAN 30 port nothing',
    frame: egressFrame(BROADCAST, '81 00 00 0a 08 00'),
    receive: { A: 'untagged', T: 'as-received', N: 'untagged' },
  },
  {
    name: 'broadcast in VLAN 20: both trunks tagged, access ports nothing',
    frame: egressFrame(BROADCAST, '81 00 00 14 08 00'),
    receive: { T: 'as-received', N: 'as-received' },
  },
  {
    name: 'broadcast untagged (native 30): access as received, both trunks tag 30 inserted',
    frame: egressFrame(BROADCAST, '08 00'),
    receive: { B: 'as-received', T: { insert: 30 }, N: { insert: 30 } },
  },
  {
    name: 'broadcast priority-tagged: access untagged, both trunks VID 30 with the priority kept',
    frame: egressFrame(BROADCAST, '81 00 60 00 08 00'),
    receive: { B: 'untagged', T: { vid: 30 }, N: { vid: 30 } },
  },
];

/** A NIC with the four ports, their VLANs (client ids) and the uplink's, on a data plane with VLANs. */
async function egressWorld(options: { poolBytes?: number; burst?: number } = {}) {
  const nic = new Nic({ primary: '00:14:4f:00:00:00', maxClients: 8 });
  const vlans = new VlanMembership<number | string>();
  vlans.set(UPLINK, { trunk: [10, 20, 30], native: 30 });
  const ids = {} as Record<PortName, number>;
  for (const name of Object.keys(PORTS) as PortName[]) {
    const c = nic.openClient(name);
    c.addressAdd(MACS[name]);
    vlans.set(c.id, PORTS[name]);
    ids[name] = c.id;
  }
  const dp = await DataPlane.create(nic, { burst: options.burst ?? 8, poolBytes: options.poolBytes ?? 16384, vlans: true });
  dp.setVlans(vlans, UPLINK);
  return { nic, vlans, ids, dp };
}

const hex = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString('hex'));

describe('egress: each port receives the frame as a VLAN-filtering bridge sends it', () => {
  for (const path of ['rxBurstInto', 'poll'] as const) {
    it.each(EGRESS)(`${path}: $name`, async ({ frame, receive }) => {
      const { vlans, ids, dp } = await egressWorld();
      try {
        const got: Record<string, string[]> = {};
        const want: Record<string, string[]> = {};
        // Twice: the second burst places its forms where the first one's were released.
        for (let round = 0; round < 2; round++) {
          dp.receive(frame);
          for (const name of Object.keys(PORTS) as PortName[]) {
            const ring = dp.ring(ids[name]);
            const e = receive[name];
            (want[name] ??= []).push(...(e === undefined ? [] : [hex(expected(frame, e))!]));
            // The reference filter's egress agrees with the table.
            if (e !== undefined) expect([name, hex(vlanEgressFrame(vlans, UPLINK, frame, ids[name]))]).toEqual([name, want[name]!.at(-1)]);
            const out = (got[name] ??= []);
            if (path === 'poll') ring.poll((f) => out.push(hex(f)!));
            else {
              const batch = new RxBatch(4);
              const n = ring.rxBurstInto(batch);
              for (let i = 0; i < n; i++) out.push(hex(batch.frame(i))!);
              ring.release();
            }
          }
        }
        expect(got).toEqual(want);
        for (const name of Object.keys(PORTS) as PortName[]) {
          const c = dp.clientCounters(ids[name]);
          const e = receive[name];
          const bytes = e === undefined ? 0 : 2 * expected(frame, e).length;
          expect([name, c.frames, c.bytes, c.poolDrops]).toEqual([name, e === undefined ? 0 : 2, bytes, 0]);
        }
        expect(dp.counters().poolFull).toBe(0);
      } finally {
        dp.close();
      }
    });
  }

  it('keeps views a consumer holds intact while later bursts place their forms in the pool', async () => {
    const { ids, dp } = await egressWorld({ poolBytes: 8192, burst: 8 });
    try {
      const held = new RxBatch(64);
      const t = dp.ring(ids.T);
      const wants: string[] = [];
      // T holds every inserted-tag form it gets; B's frames (as received) are read and released at once. Each burst
      // writes new frames from the pool's start, so held forms must be skipped, never overwritten.
      for (let k = 0; k < 12; k++) {
        const frame = egressFrame(BROADCAST, '08 00', 300 + k);
        frame[40] = k;
        dp.receiveBurst([frame]);
        wants.push(hex(expected(frame, { insert: 30 }))!);
        expect(dp.ring(ids.B).drain().map(hex)).toEqual([hex(frame)]);
        dp.ring(ids.N).discard();
      }
      const n = t.rxBurstInto(held);
      expect(n).toBe(wants.length);
      expect(Array.from({ length: n }, (_, i) => hex(held.frame(i)))).toEqual(wants);
      t.release();
    } finally {
      dp.close();
    }
  });

  it('drops and counts a delivery whose form finds no room in the pool, and delivers the others', async () => {
    // 2,048 bytes of pool: a 1,024-byte frame takes 16 lines, its tagged form would need 17 of the 16 left.
    const { ids, dp } = await egressWorld({ poolBytes: 2048, burst: 2 });
    try {
      const big = egressFrame(BROADCAST, '08 00', 1024);
      dp.receive(big);
      expect(dp.ring(ids.B).drain().map(hex)).toEqual([hex(big)]);
      expect(dp.ring(ids.T).drain()).toEqual([]);
      expect(dp.ring(ids.N).drain()).toEqual([]);
      expect([dp.clientCounters(ids.T).poolDrops, dp.clientCounters(ids.N).poolDrops, dp.clientCounters(ids.B).poolDrops]).toEqual([
        1, 1, 0,
      ]);
      expect([dp.clientCounters(ids.T).frames, dp.clientCounters(ids.T).bytes]).toEqual([0, 0]);
      // One form refused, once for the frame.
      expect(dp.counters().poolFull).toBe(1);
      // A frame whose form fits goes through again: nothing stays held by the failed attempt.
      const small = egressFrame(BROADCAST, '08 00', 900);
      dp.receive(small);
      expect(dp.ring(ids.T).drain().map(hex)).toEqual([hex(expected(small, { insert: 30 }))]);
      expect(dp.ring(ids.N).drain().map(hex)).toEqual([hex(expected(small, { insert: 30 }))]);
      expect(dp.ring(ids.B).drain().map(hex)).toEqual([hex(small)]);
    } finally {
      dp.close();
    }
  });
});

// classifyKeys has no frame to read a tag from: a key is classified as an untagged frame from the uplink (its native VLAN),
// or in the VLAN given.
const KEY_VIDS: { name: string; vid: number | undefined }[] = [
  { name: 'no VID: the native VLAN', vid: undefined },
  { name: 'the native VLAN named', vid: 10 },
  { name: 'a tagged VLAN of the uplink', vid: 20 },
  { name: 'a VLAN the uplink does not carry', vid: 30 },
];
const KEYS = ['00:14:4f:00:00:01', '00:14:4f:00:00:02', 'ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01', '02:00:00:00:00:09'];

describe('classifyKeys with VLANs', () => {
  it.each(KEY_VIDS)('agrees with classifyVlanFrame on an equivalent frame: $name', async ({ vid }) => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00', factory: { base: '00:14:4f:00:00:01', count: 2 }, maxClients: 4 });
    const a = nic.openClient('a');
    const b = nic.openClient('b');
    for (const c of [a, b]) {
      c.addressReserve();
      c.multicastJoin('01:00:5e:00:00:01');
    }
    const vlans = new VlanMembership<number | string>();
    vlans.set(a.id, { access: 10 });
    vlans.set(b.id, { access: 20 });
    vlans.set(UPLINK, { trunk: [10, 20], native: 10 });
    const dp = await DataPlane.create(nic, { burst: 4, poolBytes: 1 << 16, vlans: true });
    try {
      dp.setVlans(vlans, UPLINK);
      const want = KEYS.map((k) => {
        const tag = vid === undefined ? [] : [0x81, 0x00, vid >>> 8, vid & 0xff];
        const frame = Uint8Array.from([...Mac.parse(k).toBytes(), 2, 0, 0, 0, 0, 1, ...tag, 0x08, 0x00, ...new Array(46).fill(0)]);
        const v = classifyVlanFrame(nic.filterState(), vlans, UPLINK, frame);
        return { deliver: v.deliver, rule: v.rule, path: v.path };
      });
      expect(
        dp.classifyKeys(
          KEYS.map((k) => Mac.parse(k)),
          vid,
        ),
      ).toEqual(want);
      expect(want.some((v) => v.rule === 'drop-vlan')).toBe(true);
    } finally {
      dp.close();
    }
  });

  it('refuses a VID without VLAN filtering, or outside 1..4094', async () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00', maxClients: 4 });
    const dp = await DataPlane.create(nic, { burst: 4, poolBytes: 4096, vlans: true });
    try {
      const key = [Mac.parse('00:14:4f:00:00:00')];
      expect(() => dp.classifyKeys(key, 10)).toThrow(/vid 10 given, but this data plane filters no VLANs/);
      const vlans = new VlanMembership<number | string>();
      vlans.set(UPLINK, { trunk: [10] });
      dp.setVlans(vlans, UPLINK);
      for (const bad of [0, 4095, 1.5]) expect(() => dp.classifyKeys(key, bad)).toThrow(MacslotError);
    } finally {
      dp.close();
    }
  });
});
