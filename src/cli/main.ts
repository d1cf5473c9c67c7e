#!/usr/bin/env node
// Command line: the `macslot` entry point, its subcommands and their help. Each subcommand's module loads only when it runs.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { CaptureFormat } from '../capture/format.js';
import { show } from '../errors.js';
import { STDIO, UsageError, intOption, isBrokenPipe, required, writeFully, type Io } from './common.js';
import { completionScript } from './completion.js';
import { DEFAULT_MIX, parseMix } from './gen.js';

const USAGE = `usage: macslot <command> [options]

commands:
  demo        the main job on a built-in NIC, clients and traffic (what npm start runs)
  filter      split a capture into one capture per client, in one pass
  explain     why each frame of a capture (or hex) was delivered or dropped
  inspect     the NIC's address support and slot table for a configuration
  bench       run the benchmark suite
  gen         write a synthetic capture for a configuration
  switch      switch one NIC among emulator ports (QEMU, vde_plug, WebSocket relays)
  serve       serve the live page (the NIC, its slots and traffic in the browser) on 127.0.0.1
  completion  print a shell completion script: macslot completion bash|zsh|fish

Run "macslot <command> --help" for a command's options. A capture file
named - is standard input (or standard output for gen).

options:
  -h, --help      show this help
  -V, --version   print the version

Exit status: 0 done, 1 failed, 2 bad usage.`;

type Options = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>;
type Values = Record<string, string | boolean | string[] | undefined>;

/**
 * A subcommand: `run` validates its options first, inside `usage()`, so that a bad command line
 * exits 2 with the help, and only then does the work, whose failures exit 1.
 */
interface Command {
  readonly help: string;
  readonly options: Options;
  readonly positionals: number;
  readonly run: (values: Values, positionals: string[], io: Io) => Promise<number> | number;
}

/** Returns what `check` returns; turns its INVALID_ARGUMENT into a usage error (exit 2). */
function usage<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof UsageError || !(err instanceof Error) || !('code' in err) || err.code !== 'INVALID_ARGUMENT') throw err;
    throw new UsageError(err.message.replace(/^INVALID_ARGUMENT: /, ''));
  }
}

const COUNT = { count: { type: 'string', short: 'c' } } as const;
const count = (v: string | boolean | string[] | undefined): number | undefined =>
  typeof v === 'string' ? intOption(v, '--count', 0, 1) : undefined;

const format = (v: string | boolean | string[] | undefined, allowed: readonly string[], fallback: string): string => {
  const f = typeof v === 'string' ? v : fallback;
  if (!allowed.includes(f)) throw new UsageError(`--format ${show(f)} is not one of ${allowed.join(', ')}`);
  return f;
};
const str = (v: string | boolean | string[] | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: string | boolean | string[] | undefined): string[] => (Array.isArray(v) ? v : typeof v === 'string' ? [v] : []);

const COMMANDS: Record<string, Command> = {
  demo: {
    help: `usage: macslot demo

Sets up a NIC with a factory pool and clients with mixed address kinds
(factory, a chosen factory slot, a local MAC, a random MAC under a prefix),
multicast groups and one promiscuous client, replays built-in traffic
(unicast, broadcast, IPv4 and IPv6 multicast, unknown unicast, malformed
frames) through the Wasm data plane, and prints the slot table, per-client
deliveries, drop reasons and throughput. It then adds more MACs than the
NIC has entries for and shows the fallback to promiscuous mode with
software filtering, and what that costs in throughput.`,
    options: {},
    positionals: 0,
    run: async (_v, _p, io) => {
      const { runDemo } = await import('./demo.js');
      await runDemo((line) => io.out(line + '\n'));
      return 0;
    },
  },
  filter: {
    help: `usage: macslot filter <capture|-> --config nic.json --out <dir> [--format pcap|pcapng] [--dropped] [--json] [-c N]

Reads a pcap or pcapng capture (- for standard input) once and writes <dir>/<client>.pcap (or
.pcapng) for every client of the configuration, with the frames the NIC's
accept filter delivers to it. Frames of other link types than Ethernet are
counted and reported, never classified.

options:
  --config <file>   the NIC and its clients (JSON; see the README)
  --out <dir>       directory for the outputs (created if missing)
  --format <f>      pcap (default; keeps nanoseconds when the input has them) or pcapng
  --dropped         also write <dir>/dropped.<ext> with the frames nobody received
  --json            print the per-client report as JSON
  -c, --count <N>   stop after N frames of the input
With VLANs in the configuration, frames come from the wire and are filtered
on (MAC, VLAN); the outputs keep their tags; frames of a VLAN the wire does
not carry, or for a client outside the frame's VLAN, are counted as drop-vlan.
A progress bar with rate and ETA is drawn on stderr when it is a terminal.`,
    options: {
      config: { type: 'string' },
      out: { type: 'string' },
      format: { type: 'string' },
      dropped: { type: 'boolean' },
      json: { type: 'boolean' },
      ...COUNT,
    },
    positionals: 1,
    run: async (v, p, io) => {
      const o = usage(() => {
        const out = required(str(v.out), '--out');
        if (out === STDIO) throw new UsageError('--out names a directory for one capture per client; it cannot be standard output');
        const n = count(v.count);
        return {
          capture: required(p[0], 'the capture file argument'),
          config: required(str(v.config), '--config'),
          out,
          format: format(v.format, ['pcap', 'pcapng'], 'pcap') as 'pcap' | 'pcapng',
          dropped: v.dropped === true,
          json: v.json === true,
          ...(n !== undefined ? { count: n } : {}),
        };
      });
      const { runFilter } = await import('./filter.js');
      await runFilter(o, io);
      return 0;
    },
  },
  explain: {
    help: `usage: macslot explain <capture|-|hex> --config nic.json [--json] [-c N]

Prints, for every frame, its destination, the rule that decided it, the
path (hardware or software) and the clients that receive it. The input is a
capture file, - for a capture on standard input, or frames as hex bytes
(separators : - . and spaces allowed, frames separated by commas). Output
is streamed: the table's columns are sized on its first 1,000 rows.

options:
  --config <file>   the NIC and its clients
  --json            one JSON object per line:
                    {"index":0,"dst":"ff:ff:ff:ff:ff:ff","rule":"broadcast","path":"hardware","deliver":["vm-a","vm-b"]}
  -c, --count <N>   stop after N frames
With VLANs in the configuration, a vlan column (JSON: "vid") names the VLAN
each frame travels in, as it comes from the wire.`,
    options: { config: { type: 'string' }, json: { type: 'boolean' }, ...COUNT },
    positionals: 1,
    run: async (v, p, io) => {
      const o = usage(() => {
        const n = count(v.count);
        return {
          input: required(p[0], 'a capture file or hex frame'),
          config: required(str(v.config), '--config'),
          json: v.json === true,
          ...(n !== undefined ? { count: n } : {}),
        };
      });
      const { runExplain } = await import('./explain.js');
      await runExplain(o, io);
      return 0;
    },
  },
  inspect: {
    help: `usage: macslot inspect --config nic.json [--json]

Sets up the configuration and prints addressSupport() and addressGet() for
every slot, as tables or, with --json, as one JSON object; with VLANs in the
configuration, also the VLANs of the wire and of each client.`,
    options: { config: { type: 'string' }, json: { type: 'boolean' } },
    positionals: 0,
    run: async (v, _p, io) => {
      const o = usage(() => ({ config: required(str(v.config), '--config'), json: v.json === true }));
      const { runInspect } = await import('./inspect.js');
      runInspect(o, io);
      return 0;
    },
  },
  bench: {
    help: `usage: macslot bench [--quick] [--json <file>] [--filter [--size <MB>]] [--dry-run]

Runs the benchmark suite from the source tree (it needs the dev dependencies).

options:
  --quick         fewer frames and iterations
  --json <file>   also write the results as JSON
  --filter        run the capture benchmark instead: macslot filter against
                  tcpdump on a capture of 64-byte frames for 16 clients
  --size <MB>     size of that capture (default 1024)
  --dry-run       print the command instead of running it`,
    options: {
      quick: { type: 'boolean' },
      json: { type: 'string' },
      filter: { type: 'boolean' },
      size: { type: 'string' },
      'dry-run': { type: 'boolean' },
    },
    positionals: 0,
    run: async (v, _p, io) =>
      (await import('./bench.js')).runBench(
        { quick: v.quick === true, json: str(v.json), filter: v.filter === true, size: str(v.size), dryRun: v['dry-run'] === true },
        io,
      ),
  },
  gen: {
    help: `usage: macslot gen <out.pcap|-> --config nic.json --frames N [--mix …] [--seed S] [--size B] [--format pcap|pcap-ns|pcapng]

Writes a synthetic capture for a configuration: the same seed gives the
same bytes. With - the capture goes to standard output and the summary
to standard error.

options:
  --config <file>   the NIC and its clients
  --frames <N>      number of frames
  --mix <list>      weights of frame kinds, default ${DEFAULT_MIX}
                    kinds: unicast (the clients' MACs), broadcast, multicast (joined
                    groups), unknown (unicast nobody holds), flood (groups nobody
                    joined), runt (10-byte frames), vlan (the clients' MACs in a
                    VLAN the wire does not carry; needs VLANs in the configuration)
                    With VLANs, each frame travels in a VLAN of its receivers: tagged
                    (802.1Q, at least 18 bytes), or untagged in the wire's native VLAN
  --seed <S>        default 1
  --size <B>        frame length in bytes without FCS, default 64
  --format <f>      pcap (default), pcap-ns or pcapng`,
    options: {
      config: { type: 'string' },
      frames: { type: 'string' },
      mix: { type: 'string' },
      seed: { type: 'string' },
      size: { type: 'string' },
      format: { type: 'string' },
    },
    positionals: 1,
    run: async (v, p, io) => {
      const o = usage(() => {
        const mix = str(v.mix) ?? DEFAULT_MIX;
        parseMix(mix);
        return {
          out: required(p[0], 'the output file argument'),
          config: required(str(v.config), '--config'),
          frames: intOption(required(str(v.frames), '--frames'), '--frames', 0, 0),
          mix,
          seed: intOption(str(v.seed), '--seed', 1, 0, 0xffff_ffff),
          size: intOption(str(v.size), '--size', 64, 14, 65535),
          format: format(v.format, ['pcap', 'pcap-ns', 'pcapng'], 'pcap') as CaptureFormat,
        };
      });
      const { runGen } = await import('./gen.js');
      await runGen(o, io);
      return 0;
    },
  },
  switch: {
    help:
      `usage: macslot switch --listen <where> [--listen …] [--config nic.json] [--uplink <uplink>] [--vde <VNL> …] [--tap ` +
      `<file.pcapng>] [--json]

Switches one NIC among ports in bridge mode: each connection gets its own
client and MAC; unicast goes only to its owner, broadcast and joined
multicast to every other accepting client (never back to the sender), and a
frame whose source MAC is not the sender's is dropped. Runs until SIGINT or
SIGTERM, then closes every connection and child at once (within 2 s, without
waiting for peers to hang up) and prints the counters; a second signal exits
at once, ending passt and vde_plug.

options:
  --listen <where>     repeatable; each frame is one message of the peer's protocol:
                         unix:PATH[@NAME]       QEMU -netdev stream (u32 BE length + frame)
                         tcp:HOST:PORT[@NAME]   the same over TCP (also legacy -netdev socket)
                         udp:HOST:PORT          QEMU -netdev dgram (one frame per datagram)
                         ws:HOST:PORT           WebSocket relay (one frame per binary message;
                                                the URL path names the client: ws://h:p/vm-a)
                       @NAME gives every connection of that listener the client NAME,
                       and no connection of any other listener ever gets it; a
                       WebSocket path names any client not pinned so, unless its
                       name has a secret (ws://h:p/vm-a?secret=…; see "secrets")
  --config <file>      the NIC and its clients (JSON, as for inspect), plus an optional
                       "switch" object: {"allocation", "leaseTtlMs", "antiSpoof",
                       "neighbours", "secrets", "stormControl"}.
                       Clients are handed out by name or in the order connections
                       arrive; "address" may also be "auto" or "learn". Default: a
                       NIC with primary 02:6d:73:00:00:01 and no clients.
  --uplink <uplink>    the NIC's wire side: none (default), passt (one passt per guest,
                       each giving its guest its own address in the switch object's
                       subnet), passt-shared (one passt for all), stream:PATH (a QEMU
                       stream socket, e.g. a passt you started) or vde:VNL (vde_plug)
  --vde <VNL>          repeatable; start vde_plug VNL and attach it as a client port
  --allocation <p>     MACs for connections beyond the listed clients: auto (default:
                       factory, then random), random, factory, learn (the MAC the guest
                       sends from, taken on its first frame), or none to refuse them
  --lease-ttl <ms>     keep a disconnected client's MAC this long for its return (default 0)
  --store <url>        share MACs and leases with other switch hosts through one
                       PostgreSQL database (postgres://…; needs the pg package)
  --rewrite-source     send a frame whose source MAC is not the port's with the
                       port's own MAC instead of dropping it (a port still never
                       sends as another); --allow-spoof is its old name
  --storm-control <r>  broadcast and multicast frames a port may send: RATE per
                       second after a burst of RATE, RATE:BURST, or off; the rest
                       are dropped and counted as storm (default 1000:1000)
  --max-queue <bytes>  bytes held for a peer that stops reading before frames are
                       dropped (default 1048576)
  --queue-budget <bytes>
                       bytes all peers' queues may hold together; beyond it peers
                       that are not reading lose frames (default 67108864)
  --max-clients <n>    connections (or UDP sources) each listener serves at once
                       (default 256)
  --idle-timeout <ms>  release a UDP source silent this long, and its client
                       (0: never; default 300000)
  --frame-timeout <ms> close a stream peer that leaves a frame unfinished, or a
                       WebSocket peer that answers no ping, this long (0: never;
                       default 30000)
  --handshake-timeout <ms>
                       close a WebSocket connection not upgraded this long
                       (default 10000)
  --tap <file>         record every frame of every port (and the uplink) as pcapng,
                       one interface per port, named after it; - for standard output
                       (the counters then go to standard error). The file appears
                       under its name when the switch stops.
  --json               counters as one JSON line instead of a table

Counters are printed to stdout on SIGUSR1 and at exit. On a terminal a live
per-port table (frames, bytes, drops by reason) is redrawn every second on
stderr; log lines (connections, refusals, the first drop of each reason per
port) always go to stderr.`,
    options: {
      listen: { type: 'string', multiple: true },
      config: { type: 'string' },
      uplink: { type: 'string' },
      vde: { type: 'string', multiple: true },
      allocation: { type: 'string' },
      'lease-ttl': { type: 'string' },
      store: { type: 'string' },
      'rewrite-source': { type: 'boolean' },
      'allow-spoof': { type: 'boolean' },
      'storm-control': { type: 'string' },
      'max-queue': { type: 'string' },
      'queue-budget': { type: 'string' },
      'max-clients': { type: 'string' },
      'idle-timeout': { type: 'string' },
      'frame-timeout': { type: 'string' },
      'handshake-timeout': { type: 'string' },
      tap: { type: 'string' },
      json: { type: 'boolean' },
    },
    positionals: 0,
    run: async (v, _p, io) => {
      const { runSwitch, checkSwitchOptions } = await import('./switch.js');
      const o = {
        config: str(v.config),
        listen: list(v.listen),
        uplink: str(v.uplink),
        vde: list(v.vde),
        allocation: str(v.allocation),
        leaseTtl: str(v['lease-ttl']),
        store: str(v.store),
        allowSpoof: v['rewrite-source'] === true || v['allow-spoof'] === true,
        stormControl: str(v['storm-control']),
        json: v.json === true,
        maxQueue: str(v['max-queue']),
        queueBudget: str(v['queue-budget']),
        maxClients: str(v['max-clients']),
        idleTimeout: str(v['idle-timeout']),
        frameTimeout: str(v['frame-timeout']),
        handshakeTimeout: str(v['handshake-timeout']),
        tap: str(v.tap),
      };
      usage(() => checkSwitchOptions(o));
      return runSwitch(o, io);
    },
  },
  serve: {
    help: `usage: macslot serve [--port N] [--no-isolation] [--json]

Serves the live page on 127.0.0.1 and prints its URL: set up a NIC (from a
configuration's JSON or the demo's), open clients, reserve, modify, join,
run traffic through the Wasm data plane in a Web Worker, watch the slot
table, the mode and the throughput, explain frames and split captures.
Everything runs in the browser. Only the page's own files are served, with
COOP and COEP headers so the page gets shared memory and worker lanes.
Runs until SIGINT, SIGTERM or SIGHUP.

options:
  --port <N>        TCP port, 0 (default) for any free one
  --no-isolation    leave out COOP and COEP: the page then runs on one thread, and says so
  --json            print the URL as one JSON line: {"url":"http://127.0.0.1:…/","isolated":true}`,
    options: { port: { type: 'string' }, 'no-isolation': { type: 'boolean' }, json: { type: 'boolean' } },
    positionals: 0,
    run: async (v, _p, io) => {
      const o = usage(() => ({
        port: intOption(str(v.port), '--port', 0, 0, 65535),
        isolation: v['no-isolation'] !== true,
        json: v.json === true,
      }));
      const { runServe } = await import('./serve.js');
      return runServe(o, io);
    },
  },
  completion: {
    help: `usage: macslot completion bash|zsh|fish

Prints a completion script for the shell, generated from the commands and
their options. For example:
  bash: source <(macslot completion bash)            (or add it to ~/.bashrc)
  zsh:  source <(macslot completion zsh)             (or add it to ~/.zshrc)
  fish: macslot completion fish > ~/.config/fish/completions/macslot.fish`,
    options: {},
    positionals: 1,
    run: (_v, p, io) => {
      const shell = usage(() => required(p[0], 'the shell (bash, zsh or fish)'));
      if (shell !== 'bash' && shell !== 'zsh' && shell !== 'fish') throw new UsageError(`shell ${show(shell)} is not bash, zsh or fish`);
      io.out(completionScript(shell, completionSpec()));
      return 0;
    },
  },
};

/** The commands and their long and short options, for the completion scripts. */
function completionSpec(): { name: string; options: { long: string; short?: string; value: boolean }[] }[] {
  return Object.entries(COMMANDS).map(([name, c]) => ({
    name,
    options: [
      ...Object.entries(c.options).map(([long, o]) => ({
        long,
        ...(o.short !== undefined ? { short: o.short } : {}),
        value: o.type === 'string',
      })),
      { long: 'help', short: 'h', value: false },
    ],
  }));
}

/** Returns the version of the installed package. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return String(pkg.version);
}

/** Runs the command line with `argv` (without node and script); resolves to the exit code: 0 done, 1 failed, 2 bad usage. */
export async function main(argv: string[], io: Io): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    // The help or the version to a reader already gone (`macslot --help | true`): quiet, as for a command's output.
    if (isBrokenPipe(err)) return 0;
    throw err;
  }
}

async function dispatch(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    (name === undefined ? io.err : io.out)(USAGE + '\n');
    return name === undefined ? 2 : 0;
  }
  if (name === '-V' || name === '--version' || name === 'version') {
    io.out(`macslot ${version()}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.err(`macslot: unknown command ${JSON.stringify(name)}\n\n${USAGE}\n`);
    return 2;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    io.out(command.help + '\n');
    return 0;
  }
  let parsed: { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: command.options, allowPositionals: command.positionals > 0, strict: true }) as typeof parsed;
    if (parsed.positionals.length > command.positionals)
      throw new Error(`unexpected argument ${JSON.stringify(parsed.positionals[command.positionals])}`);
  } catch (err) {
    io.err(`macslot ${name}: ${(err as Error).message}\n\n${command.help}\n`);
    return 2;
  }
  try {
    return await command.run(parsed.values, parsed.positionals, io);
  } catch (err) {
    // The reader of our output went away (`| head`): stop quietly, as tcpdump does.
    if (isBrokenPipe(err)) return 0;
    if (err instanceof UsageError) {
      io.err(`macslot ${name}: ${err.message.replace(/^INVALID_ARGUMENT: /, '')}\n\n${command.help}\n`);
      return 2;
    }
    io.err(`macslot ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

// Output is written synchronously: memory stays flat however slow the reader, and a closed pipe
// surfaces as an EPIPE error where it happens instead of an unhandled 'error' event.
const stdio: Io = {
  out: (text) => writeFully(1, text),
  err: (text) => {
    try {
      writeFully(2, text);
    } catch {
      // Nowhere left to report to.
    }
  },
  tty: process.stderr.isTTY === true,
};
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (isBrokenPipe(err)) process.exit(0);
    process.exitCode = 1;
  });
}
process.exitCode = await main(process.argv.slice(2), stdio);
