// Filter: the accept filter's contents as plain data, the single input of every classifier.

import type { GroupStage } from '../nic/types.js';

/** An active unicast MAC: its client, and whether a hardware entry (rather than software) holds it. */
export interface UnicastEntry {
  /** Id of the owning client. */
  readonly client: number;
  /** The NIC slot holding the MAC. */
  readonly slot: number;
  /** True when an exact-match entry holds it, false when only software does. */
  readonly hardware: boolean;
}

/** A joined multicast group: its subscribed clients (ascending ids) and the stage that admits it. */
export interface GroupEntry {
  /** Ids of the subscribed clients, ascending. */
  readonly members: readonly number[];
  /** The filter stage that admits the group. */
  readonly stage: GroupStage;
}

/**
 * Everything a classifier needs, keyed by `Mac.key` (a 48-bit number for MAC-48,
 * the canonical string for EUI-64). Client lists are ascending ids.
 */
export interface FilterState {
  /** Incremented on every change. */
  readonly generation: number;
  /**  string, UnicastEntry>;|Active unicast MACs. */
  readonly unicast: ReadonlyMap<number | string, UnicastEntry>;
  /**  string, GroupEntry>;|Joined multicast groups. */
  readonly groups: ReadonlyMap<number | string, GroupEntry>;
  /** Filter type (MO) of the hash stage, or null when the NIC has none. */
  readonly hashFilterType: number | null;
  /** 4096 bits, bit i at byte i >> 3, mask 1 << (i & 7). */
  readonly hashBits: Uint8Array;
  /** Hardware accepts every frame (UPE): some client is promiscuous, or unicast overflowed. */
  readonly promiscuous: boolean;
  /** Hardware accepts every multicast frame (MPE). */
  readonly allMulticast: boolean;
  /** Ids of the clients in promiscuous mode. */
  readonly promiscuousClients: readonly number[];
  /** Ids of the clients that receive broadcast. */
  readonly broadcastClients: readonly number[];
  /** Longest frame accepted, in bytes. */
  readonly maxFrameLength: number;
}
