// The configuration file: its validator names the JSON path and the bad value; the schema shipped with the package lists the same fields.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildFromConfig, parseConfig } from 'macslot';

const EXAMPLE = {
  nic: { primary: '00:14:4f:00:00:00', factory: { base: '00:14:4f:00:00:01', count: 8 }, unicastEntries: 16, multicastEntries: 32, overflow: 'promiscuous' },
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
    expect(nic.slots().find((s) => s.owner === 'vm-b')!.mac.toString()).toBe('02:08:20:00:00:0b');
  });

  it('gives the same random MACs for the same seed', () => {
    const cfg = { ...EXAMPLE, seed: 9, clients: [{ name: 'r', address: 'random:02:08:20/24' }, { name: 's', address: 'random' }] };
    const macs = (): string[] => buildFromConfig(parseConfig(cfg)).nic.slots().map((s) => s.mac.toString());
    expect(macs()).toEqual(macs());
    expect(macs().some((m) => m.startsWith('02:08:20:'))).toBe(true);
  });

  it.each([
    { name: 'a bad multicast MAC', cfg: withClient({ name: 'x', multicast: ['33:33:zz:00:00:01'] }), msg: 'clients[3].multicast[0]: "33:33:zz:00:00:01" is not a MAC' },
    { name: 'a unicast MAC given as a group', cfg: withClient({ name: 'x', multicast: ['02:00:00:00:00:01'] }), msg: 'clients[3].multicast[0]: "02:00:00:00:00:01" is not a multicast group' },
    { name: 'an unknown client field', cfg: withClient({ name: 'x', promisc: true }), msg: 'clients[3].promisc: true is not a known field' },
    { name: 'an unknown top-level field', cfg: { ...EXAMPLE, nics: [] }, msg: '(root).nics: [] is not a known field' },
    { name: 'an unknown nic field', cfg: { ...EXAMPLE, nic: { ...EXAMPLE.nic, entries: 4 } }, msg: 'nic.entries: 4 is not a known field' },
    { name: 'a wrong type', cfg: withClient({ name: 'x', broadcast: 'no' }), msg: 'clients[3].broadcast: "no" is not true or false' },
    { name: 'a wrong count type', cfg: { ...EXAMPLE, nic: { ...EXAMPLE.nic, unicastEntries: '16' } }, msg: 'nic.unicastEntries: "16" is not an integer' },
    { name: 'a bad overflow policy', cfg: { ...EXAMPLE, nic: { ...EXAMPLE.nic, overflow: 'drop' } }, msg: 'nic.overflow: "drop" is not "promiscuous" or "reject"' },
    { name: 'a duplicate name', cfg: withClient({ name: 'vm-a' }), msg: 'clients[3].name: "vm-a" is already the name of clients[0]' },
    { name: "the primary client's name", cfg: withClient({ name: 'primary' }), msg: `clients[3].name: "primary" is the primary client's name` },
    { name: 'a bad address', cfg: withClient({ name: 'x', address: 'factory-2' }), msg: 'clients[3].address: "factory-2" is not a MAC' },
    { name: 'clients not an array', cfg: { ...EXAMPLE, clients: {} }, msg: 'clients: {} is not an array' },
  ])('rejects $name with its JSON path and value', ({ cfg, msg }) => {
    expect(() => parseConfig(cfg)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(msg) }));
  });

  it.each([
    { name: 'a MAC another client holds', client: { name: 'x', address: '02:08:20:00:00:0b' }, msg: 'clients[3].address: "02:08:20:00:00:0b" is in use' },
    { name: 'the primary MAC', client: { name: 'x', address: '00:14:4f:00:00:00' }, msg: 'clients[3].address: "00:14:4f:00:00:00" is in use' },
    { name: 'a factory slot another client reserved', client: { name: 'x', address: 'factory:3' }, msg: 'clients[3].address: "factory:3" is in use' },
    { name: 'a factory slot that does not exist', client: { name: 'x', address: 'factory:99' }, msg: 'clients[3].address: "factory:99" is refused' },
  ])('rejects $name while setting up, with its JSON path', ({ client, msg }) => {
    expect(() => buildFromConfig(parseConfig(withClient(client)))).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(msg) }));
  });

  it('ships a JSON Schema whose fields are exactly those the validator accepts', () => {
    const schema = JSON.parse(readFileSync(new URL('../schema/config.schema.json', import.meta.url), 'utf8'));
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(pkg.files).toContain('schema');
    const fields = { top: Object.keys(schema.properties), nic: Object.keys(schema.properties.nic.properties), client: Object.keys(schema.properties.clients.items.properties) };
    const all = { $schema: 'x', seed: 1, nic: Object.fromEntries(fields.nic.map((k) => [k, undefined])), clients: [] };
    // Every schema field is known to the validator (undefined values are skipped, unknown keys would throw).
    expect(() => parseConfig({ ...all, nic: { ...all.nic, primary: '00:14:4f:00:00:00' } })).not.toThrow();
    expect(() => parseConfig({ ...EXAMPLE, clients: [Object.fromEntries(fields.client.map((k) => [k, k === 'name' ? 'n' : undefined]))] })).not.toThrow();
    expect(fields.top.sort()).toEqual(['$schema', 'clients', 'nic', 'seed']);
    // And the validator knows no field the schema lacks.
    for (const k of ['unknownField']) expect(() => parseConfig({ ...EXAMPLE, nic: { ...EXAMPLE.nic, [k]: 1 } })).toThrow(/not a known field/);
    expect(schema.properties.nic.additionalProperties).toBe(false);
    expect(schema.properties.clients.items.additionalProperties).toBe(false);
  });
});
