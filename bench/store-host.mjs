// One "host" of the store benchmark: claims random MACs of one block for as long as told, timing each claim, and
// prints the count and the latencies (ms) as one JSON line. Loads the built modules (npm run bench:store builds them).
import { FileStore } from '../dist/node/file-store.js';
import { PostgresStore } from '../dist/postgres/store.js';

const [kind, target, schema, tag, msText] = process.argv.slice(2);
const store =
  kind === 'file' ? new FileStore({ path: target, lockTimeoutMs: 60_000 }) : await PostgresStore.open({ connectionString: target, schema });
process.stdout.write('ready\n');
await new Promise((r) => process.stdin.once('data', r));
const end = performance.now() + Number(msText);
const lat = [];
let conflicts = 0;
for (let i = 0; performance.now() < end; i++) {
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
process.stdout.write(`${JSON.stringify({ count: lat.length - conflicts, conflicts, lat })}\n`);
await store.close?.();
process.exit(0);
