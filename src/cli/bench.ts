// Command line: `macslot bench`, which runs the benchmark suite (or the capture filter benchmark) that ships with the source tree.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MacslotError, show } from '../errors.js';
import type { Io } from './common.js';

/**
 * Returns the command that runs the chosen benchmark, as [program, ...arguments], and its working directory. Throws NOT_SUPPORTED when the
 * benchmarks are not there.
 */
export function benchCommand(o: { quick: boolean; json: string | undefined; filter: boolean; size: string | undefined }): {
  argv: string[];
  cwd: string;
} {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const script = join('bench', o.filter ? 'filter.ts' : 'run.ts');
  if (!existsSync(join(root, script)))
    throw new MacslotError(
      'NOT_SUPPORTED',
      `${show(join(root, script))} is missing: the benchmarks come with the source repository, not the published package`,
    );
  const args = [
    ...(o.quick ? ['--quick'] : []),
    ...(o.json !== undefined ? ['--json', o.json] : []),
    ...(o.filter && o.size !== undefined ? ['--size', o.size] : []),
  ];
  return { argv: ['node', '--import', 'tsx', script, ...args], cwd: root };
}

/** Runs the benchmark in a child process with this terminal; returns its exit code. With `dryRun`, prints the command instead. */
export function runBench(
  o: { quick: boolean; json: string | undefined; filter: boolean; size: string | undefined; dryRun: boolean },
  io: Io,
): number {
  const { argv, cwd } = benchCommand(o);
  if (o.dryRun) {
    io.out(argv.join(' ') + '\n');
    return 0;
  }
  const r = spawnSync(process.execPath, argv.slice(1), { cwd, stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status ?? 1;
}
