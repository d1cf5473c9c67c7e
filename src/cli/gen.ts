// Command line: `macslot gen`, a synthetic capture for a configuration, reproducible from its seed, for tests and benchmarks.

import type { CaptureFormat } from '../capture/format.js';
import { seededRandom } from '../config/config.js';
import { MacslotError, show } from '../errors.js';
import { Mac } from '../wire/mac.js';
import { STDIO, captureOutput, count, nicFromFile, progressBar, type CaptureOutput, type Io } from './common.js';
import { onInterrupt, yieldToEvents } from './interrupt.js';
import { resolveOutput } from '../node/output-file.js';

/** True when `path` leads to this process's standard output. */
function namesStdout(path: string): boolean {
  try {
    return resolveOutput(path).fd === 1;
  } catch {
    return false;
  }
}

/** Kinds of frames `gen` mixes, by destination. */
export const MIX_KINDS = ['unicast', 'broadcast', 'multicast', 'unknown', 'flood', 'runt', 'vlan'] as const;
type Kind = (typeof MIX_KINDS)[number];

/** The default mix: mostly traffic for the clients, some of every other kind. */
export const DEFAULT_MIX = 'unicast=80,broadcast=5,multicast=5,unknown=5,flood=5';

/** Returns the mix as weights; throws INVALID_ARGUMENT naming the bad entry. */
export function parseMix(text: string): Map<Kind, number> {
  const mix = new Map<Kind, number>();
  for (const part of text.split(',')) {
    const [k, v, extra] = part.split('=');
    if (!MIX_KINDS.includes(k as Kind) || v === undefined || extra !== undefined || !/^\d+$/.test(v)) {
      throw new MacslotError('INVALID_ARGUMENT', `--mix entry ${show(part)} is not KIND=WEIGHT with KIND one of ${MIX_KINDS.join(', ')}`);
    }
    mix.set(k as Kind, Number(v));
  }
  if ([...mix.values()].every((w) => w === 0)) throw new MacslotError('INVALID_ARGUMENT', `--mix ${show(text)} has no positive weight`);
  return mix;
}

/**
 * Writes the capture; returns how many frames of each kind it holds. Throws CONFIG_INVALID or INVALID_ARGUMENT
 * (e.g. unicast asked but no client has a MAC). Interrupted (a signal, an error), it leaves no partial file.
 */
export async function runGen(
  o: { out: string; config: string; frames: number; mix: string; seed: number; size: number; format: CaptureFormat },
  io: Io,
): Promise<Record<Kind, number>> {
  const { nic, clients, vlans } = nicFromFile(o.config, { vlans: true });
  const mix = parseMix(o.mix);
  if ((mix.get('vlan') ?? 0) > 0 && vlans === undefined)
    throw new MacslotError('INVALID_ARGUMENT', '--mix asks for vlan frames but the configuration uses no VLANs (vlan, vlans, nic.vlans)');
  const ids = new Set(clients.map((c) => c.id));
  const owned = nic.slots().filter((s) => s.active && s.owner !== undefined && ids.has(nic.client(s.owner)?.id ?? -1));
  const unicast = owned.map((s) => s.mac);
  const groups = [...new Set(clients.flatMap((c) => c.groups().map((g) => g.toString())))].map((g) => Mac.parse(g));
  const pools: Record<Kind, Mac[]> = {
    unicast,
    broadcast: [Mac.parse('ff:ff:ff:ff:ff:ff')],
    multicast: groups,
    unknown: [],
    flood: [],
    runt: [],
    vlan: unicast,
  };
  // With VLANs, each frame travels in a VLAN of the wire: one its receiver is in, when it has one. The wire's native VLAN
  // goes untagged, the others tagged (802.1Q); a `vlan` frame is tagged with a VLAN the wire does not carry.
  const wire = vlans?.get('uplink');
  const vlansOf = new Map<string | number, number[]>();
  if (vlans !== undefined && wire !== undefined) {
    const on = (vids: readonly number[]): number[] => vids.filter((v) => wire.vids.includes(v));
    for (const s of owned) vlansOf.set(s.mac.key, on(vlans.get(nic.client(s.owner!)!.id)?.vids ?? []));
    for (const g of groups) {
      const members = clients.filter((c) => c.groups().some((x) => x.toString() === g.toString()));
      vlansOf.set(g.key, on([...new Set(members.flatMap((c) => vlans.get(c.id)?.vids ?? []))]));
    }
  }
  let foreign = 4094;
  while (wire?.vids.includes(foreign) === true) foreign--;
  for (const [k, w] of mix)
    if (w > 0 && (k === 'unicast' || k === 'multicast' || k === 'vlan') && pools[k].length === 0)
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `--mix asks for ${k} frames but the configuration's clients have no ${k === 'multicast' ? 'multicast group' : 'unicast MAC'}`,
      );
  const kinds: Kind[] = [];
  const weights: number[] = [];
  for (const [k, w] of mix) if (w > 0) kinds.push(k), weights.push(w);
  const total = weights.reduce((a, b) => a + b, 0);
  const rnd = seededRandom(o.seed);
  const r4 = new Uint8Array(4);
  const rand = (): number => (rnd(r4), ((r4[0]! << 24) | (r4[1]! << 16) | (r4[2]! << 8) | r4[3]!) >>> 0);
  const inUse = new Set(nic.slots().map((s) => s.mac.key));
  const frame = new Uint8Array(Math.max(o.size, 18));
  const made: Record<Kind, number> = { unicast: 0, broadcast: 0, multicast: 0, unknown: 0, flood: 0, runt: 0, vlan: 0 };
  let tagged = 0;
  /** The frame's VLAN: `foreign` for a vlan frame, else one its receivers are in, else any the wire carries. */
  const vidOf = (kind: Kind, dst: Mac | undefined, x: number): number | undefined => {
    if (wire === undefined || kind === 'runt') return undefined;
    if (kind === 'vlan') return foreign;
    const mine = dst === undefined ? undefined : vlansOf.get(dst.key);
    const from = mine !== undefined && mine.length > 0 ? mine : wire.vids;
    return from.length === 0 ? undefined : from[x % from.length];
  };
  // A path naming standard output (/dev/stdout, /dev/fd/1) is `-` by another name: the summary must not follow the capture there.
  const intoStdout = o.out === STDIO || namesStdout(o.out);
  // Armed before the file exists, so no signal can land between its creation and the cleanup.
  let file: CaptureOutput | undefined;
  const disarm = onInterrupt(() => file?.abort());
  try {
    file = captureOutput(o.out, { format: o.format });
  } catch (err) {
    disarm();
    throw err;
  }
  const progress = progressBar(io, o.frames);
  try {
    for (let i = 0; i < o.frames; i++) {
      let pick = rand() % total;
      let k = 0;
      while (pick >= weights[k]!) pick -= weights[k++]!;
      const kind = kinds[k]!;
      made[kind]++;
      const x = rand();
      let dst: Mac | undefined;
      if (kind === 'unknown' || kind === 'runt') {
        // A locally administered unicast MAC no client holds.
        frame.set([0x02, 0xee, x >>> 24, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff]);
        if (inUse.has(Mac.fromBytes(frame, 0, 6).key)) frame[1] = 0xef;
      } else if (kind === 'flood') {
        // An IPv4 multicast group in a range no configuration here joins.
        frame.set([0x01, 0x00, 0x5e, 0x7e, (x >>> 8) & 0xff, x & 0xff]);
      } else {
        const list = pools[kind];
        dst = list[x % list.length]!;
        dst.writeTo(frame, 0);
      }
      frame.set([0x02, 0x53, 0x00, (i >>> 16) & 0xff, (i >>> 8) & 0xff, i & 0xff], 6);
      const v6 = frame[0] === 0x33 && frame[1] === 0x33;
      const vid = wire === undefined ? undefined : vidOf(kind, dst, rand());
      const tag = vid !== undefined && vid !== wire?.pvid;
      let at = 12;
      if (tag) {
        frame.set([0x81, 0x00, vid >>> 8, vid & 0xff], 12);
        at = 16;
        tagged++;
      }
      frame[at] = v6 ? 0x86 : 0x08;
      frame[at + 1] = v6 ? 0xdd : 0x00;
      for (let p = at + 2; p < frame.length; p++) frame[p] = (i + p) & 0xff;
      const len = kind === 'runt' ? 10 : tag ? Math.max(o.size, 18) : o.size;
      // One frame per microsecond from a fixed start, so the same seed gives the same bytes.
      file.writer.write(frame, 0, len, 1_700_000_000 + Math.floor(i / 1_000_000), (i % 1_000_000) * 1000, len);
      if ((i & 0xffff) === 0) {
        progress.update(i, i);
        // Lets a signal through now and then; the loop itself never waits.
        await yieldToEvents();
      }
    }
    progress.done();
    file.commit();
  } catch (err) {
    file.abort();
    throw err;
  } finally {
    disarm();
  }
  // With the capture on standard output, the summary goes to standard error.
  (intoStdout ? io.err : io.out)(
    `${o.out}: ${count(o.frames)} frames of ${o.size} bytes (${MIX_KINDS.filter((k) => made[k] > 0)
      .map((k) => `${k} ${count(made[k])}`)
      .join(', ')}${wire === undefined ? '' : `; ${count(tagged)} tagged`})\n`,
  );
  return made;
}
