// Command line: `--store postgres://…`, the MAC manager of a switch that shares its MAC space and leases with other hosts.

import { MacslotError, show } from '../errors.js';
import { MacManager } from '../manager/manager.js';
import type { Nic } from '../nic/nic.js';
import type { MacLike } from '../wire/mac.js';

const SCHEMES = /^postgres(?:ql)?:\/\//;

/** Throws INVALID_ARGUMENT unless `url` is a PostgreSQL connection URL. */
export function checkStoreUrl(url: string): void {
  if (!SCHEMES.test(url)) throw new MacslotError('INVALID_ARGUMENT', `--store ${show(url)} is not a postgres:// or postgresql:// URL`);
}

/** A manager over a shared store, and how to close both. */
export interface SharedManager {
  /** The manager for the switch's NIC (named nic0). */
  readonly manager: MacManager;
  /** Closes the manager (releasing its leases) and then the store's connections. */
  close(): Promise<void>;
}

/**
 * Opens the PostgreSQL store at `url` and returns a manager over `nic` that uses it. Rejects with INVALID_ARGUMENT for
 * a URL that is not PostgreSQL's, NOT_SUPPORTED when the optional `pg` package is missing, or the store's errors.
 */
export async function openSharedManager(url: string, nic: Nic, neighbours: Iterable<MacLike> = []): Promise<SharedManager> {
  checkStoreUrl(url);
  let mod: typeof import('../postgres/index.js');
  try {
    // Loaded only here: `pg` is an optional peer dependency.
    mod = await import('../postgres/index.js');
  } catch (err) {
    throw new MacslotError(
      'NOT_SUPPORTED',
      `--store needs the pg package (npm install pg): ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const store = await mod.PostgresStore.open({ connectionString: url });
  const manager = new MacManager({ nics: { nic0: nic }, store, neighbours });
  return {
    manager,
    async close() {
      await manager.close().catch(() => {});
      await store.close();
    },
  };
}
