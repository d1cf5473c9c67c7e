// Filter: the reference classifier with VLANs. A frame from the uplink is admitted into a VLAN by the uplink's
// membership, classified on its (MAC, VID), and delivered only to clients of that VLAN.

import { hasEthernetHeader } from '../wire/ethernet.js';
import type { VlanMembership } from '../vlan/membership.js';
import { insertTag, parseVlan, stripTag } from '../vlan/tag.js';
import { classifyFrame, type Path, type Rule } from './reference.js';
import type { FilterState } from './state.js';

/** A verdict with the VLAN it was taken in; `drop-vlan` when the VLAN admits nobody the frame is for. */
export interface VlanVerdict {
  /** Ids of the receiving clients, ascending. */
  readonly deliver: readonly number[];
  /** The rule that decided, or `drop-vlan`. */
  readonly rule: Rule | 'drop-vlan';
  /** Whether the hardware filter or the software fallback decided. */
  readonly path: Path;
  /** The frame's VLAN; undefined for a runt, or a tag cut short. */
  readonly vid: number | undefined;
}

/**
 * Classifies a frame arriving on `uplink` for the clients of `state`, whose VLANs `vlans` holds (keyed by client id).
 * Never throws: a runt is `drop-runt`; an unknown VID, a truncated tag, or a frame whose destination's owner is not in
 * its VLAN is `drop-vlan`; broadcast and multicast reach only the clients of the frame's VLAN.
 */
export function classifyVlanFrame(
  state: FilterState,
  vlans: VlanMembership<number | string>,
  uplink: number | string,
  frame: Uint8Array,
): VlanVerdict {
  if (!hasEthernetHeader(frame)) return { ...classifyFrame(state, frame), vid: undefined };
  const ing = vlans.ingress(uplink, frame);
  if ('drop' in ing) return { deliver: [], rule: 'drop-vlan', path: 'hardware', vid: ing.vid };
  const v = classifyFrame(state, ing.frame);
  if (v.rule.startsWith('drop-')) return { ...v, vid: ing.vid };
  const deliver = v.deliver.filter((id) => vlans.isMember(id, ing.vid));
  // Broadcast to a VLAN with no client is still the broadcast rule delivering to nobody; a frame for a MAC whose owner
  // is not in the VLAN misses the (MAC, VID) entry.
  if (deliver.length === 0 && v.rule !== 'broadcast') return { deliver: [], rule: 'drop-vlan', path: 'hardware', vid: ing.vid };
  return { ...v, deliver, vid: ing.vid };
}

/**
 * The frame client `client` receives when `frame` arrives on `uplink`, as a VLAN-filtering Linux bridge sends it out of
 * that port: untagged when the frame's VLAN is the port's PVID (an access port, a trunk's native VLAN), else tagged with
 * the frame's VID: the frame as it came when it carried the bridge's tag for that VID; an untagged frame gets a tag
 * (priority 0) after its addresses; a priority-tagged one (VID 0) keeps its priority and DEI and takes the VID. An
 * outer tag of the other protocol is payload. Undefined when the port does not carry the frame's VLAN or the uplink
 * does not admit the frame; whether the filter delivers it to the client is `classifyVlanFrame`'s answer. Never throws.
 */
export function vlanEgressFrame(
  vlans: VlanMembership<number | string>,
  uplink: number | string,
  frame: Uint8Array,
  client: number | string,
): Uint8Array | undefined {
  const h = parseVlan(frame);
  if (h.kind === 'truncated') return undefined;
  const tag = h.kind === 'tagged' && h.tags[0]!.tpid === vlans.tpid ? h.tags[0]! : undefined;
  const vid = tag !== undefined && tag.vid !== 0 ? tag.vid : vlans.get(uplink)?.pvid;
  if (vid === undefined || !vlans.isMember(uplink, vid) || !vlans.isMember(client, vid)) return undefined;
  if (vlans.get(client)!.pvid === vid) return tag === undefined ? frame : stripTag(frame);
  if (tag === undefined) return insertTag(frame, vid, 0, vlans.tpid);
  if (tag.vid === vid) return frame;
  const out = frame.slice();
  out[14] = (out[14]! & 0xf0) | (vid >> 8);
  out[15] = vid & 0xff;
  return out;
}
