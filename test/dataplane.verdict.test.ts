// The verdict word codec: what verdictRule, verdictRuleId, verdictRef, verdictPath and verdictDrops read from the words the
// data plane writes agrees with its own decode, and words it never writes still read as something defined.
import { describe, expect, it } from 'vitest';
import { DataPlane, Mac, Nic, RULES, VERDICT_NO_REF, verdictDrops, verdictPath, verdictRef, verdictRule, verdictRuleId } from 'macslot';

function frameTo(dst: string, length = 64): Uint8Array {
  const f = new Uint8Array(length);
  Mac.parse(dst).writeTo(f, 0);
  return f;
}

async function setup() {
  const nic = new Nic({ primary: '02:00:00:00:00:01', unicastEntries: 1, multicastEntries: 1, maxClients: 4 });
  const dp = await DataPlane.create(nic, { lanes: 1 });
  const a = nic.openClient('a');
  const b = nic.openClient('b');
  const hw = a.addressAdd('02:00:00:00:00:0a').mac.toString();
  b.multicastJoin('01:00:5e:00:00:01');
  // The NIC's exact entries are taken: b's MAC goes to software.
  const sw = b.addressAdd('02:00:00:00:00:0b').mac.toString();
  return { dp, a, b, hw, sw };
}

// Each frame the data plane decides, with what its word must say; `ref` is a client name, a group, or none.
const WORDS: {
  name: string;
  frame: (m: { hw: string; sw: string }) => Uint8Array;
  rule: string;
  path: string;
  ref: 'a' | 'b' | 'group' | 'none';
}[] = [
  { name: 'unicast to a hardware MAC', frame: (m) => frameTo(m.hw), rule: 'unicast-exact', path: 'hardware', ref: 'a' },
  { name: 'unicast to a software MAC', frame: (m) => frameTo(m.sw), rule: 'software', path: 'software', ref: 'b' },
  { name: 'broadcast', frame: () => frameTo('ff:ff:ff:ff:ff:ff'), rule: 'broadcast', path: 'hardware', ref: 'none' },
  { name: 'a joined group', frame: () => frameTo('01:00:5e:00:00:01'), rule: 'multicast-exact', path: 'hardware', ref: 'group' },
  // The software MAC made the NIC promiscuous, so software drops what nobody holds.
  { name: 'a MAC nobody holds', frame: () => frameTo('02:00:00:00:00:99'), rule: 'drop-unknown', path: 'software', ref: 'none' },
  { name: 'a runt', frame: () => new Uint8Array(10), rule: 'drop-runt', path: 'hardware', ref: 'none' },
];

describe('verdict codec', () => {
  it.each(WORDS)('$name: rule, id, path, reference and drop agree with decode', async ({ frame, rule, path, ref }) => {
    const { dp, a, b, hw, sw } = await setup();
    dp.classify(frame({ hw, sw }));
    const word = dp.verdicts[0]!;
    expect(verdictRule(word)).toBe(rule);
    expect(verdictRuleId(word)).toBe(RULES.indexOf(verdictRule(word)));
    expect(verdictPath(word)).toBe(path);
    expect(verdictDrops(word)).toBe(rule.startsWith('drop-'));
    const expected = { a: a.id, b: b.id, none: VERDICT_NO_REF, group: verdictRef(word) }[ref];
    expect(verdictRef(word)).toBe(expected);
    if (ref === 'group') expect(verdictRef(word)).not.toBe(VERDICT_NO_REF);
    expect(dp.decode(word)).toMatchObject({ rule: verdictRule(word), path: verdictPath(word) });
    dp.close();
  });

  // Words the data plane never writes: the codec reads them without throwing, and unknown rule ids as a drop.
  const ODD_WORDS: { name: string; word: number; rule: string; id: number; ref: number; path: string }[] = [
    { name: 'every bit set', word: 0xffff_ffff, rule: 'drop-bad-descriptor', id: 31, ref: 0xffff, path: 'software' },
    { name: 'zero', word: 0, rule: 'broadcast', id: 0, ref: 0, path: 'hardware' },
    { name: 'the first id past the rules', word: RULES.length, rule: 'drop-bad-descriptor', id: RULES.length, ref: 0, path: 'hardware' },
    { name: 'bits 5, 6 and 8..15 only', word: 0xff60, rule: 'broadcast', id: 0, ref: 0, path: 'hardware' },
  ];
  it.each(ODD_WORDS)('$name reads as a defined verdict', ({ word, rule, id, ref, path }) => {
    expect(verdictRule(word)).toBe(rule);
    expect(verdictRuleId(word)).toBe(id);
    expect(verdictRef(word)).toBe(ref);
    expect(verdictPath(word)).toBe(path);
    expect(verdictDrops(word)).toBe(rule.startsWith('drop-'));
  });
});
