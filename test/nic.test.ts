// The NIC control plane: the seed's interfaces, their error codes, the primary's protections, overflow, multicast and broadcast.
import { describe, expect, it, vi } from 'vitest';
import { Mac, MacslotError, Nic, classifyFrame, type NicConfig, type NicEvent } from 'macslot';

const PRIMARY = '00:14:4f:00:00:00';
const base = (extra: Partial<NicConfig> = {}): Nic =>
  new Nic({ primary: PRIMARY, factory: { base: '00:14:4f:00:00:01', count: 4 }, ...extra });
const frameTo = (dst: string): Uint8Array => {
  const f = new Uint8Array(60);
  Mac.parse(dst).writeTo(f, 0);
  return f;
};
const verdict = (nic: Nic, dst: string) => classifyFrame(nic.filterState(), frameTo(dst));

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MacslotError);
    return (err as MacslotError).code;
  }
  return undefined;
}

describe('configuration', () => {
  it.each([
    { name: 'multicast primary', config: { primary: '01:00:5e:00:00:01' }, code: 'INVALID_MAC' },
    { name: 'zero primary', config: { primary: '00:00:00:00:00:00' }, code: 'INVALID_MAC' },
    { name: 'garbage primary', config: { primary: 'not-a-mac' }, code: 'INVALID_MAC' },
    {
      name: 'duplicate factory MACs',
      config: { primary: PRIMARY, factory: ['00:14:4f:00:00:01', '00:14:4f:00:00:01'] },
      code: 'INVALID_ARGUMENT',
    },
    { name: 'factory equal to the primary', config: { primary: PRIMARY, factory: [PRIMARY] }, code: 'INVALID_ARGUMENT' },
    { name: 'negative entries', config: { primary: PRIMARY, unicastEntries: -1 }, code: 'INVALID_ARGUMENT' },
    { name: 'fractional entries', config: { primary: PRIMARY, multicastEntries: 1.5 }, code: 'INVALID_ARGUMENT' },
    { name: 'unknown overflow policy', config: { primary: PRIMARY, overflow: 'flood' }, code: 'INVALID_ARGUMENT' },
    { name: 'hash filter type 4', config: { primary: PRIMARY, multicastHash: { filterType: 4 } }, code: 'INVALID_ARGUMENT' },
  ])('rejects $name', ({ config, code }) => {
    expect(codeOf(() => new Nic(config as NicConfig))).toBe(code);
  });
});

describe('addressSupport', () => {
  it('reports a NIC without factory MACs', () => {
    const s = new Nic({ primary: PRIMARY }).addressSupport();
    expect([s.multipleFactory, s.totalSlots, s.firstFactory, s.mode]).toEqual([false, 0, undefined, 'filtered']);
  });

  it('reports the factory pool and counts reservations exactly', () => {
    const nic = new Nic({ primary: PRIMARY, factory: { base: '00:14:4f:00:00:01', count: 8 }, multicastEntries: 4 });
    const s = nic.addressSupport();
    expect([s.multipleFactory, s.totalSlots, s.availableSlots, s.firstFactory?.toString(), s.lastFactory?.toString()]).toEqual([
      true,
      8,
      8,
      '00:14:4f:00:00:01',
      '00:14:4f:00:00:08',
    ]);
    expect([s.totalUnicastEntries, s.availableUnicastEntries, s.totalMulticastEntries, s.availableMulticastEntries]).toEqual([8, 8, 4, 4]);
    const c = nic.openClient('vm');
    const r = c.addressReserve();
    expect([nic.addressSupport().availableSlots, nic.addressSupport().availableUnicastEntries]).toEqual([7, 7]);
    c.addressUnreserve(r.slot);
    expect([nic.addressSupport().availableSlots, nic.addressSupport().availableUnicastEntries]).toEqual([8, 8]);
  });
});

describe('error codes of each interface', () => {
  const setup = () => {
    const nic = base({ unicastEntries: 8 });
    const a = nic.openClient('a');
    const b = nic.openClient('b');
    const ra = a.addressReserve();
    const added = a.addressAdd('02:00:00:00:00:aa');
    return { nic, a, b, ra, added };
  };
  it.each([
    {
      name: 'reserve on a NIC without factory MACs',
      run: () => new Nic({ primary: PRIMARY }).openClient('x').addressReserve(),
      code: 'NOT_SUPPORTED',
    },
    { name: 'reserve slot 0', run: () => setup().b.addressReserve({ slot: 0 }), code: 'INVALID_SLOT' },
    { name: 'reserve slot -1', run: () => setup().b.addressReserve({ slot: -1 }), code: 'INVALID_SLOT' },
    { name: 'reserve slot F+1', run: () => setup().b.addressReserve({ slot: 5 }), code: 'INVALID_SLOT' },
    { name: 'reserve slot 1.5', run: () => setup().b.addressReserve({ slot: 1.5 }), code: 'INVALID_SLOT' },
    { name: 'reserve a reserved slot', run: () => setup().b.addressReserve({ slot: 1 }), code: 'SLOT_BUSY' },
    {
      name: 'reserve with every slot taken',
      run: () => {
        const { b } = setup();
        for (let i = 0; i < 4; i++) b.addressReserve();
      },
      code: 'NO_FREE_SLOT',
    },
    { name: 'unreserve a free slot', run: () => setup().b.addressUnreserve(2), code: 'NOT_RESERVED' },
    {
      name: "unreserve another client's slot",
      run: () => {
        const s = setup();
        s.b.addressUnreserve(s.ra.slot);
      },
      code: 'NOT_OWNER',
    },
    { name: 'unreserve a slot that does not exist', run: () => setup().b.addressUnreserve(99), code: 'INVALID_SLOT' },
    {
      name: 'unreserve an added slot',
      run: () => {
        const s = setup();
        s.a.addressUnreserve(s.added.slot);
      },
      code: 'INVALID_SLOT',
    },
    {
      name: 'remove a factory slot',
      run: () => {
        const s = setup();
        s.a.addressRemove(s.ra.slot);
      },
      code: 'INVALID_SLOT',
    },
    {
      name: 'modify to multicast',
      run: () => {
        const s = setup();
        s.a.addressModify(s.ra.slot, '01:00:5e:00:00:01');
      },
      code: 'INVALID_MAC',
    },
    {
      name: 'modify to zero',
      run: () => {
        const s = setup();
        s.a.addressModify(s.ra.slot, '00:00:00:00:00:00');
      },
      code: 'INVALID_MAC',
    },
    {
      name: 'modify to broadcast',
      run: () => {
        const s = setup();
        s.a.addressModify(s.ra.slot, 'ff:ff:ff:ff:ff:ff');
      },
      code: 'INVALID_MAC',
    },
    {
      name: 'modify to the primary',
      run: () => {
        const s = setup();
        s.a.addressModify(s.ra.slot, PRIMARY);
      },
      code: 'MAC_IN_USE',
    },
    {
      name: "modify to another client's MAC",
      run: () => {
        const s = setup();
        const rb = s.b.addressReserve();
        s.b.addressModify(rb.slot, '02:00:00:00:00:aa');
      },
      code: 'MAC_IN_USE',
    },
    { name: 'modify a free slot', run: () => setup().b.addressModify(3, '02:00:00:00:00:01'), code: 'NOT_RESERVED' },
    {
      name: "modify another client's slot",
      run: () => {
        const s = setup();
        s.b.addressModify(s.ra.slot, '02:00:00:00:00:01');
      },
      code: 'NOT_OWNER',
    },
    { name: 'add a MAC in use', run: () => setup().b.addressAdd('02:00:00:00:00:aa'), code: 'MAC_IN_USE' },
    { name: 'add a multicast MAC', run: () => setup().b.addressAdd('33:33:00:00:00:01'), code: 'INVALID_MAC' },
    { name: 'join a unicast MAC', run: () => setup().a.multicastJoin('02:00:00:00:00:01'), code: 'INVALID_MAC' },
    { name: 'join broadcast', run: () => setup().a.multicastJoin('ff:ff:ff:ff:ff:ff'), code: 'INVALID_MAC' },
    { name: 'leave a group never joined', run: () => setup().a.multicastLeave('33:33:00:00:00:01'), code: 'NOT_MEMBER' },
    { name: 'promiscuous without a grant', run: () => setup().a.setPromiscuous(true), code: 'NOT_PERMITTED' },
    {
      name: 'use a closed client',
      run: () => {
        const s = setup();
        s.b.close();
        s.b.addressReserve();
      },
      code: 'CLIENT_CLOSED',
    },
    { name: 'open a duplicate name', run: () => setup().nic.openClient('a'), code: 'NAME_IN_USE' },
    {
      name: 'open past maxClients',
      run: () => {
        const nic = new Nic({ primary: PRIMARY, maxClients: 2 });
        nic.openClient('x');
        nic.openClient('y');
      },
      code: 'TOO_MANY_CLIENTS',
    },
    { name: 'get a slot that does not exist', run: () => setup().nic.addressGet(42), code: 'INVALID_SLOT' },
  ])('$name → $code', ({ run, code }) => {
    expect(codeOf(run)).toBe(code);
  });

  it('names the offending value in the message', () => {
    const { a, ra } = setup();
    expect(() => a.addressModify(ra.slot, '33:33:00:00:00:07')).toThrow(/33:33:00:00:00:07/);
  });
});

describe("the primary's protections", () => {
  it.each([
    { name: 'modify by a client', run: (nic: Nic) => nic.openClient('x').addressModify(0, '02:00:00:00:00:01') },
    { name: 'unreserve by a client', run: (nic: Nic) => nic.openClient('x').addressUnreserve(0) },
    { name: 'remove by a client', run: (nic: Nic) => nic.openClient('x').addressRemove(0) },
    { name: 'modify by the primary client', run: (nic: Nic) => nic.primaryClient.addressModify(0, '02:00:00:00:00:01') },
    { name: 'unreserve by the primary client', run: (nic: Nic) => nic.primaryClient.addressUnreserve(0) },
  ])('$name → NOT_OWNER', ({ run }) => {
    const nic = base();
    expect(codeOf(() => run(nic))).toBe('NOT_OWNER');
    expect(nic.addressGet(0)).toMatchObject({ kind: 'primary', reserved: true, active: true, owner: 'primary' });
    expect(verdict(nic, PRIMARY).rule).toBe('unicast-exact');
  });

  it('cannot be added elsewhere, and its client cannot close', () => {
    const nic = base();
    expect(codeOf(() => nic.openClient('x').addressAdd(PRIMARY))).toBe('MAC_IN_USE');
    expect(codeOf(() => nic.primaryClient.close())).toBe('NOT_PERMITTED');
  });
});

describe('addressModify', () => {
  it('keeps the old MAC active when it fails', () => {
    const nic = base();
    const a = nic.openClient('a');
    const b = nic.openClient('b');
    const ra = a.addressReserve();
    b.addressAdd('02:00:00:00:00:bb');
    expect(codeOf(() => a.addressModify(ra.slot, '02:00:00:00:00:bb'))).toBe('MAC_IN_USE');
    expect(nic.addressGet(ra.slot).mac.toString()).toBe(ra.mac.toString());
    expect(verdict(nic, ra.mac.toString()).deliver).toEqual([a.id]);
    expect(verdict(nic, '02:00:00:00:00:bb').deliver).toEqual([b.id]);
  });

  it.each([
    { name: 'its own factory MAC', mac: '00:14:4f:00:00:01', kind: 'factory' },
    { name: 'a locally administered MAC', mac: '02:08:20:00:00:01', kind: 'local' },
    { name: "another vendor's universal MAC", mac: '00:1b:21:00:00:01', kind: 'cloned' },
  ])('reports kind for $name', ({ mac, kind }) => {
    const nic = base();
    const a = nic.openClient('a');
    const r = a.addressReserve({ slot: 1 });
    a.addressModify(r.slot, '02:00:00:00:00:99');
    a.addressModify(r.slot, mac);
    expect(nic.addressGet(r.slot)).toMatchObject({ kind, active: true });
    expect(verdict(nic, '02:00:00:00:00:99').rule).toBe('drop-unknown');
    expect(verdict(nic, mac).deliver).toEqual([a.id]);
  });

  it("refuses another slot's factory MAC, so that slot stays free for everyone", () => {
    const nic = base();
    const a = nic.openClient('a');
    const b = nic.openClient('b');
    const r = a.addressReserve({ slot: 1 });
    expect(codeOf(() => a.addressModify(r.slot, '00:14:4f:00:00:02'))).toBe('MAC_IN_USE');
    expect(nic.addressGet(1)).toMatchObject({ kind: 'factory', mac: Mac.parse('00:14:4f:00:00:01') });
    expect(b.addressReserve({ slot: 2 }).slot).toBe(2);
  });
});

describe('factory MACs belong to their slots', () => {
  // The case: a client addressAdd()s a free slot's factory MAC, which blocked that slot for everyone.
  const ADDS = [
    { name: 'a free slot', reserved: [], autoActivate: true },
    { name: 'a slot reserved by another client, not yet active', reserved: [2], autoActivate: false },
    { name: 'a slot the adding client itself reserved, not yet active', reserved: [2], autoActivate: false, self: true },
  ];
  it.each(ADDS)('addressAdd refuses the factory MAC of $name with MAC_IN_USE naming the slot', ({ reserved, autoActivate, self }) => {
    const nic = base({ autoActivate });
    const owner = nic.openClient('owner');
    const adder = self ? owner : nic.openClient('adder');
    for (const slot of reserved) owner.addressReserve({ slot });
    expect(() => adder.addressAdd('00:14:4f:00:00:02')).toThrow(
      expect.objectContaining({ code: 'MAC_IN_USE', message: expect.stringContaining('factory MAC of slot 2') }),
    );
    expect(nic.addressGet(2).active).toBe(false);
    expect(verdict(nic, '00:14:4f:00:00:02').rule).toBe('drop-unknown');
  });

  it("lets a slot's owner activate its own factory MAC, after modifying it away", () => {
    const nic = base({ autoActivate: false });
    const a = nic.openClient('a');
    a.addressReserve({ slot: 2 });
    a.addressModify(2, '02:00:00:00:00:02');
    a.addressModify(2, '00:14:4f:00:00:02');
    expect(nic.addressGet(2)).toMatchObject({ active: true, kind: 'factory', owner: 'a' });
  });

  it('never hands out a factory MAC as a random address', () => {
    // A random source that always yields slot 1's (locally administered) factory MAC, then another MAC.
    const factory = ['02:00:00:00:00:01'];
    let calls = 0;
    const nic = new Nic({ primary: PRIMARY, factory, random: (out) => out.set(calls++ === 0 ? [2, 0, 0, 0, 0, 1] : [2, 0, 0, 0, 0, 9]) });
    expect(nic.openClient('a').addressAdd().mac.toString()).toBe('02:00:00:00:00:09');
    expect(nic.addressSupport().availableSlots).toBe(1);
  });
});

describe('availableSlots is the number of reservations that would succeed', () => {
  const CASES = [
    {
      name: "the issue's case: slot 1 reserved, slot 2's MAC added elsewhere",
      extra: {},
      setup: (n: Nic) => tryAdd(n, '00:14:4f:00:00:02'),
      expected: 3,
    },
    {
      name: 'reject policy with the filter full',
      extra: { unicastEntries: 1, multicastEntries: 1, overflow: 'reject' as const },
      setup: () => {},
      expected: 1,
    },
    { name: 'maxAddresses reached', extra: { maxAddresses: 3 }, setup: () => {}, expected: 1 },
    {
      name: 'autoActivate false ignores the filter',
      extra: { autoActivate: false, unicastEntries: 0, multicastEntries: 0, overflow: 'reject' as const },
      setup: () => {},
      expected: 3,
    },
  ];
  function tryAdd(nic: Nic, mac: string): void {
    codeOf(() => nic.openClient('other').addressAdd(mac));
  }
  it.each(CASES)('$name', ({ extra, setup, expected }) => {
    const nic = base(extra);
    nic.openClient('first').addressReserve({ slot: 1 });
    setup(nic);
    const promised = nic.addressSupport().availableSlots;
    const c = nic.openClient('drain');
    let got = 0;
    while (codeOf(() => c.addressReserve()) === undefined) got++;
    expect([promised, got]).toEqual([expected, expected]);
    expect(nic.addressSupport().availableSlots).toBe(0);
  });
});

describe('autoActivate false', () => {
  it('reserves without activating until addressModify', () => {
    const nic = base({ autoActivate: false });
    const a = nic.openClient('a');
    const r = a.addressReserve();
    expect(nic.addressGet(r.slot)).toMatchObject({ reserved: true, active: false });
    expect(verdict(nic, r.mac.toString()).rule).toBe('drop-unknown');
    a.addressModify(r.slot, r.mac);
    expect(nic.addressGet(r.slot)).toMatchObject({ active: true, kind: 'factory' });
    expect(verdict(nic, r.mac.toString()).deliver).toEqual([a.id]);
  });
});

describe('overflow', () => {
  it('borrows a multicast entry, then goes promiscuous and still fails closed', () => {
    const nic = base({ unicastEntries: 2, multicastEntries: 1 });
    const events: NicEvent[] = [];
    nic.on((e) => events.push(e));
    const a = nic.openClient('a');
    const slots = [1, 2, 3, 4].map(() => a.addressReserve().slot);
    expect(slots.map((s) => nic.addressGet(s).placement)).toEqual(['unicast', 'unicast', 'multicast', 'software']);
    expect(nic.addressSupport()).toMatchObject({ mode: 'promiscuous', promiscReasons: ['unicast-overflow'] });
    expect(verdict(nic, '00:14:4f:00:00:04')).toEqual({ deliver: [a.id], rule: 'software', path: 'software' });
    expect(verdict(nic, '02:00:00:00:99:99')).toEqual({ deliver: [], rule: 'drop-unknown', path: 'software' });
    a.addressUnreserve(slots[0]!);
    expect(events.some((e) => e.type === 'placed' && e.slot === slots[3])).toBe(true);
    expect(nic.addressGet(slots[3]!).placement).not.toBe('software');
    expect(nic.addressSupport().mode).toBe('filtered');
  });

  it('rejects under the reject policy and leaves the slot free', () => {
    const nic = base({ unicastEntries: 2, multicastEntries: 1, overflow: 'reject' });
    const a = nic.openClient('a');
    for (let i = 0; i < 3; i++) a.addressReserve();
    expect(codeOf(() => a.addressReserve())).toBe('NO_FREE_SLOT');
    // The slot is free, yet no reservation could succeed: availableSlots says so.
    expect(nic.addressSupport().availableSlots).toBe(0);
    expect(nic.addressGet(4).reserved).toBe(false);
    expect(nic.addressSupport().mode).toBe('filtered');
  });

  it('reports no-capability for a NIC without entries', () => {
    const nic = new Nic({ primary: PRIMARY, multicastEntries: 0 });
    nic.openClient('a').addressAdd('02:00:00:00:00:01');
    expect(nic.addressSupport().promiscReasons).toEqual(['no-capability']);
    expect(verdict(nic, '02:00:00:00:00:01').rule).toBe('software');
  });
});

describe('multicast', () => {
  it('reference-counts joins per client and delivers only to members', () => {
    const nic = base({ multicastEntries: 4 });
    const a = nic.openClient('a');
    const b = nic.openClient('b');
    for (const c of [a, b, a, b]) c.multicastJoin('33:33:00:00:00:01');
    expect(verdict(nic, '33:33:00:00:00:01')).toEqual({ deliver: [a.id, b.id], rule: 'multicast-exact', path: 'hardware' });
    a.multicastLeave('33:33:00:00:00:01');
    expect(verdict(nic, '33:33:00:00:00:01').deliver).toEqual([a.id, b.id]);
    a.multicastLeave('33:33:00:00:00:01');
    expect(verdict(nic, '33:33:00:00:00:01').deliver).toEqual([b.id]);
    expect(codeOf(() => a.multicastLeave('33:33:00:00:00:01'))).toBe('NOT_MEMBER');
    b.multicastLeave('33:33:00:00:00:01');
    b.multicastLeave('33:33:00:00:00:01');
    expect(verdict(nic, '33:33:00:00:00:01').rule).toBe('drop-multicast');
    expect(nic.addressSupport().availableMulticastEntries).toBe(4);
  });

  it('uses the hash stage after exact entries and removes its false positives in software', () => {
    const nic = base({ multicastEntries: 0 });
    const a = nic.openClient('a');
    a.multicastJoin('01:00:5e:00:00:01');
    expect(verdict(nic, '01:00:5e:00:00:01')).toEqual({ deliver: [a.id], rule: 'multicast-hash', path: 'software' });
    // Same MTA bit for every filter type: admitted by the hash, refused by the exact check.
    expect(verdict(nic, '33:33:00:00:00:01')).toEqual({ deliver: [], rule: 'drop-multicast', path: 'software' });
    expect(verdict(nic, '01:00:5e:7f:00:02')).toEqual({ deliver: [], rule: 'drop-multicast', path: 'hardware' });
  });

  it('falls back to all-multicast without a hash, or refuses under reject', () => {
    const nic = base({ multicastEntries: 0, multicastHash: false });
    nic.openClient('a').multicastJoin('33:33:00:00:00:01');
    expect(nic.addressSupport()).toMatchObject({ mode: 'all-multicast', promiscReasons: ['multicast-overflow'] });
    expect(verdict(nic, '33:33:00:00:00:01').rule).toBe('multicast-all');
    expect(verdict(nic, '33:33:00:00:00:02')).toEqual({ deliver: [], rule: 'drop-multicast', path: 'software' });
    const strict = base({ multicastEntries: 0, multicastHash: false, overflow: 'reject' });
    expect(codeOf(() => strict.openClient('a').multicastJoin('33:33:00:00:00:01'))).toBe('NO_FREE_SLOT');
  });

  it('promotes a hashed group when an exact entry frees', () => {
    const nic = base({ multicastEntries: 1 });
    const a = nic.openClient('a');
    a.multicastJoin('33:33:00:00:00:01');
    a.multicastJoin('33:33:00:00:00:02');
    expect(verdict(nic, '33:33:00:00:00:02').rule).toBe('multicast-hash');
    a.multicastLeave('33:33:00:00:00:01');
    expect(verdict(nic, '33:33:00:00:00:02').rule).toBe('multicast-exact');
  });
});

describe('broadcast and promiscuous clients', () => {
  it('reaches clients with an active MAC that did not opt out', () => {
    const nic = base();
    const a = nic.openClient('a');
    const b = nic.openClient('b', { broadcast: false });
    const c = nic.openClient('c');
    nic.openClient('idle');
    a.addressReserve();
    b.addressReserve();
    c.addressReserve();
    expect(verdict(nic, 'ff:ff:ff:ff:ff:ff').deliver).toEqual([nic.primaryClient.id, a.id, c.id]);
    c.setBroadcast(false);
    expect(verdict(nic, 'ff:ff:ff:ff:ff:ff').deliver).toEqual([nic.primaryClient.id, a.id]);
  });

  it('gives a granted promiscuous client everything, and takes the reason away with it', () => {
    const nic = base();
    const tap = nic.openClient('tap', { allowPromiscuous: true });
    tap.setPromiscuous(true);
    expect(nic.addressSupport().promiscReasons).toEqual(['user']);
    expect(verdict(nic, '02:00:00:00:99:99')).toEqual({ deliver: [tap.id], rule: 'promiscuous', path: 'software' });
    tap.close();
    expect(nic.addressSupport()).toMatchObject({ mode: 'filtered', promiscReasons: [] });
    expect(verdict(nic, '02:00:00:00:99:99').rule).toBe('drop-unknown');
  });
});

describe('ownership and events', () => {
  it('closing releases every slot, group and mode, with increasing generations', () => {
    const nic = base({ multicastEntries: 2 });
    const events: NicEvent[] = [];
    nic.on((e) => events.push(e));
    const a = nic.openClient('a', { allowPromiscuous: true });
    a.addressReserve();
    a.addressAdd('02:00:00:00:00:01');
    a.multicastJoin('33:33:00:00:00:01');
    a.setPromiscuous(true);
    a.close();
    expect(nic.addressSupport()).toMatchObject({
      availableSlots: 4,
      availableUnicastEntries: 4,
      availableMulticastEntries: 2,
      mode: 'filtered',
    });
    expect(
      nic
        .slots()
        .filter((s) => s.reserved)
        .map((s) => s.slot),
    ).toEqual([0]);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['reserved', 'joined', 'left', 'released', 'client-closed']));
    const gens = events.map((e) => e.generation);
    expect(gens).toEqual([...gens].sort((x, y) => x - y));
    expect(new Set(gens).size).toBe(gens.length);
    expect(nic.generation).toBe(gens.at(-1));
  });
});

describe('churn', () => {
  it('the same MACs and groups coming and going thousands of times leave exactly the state a fresh NIC would have', () => {
    const nic = base({ unicastEntries: 256, multicastEntries: 4, maxAddresses: 300 });
    const a = nic.openClient('a');
    const kept = new Map<number, string>();
    for (let i = 0; i < 3000; i++) {
      const mac = `02:00:00:00:00:0${i % 7}`;
      a.addressRemove(a.addressAdd(mac).slot);
      a.multicastJoin('01:00:5e:00:00:07');
      a.multicastLeave('01:00:5e:00:00:07');
      // Every third round keeps a distinct MAC, and drops one of the kept ones now and then.
      if (i % 3 === 0 && kept.size < 200) {
        const k = `02:00:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
        kept.set(a.addressAdd(k).slot, k);
      }
      if (i % 5 === 0 && kept.size > 0) {
        const [slot] = kept.keys();
        a.addressRemove(slot!);
        kept.delete(slot!);
      }
    }
    expect(a.slots()).toEqual([...kept.keys()].sort((x, y) => x - y));
    expect(a.groups()).toEqual([]);
    const unicast = nic.filterState().unicast;
    expect([...unicast.keys()].map((k) => (typeof k === 'number' ? Mac.fromNumber(k) : Mac.parse(k)).toString()).sort()).toEqual(
      [PRIMARY, ...kept.values()].sort(),
    );
    expect(nic.filterState().groups.size).toBe(0);
    expect(verdict(nic, '02:00:00:00:00:03').rule).toBe('drop-unknown');
    expect(verdict(nic, [...kept.values()][0]!).rule).toBe('unicast-exact');
    a.addressAdd('02:00:00:00:00:03');
    expect(verdict(nic, '02:00:00:00:00:03').rule).toBe('unicast-exact');
  });

  it('a listener that unsubscribes during an event leaves the others that event and later ones', () => {
    const nic = base();
    const seen: string[] = [];
    const off = nic.on(() => {
      seen.push('first');
      off();
    });
    nic.on(() => seen.push('second'));
    const a = nic.openClient('a');
    a.addressAdd('02:00:00:00:00:01');
    expect(seen).toEqual(['first', 'second', 'second']);
  });

  it('a listener subscribed twice hears each event once, and one unsubscribe silences it', () => {
    const nic = base();
    let heard = 0;
    const listener = (): void => void heard++;
    nic.on(listener);
    const off = nic.on(listener);
    nic.openClient('a');
    expect(heard).toBe(1);
    off();
    nic.openClient('b');
    expect(heard).toBe(1);
  });

  it('a listener that throws is reported, not rethrown: the change completes and later listeners still hear it', async () => {
    const nic = base();
    const report = vi.spyOn(console, 'error').mockImplementation(() => {});
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown): void => void unhandled.push(err);
    process.on('uncaughtException', onUnhandled);
    try {
      nic.on(() => {
        throw new Error('listener bug');
      });
      const heard: string[] = [];
      nic.on((e) => heard.push(e.type));
      const { slot } = nic.openClient('a').addressReserve();
      // Give any rethrow queued as a microtask or task the chance to surface.
      await new Promise<void>((r) => setImmediate(r));
      expect(nic.addressGet(slot).reserved).toBe(true);
      expect(heard).toContain('reserved');
      expect(unhandled).toEqual([]);
      expect(report).toHaveBeenCalled();
      expect(String(report.mock.calls[0]?.[1])).toContain('listener bug');
    } finally {
      process.off('uncaughtException', onUnhandled);
      report.mockRestore();
    }
  });
});
