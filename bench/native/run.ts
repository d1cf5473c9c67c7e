// Native comparison driver: builds swiss.c with -O3 when a C compiler exists and serves its classifiers one timed pass
// at a time, so the main suite can interleave them with the other variants of a figure.

import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Mac, Nic } from '../../dist/index.js';

const SOURCE = fileURLToPath(new URL('./swiss.c', import.meta.url));
const BINARY = fileURLToPath(new URL('../../build/bench-swiss', import.meta.url));
/** The compiler flags of both native variants (SSE2 is part of x86-64; -march=x86-64-v2 adds SSE4.2 and POPCNT). */
export const NATIVE_FLAGS = ['-O3', '-march=x86-64-v2'];
let built: boolean | string | undefined;

function build(): true | string {
  if (built === undefined) {
    try {
      mkdirSync(fileURLToPath(new URL('../../build/', import.meta.url)), { recursive: true });
      execFileSync('cc', [...NATIVE_FLAGS, '-o', BINARY, SOURCE], { stdio: 'pipe' });
      built = true;
    } catch (err) {
      built = `no native comparison: the C compiler is missing or failed (${(err as Error).message.split('\n')[0]})`;
    }
  }
  return built as true | string;
}

/** One timed pass of a native variant: its time, the checksum of its verdicts, and how many verdicts it counted. */
export interface NativePass {
  ms: number;
  checksum: number;
  counted: number;
}

/** A running native classifier process holding one scenario's frames and both tables. */
export interface NativeServer {
  /** Runs one pass: 'same' is the data plane's algorithm with its counters, 'swiss' the plain Swiss-table anchor. */
  pass(kind: 'same' | 'swiss'): Promise<NativePass>;
  close(): void;
}

/**
 * Starts the native classifiers on the same frames (the pool, `count` descriptors) and the same table contents (each
 * MAC with its owner's client id, each group with its index); `capacity` is the entry count the data plane sizes its
 * table for. Returns the server, or why there is none.
 */
export async function nativeStart(
  pool: Uint8Array,
  desc: Uint32Array,
  count: number,
  macs: Mac[],
  groups: Mac[],
  nic: Nic,
  maxFrame: number,
  capacity: number,
): Promise<{ ok: true; server: NativeServer } | { ok: false; reason: string }> {
  const b = build();
  if (b !== true) return { ok: false, reason: b };
  const owners = new Map(nic.slots().map((s) => [s.mac.toString(), s.owner]));
  const table = new Uint8Array((macs.length + groups.length) * 8);
  [...macs, ...groups].forEach((m, i) => {
    m.writeTo(table, i * 8);
    const ref = i < macs.length ? nic.client(owners.get(m.toString())!)!.id : i - macs.length;
    table[i * 8 + 6] = ref & 0xff;
    table[i * 8 + 7] = ref >> 8;
  });
  const header = new Uint32Array([count, pool.length, macs.length, groups.length, maxFrame, capacity]);
  const file = join(tmpdir(), `macslot-bench-${process.pid}.bin`);
  writeFileSync(
    file,
    Buffer.concat([
      Buffer.from(header.buffer),
      Buffer.from(table),
      Buffer.from(desc.buffer, desc.byteOffset, count * 8),
      Buffer.from(pool),
    ]),
  );
  let child: ChildProcessWithoutNullStreams;
  try {
    child = spawn(BINARY, [file], { stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    rmSync(file, { force: true });
    return { ok: false, reason: `native comparison did not start: ${(err as Error).message}` };
  }
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done === true) throw new Error(`native comparison ended early (exit ${child.exitCode ?? 'unknown'})`);
    return r.value;
  };
  try {
    const ready = await next();
    if (!ready.startsWith('ready')) throw new Error(`native comparison: unexpected "${ready}"`);
  } catch (err) {
    child.kill();
    return { ok: false, reason: (err as Error).message };
  } finally {
    rmSync(file, { force: true });
  }
  return {
    ok: true,
    server: {
      async pass(kind) {
        child.stdin.write(kind === 'same' ? 'a\n' : 's\n');
        const [ms, checksum, counted] = (await next()).split(' ').map(Number);
        return { ms: ms!, checksum: checksum!, counted: counted! };
      },
      close() {
        child.stdin.end();
        child.kill();
      },
    },
  };
}
