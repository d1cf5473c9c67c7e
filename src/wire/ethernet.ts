// Wire format: the Ethernet II header as named offsets over a byte window; no object per frame.

/** Destination MAC: bytes 0..5. */
export const ETH_DST = 0;
/** Source MAC: bytes 6..11. */
export const ETH_SRC = 6;
/** EtherType or 802.1Q TPID: bytes 12..13, big-endian. */
export const ETH_TYPE = 12;
/** Header length; anything shorter is a runt. */
export const ETH_HLEN = 14;
/** Shortest frame on the wire without the FCS; emulators pad to it. */
export const ETH_ZLEN = 60;
/** Longest untagged frame without the FCS (1500-byte payload). */
export const ETH_FRAME_LEN = 1514;
/** Default longest accepted frame: room for a QinQ-tagged 1500-byte payload. */
export const DEFAULT_MAX_FRAME = 1522;

/** Returns true when the frame is long enough to hold an Ethernet header. */
export function hasEthernetHeader(frame: Uint8Array): boolean {
  return frame.length >= ETH_HLEN;
}

/** Returns the EtherType (big-endian u16); the caller checks the length first. */
export function etherType(frame: Uint8Array): number {
  return (frame[ETH_TYPE]! << 8) | frame[ETH_TYPE + 1]!;
}

/** Returns true when the destination's group bit is set; the caller checks the length first. */
export function isMulticastDst(frame: Uint8Array): boolean {
  return (frame[ETH_DST]! & 1) !== 0;
}

/** Returns true when the source's group bit is set, which no station sends from; the caller checks the length first. */
export function isMulticastSrc(frame: Uint8Array): boolean {
  return (frame[ETH_SRC]! & 1) !== 0;
}

/** Returns true when the destination is ff:ff:ff:ff:ff:ff; the caller checks the length first. */
export function isBroadcastDst(frame: Uint8Array): boolean {
  const d = ETH_DST;
  return (frame[d]! & frame[d + 1]! & frame[d + 2]! & frame[d + 3]! & frame[d + 4]! & frame[d + 5]!) === 0xff;
}

/** Returns the MAC-48 at byte `at` as a 48-bit number (the Map key of `Mac.key`); the caller checks the length first. */
export function macKeyAt(frame: Uint8Array, at: number): number {
  const hi = (frame[at]! << 8) | frame[at + 1]!;
  return hi * 0x1_0000_0000 + (((frame[at + 2]! << 24) | (frame[at + 3]! << 16) | (frame[at + 4]! << 8) | frame[at + 5]!) >>> 0);
}

/** Returns the destination as a 48-bit number (the Map key of `Mac.key`); the caller checks the length first. */
export function dstKey(frame: Uint8Array): number {
  return macKeyAt(frame, ETH_DST);
}

/** Returns the source as a 48-bit number (the Map key of `Mac.key`); the caller checks the length first. */
export function srcKey(frame: Uint8Array): number {
  return macKeyAt(frame, ETH_SRC);
}
