// Data plane: the verdict word codec. Every reader of `DataPlane.verdicts`, of a ring's verdicts and of the rule counters
// decodes through these functions; the bit positions come from the generated mirror of assembly/layout.ts.

import { RULES, type Path, type Rule } from '../filter/reference.js';
import { R_DROP_UNKNOWN, V_NO_REF, V_REF_SHIFT, V_RULE_MASK, V_SOFTWARE } from './layout.generated.js';

/** The reference of a verdict that names no client or group (drops, broadcast, promiscuous). */
export const VERDICT_NO_REF = V_NO_REF;

/**
 * Returns a verdict word's rule id: the index of its rule in `RULES` (bits 0..4). Ids at or above `RULES.length` do not
 * occur in words the data plane writes.
 */
export function verdictRuleId(word: number): number {
  return word & V_RULE_MASK;
}

/** Returns a verdict word's rule; an id the data plane never writes reads as `drop-bad-descriptor`. */
export function verdictRule(word: number): Rule {
  return RULES[word & V_RULE_MASK] ?? 'drop-bad-descriptor';
}

/**
 * Returns a verdict word's reference (bits 16..31): the receiving client's id for `unicast-exact` and `software`, the
 * multicast group's index for the `multicast-*` rules, `VERDICT_NO_REF` otherwise.
 */
export function verdictRef(word: number): number {
  return word >>> V_REF_SHIFT;
}

/** Returns who decided: `software` when the software path bit (bit 7) is set, else `hardware`. */
export function verdictPath(word: number): Path {
  return (word & V_SOFTWARE) !== 0 ? 'software' : 'hardware';
}

/** Returns true when the verdict delivers to nobody (a rule starting with `drop-`). */
export function verdictDrops(word: number): boolean {
  return (word & V_RULE_MASK) >= R_DROP_UNKNOWN;
}
