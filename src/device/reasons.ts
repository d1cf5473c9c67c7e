// Device filters: the reasons a device profile gives for a frame, shared by every device and by the Wasm stage.

/**
 * Why a device accepted or dropped a frame. Accepting reasons come first; every reason starting with `drop-` drops.
 * The order is the Wasm stage's reason ids (assembly/device.ts).
 */
export const DEVICE_REASONS = [
  'exact',
  'primary',
  'broadcast',
  'multicast-hash',
  'unicast-hash',
  'multicast-promiscuous',
  'unicast-promiscuous',
  'promiscuous',
  'multicast-overflow',
  'unicast-overflow',
  'drop-no-match',
  'drop-vlan',
  'drop-cfi',
  'drop-broadcast',
  'drop-nomulti',
  'drop-nouni',
  'drop-disabled',
  'drop-monitor',
  'drop-runt',
  'drop-bad-descriptor',
  'drop-oversize',
] as const;

/** One of DEVICE_REASONS. */
export type DeviceReason = (typeof DEVICE_REASONS)[number];

/** Reason ids below this one accept. */
const FIRST_DROP = DEVICE_REASONS.indexOf('drop-no-match');

/** A device's decision on one frame. */
export interface DeviceVerdict {
  /** True when the device takes the frame. */
  readonly accept: boolean;
  /** Which stage decided. */
  readonly reason: DeviceReason;
  /** For `exact`: the matching entry (RAR number, virtio-net MAC table position, or 0 for ne2k's PAR); otherwise absent. */
  readonly entry?: number;
}

const NO_ENTRY = 0xffff;
const CACHE = new Map<number, DeviceVerdict>();

/** Turns a device verdict word (reason in bits 0..7, entry in bits 16..31) into a DeviceVerdict. Never throws. */
export function deviceVerdict(word: number): DeviceVerdict {
  const hit = CACHE.get(word);
  if (hit !== undefined) return hit;
  const id = word & 0xff;
  const reason = DEVICE_REASONS[id] ?? 'drop-bad-descriptor';
  const entry = word >>> 16;
  const v: DeviceVerdict = entry === NO_ENTRY ? { accept: id < FIRST_DROP, reason } : { accept: id < FIRST_DROP, reason, entry };
  if (CACHE.size < 4096) CACHE.set(word, v);
  return v;
}

/** True when a device verdict word accepts the frame. */
export function deviceVerdictAccepts(word: number): boolean {
  return (word & 0xff) < FIRST_DROP;
}
