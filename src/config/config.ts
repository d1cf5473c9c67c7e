// Configuration: the JSON file that describes a NIC and its clients, validated with JSON paths, then set up through the public API.

import { MacBlock, type RandomSource } from '../alloc/generate.js';
import { MacslotError, isMacslotError, show } from '../errors.js';
import { Nic, type NicClient } from '../nic/nic.js';
import type { NicConfig } from '../nic/types.js';
import { LIMITS } from '../limits.js';
import { ETH_HLEN } from '../wire/ethernet.js';
import { Mac } from '../wire/mac.js';
import { VlanMembership } from '../vlan/membership.js';

/** The `nic` object of a configuration file: NicConfig with MACs as strings. */
export interface NicFileConfig {
  /** The NIC's primary MAC. */
  primary: string;
  /**  string[];|Factory MACs: a block of `count` from `base`, or a list. */
  factory?:
    | {
        /** The first MAC of the block. */
        base: string;
        /** How many MACs follow from it. */
        count: number;
      }
    | string[];
  /** Exact-match unicast filter entries. */
  unicastEntries?: number;
  /** Exact-match multicast filter entries. */
  multicastEntries?: number;
  /**  { filterType: 0 | 1 | 2 | 3 };|A multicast hash stage behind the exact entries, optionally with its filter type. */
  multicastHash?:
    | boolean
    | {
        /** The hash's filter type (MO): which 12 destination bits index it. */
        filterType: 0 | 1 | 2 | 3;
      };
  /**  'reject';|What happens when the filter is full: fall back to promiscuous mode, or refuse. */
  overflow?: 'promiscuous' | 'reject';
  /** Put a reserved MAC in the filter at once. */
  autoActivate?: boolean;
  /** Most clients open at once. */
  maxClients?: number;
  /** Most MACs active at once. */
  maxAddresses?: number;
  /** Longest frame accepted, in bytes without FCS. */
  maxFrameLength?: number;
  /** Name of the client that owns the primary MAC. */
  primaryClient?: string;
  /** VLANs the wire (uplink) carries tagged. Default, when any client has VLANs: every client VLAN and VLAN 1. */
  vlans?: number[];
  /** The wire's untagged VLAN (one of `vlans`). Default, when `vlans` is absent: 1. */
  native?: number;
}

/** One client, set up in file order. */
export interface ClientFileConfig {
  /** The client's unique name. */
  name: string;
  /** `factory`, `factory:N`, `random`, `random:<prefix>` or a MAC. Absent: no unicast address. */
  address?: string;
  /** Multicast groups to join. */
  multicast?: string[];
  /** Receive broadcast. Default true. */
  broadcast?: boolean;
  /** Granted and turned on. Default false. */
  promiscuous?: boolean;
  /** An access port: the client's one VLAN, untagged. Default, when the file uses VLANs: 1. */
  vlan?: number;
  /** A trunk: the client's VLANs, tagged. */
  vlans?: number[];
  /** The trunk's untagged VLAN (one of `vlans`). */
  native?: number;
}

/** A validated configuration file. */
export interface MacslotConfig {
  /** The NIC. */
  nic: NicFileConfig;
  /** The clients, set up in this order. */
  clients: ClientFileConfig[];
  /** Seed for `random` addresses, so a file yields the same MACs every run. */
  seed?: number;
}

/** A NIC set up from a configuration, with its clients in file order. */
export interface ConfiguredNic {
  /** The NIC. */
  readonly nic: Nic;
  /** Its clients, in file order. */
  readonly clients: readonly NicClient[];
  /** VLAN membership, keyed by client id and `'uplink'` for the wire; absent when the file uses no VLANs. */
  readonly vlans?: VlanMembership<number | string>;
}

const fail = (path: string, value: unknown, what: string): MacslotError =>
  new MacslotError('CONFIG_INVALID', `${path}: ${show(value)} ${what}`);

/** Renders one key of a JSON path: `.name` for a plain short name, `["…"]` (capped) for anything else. */
export function keyPath(parent: string, key: string): string {
  const plain = /^[A-Za-z_$][\w$]{0,63}$/.test(key);
  if (parent === '') return plain ? key : `(root)[${show(key)}]`;
  return plain ? `${parent}.${key}` : `${parent}[${show(key)}]`;
}

const HEX2 = '[0-9A-Fa-f]{2}';
const HEX4 = '[0-9A-Fa-f]{4}';

/**
 * The patterns a configuration file's MACs must match, shared by the validator and the JSON Schema
 * (`$defs.mac`, `$defs.unicast`, `$defs.group`): a MAC-48 in colon, hyphen, dotted or bare hex notation
 * with one kind of separator; a unicast one is not all-zero and has the group bit clear; a group has the
 * group bit set and is not broadcast.
 */
export const CONFIG_PATTERNS = Object.freeze({
  /** Any MAC-48 notation the configuration accepts. */
  mac: `^(${HEX2}(:${HEX2}){5}|${HEX2}(-${HEX2}){5}|${HEX4}\\.${HEX4}\\.${HEX4}|[0-9A-Fa-f]{12})$`,
  /** A MAC whose group bit is clear (and that is not all zeros). */
  unicast: '^(?![-:.0]*$)[0-9A-Fa-f][02468AaCcEe]',
  /** A MAC whose group bit is set (broadcast excluded). */
  group: '^(?![-:.Ff]*$)[0-9A-Fa-f][13579BbDdFf]',
});
const MAC_RE = new RegExp(CONFIG_PATTERNS.mac, 'u');
const UNICAST_RE = new RegExp(CONFIG_PATTERNS.unicast, 'u');
const GROUP_RE = new RegExp(CONFIG_PATTERNS.group, 'u');

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function object(v: unknown, path: string, allowed: readonly string[]): Record<string, unknown> {
  if (!isObject(v)) throw fail(path || '(root)', v, 'is not an object');
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) throw fail(keyPath(path || '(root)', key), v[key], `is not a known field (known: ${allowed.join(', ')})`);
  }
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

function string(v: unknown, path: string, max = Infinity): string {
  if (typeof v !== 'string' || v.length === 0) throw fail(path, v, 'is not a non-empty string');
  if (v.length > max) throw fail(path, v, `is ${v.length} characters long; at most ${max}`);
  return v;
}

function mac(v: unknown, path: string): string {
  if (typeof v !== 'string' || !MAC_RE.test(v)) throw fail(path, v, 'is not a MAC');
  return Mac.parse(v).toString();
}

function unicastMac(v: unknown, path: string): string {
  const m = mac(v, path);
  if (!UNICAST_RE.test(m))
    throw fail(path, v, Mac.parse(m).isZero ? 'is the all-zero MAC, not a unicast one' : 'is a multicast MAC, not a unicast one');
  return m;
}

function groupMac(v: unknown, path: string): string {
  const m = mac(v, path);
  if (!GROUP_RE.test(m)) throw fail(path, v, 'is not a multicast group (group bit clear, or broadcast)');
  return m;
}

const NIC_FIELDS = [
  'primary',
  'factory',
  'unicastEntries',
  'multicastEntries',
  'multicastHash',
  'overflow',
  'autoActivate',
  'maxClients',
  'maxAddresses',
  'maxFrameLength',
  'primaryClient',
  'vlans',
  'native',
] as const;
const CLIENT_FIELDS = ['name', 'address', 'multicast', 'broadcast', 'promiscuous', 'vlan', 'vlans', 'native'] as const;
const TOP_FIELDS = ['$schema', 'nic', 'clients', 'seed'] as const;
const ADDRESS = /^(factory|factory:[0-9]+|random|random:.+)$/u;

/** Checks the factory MACs as the NIC will: a list or block within the limit, every MAC unicast, none twice, none the primary. */
function factoryOf(raw: unknown, primary: string): NonNullable<NicFileConfig['factory']> {
  const seen = new Map<number, string>([[Mac.parse(primary).toNumber(), 'nic.primary']]);
  const once = (m: string, path: string, value: unknown): void => {
    const n = Mac.parse(m).toNumber();
    const earlier = seen.get(n);
    if (earlier !== undefined) throw fail(path, value, `is the same MAC as ${earlier}`);
    seen.set(n, path);
  };
  if (Array.isArray(raw)) {
    if (raw.length > LIMITS.factory)
      throw fail('nic.factory', `${raw.length} MACs`, `is more than the NIC holds (at most ${LIMITS.factory})`);
    return raw.map((m, i) => {
      const out = unicastMac(m, `nic.factory[${i}]`);
      once(out, `nic.factory[${i}]`, m);
      return out;
    });
  }
  const f = object(raw, 'nic.factory', ['base', 'count']);
  const base = unicastMac(f.base, 'nic.factory.base');
  const count = integer(f.count, 'nic.factory.count', 0, LIMITS.factory);
  const first = Mac.parse(base).toNumber();
  for (let i = 0; i < count; i++) {
    const n = first + i;
    if (n >= 2 ** 48 || !Mac.fromNumber(n).isValidUnicast)
      throw fail('nic.factory.count', count, `runs the block from ${base} past the unicast MACs`);
    once(Mac.fromNumber(n).toString(), 'nic.factory', `${base} + ${i}`);
  }
  return { base, count };
}

/** A VLAN id, 1..4094 (0 and 4095 are reserved). */
function vid(v: unknown, path: string): number {
  return integer(v, path, 1, 4094);
}

/** Checks `vlan`, `vlans` and `native` of a client (or `vlans`, `native` of the NIC): one VLAN or a list, native among the list. */
function vlansOf(o: Record<string, unknown>, path: string, out: { vlan?: number; vlans?: number[]; native?: number }): void {
  if (o.vlan !== undefined) {
    if (o.vlans !== undefined) throw fail(keyPath(path, 'vlans'), o.vlans, 'is given with vlan; a client is an access port or a trunk');
    out.vlan = vid(o.vlan, keyPath(path, 'vlan'));
  }
  if (o.vlans !== undefined) {
    if (!Array.isArray(o.vlans) || o.vlans.length === 0) throw fail(keyPath(path, 'vlans'), o.vlans, 'is not a non-empty array');
    const list = o.vlans.map((v, i) => vid(v, `${keyPath(path, 'vlans')}[${i}]`));
    list.forEach((v, i) => {
      if (list.indexOf(v) !== i) throw fail(`${keyPath(path, 'vlans')}[${i}]`, v, 'is listed twice');
    });
    out.vlans = list;
  }
  if (o.native !== undefined) {
    const n = vid(o.native, keyPath(path, 'native'));
    if (out.vlans === undefined) throw fail(keyPath(path, 'native'), n, "needs vlans (the native VLAN is a trunk's)");
    if (!out.vlans.includes(n)) throw fail(keyPath(path, 'native'), n, `is not one of vlans ${show(out.vlans)}`);
    out.native = n;
  }
}

function nicOf(raw: unknown): NicFileConfig {
  const n = object(raw, 'nic', NIC_FIELDS);
  const nic: NicFileConfig = { primary: unicastMac(n.primary, 'nic.primary') };
  if (n.factory !== undefined) nic.factory = factoryOf(n.factory, nic.primary);
  if (n.unicastEntries !== undefined) nic.unicastEntries = integer(n.unicastEntries, 'nic.unicastEntries', 0, LIMITS.entries);
  if (n.multicastEntries !== undefined) nic.multicastEntries = integer(n.multicastEntries, 'nic.multicastEntries', 0, LIMITS.entries);
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
  if (n.maxClients !== undefined) nic.maxClients = integer(n.maxClients, 'nic.maxClients', 1, LIMITS.clients);
  if (n.maxAddresses !== undefined) nic.maxAddresses = integer(n.maxAddresses, 'nic.maxAddresses', 1, LIMITS.addresses);
  if (n.maxFrameLength !== undefined) nic.maxFrameLength = integer(n.maxFrameLength, 'nic.maxFrameLength', ETH_HLEN, LIMITS.frameLength);
  if (n.primaryClient !== undefined) nic.primaryClient = string(n.primaryClient, 'nic.primaryClient', LIMITS.clientName);
  vlansOf(n, 'nic', nic);
  return nic;
}

/**
 * Validates a parsed configuration file; returns it normalised (MACs in colon form). Throws
 * CONFIG_INVALID naming the JSON path and the bad value, e.g. `clients[1].multicast[0]: "33:33:zz:00:00:01" is not a MAC`.
 * Sizes are held to what the NIC and the data plane accept (`LIMITS`): a file that passes here never fails later for its size.
 */
export function parseConfig(input: unknown): MacslotConfig {
  const top = object(input, '', TOP_FIELDS);
  if (top.$schema !== undefined) string(top.$schema, '$schema');
  const nic = nicOf(top.nic);
  const list = top.clients === undefined ? [] : top.clients;
  if (!Array.isArray(list)) throw fail('clients', list, 'is not an array');
  const names = new Map<string, number>([[nic.primaryClient ?? 'primary', -1]]);
  const groups = new Set<string>();
  const clients = list.map((raw, i): ClientFileConfig => {
    const p = `clients[${i}]`;
    const c = object(raw, p, CLIENT_FIELDS);
    const name = string(c.name, `${p}.name`, LIMITS.clientName);
    const seen = names.get(name);
    if (seen !== undefined)
      throw fail(`${p}.name`, name, seen < 0 ? "is the primary client's name" : `is already the name of clients[${seen}]`);
    names.set(name, i);
    const out: ClientFileConfig = { name };
    if (c.address !== undefined) {
      if (typeof c.address !== 'string') throw fail(`${p}.address`, c.address, 'is not a string');
      out.address = ADDRESS.test(c.address) ? c.address : unicastMac(c.address, `${p}.address`);
    }
    if (c.multicast !== undefined) {
      if (!Array.isArray(c.multicast)) throw fail(`${p}.multicast`, c.multicast, 'is not an array');
      out.multicast = c.multicast.map((g, j) => {
        const m = groupMac(g, `${p}.multicast[${j}]`);
        groups.add(m);
        if (groups.size > LIMITS.groups)
          throw fail(`${p}.multicast[${j}]`, g, `is distinct group number ${groups.size}; the data plane holds at most ${LIMITS.groups}`);
        return m;
      });
    }
    if (c.broadcast !== undefined) out.broadcast = bool(c.broadcast, `${p}.broadcast`);
    if (c.promiscuous !== undefined) out.promiscuous = bool(c.promiscuous, `${p}.promiscuous`);
    vlansOf(c, p, out);
    return out;
  });
  // The VLANs on the wire, as buildFromConfig will set them: nic.vlans, or every client VLAN and 1.
  const wire = nic.vlans ?? [...new Set([1, ...clients.flatMap((c) => c.vlans ?? (c.vlan !== undefined ? [c.vlan] : []))])];
  if (wire.length > LIMITS.vlans) {
    const [path, what] = nic.vlans !== undefined ? ['nic.vlans', 'are'] : ['clients', '(every client VLAN and 1, on the wire) are'];
    throw fail(path, `${wire.length} VLANs`, `${what} more than the data plane carries (at most ${LIMITS.vlans})`);
  }
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

/** The first VLAN field of a configuration, as a JSON path, or undefined when it uses none. */
export function vlanField(config: MacslotConfig): string | undefined {
  if (config.nic.vlans !== undefined) return 'nic.vlans';
  const i = config.clients.findIndex((c) => c.vlan !== undefined || c.vlans !== undefined);
  if (i < 0) return undefined;
  return `clients[${i}].${config.clients[i]!.vlan !== undefined ? 'vlan' : 'vlans'}`;
}

/**
 * The VLAN membership a configuration describes, keyed by client id and `'uplink'`: the primary client, and a client
 * without VLAN fields, is an access port of VLAN 1, as a Linux bridge's default PVID; the uplink carries `nic.vlans`
 * (default: every client VLAN and VLAN 1) with `nic.native` untagged (default 1, when `nic.vlans` is absent).
 */
function membershipOf(config: MacslotConfig, primary: number, ids: readonly number[]): VlanMembership<number | string> {
  const m = new VlanMembership<number | string>();
  m.set(primary, { access: 1 });
  const all = new Set<number>([1]);
  config.clients.forEach((c, i) => {
    const id = ids[i]!;
    if (c.vlans !== undefined) m.set(id, c.native === undefined ? { trunk: c.vlans } : { trunk: c.vlans, native: c.native });
    else m.set(id, { access: c.vlan ?? 1 });
    for (const v of c.vlans ?? [c.vlan ?? 1]) all.add(v);
  });
  const n = config.nic;
  if (n.vlans !== undefined) m.set('uplink', n.native === undefined ? { trunk: n.vlans } : { trunk: n.vlans, native: n.native });
  else m.set('uplink', { trunk: [...all].sort((a, b) => a - b), native: 1 });
  return m;
}

/**
 * Builds the NIC and sets up every client in file order, as through the API. Throws CONFIG_INVALID
 * naming the JSON path when the API refuses a step (a MAC or slot in use, no free slot, …). A file that uses VLANs is
 * refused unless `options.vlans` says the caller applies them (with the returned `vlans`): a caller that ignored them
 * would deliver frames across VLANs.
 */
export function buildFromConfig(config: MacslotConfig, options: { vlans?: boolean } = {}): ConfiguredNic {
  const field = vlanField(config);
  if (field !== undefined && options.vlans !== true)
    throw new MacslotError(
      'CONFIG_INVALID',
      `${field}: VLANs are not applied by this caller (it must pass { vlans: true } and apply the returned vlans), so the file is refused`,
    );
  const random = config.seed !== undefined ? seededRandom(config.seed) : undefined;
  const { vlans: _vlans, native: _native, ...nicFields } = config.nic;
  const nicConfig: NicConfig = { ...nicFields, ...(random ? { random } : {}) };
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
    const client = step(`${p}.name`, c.name, () =>
      nic.openClient(c.name, { allowPromiscuous: c.promiscuous ?? false, broadcast: c.broadcast ?? true }),
    );
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
  if (field === undefined) return { nic, clients };
  return {
    nic,
    clients,
    vlans: membershipOf(
      config,
      nic.primaryClient.id,
      clients.map((c) => c.id),
    ),
  };
}

/** Returns the JSON path of the first key that appears twice in one object of `text` (valid JSON), or undefined. */
function duplicateKey(text: string): string | undefined {
  interface Frame {
    readonly path: string;
    readonly keys: Set<string> | undefined;
    key: string;
    index: number;
  }
  const stack: Frame[] = [];
  let wantKey = false;
  const childPath = (): string => {
    const top = stack[stack.length - 1];
    if (top === undefined) return '';
    return top.keys !== undefined ? keyPath(top.path, top.key) : `${top.path || '(root)'}[${top.index}]`;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22) {
      const from = i;
      for (i++; text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      const top = stack[stack.length - 1];
      if (wantKey && top?.keys !== undefined) {
        const key = JSON.parse(text.slice(from, i + 1)) as string;
        if (top.keys.has(key)) return keyPath(top.path, key);
        top.keys.add(key);
        top.key = key;
        wantKey = false;
      }
    } else if (ch === 0x7b || ch === 0x5b) {
      stack.push({ path: childPath(), keys: ch === 0x7b ? new Set() : undefined, key: '', index: 0 });
      wantKey = ch === 0x7b;
    } else if (ch === 0x7d || ch === 0x5d) {
      stack.pop();
    } else if (ch === 0x2c) {
      const top = stack[stack.length - 1]!;
      if (top.keys !== undefined) wantKey = true;
      else top.index++;
    }
  }
  return undefined;
}

/**
 * Parses the JSON text of a configuration file. Throws CONFIG_INVALID naming `source` when the text is
 * not JSON, and naming the JSON path when an object gives the same key twice (JSON.parse would keep only the last).
 */
export function parseConfigText(text: string, source = 'config'): unknown {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new MacslotError('CONFIG_INVALID', `${show(source)} is not JSON: ${(err as Error).message}`);
  }
  const dup = duplicateKey(text);
  if (dup !== undefined) throw new MacslotError('CONFIG_INVALID', `${dup}: is given twice in one object (only one value may be meant)`);
  return json;
}

/**
 * Parses JSON text and validates it; throws CONFIG_INVALID naming `source` when the text is not JSON, or the JSON path of a duplicate key.
 */
export function loadConfig(text: string, source = 'config'): MacslotConfig {
  return parseConfig(parseConfigText(text, source));
}
