// Plain TypeScript models of four receive filters, written from the datasheets (8254x SDM, 82599/82598 datasheets,
// DP8390/RTL8029) and QEMU's virtio-net receive_filter, as the oracles of the device profiles' Wasm path. They share no
// code with src/: registers are decoded here from their offsets, the hashes computed the way each document states them.
import { crc32 } from 'node:zlib';

/** A verdict as the profiles report it. */
export interface ModelVerdict {
  readonly reason: string;
  readonly entry?: number;
}

/** A deterministic PRNG (mulberry32), so every run draws the same frames and register states. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const be16 = (f: Uint8Array, at: number): number => (f[at]! << 8) | f[at + 1]!;
const isBroadcast = (f: Uint8Array): boolean => f.subarray(0, 6).every((b) => b === 0xff);
const sameAddress = (f: Uint8Array, mac: readonly number[]): boolean => mac.every((b, i) => f[i] === b);

/** The 48-bit destination as a number whose bits 7:0 are a0 (the first byte on the wire), as Intel numbers them. */
function intelBits(f: Uint8Array): number {
  let v = 0;
  for (let i = 5; i >= 0; i--) v = v * 256 + f[i]!;
  return v;
}

/** SDM §3.2.1: MO 0..3 take destination bits 47:36, 46:35, 45:34, 43:32. */
function intelVector(f: Uint8Array, mo: number): number {
  const low = [36, 35, 34, 32][mo & 3]!;
  return Math.floor(intelBits(f) / 2 ** low) % 4096;
}

const tableBit = (words: (i: number) => number, v: number): boolean => ((words(v >>> 5) >>> (v & 31)) & 1) === 1;

/** Register file of an Intel device: unwritten registers read as their reset value. */
class Registers {
  readonly #r = new Map<number, number>();
  readonly #resets: ReadonlyMap<number, number>;
  constructor(resets: readonly (readonly [number, number])[]) {
    this.#resets = new Map(resets);
  }
  write(offset: number, value: number): void {
    this.#r.set(offset, value >>> 0);
  }
  read(offset: number): number {
    return this.#r.get(offset) ?? this.#resets.get(offset) ?? 0;
  }
}

/** 8254x SDM: tag when bytes 12-13 equal the TPID and the frame holds the TCI; CFI rule with CFIEN, VFTA with VFE. */
function intelVlan(
  f: Uint8Array,
  tpid: number,
  cfien: boolean,
  cfi: boolean,
  vfe: boolean,
  vfta: (w: number) => number,
): string | undefined {
  if (f.length < 18 || be16(f, 12) !== tpid) return undefined;
  const tci = be16(f, 14);
  if (cfien && ((tci & 0x1000) !== 0) !== cfi) return 'drop-cfi';
  if (vfe && !tableBit(vfta, tci & 0xfff)) return 'drop-vlan';
  return undefined;
}

/** e1000 (8254x), with QEMU's order and hashing of every destination class. */
export class E1000Model {
  readonly regs = new Registers([[0x38, 0x8100]]);
  write(offset: number, value: number): void {
    this.regs.write(offset, value);
  }
  classify(f: Uint8Array): ModelVerdict {
    const r = this.regs;
    if (f.length < 14) return { reason: 'drop-runt' };
    const rctl = r.read(0x100);
    const bit = (n: number): boolean => ((rctl >>> n) & 1) === 1;
    // e1000x_is_oversized: 14 + 4 + 1500 bytes without LPE (bit 5), 16 KiB - 4 with it; SBP (bit 2) stores anything.
    if (!bit(2) && f.length > (bit(5) ? 16384 - 4 : 14 + 4 + 1500)) return { reason: 'drop-oversize' };
    if (!bit(1)) return { reason: 'drop-disabled' };
    const vlan = intelVlan(f, r.read(0x38) & 0xffff, bit(19), bit(20), bit(18), (w) => r.read(0x5600 + 4 * w));
    if (vlan !== undefined) return { reason: vlan };
    const group = (f[0]! & 1) === 1;
    if (isBroadcast(f)) {
      if (bit(15)) return { reason: 'broadcast' };
    } else if (group) {
      if (bit(4)) return { reason: 'multicast-promiscuous' };
    } else if (bit(3)) return { reason: 'unicast-promiscuous' };
    for (let n = 0; n < 16; n++) {
      const rah = r.read(0x5404 + 8 * n);
      const ral = r.read(0x5400 + 8 * n);
      if (rah >>> 31 === 1 && sameAddress(f, [ral & 255, (ral >>> 8) & 255, (ral >>> 16) & 255, ral >>> 24, rah & 255, (rah >>> 8) & 255]))
        return { reason: 'exact', entry: n };
    }
    if (tableBit((w) => r.read(0x5200 + 4 * w), intelVector(f, (rctl >>> 12) & 3)))
      return { reason: group ? 'multicast-hash' : 'unicast-hash' };
    return { reason: 'drop-no-match' };
  }
}

/** ixgbe (82599): L2 pass, then VLAN; undersize frames need FCTRL.SBP. */
export class IxgbeModel {
  readonly regs = new Registers([[0x5088, 0x8100]]);
  write(offset: number, value: number): void {
    // RAR 0..15 also answer at 0x0A200 + 8n; keep one copy, under the 0x05400 name.
    this.regs.write(offset >= 0xa200 && offset < 0xa280 ? offset - 0xa200 + 0x5400 : offset, value);
  }
  static ral(n: number): number {
    return n < 16 ? 0x5400 + 8 * n : 0xa200 + 8 * n;
  }
  classify(f: Uint8Array): ModelVerdict {
    const r = this.regs;
    const fctrl = r.read(0x5080);
    if (f.length < 14 || (f.length < 60 && (fctrl & 2) === 0)) return { reason: 'drop-runt' };
    if ((r.read(0x3000) & 1) === 0) return { reason: 'drop-disabled' };
    const mcst = r.read(0x5090);
    const group = (f[0]! & 1) === 1;
    let pass: ModelVerdict | undefined;
    // RAL holds bytes 0..3 little-endian, RAH bytes 4..5; compare them as the two words the frame's first six bytes make.
    const lo = (f[0]! | (f[1]! << 8) | (f[2]! << 16) | (f[3]! << 24)) >>> 0;
    const hi = f[4]! | (f[5]! << 8);
    for (let n = 0; n < 128 && pass === undefined; n++) {
      const rah = r.read(IxgbeModel.ral(n) + 4);
      if (rah >>> 31 === 1 && (rah & 0xffff) === hi && r.read(IxgbeModel.ral(n)) === lo) pass = { reason: 'exact', entry: n };
    }
    if (pass === undefined) {
      if (isBroadcast(f)) {
        if ((fctrl & (1 << 10)) !== 0) pass = { reason: 'broadcast' };
      } else if (group) {
        if ((fctrl & (1 << 8)) !== 0) pass = { reason: 'multicast-promiscuous' };
        else if ((mcst & 4) !== 0 && tableBit((w) => r.read(0x5200 + 4 * w), intelVector(f, mcst & 3))) pass = { reason: 'multicast-hash' };
      } else if ((fctrl & (1 << 9)) !== 0) pass = { reason: 'unicast-promiscuous' };
      else if ((r.read(0x51b0) & 1) !== 0 && (r.read(0xf000) & (1 << 26)) !== 0) {
        if (tableBit((w) => r.read(0xf400 + 4 * w), intelVector(f, mcst & 3))) pass = { reason: 'unicast-hash' };
      }
    }
    if (pass === undefined) return { reason: 'drop-no-match' };
    const v = r.read(0x5088);
    const vlan = intelVlan(f, v & 0xffff, (v & (1 << 29)) !== 0, (v & (1 << 28)) !== 0, (v & (1 << 30)) !== 0, (w) =>
      r.read(0xa000 + 4 * w),
    );
    return vlan !== undefined ? { reason: vlan } : pass;
  }
}

/** Reverses the 32 bits of a word. */
function bitrev32(x: number): number {
  let r = 0;
  for (let i = 0; i < 32; i++) r = (r << 1) | ((x >>> i) & 1);
  return r >>> 0;
}

/** DP8390: the hash index is the top 6 bits of the CRC register after the destination; zlib's CRC is its inverted reflection. */
export function dp8390Index(da: Uint8Array): number {
  return bitrev32((crc32(da) ^ 0xffffffff) >>> 0) >>> 26;
}

/** NE2000 (DP8390 datasheet semantics): I/O offsets 0x00-0x0F with CR's page select. */
export class Ne2kModel {
  cr = 0x21;
  rcr = 0;
  readonly par = new Uint8Array(6);
  readonly mar = new Uint8Array(8);
  write(offset: number, value: number): void {
    const page = this.cr >> 6;
    if (offset === 0) this.cr = value;
    else if (page === 0 && offset === 0x0c) this.rcr = value;
    else if (page === 1 && offset >= 1 && offset <= 6) this.par[offset - 1] = value;
    else if (page === 1 && offset >= 8) this.mar[offset - 8] = value;
  }
  classify(f: Uint8Array): ModelVerdict {
    const rcr = this.rcr;
    if (f.length < 14 || (f.length < 60 && (rcr & 2) === 0)) return { reason: 'drop-runt' };
    if ((this.cr & 1) !== 0) return { reason: 'drop-disabled' };
    if ((rcr & 0x20) !== 0) return { reason: 'drop-monitor' };
    if (isBroadcast(f)) return { reason: (rcr & 4) !== 0 ? 'broadcast' : 'drop-broadcast' };
    if ((f[0]! & 1) === 1) {
      const k = dp8390Index(f.subarray(0, 6));
      return (rcr & 8) !== 0 && ((this.mar[k >> 3]! >> (k & 7)) & 1) === 1 ? { reason: 'multicast-hash' } : { reason: 'drop-no-match' };
    }
    if ((rcr & 0x10) !== 0) return { reason: 'promiscuous' };
    return sameAddress(f, [...this.par]) ? { reason: 'exact', entry: 0 } : { reason: 'drop-no-match' };
  }
}

/** virtio-net as QEMU's receive_filter decides, with its control commands (virtio_net_handle_rx_mode/mac/vlan_table). */
export class VirtioModel {
  mac: number[];
  readonly modes = new Set<number>([0]);
  macs: number[][] = [];
  firstMulti = 0;
  uniOverflow = false;
  multiOverflow = false;
  readonly vlans = new Uint32Array(128);
  constructor(mac: readonly number[]) {
    this.mac = [...mac];
  }
  control(cls: number, cmd: number, data: Uint8Array): number {
    if (cls === 0) {
      if (cmd > 5 || data.length !== 1) return 1;
      if (data[0] !== 0) this.modes.add(cmd);
      else this.modes.delete(cmd);
      return 0;
    }
    if (cls === 1 && cmd === 1) {
      if (data.length !== 6) return 1;
      this.mac = [...data];
      return 0;
    }
    if (cls === 1 && cmd === 0) {
      const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
      if (data.length < 4) return 1;
      const n = dv.getUint32(0, true);
      if (4 + 6 * n + 4 > data.length) return 1;
      const m = dv.getUint32(4 + 6 * n, true);
      if (8 + 6 * n + 6 * m !== data.length) return 1;
      const entries = (at: number, count: number): number[][] =>
        Array.from({ length: count }, (_, i) => [...data.subarray(at + 6 * i, at + 6 * i + 6)]);
      this.uniOverflow = n > 64;
      this.macs = this.uniOverflow ? [] : entries(4, n);
      this.firstMulti = this.macs.length;
      this.multiOverflow = m > 64 - this.macs.length;
      if (!this.multiOverflow) this.macs.push(...entries(8 + 6 * n, m));
      return 0;
    }
    if (cls === 2 && cmd <= 1) {
      if (data.length !== 2) return 1;
      const vid = data[0]! | (data[1]! << 8);
      if (vid >= 4096) return 1;
      if (cmd === 0) this.vlans[vid >> 5]! |= 1 << (vid & 31);
      else this.vlans[vid >> 5]! &= ~(1 << (vid & 31));
      return 0;
    }
    return 1;
  }
  classify(f: Uint8Array): ModelVerdict {
    if (f.length < 14) return { reason: 'drop-runt' };
    const on = (cmd: number): boolean => this.modes.has(cmd);
    if (on(0)) return { reason: 'promiscuous' };
    if (f.length >= 18 && be16(f, 12) === 0x8100) {
      const vid = be16(f, 14) & 0xfff;
      if (((this.vlans[vid >> 5]! >>> (vid & 31)) & 1) === 0) return { reason: 'drop-vlan' };
    }
    const find = (from: number, to: number): number => {
      for (let i = from; i < to; i++) if (sameAddress(f, this.macs[i]!)) return i;
      return -1;
    };
    if ((f[0]! & 1) === 1) {
      if (isBroadcast(f)) return { reason: on(5) ? 'drop-broadcast' : 'broadcast' };
      if (on(3)) return { reason: 'drop-nomulti' };
      if (on(1)) return { reason: 'multicast-promiscuous' };
      if (this.multiOverflow) return { reason: 'multicast-overflow' };
      const i = find(this.firstMulti, this.macs.length);
      return i >= 0 ? { reason: 'exact', entry: i } : { reason: 'drop-no-match' };
    }
    if (on(4)) return { reason: 'drop-nouni' };
    if (on(2)) return { reason: 'unicast-promiscuous' };
    if (this.uniOverflow) return { reason: 'unicast-overflow' };
    if (sameAddress(f, this.mac)) return { reason: 'primary' };
    const i = find(0, this.firstMulti);
    return i >= 0 ? { reason: 'exact', entry: i } : { reason: 'drop-no-match' };
  }
}

/** Builds a frame: destination, a source, EtherType or TPID at 12-13, optional TCI, padded with zeros to `length`. */
export function frame(dst: readonly number[] | Uint8Array, length: number, type = 0x0800, tci?: number): Uint8Array {
  const f = new Uint8Array(length);
  const head = new Uint8Array(18);
  head.set(dst, 0);
  head.set([0x02, 0, 0, 0, 0, 0x99], 6);
  head[12] = type >> 8;
  head[13] = type & 0xff;
  if (tci !== undefined) {
    head[14] = tci >> 8;
    head[15] = tci & 0xff;
  }
  f.set(head.subarray(0, Math.min(length, 18)), 0);
  return f;
}

/** Parses aa:bb:cc:dd:ee:ff into bytes. */
export function bytes(mac: string): number[] {
  return mac.split(':').map((h) => Number.parseInt(h, 16));
}
