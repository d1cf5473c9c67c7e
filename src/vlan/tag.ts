// VLANs: 802.1Q / 802.1ad tags on the wire: reading them (never past the frame), inserting and stripping them.

import { MacslotError, show } from '../errors.js';

/** TPID of an 802.1Q (customer) tag. */
export const TPID_8021Q = 0x8100;
/** TPID of an 802.1ad (service) tag. */
export const TPID_8021AD = 0x88a8;
/** Bytes of one tag. */
export const VLAN_HLEN = 4;
/** The shortest frame that holds one tag and the EtherType after it. */
export const VLAN_ETH_HLEN = 18;

/** One tag read from a frame. */
export interface VlanTag {
  /** 0x8100 or 0x88a8. */
  readonly tpid: number;
  /** Priority code point, 0..7. */
  readonly pcp: number;
  /** Drop eligible indicator (formerly CFI). */
  readonly dei: boolean;
  /** VLAN id, 0..4095 (0 marks a priority-only tag). */
  readonly vid: number;
}

/** What a frame's header says about VLANs. */
export type VlanHeader =
  | {
      /** No tag of either kind at byte 12. */
      readonly kind: 'untagged';
    }
  | {
      /** One or two tags at byte 12. */
      readonly kind: 'tagged';
      /** The tags in frame order: `tags[0]` is the outer one (at byte 12). */
      readonly tags: readonly VlanTag[];
      /** Where the EtherType after the last tag sits. */
      readonly typeOffset: number;
    }
  | {
      /** A TPID at byte 12 (or after the outer tag) in a frame too short to hold its tag and the EtherType after it. */
      readonly kind: 'truncated';
    };

const isTpid = (t: number): boolean => t === TPID_8021Q || t === TPID_8021AD;

function tagAt(frame: Uint8Array, at: number): VlanTag {
  const tci = (frame[at + 2]! << 8) | frame[at + 3]!;
  return { tpid: (frame[at]! << 8) | frame[at + 1]!, pcp: tci >> 13, dei: (tci & 0x1000) !== 0, vid: tci & 0xfff };
}

/**
 * Reads the tags at byte 12: an outer 802.1ad or 802.1Q tag and, after an outer one, an inner tag. A TPID in a frame
 * too short to hold the tag and the EtherType after it is `truncated`, never a tag read from bytes that are not there.
 * Frames shorter than 14 bytes are `truncated` too.
 */
export function parseVlan(frame: Uint8Array): VlanHeader {
  if (frame.length < 14) return { kind: 'truncated' };
  const outer = (frame[12]! << 8) | frame[13]!;
  if (!isTpid(outer)) return { kind: 'untagged' };
  if (frame.length < VLAN_ETH_HLEN) return { kind: 'truncated' };
  const first = tagAt(frame, 12);
  const inner = (frame[16]! << 8) | frame[17]!;
  if (!isTpid(inner)) return { kind: 'tagged', tags: [first], typeOffset: 16 };
  if (frame.length < VLAN_ETH_HLEN + VLAN_HLEN) return { kind: 'truncated' };
  return { kind: 'tagged', tags: [first, tagAt(frame, 16)], typeOffset: 20 };
}

/** Throws INVALID_ARGUMENT unless `vid` is a usable VLAN id, 1..4094 (0 and 4095 are reserved). */
export function checkVid(vid: unknown, what = 'VID'): number {
  if (typeof vid !== 'number' || !Number.isInteger(vid) || vid < 1 || vid > 4094)
    throw new MacslotError('INVALID_ARGUMENT', `${what} must be an integer in 1..4094, got ${show(vid)}`);
  return vid;
}

/** Returns a copy of `frame` with a tag (TPID `tpid`, VID `vid`, priority `pcp`) inserted at byte 12. */
export function insertTag(frame: Uint8Array, vid: number, pcp = 0, tpid = TPID_8021Q): Uint8Array {
  checkVid(vid);
  if (frame.length < 14) throw new MacslotError('INVALID_ARGUMENT', `a frame to tag needs 14 bytes, got ${frame.length}`);
  const out = new Uint8Array(frame.length + VLAN_HLEN);
  out.set(frame.subarray(0, 12), 0);
  const tci = ((pcp & 7) << 13) | vid;
  out.set([tpid >> 8, tpid & 0xff, tci >> 8, tci & 0xff], 12);
  out.set(frame.subarray(12), 16);
  return out;
}

/** Returns a copy of `frame` without its outer tag; a frame without a whole outer tag comes back unchanged (same object). */
export function stripTag(frame: Uint8Array): Uint8Array {
  if (parseVlan(frame).kind !== 'tagged') return frame;
  const out = new Uint8Array(frame.length - VLAN_HLEN);
  out.set(frame.subarray(0, 12), 0);
  out.set(frame.subarray(16), 12);
  return out;
}
