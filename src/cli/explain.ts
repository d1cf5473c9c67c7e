// Command line: `macslot explain`, why each frame of a capture (or of hex given on the command line) was delivered or dropped.

import { existsSync } from 'node:fs';
import { LINKTYPE_ETHERNET } from '../capture/format.js';
import { DataPlane } from '../dataplane/dataplane.js';
import { MacslotError, show } from '../errors.js';
import { readCaptureFile } from '../node/capture.js';
import { Mac } from '../wire/mac.js';
import { nicFromFile, type Io } from './common.js';
import { table } from './table.js';

/** Returns the frames in `text`: hex bytes, optionally separated by `:`, `-`, `.` or spaces, frames separated by commas. Throws INVALID_ARGUMENT with the bad frame. */
export function parseHexFrames(text: string): Uint8Array[] {
  return text.split(',').map((part, i) => {
    const hex = part.replace(/[\s:.-]/g, '');
    if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) {
      throw new MacslotError('INVALID_ARGUMENT', `frame ${i} ${show(part)} is neither a capture file nor hex bytes`);
    }
    return Uint8Array.from(hex.match(/../g)!, (b) => parseInt(b, 16));
  });
}

/** Explains every frame; one JSON object per line with `json`, a table otherwise. Throws CAPTURE_INVALID, CONFIG_INVALID or INVALID_ARGUMENT. */
export async function runExplain(o: { input: string; config: string; json: boolean }, io: Io): Promise<void> {
  const { nic } = nicFromFile(o.config);
  const dp = await DataPlane.create(nic, { lanes: 1, burst: 1, poolBytes: 1 << 18, ringBytes: 4096 });
  const name = (id: number): string => nic.client(id)?.name ?? `#${id}`;
  const rows: string[][] = [];
  const other = new Map<number, number>();
  const explain = (index: number, frame: Uint8Array): void => {
    const v = dp.classify(frame);
    const dst = frame.length >= 6 ? Mac.fromBytes(frame, 0, 6).toString() : null;
    const deliver = v.deliver.map(name);
    if (o.json) io.out(JSON.stringify({ index, dst, rule: v.rule, path: v.path, deliver }) + '\n');
    else rows.push([String(index), dst ?? `(${frame.length} bytes)`, String(frame.length), v.rule, v.path, deliver.join(', ') || '-']);
  };
  const skip = (index: number, linkType: number): void => {
    other.set(linkType, (other.get(linkType) ?? 0) + 1);
    if (o.json) io.out(JSON.stringify({ index, linkType, skipped: 'not Ethernet' }) + '\n');
    else rows.push([String(index), `(linktype ${linkType})`, '-', 'not classified', '-', '-']);
  };
  try {
    if (existsSync(o.input)) {
      let index = 0;
      await readCaptureFile(o.input, (r) => {
        if (r.linkType === LINKTYPE_ETHERNET) explain(index, r.data);
        else skip(index, r.linkType);
        index++;
      });
    } else parseHexFrames(o.input).forEach((f, i) => explain(i, f));
  } finally {
    dp.close();
  }
  if (!o.json) {
    io.out(table(['index', 'destination', 'length', 'rule', 'path', 'delivered to'], rows) + '\n');
    if (other.size > 0) io.out(`Not Ethernet, counted and not classified: ${[...other].map(([k, v]) => `linktype ${k}: ${v}`).join(', ')}\n`);
  }
}
