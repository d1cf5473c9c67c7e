// The MAC manager: policies, collisions across NICs, neighbours and managers sharing a store, quotas, direct reservations, leases,
// persistence, and SipHash against its published vectors.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  BrowserStore,
  LAPSE_GRACE_MS,
  Mac,
  MacManager,
  MacslotError,
  MemoryStore,
  Nic,
  deriveMac,
  parseStoreData,
  serializeStoreData,
  sipHash24,
  type Lease,
  type MacManagerOptions,
  type MacRecord,
  type MacStore,
  type RecordStore,
  type StoreData,
} from 'macslot';
import { FileStore } from 'macslot/node';
import { FakeTime } from './support/fake-time.js';

const nicA = (extra: Partial<ConstructorParameters<typeof Nic>[0]> = {}): Nic =>
  new Nic({ primary: '00:14:4f:00:00:00', factory: { base: '00:14:4f:00:00:01', count: 4 }, ...extra });
const nicB = (): Nic => new Nic({ primary: '00:14:4f:00:01:00', factory: { base: '00:14:4f:00:01:01', count: 2 } });

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(MacslotError);
    return (err as MacslotError).code;
  }
  return undefined;
}

async function messageOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a rejection');
}

// The 64 published SipHash-2-4 vectors: key 00..0f, message 00..(n-1), output as little-endian bytes.
const SIP_VECTORS = [
  '310e0edd47db6f72',
  'fd67dc93c539f874',
  '5a4fa9d909806c0d',
  '2d7efbd796666785',
  'b7877127e09427cf',
  '8da699cd64557618',
  'cee3fe586e46c9cb',
  '37d1018bf50002ab',
  '6224939a79f5f593',
  'b0e4a90bdf82009e',
  'f3b9dd94c5bb5d7a',
  'a7ad6b22462fb3f4',
  'fbe50e86bc8f1e75',
  '903d84c02756ea14',
  'eef27a8e90ca23f7',
  'e545be4961ca29a1',
  'db9bc2577fcc2a3f',
  '9447be2cf5e99a69',
  '9cd38d96f0b3c14b',
  'bd6179a71dc96dbb',
  '98eea21af25cd6be',
  'c7673b2eb0cbf2d0',
  '883ea3e395675393',
  'c8ce5ccd8c030ca8',
  '94af49f6c650adb8',
  'eab8858ade92e1bc',
  'f315bb5bb835d817',
  'adcf6b0763612e2f',
  'a5c91da7acaa4dde',
  '716595876650a2a6',
  '28ef495c53a387ad',
  '42c341d8fa92d832',
  'ce7cf2722f512771',
  'e37859f94623f3a7',
  '381205bb1ab0e012',
  'ae97a10fd434e015',
  'b4a31508beff4d31',
  '81396229f0907902',
  '4d0cf49ee5d4dcca',
  '5c73336a76d8bf9a',
  'd0a704536ba93e0e',
  '925958fcd6420cad',
  'a915c29bc8067318',
  '952b79f3bc0aa6d4',
  'f21df2e41d4535f9',
  '87577519048f53a9',
  '10a56cf5dfcd9adb',
  'eb75095ccd986cd0',
  '51a9cb9ecba312e6',
  '96afadfc2ce666c7',
  '72fe52975a4364ee',
  '5a1645b276d592a1',
  'b274cb8ebf87870a',
  '6f9bb4203de7b381',
  'eaecb2a30b22a87f',
  '9924a43cc1315724',
  'bd838d3aafbf8db7',
  '0b1a2a3265d51aea',
  '135079a3231ce660',
  '932b2846e4d70666',
  'e1915f5cb1eca46c',
  'f325965ca16d629f',
  '575ff28e60381be5',
  '724506eb4c328a95',
];
const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

describe('SipHash-2-4', () => {
  it('matches all 64 published vectors (every message length 0..63, so every tail length)', () => {
    const key = Uint8Array.from({ length: 16 }, (_, i) => i);
    const got = SIP_VECTORS.map((_, n) =>
      hex(
        sipHash24(
          key,
          Uint8Array.from({ length: n }, (_, i) => i),
        ),
      ),
    );
    expect(got).toEqual(SIP_VECTORS);
  });

  it('rejects a key that is not 16 bytes, naming it', () => {
    expect(() => sipHash24(new Uint8Array(15), new Uint8Array(0))).toThrow(/INVALID_ARGUMENT.*bytes\[15\]/);
  });
});

describe('derived MACs', () => {
  it('are stable, locally administered unicast, and differ by identity and by secret', () => {
    const a = deriveMac('vm-1/0', 'secret');
    expect(deriveMac('vm-1/0', 'secret').equals(a)).toBe(true);
    expect(a.isLocal && a.isUnicast && !a.isZero).toBe(true);
    expect(deriveMac('vm-2/0', 'secret').equals(a)).toBe(false);
    expect(deriveMac('vm-1/0', 'other').equals(a)).toBe(false);
    // Independent of SipHash's own key handling: the first six hash bytes under the random rule.
    const key = Uint8Array.from({ length: 16 }, (_, i) => i);
    const h = sipHash24(key, new TextEncoder().encode('vm-1/0'));
    const expected = h.slice(0, 6);
    expected[0] = (expected[0]! & 0xfe) | 0x02;
    expect(deriveMac('vm-1/0', key).toString()).toBe(Mac.fromBytes(expected).toString());
  });

  it('stay under a prefix', () => {
    for (let i = 0; i < 200; i++) expect(deriveMac(`g${i}`, 's', { prefix: '02:08:20/24' }).oui).toBe('02:08:20');
  });

  it.each([
    ['empty identity', () => deriveMac('', 's'), '""'],
    ['empty secret', () => deriveMac('x', ''), '""'],
    ['short binary secret', () => deriveMac('x', new Uint8Array(3)), 'bytes[3]'],
  ])('reject %s with INVALID_ARGUMENT naming the value', (_, fn, shown) => {
    expect(fn).toThrow(MacslotError);
    expect(fn).toThrow(shown);
  });
});

describe('policies', () => {
  it('record which policy produced each MAC, auto going factory → block → random', async () => {
    const m = new MacManager({
      nics: { eth0: new Nic({ primary: '00:14:4f:00:00:00', factory: ['00:14:4f:00:00:01'] }) },
      block: '02:08:20:00:00:00/40',
    });
    const f = await m.allocate({ guest: 'a', policy: 'factory' });
    expect([f.policy, f.mac.toString(), f.slot]).toEqual(['factory', '00:14:4f:00:00:01', 1]);
    const b = await m.allocate({ guest: 'b', policy: 'auto' });
    expect([b.policy, b.requested, b.mac.toString()]).toEqual(['block', 'auto', '02:08:20:00:00:00']);
    const r = await m.allocate({ guest: 'c', policy: 'random' });
    expect(r.policy).toBe('random');
    expect(r.mac.isLocal && r.mac.isUnicast).toBe(true);
    const x = await m.allocate({ guest: 'd', policy: 'fixed', mac: '02:00:00:00:00:99' });
    expect([x.policy, x.mac.toString()]).toEqual(['fixed', '02:00:00:00:00:99']);
    const p = await m.allocate({ guest: 'e', policy: 'random', prefix: '06:11:22/24' });
    expect(p.mac.oui).toBe('06:11:22');
    const nb = new MacManager({ nics: nicB(), secret: 'k' });
    const d = await nb.allocate({ guest: 'g', policy: 'derived' });
    expect([d.policy, d.mac.toString()]).toEqual(['derived', deriveMac('g/0@nic0', 'k').toString()]);
    // The handle is the guest's client on the NIC, and the NIC shows the MAC active for it.
    expect(f.client.name).toBe('a');
    expect(m.nic('eth0').addressGet(f.slot).owner).toBe('a');
    expect(m.nic('eth0').addressGet(x.slot).mac.toString()).toBe('02:00:00:00:00:99');
  });

  it('auto without a block falls back to random once factory slots run out', async () => {
    const m = new MacManager({ nics: new Nic({ primary: '00:14:4f:00:00:00', factory: ['00:14:4f:00:00:01'] }) });
    expect((await m.allocate({ guest: 'a' })).policy).toBe('factory');
    expect((await m.allocate({ guest: 'b' })).policy).toBe('random');
  });

  it('an exhausted block gives BLOCK_EXHAUSTED naming the block, and the guest holds nothing', async () => {
    const m = new MacManager({ nics: nicA(), block: { base: '02:00:00:00:00:01', count: 2 } });
    await m.allocate({ guest: 'a', iface: '0', policy: 'block' });
    await m.allocate({ guest: 'a', iface: '1', policy: 'block' });
    const msg = await messageOf(m.allocate({ guest: 'b', policy: 'block' }));
    expect(msg).toMatch(/^BLOCK_EXHAUSTED: block 02:00:00:00:00:01\.\.02:00:00:00:00:02/);
    expect(m.usage('b').macs).toBe(0);
    expect(m.nic('nic0').client('b')).toBeUndefined();
  });

  it.each([
    ['unknown policy', { guest: 'a', policy: 'sticky' }, 'INVALID_ARGUMENT', '"sticky"'],
    ['empty guest', { guest: '' }, 'INVALID_ARGUMENT', '""'],
    ['unknown NIC', { guest: 'a', nic: 'eth9' }, 'INVALID_ARGUMENT', '"eth9"'],
    ['fixed without a MAC', { guest: 'a', policy: 'fixed' }, 'INVALID_ARGUMENT', '"a"'],
    ['a MAC that does not parse', { guest: 'a', policy: 'fixed', mac: 'zz' }, 'INVALID_MAC', '"zz"'],
    ['a multicast fixed MAC', { guest: 'a', policy: 'fixed', mac: '01:00:5e:00:00:01' }, 'MAC_IN_USE', '01:00:5e:00:00:01'],
    ['block policy without a block', { guest: 'a', policy: 'block' }, 'INVALID_ARGUMENT', '"a"'],
    ['derived without a secret', { guest: 'a', policy: 'derived' }, 'INVALID_ARGUMENT', '"a"'],
    ['negative TTL', { guest: 'a', ttlMs: -5 }, 'INVALID_ARGUMENT', '-5'],
    ['the primary client as guest', { guest: 'primary' }, 'INVALID_ARGUMENT', '"primary"'],
  ])('rejects %s', async (_, req, code, shown) => {
    const m = new MacManager({ nics: nicA() });
    const err = await m.allocate(req as never).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MacslotError);
    expect((err as MacslotError).code).toBe(code);
    expect((err as MacslotError).message).toContain(shown);
  });

  it.each([
    ['no NICs', { nics: [] }],
    [
      'a NIC listed twice',
      (() => {
        const n = nicA();
        return { nics: [n, n] };
      })(),
    ],
    ['a bad quota', { nics: nicA(), quota: { hardwareShare: 1.5 } }],
    ['a bad block', { nics: nicA(), block: '03:00:00/24' }],
    ['a short binary secret', { nics: nicA(), secret: new Uint8Array(4) }],
  ])('refuses to build with %s', (_, options) => {
    expect(() => new MacManager(options as MacManagerOptions)).toThrow(/INVALID_ARGUMENT/);
  });
});

describe('no collisions', () => {
  it('across NICs: a MAC active on one NIC is MAC_IN_USE on another, factory MACs included', async () => {
    const m = new MacManager({ nics: { a: nicA(), b: nicB() } });
    await m.allocate({ guest: 'g1', nic: 'a', policy: 'fixed', mac: '02:00:00:00:00:01' });
    expect(await messageOf(m.allocate({ guest: 'g2', nic: 'b', policy: 'fixed', mac: '02:00:00:00:00:01' }))).toMatch(
      /MAC_IN_USE: 02:00:00:00:00:01 is active on a slot \d+ \(client "g1"\)/,
    );
    expect(await codeOf(m.allocate({ guest: 'g2', nic: 'b', policy: 'fixed', mac: '00:14:4f:00:00:03' }))).toBe('MAC_IN_USE');
    expect(await codeOf(m.allocate({ guest: 'g2', nic: 'b', policy: 'fixed', mac: '00:14:4f:00:00:00' }))).toBe('MAC_IN_USE');
  });

  it('against known neighbours, for fixed MACs, factory slots and generated ones', async () => {
    const m = new MacManager({
      nics: nicA(),
      neighbours: ['02:00:00:00:00:07', '00:14:4f:00:00:01'],
      block: { base: '02:00:00:00:00:06', count: 3 },
    });
    expect(await messageOf(m.allocate({ guest: 'g', policy: 'fixed', mac: '02:00:00:00:00:07' }))).toContain('neighbour');
    expect((await m.allocate({ guest: 'g', iface: 'f', policy: 'factory' })).mac.toString()).toBe('00:14:4f:00:00:02');
    const macs = [];
    for (const i of ['x', 'y']) macs.push((await m.allocate({ guest: 'g', iface: i, policy: 'block' })).mac.toString());
    expect(macs).toEqual(['02:00:00:00:00:06', '02:00:00:00:00:08']);
  });

  it('across managers sharing one store, including remembered MACs of released guests', async () => {
    const store = new MemoryStore();
    const one = new MacManager({ nics: nicA(), store, block: { base: '02:00:00:00:00:01', count: 3 } });
    const two = new MacManager({ nics: new Nic({ primary: '00:14:4f:00:09:00' }), store, block: { base: '02:00:00:00:00:01', count: 3 } });
    const a = await one.allocate({ guest: 'a', policy: 'block' });
    const b = await two.allocate({ guest: 'b', policy: 'block' });
    expect(a.mac.equals(b.mac)).toBe(false);
    expect(await messageOf(two.allocate({ guest: 'c', policy: 'fixed', mac: a.mac }))).toMatch(/held by guest "a"/);
    await one.release(a);
    expect(await messageOf(two.allocate({ guest: 'c', policy: 'fixed', mac: a.mac }))).toMatch(/remembered for guest "a"/);
    const c = await two.allocate({ guest: 'c', policy: 'block' });
    expect([a.mac, b.mac].some((m) => m.equals(c.mac))).toBe(false);
    expect(await codeOf(two.allocate({ guest: 'd', policy: 'block' }))).toBe('BLOCK_EXHAUSTED');
  });
});

describe('quotas', () => {
  it('cap MACs per guest over every NIC with QUOTA_EXCEEDED, and one guest cannot starve another', async () => {
    const m = new MacManager({ nics: { a: nicA(), b: nicB() }, quota: { maxMacs: 2 } });
    await m.allocate({ guest: 'g', nic: 'a', iface: '0' });
    await m.allocate({ guest: 'g', nic: 'b', iface: '0' });
    expect(await messageOf(m.allocate({ guest: 'g', nic: 'a', iface: '1' }))).toBe(
      'QUOTA_EXCEEDED: guest "g" holds 2 MACs and its quota is 2',
    );
    expect(await codeOf(m.allocate({ guest: 'h', nic: 'a' }))).toBeUndefined();
    m.setQuota('g', { maxMacs: 3 });
    expect(await codeOf(m.allocate({ guest: 'g', nic: 'a', iface: '1' }))).toBeUndefined();
  });

  it("limit a guest to its share of a NIC's hardware slots", async () => {
    const m = new MacManager({ nics: nicA(), quota: { hardwareShare: 0.5 } });
    await m.allocate({ guest: 'g', iface: '0', policy: 'factory' });
    await m.allocate({ guest: 'g', iface: '1', policy: 'random' });
    expect(await messageOf(m.allocate({ guest: 'g', iface: '2', policy: 'factory' }))).toContain('share 0.5 of 4 hardware slots allows 2');
    expect((await m.allocate({ guest: 'h', iface: '0', policy: 'factory' })).policy).toBe('factory');
  });

  it('count reservations a guest made directly on the NIC', async () => {
    const nic = nicA();
    const m = new MacManager({ nics: nic, quota: { maxMacs: 2 } });
    const own = nic.openClient('g');
    own.addressReserve();
    own.addressAdd('02:00:00:00:00:44');
    expect(m.usage('g')).toMatchObject({ macs: 2, direct: 2 });
    expect(await codeOf(m.allocate({ guest: 'g' }))).toBe('QUOTA_EXCEEDED');
    // The store learns of them at the next transaction too, so another manager will not hand them out.
    await m.sync();
    const data: StoreData = await m.store.read();
    expect(data.records['02:00:00:00:00:44']).toMatchObject({ guest: 'g', policy: 'direct', holder: m.session });
    own.addressRemove(own.slots().at(-1)!);
    expect(await codeOf(m.allocate({ guest: 'g' }))).toBeUndefined();
    expect((await m.store.read()).records['02:00:00:00:00:44']).toBeUndefined();
  });
});

describe('leases', () => {
  it('lapse after their TTL, are swept from the NIC, and may then go to someone else', async () => {
    let now = 1_000;
    const store = new MemoryStore();
    const m1 = new MacManager({ nics: nicA(), store, clock: () => now });
    const m2 = new MacManager({ nics: nicB(), store, clock: () => now });
    const l = await m1.allocate({ guest: 'a', policy: 'fixed', mac: '02:00:00:00:00:10', ttlMs: 500 });
    expect(l.expires).toBe(1_500);
    expect(await codeOf(m2.allocate({ guest: 'b', policy: 'fixed', mac: '02:00:00:00:00:10' }))).toBe('MAC_IN_USE');
    now = 1_400;
    expect((await m1.renew(l)).expires).toBe(1_900);
    now = 1_899;
    expect(await m1.sweep()).toEqual([]);
    now = 1_900;
    expect((await m1.sweep()).map((s) => s.mac.toString())).toEqual(['02:00:00:00:00:10']);
    expect(m1.leases()).toEqual([]);
    expect(m1.nic('nic0').addressSupport().availableSlots).toBe(4);
    expect(await codeOf(m1.renew(l))).toBe('NOT_RESERVED');
    expect((await m2.allocate({ guest: 'b', policy: 'fixed', mac: '02:00:00:00:00:10' })).mac.toString()).toBe('02:00:00:00:00:10');
  });
});

describe('persistence', () => {
  it('gives each identity its MAC back in the next session, for every policy', async () => {
    const store = new MemoryStore();
    const session = (): MacManager => new MacManager({ nics: { eth0: nicA() }, store, block: '02:08:20/24', secret: 's' });
    const m1 = session();
    const first = await m1.allocateMany([
      { guest: 'vm1', policy: 'factory' },
      { guest: 'vm2', policy: 'random' },
      { guest: 'vm3', policy: 'block', order: 'random' },
      { guest: 'vm4', policy: 'fixed', mac: '02:aa:00:00:00:01' },
      { guest: 'vm5', policy: 'derived' },
    ]);
    await m1.close();
    const m2 = session();
    // A different order, so a sequential picker would hand out different MACs if nothing were remembered.
    const again = await m2.allocateMany(['vm5', 'vm4', 'vm3', 'vm2', 'vm1'].map((guest) => ({ guest })));
    const byGuest = new Map(again.map((l) => [l.guest, l]));
    for (const l of first) {
      const r = byGuest.get(l.guest)!;
      expect([r.mac.toString(), r.policy, r.restored]).toEqual([l.mac.toString(), l.policy, true]);
    }
    expect(m2.nic('eth0').addressGet(byGuest.get('vm1')!.slot).mac.toString()).toBe(first[0]!.mac.toString());
  });

  it('errs clearly when the remembered MAC is taken, or reallocates when asked to', async () => {
    const store = new MemoryStore();
    const m1 = new MacManager({ nics: nicA(), store });
    const l = await m1.allocate({ guest: 'vm', policy: 'random' });
    await m1.close();
    const m2 = new MacManager({ nics: nicA(), store, neighbours: [l.mac] });
    expect(await messageOf(m2.allocate({ guest: 'vm' }))).toBe(
      `MAC_IN_USE: the remembered MAC ${l.mac} of guest "vm" interface "0" on nic0 is a known neighbour on the network; pass onConflict: ` +
        `"reallocate" to get a new one`,
    );
    const r = await m2.allocate({ guest: 'vm', onConflict: 'reallocate' });
    expect(r.mac.equals(l.mac)).toBe(false);
    expect(r.previous?.toString()).toBe(l.mac.toString());
    expect(r.restored).toBe(false);
  });

  it('refuses an identity still held by another live session unless reclaimed', async () => {
    const store = new MemoryStore();
    const crashed = new MacManager({ nics: nicA(), store });
    const l = await crashed.allocate({ guest: 'vm', policy: 'random' });
    // No close(): the session died holding the lease.
    const next = new MacManager({ nics: nicA(), store });
    expect(await messageOf(next.allocate({ guest: 'vm' }))).toContain(`held by session ${crashed.session}`);
    const r = await next.allocate({ guest: 'vm', reclaim: true });
    expect([r.mac.toString(), r.restored]).toEqual([l.mac.toString(), true]);
  });

  it('follows a guest that changes its MAC itself, and forgets on request', async () => {
    const store = new MemoryStore();
    const m = new MacManager({ nics: nicA(), store });
    const l = await m.allocate({ guest: 'vm', policy: 'random' });
    l.client.addressModify(l.slot, '02:00:00:00:0b:0b');
    expect(m.leases('vm')[0]!.mac.toString()).toBe('02:00:00:00:0b:0b');
    await m.sync();
    const recs = (await store.read()).records;
    expect(Object.keys(recs)).toEqual(['02:00:00:00:0b:0b']);
    await m.release(l, { forget: true });
    expect((await store.read()).records).toEqual({});
    expect(await codeOf(m.release(l))).toBe('NOT_RESERVED');
  });

  it('rolls back every NIC change of a batch that fails', async () => {
    const m = new MacManager({ nics: nicA(), quota: { maxMacs: 2 } });
    const before = m.nic('nic0').slots().length;
    expect(
      await codeOf(
        m.allocateMany([
          { guest: 'g', iface: '0' },
          { guest: 'g', iface: '1' },
          { guest: 'g', iface: '2' },
        ]),
      ),
    ).toBe('QUOTA_EXCEEDED');
    expect(
      m
        .nic('nic0')
        .slots()
        .filter((s) => s.slot > 0 && s.reserved).length,
    ).toBe(0);
    expect(m.nic('nic0').slots().length).toBe(before);
    expect(m.leases()).toEqual([]);
    expect((await m.store.read()).records).toEqual({});
  });

  it('a store commit that fails leaves the NIC as it was', async () => {
    const inner = new MemoryStore();
    const failing = {
      location: 'test:failing',
      read: () => inner.read(),
      transact: async <T>(fn: (d: StoreData) => T): Promise<T> => {
        await inner.transact((d) => fn(structuredClone(d)));
        throw new MacslotError('STORE_IO', 'disk full');
      },
    };
    const m = new MacManager({ nics: nicA(), store: failing });
    expect(await codeOf(m.allocate({ guest: 'g', policy: 'factory' }))).toBe('STORE_IO');
    expect(m.nic('nic0').addressSupport().availableSlots).toBe(4);
    expect(m.leases()).toEqual([]);
  });
});

describe('store transactions', () => {
  const KEYS = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', '02:00:00:00:00:04'];
  const record = fc.record({
    guest: fc.constantFrom('a', 'b', 'vm "x"'),
    nic: fc.constantFrom('eth0', 'eth1'),
    iface: fc.constantFrom('0', '1'),
    policy: fc.constantFrom<MacRecord['policy']>('random', 'block', 'direct'),
    holder: fc.constantFrom<string | null>(null, 's1'),
    expires: fc.constantFrom<number | null>(null, 5),
    updated: fc.integer({ min: 0, max: 9 }),
  });
  type Edit =
    | { op: 'put'; key: string; rec: MacRecord }
    | { op: 'field'; key: string; holder: string | null }
    | { op: 'delete'; key: string }
    | { op: 'throw' };
  const edit: fc.Arbitrary<Edit> = fc.oneof(
    fc.record({ op: fc.constant('put' as const), key: fc.constantFrom(...KEYS), rec: record }),
    fc.record({ op: fc.constant('field' as const), key: fc.constantFrom(...KEYS), holder: fc.constantFrom<string | null>(null, 's2') }),
    fc.record({ op: fc.constant('delete' as const), key: fc.constantFrom(...KEYS) }),
    fc.constant({ op: 'throw' as const }),
  );

  it.each([
    { name: 'MemoryStore', runs: 300 },
    { name: 'FileStore', runs: 60 },
  ])(
    '$name: every transaction leaves exactly the text of a plain copy of its edits, and a record kept afterwards cannot change the store',
    async ({ name, runs }) => {
      const dir = mkdtempSync(join(tmpdir(), 'macslot-tx-'));
      let n = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(fc.array(edit, { maxLength: 4 }), { maxLength: 10 }), async (transactions) => {
          const path = join(dir, `store-${n++}.json`);
          const store = name === 'FileStore' ? new FileStore({ path }) : new MemoryStore();
          // What the store holds as text: the file itself, or (in memory) a fresh store's serialization of what it reads.
          const text = async (): Promise<string> =>
            name === 'FileStore' ? readFileSync(path, 'utf8') : serializeStoreData(await store.read());
          let model: StoreData = { version: 2, records: {} };
          const kept: MacRecord[] = [];
          for (const edits of transactions) {
            const next: StoreData = structuredClone(model);
            const apply = (data: StoreData, keep: boolean): void => {
              for (const e of edits) {
                if (e.op === 'throw') throw new Error('abandoned');
                if (e.op === 'put') data.records[e.key] = { ...e.rec };
                else if (e.op === 'delete') delete data.records[e.key];
                else if (data.records[e.key] !== undefined) data.records[e.key]!.holder = e.holder;
              }
              if (keep) for (const r of Object.values(data.records)) kept.push(r);
            };
            let threw = false;
            try {
              apply(next, false);
            } catch {
              threw = true;
            }
            await store.transact((data) => apply(data, true)).catch(() => undefined);
            if (!threw) model = next;
            // Edits made to records after their transaction ended must not reach the store.
            for (const r of kept) r.guest = 'late';
            kept.length = 0;
            if (name === 'MemoryStore' || existsSync(path)) expect(await text()).toBe(serializeStoreData(model));
            // A second store on the same text parses it afresh, so the two agree only if the text is right.
            if (name === 'FileStore' && existsSync(path))
              expect(serializeStoreData(await new FileStore({ path }).read())).toBe(serializeStoreData(model));
          }
        }),
        { numRuns: runs, seed: 7 },
      );
      rmSync(dir, { recursive: true, force: true });
    },
  );
});

// ---- Every MAC the NIC accepts survives every store ----

/** A localStorage stand-in: BrowserStore's localStorage backend over a Map. */
function memoryStorage(): { getItem(k: string): string | null; setItem(k: string, v: string): void } {
  const m = new Map<string, string>();
  return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => void m.set(k, v) };
}

interface StoreKind {
  readonly name: string;
  /** A store, and a function that opens a second, independent store on the same data (another process or tab). */
  open(dir: string, n: number): Promise<{ store: MacStore; reopen: () => Promise<MacStore> }>;
}

const STORE_KINDS: readonly StoreKind[] = [
  {
    name: 'MemoryStore',
    open: async () => {
      const store = new MemoryStore();
      return { store, reopen: async () => new MemoryStore(serializeStoreData(await store.read())) };
    },
  },
  {
    name: 'FileStore',
    open: async (dir, n) => {
      const path = join(dir, `store-${n}.json`);
      return { store: new FileStore({ path }), reopen: async () => new FileStore({ path }) };
    },
  },
  {
    name: 'BrowserStore (localStorage)',
    open: async (_, n) => {
      const localStorage = memoryStorage();
      const name = `s${n}`;
      const store = await BrowserStore.open({ backend: 'localstorage', name, localStorage });
      return { store, reopen: () => BrowserStore.open({ backend: 'localstorage', name, localStorage }) };
    },
  },
];

/** Any identifier a NIC accepts as an active MAC: MAC-48 or EUI-64, unicast and not zero. */
const acceptedMac = fc
  .oneof(fc.uint8Array({ minLength: 6, maxLength: 6 }), fc.uint8Array({ minLength: 8, maxLength: 8 }))
  .map((b) => Mac.fromBytes(b))
  .filter((m) => m.isValidUnicast);

const EUI64_CASES = [
  ['an EUI-64', '02:11:22:33:44:55:66:77'],
  ['an EUI-64 in bare hex', '0a1122334455667f'],
  ['an EUI-64 that extends a MAC-48 prefix', '00:14:4f:00:00:01:00:00'],
] as const;

describe('stores keep every MAC the NIC accepts', () => {
  it.each(STORE_KINDS.flatMap((k) => EUI64_CASES.map(([what, mac]) => [k.name, what, mac, k] as const)))(
    '%s: %s stays readable for this manager, the next one and the next process',
    async (_, __, mac, kind) => {
      const dir = mkdtempSync(join(tmpdir(), 'macslot-eui-'));
      try {
        const { store, reopen } = await kind.open(dir, 0);
        const m = new MacManager({ nics: nicA(), store });
        const l = await m.allocate({ guest: 'g', policy: 'fixed', mac });
        expect(l.mac.kind).toBe('eui64');
        // The next allocation reads the store the first one wrote.
        expect((await m.allocate({ guest: 'h', policy: 'random' })).mac.kind).toBe('mac48');
        await m.close();
        const again = new MacManager({ nics: nicA(), store: await reopen() });
        const r = await again.allocate({ guest: 'g' });
        expect([r.mac.toString(), r.restored]).toEqual([Mac.parse(mac).toString(), true]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it.each(STORE_KINDS.map((k) => [k.name, k] as const))(
    '%s: whatever the manager accepts, the store writes and reads back unchanged',
    async (_, kind) => {
      const dir = mkdtempSync(join(tmpdir(), 'macslot-rt-'));
      let n = 0;
      // Names as the manager takes them: any non-empty string up to its limit, lone surrogates and quotes included.
      const text = (max: number): fc.Arbitrary<string> => fc.string({ minLength: 1, maxLength: max, unit: 'binary' });
      const request = fc.record({
        guest: text(256).filter((g) => g !== 'primary'),
        iface: text(64),
        mac: acceptedMac,
        ttlMs: fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: undefined }),
        // Through the manager, or added by the guest's own client on the NIC (the manager records it at the next transaction).
        direct: fc.boolean(),
      });
      try {
        await fc.assert(
          fc.asyncProperty(
            fc.uniqueArray(request, { maxLength: 4, selector: (r) => r.mac.toString() }),
            text(64),
            async (requests, nicName) => {
              const { store, reopen } = await kind.open(dir, n++);
              const time = new FakeTime(1_000);
              const m = new MacManager({ nics: { [nicName]: nicA() }, store, clock: time.clock, setTimer: time.setTimer });
              const leases: Lease[] = [];
              const direct: { guest: string; slot: number; mac: Mac }[] = [];
              for (const r of requests) {
                if (r.direct) {
                  const nic = m.nic(nicName);
                  const client = nic.client(r.guest) ?? nic.openClient(r.guest);
                  try {
                    direct.push({ guest: r.guest, slot: client.addressAdd(r.mac).slot, mac: r.mac });
                  } catch (e) {
                    expect((e as MacslotError).code).toBe('MAC_IN_USE');
                  }
                  continue;
                }
                const o = await m
                  .allocate({
                    guest: r.guest,
                    iface: r.iface,
                    policy: 'fixed',
                    mac: r.mac,
                    ...(r.ttlMs === undefined ? {} : { ttlMs: r.ttlMs }),
                  })
                  .catch((e: unknown) => e);
                // Only a factory or primary MAC of the NIC, or an identity asked twice, is refused.
                if (o instanceof MacslotError) expect(o.code).toBe('MAC_IN_USE');
                else leases.push(o as Lease);
              }
              await m.sync();
              const written = await store.read();
              const read = await (await reopen()).read();
              expect(read).toEqual(written);
              expect(serializeStoreData(read)).toBe(serializeStoreData(written));
              for (const l of leases) {
                expect(read.records[l.mac.toString()]).toEqual({
                  guest: l.guest,
                  nic: nicName,
                  iface: l.iface,
                  policy: 'fixed',
                  holder: m.session,
                  expires: l.expires ?? null,
                  updated: 1_000,
                });
              }
              for (const d of direct) {
                const record = {
                  guest: d.guest,
                  nic: nicName,
                  iface: `slot ${d.slot}`,
                  policy: 'direct',
                  holder: m.session,
                  expires: null,
                };
                expect(read.records[d.mac.toString()]).toEqual({ ...record, updated: 1_000 });
              }
              // The text form alone round-trips too, displaced identities included.
              const withDisplaced: StoreData = {
                ...written,
                displaced: leases.map((l, i) => ({
                  guest: l.guest,
                  nic: `${nicName}${i}`,
                  iface: l.iface,
                  mac: l.mac.toString(),
                  policy: 'random',
                  updated: i,
                })),
              };
              if (leases.length === 0) delete withDisplaced.displaced;
              expect(parseStoreData(serializeStoreData(withDisplaced), 'test')).toEqual(withDisplaced);
            },
          ),
          { numRuns: kind.name === 'FileStore' ? 40 : 120, seed: 12 },
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it.each([
    ['a multicast EUI-64 key', '03:11:22:33:44:55:66:77', /not a unicast MAC/],
    ['the zero EUI-64 key', '00:00:00:00:00:00:00:00', /not a unicast MAC/],
    ['a 7-byte key', '02:11:22:33:44:55:66', /not a MAC in canonical form/],
    ['an upper-case EUI-64 key', '02:11:22:33:44:55:66:AA', /not a MAC in canonical form/],
  ])('a store with %s is STORE_CORRUPT', (_, key, why) => {
    const text = JSON.stringify({
      version: 2,
      records: { [key]: { guest: 'g', nic: 'n', iface: '0', policy: 'fixed', holder: null, expires: null, updated: 0 } },
    });
    expect(() => parseStoreData(text, 'test')).toThrow(why);
  });

  it.each([
    ['not an array', { x: 1 }, /"displaced" is/],
    ['a direct policy', [{ guest: 'g', nic: 'n', iface: '0', mac: '02:00:00:00:00:01', policy: 'direct', updated: 0 }], /bad policy/],
    ['a multicast MAC', [{ guest: 'g', nic: 'n', iface: '0', mac: '03:00:00:00:00:01', policy: 'fixed', updated: 0 }], /not a unicast MAC/],
    [
      'one identity twice',
      [0, 1].map((i) => ({ guest: 'g', nic: 'n', iface: '0', mac: `02:00:00:00:00:0${i + 1}`, policy: 'fixed', updated: 0 })),
      /twice/,
    ],
  ])('a displaced list with %s is STORE_CORRUPT', (_, displaced, why) => {
    expect(() => parseStoreData(JSON.stringify({ version: 2, records: {}, displaced }), 'test')).toThrow(why);
  });
});

// ---- Leases lapse on their own ----

/** MACs reserved on a NIC, as text. */
const onNic = (nic: Nic): Set<string> =>
  new Set(
    nic
      .slots()
      .filter((s) => s.reserved && s.slot > 0)
      .map((s) => s.mac.toString()),
  );

/** Calls `check` after every change on any of the NICs, so a state that lasts no longer than one event is still seen. */
function watch(nics: readonly Nic[], check: () => void): () => void {
  const offs = nics.map((n) => n.on(() => check()));
  return () => {
    for (const off of offs) off();
  };
}

describe('lease lapse', () => {
  it('takes the MAC off the NIC when the TTL passes, with no call to the manager', async () => {
    const time = new FakeTime(1_000);
    const m = new MacManager({ nics: nicA(), clock: time.clock, setTimer: time.setTimer });
    const l = await m.allocate({ guest: 'a', policy: 'fixed', mac: '02:00:00:00:00:10', ttlMs: 500 });
    time.advance(499);
    expect(onNic(m.nic('nic0')).has('02:00:00:00:00:10')).toBe(true);
    time.advance(1);
    expect(onNic(m.nic('nic0')).has('02:00:00:00:00:10')).toBe(false);
    expect(m.leases()).toEqual([]);
    // sweep() reports the lease the timer took, once.
    expect((await m.sweep()).map((s) => s.mac.toString())).toEqual([l.mac.toString()]);
    expect(await m.sweep()).toEqual([]);
    expect((await m.store.read()).records['02:00:00:00:00:10']).toMatchObject({ guest: 'a', holder: null });
  });

  it('a renewed lease lapses at its new expiry', async () => {
    const time = new FakeTime(0);
    const m = new MacManager({ nics: nicA(), clock: time.clock, setTimer: time.setTimer });
    const l = await m.allocate({ guest: 'a', policy: 'random', ttlMs: 100 });
    time.advance(90);
    await m.renew(l, 100);
    time.advance(50);
    expect(m.leases().length).toBe(1);
    time.advance(50);
    expect(m.leases()).toEqual([]);
  });

  it('a MAC held by a session whose timer has not run stays taken for LAPSE_GRACE_MS after its expiry', async () => {
    const time = new FakeTime(1_000);
    const store = new MemoryStore();
    // The first session's timers never run (a stalled or dead process).
    const stalled = new MacManager({ nics: nicA(), store, clock: time.clock, setTimer: () => () => undefined });
    const other = new MacManager({ nics: nicB(), store, clock: time.clock, setTimer: time.setTimer });
    await stalled.allocate({ guest: 'a', policy: 'fixed', mac: '02:00:00:00:00:10', ttlMs: 500 });
    time.advance(500 + LAPSE_GRACE_MS - 1);
    expect(await messageOf(other.allocate({ guest: 'b', policy: 'fixed', mac: '02:00:00:00:00:10' }))).toMatch(
      /MAC_IN_USE: .*held by guest "a"/,
    );
    time.advance(1);
    expect((await other.allocate({ guest: 'b', policy: 'fixed', mac: '02:00:00:00:00:10' })).mac.toString()).toBe('02:00:00:00:00:10');
  });

  it('two managers on one store never have one MAC active on both NICs, at any instant', async () => {
    const MAC = '02:00:00:00:00:10';
    let moved = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant('allocate' as const),
              who: fc.constantFrom(0, 1),
              ttl: fc.option(fc.constantFrom(10, 100, 1_000), { nil: undefined }),
            }),
            fc.record({ op: fc.constant('renew' as const), who: fc.constantFrom(0, 1) }),
            fc.record({ op: fc.constant('release' as const), who: fc.constantFrom(0, 1) }),
            // Steps short and long against the TTLs, and one past any grace a held record keeps.
            fc.record({ op: fc.constant('advance' as const), ms: fc.constantFrom(1, 9, 50, 500, 5_000) }),
          ),
          { maxLength: 30 },
        ),
        async (steps) => {
          const time = new FakeTime(1_000);
          const store = new MemoryStore();
          const nics = [nicA(), nicB()];
          const ms = nics.map(
            (nic, i) => new MacManager({ nics: nic, store, clock: time.clock, setTimer: time.setTimer, session: `s${i}` }),
          );
          const both = (): void => {
            expect(
              nics.every((n) => onNic(n).has(MAC)),
              `${MAC} is active on both NICs at ${time.now}`,
            ).toBe(false);
          };
          const off = watch(nics, both);
          let last: number | undefined;
          try {
            for (const s of steps) {
              if (s.op === 'advance') time.advance(s.ms, both);
              else if (s.op === 'allocate') {
                const l = await ms[s.who]!.allocate({
                  guest: `g${s.who}`,
                  policy: 'fixed',
                  mac: MAC,
                  ...(s.ttl === undefined ? {} : { ttlMs: s.ttl }),
                }).catch(() => undefined);
                if (l !== undefined && last !== undefined && last !== s.who) moved++;
                if (l !== undefined) last = s.who;
              } else if (s.op === 'renew') await ms[s.who]!.renew({ guest: `g${s.who}`, nic: 'nic0' }).catch(() => undefined);
              else await ms[s.who]!.release({ guest: `g${s.who}`, nic: 'nic0' }).catch(() => undefined);
              both();
            }
          } finally {
            off();
            for (const m of ms) await m.close();
          }
          expect(time.pending).toBe(0);
        },
      ),
      { numRuns: 300, seed: 12 },
    );
    // The property is not vacuous: the MAC did pass from one manager to the other.
    expect(moved).toBeGreaterThan(10);
  });

  it('arms real timers that do not keep the process alive, and clears them on close', async () => {
    const armed: NodeJS.Timeout[] = [];
    const realSetTimeout = globalThis.setTimeout;
    const set = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms: number) => {
      const t = realSetTimeout(fn, ms);
      armed.push(t);
      return t;
    }) as typeof setTimeout);
    const clear = vi.spyOn(globalThis, 'clearTimeout');
    try {
      const m = new MacManager({ nics: nicA() });
      await m.allocate({ guest: 'a', policy: 'random', ttlMs: 3_600_000 });
      expect(armed.length).toBe(1);
      expect(armed[0]!.hasRef()).toBe(false);
      await m.close();
      expect(clear).toHaveBeenCalledWith(armed[0]);
    } finally {
      set.mockRestore();
      clear.mockRestore();
      for (const t of armed) clearTimeout(t);
    }
  });

  it('close() cancels the lapse timer', async () => {
    const time = new FakeTime(0);
    const m = new MacManager({ nics: nicA(), clock: time.clock, setTimer: time.setTimer });
    await m.allocate({ guest: 'a', policy: 'random', ttlMs: 100 });
    expect(time.pending).toBe(1);
    await m.close();
    expect(time.pending).toBe(0);
  });
});

// ---- A returning guest learns what happened to its MAC ----

describe('a guest returning after its lease lapsed', () => {
  async function taken(): Promise<{ time: FakeTime; one: MacManager; two: MacManager; mac: string }> {
    const time = new FakeTime(1_000);
    const store = new MemoryStore(undefined, 'shared');
    const one = new MacManager({ nics: nicA(), store, clock: time.clock, setTimer: time.setTimer });
    const two = new MacManager({ nics: nicB(), store, clock: time.clock, setTimer: time.setTimer });
    const l = await one.allocate({ guest: 'a', policy: 'random', ttlMs: 100 });
    time.advance(100);
    await one.sweep();
    await two.allocate({ guest: 'b', policy: 'fixed', mac: l.mac });
    return { time, one, two, mac: l.mac.toString() };
  }

  it.each([
    ['default onConflict', {}],
    ['onConflict: "error"', { onConflict: 'error' as const }],
  ])('gets MAC_IN_USE naming the holder (%s)', async (_, extra) => {
    const { one, mac } = await taken();
    expect(await messageOf(one.allocate({ guest: 'a', ...extra }))).toBe(
      `MAC_IN_USE: the remembered MAC ${mac} of guest "a" interface "0" on nic0 is held by guest "b" interface "0" on nic0 in ` +
        `memory:shared (session ${(await one.store.read()).records[mac]!.holder}); pass onConflict: "reallocate" to get a new one`,
    );
    // It keeps failing the same way: the error took nothing from the store.
    expect(await codeOf(one.allocate({ guest: 'a' }))).toBe('MAC_IN_USE');
  });

  it('with onConflict: "reallocate" gets a new MAC and the old one in previous, once', async () => {
    const { one, mac } = await taken();
    const r = await one.allocate({ guest: 'a', onConflict: 'reallocate' });
    expect([r.mac.toString() === mac, r.previous?.toString(), r.restored]).toEqual([false, mac, false]);
    await one.release(r);
    const again = await one.allocate({ guest: 'a' });
    expect([again.mac.toString(), again.restored, again.previous]).toEqual([r.mac.toString(), true, undefined]);
    expect((await one.store.read()).displaced).toBeUndefined();
  });

  it('gets its MAC back once the other guest gave it up for good', async () => {
    const { one, two, mac } = await taken();
    await two.release({ guest: 'b', nic: 'nic0' }, { forget: true });
    const r = await one.allocate({ guest: 'a' });
    expect([r.mac.toString(), r.restored]).toEqual([mac, true]);
  });

  it('is remembered in a FileStore across processes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'macslot-displaced-'));
    try {
      const path = join(dir, 'macs.json');
      const time = new FakeTime(1_000);
      const one = new MacManager({ nics: nicA(), store: new FileStore({ path }), clock: time.clock, setTimer: time.setTimer });
      const l = await one.allocate({ guest: 'a', policy: 'random', ttlMs: 100 });
      time.advance(100);
      await one.close();
      const two = new MacManager({ nics: nicB(), store: new FileStore({ path }), clock: time.clock, setTimer: time.setTimer });
      await two.allocate({ guest: 'b', policy: 'fixed', mac: l.mac });
      const three = new MacManager({ nics: nicA(), store: new FileStore({ path }), clock: time.clock, setTimer: time.setTimer });
      expect(await messageOf(three.allocate({ guest: 'a' }))).toContain(`${l.mac} of guest "a" interface "0" on nic0 is held by guest "b"`);
      await two.close();
      await three.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- Quotas and the guest's own client ----

describe('reservations a guest makes on its own client', () => {
  // The NIC grants a client's reservation at once; the quota spans every process sharing the store, which only a
  // transaction sees. So the excess is not refused but reported, and the guest gets no more from the manager.
  it.each([
    ['past maxMacs', { maxMacs: 1 }, 2, 2],
    ['past hardwareShare', { hardwareShare: 0.5 }, 3, 2],
    ['within quota', { maxMacs: 3 }, 2, 0],
  ])('%s: the excess is reported in conflicts() as quota', async (_, quota, direct, excess) => {
    const m = new MacManager({ nics: nicA(), quota });
    const l = await m.allocate({ guest: 'g', policy: 'random' });
    const added = Array.from({ length: direct }, (__, i) => l.client.addressAdd(`02:00:00:00:01:0${i}`));
    await m.sync();
    const reported = m.conflicts().filter((c) => c.reason === 'quota');
    expect(reported.map((c) => [c.client, c.nic, c.slot, c.mac.toString(), c.record?.policy])).toEqual(
      added.slice(direct - excess).map((a) => ['g', 'nic0', a.slot, a.mac.toString(), 'direct']),
    );
    // Counted, so the manager gives the guest nothing more while it is over quota.
    if (excess > 0) expect(await codeOf(m.allocate({ guest: 'g', iface: '1' }))).toBe('QUOTA_EXCEEDED');
    for (const a of added) l.client.addressRemove(a.slot);
    await m.sync();
    expect(m.conflicts()).toEqual([]);
  });
});

// ---- Migration between NICs ----

const GROUP = '01:00:5e:00:00:fb';

describe('migrate', () => {
  async function setup(target: Nic = nicB(), options: Partial<MacManagerOptions> = {}) {
    const store = new MemoryStore();
    const time = new FakeTime(1_000);
    const a = nicA();
    const m = new MacManager({
      nics: { a, b: target },
      store,
      block: '02:08:20/24',
      clock: time.clock,
      setTimer: time.setTimer,
      ...options,
    });
    const leases = await m.allocateMany([
      { guest: 'vm', nic: 'a', iface: '0', policy: 'random' },
      { guest: 'vm', nic: 'a', iface: '1', policy: 'block', ttlMs: 10_000 },
      { guest: 'vm', nic: 'a', iface: '2', policy: 'fixed', mac: '02:00:00:00:00:77' },
      { guest: 'other', nic: 'a', policy: 'random' },
    ]);
    const client = leases[0]!.client;
    const direct = client.addressAdd('02:00:00:00:00:d1');
    client.multicastJoin(GROUP);
    client.multicastJoin(GROUP);
    await m.sync();
    return { m, a, b: target, store, time, leases, direct };
  }

  /** What the guest holds: MACs per NIC, groups per NIC, leases and store records. */
  async function state(m: MacManager, store: MacStore): Promise<unknown> {
    const nics = ['a', 'b'].map((n) => {
      const nic = m.nic(n);
      return [n, [...onNic(nic)].sort(), nic.client('vm')?.groups() ?? []];
    });
    const leases = m
      .leases('vm')
      .map((l) => [l.nic, l.iface, l.mac.toString(), l.expires])
      .sort();
    return { nics, leases, records: (await store.read()).records };
  }

  it('moves every MAC, lease and group of the guest, never active on two NICs, and the store follows', async () => {
    const { m, a, b, store, leases, direct } = await setup();
    const macs = [...leases.slice(0, 3).map((l) => l.mac.toString()), direct.mac.toString()];
    const off = watch([a, b], () => {
      for (const mac of macs) expect(onNic(a).has(mac) && onNic(b).has(mac), `${mac} on both NICs`).toBe(false);
      // Never lost either: each MAC is on one NIC at every event, but for the instant between its removal and its add.
      expect(macs.filter((mac) => !onNic(a).has(mac) && !onNic(b).has(mac)).length).toBeLessThanOrEqual(1);
    });
    const moved = await m.migrate('vm', 'b');
    off();
    expect(moved.map((l) => [l.nic, l.iface, l.mac.toString(), l.client.nic === b]).sort()).toEqual(
      leases
        .slice(0, 3)
        .map((l) => ['b', l.iface, l.mac.toString(), true])
        .sort(),
    );
    expect(moved.find((l) => l.iface === '1')?.expires).toBe(leases[1]!.expires);
    for (const mac of macs) expect([onNic(a).has(mac), onNic(b).has(mac)]).toEqual([false, true]);
    expect(onNic(a).has(leases[3]!.mac.toString())).toBe(true);
    // The groups moved with their join count: two leaves on the target are needed, a third fails.
    expect([a.client('vm'), b.client('vm')?.groups()]).toEqual([undefined, [GROUP]]);
    b.client('vm')!.multicastLeave(GROUP);
    b.client('vm')!.multicastLeave(GROUP);
    expect(() => b.client('vm')!.multicastLeave(GROUP)).toThrow(/NOT_MEMBER/);
    const records = (await store.read()).records;
    for (const l of leases.slice(0, 3))
      expect(records[l.mac.toString()]).toMatchObject({ guest: 'vm', nic: 'b', iface: l.iface, holder: m.session });
    expect(records[direct.mac.toString()]).toMatchObject({ guest: 'vm', nic: 'b', policy: 'direct' });
    // The moved reservation stays the guest's own: followed, recorded and counted after the next transaction too.
    await m.sync();
    expect((await store.read()).records[direct.mac.toString()]).toMatchObject({
      guest: 'vm',
      nic: 'b',
      policy: 'direct',
      holder: m.session,
    });
    expect(m.usage('vm')).toMatchObject({ macs: 4, direct: 1, perNic: { b: 4 } });
    // The next session finds the guest on its new NIC.
    await m.close();
    const next = new MacManager({ nics: { a: nicA(), b: nicB() }, store });
    const again = await next.allocate({ guest: 'vm', nic: 'b', iface: '2' });
    expect([again.mac.toString(), again.restored]).toEqual(['02:00:00:00:00:77', true]);
  });

  it('a lease that lapses after migrating lapses on the target', async () => {
    const { m, b, time, leases } = await setup();
    await m.migrate('vm', 'b');
    time.advance(10_000);
    expect(onNic(b).has(leases[1]!.mac.toString())).toBe(false);
    expect(
      m
        .leases('vm')
        .map((l) => l.iface)
        .sort(),
    ).toEqual(['0', '2']);
  });

  const FAILURES: readonly [string, () => Promise<{ m: MacManager; store: MacStore; run: () => Promise<unknown> }>, string][] = [
    [
      'the target is full',
      async () => {
        const { m, store } = await setup(new Nic({ primary: '00:14:4f:00:01:00', maxAddresses: 3 }));
        return { m, store, run: () => m.migrate('vm', 'b') };
      },
      'NO_FREE_SLOT',
    ],
    [
      'a MAC is in use on the target',
      async () => {
        const target = nicB();
        const { m, store } = await setup(target);
        target.openClient('squatter').addressAdd('02:00:00:00:00:d1');
        return { m, store, run: () => m.migrate('vm', 'b') };
      },
      'MAC_IN_USE',
    ],
    [
      'a lease is in a factory slot',
      async () => {
        const { m, store } = await setup();
        await m.allocate({ guest: 'vm', nic: 'a', iface: '3', policy: 'factory' });
        return { m, store, run: () => m.migrate('vm', 'b') };
      },
      'NOT_SUPPORTED',
    ],
    [
      'the guest already has that interface on the target',
      async () => {
        const { m, store } = await setup();
        await m.allocate({ guest: 'vm', nic: 'b', iface: '0', policy: 'random' });
        return { m, store, run: () => m.migrate('vm', 'b') };
      },
      'MAC_IN_USE',
    ],
    [
      'the target share of the quota is used up',
      async () => {
        const { m, store } = await setup();
        m.setQuota('vm', { hardwareShare: 0.5 });
        return { m, store, run: () => m.migrate('vm', 'b') };
      },
      'QUOTA_EXCEEDED',
    ],
    [
      'the store cannot commit',
      async () => {
        const inner = new MemoryStore();
        let fail = false;
        const store: MacStore = {
          location: 'test:failing',
          read: () => inner.read(),
          transact: async <T>(fn: (d: StoreData) => T): Promise<T> => {
            const r = await inner.transact((d) => {
              const copy = structuredClone(d);
              const out = fn(copy);
              if (!fail) Object.assign(d, copy);
              return out;
            });
            if (fail) throw new MacslotError('STORE_IO', 'disk full');
            return r;
          },
        };
        const { m } = await setup(nicB(), { store });
        return {
          m,
          store,
          run: () => {
            fail = true;
            return m.migrate('vm', 'b').finally(() => {
              fail = false;
            });
          },
        };
      },
      'STORE_IO',
    ],
  ];

  it.each(FAILURES)('fails when %s, and leaves the guest where it was', async (_, build, code) => {
    const { m, store, run } = await build();
    const before = await state(m, store);
    expect(await codeOf(run())).toBe(code);
    expect(await state(m, store)).toEqual(before);
    // Still whole: the guest's leases work as before on the source.
    for (const l of m.leases('vm')) expect(m.nic(l.nic).addressGet(l.slot).mac.equals(l.mac)).toBe(true);
  });

  it.each([
    ['an unknown NIC', 'vm', 'c', 'INVALID_ARGUMENT'],
    ['an empty guest', '', 'b', 'INVALID_ARGUMENT'],
    ['the primary client', 'primary', 'b', 'INVALID_ARGUMENT'],
  ])('rejects %s', async (_, guest, nic, code) => {
    const m = new MacManager({ nics: { a: nicA(), b: nicB() } });
    expect(await codeOf(m.migrate(guest, nic))).toBe(code);
  });

  it('of a guest with nothing elsewhere moves nothing', async () => {
    const m = new MacManager({ nics: { a: nicA(), b: nicB() } });
    await m.allocate({ guest: 'vm', nic: 'b' });
    expect(await m.migrate('vm', 'b')).toEqual([]);
    expect(m.leases('vm').map((l) => l.nic)).toEqual(['b']);
  });
});

/**
 * A MemoryStore presented as a concurrent store (as PostgresStore is), so managers over it allocate, renew and release
 * through record-level operations; it counts the calls, and `failClaims` makes claims fail as a lost database would.
 */
function concurrentStore(inner = new MemoryStore()) {
  const calls = { transact: 0, claimNew: 0, release: 0, renew: 0 };
  const faults = { failClaims: false };
  const store: MacStore & RecordStore = {
    location: inner.location,
    concurrent: true,
    transact: (fn) => {
      calls.transact++;
      return inner.transact(fn);
    },
    read: () => inner.read(),
    claim: (r) => inner.claim(r),
    claimNew: (r) => {
      calls.claimNew++;
      if (faults.failClaims) return Promise.reject(new MacslotError('STORE_IO', 'the MAC store is unreachable (test)'));
      return inner.claimNew(r);
    },
    release: (mac, holder) => {
      calls.release++;
      return inner.release(mac, holder);
    },
    renew: (mac, holder, ttl) => {
      calls.renew++;
      return inner.renew(mac, holder, ttl);
    },
    expire: () => inner.expire(),
    byIdentity: (id) => inner.byIdentity(id),
    byMac: (mac) => inner.byMac(mac),
    list: () => inner.list(),
  };
  return { store, calls, faults, inner };
}

/** Resolves once `check` is true; rejects after `ms` (a deadline for a busy machine, not a sleep). */
async function until(check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('managers on a concurrent store (record-level claims)', () => {
  const host = (store: MacStore, session: string, primary: string, extra: Partial<MacManagerOptions> = {}): MacManager =>
    new MacManager({ nics: { eth0: new Nic({ primary, maxAddresses: 64 }) }, store, block: '02:08:20:00:00/40', session, ...extra });

  it('two managers racing for one MAC: the store gives it to one, the other gets MAC_IN_USE naming the holder', async () => {
    const { store, calls } = concurrentStore();
    const one = host(store, 'one', '00:14:4f:00:00:00');
    const two = host(store, 'two', '00:14:4f:00:01:00');
    const mac = '02:08:20:00:00:07';
    const results = await Promise.allSettled([
      one.allocate({ guest: 'a', policy: 'fixed', mac }),
      two.allocate({ guest: 'b', policy: 'fixed', mac }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const winner = won[0]!.status === 'fulfilled' ? won[0]!.value : undefined;
    const loser = winner?.guest === 'a' ? 'two' : 'one';
    expect((lost[0]!.reason as MacslotError).code).toBe('MAC_IN_USE');
    expect((lost[0]!.reason as MacslotError).message).toMatch(new RegExp(`held by session ${loser === 'two' ? 'one' : 'two'} for guest`));
    // Only the winner has it on its NIC, and the store records the winner alone.
    expect([...one.leases(), ...two.leases()].map((l) => l.guest)).toEqual([winner!.guest]);
    expect((await store.list()).map((r) => [r.mac, r.guest])).toEqual([[mac, winner!.guest]]);
    expect(calls.claimNew).toBe(2);
    expect(calls.transact).toBe(0);
  });

  it('a claim that finds its MACs taken retries with the next candidates, with no whole-store transaction', async () => {
    const { store, calls } = concurrentStore();
    // Another host holds the block's first 20 MACs: more than one claim's candidates.
    for (let i = 0; i < 20; i++)
      await store.claim({
        mac: `02:08:20:00:00:${i.toString(16).padStart(2, '0')}`,
        guest: `x${i}`,
        nic: 'eth0',
        iface: '0',
        policy: 'block',
        holder: 'other',
      });
    const m = host(store, 'me', '00:14:4f:00:00:00');
    const lease = await m.allocate({ guest: 'vm', policy: 'block' });
    expect(lease.mac.toString()).toBe('02:08:20:00:00:14');
    expect(calls.claimNew).toBeGreaterThanOrEqual(3);
    expect(calls.transact).toBe(0);
    expect(await store.byMac('02:08:20:00:00:14')).toMatchObject({ guest: 'vm', holder: 'me', policy: 'block' });
    // Learned: the next allocation goes straight past the taken MACs, in one claim.
    const before = calls.claimNew;
    const next = await m.allocate({ guest: 'vm2', policy: 'block' });
    expect(parseInt(next.mac.toString().slice(-2), 16)).toBeGreaterThan(0x14);
    expect(calls.claimNew - before).toBe(1);
  });

  it('many allocations at once on two managers: distinct MACs, each recorded for its guest', async () => {
    const { store, calls } = concurrentStore();
    const one = host(store, 'one', '00:14:4f:00:00:00');
    const two = host(store, 'two', '00:14:4f:00:01:00');
    const leases = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? one : two).allocate({ guest: `vm${i}`, policy: 'block' })),
    );
    const macs = leases.map((l) => l.mac.toString());
    expect(new Set(macs).size).toBe(40);
    const recorded = new Map((await store.list()).map((r) => [r.mac, r.guest]));
    for (const l of leases) expect(recorded.get(l.mac.toString())).toBe(l.guest);
    expect(calls.transact).toBe(0);
  });

  it('two allocations of one identity at once on one manager give one lease and one record', async () => {
    const { store } = concurrentStore();
    const m = host(store, 'me', '00:14:4f:00:00:00');
    const [a, b] = await Promise.all([m.allocate({ guest: 'vm', policy: 'block' }), m.allocate({ guest: 'vm', policy: 'block' })]);
    expect(a.mac.equals(b.mac)).toBe(true);
    expect(m.leases()).toHaveLength(1);
    expect(
      m
        .nic('eth0')
        .slots()
        .filter((s) => s.owner === 'vm'),
    ).toHaveLength(1);
    expect(await store.list()).toHaveLength(1);
  });

  it('the same MAC comes back in the next session on another host, and release and renew are record-level', async () => {
    const { store, calls } = concurrentStore();
    const one = host(store, 'one', '00:14:4f:00:00:00');
    const lease = await one.allocate({ guest: 'vm', policy: 'block', ttlMs: 60_000 });
    const renewed = await one.renew(lease, 120_000);
    expect(renewed.expires! - lease.expires!).toBeGreaterThanOrEqual(60_000);
    expect((await store.byMac(lease.mac.toString()))!.expires).toBe(renewed.expires);
    await one.release(lease);
    expect(calls).toMatchObject({ renew: 1, release: 1, transact: 0 });
    expect(await store.byMac(lease.mac.toString())).toMatchObject({ guest: 'vm', holder: null });
    const two = host(store, 'two', '00:14:4f:00:01:00');
    const back = await two.allocate({ guest: 'vm', policy: 'block' });
    expect(back.restored).toBe(true);
    expect(back.mac.equals(lease.mac)).toBe(true);
    // Another guest cannot have a MAC remembered for vm.
    expect(await messageOf(one.allocate({ guest: 'other', policy: 'fixed', mac: lease.mac }))).toMatch(
      /held by session two for guest "vm"/,
    );
  });

  it('a lease lapses by its timer, the release is recorded, and a returning guest learns who took its MAC', async () => {
    const { store } = concurrentStore();
    const one = host(store, 'one', '00:14:4f:00:00:00');
    const lease = await one.allocate({ guest: 'vm', policy: 'block', ttlMs: 50 });
    await until(async () => one.leases().length === 0 && (await store.byMac(lease.mac.toString()))?.holder === null);
    expect(
      one
        .nic('eth0')
        .slots()
        .some((s) => s.mac.equals(lease.mac)),
    ).toBe(false);
    // Past its expiry, another guest on another host takes the MAC; vm is remembered as displaced.
    const two = host(store, 'two', '00:14:4f:00:01:00');
    await until(async () => (await codeOf(two.allocate({ guest: 'thief', policy: 'fixed', mac: lease.mac }))) === undefined);
    expect(await messageOf(one.allocate({ guest: 'vm', policy: 'block' }))).toMatch(
      /remembered MAC 02:08:20:00:00:00 .* held by guest "thief"/,
    );
    const again = await one.allocate({ guest: 'vm', policy: 'block', onConflict: 'reallocate' });
    expect(again.previous?.equals(lease.mac)).toBe(true);
  });

  it('a claim the store cannot record fails closed: STORE_IO, nothing on the NIC, nothing leased', async () => {
    const { store, faults } = concurrentStore();
    const m = host(store, 'me', '00:14:4f:00:00:00');
    faults.failClaims = true;
    expect(await codeOf(m.allocate({ guest: 'vm', policy: 'block' }))).toBe('STORE_IO');
    expect(m.leases()).toEqual([]);
    expect(
      m
        .nic('eth0')
        .slots()
        .filter((s) => s.slot !== 0),
    ).toEqual([]);
    expect(await store.list()).toEqual([]);
    faults.failClaims = false;
    const lease = await m.allocate({ guest: 'vm', policy: 'block' });
    expect(await store.list()).toMatchObject([{ mac: lease.mac.toString(), guest: 'vm', holder: 'me' }]);
  });

  it('a quota still counts MACs of every host: a guest under one goes through a whole-store transaction', async () => {
    const { store, calls } = concurrentStore();
    const one = host(store, 'one', '00:14:4f:00:00:00', { quota: { maxMacs: 1 } });
    const two = host(store, 'two', '00:14:4f:00:01:00', { quota: { maxMacs: 1 } });
    await one.allocate({ guest: 'vm', iface: '0', policy: 'block' });
    expect(await codeOf(two.allocate({ guest: 'vm', iface: '1', policy: 'block' }))).toBe('QUOTA_EXCEEDED');
    expect(calls.claimNew).toBe(0);
    expect(calls.transact).toBeGreaterThanOrEqual(2);
  });

  it("a guest's own reservation on its client reaches the store without a call to the manager", async () => {
    const { store } = concurrentStore();
    const one = host(store, 'one', '00:14:4f:00:00:00');
    const lease = await one.allocate({ guest: 'vm', policy: 'block' });
    lease.client.addressAdd('02:00:00:00:00:d1');
    await until(async () => (await store.byMac('02:00:00:00:00:d1')) !== undefined);
    expect(await store.byMac('02:00:00:00:00:d1')).toMatchObject({ guest: 'vm', policy: 'direct', holder: 'one' });
    // So another host cannot have it.
    const two = host(store, 'two', '00:14:4f:00:01:00');
    expect(await codeOf(two.allocate({ guest: 'other', policy: 'fixed', mac: '02:00:00:00:00:d1' }))).toBe('MAC_IN_USE');
    await one.close();
    await two.close();
  });

  it('an exhausted block is BLOCK_EXHAUSTED, as without record-level claims', async () => {
    const { store } = concurrentStore();
    const one = host(store, 'one', '00:14:4f:00:00:00', { block: { base: '02:00:00:00:00:01', count: 3 } });
    const two = host(store, 'two', '00:14:4f:00:01:00', { block: { base: '02:00:00:00:00:01', count: 3 } });
    await one.allocate({ guest: 'a', policy: 'block' });
    await one.allocate({ guest: 'b', policy: 'block' });
    await two.allocate({ guest: 'c', policy: 'block' });
    expect(await codeOf(two.allocate({ guest: 'd', policy: 'block' }))).toBe('BLOCK_EXHAUSTED');
  });
});
