// Device filters: what a macslot Nic asks of a device's receive filter, read once per change, for the profiles that a
// Nic programs as a guest driver would.

import type { Nic } from '../nic/nic.js';
import { Mac } from '../wire/mac.js';

/** The receive filter a Nic needs, in the terms a driver's rx-mode routine uses. */
export interface NicFilterRequest {
  /** Active MAC-48 unicast addresses, the primary (slot 0) first, then by slot. */
  readonly unicast: readonly Mac[];
  /** Joined MAC-48 multicast groups. */
  readonly groups: readonly Mac[];
  /** Unicast promiscuity: a client asked for it, or the unicast addresses overflowed the NIC's exact entries. */
  readonly promiscuous: boolean;
  /** Every multicast frame is wanted (groups overflowed, or unicast promiscuity). */
  readonly allMulticast: boolean;
  /** Some client receives broadcast. */
  readonly broadcast: boolean;
}

/** Reads the filter a Nic currently needs. EUI-64 entries have no place in an Ethernet device and are left out. */
export function nicFilterRequest(nic: Nic): NicFilterRequest {
  const state = nic.filterState();
  const unicast = [...state.unicast.entries()]
    .filter((e): e is [number, (typeof e)[1]] => typeof e[0] === 'number')
    .sort((a, b) => a[1].slot - b[1].slot)
    .map(([key]) => Mac.fromNumber(key));
  const groups = [...state.groups.keys()].filter((k): k is number => typeof k === 'number').map((k) => Mac.fromNumber(k));
  return {
    unicast,
    groups,
    promiscuous: state.promiscuous,
    allMulticast: state.allMulticast || state.promiscuous,
    broadcast: state.broadcastClients.length > 0 || state.promiscuousClients.length > 0,
  };
}

/** Calls `program` now and after every change of the Nic; returns the function that stops following it. */
export function followNic(nic: Nic, program: (request: NicFilterRequest) => void): () => void {
  program(nicFilterRequest(nic));
  return nic.on(() => program(nicFilterRequest(nic)));
}
