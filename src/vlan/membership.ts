// VLANs: per-port membership with the semantics of a Linux bridge with vlan_filtering: an access port has one VLAN,
// untagged on the wire; a trunk carries a set of VLANs tagged, and optionally a native VLAN (PVID + egress untagged).

import { MacslotError, show } from '../errors.js';
import { checkVid, insertTag, parseVlan, stripTag, TPID_8021AD, TPID_8021Q } from './tag.js';

/** How a port takes part in VLANs. */
export type PortVlans =
  | {
      /** An access port: frames in and out are untagged, all in this VLAN. */
      readonly access: number;
    }
  | {
      /** A trunk: frames of these VLANs go in and out tagged. */
      readonly trunk: readonly number[];
      /** The VLAN of the trunk's untagged frames, which also leave it untagged (Linux: `pvid untagged`). */
      readonly native?: number;
    };

/** The tag a bridge reads and writes: 802.1Q (C-tag, 0x8100) or 802.1ad (S-tag, 0x88a8). */
export type VlanProtocol = '802.1Q' | '802.1ad';

/** A port's VLANs as a membership holds them. */
export interface VlanPortView {
  /** The VLANs the port is a member of, in ascending order. */
  readonly vids: readonly number[];
  /** The native VLAN (PVID) untagged frames belong to, when the port has one. */
  readonly pvid: number | undefined;
}

/** A frame admitted by a port: its VLAN and the frame without its tag. */
export interface VlanIngress {
  /** The VLAN the frame belongs to: its tag's VID, or the port's native VLAN when it came untagged or priority-tagged. */
  readonly vid: number;
  /** The frame with the bridge's tag removed (the same object when it came untagged). */
  readonly frame: Uint8Array;
}

/** A frame a port refuses, and why. */
export interface VlanDrop {
  /** The drop's counter name, as the data plane and the switch count it. */
  readonly drop: 'drop-vlan';
  /** `not-member` (VLAN not on the port), `no-pvid` (untagged on a trunk without a native VLAN), `truncated` (tag cut short). */
  readonly why: 'not-member' | 'no-pvid' | 'truncated';
  /** The VLAN the frame claimed, when it had one. */
  readonly vid?: number;
}

/** Frames a membership dropped on the way in, by reason (`ingress` counts every drop it returns). */
export interface VlanCounters {
  /** Every drop. */
  readonly 'drop-vlan': number;
  /** Tagged with a VLAN the port does not carry. */
  readonly notMember: number;
  /** Untagged on a port without a PVID. */
  readonly noPvid: number;
  /** A tag cut short. */
  readonly truncated: number;
}

interface Port {
  readonly vids: ReadonlySet<number>;
  readonly pvid: number | undefined;
}

/** VLAN membership of a set of ports (client ids, port names: any key), as a VLAN-filtering Linux bridge applies it. */
export class VlanMembership<K = number | string> {
  /** The TPID of the bridge's tag. */
  readonly tpid: number;
  readonly #ports = new Map<K, Port>();
  readonly #drops = { 'not-member': 0, 'no-pvid': 0, truncated: 0 };

  constructor(options: { protocol?: VlanProtocol } = {}) {
    const p = options.protocol ?? '802.1Q';
    if (p !== '802.1Q' && p !== '802.1ad')
      throw new MacslotError('INVALID_ARGUMENT', `protocol must be '802.1Q' or '802.1ad', got ${show(p)}`);
    this.tpid = p === '802.1Q' ? TPID_8021Q : TPID_8021AD;
  }

  /** Sets a port's membership. Throws INVALID_ARGUMENT for a VID outside 1..4094 or a native VLAN not on the trunk's list. */
  set(port: K, spec: PortVlans): void {
    if (typeof spec !== 'object' || spec === null)
      throw new MacslotError('INVALID_ARGUMENT', `VLAN spec must be an object, got ${show(spec)}`);
    if ('access' in spec) {
      const v = checkVid(spec.access, 'access VID');
      this.#ports.set(port, { vids: new Set([v]), pvid: v });
      return;
    }
    if (!Array.isArray(spec.trunk)) throw new MacslotError('INVALID_ARGUMENT', `trunk must be a list of VIDs, got ${show(spec.trunk)}`);
    const vids = new Set(spec.trunk.map((v) => checkVid(v, 'trunk VID')));
    const native = spec.native === undefined ? undefined : checkVid(spec.native, 'native VID');
    // Linux adds the PVID to the port's VLANs; here the native VLAN must be listed, so a typo cannot open a VLAN.
    if (native !== undefined && !vids.has(native))
      throw new MacslotError('INVALID_ARGUMENT', `native VLAN ${native} is not among the trunk's VLANs ${show([...vids])}`);
    this.#ports.set(port, { vids, pvid: native });
  }

  /** Removes a port; it then belongs to no VLAN. */
  delete(port: K): void {
    this.#ports.delete(port);
  }

  /** True when `port` carries VLAN `vid`. */
  isMember(port: K, vid: number): boolean {
    return this.#ports.get(port)?.vids.has(vid) ?? false;
  }

  /** The ports with a membership, in the order they were first set. */
  ports(): K[] {
    return [...this.#ports.keys()];
  }

  /** The VLANs `port` carries, ascending, and its PVID; undefined for a port without membership. */
  get(port: K): VlanPortView | undefined {
    const p = this.#ports.get(port);
    return p === undefined ? undefined : { vids: [...p.vids].sort((a, b) => a - b), pvid: p.pvid };
  }

  /** The ports that carry `vid`. */
  members(vid: number): K[] {
    return [...this.#ports].filter(([, p]) => p.vids.has(vid)).map(([k]) => k);
  }

  /**
   * A frame arriving on `port`: its VLAN (the bridge's tag, or the port's PVID for an untagged or priority-tagged frame)
   * and the frame without that tag, or why the port drops it. A frame whose outer TPID is not the bridge's is untagged
   * to it (an 802.1ad frame on an 802.1Q bridge travels in the PVID's VLAN with its tag as payload).
   */
  ingress(port: K, frame: Uint8Array): VlanIngress | VlanDrop {
    const r = this.#admit(port, frame);
    if ('drop' in r) this.#drops[r.why]++;
    return r;
  }

  /** The drops counted by `ingress` so far. */
  counters(): VlanCounters {
    const d = this.#drops;
    return {
      'drop-vlan': d['not-member'] + d['no-pvid'] + d.truncated,
      notMember: d['not-member'],
      noPvid: d['no-pvid'],
      truncated: d.truncated,
    };
  }

  #admit(port: K, frame: Uint8Array): VlanIngress | VlanDrop {
    const p = this.#ports.get(port);
    const h = parseVlan(frame);
    if (h.kind === 'truncated') return { drop: 'drop-vlan', why: 'truncated' };
    const tag = h.kind === 'tagged' && h.tags[0]!.tpid === this.tpid ? h.tags[0]! : undefined;
    const vid = tag !== undefined && tag.vid !== 0 ? tag.vid : p?.pvid;
    if (vid === undefined) return { drop: 'drop-vlan', why: 'no-pvid' };
    if (p === undefined || !p.vids.has(vid)) return { drop: 'drop-vlan', why: 'not-member', vid };
    return { vid, frame: tag !== undefined ? stripTag(frame) : frame };
  }

  /**
   * The frame (without the bridge's tag) as it leaves `port` in VLAN `vid`: untagged on an access port or in the native
   * VLAN, tagged otherwise; undefined when the port does not carry `vid`.
   */
  egress(port: K, frame: Uint8Array, vid: number): Uint8Array | undefined {
    const p = this.#ports.get(port);
    if (p === undefined || !p.vids.has(vid)) return undefined;
    return p.pvid === vid ? frame : insertTag(frame, vid, 0, this.tpid);
  }
}
