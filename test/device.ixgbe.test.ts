// The ixgbe (82599) profile: a named vector per register combination, hash positions derived by hand from the datasheet,
// then the Wasm burst path against a plain model written from the datasheet over a million random frames and states.
import { describe, expect, it } from 'vitest';
import { IXGBE_BITS as B, IXGBE_REGISTERS as REG, Ixgbe, Nic } from 'macslot';
import { IxgbeModel, bytes, frame } from './support/device-models.js';
import { pick, randomLength, randomMac, runDifferential, randomDestination } from './support/device-diff.js';
import { thrownCode } from './support/errors.js';

const STATION = '00:1b:21:0a:0b:0c';
type Write = readonly [number, number];

interface Vector {
  readonly writes: readonly Write[];
  readonly dst: string;
  readonly length?: number;
  readonly type?: number;
  readonly tci?: number;
  readonly reason: string;
  readonly entry?: number;
}

// 00:1b:21:0a:0b:0c: RAL = 0x0a211b00, RAH = 0x0c0b | AV = 0x80000c0b.
const RAR0: readonly Write[] = [
  [REG.RAL, 0x0a211b00],
  [REG.RAH, 0x80000c0b],
];
const ON: Write = [REG.RXCTRL, B.RXCTRL_RXEN];
const fctrl = (bits: number): Write => [REG.FCTRL, bits];

const VECTORS: Record<string, Vector> = {
  'reset: RXCTRL.RXEN clear drops even the station address': { writes: RAR0, dst: STATION, reason: 'drop-disabled' },
  'RAR0 with AV': { writes: [...RAR0, ON], dst: STATION, reason: 'exact', entry: 0 },
  'RAR0 written through its 0x0A200 address': {
    writes: [[0xa200, 0x0a211b00], [0xa204, 0x80000c0b], ON],
    dst: STATION,
    reason: 'exact',
    entry: 0,
  },
  'RAR16 at 0x0A280 / 0x0A284': { writes: [[0xa280, 0x0a211b00], [0xa284, 0x80000c0b], ON], dst: STATION, reason: 'exact', entry: 16 },
  'RAR127 at 0x0A5F8 / 0x0A5FC': { writes: [[0xa5f8, 0x0a211b00], [0xa5fc, 0x80000c0b], ON], dst: STATION, reason: 'exact', entry: 127 },
  'RAR without AV': { writes: [[REG.RAL, 0x0a211b00], [REG.RAH, 0x00000c0b], ON], dst: STATION, reason: 'drop-no-match' },
  'a 59-byte frame without FCTRL.SBP is undersize': { writes: [...RAR0, ON], dst: STATION, length: 59, reason: 'drop-runt' },
  'a 60-byte frame is not': { writes: [...RAR0, ON], dst: STATION, length: 60, reason: 'exact', entry: 0 },
  'FCTRL.SBP stores a 59-byte frame': {
    writes: [...RAR0, fctrl(B.FCTRL_SBP), ON],
    dst: STATION,
    length: 59,
    reason: 'exact',
    entry: 0,
  },
  'a 13-byte frame even with SBP': { writes: [...RAR0, fctrl(B.FCTRL_SBP), ON], dst: STATION, length: 13, reason: 'drop-runt' },
  'broadcast with BAM': { writes: [fctrl(B.FCTRL_BAM), ON], dst: 'ff:ff:ff:ff:ff:ff', reason: 'broadcast' },
  'broadcast without BAM': { writes: [ON], dst: 'ff:ff:ff:ff:ff:ff', reason: 'drop-no-match' },
  'MPE admits a group address': { writes: [fctrl(B.FCTRL_MPE), ON], dst: '01:00:5e:01:02:03', reason: 'multicast-promiscuous' },
  'UPE admits an unknown unicast address': { writes: [fctrl(B.FCTRL_UPE), ON], dst: '02:00:00:00:00:09', reason: 'unicast-promiscuous' },
  // 01:00:5e:00:00:fb: w = a4 | a5<<8 = 0xfb00; MO0 takes bits 47:36: 0xfb0 = 4016 = 125 * 32 + 16.
  'MFE, MO0, 01:00:5e:00:00:fb: vector 0xfb0, MTA[125] bit 16': {
    writes: [[REG.MTA + 4 * 125, 1 << 16], [REG.MCSTCTRL, B.MCSTCTRL_MFE | 0], ON],
    dst: '01:00:5e:00:00:fb',
    reason: 'multicast-hash',
  },
  'MFE clear: the MTA is not used': {
    writes: [[REG.MTA + 4 * 125, 1 << 16], [REG.MCSTCTRL, 0], ON],
    dst: '01:00:5e:00:00:fb',
    reason: 'drop-no-match',
  },
  // MO3 takes bits 43:32: 0xfb00 & 0xfff = 0xb00 = 2816 = 88 * 32 + 0.
  'MFE, MO3, 01:00:5e:00:00:fb: vector 0xb00, MTA[88] bit 0': {
    writes: [[REG.MTA + 4 * 88, 1], [REG.MCSTCTRL, B.MCSTCTRL_MFE | 3], ON],
    dst: '01:00:5e:00:00:fb',
    reason: 'multicast-hash',
  },
  'the MTA is a multicast filter: a unicast address on its bit is dropped': {
    writes: [[REG.MTA + 4 * 43, 1 << 3], [REG.MCSTCTRL, B.MCSTCTRL_MFE], ON],
    dst: '02:00:00:00:34:56',
    reason: 'drop-no-match',
  },
  // 02:00:00:00:34:56: w = 0x5634; MO0: 0x563 = 1379 = 43 * 32 + 3 -> PFUTA[43] bit 3 (offset 0x0F4AC).
  'VT mode with pool 0 ROPE: unicast 02:00:00:00:34:56 on PFUTA[43] bit 3': {
    writes: [[REG.PFUTA + 4 * 43, 1 << 3], [REG.PFVTCTL, B.PFVTCTL_VT_ENA], [REG.VMOLR, B.VMOLR_ROPE], ON],
    dst: '02:00:00:00:34:56',
    reason: 'unicast-hash',
  },
  'the UTA without VT mode is not used': {
    writes: [[REG.PFUTA + 4 * 43, 1 << 3], [REG.VMOLR, B.VMOLR_ROPE], ON],
    dst: '02:00:00:00:34:56',
    reason: 'drop-no-match',
  },
  'the UTA without ROPE on pool 0 is not used (ROPE on pool 1)': {
    writes: [[REG.PFUTA + 4 * 43, 1 << 3], [REG.PFVTCTL, B.PFVTCTL_VT_ENA], [REG.VMOLR + 4, B.VMOLR_ROPE], ON],
    dst: '02:00:00:00:34:56',
    reason: 'drop-no-match',
  },
  // MO2 takes bits 45:34: 0x5634 >> 2 = 0x158d, masked 0x58d = 1421 = 44 * 32 + 13.
  'the UTA follows MCSTCTRL.MO: MO2 puts 02:00:00:00:34:56 on PFUTA[44] bit 13': {
    writes: [[REG.PFUTA + 4 * 44, 1 << 13], [REG.MCSTCTRL, 2], [REG.PFVTCTL, B.PFVTCTL_VT_ENA], [REG.VMOLR, B.VMOLR_ROPE], ON],
    dst: '02:00:00:00:34:56',
    reason: 'unicast-hash',
  },
  // VID 100 = 3 * 32 + 4: VFTA[3] bit 4, offset 0x0A00C.
  'VFE, VID 100 in VFTA[3] bit 4': {
    writes: [...RAR0, [REG.VFTA + 12, 1 << 4], [REG.VLNCTRL, B.VLNCTRL_VFE | 0x8100], ON],
    dst: STATION,
    type: 0x8100,
    tci: 100,
    reason: 'exact',
    entry: 0,
  },
  'VFE, VID 100 absent': {
    writes: [...RAR0, [REG.VLNCTRL, B.VLNCTRL_VFE | 0x8100], ON],
    dst: STATION,
    type: 0x8100,
    tci: 100,
    reason: 'drop-vlan',
  },
  'UPE does not bypass the VLAN stage': {
    writes: [fctrl(B.FCTRL_UPE), [REG.VLNCTRL, B.VLNCTRL_VFE | 0x8100], ON],
    dst: '02:00:00:00:00:09',
    type: 0x8100,
    tci: 5,
    reason: 'drop-vlan',
  },
  'the L2 stage runs first: an unknown address with a bad VID is drop-no-match': {
    writes: [[REG.VLNCTRL, B.VLNCTRL_VFE | 0x8100], ON],
    dst: '02:00:00:00:00:09',
    type: 0x8100,
    tci: 5,
    reason: 'drop-no-match',
  },
  'CFIEN with VLNCTRL.CFI 0 drops a tag with CFI set': {
    writes: [...RAR0, [REG.VLNCTRL, B.VLNCTRL_CFIEN | 0x8100], ON],
    dst: STATION,
    type: 0x8100,
    tci: 0x1064,
    reason: 'drop-cfi',
  },
  'CFIEN with VLNCTRL.CFI 1 passes it': {
    writes: [...RAR0, [REG.VLNCTRL, B.VLNCTRL_CFIEN | B.VLNCTRL_CFI | 0x8100], ON],
    dst: STATION,
    type: 0x8100,
    tci: 0x1064,
    reason: 'exact',
    entry: 0,
  },
  'VLNCTRL.VET 0x88a8: an 802.1ad tag is filtered': {
    writes: [...RAR0, [REG.VLNCTRL, B.VLNCTRL_VFE | 0x88a8], ON],
    dst: STATION,
    type: 0x88a8,
    tci: 100,
    reason: 'drop-vlan',
  },
  'a 17-byte frame with TPID 0x8100 (SBP) holds no TCI: untagged': {
    writes: [...RAR0, fctrl(B.FCTRL_SBP), [REG.VLNCTRL, B.VLNCTRL_VFE | 0x8100], ON],
    dst: STATION,
    length: 17,
    type: 0x8100,
    reason: 'exact',
    entry: 0,
  },
};

describe('ixgbe profile', () => {
  it.each(Object.entries(VECTORS))('%s', async (_name, v) => {
    const d = await Ixgbe.create();
    const model = new IxgbeModel();
    for (const [offset, value] of v.writes) {
      d.writeRegister(offset, value);
      model.write(offset, value);
    }
    const f = frame(bytes(v.dst), v.length ?? 64, v.type, v.tci);
    const want = v.entry === undefined ? { reason: v.reason } : { reason: v.reason, entry: v.entry };
    expect(d.accept(f)).toEqual({ accept: !v.reason.startsWith('drop-'), ...want });
    expect(model.classify(f)).toEqual(want);
  });

  const BAD: Record<string, { run: (d: Ixgbe) => unknown; code: string }> = {
    'an unaligned offset': { run: (d) => d.writeRegister(REG.FCTRL + 2, 0), code: 'INVALID_REGISTER' },
    'past RAH127 (0x0A600)': { run: (d) => d.writeRegister(0xa600, 0), code: 'INVALID_REGISTER' },
    'past the 82598 aliases (0x05480)': { run: (d) => d.writeRegister(0x5480, 0), code: 'INVALID_REGISTER' },
    'a value above 32 bits': { run: (d) => d.writeRegister(REG.FCTRL, 2 ** 32), code: 'INVALID_ARGUMENT' },
    'VMOLR pool 64': { run: (d) => d.setVMOLR(64, 0), code: 'INVALID_ARGUMENT' },
    'RAR index 128': { run: (d) => d.setRAH(128, 0), code: 'INVALID_ARGUMENT' },
  };
  it.each(Object.entries(BAD))('refuses %s with a MacslotError', async (_name, { run, code }) => {
    const d = await Ixgbe.create();
    expect(thrownCode(() => run(d))).toBe(code);
  });

  it('RAR 0..15 are one register at both addresses', async () => {
    const d = await Ixgbe.create({ mac: STATION });
    expect(d.readRegister(0xa204)).toBe(0x80000c0b);
    d.setRAL(20, 7);
    expect(d.readRegister(0xa2a0)).toBe(7);
  });

  it('a Nic programs it as Linux ixgbe_set_rx_mode does, and it follows the Nic', async () => {
    const nic = new Nic({ primary: STATION });
    const d = await Ixgbe.fromNic(nic);
    expect(d.accept(frame(bytes(STATION), 64))).toEqual({ accept: true, reason: 'exact', entry: 0 });
    expect(d.accept(frame(bytes('01:00:5e:00:00:fb'), 64)).reason).toBe('drop-no-match');
    nic.primaryClient.multicastJoin('01:00:5e:00:00:fb');
    expect(d.accept(frame(bytes('01:00:5e:00:00:fb'), 64))).toEqual({ accept: true, reason: 'exact', entry: 1 });
    expect(d.readRegister(REG.MCSTCTRL) & B.MCSTCTRL_MFE).toBe(B.MCSTCTRL_MFE);
    d.close();
  });

  it('the Wasm burst path agrees with the datasheet model on 1,000,000 random frames and register states', {
    timeout: 300_000,
  }, async () => {
    const d = await Ixgbe.create();
    const model = new IxgbeModel();
    const write = (offset: number, value: number): void => {
      d.writeRegister(offset, value >>> 0);
      model.write(offset, value >>> 0);
    };
    const seen = runDifferential({
      profile: d,
      model,
      seed: 0x82599,
      frames: 1_000_000,
      perState: 1000,
      mutate(rng) {
        const targets: number[][] = [];
        const some = (bits: readonly number[], p: number): number => bits.filter(() => rng() < p).reduce((a, b) => a | b, 0);
        write(REG.RXCTRL, rng() < 0.95 ? 1 : 0);
        write(REG.FCTRL, some([B.FCTRL_SBP, B.FCTRL_MPE, B.FCTRL_UPE, B.FCTRL_BAM], 0.3));
        write(REG.VLNCTRL, some([B.VLNCTRL_CFI, B.VLNCTRL_CFIEN, B.VLNCTRL_VFE], 0.4) | (rng() < 0.8 ? 0x8100 : 0x88a8));
        write(REG.MCSTCTRL, some([B.MCSTCTRL_MFE], 0.7) | Math.floor(rng() * 4));
        write(REG.PFVTCTL, rng() < 0.5 ? 1 : 0);
        write(REG.VMOLR + 4 * Math.floor(rng() * 2), rng() < 0.6 ? B.VMOLR_ROPE : 0);
        // A random subset of the 128 RARs changes each time, through either address of entries 0..15.
        for (let k = 0; k < 24; k++) {
          const n = Math.floor(rng() * 128);
          const base = n < 16 && rng() < 0.5 ? 0x5400 + 8 * n : 0xa200 + 8 * n;
          const mac = randomMac(rng, rng() < 0.3);
          write(base, mac[0]! | (mac[1]! << 8) | (mac[2]! << 16) | (mac[3]! << 24));
          write(base + 4, mac[4]! | (mac[5]! << 8) | (rng() < 0.7 ? 0x80000000 : 0));
          targets.push(mac);
        }
        for (const table of [REG.MTA, REG.PFUTA, REG.VFTA])
          for (let w = 0; w < 128; w++) write(table + 4 * w, rng() < 0.15 ? Math.floor(rng() * 2 ** 32) : 0);
        return targets;
      },
      draw(rng, targets) {
        const dst = randomDestination(rng, targets, 0.4);
        const type = rng() < 0.5 ? pick(rng, [0x8100, 0x88a8]) : 0x0800;
        return frame(dst, randomLength(rng), type, Math.floor(rng() * 65536));
      },
    });
    for (const reason of [
      'exact',
      'broadcast',
      'multicast-hash',
      'unicast-hash',
      'multicast-promiscuous',
      'unicast-promiscuous',
      'drop-no-match',
      'drop-vlan',
      'drop-cfi',
      'drop-disabled',
      'drop-runt',
    ])
      expect(seen.get(reason) ?? 0, reason).toBeGreaterThan(100);
  });
});
