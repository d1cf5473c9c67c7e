// Native comparison driver: builds swiss.c with -O3 when a C compiler exists and runs it on the benchmark's frames.

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Mac, Nic } from '../../dist/index.js';

const SOURCE = fileURLToPath(new URL('./swiss.c', import.meta.url));
const BINARY = fileURLToPath(new URL('../../build/bench-swiss', import.meta.url));
let built: boolean | string | undefined;

function build(): true | string {
  if (built === undefined) {
    try {
      mkdirSync(fileURLToPath(new URL('../../build/', import.meta.url)), { recursive: true });
      execFileSync('cc', ['-O3', '-march=x86-64-v2', '-o', BINARY, SOURCE], { stdio: 'pipe' });
      built = true;
    } catch (err) {
      built = `no native comparison: the C compiler is missing or failed (${(err as Error).message.split('\n')[0]})`;
    }
  }
  return built as true | string;
}

/** Runs the native classifier on the same frames; returns its Mpps and checksum, or why it could not. */
export function nativeRun(pool: Uint8Array, desc: Uint32Array, count: number, macs: Mac[], groups: Mac[], nic: Nic, iterations: number, maxFrame: number): { ok: true; mpps: number; checksum: number } | { ok: false; reason: string } {
  const b = build();
  if (b !== true) return { ok: false, reason: b };
  const owners = new Map(nic.slots().map((s) => [s.mac.toString(), s.owner]));
  const table = new Uint8Array((macs.length + groups.length) * 8);
  [...macs, ...groups].forEach((m, i) => {
    m.writeTo(table, i * 8);
    const id = i < macs.length ? nic.client(owners.get(m.toString())!)!.id : 0;
    table[i * 8 + 6] = id & 0xff;
    table[i * 8 + 7] = id >> 8;
  });
  const header = new Uint32Array([count, pool.length, macs.length, groups.length, iterations, maxFrame]);
  const file = join(tmpdir(), `macslot-bench-${process.pid}.bin`);
  writeFileSync(file, Buffer.concat([Buffer.from(header.buffer), Buffer.from(table), Buffer.from(desc.buffer, desc.byteOffset, count * 8), Buffer.from(pool)]));
  const [mpps, checksum, counted] = execFileSync(BINARY, [file], { encoding: 'utf8' }).trim().split(' ').map(Number);
  // The counters are part of the work measured; their total proves every pass counted every frame.
  if (counted !== count * (Math.min(iterations, 64) + 3)) return { ok: false, reason: `native comparison counted ${counted} verdicts, expected ${count * (Math.min(iterations, 64) + 3)}` };
  return { ok: true, mpps: mpps!, checksum: checksum! };
}
