// The ne2k (DP8390) profile: a named vector per register combination, with MAR positions from the CRC-32 derivation,
// then the Wasm burst path against a plain model written from the DP8390 datasheet over a million random frames and states.
import { describe, expect, it } from 'vitest';
import { NE2K_BITS as B, Ne2k, Nic, etherCrc, marIndex } from 'macslot';
import { Ne2kModel, bytes, dp8390Index, frame } from './support/device-models.js';
import { randomLength, randomMac, runDifferential, randomDestination } from './support/device-diff.js';
import { thrownCode } from './support/errors.js';

const STATION = '00:00:e8:12:34:56';
type Write = readonly [number, number];

// CR: STA (bit 1) or STP (bit 0), remote DMA abort (0x20), page in bits 7:6.
const PAGE0_START: Write = [0x00, 0x22];
const PAGE1_STOP: Write = [0x00, 0x61];
const PAR: readonly Write[] = [PAGE1_STOP, ...bytes(STATION).map((b, i): Write => [0x01 + i, b])];
const rcr = (bits: number): readonly Write[] => [PAGE0_START, [0x0c, bits]];
const mar = (i: number, v: number): readonly Write[] => [PAGE1_STOP, [0x08 + i, v]];

// The CRC register after the six address bytes (polynomial 0x04C11DB7, preset ones, bits LSB first, no inversion), and
// its top six bits k: MAR byte k >> 3, bit k & 7.
const HASHES: Record<string, { crc: number; k: number }> = {
  '01:00:5e:00:00:01': { crc: 0x7fa32d9b, k: 31 },
  '01:00:5e:00:00:fb': { crc: 0x3f7b3b21, k: 15 },
  '33:33:00:00:00:01': { crc: 0xf99baaba, k: 62 },
  '33:33:ff:12:34:56': { crc: 0x0bf9eb4b, k: 2 },
  '01:aa:00:12:34:56': { crc: 0x675e6e99, k: 25 },
  'ff:ff:ff:ff:ff:ff': { crc: 0xff48647d, k: 63 },
};

interface Vector {
  readonly writes: readonly Write[];
  readonly dst: string;
  readonly length?: number;
  readonly reason: string;
  readonly entry?: number;
}

const VECTORS: Record<string, Vector> = {
  'reset: CR.STP drops even the station address': { writes: PAR, dst: STATION, reason: 'drop-disabled' },
  'started: unicast equal to PAR0-5': { writes: [...PAR, ...rcr(0)], dst: STATION, reason: 'exact', entry: 0 },
  'unicast different from PAR': { writes: [...PAR, ...rcr(0)], dst: '00:00:e8:12:34:57', reason: 'drop-no-match' },
  'PRO accepts any physical address': { writes: [...PAR, ...rcr(B.RCR_PRO)], dst: '02:99:00:00:00:01', reason: 'promiscuous' },
  'PRO does not admit a group address without AM': {
    writes: [...PAR, ...rcr(B.RCR_PRO)],
    dst: '01:00:5e:00:00:01',
    reason: 'drop-no-match',
  },
  'PRO does not admit broadcast without AB': { writes: [...rcr(B.RCR_PRO)], dst: 'ff:ff:ff:ff:ff:ff', reason: 'drop-broadcast' },
  'AB accepts broadcast': { writes: [...rcr(B.RCR_AB)], dst: 'ff:ff:ff:ff:ff:ff', reason: 'broadcast' },
  'AB clear rejects broadcast even with AM and MAR7 bit 7 (k = 63)': {
    writes: [...mar(7, 0x80), ...rcr(B.RCR_AM)],
    dst: 'ff:ff:ff:ff:ff:ff',
    reason: 'drop-broadcast',
  },
  'AM, 01:00:5e:00:00:01: k = 31, MAR3 bit 7': {
    writes: [...mar(3, 0x80), ...rcr(B.RCR_AM)],
    dst: '01:00:5e:00:00:01',
    reason: 'multicast-hash',
  },
  'AM, 01:00:5e:00:00:01 with only MAR3 bit 6': {
    writes: [...mar(3, 0x40), ...rcr(B.RCR_AM)],
    dst: '01:00:5e:00:00:01',
    reason: 'drop-no-match',
  },
  'AM clear: MAR3 bit 7 is not consulted': { writes: [...mar(3, 0x80), ...rcr(0)], dst: '01:00:5e:00:00:01', reason: 'drop-no-match' },
  'AM, 01:00:5e:00:00:fb: k = 15, MAR1 bit 7': {
    writes: [...mar(1, 0x80), ...rcr(B.RCR_AM)],
    dst: '01:00:5e:00:00:fb',
    reason: 'multicast-hash',
  },
  'AM, 33:33:00:00:00:01: k = 62, MAR7 bit 6': {
    writes: [...mar(7, 0x40), ...rcr(B.RCR_AM)],
    dst: '33:33:00:00:00:01',
    reason: 'multicast-hash',
  },
  'AM, 33:33:ff:12:34:56: k = 2, MAR0 bit 2': {
    writes: [...mar(0, 0x04), ...rcr(B.RCR_AM)],
    dst: '33:33:ff:12:34:56',
    reason: 'multicast-hash',
  },
  'AM, 01:aa:00:12:34:56: k = 25, MAR3 bit 1': {
    writes: [...mar(3, 0x02), ...rcr(B.RCR_AM)],
    dst: '01:aa:00:12:34:56',
    reason: 'multicast-hash',
  },
  'a 59-byte frame without AR is a runt': { writes: [...PAR, ...rcr(0)], dst: STATION, length: 59, reason: 'drop-runt' },
  'RCR.AR accepts it': { writes: [...PAR, ...rcr(B.RCR_AR)], dst: STATION, length: 59, reason: 'exact', entry: 0 },
  'a 13-byte frame even with AR': { writes: [...PAR, ...rcr(B.RCR_AR)], dst: STATION, length: 13, reason: 'drop-runt' },
  'MON checks but never buffers': { writes: [...PAR, ...rcr(B.RCR_MON)], dst: STATION, reason: 'drop-monitor' },
  'offset 0x0C on page 1 is MAR4, not RCR': {
    writes: [...PAR, ...rcr(0), PAGE1_STOP, [0x0c, B.RCR_PRO], PAGE0_START],
    dst: '02:99:00:00:00:01',
    reason: 'drop-no-match',
  },
  'offsets 0x01-0x06 on page 0 are the DMA registers, not PAR': {
    writes: [...PAR, ...rcr(0), [0x01, 0xff]],
    dst: STATION,
    reason: 'exact',
    entry: 0,
  },
};

describe('ne2k profile', () => {
  it.each(Object.entries(HASHES))('CRC of %s', (dst, { crc, k }) => {
    expect(etherCrc(Uint8Array.from(bytes(dst)))).toBe(crc);
    expect(marIndex(dst)).toBe(k);
    expect(dp8390Index(Uint8Array.from(bytes(dst)))).toBe(k);
  });

  it('the CRC register over a frame and its FCS ends at the residue 0xC704DD7B', () => {
    const f = frame(bytes(STATION), 60);
    const crc = etherCrc(f);
    // The FCS is the inverted register, sent most significant bit first: as bytes, each bit-reversed, lowest byte last.
    const fcs = new Uint8Array(4);
    for (let i = 0; i < 4; i++) {
      let b = (~crc >>> (24 - 8 * i)) & 0xff;
      let r = 0;
      for (let j = 0; j < 8; j++, b >>= 1) r = (r << 1) | (b & 1);
      fcs[i] = r;
    }
    const whole = new Uint8Array(64);
    whole.set(f);
    whole.set(fcs, 60);
    expect(etherCrc(whole)).toBe(0xc704dd7b);
  });

  it.each(Object.entries(VECTORS))('%s', async (_name, v) => {
    const d = await Ne2k.create();
    const model = new Ne2kModel();
    for (const [offset, value] of v.writes) {
      d.writeRegister(offset, value);
      model.write(offset, value);
    }
    const f = frame(bytes(v.dst), v.length ?? 64);
    const want = v.entry === undefined ? { reason: v.reason } : { reason: v.reason, entry: v.entry };
    expect(d.accept(f)).toEqual({ accept: !v.reason.startsWith('drop-'), ...want });
    expect(model.classify(f)).toEqual(want);
  });

  const BAD: Record<string, { run: (d: Ne2k) => unknown; code: string }> = {
    'the data port 0x10': { run: (d) => d.writeRegister(0x10, 0), code: 'INVALID_REGISTER' },
    'the reset port 0x1F': { run: (d) => d.writeRegister(0x1f, 0), code: 'INVALID_REGISTER' },
    'a value above 8 bits': { run: (d) => d.writeRegister(0x0c, 0x100), code: 'INVALID_ARGUMENT' },
    'PAR index 6': { run: (d) => d.setPAR(6, 0), code: 'INVALID_ARGUMENT' },
    'MAR index 8': { run: (d) => d.setMAR(8, 0), code: 'INVALID_ARGUMENT' },
  };
  it.each(Object.entries(BAD))('refuses %s with a MacslotError', async (_name, { run, code }) => {
    const d = await Ne2k.create();
    expect(thrownCode(() => run(d))).toBe(code);
  });

  it('the typed setters keep the page the guest selected', async () => {
    const d = await Ne2k.create({ mac: STATION });
    d.setCR(0x62);
    d.setRCR(B.RCR_AB);
    expect([d.cr, d.rcr, d.par.toString()]).toEqual([0x62, B.RCR_AB, STATION]);
  });

  it('a Nic programs it as Linux 8390 does: PAR, MAR from the CRC hash, PRO for a second unicast address', async () => {
    const nic = new Nic({ primary: STATION, factory: { base: '02:00:00:00:02:00', count: 1 } });
    const d = await Ne2k.fromNic(nic);
    expect(d.accept(frame(bytes(STATION), 64))).toEqual({ accept: true, reason: 'exact', entry: 0 });
    nic.primaryClient.multicastJoin('01:00:5e:00:00:01');
    expect(d.mar[3]).toBe(0x80);
    expect(d.accept(frame(bytes('01:00:5e:00:00:01'), 64)).reason).toBe('multicast-hash');
    const c = nic.openClient('second');
    c.addressReserve();
    expect(d.accept(frame(bytes('02:00:00:00:02:00'), 64)).reason).toBe('promiscuous');
    d.close();
  });

  it('the Wasm burst path agrees with the DP8390 model on 1,000,000 random frames and register states', { timeout: 300_000 }, async () => {
    const d = await Ne2k.create();
    const model = new Ne2kModel();
    const write = (offset: number, value: number): void => {
      d.writeRegister(offset, value);
      model.write(offset, value);
    };
    const seen = runDifferential({
      profile: d,
      model,
      seed: 0x8390,
      frames: 1_000_000,
      perState: 1000,
      mutate(rng) {
        const station = randomMac(rng, false);
        const groups = Array.from({ length: 4 }, () => randomMac(rng, true));
        write(0x00, 0x61);
        station.forEach((b, i) => write(0x01 + i, b));
        // Set the MAR bits of some groups, plus random bits.
        const m = Array.from({ length: 8 }, () => (rng() < 0.2 ? Math.floor(rng() * 256) : 0));
        for (const g of groups.slice(0, 2)) {
          const k = dp8390Index(Uint8Array.from(g));
          m[k >> 3]! |= 1 << (k & 7);
        }
        m.forEach((v, i) => write(0x08 + i, v));
        write(0x00, 0x21);
        write(
          0x0c,
          [B.RCR_AR, B.RCR_AB, B.RCR_AM, B.RCR_PRO, B.RCR_MON]
            .filter((b) => rng() < (b === B.RCR_MON ? 0.1 : 0.4))
            .reduce((a, b) => a | b, 0),
        );
        // Sometimes a stray write on another page, which must change nothing.
        if (rng() < 0.3) {
          write(0x00, 0xa1);
          write(Math.floor(rng() * 16), Math.floor(rng() * 256));
        }
        write(0x00, rng() < 0.95 ? 0x22 : 0x21);
        return [station, ...groups];
      },
      draw(rng, targets) {
        const dst = randomDestination(rng, targets, 0.5);
        return frame(dst, randomLength(rng));
      },
    });
    for (const reason of [
      'exact',
      'broadcast',
      'multicast-hash',
      'promiscuous',
      'drop-no-match',
      'drop-broadcast',
      'drop-monitor',
      'drop-disabled',
      'drop-runt',
    ])
      expect(seen.get(reason) ?? 0, reason).toBeGreaterThan(100);
  });
});
