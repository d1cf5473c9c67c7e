// Device filters: the Intel 8254x (e1000) receive filter, as the Software Developer's Manual defines it and QEMU models it:
// 16 receive address registers, the 4096-bit multicast table array with RCTL.MO, RCTL.UPE/MPE/BAM, and the VLAN filter
// table with RCTL.VFE and the CFI rule.

import type { Nic } from '../nic/nic.js';
import type { MacLike } from '../wire/mac.js';
import { badRegister, checkValue, DeviceFilter, type ExactEntry, FLAG, KIND, mac48, type StageState } from './engine.js';
import type { NicFilterRequest } from './from-nic.js';
import { mtaVector, packRah, packRal, unpackRar } from './hash.js';

/** e1000 register offsets in BAR0 (bytes), with the datasheet's names. Arrays give the offset of entry 0. */
export const E1000_REGISTERS = {
  /** Device control; VME (bit 30) only strips tags, it plays no part in filtering. */
  CTRL: 0x00000,
  /** VLAN EtherType, bits 15:0. */
  VET: 0x00038,
  /** Receive control. */
  RCTL: 0x00100,
  /** Multicast table array, 128 words. */
  MTA: 0x05200,
  /** Receive address low, entry n at 0x05400 + 8n. */
  RAL: 0x05400,
  /** Receive address high, entry n at 0x05404 + 8n. */
  RAH: 0x05404,
  /** VLAN filter table array, 128 words. */
  VFTA: 0x05600,
} as const;

/** RCTL bits. MO is the 2-bit field at bits 13:12. */
export const E1000_RCTL = {
  /** Receiver Enable. */
  EN: 1 << 1,
  /** Store Bad Packets (runts and errored frames are kept). */
  SBP: 1 << 2,
  /** Unicast Promiscuous Enable. */
  UPE: 1 << 3,
  /** Multicast Promiscuous Enable. */
  MPE: 1 << 4,
  /** Long Packet Enable (frames up to 16,380 bytes). */
  LPE: 1 << 5,
  /** Shift of the two-bit Multicast Offset field, which picks the destination bits that index the MTA. */
  MO_SHIFT: 12,
  /** Broadcast Accept Mode. */
  BAM: 1 << 15,
  /** VLAN Filter Enable (the VFTA applies to tagged frames). */
  VFE: 1 << 18,
  /** Canonical Form Indicator Enable: tagged frames must carry the CFI value below. */
  CFIEN: 1 << 19,
  /** The Canonical Form Indicator value tagged frames must carry when CFIEN is set. */
  CFI: 1 << 20,
} as const;

/** RAH Address Valid. */
export const E1000_RAH_AV = 0x80000000;
/** Receive address registers on the 8254x. */
export const E1000_RAR_COUNT = 16;

/** Options of an e1000 profile. */
export interface E1000Options {
  /** The EEPROM's MAC: at reset the device loads it into RAR0 with Address Valid, as QEMU does. Default: RAR0 empty. */
  mac?: MacLike;
}

const R = E1000_REGISTERS;

/**
 * One e1000 (8254x) receive filter. Forward the guest's writes to the filter registers with `writeRegister` (or use the
 * typed setters), then classify frames with `accept` or the burst path. Check order: size (over 1518 bytes without
 * RCTL.LPE, over 16380 with it, unless RCTL.SBP); RCTL.EN; VLAN (tag = bytes 12-13
 * equal to VET, in a frame of at least 18 bytes): CFI rule with RCTL.CFIEN, VFTA with RCTL.VFE; then BAM for broadcast,
 * MPE for other group addresses, UPE for unicast; then the RARs with AV; then the MTA bit, for every class of destination.
 */
export class E1000 extends DeviceFilter {
  readonly #ral = new Uint32Array(E1000_RAR_COUNT);
  readonly #rah = new Uint32Array(E1000_RAR_COUNT);
  #rctl = 0;
  #vet = 0x8100;
  #ctrl = 0;

  private constructor(engine: Awaited<ReturnType<typeof DeviceFilter.engine>>) {
    super(engine, KIND.e1000);
  }

  /** Creates the filter in its reset state: RCTL 0 (receiver off), VET 0x8100, tables clear, RAR0 from `options.mac`. */
  static async create(options: E1000Options = {}): Promise<E1000> {
    const d = new E1000(await DeviceFilter.engine());
    if (options.mac !== undefined) d.setReceiveAddress(0, options.mac);
    return d;
  }

  /**
   * Creates an e1000 whose registers `nic` programs as Linux's e1000_set_rx_mode does, now and after every change: RAR0
   * the primary, further unicast then multicast addresses in RAR1..14 (RAR15 is left to manageability), the remaining
   * groups in the MTA (MO 0), UPE when unicast does not fit or a client is promiscuous, MPE for all-multicast, BAM when
   * a client takes broadcast, then RCTL.EN. `close()` stops following the Nic.
   */
  static async fromNic(nic: Nic): Promise<E1000> {
    const d = await E1000.create();
    d.follow(nic, (req) => d.#program(req));
    return d;
  }

  /** True when `offset` is a register this profile models (others belong to the rest of the device). */
  static isFilterRegister(offset: number): boolean {
    return decodeOffset(offset) !== undefined;
  }

  /**
   * Writes a 32-bit register at byte `offset` of BAR0. Throws INVALID_REGISTER for an offset that is not a receive-filter
   * register (unaligned, or another part of the device), INVALID_ARGUMENT for a value outside 0..2^32-1.
   */
  writeRegister(offset: number, value: number): void {
    const reg = decodeOffset(offset);
    if (reg === undefined) throw badRegister('e1000', offset);
    checkValue(value, 0xffffffff, `register 0x${offset.toString(16)} value`);
    switch (reg.name) {
      case 'CTRL':
        this.#ctrl = value;
        return;
      case 'VET':
        this.#vet = value;
        break;
      case 'RCTL':
        this.#rctl = value;
        break;
      case 'MTA':
        this.mtaWords[reg.index] = value;
        break;
      case 'VFTA':
        this.vftaWords[reg.index] = value;
        break;
      case 'RAL':
        this.#ral[reg.index] = value;
        break;
      case 'RAH':
        this.#rah[reg.index] = value;
        break;
    }
    this.changed();
  }

  /** Reads back a register written with writeRegister (its reset value otherwise). Throws as writeRegister does. */
  readRegister(offset: number): number {
    const reg = decodeOffset(offset);
    if (reg === undefined) throw badRegister('e1000', offset);
    switch (reg.name) {
      case 'CTRL':
        return this.#ctrl;
      case 'VET':
        return this.#vet;
      case 'RCTL':
        return this.#rctl;
      case 'MTA':
        return this.mtaWords[reg.index]!;
      case 'VFTA':
        return this.vftaWords[reg.index]!;
      case 'RAL':
        return this.#ral[reg.index]!;
      case 'RAH':
        return this.#rah[reg.index]!;
    }
  }

  /** Writes RCTL. */
  setRCTL(value: number): void {
    this.writeRegister(R.RCTL, value);
  }

  /** Writes VET. */
  setVET(value: number): void {
    this.writeRegister(R.VET, value);
  }

  /** Writes RAL[n] (n = 0..15). */
  setRAL(n: number, value: number): void {
    this.writeRegister(R.RAL + 8 * checkValue(n, E1000_RAR_COUNT - 1, 'RAR index'), value);
  }

  /** Writes RAH[n] (n = 0..15). */
  setRAH(n: number, value: number): void {
    this.writeRegister(R.RAH + 8 * checkValue(n, E1000_RAR_COUNT - 1, 'RAR index'), value);
  }

  /** Writes MTA[w] (w = 0..127). */
  setMTA(w: number, value: number): void {
    this.writeRegister(R.MTA + 4 * checkValue(w, 127, 'MTA index'), value);
  }

  /** Writes VFTA[w] (w = 0..127). */
  setVFTA(w: number, value: number): void {
    this.writeRegister(R.VFTA + 4 * checkValue(w, 127, 'VFTA index'), value);
  }

  /** Writes RAL[n] then RAH[n] for `mac`, as drivers do (RAH last, so AV turns on with the whole address in place). */
  setReceiveAddress(n: number, mac: MacLike, valid = true): void {
    const m = mac48(mac, 'receive address');
    this.setRAL(n, packRal(m));
    this.setRAH(n, packRah(m, valid));
  }

  protected stageState(): StageState {
    const r = this.#rctl;
    const bit = (mask: number, flag: number): number => ((r & mask) !== 0 ? flag : 0);
    return {
      flags:
        bit(E1000_RCTL.EN, FLAG.ENABLED) |
        bit(E1000_RCTL.UPE, FLAG.UPE) |
        bit(E1000_RCTL.MPE, FLAG.MPE) |
        bit(E1000_RCTL.BAM, FLAG.BAM) |
        bit(E1000_RCTL.VFE, FLAG.VFE) |
        bit(E1000_RCTL.CFIEN, FLAG.CFIEN) |
        bit(E1000_RCTL.CFI, FLAG.CFI),
      mo: (r >>> E1000_RCTL.MO_SHIFT) & 3,
      vet: this.#vet & 0xffff,
      minLength: 14,
      // Past 1518 bytes (a tagged 1500-byte payload) without LPE, or 16 KiB less the FCS with it, unless SBP.
      ...((r & E1000_RCTL.SBP) !== 0 ? {} : { maxLength: (r & E1000_RCTL.LPE) !== 0 ? 16380 : 1518 }),
      primary: undefined,
    };
  }

  protected *exactEntries(): Iterable<ExactEntry> {
    for (let n = 0; n < E1000_RAR_COUNT; n++)
      if ((this.#rah[n]! & E1000_RAH_AV) !== 0) yield { mac: unpackRar(this.#ral[n]!, this.#rah[n]!), multi: false, entry: n };
  }

  #program(req: NicFilterRequest): void {
    const spare = E1000_RAR_COUNT - 1;
    const uniFits = req.unicast.length <= spare;
    const inRar = [...(uniFits ? req.unicast : req.unicast.slice(0, 1)), ...req.groups].slice(0, spare);
    for (let n = 0; n < spare; n++) {
      const mac = inRar[n];
      if (mac === undefined) {
        this.setRAH(n, 0);
        this.setRAL(n, 0);
      } else this.setReceiveAddress(n, mac);
    }
    const mta = new Uint32Array(128);
    for (const g of req.groups.slice(Math.max(0, spare - (uniFits ? req.unicast.length : 1)))) {
      const v = mtaVector(g, 0);
      mta[v >>> 5]! |= 1 << (v & 31);
    }
    mta.forEach((word, w) => this.setMTA(w, word >>> 0));
    const upe = req.promiscuous || !uniFits;
    this.setRCTL(
      E1000_RCTL.EN | (upe ? E1000_RCTL.UPE : 0) | (req.allMulticast ? E1000_RCTL.MPE : 0) | (req.broadcast ? E1000_RCTL.BAM : 0),
    );
  }
}

type E1000Register = { name: 'CTRL' | 'VET' | 'RCTL' } | { name: 'MTA' | 'VFTA' | 'RAL' | 'RAH'; index: number };

function decodeOffset(offset: number): (E1000Register & { index: number }) | undefined {
  if (typeof offset !== 'number' || !Number.isInteger(offset) || (offset & 3) !== 0) return undefined;
  if (offset === R.CTRL) return { name: 'CTRL', index: 0 };
  if (offset === R.VET) return { name: 'VET', index: 0 };
  if (offset === R.RCTL) return { name: 'RCTL', index: 0 };
  if (offset >= R.MTA && offset < R.MTA + 512) return { name: 'MTA', index: (offset - R.MTA) >> 2 };
  if (offset >= R.VFTA && offset < R.VFTA + 512) return { name: 'VFTA', index: (offset - R.VFTA) >> 2 };
  if (offset >= R.RAL && offset < R.RAL + 8 * E1000_RAR_COUNT)
    return { name: (offset & 4) === 0 ? 'RAL' : 'RAH', index: (offset - R.RAL) >> 3 };
  return undefined;
}
