// MAC identifiers: every notation, malformed input, EUI-64 versus MAC-48, keys and the kernel's predicates.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Mac,
  MacslotError,
  isBroadcastEtherAddr,
  isLocalEtherAddr,
  isMulticastEtherAddr,
  isUnicastEtherAddr,
  isValidEtherAddr,
  isZeroEtherAddr,
} from 'macslot';

const NOTATIONS = [
  { name: 'colon lowercase', text: '02:00:5e:10:00:01' },
  { name: 'colon uppercase', text: '02:00:5E:10:00:01' },
  { name: 'hyphen', text: '02-00-5e-10-00-01' },
  { name: 'Cisco dotted', text: '0200.5e10.0001' },
  { name: 'Cisco dotted mixed case', text: '0200.5E10.0001' },
  { name: 'bare hex', text: '02005e100001' },
  { name: 'single-digit groups as illumos prints them', text: '2:0:5e:10:0:1' },
  { name: 'surrounding whitespace', text: '  02:00:5e:10:00:01\n' },
];

const EUI64 = [
  { name: 'EUI-64 colon', text: '02:00:5e:ff:fe:10:00:01' },
  { name: 'EUI-64 hyphen', text: '02-00-5E-FF-FE-10-00-01' },
  { name: 'EUI-64 dotted', text: '0200.5eff.fe10.0001' },
  { name: 'EUI-64 bare', text: '02005efffe100001' },
];

const MALFORMED: { name: string; input: unknown }[] = [
  { name: 'empty', input: '' },
  { name: 'whitespace only', input: '   ' },
  { name: 'five groups', input: '00:11:22:33:44' },
  { name: 'seven groups', input: '00:11:22:33:44:55:66' },
  { name: 'nine groups', input: '00:11:22:33:44:55:66:77:88' },
  { name: 'three-digit group', input: '000:11:22:33:44:55' },
  { name: 'non-hex group', input: '00:11:22:33:44:zz' },
  { name: 'mixed separators', input: '00:11-22:33:44:55' },
  { name: 'trailing separator', input: '00:11:22:33:44:55:' },
  { name: 'double separator', input: '00::11:22:33:44' },
  { name: 'dotted with a three-digit group', input: '0200.5e1.0001' },
  { name: 'dotted with two groups', input: '0200.5e10' },
  { name: 'bare, 11 digits', input: '02005e10000' },
  { name: 'bare, 13 digits', input: '02005e1000011' },
  { name: 'bare, non-hex', input: '02005e10000g' },
  { name: 'hex prefix', input: '0x02005e100001' },
  { name: 'a number', input: 42 },
  { name: 'null', input: null },
  { name: 'an object', input: { mac: '00:11:22:33:44:55' } },
  { name: 'zero bytes', input: new Uint8Array(0) },
  { name: 'five bytes', input: new Uint8Array(5) },
  { name: 'seven bytes', input: new Uint8Array(7) },
  { name: 'nine bytes', input: new Uint8Array(9) },
];

describe('parsing', () => {
  it.each(NOTATIONS)('$name', ({ text }) => {
    const mac = Mac.parse(text);
    expect(mac.toString()).toBe('02:00:5e:10:00:01');
    expect(mac.kind).toBe('mac48');
  });

  it.each(EUI64)('$name', ({ text }) => {
    const mac = Mac.parse(text);
    expect(mac.toString()).toBe('02:00:5e:ff:fe:10:00:01');
    expect(mac.kind).toBe('eui64');
    expect(mac.length).toBe(8);
  });

  it.each(MALFORMED)('rejects $name with INVALID_MAC naming the input', ({ input }) => {
    let caught: unknown;
    try {
      Mac.from(input as string);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(MacslotError);
    expect((caught as MacslotError).code).toBe('INVALID_MAC');
    if (typeof input === 'string' && input.trim() !== '') expect((caught as MacslotError).message).toContain(input);
  });
});

describe('kinds and keys', () => {
  it('never equates a MAC-48 with an EUI-64 holding the same value', () => {
    const m48 = Mac.parse('00:11:22:33:44:55');
    const m64 = Mac.parse('00:00:00:11:22:33:44:55');
    expect(m48.toBigInt()).toBe(m64.toBigInt());
    expect(m48.equals(m64)).toBe(false);
    expect(m48.key).not.toBe(m64.key);
    expect(typeof m48.key).toBe('number');
    expect(typeof m64.key).toBe('string');
  });

  it('round-trips numbers and bigints', () => {
    const mac = Mac.parse('00:14:4f:00:00:01');
    expect(mac.toNumber()).toBe(0x00144f000001);
    expect(Mac.fromNumber(0x00144f000001).equals(mac)).toBe(true);
    expect(Mac.fromBigInt(0x0200_5eff_fe10_0001n, 'eui64').toString()).toBe('02:00:5e:ff:fe:10:00:01');
  });

  it.each([
    { name: 'negative', n: -1 },
    { name: '2^48', n: 2 ** 48 },
    { name: 'fraction', n: 1.5 },
    { name: 'NaN', n: Number.NaN },
  ])('fromNumber rejects $name', ({ n }) => {
    expect(() => Mac.fromNumber(n)).toThrow(expect.objectContaining({ code: 'INVALID_MAC' }));
  });

  it('refuses to squeeze an EUI-64 into a number', () => {
    expect(() => Mac.parse('00:00:00:11:22:33:44:55').toNumber()).toThrow(expect.objectContaining({ code: 'INVALID_MAC' }));
    expect(() => Mac.fromBigInt(1n << 48n)).toThrow(expect.objectContaining({ code: 'INVALID_MAC' }));
  });

  it('reads bytes at an offset and writes them back', () => {
    const frame = Uint8Array.from([9, 9, 0x00, 0x14, 0x4f, 0, 0, 7, 9]);
    const mac = Mac.fromBytes(frame, 2, 6);
    expect(mac.toString()).toBe('00:14:4f:00:00:07');
    const out = new Uint8Array(8);
    expect(mac.writeTo(out, 1)).toBe(7);
    expect([...out]).toEqual([0, 0x00, 0x14, 0x4f, 0, 0, 7, 0]);
  });

  it('formats in every notation and parses back (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ minLength: 6, maxLength: 6 }), fc.uint8Array({ minLength: 8, maxLength: 8 })),
        fc.constantFrom('colon', 'hyphen', 'dotted', 'bare' as const),
        fc.boolean(),
        (bytes, notation, uppercase) => {
          const mac = Mac.fromBytes(bytes);
          const text = mac.format(notation, { uppercase });
          expect(Mac.parse(text).equals(mac)).toBe(true);
          expect([...Mac.parse(text).toBytes()]).toEqual([...bytes]);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('toString is the canonical text of the bytes, for every MAC-48 (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), (bytes) => {
        const mac = Mac.fromBytes(bytes);
        const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
        expect(mac.toString()).toBe(hex);
        expect(mac.toString()).toBe(mac.format('colon'));
      }),
      { numRuns: 5000 },
    );
  });

  it('formats the canonical and other notations', () => {
    const mac = Mac.parse('0200.5E10.0001');
    expect(mac.format('hyphen', { uppercase: true })).toBe('02-00-5E-10-00-01');
    expect(mac.format('dotted')).toBe('0200.5e10.0001');
    expect(mac.format('bare')).toBe('02005e100001');
    expect(mac.oui).toBe('02:00:5e');
    expect(JSON.stringify({ mac })).toBe('{"mac":"02:00:5e:10:00:01"}');
  });
});

const PREDICATES = [
  { name: 'zero', mac: '00:00:00:00:00:00', multicast: false, broadcast: false, local: false, zero: true, valid: false },
  { name: 'broadcast', mac: 'ff:ff:ff:ff:ff:ff', multicast: true, broadcast: true, local: true, zero: false, valid: false },
  { name: 'IPv4 multicast', mac: '01:00:5e:00:00:01', multicast: true, broadcast: false, local: false, zero: false, valid: false },
  { name: 'IPv6 multicast', mac: '33:33:00:00:00:01', multicast: true, broadcast: false, local: true, zero: false, valid: false },
  { name: 'link-local group', mac: '01:80:c2:00:00:0e', multicast: true, broadcast: false, local: false, zero: false, valid: false },
  { name: 'universal unicast', mac: '00:14:4f:00:00:01', multicast: false, broadcast: false, local: false, zero: false, valid: true },
  { name: 'local unicast', mac: '02:08:20:00:00:0b', multicast: false, broadcast: false, local: true, zero: false, valid: true },
  { name: 'local multicast', mac: '03:00:00:00:00:01', multicast: true, broadcast: false, local: true, zero: false, valid: false },
];

describe('predicates with the kernel meanings', () => {
  it.each(PREDICATES)('$name', (row) => {
    const mac = Mac.parse(row.mac);
    expect([mac.isMulticast, isMulticastEtherAddr(row.mac)]).toEqual([row.multicast, row.multicast]);
    expect([mac.isBroadcast, isBroadcastEtherAddr(row.mac)]).toEqual([row.broadcast, row.broadcast]);
    expect([mac.isUnicast, isUnicastEtherAddr(row.mac)]).toEqual([!row.multicast, !row.multicast]);
    expect([mac.isLocal, isLocalEtherAddr(row.mac), mac.isUniversal]).toEqual([row.local, row.local, !row.local]);
    expect([mac.isZero, isZeroEtherAddr(row.mac)]).toEqual([row.zero, row.zero]);
    expect([mac.isValidUnicast, isValidEtherAddr(row.mac)]).toEqual([row.valid, row.valid]);
  });
});
