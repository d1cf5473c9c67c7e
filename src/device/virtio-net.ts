// Device filters: the virtio-net receive filter as QEMU implements it: the primary MAC, the control queue's MAC table
// (VIRTIO_NET_CTRL_MAC_TABLE_SET, 64 entries, with overflow flags), the rx modes and the 4096-bit VLAN filter.

import type { Nic } from '../nic/nic.js';
import { MacslotError, show } from '../errors.js';
import { Mac, type MacLike } from '../wire/mac.js';
import { badRegister, checkValue, DeviceFilter, type ExactEntry, FLAG, KIND, mac48, type StageState } from './engine.js';
import type { NicFilterRequest } from './from-nic.js';

/** Control-queue classes and commands (include/uapi/linux/virtio_net.h). */
export const VIRTIO_NET_CTRL = {
  /** Class VIRTIO_NET_CTRL_RX: receive modes. */
  RX: 0,
  /** Command VIRTIO_NET_CTRL_RX_PROMISC. */
  RX_PROMISC: 0,
  /** Command VIRTIO_NET_CTRL_RX_ALLMULTI. */
  RX_ALLMULTI: 1,
  /** Command VIRTIO_NET_CTRL_RX_ALLUNI. */
  RX_ALLUNI: 2,
  /** Command VIRTIO_NET_CTRL_RX_NOMULTI. */
  RX_NOMULTI: 3,
  /** Command VIRTIO_NET_CTRL_RX_NOUNI. */
  RX_NOUNI: 4,
  /** Command VIRTIO_NET_CTRL_RX_NOBCAST. */
  RX_NOBCAST: 5,
  /** Class VIRTIO_NET_CTRL_MAC: the MAC table and the primary MAC. */
  MAC: 1,
  /** Command VIRTIO_NET_CTRL_MAC_TABLE_SET. */
  MAC_TABLE_SET: 0,
  /** Command VIRTIO_NET_CTRL_MAC_ADDR_SET. */
  MAC_ADDR_SET: 1,
  /** Class VIRTIO_NET_CTRL_VLAN: the VLAN filter. */
  VLAN: 2,
  /** Command VIRTIO_NET_CTRL_VLAN_ADD. */
  VLAN_ADD: 0,
  /** Command VIRTIO_NET_CTRL_VLAN_DEL. */
  VLAN_DEL: 1,
} as const;

/** A virtio-net device's MAC table, as the last VIRTIO_NET_CTRL_MAC_TABLE_SET left it. */
export interface VirtioMacTable {
  /** The unicast entries (the primary MAC is apart from them). */
  readonly unicast: readonly Mac[];
  /** The multicast entries. */
  readonly multicast: readonly Mac[];
  /** Set when the guest sent more unicast entries than the table holds: every unicast frame is accepted. */
  readonly unicastOverflow: boolean;
  /** Set when the guest sent more multicast entries than the table holds: every multicast frame is accepted. */
  readonly multicastOverflow: boolean;
}

/** A control command's ack: VIRTIO_NET_OK or VIRTIO_NET_ERR. */
export const VIRTIO_NET_OK = 0;
/** A control command's ack for a malformed or unsupported command. */
export const VIRTIO_NET_ERR = 1;
/** Entries of the MAC table (MAC_TABLE_ENTRIES). */
export const VIRTIO_NET_MAC_TABLE_ENTRIES = 64;

/** An rx mode the control queue sets. */
export type VirtioRxMode = 'promisc' | 'allmulti' | 'alluni' | 'nomulti' | 'nouni' | 'nobcast';
const RX_MODES: readonly VirtioRxMode[] = ['promisc', 'allmulti', 'alluni', 'nomulti', 'nouni', 'nobcast'];

/** Negotiated features that change the filter. */
export interface VirtioNetFeatures {
  /** VIRTIO_NET_F_CTRL_RX: PROMISC and ALLMULTI commands. Default true. */
  ctrlRx?: boolean;
  /** VIRTIO_NET_F_CTRL_RX_EXTRA: ALLUNI, NOMULTI, NOUNI and NOBCAST. Default true. */
  ctrlRxExtra?: boolean;
  /** VIRTIO_NET_F_CTRL_VLAN: the VLAN filter starts empty and VLAN_ADD fills it; without it every VID passes. Default true. */
  ctrlVlan?: boolean;
  /** VIRTIO_NET_F_CTRL_MAC_ADDR: MAC_ADDR_SET. Default true. */
  ctrlMacAddr?: boolean;
}

/** Options of a virtio-net profile. */
export interface VirtioNetOptions {
  /** The MAC in config space. Default 52:54:00:12:34:56, QEMU's default. */
  mac?: MacLike;
  /** The negotiated features. */
  features?: VirtioNetFeatures;
}

/**
 * One virtio-net receive filter, as QEMU's receive_filter decides. Check order: promisc (before VLANs); VLAN (an 0x8100
 * tag in a frame of at least 18 bytes) must have its VID's bit; broadcast passes unless nobcast; other group addresses:
 * nomulti drops, allmulti or multicast overflow accepts, else an exact entry in the table's multicast part; unicast:
 * nouni drops, alluni or unicast overflow accepts, then the primary MAC, then an exact entry in the unicast part.
 * After reset promisc is on (QEMU's compatibility mode) until the driver turns it off.
 */
export class VirtioNet extends DeviceFilter {
  readonly #features: Required<VirtioNetFeatures>;
  readonly #config: Uint8Array;
  readonly #modes = new Set<VirtioRxMode>();
  #mac: Mac;
  #uni: Mac[] = [];
  #multi: Mac[] = [];
  #uniOverflow = false;
  #multiOverflow = false;

  private constructor(engine: Awaited<ReturnType<typeof DeviceFilter.engine>>, mac: Mac, features: Required<VirtioNetFeatures>) {
    super(engine, KIND.virtio);
    this.#features = features;
    this.#mac = mac;
    this.#config = mac.toBytes();
  }

  /** Creates the filter and resets it (see reset). */
  static async create(options: VirtioNetOptions = {}): Promise<VirtioNet> {
    const mac = mac48(options.mac ?? '52:54:00:12:34:56', 'mac');
    const f = options.features ?? {};
    const features = { ctrlRx: true, ctrlRxExtra: true, ctrlVlan: true, ctrlMacAddr: true, ...f };
    for (const [k, v] of Object.entries(features))
      if (typeof v !== 'boolean') throw new MacslotError('INVALID_ARGUMENT', `features.${k} must be a boolean, got ${show(v)}`);
    const d = new VirtioNet(await DeviceFilter.engine(), mac, features);
    d.reset();
    return d;
  }

  /**
   * Creates a virtio-net whose control queue `nic` drives as Linux's virtnet_set_rx_mode does, now and after every
   * change: PROMISC and ALLMULTI from the Nic's modes, MAC_ADDR_SET with the primary, MAC_TABLE_SET with the other
   * unicast addresses and the groups. `close()` stops following the Nic.
   */
  static async fromNic(nic: Nic, options: VirtioNetOptions = {}): Promise<VirtioNet> {
    const d = await VirtioNet.create(options);
    d.follow(nic, (req) => d.#program(req));
    return d;
  }

  /** Device reset: promisc on, every other mode off, table and overflow flags cleared, the MAC back from config space. */
  reset(): void {
    this.#modes.clear();
    this.#modes.add('promisc');
    this.#uni = [];
    this.#multi = [];
    this.#uniOverflow = false;
    this.#multiOverflow = false;
    this.#mac = Mac.fromBytes(this.#config);
    this.vftaWords.fill(this.#features.ctrlVlan ? 0 : 0xffffffff);
    this.changed();
  }

  /**
   * Writes byte `offset` (0..5) of the MAC in the device's config space, as a legacy driver may; the filter uses it from
   * the next reset. Throws INVALID_REGISTER for another offset, INVALID_ARGUMENT for a value outside 0..255.
   */
  writeRegister(offset: number, value: number): void {
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset > 5) throw badRegister('virtio-net', offset);
    this.#config[offset] = checkValue(value, 0xff, 'config byte');
    this.#mac = Mac.fromBytes(this.#config);
    this.changed();
  }

  /**
   * Runs one control-queue command on its data, as the device does, and returns the ack (VIRTIO_NET_OK or VIRTIO_NET_ERR).
   * A malformed command from the guest is an ERR and changes nothing; only a `data` that is not a Uint8Array throws.
   */
  control(cls: number, cmd: number, data: Uint8Array): number {
    if (!(data instanceof Uint8Array)) throw new MacslotError('INVALID_ARGUMENT', `control data must be a Uint8Array, got ${show(data)}`);
    if (cls === VIRTIO_NET_CTRL.RX) return this.#rx(cmd, data);
    if (cls === VIRTIO_NET_CTRL.MAC) return this.#macCommand(cmd, data);
    if (cls === VIRTIO_NET_CTRL.VLAN) return this.#vlan(cmd, data);
    return VIRTIO_NET_ERR;
  }

  /** Turns an rx mode on or off (VIRTIO_NET_CTRL_RX). Returns the ack: ERR when its feature was not negotiated. */
  setRxMode(mode: VirtioRxMode, on: boolean): number {
    const cmd = RX_MODES.indexOf(mode);
    if (cmd < 0) throw new MacslotError('INVALID_ARGUMENT', `rx mode must be one of ${RX_MODES.join(', ')}, got ${show(mode)}`);
    return this.#rx(cmd, Uint8Array.of(on ? 1 : 0));
  }

  /** VIRTIO_NET_CTRL_MAC_TABLE_SET with these lists. Returns the ack. */
  macTableSet(unicast: readonly MacLike[], multicast: readonly MacLike[]): number {
    return this.#macCommand(VIRTIO_NET_CTRL.MAC_TABLE_SET, encodeTable(unicast, multicast));
  }

  /** VIRTIO_NET_CTRL_MAC_ADDR_SET. Returns the ack. */
  macAddrSet(mac: MacLike): number {
    return this.#macCommand(VIRTIO_NET_CTRL.MAC_ADDR_SET, mac48(mac, 'mac').toBytes());
  }

  /** VIRTIO_NET_CTRL_VLAN_ADD. Returns the ack: ERR for a VID ≥ 4096. */
  vlanAdd(vid: number): number {
    return this.#vlan(VIRTIO_NET_CTRL.VLAN_ADD, vidBytes(vid));
  }

  /** VIRTIO_NET_CTRL_VLAN_DEL. Returns the ack. */
  vlanDel(vid: number): number {
    return this.#vlan(VIRTIO_NET_CTRL.VLAN_DEL, vidBytes(vid));
  }

  /** The filter's current MAC (n->mac). */
  get mac(): Mac {
    return this.#mac;
  }

  /** The rx modes currently on. */
  get rxModes(): readonly VirtioRxMode[] {
    return RX_MODES.filter((m) => this.#modes.has(m));
  }

  /** The MAC table: its unicast and multicast parts and overflow flags. */
  get macTable(): VirtioMacTable {
    return {
      unicast: [...this.#uni],
      multicast: [...this.#multi],
      unicastOverflow: this.#uniOverflow,
      multicastOverflow: this.#multiOverflow,
    };
  }

  #rx(cmd: number, data: Uint8Array): number {
    const mode = RX_MODES[cmd];
    if (mode === undefined || data.length !== 1) return VIRTIO_NET_ERR;
    if (cmd <= 1 ? !this.#features.ctrlRx : !this.#features.ctrlRxExtra) return VIRTIO_NET_ERR;
    if (data[0] !== 0) this.#modes.add(mode);
    else this.#modes.delete(mode);
    this.changed();
    return VIRTIO_NET_OK;
  }

  #macCommand(cmd: number, data: Uint8Array): number {
    if (cmd === VIRTIO_NET_CTRL.MAC_ADDR_SET) {
      if (!this.#features.ctrlMacAddr || data.length !== 6) return VIRTIO_NET_ERR;
      this.#mac = Mac.fromBytes(data);
      this.changed();
      return VIRTIO_NET_OK;
    }
    if (cmd !== VIRTIO_NET_CTRL.MAC_TABLE_SET) return VIRTIO_NET_ERR;
    const t = decodeTable(data);
    if (t === undefined) return VIRTIO_NET_ERR;
    const uniOverflow = t.unicast.length > VIRTIO_NET_MAC_TABLE_ENTRIES;
    const uni = uniOverflow ? [] : t.unicast;
    const multiOverflow = t.multicast.length > VIRTIO_NET_MAC_TABLE_ENTRIES - uni.length;
    this.#uni = uni;
    this.#multi = multiOverflow ? [] : t.multicast;
    this.#uniOverflow = uniOverflow;
    this.#multiOverflow = multiOverflow;
    this.changed();
    return VIRTIO_NET_OK;
  }

  #vlan(cmd: number, data: Uint8Array): number {
    if (!this.#features.ctrlVlan || data.length !== 2 || cmd > VIRTIO_NET_CTRL.VLAN_DEL) return VIRTIO_NET_ERR;
    const vid = data[0]! | (data[1]! << 8);
    if (vid >= 4096) return VIRTIO_NET_ERR;
    if (cmd === VIRTIO_NET_CTRL.VLAN_ADD) this.vftaWords[vid >> 5]! |= 1 << (vid & 31);
    else this.vftaWords[vid >> 5]! &= ~(1 << (vid & 31));
    this.changed();
    return VIRTIO_NET_OK;
  }

  protected stageState(): StageState {
    const m = this.#modes;
    const on = (mode: VirtioRxMode, flag: number): number => (m.has(mode) ? flag : 0);
    return {
      flags:
        FLAG.ENABLED |
        FLAG.PRIMARY |
        on('promisc', FLAG.PROMISC) |
        on('allmulti', FLAG.MPE) |
        on('alluni', FLAG.UPE) |
        on('nomulti', FLAG.NOMULTI) |
        on('nouni', FLAG.NOUNI) |
        (m.has('nobcast') ? 0 : FLAG.BAM) |
        (this.#uniOverflow ? FLAG.UNI_OVERFLOW : 0) |
        (this.#multiOverflow ? FLAG.MULTI_OVERFLOW : 0),
      mo: 0,
      vet: 0x8100,
      minLength: 14,
      primary: this.#mac,
    };
  }

  protected *exactEntries(): Iterable<ExactEntry> {
    let i = 0;
    for (const mac of this.#uni) yield { mac, multi: false, entry: i++ };
    for (const mac of this.#multi) yield { mac, multi: true, entry: i++ };
  }

  #program(req: NicFilterRequest): void {
    const primary = req.unicast[0];
    if (primary !== undefined) this.macAddrSet(primary);
    this.setRxMode('promisc', req.promiscuous);
    this.setRxMode('allmulti', req.allMulticast);
    this.macTableSet(req.unicast.slice(1), req.groups);
  }
}

function vidBytes(vid: number): Uint8Array {
  checkValue(vid, 0xffff, 'VID');
  return Uint8Array.of(vid & 0xff, vid >> 8);
}

/** `[u32 n][n × 6][u32 m][m × 6]`, counts little-endian. */
function encodeTable(unicast: readonly MacLike[], multicast: readonly MacLike[]): Uint8Array {
  const uni = unicast.map((m) => mac48(m, 'unicast entry'));
  const multi = multicast.map((m) => mac48(m, 'multicast entry'));
  const out = new Uint8Array(8 + 6 * (uni.length + multi.length));
  const view = new DataView(out.buffer);
  view.setUint32(0, uni.length, true);
  uni.forEach((m, i) => out.set(m.toBytes(), 4 + 6 * i));
  const at = 4 + 6 * uni.length;
  view.setUint32(at, multi.length, true);
  multi.forEach((m, i) => out.set(m.toBytes(), at + 4 + 6 * i));
  return out;
}

function decodeTable(data: Uint8Array): { unicast: Mac[]; multicast: Mac[] } | undefined {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const list = (at: number): Mac[] | undefined => {
    if (at + 4 > data.length) return undefined;
    const n = view.getUint32(at, true);
    if (n > (data.length - at - 4) / 6) return undefined;
    return Array.from({ length: n }, (_, i) => Mac.fromBytes(data, at + 4 + 6 * i, 6));
  };
  const unicast = list(0);
  if (unicast === undefined) return undefined;
  const multicast = list(4 + 6 * unicast.length);
  if (multicast === undefined || 8 + 6 * (unicast.length + multicast.length) !== data.length) return undefined;
  return { unicast, multicast };
}
