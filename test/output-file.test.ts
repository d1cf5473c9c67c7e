// Output files: the one rule every writer follows (symlinks followed and kept, FIFOs and character devices streamed,
// dangling links, directories, sockets and block devices refused), atomic replacement, and partial files of dead writers.
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  constants,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type MacslotError, isMacslotError } from 'macslot';
import { AtomicFile, CaptureFile, resolveOutput, writeFileAtomic } from 'macslot/node';

const LINUX = process.platform === 'linux';
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'macslot-out-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function writeThrough(path: string, text: string): void {
  const f = new AtomicFile(path);
  try {
    f.write(bytes(text));
    f.commit();
  } catch (err) {
    f.abort();
    throw err;
  }
}

function refusal(fn: () => unknown): MacslotError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(isMacslotError(err, 'INVALID_ARGUMENT'), String(err)).toBe(true);
  return err as MacslotError;
}

function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', [path]);
  if (r.status !== 0) throw new Error(`mkfifo failed: ${String(r.stderr)}`);
}

/** Opens a FIFO's read end without blocking, so a writer's open succeeds at once; returns a reader of what was written. */
function fifoReader(path: string): { fd: number; read: () => string } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return {
    fd,
    read: () => {
      const buf = Buffer.alloc(1 << 16);
      const n = readSync(fd, buf, 0, buf.length, null);
      return buf.subarray(0, n).toString('utf8');
    },
  };
}

function listen(path: string): Promise<Server> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(path, () => ok(s));
  });
}

describe('the output rule', () => {
  it('creates a new file and replaces a regular one atomically, keeping its permission bits, with no temporary file left', () => {
    const p = join(dir, 'a.out');
    writeThrough(p, 'one');
    expect(readFileSync(p, 'utf8')).toBe('one');
    chmodSync(p, 0o640);
    const before = statSync(p).ino;
    writeThrough(p, 'two');
    expect(readFileSync(p, 'utf8')).toBe('two');
    expect(statSync(p).mode & 0o777).toBe(0o640);
    expect(statSync(p).ino).not.toBe(before);
    expect(readdirSync(dir)).toEqual(['a.out']);
  });

  it('follows a live symlink: the target is replaced in its own directory and the link stays a link', () => {
    mkdirSync(join(dir, 'real'));
    const target = join(dir, 'real', 'store.json');
    writeFileSync(target, 'old');
    mkdirSync(join(dir, 'links'));
    const link = join(dir, 'links', 'store.json');
    symlinkSync('../real/store.json', link);
    const hop = join(dir, 'hop.json');
    symlinkSync(link, hop);
    expect(resolveOutput(hop)).toMatchObject({ kind: 'file', target });
    writeThrough(hop, 'new');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(lstatSync(hop).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe('../real/store.json');
    expect(readFileSync(target, 'utf8')).toBe('new');
    expect(readdirSync(join(dir, 'real'))).toEqual(['store.json']);
    expect(readdirSync(join(dir, 'links'))).toEqual(['store.json']);
  });

  it('refuses a dangling symlink, naming it, and neither replaces the link nor creates its target', () => {
    const link = join(dir, 'gone.pcap');
    symlinkSync(join(dir, 'unmounted', 'gone.pcap'), link);
    const err = refusal(() => new AtomicFile(link));
    expect(err.message).toContain(link);
    expect(err.message).toMatch(/dangling/);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readdirSync(dir)).toEqual(['gone.pcap']);
  });

  it('refuses a loop of symlinks', () => {
    symlinkSync(join(dir, 'b'), join(dir, 'a'));
    symlinkSync(join(dir, 'a'), join(dir, 'b'));
    expect(refusal(() => new AtomicFile(join(dir, 'a'))).message).toMatch(/loop/);
    expect(lstatSync(join(dir, 'a')).isSymbolicLink()).toBe(true);
  });

  const refused: [string, (path: string) => Promise<() => void> | (() => void), RegExp, (path: string) => boolean][] = [
    ['a directory', (p) => (mkdirSync(p), () => {}), /a directory/, (p) => lstatSync(p).isDirectory()],
    [
      'a symlink to a directory',
      (p) => (mkdirSync(`${p}.d`), symlinkSync(`${p}.d`, p), () => {}),
      /a directory/,
      (p) => lstatSync(p).isSymbolicLink(),
    ],
    [
      'a unix socket',
      async (p) => {
        const s = await listen(p);
        return () => s.close();
      },
      /a socket/,
      (p) => lstatSync(p).isSocket(),
    ],
  ];

  it.each(refused)('refuses %s and leaves it as it is', async (_, make, why, still) => {
    const p = join(dir, 'target');
    const cleanup = await make(p);
    try {
      const err = refusal(() => new CaptureFile(p));
      expect(err.message).toMatch(why);
      expect(err.message).toContain(p);
      expect(still(p)).toBe(true);
      expect(readdirSync(dir).filter((n) => n.endsWith('.partial'))).toEqual([]);
    } finally {
      cleanup();
    }
  });

  it('writes a FIFO as a stream: the reader gets the bytes and the FIFO stays a FIFO', () => {
    const fifo = join(dir, 'pipe');
    mkfifo(fifo);
    const r = fifoReader(fifo);
    try {
      expect(resolveOutput(fifo).kind).toBe('stream');
      writeThrough(fifo, 'through the pipe');
      expect(r.read()).toBe('through the pipe');
      expect(lstatSync(fifo).isFIFO()).toBe(true);
      expect(readdirSync(dir)).toEqual(['pipe']);
    } finally {
      closeSync(r.fd);
    }
  });

  it('writes a capture through a symlink to a FIFO', () => {
    const fifo = join(dir, 'pipe');
    mkfifo(fifo);
    const link = join(dir, 'cap.pcap');
    symlinkSync(fifo, link);
    const r = fifoReader(fifo);
    try {
      const cf = new CaptureFile(link);
      cf.writer.writeFrame(new Uint8Array(60), 1, 0);
      expect(cf.commit()).toBe(24 + 16 + 60);
      const buf = Buffer.alloc(4096);
      expect(readSync(r.fd, buf, 0, buf.length, null)).toBe(100);
      expect(buf.readUInt32LE(0)).toBe(0xa1b2c3d4);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
    } finally {
      closeSync(r.fd);
    }
  });

  it('writes a character device (/dev/null, through a symlink) as a stream and never renames over the link', () => {
    expect(resolveOutput('/dev/null')).toMatchObject({ kind: 'stream', target: '/dev/null' });
    const link = join(dir, 'null.pcap');
    symlinkSync('/dev/null', link);
    const cf = new CaptureFile(link);
    expect(cf.file.tempPath).toBeUndefined();
    cf.writer.writeFrame(new Uint8Array(60));
    cf.commit();
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe('/dev/null');
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
    expect(readdirSync(dir)).toEqual(['null.pcap']);
  });

  it.runIf(LINUX)('writes through an alias of its own open descriptor (/dev/fd/N, like /dev/stdout) in place, and leaves it open', () => {
    const p = join(dir, 'redirected');
    writeFileSync(p, 'head|');
    const ino = statSync(p).ino;
    const fd = openSync(p, 'a');
    try {
      expect(resolveOutput(`/dev/fd/${fd}`)).toMatchObject({ kind: 'stream', fd });
      writeThrough(`/dev/fd/${fd}`, 'tail');
      writeThrough(`/dev/fd/${fd}`, '|more');
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(p, 'utf8')).toBe('head|tail|more');
    expect(statSync(p).ino).toBe(ino);
    expect(readdirSync(dir)).toEqual(['redirected']);
  });

  it("refuses at commit when a directory took the target's place while it was written, and removes its temporary file", () => {
    const p = join(dir, 'late');
    const f = new AtomicFile(p);
    f.write(bytes('x'));
    mkdirSync(p);
    expect(refusal(() => f.commit()).message).toMatch(/replaced by something other than a regular file/);
    expect(lstatSync(p).isDirectory()).toBe(true);
    expect(readdirSync(dir)).toEqual(['late']);
    expect(f.committed).toBe(false);
  });

  it("removes partial files that dead writers on this host left for the same name, and keeps a live writer's", () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(dead.stdout);
    expect(deadPid).toBeGreaterThan(0);
    const stale = `.x.pcap.${hostname()}.${deadPid}.abc123.partial`;
    const live = `.x.pcap.${hostname()}.${process.ppid}.def456.partial`;
    const other = `.y.pcap.${hostname()}.${deadPid}.abc123.partial`;
    for (const n of [stale, live, other]) writeFileSync(join(dir, n), 'half');
    const f = new AtomicFile(join(dir, 'x.pcap'));
    f.abort();
    expect(readdirSync(dir).sort()).toEqual([live, other].sort());
  });

  it('writeFileAtomic writes durably through a symlink and refuses a dangling one', () => {
    writeFileSync(join(dir, 'real.json'), '{}');
    symlinkSync('real.json', join(dir, 'cfg.json'));
    writeFileAtomic(join(dir, 'cfg.json'), '{"a":1}');
    expect(readFileSync(join(dir, 'real.json'), 'utf8')).toBe('{"a":1}');
    expect(lstatSync(join(dir, 'cfg.json')).isSymbolicLink()).toBe(true);
    symlinkSync('missing.json', join(dir, 'dangling.json'));
    expect(() => writeFileAtomic(join(dir, 'dangling.json'), 'x', { code: 'STORE_IO' })).toThrow(/STORE_IO: .*dangling\.json.*dangling/);
    expect(readdirSync(dir).sort()).toEqual(['cfg.json', 'dangling.json', 'real.json']);
  });
});
