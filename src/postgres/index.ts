// Entry point `macslot/postgres`: the MAC store in a PostgreSQL database, for many hosts sharing one MAC space. Needs `pg`.

export { PostgresStore, type PostgresStoreOptions } from './store.js';
export { POSTGRES_SCHEMA_VERSION } from './schema.js';
