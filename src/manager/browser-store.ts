// Persistence layer: the browser store, in IndexedDB (one readwrite transaction per change, which the browser serializes across tabs) or
// localStorage where that is all there is.

import { MacslotError, show } from '../errors.js';
import { DocumentStore, emptyStoreData, SerialQueue, serializeStoreData, StoreCodec, type StoreData } from './store.js';

/** The part of the Web Storage API the store uses. */
export interface StorageLike {
  /**  null;|Returns the value stored under `key`, or null. */
  getItem(key: string): string | null;
  /** Stores `value` under `key`. */
  setItem(key: string, value: string): void;
}

/** The part of the Web Locks API the store uses to keep tabs from interleaving on localStorage. */
export interface LockManagerLike {
  /**  Promise<T>): Promise<T>;|Runs `callback` holding the lock `name`; resolves with its result. */
  request<T>(name: string, callback: () => T | Promise<T>): Promise<T>;
}

/** Where a browser store keeps its data. */
export type BrowserBackend = 'indexeddb' | 'localstorage';

/** Options for `BrowserStore.open`. */
export interface BrowserStoreOptions {
  /** Store name; separate names are separate stores. Default "default". */
  name?: string;
  /** Force a backend; by default IndexedDB when present, else localStorage. */
  backend?: BrowserBackend;
  /** Stand-ins for the globals, for tests and unusual hosts. */
  indexedDB?: IDBFactory;
  /** Stand-in for `globalThis.localStorage`. */
  localStorage?: StorageLike;
  /** Stand-in for `navigator.locks`. */
  locks?: LockManagerLike;
}

const OBJECT_STORE = 'kv';
const KEY = 'data';

function ioError(location: string, what: string, cause: unknown): MacslotError {
  const detail =
    cause instanceof Error || (typeof DOMException !== 'undefined' && cause instanceof DOMException)
      ? `${(cause as Error).name}: ${(cause as Error).message}`
      : show(cause);
  return new MacslotError('STORE_IO', `the MAC store ${location} could not ${what} (${detail}); the previous data is unchanged`);
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((ok, fail) => {
    req.onsuccess = () => ok(req.result);
    req.onerror = () => fail(req.error);
  });
}

/** A MAC store in the browser's origin storage, shared by every tab of the origin. */
export class BrowserStore extends DocumentStore {
  readonly location: string;
  /** The backend in use. */
  readonly backend: BrowserBackend;
  readonly #db: IDBDatabase | undefined;
  readonly #storage: StorageLike | undefined;
  readonly #locks: LockManagerLike | undefined;
  readonly #key: string;
  readonly #queue = new SerialQueue();
  readonly #codec: StoreCodec;

  private constructor(
    backend: BrowserBackend,
    name: string,
    db: IDBDatabase | undefined,
    storage: StorageLike | undefined,
    locks: LockManagerLike | undefined,
  ) {
    super();
    this.backend = backend;
    this.#key = `macslot:${name}`;
    this.location = `${backend}:${this.#key}`;
    this.#codec = new StoreCodec(this.location);
    this.#db = db;
    this.#storage = storage;
    this.#locks = locks;
  }

  /**
   * Resolves with an open store; rejects with NOT_SUPPORTED when neither backend exists, INVALID_ARGUMENT for a bad name, STORE_IO when the
   * database cannot open.
   */
  static async open(options: BrowserStoreOptions = {}): Promise<BrowserStore> {
    const name = options.name ?? 'default';
    if (typeof name !== 'string' || name.length === 0 || name.length > 128)
      throw new MacslotError('INVALID_ARGUMENT', `store name must be a non-empty string of at most 128 characters, got ${show(name)}`);
    const g = globalThis as { indexedDB?: IDBFactory; localStorage?: StorageLike; navigator?: { locks?: LockManagerLike } };
    const idb = options.indexedDB ?? g.indexedDB;
    let storage: StorageLike | undefined = options.localStorage;
    if (storage === undefined) {
      // Reading window.localStorage throws where storage is disabled (opaque origins, some privacy modes).
      try {
        storage = g.localStorage;
      } catch {
        storage = undefined;
      }
    }
    const backend = options.backend ?? (idb !== undefined ? 'indexeddb' : 'localstorage');
    if (backend !== 'indexeddb' && backend !== 'localstorage')
      throw new MacslotError('INVALID_ARGUMENT', `backend must be "indexeddb" or "localstorage", got ${show(backend)}`);
    if (backend === 'indexeddb') {
      if (idb === undefined) throw new MacslotError('NOT_SUPPORTED', 'IndexedDB is not available here');
      const req = idb.open(`macslot:${name}`, 1);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(OBJECT_STORE)) req.result.createObjectStore(OBJECT_STORE);
      };
      let db: IDBDatabase;
      try {
        db = await request(req);
      } catch (err) {
        throw ioError(`indexeddb:macslot:${name}`, 'open', err);
      }
      return new BrowserStore('indexeddb', name, db, undefined, undefined);
    }
    if (storage === undefined) throw new MacslotError('NOT_SUPPORTED', 'neither IndexedDB nor localStorage is available here');
    return new BrowserStore('localstorage', name, undefined, storage, options.locks ?? g.navigator?.locks);
  }

  transact<T>(fn: (data: StoreData) => T): Promise<T> {
    return this.#queue.run(() => (this.#db !== undefined ? this.#idbTransact(this.#db, fn) : this.#lsTransact(fn)));
  }

  read(): Promise<StoreData> {
    return this.transact((data) => data);
  }

  /** Closes the database connection; later calls fail with STORE_IO. */
  close(): void {
    this.#db?.close();
  }

  #idbTransact<T>(db: IDBDatabase, fn: (data: StoreData) => T): Promise<T> {
    return new Promise<T>((ok, fail) => {
      let tx: IDBTransaction;
      try {
        tx = db.transaction(OBJECT_STORE, 'readwrite');
      } catch (err) {
        fail(ioError(this.location, 'start a transaction', err));
        return;
      }
      let failure: unknown;
      let result: T;
      const objects = tx.objectStore(OBJECT_STORE);
      const get = objects.get(KEY);
      // Everything between the read and the write runs in this callback, inside the one transaction, so no other tab can interleave.
      get.onsuccess = () => {
        try {
          const stored: unknown = get.result;
          if (stored !== undefined && typeof stored !== 'string')
            throw new MacslotError(
              'STORE_CORRUPT',
              `the MAC store ${this.location} holds ${show(stored)}, not text; it was left untouched`,
            );
          const before = stored ?? serializeStoreData(emptyStoreData());
          const data = stored === undefined ? emptyStoreData() : this.#codec.parse(stored);
          result = fn(data);
          const after = this.#codec.serialize(data);
          if (after !== before) objects.put(after, KEY);
        } catch (err) {
          failure = err;
          tx.abort();
        }
      };
      tx.oncomplete = () => ok(result);
      tx.onabort = () => fail(failure ?? ioError(this.location, 'commit', tx.error));
    });
  }

  #lsTransact<T>(fn: (data: StoreData) => T): Promise<T> {
    const body = (): T => {
      const storage = this.#storage!;
      const stored = storage.getItem(this.#key);
      const before = stored ?? serializeStoreData(emptyStoreData());
      const data = stored === null ? emptyStoreData() : this.#codec.parse(stored);
      const result = fn(data);
      const after = this.#codec.serialize(data);
      if (after !== before) {
        try {
          storage.setItem(this.#key, after);
        } catch (err) {
          throw ioError(this.location, 'write', err);
        }
      }
      return result;
    };
    // Without Web Locks two tabs could interleave read and write; with them the change is exclusive across the origin.
    return this.#locks !== undefined ? this.#locks.request(this.#key, body) : Promise.resolve().then(body);
  }
}
