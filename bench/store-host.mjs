// One "host" of the store benchmark. Mode `manager` (what users run): a MacManager over the store allocating for new
// guests from one block, `concurrency` allocations at a time (a host starting many guests). Mode `claim`: bare
// record-level claims of random MACs, one at a time. It times each allocation for as long as told and prints the
// count and the latencies (ms) as one JSON line. Loads the built modules (npm run bench:store builds them).
import { FileStore } from '../dist/node/file-store.js';
import { PostgresStore } from '../dist/postgres/store.js';
import { MacManager } from '../dist/manager/manager.js';
import { Nic } from '../dist/nic/nic.js';

const [kind, target, schema, tag, msText, mode = 'manager', concurrencyText = '8'] = process.argv.slice(2);
const store =
  kind === 'file' ? new FileStore({ path: target, lockTimeoutMs: 60_000 }) : await PostgresStore.open({ connectionString: target, schema });
const concurrency = Number(concurrencyText);
const manager =
  mode === 'manager'
    ? new MacManager({
        nics: { eth0: new Nic({ primary: `00:14:4f:00:${Number(tag).toString(16).padStart(2, '0')}:00`, maxAddresses: 1 << 16 }) },
        store,
        block: '02:5b:00/24',
        session: `host${tag}`,
      })
    : undefined;
process.stdout.write('ready\n');
await new Promise((r) => process.stdin.once('data', r));
const end = performance.now() + Number(msText);
const lat = [];
let conflicts = 0;
let next = 0;
async function claimLoop() {
  while (performance.now() < end) {
    const i = next++;
    const n = Math.floor(Math.random() * 2 ** 24);
    const mac = `02:5b:${[n >> 16, (n >> 8) & 0xff, n & 0xff, Number(tag) & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
    const t0 = performance.now();
    try {
      await store.claim({ mac, guest: `h${tag}`, nic: 'eth0', iface: String(i), policy: 'block', holder: `host${tag}` });
    } catch (err) {
      if (err?.code !== 'MAC_IN_USE') throw err;
      conflicts++;
    }
    lat.push(performance.now() - t0);
  }
}
async function managerLoop() {
  while (performance.now() < end) {
    const i = next++;
    const t0 = performance.now();
    await manager.allocate({ guest: `h${tag}-${i % 64}`, iface: String(i), policy: 'block', order: 'random' });
    lat.push(performance.now() - t0);
  }
}
await Promise.all(Array.from({ length: mode === 'manager' ? concurrency : 1 }, () => (mode === 'manager' ? managerLoop() : claimLoop())));
process.stdout.write(`${JSON.stringify({ count: lat.length - conflicts, conflicts, lat })}\n`);
await store.close?.();
process.exit(0);
