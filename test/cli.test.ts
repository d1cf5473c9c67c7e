// The built `macslot` command: golden outputs of every subcommand on a real capture (dpkt's nb6-http) and on a generated one.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from 'macslot/node';

const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/cli/main.js');
const FIX = join(ROOT, 'test/fixtures/cli');
const NB6 = '/usr/share/doc/python3-dpkt/examples/data/nb6-http.pcap';
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const tmp = mkdtempSync(join(tmpdir(), 'macslot-cli-'));

function cli(...args: string[]): { out: string; err: string; status: number | null } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
  return { out: r.stdout.replaceAll(tmp, '<tmp>'), err: r.stderr.replaceAll(tmp, '<tmp>'), status: r.status };
}

/** Compares with the stored golden file; UPDATE_GOLDEN=1 rewrites it instead. */
function golden(name: string, actual: string): void {
  const path = join(FIX, name);
  if (UPDATE) writeFileSync(path, actual);
  expect(actual).toBe(readFileSync(path, 'utf8'));
}

/** Every output capture of a directory: frame count, bytes and digest, so a golden pins each byte. */
async function outputs(dir: string): Promise<string> {
  const rows: Record<string, { frames: number; bytes: number; sha256: string }> = {};
  for (const f of readdirSync(dir).sort()) {
    let frames = 0;
    await readCaptureFile(join(dir, f), () => void frames++);
    const bytes = readFileSync(join(dir, f));
    rows[f] = { frames, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  }
  return JSON.stringify(rows, null, 2) + '\n';
}

describe('help', () => {
  it('every subcommand has --help, and bad usage exits 2', () => {
    const text = ['--help', 'demo', 'filter', 'explain', 'inspect', 'bench', 'gen', 'switch'].map((c) => {
      const r = c === '--help' ? cli('--help') : cli(c, '--help');
      expect(r.status).toBe(0);
      return `$ macslot ${c === '--help' ? '' : c + ' '}--help\n${r.out}`;
    });
    golden('help.txt', text.join('\n'));
    expect(cli('filter', '--bogus').status).toBe(2);
    expect(cli('nope').status).toBe(2);
  });
});

describe('inspect', () => {
  it('prints addressSupport and every slot as tables and as JSON', () => {
    const t = cli('inspect', '--config', join(FIX, 'nic.json'));
    expect(t.status).toBe(0);
    golden('inspect.txt', t.out);
    const j = cli('inspect', '--config', join(FIX, 'nic.json'), '--json');
    golden('inspect.json', j.out);
    expect(JSON.parse(j.out).slots[3]).toEqual({ slot: 3, mac: '00:14:4f:00:00:03', reserved: true, active: true, owner: 'tap', kind: 'factory', placement: 'unicast' });
  });

  it('names the file, the JSON path and the bad value of a broken configuration', () => {
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, JSON.stringify({ nic: { primary: '00:14:4f:00:00:00' }, clients: [{ name: 'a' }, { name: 'b', multicast: ['33:33:zz:00:00:01'] }] }));
    const r = cli('inspect', '--config', bad);
    expect(r.status).toBe(1);
    expect(r.err).toBe('macslot inspect: CONFIG_INVALID: <tmp>/bad.json: clients[1].multicast[0]: "33:33:zz:00:00:01" is not a MAC\n');
  });
});

describe('explain', () => {
  it('prints the JSON line of the issue for a broadcast frame given as hex', () => {
    const r = cli('explain', 'ff:ff:ff:ff:ff:ff:02:00:00:00:00:01:08:06:00:01', '--config', join(FIX, 'nic.json'), '--json');
    expect(r.out).toBe('{"index":0,"dst":"ff:ff:ff:ff:ff:ff","rule":"broadcast","path":"hardware","deliver":["primary","vm-a","tap"]}\n');
  });

  it('explains several hex frames as a table', () => {
    const frames = ['00144f000001 020000000001 0800', '333300000001 020000000001 86dd', '0200000000ff 020000000001 0800', '0011'].join(',');
    const r = cli('explain', frames, '--config', join(FIX, 'nic.json'));
    expect(r.status).toBe(0);
    golden('explain-hex.txt', r.out);
  });

  it('refuses input that is neither a file nor hex, naming it', () => {
    const r = cli('explain', 'not-a-file', '--config', join(FIX, 'nic.json'));
    expect(r.status).toBe(1);
    expect(r.err).toContain('"not-a-file" is neither a capture file nor hex bytes');
  });
});

const real = existsSync(NB6) || process.env.CI === 'true' ? describe : describe.skip;
real('on a real capture (python3-dpkt nb6-http.pcap)', () => {
  it('explain --json gives one line per frame', () => {
    const r = cli('explain', NB6, '--config', join(FIX, 'nb6.json'), '--json');
    expect(r.status, r.err).toBe(0);
    expect(r.out.trim().split('\n')).toHaveLength(62);
    golden('explain-nb6.jsonl', r.out);
  });

  it('filter writes one capture per client and the dropped frames, with the table and the JSON', async () => {
    const out = join(tmp, 'nb6');
    const t = cli('filter', NB6, '--config', join(FIX, 'nb6.json'), '--out', out, '--dropped');
    expect(t.status, t.err).toBe(0);
    expect(t.err).toBe('');
    golden('filter-nb6.txt', t.out);
    golden('filter-nb6.outputs.json', await outputs(out));
    const j = cli('filter', NB6, '--config', join(FIX, 'nb6.json'), '--out', join(tmp, 'nb6-json'), '--json', '--format', 'pcapng');
    golden('filter-nb6.json', j.out);
    // Each client's capture holds exactly what tcpdump selects by its destination MAC, byte for byte.
    const tcpdump = ['/usr/sbin/tcpdump', '/usr/bin/tcpdump'].find((p) => existsSync(p));
    if (tcpdump === undefined) throw new Error('tcpdump is required for this check (apt-get install tcpdump)');
    const dump = (...a: string[]): string => spawnSync(tcpdump, ['-nn', '-tt', '--nano', '-xx', '-r', ...a], { encoding: 'utf8' }).stdout;
    for (const [name, mac] of [['box', '00:17:33:61:00:00'], ['pc', 'e0:a1:d7:18:c2:73'], ['router', '80:fb:06:f0:45:d7']] as const) {
      const expected = dump(NB6, `ether dst ${mac}`);
      expect(expected.length).toBeGreaterThan(0);
      expect(dump(join(out, `${name}.pcap`)), name).toBe(expected);
      expect(dump(join(tmp, 'nb6-json', `${name}.pcapng`)), name).toBe(expected);
    }
    const report = JSON.parse(j.out);
    expect(report.clients.reduce((a: number, c: { frames: number }) => a + c.frames, 0) + report.dropped.frames).toBe(62);
  });
});

describe('gen and filter on a generated capture', () => {
  it('gen is reproducible from its seed', () => {
    const a = cli('gen', join(tmp, 'a.pcap'), '--config', join(FIX, 'nic.json'), '--frames', '300', '--seed', '5', '--mix', 'unicast=60,broadcast=10,multicast=10,unknown=10,flood=5,runt=5');
    expect(a.status, a.err).toBe(0);
    golden('gen.txt', a.out);
    cli('gen', join(tmp, 'b.pcap'), '--config', join(FIX, 'nic.json'), '--frames', '300', '--seed', '5', '--mix', 'unicast=60,broadcast=10,multicast=10,unknown=10,flood=5,runt=5');
    expect(readFileSync(join(tmp, 'a.pcap'))).toEqual(readFileSync(join(tmp, 'b.pcap')));
    golden('gen.sha256', createHash('sha256').update(readFileSync(join(tmp, 'a.pcap'))).digest('hex') + '\n');
  });

  it('filter splits it per client as pcapng', async () => {
    const src = join(tmp, 'g.pcap');
    cli('gen', src, '--config', join(FIX, 'nic.json'), '--frames', '300', '--seed', '5', '--mix', 'unicast=60,broadcast=10,multicast=10,unknown=10,flood=5,runt=5');
    const out = join(tmp, 'gen-out');
    const r = cli('filter', src, '--config', join(FIX, 'nic.json'), '--out', out, '--format', 'pcapng', '--dropped');
    expect(r.status, r.err).toBe(0);
    golden('filter-gen.txt', r.out);
    golden('filter-gen.outputs.json', await outputs(out));
  });

  it('a hostile capture fails naming the file and offset, and leaves no output behind', () => {
    const src = join(tmp, 'evil.pcap');
    const b = Buffer.alloc(24 + 16);
    b.writeUInt32LE(0xa1b2c3d4, 0);
    b.writeUInt16LE(2, 4);
    b.writeUInt32LE(1, 20);
    b.writeUInt32LE(0x7fff_ffff, 24 + 8);
    writeFileSync(src, b);
    const out = join(tmp, 'evil-out');
    mkdirSync(out);
    const r = cli('filter', src, '--config', join(FIX, 'nic.json'), '--out', out);
    expect(r.status).toBe(1);
    expect(r.err).toBe('macslot filter: CAPTURE_INVALID: "<tmp>/evil.pcap" at byte offset 24: record length 2147483647 is above the 262144-byte limit\n');
    expect(readdirSync(out)).toEqual([]);
  });
});

describe('bench and demo', () => {
  it('bench runs the suite from the source tree', () => {
    expect(cli('bench', '--quick', '--json', 'x.json', '--dry-run').out).toBe('node --import tsx bench/run.ts --quick --json x.json\n');
    expect(cli('bench', '--filter', '--size', '100', '--dry-run').out).toBe('node --import tsx bench/filter.ts --size 100\n');
  });

  it('demo prints the same report every run but for its throughput figures', () => {
    const r = cli('demo');
    expect(r.status, r.err).toBe(0);
    const masked = r.out.replace(/-?\d+(\.\d+)? Mpps/g, 'N Mpps').replace(/\d+× slower/g, 'N× slower');
    golden('demo.txt', masked);
  });
});
