// VLANs: tag parsing (never fooled by a short frame), and port membership as a VLAN-filtering Linux bridge applies it, as a
// truth table in the style of the kernel's bridge_vlan_aware.sh selftest: tagged and untagged, access, trunk and native,
// broadcast per VLAN.
import { describe, expect, it } from 'vitest';
import { MacslotError, VlanMembership, insertTag, parseVlan, stripTag, type PortVlans } from 'macslot';

const DST = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
const SRC = [0x02, 0, 0, 0, 0, 1];

/** A frame: addresses, then the given tags (TPID, TCI pairs), then EtherType 0x0800 and a payload, `length` bytes in all. */
function frame(tags: readonly (readonly [number, number])[] = [], length = 64): Uint8Array {
  const head = [...DST, ...SRC, ...tags.flatMap(([tpid, tci]) => [tpid >> 8, tpid & 255, tci >> 8, tci & 255]), 0x08, 0x00];
  const f = new Uint8Array(length);
  f.set(head.slice(0, length));
  return f;
}

describe('parseVlan', () => {
  const CASES: Record<string, { frame: Uint8Array; want: unknown }> = {
    'untagged IPv4': { frame: frame(), want: { kind: 'untagged' } },
    '802.1Q, VID 10, PCP 5, DEI': {
      frame: frame([[0x8100, (5 << 13) | 0x1000 | 10]]),
      want: { kind: 'tagged', tags: [{ tpid: 0x8100, pcp: 5, dei: true, vid: 10 }], typeOffset: 16 },
    },
    '802.1ad outer 100 with 802.1Q inner 10': {
      frame: frame([
        [0x88a8, 100],
        [0x8100, 10],
      ]),
      want: {
        kind: 'tagged',
        tags: [
          { tpid: 0x88a8, pcp: 0, dei: false, vid: 100 },
          { tpid: 0x8100, pcp: 0, dei: false, vid: 10 },
        ],
        typeOffset: 20,
      },
    },
    'a 13-byte frame': { frame: frame([], 13), want: { kind: 'truncated' } },
    'a 14-byte frame with TPID 0x8100 and no TCI': { frame: frame([[0x8100, 10]], 14), want: { kind: 'truncated' } },
    'a 16-byte frame with TPID 0x8100: TCI but no EtherType': { frame: frame([[0x8100, 10]], 16), want: { kind: 'truncated' } },
    'an 18-byte frame with TPID 0x8100: the shortest tagged': {
      frame: frame([[0x8100, 10]], 18),
      want: { kind: 'tagged', tags: [{ tpid: 0x8100, pcp: 0, dei: false, vid: 10 }], typeOffset: 16 },
    },
    'a 20-byte frame with two TPIDs: the inner tag cut short': {
      frame: frame(
        [
          [0x88a8, 1],
          [0x8100, 10],
        ],
        20,
      ),
      want: { kind: 'truncated' },
    },
  };
  it.each(Object.entries(CASES))('%s', (_name, { frame: f, want }) => {
    expect(parseVlan(f)).toEqual(want);
  });

  it('insertTag and stripTag are inverses, and stripTag leaves an untagged frame alone', () => {
    const f = frame();
    const t = insertTag(f, 42, 3);
    expect(parseVlan(t)).toEqual({ kind: 'tagged', tags: [{ tpid: 0x8100, pcp: 3, dei: false, vid: 42 }], typeOffset: 16 });
    expect(stripTag(t)).toEqual(f);
    expect(stripTag(f)).toBe(f);
  });
});

// The bridge of the table: h1, h2 access 10; h3 access 20; t1 trunk 10, 20 with native 10; t2 trunk 20, 30 without.
const PORTS: Record<string, PortVlans> = {
  h1: { access: 10 },
  h2: { access: 10 },
  h3: { access: 20 },
  t1: { trunk: [10, 20], native: 10 },
  t2: { trunk: [20, 30] },
};

function bridge(protocol?: '802.1Q' | '802.1ad'): VlanMembership<string> {
  const b = new VlanMembership<string>(protocol === undefined ? {} : { protocol });
  for (const [port, spec] of Object.entries(PORTS)) b.set(port, spec);
  return b;
}

/** Sends `f` in on `from`, floods it to every other port of its VLAN; returns what each port sends out, by tag. */
function flood(b: VlanMembership<string>, from: string, f: Uint8Array): Record<string, string> | string {
  const ing = b.ingress(from, f);
  if ('drop' in ing) return `drop-vlan (${ing.why}${ing.vid === undefined ? '' : ` ${ing.vid}`})`;
  const out: Record<string, string> = {};
  for (const port of Object.keys(PORTS)) {
    if (port === from) continue;
    const e = b.egress(port, ing.frame, ing.vid);
    if (e === undefined) continue;
    const h = parseVlan(e);
    out[port] = h.kind === 'tagged' ? `tagged ${h.tags.map((t) => t.vid).join('/')}` : 'untagged';
  }
  return out;
}

const TRUTH: Record<string, { from: string; frame: Uint8Array; protocol?: '802.1ad'; want: Record<string, string> | string }> = {
  'untagged from access h1: VLAN 10, untagged to h2 and native t1': {
    from: 'h1',
    frame: frame(),
    want: { h2: 'untagged', t1: 'untagged' },
  },
  'untagged from access h3: VLAN 20, tagged on both trunks': { from: 'h3', frame: frame(), want: { t1: 'tagged 20', t2: 'tagged 20' } },
  'tagged 10 from access h1 (its own VLAN) is taken': {
    from: 'h1',
    frame: frame([[0x8100, 10]]),
    want: { h2: 'untagged', t1: 'untagged' },
  },
  'tagged 20 from access h1: not a member': { from: 'h1', frame: frame([[0x8100, 20]]), want: 'drop-vlan (not-member 20)' },
  'untagged from trunk t1: the native VLAN 10': { from: 't1', frame: frame(), want: { h1: 'untagged', h2: 'untagged' } },
  'tagged 10 from trunk t1: VLAN 10, untagged to the access ports': {
    from: 't1',
    frame: frame([[0x8100, 10]]),
    want: { h1: 'untagged', h2: 'untagged' },
  },
  'tagged 20 from trunk t1: untagged to h3, tagged on t2': {
    from: 't1',
    frame: frame([[0x8100, 20]]),
    want: { h3: 'untagged', t2: 'tagged 20' },
  },
  'tagged 30 from trunk t1: unknown VID': { from: 't1', frame: frame([[0x8100, 30]]), want: 'drop-vlan (not-member 30)' },
  'tagged 30 from trunk t2: member, but no other port carries 30': { from: 't2', frame: frame([[0x8100, 30]]), want: {} },
  'untagged from trunk t2 without a native VLAN': { from: 't2', frame: frame(), want: 'drop-vlan (no-pvid)' },
  'priority tag (VID 0) from t1: the native VLAN': {
    from: 't1',
    frame: frame([[0x8100, 5 << 13]]),
    want: { h1: 'untagged', h2: 'untagged' },
  },
  'an 802.1ad frame on an 802.1Q bridge travels untagged in the native VLAN, its S-tag kept as payload': {
    from: 't1',
    frame: frame([[0x88a8, 20]]),
    want: { h1: 'tagged 20', h2: 'tagged 20' },
  },
  'on an 802.1ad bridge the S-tag decides: S-VLAN 20 with a C-tag inside': {
    from: 't1',
    frame: frame([
      [0x88a8, 20],
      [0x8100, 77],
    ]),
    protocol: '802.1ad',
    want: { h3: 'tagged 77', t2: 'tagged 20/77' },
  },
  'a 16-byte frame with TPID 0x8100 is dropped, never read as VLAN 10': {
    from: 't1',
    frame: frame([[0x8100, 10]], 16),
    want: 'drop-vlan (truncated)',
  },
  'a port not configured drops everything': { from: 'nowhere', frame: frame(), want: 'drop-vlan (no-pvid)' },
};

describe('VlanMembership, as a VLAN-filtering bridge', () => {
  it.each(Object.entries(TRUTH))('%s', (_name, row) => {
    expect(flood(bridge(row.protocol), row.from, row.frame)).toEqual(row.want);
  });

  it('counts every drop by reason', () => {
    const b = bridge();
    b.ingress('h1', frame([[0x8100, 20]]));
    b.ingress('t1', frame([[0x8100, 30]]));
    b.ingress('t2', frame());
    b.ingress('t1', frame([[0x8100, 10]], 16));
    b.ingress('t1', frame([[0x8100, 10]]));
    expect(b.counters()).toEqual({ 'drop-vlan': 4, notMember: 2, noPvid: 1, truncated: 1 });
  });

  it('broadcast stays in its VLAN: the members of each VLAN', () => {
    const b = bridge();
    expect(b.members(10)).toEqual(['h1', 'h2', 't1']);
    expect(b.members(20)).toEqual(['h3', 't1', 't2']);
    expect(b.members(30)).toEqual(['t2']);
    expect(b.members(40)).toEqual([]);
  });

  const BAD: Record<string, unknown> = {
    'access VID 0': { access: 0 },
    'access VID 4095': { access: 4095 },
    'a fractional VID': { access: 1.5 },
    'a trunk that is not a list': { trunk: 10 },
    'a trunk VID 5000': { trunk: [10, 5000] },
    'a native VLAN not on the trunk': { trunk: [10], native: 20 },
    'no spec': null,
  };
  it.each(Object.entries(BAD))('refuses %s with INVALID_ARGUMENT', (_name, spec) => {
    const b = new VlanMembership();
    let caught: unknown;
    try {
      b.set(1, spec as PortVlans);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(MacslotError);
    expect((caught as MacslotError).code).toBe('INVALID_ARGUMENT');
    expect(b.members(10)).toEqual([]);
  });
});
