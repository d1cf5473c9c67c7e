// Command line: `macslot filter`, one pass over a capture that writes one capture per client through the Wasm data plane.

import { closeSync, fstatSync, mkdirSync, openSync, read } from 'node:fs';
import { join } from 'node:path';
import { LINKTYPE_ETHERNET, MAX_BLOCK, PCAP_MAX_SECONDS, PCAPNG_MAX_SECONDS, type CaptureFormat } from '../capture/format.js';
import { CaptureReader } from '../capture/reader.js';
import { DataPlane } from '../dataplane/dataplane.js';
import { MacslotError, show } from '../errors.js';
import { RULES, type Rule } from '../filter/reference.js';
import { CaptureFile } from '../node/capture.js';
import { STDIO, count, nicFromFile, progressBar, type Io } from './common.js';
import { onInterrupt } from './interrupt.js';
import { table } from './table.js';

/** What `macslot filter` was asked to do. */
export interface FilterOptions {
  readonly capture: string;
  readonly config: string;
  readonly out: string;
  readonly format: 'pcap' | 'pcapng';
  readonly dropped: boolean;
  readonly json: boolean;
  /** Stop after this many input frames. */
  readonly count?: number;
}

/** One output's totals. */
export interface FilterRow {
  readonly name: string;
  readonly file: string;
  readonly frames: number;
  readonly bytes: number;
  readonly rules: Partial<Record<Rule, number>>;
}

/** What `macslot filter --json` prints. */
export interface FilterReport {
  readonly input: { readonly file: string; readonly format: string; readonly frames: number; readonly bytes: number; readonly ethernet: number; readonly otherLinkTypes: Record<string, number>; readonly skippedBlocks: number };
  readonly clients: FilterRow[];
  readonly dropped: FilterRow;
}

const CHUNK = 1 << 20;

/**
 * Reads what is available into `buffer` off the main thread (waiting while a non-blocking pipe is
 * empty); 0 at the end. A synchronous read would hold off signals while the input (a FIFO, a pipe) is idle.
 */
function readChunk(fd: number, buffer: Uint8Array): Promise<number> {
  return new Promise((ok, fail) => {
    const attempt = (): void =>
      void read(fd, buffer, 0, buffer.length, null, (err, n) => {
        if (err === null) ok(n);
        else if (err.code === 'EAGAIN') setTimeout(attempt, 1);
        else fail(err);
      });
    attempt();
  });
}
const BURST = 16384;
const SAFE_NAME = /^[A-Za-z0-9._@+-]+$/;

/** Runs the filter; returns the report (also printed). Throws CAPTURE_INVALID or CONFIG_INVALID; outputs never appear half-written. */
export async function runFilter(o: FilterOptions, io: Io): Promise<FilterReport> {
  const { nic } = nicFromFile(o.config);
  const clients = nic.clients();
  for (const c of clients) {
    if (!SAFE_NAME.test(c.name) || c.name === 'dropped') throw new MacslotError('INVALID_ARGUMENT', `client name ${show(c.name)} cannot name an output file (letters, digits and . _ @ + - only; "dropped" is reserved)`);
  }
  // The pool holds one read chunk plus room for the one record per chunk that straddles two reads.
  const dp = await DataPlane.create(nic, { lanes: 1, burst: BURST, poolBytes: CHUNK + MAX_BLOCK + 64, ringBytes: 4096 });
  const pool = dp.pool;
  const desc = dp.descriptors;
  const verdicts = dp.verdicts;
  const secs = new Float64Array(BURST);
  const nanos = new Float64Array(BURST);
  const origs = new Uint32Array(BURST);
  // Where each frame's pcap record starts in the pool when it can be copied verbatim, else -1.
  const records = new Int32Array(BURST);
  const maxId = Math.max(...clients.map((c) => c.id)) + 1;
  const names = new Map(clients.map((c) => [c.id, c.name]));
  const nr = RULES.length;
  const frames = new Float64Array(maxId + 1);
  const bytes = new Float64Array(maxId + 1);
  const rules = new Float64Array((maxId + 1) * nr);
  const DROPPED = maxId;
  const targets = new Map<number, Int32Array>();
  const ext = o.format === 'pcapng' ? 'pcapng' : 'pcap';
  const files: (CaptureFile | undefined)[] = new Array(maxId + 1).fill(undefined);
  const otherLinkTypes = new Map<number, number>();
  let ethernet = 0;

  const fd = o.capture === STDIO ? 0 : openSync(o.capture, 'r');
  const size = fstatSync(fd).size;
  mkdirSync(o.out, { recursive: true });
  const reader = new CaptureReader(o.capture === STDIO ? 'standard input' : o.capture);
  const limit = o.count ?? Number.POSITIVE_INFINITY;
  const progress = progressBar(io, size);
  const maxSeconds = o.format === 'pcapng' ? PCAPNG_MAX_SECONDS : PCAP_MAX_SECONDS;
  // Whatever ends the run early (a signal, an error, an exit elsewhere), no partial output stays behind.
  const abortAll = (): void => files.forEach((f) => f?.abort());
  const disarm = onInterrupt(abortAll);

  let opened = false;
  const open = (): void => {
    if (opened) return;
    opened = true;
    // pcap keeps nanoseconds whenever the input had them.
    const format: CaptureFormat = o.format === 'pcapng' ? 'pcapng' : reader.format === 'pcap' ? 'pcap' : 'pcap-ns';
    for (const c of clients) files[c.id] = new CaptureFile(join(o.out, `${c.name}.${ext}`), { format, linkType: LINKTYPE_ETHERNET });
    if (o.dropped) files[DROPPED] = new CaptureFile(join(o.out, `dropped.${ext}`), { format, linkType: LINKTYPE_ETHERNET });
  };

  // The filter is fixed for the whole run, so a verdict word always means the same receivers: decode each word once.
  // Indexed by the word's low byte (rule and path), then by its client or group.
  const byLow: (Int32Array | undefined)[][] = Array.from({ length: 256 }, () => []);
  const route = (word: number): Int32Array => {
    const row = byLow[word & 0xff]!;
    const t = row[word >>> 16];
    if (t !== undefined) return t;
    const ids = dp.decode(word).deliver;
    const made = Int32Array.from(ids.length === 0 ? [DROPPED] : ids);
    row[word >>> 16] = made;
    targets.set(word, made);
    return made;
  };

  let n = 0;
  const flush = (): void => {
    open();
    if (n === 0) return;
    dp.classifyBurst(n);
    for (let i = 0; i < n; i++) {
      const w = verdicts[i]!;
      const t = route(w);
      const off = desc[2 * i]!;
      const len = desc[2 * i + 1]!;
      const rule = w & 0x1f;
      for (let k = 0; k < t.length; k++) {
        const id = t[k]!;
        frames[id]!++;
        bytes[id]! += len;
        rules[id * nr + rule]!++;
        const f = files[id];
        if (f === undefined) continue;
        const rec = records[i]!;
        if (rec >= 0) f.writer.writeRecord(pool, rec, len + 16);
        else f.writer.write(pool, off, len, secs[i]!, nanos[i]!, origs[i]!);
      }
    }
    n = 0;
  };

  try {
    const chunkView = pool.subarray(0, CHUNK);
    for (;;) {
      const got = await readChunk(fd, chunkView);
      if (got === 0) break;
      const chunk = got === CHUNK ? chunkView : pool.subarray(0, got);
      reader.push(chunk);
      let spill = CHUNK;
      // A little-endian pcap copied into pcap outputs of its own resolution keeps every record byte for byte.
      const verbatim = o.format === 'pcap' && reader.littleEndian && (reader.format === 'pcap' || reader.format === 'pcap-ns');
      while (reader.frames < limit && reader.next()) {
        if (reader.linkType !== LINKTYPE_ETHERNET) {
          otherLinkTypes.set(reader.linkType, (otherLinkTypes.get(reader.linkType) ?? 0) + 1);
          continue;
        }
        ethernet++;
        if (reader.seconds > maxSeconds) {
          const hint = o.format === 'pcapng' ? '' : '; --format pcapng holds it';
          throw new MacslotError('CAPTURE_INVALID', `${show(reader.name)} at byte offset ${reader.offset}: timestamp ${reader.seconds} s is past what a ${o.format} output holds (${maxSeconds} s)${hint}`);
        }
        const len = reader.capturedLength;
        let off = reader.dataOffset;
        let rec = -1;
        if (reader.buffer !== chunk) {
          pool.set(reader.data, spill);
          off = spill;
          spill += (len + 7) & ~7;
        } else if (verbatim && reader.originalLength >= len && reader.nanoseconds < 1e9) rec = off - 16;
        records[n] = rec;
        desc[2 * n] = off;
        desc[2 * n + 1] = len;
        secs[n] = reader.seconds;
        nanos[n] = reader.nanoseconds;
        origs[n] = reader.originalLength;
        if (++n === BURST) {
          flush();
          spill = CHUNK;
        }
      }
      // The next read overwrites the chunk, so every frame in it is classified and written first.
      flush();
      progress.update(reader.position, reader.frames);
      if (reader.frames >= limit) break;
    }
    // Stopped by --count, the rest of the input is left unread rather than checked.
    if (reader.frames < limit) reader.end();
    flush();
    progress.done();
    for (const f of files) f?.commit();
  } catch (err) {
    progress.done();
    abortAll();
    throw err;
  } finally {
    if (fd !== 0) closeSync(fd);
    dp.close();
    disarm();
  }

  const row = (id: number, name: string): FilterRow => {
    const r: Partial<Record<Rule, number>> = {};
    RULES.forEach((rule, k) => {
      const v = rules[id * nr + k]!;
      if (v > 0) r[rule] = v;
    });
    return { name, file: files[id] ? join(o.out, `${name}.${ext}`) : '', frames: frames[id]!, bytes: bytes[id]!, rules: r };
  };
  const report: FilterReport = {
    input: {
      file: o.capture,
      format: reader.format ?? 'unknown',
      frames: reader.frames,
      bytes: reader.position,
      ethernet,
      otherLinkTypes: Object.fromEntries([...otherLinkTypes].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v])),
      skippedBlocks: reader.skippedBlocks,
    },
    clients: clients.map((c) => row(c.id, names.get(c.id)!)),
    dropped: row(DROPPED, 'dropped'),
  };
  if (o.json) io.out(JSON.stringify(report, null, 2) + '\n');
  else io.out(formatReport(report) + '\n');
  return report;
}

const ruleList = (r: Partial<Record<Rule, number>>): string =>
  Object.entries(r)
    .map(([k, v]) => `${k} ${count(v)}`)
    .join(', ') || '-';

function formatReport(r: FilterReport): string {
  const i = r.input;
  const other = Object.entries(i.otherLinkTypes);
  const lines = [
    `${i.file}: ${i.format}, ${count(i.frames)} frames, ${count(i.bytes)} bytes`,
    `  Ethernet frames classified: ${count(i.ethernet)}`,
    `  other link types (counted, not classified): ${other.length === 0 ? 'none' : other.map(([k, v]) => `linktype ${k}: ${count(v)}`).join(', ')}`,
    `  pcapng blocks skipped: ${count(i.skippedBlocks)}`,
    '',
    table(
      ['client', 'frames', 'bytes', 'rules', 'file'],
      [...r.clients, r.dropped].map((c) => [c.name, count(c.frames), count(c.bytes), ruleList(c.rules), c.file || '-']),
    ),
  ];
  return lines.join('\n');
}
