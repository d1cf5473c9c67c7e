// Hostile datagram peers (QEMU -netdev dgram) against a served switch: sources that send once and go silent are released
// after the idle timeout, a listener full of sources refuses new ones, and garbage datagrams change nothing for others.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Nic, Switch } from 'macslot';
import { DEFAULT_DGRAM_IDLE_MS, listenDgram, serveSwitch, type ServedSwitch } from 'macslot/node';
import { tagOf, tagged, until } from './support/frames.js';

const CLI = join(new URL('..', import.meta.url).pathname, 'dist/cli/main.js');

let served: ServedSwitch | undefined;
const sockets = new Set<Socket>();
const children = new Set<ChildProcess>();
afterEach(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  for (const s of sockets) s.close();
  sockets.clear();
  await served?.close();
  served = undefined;
});

async function serve(extra: { idleMs?: number; maxClientsPerListener?: number }, nicClients = 1024, logs: string[] = []) {
  const nic = new Nic({ primary: '02:6d:73:00:00:01', maxClients: nicClients });
  const sw = await Switch.create({ nic, allocation: 'random' });
  served = await serveSwitch(sw, { listen: [{ kind: 'udp', host: '127.0.0.1', port: 0 }], log: (l) => logs.push(l), ...extra });
  const port = Number(served.addresses[0]!.slice(served.addresses[0]!.lastIndexOf(':') + 1));
  return { nic, sw, port, listener: served.listeners[0]! };
}

/** A UDP socket bound to a free loopback port, with the tags of the frames it receives. */
async function source(): Promise<{ sock: Socket; name: string; got: number[] }> {
  const sock = createSocket('udp4');
  sockets.add(sock);
  const got: number[] = [];
  sock.on('message', (m) => got.push(tagOf(new Uint8Array(m)) ?? -1));
  sock.on('error', () => {});
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return { sock, name: `udp:127.0.0.1:${sock.address().port}`, got };
}

/** Sends one datagram from a new source and closes it: the pattern of a scan or a flood of spoofed sources. */
async function oneShot(port: number, bytes: Uint8Array): Promise<void> {
  const s = await source();
  await new Promise<void>((r) => s.sock.send(bytes, port, '127.0.0.1', () => r()));
  s.sock.close();
  sockets.delete(s.sock);
}

const send = (s: Socket, port: number, bytes: Uint8Array): Promise<void> => new Promise((r) => s.send(bytes, port, '127.0.0.1', () => r()));

/** Two new sources exchange a unicast each way through the switch. */
async function pairWorks(sw: Switch, port: number): Promise<void> {
  const a = await source();
  const b = await source();
  const macOf = (name: string): string | undefined => sw.counters().ports.find((p) => p.name === name)?.mac ?? undefined;
  // A first datagram from each gets them a client (and a MAC); it is a spoof until then, and dropped.
  await send(a.sock, port, tagged('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:00', 0));
  await send(b.sock, port, tagged('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:00', 0));
  await until(() => macOf(a.name) !== undefined && macOf(b.name) !== undefined, 10_000, 'both sources to get a client');
  const ma = macOf(a.name)!;
  const mb = macOf(b.name)!;
  await send(a.sock, port, tagged(mb, ma, 1));
  await send(b.sock, port, tagged(ma, mb, 2));
  await until(() => a.got.includes(2) && b.got.includes(1), 10_000, 'a unicast each way');
}

describe('hostile datagram peers', () => {
  it('release sources that sent once and went silent, so the NIC is not filled until a restart', async () => {
    const logs: string[] = [];
    const { nic, sw, port, listener } = await serve({ idleMs: 1500, maxClientsPerListener: 4096 }, 64, logs);
    const baseClients = nic.clients().length;
    // More one-datagram sources than the NIC has clients.
    for (let i = 0; i < 100; i++) await oneShot(port, tagged('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:00', i));
    await until(() => (sw.counters().refused.TOO_MANY_CLIENTS ?? 0) > 0, 10_000, 'the NIC to be full');
    // After the idle timeout every one of them is released, and so is its client.
    await until(() => listener.counters().clients === 0 && sw.ports().length === 0, 10_000, 'the silent sources to be released');
    await sw.settled();
    expect(nic.clients().length).toBe(baseClients);
    expect(listener.counters().released.idle).toBeGreaterThanOrEqual(60);
    expect(logs.filter((l) => l.includes('released a peer (idle)'))).toHaveLength(1);
    await pairWorks(sw, port);
  });

  it('keep a source that keeps talking, and default to a documented idle timeout', async () => {
    expect(DEFAULT_DGRAM_IDLE_MS).toBe(300_000);
    const { sw, port, listener } = await serve({ idleMs: 1500 });
    const a = await source();
    // Talks every 50 ms (its own pace, as a guest's traffic) for over two idle periods: never released.
    const talk = setInterval(() => a.sock.send(tagged('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:00', 0), port, '127.0.0.1'), 50);
    try {
      await until(() => sw.ports().length === 1, 10_000, 'the source to get a port');
      const started = Date.now();
      await until(() => Date.now() - started > 3500 || sw.ports().length === 0, 10_000, 'two idle periods');
    } finally {
      clearInterval(talk);
    }
    expect(sw.ports()).toHaveLength(1);
    expect(listener.counters().released).toEqual({});
    expect(listener.counters().accepted).toBe(1);
  });

  it('refuse new sources beyond maxClientsPerListener, counted and logged once, until one is released', async () => {
    const logs: string[] = [];
    const { sw, port, listener } = await serve({ idleMs: 1500, maxClientsPerListener: 4 }, 1024, logs);
    for (let i = 0; i < 10; i++) await oneShot(port, tagged('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:00', i));
    await until(() => (listener.counters().refused.limit ?? 0) === 6, 10_000, 'six refusals');
    expect(listener.counters().clients).toBe(4);
    expect(logs.filter((l) => l.includes('refused a peer (limit)'))).toHaveLength(1);
    await until(() => listener.counters().clients === 0, 10_000, 'the four to be released');
    await pairWorks(sw, port);
  });

  it('take garbage datagrams without harm to other sources', async () => {
    const { sw, port } = await serve({ idleMs: 0 });
    const garbage = [new Uint8Array(0), Uint8Array.of(0xff), new Uint8Array(13).fill(0x1b), new Uint8Array(60000).fill(0xc0)];
    for (const g of garbage) await oneShot(port, g);
    await until(() => sw.ports().length === garbage.length, 10_000, 'every garbage source to get a port');
    await pairWorks(sw, port);
  });

  it('rejects a bad idleMs or maxClients before binding', async () => {
    await expect(listenDgram({ host: '127.0.0.1', port: 0 }, () => {}, { idleMs: -1 })).rejects.toThrow(/INVALID_ARGUMENT: idleMs/);
    await expect(listenDgram({ host: '127.0.0.1', port: 0 }, () => {}, { maxClients: 0 })).rejects.toThrow(/INVALID_ARGUMENT: maxClients/);
  });
});

/** Starts the built switch on a UDP listener with `args`; resolves once it listens, with its port and its stderr so far. */
async function startUdpSwitch(args: string[]): Promise<{ port: number; err: () => string; stop: () => Promise<unknown> }> {
  const child = spawn(process.execPath, [CLI, 'switch', '--listen', 'udp:127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (err += t));
  child.stdout!.resume();
  await until(() => /listening on udp:127\.0\.0\.1:\d+/.test(err), 20_000, 'the switch to listen');
  const port = Number(/listening on udp:127\.0\.0\.1:(\d+)/.exec(err)![1]);
  const stop = (): Promise<unknown> => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    return exited;
  };
  return { port, err: () => err, stop };
}

describe('macslot switch (the built CLI)', () => {
  it('takes the listener limits as options, and refuses bad ones naming them', async () => {
    const bad = spawnSync(process.execPath, [CLI, 'switch', '--listen', 'udp:127.0.0.1:0', '--idle-timeout', '-5'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--idle-timeout');
    const help = spawnSync(process.execPath, [CLI, 'switch', '--help'], { encoding: 'utf8' }).stdout;
    for (const flag of ['--queue-budget', '--max-clients', '--idle-timeout', '--frame-timeout', '--handshake-timeout'])
      expect(help).toContain(flag);

    const { port, err, stop } = await startUdpSwitch(['--idle-timeout', '2000', '--max-clients', '2']);
    for (let i = 0; i < 3; i++) await oneShot(port, tagged('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:00', i));
    await until(() => err().includes('refused a peer (limit)'), 20_000, 'the third source to be refused');
    await until(() => err().includes('released a peer (idle)'), 20_000, 'the silent sources to be released');
    await stop();
  });

  it("takes the listener limits from the configuration file's switch object, and the command line overrides them", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'macslot-limits-'));
    try {
      const config = join(dir, 'switch.json');
      writeFileSync(config, JSON.stringify({ nic: { primary: '02:6d:73:00:00:01' }, switch: { idleMs: 2000, maxClientsPerListener: 1 } }));
      const bad = join(dir, 'bad.json');
      writeFileSync(bad, JSON.stringify({ nic: { primary: '02:6d:73:00:00:01' }, switch: { idleMs: -1 } }));
      const refused = spawnSync(process.execPath, [CLI, 'switch', '--config', bad, '--listen', 'udp:127.0.0.1:0'], { encoding: 'utf8' });
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain('switch.idleMs');

      // The file allows one peer; --max-clients 2 allows a second, and the third is refused.
      const { port, err, stop } = await startUdpSwitch(['--config', config, '--max-clients', '2']);
      for (let i = 0; i < 3; i++) await oneShot(port, tagged('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:00', i));
      await until(() => err().includes('refused a peer (limit)'), 20_000, 'the third source to be refused');
      // Two sources got ports (the command line's limit), not one (the file's).
      await until(() => (err().match(/: connected as /g)?.length ?? 0) === 2, 20_000, 'two sources to connect');
      await until(() => err().includes('released a peer (idle)'), 20_000, "the silent sources to be released by the file's idleMs");
      await stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
