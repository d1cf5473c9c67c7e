// Wire format: MAC identifiers (MAC-48/EUI-48 and EUI-64): parsing, formatting, keys and the kernel's predicates.

import { MacslotError, show } from '../errors.js';

/** MAC-48 (6 bytes) or EUI-64 (8 bytes); the two never compare equal. */
export type MacKind = 'mac48' | 'eui64';
/** Text notations: `aa:bb:..`, `aa-bb-..`, Cisco `aabb.ccdd.eeff`, bare `aabbccddeeff`. */
export type MacNotation = 'colon' | 'hyphen' | 'dotted' | 'bare';
/** Anything the API accepts where a MAC is expected. */
export type MacLike = Mac | string | Uint8Array;

/** Byte 0 bit 0: individual/group. Set means multicast (broadcast included). */
export const ETH_GROUP_BIT = 0x01;
/** Byte 0 bit 1: universal/local. Set means locally administered. */
export const ETH_LOCAL_BIT = 0x02;

const HEX = /^[0-9a-fA-F]+$/;
const TWO_POW_32 = 0x1_0000_0000;
// The character codes of the lowercase hex digits, and a MAC-48's text as character codes (its colons stay).
const DIGIT: readonly number[] = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));
const TEXT48: number[] = Array.from({ length: 17 }, () => 0x3a);

function invalid(input: unknown, why: string): MacslotError {
  return new MacslotError('INVALID_MAC', `${show(input)} is not a MAC: ${why}`);
}

function hexGroups(text: string, sep: string, input: string): number[] {
  const parts = text.split(sep);
  if (parts.length !== 6 && parts.length !== 8) throw invalid(input, `expected 6 or 8 groups separated by "${sep}", got ${parts.length}`);
  return parts.map((p) => {
    if (p.length < 1 || p.length > 2 || !HEX.test(p)) throw invalid(input, `group ${show(p)} is not 1-2 hex digits`);
    return parseInt(p, 16);
  });
}

function hexRun(text: string, input: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < text.length; i += 2) out.push(parseInt(text.slice(i, i + 2), 16));
  if (!HEX.test(text)) throw invalid(input, 'contains a character that is not a hex digit');
  return out;
}

/** An immutable MAC-48 or EUI-64 identifier, held as two unsigned 32-bit halves (big-endian). */
export class Mac {
  /** `mac48` or `eui64`. */
  readonly kind: MacKind;
  /** High part: bytes 0..1 for MAC-48 (16 bits), bytes 0..3 for EUI-64. */
  readonly hi: number;
  /** Low part: the last four bytes as a big-endian unsigned 32-bit integer. */
  readonly lo: number;

  private constructor(kind: MacKind, hi: number, lo: number) {
    this.kind = kind;
    this.hi = hi;
    this.lo = lo;
    Object.freeze(this);
  }

  /** Returns the MAC written in any supported notation and case; throws INVALID_MAC otherwise. */
  static parse(text: string): Mac {
    if (typeof text !== 'string') throw invalid(text, 'not a string');
    const t = text.trim();
    if (t.length === 0) throw invalid(text, 'empty');
    const hasColon = t.includes(':');
    const hasHyphen = t.includes('-');
    const hasDot = t.includes('.');
    if (Number(hasColon) + Number(hasHyphen) + Number(hasDot) > 1) throw invalid(text, 'mixes separators');
    let bytes: number[];
    if (hasColon) bytes = hexGroups(t, ':', text);
    else if (hasHyphen) bytes = hexGroups(t, '-', text);
    else if (hasDot) {
      const parts = t.split('.');
      if (parts.length !== 3 && parts.length !== 4) throw invalid(text, `expected 3 or 4 dotted groups, got ${parts.length}`);
      for (const p of parts) if (p.length !== 4) throw invalid(text, `dotted group ${show(p)} is not 4 hex digits`);
      bytes = hexRun(parts.join(''), text);
    } else {
      if (t.length !== 12 && t.length !== 16) throw invalid(text, `bare hex must be 12 or 16 digits, got ${t.length}`);
      bytes = hexRun(t, text);
    }
    return Mac.fromBytes(Uint8Array.from(bytes));
  }

  /** Returns the MAC held in `length` (6 or 8) bytes at `offset`; throws INVALID_MAC for any other size. */
  static fromBytes(bytes: Uint8Array, offset = 0, length: number = bytes.length - offset): Mac {
    if (!(bytes instanceof Uint8Array)) throw invalid(bytes, 'not a Uint8Array');
    if (length !== 6 && length !== 8) throw invalid(bytes, `needs 6 or 8 bytes, got ${length}`);
    if (!Number.isInteger(offset) || offset < 0 || offset + length > bytes.length)
      throw invalid(bytes, `offset ${offset} + ${length} runs past ${bytes.length} bytes`);
    const b = (i: number): number => bytes[offset + i]!;
    const lo = ((b(length - 4) << 24) | (b(length - 3) << 16) | (b(length - 2) << 8) | b(length - 1)) >>> 0;
    const hi = length === 6 ? (b(0) << 8) | b(1) : ((b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3)) >>> 0;
    return new Mac(length === 6 ? 'mac48' : 'eui64', hi, lo);
  }

  /** Returns the MAC-48 whose big-endian value is `n` (0 ≤ n < 2^48); throws INVALID_MAC otherwise. */
  static fromNumber(n: number): Mac {
    if (!Number.isSafeInteger(n) || n < 0 || n >= 2 ** 48) throw invalid(n, 'not an integer in [0, 2^48)');
    return new Mac('mac48', Math.floor(n / TWO_POW_32), n % TWO_POW_32);
  }

  /** Returns the identifier of `kind` whose big-endian value is `v`; throws INVALID_MAC when it does not fit. */
  static fromBigInt(v: bigint, kind: MacKind = 'mac48'): Mac {
    const bits = kind === 'mac48' ? 48n : 64n;
    if (typeof v !== 'bigint' || v < 0n || v >= 1n << bits) throw invalid(v, `not an integer in [0, 2^${bits})`);
    return new Mac(kind, Number(v >> 32n), Number(v & 0xffff_ffffn));
  }

  /** Returns `x` as a Mac (parsing text, reading 6 or 8 bytes); throws INVALID_MAC on anything else. */
  static from(x: MacLike): Mac {
    if (x instanceof Mac) return x;
    if (typeof x === 'string') return Mac.parse(x);
    if (x instanceof Uint8Array) return Mac.fromBytes(x);
    throw invalid(x, 'expected a string, a Uint8Array or a Mac');
  }

  /** Number of bytes: 6 or 8. */
  get length(): 6 | 8 {
    return this.kind === 'mac48' ? 6 : 8;
  }

  /** Returns byte `i` (0 is the first byte on the wire). */
  byte(i: number): number {
    const n = this.length;
    if (i >= n - 4) return (this.lo >>> (8 * (n - 1 - i))) & 0xff;
    return (this.hi >>> (8 * (n - 5 - i))) & 0xff;
  }

  /** Returns a fresh copy of the bytes. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    this.writeTo(out, 0);
    return out;
  }

  /** Writes the bytes into `out` at `offset` and returns the offset after them. */
  writeTo(out: Uint8Array, offset = 0): number {
    for (let i = 0; i < this.length; i++) out[offset + i] = this.byte(i);
    return offset + this.length;
  }

  /** Returns the canonical form: lowercase hex pairs joined by colons. */
  toString(): string {
    if (this.kind !== 'mac48') return this.format('colon');
    // The common case in one flat string, without format's arrays or the pieces of a concatenation: managers and stores
    // write a MAC's text on every allocation.
    for (let i = 0; i < 6; i++) {
      const b = i < 2 ? (this.hi >>> (8 - 8 * i)) & 0xff : (this.lo >>> (40 - 8 * i)) & 0xff;
      TEXT48[3 * i] = DIGIT[b >>> 4]!;
      TEXT48[3 * i + 1] = DIGIT[b & 0xf]!;
    }
    return String.fromCharCode(...TEXT48);
  }

  /** Returns the MAC in the given notation, lowercase unless `uppercase` is set. */
  format(notation: MacNotation = 'colon', options: { uppercase?: boolean } = {}): string {
    const pairs: string[] = [];
    for (let i = 0; i < this.length; i++) pairs.push(this.byte(i).toString(16).padStart(2, '0'));
    let s: string;
    switch (notation) {
      case 'colon':
        s = pairs.join(':');
        break;
      case 'hyphen':
        s = pairs.join('-');
        break;
      case 'bare':
        s = pairs.join('');
        break;
      case 'dotted': {
        const quads: string[] = [];
        for (let i = 0; i < pairs.length; i += 2) quads.push(pairs[i]! + pairs[i + 1]!);
        s = quads.join('.');
        break;
      }
      default:
        throw new MacslotError('INVALID_ARGUMENT', `unknown notation ${show(notation)}`);
    }
    return options.uppercase ? s.toUpperCase() : s;
  }

  /** Returns the canonical text, so JSON.stringify writes a MAC as a string. */
  toJSON(): string {
    return this.toString();
  }

  /** Shows `Mac(00:14:4f:00:00:01)` in Node's inspector instead of the two halves. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Mac(${this.toString()})`;
  }

  /** Returns the MAC-48's big-endian value as a number; throws INVALID_MAC for EUI-64 (it does not fit exactly). */
  toNumber(): number {
    if (this.kind !== 'mac48') throw invalid(this.toString(), 'an EUI-64 does not fit in a number; use toBigInt()');
    return this.hi * TWO_POW_32 + this.lo;
  }

  /** Returns the big-endian value as a bigint. */
  toBigInt(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /** Map key that never confuses kinds: a 48-bit number for MAC-48, the canonical string for EUI-64. */
  get key(): number | string {
    return this.kind === 'mac48' ? this.hi * TWO_POW_32 + this.lo : this.toString();
  }

  /** Returns true when `other` is the same kind and value. */
  equals(other: MacLike): boolean {
    const o = Mac.from(other);
    return o.kind === this.kind && o.hi === this.hi && o.lo === this.lo;
  }

  /** Group bit set (broadcast counts), as Linux `is_multicast_ether_addr`. */
  get isMulticast(): boolean {
    return (this.byte(0) & ETH_GROUP_BIT) !== 0;
  }
  /** All bits set. */
  get isBroadcast(): boolean {
    return this.lo === 0xffff_ffff && this.hi === (this.kind === 'mac48' ? 0xffff : 0xffff_ffff);
  }
  /** Group bit clear, as Linux `is_unicast_ether_addr`. */
  get isUnicast(): boolean {
    return !this.isMulticast;
  }
  /** Locally administered bit set, as Linux `is_local_ether_addr`. */
  get isLocal(): boolean {
    return (this.byte(0) & ETH_LOCAL_BIT) !== 0;
  }
  /** Universally administered: local bit clear. */
  get isUniversal(): boolean {
    return !this.isLocal;
  }
  /** All bits clear. */
  get isZero(): boolean {
    return this.hi === 0 && this.lo === 0;
  }
  /** Not multicast and not zero, as Linux `is_valid_ether_addr`. */
  get isValidUnicast(): boolean {
    return !this.isMulticast && !this.isZero;
  }
  /** The organizationally unique identifier: the first three bytes, canonical text. */
  get oui(): string {
    return [0, 1, 2].map((i) => this.byte(i).toString(16).padStart(2, '0')).join(':');
  }
}

/** Returns `x` parsed as a Mac; throws INVALID_MAC. */
export function parseMac(x: MacLike): Mac {
  return Mac.from(x);
}

/** Returns the canonical text of `x`; throws INVALID_MAC. */
export function formatMac(x: MacLike, notation: MacNotation = 'colon'): string {
  return Mac.from(x).format(notation);
}

/** True when the group bit is set (broadcast included); throws INVALID_MAC on bad input. */
export function isMulticastEtherAddr(x: MacLike): boolean {
  return Mac.from(x).isMulticast;
}
/** True for ff:ff:ff:ff:ff:ff (or the all-ones EUI-64); throws INVALID_MAC on bad input. */
export function isBroadcastEtherAddr(x: MacLike): boolean {
  return Mac.from(x).isBroadcast;
}
/** True when the group bit is clear; throws INVALID_MAC on bad input. */
export function isUnicastEtherAddr(x: MacLike): boolean {
  return Mac.from(x).isUnicast;
}
/** True when the locally administered bit is set; throws INVALID_MAC on bad input. */
export function isLocalEtherAddr(x: MacLike): boolean {
  return Mac.from(x).isLocal;
}
/** True when every bit is clear; throws INVALID_MAC on bad input. */
export function isZeroEtherAddr(x: MacLike): boolean {
  return Mac.from(x).isZero;
}
/** True for a unicast, non-zero MAC; throws INVALID_MAC on bad input. */
export function isValidEtherAddr(x: MacLike): boolean {
  return Mac.from(x).isValidUnicast;
}

/** The broadcast MAC-48. */
export const BROADCAST = Mac.parse('ff:ff:ff:ff:ff:ff');
