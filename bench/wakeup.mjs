// The machine's price of waking a process: round trips between this process and an echoing child over a unix socket,
// `rate` per second for `seconds`, and the CPU time each side spent per round trip, as one JSON line. At a low rate
// each message wakes a sleeping process; at a high one the two rarely sleep. The store benchmark prints both, because
// a host allocating a few hundred MACs a second pays this price for every step of every allocation.
// Usage: node bench/wakeup.mjs RATE [SECONDS]
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cpuMs = (since) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

if (process.argv[2] === 'echo') {
  // Counted from the first message, so that starting up is not part of it.
  let c0;
  const server = createServer((s) => {
    s.on('data', (d) => {
      c0 ??= process.cpuUsage();
      s.write(d);
    });
    s.on('end', () => {
      process.send(cpuMs(c0));
      server.close();
    });
  });
  server.listen(process.argv[3], () => process.send('listening'));
} else {
  const rate = Number(process.argv[2]);
  const seconds = Number(process.argv[3] ?? 2);
  if (!(rate > 0) || !(seconds > 0)) {
    console.error('usage: node bench/wakeup.mjs RATE [SECONDS]');
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), 'macslot-wakeup-'));
  const path = join(dir, 'echo.sock');
  const child = fork(fileURLToPath(import.meta.url), ['echo', path]);
  try {
    await new Promise((ok) => child.once('message', ok));
    const socket = connect(path);
    await new Promise((ok) => socket.once('connect', ok));
    const n = Math.round(rate * seconds);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let k = 0; k < n; k++) {
      const wait = t0 + (k * 1000) / rate - performance.now();
      if (wait > 0) await new Promise((ok) => setTimeout(ok, wait));
      socket.write('x');
      await new Promise((ok) => socket.once('data', ok));
    }
    const mine = cpuMs(c0);
    const echo = new Promise((ok) => child.once('message', ok));
    socket.end();
    const theirs = await echo;
    console.log(JSON.stringify({ rate, roundTrips: n, senderMs: mine / n, echoMs: theirs / n }));
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
