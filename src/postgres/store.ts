// PostgreSQL persistence layer: the MAC store shared by many hosts through one database.

import pg from 'pg';
import type { PoolClient, QueryResult } from 'pg';
import { MacslotError, show } from '../errors.js';
import {
  checkClaim,
  checkDisplaced,
  checkRecord,
  checkTtl,
  canonicalRecordMac,
  cloneData,
  emptyStoreData,
  holderText,
  LAPSE_GRACE_MS,
  sameRecord,
  SerialQueue,
  type ClaimRequest,
  type DisplacedRecord,
  type NewClaimRequest,
  type MacIdentity,
  type MacRecord,
  type MacStore,
  type RecordStore,
  type StoreData,
  type StoredRecord,
} from '../manager/store.js';
import { DOMAIN_LOCK, MIGRATIONS, POSTGRES_SCHEMA_VERSION, REQUIRED_COLUMNS, REQUIRED_FUNCTIONS, type Names } from './schema.js';

/** How a PostgresStore connects and behaves. */
export interface PostgresStoreOptions {
  /** A libpq connection string or URL: `postgres://user@host/db`, `postgresql:///db?host=/run/postgresql`. */
  connectionString: string;
  /** The MAC space: hosts sharing a domain never hand out one MAC twice. Default "default". */
  domain?: string;
  /** The PostgreSQL schema holding the tables (created when missing). Default "public". */
  schema?: string;
  /** Connections this process keeps at most. Default 4. */
  maxConnections?: number;
  /** How long a connection attempt or a statement may take before STORE_IO. Default 5,000 ms. */
  timeoutMs?: number;
  /** Longest wait between reconnection attempts after the database became unreachable. Default 2,000 ms. */
  maxBackoffMs?: number;
}

// The SQLSTATEs a transaction is retried for: serialization failure and deadlock.
const RETRY_STATES = new Set(['40001', '40P01']);
const MAX_RETRIES = 8;
const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;
// One advisory lock key for schema creation and migration, so two hosts opening a new database do not race.
const MIGRATION_LOCK = 0x6d61_6373;
// Stored time in milliseconds of the database's clock.
const NOW = 'floor(extract(epoch FROM clock_timestamp()) * 1000)::float8';

interface Row {
  mac: string;
  guest: string;
  nic: string;
  iface: string;
  policy: string;
  holder: string | null;
  expires: string | number | null;
  updated: string | number;
  gone?: boolean;
}

const QUIET = new WeakSet<PoolClient>();
// Most claims one statement carries.
const MAX_BATCH = 64;

/** One claim waiting for its batch: the function's arguments, and its promise's settlement. */
interface PendingClaim {
  macs: string[];
  req: ClaimRequest;
  fresh: boolean;
  ok: (row: ClaimRow) => void;
  fail: (err: unknown) => void;
}

/** What macslot_claim returns for one claim. */
interface ClaimRow extends Omit<Row, 'mac'> {
  status: 'ok' | 'taken' | 'remembered';
  mac: string | null;
}
const num = (v: string | number | null): number | null => (v === null ? null : Number(v));

/** The cached copy of one domain: its data as of revision `rev`. */
interface Cache {
  rev: number;
  data: StoreData;
}

function locationOf(connectionString: string, domain: string, schema: string): string {
  // Shown without its password, in URL form (user:password@) or key=value form (password=...).
  const where = connectionString
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*):[^@/?#]*@/i, '$1@')
    .replace(/password\s*=\s*(?:'(?:[^'\\]|\\.)*'|\S+)/gi, 'password=…')
    .replace(/([?&]password=)[^&#]*/gi, '$1…');
  return `${where}#${schema}.${domain}`;
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.message}${typeof code === 'string' ? ` (${code})` : ''}`;
  }
  return String(err);
}

/**
 * The MAC store in a PostgreSQL database, shared by every host that connects to it. A MAC is unique in its domain
 * by a UNIQUE (domain, mac) constraint. Record-level operations (`claim`, `release`, `renew`, `expire`, lookups) are
 * short transactions that run side by side; `transact`, which the manager uses, locks the domain for one short
 * transaction and writes only the records that changed. Lease times are the database's clock. It fails closed: a lost
 * connection, a timeout or a failed transaction is STORE_IO and nothing is taken as recorded unless its commit
 * returned; after a connection failure it retries with a growing delay (up to `maxBackoffMs`) and fails fast
 * meanwhile. Open it with `PostgresStore.open`; `close` ends its connections.
 */
export class PostgresStore implements MacStore, RecordStore {
  /** Record-level operations run side by side: a manager allocates through them (see MacStore.concurrent). */
  readonly concurrent = true;
  /** The database (without password), schema and domain, for messages. */
  readonly location: string;
  /** The MAC space this store works in. */
  readonly domain: string;
  readonly #pool: pg.Pool;
  readonly #n: Names;
  readonly #timeout: number;
  readonly #maxBackoff: number;
  readonly #queue = new SerialQueue();
  readonly #maxBatches: number;
  /** Claims waiting for their batch, sent together as one statement (one transaction, one commit). */
  #claims: PendingClaim[] = [];
  #batches = 0;
  #flushSoon = false;
  #cache: Cache | undefined;
  /** Database time minus local time, as last measured. */
  #offset = 0;
  #backoff = { delay: 0, until: 0 };
  #closed = false;

  private constructor(o: PostgresStoreOptions, domain: string, schema: string) {
    this.domain = domain;
    this.location = locationOf(o.connectionString, domain, schema);
    this.#n = (t) => `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(t)}`;
    this.#timeout = o.timeoutMs ?? 5_000;
    this.#maxBackoff = o.maxBackoffMs ?? 2_000;
    // One claim batch at a time: claims arriving during its commit wait and go out together in the next, so a busy host
    // sends few large transactions (one commit each) rather than many small ones; other hosts' batches commit alongside.
    this.#maxBatches = 1;
    this.#pool = new pg.Pool({
      connectionString: o.connectionString,
      max: o.maxConnections ?? 4,
      connectionTimeoutMillis: this.#timeout,
      query_timeout: this.#timeout,
      statement_timeout: this.#timeout,
      idleTimeoutMillis: 10_000,
      allowExitOnIdle: true,
    });
    // An idle connection the server dropped: the pool discards it; the next operation reconnects.
    this.#pool.on('error', () => {});
  }

  /**
   * Connects, creates or migrates the schema, and resolves with the store. Rejects with INVALID_ARGUMENT for a bad
   * option, STORE_VERSION for a schema newer than this code, STORE_CORRUPT for a broken one, STORE_IO when the database
   * cannot be reached or refuses.
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    if (options === null || typeof options !== 'object')
      throw new MacslotError('INVALID_ARGUMENT', `PostgresStore options must be an object, got ${show(options)}`);
    if (typeof options.connectionString !== 'string' || options.connectionString.length === 0)
      throw new MacslotError('INVALID_ARGUMENT', `connectionString must be a non-empty string, got ${show(options.connectionString)}`);
    const domain = options.domain ?? 'default';
    if (typeof domain !== 'string' || domain.length === 0 || domain.length > 256)
      throw new MacslotError('INVALID_ARGUMENT', `domain must be a non-empty string of at most 256 characters, got ${show(domain)}`);
    const schema = options.schema ?? 'public';
    if (typeof schema !== 'string' || !IDENT.test(schema))
      throw new MacslotError('INVALID_ARGUMENT', `schema must be a lower-case identifier (a-z, 0-9, _), got ${show(schema)}`);
    for (const k of ['maxConnections', 'timeoutMs', 'maxBackoffMs'] as const) {
      const v = options[k];
      if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 0x7fff_ffff))
        throw new MacslotError('INVALID_ARGUMENT', `${k} must be a positive integer, got ${show(v)}`);
    }
    const store = new PostgresStore(options, domain, schema);
    try {
      await store.#migrate(schema);
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  /** The database's clock, estimated from this host's clock and the offset measured on the last round trip. */
  clock(): number {
    return Date.now() + this.#offset;
  }

  /** Ends every connection; later calls fail with STORE_IO. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end().catch(() => {});
  }

  // ---- Connections and transactions ----

  #io(what: string, err: unknown, committed = false): MacslotError {
    const tail = committed
      ? 'whether it was recorded is unknown, so nothing was handed out'
      : 'nothing was recorded and nothing was handed out';
    return new MacslotError('STORE_IO', `the MAC store ${this.location} could not ${what}: ${errorText(err)}; ${tail}`);
  }

  async #connect(what: string): Promise<PoolClient> {
    if (this.#closed) throw new MacslotError('STORE_IO', `the MAC store ${this.location} is closed; it cannot ${what}`);
    const now = Date.now();
    if (now < this.#backoff.until) {
      throw new MacslotError(
        'STORE_IO',
        `the MAC store ${this.location} is unreachable; it cannot ${what} (next connection attempt in ${this.#backoff.until - now} ms)`,
      );
    }
    try {
      const client = await this.#pool.connect();
      this.#backoff = { delay: 0, until: 0 };
      // A connection that breaks while checked out reports it here as well as to its query; unheard, it would end the process.
      if (!QUIET.has(client)) {
        QUIET.add(client);
        client.on('error', () => {});
      }
      return client;
    } catch (err) {
      const delay = Math.min(this.#maxBackoff, Math.max(50, this.#backoff.delay * 2));
      this.#backoff = { delay, until: Date.now() + delay };
      throw this.#io(`connect to ${what}`, err);
    }
  }

  /**
   * Runs `body` in one transaction on one connection, retrying (with a fresh transaction) on a serialization failure
   * or a deadlock while `retry` allows; any other failure is STORE_IO, except MacslotErrors `body` throws itself.
   */
  async #tx<T>(what: string, body: (c: PoolClient) => Promise<T>, retry: () => boolean = () => true): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const c = await this.#connect(what);
      let broken = false;
      let committing = false;
      try {
        await c.query('BEGIN');
        const out = await body(c);
        committing = true;
        await c.query('COMMIT');
        return out;
      } catch (err) {
        const state = (err as { code?: unknown }).code;
        const isSql = err instanceof pg.DatabaseError;
        broken = !isSql && !(err instanceof MacslotError);
        if (!broken) await c.query('ROLLBACK').catch(() => (broken = true));
        if (isSql && RETRY_STATES.has(String(state)) && attempt < MAX_RETRIES && retry()) {
          await new Promise((r) => setTimeout(r, 2 ** attempt + Math.random() * 4));
          continue;
        }
        if (err instanceof MacslotError) throw err;
        throw this.#io(what, err, committing);
      } finally {
        c.release(broken);
      }
    }
  }

  /**
   * One statement, its own transaction (one round trip), retried on a serialization failure or a deadlock; STORE_IO on
   * any other failure. For a `write`, a connection lost after sending leaves the outcome unknown, and says so.
   */
  async #query(what: string, sql: string, params: unknown[], write = false, name?: string): Promise<QueryResult> {
    for (let attempt = 0; ; attempt++) {
      const c = await this.#connect(what);
      let broken = false;
      try {
        // A named statement is parsed and planned once per connection.
        return await (name === undefined ? c.query(sql, params) : c.query({ name, text: sql, values: params }));
      } catch (err) {
        const isSql = err instanceof pg.DatabaseError;
        broken = !isSql;
        if (isSql && RETRY_STATES.has(String((err as { code?: unknown }).code)) && attempt < MAX_RETRIES) {
          await new Promise((r) => setTimeout(r, 2 ** attempt + Math.random() * 4));
          continue;
        }
        throw this.#io(what, err, write && !isSql);
      } finally {
        c.release(broken);
      }
    }
  }

  #corrupt(why: string): MacslotError {
    return new MacslotError(
      'STORE_CORRUPT',
      `the MAC store ${this.location} is unreadable: ${why}; it was left untouched (repair it, since starting empty would forget which ` +
        `guest owns which MAC)`,
    );
  }

  /** Creates the schema or brings it to POSTGRES_SCHEMA_VERSION, under one advisory lock so concurrent hosts take turns. */
  async #migrate(schema: string): Promise<void> {
    const n = this.#n;
    await this.#tx('open its schema', async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(schema)}`);
      const tables = await c.query<{ name: string }>(
        `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE 'macslot\\_%'`,
        [schema],
      );
      const have = new Set(tables.rows.map((r) => r.name));
      let version = 0;
      if (have.has('macslot_schema')) {
        const v = await c.query<{ version: unknown }>(`SELECT version FROM ${n('macslot_schema')}`);
        const row = v.rows[0];
        if (
          v.rows.length !== 1 ||
          row === undefined ||
          typeof row.version !== 'number' ||
          !Number.isInteger(row.version) ||
          row.version < 1
        )
          throw this.#corrupt(`macslot_schema holds ${show(v.rows.map((r) => r.version))}, not one version number`);
        version = row.version;
      } else if (have.size > 0) {
        throw this.#corrupt(`it has the tables ${[...have].sort().join(', ')} but no macslot_schema saying their version`);
      } else {
        await c.query(`CREATE TABLE ${n('macslot_schema')} (version integer NOT NULL)`);
        await c.query(`INSERT INTO ${n('macslot_schema')} (version) VALUES (0)`);
      }
      if (version > POSTGRES_SCHEMA_VERSION) {
        throw new MacslotError(
          'STORE_VERSION',
          `the MAC store ${this.location} has schema version ${version}; this macslot knows up to ${POSTGRES_SCHEMA_VERSION}, so it ` +
            `leaves the database alone`,
        );
      }
      for (let v = version; v < POSTGRES_SCHEMA_VERSION; v++) {
        for (const sql of MIGRATIONS[v]!(n)) {
          try {
            await c.query(sql);
          } catch (err) {
            if (err instanceof pg.DatabaseError) throw this.#corrupt(`migrating version ${v} to ${v + 1} failed: ${errorText(err)}`);
            throw err;
          }
        }
      }
      if (version < POSTGRES_SCHEMA_VERSION) await c.query(`UPDATE ${n('macslot_schema')} SET version = $1`, [POSTGRES_SCHEMA_VERSION]);
      const cols = await c.query<{ t: string; c: string }>(
        'SELECT table_name AS t, column_name AS c FROM information_schema.columns WHERE table_schema = $1',
        [schema],
      );
      for (const [table, need] of Object.entries(REQUIRED_COLUMNS)) {
        const got = new Set(cols.rows.filter((r) => r.t === table).map((r) => r.c));
        const missing = need.filter((col) => !got.has(col));
        if (missing.length > 0) throw this.#corrupt(`table ${table} lacks ${missing.join(', ')}`);
      }
      // Without them every claim would fail later as STORE_IO, which reads as an outage rather than a broken schema.
      const fns = await c.query<{ name: string }>(
        'SELECT p.proname AS name FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace WHERE s.nspname = $1',
        [schema],
      );
      const defined = new Set(fns.rows.map((r) => r.name));
      const absent = REQUIRED_FUNCTIONS.filter((f) => !defined.has(f));
      if (absent.length > 0) throw this.#corrupt(`it lacks the function${absent.length > 1 ? 's' : ''} ${absent.join(', ')}`);
      await c.query(`INSERT INTO ${n('macslot_domains')} (domain) VALUES ($1) ON CONFLICT DO NOTHING`, [this.domain]);
      await this.#measure(c);
    });
  }

  /** Reads the database's clock, updates the offset, and returns the database time. */
  async #measure(c: PoolClient): Promise<number> {
    const t0 = Date.now();
    const r = await c.query<{ now: number }>(`SELECT ${NOW} AS now`);
    const t1 = Date.now();
    const now = r.rows[0]!.now;
    this.#offset = now - (t0 + t1) / 2;
    return now;
  }

  #record(r: Row): StoredRecord {
    // One object, checked as it is returned (checkRecord hands back what it checked): no copy per claim.
    const rec = {
      mac: r.mac,
      guest: r.guest,
      nic: r.nic,
      iface: r.iface,
      policy: r.policy,
      holder: r.holder,
      expires: num(r.expires),
      updated: num(r.updated),
    };
    return checkRecord(r.mac, rec, this.location) as StoredRecord;
  }

  // ---- The whole-store interface the manager uses ----

  transact<T>(fn: (data: StoreData) => T): Promise<T> {
    return this.#queue.run(async () => {
      let ran = false;
      let loaded: Cache | undefined;
      try {
        return await this.#tx(
          'run a transaction',
          async (c) => {
            loaded = undefined;
            const { data, now, rev, adopted } = await this.#load(c);
            // Adopted rows get their revision only if this transaction commits: then the load is not worth keeping.
            loaded = adopted ? undefined : { rev, data };
            this.#offset = now - Date.now();
            const draft = cloneData(data);
            ran = true;
            const result = fn(draft);
            const next = await this.#write(c, data, draft, rev);
            return { result, draft, rev: next };
          },
          // Once fn ran (its effects are outside the database), a failed commit is reported, never run again.
          () => !ran,
        ).then(({ result, draft, rev }) => {
          this.#cache = { rev, data: draft };
          return result;
        });
      } catch (err) {
        // fn refused (MAC_IN_USE, QUOTA_EXCEEDED, ...): what was loaded is still the committed state, so it stays cached.
        const refused = err instanceof MacslotError && !err.code.startsWith('STORE_') && ran;
        this.#cache = refused ? loaded : undefined;
        throw err;
      }
    });
  }

  read(): Promise<StoreData> {
    return this.#queue.run(async () => {
      try {
        return await this.#tx('read', async (c) => {
          const { data, rev } = await this.#load(c);
          this.#cache = { rev, data };
          return cloneData(data);
        });
      } catch (err) {
        this.#cache = undefined;
        throw err;
      }
    });
  }

  /** Locks the domain and returns its data, from the cache plus what changed since (or whole when there is no cache). */
  async #load(c: PoolClient): Promise<{ data: StoreData; now: number; rev: number; adopted: boolean }> {
    const n = this.#n;
    // Exclusive: record-level operations hold the domain's advisory lock shared for their (one-statement) transactions.
    await c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [DOMAIN_LOCK, this.domain]);
    const d = await c.query<{ rev: string; now: number }>(
      `SELECT rev, ${NOW} AS now FROM ${n('macslot_domains')} WHERE domain = $1 FOR UPDATE`,
      [this.domain],
    );
    const head = d.rows[0];
    if (head === undefined) throw this.#corrupt(`domain ${show(this.domain)} has no row in macslot_domains`);
    const rev = Number(head.rev);
    const now = head.now;
    const cache = this.#cache;
    const data = cache === undefined ? emptyStoreData() : cache.data;
    this.#cache = undefined;
    const rows =
      cache === undefined
        ? await c.query<Row>(`SELECT * FROM ${n('macslot_records')} WHERE domain = $1 AND NOT gone`, [this.domain])
        : // rev > $2 OR dirty, written so that each side has its partial index (see schema version 5).
          await c.query<Row>(`SELECT * FROM ${n('macslot_records')} WHERE domain = $1 AND ((rev > $2 AND NOT dirty) OR dirty)`, [
            this.domain,
            cache.rev,
          ]);
    let dirty = false;
    for (const r of rows.rows) {
      if (r.gone === true) delete data.records[r.mac];
      else data.records[r.mac] = this.#record(r);
      dirty ||= (r as { dirty?: boolean }).dirty === true;
    }
    // Rows changed by record-level operations carry no revision: this transaction gives them the next one (and the
    // domain too), so every other host's cache, which reads only newer revisions, sees them as well.
    let at = rev;
    if (dirty || cache === undefined) {
      const adopted = await c.query(`UPDATE ${n('macslot_records')} SET dirty = false, rev = $2 WHERE domain = $1 AND dirty`, [
        this.domain,
        rev + 1,
      ]);
      if ((adopted.rowCount ?? 0) > 0) {
        at = rev + 1;
        await c.query(`UPDATE ${n('macslot_domains')} SET rev = $2 WHERE domain = $1`, [this.domain, at]);
      }
    }
    const x = await c.query(
      `SELECT guest, nic, iface, mac, policy, updated::float8 AS updated FROM ${n('macslot_displaced')} WHERE domain = $1`,
      [this.domain],
    );
    if (x.rows.length > 0) data.displaced = checkDisplaced(x.rows, this.location);
    else delete data.displaced;
    return { data, now, rev: at, adopted: at !== rev };
  }

  /**
   * Writes what `draft` changed from `before`: removed records marked gone, changed ones upserted, the displaced list.
   * Returns the domain's revision afterwards: `rev` when nothing changed, else the next one.
   */
  async #write(c: PoolClient, before: StoreData, draft: StoreData, rev: number): Promise<number> {
    const n = this.#n;
    const next = rev + 1;
    const gone: string[] = [];
    for (const key in before.records) if (draft.records[key] === undefined) gone.push(key);
    const changed: [string, MacRecord][] = [];
    for (const key in draft.records) {
      const r = draft.records[key]!;
      const old = before.records[key];
      if (old !== undefined && sameRecord(old, r)) continue;
      changed.push([key, checkRecord(key, r, this.location)]);
    }
    const displaced = draft.displaced === undefined ? [] : checkDisplaced(draft.displaced, this.location);
    const same = JSON.stringify(before.displaced ?? []) === JSON.stringify(displaced);
    if (gone.length === 0 && changed.length === 0 && same) return rev;
    if (gone.length > 0) {
      await c.query(`UPDATE ${n('macslot_records')} SET gone = true, dirty = false, rev = $3 WHERE domain = $1 AND mac = ANY($2)`, [
        this.domain,
        gone,
        next,
      ]);
    }
    if (changed.length > 0) {
      const col = <K extends keyof MacRecord>(k: K): MacRecord[K][] => changed.map(([, r]) => r[k]);
      await c.query(
        `INSERT INTO ${n('macslot_records')} AS r (domain, mac, guest, nic, iface, policy, holder, expires, updated, rev, gone, dirty)
         SELECT $1, * , $10::bigint, false, false FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
           $8::bigint[], $9::bigint[])
         ON CONFLICT (domain, mac) DO UPDATE SET guest = EXCLUDED.guest, nic = EXCLUDED.nic, iface = EXCLUDED.iface,
           policy = EXCLUDED.policy, holder = EXCLUDED.holder, expires = EXCLUDED.expires, updated = EXCLUDED.updated,
           rev = EXCLUDED.rev, gone = false, dirty = false`,
        [
          this.domain,
          changed.map(([k]) => k),
          col('guest'),
          col('nic'),
          col('iface'),
          col('policy'),
          col('holder'),
          col('expires').map((e) => (e === null ? null : Math.round(e))),
          col('updated').map((e) => Math.round(e)),
          next,
        ],
      );
    }
    if (!same) await this.#writeDisplaced(c, displaced);
    await c.query(`UPDATE ${n('macslot_domains')} SET rev = $2 WHERE domain = $1`, [this.domain, next]);
    return next;
  }

  async #writeDisplaced(c: PoolClient, list: DisplacedRecord[]): Promise<void> {
    const n = this.#n;
    await c.query(`DELETE FROM ${n('macslot_displaced')} WHERE domain = $1`, [this.domain]);
    for (const d of list) {
      await c.query(
        `INSERT INTO ${n('macslot_displaced')} (domain, guest, nic, iface, mac, policy, updated) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [this.domain, d.guest, d.nic, d.iface, d.mac, d.policy, Math.round(d.updated)],
      );
    }
  }

  // ---- Record-level operations ----

  async claim(req: ClaimRequest): Promise<StoredRecord> {
    const c = checkClaim(req);
    const row = await this.#claimRow(c, [c.mac], false);
    if (row.status !== 'ok') throw this.#inUse(c.mac, row);
    return this.#record({ ...row, mac: row.mac! });
  }

  async claimNew(req: NewClaimRequest): Promise<StoredRecord | undefined> {
    const c = checkClaim(req);
    const alternatives = req.alternatives ?? [];
    if (!Array.isArray(alternatives))
      throw new MacslotError('INVALID_ARGUMENT', `claim alternatives must be an array, got ${show(alternatives)}`);
    const row = await this.#claimRow(c, [c.mac, ...alternatives.map(canonicalRecordMac)], true);
    if (row.status === 'remembered') return undefined;
    if (row.status !== 'ok') throw this.#inUse(c.mac, row);
    return this.#record(row as Row);
  }

  #inUse(mac: string, row: ClaimRow): MacslotError {
    const who =
      row.mac === null
        ? 'being claimed by another host, or held by a transaction that has since ended; try again'
        : holderText(this.#record({ ...row, mac: row.mac }));
    return new MacslotError('MAC_IN_USE', `${mac} is ${who} in ${this.location}`);
  }

  /** Queues one claim for the next batch; resolves with its row once the batch committed. */
  #claimRow(req: ClaimRequest, macs: string[], fresh: boolean): Promise<ClaimRow> {
    return new Promise((ok, fail) => {
      this.#claims.push({ macs, req, fresh, ok, fail });
      this.#scheduleFlush();
    });
  }

  /**
   * Sends the waiting claims, up to MAX_BATCH per statement, while fewer than #maxBatches batches are out: claims that
   * arrive while a batch waits for its commit go out together, so one commit (one WAL flush) acknowledges them all.
   */
  #flush(): void {
    while (this.#claims.length > 0 && this.#batches < this.#maxBatches) {
      const batch = this.#claims.splice(0, MAX_BATCH);
      this.#batches++;
      this.#sendClaims(batch)
        .then(
          (rows) => batch.forEach((p, i) => p.ok(rows[i]!)),
          (err) => {
            for (const p of batch) p.fail(err);
          },
        )
        .finally(() => {
          this.#batches--;
          this.#scheduleFlush();
        });
    }
  }

  /**
   * Flushes once the current turn of the event loop is over: the callers a committed batch wakes up, and every claim
   * they make in that turn (after several awaits each), then go out in one batch rather than the first alone.
   */
  #scheduleFlush(): void {
    if (this.#flushSoon) return;
    this.#flushSoon = true;
    setImmediate(() => {
      this.#flushSoon = false;
      this.#flush();
    });
  }

  /**
   * One call of macslot_claims for the whole batch, in one transaction: the claims it can take set-based go in with one
   * INSERT, the rest one at a time in batch order. Resolves with their rows in batch order.
   */
  async #sendClaims(batch: PendingClaim[]): Promise<ClaimRow[]> {
    const what = batch.length === 1 ? 'claim a MAC' : `claim ${batch.length} MACs`;
    const col = <T>(f: (p: PendingClaim) => T): T[] => batch.map(f);
    // The set-based path takes the first claim of each first MAC and of each identity; the others wait their turn.
    const macs = new Set<string>();
    const ids = new Set<string>();
    const fast = batch.map((p) => {
      const id = p.req.policy === 'direct' ? undefined : JSON.stringify([p.req.nic, p.req.guest, p.req.iface]);
      const first = macs.has(p.macs[0]!) || (id !== undefined && ids.has(id));
      macs.add(p.macs[0]!);
      if (id !== undefined) ids.add(id);
      return !first;
    });
    const r = await this.#query(
      what,
      `SELECT * FROM ${this.#n('macslot_claims')}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        this.domain,
        col((p) => p.macs.join(',')),
        col((p) => p.req.guest),
        col((p) => p.req.nic),
        col((p) => p.req.iface),
        col((p) => p.req.policy),
        col((p) => p.req.holder),
        col((p) => p.req.ttlMs ?? null),
        col((p) => p.fresh),
        fast,
        LAPSE_GRACE_MS,
      ],
      true,
      'macslot_claims',
    );
    const rows: (ClaimRow | undefined)[] = batch.map(() => undefined);
    for (const row of r.rows as (ClaimRow & { i: string })[]) {
      const i = Number(row.i) - 1;
      if (i >= 0 && i < batch.length && rows[i] === undefined) rows[i] = row;
    }
    if (r.rows.length !== batch.length || rows.some((x) => x === undefined))
      throw this.#io(what, new Error(`${r.rows.length} results for ${batch.length} claims`), true);
    return rows as ClaimRow[];
  }

  async release(mac: string, holder: string): Promise<boolean> {
    const key = canonicalRecordMac(mac);
    const r = await this.#query(
      'release a MAC',
      `SELECT ${this.#n('macslot_release')}($1, $2, $3) AS ok`,
      [this.domain, key, holder],
      true,
    );
    return (r.rows[0] as { ok: boolean } | undefined)?.ok === true;
  }

  async renew(mac: string, holder: string, ttlMs: number): Promise<StoredRecord> {
    const key = canonicalRecordMac(mac);
    checkTtl(ttlMs);
    if (ttlMs === undefined) throw new MacslotError('INVALID_ARGUMENT', 'renew needs ttlMs');
    const r = await this.#query(
      'renew a lease',
      `SELECT * FROM ${this.#n('macslot_renew')}($1, $2, $3, $4, $5)`,
      [this.domain, key, holder, ttlMs, LAPSE_GRACE_MS],
      true,
    );
    const row = r.rows[0] as (Row & { ok: boolean }) | undefined;
    if (row?.ok === true) return this.#record(row);
    const why = row === undefined ? 'not recorded' : row.holder === holder ? 'lapsed' : holderText(this.#record(row));
    throw new MacslotError('MAC_IN_USE', `session ${show(holder)} cannot renew ${key} in ${this.location}: it is ${why}`);
  }

  async expire(): Promise<StoredRecord[]> {
    const r = await this.#tx('expire leases', async (c) => {
      await c.query('SELECT pg_advisory_xact_lock_shared($1, hashtext($2))', [DOMAIN_LOCK, this.domain]);
      return c.query<Row>(
        `UPDATE ${this.#n('macslot_records')} SET gone = true, dirty = true
         WHERE domain = $1 AND NOT gone AND expires IS NOT NULL
           AND (CASE WHEN holder IS NULL THEN expires ELSE expires + $2 END) <= ${NOW}
         RETURNING *`,
        [this.domain, LAPSE_GRACE_MS],
      );
    });
    return r.rows.map((row) => this.#record(row)).sort((a, b) => (a.mac < b.mac ? -1 : 1));
  }

  async byIdentity(id: MacIdentity): Promise<StoredRecord | undefined> {
    const r = await this.#query(
      'look up an identity',
      // The domain in the "C" collation, as the identity index has it (see schema version 5).
      `SELECT * FROM ${this.#n('macslot_records')} WHERE domain COLLATE "C" = $1 AND nic = $2 AND guest = $3 AND iface = $4 ` +
        `AND NOT gone AND policy <> 'direct'`,
      [this.domain, id?.nic, id?.guest, id?.iface],
    );
    const row = r.rows[0] as Row | undefined;
    return row === undefined ? undefined : this.#record(row);
  }

  async byMac(mac: string): Promise<StoredRecord | undefined> {
    const key = canonicalRecordMac(mac);
    const r = await this.#query(
      'look up a MAC',
      `SELECT * FROM ${this.#n('macslot_records')} WHERE domain = $1 AND mac = $2 AND NOT gone`,
      [this.domain, key],
    );
    const row = r.rows[0] as Row | undefined;
    return row === undefined ? undefined : this.#record(row);
  }

  async list(): Promise<StoredRecord[]> {
    const r = await this.#query(
      'list its records',
      `SELECT * FROM ${this.#n('macslot_records')} WHERE domain = $1 AND NOT gone ORDER BY mac`,
      [this.domain],
    );
    return (r.rows as Row[]).map((row) => this.#record(row));
  }
}
