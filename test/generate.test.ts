// MAC generation: random locally administered MACs and blocks under an OUI or prefix, with collision avoidance.
import { describe, expect, it } from 'vitest';
import { Mac, MacBlock, ethRandomAddr, randomAddr, type RandomSource } from 'macslot';

function xorshift(seed: number): RandomSource {
  let s = seed >>> 0 || 1;
  return (out) => {
    for (let i = 0; i < out.length; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      out[i] = s & 0xff;
    }
  };
}
const constant =
  (b: number): RandomSource =>
  (out) =>
    out.fill(b);

describe('ethRandomAddr', () => {
  it.each([
    { name: 'all ones from the source', source: constant(0xff), expected: 'fe:ff:ff:ff:ff:ff' },
    { name: 'all zeros from the source', source: constant(0), expected: '02:00:00:00:00:00' },
  ])('clears the group bit and sets the local bit: $name', ({ source, expected }) => {
    expect(ethRandomAddr(source).toString()).toBe(expected);
  });

  it('gives 100,000 valid, locally administered unicast MACs', () => {
    const random = xorshift(7);
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) {
      const mac = ethRandomAddr(random);
      expect(mac.isLocal && mac.isValidUnicast).toBe(true);
      seen.add(mac.toString());
    }
    expect(seen.size).toBeGreaterThan(99_990);
  });

  it('randomAddr avoids taken MACs and fails clearly when it cannot', () => {
    const random = xorshift(3);
    const first = randomAddr({ random: xorshift(3) });
    const next = randomAddr({ random, taken: new Set([first.toString()]) });
    expect(next.equals(first)).toBe(false);
    expect(() => randomAddr({ taken: () => true })).toThrow(expect.objectContaining({ code: 'BLOCK_EXHAUSTED' }));
  });
});

describe('MacBlock', () => {
  it.each([
    {
      name: 'prefix string with length',
      spec: '02:08:20/24' as const,
      first: '02:08:20:00:00:00',
      last: '02:08:20:ff:ff:ff',
      size: 2 ** 24,
    },
    { name: 'prefix object', spec: { prefix: '02:08:20' }, first: '02:08:20:00:00:00', last: '02:08:20:ff:ff:ff', size: 2 ** 24 },
    { name: '28-bit prefix', spec: '00:14:4f:00:00:00/28', first: '00:14:4f:00:00:00', last: '00:14:4f:0f:ff:ff', size: 2 ** 20 },
    {
      name: 'base and count',
      spec: { base: '00:14:4f:00:00:01', count: 8 },
      first: '00:14:4f:00:00:01',
      last: '00:14:4f:00:00:08',
      size: 8,
    },
  ])('describes $name', ({ spec, first, last, size }) => {
    const block = new MacBlock(spec);
    expect([block.first.toString(), block.last.toString(), block.size]).toEqual([first, last, size]);
    expect(block.contains(first) && block.contains(last)).toBe(true);
    expect(block.contains(Mac.fromNumber(block.base + block.size))).toBe(false);
  });

  it('hands out sequential MACs, skips taken ones, and fails when full', () => {
    const block = new MacBlock({ base: '02:00:00:00:00:01', count: 4 });
    const taken = new Set(['02:00:00:00:00:02']);
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const m = block.next(taken).toString();
      got.push(m);
      taken.add(m);
    }
    expect(got).toEqual(['02:00:00:00:00:01', '02:00:00:00:00:03', '02:00:00:00:00:04']);
    expect(() => block.next(taken)).toThrow(/BLOCK_EXHAUSTED.*02:00:00:00:00:01\.\.02:00:00:00:00:04/);
  });

  it('finds the last free MAC at random and fails when full', () => {
    const block = new MacBlock('02:00:00:00:00:00/44');
    const taken = new Set<string>();
    for (let i = 0; i < 16; i++) if (i !== 11) taken.add(block.at(i).toString());
    expect(block.random(taken, xorshift(5)).toString()).toBe(block.at(11).toString());
    taken.add(block.at(11).toString());
    expect(() => block.random(taken, xorshift(5))).toThrow(expect.objectContaining({ code: 'BLOCK_EXHAUSTED' }));
  });

  it('never carries into the OUI', () => {
    const block = new MacBlock('02:08:20:ff:ff:f0/44');
    const got = Array.from({ length: 16 }, () => block.next().toString());
    expect(got.every((m) => m.startsWith('02:08:20:ff:ff:f'))).toBe(true);
    expect(new Set(got).size).toBe(16);
    expect(() => block.next(new Set(got))).toThrow(expect.objectContaining({ code: 'BLOCK_EXHAUSTED' }));
  });

  it.each([
    { name: 'group bit in the prefix', spec: '01:00:5e/24' },
    { name: 'prefix shorter than 8 bits', spec: '02/7' },
    { name: 'prefix of 48 bits', spec: '02:00:00:00:00:01/48' },
    { name: 'non-hex prefix', spec: '02:zz:20/24' },
    { name: 'two slashes', spec: '02:08:20/24/2' },
    { name: 'count 0', spec: { base: '02:00:00:00:00:01', count: 0 } },
    { name: 'past MAC-48 space', spec: { base: 'fe:ff:ff:ff:ff:ff', count: 2 } },
    { name: 'first octet would change', spec: { base: '00:ff:ff:ff:ff:fe', count: 4 } },
  ])('rejects $name with INVALID_ARGUMENT', ({ spec }) => {
    expect(() => new MacBlock(spec as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
