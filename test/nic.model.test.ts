// Model-based test of the NIC control plane: random command sequences against an independent model, with the invariants checked after every
// command.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Mac, MacslotError, Nic, classifyFrame, type NicClient } from 'macslot';

const PRIMARY = '00:14:4f:00:00:00';
const FACTORY = ['00:14:4f:00:00:01', '00:14:4f:00:00:02', '00:14:4f:00:00:03', '00:14:4f:00:00:04'];
const MACS = [
  '02:00:00:00:00:01',
  '02:00:00:00:00:02',
  '02:00:00:00:00:03',
  '00:1b:21:00:00:01',
  ...FACTORY,
  PRIMARY,
  '00:00:00:00:00:00',
  '33:33:00:00:00:01',
];
const GROUPS = ['33:33:00:00:00:01', '33:33:00:00:00:02', '01:00:5e:00:00:01', 'ff:ff:ff:ff:ff:ff', '02:00:00:00:00:01'];
const NAMES = ['a', 'b', 'c', 'tap'];
const UNKNOWN = '02:00:00:00:99:99';

interface Cfg {
  factory: number;
  unicast: number;
  multicast: number;
  reject: boolean;
  auto: boolean;
  hash: boolean;
}

interface Model {
  cfg: Cfg;
  owner: Map<number, string>; // reserved slots (primary included) → client name
  active: Map<number, string>; // slot → active MAC
  clients: Map<string, { handle: NicClient; promiscuous: boolean; groups: Map<string, number> }>;
}
type Real = Nic;

function outcome(fn: () => unknown): { code?: string; value?: unknown } {
  try {
    return { value: fn() };
  } catch (err) {
    if (!(err instanceof MacslotError)) throw err;
    return { code: err.code };
  }
}

const activeHolder = (m: Model, mac: string): number | undefined => [...m.active].find(([, v]) => v === mac)?.[0];
const hwFull = (r: Real): boolean => r.addressSupport().availableUnicastEntries === 0 && r.addressSupport().availableMulticastEntries === 0;
/** The factory slot whose MAC this is, if any. */
const factoryHome = (m: Model, mac: string): number | undefined => {
  const i = FACTORY.slice(0, m.cfg.factory).indexOf(mac);
  return i < 0 ? undefined : i + 1;
};
const slotExists = (m: Model, s: number): boolean => Number.isInteger(s) && (s >= 0 && s <= m.cfg.factory ? true : m.owner.has(s));

/** The expected code of an operation on an owned slot, in the documented order of checks. */
function ownedCode(m: Model, name: string, slot: number): string | undefined {
  if (!slotExists(m, slot)) return 'INVALID_SLOT';
  if (slot === 0 && name !== 'primary') return 'NOT_OWNER';
  const owner = m.owner.get(slot);
  if (owner === undefined) return 'NOT_RESERVED';
  if (owner !== name) return 'NOT_OWNER';
  if (slot === 0) return 'NOT_OWNER';
  return undefined;
}

abstract class Cmd implements fc.Command<Model, Real> {
  constructor(readonly name: string) {}
  check(m: Readonly<Model>): boolean {
    return this.name === 'primary' || m.clients.has(this.name);
  }
  handle(m: Model): NicClient {
    return m.clients.get(this.name)!.handle;
  }
  abstract run(m: Model, r: Real): void;
  abstract toString(): string;
}

class Reserve extends Cmd {
  constructor(
    name: string,
    readonly slot: number | undefined,
  ) {
    super(name);
  }
  run(m: Model, r: Real): void {
    let expected: string | undefined;
    const f = m.cfg.factory;
    let chosen: number | undefined;
    if (f === 0) expected = 'NOT_SUPPORTED';
    else if (this.slot !== undefined) {
      const s = this.slot;
      if (!Number.isInteger(s) || s < 1 || s > f) expected = 'INVALID_SLOT';
      else if (m.owner.has(s)) expected = 'SLOT_BUSY';
      else if (m.cfg.auto && activeHolder(m, FACTORY[s - 1]!) !== undefined) expected = 'MAC_IN_USE';
      else chosen = s;
    } else {
      for (let s = 1; s <= f && chosen === undefined; s++)
        if (!m.owner.has(s) && (!m.cfg.auto || activeHolder(m, FACTORY[s - 1]!) === undefined)) chosen = s;
      if (chosen === undefined) expected = 'NO_FREE_SLOT';
    }
    if (expected === undefined && m.cfg.auto && m.cfg.reject && hwFull(r)) expected = 'NO_FREE_SLOT';
    const o = outcome(() => this.handle(m).addressReserve(this.slot === undefined ? {} : { slot: this.slot }));
    expect(o.code, this.toString()).toBe(expected);
    if (o.code === undefined) {
      expect((o.value as { slot: number }).slot).toBe(chosen);
      m.owner.set(chosen!, this.name);
      if (m.cfg.auto) m.active.set(chosen!, FACTORY[chosen! - 1]!);
    }
  }
  toString(): string {
    return `Reserve(${this.name}, ${this.slot})`;
  }
}

class Release extends Cmd {
  constructor(
    name: string,
    readonly slot: number,
    readonly via: 'unreserve' | 'remove',
  ) {
    super(name);
  }
  run(m: Model, r: Real): void {
    let expected = ownedCode(m, this.name, this.slot);
    const isFactory = this.slot <= m.cfg.factory;
    if (expected === undefined && (this.via === 'unreserve') !== isFactory) expected = 'INVALID_SLOT';
    const h = this.handle(m);
    const o = outcome(() => (this.via === 'unreserve' ? h.addressUnreserve(this.slot) : h.addressRemove(this.slot)));
    expect(o.code, this.toString()).toBe(expected);
    if (o.code === undefined) {
      m.owner.delete(this.slot);
      m.active.delete(this.slot);
    }
    void r;
  }
  toString(): string {
    return `${this.via}(${this.name}, ${this.slot})`;
  }
}

class Modify extends Cmd {
  constructor(
    name: string,
    readonly slot: number,
    readonly mac: string,
  ) {
    super(name);
  }
  run(m: Model, r: Real): void {
    let expected = ownedCode(m, this.name, this.slot);
    const mac = Mac.parse(this.mac);
    const holder = activeHolder(m, this.mac);
    if (expected === undefined && !mac.isValidUnicast) expected = 'INVALID_MAC';
    else if (expected === undefined && holder !== undefined && holder !== this.slot) expected = 'MAC_IN_USE';
    else if (expected === undefined && (factoryHome(m, this.mac) ?? this.slot) !== this.slot) expected = 'MAC_IN_USE';
    else if (expected === undefined && !m.active.has(this.slot) && m.cfg.reject && hwFull(r)) expected = 'NO_FREE_SLOT';
    const o = outcome(() => this.handle(m).addressModify(this.slot, this.mac));
    expect(o.code, this.toString()).toBe(expected);
    if (o.code === undefined) m.active.set(this.slot, this.mac);
  }
  toString(): string {
    return `Modify(${this.name}, ${this.slot}, ${this.mac})`;
  }
}

class Add extends Cmd {
  constructor(
    name: string,
    readonly mac: string | undefined,
  ) {
    super(name);
  }
  run(m: Model, r: Real): void {
    let expected: string | undefined;
    if (this.mac !== undefined && !Mac.parse(this.mac).isValidUnicast) expected = 'INVALID_MAC';
    else if (this.mac !== undefined && activeHolder(m, this.mac) !== undefined) expected = 'MAC_IN_USE';
    else if (this.mac !== undefined && factoryHome(m, this.mac) !== undefined) expected = 'MAC_IN_USE';
    else if (m.cfg.reject && hwFull(r)) expected = 'NO_FREE_SLOT';
    let slot = m.cfg.factory + 1;
    while (m.owner.has(slot)) slot++;
    const o = outcome(() => this.handle(m).addressAdd(this.mac));
    expect(o.code, this.toString()).toBe(expected);
    if (o.code === undefined) {
      const res = o.value as { slot: number; mac: Mac };
      expect(res.slot).toBe(slot);
      if (this.mac !== undefined) expect(res.mac.toString()).toBe(this.mac);
      m.owner.set(slot, this.name);
      m.active.set(slot, res.mac.toString());
    }
  }
  toString(): string {
    return `Add(${this.name}, ${this.mac})`;
  }
}

/** Reserves until refused: exactly `availableSlots` reservations succeed, and the last refusal says why. */
class Drain extends Cmd {
  run(m: Model, r: Real): void {
    const promised = r.addressSupport().availableSlots;
    const got: { slot: number }[] = [];
    let o = outcome(() => this.handle(m).addressReserve());
    for (; o.code === undefined; o = outcome(() => this.handle(m).addressReserve())) got.push(o.value as { slot: number });
    expect(got.length, this.toString()).toBe(promised);
    expect(o.code, this.toString()).toBe(m.cfg.factory === 0 ? 'NOT_SUPPORTED' : 'NO_FREE_SLOT');
    expect(r.addressSupport().availableSlots).toBe(0);
    for (const { slot } of got) {
      m.owner.set(slot, this.name);
      if (m.cfg.auto) m.active.set(slot, FACTORY[slot - 1]!);
    }
  }
  toString(): string {
    return `Drain(${this.name})`;
  }
}

class Join extends Cmd {
  constructor(
    name: string,
    readonly group: string,
    readonly leave: boolean,
  ) {
    super(name);
  }
  run(m: Model, r: Real): void {
    const c = m.clients.get(this.name);
    const mine = c?.groups ?? new Map<string, number>();
    const g = Mac.parse(this.group);
    const anyMember = [...m.clients.values()].some((x) => x.groups.has(this.group));
    let expected: string | undefined;
    if (this.leave) expected = mine.has(this.group) ? undefined : 'NOT_MEMBER';
    else if (!g.isMulticast || g.isBroadcast) expected = 'INVALID_MAC';
    else if (!anyMember && m.cfg.reject && !m.cfg.hash && r.addressSupport().availableMulticastEntries === 0) expected = 'NO_FREE_SLOT';
    const h = this.handle(m);
    const o = outcome(() => (this.leave ? h.multicastLeave(this.group) : h.multicastJoin(this.group)));
    expect(o.code, this.toString()).toBe(expected);
    if (o.code === undefined) {
      const n = (mine.get(this.group) ?? 0) + (this.leave ? -1 : 1);
      if (n === 0) mine.delete(this.group);
      else mine.set(this.group, n);
    }
  }
  toString(): string {
    return `${this.leave ? 'Leave' : 'Join'}(${this.name}, ${this.group})`;
  }
}

class Promisc extends Cmd {
  constructor(
    name: string,
    readonly on: boolean,
  ) {
    super(name);
  }
  run(m: Model): void {
    const c = m.clients.get(this.name)!;
    const expected = this.on && !c.promiscuous && this.name !== 'tap' ? 'NOT_PERMITTED' : undefined;
    const o = outcome(() => c.handle.setPromiscuous(this.on));
    expect(o.code, this.toString()).toBe(expected);
    if (o.code === undefined) c.promiscuous = this.on;
  }
  override check(m: Readonly<Model>): boolean {
    return m.clients.has(this.name);
  }
  toString(): string {
    return `Promiscuous(${this.name}, ${this.on})`;
  }
}

class Open implements fc.Command<Model, Real> {
  constructor(readonly name: string) {}
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    const o = outcome(() => r.openClient(this.name, { allowPromiscuous: this.name === 'tap' }));
    expect(o.code, this.toString()).toBe(m.clients.has(this.name) ? 'NAME_IN_USE' : undefined);
    if (o.code === undefined) m.clients.set(this.name, { handle: o.value as NicClient, promiscuous: false, groups: new Map() });
  }
  toString(): string {
    return `Open(${this.name})`;
  }
}

class Close implements fc.Command<Model, Real> {
  constructor(readonly name: string) {}
  check(m: Readonly<Model>): boolean {
    return m.clients.has(this.name);
  }
  run(m: Model): void {
    const c = m.clients.get(this.name)!;
    const o = outcome(() => c.handle.close());
    expect(o.code, this.toString()).toBe(this.name === 'primary' ? 'NOT_PERMITTED' : undefined);
    if (o.code !== undefined) return;
    for (const [slot, owner] of [...m.owner])
      if (owner === this.name) {
        m.owner.delete(slot);
        m.active.delete(slot);
      }
    m.clients.delete(this.name);
  }
  toString(): string {
    return `Close(${this.name})`;
  }
}

function checkInvariants(m: Model, r: Real): void {
  const slots = r.slots();
  const active = slots.filter((s) => s.active);
  // No MAC active twice.
  expect(new Set(active.map((s) => s.mac.toString())).size).toBe(active.length);
  // Owners alone changed their slots: the real owners and MACs are exactly the model's.
  expect(new Map(slots.filter((s) => s.reserved).map((s) => [s.slot, s.owner]))).toEqual(m.owner);
  expect(new Map(active.map((s) => [s.slot, s.mac.toString()]))).toEqual(m.active);
  // Each open client's slot list and count agree with the owners above.
  for (const c of m.clients.values()) {
    if (!c.handle.open) continue;
    const owned = [...m.owner]
      .filter(([, o]) => o === c.handle.name)
      .map(([slot]) => slot)
      .sort((a, b) => a - b);
    expect([c.handle.slots(), c.handle.slotCount]).toEqual([owned, owned.length]);
  }
  // Capacity counts are exact.
  const state = r.filterState();
  const sup = r.addressSupport();
  // availableSlots is the number of reservations that would succeed (the Drain command checks that by doing them).
  let reservable = m.cfg.factory - [...m.owner.keys()].filter((s) => s >= 1 && s <= m.cfg.factory).length;
  if (m.cfg.auto && m.cfg.reject) reservable = Math.min(reservable, sup.availableUnicastEntries + sup.availableMulticastEntries);
  expect(sup.availableSlots).toBe(reservable);
  expect(sup.availableUnicastEntries).toBe(m.cfg.unicast - active.filter((s) => s.placement === 'unicast').length);
  const exactGroups = [...state.groups.values()].filter((g) => g.stage === 'exact').length;
  expect(sup.availableMulticastEntries).toBe(m.cfg.multicast - active.filter((s) => s.placement === 'multicast').length - exactGroups);
  // The filter holds exactly what addressGet reports.
  const fromGet = new Map(
    active.map((s) => [s.mac.key, { client: r.client(s.owner!)!.id, slot: s.slot, hardware: s.placement !== 'software' }]),
  );
  expect(new Map(state.unicast)).toEqual(fromGet);
  // Group membership matches the model.
  const groups = new Map<string, number[]>();
  for (const c of m.clients.values()) for (const g of c.groups.keys()) groups.set(g, [...(groups.get(g) ?? []), c.handle.id]);
  expect(new Map([...state.groups].map(([k, g]) => [Mac.fromNumber(k as number).toString(), g.members]))).toEqual(
    new Map([...groups].map(([k, v]) => [k, v.sort((a, b) => a - b)])),
  );
  // Overflow follows the policy and never silently accepts everything.
  const software = active.some((s) => s.placement === 'software');
  if (m.cfg.reject) expect(software).toBe(false);
  expect(sup.promiscReasons.includes('unicast-overflow') || sup.promiscReasons.includes('no-capability')).toBe(software);
  const anyPromisc = [...m.clients.values()].some((c) => c.promiscuous);
  const f = new Uint8Array(60);
  Mac.parse(UNKNOWN).writeTo(f);
  const v = classifyFrame(state, f);
  if (!anyPromisc) expect(v).toMatchObject({ deliver: [], rule: 'drop-unknown' });
  else
    expect(v.deliver).toEqual(
      [...m.clients.values()]
        .filter((c) => c.promiscuous)
        .map((c) => c.handle.id)
        .sort((a, b) => a - b),
    );
}

class Checked implements fc.Command<Model, Real> {
  constructor(readonly inner: fc.Command<Model, Real>) {}
  check(m: Readonly<Model>): boolean {
    return this.inner.check(m);
  }
  run(m: Model, r: Real): void {
    this.inner.run(m, r);
    checkInvariants(m, r);
  }
  toString(): string {
    return this.inner.toString();
  }
}

const name = fc.constantFrom(...NAMES, 'primary');
const slot = fc.oneof(fc.integer({ min: -1, max: 9 }), fc.constant(1.5));
const mac = fc.constantFrom(...MACS);
const commands = [
  fc.constantFrom(...NAMES).map((n) => new Open(n)),
  fc.constantFrom(...NAMES, 'primary').map((n) => new Close(n)),
  fc.tuple(name, fc.option(slot, { nil: undefined })).map(([n, s]) => new Reserve(n, s)),
  fc.tuple(name, slot, fc.constantFrom('unreserve' as const, 'remove' as const)).map(([n, s, v]) => new Release(n, s, v)),
  fc.tuple(name, slot, mac).map(([n, s, x]) => new Modify(n, s, x)),
  fc.tuple(name, fc.option(mac, { nil: undefined })).map(([n, x]) => new Add(n, x)),
  name.map((n) => new Drain(n)),
  fc.tuple(name, fc.constantFrom(...GROUPS), fc.boolean()).map(([n, g, l]) => new Join(n, g, l)),
  fc.tuple(fc.constantFrom(...NAMES), fc.boolean()).map(([n, on]) => new Promisc(n, on)),
].map((arb) => arb.map((c) => new Checked(c)));

const cfgArb = fc.record({
  factory: fc.integer({ min: 0, max: 4 }),
  unicast: fc.integer({ min: 0, max: 3 }),
  multicast: fc.integer({ min: 0, max: 2 }),
  reject: fc.boolean(),
  auto: fc.boolean(),
  hash: fc.boolean(),
});

describe('NIC model', () => {
  it('keeps its invariants over 10,000 random command sequences', () => {
    fc.assert(
      fc.property(cfgArb, fc.commands(commands, { maxCommands: 30 }), fc.integer(), (cfg, cmds, seed) => {
        let s = seed >>> 0 || 1;
        const nic = new Nic({
          primary: PRIMARY,
          factory: FACTORY.slice(0, cfg.factory),
          unicastEntries: cfg.unicast,
          multicastEntries: cfg.multicast,
          overflow: cfg.reject ? 'reject' : 'promiscuous',
          autoActivate: cfg.auto,
          multicastHash: cfg.hash,
          random: (out) => out.forEach((_, i) => (out[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24)),
        });
        const model: Model = {
          cfg,
          owner: new Map([[0, 'primary']]),
          active: new Map([[0, PRIMARY]]),
          clients: new Map([['primary', { handle: nic.primaryClient, promiscuous: false, groups: new Map() }]]),
        };
        fc.modelRun(() => ({ model, real: nic }), cmds);
      }),
      { numRuns: 10_000 },
    );
  });
});
