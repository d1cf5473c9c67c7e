// PostgreSQL persistence layer: the store's tables, their versioned migrations, and the check that a schema is whole.

/** The schema version this code writes. Older schemas are migrated when a store opens; newer ones are refused. */
export const POSTGRES_SCHEMA_VERSION = 2;

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
        PERFORM pg_advisory_xact_lock(hashtext(p_domain), hashtext(p_nic || '/' || p_guest || '/' || p_iface));
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

/** Migration i takes a schema from version i to version i + 1 (0: nothing there yet). */
export const MIGRATIONS: readonly ((n: Names) => string[])[] = [V1, V2];

/** The columns each table of the current schema must have; a schema at the current version without them is broken. */
export const REQUIRED_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  macslot_records: ['domain', 'mac', 'guest', 'nic', 'iface', 'policy', 'holder', 'expires', 'updated', 'rev', 'gone', 'dirty'],
  macslot_domains: ['domain', 'rev'],
  macslot_displaced: ['domain', 'guest', 'nic', 'iface', 'mac', 'policy', 'updated'],
};
