// Capture files cross-checked with Debian's tcpdump and python3-dpkt's sample captures; under CI these fail, never skip, when the tools are
// missing.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isMacslotError, type CaptureFormat } from 'macslot';
import { CaptureFile, readCaptureFile } from 'macslot/node';

const TCPDUMP = ['/usr/sbin/tcpdump', '/usr/bin/tcpdump'].find((p) => existsSync(p));
const SAMPLES = '/usr/share/doc/python3-dpkt/examples/data';
const REQUIRED = process.env.CI === 'true';
const haveSamples = existsSync(SAMPLES) && readdirSync(SAMPLES).some((f) => f.endsWith('.pcap'));
const suite = (TCPDUMP !== undefined && haveSamples) || REQUIRED ? describe : describe.skip;
const tmp = mkdtempSync(join(tmpdir(), 'macslot-tools-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function tcpdump(...args: string[]): { frames: string[]; status: number | null; stderr: string } {
  if (TCPDUMP === undefined) throw new Error('tcpdump is required here (apt-get install tcpdump)');
  // -xx: every captured byte; --nano: nanosecond timestamps, so precision loss would show.
  const r = spawnSync(TCPDUMP, ['-nn', '-tt', '--nano', '-xx', '-r', ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const frames: string[] = [];
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('\t')) frames[frames.length - 1] += line.replace(/^\t0x[0-9a-f]+:\s+/, '').replace(/\s+/g, '');
    else if (line.length > 0) frames.push(line.split(' ')[0]! + ' ');
  }
  return { frames, status: r.status, stderr: r.stderr };
}

/** The same listing from macslot's reader: timestamp with nanoseconds, then every captured byte. */
async function ours(path: string): Promise<{ frames: string[]; error: unknown }> {
  const frames: string[] = [];
  let error: unknown;
  try {
    await readCaptureFile(
      path,
      (r) => {
        frames.push(`${r.seconds}.${String(r.nanoseconds).padStart(9, '0')} ` + Buffer.from(r.data).toString('hex'));
      },
      { chunkBytes: 4096 },
    );
  } catch (e) {
    error = e;
  }
  return { frames, error };
}

function samples(): string[] {
  if (!haveSamples) throw new Error(`python3-dpkt's sample captures are required here (${SAMPLES})`);
  return readdirSync(SAMPLES)
    .filter((f) => f.endsWith('.pcap'))
    .sort()
    .map((f) => join(SAMPLES, f));
}

suite('cross-checks with tcpdump and the dpkt samples', () => {
  it(
    'agree on every dpkt sample capture: frames, timestamps and bytes; both call truncated_dns_2 truncated after its one ' + 'frame',
    async () => {
      const list = samples();
      expect(list.length).toBeGreaterThanOrEqual(5);
      for (const file of list) {
        const t = tcpdump(file);
        const m = await ours(file);
        expect(m.frames, file).toEqual(t.frames);
        expect(m.frames.length, file).toBeGreaterThan(0);
        const truncated = /truncated dump file/.test(t.stderr);
        expect(isMacslotError(m.error, 'CAPTURE_INVALID'), file).toBe(truncated);
        if (!truncated) expect(m.error, file).toBeUndefined();
      }
    },
  );

  it.each(['pcap', 'pcap-ns', 'pcapng'] as CaptureFormat[])(
    'tcpdump reads every %s file macslot writes, with the same frames and bytes',
    async (format) => {
      for (const file of samples().filter((f) => !f.endsWith('truncated_dns_2.pcap'))) {
        const out = join(tmp, `${format}-${file.split('/').pop()}`);
        const cf = new CaptureFile(out, { format });
        await readCaptureFile(file, (r) =>
          cf.writer.write(r.buffer, r.dataOffset, r.capturedLength, r.seconds, r.nanoseconds, r.originalLength),
        );
        cf.commit();
        const t = tcpdump(out);
        expect(t.status, t.stderr).toBe(0);
        expect(t.frames).toEqual(tcpdump(file).frames);
      }
    },
  );

  it('tcpdump honours the original length of frames macslot cut at snaplen', () => {
    const out = join(tmp, 'snap.pcap');
    const cf = new CaptureFile(out, { snaplen: 32 });
    cf.writer.writeFrame(new Uint8Array(100).fill(0xab), 1, 0);
    cf.commit();
    const r = spawnSync(TCPDUMP ?? 'tcpdump', ['-nn', '-e', '-r', out], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/length 100/);
    expect(tcpdump(out).frames[0]).toBe('1.000000000 ' + 'ab'.repeat(32));
  });

  it.each([
    { name: 'microsecond', precision: 'micro' },
    { name: 'nanosecond', precision: 'nano' },
  ])('macslot reads the $name pcap tcpdump writes', async ({ precision }) => {
    for (const file of samples().filter((f) => !f.includes('truncated_dns_2'))) {
      const out = join(tmp, `tcpdump-${precision}-${file.split('/').pop()}`);
      execFileSync(TCPDUMP ?? 'tcpdump', ['--time-stamp-precision', precision, '-r', file, '-w', out], { stdio: 'ignore' });
      expect(readFileSync(out).readUInt32LE(0)).toBe(precision === 'nano' ? 0xa1b23c4d : 0xa1b2c3d4);
      const m = await ours(out);
      expect(m.error).toBeUndefined();
      expect(m.frames).toEqual((await ours(file)).frames);
    }
  });

  it('an interrupted write leaves no file under the real name', () => {
    const out = join(tmp, 'never.pcap');
    const cf = new CaptureFile(out);
    cf.writer.writeFrame(new Uint8Array(60));
    cf.writer.flush();
    expect(existsSync(out)).toBe(false);
    const temp = cf.file.tempPath ?? '';
    expect(existsSync(temp)).toBe(true);
    cf.abort();
    expect(existsSync(temp)).toBe(false);
    writeFileSync(join(tmp, 'marker'), '');
  });
});
