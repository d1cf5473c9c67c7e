// Test helper: a stand-in for a peer program (passt, vde_plug) that misbehaves on purpose, run from test/fixtures/hostile-peer.mjs.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A stand-in program in its own temporary directory. */
export interface HostileStandIn {
  /** The temporary directory (remove it when the file ends). */
  readonly dir: string;
  /** Where each running stand-in leaves a file named by its pid (give it as HOSTILE_PID_DIR). */
  readonly pids: string;
  /** The executable to run as the peer program. */
  readonly standIn: string;
  /** Kills every stand-in still running (a failed test must not leave one behind). */
  killStandIns(): void;
}

/** Writes the stand-in as `name` in a new temporary directory named from `prefix`. */
export function hostileStandIn(prefix: string, name: string): HostileStandIn {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const pids = join(dir, 'pids');
  mkdirSync(pids);
  // A wrapper, so the stand-in runs whatever the checkout did to its mode bits.
  const standIn = join(dir, name);
  writeFileSync(
    standIn,
    `#!/bin/sh\nexec "${process.execPath}" "${fileURLToPath(new URL('../fixtures/hostile-peer.mjs', import.meta.url))}" "$@"\n`,
  );
  chmodSync(standIn, 0o755);
  const killStandIns = (): void => {
    for (const p of readdirSync(pids)) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        // Already gone.
      }
      rmSync(join(pids, p), { force: true });
    }
  };
  return { dir, pids, standIn, killStandIns };
}
