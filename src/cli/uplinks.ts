// Command line: the per-guest uplinks' network in the configuration's `switch` object (subnet, gateway, dns, range, maxUplinks,
// subnet6).

import { MacslotError, isMacslotError, show } from '../errors.js';
import { resolveGuestNetwork, type GuestNetwork } from '../switch/uplinks.js';

/** The `switch` fields of the per-guest uplinks' network. */
export const GUEST_NETWORK_FIELDS = ['subnet', 'gateway', 'dns', 'range', 'maxUplinks', 'subnet6'] as const;

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
/** A dotted IPv4 address, as the schema's `ipv4` takes it (no leading zeros). */
export const IPV4_PATTERN = `^${OCTET}(\\.${OCTET}){3}$`;
/** An IPv4 subnet `A.B.C.D/LEN`, LEN 8 to 30. */
export const SUBNET_PATTERN = `^${OCTET}(\\.${OCTET}){3}/([89]|[12][0-9]|30)$`;
/** An IPv6 /64 prefix written as four groups, `H:H:H:H::/64`. */
export const SUBNET6_PATTERN = '^([0-9a-fA-F]{1,4}:){4}:/64$';
const IPV4 = new RegExp(IPV4_PATTERN, 'u');
const SUBNET6 = new RegExp(SUBNET6_PATTERN, 'u');
const SUBNET = new RegExp(SUBNET_PATTERN, 'u');

export type { GuestNetwork };

/**
 * Returns the per-guest uplinks' network given in switch object `s`, or undefined when it gives none. Each field is
 * checked as the schema checks it; throws CONFIG_INVALID naming `switch.FIELD` and the value.
 */
export function guestNetworkFields(s: Readonly<Record<string, unknown>>, source: string): GuestNetwork | undefined {
  const out: GuestNetwork = {};
  const bad = (field: string, v: unknown, what: string): MacslotError =>
    new MacslotError('CONFIG_INVALID', `${source}: switch.${field}: ${show(v)} is not ${what}`);
  if (s.subnet !== undefined) {
    if (typeof s.subnet !== 'string' || !SUBNET.test(s.subnet)) throw bad('subnet', s.subnet, 'an IPv4 subnet A.B.C.D/LEN (LEN 8 to 30)');
    out.subnet = s.subnet;
  }
  for (const k of ['gateway', 'dns'] as const) {
    const v = s[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || !IPV4.test(v)) throw bad(k, v, 'an IPv4 address');
    out[k] = v;
  }
  if (s.range !== undefined) {
    const r = s.range;
    if (!Array.isArray(r) || r.length !== 2 || !r.every((a) => typeof a === 'string' && IPV4.test(a)))
      throw bad('range', r, 'a pair of IPv4 addresses [first, last]');
    out.range = [r[0] as string, r[1] as string];
  }
  if (s.maxUplinks !== undefined) {
    const m = s.maxUplinks;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > 4096) throw bad('maxUplinks', m, 'an integer in 1..4096');
    out.maxUplinks = m;
  }
  if (s.subnet6 !== undefined) {
    if (typeof s.subnet6 !== 'string' || !SUBNET6.test(s.subnet6)) throw bad('subnet6', s.subnet6, 'an IPv6 prefix H:H:H:H::/64');
    out.subnet6 = s.subnet6;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** Checks that the fields agree with each other (gateway, DNS and range inside the subnet); throws CONFIG_INVALID naming the file. */
export function checkGuestNetwork(n: GuestNetwork, source: string): void {
  try {
    resolveGuestNetwork(n);
  } catch (err) {
    throw isMacslotError(err, 'INVALID_ARGUMENT')
      ? new MacslotError('CONFIG_INVALID', `${source}: switch: ${err.message.replace(/^INVALID_ARGUMENT: /, '')}`)
      : err;
  }
}
