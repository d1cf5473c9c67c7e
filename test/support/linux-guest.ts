// Test support: a small Linux guest under QEMU (Debian's kernel, an initramfs of a static busybox and the e1000
// driver, written here as a cpio archive), driven through a shell on its serial console. scripts/linux-guest.sh
// fetches the parts; .ci/run runs it.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { until } from './frames.js';
import { spawnTracked } from './processes.js';

/** Where scripts/linux-guest.sh put vmlinuz, e1000.ko and busybox. */
export const LINUX_GUEST_DIR =
  process.env.MACSLOT_LINUX_GUEST ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'macslot', 'linux-guest');

/** Whether a test needing the Linux guest runs: yes when its parts are there; under CI=true their absence fails it. */
export function needLinuxGuest(): boolean {
  const missing = ['vmlinuz', 'e1000.ko', 'busybox'].filter((f) => !existsSync(join(LINUX_GUEST_DIR, f)));
  if (missing.length === 0) return true;
  if (process.env.CI === 'true')
    throw new Error(`the Linux guest's ${missing.join(', ')} are missing from ${LINUX_GUEST_DIR} under CI=true (scripts/linux-guest.sh)`);
  return false;
}

/** One cpio entry: a directory, a file with its bytes, or a character device. */
type Entry =
  | { path: string; kind: 'dir' }
  | { path: string; kind: 'file'; mode: number; data: Uint8Array }
  | { path: string; kind: 'char'; major: number; minor: number };

/** Returns a cpio archive in the "newc" format the kernel unpacks as an initramfs. */
function cpioNewc(entries: readonly Entry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array): void => {
    parts.push(b);
    size += b.length;
  };
  const pad = (): void => {
    if (size % 4 !== 0) push(new Uint8Array(4 - (size % 4)));
  };
  const header = (ino: number, mode: number, nlink: number, fileSize: number, rmaj: number, rmin: number, name: string): void => {
    const fields = [ino, mode, 0, 0, nlink, 0, fileSize, 0, 0, rmaj, rmin, name.length + 1, 0];
    push(new TextEncoder().encode(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}${name}\0`));
    pad();
  };
  let ino = 1;
  for (const e of entries) {
    if (e.kind === 'dir') header(ino++, 0o40755, 2, 0, 0, 0, e.path);
    else if (e.kind === 'char') header(ino++, 0o20600, 1, 0, e.major, e.minor, e.path);
    else {
      header(ino++, 0o100000 | e.mode, 1, e.data.length, 0, 0, e.path);
      push(e.data);
      pad();
    }
  }
  header(0, 0, 1, 0, 0, 0, 'TRAILER!!!');
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// The guest's first process: busybox's applets, the NIC driver, loopback and eth0 up, then a shell on the console.
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
insmod /lib/e1000.ko
ip link set lo up
ip link set eth0 up
echo "guest: ready"
exec sh
`;

// udhcpc's hook: configure the lease it got and say so on the console.
const DHCP_HOOK = `#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface" scope global
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route add default via "$router" dev "$interface"
    echo "guest: lease $ip/$mask router $router"
    ;;
esac
exit 0
`;

/** Writes the guest's initramfs to `path`. */
export function writeInitramfs(path: string): void {
  const text = (s: string): Uint8Array => new TextEncoder().encode(s);
  writeFileSync(
    path,
    cpioNewc([
      ...['bin', 'dev', 'lib', 'proc', 'sys', 'tmp'].map((p) => ({ path: p, kind: 'dir' as const })),
      { path: 'dev/console', kind: 'char', major: 5, minor: 1 },
      { path: 'init', kind: 'file', mode: 0o755, data: text(INIT) },
      { path: 'bin/busybox', kind: 'file', mode: 0o755, data: readFileSync(join(LINUX_GUEST_DIR, 'busybox')) },
      { path: 'bin/dhcp-hook', kind: 'file', mode: 0o755, data: text(DHCP_HOOK) },
      { path: 'lib/e1000.ko', kind: 'file', mode: 0o644, data: readFileSync(join(LINUX_GUEST_DIR, 'e1000.ko')) },
    ]),
  );
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
    initramfs: string,
  ) {
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
