// Filter: the reference classifier in plain TypeScript. It is the oracle of the Wasm data plane and the software path of the promiscuous
// fallback.

import { ETH_DST, dstKey, hasEthernetHeader, isBroadcastDst, isMulticastDst } from '../wire/ethernet.js';
import type { Mac } from '../wire/mac.js';
import { mtaIndex } from './hash.js';
import type { FilterState } from './state.js';

/** The rule that decided a frame. Rules starting with `drop-` deliver to nobody. */
export type Rule =
  | 'broadcast'
  | 'multicast-exact'
  | 'multicast-hash'
  | 'multicast-all'
  | 'unicast-exact'
  | 'software'
  | 'promiscuous'
  | 'drop-unknown'
  | 'drop-multicast'
  | 'drop-runt'
  | 'drop-oversize'
  | 'drop-bad-descriptor'
  | 'drop-vlan';

/**
 * Every rule, in a fixed order: the data plane's verdict ids and counter layout follow it. `drop-bad-descriptor` only arises in burst
 * descriptors.
 */
export const RULES: readonly Rule[] = [
  'broadcast',
  'multicast-exact',
  'multicast-hash',
  'multicast-all',
  'unicast-exact',
  'software',
  'promiscuous',
  'drop-unknown',
  'drop-multicast',
  'drop-runt',
  'drop-oversize',
  'drop-bad-descriptor',
  'drop-vlan',
];

/** Who decided: the NIC's own filters, or software after the NIC accepted everything of that kind. */
export type Path = 'hardware' | 'software';

/** A frame's fate: the receiving client ids (ascending), the rule and the path. */
export interface Verdict {
  /** Ids of the receiving clients, ascending. */
  readonly deliver: readonly number[];
  /** The rule that decided. */
  readonly rule: Rule;
  /** Whether the hardware filter or the software fallback decided. */
  readonly path: Path;
}

function union(a: readonly number[], b: readonly number[]): number[] {
  return [...new Set([...a, ...b])].sort((x, y) => x - y);
}

function hashHit(state: FilterState, a4: number, a5: number): boolean {
  if (state.hashFilterType === null) return false;
  const i = mtaIndex(a4, a5, state.hashFilterType);
  return (state.hashBits[i >> 3]! & (1 << (i & 7))) !== 0;
}

/** Classifies a destination given as its map key, group bit, broadcast flag and last two bytes. */
function decide(state: FilterState, key: number | string, multicast: boolean, broadcast: boolean, a4: number, a5: number): Verdict {
  const promisc = state.promiscuousClients;
  if (broadcast) return { deliver: union(state.broadcastClients, promisc), rule: 'broadcast', path: 'hardware' };
  if (multicast) {
    const g = state.groups.get(key);
    if (g?.stage === 'exact') return { deliver: union(g.members, promisc), rule: 'multicast-exact', path: 'hardware' };
    // The hash, all-multicast and promiscuous stages only let the frame into software, which then checks membership exactly.
    if (!hashHit(state, a4, a5) && !state.allMulticast && !state.promiscuous)
      return { deliver: [], rule: 'drop-multicast', path: 'hardware' };
    if (g !== undefined)
      return { deliver: union(g.members, promisc), rule: g.stage === 'hash' ? 'multicast-hash' : 'multicast-all', path: 'software' };
    return promisc.length > 0
      ? { deliver: [...promisc], rule: 'promiscuous', path: 'software' }
      : { deliver: [], rule: 'drop-multicast', path: 'software' };
  }
  const u = state.unicast.get(key);
  if (u !== undefined)
    return {
      deliver: union([u.client], promisc),
      rule: u.hardware ? 'unicast-exact' : 'software',
      path: u.hardware ? 'hardware' : 'software',
    };
  if (!state.promiscuous) return { deliver: [], rule: 'drop-unknown', path: 'hardware' };
  // Fail closed: overflow promiscuity never hands unknown unicast to a client that did not ask for everything.
  return promisc.length > 0
    ? { deliver: [...promisc], rule: 'promiscuous', path: 'software' }
    : { deliver: [], rule: 'drop-unknown', path: 'software' };
}

/** Returns the verdict for one Ethernet frame. Never throws: runts and oversize frames are drop verdicts. */
export function classifyFrame(state: FilterState, frame: Uint8Array): Verdict {
  if (!hasEthernetHeader(frame)) return { deliver: [], rule: 'drop-runt', path: 'hardware' };
  if (frame.length > state.maxFrameLength) return { deliver: [], rule: 'drop-oversize', path: 'hardware' };
  return decide(state, dstKey(frame), isMulticastDst(frame), isBroadcastDst(frame), frame[ETH_DST + 4]!, frame[ETH_DST + 5]!);
}

/** Returns the verdict for a bare destination key (MAC-48 or EUI-64), for link layers other than Ethernet. */
export function classifyKey(state: FilterState, dst: Mac): Verdict {
  const n = dst.length;
  return decide(state, dst.key, dst.isMulticast, dst.isBroadcast, dst.byte(n - 2), dst.byte(n - 1));
}
