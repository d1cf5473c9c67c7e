// Per-guest passt: the starter GuestUplinks uses to run one passt for each guest, configured with the guest's address.

import { GuestUplinks, type GuestNetwork, type GuestUplinkHandle, type GuestUplinkRequest } from '../switch/uplinks.js';
import { spawnPasst, type SpawnPasstOptions } from './peers.js';

/** The MAC every per-guest passt answers as: the guests' gateway, one MAC however many passts run. */
export const GATEWAY_MAC = '02:6d:73:ff:00:01';

/** Options of passtUplinks. */
export interface PasstUplinksOptions extends GuestNetwork, Omit<SpawnPasstOptions, 'signal' | 'name'> {
  /** The MAC passt answers from (its `--mac-addr`). Default GATEWAY_MAC. */
  gatewayMac?: string;
  /** First restart delay in ms after a passt ends on its own. Default 200. */
  restartDelayMs?: number;
}

/**
 * Returns passt's arguments for one guest: its IPv4 and IPv6 addresses, the subnet's mask, the shared gateway and DNS
 * (IPv4 and IPv6), and the gateway MAC.
 */
export function passtGuestArgs(r: GuestUplinkRequest, gatewayMac: string): string[] {
  return [
    ...['--address', r.address, '--netmask', String(r.prefixLength), '--gateway', r.gateway, '--dns', r.dns, '--dns-forward', r.dns],
    ...['--address', r.address6, '--gateway', r.gateway6, '--dns', r.dns6, '--dns-forward', r.dns6],
    ...['--mac-addr', gatewayMac],
  ];
}

/**
 * Returns a GuestUplinks whose uplinks are passt processes, one per guest, each started by spawnPasst (private
 * directory, removed with it; killed when the process exits) with the guest's address. Throws INVALID_ARGUMENT for a
 * bad network.
 */
export function passtUplinks(options: PasstUplinksOptions = {}): GuestUplinks {
  const gatewayMac = options.gatewayMac ?? GATEWAY_MAC;
  const { subnet, gateway, dns, range, maxUplinks, subnet6, gatewayMac: _g, restartDelayMs, ...spawn } = options;
  const start = async (r: GuestUplinkRequest): Promise<GuestUplinkHandle> => {
    const peer = await spawnPasst({
      ...spawn,
      name: `passt:${r.mac}`,
      extraArgs: [...passtGuestArgs(r, gatewayMac), ...(spawn.extraArgs ?? [])],
    });
    return { port: peer.port, pid: peer.pid, close: () => peer.close(), kill: () => peer.kill() };
  };
  return new GuestUplinks({
    start,
    name: 'passt:per-guest',
    ...(subnet !== undefined ? { subnet } : {}),
    ...(gateway !== undefined ? { gateway } : {}),
    ...(dns !== undefined ? { dns } : {}),
    ...(range !== undefined ? { range } : {}),
    ...(maxUplinks !== undefined ? { maxUplinks } : {}),
    ...(subnet6 !== undefined ? { subnet6 } : {}),
    ...(restartDelayMs !== undefined ? { restartDelayMs } : {}),
    ...(options.log !== undefined ? { log: options.log } : {}),
  });
}
