// Device filters: the NE2000 (National DP8390 core, as the RTL8029/RTL8019 datasheets describe it) receive filter:
// PAR0-5, the 64-bit MAR hash (top 6 bits of the Ethernet CRC-32), and RCR.AB, AM, PRO, AR and MON.

import type { Nic } from '../nic/nic.js';
import { Mac, type MacLike } from '../wire/mac.js';
import { badRegister, checkValue, DeviceFilter, type ExactEntry, FLAG, KIND, mac48, type StageState } from './engine.js';
import type { NicFilterRequest } from './from-nic.js';
import { marIndex } from './hash.js';

/** NE2000 I/O-port offsets of the filter registers, with the datasheet's names, and the page each lives on. */
export const NE2K_REGISTERS = {
  /** Command register, every page: STP bit 0, STA bit 1, page select bits 7:6. */
  CR: 0x00,
  /** Page 0: receive configuration. */
  RCR: 0x0c,
  /** Page 1: physical address PAR0..PAR5 at 0x01..0x06. */
  PAR0: 0x01,
  /** Page 1: multicast address MAR0..MAR7 at 0x08..0x0F. */
  MAR0: 0x08,
} as const;

/** CR and RCR bits. */
export const NE2K_BITS = {
  /** CR Stop: the receiver is off. */
  CR_STP: 1 << 0,
  /** CR Start. */
  CR_STA: 1 << 1,
  /** Shift of CR's two-bit Page Select field. */
  CR_PS_SHIFT: 6,
  /** RCR Save Errored Packets. */
  RCR_SEP: 1 << 0,
  /** RCR Accept Runt packets (under 64 bytes). */
  RCR_AR: 1 << 1,
  /** RCR Accept Broadcast. */
  RCR_AB: 1 << 2,
  /** RCR Accept Multicast (through the MAR hash). */
  RCR_AM: 1 << 3,
  /** RCR Promiscuous physical: every unicast address. */
  RCR_PRO: 1 << 4,
  /** RCR Monitor mode: frames are checked but not stored. */
  RCR_MON: 1 << 5,
} as const;

const B = NE2K_BITS;

/** Options of an ne2k profile. */
export interface Ne2kOptions {
  /** Written to PAR0-5 at creation, as a driver does after reading the station PROM. Default: PAR all zero. */
  mac?: MacLike;
}

/**
 * One NE2000 receive filter, as the DP8390 datasheet defines it. Forward the guest's writes to I/O offsets 0x00-0x0F
 * with `writeRegister` (the profile follows CR's page select), or use the typed setters. Check order: frames under 60
 * bytes unless RCR.AR; CR.STP; RCR.MON (checked, never buffered: dropped); broadcast needs AB; other group addresses
 * need AM and their MAR bit; unicast passes with PRO or when it equals PAR0-5.
 */
export class Ne2k extends DeviceFilter {
  readonly #par = new Uint8Array(6);
  readonly #mar = new Uint8Array(8);
  #cr = B.CR_STP | 0x20;
  #rcr = 0;

  private constructor(engine: Awaited<ReturnType<typeof DeviceFilter.engine>>) {
    super(engine, KIND.ne2k);
  }

  /** Creates the filter in its reset state: CR.STP set (stopped), RCR 0, MAR 0, PAR from `options.mac`. */
  static async create(options: Ne2kOptions = {}): Promise<Ne2k> {
    const d = new Ne2k(await DeviceFilter.engine());
    if (options.mac !== undefined) d.setStationAddress(options.mac);
    return d;
  }

  /**
   * Creates an ne2k whose registers `nic` programs as Linux's 8390 driver does, now and after every change: PAR the
   * primary, MAR from the groups' CRC hash (all ones for all-multicast), RCR.AB when a client takes broadcast, AM when
   * there are groups, PRO when a client is promiscuous or the Nic has more than one unicast address (the chip has one
   * PAR), then CR.STA. `close()` stops following the Nic.
   */
  static async fromNic(nic: Nic): Promise<Ne2k> {
    const d = await Ne2k.create();
    d.follow(nic, (req) => d.#program(req));
    return d;
  }

  /**
   * Writes an 8-bit register at I/O offset 0x00-0x0F of the register page CR selects. Writes to registers outside the
   * filter (page 0 DMA and ring registers, page 2 and 3) are accepted and ignored. Throws INVALID_REGISTER for an
   * offset outside 0x00-0x0F, INVALID_ARGUMENT for a value outside 0..255.
   */
  writeRegister(offset: number, value: number): void {
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset > 0x0f) throw badRegister('ne2k', offset);
    checkValue(value, 0xff, `register 0x${offset.toString(16)} value`);
    const page = this.#cr >>> B.CR_PS_SHIFT;
    if (offset === NE2K_REGISTERS.CR) this.#cr = value;
    else if (page === 0 && offset === NE2K_REGISTERS.RCR) this.#rcr = value;
    else if (page === 1 && offset >= NE2K_REGISTERS.PAR0 && offset < NE2K_REGISTERS.PAR0 + 6) this.#par[offset - 1] = value;
    else if (page === 1 && offset >= NE2K_REGISTERS.MAR0) this.#mar[offset - NE2K_REGISTERS.MAR0] = value;
    else return;
    this.changed();
  }

  /** Writes CR. */
  setCR(value: number): void {
    this.writeRegister(NE2K_REGISTERS.CR, value);
  }

  /** Writes RCR (selecting page 0 and restoring CR's page afterwards). */
  setRCR(value: number): void {
    this.#onPage(0, () => this.writeRegister(NE2K_REGISTERS.RCR, value));
  }

  /** Writes PARi (i = 0..5), selecting page 1 and restoring CR's page afterwards. */
  setPAR(i: number, value: number): void {
    checkValue(i, 5, 'PAR index');
    this.#onPage(1, () => this.writeRegister(NE2K_REGISTERS.PAR0 + i, value));
  }

  /** Writes MARi (i = 0..7), selecting page 1 and restoring CR's page afterwards. */
  setMAR(i: number, value: number): void {
    checkValue(i, 7, 'MAR index');
    this.#onPage(1, () => this.writeRegister(NE2K_REGISTERS.MAR0 + i, value));
  }

  /** Writes PAR0-5 with `mac`. */
  setStationAddress(mac: MacLike): void {
    const m = mac48(mac, 'station address');
    for (let i = 0; i < 6; i++) this.setPAR(i, m.byte(i));
  }

  /** The command register. */
  get cr(): number {
    return this.#cr;
  }

  /** The receive configuration register. */
  get rcr(): number {
    return this.#rcr;
  }

  /** PAR0-5 as a MAC. */
  get par(): Mac {
    return Mac.fromBytes(this.#par);
  }

  /** A copy of MAR0-7. */
  get mar(): Uint8Array {
    return this.#mar.slice();
  }

  #onPage(page: number, write: () => void): void {
    const cr = this.#cr;
    this.#cr = (cr & 0x3f) | (page << B.CR_PS_SHIFT);
    try {
      write();
    } finally {
      this.#cr = cr;
    }
  }

  protected stageState(): StageState {
    const r = this.#rcr;
    const on = (mask: number, flag: number): number => ((r & mask) !== 0 ? flag : 0);
    return {
      flags:
        ((this.#cr & B.CR_STP) === 0 ? FLAG.ENABLED : 0) |
        on(B.RCR_AB, FLAG.BAM) |
        on(B.RCR_AM, FLAG.MFE) |
        on(B.RCR_PRO, FLAG.PROMISC) |
        on(B.RCR_MON, FLAG.MONITOR),
      mo: 0,
      vet: 0,
      minLength: (r & B.RCR_AR) !== 0 ? 14 : 60,
      primary: undefined,
    };
  }

  protected override marBytes(): Uint8Array {
    return this.#mar;
  }

  protected *exactEntries(): Iterable<ExactEntry> {
    yield { mac: Mac.fromBytes(this.#par), multi: false, entry: 0 };
  }

  #program(req: NicFilterRequest): void {
    this.setCR(B.CR_STP | 0x20);
    const primary = req.unicast[0];
    if (primary !== undefined) this.setStationAddress(primary);
    const mar = new Uint8Array(8);
    if (req.allMulticast) mar.fill(0xff);
    else
      for (const g of req.groups) {
        const k = marIndex(g);
        mar[k >> 3]! |= 1 << (k & 7);
      }
    mar.forEach((v, i) => this.setMAR(i, v));
    const pro = req.promiscuous || req.unicast.length > 1;
    const am = req.allMulticast || req.groups.length > 0;
    this.setRCR((req.broadcast ? B.RCR_AB : 0) | (am ? B.RCR_AM : 0) | (pro ? B.RCR_PRO : 0));
    this.setCR(B.CR_STA | 0x20);
  }
}
