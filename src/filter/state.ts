// Filter: the accept filter's contents as plain data, the single input of every classifier.

import type { GroupStage } from '../nic/types.js';

/** An active unicast MAC: its client, and whether a hardware entry (rather than software) holds it. */
export interface UnicastEntry {
  readonly client: number;
  readonly slot: number;
  readonly hardware: boolean;
}

/** A joined multicast group: its subscribed clients (ascending ids) and the stage that admits it. */
export interface GroupEntry {
  readonly members: readonly number[];
  readonly stage: GroupStage;
}

/**
 * Everything a classifier needs, keyed by `Mac.key` (a 48-bit number for MAC-48,
 * the canonical string for EUI-64). Client lists are ascending ids.
 */
export interface FilterState {
  readonly generation: number;
  readonly unicast: ReadonlyMap<number | string, UnicastEntry>;
  readonly groups: ReadonlyMap<number | string, GroupEntry>;
  /** Filter type (MO) of the hash stage, or null when the NIC has none. */
  readonly hashFilterType: number | null;
  /** 4096 bits, bit i at byte i >> 3, mask 1 << (i & 7). */
  readonly hashBits: Uint8Array;
  /** Hardware accepts every frame (UPE): some client is promiscuous, or unicast overflowed. */
  readonly promiscuous: boolean;
  /** Hardware accepts every multicast frame (MPE). */
  readonly allMulticast: boolean;
  readonly promiscuousClients: readonly number[];
  readonly broadcastClients: readonly number[];
  readonly maxFrameLength: number;
}
