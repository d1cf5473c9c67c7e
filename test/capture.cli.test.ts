// Capture files through the built command line: an interrupted `filter` leaves nothing behind, timestamps an output cannot
// hold fail naming the file and offset, and `gen` writes through a link to /dev/stdout without replacing the link.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CaptureWriter, type CaptureFormat } from 'macslot';
import { readCaptureFile } from 'macslot/node';

const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/cli/main.js');
const NIC = join(ROOT, 'test/fixtures/cli/nic.json');
// Generous: the machine may be busy; every wait below ends on an event long before this.
const DEADLINE_MS = 30_000;

let dir: string;
const children: ChildProcess[] = [];
beforeEach(() => {
  if (!existsSync(CLI)) throw new Error('dist/cli/main.js is missing; run npm run build:ts first');
  dir = mkdtempSync(join(tmpdir(), 'macslot-capcli-'));
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function cli(...args: string[]): { out: string; err: string; status: number | null } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
  return { out: r.stdout, err: r.stderr, status: r.status };
}

/** A broadcast frame every client of nic.json receives. */
const FRAME = Uint8Array.from({ length: 60 }, (_, i) => (i < 6 ? 0xff : i === 12 ? 0x08 : i));

function capture(format: CaptureFormat, frames: number, seconds = 1_700_000_000): Uint8Array {
  const parts: Uint8Array[] = [];
  const w = new CaptureWriter((b) => parts.push(b.slice()), { format });
  for (let i = 0; i < frames; i++) w.writeFrame(FRAME, seconds, i * 1000);
  w.close();
  return Buffer.concat(parts);
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((ok) => {
    if (child.exitCode !== null || child.signalCode !== null) ok({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => ok({ code, signal }));
  });
}

function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, fail) => (timer = setTimeout(() => fail(new Error(`timed out waiting for ${what}`)), DEADLINE_MS)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Resolves once a file ending in `.partial` is in `out` (watching, not polling on a timer). */
function partialAppears(out: string): Promise<void> {
  return new Promise((ok) => {
    const has = (): boolean => readdirSync(out).some((n) => n.endsWith('.partial'));
    const w = watch(out, () => {
      if (has()) w.close(), ok();
    });
    if (has()) w.close(), ok();
  });
}

describe('an interrupted filter leaves no partial file', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s while it waits for input ends it by that signal and removes every partial output',
    async (signal) => {
      const fifo = join(dir, 'in.pcap');
      if (spawnSync('mkfifo', [fifo]).status !== 0) throw new Error('mkfifo failed');
      const out = join(dir, 'out');
      mkdirSync(out);
      const child = spawn(process.execPath, [CLI, 'filter', fifo, '--config', NIC, '--out', out, '--dropped'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      const ended = exited(child);
      // Opening the FIFO's write end waits for the filter to open its read end; should the filter die first, open the
      // read end here so that the pending open returns.
      void ended.then(() => {
        try {
          closeSync(openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK));
        } catch {
          // Nothing to release.
        }
      });
      const input = await within(open(fifo, 'w'), 'the filter to open its input');
      try {
        const appeared = partialAppears(out);
        // A first part of the capture: the filter writes it out and waits for more.
        await input.write(capture('pcap', 200));
        await within(
          Promise.race([appeared, ended.then(() => Promise.reject(new Error(`filter ended early: ${stderr}`)))]),
          'a partial output',
        );
        child.kill(signal);
        const end = await within(ended, `the filter to end on ${signal}`);
        expect(end, stderr).toEqual({ code: null, signal });
        expect(readdirSync(out)).toEqual([]);
      } finally {
        await input.close();
      }
    },
  );

  it.each(['SIGINT', 'SIGTERM'] as const)('gen interrupted by %s ends by that signal and leaves no partial file', async (signal) => {
    const out = join(dir, 'out');
    mkdirSync(out);
    // Far more frames than it can write before the signal lands.
    const child = spawn(process.execPath, [CLI, 'gen', join(out, 'big.pcap'), '--config', NIC, '--frames', '1000000000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const ended = exited(child);
    await within(
      Promise.race([partialAppears(out), ended.then(() => Promise.reject(new Error(`gen ended early: ${stderr}`)))]),
      'a partial output',
    );
    child.kill(signal);
    expect(await within(ended, `gen to end on ${signal}`), stderr).toEqual({ code: null, signal });
    expect(readdirSync(out)).toEqual([]);
  });

  it('a failure part way (a corrupt record after good ones) removes every partial output too', () => {
    const good = capture('pcap', 50);
    const bad = Buffer.concat([good, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0])]);
    const src = join(dir, 'bad.pcap');
    writeFileSync(src, bad);
    const out = join(dir, 'out');
    const r = cli('filter', src, '--config', NIC, '--out', out, '--dropped');
    expect(r.status).toBe(1);
    expect(r.err).toContain(`CAPTURE_INVALID: "${src}" at byte offset ${good.length}:`);
    expect(readdirSync(out)).toEqual([]);
  });

  it('an output path it must not write over (a directory) fails naming it, and the outputs opened before it are removed', () => {
    const src = join(dir, 'in.pcap');
    writeFileSync(src, capture('pcap', 5));
    const out = join(dir, 'out');
    mkdirSync(join(out, 'vm-b.pcap'), { recursive: true });
    const r = cli('filter', src, '--config', NIC, '--out', out);
    expect(r.status).toBe(1);
    expect(r.err).toContain(`INVALID_ARGUMENT: "${join(out, 'vm-b.pcap')}" is a directory`);
    expect(readdirSync(out)).toEqual(['vm-b.pcap']);
  });
});

/** A pcapng section header and `count` minimal interface blocks (20 bytes each, Ethernet). */
function section(count: number): Buffer {
  const b = Buffer.alloc(28 + 20 * count);
  b.writeUInt32LE(0x0a0d0d0a, 0);
  b.writeUInt32LE(28, 4);
  b.writeUInt32LE(0x1a2b3c4d, 8);
  b.writeUInt16LE(1, 12);
  b.writeInt32LE(-1, 16);
  b.writeInt32LE(-1, 20);
  b.writeUInt32LE(28, 24);
  for (let i = 0, p = 28; i < count; i++, p += 20) {
    b.writeUInt32LE(1, p);
    b.writeUInt32LE(20, p + 4);
    b.writeUInt16LE(1, p + 8);
    b.writeUInt32LE(20, p + 16);
  }
  return b;
}

/** One enhanced packet block carrying FRAME on interface `iface`. */
function packet(iface: number): Buffer {
  const b = Buffer.alloc(32 + FRAME.length);
  b.writeUInt32LE(6, 0);
  b.writeUInt32LE(b.length, 4);
  b.writeUInt32LE(iface, 8);
  b.writeUInt32LE(FRAME.length, 20);
  b.writeUInt32LE(FRAME.length, 24);
  b.set(FRAME, 28);
  b.writeUInt32LE(b.length, b.length - 4);
  return b;
}

describe('interface blocks keep memory constant', () => {
  // Node and the data plane fit in this heap; before the cap, interface blocks alone grew the heap without bound.
  const capped = (...args: string[]): { err: string; status: number | null } => {
    const r = spawnSync(process.execPath, ['--max-old-space-size=64', CLI, ...args], { encoding: 'utf8', cwd: ROOT });
    return { err: r.stderr, status: r.status };
  };

  it('sections of 65,536 interfaces each, under a 64 MB heap, are read whole', () => {
    const src = join(dir, 'many.pcapng');
    writeFileSync(src, Buffer.concat([0, 1, 2].flatMap(() => [section(65_536), packet(65_535)])));
    const out = join(dir, 'out');
    const r = capped('filter', src, '--config', NIC, '--out', out, '--json');
    expect(r.status, r.err).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['primary.pcap', 'tap.pcap', 'vm-a.pcap', 'vm-b.pcap']);
  });

  it('one interface too many in a section is CAPTURE_INVALID at its offset, and no partial output stays behind', () => {
    const src = join(dir, 'too-many.pcapng');
    const head = Buffer.concat([section(1), packet(0)]);
    const rest = section(70_000).subarray(28);
    writeFileSync(src, Buffer.concat([head, rest]));
    const out = join(dir, 'out');
    const r = capped('filter', src, '--config', NIC, '--out', out, '--dropped');
    expect(r.status).toBe(1);
    expect(r.err).toContain(
      `CAPTURE_INVALID: "${src}" at byte offset ${head.length + 65_535 * 20}: more than 65536 interfaces in one section`,
    );
    expect(readdirSync(out)).toEqual([]);
  });
});

describe('timestamps an output cannot hold', () => {
  it('pcapng seconds past 2^32 are carried exactly into pcapng outputs', async () => {
    const src = join(dir, 'future.pcapng');
    writeFileSync(src, capture('pcapng', 3, 2 ** 32 + 5));
    const out = join(dir, 'out');
    const r = cli('filter', src, '--config', NIC, '--out', out, '--format', 'pcapng');
    expect(r.status, r.err).toBe(0);
    const seen: [number, number][] = [];
    await readCaptureFile(join(out, 'vm-a.pcapng'), (f) => void seen.push([f.seconds, f.nanoseconds]));
    expect(seen).toEqual([
      [2 ** 32 + 5, 0],
      [2 ** 32 + 5, 1000],
      [2 ** 32 + 5, 2000],
    ]);
  });

  it('and fail with CAPTURE_INVALID naming the file and offset for pcap outputs, leaving nothing behind', () => {
    const src = join(dir, 'future.pcapng');
    writeFileSync(src, capture('pcapng', 3, 2 ** 32 + 5));
    const out = join(dir, 'out');
    const r = cli('filter', src, '--config', NIC, '--out', out);
    expect(r.status).toBe(1);
    // The section and interface headers take 60 bytes; the first packet block starts there.
    expect(r.err).toContain(
      `CAPTURE_INVALID: "${src}" at byte offset 60: timestamp 4294967301 s is past what a pcap output holds (4294967295 s); --format ` +
        `pcapng holds it`,
    );
    expect(readdirSync(out)).toEqual([]);
  });

  it.each([
    ['pcap', 1_000_000, 'microsecond'],
    ['pcap-ns', 1_000_000_000, 'nanosecond'],
  ] as const)('a %s fraction of a whole second (%i) is CAPTURE_INVALID naming the file and offset', (format, fraction, unit) => {
    const bytes = Buffer.from(capture(format, 2));
    bytes.writeUInt32LE(fraction, 24 + 16 + 60 + 4);
    const src = join(dir, 'odd.pcap');
    writeFileSync(src, bytes);
    const r = cli('filter', src, '--config', NIC, '--out', join(dir, 'out'));
    expect(r.status).toBe(1);
    expect(r.err).toContain(`CAPTURE_INVALID: "${src}" at byte offset ${24 + 16 + 60 + 4}: ${unit} fraction ${fraction} is not below`);
    expect(readdirSync(join(dir, 'out'))).toEqual([]);
  });
});

describe('gen writes through links to open descriptors', () => {
  const gen = (to: string): string => `'${process.execPath}' '${CLI}' gen '${to}' --config '${NIC}' --frames 50 --seed 3`;

  it('a link to /dev/stdout that is a pipe gets the capture as a stream, and stays a link', () => {
    const link = join(dir, 'out.pcap');
    symlinkSync('/dev/stdout', link);
    const r = spawnSync('bash', ['-c', `${gen(link)} | cat`], { maxBuffer: 1 << 24 });
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(r.stdout.readUInt32LE(0)).toBe(0xa1b2c3d4);
    // The capture alone: the summary line goes to standard error, as for `-`.
    expect(r.stdout.length).toBe(24 + 50 * (16 + 64));
    expect(r.stderr.toString()).toContain('50 frames of 64 bytes');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readdirSync(dir)).toEqual(['out.pcap']);
  });

  it('a link to /dev/stdout redirected to a file appends to that file in place, and stays a link', () => {
    const link = join(dir, 'out.pcap');
    symlinkSync('/dev/stdout', link);
    const file = join(dir, 'redirected.pcap');
    const r = spawnSync('bash', ['-c', `${gen(link)} > '${file}'`]);
    expect(r.status, r.stderr.toString()).toBe(0);
    const viaFile = cli('gen', join(dir, 'plain.pcap'), '--config', NIC, '--frames', '50', '--seed', '3');
    expect(viaFile.status, viaFile.err).toBe(0);
    // Through the shell's own descriptor: the file holds the capture, byte for byte, and nothing else.
    expect(readFileSync(file)).toEqual(readFileSync(join(dir, 'plain.pcap')));
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['out.pcap', 'plain.pcap', 'redirected.pcap']);
  });
});

describe('filter over chunk boundaries', () => {
  it('writes to each client exactly the frames explain says it receives, in order, over a capture of several read chunks', async () => {
    // Odd-sized frames over 3 MB: records straddle the 1 MiB reads and lie at every alignment.
    const src = join(dir, 'big.pcap');
    const g = cli(
      'gen',
      src,
      '--config',
      NIC,
      '--frames',
      '40000',
      '--size',
      '75',
      '--seed',
      '3',
      '--mix',
      'unicast=60,broadcast=15,multicast=10,unknown=10,runt=5',
    );
    expect(g.status, g.err).toBe(0);
    const out = join(dir, 'out');
    const r = cli('filter', src, '--config', NIC, '--out', out, '--dropped', '--json');
    expect(r.status, r.err).toBe(0);
    const e = spawnSync(process.execPath, [CLI, 'explain', src, '--config', NIC, '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 });
    expect(e.status, e.stderr).toBe(0);
    const deliver = e.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { deliver: string[] }).deliver);
    const frames: Buffer[] = [];
    await readCaptureFile(src, (reader) => void frames.push(Buffer.from(reader.data)));
    expect(deliver.length).toBe(frames.length);
    const report = JSON.parse(r.out) as { clients: { name: string; frames: number }[]; dropped: { frames: number } };
    for (const name of [...report.clients.map((c) => c.name), 'dropped']) {
      const want = frames.filter((_, i) => (name === 'dropped' ? deliver[i]!.length === 0 : deliver[i]!.includes(name)));
      const got: Buffer[] = [];
      await readCaptureFile(join(out, `${name}.pcap`), (reader) => void got.push(Buffer.from(reader.data)));
      expect(got.length, name).toBe(want.length);
      expect(Buffer.concat(got).equals(Buffer.concat(want)), name).toBe(true);
      expect(got.length).toBe(name === 'dropped' ? report.dropped.frames : report.clients.find((c) => c.name === name)!.frames);
    }
    expect(report.clients.filter((c) => c.frames > 0).length).toBeGreaterThan(1);
  });
});
