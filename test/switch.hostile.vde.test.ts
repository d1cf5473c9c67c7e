// Hostile and dying vde_plug children against a switch: a stand-in speaking vde_plug's stdio framing sends junk and escape
// sequences, exits in the middle of a frame, dies when spoken to, or is missing; a real vde_plug relays junk datagrams and is
// killed. Each time the switch stays up, logs escaped text, and keeps serving a well-behaved pair.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Nic, Switch } from 'macslot';
import { serveSwitch, spawnVdePlug, type ServedSwitch } from 'macslot/node';
import { joinStreamPeer, streamPairWorks } from './support/peer.js';
import { hostileStandIn } from './support/hostile.js';
import { needTool, tagged, until } from './support/frames.js';

const { dir, pids, standIn, killStandIns } = hostileStandIn('macslot-hostile-vde-', 'hostile-peer');
afterAll(() => {
  killStandIns();
  rmSync(dir, { recursive: true, force: true });
});

const env = process.env;
let served: ServedSwitch | undefined;
const udp = new Set<UdpSocket>();
afterEach(async () => {
  await served?.close();
  served = undefined;
  for (const s of udp) s.close();
  udp.clear();
  killStandIns();
});

async function serve(logs: string[]) {
  env.HOSTILE_PID_DIR = pids;
  const nic = new Nic({ primary: '02:6d:73:00:00:01' });
  const sw = await Switch.create({ nic, allocation: 'random', log: (l) => logs.push(l) });
  const where = join(dir, `sw${Date.now()}${Math.random()}.sock`);
  served = await serveSwitch(sw, { listen: [{ kind: 'unix', path: where }], log: (l) => logs.push(l) });
  return { sw, where };
}

const ESC = /[\u0000-\u0008\u000a-\u001f\u007f]/;

describe('hostile vde_plug children (a stand-in speaking its stdio framing)', () => {
  it('junk frames and escape sequences on stderr: dropped and counted, logged escaped on one line each', async () => {
    const logs: string[] = [];
    const { sw, where } = await serve(logs);
    const port = spawnVdePlug('garbage', { command: standIn, log: (l) => logs.push(l) });
    const attached = sw.attach(port);
    await attached;
    await until(() => logs.some((l) => l.includes('vm-a connected as')), 10_000, 'the stand-in’s stderr in the log');
    await until(
      () => Object.keys(sw.counters().ports.find((p) => p.name === port.name)?.drops ?? {}).length > 0,
      10_000,
      'the junk to be counted',
    );
    for (const l of logs) expect(l, l).not.toMatch(ESC);
    // The forged line stays inside the child's own line, after its name.
    expect(logs.filter((l) => l.includes('switch: vm-a connected as')).every((l) => l.startsWith('vde:garbage: '))).toBe(true);
    expect(logs.some((l) => l.includes('\\x1b[2J'))).toBe(true);
    await streamPairWorks(sw, where);
    port.close();
    await until(() => sw.ports().length === 0, 10_000, 'the child port to close');
  });

  it('a child that exits in the middle of a frame: the port closes, the truncation is counted', async () => {
    const logs: string[] = [];
    const { sw, where } = await serve(logs);
    const port = spawnVdePlug('exit-mid-frame', { command: standIn, log: (l) => logs.push(l) });
    await sw.attach(port).catch(() => {});
    await until(
      () => (sw.counters().closed.drops.truncated ?? 0) === 1 || logs.some((l) => l.includes('(truncated)')),
      10_000,
      'the truncated frame',
    );
    await until(() => sw.ports().length === 0, 10_000, 'the child port to close');
    await streamPairWorks(sw, where);
  });

  it('a child that dies when the switch writes to it, and a program that does not exist', async () => {
    const logs: string[] = [];
    const { sw, where } = await serve(logs);
    const dying = spawnVdePlug('die-on-input', { command: standIn, log: (l) => logs.push(l) });
    await sw.attach(dying);
    const a = await joinStreamPeer(sw, where);
    try {
      // Broadcasts reach the child, which exits on the first; the later ones meet a closed pipe.
      for (let i = 0; i < 50; i++) a.peer.send(tagged('ff:ff:ff:ff:ff:ff', a.mac, i));
      await until(() => sw.ports().length === 1, 10_000, 'the dying child to be gone');
    } finally {
      a.peer.socket.destroy();
    }
    await until(() => sw.ports().length === 0, 10_000, 'the stream peer to leave');
    const missing = spawnVdePlug('x', { command: join(dir, 'no-such-vde_plug'), log: (l) => logs.push(l) });
    await sw.attach(missing).catch(() => {});
    await until(() => logs.some((l) => l.includes('cannot start')), 10_000, 'the spawn error in the log');
    await until(() => sw.ports().length === 0, 10_000, 'the missing child’s port to close');
    await streamPairWorks(sw, where);
  });
});

describe('a real vde_plug', () => {
  it('relays junk datagrams from its far side and is killed mid-run; the switch keeps serving', async (ctx) => {
    if (!(await needTool('vde_plug'))) return ctx.skip();
    const logs: string[] = [];
    const { sw, where } = await serve(logs);
    const far = createSocket('udp4');
    udp.add(far);
    far.on('error', () => {});
    await new Promise<void>((r) => far.bind(0, '127.0.0.1', r));
    const plugPort = await new Promise<number>((resolve) => {
      const s = createSocket('udp4');
      s.bind(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    const vnl = `udp://127.0.0.1:${plugPort}->127.0.0.1:${far.address().port}`;
    const port = spawnVdePlug(vnl, { log: (l) => logs.push(l) });
    await sw.attach(port);
    const pid = await (async () => {
      let found: number | undefined;
      await until(
        () => {
          for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
            try {
              const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
              const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1]);
              if (ppid === process.pid && cmd.startsWith('vde_plug') && cmd.includes(vnl)) found = Number(p);
            } catch {
              // Gone while looking.
            }
          }
          return found !== undefined;
        },
        10_000,
        'the vde_plug process',
      );
      return found!;
    })();
    // Junk from vde_plug's far side becomes frames the switch must drop: empty, one byte, a runt, a frame of 0xff.
    const junk = [new Uint8Array(0), Uint8Array.of(1), new Uint8Array(13).fill(0x1b), new Uint8Array(1500).fill(0xff)];
    await until(
      () => {
        for (const j of junk) far.send(j, plugPort, '127.0.0.1');
        return Object.keys(sw.counters().ports.find((p) => p.name === port.name)?.drops ?? {}).length > 0;
      },
      10_000,
      'junk through vde_plug to be counted',
    );
    process.kill(pid, 'SIGKILL');
    await until(() => sw.ports().length === 0, 10_000, 'the killed vde_plug’s port to close');
    await streamPairWorks(sw, where);
  });
});
