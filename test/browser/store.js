// Browser store test page script: allocates through the MAC manager on the browser store; the query string picks the backend, store name,
// guest tag and count.

const q = new URLSearchParams(location.search);
const backend = q.get('backend') ?? 'indexeddb';
const name = q.get('name') ?? 'test';
const tag = q.get('tag') ?? 'a';
const count = Number(q.get('count') ?? '10');

async function run() {
  const { BrowserStore, MacManager, Nic } = await import('/dist/index.js');
  const store = await BrowserStore.open({ name, backend });
  const nic = new Nic({ primary: '00:14:4f:00:00:00', maxAddresses: 1 << 16 });
  const manager = new MacManager({ nics: { eth0: nic }, store, block: { base: '02:00:00:00:00:01', count: 4096 } });
  const leases = [];
  // One at a time, so two pages doing this at once interleave their transactions.
  for (let i = 0; i < count; i++)
    leases.push(await manager.allocate({ guest: `g-${tag}`, iface: String(i), policy: q.get('policy') ?? 'block', order: 'next' }));
  await manager.close();
  const data = await store.read();
  return {
    backend: store.backend,
    location: store.location,
    leases: leases.map((l) => ({ mac: l.mac.toString(), restored: l.restored, policy: l.policy })),
    records: Object.keys(data.records).length,
  };
}

async function corrupt() {
  const { BrowserStore } = await import('/dist/index.js');
  if (backend === 'localstorage') localStorage.setItem(`macslot:${name}`, '{"version": 2, "records": {');
  else {
    const db = await new Promise((ok, fail) => {
      const r = indexedDB.open(`macslot:${name}`, 1);
      r.onupgradeneeded = () => r.result.createObjectStore('kv');
      r.onsuccess = () => ok(r.result);
      r.onerror = () => fail(r.error);
    });
    await new Promise((ok, fail) => {
      const tx = db.transaction('kv', 'readwrite');
      tx.objectStore('kv').put('not json', 'data');
      tx.oncomplete = ok;
      tx.onerror = () => fail(tx.error);
    });
    db.close();
  }
  const store = await BrowserStore.open({ name, backend });
  try {
    await store.transact(() => undefined);
    return { code: 'none' };
  } catch (err) {
    return { code: err.code, message: err.message };
  }
}

globalThis.macslotStoreResult = (q.get('mode') === 'corrupt' ? corrupt() : run()).catch((err) => ({
  error: String(err?.stack ? err.stack : err),
}));
