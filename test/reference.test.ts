// The reference filter: edge frames, the MTA hash vectors, and keys of both kinds.
import { describe, expect, it } from 'vitest';
import { Mac, Nic, classifyFrame, classifyKey, mtaIndex } from 'macslot';

describe('mtaIndex (Intel MTA, prior-art §2.2)', () => {
  // a4, a5 are the last two bytes on the wire.
  it.each([
    { name: '01:AA:00:12:34:56, MO 0', a4: 0x34, a5: 0x56, mo: 0, index: 0x563 },
    { name: '01:AA:00:12:34:56, MO 1', a4: 0x34, a5: 0x56, mo: 1, index: 0xac6 },
    { name: '01:AA:00:12:34:56, MO 2', a4: 0x34, a5: 0x56, mo: 2, index: 0x58d },
    { name: '01:AA:00:12:34:56, MO 3', a4: 0x34, a5: 0x56, mo: 3, index: 0x634 },
    { name: 'all-hosts/all-nodes/solicited-node, MO 0', a4: 0x00, a5: 0x01, mo: 0, index: 0x010 },
    { name: 'all-hosts/all-nodes/solicited-node, MO 1', a4: 0x00, a5: 0x01, mo: 1, index: 0x020 },
    { name: 'all-hosts/all-nodes/solicited-node, MO 2', a4: 0x00, a5: 0x01, mo: 2, index: 0x040 },
    { name: 'all-hosts/all-nodes/solicited-node, MO 3', a4: 0x00, a5: 0x01, mo: 3, index: 0x100 },
    { name: 'broadcast, MO 0', a4: 0xff, a5: 0xff, mo: 0, index: 0xfff },
    { name: 'broadcast, MO 3', a4: 0xff, a5: 0xff, mo: 3, index: 0xfff },
  ])('$name', ({ a4, a5, mo, index }) => {
    expect(mtaIndex(a4, a5, mo)).toBe(index);
  });
});

describe('edge frames', () => {
  const nic = new Nic({ primary: '00:14:4f:00:00:00', maxFrameLength: 100 });
  const frame = (len: number, dst = '00:14:4f:00:00:00'): Uint8Array => {
    const f = new Uint8Array(len);
    if (len >= 6) Mac.parse(dst).writeTo(f);
    return f;
  };
  it.each([
    { name: 'empty', len: 0, rule: 'drop-runt' },
    { name: 'one byte', len: 1, rule: 'drop-runt' },
    { name: '13 bytes', len: 13, rule: 'drop-runt' },
    { name: 'exactly a header', len: 14, rule: 'unicast-exact' },
    { name: 'exactly the maximum', len: 100, rule: 'unicast-exact' },
    { name: 'one past the maximum', len: 101, rule: 'drop-oversize' },
  ])('$name → $rule', ({ len, rule }) => {
    expect(classifyFrame(nic.filterState(), frame(len)).rule).toBe(rule);
  });
});

describe('keys of both kinds', () => {
  it('matches an EUI-64 only as an EUI-64', () => {
    const nic = new Nic({ primary: '00:14:4f:00:00:00' });
    const c = nic.openClient('zigbee');
    c.addressAdd('02:00:00:ff:fe:00:00:01');
    c.addressAdd('00:00:02:00:00:00:00:01');
    expect(classifyKey(nic.filterState(), Mac.parse('02:00:00:ff:fe:00:00:01')).deliver).toEqual([c.id]);
    expect(classifyKey(nic.filterState(), Mac.parse('02:00:00:00:00:01')).rule).toBe('drop-unknown');
    expect(classifyKey(nic.filterState(), Mac.parse('ff:ff:ff:ff:ff:ff:ff:ff')).rule).toBe('broadcast');
  });
});
