// The configuration file: its validator names the JSON path and the bad value; the schema shipped with the package lists the same fields.
import { readdirSync, readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CONFIG_PATTERNS, DataPlane, LIMITS, Mac, MacslotError, Nic, buildFromConfig, loadConfig, parseConfig } from 'macslot';
// The validator of `macslot switch --config`: the one configuration reader that is not in the library's API.
import { switchConfig } from '../src/cli/switch.js';

const EXAMPLE = {
  nic: {
    primary: '00:14:4f:00:00:00',
    factory: { base: '00:14:4f:00:00:01', count: 8 },
    unicastEntries: 16,
    multicastEntries: 32,
    overflow: 'promiscuous',
  },
  clients: [
    { name: 'vm-a', address: 'factory' },
    { name: 'vm-b', address: '02:08:20:00:00:0b', multicast: ['33:33:00:00:00:01'], broadcast: false },
    { name: 'tap', address: 'factory:3', promiscuous: true },
  ],
};
const withClient = (c: object): object => ({ ...EXAMPLE, clients: [...EXAMPLE.clients, c] });

describe('configuration', () => {
  it("sets up the issue's example in order, as through the API", () => {
    const { nic, clients } = buildFromConfig(parseConfig(EXAMPLE));
    expect(clients.map((c) => c.name)).toEqual(['vm-a', 'vm-b', 'tap']);
    expect(nic.addressGet(1).owner).toBe('vm-a');
    expect(nic.addressGet(3).owner).toBe('tap');
    expect(clients[1]!.broadcast).toBe(false);
    expect(clients[2]!.promiscuous).toBe(true);
    expect(
      nic
        .slots()
        .find((s) => s.owner === 'vm-b')!
        .mac.toString(),
    ).toBe('02:08:20:00:00:0b');
  });

  it('gives the same random MACs for the same seed', () => {
    const cfg = {
      ...EXAMPLE,
      seed: 9,
      clients: [
        { name: 'r', address: 'random:02:08:20/24' },
        { name: 's', address: 'random' },
      ],
    };
    const macs = (): string[] =>
      buildFromConfig(parseConfig(cfg))
        .nic.slots()
        .map((s) => s.mac.toString());
    expect(macs()).toEqual(macs());
    expect(macs().some((m) => m.startsWith('02:08:20:'))).toBe(true);
  });

  it.each([
    {
      name: 'a bad multicast MAC',
      cfg: withClient({ name: 'x', multicast: ['33:33:zz:00:00:01'] }),
      msg: 'clients[3].multicast[0]: "33:33:zz:00:00:01" is not a MAC',
    },
    {
      name: 'a unicast MAC given as a group',
      cfg: withClient({ name: 'x', multicast: ['02:00:00:00:00:01'] }),
      msg: 'clients[3].multicast[0]: "02:00:00:00:00:01" is not a multicast group',
    },
    {
      name: 'an unknown client field',
      cfg: withClient({ name: 'x', promisc: true }),
      msg: 'clients[3].promisc: true is not a known field',
    },
    { name: 'an unknown top-level field', cfg: { ...EXAMPLE, nics: [] }, msg: '(root).nics: [] is not a known field' },
    { name: 'an unknown nic field', cfg: { ...EXAMPLE, nic: { ...EXAMPLE.nic, entries: 4 } }, msg: 'nic.entries: 4 is not a known field' },
    { name: 'a wrong type', cfg: withClient({ name: 'x', broadcast: 'no' }), msg: 'clients[3].broadcast: "no" is not true or false' },
    {
      name: 'a wrong count type',
      cfg: { ...EXAMPLE, nic: { ...EXAMPLE.nic, unicastEntries: '16' } },
      msg: 'nic.unicastEntries: "16" is not an integer',
    },
    {
      name: 'a bad overflow policy',
      cfg: { ...EXAMPLE, nic: { ...EXAMPLE.nic, overflow: 'drop' } },
      msg: 'nic.overflow: "drop" is not "promiscuous" or "reject"',
    },
    { name: 'a duplicate name', cfg: withClient({ name: 'vm-a' }), msg: 'clients[3].name: "vm-a" is already the name of clients[0]' },
    {
      name: "the primary client's name",
      cfg: withClient({ name: 'primary' }),
      msg: `clients[3].name: "primary" is the primary client's name`,
    },
    { name: 'a bad address', cfg: withClient({ name: 'x', address: 'factory-2' }), msg: 'clients[3].address: "factory-2" is not a MAC' },
    { name: 'clients not an array', cfg: { ...EXAMPLE, clients: {} }, msg: 'clients: {} is not an array' },
  ])('rejects $name with its JSON path and value', ({ cfg, msg }) => {
    expect(() => parseConfig(cfg)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(msg) }));
  });

  it.each([
    {
      name: 'a MAC another client holds',
      client: { name: 'x', address: '02:08:20:00:00:0b' },
      msg: 'clients[3].address: "02:08:20:00:00:0b" is in use',
    },
    {
      name: 'the primary MAC',
      client: { name: 'x', address: '00:14:4f:00:00:00' },
      msg: 'clients[3].address: "00:14:4f:00:00:00" is in use',
    },
    {
      name: 'a factory slot another client reserved',
      client: { name: 'x', address: 'factory:3' },
      msg: 'clients[3].address: "factory:3" is in use',
    },
    {
      name: 'a factory slot that does not exist',
      client: { name: 'x', address: 'factory:99' },
      msg: 'clients[3].address: "factory:99" is refused',
    },
  ])('rejects $name while setting up, with its JSON path', ({ client, msg }) => {
    expect(() => buildFromConfig(parseConfig(withClient(client)))).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(msg) }),
    );
  });

  it('ships a JSON Schema whose fields are exactly those the validator accepts', () => {
    const schema = JSON.parse(readFileSync(new URL('../schema/config.schema.json', import.meta.url), 'utf8'));
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(pkg.files).toContain('schema');
    const fields = {
      top: Object.keys(schema.properties),
      nic: Object.keys(schema.properties.nic.properties),
      client: Object.keys(schema.properties.clients.items.properties),
    };
    const all = { $schema: 'x', seed: 1, nic: Object.fromEntries(fields.nic.map((k) => [k, undefined])), clients: [] };
    // Every schema field is known to the validator (undefined values are skipped, unknown keys would throw).
    expect(() => parseConfig({ ...all, nic: { ...all.nic, primary: '00:14:4f:00:00:00' } })).not.toThrow();
    expect(() =>
      parseConfig({ ...EXAMPLE, clients: [Object.fromEntries(fields.client.map((k) => [k, k === 'name' ? 'n' : undefined]))] }),
    ).not.toThrow();
    expect(fields.top.sort()).toEqual(['$schema', 'clients', 'nic', 'seed', 'switch']);
    // And the validator knows no field the schema lacks.
    for (const k of ['unknownField'])
      expect(() => parseConfig({ ...EXAMPLE, nic: { ...EXAMPLE.nic, [k]: 1 } })).toThrow(/not a known field/);
    expect(schema.properties.nic.additionalProperties).toBe(false);
    expect(schema.properties.clients.items.additionalProperties).toBe(false);
  });
});

const schema = JSON.parse(readFileSync(new URL('../schema/config.schema.json', import.meta.url), 'utf8'));
const ajv = new Ajv2020({ strict: true, strictTypes: false, strictRequired: false });
const schemaAccepts = ajv.compile(schema);

/** The validators' verdict: a file is valid when some command accepts it (inspect and the rest via loadConfig, or switch). */
function validatorAccepts(text: string): boolean {
  const accepts = (fn: () => unknown): boolean => {
    try {
      fn();
      return true;
    } catch (err) {
      if (!(err instanceof MacslotError)) throw err;
      return false;
    }
  };
  return accepts(() => loadConfig(text)) || accepts(() => switchConfig(text, 'generated.json'));
}

function sameVerdict(what: string, config: unknown): boolean {
  const text = JSON.stringify(config);
  const bySchema = schemaAccepts(config) as boolean;
  const byValidator = validatorAccepts(text);
  expect(byValidator, `${what}: schema says ${bySchema} (${ajv.errorsText(schemaAccepts.errors)}) for ${text}`).toBe(bySchema);
  return bySchema;
}

const readmeJson = (): string[] =>
  [...readFileSync(new URL('../README.md', import.meta.url), 'utf8').matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
const FIXTURES = new URL('./fixtures/cli/', import.meta.url);

// Generated files: MACs from pools that never collide (duplicate MACs and names are checks the schema cannot express).
const unicastMac = fc.constantFrom('52:54:00:12:34:56', '52-54-00-12-34-57', '5254.0012.3458', '525400123459', '02:08:20:00:00:0B');
const groupMac = fc.constantFrom('33:33:00:00:00:01', '01-00-5e-00-00-fb', '3333.0000.00fb', '01005e7f0001');
const nicArb = fc.record(
  {
    primary: fc.constantFrom('00:14:4f:00:00:00', '02:6d:73:00:00:01'),
    factory: fc.oneof(
      fc.record({ base: fc.constantFrom('00:14:4f:00:01:00', '02:6d:73:00:01:00'), count: fc.integer({ min: 0, max: LIMITS.factory }) }),
      fc.uniqueArray(fc.constantFrom('00:14:4f:00:02:01', '00:14:4f:00:02:02', '02:6d:73:00:02:03'), { maxLength: 3 }),
    ),
    unicastEntries: fc.integer({ min: 0, max: LIMITS.entries }),
    multicastEntries: fc.integer({ min: 0, max: 64 }),
    multicastHash: fc.oneof(fc.boolean(), fc.record({ filterType: fc.constantFrom(0, 1, 2, 3) })),
    overflow: fc.constantFrom('promiscuous', 'reject'),
    autoActivate: fc.boolean(),
    maxClients: fc.integer({ min: 1, max: LIMITS.clients }),
    maxAddresses: fc.integer({ min: 1, max: LIMITS.addresses }),
    maxFrameLength: fc.integer({ min: 14, max: LIMITS.frameLength }),
    primaryClient: fc.constantFrom('host', 'p'.repeat(LIMITS.clientName)),
  },
  { requiredKeys: ['primary'] },
);
const clientArb = fc.record(
  {
    name: fc.constantFrom('vm-a', 'vm-b', 'tap', 'n'.repeat(LIMITS.clientName)),
    address: fc.oneof(fc.constantFrom('factory', 'factory:2', 'random', 'random:02:08:20/24', 'auto', 'learn'), unicastMac),
    multicast: fc.uniqueArray(groupMac, { maxLength: 3 }),
    broadcast: fc.boolean(),
    promiscuous: fc.boolean(),
  },
  { requiredKeys: ['name'] },
);
// Mostly valid dotted addresses, sometimes with a leading zero or an octet over 255, which both validators must refuse.
const ipv4Arb = fc
  .tuple(
    ...[0, 1, 2, 3].map(() =>
      fc.oneof(
        { arbitrary: fc.integer({ min: 0, max: 255 }).map(String), weight: 40 },
        { arbitrary: fc.constantFrom('256', '010'), weight: 1 },
      ),
    ),
  )
  .map((o) => o.join('.'));
const switchArb = fc.record(
  {
    allocation: fc.constantFrom('auto', 'random', 'factory', 'learn', 'none'),
    leaseTtlMs: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    antiSpoof: fc.boolean(),
    neighbours: fc.uniqueArray(unicastMac, { maxLength: 3 }),
    secrets: fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ minLength: 8, maxLength: 24 }), { maxKeys: 2 }),
    stormControl: fc.oneof(
      fc.constant(false),
      fc.record({ rate: fc.integer({ min: 1, max: 100_000 }), burst: fc.integer({ min: 1, max: 100_000 }) }, { requiredKeys: ['rate'] }),
    ),
    queueBudgetBytes: fc.integer({ min: 1, max: 2 ** 40 }),
    maxClientsPerListener: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    idleMs: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    frameTimeoutMs: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    handshakeTimeoutMs: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    subnet: fc
      .tuple(
        ipv4Arb,
        fc.oneof({ arbitrary: fc.integer({ min: 8, max: 30 }), weight: 20 }, { arbitrary: fc.constantFrom(7, 31), weight: 1 }),
      )
      .map(([a, n]) => `${a}/${n}`),
    gateway: ipv4Arb,
    dns: ipv4Arb,
    range: fc.tuple(ipv4Arb, ipv4Arb),
    maxUplinks: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 4096 }), weight: 20 }, { arbitrary: fc.constantFrom(0, 4097), weight: 1 }),
    subnet6: fc.oneof(
      {
        arbitrary: fc
          .array(fc.integer({ min: 0, max: 0xffff }), { minLength: 4, maxLength: 4 })
          .map((g) => `${g.map((x) => x.toString(16)).join(':')}::/64`),
        weight: 20,
      },
      { arbitrary: fc.constantFrom('fd00::/64', 'fd00:0:0:0::/48', 'fd00:0:0:0:1::/64', 'g:0:0:0::/64'), weight: 1 },
    ),
  },
  { requiredKeys: [] },
);
const configArb = fc.record(
  {
    $schema: fc.constant('https://example.invalid/config.schema.json'),
    seed: fc.integer({ min: 0, max: 0xffff_ffff }),
    nic: nicArb,
    clients: fc.uniqueArray(clientArb, { maxLength: 4, selector: (c) => c.name }),
    switch: switchArb,
  },
  { requiredKeys: ['nic'] },
);
// Values that break a field in one way or another (or happen to fit it: then both must accept).
const BAD = [
  null,
  -1,
  1.5,
  'x',
  '',
  [],
  {},
  true,
  0,
  LIMITS.factory + 1,
  LIMITS.clients + 1,
  LIMITS.frameLength + 1,
  LIMITS.entries + 1,
  2 ** 31,
  2 ** 32,
  '01:00:5e:00:00:01',
  '00:00:00:00:00:00',
  '00-00-00-00-00-00',
  'ff:ff:ff:ff:ff:ff',
  ' 00:14:4f:00:00:09',
  '0:14:4f:0:0:9',
  '00:14-4f:00:00:09',
  '00:14:4f:00:00:09:aa:bb',
  '00:14:4f:00:00:09',
  'y'.repeat(LIMITS.clientName + 1),
  'factory:x',
  'random:',
  'auto',
  'learn',
];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
/** Every path into a value (the root excluded), objects' keys and arrays' indices. */
function paths(v: Json, at: (string | number)[] = []): (string | number)[][] {
  if (v === null || typeof v !== 'object') return [];
  const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  return keys.flatMap((k) => [[...at, k], ...paths((v as Record<string | number, Json>)[k]!, [...at, k])]);
}
/** Returns a copy of `config` with one change at `path`: a bad value, the key deleted, or an unknown key beside it. */
function mutate(config: Json, path: (string | number)[], how: number, bad: Json): Json {
  const copy = structuredClone(config) as Record<string | number, Json>;
  let parent = copy;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, Json>;
  const last = path[path.length - 1]!;
  if (how === 0) parent[last] = bad;
  else if (how === 1 && !Array.isArray(parent)) delete parent[last];
  else if (!Array.isArray(parent)) parent.unknownField = bad;
  else parent[last] = bad;
  return copy as Json;
}

describe('the JSON Schema and the validators give the same verdict', () => {
  it('on every configuration in the README', () => {
    const blocks = readmeJson();
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const [i, text] of blocks.entries()) {
      expect(validatorAccepts(text), `README json block ${i}`).toBe(true);
      expect(sameVerdict(`README json block ${i}`, JSON.parse(text))).toBe(true);
    }
  });

  it('on every fixture file', () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
    expect(files).toContain('nic.json');
    const verdicts = files.map((f) => [f, sameVerdict(f, JSON.parse(readFileSync(new URL(f, FIXTURES), 'utf8')))]);
    expect(
      verdicts
        .filter(([, ok]) => ok)
        .map(([f]) => f)
        .sort(),
    ).toEqual(['nb6.json', 'nic.json', 'vlans-trunk.json', 'vlans.json']);
  });

  it('on generated valid configurations', () => {
    let accepted = 0;
    fc.assert(
      fc.property(configArb, (config) => {
        if (sameVerdict('generated', config)) accepted++;
      }),
      { numRuns: 400 },
    );
    // The generator makes mostly valid files (a switch file with a promiscuous client is the invalid rest).
    expect(accepted).toBeGreaterThan(100);
  });

  it('on a null where an optional field takes an array: refused by both, naming the field', () => {
    const config = { nic: { primary: '00:14:4f:00:00:00' }, clients: null };
    expect(sameVerdict('clients null', config)).toBe(false);
    expect(() => parseConfig(config)).toThrow(/CONFIG_INVALID: clients: null is not an array/);
  });

  it('on generated invalid configurations: one field broken, removed, or an unknown one added', () => {
    let rejected = 0;
    const mutated = configArb.chain((config) => {
      const all = paths(config as Json);
      return fc.tuple(fc.constant(config as Json), fc.constantFrom(...all), fc.integer({ min: 0, max: 2 }), fc.constantFrom(...BAD));
    });
    fc.assert(
      fc.property(mutated, ([config, path, how, bad]) => {
        if (!sameVerdict(`mutated at ${path.join('.')}`, mutate(config, path, how, bad))) rejected++;
      }),
      { numRuns: 1000 },
    );
    expect(rejected).toBeGreaterThan(500);
  });
});

describe('limits agree with what the NIC and the data plane accept', () => {
  const nic = { primary: '00:14:4f:00:00:00' };
  const groups = (n: number): string[] => Array.from({ length: n }, (_, i) => Mac.fromNumber(0x3333_0000_0000 + i).toString());
  const LIMIT_CASES = [
    {
      name: 'a factory block past the NIC limit',
      cfg: { nic: { ...nic, factory: { base: '00:14:4f:00:10:00', count: LIMITS.factory + 1 } } },
      path: 'nic.factory.count: 4097',
      inSchema: true,
    },
    {
      name: 'a factory list past the NIC limit',
      cfg: {
        nic: { ...nic, factory: Array.from({ length: LIMITS.factory + 1 }, (_, i) => Mac.fromNumber(0x0014_4f10_0000 + i).toString()) },
      },
      path: 'nic.factory:',
      inSchema: true,
    },
    {
      name: 'a factory block running into multicast MACs',
      cfg: { nic: { ...nic, factory: { base: 'fe:ff:ff:ff:ff:ff', count: 2 } } },
      path: 'nic.factory.count: 2',
      inSchema: false,
    },
    {
      name: 'a factory block holding the primary',
      cfg: { nic: { ...nic, factory: { base: '00:14:4f:00:00:00', count: 1 } } },
      path: 'nic.factory: "00:14:4f:00:00:00 + 0" is the same MAC as nic.primary',
      inSchema: false,
    },
    {
      name: 'a factory list naming one MAC twice',
      cfg: { nic: { ...nic, factory: ['00:14:4f:00:00:01', '00-14-4F-00-00-01'] } },
      path: 'nic.factory[1]: "00-14-4F-00-00-01" is the same MAC as nic.factory[0]',
      inSchema: false,
    },
    {
      name: 'more clients than the data plane numbers',
      cfg: { nic: { ...nic, maxClients: LIMITS.clients + 1 } },
      path: 'nic.maxClients: 65536',
      inSchema: true,
    },
    {
      name: 'more distinct groups than the data plane holds',
      cfg: {
        nic,
        clients: [
          { name: 'a', multicast: groups(200) },
          { name: 'b', multicast: groups(LIMITS.groups + 1) },
        ],
      },
      path: 'clients[1].multicast[256]: "33:33:00:00:01:00" is distinct group number 257',
      inSchema: false,
    },
    {
      name: 'a client name longer than the NIC takes',
      cfg: { nic, clients: [{ name: 'n'.repeat(LIMITS.clientName + 1) }] },
      path: 'clients[0].name:',
      inSchema: true,
    },
    {
      name: 'a primary client name longer than the NIC takes',
      cfg: { nic: { ...nic, primaryClient: 'n'.repeat(LIMITS.clientName + 1) } },
      path: 'nic.primaryClient:',
      inSchema: true,
    },
    {
      name: 'an all-zero primary',
      cfg: { nic: { primary: '00-00-00-00-00-00' } },
      path: 'nic.primary: "00-00-00-00-00-00" is the all-zero MAC',
      inSchema: true,
    },
  ];
  it.each(LIMIT_CASES)('refuses $name with CONFIG_INVALID and the JSON path', ({ cfg, path, inSchema }) => {
    expect(() => parseConfig(cfg)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(path) }));
    // Sums and comparisons across fields are beyond JSON Schema: the schema's description names them.
    if (inSchema) expect(schemaAccepts(cfg)).toBe(false);
  });

  it('accepts what is exactly at each limit, and the NIC and a data plane take it', async () => {
    const cfg = parseConfig({
      nic: { ...nic, factory: { base: '00:14:4f:00:10:00', count: LIMITS.factory }, maxClients: LIMITS.clients },
      clients: [{ name: 'n'.repeat(LIMITS.clientName), multicast: groups(LIMITS.groups) }],
    });
    const built = buildFromConfig(cfg);
    expect(built.nic.addressSupport().totalSlots).toBe(LIMITS.factory);
    const dp = await DataPlane.create(built.nic, { lanes: 1, poolBytes: 1 << 16, ringBytes: 4096 });
    try {
      expect(built.clients[0]!.groups()).toHaveLength(LIMITS.groups);
    } finally {
      dp.close();
    }
  });

  it("ships a schema whose numbers and patterns are the code's", () => {
    const nicProps = schema.properties.nic.properties;
    const client = schema.properties.clients.items.properties;
    expect({
      factoryCount: nicProps.factory.oneOf[0].properties.count.maximum,
      factoryList: nicProps.factory.oneOf[1].maxItems,
      unicastEntries: nicProps.unicastEntries.maximum,
      multicastEntries: nicProps.multicastEntries.maximum,
      maxClients: nicProps.maxClients.maximum,
      maxAddresses: nicProps.maxAddresses.maximum,
      maxFrameLength: nicProps.maxFrameLength.maximum,
      primaryClient: nicProps.primaryClient.maxLength,
      name: client.name.maxLength,
      groups: client.multicast.maxItems,
    }).toEqual({
      factoryCount: LIMITS.factory,
      factoryList: LIMITS.factory,
      unicastEntries: LIMITS.entries,
      multicastEntries: LIMITS.entries,
      maxClients: LIMITS.clients,
      maxAddresses: LIMITS.addresses,
      maxFrameLength: LIMITS.frameLength,
      primaryClient: LIMITS.clientName,
      name: LIMITS.clientName,
      groups: LIMITS.groups,
    });
    expect([schema.$defs.mac.pattern, schema.$defs.unicast.pattern, schema.$defs.group.pattern]).toEqual([
      CONFIG_PATTERNS.mac,
      CONFIG_PATTERNS.unicast,
      CONFIG_PATTERNS.group,
    ]);
    // And the NIC refuses one past each of its limits.
    const refuses = (config: object): boolean => {
      try {
        new Nic({ primary: '00:14:4f:00:00:00', ...config });
        return false;
      } catch (err) {
        return err instanceof MacslotError;
      }
    };
    expect([
      refuses({ factory: { base: '00:14:4f:00:10:00', count: LIMITS.factory + 1 } }),
      refuses({ maxClients: LIMITS.clients + 1 }),
      refuses({ maxAddresses: LIMITS.addresses + 1 }),
      refuses({ maxFrameLength: LIMITS.frameLength + 1 }),
      refuses({ unicastEntries: LIMITS.entries + 1 }),
      refuses({ factory: { base: '00:14:4f:00:10:00', count: LIMITS.factory }, maxClients: LIMITS.clients }),
    ]).toEqual([true, true, true, true, true, false]);
  });
});

describe('duplicate keys', () => {
  const DUPLICATES = [
    { name: 'at the top level', text: '{"nic":{"primary":"00:14:4f:00:00:00"},"seed":1,"seed":2}', path: 'seed: is given twice' },
    {
      name: 'in the nic object',
      text: '{"nic":{"primary":"00:14:4f:00:00:00","primary":"00:14:4f:00:00:01"}}',
      path: 'nic.primary: is given twice',
    },
    {
      name: 'in the second client',
      text: '{"nic":{"primary":"00:14:4f:00:00:00"},"clients":[{"name":"a"},{"name":"b","broadcast":true,"broadcast":false}]}',
      path: 'clients[1].broadcast: is given twice',
    },
    {
      name: 'a key that needs quoting',
      text: '{"nic":{"primary":"00:14:4f:00:00:00"},"a b":1,"a b":2}',
      path: '(root)["a b"]: is given twice',
    },
    {
      name: 'a key written with an escape',
      text: '{"nic":{"primary":"00:14:4f:00:00:00"},"seed":1,"s\\u0065ed":2}',
      path: 'seed: is given twice',
    },
  ];
  it.each(DUPLICATES)('refuses a key given twice $name, naming its path', ({ text, path }) => {
    expect(() => loadConfig(text)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(path) }));
    expect(() => switchConfig(text, 'switch.json')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(path) }),
    );
  });

  it('refuses a key given twice in the switch object', () => {
    const text = '{"nic":{"primary":"00:14:4f:00:00:00"},"switch":{"allocation":"auto","allocation":"none"}}';
    expect(() => switchConfig(text, 'switch.json')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('switch.allocation: is given twice') }),
    );
  });

  it('is not fooled by quotes, braces and commas inside strings, or by the same key in sibling objects', () => {
    const text =
      '{"nic":{"primary":"00:14:4f:00:00:00","primaryClient":"a\\",\\"primaryClient\\":{["},' +
      '"clients":[{"name":"x","broadcast":true},{"name":"y","broadcast":true}]}';
    expect(loadConfig(text).nic.primaryClient).toBe('a","primaryClient":{[');
  });
});

describe('error messages cap the values they echo', () => {
  const HUGE = 'n'.repeat(5_000_000);
  const CAPPED = [
    { name: 'a huge client name', run: () => parseConfig({ nic: { primary: '00:14:4f:00:00:00' }, clients: [{ name: HUGE }] }) },
    { name: 'a huge unknown key', run: () => parseConfig({ nic: { primary: '00:14:4f:00:00:00', [HUGE]: 1 } }) },
    { name: 'a huge MAC', run: () => parseConfig({ nic: { primary: HUGE } }) },
    { name: 'a huge name through the API', run: () => new Nic({ primary: '00:14:4f:00:00:00' }).openClient(HUGE) },
    { name: 'a huge MAC through the API', run: () => Mac.parse(`00:${HUGE}`) },
    {
      name: 'a huge name in a switch file',
      run: () => switchConfig(JSON.stringify({ nic: { primary: '00:14:4f:00:00:00' }, clients: [{ name: HUGE }] }), 'switch.json'),
    },
    {
      name: 'a huge key in the switch object',
      run: () => switchConfig(JSON.stringify({ nic: { primary: '00:14:4f:00:00:00' }, switch: { [HUGE]: HUGE } }), 'switch.json'),
    },
    {
      name: 'a huge array',
      run: () => parseConfig({ nic: { primary: '00:14:4f:00:00:00' }, clients: { a: new Array(100_000).fill(HUGE.slice(0, 100)) } }),
    },
  ];
  it.each(CAPPED)('$name gives a message of a few hundred characters', ({ run }) => {
    let message = '';
    try {
      run();
    } catch (err) {
      expect(err).toBeInstanceOf(MacslotError);
      message = (err as Error).message;
    }
    expect(message).not.toBe('');
    expect(message.length).toBeLessThan(1000);
    expect(message).toMatch(/…\(\d+ characters\)/);
  });

  it('a huge name that fails while setting up is capped too', () => {
    const cfg = parseConfig({
      nic: { primary: '00:14:4f:00:00:00' },
      clients: [
        { name: 'a', address: '02:00:00:00:00:01' },
        { name: 'b', address: '02:00:00:00:00:01' },
      ],
    });
    const err = (() => {
      try {
        buildFromConfig({ ...cfg, clients: [...cfg.clients, { name: HUGE }] });
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err?.message.length).toBeLessThan(1000);
  });
});

describe('VLANs in the configuration file', () => {
  const withVlans = (nic: Record<string, unknown>, clients: Record<string, unknown>[]): unknown => ({
    nic: { primary: '00:14:4f:00:00:00', factory: { base: '00:14:4f:00:00:01', count: 2 }, ...nic },
    clients,
  });
  const BAD: Record<string, { config: unknown; msg: string }> = {
    'vlan 0': { config: withVlans({}, [{ name: 'a', vlan: 0 }]), msg: 'clients[0].vlan: 0 is not an integer in 1..4094' },
    'vlan 4095': { config: withVlans({}, [{ name: 'a', vlan: 4095 }]), msg: 'clients[0].vlan: 4095 is not an integer in 1..4094' },
    'vlan and vlans together': {
      config: withVlans({}, [{ name: 'a', vlan: 10, vlans: [20] }]),
      msg: 'clients[0].vlans: [20] is given with vlan',
    },
    'an empty vlans list': { config: withVlans({}, [{ name: 'a', vlans: [] }]), msg: 'clients[0].vlans: [] is not a non-empty array' },
    'a VLAN listed twice': { config: withVlans({}, [{ name: 'a', vlans: [10, 10] }]), msg: 'clients[0].vlans[1]: 10 is listed twice' },
    'native without vlans': { config: withVlans({}, [{ name: 'a', vlan: 10, native: 10 }]), msg: 'clients[0].native: 10 needs vlans' },
    'native not among vlans': {
      config: withVlans({}, [{ name: 'a', vlans: [10], native: 20 }]),
      msg: 'clients[0].native: 20 is not one of vlans [10]',
    },
    "the wire's native not among its vlans": {
      config: withVlans({ vlans: [10], native: 30 }, []),
      msg: 'nic.native: 30 is not one of vlans',
    },
    'nic.vlan (a client field)': { config: withVlans({ vlan: 10 }, []), msg: 'nic.vlan: 10 is not a known field' },
    'more VLANs on the wire than the data plane carries': {
      config: withVlans({ vlans: Array.from({ length: LIMITS.vlans + 1 }, (_, i) => i + 1) }, []),
      msg: `nic.vlans: "${LIMITS.vlans + 1} VLANs" are more than the data plane carries (at most ${LIMITS.vlans})`,
    },
  };
  it.each(Object.entries(BAD))('refuses %s, naming the JSON path', (_name, { config, msg }) => {
    expect(() => parseConfig(config)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(msg) }));
  });

  const GOOD = withVlans({ vlans: [10, 20], native: 10 }, [
    { name: 'a', address: 'factory', vlan: 10 },
    { name: 't', address: 'factory', vlans: [10, 20], native: 20 },
  ]);

  it('the schema and the validator agree on VLAN files', () => {
    const schema = JSON.parse(readFileSync(new URL('../schema/config.schema.json', import.meta.url), 'utf8'));
    const accepts = new Ajv2020({ strict: true, strictTypes: false, strictRequired: false }).compile(schema);
    expect(accepts(GOOD)).toBe(true);
    for (const [name, { config }] of Object.entries(BAD)) {
      // The schema cannot say "native is one of vlans"; every other refusal it shares.
      if (name.includes('not among')) continue;
      expect(accepts(config), name).toBe(false);
    }
  });

  it('builds the membership only for a caller that applies it, and refuses the file otherwise', () => {
    const config = parseConfig(GOOD);
    expect(() => buildFromConfig(config)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('nic.vlans: VLANs are not applied') }),
    );
    const { nic, clients, vlans } = buildFromConfig(config, { vlans: true });
    expect(vlans).toBeDefined();
    const [a, t] = clients;
    expect([vlans!.isMember(a!.id, 10), vlans!.isMember(a!.id, 20)]).toEqual([true, false]);
    expect([vlans!.isMember(t!.id, 10), vlans!.isMember(t!.id, 20)]).toEqual([true, true]);
    // The primary client, with no VLAN fields, is in VLAN 1 only, which the wire does not carry.
    expect(vlans!.members(1)).toEqual([nic.primaryClient.id]);
    expect(vlans!.isMember('uplink', 20)).toBe(true);
  });

  it('counts the default wire (every client VLAN and 1) against the limit, which the data plane takes in full', async () => {
    const trunk = (from: number) => Array.from({ length: 127 }, (_, i) => from + i);
    const full = withVlans({}, [
      { name: 'a', vlans: trunk(2) },
      { name: 'b', vlans: trunk(129) },
    ]);
    const { nic, vlans } = buildFromConfig(parseConfig(full), { vlans: true });
    expect(vlans!.get('uplink')!.vids).toHaveLength(LIMITS.vlans);
    const dp = await DataPlane.create(nic, { vlans: true });
    try {
      dp.setVlans(vlans!, 'uplink');
    } finally {
      dp.close();
    }
    const over = withVlans({}, [
      { name: 'a', vlans: trunk(2) },
      { name: 'b', vlans: trunk(129) },
      { name: 'c', vlan: 4000 },
    ]);
    expect(() => parseConfig(over)).toThrow(/clients: "256 VLANs" \(every client VLAN and 1, on the wire\) are more than the data plane/);
  });

  it('without nic.vlans the wire carries every client VLAN and VLAN 1, with VLAN 1 untagged', () => {
    const { vlans } = buildFromConfig(parseConfig(withVlans({}, [{ name: 'a', address: 'factory', vlan: 30 }])), { vlans: true });
    expect([1, 30, 40].map((v) => vlans!.isMember('uplink', v))).toEqual([true, true, false]);
  });

  it('a file without VLANs builds as before, with no membership', () => {
    expect(buildFromConfig(parseConfig(withVlans({}, [{ name: 'a' }]))).vlans).toBeUndefined();
  });

  it('macslot switch takes a file with VLANs: every client port and the uplink get their membership', () => {
    const cfg = switchConfig(JSON.stringify(GOOD), 'v.json');
    expect(cfg.clients.map((c) => [c.name, c.vlans])).toEqual([
      ['a', { access: 10 }],
      ['t', { trunk: [10, 20], native: 20 }],
    ]);
    expect(cfg.vlans).toEqual({ uplink: { trunk: [10, 20], native: 10 } });
    const plain = switchConfig(JSON.stringify(withVlans({}, [{ name: 'a', vlan: 30 }, { name: 'b' }])), 'v.json');
    expect(plain.clients.map((c) => c.vlans)).toEqual([{ access: 30 }, { access: 1 }]);
    expect(plain.vlans).toEqual({ uplink: { trunk: [1, 30], native: 1 } });
    expect(switchConfig(JSON.stringify({ nic: { primary: '00:14:4f:00:00:00' } }), 'n.json').vlans).toBeUndefined();
  });
});
