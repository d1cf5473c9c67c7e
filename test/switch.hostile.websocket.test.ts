// Hostile WebSocket peers against a served switch: bad paths, bad upgrades, oversized headers, stalls and closes at every stage
// are refused, counted and logged once, and a well-behaved pair keeps exchanging frames.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Nic, Switch } from 'macslot';
import { serveSwitch, type ServedSwitch } from 'macslot/node';
import { tagOf, tagged, until } from './support/frames.js';
import { deadline } from './support/deadline.js';

const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';

let served: ServedSwitch | undefined;
const sockets = new Set<Socket>();
const clients = new Set<WebSocket>();
afterEach(async () => {
  for (const s of sockets) s.destroy();
  for (const c of clients) c.terminate();
  sockets.clear();
  clients.clear();
  await served?.close();
  served = undefined;
});

async function serve(logs: string[], extra: { maxClientsPerListener?: number; handshakeTimeoutMs?: number; frameTimeoutMs?: number } = {}) {
  const nic = new Nic({ primary: '02:6d:73:00:00:01' });
  const sw = await Switch.create({
    nic,
    clients: [
      { name: 'vm-a', address: A },
      { name: 'vm-b', address: B },
    ],
    allocation: 'random',
  });
  served = await serveSwitch(sw, { listen: [{ kind: 'ws', host: '127.0.0.1', port: 0 }], log: (l) => logs.push(l), ...extra });
  const url = served.addresses[0]!;
  const port = Number(url.slice(url.lastIndexOf(':') + 1));
  return { sw, url, port, listener: served.listeners[0]! };
}

/** Sends `bytes` on a raw TCP connection (then half-closes it when `end`); resolves with what came back once the server closed it. */
async function raw(port: number, bytes: string | Uint8Array, end = false): Promise<string> {
  const s = connect(port, '127.0.0.1');
  sockets.add(s);
  s.on('error', () => {});
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString('latin1')));
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  await new Promise<void>((r, j) => (s.once('connect', r), s.once('error', j)));
  if (typeof bytes === 'string' ? bytes.length > 0 : bytes.length > 0) s.write(bytes);
  if (end) s.end();
  await deadline(closed, 20_000, () => s.destroy());
  sockets.delete(s);
  return got;
}

const upgrade = (path: string, headers: Record<string, string> = {}): string => {
  const h: Record<string, string> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  return `GET ${path} HTTP/1.1\r\n${Object.entries(h)
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
};

/** Each request is refused with its status (or a close) and counted under its reason. */
const REFUSED: readonly { what: string; request: string | Uint8Array; status: RegExp; reason: string }[] = [
  {
    what: 'a truncated percent-escape (the request that used to end the process)',
    request: upgrade('/%E0%A4%A'),
    status: /^HTTP\/1.1 400/,
    reason: 'bad-path',
  },
  { what: 'percent-encoding that is not UTF-8', request: upgrade('/%FF%FE'), status: /^HTTP\/1.1 400/, reason: 'bad-path' },
  { what: 'a lone surrogate as UTF-8 (CESU)', request: upgrade('/%ED%A0%80'), status: /^HTTP\/1.1 400/, reason: 'bad-path' },
  { what: 'an escape sequence in the name', request: upgrade('/%1B%5B2Jvm-a'), status: /^HTTP\/1.1 400/, reason: 'bad-path' },
  { what: 'a newline forging a log line', request: upgrade('/x%0Avm-b%3A%20connected'), status: /^HTTP\/1.1 400/, reason: 'bad-path' },
  { what: 'a right-to-left override', request: upgrade('/%E2%80%AEvm-a'), status: /^HTTP\/1.1 400/, reason: 'bad-path' },
  { what: 'a name above 256 characters', request: upgrade(`/${'n'.repeat(300)}`), status: /^HTTP\/1.1 400/, reason: 'bad-path' },
  { what: 'a plain GET', request: 'GET /vm-a HTTP/1.1\r\nHost: x\r\n\r\n', status: /^HTTP\/1.1 426/, reason: 'not-websocket' },
  {
    what: 'no Sec-WebSocket-Key',
    request: upgrade('/vm-a', { 'Sec-WebSocket-Key': '' }),
    status: /^HTTP\/1.1 400/,
    reason: 'bad-handshake',
  },
  {
    what: 'a bad Sec-WebSocket-Version',
    request: upgrade('/vm-a', { 'Sec-WebSocket-Version': '99' }),
    status: /^HTTP\/1.1 400/,
    reason: 'bad-handshake',
  },
  { what: 'a POST upgrade', request: upgrade('/vm-a').replace(/^GET/, 'POST'), status: /^HTTP\/1.1 400/, reason: 'bad-handshake' },
  {
    what: 'headers above the server limit',
    request: upgrade('/vm-a', { 'X-Pad': 'p'.repeat(40_000) }),
    status: /^HTTP\/1.1 431/,
    reason: 'oversize-header',
  },
  {
    what: 'bytes that are not HTTP',
    request: Uint8Array.from([0x16, 0x03, 0x01, 0x00, 0xff, 0, 0, 0, 0x0d, 0x0a, 0x0d, 0x0a]),
    status: /^HTTP\/1.1 400/,
    reason: 'bad-request',
  },
  {
    what: 'invalid UTF-8 in a header name',
    request: `GET /vm-a HTTP/1.1\r\nHo\xffst: x\r\n\r\n`,
    status: /^HTTP\/1.1 400/,
    reason: 'bad-request',
  },
];

async function wsPeer(url: string): Promise<{ ws: WebSocket; got: number[] }> {
  const ws = new WebSocket(url);
  clients.add(ws);
  ws.binaryType = 'nodebuffer';
  const got: number[] = [];
  ws.on('message', (d: Buffer) => got.push(tagOf(new Uint8Array(d)) ?? -1));
  ws.on('error', () => {});
  await new Promise<void>((r, j) => {
    const t = setTimeout(() => j(new Error(`timed out opening ${url}`)), 10_000);
    ws.once('open', () => (clearTimeout(t), r()));
    ws.once('error', (e) => (clearTimeout(t), j(e)));
    ws.once('unexpected-response', (_q, res) => (clearTimeout(t), j(new Error(`${url} answered ${res.statusCode}`))));
  });
  return { ws, got };
}

/** Checks the switch still serves: vm-a and vm-b connect and exchange a unicast each way. */
async function pairWorks(sw: Switch, url: string): Promise<void> {
  const before = sw.ports().length;
  const a = await wsPeer(`${url}/vm-a`);
  const b = await wsPeer(`${url}/vm-b`);
  await until(() => sw.ports().length === before + 2, 10_000, 'vm-a and vm-b to attach');
  a.ws.send(tagged(B, A, 1));
  b.ws.send(tagged(A, B, 2));
  await until(() => a.got.includes(2) && b.got.includes(1), 10_000, 'the unicast both ways');
  a.ws.terminate();
  b.ws.terminate();
  await until(() => sw.ports().length === before, 10_000, 'vm-a and vm-b to go');
}

/** Masked client frame: FIN, `opcode`, `payload` (masked with a zero key, so the bytes go as they are). */
const frame = (opcode: number, payload: number[], fin = true, masked = true): number[] => [
  (fin ? 0x80 : 0) | opcode,
  (masked ? 0x80 : 0) | payload.length,
  ...(masked ? [0, 0, 0, 0] : []),
  ...payload,
];

/** Frames sent after a completed upgrade that break the protocol: each closes its peer and counts a drop of its reason. */
const BAD_FRAMES: readonly { what: string; bytes: number[]; reason: string }[] = [
  { what: 'a text message of invalid UTF-8', bytes: frame(0x1, [0xff, 0xfe, 0xc0, 0x80]), reason: 'protocol' },
  { what: 'an unmasked client frame', bytes: frame(0x2, [1, 2, 3], true, false), reason: 'protocol' },
  { what: 'a reserved opcode', bytes: frame(0x3, [1]), reason: 'protocol' },
  { what: 'a fragmented control frame', bytes: frame(0x9, [1], false), reason: 'protocol' },
  { what: "a message above QEMU's frame size", bytes: [0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0], reason: 'oversize' },
];

describe('hostile WebSocket peers', () => {
  it('refuse each malformed request with its status and reason, once in the log, and the switch keeps serving', async () => {
    const logs: string[] = [];
    const { sw, url, port, listener } = await serve(logs);
    for (const r of REFUSED) {
      const answer = await raw(port, r.request);
      expect(answer, r.what).toMatch(r.status);
    }
    const want: Record<string, number> = {};
    for (const r of REFUSED) want[r.reason] = (want[r.reason] ?? 0) + 1;
    expect(listener.counters().refused).toEqual(want);
    // One line per reason, not one per peer; no raw control character reached the log.
    for (const reason of Object.keys(want))
      expect(
        logs.filter((l) => l.includes(`refused a peer (${reason})`)),
        reason,
      ).toHaveLength(1);
    for (const l of logs) expect(l).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(logs.some((l) => l.includes('vm-b: connected'))).toBe(false);
    expect(sw.ports()).toHaveLength(0);
    await pairWorks(sw, url);
    expect(listener.counters().accepted).toBe(2);
  });

  it('survive closes at every stage of the handshake and of a frame', async () => {
    const logs: string[] = [];
    const { sw, url, port, listener } = await serve(logs);
    const full = upgrade('/vm-a');
    // Close after connecting, after half a request line, after half the headers, and just before the final blank line.
    for (const cut of [0, 5, Math.floor(full.length / 2), full.length - 2]) await raw(port, full.slice(0, cut), true);
    // Close right after a completed upgrade, then in the middle of a frame header and in the middle of a payload.
    const mask = [0x82, 0x80 | 60, 1, 2, 3, 4];
    for (const tail of [[], [0x82], mask, [...mask, ...new Array(20).fill(7)]]) {
      await raw(port, Buffer.concat([Buffer.from(upgrade('/vm-a'), 'latin1'), Uint8Array.from(tail)]), true);
    }
    await until(() => sw.ports().length === 0, 10_000, 'every half-open peer to be gone');
    expect(listener.counters().clients).toBe(0);
    await pairWorks(sw, url);
  });

  it('close a peer that breaks the protocol after its upgrade, counting the reason', async () => {
    const logs: string[] = [];
    const { sw, url, port } = await serve(logs);
    const want: Record<string, number> = {};
    for (const b of BAD_FRAMES) {
      const s = connect(port, '127.0.0.1');
      sockets.add(s);
      s.on('error', () => {});
      s.resume();
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      await new Promise<void>((r) => s.once('connect', () => r()));
      s.write(upgrade('/'));
      await until(() => sw.ports().length === 1, 10_000, `the peer sending ${b.what} to attach`);
      s.write(Uint8Array.from(b.bytes));
      await deadline(closed, 20_000, () => s.destroy());
      sockets.delete(s);
      want[b.reason] = (want[b.reason] ?? 0) + 1;
      await until(
        () => sw.ports().length === 0 && (sw.counters().closed.drops[b.reason] ?? 0) === want[b.reason],
        10_000,
        `the ${b.reason} drop for ${b.what}`,
      );
    }
    await pairWorks(sw, url);
  });

  it('close a peer that never completes its upgrade, and one that stalls in the middle of a frame', async () => {
    const logs: string[] = [];
    const { sw, url, port, listener } = await serve(logs, { handshakeTimeoutMs: 1000, frameTimeoutMs: 1000 });
    // Says nothing at all; then half the headers and nothing more. Both are closed by the listener, not by us.
    expect(await raw(port, '')).toBe('');
    expect(await raw(port, upgrade('/vm-a').slice(0, 40))).toBe('');
    expect(listener.counters().refused['handshake-timeout']).toBe(2);
    // Upgrades, then sends the first bytes of a 60-byte frame and stalls: the pings go unanswered and it is closed.
    const s = connect(port, '127.0.0.1');
    sockets.add(s);
    s.on('error', () => {});
    // Read (and ignore) what comes back, or the end of the stream would wait behind unread bytes.
    s.resume();
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(upgrade('/vm-a'));
    await until(() => sw.ports().length === 1, 10_000, 'the stalling peer to attach');
    s.write(Uint8Array.from([0x82, 0x80 | 60, 1, 2, 3, 4, 9, 9]));
    await deadline(closed, 20_000, () => s.destroy());
    await until(() => (sw.counters().closed.drops['frame-timeout'] ?? 0) === 1, 10_000, 'the frame-timeout drop');
    // A well-behaved peer answers pings (ws does) and outlives several intervals.
    const a = await wsPeer(`${url}/vm-a`);
    const alive = Date.now();
    await until(() => Date.now() - alive > 3500 || a.ws.readyState !== WebSocket.OPEN, 10_000, 'three ping intervals');
    expect(a.ws.readyState).toBe(WebSocket.OPEN);
    a.ws.terminate();
    await until(() => sw.ports().length === 0, 10_000, 'the well-behaved peer to leave');
    await pairWorks(sw, url);
  });

  it('refuse connections beyond maxClientsPerListener with 503 and serve again once one leaves', async () => {
    const logs: string[] = [];
    const { sw, url, port, listener } = await serve(logs, { maxClientsPerListener: 2 });
    const a = await wsPeer(`${url}/vm-a`);
    const b = await wsPeer(`${url}/vm-b`);
    await until(() => sw.ports().length === 2, 10_000, 'two peers');
    for (let i = 0; i < 3; i++) expect(await raw(port, upgrade('/x'))).toMatch(/^HTTP\/1.1 503/);
    expect(listener.counters().refused.limit).toBe(3);
    expect(logs.filter((l) => l.includes('(limit)'))).toHaveLength(1);
    a.ws.terminate();
    b.ws.terminate();
    await until(() => listener.counters().clients === 0 && sw.ports().length === 0, 10_000, 'both to leave');
    await pairWorks(sw, url);
  });
});
