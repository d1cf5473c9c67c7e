#!/usr/bin/env node
// Command line: the `macslot` entry point, its subcommands and their help. Each subcommand's module loads only when it runs.

import { parseArgs } from 'node:util';
import type { CaptureFormat } from '../capture/format.js';
import { intOption, required, type Io } from './common.js';
import { DEFAULT_MIX } from './gen.js';
import { MacslotError, show } from '../errors.js';

const USAGE = `usage: macslot <command> [options]

commands:
  demo      the main job on a built-in NIC, clients and traffic (what npm start runs)
  filter    split a capture into one capture per client, in one pass
  explain   why each frame of a capture (or hex) was delivered or dropped
  inspect   the NIC's address support and slot table for a configuration
  bench     run the benchmark suite
  gen       write a synthetic capture for a configuration
  switch    switch one NIC among emulator ports (QEMU, vde_plug, WebSocket relays)

Run "macslot <command> --help" for a command's options.

options:
  -h, --help   show this help`;

type Options = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

interface Command {
  readonly help: string;
  readonly options: Options;
  readonly positionals: number;
  readonly run: (values: Record<string, string | boolean | string[] | undefined>, positionals: string[], io: Io) => Promise<number> | number;
}

const format = (v: string | boolean | string[] | undefined, allowed: readonly string[], fallback: string): string => {
  const f = typeof v === 'string' ? v : fallback;
  if (!allowed.includes(f)) throw new MacslotError('INVALID_ARGUMENT', `--format ${show(f)} is not one of ${allowed.join(', ')}`);
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
    help: `usage: macslot filter <capture> --config nic.json --out <dir> [--format pcap|pcapng] [--dropped] [--json]

Reads a pcap or pcapng capture once and writes <dir>/<client>.pcap (or
.pcapng) for every client of the configuration, with the frames the NIC's
accept filter delivers to it. Frames of other link types than Ethernet are
counted and reported, never classified.

options:
  --config <file>   the NIC and its clients (JSON; see the README)
  --out <dir>       directory for the outputs (created if missing)
  --format <f>      pcap (default; keeps nanoseconds when the input has them) or pcapng
  --dropped         also write <dir>/dropped.<ext> with the frames nobody received
  --json            print the per-client report as JSON
A progress bar with rate and ETA is drawn on stderr when it is a terminal.`,
    options: { config: { type: 'string' }, out: { type: 'string' }, format: { type: 'string' }, dropped: { type: 'boolean' }, json: { type: 'boolean' } },
    positionals: 1,
    run: async (v, p, io) => {
      const { runFilter } = await import('./filter.js');
      await runFilter(
        {
          capture: required(p[0], 'the capture file argument'),
          config: required(str(v.config), '--config'),
          out: required(str(v.out), '--out'),
          format: format(v.format, ['pcap', 'pcapng'], 'pcap') as 'pcap' | 'pcapng',
          dropped: v.dropped === true,
          json: v.json === true,
        },
        io,
      );
      return 0;
    },
  },
  explain: {
    help: `usage: macslot explain <capture|hex> --config nic.json [--json]

Prints, for every frame, its destination, the rule that decided it, the
path (hardware or software) and the clients that receive it. The input is a
capture file, or frames as hex bytes (separators : - . and spaces allowed,
frames separated by commas).

options:
  --config <file>   the NIC and its clients
  --json            one JSON object per line:
                    {"index":0,"dst":"ff:ff:ff:ff:ff:ff","rule":"broadcast","path":"hardware","deliver":["vm-a","vm-b"]}`,
    options: { config: { type: 'string' }, json: { type: 'boolean' } },
    positionals: 1,
    run: async (v, p, io) => {
      const { runExplain } = await import('./explain.js');
      await runExplain({ input: required(p[0], 'a capture file or hex frame'), config: required(str(v.config), '--config'), json: v.json === true }, io);
      return 0;
    },
  },
  inspect: {
    help: `usage: macslot inspect --config nic.json [--json]

Sets up the configuration and prints addressSupport() and addressGet() for
every slot, as tables or, with --json, as one JSON object.`,
    options: { config: { type: 'string' }, json: { type: 'boolean' } },
    positionals: 0,
    run: async (v, _p, io) => {
      const { runInspect } = await import('./inspect.js');
      runInspect({ config: required(str(v.config), '--config'), json: v.json === true }, io);
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
    options: { quick: { type: 'boolean' }, json: { type: 'string' }, filter: { type: 'boolean' }, size: { type: 'string' }, 'dry-run': { type: 'boolean' } },
    positionals: 0,
    run: async (v, _p, io) => (await import('./bench.js')).runBench({ quick: v.quick === true, json: str(v.json), filter: v.filter === true, size: str(v.size), dryRun: v['dry-run'] === true }, io),
  },
  gen: {
    help: `usage: macslot gen <out.pcap> --config nic.json --frames N [--mix …] [--seed S] [--size B] [--format pcap|pcap-ns|pcapng]

Writes a synthetic capture for a configuration: the same seed gives the
same bytes.

options:
  --config <file>   the NIC and its clients
  --frames <N>      number of frames
  --mix <list>      weights of frame kinds, default ${DEFAULT_MIX}
                    kinds: unicast (the clients' MACs), broadcast, multicast (joined
                    groups), unknown (unicast nobody holds), flood (groups nobody
                    joined), runt (10-byte frames)
  --seed <S>        default 1
  --size <B>        frame length in bytes without FCS, default 64
  --format <f>      pcap (default), pcap-ns or pcapng`,
    options: { config: { type: 'string' }, frames: { type: 'string' }, mix: { type: 'string' }, seed: { type: 'string' }, size: { type: 'string' }, format: { type: 'string' } },
    positionals: 1,
    run: async (v, p, io) => {
      const { runGen } = await import('./gen.js');
      runGen(
        {
          out: required(p[0], 'the output file argument'),
          config: required(str(v.config), '--config'),
          frames: intOption(required(str(v.frames), '--frames'), '--frames', 0, 0),
          mix: str(v.mix) ?? DEFAULT_MIX,
          seed: intOption(str(v.seed), '--seed', 1, 0, 0xffff_ffff),
          size: intOption(str(v.size), '--size', 64, 14, 65535),
          format: format(v.format, ['pcap', 'pcap-ns', 'pcapng'], 'pcap') as CaptureFormat,
        },
        io,
      );
      return 0;
    },
  },
  switch: {
    help: `usage: macslot switch --listen <where> [--listen …] [--config nic.json] [--uplink <uplink>] [--vde <VNL> …] [--json]

Switches one NIC among ports in bridge mode: each connection gets its own
client and MAC; unicast goes only to its owner, broadcast and joined
multicast to every other accepting client (never back to the sender), and a
frame whose source MAC is not the sender's is dropped. Runs until SIGINT or
SIGTERM, then prints the counters.

options:
  --listen <where>     repeatable; each frame is one message of the peer's protocol:
                         unix:PATH[@NAME]       QEMU -netdev stream (u32 BE length + frame)
                         tcp:HOST:PORT[@NAME]   the same over TCP (also legacy -netdev socket)
                         udp:HOST:PORT          QEMU -netdev dgram (one frame per datagram)
                         ws:HOST:PORT           WebSocket relay (one frame per binary message;
                                                the URL path names the client: ws://h:p/vm-a)
                       @NAME gives every connection of that listener the client NAME
  --config <file>      the NIC and its clients (JSON, as for inspect), plus an optional
                       "switch" object: {"allocation", "leaseTtlMs", "antiSpoof"}.
                       Clients are handed out by name or in the order connections
                       arrive; "address" may also be "auto" or "learn". Default: a
                       NIC with primary 02:6d:73:00:00:01 and no clients.
  --uplink <uplink>    the NIC's wire side: none (default), passt (started in a
                       temporary directory), stream:PATH (a QEMU stream socket, e.g. a
                       passt you started) or vde:VNL (vde_plug)
  --vde <VNL>          repeatable; start vde_plug VNL and attach it as a client port
  --allocation <p>     MACs for connections beyond the listed clients: auto (default:
                       factory, then random), random, factory, learn (the MAC the guest
                       sends from, taken on its first frame), or none to refuse them
  --lease-ttl <ms>     keep a disconnected client's MAC this long for its return (default 0)
  --allow-spoof        let ports send with any source MAC
  --max-queue <bytes>  bytes held for a peer that stops reading before frames are
                       dropped (default 1048576)
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
      'allow-spoof': { type: 'boolean' },
      'max-queue': { type: 'string' },
      json: { type: 'boolean' },
    },
    positionals: 0,
    run: async (v, _p, io) =>
      (await import('./switch.js')).runSwitch(
        {
          config: str(v.config),
          listen: list(v.listen),
          uplink: str(v.uplink),
          vde: list(v.vde),
          allocation: str(v.allocation),
          leaseTtl: str(v['lease-ttl']),
          allowSpoof: v['allow-spoof'] === true,
          json: v.json === true,
          maxQueue: str(v['max-queue']),
        },
        io,
      ),
  },
};

/** Runs the command line with `argv` (without node and script); resolves to the exit code: 0 done, 1 failed, 2 bad usage. */
export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    (name === undefined ? io.err : io.out)(USAGE + '\n');
    return name === undefined ? 2 : 0;
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
    if (parsed.positionals.length > command.positionals) throw new Error(`unexpected argument ${JSON.stringify(parsed.positionals[command.positionals])}`);
  } catch (err) {
    io.err(`macslot ${name}: ${(err as Error).message}\n\n${command.help}\n`);
    return 2;
  }
  try {
    return await command.run(parsed.values, parsed.positionals, io);
  } catch (err) {
    io.err(`macslot ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

const stdio: Io = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  tty: process.stderr.isTTY === true,
};
process.exitCode = await main(process.argv.slice(2), stdio);
