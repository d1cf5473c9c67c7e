// Persistence layer: the MAC store's data model and interface, its schema check and migration, and the in-memory store.

import { MacslotError, show } from '../errors.js';
import { Mac } from '../wire/mac.js';

/** The schema version every store writes. Older versions are migrated on read; newer ones are refused. */
export const STORE_VERSION = 2;

/** How a stored MAC was obtained; `direct` marks a reservation a guest made on the NIC itself. */
export type RecordPolicy = 'factory' | 'random' | 'block' | 'fixed' | 'derived' | 'direct';

/** One MAC in the store, keyed by its canonical text. `holder` is the session using it now, null once released. */
export interface MacRecord {
  /** The guest the MAC belongs to. */
  guest: string;
  /** Name of the NIC. */
  nic: string;
  /** The guest's interface. */
  iface: string;
  /** How the MAC was obtained. */
  policy: RecordPolicy;
  /** Session id of the manager holding it; null when released but remembered for the identity's next session. */
  holder: string | null;
  /** Time (clock milliseconds) after which anyone may take it; null for no expiry. */
  expires: number | null;
  /** Time of the last change, for people reading the file. */
  updated: number;
}

/**
 * An identity whose remembered MAC another identity took after the lease lapsed. It is kept so the identity, on
 * its return, learns who holds its MAC (MAC_IN_USE) or gets a new one reported in `previous`, instead of a new
 * MAC with no word of the old. One entry per identity (guest, NIC, interface).
 */
export interface DisplacedRecord {
  /** The guest that lost its MAC. */
  guest: string;
  /** Name of the NIC. */
  nic: string;
  /** The guest's interface. */
  iface: string;
  /** The canonical text of the MAC it lost. */
  mac: string;
  /** The policy that produced that MAC. */
  policy: Exclude<RecordPolicy, 'direct'>;
  /** Time it was displaced. */
  updated: number;
}

/** Everything a store holds. */
export interface StoreData {
  /** Format version of the data. */
  version: number;
  /** Canonical MAC text → its record. */
  records: Record<string, MacRecord>;
  /** Identities whose MAC someone else took; absent or empty when there are none. */
  displaced?: DisplacedRecord[];
}

/**
 * Shared state of every manager using one store. `transact` is the only way to change it: the
 * function sees a private copy under the store's lock (across processes or tabs where the store
 * reaches), and the copy replaces the stored data atomically when the function returns.
 */
export interface MacStore {
  /** Where the data lives, for error messages. */
  readonly location: string;
  /** Runs `fn` on a copy of the data under the lock, commits the copy, and resolves with fn's result; nothing is written when fn throws (the promise rejects with its error) or the commit fails (STORE_IO). */
  transact<T>(fn: (data: StoreData) => T): Promise<T>;
  /** Resolves with a snapshot of the data; rejects with STORE_CORRUPT, STORE_VERSION or STORE_IO. */
  read(): Promise<StoreData>;
}

const POLICIES: readonly RecordPolicy[] = ['factory', 'random', 'block', 'fixed', 'derived', 'direct'];

/** Returns an empty store. Never fails. */
export function emptyStoreData(): StoreData {
  return { version: STORE_VERSION, records: {} };
}

function corrupt(location: string, why: string): MacslotError {
  return new MacslotError(
    'STORE_CORRUPT',
    `the MAC store ${location} is unreadable: ${why}; it was left untouched (repair or remove it, since starting empty would forget which guest owns which MAC)`,
  );
}

function text(v: unknown, max = 256): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= max;
}
function time(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

// Canonical MAC-48 or EUI-64 text (what Mac.toString writes, for every MAC a NIC accepts); checked with a pattern
// rather than a full parse because every transaction re-reads every key.
const CANONICAL = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}(?:(?::[0-9a-f]{2}){2})?$/;
const ZERO = /^00(?::00)*$/;

function checkMacKey(key: string, location: string, what = 'record key'): void {
  if (!CANONICAL.test(key)) throw corrupt(location, `${what} ${show(key)} is not a MAC in canonical form`);
  if ((parseInt(key.slice(0, 2), 16) & 1) !== 0 || ZERO.test(key)) throw corrupt(location, `${what} ${show(key)} is not a unicast MAC`);
}

function checkDisplaced(list: unknown, location: string): DisplacedRecord[] {
  if (!Array.isArray(list)) throw corrupt(location, `"displaced" is ${show(list)}, not an array`);
  const seen = new Set<string>();
  return list.map((d: unknown, i) => {
    if (d === null || typeof d !== 'object' || Array.isArray(d))
      throw corrupt(location, `displaced entry ${i} is ${show(d)}, not an object`);
    const o = d as Record<string, unknown>;
    const bad = (field: string): MacslotError => corrupt(location, `displaced entry ${i} has a bad ${field}: ${show(o[field])}`);
    if (!text(o.guest)) throw bad('guest');
    if (!text(o.nic)) throw bad('nic');
    if (!text(o.iface)) throw bad('iface');
    if (typeof o.mac !== 'string') throw bad('mac');
    checkMacKey(o.mac, location, `displaced entry ${i} MAC`);
    if (o.policy === 'direct' || !POLICIES.includes(o.policy as RecordPolicy)) throw bad('policy');
    if (!time(o.updated)) throw bad('updated');
    const id = `${o.nic}\u0000${o.guest}\u0000${o.iface}`;
    if (seen.has(id)) throw corrupt(location, `displaced lists guest ${show(o.guest)} interface ${show(o.iface)} on ${show(o.nic)} twice`);
    seen.add(id);
    return { guest: o.guest, nic: o.nic, iface: o.iface, mac: o.mac, policy: o.policy as DisplacedRecord['policy'], updated: o.updated };
  });
}

function checkRecord(key: string, r: unknown, location: string): MacRecord {
  checkMacKey(key, location);
  if (r === null || typeof r !== 'object' || Array.isArray(r)) throw corrupt(location, `record ${key} is ${show(r)}, not an object`);
  const o = r as Record<string, unknown>;
  const bad = (field: string): MacslotError => corrupt(location, `record ${key} has a bad ${field}: ${show(o[field])}`);
  if (!text(o.guest)) throw bad('guest');
  if (!text(o.nic)) throw bad('nic');
  if (!text(o.iface)) throw bad('iface');
  if (!POLICIES.includes(o.policy as RecordPolicy)) throw bad('policy');
  if (o.holder !== null && !text(o.holder)) throw bad('holder');
  if (o.expires !== null && !time(o.expires)) throw bad('expires');
  if (!time(o.updated)) throw bad('updated');
  return o as unknown as MacRecord;
}

// Version 1 kept a list of { mac, guest, nic, policy } leases with no holder or expiry: every entry was held for good.
function fromVersion1(o: Record<string, unknown>, location: string): StoreData {
  if (!Array.isArray(o.leases)) throw corrupt(location, `version 1 needs a "leases" array, got ${show(o.leases)}`);
  const data = emptyStoreData();
  for (const l of o.leases as unknown[]) {
    const e = (l ?? {}) as Record<string, unknown>;
    if (typeof e.mac !== 'string') throw corrupt(location, `version 1 lease ${show(l)} has no MAC`);
    let key: string;
    try {
      key = Mac.parse(e.mac).toString();
    } catch {
      throw corrupt(location, `version 1 lease MAC ${show(e.mac)} is not a MAC`);
    }
    if (data.records[key] !== undefined) throw corrupt(location, `version 1 lists ${key} twice`);
    data.records[key] = checkRecord(
      key,
      { guest: e.guest, nic: e.nic, iface: '0', policy: e.policy, holder: null, expires: null, updated: 0 },
      location,
    );
  }
  return data;
}

/** Returns the store held in `text`, migrated to the current version; throws STORE_CORRUPT (naming `location`) or STORE_VERSION. */
export function parseStoreData(text: string, location: string): StoreData {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw corrupt(location, `not JSON (${err instanceof Error ? err.message : String(err)}, ${text.length} characters)`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw corrupt(location, `top level is ${show(raw)}, not an object`);
  const o = raw as Record<string, unknown>;
  if (o.version === 1) return fromVersion1(o, location);
  if (typeof o.version === 'number' && Number.isInteger(o.version) && o.version > STORE_VERSION) {
    throw new MacslotError(
      'STORE_VERSION',
      `the MAC store ${location} has schema version ${o.version}; this macslot reads up to ${STORE_VERSION}, so it leaves the file alone`,
    );
  }
  if (o.version !== STORE_VERSION) throw corrupt(location, `schema version ${show(o.version)} is not a known version`);
  const records = o.records;
  if (records === null || typeof records !== 'object' || Array.isArray(records))
    throw corrupt(location, `"records" is ${show(records)}, not an object`);
  const data = emptyStoreData();
  const input = records as Record<string, unknown>;
  for (const key in input) data.records[key] = checkRecord(key, input[key], location);
  if (o.displaced !== undefined) {
    const displaced = checkDisplaced(o.displaced, location);
    if (displaced.length > 0) data.displaced = displaced;
  }
  return data;
}

/** Returns the text form of `data`: JSON with one record per line, so the file reads and diffs well. Never fails. */
export function serializeStoreData(data: StoreData): string {
  // One native stringify, then a line break before each key: `},"` cannot occur inside a JSON string, whose quotes are escaped.
  const body = JSON.stringify(data.records);
  const lines = body === '{}' ? '' : `\n    ${body.slice(1, -1).replaceAll('},"', '},\n    "')}\n  `;
  return `{\n  "version": ${STORE_VERSION},\n  "records": {${lines}}${displacedText(data)}\n}\n`;
}

// The displaced list, one entry per line, written only when it has entries so stores without any keep their text.
function displacedText(data: StoreData): string {
  const list = data.displaced;
  if (!Array.isArray(list) || list.length === 0) return '';
  return `,\n  "displaced": [\n    ${list.map((d) => JSON.stringify(d)).join(',\n    ')}\n  ]`;
}

function sameRecord(a: MacRecord, b: MacRecord): boolean {
  return (
    a.guest === b.guest &&
    a.nic === b.nic &&
    a.iface === b.iface &&
    a.policy === b.policy &&
    a.holder === b.holder &&
    a.expires === b.expires &&
    a.updated === b.updated
  );
}

// A copy of each record with exactly its schema fields, in schema order (one object shape, and the text's field order);
// anything that is not an object is kept as it is, for the check to refuse.
function cloneData(data: StoreData): StoreData {
  const records: Record<string, MacRecord> = {};
  for (const key in data.records) {
    const r = data.records[key];
    if (r === undefined) continue;
    records[key] =
      r !== null && typeof r === 'object'
        ? { guest: r.guest, nic: r.nic, iface: r.iface, policy: r.policy, holder: r.holder, expires: r.expires, updated: r.updated }
        : r;
  }
  const out: StoreData = { version: data.version, records };
  if (Array.isArray(data.displaced) && data.displaced.length > 0) {
    out.displaced = data.displaced.map((d) =>
      d !== null && typeof d === 'object'
        ? { guest: d.guest, nic: d.nic, iface: d.iface, mac: d.mac, policy: d.policy, updated: d.updated }
        : d,
    );
  }
  return out;
}

/**
 * One store's parse and serialize, remembering the last text it read or wrote with that text's checked data. A
 * transaction on a store nobody else changed then copies the records instead of parsing and checking every one,
 * and serializing reuses the text of each record that did not change: a change to one of thousands of records
 * no longer costs a parse, a check and a stringify of them all. Records keep the fields of the schema only.
 */
export class StoreCodec {
  readonly #location: string;
  #text: string | undefined;
  // The checked data #text holds, and each record's serialized line; private copies, never handed out.
  #data: StoreData | undefined;
  #lines = new Map<string, string>();

  /** A codec for the store at `location` (named in errors). */
  constructor(location: string) {
    this.#location = location;
  }

  /** Returns the data `text` holds, as parseStoreData does (and throws what it throws), as a copy the caller owns. */
  parse(text: string): StoreData {
    if (text === this.#text && this.#data !== undefined) return cloneData(this.#data);
    const data = cloneData(parseStoreData(text, this.#location));
    this.#remember(text, cloneData(data), new Map());
    return data;
  }

  /** Returns the text of `data` in serializeStoreData's form, with each record's schema fields. Never fails. */
  serialize(data: StoreData): string {
    const copy = cloneData(data);
    const prev = this.#data?.records;
    const lines = new Map<string, string>();
    const parts: string[] = [];
    let checked = data.version === STORE_VERSION;
    for (const key in copy.records) {
      const r = copy.records[key]!;
      const old = prev?.[key];
      let line = old !== undefined && r !== null && typeof r === 'object' && sameRecord(old, r) ? this.#lines.get(key) : undefined;
      if (line === undefined) {
        line = `${JSON.stringify(key)}:${JSON.stringify(r)}`;
        // A record that fails the check is written as it is, and the next read parses and refuses it.
        if (checked) {
          try {
            checkRecord(key, r, this.#location);
          } catch {
            checked = false;
          }
        }
      }
      lines.set(key, line);
      parts.push(line);
    }
    if (checked && copy.displaced !== undefined) {
      try {
        checkDisplaced(copy.displaced, this.#location);
      } catch {
        checked = false;
      }
    }
    const body = parts.length === 0 ? '' : `\n    ${parts.join(',\n    ')}\n  `;
    const text = `{\n  "version": ${STORE_VERSION},\n  "records": {${body}}${displacedText(copy)}\n}\n`;
    if (checked) this.#remember(text, copy, lines);
    else this.#remember(undefined, undefined, new Map());
    return text;
  }

  #remember(text: string | undefined, data: StoreData | undefined, lines: Map<string, string>): void {
    this.#text = text;
    this.#data = data;
    this.#lines = lines;
  }
}

/** Runs tasks one after another, so a store's transactions in one process never overlap. */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();
  /** Resolves with `task`'s result once every earlier task settled; rejects with its error. */
  run<T>(task: () => T | Promise<T>): Promise<T> {
    const next = this.#tail.then(task);
    this.#tail = next.catch(() => undefined);
    return next;
  }
}

/** A store in this process's memory: shared by every manager given the same instance, gone when the process ends. */
export class MemoryStore implements MacStore {
  readonly location: string;
  #text: string;
  readonly #queue = new SerialQueue();
  readonly #codec: StoreCodec;

  /** Starts empty, or from `initial` (validated); throws STORE_CORRUPT or STORE_VERSION for bad initial data. */
  constructor(initial?: StoreData | string, name = 'memory') {
    this.location = `memory:${name}`;
    this.#codec = new StoreCodec(this.location);
    // Held as text so every transaction starts from an independent copy and a bad write cannot alias live objects.
    this.#text =
      initial === undefined
        ? serializeStoreData(emptyStoreData())
        : serializeStoreData(parseStoreData(typeof initial === 'string' ? initial : JSON.stringify(initial), this.location));
  }

  transact<T>(fn: (data: StoreData) => T): Promise<T> {
    return this.#queue.run(() => {
      const data = this.#codec.parse(this.#text);
      const result = fn(data);
      this.#text = this.#codec.serialize(data);
      return result;
    });
  }

  read(): Promise<StoreData> {
    return this.#queue.run(() => this.#codec.parse(this.#text));
  }
}
