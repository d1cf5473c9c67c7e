// The e1000 (8254x) profile: a named vector per register combination, the hash positions derived by hand from the SDM,
// then the Wasm burst path against a plain model written from the SDM over a million random frames and register states.
import { describe, expect, it } from 'vitest';
import { E1000, E1000_RCTL as RCTL, E1000_REGISTERS as REG, Nic } from 'macslot';
import { E1000Model, bytes, frame } from './support/device-models.js';
import { pick, randomLength, randomMac, runDifferential, randomDestination } from './support/device-diff.js';
import { thrownCode } from './support/errors.js';

const STATION = '52:54:00:12:34:56';
const EN = RCTL.EN;

interface Vector {
  /** Register writes, in order: [offset, value]. */
  readonly writes: readonly (readonly [number, number])[];
  readonly dst: string;
  readonly length?: number;
  readonly type?: number;
  readonly tci?: number;
  readonly reason: string;
  readonly entry?: number;
}

// RAR0 for 52:54:00:12:34:56: RAL = a0 | a1<<8 | a2<<16 | a3<<24 = 0x12005452, RAH = a4 | a5<<8 | AV = 0x80005634.
const RAR0: readonly (readonly [number, number])[] = [
  [REG.RAL, 0x12005452],
  [REG.RAH, 0x80005634],
];
const rctl = (bits: number): readonly [number, number] => [REG.RCTL, EN | bits];
const mta = (w: number, bit: number): readonly [number, number] => [REG.MTA + 4 * w, (1 << bit) >>> 0];

const VECTORS: Record<string, Vector> = {
  'reset: RCTL.EN clear drops even the station address': { writes: RAR0, dst: STATION, reason: 'drop-disabled' },
  'RAR0 with AV: the station address': { writes: [...RAR0, rctl(0)], dst: STATION, reason: 'exact', entry: 0 },
  'RAR0 without AV (RAH = 0x00005634) matches nothing': {
    writes: [[REG.RAL, 0x12005452], [REG.RAH, 0x00005634], rctl(0)],
    dst: STATION,
    reason: 'drop-no-match',
  },
  'RAH bits 30:16 play no part: RAH = 0x80ff5634 still matches': {
    writes: [[REG.RAL, 0x12005452], [REG.RAH, 0x80ff5634], rctl(0)],
    dst: STATION,
    reason: 'exact',
    entry: 0,
  },
  'the lowest RAR holding the address wins (RAR2 and RAR5)': {
    writes: [[REG.RAL + 40, 0x12005452], [REG.RAH + 40, 0x80005634], [REG.RAL + 16, 0x12005452], [REG.RAH + 16, 0x80005634], rctl(0)],
    dst: STATION,
    reason: 'exact',
    entry: 2,
  },
  'a RAR may hold a group address: 01:00:5e:00:00:01 in RAR3 (RAL 0x005e0001, RAH 0x80000100)': {
    writes: [[REG.RAL + 24, 0x005e0001], [REG.RAH + 24, 0x80000100], rctl(0)],
    dst: '01:00:5e:00:00:01',
    reason: 'exact',
    entry: 3,
  },
  'unknown unicast without UPE': { writes: [...RAR0, rctl(0)], dst: '52:54:00:12:34:57', reason: 'drop-no-match' },
  'unknown unicast with UPE': { writes: [...RAR0, rctl(RCTL.UPE)], dst: '02:00:00:00:00:01', reason: 'unicast-promiscuous' },
  'UPE does not admit multicast': { writes: [rctl(RCTL.UPE)], dst: '01:00:5e:00:00:01', reason: 'drop-no-match' },
  'MPE admits any group address': { writes: [rctl(RCTL.MPE)], dst: '01:00:5e:7f:00:01', reason: 'multicast-promiscuous' },
  'MPE does not admit unicast': { writes: [rctl(RCTL.MPE)], dst: '02:00:00:00:00:01', reason: 'drop-no-match' },
  'broadcast with BAM': { writes: [rctl(RCTL.BAM)], dst: 'ff:ff:ff:ff:ff:ff', reason: 'broadcast' },
  'broadcast without BAM and an empty MTA': { writes: [rctl(0)], dst: 'ff:ff:ff:ff:ff:ff', reason: 'drop-no-match' },
  'broadcast without BAM: MPE does not rescue it (QEMU >= 8.1)': {
    writes: [rctl(RCTL.MPE)],
    dst: 'ff:ff:ff:ff:ff:ff',
    reason: 'drop-no-match',
  },
  // w = a4 | a5<<8 = 0xffff, so f = 0xfff for every MO: MTA[0xfff >> 5 = 127] bit 0xfff & 31 = 31.
  'broadcast without BAM passes the MTA: MTA[127] bit 31': {
    writes: [mta(127, 31), rctl(3 << RCTL.MO_SHIFT)],
    dst: 'ff:ff:ff:ff:ff:ff',
    reason: 'multicast-hash',
  },
  // 01:00:5e:00:00:fb: w = 0xfb00. MO0 takes bits 47:36: 0xfb00 >> 4 = 0xfb0 = 4016 = 125 * 32 + 16.
  'MO0, 01:00:5e:00:00:fb: f = 0xfb0, MTA[125] bit 16 (offset 0x053f4)': {
    writes: [mta(125, 16), rctl(0 << RCTL.MO_SHIFT)],
    dst: '01:00:5e:00:00:fb',
    reason: 'multicast-hash',
  },
  // MO1 takes bits 46:35: 0xfb00 >> 3 = 0x1f60, masked 0xf60 = 3936 = 123 * 32 + 0.
  'MO1, 01:00:5e:00:00:fb: f = 0xf60, MTA[123] bit 0 (offset 0x053ec)': {
    writes: [mta(123, 0), rctl(1 << RCTL.MO_SHIFT)],
    dst: '01:00:5e:00:00:fb',
    reason: 'multicast-hash',
  },
  // MO2 takes bits 45:34: 0xfb00 >> 2 = 0x3ec0, masked 0xec0 = 3776 = 118 * 32 + 0.
  'MO2, 01:00:5e:00:00:fb: f = 0xec0, MTA[118] bit 0 (offset 0x053d8)': {
    writes: [mta(118, 0), rctl(2 << RCTL.MO_SHIFT)],
    dst: '01:00:5e:00:00:fb',
    reason: 'multicast-hash',
  },
  // MO3 takes bits 43:32: 0xfb00 & 0xfff = 0xb00 = 2816 = 88 * 32 + 0.
  'MO3, 01:00:5e:00:00:fb: f = 0xb00, MTA[88] bit 0 (offset 0x05360)': {
    writes: [mta(88, 0), rctl(3 << RCTL.MO_SHIFT)],
    dst: '01:00:5e:00:00:fb',
    reason: 'multicast-hash',
  },
  'MO1 with the MO0 bit set (MTA[125] bit 16) misses': {
    writes: [mta(125, 16), rctl(1 << RCTL.MO_SHIFT)],
    dst: '01:00:5e:00:00:fb',
    reason: 'drop-no-match',
  },
  // Linux's e1000_hash_mc_addr example 01:aa:00:12:34:56: w = 0x5634. MO0: 0x563 = 1379 = 43 * 32 + 3.
  'MO0, 01:aa:00:12:34:56: f = 0x563, MTA[43] bit 3': {
    writes: [mta(43, 3), rctl(0)],
    dst: '01:aa:00:12:34:56',
    reason: 'multicast-hash',
  },
  // MO1: 0x5634 >> 3 = 0xac6 = 2758 = 86 * 32 + 6.
  'MO1, 01:aa:00:12:34:56: f = 0xac6, MTA[86] bit 6': {
    writes: [mta(86, 6), rctl(1 << RCTL.MO_SHIFT)],
    dst: '01:aa:00:12:34:56',
    reason: 'multicast-hash',
  },
  // MO2: 0x5634 >> 2 = 0x158d, masked 0x58d = 1421 = 44 * 32 + 13 (the driver comment's 0x5d8 transposes two digits).
  'MO2, 01:aa:00:12:34:56: f = 0x58d, MTA[44] bit 13': {
    writes: [mta(44, 13), rctl(2 << RCTL.MO_SHIFT)],
    dst: '01:aa:00:12:34:56',
    reason: 'multicast-hash',
  },
  // MO3: 0x5634 & 0xfff = 0x634 = 1588 = 49 * 32 + 20.
  'MO3, 01:aa:00:12:34:56: f = 0x634, MTA[49] bit 20': {
    writes: [mta(49, 20), rctl(3 << RCTL.MO_SHIFT)],
    dst: '01:aa:00:12:34:56',
    reason: 'multicast-hash',
  },
  // SDM §13.5.1: with MO 00, xx:xx:xx:xx:9x:bc gives f = 0xbc9 = 3017 = 94 * 32 + 9, whatever the low nibble x.
  'SDM example, MO0, 01:00:00:00:97:bc: f = 0xbc9, MTA[94] bit 9': {
    writes: [mta(94, 9), rctl(0)],
    dst: '01:00:00:00:97:bc',
    reason: 'multicast-hash',
  },
  'the solicited-node group 33:33:ff:12:34:56 collides with 01:aa:00:12:34:56 (same a4, a5)': {
    writes: [mta(43, 3), rctl(0)],
    dst: '33:33:ff:12:34:56',
    reason: 'multicast-hash',
  },
  'unicast is hashed too (QEMU): 02:00:00:00:34:56 on MTA[43] bit 3': {
    writes: [mta(43, 3), rctl(0)],
    dst: '02:00:00:00:34:56',
    reason: 'unicast-hash',
  },
  // VID 100 = 3 * 32 + 4: VFTA[3] bit 4, offset 0x0560c.
  'VFE, VID 100 in VFTA[3] bit 4: the tagged station frame passes': {
    writes: [...RAR0, [REG.VFTA + 12, 1 << 4], rctl(RCTL.VFE)],
    dst: STATION,
    type: 0x8100,
    tci: 100,
    reason: 'exact',
    entry: 0,
  },
  'VFE, VID 100 not in the VFTA: drop-vlan': {
    writes: [...RAR0, [REG.VFTA + 12, 1 << 5], rctl(RCTL.VFE)],
    dst: STATION,
    type: 0x8100,
    tci: 100,
    reason: 'drop-vlan',
  },
  'VFE clear: any VID passes': { writes: [...RAR0, rctl(0)], dst: STATION, type: 0x8100, tci: 100, reason: 'exact', entry: 0 },
  'the VLAN stage runs before UPE, MPE and BAM': {
    writes: [rctl(RCTL.VFE | RCTL.UPE | RCTL.MPE | RCTL.BAM)],
    dst: 'ff:ff:ff:ff:ff:ff',
    type: 0x8100,
    tci: 7,
    reason: 'drop-vlan',
  },
  'PCP bits do not take part: TCI 0xe064 is VID 100': {
    writes: [...RAR0, [REG.VFTA + 12, 1 << 4], rctl(RCTL.VFE)],
    dst: STATION,
    type: 0x8100,
    tci: 0xe064,
    reason: 'exact',
    entry: 0,
  },
  'CFIEN with RCTL.CFI 0: a tag with CFI set is dropped': {
    writes: [...RAR0, rctl(RCTL.CFIEN)],
    dst: STATION,
    type: 0x8100,
    tci: 0x1064,
    reason: 'drop-cfi',
  },
  'CFIEN with RCTL.CFI 1: a tag with CFI set passes': {
    writes: [...RAR0, rctl(RCTL.CFIEN | RCTL.CFI)],
    dst: STATION,
    type: 0x8100,
    tci: 0x1064,
    reason: 'exact',
    entry: 0,
  },
  'CFIEN with RCTL.CFI 1: a tag with CFI clear is dropped': {
    writes: [...RAR0, rctl(RCTL.CFIEN | RCTL.CFI)],
    dst: STATION,
    type: 0x8100,
    tci: 0x0064,
    reason: 'drop-cfi',
  },
  'VET 0x88a8: an 0x8100 frame is untagged': {
    writes: [...RAR0, [REG.VET, 0x88a8], rctl(RCTL.VFE)],
    dst: STATION,
    type: 0x8100,
    tci: 100,
    reason: 'exact',
    entry: 0,
  },
  'VET 0x88a8: an 0x88a8 frame is filtered': {
    writes: [...RAR0, [REG.VET, 0x88a8], rctl(RCTL.VFE)],
    dst: STATION,
    type: 0x88a8,
    tci: 100,
    reason: 'drop-vlan',
  },
  'VET compares only bits 15:0 (0xffff8100)': {
    writes: [...RAR0, [REG.VET, 0xffff8100], rctl(RCTL.VFE)],
    dst: STATION,
    type: 0x8100,
    tci: 100,
    reason: 'drop-vlan',
  },
  'a 17-byte frame with TPID 0x8100 holds no TCI: untagged': {
    writes: [...RAR0, rctl(RCTL.VFE)],
    dst: STATION,
    length: 17,
    type: 0x8100,
    reason: 'exact',
    entry: 0,
  },
  'an 18-byte frame with TPID 0x8100 is tagged': {
    writes: [...RAR0, rctl(RCTL.VFE)],
    dst: STATION,
    length: 18,
    type: 0x8100,
    tci: 100,
    reason: 'drop-vlan',
  },
  'a 1518-byte frame (a tagged 1500-byte payload) without LPE': {
    writes: [...RAR0, rctl(0)],
    dst: STATION,
    length: 1518,
    reason: 'exact',
    entry: 0,
  },
  'a 1519-byte frame without LPE is oversize': { writes: [...RAR0, rctl(0)], dst: STATION, length: 1519, reason: 'drop-oversize' },
  'RCTL.LPE takes a 1519-byte frame': { writes: [...RAR0, rctl(RCTL.LPE)], dst: STATION, length: 1519, reason: 'exact', entry: 0 },
  'RCTL.LPE takes 16380 bytes (16 KiB less the FCS)': {
    writes: [...RAR0, rctl(RCTL.LPE)],
    dst: STATION,
    length: 16380,
    reason: 'exact',
    entry: 0,
  },
  'RCTL.LPE drops 16381 bytes': { writes: [...RAR0, rctl(RCTL.LPE)], dst: STATION, length: 16381, reason: 'drop-oversize' },
  'RCTL.SBP stores even 16381 bytes': { writes: [...RAR0, rctl(RCTL.SBP)], dst: STATION, length: 16381, reason: 'exact', entry: 0 },
  'the size check comes before RCTL.EN': {
    writes: [...RAR0, [REG.RCTL, 0]],
    dst: STATION,
    length: 1519,
    reason: 'drop-oversize',
  },
  'a 13-byte runt': { writes: [...RAR0, rctl(RCTL.UPE)], dst: STATION, length: 13, reason: 'drop-runt' },
  'CTRL.VME only strips: it does not filter': {
    writes: [...RAR0, [REG.CTRL, 1 << 30], rctl(0)],
    dst: STATION,
    type: 0x8100,
    tci: 100,
    reason: 'exact',
    entry: 0,
  },
};

describe('e1000 profile', () => {
  it.each(Object.entries(VECTORS))('%s', async (_name, v) => {
    const d = await E1000.create();
    const model = new E1000Model();
    for (const [offset, value] of v.writes) {
      d.writeRegister(offset, value);
      model.write(offset, value);
    }
    const f = frame(bytes(v.dst), v.length ?? 64, v.type, v.tci);
    const want =
      v.entry === undefined
        ? { accept: !v.reason.startsWith('drop-'), reason: v.reason }
        : { accept: true, reason: v.reason, entry: v.entry };
    expect(d.accept(f)).toEqual(want);
    // The model agrees with the vector too, so the differential test below compares against a checked oracle.
    expect(model.classify(f)).toEqual(v.entry === undefined ? { reason: v.reason } : { reason: v.reason, entry: v.entry });
    expect(d.counters()[v.reason as keyof ReturnType<typeof d.counters>]).toBe(1);
  });

  const BAD: Record<string, { run: (d: E1000) => unknown; code: string }> = {
    'an unaligned offset': { run: (d) => d.writeRegister(0x5401, 0), code: 'INVALID_REGISTER' },
    'a register outside the filter (TCTL)': { run: (d) => d.writeRegister(0x400, 0), code: 'INVALID_REGISTER' },
    'past the last RAR (RAL16)': { run: (d) => d.writeRegister(0x5480, 0), code: 'INVALID_REGISTER' },
    'a negative offset': { run: (d) => d.readRegister(-4), code: 'INVALID_REGISTER' },
    'a value above 32 bits': { run: (d) => d.writeRegister(REG.RCTL, 2 ** 32), code: 'INVALID_ARGUMENT' },
    'a negative value': { run: (d) => d.writeRegister(REG.RCTL, -1), code: 'INVALID_ARGUMENT' },
    'a fractional value': { run: (d) => d.writeRegister(REG.RCTL, 1.5), code: 'INVALID_ARGUMENT' },
    'RAR index 16': { run: (d) => d.setRAL(16, 0), code: 'INVALID_ARGUMENT' },
    'MTA index 128': { run: (d) => d.setMTA(128, 0), code: 'INVALID_ARGUMENT' },
    'an EUI-64 receive address': { run: (d) => d.setReceiveAddress(1, '02:00:00:ff:fe:00:00:01'), code: 'INVALID_MAC' },
    'a frame that is not bytes': { run: (d) => d.accept('x' as unknown as Uint8Array), code: 'INVALID_ARGUMENT' },
    'a burst above its size': { run: (d) => d.classifyBurst(d.burst + 1), code: 'INVALID_ARGUMENT' },
  };
  it.each(Object.entries(BAD))('refuses %s with a MacslotError', async (_name, { run, code }) => {
    const d = await E1000.create();
    expect(thrownCode(() => run(d))).toBe(code);
  });

  it('reads back what was written, and RAR0 from the EEPROM MAC at reset', async () => {
    const d = await E1000.create({ mac: STATION });
    expect([d.readRegister(REG.RAL), d.readRegister(REG.RAH)]).toEqual([0x12005452, 0x80005634]);
    expect(d.readRegister(REG.VET)).toBe(0x8100);
    d.setMTA(5, 0xdeadbeef);
    expect(d.readRegister(REG.MTA + 20)).toBe(0xdeadbeef);
    expect(E1000.isFilterRegister(REG.VFTA + 508)).toBe(true);
    expect(E1000.isFilterRegister(REG.VFTA + 512)).toBe(false);
  });

  it('a descriptor outside the pool is a counted drop, not a read past it', async () => {
    const d = await E1000.create({ mac: STATION });
    d.descriptors[0] = d.pool.length - 10;
    d.descriptors[1] = 64;
    d.descriptors[2] = 0xffffffff;
    d.descriptors[3] = 2;
    d.classifyBurst(2);
    expect([d.verdicts[0]! & 0xff, d.verdicts[1]! & 0xff].map((id) => id)).toEqual([19, 19]);
    expect(d.counters()['drop-bad-descriptor']).toBe(2);
  });

  it('a Nic programs it as Linux e1000_set_rx_mode does, and it follows the Nic', async () => {
    const nic = new Nic({ primary: STATION, factory: { base: '02:00:00:00:01:00', count: 2 } });
    const client = nic.openClient('guest', { broadcast: true, allowPromiscuous: true });
    client.addressReserve();
    client.multicastJoin('01:00:5e:00:00:fb');
    const d = await E1000.fromNic(nic);
    expect(d.accept(frame(bytes(STATION), 64))).toEqual({ accept: true, reason: 'exact', entry: 0 });
    expect(d.accept(frame(bytes('02:00:00:00:01:00'), 64))).toEqual({ accept: true, reason: 'exact', entry: 1 });
    expect(d.accept(frame(bytes('01:00:5e:00:00:fb'), 64))).toEqual({ accept: true, reason: 'exact', entry: 2 });
    expect(d.accept(frame(bytes('ff:ff:ff:ff:ff:ff'), 64)).reason).toBe('broadcast');
    expect(d.accept(frame(bytes('02:00:00:00:01:01'), 64)).reason).toBe('drop-no-match');
    client.setPromiscuous(true);
    expect(d.accept(frame(bytes('02:00:00:00:01:01'), 64)).reason).toBe('unicast-promiscuous');
    d.close();
    client.setPromiscuous(false);
    // Closed: the registers stay as they were last programmed.
    expect(d.accept(frame(bytes('02:00:00:00:01:01'), 64)).reason).toBe('unicast-promiscuous');
  });

  it('the Wasm burst path agrees with the SDM model on 1,000,000 random frames and register states', { timeout: 300_000 }, async () => {
    const d = await E1000.create();
    const model = new E1000Model();
    const write = (offset: number, value: number): void => {
      d.writeRegister(offset, value >>> 0);
      model.write(offset, value >>> 0);
    };
    const seen = runDifferential({
      profile: d,
      model,
      seed: 0xe1000,
      frames: 1_000_000,
      perState: 1000,
      mutate(rng) {
        const targets: number[][] = [];
        const rctlBits = [RCTL.EN, RCTL.UPE, RCTL.MPE, RCTL.BAM, RCTL.VFE, RCTL.CFIEN, RCTL.CFI, RCTL.LPE, RCTL.SBP].filter((b) =>
          b === EN ? rng() < 0.95 : rng() < 0.3,
        );
        write(REG.RCTL, rctlBits.reduce((a, b) => a | b, 0) | (Math.floor(rng() * 4) << RCTL.MO_SHIFT));
        write(REG.VET, rng() < 0.8 ? 0x8100 : pick(rng, [0x88a8, 0, 0xffff8100, 0x0800]));
        for (let n = 0; n < 16; n++) {
          const mac = randomMac(rng, rng() < 0.3);
          const valid = rng() < 0.6;
          write(REG.RAL + 8 * n, mac[0]! | (mac[1]! << 8) | (mac[2]! << 16) | (mac[3]! << 24));
          write(REG.RAH + 8 * n, mac[4]! | (mac[5]! << 8) | (valid ? 0x80000000 : 0) | (rng() < 0.1 ? 0x00ff0000 : 0));
          targets.push(mac);
        }
        for (let w = 0; w < 128; w++) write(REG.MTA + 4 * w, rng() < 0.1 ? Math.floor(rng() * 2 ** 32) : 0);
        for (let w = 0; w < 128; w++) write(REG.VFTA + 4 * w, rng() < 0.5 ? Math.floor(rng() * 2 ** 32) : 0);
        return targets;
      },
      draw(rng, targets) {
        const dst = randomDestination(rng, targets, 0.4);
        const type = rng() < 0.5 ? pick(rng, [0x8100, 0x88a8, 0x0000]) : 0x0800;
        // Now and then a long frame around the 1518 and 16380 limits (rarely, so a burst still fits the pool).
        const length = rng() < 0.002 ? pick(rng, [1518, 1519, 16380, 16381]) : randomLength(rng);
        return frame(dst, length, type, Math.floor(rng() * 65536));
      },
    });
    // Every stage decided some frames, so no branch went untested.
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
      'drop-oversize',
    ])
      expect(seen.get(reason) ?? 0, reason).toBeGreaterThan(100);
  });
});
