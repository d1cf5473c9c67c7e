// Real peers around the built `macslot switch` and the switch API: passt as the uplink, two vde_plug processes, and a QEMU guest booting
// iPXE.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Nic, Switch, memoryPortPair, type SwitchCounters } from 'macslot';
import { serveSwitch, spawnPasst } from 'macslot/node';
import {
  dhcpDiscover,
  dhcpMessageType,
  icmpv6Type,
  macText,
  needTool,
  routerSolicitation,
  tagOf,
  tagged,
  until,
} from './support/frames.js';
import { streamPeer } from './support/peer.js';
import { spawnTracked } from './support/processes.js';

const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'macslot-peers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The built CLI as a child, with its stdout, stderr and a way to wait for a stderr line. */
function startCli(args: string[]) {
  // Tracked: a test that fails or times out kills the switch (and so its passt or vde_plug children) with it.
  const child: ChildProcess = spawnTracked(process.execPath, [CLI, 'switch', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    exited,
    out: () => out,
    err: () => err,
    waitErr: (re: RegExp, ms = 10000) => until(() => re.test(err), ms, `${re} on the switch's stderr (so far: ${err.slice(-500)})`),
  };
}

describe('passt as the uplink (acceptance 1)', () => {
  it('a client behind `macslot switch` gets passt’s DHCPOFFER and router advertisement', async (ctx) => {
    if (!(await needTool('passt'))) return ctx.skip();
    const mac = '02:00:00:00:00:42';
    const config = join(dir, 'passt.json');
    writeFileSync(
      config,
      JSON.stringify({ nic: { primary: '02:00:00:00:00:01' }, clients: [{ name: 'vm', address: mac, multicast: ['33:33:00:00:00:01'] }] }),
    );
    const sock = join(dir, 'passt-sw.sock');
    const cli = startCli(['--config', config, '--listen', `unix:${sock}`, '--uplink', 'passt', '--json']);
    try {
      await cli.waitErr(/listening on unix:/);
      const peer = await streamPeer(sock);
      await cli.waitErr(/connected as vm 02:00:00:00:00:42/);
      // Like a real host, retransmit until answered (RFC 2131 and RFC 4861 both expect it): a busy
      // passt sometimes lets the first router solicitation go unanswered.
      let sent = 0;
      const offered = (): boolean => peer.got.some((f) => dhcpMessageType(f) === 2);
      const advertised = (): boolean => peer.got.some((f) => icmpv6Type(f) === 134);
      for (let round = 0; round < 15 && !(offered() && advertised()); round++) {
        if (!offered()) {
          peer.send(dhcpDiscover(mac, 0x12345678));
          sent++;
        }
        if (!advertised()) {
          peer.send(routerSolicitation(mac));
          sent++;
        }
        await until(() => offered() && advertised(), 1000, '').catch(() => {});
      }
      await until(
        () => offered() && advertised(),
        1,
        `DHCPOFFER and RA from passt (got ${peer.got.length} frames; switch said: ${cli.err().slice(-800)})`,
      );
      const offer = peer.got.find((f) => dhcpMessageType(f) === 2)!;
      // The offer is for our transaction and our MAC.
      expect(new DataView(offer.buffer, offer.byteOffset + 14 + 20 + 8 + 4, 4).getUint32(0)).toBe(0x12345678);
      expect(macText(offer, 14 + 20 + 8 + 28)).toBe(mac);
      cli.child.kill('SIGUSR1');
      await until(() => cli.out().includes('\n'), 5000, 'counters on SIGUSR1');
      const c = JSON.parse(cli.out().split('\n')[0]!) as SwitchCounters;
      expect(c.ports).toHaveLength(1);
      expect(c.ports[0]!.rx.frames).toBe(sent);
      expect(c.ports[0]!.tx.frames).toBeGreaterThanOrEqual(2);
      expect(c.uplink!.tx.frames).toBe(sent);
      expect(c.uplink!.name).toMatch(/^passt:/);
      peer.socket.destroy();
    } finally {
      cli.child.kill('SIGTERM');
    }
    expect(await cli.exited).toBe(0);
  }, 30_000);
});

describe('learn in the built switch', () => {
  it('logs each MAC learnt or refused, and prints "mac": null for a port that has none yet', async () => {
    const sock = join(dir, 'learn-sw.sock');
    const config = join(dir, 'learn.json');
    writeFileSync(
      config,
      JSON.stringify({ nic: { primary: '02:00:00:00:00:01' }, switch: { allocation: 'learn', neighbours: ['02:4e:00:00:00:01'] } }),
    );
    const cli = startCli(['--config', config, '--listen', `unix:${sock}`, '--json']);
    try {
      await cli.waitErr(/listening on unix:/);
      const peer = await streamPeer(sock);
      await cli.waitErr(/connected as port-1 \(MAC from its first frame\)/);
      cli.child.kill('SIGUSR1');
      await until(() => cli.out().includes('\n'), 10_000, 'counters on SIGUSR1');
      expect((JSON.parse(cli.out().split('\n')[0]!) as SwitchCounters).ports[0]!.mac).toBeNull();
      peer.send(tagged('ff:ff:ff:ff:ff:ff', '02:4e:00:00:00:01', 1));
      await cli.waitErr(/refused to learn 02:4e:00:00:00:01 for client port-1: a neighbour/);
      peer.send(tagged('ff:ff:ff:ff:ff:ff', '52:54:00:00:00:07', 2));
      await cli.waitErr(/learnt 52:54:00:00:00:07 for client port-1/);
      peer.socket.destroy();
    } finally {
      cli.child.kill('SIGTERM');
    }
    expect(await cli.exited).toBe(0);
    const last = JSON.parse(cli.out().trim().split('\n').at(-1)!) as SwitchCounters;
    // The port may have closed before the signal or not: its drops are in one place or the other.
    expect([last.closed, ...last.ports].reduce((n, p) => n + (p.drops['mac-protected'] ?? 0), 0)).toBe(1);
  }, 30_000);
});

describe('vde_plug (acceptance 5)', () => {
  it('two vde_plug processes exchange frames through the switch, filtered by destination', async (ctx) => {
    if (!(await needTool('vde_plug'))) return ctx.skip();
    // Each vde_plug bridges a switch port to a UDP socket of this test (vdeplug4's udp:// plugin: one frame per datagram).
    const sockets = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<ReturnType<typeof createSocket>>((resolve) => {
            const s = createSocket('udp4');
            s.bind(0, '127.0.0.1', () => resolve(s));
          }),
      ),
    );
    const testPorts = sockets.map((s) => s.address().port);
    const plugPorts = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<number>((resolve) => {
            // A free port for vde_plug's side: bind, read it, let go.
            const s = createSocket('udp4');
            s.bind(0, '127.0.0.1', () => {
              const p = s.address().port;
              s.close(() => resolve(p));
            });
          }),
      ),
    );
    const got: Uint8Array[][] = [[], []];
    sockets.forEach((s, i) => s.on('message', (m) => got[i]!.push(new Uint8Array(m))));
    const A = '02:00:00:00:00:0a';
    const B = '02:00:00:00:00:0b';
    const nic = new Nic({ primary: '02:00:00:00:00:01' });
    const logs: string[] = [];
    const sw = await Switch.create({
      nic,
      clients: [
        { name: 'a', address: A },
        { name: 'b', address: B },
      ],
      log: (l) => logs.push(l),
    });
    const served = await serveSwitch(sw, {
      vde: plugPorts.map((p, i) => `udp://127.0.0.1:${p}->127.0.0.1:${testPorts[i]}`),
      log: (l) => logs.push(l),
    });
    try {
      await until(() => sw.ports().length === 2, 20_000, 'both vde_plug ports');
      const byName = Object.fromEntries(sw.ports().map((p) => [p.client.name, p]));
      // vde_plug's port names carry their VNL, so map client → which UDP socket reaches it.
      const idx = (name: string) => plugPorts.findIndex((p) => byName[name]!.port.name.includes(`:${p}->`));
      const send = (client: string, frame: Uint8Array) => sockets[idx(client)]!.send(frame, plugPorts[idx(client)]!, '127.0.0.1');
      // vde_plug may need a moment before its udp side is bound; retry the first frame until it passes.
      await until(
        () => {
          if (got[idx('b')]!.length === 0) send('a', tagged(B, A, 1));
          return got[idx('b')]!.length > 0;
        },
        20_000,
        'the first frame through two vde_plug processes',
      );
      // The retries above may still be on their way: a last frame from a, switched in order after them, marks their end.
      send('a', tagged(B, A, 100));
      await until(() => got[idx('b')]!.some((f) => tagOf(f) === 100), 20_000, "the end of the first frame's retries");
      got[0] = [];
      got[1] = [];
      send('a', tagged(B, A, 2));
      send('b', tagged(A, B, 3));
      send('a', tagged('02:00:00:00:00:0c', A, 4));
      send('b', tagged('ff:ff:ff:ff:ff:ff', B, 5));
      send('a', tagged('ff:ff:ff:ff:ff:ff', B, 6));
      // A last frame from each sender closes the window for late ones (the spoof, an echo): each sender's frames are
      // switched in order, so anything the earlier ones were to deliver would have come before it.
      send('a', tagged(B, A, 7));
      send('b', tagged(A, B, 8));
      await until(() => got[idx('b')]!.length >= 2 && got[idx('a')]!.length >= 3, 20_000, 'the frames through vde_plug');
      expect(got[idx('b')]!.map(tagOf)).toEqual([2, 7]);
      expect(got[idx('a')]!.map(tagOf)).toEqual([3, 5, 8]);
      const c = sw.counters().ports.find((p) => p.client === 'a')!;
      expect(c.drops.spoofed).toBe(1);
      expect(logs.some((l) => /vde:udp.*dropped \(spoofed\)/.test(l))).toBe(true);
    } finally {
      await served.close();
      sockets.forEach((s) => s.close());
    }
  }, 30_000);
});

describe('QEMU (acceptance 4)', () => {
  it.for([
    { how: 'with its MAC configured', mac: '52:54:00:12:34:56', options: { clients: [{ name: 'qemu', address: '52:54:00:12:34:56' }] } },
    {
      how: 'with its MAC learnt from its first frame',
      mac: '52:54:00:ab:cd:ef',
      options: { clients: [{ name: 'qemu', address: 'learn' }] },
    },
  ])(
    'a QEMU guest booting iPXE over -netdev stream sends DHCPDISCOVER through the switch to the uplink, $how',
    { timeout: 40_000 },
    async ({ mac, options }, ctx) => {
      if (!(await needTool('qemu-system-x86_64'))) return ctx.skip();
      const nic = new Nic({ primary: '02:00:00:00:00:01' });
      const sw = await Switch.create({ nic, ...options });
      const [up, upFar] = memoryPortPair('uplink', 'wire');
      const wire: Uint8Array[] = [];
      upFar.onFrame((f) => wire.push(f.slice()));
      const sock = join(dir, 'qemu.sock');
      const served = await serveSwitch(sw, { listen: [{ kind: 'unix', path: sock }] });
      sw.attachUplink(up);
      const qemu = spawnTracked(
        'qemu-system-x86_64',
        [
          '-machine',
          'accel=tcg',
          '-m',
          '128',
          '-display',
          'none',
          '-serial',
          'none',
          '-monitor',
          'none',
          '-nodefaults',
          '-boot',
          'n',
          '-device',
          `e1000,netdev=n0,mac=${mac}`,
          '-netdev',
          `stream,id=n0,server=off,addr.type=unix,addr.path=${sock}`,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let qerr = '';
      qemu.stderr!.on('data', (b: Buffer) => (qerr += b.toString()));
      try {
        await until(
          () => wire.some((f) => dhcpMessageType(f) === 1) || qemu.exitCode !== null,
          25000,
          `a DHCPDISCOVER from QEMU on the uplink (qemu said: ${qerr.slice(-300)})`,
        );
        expect(qemu.exitCode).toBeNull();
        const discover = wire.find((f) => dhcpMessageType(f) === 1)!;
        expect(macText(discover, 6)).toBe(mac);
        const port = sw.counters().ports.find((p) => p.client === 'qemu')!;
        expect(port.rx.frames).toBeGreaterThanOrEqual(1);
        expect(port.drops.spoofed ?? 0).toBe(0);
        expect(port.mac).toBe(mac);
      } finally {
        qemu.kill('SIGKILL');
        await served.close();
      }
    },
  );
});

describe('spawnPasst', () => {
  it('rejects with PEER_INVALID naming the program when passt cannot start', async () => {
    await expect(spawnPasst({ command: join(dir, 'no-such-passt'), timeoutMs: 1000 })).rejects.toThrow(
      /PEER_INVALID: passt did not offer .*no-such-passt/,
    );
  });
});

/** Bad storm control, neighbours and secrets, on the command line or in the switch object: the exit status and first line. */
const SWITCH_USAGE: readonly (readonly [string, number, string])[] = [
  [
    '--storm-control fast',
    2,
    'macslot switch: --storm-control "fast" is not RATE, RATE:BURST (frames per second, frames; integers ≥ 1) or off',
  ],
  ['--storm-control 0', 2, 'macslot switch: --storm-control "0" is not RATE, RATE:BURST (frames per second, frames; integers ≥ 1) or off'],
  [
    '--storm-control 10:0',
    2,
    'macslot switch: --storm-control "10:0" is not RATE, RATE:BURST (frames per second, frames; integers ≥ 1) or off',
  ],
  [
    '{"nic":{"primary":"02:00:00:00:00:01"},"switch":{"stormControl":{"rate":-1}}}',
    1,
    'macslot switch: CONFIG_INVALID: CFG: switch.stormControl: {"rate":-1} is not false or {"rate", "burst"}: storm control rate must be ' +
      'a number of frames per second > 0, got -1',
  ],
  [
    '{"nic":{"primary":"02:00:00:00:00:01"},"switch":{"stormControl":{"rate":5,"brust":5}}}',
    1,
    'macslot switch: CONFIG_INVALID: CFG: switch.stormControl: {"rate":5,"brust":5} is not false or {"rate", "burst"}: "brust" is not ' +
      'rate or burst',
  ],
  [
    '{"nic":{"primary":"02:00:00:00:00:01"},"switch":{"neighbours":["0:1:2:3:4:5"]}}',
    1,
    'macslot switch: CONFIG_INVALID: CFG: switch.neighbours[0]: "0:1:2:3:4:5" is not a MAC',
  ],
  [
    '{"nic":{"primary":"02:00:00:00:00:01"},"switch":{"secrets":{"vm-a":"short"}}}',
    1,
    'macslot switch: CONFIG_INVALID: CFG: switch.secrets["vm-a"]: the secret must be a string of 8 to 1024 characters',
  ],
];

describe('macslot switch usage', () => {
  it('refuses bad options before starting, naming the value', async () => {
    const { spawnSync } = await import('node:child_process');
    const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'switch', ...args], { encoding: 'utf8' });
    // A bad command line exits 2 with the help; a bad file or a failure to start exits 1.
    const none = run();
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/^macslot switch: nothing to switch: give at least one --listen or --vde\n\nusage: macslot switch/);
    const bad = run('--listen', 'bogus:1');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--listen "bogus:1" is not unix:PATH');
    const up = run('--listen', 'unix:/tmp/x.sock', '--uplink', 'carrier-pigeon');
    expect(up.stderr).toContain('--uplink "carrier-pigeon" is not none, passt, stream:PATH or vde:VNL');
    const cfg = join(dir, 'bad-switch.json');
    writeFileSync(cfg, JSON.stringify({ nic: { primary: '02:00:00:00:00:01' }, switch: { leaseTtlMs: -5 } }));
    const c = run('--config', cfg, '--listen', `unix:${join(dir, 'never.sock')}`);
    expect(c.status).toBe(1);
    expect(c.stderr).toContain('switch.leaseTtlMs: -5 is not an integer');
    writeFileSync(cfg, JSON.stringify({ nic: { primary: '02:00:00:00:00:01' }, switch: { allocation: 'learning' } }));
    const a = run('--config', cfg, '--listen', `unix:${join(dir, 'never.sock')}`);
    expect([a.status, a.stderr]).toEqual([
      1,
      `macslot switch: CONFIG_INVALID: ${cfg}: switch.allocation: "learning" is not auto, random, factory, learn, none\n`,
    ]);
    const flag = run('--allocation', 'learning', '--listen', `unix:${join(dir, 'never.sock')}`);
    expect(flag.stderr).toContain('--allocation "learning" is not auto, random, factory, learn, none');
    for (const [text, status, message] of SWITCH_USAGE) {
      const r = text.startsWith('{')
        ? (writeFileSync(cfg, text), run('--config', cfg, '--listen', `unix:${join(dir, 'never.sock')}`))
        : run(...text.split(' '), '--listen', `unix:${join(dir, 'never.sock')}`);
      expect([r.status, r.stderr.split('\n')[0]], text).toEqual([status, message.replace('CFG', cfg)]);
    }
  });

  it('says what --rewrite-source does, and takes --allow-spoof as its old name', async () => {
    const { spawnSync } = await import('node:child_process');
    const help = spawnSync(process.execPath, [CLI, 'switch', '--help'], { encoding: 'utf8' }).stdout;
    expect(help).toMatch(
      /--rewrite-source +send a frame whose source MAC is not the port's with the\n +port's own MAC instead of dropping it/,
    );
    expect(help).toContain('--allow-spoof is its old name');
    expect(help).not.toContain('let ports send with any source MAC');
    expect(help).toMatch(/--storm-control <r> +broadcast and multicast frames a port may send/);
  });
});
