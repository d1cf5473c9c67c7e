// Device filters: the address hashes and register packings the four devices share, in plain TypeScript.

import { mtaIndex } from '../filter/hash.js';
import { Mac, type MacLike } from '../wire/mac.js';

/**
 * The Ethernet CRC-32 as the DP8390 latches it: polynomial 0x04C11DB7, register preset to all ones, bytes in wire order
 * each least significant bit first, no final inversion. Returns the 32-bit register.
 */
export function etherCrc(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    for (let bit = 0; bit < 8; bit++) {
      const top = crc >>> 31;
      crc = (crc << 1) >>> 0;
      if ((top ^ ((byte >> bit) & 1)) !== 0) crc = (crc ^ 0x04c11db7) >>> 0;
    }
  }
  return crc;
}

/** The ne2k / DP8390 multicast hash index (0..63) of a destination: the top 6 bits of its CRC. Byte `k >> 3` of MAR, bit `k & 7`. */
export function marIndex(mac: MacLike): number {
  return etherCrc(Mac.from(mac).toBytes()) >>> 26;
}

/** The e1000 / ixgbe 12-bit hash vector of a destination for filter type (MO) 0..3: register `v >> 5`, bit `v & 31`. */
export function mtaVector(mac: MacLike, mo: number): number {
  const m = Mac.from(mac);
  return mtaIndex(m.byte(4), m.byte(5), mo);
}

/** RAL as Intel drivers pack it: a0 | a1 << 8 | a2 << 16 | a3 << 24. */
export function packRal(mac: MacLike): number {
  const m = Mac.from(mac);
  return (m.byte(0) | (m.byte(1) << 8) | (m.byte(2) << 16) | (m.byte(3) << 24)) >>> 0;
}

/** RAH as Intel drivers pack it: a4 | a5 << 8, with Address Valid (bit 31) when `valid`. */
export function packRah(mac: MacLike, valid = true): number {
  const m = Mac.from(mac);
  return (m.byte(4) | (m.byte(5) << 8) | (valid ? 0x80000000 : 0)) >>> 0;
}

/** The MAC held by a RAL/RAH pair (RAH bits 30:16 play no part in the match). */
export function unpackRar(ral: number, rah: number): Mac {
  const b = new Uint8Array([ral & 0xff, (ral >>> 8) & 0xff, (ral >>> 16) & 0xff, ral >>> 24, rah & 0xff, (rah >>> 8) & 0xff]);
  return Mac.fromBytes(b);
}
