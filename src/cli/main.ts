#!/usr/bin/env node
// Command line: the `macslot` entry point and its subcommands.

import { parseArgs } from 'node:util';
import { runDemo } from './demo.js';

const USAGE = `usage: macslot <command> [options]

commands:
  demo     run the built-in demo: a NIC, its clients, and traffic through the accept filter

options:
  -h, --help   show this help`;

const COMMANDS: Record<string, { help: string; run: (args: string[]) => void }> = {
  demo: {
    help: `usage: macslot demo

Builds a NIC with a primary and four factory MACs, opens clients that reserve,
modify, add, join multicast groups and release, then classifies built-in
traffic through the accept filter and prints the slot table, each frame's
verdict and the per-client deliveries. It then exceeds the hardware entries
and shows the promiscuous fallback with software filtering.`,
    run: (args) => {
      parseArgs({ args, options: {}, strict: true });
      runDemo((line) => process.stdout.write(line + '\n'));
    },
  },
};

/** Runs the command line with `argv` (without node and script); returns the exit code. */
export function main(argv: string[]): number {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(USAGE + '\n');
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`macslot: unknown command ${JSON.stringify(name)}\n\n${USAGE}\n`);
    return 2;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(command.help + '\n');
    return 0;
  }
  try {
    command.run(rest);
    return 0;
  } catch (err) {
    process.stderr.write(`macslot ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
