// Configuration: the JSON file that describes a NIC and its clients, validated with JSON paths, then set up through the public API.

import { MacBlock, type RandomSource } from '../alloc/generate.js';
import { MacslotError, isMacslotError, show } from '../errors.js';
import { Nic, type NicClient } from '../nic/nic.js';
import type { NicConfig } from '../nic/types.js';
import { Mac } from '../wire/mac.js';

/** The `nic` object of a configuration file: NicConfig with MACs as strings. */
export interface NicFileConfig {
  primary: string;
  factory?: { base: string; count: number } | string[];
  unicastEntries?: number;
  multicastEntries?: number;
  multicastHash?: boolean | { filterType: 0 | 1 | 2 | 3 };
  overflow?: 'promiscuous' | 'reject';
  autoActivate?: boolean;
  maxClients?: number;
  maxAddresses?: number;
  maxFrameLength?: number;
  primaryClient?: string;
}

/** One client, set up in file order. */
export interface ClientFileConfig {
  name: string;
  /** `factory`, `factory:N`, `random`, `random:<prefix>` or a MAC. Absent: no unicast address. */
  address?: string;
  multicast?: string[];
  /** Receive broadcast. Default true. */
  broadcast?: boolean;
  /** Granted and turned on. Default false. */
  promiscuous?: boolean;
}

/** A validated configuration file. */
export interface MacslotConfig {
  nic: NicFileConfig;
  clients: ClientFileConfig[];
  /** Seed for `random` addresses, so a file yields the same MACs every run. */
  seed?: number;
}

/** A NIC set up from a configuration, with its clients in file order. */
export interface ConfiguredNic {
  readonly nic: Nic;
  readonly clients: readonly NicClient[];
}

const fail = (path: string, value: unknown, what: string): MacslotError => new MacslotError('CONFIG_INVALID', `${path}: ${show(value)} ${what}`);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function object(v: unknown, path: string, allowed: readonly string[]): Record<string, unknown> {
  if (!isObject(v)) throw fail(path, v, 'is not an object');
  for (const key of Object.keys(v)) if (!allowed.includes(key)) throw fail(`${path}.${key}`, v[key], `is not a known field (known: ${allowed.join(', ')})`);
  return v;
}

function integer(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw fail(path, v, `is not an integer in ${min}..${max}`);
  return v;
}

function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw fail(path, v, 'is not true or false');
  return v;
}

function string(v: unknown, path: string): string {
  if (typeof v !== 'string' || v.length === 0) throw fail(path, v, 'is not a non-empty string');
  return v;
}

function mac(v: unknown, path: string): string {
  if (typeof v !== 'string') throw fail(path, v, 'is not a MAC');
  try {
    const m = Mac.parse(v);
    if (m.kind !== 'mac48') throw new Error();
    return m.toString();
  } catch {
    throw fail(path, v, 'is not a MAC');
  }
}

function unicastMac(v: unknown, path: string): string {
  const m = mac(v, path);
  if (Mac.parse(m).isMulticast) throw fail(path, v, 'is a multicast MAC, not a unicast one');
  return m;
}

const NIC_FIELDS = ['primary', 'factory', 'unicastEntries', 'multicastEntries', 'multicastHash', 'overflow', 'autoActivate', 'maxClients', 'maxAddresses', 'maxFrameLength', 'primaryClient'] as const;
const CLIENT_FIELDS = ['name', 'address', 'multicast', 'broadcast', 'promiscuous'] as const;
const TOP_FIELDS = ['$schema', 'nic', 'clients', 'seed'] as const;
const ADDRESS = /^(factory|factory:\d+|random|random:.+)$/;

/**
 * Validates a parsed configuration file; returns it normalised (MACs in colon form). Throws
 * CONFIG_INVALID naming the JSON path and the bad value, e.g. `clients[1].multicast[0]: "33:33:zz:00:00:01" is not a MAC`.
 */
export function parseConfig(input: unknown): MacslotConfig {
  const top = object(input, '(root)', TOP_FIELDS);
  if (top.$schema !== undefined) string(top.$schema, '$schema');
  const n = object(top.nic, 'nic', NIC_FIELDS);
  const nic: NicFileConfig = { primary: unicastMac(n.primary, 'nic.primary') };
  if (n.factory !== undefined) {
    if (Array.isArray(n.factory)) nic.factory = n.factory.map((m, i) => unicastMac(m, `nic.factory[${i}]`));
    else {
      const f = object(n.factory, 'nic.factory', ['base', 'count']);
      nic.factory = { base: unicastMac(f.base, 'nic.factory.base'), count: integer(f.count, 'nic.factory.count', 0, 65535) };
    }
  }
  if (n.unicastEntries !== undefined) nic.unicastEntries = integer(n.unicastEntries, 'nic.unicastEntries', 0, 65535);
  if (n.multicastEntries !== undefined) nic.multicastEntries = integer(n.multicastEntries, 'nic.multicastEntries', 0, 65535);
  if (n.multicastHash !== undefined) {
    if (typeof n.multicastHash === 'boolean') nic.multicastHash = n.multicastHash;
    else {
      const h = object(n.multicastHash, 'nic.multicastHash', ['filterType']);
      nic.multicastHash = { filterType: integer(h.filterType, 'nic.multicastHash.filterType', 0, 3) as 0 | 1 | 2 | 3 };
    }
  }
  if (n.overflow !== undefined) {
    if (n.overflow !== 'promiscuous' && n.overflow !== 'reject') throw fail('nic.overflow', n.overflow, 'is not "promiscuous" or "reject"');
    nic.overflow = n.overflow;
  }
  if (n.autoActivate !== undefined) nic.autoActivate = bool(n.autoActivate, 'nic.autoActivate');
  if (n.maxClients !== undefined) nic.maxClients = integer(n.maxClients, 'nic.maxClients', 1, 65535);
  if (n.maxAddresses !== undefined) nic.maxAddresses = integer(n.maxAddresses, 'nic.maxAddresses', 1, 1 << 20);
  if (n.maxFrameLength !== undefined) nic.maxFrameLength = integer(n.maxFrameLength, 'nic.maxFrameLength', 14, 65535);
  if (n.primaryClient !== undefined) nic.primaryClient = string(n.primaryClient, 'nic.primaryClient');

  const list = top.clients ?? [];
  if (!Array.isArray(list)) throw fail('clients', list, 'is not an array');
  const names = new Map<string, number>([[nic.primaryClient ?? 'primary', -1]]);
  const clients = list.map((raw, i): ClientFileConfig => {
    const p = `clients[${i}]`;
    const c = object(raw, p, CLIENT_FIELDS);
    const name = string(c.name, `${p}.name`);
    const seen = names.get(name);
    if (seen !== undefined) throw fail(`${p}.name`, name, seen < 0 ? "is the primary client's name" : `is already the name of clients[${seen}]`);
    names.set(name, i);
    const out: ClientFileConfig = { name };
    if (c.address !== undefined) {
      if (typeof c.address !== 'string') throw fail(`${p}.address`, c.address, 'is not a string');
      out.address = ADDRESS.test(c.address) ? c.address : unicastMac(c.address, `${p}.address`);
    }
    if (c.multicast !== undefined) {
      if (!Array.isArray(c.multicast)) throw fail(`${p}.multicast`, c.multicast, 'is not an array');
      out.multicast = c.multicast.map((g, j) => {
        const m = mac(g, `${p}.multicast[${j}]`);
        if (!Mac.parse(m).isMulticast || Mac.parse(m).isBroadcast) throw fail(`${p}.multicast[${j}]`, g, 'is not a multicast group (group bit clear, or broadcast)');
        return m;
      });
    }
    if (c.broadcast !== undefined) out.broadcast = bool(c.broadcast, `${p}.broadcast`);
    if (c.promiscuous !== undefined) out.promiscuous = bool(c.promiscuous, `${p}.promiscuous`);
    return out;
  });
  const config: MacslotConfig = { nic, clients };
  if (top.seed !== undefined) config.seed = integer(top.seed, 'seed', 0, 0xffff_ffff);
  return config;
}

/** Returns a deterministic RandomSource (mulberry32) for `seed`; the same seed gives the same bytes. */
export function seededRandom(seed: number): RandomSource {
  let s = seed >>> 0;
  return (out) => {
    for (let i = 0; i < out.length; i++) {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      out[i] = ((t ^ (t >>> 14)) >>> 24) & 0xff;
    }
  };
}

/**
 * Builds the NIC and sets up every client in file order, as through the API. Throws CONFIG_INVALID
 * naming the JSON path when the API refuses a step (a MAC or slot in use, no free slot, …).
 */
export function buildFromConfig(config: MacslotConfig): ConfiguredNic {
  const random = config.seed !== undefined ? seededRandom(config.seed) : undefined;
  const nicConfig: NicConfig = { ...config.nic, ...(random ? { random } : {}) };
  let nic: Nic;
  try {
    nic = new Nic(nicConfig);
  } catch (err) {
    throw isMacslotError(err) ? new MacslotError('CONFIG_INVALID', `nic: ${err.message}`) : err;
  }
  const clients = config.clients.map((c, i) => {
    const p = `clients[${i}]`;
    const step = <T>(path: string, value: unknown, fn: () => T): T => {
      try {
        return fn();
      } catch (err) {
        if (!isMacslotError(err)) throw err;
        const why = err.code === 'MAC_IN_USE' || err.code === 'SLOT_BUSY' ? 'is in use' : 'is refused';
        throw fail(path, value, `${why} (${err.message})`);
      }
    };
    const client = step(`${p}.name`, c.name, () => nic.openClient(c.name, { allowPromiscuous: c.promiscuous ?? false, broadcast: c.broadcast ?? true }));
    const a = c.address;
    if (a !== undefined) {
      step(`${p}.address`, a, () => {
        if (a === 'factory') return client.addressReserve();
        if (a.startsWith('factory:')) return client.addressReserve({ slot: Number(a.slice(8)) });
        if (a === 'random') return client.addressAdd();
        if (a.startsWith('random:')) {
          const taken = new Set(nic.slots().map((s) => s.mac.toString()));
          return client.addressAdd(new MacBlock(a.slice(7)).random(taken, random));
        }
        return client.addressAdd(a);
      });
    }
    (c.multicast ?? []).forEach((g, j) => step(`${p}.multicast[${j}]`, g, () => client.multicastJoin(g)));
    if (c.promiscuous) client.setPromiscuous(true);
    return client;
  });
  return { nic, clients };
}

/** Parses JSON text and validates it; throws CONFIG_INVALID naming `source` when the text is not JSON. */
export function loadConfig(text: string, source = 'config'): MacslotConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new MacslotError('CONFIG_INVALID', `${show(source)} is not JSON: ${(err as Error).message}`);
  }
  return parseConfig(json);
}
