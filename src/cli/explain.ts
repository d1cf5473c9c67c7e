// Command line: `macslot explain`, why each frame of a capture (or of hex given on the command line) was delivered or dropped.

import { existsSync } from 'node:fs';
import { LINKTYPE_ETHERNET } from '../capture/format.js';
import { CaptureReader } from '../capture/reader.js';
import { MacslotError, show } from '../errors.js';
import type { VlanMembership } from '../vlan/membership.js';
import { ETH_DST, hasEthernetHeader } from '../wire/ethernet.js';
import { Mac } from '../wire/mac.js';
import { STDIO, captureInput, dataPlaneFor, nicFromFile, type Io } from './common.js';
import { tableStream } from './table.js';

/**
 * Returns the frames in `text`: hex bytes, optionally separated by `:`, `-`, `.` or spaces, frames separated by commas. Throws
 * INVALID_ARGUMENT with the bad frame.
 */
export function parseHexFrames(text: string): Uint8Array[] {
  return text.split(',').map((part, i) => {
    const hex = part.replace(/[\s:.-]/g, '');
    if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) {
      throw new MacslotError('INVALID_ARGUMENT', `frame ${i} ${show(part)} is neither a capture file nor hex bytes`);
    }
    return Uint8Array.from(hex.match(/../g)!, (b) => parseInt(b, 16));
  });
}

/** What `macslot explain` was asked to do. */
export interface ExplainOptions {
  /** A capture file, `-` for standard input, or hex frames. */
  readonly input: string;
  readonly config: string;
  readonly json: boolean;
  /** Stop after this many frames. */
  readonly count?: number;
}

/** The VLAN a frame from the wire is in (its tag's VID, or the wire's native VLAN when untagged); null when it has none. */
export function frameVid(vlans: VlanMembership<number | string>, frame: Uint8Array): number | null {
  if (!hasEthernetHeader(frame)) return null;
  return vlans.ingress('uplink', frame).vid ?? null;
}

/**
 * Explains every frame; one JSON object per line with `json`, a table otherwise, both streamed in
 * constant memory. Throws CAPTURE_INVALID, CONFIG_INVALID or INVALID_ARGUMENT.
 */
export async function runExplain(o: ExplainOptions, io: Io): Promise<void> {
  // A file with VLANs is classified on (MAC, VID), the frames coming in from the wire (port 'uplink').
  const configured = nicFromFile(o.config, { vlans: true });
  const { nic, vlans } = configured;
  const dp = await dataPlaneFor(configured, { lanes: 1, burst: 1, poolBytes: 1 << 18, ringBytes: 4096 });
  const name = (id: number): string => nic.client(id)?.name ?? `#${id}`;
  const limit = o.count ?? Number.POSITIVE_INFINITY;
  const columns = ['index', 'destination', ...(vlans ? ['vlan'] : []), 'length', 'rule', 'path', 'delivered to'];
  const rows = tableStream(columns, io.out);
  let lines = '';
  const jsonLine = (value: unknown): void => {
    lines += `${JSON.stringify(value)}\n`;
    if (lines.length >= 1 << 16) {
      io.out(lines);
      lines = '';
    }
  };
  const other = new Map<number, number>();
  const explain = (index: number, frame: Uint8Array): void => {
    const dst = frame.length >= ETH_DST + 6 ? Mac.fromBytes(frame, ETH_DST, 6).toString() : null;
    const v = dp.classify(frame);
    const deliver = v.deliver.map(name);
    if (vlans !== undefined) {
      const vid = frameVid(vlans, frame);
      if (o.json) jsonLine({ index, dst, vid, rule: v.rule, path: v.path, deliver });
      else
        rows.row([
          String(index),
          dst ?? `(${frame.length} bytes)`,
          vid === null ? '-' : String(vid),
          String(frame.length),
          v.rule,
          v.path,
          deliver.join(', ') || '-',
        ]);
      return;
    }
    if (o.json) jsonLine({ index, dst, rule: v.rule, path: v.path, deliver });
    else rows.row([String(index), dst ?? `(${frame.length} bytes)`, String(frame.length), v.rule, v.path, deliver.join(', ') || '-']);
  };
  const skip = (index: number, linkType: number): void => {
    other.set(linkType, (other.get(linkType) ?? 0) + 1);
    if (o.json) jsonLine({ index, linkType, skipped: 'not Ethernet' });
    else rows.row([String(index), `(linktype ${linkType})`, ...(vlans ? ['-'] : []), '-', 'not classified', '-', '-']);
  };
  try {
    if (o.input === STDIO || existsSync(o.input)) {
      const reader = new CaptureReader(o.input === STDIO ? 'standard input' : o.input);
      let index = 0;
      let complete = true;
      for await (const chunk of captureInput(o.input)) {
        reader.push(chunk);
        while (index < limit && reader.next()) {
          if (reader.linkType === LINKTYPE_ETHERNET) explain(index, reader.data);
          else skip(index, reader.linkType);
          index++;
        }
        if (lines.length > 0) io.out(lines);
        lines = '';
        if (index >= limit) {
          complete = false;
          break;
        }
      }
      if (complete) reader.end();
    } else
      parseHexFrames(o.input)
        .slice(0, limit)
        .forEach((f, i) => explain(i, f));
  } finally {
    dp.close();
  }
  if (o.json) {
    if (lines.length > 0) io.out(lines);
    return;
  }
  rows.end();
  if (other.size > 0) io.out(`Not Ethernet, counted and not classified: ${[...other].map(([k, v]) => `linktype ${k}: ${v}`).join(', ')}\n`);
}
