// Live page: the traffic mix, the repeating frame pattern the generator replays, and hex text for frames.

import { Mac } from '../index.js';

/** Kinds of generated frames, as `macslot gen` names them. */
export const KINDS = ['unicast', 'broadcast', 'multicast', 'unknown', 'flood', 'runt'] as const;
/** One kind of generated frame. */
export type Kind = (typeof KINDS)[number];
/** Relative weight of each kind. */
export type Mix = Record<Kind, number>;

/** The page's default mix: mostly the clients' own MACs, some of everything else. */
export const DEFAULT_MIX: Readonly<Mix> = { unicast: 8, broadcast: 1, multicast: 2, unknown: 2, flood: 1, runt: 1 };

/** What the generator sends: destinations, the mix, the frame length and the rate. Structured-cloneable. */
export interface Plan {
  /** Active unicast MACs of the clients (the primary's included). */
  readonly unicast: readonly string[];
  /** Groups some client joined. */
  readonly groups: readonly string[];
  readonly mix: Mix;
  /** Frame length in bytes (runts excepted). */
  readonly size: number;
  /** Frames per second; 0 for as fast as possible. */
  readonly rate: number;
  /** Ids of the open clients, whose rings the generator drains as their consumers would. */
  readonly clients: readonly number[];
}

/** One frame of the pattern, with its kind for the sample table. */
export interface PatternFrame {
  readonly kind: Kind;
  readonly bytes: Uint8Array;
}

/** Frames in one pattern: the generator cycles through them. */
export const PATTERN_FRAMES = 256;
const RUNT = 10;

/** Order of kinds by smooth weighted round-robin: each kind as often as its weight, evenly spread. */
function kindOrder(mix: Mix, count: number): Kind[] {
  const total = KINDS.reduce((a, k) => a + mix[k], 0);
  if (total <= 0) return [];
  const current: Record<Kind, number> = { unicast: 0, broadcast: 0, multicast: 0, unknown: 0, flood: 0, runt: 0 };
  const out: Kind[] = [];
  for (let i = 0; i < count; i++) {
    let best: Kind | undefined;
    for (const k of KINDS) {
      if (mix[k] <= 0) continue;
      current[k] += mix[k];
      if (best === undefined || current[k] > current[best]) best = k;
    }
    current[best!] -= total;
    out.push(best!);
  }
  return out;
}

function destination(kind: Kind, plan: Plan, i: number): Mac {
  const pick = (list: readonly string[]): string | undefined => list[i % Math.max(1, list.length)];
  const low = [(i >> 8) & 0xff, i & 0xff];
  if (kind === 'broadcast') return Mac.parse('ff:ff:ff:ff:ff:ff');
  if (kind === 'unicast' || kind === 'runt') return Mac.parse(pick(plan.unicast) ?? '02:00:5e:10:00:01');
  if (kind === 'multicast') return Mac.parse(pick(plan.groups) ?? '01:00:5e:7f:00:01');
  if (kind === 'flood') return Mac.fromBytes(Uint8Array.from([0x01, 0x00, 0x5e, 0x7f, ...low]), 0, 6);
  return Mac.fromBytes(Uint8Array.from([0x02, 0x00, 0x5e, 0x10, ...low]), 0, 6);
}

/** Returns the repeating pattern for `plan`: kinds in mix order, each to its next destination. Empty when every weight is 0. */
export function buildPattern(plan: Plan, count = PATTERN_FRAMES): PatternFrame[] {
  return kindOrder(plan.mix, count).map((kind, i) => {
    const length = kind === 'runt' ? RUNT : plan.size;
    const bytes = new Uint8Array(length);
    destination(kind, plan, i).writeTo(bytes, 0);
    if (length >= 14) {
      bytes.set([0x02, 0x99, 0, 0, (i >> 8) & 0xff, i & 0xff], 6);
      bytes.set([0x08, 0x00], 12);
    }
    return { kind, bytes };
  });
}

/** Renders bytes as hex pairs separated by spaces. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** Parses hex bytes (separators `:`, `-`, `.` and white space allowed); undefined when the text is not whole hex bytes. */
export function fromHex(text: string): Uint8Array | undefined {
  const hex = text.replace(/[\s:.-]/g, '');
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) return undefined;
  return Uint8Array.from(hex.match(/../g)!, (b) => parseInt(b, 16));
}
