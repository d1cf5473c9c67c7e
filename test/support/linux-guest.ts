// Test support: a small Linux guest under QEMU (Debian's kernel, an initramfs of a static busybox and the e1000
// driver), driven through a shell on its serial console. scripts/linux-guest.sh fetches the parts and builds the
// initramfs (the README's two-guest recipe boots the same one); .ci/run runs it.
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { until } from './frames.js';
import { spawnTracked } from './processes.js';

/** Where scripts/linux-guest.sh put vmlinuz and initramfs.cpio. */
export const LINUX_GUEST_DIR =
  process.env.MACSLOT_LINUX_GUEST ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'macslot', 'linux-guest');

/** Whether a test needing the Linux guest runs: yes when its parts are there; under CI=true their absence fails it. */
export function needLinuxGuest(): boolean {
  const missing = ['vmlinuz', 'initramfs.cpio'].filter((f) => !existsSync(join(LINUX_GUEST_DIR, f)));
  if (missing.length === 0) return true;
  if (process.env.CI === 'true')
    throw new Error(`the Linux guest's ${missing.join(', ')} are missing from ${LINUX_GUEST_DIR} under CI=true (scripts/linux-guest.sh)`);
  return false;
}

/** A Linux guest under QEMU (TCG) with an e1000 NIC of MAC `mac` on the switch's UNIX socket `sock`. */
export class LinuxGuest {
  readonly child: ChildProcess;
  /** Everything the console printed, without carriage returns. */
  out = '';
  #commands = 0;

  constructor(
    readonly mac: string,
    sock: string,
  ) {
    const initramfs = join(LINUX_GUEST_DIR, 'initramfs.cpio');
    this.child = spawnTracked(
      'qemu-system-x86_64',
      [
        ...['-machine', 'accel=tcg', '-m', '128', '-nographic', '-nodefaults', '-no-reboot'],
        ...['-serial', 'stdio', '-monitor', 'none'],
        ...['-kernel', join(LINUX_GUEST_DIR, 'vmlinuz'), '-initrd', initramfs, '-append', 'console=ttyS0 quiet panic=-1'],
        ...['-device', `e1000,netdev=n0,mac=${mac}`, '-netdev', `stream,id=n0,server=off,addr.type=unix,addr.path=${sock}`],
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const take = (b: Buffer): void => {
      this.out += b.toString('latin1').replace(/\r/g, '');
    };
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take);
  }

  /** Resolves with the match of `re` in the console output after offset `from`; rejects after `ms` or when QEMU exits. */
  async wait(re: RegExp, ms: number, from = 0): Promise<RegExpExecArray> {
    await until(
      () => re.test(this.out.slice(from)) || this.child.exitCode !== null || this.child.signalCode !== null,
      ms,
      `${re} from ${this.mac} (its console so far: ${JSON.stringify(this.out.slice(-600))})`,
    );
    const m = re.exec(this.out.slice(from));
    if (m === null) throw new Error(`${this.mac}'s QEMU exited before ${re}: ${this.out.slice(-600)}`);
    return m;
  }

  /** Boots to the shell. */
  async ready(ms: number): Promise<void> {
    await this.wait(/guest: ready/, ms);
  }

  /** Runs `command` in the guest's shell; resolves with what it printed and its exit status once it ends. */
  async run(command: string, ms: number): Promise<{ output: string; status: number }> {
    const n = ++this.#commands;
    const from = this.out.length;
    // The shell echoes the line as typed (`@@n:$?`); only the status it prints matches `@@n:DIGITS`.
    this.child.stdin!.write(`${command}; echo "@@${n}:$?"\n`);
    const m = await this.wait(new RegExp(`@@${n}:(\\d+)`), ms, from);
    const output = this.out.slice(from, from + m.index);
    return { output, status: Number(m[1]) };
  }
}
