// The reference filter with VLANs: a frame from the uplink is admitted into a VLAN, matched on (MAC, VID), and delivered
// only inside its VLAN; unknown VIDs and destinations outside the frame's VLAN are drop-vlan.
import { describe, expect, it } from 'vitest';
import { Nic, VlanMembership, classifyVlanFrame, insertTag, parseMac } from 'macslot';

const PRIMARY = '00:14:4f:00:00:00';
const B_MAC = '00:14:4f:00:00:01';
const GROUP = '01:00:5e:00:00:fb';

function setup(): { nic: Nic; vlans: VlanMembership<number | string> } {
  const nic = new Nic({ primary: PRIMARY, factory: { base: B_MAC, count: 1 } });
  const b = nic.openClient('b');
  b.addressReserve();
  nic.primaryClient.multicastJoin(GROUP);
  b.multicastJoin(GROUP);
  const vlans = new VlanMembership<number | string>();
  vlans.set(nic.primaryClient.id, { access: 10 });
  vlans.set(b.id, { access: 20 });
  vlans.set('uplink', { trunk: [10, 20, 30], native: 30 });
  return { nic, vlans };
}

function frame(dst: string, vid?: number): Uint8Array {
  const f = new Uint8Array(60);
  f.set(parseMac(dst).toBytes());
  f.set([0x02, 0, 0, 0, 0, 9], 6);
  f.set([0x08, 0x00], 12);
  return vid === undefined ? f : insertTag(f, vid);
}

const TABLE: Record<string, { dst: string; vid?: number; rule: string; deliver: number[]; at?: number }> = {
  'broadcast in VLAN 10 reaches only the primary (id 0)': { dst: 'ff:ff:ff:ff:ff:ff', vid: 10, rule: 'broadcast', deliver: [0] },
  'broadcast in VLAN 20 reaches only b (id 1)': { dst: 'ff:ff:ff:ff:ff:ff', vid: 20, rule: 'broadcast', deliver: [1] },
  'untagged broadcast is in the native VLAN 30, where no client is': {
    dst: 'ff:ff:ff:ff:ff:ff',
    rule: 'broadcast',
    deliver: [],
    at: 30,
  },
  'a joined group in VLAN 10 reaches only its member there': { dst: GROUP, vid: 10, rule: 'multicast-exact', deliver: [0] },
  "b's MAC in its own VLAN 20": { dst: B_MAC, vid: 20, rule: 'unicast-exact', deliver: [1] },
  "b's MAC in VLAN 10: (MAC, VID) misses": { dst: B_MAC, vid: 10, rule: 'drop-vlan', deliver: [] },
  'a VID the uplink does not carry': { dst: PRIMARY, vid: 40, rule: 'drop-vlan', deliver: [] },
  'an unknown MAC stays drop-unknown, with its VLAN': { dst: '00:14:4f:00:00:99', vid: 10, rule: 'drop-unknown', deliver: [] },
};

describe('classifyVlanFrame', () => {
  it.each(Object.entries(TABLE))('%s', (_name, row) => {
    const { nic, vlans } = setup();
    const v = classifyVlanFrame(nic.filterState(), vlans, 'uplink', frame(row.dst, row.vid));
    expect({ rule: v.rule, deliver: v.deliver, vid: v.vid }).toEqual({ rule: row.rule, deliver: row.deliver, vid: row.at ?? row.vid });
  });

  it('a tag cut short is drop-vlan without a VID', () => {
    const { nic, vlans } = setup();
    const f = frame(PRIMARY, 10).subarray(0, 16);
    expect(classifyVlanFrame(nic.filterState(), vlans, 'uplink', f)).toEqual({
      deliver: [],
      rule: 'drop-vlan',
      path: 'hardware',
      vid: undefined,
    });
  });
});
