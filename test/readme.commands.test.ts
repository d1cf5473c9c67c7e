// README: the command lines of "The command line" run as pasted, one shell each, in order, with `macslot` on PATH (the
// package's bin), in a folder holding the README's own configuration files (nic.json, vlans.json) and the captures those
// lines read. The few lines that cannot run here are in SKIPPED, each with the test that covers it instead.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blocks, root } from './support/readme.js';

const CLI = join(root, 'dist/cli/main.js');

/** Lines that do not run here (matched by their start), and what runs them instead. */
const SKIPPED: readonly { start: string; why: string }[] = [
  { start: 'tcpdump -i eth0', why: 'captures a live interface; test/capture.tools.test.ts holds macslot to tcpdump on the same files' },
  { start: 'macslot bench --quick', why: '.ci/run runs the same suite (npm run bench -- --quick)' },
  { start: 'macslot bench --filter', why: 'minutes on 1 GB; npm run bench:filter is the same run, reported in BENCHMARKS.md' },
  { start: 'macslot serve', why: 'runs until Ctrl-C; test/serve.test.ts starts and stops it' },
];

// Generous: each line handles at most 100,000 frames; a machine twice as slow as a busy CI runner finishes well inside it.
const LINE_TIMEOUT_MS = 60_000;

/** The README's lines of one section's sh block, comments and blank lines left out, `[--opt]` expanded to both forms. */
function commandLines(heading: string): string[] {
  const block = blocks().find((b) => b.heading === heading && b.lang === 'sh');
  expect(block, `an sh block under ${heading}`).toBeDefined();
  const out: string[] = [];
  for (const raw of block!.code.split('\n')) {
    const line = raw.replace(/\s+#.*$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const optional = /^(.*?) \[(--[\w-]+)\](.*)$/.exec(line);
    if (optional === null) out.push(line);
    else out.push(`${optional[1]}${optional[3]}`, `${optional[1]} ${optional[2]}${optional[3]}`);
  }
  return out;
}

/** The README's configuration files, told apart by their VLAN fields. */
function configFiles(): { nic: string; vlans: string } {
  const json = blocks().filter((b) => b.heading === '### The configuration file' && b.lang === 'json');
  const nic = json.find((b) => !b.code.includes('"vlan'));
  const vlans = json.find((b) => b.code.includes('"vlan"'));
  expect(nic, 'the configuration file example').toBeDefined();
  expect(vlans, 'the VLAN configuration file example').toBeDefined();
  return { nic: nic!.code, vlans: vlans!.code };
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one line in bash (for `<(…)` and pipes), in its own process group, killed whole at the deadline. */
function bash(dir: string, bin: string, line: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `set -o pipefail\n${line}`], {
      cwd: dir,
      detached: true,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: Run = { status: null, stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (d: string) => (run.stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (run.stderr += d));
    const killGroup = (): void => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // The group is already gone.
      }
    };
    const timer = setTimeout(killGroup, LINE_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      killGroup();
      run.status = code;
      resolve(run);
    });
  });
}

describe('README: the command line', () => {
  let dir = '';
  let bin = '';
  beforeAll(async () => {
    expect(existsSync(CLI), 'run npm run build first').toBe(true);
    dir = mkdtempSync(join(tmpdir(), 'macslot-readme-cli-'));
    bin = join(dir, '.bin');
    mkdirSync(bin);
    // What `npm i macslot` puts on PATH: the package's bin.
    writeFileSync(join(bin, 'macslot'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(join(bin, 'macslot'), 0o755);
    const { nic, vlans } = configFiles();
    writeFileSync(join(dir, 'nic.json'), nic);
    writeFileSync(join(dir, 'vlans.json'), vlans);
    // The captures the lines read: what `macslot gen` writes for the README's NIC, in both formats.
    for (const line of [
      'macslot gen trace.pcap --config nic.json --frames 2000',
      'macslot gen trace.pcapng --config nic.json --frames 2000 --format pcapng',
    ]) {
      const r = await bash(dir, bin, line);
      expect(r.status, `${line}\n${r.stderr}`).toBe(0);
    }
  });
  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('skips only the lines it names, each for a reason', () => {
    const lines = commandLines('## The command line');
    for (const s of SKIPPED)
      expect(
        lines.some((l) => l.startsWith(s.start)),
        `README still has "${s.start}"`,
      ).toBe(true);
    expect(lines.filter((l) => !SKIPPED.some((s) => l.startsWith(s.start))).length).toBeGreaterThanOrEqual(10);
  });

  it('runs every other line as pasted, in order, each ending with status 0', async () => {
    const results: { line: string; run: Run }[] = [];
    for (const line of commandLines('## The command line')) {
      if (SKIPPED.some((s) => line.startsWith(s.start))) continue;
      const run = await bash(dir, bin, line === 'source <(macslot completion bash)' ? `${line}\ncomplete -p macslot` : line);
      results.push({ line, run });
      expect(run.status, `${line}\n${run.stderr}`).toBe(0);
    }
    // What the lines say they do.
    const split = readdirSync(join(dir, 'split')).sort();
    expect(split).toEqual(expect.arrayContaining(['dropped.pcap', 'primary.pcap', 'vm-a.pcap', 'vm-b.pcap', 'tap.pcap', 'web.pcap']));
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Record<string, unknown>;
    expect(typeof report).toBe('object');
    const completion = results.find((r) => r.line.startsWith('source <('));
    expect(completion?.run.stdout).toMatch(/^complete .*macslot/m);
    const vlanTable = results.find((r) => r.line.startsWith('macslot explain v.pcap'));
    expect(vlanTable?.run.stdout.split('\n')[0]).toMatch(/\bvlan\b/);
  });

  it('prints the JSON line it shows for a broadcast', async () => {
    const block = blocks().find((b) => b.heading === '## The command line' && b.lang === 'sh')!;
    const shown = /^#\s+(\{"index".*\})\s*$/m.exec(block.code);
    expect(shown, 'an example output line').not.toBeNull();
    const want = JSON.parse(shown![1]!) as Record<string, unknown>;
    const run = await bash(dir, bin, 'macslot explain trace.pcap --config nic.json --json');
    expect(run.status, run.stderr).toBe(0);
    const got = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((o) => o.dst === want.dst);
    expect(got, `a frame to ${String(want.dst)}`).toBeDefined();
    expect({ ...got, index: want.index }).toEqual(want);
  });
});
