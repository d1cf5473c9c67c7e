// Allocation: random locally administered MACs and blocks under an OUI or prefix, with collision avoidance.

import { MacslotError, show } from '../errors.js';
import { ETH_GROUP_BIT, ETH_LOCAL_BIT, Mac, type MacLike } from '../wire/mac.js';

/** Fills `out` with random bytes. Inject a seeded one for reproducible runs. */
export type RandomSource = (out: Uint8Array) => void;

/** The platform's cryptographic generator (Web Crypto, present in Node ≥ 19 and every browser). */
export const cryptoRandom: RandomSource = (out) => {
  globalThis.crypto.getRandomValues(out);
};

/** MACs already in use: a set of canonical strings, or a predicate. */
export type TakenSet = ReadonlySet<string> | ((mac: Mac) => boolean);

function isTaken(taken: TakenSet | undefined, mac: Mac): boolean {
  if (taken === undefined) return false;
  return typeof taken === 'function' ? taken(mac) : taken.has(mac.toString());
}

/** Returns a random locally administered unicast MAC-48, as Linux `eth_random_addr`. */
export function ethRandomAddr(random: RandomSource = cryptoRandom): Mac {
  const b = new Uint8Array(6);
  random(b);
  b[0] = (b[0]! & ~ETH_GROUP_BIT) | ETH_LOCAL_BIT;
  return Mac.fromBytes(b);
}

/** Returns a random locally administered unicast MAC-48 not in `taken`; throws BLOCK_EXHAUSTED after `attempts` collisions. */
export function randomAddr(options: { taken?: TakenSet; random?: RandomSource; attempts?: number } = {}): Mac {
  const attempts = options.attempts ?? 64;
  for (let i = 0; i < attempts; i++) {
    const mac = ethRandomAddr(options.random);
    if (!mac.isZero && !isTaken(options.taken, mac)) return mac;
  }
  throw new MacslotError('BLOCK_EXHAUSTED', `no free random MAC after ${attempts} attempts`);
}

const SPACE = 2 ** 48;

/** How to describe a block: `"02:08:20/24"`, `{ prefix: "02:08:20" }` (bits default to its length), or `{ base, count }`. */
export type MacBlockSpec =
  | string
  | {
      /** The fixed leading bits, as a MAC prefix. */
      prefix: string;
      /** How many leading bits the prefix fixes. */
      bits?: number;
    }
  | {
      /** The first MAC of the block. */
      base: MacLike;
      /** How many MACs follow from it. */
      count: number;
    };

function random48(random: RandomSource): number {
  const b = new Uint8Array(6);
  random(b);
  return ((b[0]! << 8) | b[1]!) * 0x1_0000_0000 + (((b[2]! << 24) | (b[3]! << 16) | (b[4]! << 8) | b[5]!) >>> 0);
}

function parsePrefix(prefix: string, bitsGiven: number | undefined, spec: unknown): { base: number; bits: number } {
  const groups = prefix.trim().split(/[:-]/);
  if (groups.length < 1 || groups.length > 6 || groups.some((g) => !/^[0-9a-fA-F]{1,2}$/.test(g))) {
    throw new MacslotError('INVALID_ARGUMENT', `block prefix ${show(spec)} is not 1 to 6 hex octets`);
  }
  const bytes = new Uint8Array(6);
  groups.forEach((g, i) => (bytes[i] = parseInt(g, 16)));
  const bits = bitsGiven ?? groups.length * 8;
  return { base: Mac.fromBytes(bytes).toNumber(), bits };
}

/** A contiguous range of MAC-48s (an OUI block, a prefix, or base + count) handing out unique unicast MACs. */
export class MacBlock {
  /** First MAC of the block as a 48-bit number. */
  readonly base: number;
  /** Number of MACs in the block. */
  readonly size: number;
  private cursor = 0;

  /** Throws INVALID_ARGUMENT for a malformed spec, a range that leaves MAC-48 space, or one that would yield multicast MACs. */
  constructor(spec: MacBlockSpec) {
    let base: number;
    let size: number;
    if (typeof spec === 'string' || 'prefix' in spec) {
      const text = typeof spec === 'string' ? spec : spec.prefix;
      const [pfx, bitsText, extra] = text.split('/');
      if (extra !== undefined || pfx === undefined) throw new MacslotError('INVALID_ARGUMENT', `block ${show(spec)} has more than one "/"`);
      let bits = typeof spec === 'string' ? undefined : spec.bits;
      if (bitsText !== undefined) {
        if (!/^\d{1,2}$/.test(bitsText))
          throw new MacslotError('INVALID_ARGUMENT', `block ${show(spec)}: prefix length ${show(bitsText)} is not a number`);
        bits = Number(bitsText);
      }
      const p = parsePrefix(pfx, bits, spec);
      if (!Number.isInteger(p.bits) || p.bits < 8 || p.bits > 47) {
        throw new MacslotError(
          'INVALID_ARGUMENT',
          `block ${show(spec)}: prefix length ${p.bits} must be 8..47 bits so the first octet stays fixed`,
        );
      }
      size = 2 ** (48 - p.bits);
      base = Math.floor(p.base / size) * size;
    } else {
      base = Mac.from(spec.base).toNumber();
      size = spec.count;
      if (!Number.isSafeInteger(size) || size < 1 || base + size > SPACE) {
        throw new MacslotError(
          'INVALID_ARGUMENT',
          `block ${show({ base: String(spec.base), count: spec.count })}: count must be ≥ 1 and stay inside MAC-48 space`,
        );
      }
    }
    const first = Math.floor(base / 2 ** 40);
    const last = Math.floor((base + size - 1) / 2 ** 40);
    if (first !== last || (first & ETH_GROUP_BIT) !== 0) {
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `block ${show(typeof spec === 'string' ? spec : JSON.stringify(spec))} would hand out multicast MACs (first octet must be fixed ` +
          `with the group bit clear)`,
      );
    }
    this.base = base;
    this.size = size;
  }

  /** Returns the first MAC of the block. */
  get first(): Mac {
    return Mac.fromNumber(this.base);
  }
  /** Returns the last MAC of the block. */
  get last(): Mac {
    return Mac.fromNumber(this.base + this.size - 1);
  }

  /** Returns true when `mac` is a MAC-48 inside the block. */
  contains(mac: MacLike): boolean {
    const m = Mac.from(mac);
    if (m.kind !== 'mac48') return false;
    const n = m.toNumber();
    return n >= this.base && n < this.base + this.size;
  }

  /** Returns the `i`-th MAC of the block; throws INVALID_ARGUMENT outside it. */
  at(i: number): Mac {
    if (!Number.isSafeInteger(i) || i < 0 || i >= this.size)
      throw new MacslotError('INVALID_ARGUMENT', `index ${i} is outside a block of ${this.size}`);
    return Mac.fromNumber(this.base + i);
  }

  private usable(i: number, taken: TakenSet | undefined): Mac | undefined {
    const mac = Mac.fromNumber(this.base + i);
    return mac.isZero || isTaken(taken, mac) ? undefined : mac;
  }

  private scan(start: number, taken: TakenSet | undefined): { mac: Mac; index: number } {
    for (let k = 0; k < this.size; k++) {
      const i = (start + k) % this.size;
      const mac = this.usable(i, taken);
      if (mac) return { mac, index: i };
    }
    throw new MacslotError(
      'BLOCK_EXHAUSTED',
      `block ${this.first.toString()}..${this.last.toString()} (${this.size} MACs) has no free MAC`,
    );
  }

  /** Returns the next free MAC after the last one handed out, wrapping once; throws BLOCK_EXHAUSTED when none is free. */
  next(taken?: TakenSet): Mac {
    const { mac, index } = this.scan(this.cursor, taken);
    this.cursor = (index + 1) % this.size;
    return mac;
  }

  /** Returns a uniformly random free MAC of the block; throws BLOCK_EXHAUSTED when none is free. */
  random(taken?: TakenSet, random: RandomSource = cryptoRandom): Mac {
    const limit = Math.floor(SPACE / this.size) * this.size;
    for (let attempt = 0; attempt < 64; attempt++) {
      const r = random48(random);
      if (r >= limit) continue;
      const mac = this.usable(r % this.size, taken);
      if (mac) return mac;
    }
    return this.scan(Math.floor(random48(random) % this.size), taken).mac;
  }
}
