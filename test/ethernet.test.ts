// Wire format: the Ethernet header's named offsets and helpers agree with Mac's reading of the same bytes, on any frame.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  dstKey,
  ETH_DST,
  ETH_HLEN,
  ETH_SRC,
  ETH_TYPE,
  etherType,
  hasEthernetHeader,
  isBroadcastDst,
  isMulticastDst,
  isMulticastSrc,
  Mac,
  srcKey,
} from 'macslot';

const header = fc.uint8Array({ minLength: ETH_HLEN, maxLength: 64 });

// Frames whose fields are each at one of their edges.
const EDGES: { name: string; frame: number[]; dst: string; src: string; type: number; broadcast: boolean }[] = [
  { name: 'all zero', frame: new Array(14).fill(0), dst: '00:00:00:00:00:00', src: '00:00:00:00:00:00', type: 0, broadcast: false },
  { name: 'all ones', frame: new Array(14).fill(0xff), dst: 'ff:ff:ff:ff:ff:ff', src: 'ff:ff:ff:ff:ff:ff', type: 0xffff, broadcast: true },
  {
    name: 'broadcast but one bit',
    frame: [0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 2, 0, 0, 0, 0, 1, 0x08, 0x06],
    dst: 'ff:ff:ff:ff:ff:fe',
    src: '02:00:00:00:00:01',
    type: 0x0806,
    broadcast: false,
  },
];

describe('ethernet header', () => {
  it('the offsets are those of an Ethernet II header', () => {
    expect([ETH_DST, ETH_SRC, ETH_TYPE, ETH_HLEN]).toEqual([0, 6, 12, 14]);
  });

  it('dstKey, srcKey and the group bits agree with Mac.fromBytes on any header', () => {
    fc.assert(
      fc.property(header, (frame) => {
        const dst = Mac.fromBytes(frame, ETH_DST, 6);
        const src = Mac.fromBytes(frame, ETH_SRC, 6);
        expect(dstKey(frame)).toBe(dst.key);
        expect(srcKey(frame)).toBe(src.key);
        expect(isMulticastDst(frame)).toBe(dst.isMulticast);
        expect(isMulticastSrc(frame)).toBe(src.isMulticast);
        expect(isBroadcastDst(frame)).toBe(dst.isBroadcast);
        expect(etherType(frame)).toBe(frame[ETH_TYPE]! * 256 + frame[ETH_TYPE + 1]!);
        expect(hasEthernetHeader(frame)).toBe(true);
      }),
    );
  });

  it.each(EDGES)('$name', ({ frame, dst, src, type, broadcast }) => {
    const f = Uint8Array.from(frame);
    expect(dstKey(f)).toBe(Mac.parse(dst).key);
    expect(srcKey(f)).toBe(Mac.parse(src).key);
    expect(etherType(f)).toBe(type);
    expect(isBroadcastDst(f)).toBe(broadcast);
  });

  it('a frame shorter than the header has none', () => {
    for (let n = 0; n < ETH_HLEN; n++) expect(hasEthernetHeader(new Uint8Array(n))).toBe(false);
  });
});
