// Model-based test of the MAC manager: random commands over several NICs and guests with quotas, direct reservations, leases, restarts and
// a shared store, with the invariants checked after every command.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Mac, MacManager, MacslotError, MemoryStore, Nic, type AllocationPolicy } from 'macslot';
import { FakeTime } from './support/fake-time.js';

const GUESTS = ['g1', 'g2', 'g3'];
const NICS = ['a', 'b'];
const IFACES = ['0', '1'];
const NEIGHBOURS = ['02:00:00:00:00:03', '00:1b:21:00:00:01'];
const FACTORY: Record<string, string[]> = { a: ['00:14:4f:00:00:01', '00:14:4f:00:00:02', '00:14:4f:00:00:03'], b: ['00:14:4f:00:01:01'] };
const PRIMARY: Record<string, string> = { a: '00:14:4f:00:00:00', b: '00:14:4f:00:01:00' };
const FIXED = [
  '02:00:00:00:00:01',
  '02:00:00:00:00:03',
  '02:00:00:00:00:42',
  '00:14:4f:00:00:02',
  '00:1b:21:00:00:01',
  '02:00:00:00:00:07',
];
const MAX_MACS = 2;
const SHARE = 0.5;
// Hardware slots per NIC are max(factory slots, unicast entries); the share allows at least one.
const LIMIT: Record<string, number> = { a: Math.max(1, Math.floor(SHARE * 4)), b: Math.max(1, Math.floor(SHARE * 2)) };

interface Held {
  mac: string;
  guest: string;
  nic: string;
  expires: number | undefined;
}
interface Model {
  now: number;
  leases: Map<string, Held>; // identity → lease
  direct: { guest: string; nic: string; slot: number; mac: string }[];
  remembered: Map<string, { mac: string; expires: number | undefined }>; // identity → its MAC in the store
  displaced: Map<string, string>; // identity → the MAC another identity took from it
}
interface Real {
  store: MemoryStore;
  manager: MacManager;
  clock: FakeTime;
}

const id = (guest: string, nic: string, iface: string): string => `${nic}/${guest}/${iface}`;

function build(r: Real | undefined, store: MemoryStore, clock: FakeTime): MacManager {
  void r;
  const nics = {
    a: new Nic({ primary: PRIMARY.a!, factory: FACTORY.a!, unicastEntries: 4 }),
    b: new Nic({ primary: PRIMARY.b!, factory: FACTORY.b!, unicastEntries: 2 }),
  };
  return new MacManager({
    nics,
    store,
    clock: clock.clock,
    setTimer: clock.setTimer,
    neighbours: NEIGHBOURS,
    quota: { maxMacs: MAX_MACS, hardwareShare: SHARE },
    block: { base: '02:00:00:00:00:01', count: 10 },
  });
}

async function outcome<T>(p: Promise<T>): Promise<{ code?: string; value?: T }> {
  try {
    return { value: await p };
  } catch (err) {
    if (!(err instanceof MacslotError)) throw err;
    return { code: err.code };
  }
}

function heldBy(m: Model, mac: string): string | undefined {
  for (const [k, l] of m.leases) if (l.mac === mac) return k;
  return m.direct.find((d) => d.mac === mac) ? 'direct' : undefined;
}
const count = (m: Model, guest: string, nic?: string): number =>
  [...m.leases.values()].filter((l) => l.guest === guest && (nic === undefined || l.nic === nic)).length +
  m.direct.filter((d) => d.guest === guest && (nic === undefined || d.nic === nic)).length;
const hardware = (mac: string): boolean => Object.values(FACTORY).flat().includes(mac) || Object.values(PRIMARY).includes(mac);
/** Another identity's unexpired record keeps the MAC from this one. */
const rememberedByOther = (m: Model, mac: string, me: string): boolean =>
  [...m.remembered].some(([k, r]) => k !== me && r.mac === mac && (r.expires === undefined || r.expires > m.now));

async function invariants(m: Model, r: Real): Promise<void> {
  // A transaction records direct reservations and reports those the store gives to someone else.
  await r.manager.sync();
  expireSweep(m);
  const active: string[] = [];
  for (const n of NICS) for (const s of r.manager.nic(n).slots()) if (s.reserved && s.slot > 0) active.push(s.mac.toString());
  const leases = r.manager.leases();
  // A MAC the manager handed out is no neighbour, and was free when handed out (checked in Allocate).
  for (const l of leases) expect(NEIGHBOURS).not.toContain(l.mac.toString());
  // Only a guest reserving directly on another NIC can make a MAC appear twice (the seed lets it); the manager reports every such clash.
  const reported = new Set(r.manager.conflicts().map((c) => c.mac.toString()));
  for (const mac of new Set(active)) {
    const times = active.filter((a) => a === mac).length;
    if (times > 1) {
      expect(reported, `${mac} is held twice`).toContain(mac);
      expect(
        m.direct.some((d) => d.mac === mac),
        `${mac} is held twice without a direct reservation`,
      ).toBe(true);
    }
  }
  // The manager's leases are exactly the model's.
  expect(new Map(leases.map((l) => [id(l.guest, l.nic, l.iface), l.mac.toString()]))).toEqual(
    new Map([...m.leases].map(([k, l]) => [k, l.mac])),
  );
  // Usage (leases plus direct reservations) matches, and leases alone never exceed a quota.
  for (const g of GUESTS) {
    expect(r.manager.usage(g).macs).toBe(count(m, g));
    expect([...m.leases.values()].filter((l) => l.guest === g).length).toBeLessThanOrEqual(MAX_MACS);
  }
  // Persistence: every lease is in the store under its identity and this session.
  const data = await r.store.read();
  for (const l of leases)
    expect(data.records[l.mac.toString()], l.mac.toString()).toMatchObject({
      guest: l.guest,
      nic: l.nic,
      iface: l.iface,
      holder: r.manager.session,
    });
  for (const [k, rem] of m.remembered) {
    const rec = data.records[rem.mac];
    expect(rec === undefined ? undefined : id(rec.guest, rec.nic, rec.iface), `${k} remembers ${rem.mac}`).toBe(k);
  }
}

type Cmd = fc.AsyncCommand<Model, Real>;

class Allocate implements Cmd {
  constructor(
    readonly guest: string,
    readonly nic: string,
    readonly iface: string,
    readonly policy: AllocationPolicy,
    readonly mac: string,
    readonly ttl: number | undefined,
  ) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const k = id(this.guest, this.nic, this.iface);
    expireSweep(m);
    const req = {
      guest: this.guest,
      nic: this.nic,
      iface: this.iface,
      policy: this.policy,
      ...(this.policy === 'fixed' ? { mac: this.mac } : {}),
      ...(this.ttl === undefined ? {} : { ttlMs: this.ttl }),
    };
    const o = await outcome(r.manager.allocate(req));
    const held = m.leases.get(k);
    if (held !== undefined) {
      if (this.policy === 'fixed' && this.mac !== held.mac) expect(o.code).toBe('MAC_IN_USE');
      else expect(o.value?.mac.toString(), this.toString()).toBe(held.mac);
      return;
    }
    if (count(m, this.guest) >= MAX_MACS || count(m, this.guest, this.nic) >= LIMIT[this.nic]!) {
      expect(o.code, this.toString()).toBe('QUOTA_EXCEEDED');
      return;
    }
    const lost = m.displaced.get(k);
    const rem = m.remembered.get(k) ?? (lost === undefined ? undefined : { mac: lost, expires: undefined });
    const free = (mac: string): boolean => heldBy(m, mac) === undefined && !NEIGHBOURS.includes(mac) && !rememberedByOther(m, mac, k);
    if (rem !== undefined && !(this.policy === 'fixed' && this.mac !== rem.mac)) {
      // The identity's MAC comes back when it is free, and the request fails clearly when not.
      if (free(rem.mac)) {
        expect(o.code, this.toString()).toBeUndefined();
        expect([o.value!.mac.toString(), o.value!.restored]).toEqual([rem.mac, true]);
      } else {
        expect(o.code, this.toString()).toBe('MAC_IN_USE');
        return;
      }
    } else if (this.policy === 'fixed') {
      expect(o.code, this.toString()).toBe(free(this.mac) && !hardware(this.mac) ? undefined : 'MAC_IN_USE');
    } else if (o.code !== undefined) {
      expect(['NO_FREE_SLOT', 'BLOCK_EXHAUSTED', 'NOT_SUPPORTED'], this.toString()).toContain(o.code);
      return;
    }
    if (o.code !== undefined) return;
    const mac = o.value!.mac.toString();
    expect(free(mac) || rem?.mac === mac, `${this.toString()} gave ${mac}, which is taken`).toBe(true);
    if (this.policy !== 'auto' && rem === undefined) expect(o.value!.policy).toBe(this.policy);
    const expires = this.ttl === undefined ? undefined : m.now + this.ttl;
    m.leases.set(k, { mac, guest: this.guest, nic: this.nic, expires });
    // Taking a lapsed MAC replaces its old record; its former identity learns on return who has it.
    for (const [other, rr] of m.remembered) if (rr.mac === mac && other !== k) displace(m, other, mac);
    m.remembered.set(k, { mac, expires });
    m.displaced.delete(k);
  }
  toString(): string {
    return (
      `allocate(${this.guest}, ${this.nic}/${this.iface}, ` +
      `${this.policy}${this.policy === 'fixed' ? ` ${this.mac}` : ''}${this.ttl === undefined ? '' : `, ttl ${this.ttl}`})`
    );
  }
}

class Release implements Cmd {
  constructor(
    readonly guest: string,
    readonly nic: string,
    readonly iface: string,
    readonly forget: boolean,
  ) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const k = id(this.guest, this.nic, this.iface);
    const o = await outcome(r.manager.release({ guest: this.guest, nic: this.nic, iface: this.iface }, { forget: this.forget }));
    expireSweep(m);
    if (!m.leases.has(k)) {
      expect(o.code).toBe('NOT_RESERVED');
      return;
    }
    expect(o.code).toBeUndefined();
    m.leases.delete(k);
    if (this.forget) {
      m.remembered.delete(k);
      m.displaced.delete(k);
    }
  }
  toString(): string {
    return `release(${this.guest}, ${this.nic}/${this.iface}${this.forget ? ', forget' : ''})`;
  }
}

class Direct implements Cmd {
  constructor(
    readonly guest: string,
    readonly nic: string,
    readonly mac: string,
  ) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const nic = r.manager.nic(this.nic);
    const client = nic.client(this.guest) ?? nic.openClient(this.guest);
    try {
      const res = client.addressAdd(this.mac);
      m.direct.push({ guest: this.guest, nic: this.nic, slot: res.slot, mac: this.mac });
      // A lapsed record is free, so the direct reservation replaces it at the next transaction.
      for (const [k, rr] of m.remembered)
        if (rr.mac === this.mac && rr.expires !== undefined && rr.expires <= m.now) displace(m, k, rr.mac);
    } catch (err) {
      // The NIC refuses a MAC active on itself; any other NIC or the store does not bind a direct reservation.
      expect((err as MacslotError).code).toBe('MAC_IN_USE');
      expect(
        r.manager
          .nic(this.nic)
          .slots()
          .some((s) => s.mac.toString() === this.mac && (s.reserved || s.slot === 0)),
      ).toBe(true);
    }
  }
  toString(): string {
    return `direct(${this.guest}, ${this.nic}, ${this.mac})`;
  }
}

class DirectRelease implements Cmd {
  check(m: Readonly<Model>): boolean {
    return m.direct.length > 0;
  }
  async run(m: Model, r: Real): Promise<void> {
    const d = m.direct.shift()!;
    r.manager.nic(d.nic).client(d.guest)!.addressRemove(d.slot);
  }
  toString(): string {
    return 'directRelease()';
  }
}

class Tick implements Cmd {
  constructor(readonly ms: number) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    m.now += this.ms;
    // Leases lapse on their own as time passes: no MAC of a lapsed lease stays on a NIC at any instant.
    r.clock.advance(this.ms, () => {
      for (const n of NICS) {
        for (const s of r.manager.nic(n).slots()) {
          const l = [...m.leases.values()].find((x) => x.mac === s.mac.toString() && x.nic === n);
          if (s.reserved && l?.expires !== undefined)
            expect(l.expires > r.clock.now, `${l.mac} is on ${n} after its lease lapsed`).toBe(true);
        }
      }
    });
    expect(r.clock.now).toBe(m.now);
    const swept = await r.manager.sweep();
    const before = new Set(m.leases.keys());
    expireSweep(m);
    expect(new Set(swept.map((l) => id(l.guest, l.nic, l.iface)))).toEqual(new Set([...before].filter((k) => !m.leases.has(k))));
  }
  toString(): string {
    return `tick(${this.ms})`;
  }
}

/** What a failed migration must leave as it was: every NIC's slots and groups, the leases, and the store. */
async function snapshot(r: Real): Promise<unknown> {
  const nics = NICS.map((n) => {
    const nic = r.manager.nic(n);
    return [n, nic.slots().map((s) => [s.slot, s.mac.toString(), s.reserved, s.owner]), nic.clients().map((c) => [c.name, c.groups()])];
  });
  const leases = r.manager.leases().map((l) => [l.guest, l.nic, l.iface, l.mac.toString(), l.expires]);
  return { nics, leases, store: await r.store.read() };
}

let migrated = 0;

class Migrate implements Cmd {
  constructor(
    readonly guest: string,
    readonly nic: string,
  ) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const before = await snapshot(r);
    const o = await outcome(r.manager.migrate(this.guest, this.nic));
    if (o.code !== undefined) {
      // A factory slot, a clash on the target, the target's share or a full target: nothing moved.
      expect(['NOT_SUPPORTED', 'MAC_IN_USE', 'QUOTA_EXCEEDED', 'NO_FREE_SLOT'], this.toString()).toContain(o.code);
      expect(await snapshot(r), this.toString()).toEqual(before);
      return;
    }
    const moved: string[] = [];
    for (const [k, l] of [...m.leases]) {
      if (l.guest !== this.guest || l.nic === this.nic) continue;
      const nk = id(this.guest, this.nic, k.split('/')[2]!);
      m.leases.delete(k);
      m.leases.set(nk, { ...l, nic: this.nic });
      m.remembered.delete(k);
      m.remembered.set(nk, { mac: l.mac, expires: l.expires });
      m.displaced.delete(nk);
      moved.push(l.mac);
    }
    for (const d of m.direct) {
      if (d.guest !== this.guest || d.nic === this.nic) continue;
      d.nic = this.nic;
      d.slot = r.manager
        .nic(this.nic)
        .slots()
        .find((s) => s.reserved && s.mac.toString() === d.mac)!.slot;
    }
    expect(o.value!.map((l) => l.mac.toString()).sort()).toEqual(moved.sort());
    if (moved.length > 0) migrated++;
  }
  toString(): string {
    return `migrate(${this.guest}, ${this.nic})`;
  }
}

class Restart implements Cmd {
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    await r.manager.close();
    r.manager = build(r, r.store, r.clock);
    expireSweep(m);
    m.leases.clear();
    m.direct = [];
  }
  toString(): string {
    return 'restart()';
  }
}

/**
 * At the start of every transaction leases whose TTL passed are dropped, and a lapsed record a guest holds directly becomes that guest's.
 */
function expireSweep(m: Model): void {
  for (const [k, l] of m.leases) if (l.expires !== undefined && l.expires <= m.now) m.leases.delete(k);
  for (const [k, rr] of m.remembered)
    if (rr.expires !== undefined && rr.expires <= m.now && m.direct.some((d) => d.mac === rr.mac)) displace(m, k, rr.mac);
}

/** Another identity took `mac` from identity `k`: the store remembers that `k` lost it. */
function displace(m: Model, k: string, mac: string): void {
  m.remembered.delete(k);
  m.displaced.set(k, mac);
}

/** Runs a command, then checks the invariants. */
function checked(c: Cmd): Cmd {
  return {
    check: (m) => c.check(m),
    run: async (m, r) => {
      await c.run(m, r);
      await invariants(m, r);
    },
    toString: () => c.toString(),
  };
}

const allocate = fc
  .tuple(
    fc.constantFrom(...GUESTS),
    fc.constantFrom(...NICS),
    fc.constantFrom(...IFACES),
    fc.constantFrom<AllocationPolicy>('factory', 'random', 'block', 'fixed', 'auto'),
    fc.constantFrom(...FIXED),
    fc.option(fc.constantFrom(50, 200), { nil: undefined }),
  )
  .map(([g, n, i, p, mac, ttl]) => new Allocate(g, n, i, p, mac, ttl));

// Allocation is listed three times so sequences reach quotas and exhaustion, not only releases.
const commands = [
  allocate,
  allocate,
  allocate,
  fc
    .tuple(fc.constantFrom(...GUESTS), fc.constantFrom(...NICS), fc.constantFrom(...IFACES), fc.boolean())
    .map(([g, n, i, f]) => new Release(g, n, i, f)),
  fc
    .tuple(
      fc.constantFrom(...GUESTS),
      fc.constantFrom(...NICS),
      fc.constantFrom('02:00:00:00:00:05', '02:00:00:00:00:09', '02:00:00:00:0d:01'),
    )
    .map(([g, n, mac]) => new Direct(g, n, mac)),
  fc.constant(new DirectRelease()),
  fc.constantFrom(30, 120).map((ms) => new Tick(ms)),
  fc.constant(new Restart()),
  fc.tuple(fc.constantFrom(...GUESTS), fc.constantFrom(...NICS)).map(([g, n]) => new Migrate(g, n)),
];

describe('MAC manager model', () => {
  it('keeps MACs unique, quotas respected and the store in step across random command sequences', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.commands(
          commands.map((a) => a.map(checked)),
          { maxCommands: 60, size: 'max' },
        ),
        async (cmds) => {
          const store = new MemoryStore();
          const clock = new FakeTime(1_000);
          const real: Real = { store, clock, manager: build(undefined, store, clock) };
          const model: Model = { now: 1_000, leases: new Map(), direct: [], remembered: new Map(), displaced: new Map() };
          await fc.asyncModelRun(() => ({ model, real }), cmds);
        },
      ),
      { numRuns: 150 },
    );
    // Migrations that moved something were among the runs, so their checks ran.
    expect(migrated).toBeGreaterThan(5);
  }, 60_000);

  it("catches a manager that forgets its store: a fresh store per session loses the identity's MAC", async () => {
    // The model's persistence check must be able to fail: with a new store per session the restored MAC differs or is not marked restored.
    const clock = new FakeTime(0);
    const first = build(undefined, new MemoryStore(), clock);
    const l = await first.allocate({ guest: 'g1', nic: 'a', policy: 'random' });
    await first.close();
    const second = build(undefined, new MemoryStore(), clock);
    const again = await second.allocate({ guest: 'g1', nic: 'a', policy: 'random' });
    expect(again.restored).toBe(false);
    expect(Mac.from(again.mac).equals(l.mac)).toBe(false);
  });
});
