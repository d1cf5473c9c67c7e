// Interface layer: the NIC's configuration, slot records, capability report and change events.

import type { RandomSource } from '../alloc/generate.js';
import type { Mac, MacLike } from '../wire/mac.js';

/** What happens when no hardware entry is left for an active unicast MAC. */
export type OverflowPolicy = 'promiscuous' | 'reject';
/** Why the NIC is promiscuous (or all-multicast); kept as a set so one path never clears another's need. */
export type PromiscReason = 'user' | 'unicast-overflow' | 'multicast-overflow' | 'no-capability';
/** What the hardware accepts: only its filters, every multicast frame, or everything. */
export type NicMode = 'filtered' | 'all-multicast' | 'promiscuous';
/** Where a slot's active MAC came from. */
export type AddressKind = 'primary' | 'factory' | 'local' | 'cloned';
/** Which filter stage holds an active unicast MAC. */
export type Placement = 'primary' | 'unicast' | 'multicast' | 'software';
/** Which stage admits a multicast group: an exact entry, the 4096-bit hash, or all-multicast. */
export type GroupStage = 'exact' | 'hash' | 'all';

/** How a NIC is built. Only `primary` is required. */
export interface NicConfig {
  /** The NIC's own address, slot 0: never reservable, modifiable or removable by clients. */
  primary: MacLike;
  /** Factory (burned-in) MACs for slots 1..F: base plus count, or an explicit list. Absent: none. */
  factory?:
    | {
        /** The first MAC of the block. */
        base: MacLike;
        /** How many MACs follow from it. */
        count: number;
      }
    | readonly MacLike[];
  /** Exact unicast filter entries beside the primary. Default: one per factory MAC. */
  unicastEntries?: number;
  /** Exact multicast entries; general unicast MACs may borrow them. Default 16. */
  multicastEntries?: number;
  /** The imperfect 4096-bit multicast hash (Intel MTA). `false` disables it; `filterType` picks the bits (MO 0..3). Default on, type 0. */
  multicastHash?:
    | boolean
    | {
        /** The hash's filter type (MO): which 12 destination bits index it. */
        filterType: 0 | 1 | 2 | 3;
      };
  /** No entry left: go promiscuous and filter in software (default), or refuse with NO_FREE_SLOT. */
  overflow?: OverflowPolicy;
  /** Put a reserved factory MAC in the accept filter as soon as it is reserved. Default true. */
  autoActivate?: boolean;
  /** Most clients open at once, the primary client included. Default 1024. */
  maxClients?: number;
  /** Most active unicast MACs at once, the primary included. Default 4096. */
  maxAddresses?: number;
  /** Longest frame accepted, in bytes without FCS. Default 1522. */
  maxFrameLength?: number;
  /** Name of the client that owns the primary address. Default "primary". */
  primaryClient?: string;
  /** Random source for system-chosen MACs (addressAdd without a MAC). Default Web Crypto. */
  random?: RandomSource;
}

/** What `addressSupport()` reports, after the seed's Address Support interface. */
export interface AddressSupport {
  /** True when the NIC has factory MACs beyond its primary. */
  readonly multipleFactory: boolean;
  /** Factory slots in all (1..F). */
  readonly totalSlots: number;
  /**
   * How many `addressReserve()` calls in a row would succeed now: factory slots not reserved, bounded (with autoActivate) by
   * `maxAddresses` and, under the reject policy, by the free filter entries.
   */
  readonly availableSlots: number;
  /**  undefined;|The first factory MAC, if any. */
  readonly firstFactory: Mac | undefined;
  /**  undefined;|The last factory MAC, if any. */
  readonly lastFactory: Mac | undefined;
  /** Exact-match unicast filter entries. */
  readonly totalUnicastEntries: number;
  /** Of those, the free ones. */
  readonly availableUnicastEntries: number;
  /** Exact-match multicast filter entries. */
  readonly totalMulticastEntries: number;
  /** Of those, the free ones. */
  readonly availableMulticastEntries: number;
  /** The filter's current mode. */
  readonly mode: NicMode;
  /** Why the NIC is promiscuous; empty when it is not. */
  readonly promiscReasons: readonly PromiscReason[];
}

/** What `addressGet(slot)` reports, after the seed's Address Get interface. */
export interface SlotInfo {
  /** The slot number. */
  readonly slot: number;
  /** The active MAC, or the factory MAC of a slot with none active. */
  readonly mac: Mac;
  /** True while a client holds the slot. */
  readonly reserved: boolean;
  /** True when `mac` is in the accept filter. */
  readonly active: boolean;
  /** Name of the owning client while reserved. */
  readonly owner: string | undefined;
  /** Where the MAC came from. */
  readonly kind: AddressKind;
  /** Filter stage of an active MAC. */
  readonly placement: Placement | undefined;
}

/** A reservation's result: the slot and its MAC. */
export interface Reservation {
  /** The slot reserved. */
  readonly slot: number;
  /** Its MAC. */
  readonly mac: Mac;
}

/** Options for `nic.openClient`. */
export interface ClientOptions {
  /** The NIC's owner grants this client promiscuous mode. Default false. */
  allowPromiscuous?: boolean;
  /** Receive broadcast frames. Default true. */
  broadcast?: boolean;
}

/**
 * A change the data plane, a log or a UI can follow. `generation` grows by one per event; `clientId` is the client's bit in delivery sets.
 */
export type NicEvent = {
  /** The NIC's change counter after this event. */
  readonly generation: number;
} & (
  | {
      /** What happened. */
      readonly type: 'reserved';
      /** The slot concerned. */
      readonly slot: number;
      /** The MAC concerned (for `released`, the one the slot held, if any). */
      readonly mac: Mac;
      /** True when the MAC went into the filter. */
      readonly active: boolean;
      /** The filter stage holding the MAC. */
      readonly placement: Placement | undefined;
      /** Name of the client concerned. */
      readonly client: string;
      /** Id of the client concerned. */
      readonly clientId: number;
    }
  | {
      /** What happened. */
      readonly type: 'modified';
      /** The slot concerned. */
      readonly slot: number;
      /** The MAC concerned (for `released`, the one the slot held, if any). */
      readonly mac: Mac;
      /** The MAC before the change. */
      readonly previous: Mac | undefined;
      /** The filter stage holding the MAC. */
      readonly placement: Placement;
      /** Name of the client concerned. */
      readonly client: string;
      /** Id of the client concerned. */
      readonly clientId: number;
    }
  | {
      /** What happened. */
      readonly type: 'released';
      /** The slot concerned. */
      readonly slot: number;
      /** The MAC concerned (for `released`, the one the slot held, if any). */
      readonly mac: Mac | undefined;
      /** Name of the client concerned. */
      readonly client: string;
      /** Id of the client concerned. */
      readonly clientId: number;
    }
  | {
      /** What happened. */
      readonly type: 'placed';
      /** The slot concerned. */
      readonly slot: number;
      /** The MAC concerned (for `released`, the one the slot held, if any). */
      readonly mac: Mac;
      /** The filter stage holding the MAC. */
      readonly placement: Placement;
      /** Id of the client concerned. */
      readonly clientId: number;
    }
  | {
      /** What happened. */
      readonly type: 'joined' | 'left';
      /** The multicast group. */
      readonly group: Mac;
      /** Name of the client concerned. */
      readonly client: string;
      /** Id of the client concerned. */
      readonly clientId: number;
      /** The filter stage that admits the group. */
      readonly stage: GroupStage | undefined;
      /** True when the client is a member after the change. */
      readonly member: boolean;
    }
  | {
      /** What happened. */
      readonly type: 'group-stage';
      /** The multicast group. */
      readonly group: Mac;
      /** The filter stage that admits the group. */
      readonly stage: GroupStage;
    }
  | {
      /** What happened. */
      readonly type: 'client-opened' | 'client-closed';
      /** Name of the client concerned. */
      readonly client: string;
      /** Id of the client concerned. */
      readonly clientId: number;
    }
  | {
      /** What happened. */
      readonly type: 'client-changed';
      /** Name of the client concerned. */
      readonly client: string;
      /** Id of the client concerned. */
      readonly clientId: number;
      /** True when the client now receives every frame. */
      readonly promiscuous: boolean;
      /** True when the client now receives broadcast. */
      readonly broadcast: boolean;
    }
  | {
      /** What happened. */
      readonly type: 'mode';
      /** The filter's new mode. */
      readonly mode: NicMode;
      /** Why the NIC is promiscuous; empty when it is not. */
      readonly reasons: readonly PromiscReason[];
    }
);
