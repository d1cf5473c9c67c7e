// Command line: `macslot switch` — one NIC switched among emulator ports, with a live per-port table and counters as JSON on request.

import { readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { CONFIG_PATTERNS, keyPath, parseConfig, parseConfigText, seededRandom, vlanField } from '../config/config.js';
import { MacslotError, isMacslotError, show } from '../errors.js';
import { Nic } from '../nic/nic.js';
import { parseListen, parseUplink, serveSwitch, type ServedSwitch } from '../node/switch.js';
import type { PortCounters } from '../switch/fabric.js';
import { Switch, type SwitchClientSpec, type SwitchCounters, type SwitchOptions } from '../switch/switch.js';
import type { PortVlans } from '../vlan/membership.js';
import { checkStormControl, type StormControl } from '../switch/fabric.js';
import { Mac } from '../wire/mac.js';
import { PcapngTap } from '../port/middleware.js';
import { STDIO, byteOutput, count, intOption, isBrokenPipe, type ByteOutput, type Io } from './common.js';
import { table } from './table.js';
import { checkStoreUrl, openSharedManager } from './shared-store.js';
import { GUEST_NETWORK_FIELDS, checkGuestNetwork, guestNetworkFields, type GuestNetwork } from './uplinks.js';

/** The parsed options of `macslot switch`. */
export interface SwitchCliOptions {
  config: string | undefined;
  listen: readonly string[];
  uplink: string | undefined;
  vde: readonly string[];
  allocation: string | undefined;
  leaseTtl: string | undefined;
  /** --rewrite-source (its old name --allow-spoof): a foreign source MAC is replaced by the port's own instead of dropped. */
  allowSpoof: boolean;
  json: boolean;
  maxQueue: string | undefined;
  /** --queue-budget, --max-clients, --idle-timeout, --frame-timeout, --handshake-timeout: the listeners' limits. */
  queueBudget?: string | undefined;
  maxClients?: string | undefined;
  idleTimeout?: string | undefined;
  frameTimeout?: string | undefined;
  handshakeTimeout?: string | undefined;
  /** --storm-control: `RATE`, `RATE:BURST` or `off`. */
  stormControl?: string | undefined;
  /** pcapng file recording every port, `-` for standard output. */
  tap?: string | undefined;
  /** --store: a postgres:// URL whose database this switch shares MACs and leases through. */
  store?: string | undefined;
}

/** Checks the options that need no file or network; throws INVALID_ARGUMENT naming the bad one. */
export function checkSwitchOptions(o: SwitchCliOptions): void {
  o.listen.forEach(parseListen);
  if (o.uplink !== undefined) parseUplink(o.uplink);
  if (o.listen.length === 0 && o.vde.length === 0)
    throw new MacslotError('INVALID_ARGUMENT', 'nothing to switch: give at least one --listen or --vde');
  if (o.allocation !== undefined && !ALLOCATIONS.includes(o.allocation))
    throw new MacslotError('INVALID_ARGUMENT', `--allocation ${show(o.allocation)} is not ${ALLOCATIONS.join(', ')}`);
  if (o.leaseTtl !== undefined) intOption(o.leaseTtl, '--lease-ttl', 0, 0, 2 ** 31 - 1);
  if (o.maxQueue !== undefined) intOption(o.maxQueue, '--max-queue', 0, 1);
  limitOptions(o);
  if (o.stormControl !== undefined) stormOption(o.stormControl);
  if (o.store !== undefined) checkStoreUrl(o.store);
}

/** A listener limit: its serveSwitch option (and `switch` object field) name, its command-line option, and its range. */
type LimitName = 'queueBudgetBytes' | 'maxClientsPerListener' | 'idleMs' | 'frameTimeoutMs' | 'handshakeTimeoutMs';
/** The listeners' limits, set by the command line or by the configuration file's `switch` object (the command line wins). */
export type SwitchLimits = Partial<Record<LimitName, number>>;
const LIMIT_FIELDS: readonly { key: LimitName; option: keyof SwitchCliOptions; flag: string; min: number; max: number }[] = [
  { key: 'queueBudgetBytes', option: 'queueBudget', flag: '--queue-budget', min: 1, max: Number.MAX_SAFE_INTEGER },
  { key: 'maxClientsPerListener', option: 'maxClients', flag: '--max-clients', min: 1, max: 2 ** 31 - 1 },
  { key: 'idleMs', option: 'idleTimeout', flag: '--idle-timeout', min: 0, max: 2 ** 31 - 1 },
  { key: 'frameTimeoutMs', option: 'frameTimeout', flag: '--frame-timeout', min: 0, max: 2 ** 31 - 1 },
  { key: 'handshakeTimeoutMs', option: 'handshakeTimeout', flag: '--handshake-timeout', min: 1, max: 2 ** 31 - 1 },
];

/** Returns the listeners' limits given on the command line, as serveSwitch options; a bad one is a usage error naming it. */
function limitOptions(o: SwitchCliOptions): SwitchLimits {
  const out: SwitchLimits = {};
  for (const f of LIMIT_FIELDS) {
    const text = o[f.option];
    if (typeof text === 'string') out[f.key] = intOption(text, f.flag, 0, f.min, f.max);
  }
  return out;
}

/** Returns the listeners' limits of a `switch` object; a field out of range is CONFIG_INVALID naming its path. */
function limitFields(s: Record<string, unknown>, source: string): SwitchLimits {
  const out: SwitchLimits = {};
  for (const f of LIMIT_FIELDS) {
    const v = s[f.key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < f.min || v > f.max) {
      throw new MacslotError('CONFIG_INVALID', `${source}: switch.${f.key}: ${show(v)} is not an integer in ${f.min}..${f.max}`);
    }
    out[f.key] = v;
  }
  return out;
}

/** Returns the storm control of `--storm-control RATE[:BURST]|off`; throws INVALID_ARGUMENT naming the text. */
export function stormOption(text: string): StormControl | false {
  if (text === 'off') return false;
  const m = /^(\d{1,9})(?::(\d{1,9}))?$/.exec(text);
  if (m === null || Number(m[1]) < 1 || (m[2] !== undefined && Number(m[2]) < 1)) {
    throw new MacslotError(
      'INVALID_ARGUMENT',
      `--storm-control ${show(text)} is not RATE, RATE:BURST (frames per second, frames; integers ≥ 1) or off`,
    );
  }
  return { rate: Number(m[1]), burst: Number(m[2] ?? m[1]) };
}

const SWITCH_FIELDS = [
  'allocation',
  'leaseTtlMs',
  'antiSpoof',
  'neighbours',
  'secrets',
  'stormControl',
  ...LIMIT_FIELDS.map((f) => f.key),
  ...GUEST_NETWORK_FIELDS,
] as const;
// Once SIGINT or SIGTERM asked the switch to stop, it has this long before every child and socket is ended by force.
const STOP_MS = 1500;
const ALLOCATIONS: readonly string[] = ['auto', 'random', 'factory', 'learn', 'none'];
const DEFAULT_PRIMARY = '02:6d:73:00:00:01';

/**
 * Returns the switch options of a configuration file (nic, clients, seed, and an optional `switch` object); throws CONFIG_INVALID naming
 * the path.
 */
export function switchConfig(
  text: string,
  source: string,
): {
  nic: Nic;
  clients: SwitchClientSpec[];
  allocation?: string;
  leaseTtlMs?: number;
  antiSpoof?: boolean;
  neighbours?: string[];
  secrets?: Record<string, string>;
  stormControl?: StormControl | false;
  limits?: SwitchLimits;
  guestNetwork?: GuestNetwork;
  /** The uplink's VLANs, when the file uses VLANs (the clients' are in their specs). */
  vlans?: { uplink: PortVlans };
} {
  let raw: unknown;
  try {
    raw = parseConfigText(text, source);
  } catch (err) {
    throw isMacslotError(err) && !err.message.includes(' is not JSON: ')
      ? new MacslotError('CONFIG_INVALID', `${show(source)}: ${err.message.replace(/^CONFIG_INVALID: /, '')}`)
      : err;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new MacslotError('CONFIG_INVALID', `${source}: (root): ${show(raw)} is not an object`);
  const { switch: sw, ...rest } = raw as Record<string, unknown>;
  // `auto` and `learn` are switch-only address policies; the common validator checks everything else about each client.
  const switchOnly = new Map<number, string>();
  if (Array.isArray(rest.clients)) {
    rest.clients = rest.clients.map((c: unknown, i: number) => {
      const address = c !== null && typeof c === 'object' ? (c as { address?: unknown }).address : undefined;
      if (address === 'auto' || address === 'learn') {
        switchOnly.set(i, address);
        const { address: _drop, ...others } = c as Record<string, unknown>;
        return others;
      }
      return c;
    });
  }
  let config: ReturnType<typeof parseConfig>;
  try {
    config = parseConfig(rest);
  } catch (err) {
    throw isMacslotError(err) ? new MacslotError('CONFIG_INVALID', `${source}: ${err.message.replace(/^CONFIG_INVALID: /, '')}`) : err;
  }
  for (const c of config.clients)
    if (c.promiscuous)
      throw new MacslotError(
        'CONFIG_INVALID',
        `${source}: clients: ${show(c.name)} asks for promiscuous mode, which a switch port cannot have`,
      );
  // VLANs as buildFromConfig reads them: a client without VLAN fields is an access port of VLAN 1; the wire carries
  // nic.vlans (default every client VLAN and VLAN 1, with VLAN 1 untagged).
  const usesVlans = vlanField(config) !== undefined;
  const portVlans = (c: (typeof config.clients)[number]): PortVlans =>
    c.vlans !== undefined ? (c.native === undefined ? { trunk: c.vlans } : { trunk: c.vlans, native: c.native }) : { access: c.vlan ?? 1 };
  const { vlans: nicVlans, native: nicNative, ...nicFields } = config.nic;
  const out: ReturnType<typeof switchConfig> = {
    nic: new Nic({ ...nicFields, ...(config.seed !== undefined ? { random: seededRandom(config.seed) } : {}) }),
    clients: config.clients.map((c, i) => ({
      name: c.name,
      ...(switchOnly.has(i) ? { address: switchOnly.get(i)! } : c.address !== undefined ? { address: c.address } : {}),
      ...(c.multicast ? { multicast: c.multicast } : {}),
      ...(c.broadcast !== undefined ? { broadcast: c.broadcast } : {}),
      ...(usesVlans ? { vlans: portVlans(c) } : {}),
    })),
  };
  if (usesVlans) {
    const all = new Set<number>([1]);
    for (const c of config.clients) for (const v of c.vlans ?? [c.vlan ?? 1]) all.add(v);
    out.vlans = {
      uplink:
        nicVlans !== undefined
          ? nicNative === undefined
            ? { trunk: nicVlans }
            : { trunk: nicVlans, native: nicNative }
          : { trunk: [...all].sort((a, b) => a - b), native: 1 },
    };
  }
  if (sw !== undefined) {
    if (sw === null || typeof sw !== 'object' || Array.isArray(sw))
      throw new MacslotError('CONFIG_INVALID', `${source}: switch: ${show(sw)} is not an object`);
    for (const [k, v] of Object.entries(sw)) {
      if (!(SWITCH_FIELDS as readonly string[]).includes(k))
        throw new MacslotError(
          'CONFIG_INVALID',
          `${source}: ${keyPath('switch', k)}: ${show(v)} is not a known field (known: ${SWITCH_FIELDS.join(', ')})`,
        );
    }
    const s = sw as Record<string, unknown>;
    if (s.allocation !== undefined) {
      if (typeof s.allocation !== 'string' || !ALLOCATIONS.includes(s.allocation))
        throw new MacslotError('CONFIG_INVALID', `${source}: switch.allocation: ${show(s.allocation)} is not ${ALLOCATIONS.join(', ')}`);
      out.allocation = s.allocation;
    }
    if (s.leaseTtlMs !== undefined) {
      if (typeof s.leaseTtlMs !== 'number' || !Number.isInteger(s.leaseTtlMs) || s.leaseTtlMs < 0 || s.leaseTtlMs > 2 ** 31 - 1)
        throw new MacslotError(
          'CONFIG_INVALID',
          `${source}: switch.leaseTtlMs: ${show(s.leaseTtlMs)} is not an integer in 0..${2 ** 31 - 1}`,
        );
      out.leaseTtlMs = s.leaseTtlMs;
    }
    if (s.antiSpoof !== undefined) {
      if (typeof s.antiSpoof !== 'boolean')
        throw new MacslotError('CONFIG_INVALID', `${source}: switch.antiSpoof: ${show(s.antiSpoof)} is not true or false`);
      out.antiSpoof = s.antiSpoof;
    }
    const limits = limitFields(s, source);
    if (Object.keys(limits).length > 0) out.limits = limits;
    if (s.neighbours !== undefined) out.neighbours = neighboursField(s.neighbours, source);
    if (s.secrets !== undefined) out.secrets = secretsField(s.secrets, source);
    if (s.stormControl !== undefined) {
      if (s.stormControl !== false) {
        const sc = s.stormControl as Record<string, unknown>;
        const extra = sc !== null && typeof sc === 'object' ? Object.keys(sc).find((k) => k !== 'rate' && k !== 'burst') : undefined;
        try {
          if (extra !== undefined) throw new Error(`${show(extra)} is not rate or burst`);
          checkStormControl(s.stormControl as StormControl);
        } catch (err) {
          throw new MacslotError(
            'CONFIG_INVALID',
            `${source}: switch.stormControl: ${show(s.stormControl)} is not false or {"rate", "burst"}: ` +
              `${(err as Error).message.replace(/^INVALID_ARGUMENT: /, '')}`,
          );
        }
      }
      out.stormControl = s.stormControl as StormControl | false;
    }
    const guestNetwork = guestNetworkFields(s, source);
    if (guestNetwork !== undefined) out.guestNetwork = guestNetwork;
  }
  return out;
}

/** `switch.neighbours`: MACs no port may learn. */
function neighboursField(v: unknown, source: string): string[] {
  if (!Array.isArray(v)) throw new MacslotError('CONFIG_INVALID', `${source}: switch.neighbours: ${show(v)} is not an array of MACs`);
  return v.map((m, i) => {
    try {
      // The notations the rest of the file takes (the schema's "mac"), no other.
      if (typeof m !== 'string' || !new RegExp(CONFIG_PATTERNS.mac, 'u').test(m)) throw new Error('not a MAC');
      return Mac.parse(m).toString();
    } catch {
      throw new MacslotError('CONFIG_INVALID', `${source}: switch.neighbours[${i}]: ${show(m)} is not a MAC`);
    }
  });
}

/** `switch.secrets`: client name → secret, 8 to 1024 characters each. */
function secretsField(v: unknown, source: string): Record<string, string> {
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new MacslotError('CONFIG_INVALID', `${source}: switch.secrets: ${show(v)} is not an object of client name → secret`);
  for (const [k, secret] of Object.entries(v)) {
    if (k.length === 0 || k.length > 256)
      throw new MacslotError('CONFIG_INVALID', `${source}: switch.secrets: a client name of ${k.length} characters (1 to 256)`);
    // The secret itself is never shown in an error.
    if (typeof secret !== 'string' || secret.length < 8 || secret.length > 1024)
      throw new MacslotError(
        'CONFIG_INVALID',
        `${source}: ${keyPath('switch.secrets', k)}: the secret must be a string of 8 to 1024 characters`,
      );
  }
  return { ...(v as Record<string, string>) };
}

function drops(d: Readonly<Record<string, number>>): string {
  const e = Object.entries(d).filter(([, v]) => v > 0);
  return e.length === 0 ? '-' : e.map(([k, v]) => `${k}=${count(v)}`).join(' ');
}

/** Returns the per-port table: one row per port, the uplink, and the sum of closed ports. */
export function countersTable(c: SwitchCounters): string {
  const row = (p: PortCounters, client: string, mac: string): string[] => [
    p.name,
    client,
    mac,
    count(p.rx.frames),
    count(p.rx.bytes),
    count(p.tx.frames),
    count(p.tx.bytes),
    drops(p.drops),
  ];
  const rows = c.ports.map((p) => row(p, p.client, p.mac ?? '-'));
  if (c.uplink) rows.push(row(c.uplink, '(uplink)', '-'));
  if (c.closed.ports > 0) rows.push(row({ name: `(${c.closed.ports} closed)`, ...c.closed }, '-', '-'));
  const refused = Object.entries(c.refused);
  const tail = refused.length > 0 ? `\n  refused: ${refused.map(([k, v]) => `${k}=${v}`).join(' ')}` : '';
  return table(['PORT', 'CLIENT', 'MAC', 'RX FRAMES', 'RX BYTES', 'TX FRAMES', 'TX BYTES', 'DROPS'], rows) + tail;
}

/**
 * Runs the switch until SIGINT or SIGTERM; resolves with the exit code. Throws INVALID_ARGUMENT or CONFIG_INVALID on bad options before
 * starting.
 */
export async function runSwitch(o: SwitchCliOptions, io: Io): Promise<number> {
  const listen = o.listen.map(parseListen);
  const uplink = o.uplink === undefined ? { kind: 'none' as const } : parseUplink(o.uplink);
  if (listen.length === 0 && o.vde.length === 0)
    throw new MacslotError('INVALID_ARGUMENT', 'nothing to switch: give at least one --listen or --vde');
  let text: string | undefined;
  if (o.config !== undefined) {
    try {
      text = readFileSync(o.config, 'utf8');
    } catch (err) {
      throw new MacslotError('CONFIG_INVALID', `cannot read ${show(o.config)}: ${(err as Error).message}`);
    }
  }
  const cfg = text !== undefined ? switchConfig(text, o.config!) : { nic: new Nic({ primary: DEFAULT_PRIMARY }), clients: [] };
  if ('guestNetwork' in cfg && cfg.guestNetwork !== undefined) checkGuestNetwork(cfg.guestNetwork, o.config!);
  const allocation = o.allocation ?? ('allocation' in cfg ? cfg.allocation : undefined);
  if (allocation !== undefined && !ALLOCATIONS.includes(allocation))
    throw new MacslotError('INVALID_ARGUMENT', `--allocation ${show(allocation)} is not ${ALLOCATIONS.join(', ')}`);
  const leaseTtlMs =
    o.leaseTtl !== undefined ? intOption(o.leaseTtl, '--lease-ttl', 0, 0, 2 ** 31 - 1) : 'leaseTtlMs' in cfg ? cfg.leaseTtlMs : undefined;
  const maxQueueBytes = o.maxQueue !== undefined ? intOption(o.maxQueue, '--max-queue', 0, 1) : undefined;
  const stormControl = o.stormControl !== undefined ? stormOption(o.stormControl) : cfg.stormControl;
  const log = (line: string): void => io.err(`${new Date().toISOString()} ${line}\n`);
  const options: SwitchOptions = {
    nic: cfg.nic,
    clients: cfg.clients,
    antiSpoof: o.allowSpoof ? false : (('antiSpoof' in cfg ? cfg.antiSpoof : undefined) ?? true),
    log,
    ...(allocation !== undefined ? { allocation: allocation as SwitchOptions['allocation'] & string } : {}),
    ...(leaseTtlMs !== undefined ? { leaseTtlMs } : {}),
    ...(cfg.neighbours !== undefined ? { neighbours: cfg.neighbours } : {}),
    ...(cfg.secrets !== undefined ? { secrets: cfg.secrets } : {}),
    ...(stormControl !== undefined ? { stormControl } : {}),
    ...('vlans' in cfg && cfg.vlans !== undefined ? { vlans: cfg.vlans } : {}),
  };
  // With --store, the switch's MACs and leases live in a database that other switch hosts share.
  const shared = o.store === undefined ? undefined : await openSharedManager(o.store, cfg.nic, cfg.neighbours);
  if (shared !== undefined) options.manager = shared.manager;
  let sw: Switch;
  try {
    sw = await Switch.create(options);
  } catch (err) {
    await shared?.close();
    throw err;
  }
  const signals = watchSignals();
  let served: ServedSwitch;
  let recording: { tap: PcapngTap; file: ByteOutput } | undefined;
  try {
    if (o.tap !== undefined) {
      const file = byteOutput(o.tap);
      // A capture whose output fails (EPIPE, a full disk) goes off; the switch and every peer, later ones included, go on.
      const where = o.tap === STDIO ? 'standard output' : show(o.tap);
      const onError = (err: unknown): void =>
        log(`tap: writing ${where} failed (${err instanceof Error ? err.message : String(err)}); recording stopped, peers unaffected`);
      recording = { file, tap: new PcapngTap((bytes) => file.write(bytes), { onError }) };
    }
    served = await serveSwitch(sw, {
      listen,
      uplink,
      vde: o.vde,
      log,
      signal: signals.abort,
      ...(maxQueueBytes !== undefined ? { maxQueueBytes } : {}),
      ...('limits' in cfg ? cfg.limits : undefined),
      ...limitOptions(o),
      ...(recording ? { tap: recording.tap } : {}),
      ...('guestNetwork' in cfg && cfg.guestNetwork !== undefined ? { guestNetwork: cfg.guestNetwork } : {}),
    });
  } catch (err) {
    signals.dispose();
    recording?.file.abort();
    await sw.close();
    await shared?.close();
    throw err;
  }
  const up = served;
  signals.onKill(() => {
    up.kill();
    recording?.file.abort();
  });
  // With the capture on standard output, the counters go to standard error.
  const report = o.tap === STDIO ? io.err : io.out;
  // Never throws: a reader gone from a pipe (EPIPE) must neither skip the stop below nor escape the SIGUSR1 listener.
  const print = (): void => {
    const c = sw.counters();
    try {
      report(o.json ? JSON.stringify(c) + '\n' : countersTable(c) + '\n');
    } catch (err) {
      if (!isBrokenPipe(err)) log(`counters not printed: ${(err as Error).message}`);
    }
  };
  let lines = 0;
  const draw = (): void => {
    const t = countersTable(sw.counters());
    // Redraw in place: move up over the previous table and clear to the end of the screen.
    io.err(`${lines > 0 ? `\x1b[${lines}A` : ''}\x1b[J${t}\n`);
    lines = t.split('\n').length;
  };
  const timer = io.tty ? setInterval(draw, 1000) : undefined;
  const onUsr1 = (): void => print();
  process.on('SIGUSR1', onUsr1);
  await signals.stopped;
  try {
    if (timer !== undefined) clearInterval(timer);
    process.off('SIGUSR1', onUsr1);
    print();
    // Peers need not hang up: every socket and child is closed now, and ended by force if that takes too long.
    let timeout: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([
      served.close().then(() => true),
      new Promise<boolean>((r) => (timeout = setTimeout(() => r(false), STOP_MS))),
    ]);
    clearTimeout(timeout);
    if (!closed) {
      log(`stopping took over ${STOP_MS} ms; ending every peer and child now`);
      served.kill();
    }
    signals.dispose();
    recording?.tap.close();
    const tap = recording?.tap;
    if (tap?.failed) log(`tap: ${tap.frames} frames recorded, ${tap.lost} not recorded after the output failed`);
    recording?.file.commit();
    await shared?.close();
  } finally {
    signals.dispose();
    // However the stop went, nothing may keep the process alive past it; it exits with the status main() sets.
    setTimeout(() => process.exit(), 500).unref();
  }
  return 0;
}

/**
 * Takes SIGINT and SIGTERM from the start: the first aborts start-up (passt is stopped, its directory removed) or
 * asks the running switch to stop; a second ends every child at once and exits with 128 + the signal's number.
 */
function watchSignals(): { abort: AbortSignal; stopped: Promise<void>; onKill(kill: () => void): void; dispose(): void } {
  const abort = new AbortController();
  let stop = (): void => {};
  const stopped = new Promise<void>((r) => (stop = r));
  let kill = (): void => {};
  const on = (signal: NodeJS.Signals): void => {
    if (!abort.signal.aborted) {
      abort.abort();
      stop();
      return;
    }
    try {
      kill();
    } finally {
      process.exit(128 + (osConstants.signals[signal] ?? 0));
    }
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    abort: abort.signal,
    stopped,
    onKill: (k) => (kill = k),
    dispose: () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}
