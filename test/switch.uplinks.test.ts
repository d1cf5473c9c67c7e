// GuestUplinks with stand-in uplinks (memory ports): one uplink per guest MAC, addresses, what reaches an uplink and a guest, restart,
// release, cap.
import { afterEach, describe, expect, it } from 'vitest';
import { GuestUplinks, Nic, Switch, memoryPortPair, resolveGuestNetwork, type FramePort, type GuestUplinkRequest } from 'macslot';
import { ethernet, macBytes, macText, until } from './support/frames.js';

const GW_MAC = '02:6d:73:ff:00:01';

/** A stand-in uplink: its far end records what the guest sent and can answer. */
interface Fake {
  request: GuestUplinkRequest;
  far: FramePort;
  got: Uint8Array[];
  closed: boolean;
  end(): void;
}

function fakeStarter(): {
  fakes: Fake[];
  start: (r: GuestUplinkRequest) => Promise<{ port: FramePort; pid: number; close(): Promise<void>; kill(): void }>;
} {
  const fakes: Fake[] = [];
  let pid = 1000;
  return {
    fakes,
    start: async (request) => {
      const [near, far] = memoryPortPair(`fake:${request.mac}`, 'far');
      const fake: Fake = { request, far, got: [], closed: false, end: () => far.close() };
      far.onFrame((f) => fake.got.push(f.slice()));
      fakes.push(fake);
      return {
        port: near,
        pid: pid++,
        close: async () => {
          fake.closed = true;
          near.close();
        },
        kill: () => {
          fake.closed = true;
          near.close();
        },
      };
    },
  };
}

function ipv4(text: string): number[] {
  return text.split('.').map(Number);
}

/** An ARP request from `mac`/`ip` for `target`. */
function arpRequest(mac: string, ip: string, target: string): Uint8Array {
  const p = new Uint8Array(46);
  p.set([0, 1, 8, 0, 6, 4, 0, 1], 0);
  p.set(macBytes(mac), 8);
  p.set(ipv4(ip), 14);
  p.set(ipv4(target), 24);
  return ethernet('ff:ff:ff:ff:ff:ff', mac, 0x0806, p);
}

const pools: GuestUplinks[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.stop();
});

function pool(options: Partial<ConstructorParameters<typeof GuestUplinks>[0]> = {}): {
  up: GuestUplinks;
  fakes: Fake[];
  toGuests: Uint8Array[];
} {
  const { fakes, start } = fakeStarter();
  const up = new GuestUplinks({ start, restartDelayMs: 10, name: 'passt-less', ...options });
  const toGuests: Uint8Array[] = [];
  up.onFrame((f) => toGuests.push(f.slice()));
  pools.push(up);
  return { up, fakes, toGuests };
}

/** Networks refused, with the field named. */
const BAD_NETWORKS: readonly { name: string; network: Parameters<typeof resolveGuestNetwork>[0]; message: RegExp }[] = [
  { name: 'a prefix too long', network: { subnet: '10.0.2.0/31' }, message: /subnet "10\.0\.2\.0\/31" is not A\.B\.C\.D\/LEN/ },
  { name: 'host bits in the subnet', network: { subnet: '10.0.2.1/24' }, message: /has host bits set/ },
  {
    name: 'a gateway outside',
    network: { gateway: '10.0.3.2' },
    message: /gateway "10\.0\.3\.2" is not a host address of 10\.0\.2\.0\/24/,
  },
  { name: 'a DNS on the broadcast address', network: { dns: '10.0.2.255' }, message: /dns "10\.0\.2\.255" is not a host address/ },
  { name: 'a range backwards', network: { range: ['10.0.2.20', '10.0.2.10'] }, message: /ends before it starts/ },
  {
    name: 'a range of the gateway only',
    network: { range: ['10.0.2.2', '10.0.2.2'] },
    message: /holds no address besides the gateway and DNS/,
  },
  { name: 'a cap of 0', network: { maxUplinks: 0 }, message: /maxUplinks must be an integer in 1\.\.4096, got 0/ },
  { name: 'a malformed address', network: { gateway: '10.0.2.300' }, message: /gateway "10\.0\.2\.300" is not an IPv4 address/ },
  { name: 'an IPv6 prefix not /64', network: { subnet6: 'fd00:1:2:3::/48' }, message: /subnet6 "fd00:1:2:3::\/48" is not an IPv6 prefix/ },
  { name: 'an IPv6 prefix of three groups', network: { subnet6: 'fd00:1:2::/64' }, message: /subnet6 "fd00:1:2::\/64" is not/ },
];

describe('resolveGuestNetwork', () => {
  it('fills the defaults: 10.0.2.0/24, gateway .2, DNS .3, range .15 to .254, 64 uplinks', () => {
    const n = resolveGuestNetwork({});
    expect([n.prefixLength, n.maxUplinks, n.last - n.first + 1, n.gateway - n.base, n.dns - n.base]).toEqual([24, 64, 240, 2, 3]);
  });
  it.for(BAD_NETWORKS)('refuses $name with INVALID_ARGUMENT', ({ network, message }) => {
    expect(() => resolveGuestNetwork(network)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(message) }),
    );
  });
});

describe('GuestUplinks', () => {
  it('starts one uplink per source MAC, with distinct addresses, and gives each its own guest’s frames only', async () => {
    const { up, fakes } = pool();
    const a = '52:54:00:00:00:0a';
    const b = '52:54:00:00:00:0b';
    up.send(ethernet('ff:ff:ff:ff:ff:ff', a, 0x0800));
    up.send(ethernet('ff:ff:ff:ff:ff:ff', b, 0x0800));
    up.send(ethernet(GW_MAC, a, 0x0800));
    await until(() => fakes.length === 2 && fakes.every((f) => f.got.length > 0), 5000, 'both uplinks');
    const fa = fakes.find((f) => f.request.mac === a)!;
    const fb = fakes.find((f) => f.request.mac === b)!;
    expect(fa.request.address).not.toBe(fb.request.address);
    expect(fa.request).toMatchObject({
      prefixLength: 24,
      gateway: '10.0.2.2',
      dns: '10.0.2.3',
      gateway6: 'fd00:6d73::a00:202',
      dns6: 'fd00:6d73::a00:203',
    });
    // Each guest's IPv6 address is the prefix with its IPv4 address as the last 32 bits, so it is as distinct and stable.
    for (const f of [fa, fb]) {
      const [, , x, y] = f.request.address.split('.').map(Number);
      expect(f.request.address6).toBe(`fd00:6d73::a00:${((x! << 8) | y!).toString(16)}`);
    }
    expect(up.guest(a)!.address6).toBe(fa.request.address6);
    // Frames queued while the uplink started are given once it is up, in order.
    await until(() => fa.got.length === 2, 5000, 'the queued frame');
    expect(fa.got.map((f) => macText(f, 0))).toEqual(['ff:ff:ff:ff:ff:ff', GW_MAC]);
    expect(fb.got.map((f) => macText(f, 6))).toEqual([b]);
    expect(
      up
        .counters()
        .map((g) => [g.mac, g.state, g.toUplink])
        .sort(),
    ).toEqual([
      [a, 'up', 2],
      [b, 'up', 1],
    ]);
  });

  it('sends what an uplink says to its guest only: a broadcast or multicast destination becomes the guest’s MAC', async () => {
    const { up, fakes, toGuests } = pool();
    const a = '52:54:00:00:00:0a';
    up.send(ethernet('ff:ff:ff:ff:ff:ff', a, 0x0800));
    await until(() => fakes[0]?.got.length === 1, 5000, 'the uplink');
    fakes[0]!.far.send(ethernet('ff:ff:ff:ff:ff:ff', GW_MAC, 0x0800));
    fakes[0]!.far.send(ethernet('33:33:00:00:00:01', GW_MAC, 0x86dd));
    fakes[0]!.far.send(ethernet(a, GW_MAC, 0x0800));
    await until(() => toGuests.length === 3, 5000, 'three frames to the guest');
    expect(toGuests.map((f) => macText(f, 0))).toEqual([a, a, a]);
    expect(up.guest(a)!.fromUplink).toBe(3);
  });

  it('keeps ARP requests for other addresses of the subnet from the uplink, and passes the gateway’s and the world’s', async () => {
    const { up, fakes } = pool();
    const a = '52:54:00:00:00:0a';
    up.send(arpRequest(a, '10.0.2.20', '10.0.2.2'));
    up.send(arpRequest(a, '10.0.2.20', '10.0.2.3'));
    up.send(arpRequest(a, '10.0.2.20', '10.0.2.21'));
    up.send(arpRequest(a, '10.0.2.20', '10.0.2.254'));
    up.send(arpRequest(a, '10.0.2.20', '192.0.2.9'));
    await until(() => fakes[0]?.got.length === 3, 5000, 'the passed requests');
    const targets = fakes[0]!.got.map((f) => [...f.subarray(38, 42)].join('.'));
    expect(targets).toEqual(['10.0.2.2', '10.0.2.3', '192.0.2.9']);
    expect(up.guest(a)!.drops['neighbour-arp']).toBe(2);
  });

  it('keeps a neighbour solicitation for another guest’s IPv6 address from the sender’s uplink', async () => {
    const { up, fakes } = pool();
    const a = '52:54:00:00:00:0a';
    const b = '52:54:00:00:00:0b';
    const ll = (last: number): number[] => [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last];
    const ipv6 = (src: string, from: number[], dst: number[], icmpType: number, target: number[] = []): Uint8Array => {
      const p = new Uint8Array(40 + 24);
      p.set([0x60, 0, 0, 0, 0, 24, 58, 255], 0);
      p.set(from, 8);
      p.set(dst, 24);
      p[40] = icmpType;
      p.set(target, 48);
      return ethernet('33:33:ff:00:00:01', src, 0x86dd, p);
    };
    const multicast = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1];
    // b sends from fe80::b (a router solicitation), then a solicits fe80::b and fe80::1.
    up.send(ipv6(b, ll(0x0b), multicast, 133));
    up.send(ipv6(a, ll(0x0a), multicast, 135, ll(0x0b)));
    up.send(ipv6(a, ll(0x0a), multicast, 135, ll(0x01)));
    await until(() => fakes.find((f) => f.request.mac === a)?.got.length === 1, 5000, 'a’s passed solicitation');
    expect(up.guest(a)!.drops['neighbour-nd']).toBe(1);
    expect([...fakes.find((f) => f.request.mac === a)!.got[0]!.subarray(62, 78)]).toEqual(ll(0x01));
  });

  it('keeps a neighbour solicitation for any address of the guests’ IPv6 prefix from the uplink, but the gateway’s and DNS’s', async () => {
    const { up, fakes } = pool({ subnet6: 'fd00:0db8:0:7::/64' });
    const a = '52:54:00:00:00:0a';
    const addr = (last: number[]): number[] => [0xfd, 0, 0x0d, 0xb8, 0, 0, 0, 7, 0, 0, 0, 0, ...last];
    const ns = (target: number[]): Uint8Array => {
      const p = new Uint8Array(40 + 24);
      p.set([0x60, 0, 0, 0, 0, 24, 58, 255], 0);
      p.set(addr([10, 0, 2, 40]), 8);
      p.set([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, ...target.slice(13)], 24);
      p[40] = 135;
      p.set(target, 48);
      return ethernet('33:33:ff:00:00:01', a, 0x86dd, p);
    };
    // Another guest's (never seen yet), a SLAAC address in the prefix, the gateway's, the DNS server's, one outside.
    up.send(ns(addr([10, 0, 2, 41])));
    up.send(ns(addr([0x50, 0x54, 0, 0xff])));
    up.send(ns(addr([10, 0, 2, 2])));
    up.send(ns(addr([10, 0, 2, 3])));
    up.send(ns([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]));
    await until(() => fakes[0]?.got.length === 3, 5000, 'the passed solicitations');
    expect(fakes[0]!.got.map((f) => [...f.subarray(74, 78)].join('.'))).toEqual(['10.0.2.2', '10.0.2.3', '0.0.0.9']);
    expect(up.guest(a)!.drops['neighbour-nd']).toBe(2);
    expect(fakes[0]!.request).toMatchObject({ gateway6: 'fd00:db8:0:7::a00:202', dns6: 'fd00:db8:0:7::a00:203' });
  });

  it('restarts an uplink that ends with the same address, and leaves the other guest’s alone', async () => {
    const { up, fakes } = pool();
    const a = '52:54:00:00:00:0a';
    const b = '52:54:00:00:00:0b';
    const addrA = up.open(a);
    up.open(b);
    await until(() => up.counters().every((g) => g.state === 'up'), 5000, 'both up');
    const pidB = up.guest(b)!.pid;
    fakes.find((f) => f.request.mac === a)!.end();
    await until(() => up.guest(a)!.restarts === 1 && up.guest(a)!.state === 'up', 5000, 'a restarted');
    const restarted = fakes.filter((f) => f.request.mac === a);
    expect(restarted.map((f) => f.request.address)).toEqual([addrA, addrA]);
    expect(up.guest(b)).toMatchObject({ state: 'up', pid: pidB, restarts: 0 });
  });

  it('stops a released guest’s uplink, and gives the same MAC the same address when it returns', async () => {
    const { up, fakes } = pool();
    const a = '52:54:00:00:00:0a';
    const addr = up.open(a);
    await until(() => up.guest(a)?.state === 'up', 5000, 'a up');
    await up.release(a);
    expect(up.guest(a)!.state).toBe('stopped');
    expect(fakes[0]!.closed).toBe(true);
    up.send(ethernet('ff:ff:ff:ff:ff:ff', a, 0x0800));
    await until(() => fakes.length === 2 && up.guest(a)?.state === 'up', 5000, 'a back');
    expect(fakes[1]!.request.address).toBe(addr);
  });

  it('gives the same MAC the same address in a new pool, and probes past a taken one', () => {
    const a = '52:54:00:00:00:0a';
    const first = pool().up.open(a);
    expect(pool().up.open(a)).toBe(first);
    // A range of two: the second MAC gets the address the first does not hold.
    const { up } = pool({ range: ['10.0.2.40', '10.0.2.41'] });
    const x = up.open('52:54:00:00:00:01');
    const y = up.open('52:54:00:00:00:02');
    expect([x, y].sort()).toEqual(['10.0.2.40', '10.0.2.41']);
    expect(() => up.open('52:54:00:00:00:03')).toThrow(
      expect.objectContaining({
        code: 'QUOTA_EXCEEDED',
        message: expect.stringContaining('every address of 10.0.2.40..10.0.2.41 is held'),
      }),
    );
  });

  it('refuses a guest once when every address is held: one log line, frames counted as no-address, an address once one frees', async () => {
    const logs: string[] = [];
    const { up, fakes } = pool({ range: ['10.0.2.40', '10.0.2.40'], log: (l) => logs.push(l) });
    const a = '52:54:00:00:00:01';
    const b = '52:54:00:00:00:02';
    up.send(ethernet('ff:ff:ff:ff:ff:ff', a, 0x0800));
    for (let i = 0; i < 5; i++) expect(up.send(ethernet('ff:ff:ff:ff:ff:ff', b, 0x0800))).toBe(false);
    expect(logs.filter((l) => l.includes(b))).toEqual([`passt-less: every address of 10.0.2.40..10.0.2.40 is held; none for ${b}`]);
    expect(up.guest(b)).toMatchObject({
      address: null,
      state: 'refused',
      drops: { 'no-address': 5 },
      error: `QUOTA_EXCEEDED: every address of 10.0.2.40..10.0.2.40 is held; none for ${b}`,
    });
    expect(up.drops()).toEqual({ 'no-address': 5 });
    await until(() => up.guest(a)?.state === 'up', 5000, 'a up');
    // a's client is released: its stopped uplink gives its address up to b, whose next frame starts b's uplink.
    await up.release(a);
    up.send(ethernet('ff:ff:ff:ff:ff:ff', b, 0x0800));
    await until(() => up.guest(b)?.state === 'up', 5000, 'b up');
    expect(up.guest(b)!.address).toBe('10.0.2.40');
    expect(fakes.map((f) => [f.request.mac, f.request.address])).toEqual([
      [a, '10.0.2.40'],
      [b, '10.0.2.40'],
    ]);
  });

  it('after stop(): open() throws PORT_CLOSED, send() refuses, and no uplink starts', async () => {
    const { up, fakes } = pool();
    await up.stop();
    expect(() => up.open('52:54:00:00:00:01')).toThrow(expect.objectContaining({ code: 'PORT_CLOSED' }));
    expect(up.send(ethernet('ff:ff:ff:ff:ff:ff', '52:54:00:00:00:01', 0x0800))).toBe(false);
    expect([fakes.length, up.counters()]).toEqual([0, []]);
  });

  it('refuses an uplink beyond the cap with QUOTA_EXCEEDED, and starts it once one is released', async () => {
    const { up, fakes } = pool({ maxUplinks: 1 });
    up.open('52:54:00:00:00:01');
    expect(() => up.open('52:54:00:00:00:02')).toThrow(
      expect.objectContaining({
        code: 'QUOTA_EXCEEDED',
        message: expect.stringContaining('the cap of 1 running uplinks is reached; 52:54:00:00:00:02'),
      }),
    );
    expect(up.send(ethernet('ff:ff:ff:ff:ff:ff', '52:54:00:00:00:02', 0x0800))).toBe(false);
    expect(up.guest('52:54:00:00:00:02')).toMatchObject({ state: 'refused', drops: { refused: 1 } });
    await up.release('52:54:00:00:00:01');
    up.send(ethernet('ff:ff:ff:ff:ff:ff', '52:54:00:00:00:02', 0x0800));
    await until(() => up.guest('52:54:00:00:00:02')?.state === 'up', 5000, 'the second up');
    expect(fakes.map((f) => f.request.mac)).toEqual(['52:54:00:00:00:01', '52:54:00:00:00:02']);
  });

  it('in a switch: counters show each port’s address and uplink state, and releasing the client stops its uplink', async () => {
    const { fakes, start } = fakeStarter();
    const up = new GuestUplinks({ start });
    pools.push(up);
    const sw = await Switch.create({
      nic: new Nic({ primary: '02:00:00:00:00:01' }),
      clients: [{ name: 'a', address: '52:54:00:00:00:0a' }],
    });
    try {
      sw.attachGuestUplinks(up);
      const [port, far] = memoryPortPair('a', 'a-far');
      await sw.attach(port, { name: 'a' });
      far.send(ethernet(GW_MAC, '52:54:00:00:00:0a', 0x0800));
      await until(() => fakes[0]?.got.length === 1, 5000, 'the frame at a’s uplink');
      const c = sw.counters();
      expect(c.ports[0]).toMatchObject({
        client: 'a',
        mac: '52:54:00:00:00:0a',
        address: up.guest('52:54:00:00:00:0a')!.address,
        uplinkState: 'up',
      });
      expect(c.guests).toEqual([expect.objectContaining({ mac: '52:54:00:00:00:0a', state: 'up', toUplink: 1 })]);
      far.close();
      await until(() => fakes[0]!.closed, 5000, 'a’s uplink stopped on release');
      expect(sw.counters().guests![0]!.state).toBe('stopped');
    } finally {
      await sw.close();
    }
  });
});
