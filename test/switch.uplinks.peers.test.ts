// Per-guest passt uplinks with real guests: QEMU guests running iPXE and a v86 guest, each given its own address by its own passt;
// a passt killed and restarted, a guest released and back, the gateway reached, and nothing left behind.
import { readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { V86 } from 'v86';
import { Nic, PcapngTap, Switch, attachV86, bindClient } from 'macslot';
import { DHCP, HAVE_GUEST, REQUIRED, bootIpxe, parseDhcp, waitFor } from './fixtures/v86.js';
import { GATEWAY_MAC, serveSwitch, type ServedSwitch } from 'macslot/node';
import { macText, needTool, until } from './support/frames.js';
import { alive, killTracked, spawnTracked } from './support/processes.js';
import { LinuxGuest, needLinuxGuest } from './support/linux-guest.js';

const dir = mkdtempSync(join(tmpdir(), 'macslot-uplinks-'));
const served: ServedSwitch[] = [];
/** Every passt pid the switch said it started: none may be left running. */
const passtPids = new Set<number>();
const passtDirs = new Set<string>();

afterEach(async () => {
  await killTracked('test');
  for (const s of served.splice(0)) await s.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A switch serving a named UNIX listener per guest, with one passt per guest as its uplink. */
async function start(
  names: readonly string[],
  clients: { name: string; address: string; multicast?: string[] }[],
  tap?: PcapngTap,
): Promise<{ served: ServedSwitch; logs: string[]; sock: (n: string) => string }> {
  const logs: string[] = [];
  const log = (l: string): void => {
    logs.push(l);
    const started = /passt started \(pid (\d+)\) in (\S+)/.exec(l);
    if (started) {
      passtPids.add(Number(started[1]));
      passtDirs.add(started[2]!);
    }
  };
  const sock = (n: string): string => join(dir, `${n}.sock`);
  const sw = await Switch.create({ nic: new Nic({ primary: '02:00:00:00:00:01' }), clients, log });
  const s = await serveSwitch(sw, {
    listen: names.map((n) => ({ kind: 'unix' as const, path: sock(n), name: n })),
    uplink: { kind: 'passt' },
    log,
    ...(tap === undefined ? {} : { tap }),
  });
  served.push(s);
  return { served: s, logs, sock };
}

/**
 * A QEMU guest booting iPXE from its e1000 ROM; -nographic has SeaBIOS copy the screen to the serial console on stdio, which the test
 * reads.
 */
class Guest {
  readonly child: ChildProcess;
  out = '';
  constructor(
    readonly mac: string,
    sock: string,
  ) {
    this.child = spawnTracked(
      'qemu-system-x86_64',
      [
        '-machine',
        'accel=tcg',
        '-m',
        '64',
        '-nographic',
        '-nodefaults',
        '-serial',
        'stdio',
        '-monitor',
        'none',
        '-boot',
        'n',
        '-device',
        `e1000,netdev=n0,mac=${mac}`,
        '-netdev',
        `stream,id=n0,server=off,addr.type=unix,addr.path=${sock}`,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const take = (b: Buffer): void => {
      // Without the terminal's escape sequences and carriage returns, so patterns see plain lines.
      this.out += b.toString('latin1').replace(/\r/g, '');
    };
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take);
  }
  /** Resolves with the match of `re` in the output after `from`. */
  async wait(re: RegExp, ms: number, from = 0): Promise<RegExpExecArray> {
    await until(
      () => re.test(this.out.slice(from).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')) || this.child.exitCode !== null,
      ms,
      `${re} from ${this.mac} (its console so far: ${JSON.stringify(this.out.slice(-400))})`,
    );
    const m = re.exec(this.out.slice(from).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''));
    if (m === null) throw new Error(`${this.mac} exited before ${re}: ${this.out.slice(-400)}`);
    return m;
  }

  /** Breaks into the iPXE shell before it boots from the network (Ctrl-B at its prompt). */
  async shell(): Promise<void> {
    await this.wait(/Press Ctrl-B for the iPXE command line/, 150_000);
    this.child.stdin!.write('\x02');
    await this.wait(/iPXE> /, 60_000);
  }
  /** Types `command` (slowly, as a busy guest polls its serial port late) and Enter; resolves with the match of `done` after it. */
  async type(command: string, done: RegExp, ms = 120_000): Promise<RegExpExecArray> {
    await new Promise((r) => setTimeout(r, 500));
    const from = this.out.length;
    for (const ch of command) {
      this.child.stdin!.write(ch);
      await new Promise((r) => setTimeout(r, 30));
    }
    this.child.stdin!.write('\r');
    return this.wait(done, ms, from);
  }
}

function leftovers(): { pids: number[]; dirs: string[] } {
  const names = new Set(readdirSync(tmpdir()));
  return { pids: [...passtPids].filter(alive), dirs: [...passtDirs].filter((d) => names.has(d.split('/').pop()!)) };
}

const LEASE = /net0: (\d+\.\d+\.\d+\.\d+)\/255\.255\.255\.0 gw 10\.0\.2\.2/;

describe('one passt per guest, with real guests', () => {
  it('two QEMU iPXE guests: distinct leases from their own passts; a killed passt restarts alone with its address; a returning MAC keeps ' +
    'its address', {
    timeout: 400_000,
  }, async (ctx) => {
    if (!(await needTool('qemu-system-x86_64')) || !(await needTool('passt'))) return ctx.skip();
    const A = '52:54:00:00:17:0a';
    const B = '52:54:00:00:17:0b';
    const {
      served: s,
      sock,
      logs,
    } = await start(
      ['a', 'b'],
      [
        { name: 'a', address: A },
        { name: 'b', address: B },
      ],
    );
    try {
      // Left alone, iPXE configures itself by DHCP and prints its lease.
      const [ga, gb] = [new Guest(A, sock('a')), new Guest(B, sock('b'))];
      const [addrA, addrB] = (await Promise.all([ga.wait(LEASE, 150_000), gb.wait(LEASE, 150_000)])).map((m) => m[1]!);
      expect(addrA).not.toBe(addrB);
      expect(s.uplinks!.guest(A)).toMatchObject({ address: addrA, state: 'up' });
      expect(s.uplinks!.guest(B)).toMatchObject({ address: addrB, state: 'up' });
      const ports = s.switch.counters().ports;
      expect(ports.map((p) => [p.client, p.address, p.uplinkState]).sort()).toEqual([
        ['a', addrA, 'up'],
        ['b', addrB, 'up'],
      ]);
      const pids = [s.uplinks!.guest(A)!.pid!, s.uplinks!.guest(B)!.pid!];
      expect(pids[0]).not.toBe(pids[1]);

      // Killing a's passt: it comes back with a's address, and b's passt is untouched.
      process.kill(pids[0]!, 'SIGKILL');
      await until(
        () => s.uplinks!.guest(A)!.restarts === 1 && s.uplinks!.guest(A)!.state === 'up',
        60_000,
        `a's passt restarted (log: ${logs.slice(-5).join(' | ')})`,
      );
      expect(s.uplinks!.guest(A)!.pid).not.toBe(pids[0]);
      expect(s.uplinks!.guest(A)!.address).toBe(addrA);
      expect(s.uplinks!.guest(B)).toMatchObject({ pid: pids[1], restarts: 0, state: 'up' });
      expect(alive(pids[1]!)).toBe(true);

      // a goes away: its client is released and its passt stopped; it returns with the same MAC and gets the same address.
      const restartedPid = s.uplinks!.guest(A)!.pid!;
      ga.child.kill('SIGKILL');
      await until(() => s.uplinks!.guest(A)!.state === 'stopped' && !alive(restartedPid), 60_000, `a's passt stopped on release`);
      const again = new Guest(A, sock('a'));
      expect((await again.wait(LEASE, 150_000))[1]).toBe(addrA);
      expect(s.uplinks!.guest(B)!.pid).toBe(pids[1]);
    } finally {
      await killTracked('test');
      await s.close();
    }
    expect(leftovers()).toEqual({ pids: [], dirs: [] });
  });
});

describe('a v86 guest and a QEMU guest behind one switch', () => {
  const suite = HAVE_GUEST || REQUIRED ? it : it.skip;
  suite('get distinct addresses from their own passts', { timeout: 400_000 }, async (ctx) => {
    if (!(await needTool('qemu-system-x86_64')) || !(await needTool('passt'))) return ctx.skip();
    const Q = '52:54:00:00:17:0c';
    const logs: string[] = [];
    const sock = join(dir, 'q.sock');
    const nic = new Nic({ primary: '00:14:4f:00:00:00', factory: { base: '00:14:4f:00:00:01', count: 2 } });
    const sw = await Switch.create({ nic, clients: [{ name: 'q', address: Q }], log: (l) => logs.push(l) });
    const s = await serveSwitch(sw, {
      listen: [{ kind: 'unix', path: sock, name: 'q' }],
      uplink: { kind: 'passt' },
      log: (l) => logs.push(l),
    });
    served.push(s);
    let emulator: V86 | undefined;
    try {
      // The v86 guest's client is bound to the switch's data plane directly; its frames reach the uplinks like any port's.
      const client = nic.openClient('v86');
      client.addressReserve();
      emulator = bootIpxe('ne2k');
      // The addresses the v86 guest asks for in its DHCPREQUESTs: sent only after an offer of that address reached it.
      const requested: string[] = [];
      emulator.add_listener('net0-send', (f: Uint8Array) => {
        const d = parseDhcp(f);
        if (d?.type === DHCP.REQUEST && d.requested !== undefined) requested.push(d.requested);
      });
      const port = attachV86(emulator, client);
      bindClient(sw.dataPlane, client, port);
      const q = new Guest(Q, sock);
      const lease = (await q.wait(LEASE, 150_000))[1]!;
      const acked = await waitFor('a DHCPREQUEST from the v86 guest', 150_000, () => requested[0]);
      expect(acked).not.toBe(lease);
      expect(s.uplinks!.guest(port.guestMac!.toString())).toMatchObject({ address: acked, state: 'up' });
      expect(s.uplinks!.guest(Q)).toMatchObject({ address: lease, state: 'up' });
      port.close();
    } finally {
      await emulator?.destroy();
      await killTracked('test');
      await s.close();
    }
    for (const l of logs) {
      const started = /passt started \(pid (\d+)\) in (\S+)/.exec(l);
      if (started) {
        passtPids.add(Number(started[1]));
        passtDirs.add(started[2]!);
      }
    }
    expect(leftovers()).toEqual({ pids: [], dirs: [] });
  });
});

describe('a guest reaches the gateway through its own passt', () => {
  it('iPXE fetches a file from the host at the gateway’s address', { timeout: 400_000 }, async (ctx) => {
    if (!(await needTool('qemu-system-x86_64')) || !(await needTool('passt'))) return ctx.skip();
    const A = '52:54:00:00:17:0d';
    const hits: string[] = [];
    // passt maps the gateway's address to the host's loopback, where this server listens.
    const server = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.end('ok\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const { served: s, sock } = await start(['a'], [{ name: 'a', address: A }]);
    try {
      const g = new Guest(A, sock('a'));
      await g.shell();
      await g.type('dhcp', /Configuring \(net0 [^)]*\)\.*\s*ok/);
      const fetched = await g.type(`imgfetch http://10.0.2.2:${port}/from-guest`, /\.\.\. ok|\(https?:\/\/ipxe\.org\/[0-9a-f]/);
      expect(fetched[0], g.out.slice(-600)).toBe('... ok');
      expect(hits).toEqual(['/from-guest']);
      expect(s.uplinks!.guest(A)).toMatchObject({ state: 'up' });
    } finally {
      server.close();
      await killTracked('test');
      await s.close();
    }
    expect(leftovers()).toEqual({ pids: [], dirs: [] });
  });
});

/** The Ethernet frames of a pcapng stream (its enhanced packet blocks), every interface's together. */
function pcapngFrames(bytes: Uint8Array): Uint8Array[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const frames: Uint8Array[] = [];
  for (let at = 0; at + 12 <= bytes.length; ) {
    const type = v.getUint32(at, true);
    const length = v.getUint32(at + 4, true);
    if (length < 12) break;
    if (type === 6) frames.push(bytes.subarray(at + 28, at + 28 + v.getUint32(at + 20, true)));
    at += length;
  }
  return frames;
}

/** ICMP echo requests (8) or replies (0) in `frames`: their Ethernet source and destination and IPv4 destination. */
function echoes(frames: readonly Uint8Array[], icmpType: number): { src: string; dst: string; to: string }[] {
  return frames
    .filter((f) => f.length >= 42 && f[12] === 8 && f[13] === 0 && f[23] === 1 && f[14 + ((f[14]! & 15) << 2)] === icmpType)
    .map((f) => ({ src: macText(f, 6), dst: macText(f, 0), to: [...f.subarray(30, 34)].join('.') }));
}

describe('two Linux guests on one switch reach each other by IP', () => {
  it('each has its own lease from its own passt, fetches from the gateway, and pings the other as unicast between their MACs', {
    timeout: 400_000,
  }, async (ctx) => {
    if (!(await needTool('qemu-system-x86_64')) || !(await needTool('passt')) || !needLinuxGuest()) return ctx.skip();
    const A = '52:54:00:00:17:1a';
    const B = '52:54:00:00:17:1b';
    const hits: string[] = [];
    const server = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.end('gateway-ok\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const httpPort = (server.address() as { port: number }).port;
    const chunks: Uint8Array[] = [];
    const tap = new PcapngTap((b) => chunks.push(b.slice()));
    // The solicited-node groups of the guests' MAC-derived IPv6 addresses: the switch passes a multicast frame only to
    // the clients that joined its group.
    const {
      served: s,
      sock,
      logs,
    } = await start(
      ['a', 'b'],
      [
        { name: 'a', address: A, multicast: ['33:33:ff:00:17:1a'] },
        { name: 'b', address: B, multicast: ['33:33:ff:00:17:1b'] },
      ],
      tap,
    );
    try {
      const [ga, gb] = [new LinuxGuest(A, sock('a')), new LinuxGuest(B, sock('b'))];
      await Promise.all([ga.ready(150_000), gb.ready(150_000)]);
      const dhcp = 'udhcpc -i eth0 -f -q -n -t 40 -T 3 -s /bin/dhcp-hook';
      const leases = await Promise.all([ga.run(dhcp, 200_000), gb.run(dhcp, 200_000)]);
      const [addrA, addrB] = leases.map((l) => /guest: lease (\d+\.\d+\.\d+\.\d+)\/24 router 10\.0\.2\.2/.exec(l.output)?.[1]);
      expect(addrA).toBeDefined();
      expect(addrB).toBeDefined();
      expect(addrA).not.toBe(addrB);
      expect(s.uplinks!.guest(A)).toMatchObject({ address: addrA, state: 'up' });
      expect(s.uplinks!.guest(B)).toMatchObject({ address: addrB, state: 'up' });

      // The gateway is the host (passt maps its address to the host's loopback).
      for (const [g, name] of [
        [ga, 'a'],
        [gb, 'b'],
      ] as const) {
        const got = await g.run(`wget -q -O - http://10.0.2.2:${httpPort}/from-${name}`, 120_000);
        expect(got).toMatchObject({ status: 0, output: expect.stringContaining('gateway-ok') });
      }
      expect(hits.sort()).toEqual(['/from-a', '/from-b']);

      // Each guest pings the other: it resolves the other's address to the other's MAC, not to the gateway's.
      const pingAB = await ga.run(`ping -c 3 -w 60 ${addrB}`, 120_000);
      expect(pingAB, pingAB.output).toMatchObject({
        status: 0,
        output: expect.stringMatching(/3 packets transmitted, 3 packets received/),
      });
      const pingBA = await gb.run(`ping -c 3 -w 60 ${addrA}`, 120_000);
      expect(pingBA, pingBA.output).toMatchObject({
        status: 0,
        output: expect.stringMatching(/3 packets transmitted, 3 packets received/),
      });
      const neighbour = await ga.run(`ip neigh show ${addrB}`, 60_000);
      expect(neighbour.output).toContain(`lladdr ${B}`);

      // The capture: the echoes went between the two guests' MACs, none through a passt.
      const frames = pcapngFrames(Buffer.concat(chunks));
      const requests = echoes(frames, 8);
      const replies = echoes(frames, 0);
      expect(requests.filter((e) => e.src === A && e.dst === B && e.to === addrB).length).toBeGreaterThanOrEqual(3);
      expect(requests.filter((e) => e.src === B && e.dst === A && e.to === addrA).length).toBeGreaterThanOrEqual(3);
      expect(replies.filter((e) => e.src === B && e.dst === A && e.to === addrA).length).toBeGreaterThanOrEqual(3);
      expect(replies.filter((e) => e.src === A && e.dst === B && e.to === addrB).length).toBeGreaterThanOrEqual(3);
      expect([...requests, ...replies].filter((e) => e.dst === GATEWAY_MAC || e.src === GATEWAY_MAC)).toEqual([]);
      // The ARP requests for the other guest were kept from the sender's passt.
      expect(s.uplinks!.guest(A)!.drops['neighbour-arp']).toBeGreaterThanOrEqual(1);

      // IPv6: each passt was given its guest's own address, and advertises the guests' prefix, in which each guest also
      // forms an address from its MAC; a's solicitation for b's is kept from a's passt, b answers, the echoes flow.
      const assigned = (mac: string): string | undefined =>
        logs.map((l) => new RegExp(`^passt:${mac}: +assign: ([0-9a-f:]+:[0-9a-f:]*)$`).exec(l)?.[1]).find((a) => a?.includes(':'));
      expect([assigned(A), assigned(B)]).toEqual([s.uplinks!.guest(A)!.address6, s.uplinks!.guest(B)!.address6]);
      expect(assigned(A)).not.toBe(assigned(B));
      const global6 = async (g: LinuxGuest): Promise<string> => {
        // Polls inside the guest until the address has left its tentative state (duplicate address detection).
        const wait =
          'for i in $(seq 120); do ip -6 addr show dev eth0 scope global | grep -v tentative | grep -q fd00:6d73 && break; sleep 1; done';
        const got = await g.run(`${wait}; ip -6 addr show dev eth0 scope global`, 200_000);
        const m = /inet6 (fd00:6d73::[0-9a-f:]+)\/64/.exec(got.output);
        expect(m, got.output).not.toBeNull();
        return m![1]!;
      };
      const [a6, b6] = [await global6(ga), await global6(gb)];
      expect(a6).not.toBe(b6);
      const ping6 = await ga.run(`ping6 -c 3 -w 60 ${b6}`, 120_000);
      expect(ping6, ping6.output).toMatchObject({
        status: 0,
        output: expect.stringMatching(/3 packets transmitted, 3 packets received/),
      });
      expect((await ga.run(`ip -6 neigh show ${b6}`, 60_000)).output).toContain(`lladdr ${B}`);
      expect(s.uplinks!.guest(A)!.drops['neighbour-nd']).toBeGreaterThanOrEqual(1);
    } finally {
      server.close();
      await killTracked('test');
      await s.close();
    }
    expect(leftovers()).toEqual({ pids: [], dirs: [] });
  });
});
