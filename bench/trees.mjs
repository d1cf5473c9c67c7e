// Bench: classify throughput of several built trees (each a clone with dist/ built), interleaved round by round in one
// process and timed in CPU time (process.cpuUsage), so a loaded machine's preemption does not count. For comparing two
// versions of the data plane on a busy machine: node bench/trees.mjs /path/to/old /path/to/new
const roots = process.argv.slice(2).map((r) => r.replace(/\/$/, ''));
if (roots.length === 0) throw new Error('usage: node bench/trees.mjs TREE [TREE…]');
const libs = await Promise.all(roots.map((r) => import(`${r}/dist/index.js`)));
function scenario({ Mac, Nic }, activeMacs) {
  const nic = new Nic({
    primary: '00:14:4f:00:00:00',
    unicastEntries: activeMacs + 64,
    multicastEntries: 8,
    multicastHash: true,
    maxAddresses: activeMacs + 65,
    maxClients: 64,
  });
  const clients = Array.from({ length: 16 }, (_, i) => nic.openClient(`vm${i}`));
  const macs = [];
  for (let i = 0; i < activeMacs; i++) macs.push(clients[i % 16].addressAdd(Mac.fromNumber(0x0200_0000_0000 + i * 7919)).mac);
  const groups = Array.from({ length: 8 }, (_, g) => Mac.fromNumber(0x0100_5e00_0000 + g));
  groups.forEach((g, i) => clients[i].multicastJoin(g));
  return { nic, macs, groups };
}
const F = 1 << 20;
for (const m of [64, 1024, 4096]) {
  const dps = [];
  for (const lib of libs) {
    const s = scenario(lib, m);
    const dp = await lib.DataPlane.create(s.nic, { burst: F, poolBytes: F * 64 + 2048, lanes: 1, seed: 42 });
    // The bench's traffic: 80 % hits, 10 % unknown, 5 % broadcast, 5 % multicast; a fixed xorshift stream.
    let x = 1;
    const rnd = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
    for (let i = 0; i < F; i++) {
      const r = rnd();
      let mac;
      if (r < 0.8) mac = s.macs[Math.floor(rnd() * s.macs.length)];
      else if (r < 0.9) mac = lib.Mac.fromNumber(0x0600_0000_0000 + Math.floor(rnd() * 2 ** 32));
      else if (r < 0.95) mac = lib.Mac.fromNumber(0xffff_ffff_ffff);
      else mac = r < 0.975 ? s.groups[Math.floor(rnd() * 8)] : lib.Mac.fromNumber(0x0100_5e10_0000 + Math.floor(rnd() * 1000));
      mac.writeTo(dp.pool, i * 64);
      dp.descriptors[2 * i] = i * 64;
      dp.descriptors[2 * i + 1] = 64;
    }
    dps.push(dp);
  }
  for (let i = 0; i < 4; i++) for (const dp of dps) dp.classifyBurst(F);
  const t = dps.map(() => []);
  for (let r = 0; r < 11; r++)
    dps.forEach((dp, i) => {
      const u0 = process.cpuUsage();
      dp.classifyBurst(F);
      const u = process.cpuUsage(u0);
      t[i].push((u.user + u.system) / 1000);
    });
  const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  console.log(
    `${m} MACs:`,
    roots
      .map((r, i) => `${r.split('/').pop()} ${(F / med(t[i]) / 1000).toFixed(1)} Mpps x${med(t[i].map((v, j) => t[0][j] / v)).toFixed(2)}`)
      .join(' | '),
  );
  for (const dp of dps) dp.close();
}
