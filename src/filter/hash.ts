// Filter: the imperfect 4096-bit multicast hash (Intel MTA) shared by the NIC model and the data planes.

/** Bits in the hash filter: 128 registers of 32 bits. */
export const HASH_BITS = 4096;

const SHIFT_BY_FILTER_TYPE = [4, 3, 2, 0] as const;

/**
 * Returns the MTA bit index (0..4095) of a destination whose last two bytes are `a4`, `a5`
 * (the first byte on the wire is a0). Index = ((a5 << 8) | a4) >> shift, masked to 12 bits,
 * with shift 4/3/2/0 for filter type (MO) 0..3, as e1000/ixgbe hardware does.
 */
export function mtaIndex(a4: number, a5: number, filterType = 0): number {
  const shift = SHIFT_BY_FILTER_TYPE[filterType & 3]!;
  return (((a5 << 8) | a4) >>> shift) & 0xfff;
}
