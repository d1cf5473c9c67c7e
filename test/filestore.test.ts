// The file store: atomic replacement under injected disk faults, failing closed on corrupt or newer files, migration, the default path, and
// the lock.
import * as fs from 'node:fs';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
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
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
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
    [
      'disk full (ENOSPC) mid-write',
      () => {
        const temps = new Set<number>();
        return {
          openSync: (p, f, m) => {
            const fd = fs.openSync(p, f, m);
            if (p.includes('.tmp-')) temps.add(fd);
            return fd;
          },
          writeSync: (fd, buf, off, len, pos) => {
            if (temps.has(fd) && len > 16) {
              fs.writeSync(fd, buf, off, 16, pos);
              throw fault('ENOSPC');
            }
            return fs.writeSync(fd, buf, off, len, pos);
          },
        };
      },
    ],
    [
      'EIO on fsync',
      () => ({
        fsyncSync: () => {
          throw fault('EIO');
        },
      }),
    ],
    [
      'a failed rename',
      () => ({
        renameSync: () => {
          throw fault('EXDEV');
        },
      }),
    ],
    [
      'EIO on read',
      () => ({
        readFileSync: ((p: string, e: 'utf8') => {
          if (p.endsWith('macs.json')) throw fault('EIO');
          return fs.readFileSync(p, e);
        }) as FileSystem['readFileSync'],
      }),
    ],
  ];

  it.each(cases)('%s leaves the previous store intact, no temporary file, and the lock free', async (_, make) => {
    await new FileStore({ path }).transact((d) => {
      d.records['02:00:00:00:00:01'] = { ...record };
    });
    const before = readFileSync(path, 'utf8');
    const broken = new FileStore({ path, fs: faulty(make({ n: 0 })) });
    const err = await errorOf(
      broken.transact((d) => {
        d.records['02:00:00:00:00:02'] = { ...record };
      }),
    );
    expect(err.code).toBe('STORE_IO');
    expect(err.message).toContain(path);
    expect(readFileSync(path, 'utf8')).toBe(before);
    expect(readdirSync(dir)).toEqual(['macs.json']);
    // The lock was released, so a healthy writer goes straight on.
    const ok = new FileStore({ path, lockTimeoutMs: 100 });
    await ok.transact((d) => {
      d.records['02:00:00:00:00:03'] = { ...record };
    });
    expect(Object.keys((await ok.read()).records)).toEqual(['02:00:00:00:00:01', '02:00:00:00:00:03']);
  });

  it('a manager whose commit hits a full disk rolls its NIC back', async () => {
    const store = new FileStore({
      path,
      fs: faulty({
        renameSync: () => {
          throw fault('ENOSPC');
        },
      }),
    });
    const m = new MacManager({ nics: new Nic({ primary: '00:14:4f:00:00:00', factory: ['00:14:4f:00:00:01'] }), store });
    expect((await errorOf(m.allocate({ guest: 'g', policy: 'factory' }))).code).toBe('STORE_IO');
    expect(m.nic('nic0').addressSupport().availableSlots).toBe(1);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('writes through a temporary file, fsyncs it and the directory, then renames', async () => {
    const calls: string[] = [];
    const spy = faulty({
      openSync: (p, f, m) => {
        calls.push(`open ${p === dir ? 'dir' : p.includes('.tmp-') ? 'temp' : p.startsWith(`${path}.lock.`) ? 'lock content' : p}`);
        return fs.openSync(p, f, m);
      },
      linkSync: (a, b) => {
        calls.push(`link ${a.startsWith(`${path}.lock.`) ? 'lock content' : a} → ${b === `${path}.lock` ? 'lock' : b}`);
        fs.linkSync(a, b);
      },
      fsyncSync: (fd) => {
        calls.push('fsync');
        fs.fsyncSync(fd);
      },
      renameSync: (a, b) => {
        calls.push(`rename ${a.includes('.tmp-') ? 'temp' : a} → ${b === path ? 'store' : b}`);
        fs.renameSync(a, b);
      },
    });
    await new FileStore({ path, fs: spy }).transact((d) => {
      d.records['02:00:00:00:00:01'] = { ...record };
    });
    expect(calls).toEqual([
      'open lock content',
      'link lock content → lock',
      'open temp',
      'fsync',
      'rename temp → store',
      'open dir',
      'fsync',
    ]);
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
    expect((await store.read()).records['02:00:00:00:00:0a']).toMatchObject({
      guest: 'vm',
      nic: 'eth0',
      iface: '0',
      policy: 'fixed',
      holder: null,
    });
    // The identity keeps its MAC through the migration.
    const m = new MacManager({ nics: { eth0: new Nic({ primary: '00:14:4f:00:00:00' }) }, store });
    const l = await m.allocate({ guest: 'vm' });
    expect([l.mac.toString(), l.restored, l.policy]).toEqual(['02:00:00:00:00:0a', true, 'fixed']);
    expect(JSON.parse(readFileSync(path, 'utf8')).version).toBe(STORE_VERSION);
  });

  it('refuses a version 1 file with a duplicate MAC', async () => {
    writeFileSync(
      path,
      JSON.stringify({
        version: 1,
        leases: [
          { mac: '02:00:00:00:00:01', guest: 'a', nic: 'n', policy: 'fixed' },
          { mac: '02-00-00-00-00-01', guest: 'b', nic: 'n', policy: 'fixed' },
        ],
      }),
    );
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
    [
      { platform: 'win32', home: 'C:\\Users\\u', env: { LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' } },
      'C:\\Users\\u\\AppData\\Local\\macslot\\macs.json',
    ],
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
    await new FileStore({ path, lockTimeoutMs: 5_000 }).transact((d) => {
      d.records['02:00:00:00:00:01'] = { ...record };
    });
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
    expect((await errorOf(new FileStore({ path, lockTimeoutMs: 100, isAlive: () => false }).transact(() => undefined))).code).toBe(
      'STORE_LOCKED',
    );
  });

  it('serializes transactions of two stores on one file in one process', async () => {
    const a = new FileStore({ path });
    const b = new FileStore({ path });
    const n = 40;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        (i % 2 ? a : b).transact((d) => {
          const count = Object.keys(d.records).length;
          d.records[`02:00:00:00:01:${count.toString(16).padStart(2, '0')}`] = { ...record };
        }),
      ),
    );
    expect(Object.keys((await a.read()).records)).toHaveLength(n);
  });
});

/** This process's start time in clock ticks since boot, and the boot id, as Linux shows them; undefined elsewhere. */
function identity(): { start: string; boot: string } | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
    return { start, boot: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() };
  } catch {
    return undefined;
  }
}
const me = identity();

describe('the store path follows the output rule', () => {
  it('a dangling symlink (an unmounted volume) is STORE_IO naming the path, never an empty store, and is never replaced', async () => {
    symlinkSync(join(dir, 'unmounted', 'macs.json'), path);
    const store = new FileStore({ path });
    for (const p of [
      store.read(),
      store.transact((d) => {
        d.records['02:00:00:00:00:01'] = { ...record };
      }),
    ]) {
      const err = await errorOf(p);
      expect(err.code).toBe('STORE_IO');
      expect(err.message).toContain(path);
    }
    const m = new MacManager({ nics: new Nic({ primary: '00:14:4f:00:00:00' }), store });
    expect((await errorOf(m.allocate({ guest: 'g' }))).code).toBe('STORE_IO');
    expect(lstatSync(path).isSymbolicLink()).toBe(true);
    expect(readdirSync(dir)).toEqual(['macs.json']);
  });

  it('a store under a dangling symlinked directory is STORE_IO too', async () => {
    symlinkSync(join(dir, 'unmounted'), join(dir, 'state'));
    const err = await errorOf(new FileStore({ path: join(dir, 'state', 'macs.json') }).read());
    expect([err.code, err.message.includes(join(dir, 'state'))]).toEqual(['STORE_IO', true]);
  });

  it(
    'a live symlink is followed: the target is replaced in its own directory, with its lock beside it, and the link stays a ' + 'link',
    async () => {
      mkdirSync(join(dir, 'volume'));
      const target = join(dir, 'volume', 'real.json');
      await new FileStore({ path: target }).transact((d) => {
        d.records['02:00:00:00:00:01'] = { ...record };
      });
      symlinkSync('volume/real.json', path);
      const store = new FileStore({ path });
      let lockSeen = '';
      await store.transact((d) => {
        d.records['02:00:00:00:00:02'] = { ...record };
        lockSeen = store.lockPath;
        expect(readdirSync(join(dir, 'volume')).sort()).toEqual(['real.json', 'real.json.lock']);
      });
      expect(lockSeen).toBe(`${target}.lock`);
      expect(lstatSync(path).isSymbolicLink()).toBe(true);
      expect(readlinkSync(path)).toBe('volume/real.json');
      expect(Object.keys(JSON.parse(readFileSync(target, 'utf8')).records)).toEqual(['02:00:00:00:00:01', '02:00:00:00:00:02']);
      expect(Object.keys((await store.read()).records)).toHaveLength(2);
      expect(readdirSync(dir).sort()).toEqual(['macs.json', 'volume']);
      expect(readdirSync(join(dir, 'volume'))).toEqual(['real.json']);
    },
  );

  const notFiles: [string, () => Promise<() => void> | (() => void)][] = [
    ['a directory', () => (mkdirSync(path), () => {})],
    [
      'a FIFO',
      () => {
        const r = spawnSync('mkfifo', [path]);
        if (r.status !== 0) throw new Error('mkfifo failed');
        return () => {};
      },
    ],
    ['a symlink to /dev/null', () => (symlinkSync('/dev/null', path), () => {})],
    [
      'a unix socket',
      () =>
        new Promise((ok) => {
          const server = createServer().listen(path, () => ok(() => server.close()));
        }),
    ],
  ];

  it.each(notFiles)('a path that is %s is STORE_IO and is left as it is', async (_, make) => {
    const cleanup = await make();
    try {
      const kind = (): string => {
        const st = lstatSync(path);
        return st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : 'other';
      };
      const before = kind();
      const store = new FileStore({ path, lockTimeoutMs: 100 });
      for (const p of [
        store.read(),
        store.transact((d) => {
          d.records['02:00:00:00:00:01'] = { ...record };
        }),
      ]) {
        const err = await errorOf(p);
        expect(err.code).toBe('STORE_IO');
        expect(err.message).toContain(path);
      }
      expect(kind()).toBe(before);
      expect(readdirSync(dir)).toEqual(['macs.json']);
    } finally {
      cleanup();
    }
  });
});

describe('the lock identifies its holder', () => {
  const lock = (): string => `${path}.lock`;
  const put = async (text: string): Promise<MacslotError | undefined> => {
    writeFileSync(lock(), text);
    return new FileStore({ path, lockTimeoutMs: 300 })
      .transact((d) => {
        d.records['02:00:00:00:00:01'] = { ...record };
      })
      .then(
        () => undefined,
        (e: MacslotError) => e,
      );
  };

  it("is created whole: at no moment does the lock file exist without its holder's pid, host, start time and boot id", async () => {
    const seen: string[] = [];
    const check = (): void => {
      let text: string;
      try {
        text = readFileSync(lock(), 'utf8');
      } catch {
        return;
      }
      seen.push(text);
    };
    const watched = faulty({
      openSync: (p, f, m) => {
        check();
        const fd = fs.openSync(p, f, m);
        check();
        return fd;
      },
      writeSync: (fd, b, o, l, pos) => {
        check();
        const n = fs.writeSync(fd, b, o, l, pos);
        check();
        return n;
      },
      closeSync: (fd) => {
        check();
        fs.closeSync(fd);
        check();
      },
    });
    await new FileStore({ path, fs: watched }).transact((d) => {
      d.records['02:00:00:00:00:01'] = { ...record };
    });
    expect(seen.length).toBeGreaterThan(0);
    const pattern = new RegExp(`^${process.pid} ${hostname()} start=(\\d+|-) boot=\\S+ since=\\S+\n$`);
    for (const text of seen) expect(text).toMatch(pattern);
    if (me !== undefined) expect(seen[0]).toContain(`start=${me.start} boot=${me.boot} `);
    expect(readdirSync(dir)).toEqual(['macs.json']);
  });

  it('never breaks a lock whose holder has not written its identity yet, however long it stalls', async () => {
    writeFileSync(lock(), '');
    const past = new Date(Date.now() - 30_000);
    utimesSync(lock(), past, past);
    const err = await put('');
    expect(err?.code).toBe('STORE_LOCKED');
    expect(err?.message).toContain('remove it if no macslot process runs');
  });

  it('breaks a lock with no readable holder that predates the last boot', async () => {
    writeFileSync(lock(), '');
    const old = new Date(Date.now() - 3_650 * 86_400_000);
    utimesSync(lock(), old, old);
    await new FileStore({ path, lockTimeoutMs: 5_000 }).transact(() => undefined);
    expect(readdirSync(dir)).toEqual(['macs.json']);
  });

  const stale: [string, () => string][] = [
    // A container restarted with the same pid: the old lock names this very pid, from a process that started at another time.
    [
      "this process's own pid, left by an earlier process with another start time",
      () => `${process.pid} ${hostname()} start=1 boot=${me!.boot} since=x\n`,
    ],
    ['a live pid that was reused by another process since', () => `${process.ppid} ${hostname()} start=1 boot=${me!.boot} since=x\n`],
    [
      'a live pid from before the last boot',
      () => `${process.ppid} ${hostname()} start=${me!.start} boot=00000000-0000-0000-0000-000000000000 since=x\n`,
    ],
  ];

  it.runIf(me !== undefined).each(stale)('breaks at once a lock holding %s', async (_, text) => {
    const started = Date.now();
    expect(await put(text())).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(250);
    expect(Object.keys((await new FileStore({ path }).read()).records)).toEqual(['02:00:00:00:00:01']);
  });

  it.runIf(me !== undefined)(
    'waits for a lock held by this very process (another FileStore here), identified by its start time',
    async () => {
      const err = await put(`${process.pid} ${hostname()} start=${me!.start} boot=${me!.boot} since=x\n`);
      expect(err?.code).toBe('STORE_LOCKED');
      expect(err?.message).toContain(`process ${process.pid}`);
    },
  );
});
