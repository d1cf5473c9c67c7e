// Data plane: the VLAN state of a bank, built from a VlanMembership. A map from VID to slot (0 for a VLAN the uplink
// does not carry), per slot the clients in that VLAN, then per slot the clients that get it untagged (access ports and
// trunks whose native VLAN it is); the bank's VLAN word holds the bridge's TPID and the uplink's PVID.

import { MacslotError, show } from '../errors.js';
import type { VlanMembership } from '../vlan/membership.js';
import { VL_ON, VL_PVID_SHIFT, VLAN_IDS, VLAN_SLOTS } from './layout.generated.js';

/** What the writer copies into a bank: the map and slot bitmaps (`image`, at bankVlanPtr) and the VLAN word. */
export interface VlanImage {
  readonly image: Uint8Array;
  readonly word: number;
  /** The VID of each slot (index 0 is slot 1). */
  readonly vids: readonly number[];
}

/**
 * Builds the bank image of `vlans` as seen from `uplink` (the port frames arrive on) for client ids below `maxClients`.
 * Throws INVALID_ARGUMENT when the uplink carries more VLANs than a bank has slots.
 */
export function vlanImage(vlans: VlanMembership<number | string>, uplink: number | string, maxClients: number): VlanImage {
  const words = (maxClients + 31) >>> 5;
  const up = vlans.get(uplink);
  const vids = up?.vids ?? [];
  if (vids.length > VLAN_SLOTS)
    throw new MacslotError('INVALID_ARGUMENT', `the uplink carries ${vids.length} VLANs; the data plane holds at most ${VLAN_SLOTS}`);
  const image = new Uint8Array(VLAN_IDS + 2 * VLAN_SLOTS * words * 4);
  const bits = new Uint32Array(image.buffer, VLAN_IDS, VLAN_SLOTS * words);
  const untagged = new Uint32Array(image.buffer, VLAN_IDS + VLAN_SLOTS * words * 4, VLAN_SLOTS * words);
  vids.forEach((vid, i) => {
    image[vid] = i + 1;
  });
  for (const port of vlans.ports()) {
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port >= maxClients) continue;
    const { vids: portVids, pvid } = vlans.get(port)!;
    for (const vid of portVids) {
      const slot = image[vid]!;
      if (slot === 0) continue;
      bits[(slot - 1) * words + (port >>> 5)]! |= 1 << (port & 31);
      if (vid === pvid) untagged[(slot - 1) * words + (port >>> 5)]! |= 1 << (port & 31);
    }
  }
  const word = (VL_ON | vlans.tpid | ((up?.pvid ?? 0) << VL_PVID_SHIFT)) >>> 0;
  return { image, word, vids };
}

/** Throws INVALID_ARGUMENT unless `uplink` is a port key (a client id or a name). */
export function checkUplink(uplink: unknown): number | string {
  if (typeof uplink === 'string' || (typeof uplink === 'number' && Number.isInteger(uplink))) return uplink;
  throw new MacslotError('INVALID_ARGUMENT', `uplink must be a port name or id, got ${show(uplink)}`);
}
