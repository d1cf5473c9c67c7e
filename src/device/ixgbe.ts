// Device filters: the Intel 82599 (ixgbe) receive filter from its datasheet and the Linux driver: 128 receive address
// registers, the 4096-bit MTA with MCSTCTRL.MO/MFE, the unicast table array (UTA) for hashed unicast in VT mode,
// FCTRL.UPE/MPE/BAM/SBP and the VLAN filter table with VLNCTRL.VFE and the CFI rule.

import type { Nic } from '../nic/nic.js';
import type { MacLike } from '../wire/mac.js';
import { badRegister, checkValue, DeviceFilter, type ExactEntry, FLAG, KIND, mac48, type StageState } from './engine.js';
import type { NicFilterRequest } from './from-nic.js';
import { mtaVector, packRah, packRal, unpackRar } from './hash.js';

/** ixgbe register offsets in BAR0 (bytes), with the datasheet's names. Arrays give the offset of entry 0. */
export const IXGBE_REGISTERS = {
  /** Receive control: RXEN is bit 0. */
  RXCTRL: 0x03000,
  /** Filter control. */
  FCTRL: 0x05080,
  /** VLAN control: VET in bits 15:0. */
  VLNCTRL: 0x05088,
  /** Multicast control: MO in bits 1:0, MFE bit 2. */
  MCSTCTRL: 0x05090,
  /** VMDq control: VT_Ena is bit 0. */
  PFVTCTL: 0x051b0,
  /** Multicast table array, 128 words. */
  MTA: 0x05200,
  /** Receive address low/high of entries 0..15 at 0x05400 + 8n / 0x05404 + 8n. */
  RAL: 0x05400,
  /** Receive address high of entry 0 (entries 0..15 at 0x05404 + 8n); AV is bit 31. */
  RAH: 0x05404,
  /** Receive address low/high of every entry at 0x0A200 + 8n / 0x0A204 + 8n (Linux's IXGBE_RAL uses it from n = 16). */
  RAL_HIGH: 0x0a200,
  /** VLAN filter table array, 128 words. */
  VFTA: 0x0a000,
  /** Per-pool offload control, 64 words; pool 0's ROPE (bit 26) admits unicast through the UTA. */
  VMOLR: 0x0f000,
  /** Unicast table array, 128 words. */
  PFUTA: 0x0f400,
} as const;

/** Filter bits of FCTRL, VLNCTRL, MCSTCTRL, RXCTRL, PFVTCTL and VMOLR. */
export const IXGBE_BITS = {
  /** FCTRL Store Bad Packets. */
  FCTRL_SBP: 1 << 1,
  /** FCTRL Multicast Promiscuous Enable. */
  FCTRL_MPE: 1 << 8,
  /** FCTRL Unicast Promiscuous Enable. */
  FCTRL_UPE: 1 << 9,
  /** FCTRL Broadcast Accept Mode. */
  FCTRL_BAM: 1 << 10,
  /** VLNCTRL Canonical Form Indicator value. */
  VLNCTRL_CFI: 1 << 28,
  /** VLNCTRL Canonical Form Indicator Enable. */
  VLNCTRL_CFIEN: 1 << 29,
  /** VLNCTRL VLAN Filter Enable. */
  VLNCTRL_VFE: 1 << 30,
  /** MCSTCTRL Multicast Filter Enable (the MTA applies). */
  MCSTCTRL_MFE: 1 << 2,
  /** RXCTRL Receive Enable. */
  RXCTRL_RXEN: 1 << 0,
  /** PFVTCTL Virtualization Enable (pools, and with them the UTA). */
  PFVTCTL_VT_ENA: 1 << 0,
  /** VMOLR Receive Overflow Packet Enable: unicast that hits the UTA is accepted by the pool. */
  VMOLR_ROPE: 1 << 26,
} as const;

/** Receive address registers on the 82599. */
export const IXGBE_RAR_COUNT = 128;
/** RAH Address Valid. */
export const IXGBE_RAH_AV = 0x80000000;

const R = IXGBE_REGISTERS;
const B = IXGBE_BITS;

/** Options of an ixgbe profile. */
export interface IxgbeOptions {
  /** The EEPROM's MAC, loaded into RAR0 with Address Valid at reset. Default: RAR0 empty. */
  mac?: MacLike;
}

/**
 * One ixgbe (82599) receive filter. Check order: RXCTRL.RXEN; frames under 60 bytes (64 with FCS) unless FCTRL.SBP;
 * the L2 pass (an exact RAR with AV, broadcast with BAM, a group address with MPE or with MFE and its MTA bit, unicast
 * with UPE, or in VT mode with pool 0's ROPE and its UTA bit); then VLAN (tag = bytes 12-13 equal to VLNCTRL.VET):
 * CFI with CFIEN, VFTA with VFE. UPE and MPE do not bypass the VLAN stage.
 */
export class Ixgbe extends DeviceFilter {
  readonly #ral = new Uint32Array(IXGBE_RAR_COUNT);
  readonly #rah = new Uint32Array(IXGBE_RAR_COUNT);
  readonly #vmolr = new Uint32Array(64);
  #fctrl = 0;
  #vlnctrl = 0x8100;
  #mcstctrl = 0;
  #rxctrl = 0;
  #pfvtctl = 0;

  private constructor(engine: Awaited<ReturnType<typeof DeviceFilter.engine>>) {
    super(engine, KIND.ixgbe);
  }

  /** Creates the filter in its reset state: receiver off, VLNCTRL.VET 0x8100, tables clear, RAR0 from `options.mac`. */
  static async create(options: IxgbeOptions = {}): Promise<Ixgbe> {
    const d = new Ixgbe(await DeviceFilter.engine());
    if (options.mac !== undefined) d.setReceiveAddress(0, options.mac);
    return d;
  }

  /**
   * Creates an ixgbe whose registers `nic` programs as Linux's ixgbe_set_rx_mode does, now and after every change:
   * unicast then multicast addresses in the RARs, the remaining groups in the MTA with MCSTCTRL = MFE | MO 0, UPE when
   * unicast does not fit or a client is promiscuous, MPE for all-multicast, BAM when a client takes broadcast, then
   * RXCTRL.RXEN. `close()` stops following the Nic.
   */
  static async fromNic(nic: Nic): Promise<Ixgbe> {
    const d = await Ixgbe.create();
    d.follow(nic, (req) => d.#program(req));
    return d;
  }

  /** True when `offset` is a register this profile models. */
  static isFilterRegister(offset: number): boolean {
    return decodeOffset(offset) !== undefined;
  }

  /** Writes a 32-bit register. Throws INVALID_REGISTER for an offset outside the receive filter, INVALID_ARGUMENT for a bad value. */
  writeRegister(offset: number, value: number): void {
    const reg = decodeOffset(offset);
    if (reg === undefined) throw badRegister('ixgbe', offset);
    checkValue(value, 0xffffffff, `register 0x${offset.toString(16)} value`);
    const [name, i] = reg;
    if (name === 'RXCTRL') this.#rxctrl = value;
    else if (name === 'FCTRL') this.#fctrl = value;
    else if (name === 'VLNCTRL') this.#vlnctrl = value;
    else if (name === 'MCSTCTRL') this.#mcstctrl = value;
    else if (name === 'PFVTCTL') this.#pfvtctl = value;
    else if (name === 'MTA') this.mtaWords[i] = value;
    else if (name === 'VFTA') this.vftaWords[i] = value;
    else if (name === 'PFUTA') this.utaWords[i] = value;
    else if (name === 'VMOLR') this.#vmolr[i] = value;
    else if (name === 'RAL') this.#ral[i] = value;
    else this.#rah[i] = value;
    this.changed();
  }

  /** Reads back a register (its reset value if never written). Throws as writeRegister does. */
  readRegister(offset: number): number {
    const reg = decodeOffset(offset);
    if (reg === undefined) throw badRegister('ixgbe', offset);
    const [name, i] = reg;
    if (name === 'RXCTRL') return this.#rxctrl;
    if (name === 'FCTRL') return this.#fctrl;
    if (name === 'VLNCTRL') return this.#vlnctrl;
    if (name === 'MCSTCTRL') return this.#mcstctrl;
    if (name === 'PFVTCTL') return this.#pfvtctl;
    if (name === 'MTA') return this.mtaWords[i]!;
    if (name === 'VFTA') return this.vftaWords[i]!;
    if (name === 'PFUTA') return this.utaWords[i]!;
    if (name === 'VMOLR') return this.#vmolr[i]!;
    return name === 'RAL' ? this.#ral[i]! : this.#rah[i]!;
  }

  /** Writes FCTRL. */
  setFCTRL(value: number): void {
    this.writeRegister(R.FCTRL, value);
  }

  /** Writes VLNCTRL. */
  setVLNCTRL(value: number): void {
    this.writeRegister(R.VLNCTRL, value);
  }

  /** Writes MCSTCTRL. */
  setMCSTCTRL(value: number): void {
    this.writeRegister(R.MCSTCTRL, value);
  }

  /** Writes RXCTRL. */
  setRXCTRL(value: number): void {
    this.writeRegister(R.RXCTRL, value);
  }

  /** Writes PFVTCTL. */
  setPFVTCTL(value: number): void {
    this.writeRegister(R.PFVTCTL, value);
  }

  /** Writes VMOLR[pool] (pool = 0..63). */
  setVMOLR(pool: number, value: number): void {
    this.writeRegister(R.VMOLR + 4 * checkValue(pool, 63, 'pool'), value);
  }

  /** Writes RAL[n] (n = 0..127). */
  setRAL(n: number, value: number): void {
    this.writeRegister(ralOffset(checkValue(n, IXGBE_RAR_COUNT - 1, 'RAR index')), value);
  }

  /** Writes RAH[n] (n = 0..127). */
  setRAH(n: number, value: number): void {
    this.writeRegister(ralOffset(checkValue(n, IXGBE_RAR_COUNT - 1, 'RAR index')) + 4, value);
  }

  /** Writes MTA[w] (w = 0..127). */
  setMTA(w: number, value: number): void {
    this.writeRegister(R.MTA + 4 * checkValue(w, 127, 'MTA index'), value);
  }

  /** Writes PFUTA[w] (w = 0..127). */
  setPFUTA(w: number, value: number): void {
    this.writeRegister(R.PFUTA + 4 * checkValue(w, 127, 'PFUTA index'), value);
  }

  /** Writes VFTA[w] (w = 0..127). */
  setVFTA(w: number, value: number): void {
    this.writeRegister(R.VFTA + 4 * checkValue(w, 127, 'VFTA index'), value);
  }

  /** Writes RAL[n] then RAH[n] for `mac` (RAH last: AV turns on with the whole address in place). */
  setReceiveAddress(n: number, mac: MacLike, valid = true): void {
    const m = mac48(mac, 'receive address');
    this.setRAL(n, packRal(m));
    this.setRAH(n, packRah(m, valid));
  }

  protected stageState(): StageState {
    const f = this.#fctrl;
    const v = this.#vlnctrl;
    const on = (reg: number, mask: number, flag: number): number => ((reg & mask) !== 0 ? flag : 0);
    const uta = (this.#pfvtctl & B.PFVTCTL_VT_ENA) !== 0 && (this.#vmolr[0]! & B.VMOLR_ROPE) !== 0;
    return {
      flags:
        on(this.#rxctrl, B.RXCTRL_RXEN, FLAG.ENABLED) |
        on(f, B.FCTRL_UPE, FLAG.UPE) |
        on(f, B.FCTRL_MPE, FLAG.MPE) |
        on(f, B.FCTRL_BAM, FLAG.BAM) |
        on(v, B.VLNCTRL_VFE, FLAG.VFE) |
        on(v, B.VLNCTRL_CFIEN, FLAG.CFIEN) |
        on(v, B.VLNCTRL_CFI, FLAG.CFI) |
        on(this.#mcstctrl, B.MCSTCTRL_MFE, FLAG.MFE) |
        (uta ? FLAG.UTA : 0),
      mo: this.#mcstctrl & 3,
      vet: v & 0xffff,
      minLength: (f & B.FCTRL_SBP) !== 0 ? 14 : 60,
      primary: undefined,
    };
  }

  protected *exactEntries(): Iterable<ExactEntry> {
    for (let n = 0; n < IXGBE_RAR_COUNT; n++)
      if ((this.#rah[n]! & IXGBE_RAH_AV) !== 0) yield { mac: unpackRar(this.#ral[n]!, this.#rah[n]!), multi: false, entry: n };
  }

  #program(req: NicFilterRequest): void {
    const uniFits = req.unicast.length <= IXGBE_RAR_COUNT;
    const uni = uniFits ? req.unicast : req.unicast.slice(0, 1);
    const inRar = [...uni, ...req.groups].slice(0, IXGBE_RAR_COUNT);
    for (let n = 0; n < IXGBE_RAR_COUNT; n++) {
      const mac = inRar[n];
      if (mac === undefined) {
        this.setRAH(n, 0);
        this.setRAL(n, 0);
      } else this.setReceiveAddress(n, mac);
    }
    const mta = new Uint32Array(128);
    for (const g of req.groups.slice(Math.max(0, IXGBE_RAR_COUNT - uni.length))) {
      const vec = mtaVector(g, 0);
      mta[vec >>> 5]! |= 1 << (vec & 31);
    }
    mta.forEach((word, w) => this.setMTA(w, word >>> 0));
    this.setMCSTCTRL(B.MCSTCTRL_MFE);
    const upe = req.promiscuous || !uniFits;
    this.setFCTRL((upe ? B.FCTRL_UPE : 0) | (req.allMulticast ? B.FCTRL_MPE : 0) | (req.broadcast ? B.FCTRL_BAM : 0));
    this.setRXCTRL(B.RXCTRL_RXEN);
  }
}

function ralOffset(n: number): number {
  return n < 16 ? R.RAL + 8 * n : R.RAL_HIGH + 8 * n;
}

type Reg = 'RXCTRL' | 'FCTRL' | 'VLNCTRL' | 'MCSTCTRL' | 'PFVTCTL' | 'MTA' | 'VFTA' | 'PFUTA' | 'VMOLR' | 'RAL' | 'RAH';

function decodeOffset(offset: number): readonly [Reg, number] | undefined {
  if (typeof offset !== 'number' || !Number.isInteger(offset) || (offset & 3) !== 0) return undefined;
  const single: Partial<Record<number, Reg>> = {
    [R.RXCTRL]: 'RXCTRL',
    [R.FCTRL]: 'FCTRL',
    [R.VLNCTRL]: 'VLNCTRL',
    [R.MCSTCTRL]: 'MCSTCTRL',
    [R.PFVTCTL]: 'PFVTCTL',
  };
  const s = single[offset];
  if (s !== undefined) return [s, 0];
  const arrays: readonly (readonly [Reg, number, number])[] = [
    ['MTA', R.MTA, 128],
    ['VFTA', R.VFTA, 128],
    ['PFUTA', R.PFUTA, 128],
    ['VMOLR', R.VMOLR, 64],
  ];
  for (const [name, base, n] of arrays) if (offset >= base && offset < base + 4 * n) return [name, (offset - base) >> 2];
  if (offset >= R.RAL && offset < R.RAL + 8 * 16) return [(offset & 4) === 0 ? 'RAL' : 'RAH', (offset - R.RAL) >> 3];
  // The 82599 holds all 128 at 0x0A200 + 8n; 0x05400 + 8n are the 82598-compatible aliases of entries 0..15.
  if (offset >= R.RAL_HIGH && offset < R.RAL_HIGH + 8 * IXGBE_RAR_COUNT)
    return [(offset & 4) === 0 ? 'RAL' : 'RAH', (offset - R.RAL_HIGH) >> 3];
  return undefined;
}
