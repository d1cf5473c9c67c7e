// PostgreSQL persistence layer: the store's tables, their versioned migrations, and the check that a schema is whole.

/** The schema version this code writes. Older schemas are migrated when a store opens; newer ones are refused. */
export const POSTGRES_SCHEMA_VERSION = 5;

/** A schema-qualified name (the schema is checked to be a plain identifier before it gets here). */
export type Names = (table: string) => string;

// Version 1: one row per (domain, MAC); uniqueness of a MAC within a domain is the UNIQUE constraint, never a read.
const V1 = (n: Names): string[] => [
  `CREATE TABLE ${n('macslot_records')} (
    domain text NOT NULL, mac text NOT NULL, guest text NOT NULL, nic text NOT NULL, iface text NOT NULL,
    policy text NOT NULL, holder text, expires bigint, updated bigint NOT NULL,
    CONSTRAINT macslot_records_domain_mac UNIQUE (domain, mac))`,
];

// Version 2: domains with a revision (what whole-store transactions lock and cache by), rows that are marked gone
// rather than deleted (so a cached copy learns of the removal), a dirty mark for changes made by record-level
// operations, the displaced identities, and the claim as one server-side function (one round trip, no domain lock).
const V2 = (n: Names): string[] => [
  `ALTER TABLE ${n('macslot_records')} ADD COLUMN rev bigint NOT NULL DEFAULT 0,
    ADD COLUMN gone boolean NOT NULL DEFAULT false, ADD COLUMN dirty boolean NOT NULL DEFAULT true`,
  `CREATE INDEX macslot_records_identity ON ${n('macslot_records')} (domain, nic, guest, iface)`,
  `CREATE INDEX macslot_records_rev ON ${n('macslot_records')} (domain, rev)`,
  `CREATE INDEX macslot_records_dirty ON ${n('macslot_records')} (domain) WHERE dirty`,
  `CREATE TABLE ${n('macslot_domains')} (domain text PRIMARY KEY, rev bigint NOT NULL DEFAULT 0)`,
  `INSERT INTO ${n('macslot_domains')} (domain) SELECT DISTINCT domain FROM ${n('macslot_records')}`,
  `CREATE TABLE ${n('macslot_displaced')} (
    domain text NOT NULL, guest text NOT NULL, nic text NOT NULL, iface text NOT NULL, mac text NOT NULL,
    policy text NOT NULL, updated bigint NOT NULL, CONSTRAINT macslot_displaced_identity UNIQUE (domain, nic, guest, iface))`,
  `CREATE FUNCTION ${n('macslot_claim')}(p_domain text, p_mac text, p_guest text, p_nic text, p_iface text, p_policy text,
      p_holder text, p_ttl bigint, p_grace bigint)
    RETURNS TABLE (ok boolean, guest text, nic text, iface text, policy text, holder text, expires bigint, updated bigint)
    LANGUAGE plpgsql AS $f$
    DECLARE
      t bigint := floor(extract(epoch FROM clock_timestamp()) * 1000);
      got boolean;
    BEGIN
      -- A share lock on the domain: claims run side by side, a whole-store transaction waits for them (and they for it).
      PERFORM 1 FROM ${n('macslot_domains')} d WHERE d.domain = p_domain FOR KEY SHARE;
      IF NOT FOUND THEN
        INSERT INTO ${n('macslot_domains')} (domain) VALUES (p_domain) ON CONFLICT DO NOTHING;
        PERFORM 1 FROM ${n('macslot_domains')} d WHERE d.domain = p_domain FOR KEY SHARE;
      END IF;
      IF p_policy <> 'direct' THEN
        PERFORM pg_advisory_xact_lock(hashtext(p_domain), hashtext('id/' || p_nic || '/' || p_guest || '/' || p_iface));
      END IF;
      INSERT INTO ${n('macslot_records')} AS r (domain, mac, guest, nic, iface, policy, holder, expires, updated, rev, gone, dirty)
        VALUES (p_domain, p_mac, p_guest, p_nic, p_iface, p_policy, p_holder, t + p_ttl, t, 0, false, true)
        ON CONFLICT (domain, mac) DO UPDATE SET guest = EXCLUDED.guest, nic = EXCLUDED.nic, iface = EXCLUDED.iface,
          policy = EXCLUDED.policy, holder = EXCLUDED.holder, expires = EXCLUDED.expires, updated = EXCLUDED.updated,
          gone = false, dirty = true
        WHERE r.gone
          OR (r.expires IS NOT NULL AND (CASE WHEN r.holder IS NULL THEN r.expires ELSE r.expires + p_grace END) <= t)
          OR (p_policy <> 'direct' AND r.policy <> 'direct' AND r.guest = p_guest AND r.nic = p_nic AND r.iface = p_iface
              AND (r.holder IS NULL OR r.holder = p_holder))
        RETURNING true INTO got;
      IF got IS NULL THEN
        RETURN QUERY SELECT false, r.guest, r.nic, r.iface, r.policy, r.holder, r.expires, r.updated
          FROM ${n('macslot_records')} r WHERE r.domain = p_domain AND r.mac = p_mac;
        RETURN;
      END IF;
      IF p_policy <> 'direct' THEN
        UPDATE ${n('macslot_records')} r SET gone = true, dirty = true
          WHERE r.domain = p_domain AND r.mac <> p_mac AND NOT r.gone AND r.policy <> 'direct'
            AND r.guest = p_guest AND r.nic = p_nic AND r.iface = p_iface;
        DELETE FROM ${n('macslot_displaced')} x WHERE x.domain = p_domain AND x.guest = p_guest AND x.nic = p_nic AND x.iface = p_iface;
      END IF;
      RETURN QUERY SELECT true, p_guest, p_nic, p_iface, p_policy, p_holder, t + p_ttl, t;
    END $f$`,
];

/**
 * The first key of the domain's advisory lock (the second is hashtext(domain)): record-level operations take it shared,
 * a whole-store transaction exclusive. Unlike a row lock on the domain, a shared advisory lock writes nothing (no tuple
 * lock, no MultiXact), so concurrent claims do not contend on one row.
 */
export const DOMAIN_LOCK = 0x6d73_6c74;

// A record of the identity (p_guest, p_nic, p_iface), not a direct reservation.
const sameId = (r: string): string => `${r}.policy <> 'direct' AND ${r}.guest = p_guest AND ${r}.nic = p_nic AND ${r}.iface = p_iface`;

/**
 * The per-claim function (version 3 on): `verb` creates or replaces it; `idDomain` is its test of a record's domain in
 * the statements that look an identity up (version 5 writes it so that only the identity index can serve them).
 */
const claimFunction = (n: Names, verb: 'CREATE' | 'CREATE OR REPLACE', idDomain: (r: string) => string): string =>
  `${verb} FUNCTION ${n('macslot_claim')}(p_domain text, p_macs text[], p_guest text, p_nic text, p_iface text, p_policy text,
      p_holder text, p_ttl bigint, p_grace bigint, p_new boolean)
    RETURNS TABLE (status text, mac text, guest text, nic text, iface text, policy text, holder text, expires bigint, updated bigint)
    LANGUAGE plpgsql AS $f$
    #variable_conflict use_column
    DECLARE
      t bigint := floor(extract(epoch FROM clock_timestamp()) * 1000);
      own boolean := p_policy <> 'direct';
      m text;
      cur ${n('macslot_records')}%ROWTYPE;
      first ${n('macslot_records')}%ROWTYPE;
      got boolean := false;
    BEGIN
      PERFORM pg_advisory_xact_lock_shared(${DOMAIN_LOCK}, hashtext(p_domain));
      IF own THEN
        -- Claims of one identity take turns, so "one MAC per identity" holds across hosts.
        PERFORM pg_advisory_xact_lock(hashtext(p_domain), hashtext('id/' || p_nic || '/' || p_guest || '/' || p_iface));
        IF p_new AND (EXISTS (SELECT 1 FROM ${n('macslot_records')} r WHERE ${idDomain('r')} AND NOT r.gone AND ${sameId('r')})
            OR EXISTS (SELECT 1 FROM ${n('macslot_displaced')} x
              WHERE x.domain = p_domain AND x.guest = p_guest AND x.nic = p_nic AND x.iface = p_iface)) THEN
          RETURN QUERY SELECT 'remembered'::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text,
            NULL::bigint, NULL::bigint;
          RETURN;
        END IF;
      END IF;
      FOREACH m IN ARRAY p_macs LOOP
        -- A MAC another claim is working on: a claim with other candidates moves on to the next rather than wait (and
        -- such claims never wait for each other's MAC rows, so they cannot deadlock); a claim of one MAC waits its turn,
        -- so that a loser learns who won.
        IF cardinality(p_macs) > 1 THEN
          CONTINUE WHEN NOT pg_try_advisory_xact_lock(hashtext(p_domain), hashtext('mac/' || m));
        ELSE
          PERFORM pg_advisory_xact_lock(hashtext(p_domain), hashtext('mac/' || m));
        END IF;
        LOOP
          SELECT * INTO cur FROM ${n('macslot_records')} x WHERE x.domain = p_domain AND x.mac = m FOR UPDATE;
          IF NOT FOUND THEN
            INSERT INTO ${n('macslot_records')} (domain, mac, guest, nic, iface, policy, holder, expires, updated, rev, gone, dirty)
              VALUES (p_domain, m, p_guest, p_nic, p_iface, p_policy, p_holder, t + p_ttl, t, 0, false, true)
              ON CONFLICT ON CONSTRAINT macslot_records_domain_mac DO NOTHING;
            -- Not inserted: another claim inserted it meanwhile; read it again.
            IF FOUND THEN got := true; END IF;
            EXIT WHEN got;
            CONTINUE;
          END IF;
          IF cur.gone OR (cur.expires IS NOT NULL AND (CASE WHEN cur.holder IS NULL THEN cur.expires ELSE cur.expires + p_grace END) <= t)
              OR (own AND ${sameId('cur')} AND (cur.holder IS NULL OR cur.holder = p_holder)) THEN
            IF NOT cur.gone AND cur.policy <> 'direct' AND NOT (own AND ${sameId('cur')}) THEN
              INSERT INTO ${n('macslot_displaced')} AS x (domain, guest, nic, iface, mac, policy, updated)
                VALUES (p_domain, cur.guest, cur.nic, cur.iface, m, cur.policy, t)
                ON CONFLICT ON CONSTRAINT macslot_displaced_identity DO UPDATE SET mac = EXCLUDED.mac, policy = EXCLUDED.policy,
                  updated = EXCLUDED.updated;
            END IF;
            UPDATE ${n('macslot_records')} x SET guest = p_guest, nic = p_nic, iface = p_iface, policy = p_policy, holder = p_holder,
              expires = t + p_ttl, updated = t, gone = false, dirty = true
              WHERE x.domain = p_domain AND x.mac = m;
            got := true;
          ELSIF first.mac IS NULL THEN
            first := cur;
          END IF;
          EXIT;
        END LOOP;
        EXIT WHEN got;
      END LOOP;
      IF NOT got THEN
        RETURN QUERY SELECT 'taken'::text, first.mac, first.guest, first.nic, first.iface, first.policy, first.holder, first.expires,
          first.updated;
        RETURN;
      END IF;
      IF own THEN
        UPDATE ${n('macslot_records')} r SET gone = true, dirty = true
          WHERE ${idDomain('r')} AND r.mac <> m AND NOT r.gone AND ${sameId('r')};
        DELETE FROM ${n('macslot_displaced')} x WHERE x.domain = p_domain AND x.guest = p_guest AND x.nic = p_nic AND x.iface = p_iface;
      END IF;
      RETURN QUERY SELECT 'ok'::text, m, p_guest, p_nic, p_iface, p_policy, p_holder, t + p_ttl, t;
    END $f$`;

// Version 3: the domain lock becomes an advisory lock (see DOMAIN_LOCK); the claim tries a list of MACs in turn,
// remembers the identity it takes a lapsed MAC from as displaced, and can refuse an identity the store already
// remembers (p_new, for the manager's first allocation of an identity); release and renew become functions, so each is
// one statement and one round trip.
const V3 = (n: Names): string[] => [
  `DROP FUNCTION ${n('macslot_claim')}(text, text, text, text, text, text, text, bigint, bigint)`,
  claimFunction(n, 'CREATE', (r) => `${r}.domain = p_domain`),
  `CREATE FUNCTION ${n('macslot_release')}(p_domain text, p_mac text, p_holder text) RETURNS boolean
    LANGUAGE plpgsql AS $f$
    #variable_conflict use_column
    BEGIN
      PERFORM pg_advisory_xact_lock_shared(${DOMAIN_LOCK}, hashtext(p_domain));
      UPDATE ${n('macslot_records')} r SET holder = NULL, updated = floor(extract(epoch FROM clock_timestamp()) * 1000), dirty = true
        WHERE r.domain = p_domain AND r.mac = p_mac AND r.holder = p_holder AND NOT r.gone;
      RETURN FOUND;
    END $f$`,
  `CREATE FUNCTION ${n('macslot_renew')}(p_domain text, p_mac text, p_holder text, p_ttl bigint, p_grace bigint)
    RETURNS TABLE (ok boolean, mac text, guest text, nic text, iface text, policy text, holder text, expires bigint, updated bigint)
    LANGUAGE plpgsql AS $f$
    #variable_conflict use_column
    DECLARE
      t bigint := floor(extract(epoch FROM clock_timestamp()) * 1000);
      cur ${n('macslot_records')}%ROWTYPE;
    BEGIN
      PERFORM pg_advisory_xact_lock_shared(${DOMAIN_LOCK}, hashtext(p_domain));
      UPDATE ${n('macslot_records')} r SET expires = t + p_ttl, updated = t, dirty = true
        WHERE r.domain = p_domain AND r.mac = p_mac AND r.holder = p_holder AND NOT r.gone
          AND (r.expires IS NULL OR r.expires + p_grace > t)
        RETURNING * INTO cur;
      IF NOT FOUND THEN
        SELECT * INTO cur FROM ${n('macslot_records')} r WHERE r.domain = p_domain AND r.mac = p_mac AND NOT r.gone;
        IF NOT FOUND THEN RETURN; END IF;
        RETURN QUERY SELECT false, cur.mac, cur.guest, cur.nic, cur.iface, cur.policy, cur.holder, cur.expires, cur.updated;
        RETURN;
      END IF;
      RETURN QUERY SELECT true, cur.mac, cur.guest, cur.nic, cur.iface, cur.policy, cur.holder, cur.expires, cur.updated;
    END $f$`,
];

// The batch's columns, one array each (the store sends a batch as one call): macs holds each claim's candidates joined by
// commas; fast says the claim may take the set-based path (the host sets it for the first claim of each first MAC and of
// each identity in the batch, so that one INSERT never holds two claims of either).
const BATCH_ARGS = `p_domain text, p_macs text[], p_guest text[], p_nic text[], p_iface text[], p_policy text[], p_holder text[],
      p_ttl bigint[], p_fresh boolean[], p_fast boolean[], p_grace bigint`;
const BATCH_ROWS = `unnest(p_macs, p_guest, p_nic, p_iface, p_policy, p_holder, p_ttl, p_fresh, p_fast)
        WITH ORDINALITY AS a(macs, guest, nic, iface, policy, holder, ttl, fresh, fast, i)`;

/**
 * The batch function (version 4 on): `verb` creates or replaces it; `known` is the condition under which a fresh claim
 * of an identity the store has or remembers is left to the per-claim path, and `move` the statements that drop the
 * other records of identities that moved to a new MAC (the claims' rows are in `done`; `mv` is free for a loop).
 */
const claimsFunction = (n: Names, verb: 'CREATE' | 'CREATE OR REPLACE', known: string, move: string): string =>
  `${verb} FUNCTION ${n('macslot_claims')}(${BATCH_ARGS})
    RETURNS TABLE (i bigint, status text, mac text, guest text, nic text, iface text, policy text, holder text, expires bigint,
      updated bigint)
    LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $f$
    #variable_conflict use_column
    DECLARE
      t bigint := floor(extract(epoch FROM clock_timestamp()) * 1000);
      locked bigint[];
      done bigint[];
      moved boolean;
      mv record;
    BEGIN
      PERFORM pg_advisory_xact_lock_shared(${DOMAIN_LOCK}, hashtext(p_domain));
      SELECT coalesce(array_agg(a.i), '{}') INTO locked FROM ${BATCH_ROWS}
        WHERE a.fast
          AND (CASE WHEN a.policy = 'direct' THEN true
            ELSE pg_try_advisory_xact_lock(hashtext(p_domain), hashtext('id/' || a.nic || '/' || a.guest || '/' || a.iface)) END)
          AND pg_try_advisory_xact_lock(hashtext(p_domain), hashtext('mac/' || split_part(a.macs, ',', 1)));
      -- A statement of its own, so its snapshot sees every claim of these identities that committed before the locks.
      WITH ins AS (
        INSERT INTO ${n('macslot_records')} (domain, mac, guest, nic, iface, policy, holder, expires, updated, rev, gone, dirty)
          SELECT p_domain, split_part(a.macs, ',', 1), a.guest, a.nic, a.iface, a.policy, a.holder, t + a.ttl, t, 0, false, true
          FROM ${BATCH_ROWS}
          WHERE a.i = ANY(locked)
${known}
          ON CONFLICT (domain, mac) DO NOTHING
          RETURNING mac)
      SELECT coalesce(array_agg(a.i), '{}'), coalesce(bool_or(NOT a.fresh AND a.policy <> 'direct'), false) INTO done, moved
        FROM ${BATCH_ROWS} JOIN ins ON ins.mac = split_part(a.macs, ',', 1)
        WHERE a.i = ANY(locked);
      IF moved THEN
        -- An identity's other records and its displaced mark go, as in macslot_claim; a fresh claim checked it had none.
${move}
      END IF;
      RETURN QUERY SELECT a.i, 'ok'::text, split_part(a.macs, ',', 1), a.guest, a.nic, a.iface, a.policy, a.holder, t + a.ttl, t
        FROM ${BATCH_ROWS} WHERE a.i = ANY(done);
      IF cardinality(done) < cardinality(p_macs) THEN
        -- The rest, in batch order, one at a time.
        RETURN QUERY SELECT a.i, c.* FROM ${BATCH_ROWS}
          CROSS JOIN LATERAL ${n('macslot_claim')}(p_domain, string_to_array(a.macs, ','), a.guest, a.nic, a.iface, a.policy, a.holder,
            a.ttl, p_grace, a.fresh) c
          WHERE NOT a.i = ANY(done)
          ORDER BY a.i;
      END IF;
    END $f$`;

// Version 4: a batch of claims is one call of macslot_claims, set-based: the claims whose first MAC is free go in with
// one INSERT … ON CONFLICT DO NOTHING (the UNIQUE (domain, mac) constraint still decides), and only the rest (a MAC
// taken or busy, an identity the store has or remembers) take the per-claim path of macslot_claim. The fast path takes
// the same advisory locks as macslot_claim, but only by trying (a claim whose lock is held goes the slow way and waits
// there), and checks an identity in a statement after it holds the identity's lock, so the check sees every claim
// of that identity that committed before. Its statements use generic plans (planning them for each batch cost more
// than running them).
const V4 = (n: Names): string[] => [
  claimsFunction(
    n,
    'CREATE',
    `            AND NOT (a.fresh AND a.policy <> 'direct' AND (
              EXISTS (SELECT 1 FROM ${n('macslot_records')} r WHERE r.domain = p_domain AND NOT r.gone AND r.policy <> 'direct'
                AND r.guest = a.guest AND r.nic = a.nic AND r.iface = a.iface)
              OR EXISTS (SELECT 1 FROM ${n('macslot_displaced')} x
                WHERE x.domain = p_domain AND x.guest = a.guest AND x.nic = a.nic AND x.iface = a.iface)))`,
    `        UPDATE ${n('macslot_records')} r SET gone = true, dirty = true FROM ${BATCH_ROWS}
          WHERE a.i = ANY(done) AND NOT a.fresh AND a.policy <> 'direct' AND r.domain = p_domain
            AND r.mac <> split_part(a.macs, ',', 1) AND NOT r.gone AND r.policy <> 'direct' AND r.guest = a.guest AND r.nic = a.nic
            AND r.iface = a.iface;
        DELETE FROM ${n('macslot_displaced')} x USING ${BATCH_ROWS}
          WHERE a.i = ANY(done) AND NOT a.fresh AND a.policy <> 'direct' AND x.domain = p_domain AND x.guest = a.guest
            AND x.nic = a.nic AND x.iface = a.iface;`,
  ),
];

// Version 5: a lookup of one record never reads the domain's every record. A plpgsql function plans each statement once
// per connection and keeps the plan, and on an empty table every index that starts with the domain costs the same:
// the planner took the (domain, rev) index for lookups by MAC and by identity, and planned version 4's identity check
// (a subquery under OR) as a hash of all the domain's records, built for each batch. A connection that began while the
// table was empty kept those plans as the table grew, and after seconds of allocating each batch cost milliseconds.
// Now no index but the right one can serve a lookup: the (domain, rev) index holds only adopted rows (those a
// whole-store read asks for by revision), and the identity index, holding only live records that are not direct, is
// keyed on the domain in the "C" collation, which the identity lookups name and no other index matches (equality is
// the same in every deterministic collation). The batch function checks each claim's identity with a call of its
// own, which cannot be hashed, and moves an identity to its new MAC with a loop of keyed statements.
const idDomain = (r: string): string => `${r}.domain COLLATE "C" = p_domain`;
const V5 = (n: Names): string[] => [
  `DROP INDEX IF EXISTS ${n('macslot_records_rev')}`,
  `CREATE INDEX macslot_records_rev ON ${n('macslot_records')} (domain, rev) WHERE NOT dirty`,
  `DROP INDEX IF EXISTS ${n('macslot_records_identity')}`,
  `CREATE INDEX macslot_records_identity ON ${n('macslot_records')} (domain COLLATE "C", nic, guest, iface)
    WHERE NOT gone AND policy <> 'direct'`,
  claimFunction(n, 'CREATE OR REPLACE', idDomain),
  `CREATE FUNCTION ${n('macslot_known')}(p_domain text, p_guest text, p_nic text, p_iface text) RETURNS boolean
    LANGUAGE plpgsql STABLE AS $f$
    BEGIN
      RETURN EXISTS (SELECT 1 FROM ${n('macslot_records')} r WHERE ${idDomain('r')} AND NOT r.gone AND ${sameId('r')})
        OR EXISTS (SELECT 1 FROM ${n('macslot_displaced')} x WHERE x.domain = p_domain AND x.guest = p_guest AND x.nic = p_nic
          AND x.iface = p_iface);
    END $f$`,
  claimsFunction(
    n,
    'CREATE OR REPLACE',
    `            AND NOT (a.fresh AND a.policy <> 'direct' AND ${n('macslot_known')}(p_domain, a.guest, a.nic, a.iface))`,
    `        FOR mv IN SELECT split_part(a.macs, ',', 1) AS mac, a.guest, a.nic, a.iface FROM ${BATCH_ROWS}
            WHERE a.i = ANY(done) AND NOT a.fresh AND a.policy <> 'direct' LOOP
          UPDATE ${n('macslot_records')} r SET gone = true, dirty = true
            WHERE ${idDomain('r')} AND r.nic = mv.nic AND r.guest = mv.guest AND r.iface = mv.iface
              AND r.mac <> mv.mac AND NOT r.gone AND r.policy <> 'direct';
          DELETE FROM ${n('macslot_displaced')} x
            WHERE x.domain = p_domain AND x.nic = mv.nic AND x.guest = mv.guest AND x.iface = mv.iface;
        END LOOP;`,
  ),
];

/** Migration i takes a schema from version i to version i + 1 (0: nothing there yet). */
export const MIGRATIONS: readonly ((n: Names) => string[])[] = [V1, V2, V3, V4, V5];

/** The functions the current schema must have; a schema at the current version without one of them is broken. */
export const REQUIRED_FUNCTIONS: readonly string[] = [
  'macslot_claim',
  'macslot_claims',
  'macslot_known',
  'macslot_release',
  'macslot_renew',
];

/** The columns each table of the current schema must have; a schema at the current version without them is broken. */
export const REQUIRED_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  macslot_records: ['domain', 'mac', 'guest', 'nic', 'iface', 'policy', 'holder', 'expires', 'updated', 'rev', 'gone', 'dirty'],
  macslot_domains: ['domain', 'rev'],
  macslot_displaced: ['domain', 'guest', 'nic', 'iface', 'mac', 'policy', 'updated'],
};
