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
 * How long after its expiry a lease still held by a session stays taken for every other session. The holder's
 * lapse timer takes the MAC off its NIC at the expiry; the grace covers a timer that runs late, so the MAC is
 * off the holder's NIC before the store lets anyone else have it. A released lease frees at its expiry.
 */
export const LAPSE_GRACE_MS = 1_000;

/** True once `r` no longer binds its MAC for others at store time `now`: at its expiry when released, LAPSE_GRACE_MS later while held. */
export function recordLapsed(r: MacRecord, now: number): boolean {
  return r.expires !== null && (r.holder === null ? r.expires : r.expires + LAPSE_GRACE_MS) <= now;
}

/** Who a MAC belongs to: a guest's interface on a named NIC. */
export interface MacIdentity {
  /** The guest. */
  guest: string;
  /** Name of the NIC. */
  nic: string;
  /** The guest's interface. */
  iface: string;
}

/** A record as the record-level operations return it: the record and its MAC's canonical text. */
export interface StoredRecord extends MacRecord {
  /** The MAC, in canonical text. */
  mac: string;
}

/** What `claim` asks for. */
export interface ClaimRequest extends MacIdentity {
  /** The MAC to claim, in any form Mac.parse reads. */
  mac: string;
  /** How the MAC was obtained. */
  policy: RecordPolicy;
  /** The session claiming it. */
  holder: string;
  /** Lease time-to-live in milliseconds by the store's clock; absent for no expiry. */
  ttlMs?: number;
}

/** What `claimNew` asks for: a claim, with further MACs to try in turn when `mac` is taken. */
export interface NewClaimRequest extends ClaimRequest {
  /** MACs to try, in order, after `mac`. */
  alternatives?: readonly string[];
}

/**
 * Record-level operations on a MAC store: each changes or reads the records it names and no others, so a store that
 * can (a database) runs them concurrently. Times are the store's clock (for PostgreSQL, the database's), never the
 * caller's. A record binds its MAC for everyone else until it lapses (see `recordLapsed`); a released record stays,
 * remembered for its identity, until it lapses or is claimed again.
 */
export interface RecordStore {
  /**
   * Records `req.mac` for the identity and session, atomically. Resolves with the record; rejects with MAC_IN_USE
   * naming the holder when another identity or session binds the MAC, INVALID_MAC or INVALID_ARGUMENT for a bad
   * request, or the store's STORE_* errors. Any other record of the same identity is dropped: one MAC per identity.
   */
  claim(req: ClaimRequest): Promise<StoredRecord>;
  /**
   * Claims, as `claim` does, the first free MAC of `req.mac` and `req.alternatives`, for an identity the store remembers
   * nothing of: resolves with the record, or undefined (claiming nothing) when the store has a record of the identity or
   * remembers it as displaced; rejects with MAC_IN_USE naming the holder of `req.mac` when every MAC is taken. A store
   * may pass over a MAC another claim is busy with. The check and the claim are one atomic step.
   */
  claimNew(req: NewClaimRequest): Promise<StoredRecord | undefined>;
  /** Releases `holder`'s hold on `mac` (the record stays, remembered for its identity); resolves false when it did not hold it. */
  release(mac: string, holder: string): Promise<boolean>;
  /**
   * Extends `holder`'s lease on `mac` to `ttlMs` from now by the store's clock; MAC_IN_USE when it no longer holds it (lapsed or taken).
   */
  renew(mac: string, holder: string, ttlMs: number): Promise<StoredRecord>;
  /** Removes every record that lapsed by the store's clock, whoever held it (a dead host included); resolves with them. */
  expire(): Promise<StoredRecord[]>;
  /** Resolves with the identity's record (not a direct reservation), or undefined. */
  byIdentity(id: MacIdentity): Promise<StoredRecord | undefined>;
  /** Resolves with the record of `mac`, or undefined. */
  byMac(mac: string): Promise<StoredRecord | undefined>;
  /** Resolves with every record, ordered by MAC. */
  list(): Promise<StoredRecord[]>;
}

/**
 * Shared state of every manager using one store. `transact` is the only way to change it: the
 * function sees a private copy under the store's lock (across processes or tabs where the store
 * reaches), and the copy replaces the stored data atomically when the function returns.
 */
export interface MacStore {
  /** Where the data lives, for error messages. */
  readonly location: string;
  /**
   * Runs `fn` on a copy of the data under the lock, commits the copy, and resolves with fn's result; nothing is written when fn throws (the
   * promise rejects with its error) or the commit fails (STORE_IO).
   */
  transact<T>(fn: (data: StoreData) => T): Promise<T>;
  /** Resolves with a snapshot of the data; rejects with STORE_CORRUPT, STORE_VERSION or STORE_IO. */
  read(): Promise<StoreData>;
  /** The store's clock (milliseconds since the epoch) when it has its own, as a database does; managers default to it. */
  readonly clock?: () => number;
  /**
   * True when the store is also a RecordStore whose record-level operations run side by side (a database's do). A
   * manager then allocates, renews and releases through them (the UNIQUE constraint decides a race) and keeps
   * whole-store transactions for what needs the whole store. Document stores leave it unset: there every operation is
   * a whole-document transaction anyway.
   */
  readonly concurrent?: boolean;
}

const POLICIES: readonly RecordPolicy[] = ['factory', 'random', 'block', 'fixed', 'derived', 'direct'];

/** Returns an empty store. Never fails. */
export function emptyStoreData(): StoreData {
  return { version: STORE_VERSION, records: {} };
}

function corrupt(location: string, why: string): MacslotError {
  return new MacslotError(
    'STORE_CORRUPT',
    `the MAC store ${location} is unreadable: ${why}; it was left untouched (repair or remove it, since starting empty would forget ` +
      `which guest owns which MAC)`,
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

/** Returns `list` as the displaced list; throws STORE_CORRUPT naming `location` when it is bad. */
export function checkDisplaced(list: unknown, location: string): DisplacedRecord[] {
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

/** Returns `r` as a record stored under `key`; throws STORE_CORRUPT naming `location` when either is bad. */
export function checkRecord(key: string, r: unknown, location: string): MacRecord {
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

/** True when two records have the same fields. */
export function sameRecord(a: MacRecord, b: MacRecord): boolean {
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
/** Returns a deep copy of `data` with each record's schema fields only. Never fails. */
export function cloneData(data: StoreData): StoreData {
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

/** Returns the canonical text of a unicast MAC given to a record-level operation; throws INVALID_MAC otherwise. */
export function canonicalRecordMac(mac: unknown): string {
  if (typeof mac !== 'string') throw new MacslotError('INVALID_MAC', `a record's MAC must be a string, got ${show(mac)}`);
  // Text already canonical (what a manager sends) is its own key: parsing it would only write it again.
  const key = CANONICAL.test(mac) ? mac : Mac.parse(mac).toString();
  if ((parseInt(key.slice(0, 2), 16) & 1) !== 0 || ZERO.test(key))
    throw new MacslotError('INVALID_MAC', `${show(mac)} is not a unicast MAC`);
  return key;
}

const CLAIM_TEXTS = ['guest', 'nic', 'iface', 'holder'] as const;

/** Checks a claim's fields (throwing INVALID_ARGUMENT or INVALID_MAC) and returns it with its MAC in canonical text. */
export function checkClaim(req: ClaimRequest): ClaimRequest {
  if (req === null || typeof req !== 'object') throw new MacslotError('INVALID_ARGUMENT', `a claim must be an object, got ${show(req)}`);
  for (const f of CLAIM_TEXTS) {
    if (!text(req[f]))
      throw new MacslotError('INVALID_ARGUMENT', `claim ${f} must be a non-empty string of at most 256 characters, got ${show(req[f])}`);
  }
  if (!POLICIES.includes(req.policy))
    throw new MacslotError('INVALID_ARGUMENT', `claim policy must be one of ${POLICIES.join(', ')}, got ${show(req.policy)}`);
  checkTtl(req.ttlMs);
  return { ...req, mac: canonicalRecordMac(req.mac) };
}

/** Throws INVALID_ARGUMENT unless `ttlMs` is undefined or an integer in 1..2^31-1. */
export function checkTtl(ttlMs: unknown): void {
  if (ttlMs !== undefined && (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > 0x7fff_ffff))
    throw new MacslotError('INVALID_ARGUMENT', `ttlMs must be an integer in 1..${0x7fff_ffff}, got ${show(ttlMs)}`);
}

/** The words naming who binds a record, for MAC_IN_USE. */
export function holderText(r: MacRecord): string {
  const who = `guest ${show(r.guest)} interface ${show(r.iface)} on ${show(r.nic)}`;
  return r.holder === null ? `remembered for ${who} (released)` : `held by session ${r.holder} for ${who}`;
}

const withMac = (mac: string, r: MacRecord): StoredRecord => ({ mac, ...r });
const ownsRecord = (r: MacRecord, id: MacIdentity): boolean =>
  r.policy !== 'direct' && r.guest === id.guest && r.nic === id.nic && r.iface === id.iface;

/** The record-level operations on a whole document, at store time `now`: how the document stores implement RecordStore. */
export const documentOps = {
  claim(data: StoreData, req: ClaimRequest, now: number, location: string): StoredRecord {
    const c = checkClaim(req);
    const cur = data.records[c.mac];
    const same = cur !== undefined && ownsRecord(cur, c) && c.policy !== 'direct';
    if (cur !== undefined && !recordLapsed(cur, now)) {
      const mine = same && (cur.holder === null || cur.holder === c.holder);
      if (!mine) throw new MacslotError('MAC_IN_USE', `${c.mac} is ${holderText(cur)} in ${location}`);
    }
    // The identity whose lapsed MAC this claim takes is remembered as displaced (one entry per identity).
    if (cur !== undefined && !same && cur.policy !== 'direct') {
      const rest = (data.displaced ?? []).filter((d) => d.guest !== cur.guest || d.nic !== cur.nic || d.iface !== cur.iface);
      rest.push({ guest: cur.guest, nic: cur.nic, iface: cur.iface, mac: c.mac, policy: cur.policy, updated: now });
      data.displaced = rest;
    }
    if (c.policy !== 'direct') {
      for (const key in data.records) if (key !== c.mac && ownsRecord(data.records[key]!, c)) delete data.records[key];
      if (data.displaced !== undefined) {
        const rest = data.displaced.filter((d) => d.guest !== c.guest || d.nic !== c.nic || d.iface !== c.iface);
        if (rest.length > 0) data.displaced = rest;
        else delete data.displaced;
      }
    }
    const rec: MacRecord = {
      guest: c.guest,
      nic: c.nic,
      iface: c.iface,
      policy: c.policy,
      holder: c.holder,
      expires: c.ttlMs === undefined ? null : now + c.ttlMs,
      updated: now,
    };
    data.records[c.mac] = rec;
    return withMac(c.mac, rec);
  },
  claimNew(data: StoreData, req: NewClaimRequest, now: number, location: string): StoredRecord | undefined {
    const c = checkClaim(req);
    const alternatives = req.alternatives ?? [];
    if (!Array.isArray(alternatives))
      throw new MacslotError('INVALID_ARGUMENT', `claim alternatives must be an array, got ${show(alternatives)}`);
    const macs = [c.mac, ...alternatives.map(canonicalRecordMac)];
    if (c.policy !== 'direct') {
      if (documentOps.byIdentity(data, c) !== undefined) return undefined;
      if (data.displaced?.some((d) => d.guest === c.guest && d.nic === c.nic && d.iface === c.iface) === true) return undefined;
    }
    let first: MacslotError | undefined;
    for (const mac of macs) {
      try {
        return documentOps.claim(data, { ...c, mac }, now, location);
      } catch (err) {
        if (!(err instanceof MacslotError) || err.code !== 'MAC_IN_USE') throw err;
        first ??= err;
      }
    }
    throw first!;
  },
  release(data: StoreData, mac: string, holder: string, now: number): boolean {
    const key = canonicalRecordMac(mac);
    const r = data.records[key];
    if (r === undefined || r.holder !== holder) return false;
    r.holder = null;
    r.updated = now;
    return true;
  },
  renew(data: StoreData, mac: string, holder: string, ttlMs: number, now: number, location: string): StoredRecord {
    const key = canonicalRecordMac(mac);
    checkTtl(ttlMs);
    const r = data.records[key];
    if (r === undefined || r.holder !== holder || recordLapsed(r, now)) {
      const why = r === undefined ? 'not recorded' : r.holder === holder ? 'lapsed' : holderText(r);
      throw new MacslotError('MAC_IN_USE', `session ${show(holder)} cannot renew ${key} in ${location}: it is ${why}`);
    }
    r.expires = now + ttlMs;
    r.updated = now;
    return withMac(key, r);
  },
  expire(data: StoreData, now: number): StoredRecord[] {
    const out: StoredRecord[] = [];
    for (const key in data.records) {
      const r = data.records[key]!;
      if (recordLapsed(r, now)) {
        out.push(withMac(key, r));
        delete data.records[key];
      }
    }
    return out;
  },
  byIdentity(data: StoreData, id: MacIdentity): StoredRecord | undefined {
    for (const key in data.records) if (ownsRecord(data.records[key]!, id)) return withMac(key, data.records[key]!);
    return undefined;
  },
  list(data: StoreData): StoredRecord[] {
    return Object.keys(data.records)
      .sort()
      .map((k) => withMac(k, data.records[k]!));
  },
};

/**
 * A store kept as one document (memory, a file, browser storage): the record-level operations run as transactions
 * on the whole document, timed by this host's clock (Date.now), which every user of such a store shares.
 */
export abstract class DocumentStore implements MacStore, RecordStore {
  abstract readonly location: string;
  abstract transact<T>(fn: (data: StoreData) => T): Promise<T>;
  abstract read(): Promise<StoreData>;

  claim(req: ClaimRequest): Promise<StoredRecord> {
    return this.transact((d) => documentOps.claim(d, req, Date.now(), this.location));
  }
  claimNew(req: NewClaimRequest): Promise<StoredRecord | undefined> {
    return this.transact((d) => documentOps.claimNew(d, req, Date.now(), this.location));
  }
  release(mac: string, holder: string): Promise<boolean> {
    return this.transact((d) => documentOps.release(d, mac, holder, Date.now()));
  }
  renew(mac: string, holder: string, ttlMs: number): Promise<StoredRecord> {
    return this.transact((d) => documentOps.renew(d, mac, holder, ttlMs, Date.now(), this.location));
  }
  expire(): Promise<StoredRecord[]> {
    return this.transact((d) => documentOps.expire(d, Date.now()));
  }
  async byIdentity(id: MacIdentity): Promise<StoredRecord | undefined> {
    return documentOps.byIdentity(await this.read(), id);
  }
  async byMac(mac: string): Promise<StoredRecord | undefined> {
    const key = canonicalRecordMac(mac);
    const r = (await this.read()).records[key];
    return r === undefined ? undefined : withMac(key, r);
  }
  async list(): Promise<StoredRecord[]> {
    return documentOps.list(await this.read());
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
export class MemoryStore extends DocumentStore {
  readonly location: string;
  #text: string;
  readonly #queue = new SerialQueue();
  readonly #codec: StoreCodec;

  /** Starts empty, or from `initial` (validated); throws STORE_CORRUPT or STORE_VERSION for bad initial data. */
  constructor(initial?: StoreData | string, name = 'memory') {
    super();
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
