// Management layer: SipHash-2-4, the keyed hash behind stable derived MACs, in synchronous 32-bit arithmetic so browsers need no Web Crypto
// round trip.

import { MacslotError, show } from '../errors.js';

// The state holds four 64-bit words as (high, low) 32-bit halves: v0 = s[0..1], v1 = s[2..3], v2 = s[4..5], v3 = s[6..7].
function add(s: Uint32Array, a: number, b: number): void {
  const lo = s[a + 1]! + s[b + 1]!;
  s[a] = (s[a]! + s[b]! + (lo > 0xffff_ffff ? 1 : 0)) >>> 0;
  s[a + 1] = lo >>> 0;
}

function rotl(s: Uint32Array, a: number, r: number): void {
  const hi = s[a]!;
  const lo = s[a + 1]!;
  if (r === 32) {
    s[a] = lo;
    s[a + 1] = hi;
    return;
  }
  s[a] = ((hi << r) | (lo >>> (32 - r))) >>> 0;
  s[a + 1] = ((lo << r) | (hi >>> (32 - r))) >>> 0;
}

function xor(s: Uint32Array, a: number, b: number): void {
  s[a] = (s[a]! ^ s[b]!) >>> 0;
  s[a + 1] = (s[a + 1]! ^ s[b + 1]!) >>> 0;
}

function round(s: Uint32Array): void {
  add(s, 0, 2);
  rotl(s, 2, 13);
  xor(s, 2, 0);
  rotl(s, 0, 32);
  add(s, 4, 6);
  rotl(s, 6, 16);
  xor(s, 6, 4);
  add(s, 0, 6);
  rotl(s, 6, 21);
  xor(s, 6, 0);
  add(s, 4, 2);
  rotl(s, 2, 17);
  xor(s, 2, 4);
  rotl(s, 4, 32);
}

function le32(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
}

/** Returns SipHash-2-4 of `message` under the 16-byte `key` as 8 little-endian bytes; throws INVALID_ARGUMENT for another key size. */
export function sipHash24(key: Uint8Array, message: Uint8Array): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== 16)
    throw new MacslotError('INVALID_ARGUMENT', `a SipHash key is 16 bytes, got ${show(key)}`);
  if (!(message instanceof Uint8Array))
    throw new MacslotError('INVALID_ARGUMENT', `a SipHash message is a Uint8Array, got ${show(message)}`);
  const k0h = le32(key, 4),
    k0l = le32(key, 0),
    k1h = le32(key, 12),
    k1l = le32(key, 8);
  // The initial constants spell "somepseudorandomlygeneratedbytes".
  const s = Uint32Array.of(
    k0h ^ 0x736f6d65,
    k0l ^ 0x70736575,
    k1h ^ 0x646f7261,
    k1l ^ 0x6e646f6d,
    k0h ^ 0x6c796765,
    k0l ^ 0x6e657261,
    k1h ^ 0x74656462,
    k1l ^ 0x79746573,
  );
  const m = new Uint32Array(2);
  const absorb = (): void => {
    s[6] = (s[6]! ^ m[0]!) >>> 0;
    s[7] = (s[7]! ^ m[1]!) >>> 0;
    round(s);
    round(s);
    s[0] = (s[0]! ^ m[0]!) >>> 0;
    s[1] = (s[1]! ^ m[1]!) >>> 0;
  };
  const whole = message.length - (message.length % 8);
  for (let i = 0; i < whole; i += 8) {
    m[0] = le32(message, i + 4);
    m[1] = le32(message, i);
    absorb();
  }
  // The last word carries the leftover bytes and the message length modulo 256 in its top byte.
  const tail = new Uint8Array(8);
  tail.set(message.subarray(whole));
  tail[7] = message.length & 0xff;
  m[0] = le32(tail, 4);
  m[1] = le32(tail, 0);
  absorb();
  s[5] = (s[5]! ^ 0xff) >>> 0;
  for (let i = 0; i < 4; i++) round(s);
  const hi = (s[0]! ^ s[2]! ^ s[4]! ^ s[6]!) >>> 0;
  const lo = (s[1]! ^ s[3]! ^ s[5]! ^ s[7]!) >>> 0;
  return Uint8Array.of(
    lo & 0xff,
    (lo >>> 8) & 0xff,
    (lo >>> 16) & 0xff,
    lo >>> 24,
    hi & 0xff,
    (hi >>> 8) & 0xff,
    (hi >>> 16) & 0xff,
    hi >>> 24,
  );
}
