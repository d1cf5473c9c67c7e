// The switch's lifecycle with real processes: passt starting every time (a socket file that is not listening yet, its
// output, its private directory), and `macslot switch` (the built CLI) stopping on SIGINT/SIGTERM with peers connected.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { SwitchCounters } from 'macslot';
import { spawnPasst } from 'macslot/node';
import { needTool, until } from './support/frames.js';
import { streamPeer, type StreamPeer } from './support/peer.js';
import { alive, spawnTracked } from './support/processes.js';

const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'macslot-life-'));
chmodSync(dir, 0o755);

/**
 * Stand-ins for passt, each a program taking passt's arguments. Every one says its pid and socket path first.
 * `late` creates its socket path as a plain file (connecting to it is refused, as to passt's socket before it
 * listens) and listens only 300 ms later; `fails` exits with a message; `hangs` never listens; `stubborn` listens
 * at once and ignores SIGTERM.
 */
const FAKES = {
  late: `setTimeout(() => { fs.unlinkSync(path); listen(); }, 300); fs.writeFileSync(path, '');`,
  fails: `console.error('fake passt: cannot open /dev/net/tun'); process.exit(1);`,
  hangs: `setInterval(() => {}, 1000);`,
  stubborn: `process.on('SIGTERM', () => console.error('fake passt: ignoring SIGTERM')); listen();`,
} as const;

/** Returns a directory holding the stand-in `kind` as a program called passt. */
function fake(kind: keyof typeof FAKES): string {
  const bin = join(dir, `bin-${kind}`);
  if (existsSync(join(bin, 'passt'))) return bin;
  mkdirSync(bin, { recursive: true });
  const text = `#!${process.execPath}
const fs = require('node:fs');
const net = require('node:net');
const args = process.argv.slice(2);
const path = args[args.indexOf('-s') + 1];
console.error('fake passt: pid ' + process.pid + ' socket ' + path);
function listen() {
  const srv = net.createServer((s) => { s.on('data', () => {}); s.on('error', () => {}); });
  srv.listen(path, () => console.error('fake passt: listening'));
}
${FAKES[kind]}
`;
  writeFileSync(join(bin, 'passt'), text, { mode: 0o755 });
  return bin;
}

// Everything a test started, ended whatever happens.
const pids = new Set<number>();
const children: ChildProcess[] = [];
const peers: StreamPeer[] = [];
const dirs = new Set<string>();
afterEach(() => {
  for (const p of peers.splice(0)) p.socket.destroy();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  pids.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Notes the pid and directory a fake passt or spawnPasst announced in `text`, so they are cleaned up on failure. */
function track(text: string): { pid: number | undefined; passtDir: string | undefined } {
  const fakePid = /fake passt: pid (\d+) socket (\S+)/.exec(text);
  const started = /passt started \(pid (\d+)\) in (\S+)/.exec(text);
  const pid = Number(started?.[1] ?? fakePid?.[1] ?? NaN);
  const passtDir = started?.[2] ?? (fakePid ? dirname(fakePid[2]!) : undefined);
  if (Number.isInteger(pid)) pids.add(pid);
  if (passtDir !== undefined) dirs.add(passtDir);
  return { pid: Number.isInteger(pid) ? pid : undefined, passtDir };
}

describe('spawnPasst', () => {
  it('retries the connect while the socket exists but does not listen yet, logs passt’s output, keeps its directory private', async () => {
    const logs: string[] = [];
    const passt = await spawnPasst({ command: join(fake('late'), 'passt'), log: (l) => logs.push(l), timeoutMs: 10_000 });
    const { passtDir } = track(logs.join('\n'));
    try {
      expect(passtDir).toBe(dirname(passt.socketPath));
      expect(statSync(passtDir!).mode & 0o777).toBe(0o700);
      // The line passt printed before it listened reached the log, tagged with the port's name.
      expect(logs.some((l) => /^passt:\S+: fake passt: pid \d+ socket /.test(l))).toBe(true);
      await until(() => logs.some((l) => l.endsWith('fake passt: listening')), 10_000, 'the late line in the log');
    } finally {
      await passt.close();
    }
    expect(existsSync(passtDir!)).toBe(false);
    expect(alive(passt.pid!)).toBe(false);
  }, 30_000);

  it('removes its directory and names passt’s message when passt fails', async () => {
    const logs: string[] = [];
    await expect(spawnPasst({ command: join(fake('fails'), 'passt'), log: (l) => logs.push(l), timeoutMs: 10_000 })).rejects.toThrow(
      /PEER_INVALID: .*cannot open \/dev\/net\/tun/,
    );
    const { passtDir } = track(logs.join('\n'));
    expect(passtDir).toBeDefined();
    expect(existsSync(passtDir!)).toBe(false);
  }, 30_000);

  it('stops passt and removes its directory when start-up is aborted', async () => {
    const logs: string[] = [];
    const abort = new AbortController();
    const starting = spawnPasst({
      command: join(fake('hangs'), 'passt'),
      log: (l) => logs.push(l),
      timeoutMs: 20_000,
      signal: abort.signal,
    });
    await until(() => /fake passt: pid/.test(logs.join('\n')), 10_000, 'the fake passt to start');
    const { pid, passtDir } = track(logs.join('\n'));
    abort.abort();
    await expect(starting).rejects.toMatchObject({ code: 'PORT_CLOSED' });
    expect(existsSync(passtDir!)).toBe(false);
    await until(() => !alive(pid!), 5000, 'the fake passt to end');
  }, 30_000);

  it('starts the real passt every time', async (ctx) => {
    if (!(await needTool('passt'))) return ctx.skip();
    for (let i = 0; i < 8; i++) {
      const logs: string[] = [];
      const passt = await spawnPasst({ log: (l) => logs.push(l), timeoutMs: 10_000 });
      track(logs.join('\n'));
      const d = dirname(passt.socketPath);
      expect(statSync(d).mode & 0o777).toBe(0o700);
      await passt.close();
      expect(existsSync(d)).toBe(false);
    }
  }, 120_000);
});

/** The built CLI as a child with `PATH` led by `bin`, with its output and a way to wait for a stderr line. */
function startCli(args: string[], bin?: string) {
  const env = { ...process.env, ...(bin ? { PATH: `${bin}:${process.env.PATH ?? ''}` } : {}) };
  const child = spawn(process.execPath, [CLI, 'switch', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => {
    err += b.toString();
    track(err);
  });
  const exited = new Promise<{ code: number | null; at: number }>((r) => child.once('exit', (code) => r({ code, at: Date.now() })));
  return {
    child,
    exited,
    out: () => out,
    err: () => err,
    waitErr: (re: RegExp, ms = 20_000) => until(() => re.test(err), ms, `${re} on the switch's stderr (so far: ${err.slice(-600)})`),
  };
}

/** Which passt the CLI tests run: a stand-in always, the real one where installed (and always under CI). */
const PASSTS = [
  { name: 'a stand-in passt', bin: () => fake('late'), real: false },
  { name: 'the real passt', bin: () => undefined, real: true },
];

describe('macslot switch stops on a signal', () => {
  it.for(PASSTS)(
    'SIGTERM with two peers connected and $name: stopped within 2 s, counters printed, passt gone',
    { timeout: 60_000 },
    async ({ bin, real }, ctx) => {
      if (real && !(await needTool('passt'))) return ctx.skip();
      const sock = join(dir, `stop-${real}.sock`);
      const cli = startCli(['--listen', `unix:${sock}`, '--uplink', 'passt-shared', '--json'], bin());
      await cli.waitErr(/passt started \(pid \d+\)/);
      await cli.waitErr(/listening on unix:/);
      const { pid, passtDir } = track(cli.err());
      for (let i = 0; i < 2; i++) peers.push(await streamPeer(sock));
      await until(() => (cli.err().match(/connected as/g) ?? []).length === 2, 20_000, `two connected peers (${cli.err().slice(-600)})`);
      const sent = Date.now();
      cli.child.kill('SIGTERM');
      const { code, at } = await cli.exited;
      expect(code).toBe(0);
      expect(at - sent).toBeLessThan(2000);
      const counters = JSON.parse(cli.out().trim().split('\n').at(-1)!) as SwitchCounters;
      expect(counters.ports).toHaveLength(2);
      expect(counters.uplink?.name).toMatch(/^passt:/);
      // The peers were hung up on; passt ended and its directory is gone.
      await Promise.all(peers.map((p) => p.closed));
      await until(() => !alive(pid!), 5000, 'passt to end');
      expect(existsSync(passtDir!)).toBe(false);
    },
  );

  it('a second signal exits at once, ending passt and removing its directory', { timeout: 60_000 }, async () => {
    const sock = join(dir, 'twice.sock');
    const cli = startCli(['--listen', `unix:${sock}`, '--uplink', 'passt-shared'], fake('stubborn'));
    await cli.waitErr(/passt started \(pid \d+\)/);
    await cli.waitErr(/listening on unix:/);
    const { pid, passtDir } = track(cli.err());
    peers.push(await streamPeer(sock));
    await cli.waitErr(/connected as/);
    cli.child.kill('SIGINT');
    // The stand-in ignores SIGTERM, so the first stop would wait for it; the second signal does not.
    await cli.waitErr(/fake passt: ignoring SIGTERM/);
    const sent = Date.now();
    cli.child.kill('SIGTERM');
    const { code, at } = await cli.exited;
    expect(code).toBe(128 + 15);
    expect(at - sent).toBeLessThan(1000);
    await until(() => !alive(pid!), 5000, 'passt to end');
    expect(existsSync(passtDir!)).toBe(false);
  });

  /**
   * What the switch gets once the reader of its standard output is gone: `counters` sends SIGUSR1 first (the counters
   * then fail to print) and connects a peer, so that signal has been handled before `stop` is sent.
   */
  const CLOSED_STDOUT = [
    { name: 'SIGTERM', counters: false, stop: 'SIGTERM' },
    { name: 'SIGINT', counters: false, stop: 'SIGINT' },
    { name: 'SIGUSR1, a peer, then SIGTERM', counters: true, stop: 'SIGTERM' },
  ] as const;

  it.for(CLOSED_STDOUT)(
    'standard output closed, then $name: the first stop signal ends it quietly, listener gone',
    { timeout: 60_000 },
    async ({ name, counters, stop }) => {
      const sock = join(dir, `closed-stdout-${name.replace(/\W+/g, '-')}.sock`);
      // Tracked: a switch that ignored the signal is killed when the test ends, whatever happens.
      const child = spawnTracked(process.execPath, [CLI, 'switch', '--listen', `unix:${sock}`, '--json'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
      const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
        child.once('exit', (code, signal) => r({ code, signal })),
      );
      await until(() => /listening on unix:/.test(err), 20_000, `the switch listening (stderr: ${err.slice(-600)})`);
      // The reader goes away (`macslot switch --json | true`): every write to standard output now fails with EPIPE.
      const stdoutClosed = new Promise((r) => child.stdout!.once('close', r));
      child.stdout!.destroy();
      await stdoutClosed;
      if (counters) {
        child.kill('SIGUSR1');
        peers.push(await streamPeer(sock));
        await until(() => /connected as/.test(err), 20_000, `a connected peer (stderr: ${err.slice(-600)})`);
      }
      child.kill(stop);
      // The stop takes at most 2 s; a switch that kept running after the first stop signal fails here.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ended = await Promise.race([exited, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 15_000)))]);
      clearTimeout(timer);
      expect(ended, `the switch still ran 15 s after ${name} (stderr: ${err.slice(-600)})`).toBeDefined();
      // A reader that went away is not a failure (as for `| head`): status 0, no stack trace, nothing about the pipe.
      expect(ended, err).toEqual({ code: 0, signal: null });
      expect(err).not.toMatch(/EPIPE|\n\s+at /);
      expect(existsSync(sock)).toBe(false);
    },
  );

  it('a signal during start-up stops passt and removes its directory', { timeout: 60_000 }, async () => {
    const sock = join(dir, 'early.sock');
    const cli = startCli(['--listen', `unix:${sock}`, '--uplink', 'passt-shared'], fake('hangs'));
    await cli.waitErr(/fake passt: pid \d+/);
    const { pid, passtDir } = track(cli.err());
    cli.child.kill('SIGTERM');
    const { code } = await cli.exited;
    expect(code).toBe(1);
    expect(cli.err()).toMatch(/PORT_CLOSED: passt start-up was aborted/);
    await until(() => !alive(pid!), 5000, 'passt to end');
    expect(existsSync(passtDir!)).toBe(false);
  });
});
