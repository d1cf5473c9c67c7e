// Live page: one set-up NIC, its data plane and its clients; what every part of the page works on.

import { buildFromConfig, DataPlane, type MacslotConfig, type Nic, type NicClient, type VlanMembership } from '../index.js';

/** The NIC the page shows, built from a configuration. */
export interface Session {
  readonly config: MacslotConfig;
  readonly nic: Nic;
  readonly dp: DataPlane;
  /** Whether the data plane's memory is shared (a worker lane can attach). */
  readonly shared: boolean;
  /** The VLANs of the configuration, keyed by client id and `'uplink'` (the wire); absent when it uses none. */
  readonly vlans?: VlanMembership<number | string>;
}

/** Lanes: the page's own and the generator's. */
const LANES = 2;
// A client's ring holds a whole burst of short frames: the generator drains the rings after each burst, as consumers keeping up would.
const BURST = 64;
const RING_BYTES = 8192;

/** Builds the NIC and its data plane. Throws CONFIG_INVALID (from the configuration) or what DataPlane.create throws. */
export async function openSession(config: MacslotConfig, shared: boolean): Promise<Session> {
  const { nic, vlans } = buildFromConfig(config, { vlans: true });
  const dp = await DataPlane.create(nic, { lanes: LANES, burst: BURST, ringBytes: RING_BYTES, shared, vlans: vlans !== undefined });
  if (vlans === undefined) return { config, nic, dp, shared };
  try {
    dp.setVlans(vlans, 'uplink');
  } catch (err) {
    dp.close();
    throw err;
  }
  return { config, nic, dp, shared, vlans };
}

/**
 * Gives a client opened on the page its VLAN: VLAN 1, untagged, as a configuration file's client without VLAN fields.
 * The data plane takes the membership at once, so the client receives nothing outside it.
 */
export function joinDefaultVlan(s: Session, id: number): void {
  if (s.vlans === undefined) return;
  s.vlans.set(id, { access: 1 });
  s.dp.setVlans(s.vlans, 'uplink');
}

/** The VLAN a frame from the wire travels in (its tag's, or the wire's native VLAN); undefined without VLANs or a VLAN. */
export function frameVid(s: Session, frame: Uint8Array): number | undefined {
  if (s.vlans === undefined || frame.length < 14) return undefined;
  const r = s.vlans.ingress('uplink', frame);
  return r.vid;
}

/** A client's VLANs as the page words them, e.g. `VLANs 10, 20 (untagged 10)`; empty without VLANs. */
export function vlanText(s: Session, id: number): string {
  const view = s.vlans?.get(id);
  if (s.vlans === undefined) return '';
  if (view === undefined) return 'no VLAN';
  return `VLAN${view.vids.length === 1 ? '' : 's'} ${view.vids.join(', ')} (untagged ${view.pvid ?? 'none'})`;
}

/** The open clients, the primary's included, in id order. */
export function openClients(s: Session): NicClient[] {
  return s.nic.clients();
}

/** Returns the client's name, or `#id` for one that closed. */
export function clientName(s: Session, id: number): string {
  return s.nic.client(id)?.name ?? `#${id}`;
}
