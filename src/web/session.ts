// Live page: one set-up NIC, its data plane and its clients; what every part of the page works on.

import { buildFromConfig, DataPlane, type MacslotConfig, type Nic, type NicClient } from '../index.js';

/** The NIC the page shows, built from a configuration. */
export interface Session {
  readonly config: MacslotConfig;
  readonly nic: Nic;
  readonly dp: DataPlane;
  /** Whether the data plane's memory is shared (a worker lane can attach). */
  readonly shared: boolean;
}

/** Lanes: the page's own and the generator's. */
const LANES = 2;
// A client's ring holds a whole burst of short frames: the generator drains the rings after each burst, as consumers keeping up would.
const BURST = 64;
const RING_BYTES = 8192;

/** Builds the NIC and its data plane. Throws CONFIG_INVALID (from the configuration) or what DataPlane.create throws. */
export async function openSession(config: MacslotConfig, shared: boolean): Promise<Session> {
  const { nic } = buildFromConfig(config);
  const dp = await DataPlane.create(nic, { lanes: LANES, burst: BURST, ringBytes: RING_BYTES, shared });
  return { config, nic, dp, shared };
}

/** The open clients, the primary's included, in id order. */
export function openClients(s: Session): NicClient[] {
  return s.nic.clients();
}

/** Returns the client's name, or `#id` for one that closed. */
export function clientName(s: Session, id: number): string {
  return s.nic.client(id)?.name ?? `#${id}`;
}
