// The file store across processes: writers killed with SIGKILL at random moments, and several processes allocating from one small block at
// once.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Mac, parseStoreData } from 'macslot';
import { FileStore } from 'macslot/node';
import { killTracked, spawnTracked } from './support/processes.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixture = (name: string): string => join(root, 'test/fixtures', name);

let dir: string;
let path: string;
beforeEach(() => {
  if (!existsSync(join(root, 'dist/node/index.js'))) throw new Error('dist/node/index.js is missing; run npm run build first');
  dir = mkdtempSync(join(tmpdir(), 'macslot-procs-'));
  path = join(dir, 'macs.json');
});
afterEach(async () => {
  // A test that failed or timed out leaves its writers running: they die before their folder goes.
  await killTracked();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs a store-writer, kills it with SIGKILL `delayMs` after its first acknowledged MAC (so it dies mid-stream), and resolves with the MACs
 * it acknowledged.
 */
function runAndKill(tag: string, delayMs: number): Promise<string[]> {
  return new Promise((ok, fail) => {
    const child = spawnTracked(process.execPath, [fixture('store-writer.mjs'), path, tag], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.stdout === null || child.stderr === null) throw new Error('spawned without pipes');
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (timer === undefined && out.includes('\nack ')) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') return fail(new Error(`writer ${tag} ended with ${code ?? signal} before being killed:\n${err}`));
      // Only whole lines count: a line cut by the kill was never fully acknowledged.
      ok(
        out
          .split('\n')
          .slice(0, -1)
          .filter((l) => l.startsWith('ack '))
          .map((l) => l.split(' ')[1]!),
      );
    });
  });
}

function run(args: string[]): Promise<string> {
  return new Promise((ok, fail) => {
    const child = spawnTracked(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.stdout === null || child.stderr === null) throw new Error('spawned without pipes');
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.on('error', fail);
    child.on('close', (code) => (code === 0 ? ok(out) : fail(new Error(`${args.join(' ')} exited ${code}:\n${err}`))));
  });
}

describe('kill test', () => {
  it('200 writers killed with SIGKILL at random moments: the store always parses, keeps every acknowledged MAC, and leaves no temporary ' +
    'file', async () => {
    const KILLS = 200;
    // Two cores: more writers at once add waiting, not coverage; four still keep the lock contended at every kill.
    const PARALLEL = 4;
    const acked: string[] = [];
    const unparseable: string[] = [];
    let next = 0;
    let maxTemps = 0;
    const lane = async (): Promise<void> => {
      while (next < KILLS) {
        const i = next++;
        acked.push(...(await runAndKill(String(i), Math.random() * 30)));
        // Between kills, whatever moment the others are at, the store on disk is one complete version.
        if (existsSync(path)) {
          const text = readFileSync(path, 'utf8');
          try {
            parseStoreData(text, path);
          } catch (e) {
            unparseable.push(`${(e as Error).message}`);
          }
        }
        maxTemps = Math.max(maxTemps, readdirSync(dir).filter((n) => n.includes('.tmp-')).length);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, lane));
    expect(unparseable).toEqual([]);
    // Only live or just-killed writers have a temporary file, and each holder sweeps the dead ones'.
    expect(maxTemps).toBeLessThanOrEqual(PARALLEL);

    // The next writer breaks the last dead holder's lock and sweeps its temporary file.
    const store = new FileStore({ path, lockTimeoutMs: 10_000 });
    await store.transact(() => undefined);
    expect(readdirSync(dir).sort()).toEqual(['macs.json']);
    const data = await store.read();
    const missing = acked.filter((m) => data.records[m] === undefined);
    expect(missing).toEqual([]);
    // Every writer acknowledged at least once before its kill, so the kills landed while it was writing.
    expect(acked.length).toBeGreaterThanOrEqual(KILLS);
    expect(new Set(acked).size).toBe(acked.length);
    for (const m of acked) expect(Mac.parse(m).isLocal).toBe(true);
    // Each kill costs a Node start-up: on a busy machine that is most of the time, hence the long deadline.
  }, 600_000);
});

describe('concurrency', () => {
  it('5 processes × 4 batches × 500 allocations from one block through one store: 10,000 MACs, zero duplicates', async () => {
    const PROCS = 5;
    const BATCHES = 4;
    const PER = 500;
    // 2^16 MACs: had the processes not shared the store, their 'next' batches would all pick the same MACs, and
    // their 10,000 picks would collide hundreds of times even at random. Every transaction rewrites the whole store,
    // so a bigger run costs more than linearly without showing more.
    const block = '02:77:00:00:00:00/32';
    const outs = await Promise.all(
      Array.from({ length: PROCS }, (_, p) => run([fixture('store-allocator.mjs'), path, String(p), String(BATCHES), String(PER), block])),
    );
    const macs = outs.flatMap((o) => o.split('\n').filter((l) => l.length > 0));
    expect(macs).toHaveLength(PROCS * BATCHES * PER);
    expect(new Set(macs).size).toBe(macs.length);
    const data = await new FileStore({ path }).read();
    expect(Object.keys(data.records)).toHaveLength(macs.length);
    for (const m of macs) expect(data.records[m]?.policy).toBe('block');
    expect(readdirSync(dir).sort()).toEqual(['macs.json']);
  }, 300_000);
});
