// Command line: what several subcommands share (configuration files, output streams, the progress bar, frame building).

import { readFileSync } from 'node:fs';
import { buildFromConfig, loadConfig, type ConfiguredNic, type MacslotConfig } from '../config/config.js';
import { MacslotError, isMacslotError, show } from '../errors.js';

/** Where a subcommand writes; tests pass their own. */
export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** True when stderr is a terminal: only then is a progress bar drawn. */
  readonly tty: boolean;
}

/** Returns the validated configuration in `path`; throws CONFIG_INVALID naming the file and the JSON path. */
export function readConfigFile(path: string): MacslotConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new MacslotError('CONFIG_INVALID', `cannot read ${show(path)}: ${(err as Error).message}`);
  }
  try {
    return loadConfig(text, path);
  } catch (err) {
    if (isMacslotError(err, 'CONFIG_INVALID')) throw new MacslotError('CONFIG_INVALID', `${path}: ${err.message.replace(/^CONFIG_INVALID: /, '')}`);
    throw err;
  }
}

/** Builds the NIC of the configuration in `path`; throws CONFIG_INVALID naming the file and the JSON path. */
export function nicFromFile(path: string): ConfiguredNic {
  const config = readConfigFile(path);
  try {
    return buildFromConfig(config);
  } catch (err) {
    if (isMacslotError(err, 'CONFIG_INVALID')) throw new MacslotError('CONFIG_INVALID', `${path}: ${err.message.replace(/^CONFIG_INVALID: /, '')}`);
    throw err;
  }
}

/** Returns a required option's value; throws INVALID_ARGUMENT naming the option when it is missing. */
export function required<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new MacslotError('INVALID_ARGUMENT', `missing ${name}`);
  return value;
}

/** Returns a positive integer option; throws INVALID_ARGUMENT with the bad value. */
export function intOption(value: string | undefined, name: string, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) throw new MacslotError('INVALID_ARGUMENT', `${name} ${show(value)} is not an integer in ${min}..${max}`);
  return n;
}

/** Formats a count with thousands separators, the same in every locale. */
export function count(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * Returns a progress reporter that draws `[=====>    ] 45%  120.3 MB/s  1.50 Mfps  ETA 3s` on a
 * terminal at most ten times a second, and does nothing when stderr is not a terminal.
 */
export function progressBar(io: Io, total: number): { update(done: number, frames: number): void; done(): void } {
  if (!io.tty || total <= 0) return { update() {}, done() {} };
  const start = performance.now();
  let last = 0;
  let drawn = false;
  return {
    update(done, frames) {
      const now = performance.now();
      if (now - last < 100) return;
      last = now;
      const secs = Math.max((now - start) / 1000, 1e-3);
      const frac = Math.min(done / total, 1);
      const width = 30;
      const fill = Math.round(frac * width);
      const bar = '='.repeat(Math.max(fill - 1, 0)) + (fill > 0 ? '>' : '') + ' '.repeat(width - fill);
      const rate = done / secs;
      const eta = rate > 0 ? Math.ceil((total - done) / rate) : 0;
      io.err(`\r\x1b[2K[${bar}] ${(frac * 100).toFixed(0).padStart(3)}%  ${(rate / 1e6).toFixed(1)} MB/s  ${(frames / secs / 1e6).toFixed(2)} Mfps  ETA ${eta}s`);
      drawn = true;
    },
    done() {
      if (drawn) io.err('\r\x1b[2K');
    },
  };
}
