// Management layer: stable MACs derived from a guest identity and a secret, needing no store (systemd's persistent policy, keyed by the
// caller's secret).

import { MacBlock } from '../alloc/generate.js';
import { MacslotError, show } from '../errors.js';
import { ETH_GROUP_BIT, ETH_LOCAL_BIT, Mac } from '../wire/mac.js';
import { sipHash24 } from './siphash.js';

const encoder = new TextEncoder();
// Fixed keys that turn a text secret into a 128-bit key; two of them so the halves are independent.
const SECRET_KEY_A = encoder.encode('macslot secret/A');
const SECRET_KEY_B = encoder.encode('macslot secret/B');

/**
 * Returns the 16-byte key for `secret`: the bytes themselves, or two SipHash outputs of a text; throws INVALID_ARGUMENT for anything else.
 */
export function deriveKey(secret: string | Uint8Array): Uint8Array {
  if (secret instanceof Uint8Array) {
    if (secret.length !== 16) throw new MacslotError('INVALID_ARGUMENT', `a binary secret must be 16 bytes, got ${show(secret)}`);
    return secret.slice();
  }
  if (typeof secret !== 'string' || secret.length === 0)
    throw new MacslotError('INVALID_ARGUMENT', `a secret must be a non-empty string or 16 bytes, got ${show(secret)}`);
  const bytes = encoder.encode(secret);
  const key = new Uint8Array(16);
  key.set(sipHash24(SECRET_KEY_A, bytes), 0);
  key.set(sipHash24(SECRET_KEY_B, bytes), 8);
  return key;
}

/**
 * Returns the MAC-48 that `identity` always maps to under `secret`: locally administered unicast, or
 * inside `prefix` (a MacBlock spec such as "02:08:20/24") when given. Throws INVALID_ARGUMENT for an
 * empty identity, a bad secret or a bad prefix.
 */
export function deriveMac(identity: string, secret: string | Uint8Array, options: { prefix?: string } = {}): Mac {
  if (typeof identity !== 'string' || identity.length === 0 || identity.length > 1024) {
    throw new MacslotError('INVALID_ARGUMENT', `an identity must be a non-empty string of at most 1024 characters, got ${show(identity)}`);
  }
  const h = sipHash24(deriveKey(secret), encoder.encode(identity));
  if (options.prefix === undefined) {
    // The first six bytes of the little-endian hash, then the random rule: unicast, locally administered.
    const b = h.slice(0, 6);
    b[0] = (b[0]! & ~ETH_GROUP_BIT) | ETH_LOCAL_BIT;
    return Mac.fromBytes(b);
  }
  const block = new MacBlock(options.prefix);
  const n = ((h[0]! << 8) | h[1]!) * 0x1_0000_0000 + (((h[2]! << 24) | (h[3]! << 16) | (h[4]! << 8) | h[5]!) >>> 0);
  let mac = block.at(n % block.size);
  // Only a prefix of all zeros can yield the zero MAC; its neighbour keeps the result stable and valid.
  if (mac.isZero) mac = block.at(1 % block.size);
  if (mac.isZero) throw new MacslotError('INVALID_ARGUMENT', `prefix ${show(options.prefix)} holds no usable MAC`);
  return mac;
}
