// The file store: atomic replacement under injected disk faults, failing closed on corrupt or newer files, migration, the default path, and the lock.
import * as fs from 'node:fs';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MacManager, MacslotError, Nic, STORE_VERSION } from 'macslot';
import { FileStore, defaultStorePath, type FileSystem } from 'macslot/node';

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'macslot-store-'));
  path = join(dir, 'macs.json');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const record = { guest: 'g', nic: 'eth0', iface: '0', policy: 'random', holder: null, expires: null, updated: 1 } as const;

async function errorOf(p: Promise<unknown>): Promise<MacslotError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(MacslotError);
  return err as MacslotError;
}

function fault(code: string): Error {
  return Object.assign(new Error(`${code}: injected`), { code });
}

/** Node's fs with one operation replaced. */
function faulty(overrides: Partial<FileSystem>): FileSystem {
  return { ...(fs as unknown as FileSystem), ...overrides };
}

describe('atomic writes under faults', () => {
  const cases: [string, (calls: { n: number }) => Partial<FileSystem>][] = [
    // A disk that fills up half way through the temporary file.
    ['disk full (ENOSPC) mid-write', () => ({ writeSync: (fd, buf, off, len, pos) => { if (len > 16) { fs.writeSync(fd, buf, off, 16, pos); throw fault('ENOSPC'); } return fs.writeSync(fd, buf, off, len, pos); } })],
    ['EIO on fsync', () => ({ fsyncSync: () => { throw fault('EIO'); } })],
    ['a failed rename', () => ({ renameSync: () => { throw fault('EXDEV'); } })],
    ['EIO on read', () => ({ readFileSync: ((p: string, e: 'utf8') => { if (p.endsWith('macs.json')) throw fault('EIO'); return fs.readFileSync(p, e); }) as FileSystem['readFileSync'] })],
  ];

  it.each(cases)('%s leaves the previous store intact, no temporary file, and the lock free', async (_, make) => {
    await new FileStore({ path }).transact((d) => { d.records['02:00:00:00:00:01'] = { ...record }; });
    const before = readFileSync(path, 'utf8');
    const broken = new FileStore({ path, fs: faulty(make({ n: 0 })) });
    const err = await errorOf(broken.transact((d) => { d.records['02:00:00:00:00:02'] = { ...record }; }));
    expect(err.code).toBe('STORE_IO');
    expect(err.message).toContain(path);
    expect(readFileSync(path, 'utf8')).toBe(before);
    expect(readdirSync(dir)).toEqual(['macs.json']);
    // The lock was released, so a healthy writer goes straight on.
    const ok = new FileStore({ path, lockTimeoutMs: 100 });
    await ok.transact((d) => { d.records['02:00:00:00:00:03'] = { ...record }; });
    expect(Object.keys((await ok.read()).records)).toEqual(['02:00:00:00:00:01', '02:00:00:00:00:03']);
  });

  it('a manager whose commit hits a full disk rolls its NIC back', async () => {
    const store = new FileStore({ path, fs: faulty({ renameSync: () => { throw fault('ENOSPC'); } }) });
    const m = new MacManager({ nics: new Nic({ primary: '00:14:4f:00:00:00', factory: ['00:14:4f:00:00:01'] }), store });
    expect((await errorOf(m.allocate({ guest: 'g', policy: 'factory' }))).code).toBe('STORE_IO');
    expect(m.nic('nic0').addressSupport().availableSlots).toBe(1);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('writes through a temporary file, fsyncs it and the directory, then renames', async () => {
    const calls: string[] = [];
    const spy = faulty({
      openSync: (p, f, m) => { calls.push(`open ${p === dir ? 'dir' : p.includes('.tmp-') ? 'temp' : p.endsWith('.lock') ? 'lock' : p}`); return fs.openSync(p, f, m); },
      fsyncSync: (fd) => { calls.push('fsync'); fs.fsyncSync(fd); },
      renameSync: (a, b) => { calls.push(`rename ${a.includes('.tmp-') ? 'temp' : a} → ${b === path ? 'store' : b}`); fs.renameSync(a, b); },
    });
    await new FileStore({ path, fs: spy }).transact((d) => { d.records['02:00:00:00:00:01'] = { ...record }; });
    expect(calls).toEqual(['open lock', 'open temp', 'fsync', 'rename temp → store', 'open dir', 'fsync']);
  });
});

describe('failing closed', () => {
  it.each([
    ['truncated JSON', '{"version": 2, "records": {'],
    ['an empty file', ''],
    ['a record with a bad MAC key', JSON.stringify({ version: 2, records: { 'not-a-mac': record } })],
    ['a multicast key', JSON.stringify({ version: 2, records: { '01:00:5e:00:00:01': record } })],
    ['a record missing its guest', JSON.stringify({ version: 2, records: { '02:00:00:00:00:01': { ...record, guest: undefined } } })],
    ['no version', JSON.stringify({ records: {} })],
  ])('refuses %s with STORE_CORRUPT naming the file, and never overwrites it', async (_, text) => {
    writeFileSync(path, text);
    const store = new FileStore({ path });
    for (const p of [store.read(), store.transact(() => undefined)]) {
      const err = await errorOf(p);
      expect(err.code).toBe('STORE_CORRUPT');
      expect(err.message).toContain(path);
    }
    const m = new MacManager({ nics: new Nic({ primary: '00:14:4f:00:00:00' }), store });
    expect((await errorOf(m.allocate({ guest: 'g' }))).code).toBe('STORE_CORRUPT');
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it('refuses a file from a newer schema with STORE_VERSION', async () => {
    writeFileSync(path, JSON.stringify({ version: STORE_VERSION + 1, records: {}, future: true }));
    const err = await errorOf(new FileStore({ path }).transact(() => undefined));
    expect([err.code, err.message.includes(`version ${STORE_VERSION + 1}`)]).toEqual(['STORE_VERSION', true]);
  });
});

describe('schema migration', () => {
  it('reads version 1 and rewrites it as the current version on the next change', async () => {
    writeFileSync(path, JSON.stringify({ version: 1, leases: [{ mac: '02-00-00-00-00-0A', guest: 'vm', nic: 'eth0', policy: 'fixed' }] }));
    const store = new FileStore({ path });
    expect((await store.read()).records['02:00:00:00:00:0a']).toMatchObject({ guest: 'vm', nic: 'eth0', iface: '0', policy: 'fixed', holder: null });
    // The identity keeps its MAC through the migration.
    const m = new MacManager({ nics: { eth0: new Nic({ primary: '00:14:4f:00:00:00' }) }, store });
    const l = await m.allocate({ guest: 'vm' });
    expect([l.mac.toString(), l.restored, l.policy]).toEqual(['02:00:00:00:00:0a', true, 'fixed']);
    expect(JSON.parse(readFileSync(path, 'utf8')).version).toBe(STORE_VERSION);
  });

  it('refuses a version 1 file with a duplicate MAC', async () => {
    writeFileSync(path, JSON.stringify({ version: 1, leases: [{ mac: '02:00:00:00:00:01', guest: 'a', nic: 'n', policy: 'fixed' }, { mac: '02-00-00-00-00-01', guest: 'b', nic: 'n', policy: 'fixed' }] }));
    expect((await errorOf(new FileStore({ path }).read())).message).toContain('02:00:00:00:00:01 twice');
  });
});

describe('default path', () => {
  it.each([
    [{ platform: 'linux', home: '/home/u', env: { XDG_STATE_HOME: '/st' } }, '/st/macslot/macs.json'],
    [{ platform: 'linux', home: '/home/u', env: {} }, '/home/u/.local/state/macslot/macs.json'],
    [{ platform: 'linux', home: '/home/u', env: { XDG_STATE_HOME: 'relative' } }, '/home/u/.local/state/macslot/macs.json'],
    [{ platform: 'freebsd', home: '/usr/home/u', env: {} }, '/usr/home/u/.local/state/macslot/macs.json'],
    [{ platform: 'darwin', home: '/Users/u', env: {} }, '/Users/u/Library/Application Support/macslot/macs.json'],
    [{ platform: 'win32', home: 'C:\\Users\\u', env: { LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' } }, 'C:\\Users\\u\\AppData\\Local\\macslot\\macs.json'],
    [{ platform: 'win32', home: 'C:\\Users\\u', env: {} }, 'C:\\Users\\u\\AppData\\Local\\macslot\\macs.json'],
  ])('%j → %s', (where, expected) => {
    expect(defaultStorePath(where)).toBe(expected);
  });

  it('fails with INVALID_ARGUMENT when there is no home and no state directory', () => {
    expect(() => defaultStorePath({ platform: 'linux', home: '', env: {} })).toThrow(/INVALID_ARGUMENT.*""/);
  });
});

describe('the lock', () => {
  it('breaks the lock of a dead process and sweeps its temporary files', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const pid = Number(dead.stdout);
    expect(pid).toBeGreaterThan(0);
    writeFileSync(`${path}.lock`, `${pid} ${hostname()} then\n`);
    writeFileSync(`${path}.tmp-${pid}-abc`, '{"half');
    const started = Date.now();
    await new FileStore({ path, lockTimeoutMs: 5_000 }).transact((d) => { d.records['02:00:00:00:00:01'] = { ...record }; });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(readdirSync(dir)).toEqual(['macs.json']);
  });

  it('waits for a live holder and then gives STORE_LOCKED naming the lock file and the holder', async () => {
    writeFileSync(`${path}.lock`, `${process.ppid} ${hostname()} now\n`);
    const err = await errorOf(new FileStore({ path, lockTimeoutMs: 150 }).transact(() => undefined));
    expect(err.code).toBe('STORE_LOCKED');
    expect(err.message).toContain(`${path}.lock`);
    expect(err.message).toContain(`process ${process.ppid}`);
  });

  it('never breaks a lock from another host, whose processes it cannot see', async () => {
    writeFileSync(`${path}.lock`, `1 some-other-host now\n`);
    expect((await errorOf(new FileStore({ path, lockTimeoutMs: 100, isAlive: () => false }).transact(() => undefined))).code).toBe('STORE_LOCKED');
  });

  it('serializes transactions of two stores on one file in one process', async () => {
    const a = new FileStore({ path });
    const b = new FileStore({ path });
    const n = 40;
    await Promise.all(Array.from({ length: n }, (_, i) => (i % 2 ? a : b).transact((d) => {
      const count = Object.keys(d.records).length;
      d.records[`02:00:00:00:01:${count.toString(16).padStart(2, '0')}`] = { ...record };
    })));
    expect(Object.keys((await a.read()).records)).toHaveLength(n);
  });
});
