// The built `macslot` command: golden outputs of every subcommand on a real capture (dpkt's nb6-http) and on a generated one.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFromConfig, classifyVlanFrame, parseConfig, scanCapture, type CaptureReader } from 'macslot';
import { readCaptureFile } from 'macslot/node';
import { until } from './support/frames.js';
import { streamPeer } from './support/peer.js';
import { spawnTracked } from './support/processes.js';

const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/cli/main.js');
const FIX = join(ROOT, 'test/fixtures/cli');
const NB6 = '/usr/share/doc/python3-dpkt/examples/data/nb6-http.pcap';
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const tmp = mkdtempSync(join(tmpdir(), 'macslot-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const NIC = join(FIX, 'nic.json');
const MIX = 'unicast=60,broadcast=10,multicast=10,unknown=10,flood=5,runt=5';

function cli(...args: string[]): { out: string; err: string; status: number | null } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
  return { out: r.stdout.replaceAll(tmp, '<tmp>'), err: r.stderr.replaceAll(tmp, '<tmp>'), status: r.status };
}

/** Runs a bash script in which the function `macslot` is the built CLI; returns its output and the status of its last command. */
function sh(script: string, input?: Buffer): { out: Buffer; err: string; status: number | null } {
  const prelude = `macslot() { '${process.execPath}' '${CLI}' "$@"; }\n`;
  const r = spawnSync('bash', ['-c', prelude + script], { cwd: ROOT, input, maxBuffer: 1 << 28 });
  return { out: r.stdout, err: r.stderr.toString(), status: r.status };
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
    const text = ['--help', 'demo', 'filter', 'explain', 'inspect', 'bench', 'gen', 'switch', 'serve', 'completion'].map((c) => {
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
    expect(JSON.parse(j.out).slots[3]).toEqual({
      slot: 3,
      mac: '00:14:4f:00:00:03',
      reserved: true,
      active: true,
      owner: 'tap',
      kind: 'factory',
      placement: 'unicast',
    });
  });

  it('names the file, the JSON path and the bad value of a broken configuration', () => {
    const bad = join(tmp, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({ nic: { primary: '00:14:4f:00:00:00' }, clients: [{ name: 'a' }, { name: 'b', multicast: ['33:33:zz:00:00:01'] }] }),
    );
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

describe('configuration files with VLANs', () => {
  const TRUNK = join(FIX, 'vlans-trunk.json');
  const VMIX = 'unicast=50,broadcast=10,multicast=10,unknown=5,flood=5,runt=5,vlan=15';
  type Seen = { vid: number | null; rule: string; path: string; deliver: string[] };

  /** A capture of `config`'s traffic from gen, and what the reference filter makes of each frame, with the VLAN it is in. */
  async function generated(name: string, config: string, frames: number): Promise<{ file: string; want: Seen[] }> {
    const file = join(tmp, name);
    const g = cli('gen', file, '--config', config, '--frames', String(frames), '--seed', '7', '--mix', VMIX);
    expect(g.status, g.err).toBe(0);
    expect(g.out).toMatch(/vlan [\d,]+; [\d,]+ tagged\)\n$/);
    const { nic, vlans } = buildFromConfig(parseConfig(JSON.parse(readFileSync(config, 'utf8'))), { vlans: true });
    const want: Seen[] = [];
    await readCaptureFile(file, (r) => {
      const v = classifyVlanFrame(nic.filterState(), vlans!, 'uplink', r.data);
      want.push({ vid: v.vid ?? null, rule: v.rule, path: v.path, deliver: v.deliver.map((id) => nic.client(id)!.name) });
    });
    return { file, want };
  }

  it('gen tags the frames, and explain (Wasm) agrees with the reference filter on every one, naming its VLAN', async () => {
    const { file, want } = await generated('vlan-explain.pcap', TRUNK, 3000);
    const rules = new Set(want.map((w) => w.rule));
    for (const r of ['unicast-exact', 'broadcast', 'multicast-exact', 'drop-vlan', 'drop-unknown', 'drop-runt'])
      expect(rules, `the capture has ${r}`).toContain(r);
    expect(new Set(want.map((w) => w.vid))).toEqual(new Set([1, 10, 20, 30, 4094, null]));
    const r = cli('explain', file, '--config', TRUNK, '--json');
    expect(r.status, r.err).toBe(0);
    const got = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Seen & { index: number });
    expect(got.map(({ vid, rule, path, deliver }) => ({ vid, rule, path, deliver }))).toEqual(want);
  });

  it('filter classifies on (MAC, VLAN) through the data plane and counts drop-vlan', async () => {
    const { file, want } = await generated('vlan-filter.pcap', TRUNK, 3000);
    const out = join(tmp, 'vlan-filter');
    const r = cli('filter', file, '--config', TRUNK, '--out', out, '--dropped', '--json');
    expect(r.status, r.err).toBe(0);
    const report = JSON.parse(r.out) as {
      clients: { name: string; frames: number; vlans: number[] }[];
      dropped: { frames: number; rules: Record<string, number> };
    };
    const to = (name: string): number => want.filter((w) => w.deliver.includes(name)).length;
    expect(report.clients.map((c) => [c.name, c.frames, c.vlans])).toEqual([
      ['primary', to('primary'), [1]],
      ['vm-a', to('vm-a'), [10]],
      ['vm-b', to('vm-b'), [20]],
      ['router', to('router'), [10, 20, 30]],
    ]);
    const dropVlan = want.filter((w) => w.rule === 'drop-vlan').length;
    expect(dropVlan).toBeGreaterThan(0);
    expect(report.dropped.rules['drop-vlan']).toBe(dropVlan);
    expect(report.dropped.frames).toBe(want.filter((w) => w.deliver.length === 0).length);
    // Each client's capture holds its frames as they came from the wire, tags kept.
    const vids: number[] = [];
    await readCaptureFile(join(out, 'vm-b.pcap'), (c) => void vids.push((c.data[12]! << 8) | c.data[13]!));
    expect(vids).toHaveLength(to('vm-b'));
    expect(vids.every((t) => t === 0x8100)).toBe(true);
    const text = cli('filter', file, '--config', TRUNK, '--out', join(tmp, 'vlan-filter-text'));
    expect(text.out).toMatch(/client\s+vlans\s+frames/);
    expect(text.out).toMatch(/router\s+10, 20, 30\s/);
  });

  it('explain names the VLAN of hex frames and drops across VLANs', () => {
    const frames = [
      'ffffffffffff 020000000001 0800', // untagged: the wire's native VLAN 10
      'ffffffffffff 020000000001 8100 0014 0800', // broadcast in VLAN 20
      '00144f000002 020000000001 8100 000a 0800', // vm-b's MAC in VLAN 10: vm-b is in 20
      '00144f000002 020000000001 8100 0014 0800',
      '00144f000002 020000000001 8100 001e 0800', // VLAN 30: not on the wire
      '00144f000002 020000000001 8100 00', // a tag cut short
    ].join(',');
    const r = cli('explain', frames, '--config', join(FIX, 'vlans.json'), '--json');
    expect(r.status, r.err).toBe(0);
    expect(
      r.out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Seen),
    ).toEqual(
      [
        { vid: 10, rule: 'broadcast', deliver: ['vm-a'] },
        { vid: 20, rule: 'broadcast', deliver: ['vm-b'] },
        { vid: 10, rule: 'drop-vlan', deliver: [] },
        { vid: 20, rule: 'unicast-exact', deliver: ['vm-b'] },
        { vid: 30, rule: 'drop-vlan', deliver: [] },
        { vid: null, rule: 'drop-vlan', deliver: [] },
      ].map((v, index) => expect.objectContaining({ index, ...v })),
    );
    const table = cli('explain', frames, '--config', join(FIX, 'vlans.json'));
    expect(table.out.split('\n')[0]).toMatch(/destination\s+vlan\s+length/);
  });

  it('inspect shows the VLANs of the wire and of every client', () => {
    const t = cli('inspect', '--config', TRUNK);
    expect(t.status, t.err).toBe(0);
    expect(t.out).toContain('VLANs (the wire and each client):');
    const rows = t.out
      .slice(t.out.indexOf('VLANs ('))
      .split('\n')
      .slice(3, 8)
      .map((l) => l.trim().split(/\s{2,}/));
    expect(rows).toEqual([
      ['(wire)', 'trunk', '1, 10, 20, 30', '1'],
      ['primary', 'access', '1', '1'],
      ['vm-a', 'access', '10', '10'],
      ['vm-b', 'access', '20', '20'],
      ['router', 'trunk', '10, 20, 30', '30'],
    ]);
    const j = JSON.parse(cli('inspect', '--config', TRUNK, '--json').out) as { vlans: unknown[] };
    expect(j.vlans[4]).toEqual({ port: 'router', mode: 'trunk', vlans: [10, 20, 30], native: 30 });
    expect(JSON.parse(cli('inspect', '--config', NIC, '--json').out)).not.toHaveProperty('vlans');
  });

  const badVlans = join(tmp, 'bad-vlans.json');
  const manyVlans = join(tmp, 'many-vlans.json');
  writeFileSync(badVlans, JSON.stringify({ nic: { primary: '00:14:4f:00:00:00' }, clients: [{ name: 'a', vlans: [10], native: 20 }] }));
  const wide = Array.from({ length: 256 }, (_, i) => i + 1);
  writeFileSync(manyVlans, JSON.stringify({ nic: { primary: '00:14:4f:00:00:00', vlans: wide }, clients: [{ name: 'a', vlan: 1 }] }));
  const capture = join(tmp, 'any.pcap');
  const REFUSED: { name: string; args: () => string[]; message: string }[] = [
    {
      name: 'inspect, a bad native VLAN',
      args: () => ['inspect', '--config', badVlans],
      message: 'clients[0].native: 20 is not one of vlans',
    },
    { name: 'explain, a bad native VLAN', args: () => ['explain', 'ff', '--config', badVlans], message: 'clients[0].native: 20' },
    {
      name: 'gen, a bad native VLAN',
      args: () => ['gen', join(tmp, 'x.pcap'), '--config', badVlans, '--frames', '1'],
      message: 'clients[0].native',
    },
    {
      name: 'filter, a bad native VLAN',
      args: () => ['filter', capture, '--config', badVlans, '--out', join(tmp, 'x')],
      message: 'clients[0].native',
    },
    {
      name: 'gen, vlan frames without VLANs',
      args: () => ['gen', join(tmp, 'y.pcap'), '--config', NIC, '--frames', '1', '--mix', 'vlan=1'],
      message: '--mix asks for vlan frames but the configuration uses no VLANs',
    },
    ...['explain ff', 'filter CAPTURE --out OUT', 'inspect', 'gen OUT.pcap --frames 1'].map((line) => ({
      name: `${line.split(' ')[0]}, more VLANs on the wire than the data plane carries`,
      args: () => [...line.replace('CAPTURE', capture).replaceAll('OUT', join(tmp, 'z')).split(' '), '--config', manyVlans],
      message: 'nic.vlans: "256 VLANs" are more than the data plane carries (at most 255)',
    })),
  ];
  it.each(REFUSED)('refuses $name with CONFIG_INVALID or INVALID_ARGUMENT naming it', ({ args, message }) => {
    if (!existsSync(capture)) expect(cli('gen', capture, '--config', NIC, '--frames', '4').status).toBe(0);
    const r = cli(...args());
    expect(r.status).toBe(1);
    expect(r.err).toContain(message);
    expect(r.err).toMatch(/CONFIG_INVALID|INVALID_ARGUMENT/);
    expect(['x.pcap', 'y.pcap', 'z.pcap'].some((f) => existsSync(join(tmp, f)))).toBe(false);
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
    for (const [name, mac] of [
      ['box', '00:17:33:61:00:00'],
      ['pc', 'e0:a1:d7:18:c2:73'],
      ['router', '80:fb:06:f0:45:d7'],
    ] as const) {
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
    const a = cli(
      'gen',
      join(tmp, 'a.pcap'),
      '--config',
      join(FIX, 'nic.json'),
      '--frames',
      '300',
      '--seed',
      '5',
      '--mix',
      'unicast=60,broadcast=10,multicast=10,unknown=10,flood=5,runt=5',
    );
    expect(a.status, a.err).toBe(0);
    golden('gen.txt', a.out);
    cli(
      'gen',
      join(tmp, 'b.pcap'),
      '--config',
      join(FIX, 'nic.json'),
      '--frames',
      '300',
      '--seed',
      '5',
      '--mix',
      'unicast=60,broadcast=10,multicast=10,unknown=10,flood=5,runt=5',
    );
    expect(readFileSync(join(tmp, 'a.pcap'))).toEqual(readFileSync(join(tmp, 'b.pcap')));
    golden(
      'gen.sha256',
      createHash('sha256')
        .update(readFileSync(join(tmp, 'a.pcap')))
        .digest('hex') + '\n',
    );
  });

  it('filter splits it per client as pcapng', async () => {
    const src = join(tmp, 'g.pcap');
    cli(
      'gen',
      src,
      '--config',
      join(FIX, 'nic.json'),
      '--frames',
      '300',
      '--seed',
      '5',
      '--mix',
      'unicast=60,broadcast=10,multicast=10,unknown=10,flood=5,runt=5',
    );
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
    expect(r.err).toBe(
      'macslot filter: CAPTURE_INVALID: "<tmp>/evil.pcap" at byte offset 24: record length 2147483647 is above the 262144-byte limit\n',
    );
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

describe('tcpdump and tshark habits', () => {
  it('--version and -V print the package version', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = cli(flag);
      expect(r.status).toBe(0);
      expect(r.out).toBe(`macslot ${version}\n`);
    }
  });

  it('- is standard output for gen and standard input for filter and explain, byte for byte as with files', async () => {
    const file = join(tmp, 'stdio.pcap');
    expect(cli('gen', file, '--config', NIC, '--frames', '300', '--seed', '5', '--mix', MIX).status).toBe(0);
    const gen = sh(`macslot gen - --config ${NIC} --frames 300 --seed 5 --mix ${MIX}`);
    expect(gen.status, gen.err).toBe(0);
    expect(gen.out.equals(readFileSync(file))).toBe(true);
    expect(gen.err).toContain('-: 300 frames of 64 bytes');
    const piped = sh(
      `macslot gen - --config ${NIC} --frames 300 --seed 5 --mix ${MIX} | macslot filter - --config ${NIC} --out ` +
        `${join(tmp, 'stdio-pipe')} --dropped --json`,
    );
    expect(piped.status, piped.err).toBe(0);
    expect(cli('filter', file, '--config', NIC, '--out', join(tmp, 'stdio-file'), '--dropped').status).toBe(0);
    expect(await outputs(join(tmp, 'stdio-pipe'))).toBe(await outputs(join(tmp, 'stdio-file')));
    expect(JSON.parse(piped.out.toString()).input.frames).toBe(300);
    const explained = sh(`macslot explain - --config ${NIC} --json`, readFileSync(file));
    expect(explained.status, explained.err).toBe(0);
    expect(explained.out.toString()).toBe(cli('explain', file, '--config', NIC, '--json').out);
  });

  it('a reader that closes the pipe early ends the command quietly', () => {
    const file = join(tmp, 'epipe.pcap');
    expect(cli('gen', file, '--config', NIC, '--frames', '20000').status).toBe(0);
    for (const args of [
      `explain ${file} --config ${NIC}`,
      `explain ${file} --config ${NIC} --json`,
      `gen - --config ${NIC} --frames 200000`,
    ]) {
      const r = sh(`macslot ${args} | head -c 100 >/dev/null; echo "status $?"`);
      expect(r.err, args).toBe('');
      expect(r.out.toString(), args).toBe('status 0\n');
    }
  });

  /** Commands whose only output (help, version) used to reach a closed pipe outside the commands' EPIPE handling. */
  const CLOSED_STDOUT: readonly string[] = ['--help', '--version', 'switch --help'];
  it.each(CLOSED_STDOUT)('macslot %s with standard output already closed exits 0 without a stack trace', async (line) => {
    const child = spawnTracked(process.execPath, [CLI, ...line.split(' ')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // Closed long before node has started, so the write fails with EPIPE (`macslot --help | true`).
    child.stdout!.destroy();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const code = await Promise.race([exited, new Promise<string>((r) => (timer = setTimeout(() => r('no exit within 20 s'), 20_000)))]);
    clearTimeout(timer);
    expect(code, err).toBe(0);
    expect(err).toBe('');
  });

  it('explain streams its table in bounded memory past the old 150,000-row crash', () => {
    const file = join(tmp, 'many.pcap');
    const frames = 160_000;
    expect(cli('gen', file, '--config', NIC, '--frames', String(frames)).status).toBe(0);
    const r = sh(`"${process.execPath}" --max-old-space-size=32 "${CLI}" explain ${file} --config ${NIC}`);
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    const lines = r.out.toString().trimEnd().split('\n');
    expect(lines).toHaveLength(frames + 2);
    // Columns are sized on the first 1,000 rows; a longer index only shifts its own line.
    expect(lines[0]).toBe('  index  destination        length  rule             path      delivered to');
    expect(lines[1002]).toMatch(/^ {2}1000 {3}\S/);
    expect(lines.at(-1)).toMatch(/^ {2}159999 {2}\S/);
  });

  it('-c/--count stops after N frames, as tcpdump -c does', async () => {
    const full = join(tmp, 'count-300.pcap');
    const head = join(tmp, 'count-100.pcap');
    cli('gen', full, '--config', NIC, '--frames', '300', '--seed', '7', '--mix', MIX);
    cli('gen', head, '--config', NIC, '--frames', '100', '--seed', '7', '--mix', MIX);
    // The first 100 frames of the long capture are the short one.
    expect(readFileSync(full).subarray(0, readFileSync(head).length).equals(readFileSync(head))).toBe(true);
    const counted = cli('filter', full, '--config', NIC, '--out', join(tmp, 'count-c'), '-c', '100', '--json');
    expect(counted.status, counted.err).toBe(0);
    expect(JSON.parse(counted.out).input.frames).toBe(100);
    expect(cli('filter', head, '--config', NIC, '--out', join(tmp, 'count-head')).status).toBe(0);
    expect(await outputs(join(tmp, 'count-c'))).toBe(await outputs(join(tmp, 'count-head')));
    expect(
      cli('explain', full, '--config', NIC, '--count', '3', '--json')
        .out.trim()
        .split('\n')
        .map((l) => JSON.parse(l).index),
    ).toEqual([0, 1, 2]);
    expect(cli('explain', full, '--config', NIC, '-c', '5').out.trim().split('\n')).toHaveLength(5 + 2);
    const stdin = sh(`macslot explain - --config ${NIC} -c 2 --json`, readFileSync(full));
    expect(stdin.out.toString().trim().split('\n')).toHaveLength(2);
  });

  const USAGE_ERRORS: readonly (readonly string[])[] = [
    ['inspect'],
    ['explain', '0011'],
    ['explain', '--config', NIC],
    ['explain', '0011', '--config', NIC, '-c', '0'],
    ['filter', 'x.pcap', '--config', NIC],
    ['filter', 'x.pcap', '--config', NIC, '--out', '-'],
    ['filter', 'x.pcap', '--config', NIC, '--out', 'd', '--format', 'pcap-ns'],
    ['gen', 'x.pcap', '--config', NIC],
    ['gen', 'x.pcap', '--config', NIC, '--frames', 'many'],
    ['gen', 'x.pcap', '--config', NIC, '--frames', '1', '--mix', 'jumbo=1'],
    ['switch'],
    ['switch', '--listen', 'carrier-pigeon:1'],
    ['switch', '--listen', 'unix:/nonexistent/s', '--allocation', 'fifo'],
    ['switch', '--listen', 'unix:/nonexistent/s', '--lease-ttl=-1'],
    ['completion'],
    ['completion', 'powershell'],
    ['demo', 'extra'],
  ];
  it.each(USAGE_ERRORS)('usage error exits 2 with the command help: %j', (...args) => {
    const r = cli(...args);
    expect(r.status, r.err).toBe(2);
    expect(r.err).toMatch(new RegExp(`^macslot ${args[0]}: .+\n\nusage: macslot ${args[0]}`));
    expect(r.out).toBe('');
  });

  it.each(['a file', 'standard output'])('switch --tap records every port as pcapng, one interface per port, to %s', async (where) => {
    const config = join(tmp, 'tap.json');
    writeFileSync(
      config,
      JSON.stringify({
        nic: { primary: '02:00:00:00:00:01' },
        clients: [
          { name: 'a', address: '02:00:00:00:00:0a' },
          { name: 'b', address: '02:00:00:00:00:0b' },
        ],
      }),
    );
    const toStdout = where === 'standard output';
    const sock = join(tmp, `tap-${toStdout ? 'stdout' : 'file'}.sock`);
    const pcap = join(tmp, 'switch.pcapng');
    // Tracked: if the switch ignored SIGTERM, the test's timeout would kill it rather than leave it running.
    const child = spawnTracked(
      process.execPath,
      [CLI, 'switch', '--config', config, '--listen', `unix:${sock}`, '--tap', toStdout ? '-' : pcap, '--json'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    const out: Buffer[] = [];
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await until(() => /listening on unix:/.test(err), 10000, `the switch listening (stderr: ${err})`);
      const a = await streamPeer(sock);
      await until(() => /connected as a /.test(err), 10000, `a connected (stderr: ${err})`);
      const b = await streamPeer(sock);
      await until(() => /connected as b /.test(err), 10000, `b connected (stderr: ${err})`);
      const frame = Uint8Array.from([...Array(6).fill(0xff), 2, 0, 0, 0, 0, 0x0a, 0x08, 0x06, ...Array(46).fill(7)]);
      a.send(frame);
      await until(() => b.got.length === 1, 10000, 'the broadcast at b');
      a.socket.destroy();
      b.socket.destroy();
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    // The counters go to standard output, or to standard error when the capture takes standard output.
    const counters = toStdout ? err.split('\n').find((l) => l.startsWith('{')) : Buffer.concat(out).toString();
    expect(JSON.parse(counters ?? '')).toHaveProperty('ports');
    const seen: [number, number][] = [];
    const onFrame = (r: CaptureReader): void => void seen.push([r.interfaceId, r.capturedLength]);
    const summary = toStdout ? await scanCapture([Buffer.concat(out)], 'stdout', onFrame) : await readCaptureFile(pcap, onFrame);
    expect(summary.format).toBe('pcapng');
    // In at a's port, out at b's port: two interfaces, one per port.
    expect(seen.sort()).toEqual([
      [0, 60],
      [1, 60],
    ]);
    expect((toStdout ? Buffer.concat(out) : readFileSync(pcap)).includes(Buffer.from('unix:'))).toBe(true);
  });

  it('switch --tap - whose reader goes away: the capture stops, told once and counted; a peer connecting after it is served', async () => {
    const config = join(tmp, 'tap-epipe.json');
    writeFileSync(
      config,
      JSON.stringify({
        nic: { primary: '02:00:00:00:00:01' },
        clients: [
          { name: 'a', address: '02:00:00:00:00:0a' },
          { name: 'b', address: '02:00:00:00:00:0b' },
        ],
      }),
    );
    const sock = join(tmp, 'tap-epipe.sock');
    const child = spawnTracked(process.execPath, [CLI, 'switch', '--config', config, '--listen', `unix:${sock}`, '--tap', '-', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    let captured = 0;
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.stdout!.on('data', (b: Buffer) => (captured += b.length));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const broadcast = Uint8Array.from([...Array(6).fill(0xff), 2, 0, 0, 0, 0, 0x0a, 0x08, 0x06, ...Array(46).fill(7)]);
    const failed = /tap: writing standard output failed \(EPIPE[^\n]*peers unaffected\n/;
    try {
      await until(() => /listening on unix:/.test(err), 10000, `the switch listening (stderr: ${err})`);
      const a = await streamPeer(sock);
      await until(() => /connected as a /.test(err) && captured > 0, 10000, `a connected and recorded (stderr: ${err})`);
      // The capture's reader goes away: the next frame's record meets EPIPE, and the tap is off.
      child.stdout!.destroy();
      a.send(broadcast);
      await until(() => failed.test(err), 10000, `the tap's failure logged (stderr: ${err})`);
      const b = await streamPeer(sock);
      await until(() => /connected as b /.test(err), 10000, `b, connecting after the tap failed, attached (stderr: ${err})`);
      a.send(broadcast);
      await until(() => b.got.length === 1, 10000, `the broadcast at b (stderr: ${err})`);
      a.socket.destroy();
      b.socket.destroy();
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(
      err.split('\n').filter((l) => failed.test(`${l}\n`)),
      err,
    ).toHaveLength(1);
    // a's frame at the failure, then a's second in and out at b: three frames not recorded.
    expect(err).toMatch(/tap: \d+ frames recorded, 3 not recorded after the output failed\n/);
    // Both peers served and gone; nobody refused.
    const counters = JSON.parse(err.split('\n').find((l) => l.startsWith('{')) ?? '') as { refused: object; closed: { ports: number } };
    expect([counters.refused, counters.closed.ports]).toEqual([{}, 2]);
  });

  it('completion prints scripts that complete commands and options', () => {
    const r = sh(
      'source <(macslot completion bash); for line in "macslot fi" "macslot explain --c" "macslot completion z"; do COMP_WORDS=($line); ' +
        'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _macslot; echo "${COMPREPLY[*]}"; done',
    );
    expect(r.err).toBe('');
    expect(r.out.toString()).toBe('filter\n--config --count\nzsh\n');
    for (const shell of ['zsh', 'fish']) {
      const script = cli('completion', shell);
      expect(script.status).toBe(0);
      for (const word of ['filter', 'explain', 'switch', 'completion', 'count', 'tap'])
        expect(script.out, `${shell} ${word}`).toContain(word);
      const check = spawnSync(shell, ['-n'], { input: script.out, encoding: 'utf8' });
      if (check.error === undefined) expect(check.status, check.stderr).toBe(0);
    }
  });
});
