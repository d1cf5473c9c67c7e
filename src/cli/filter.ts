// Command line: `macslot filter`, one pass over a capture that writes one capture per client through the Wasm data plane.

import { closeSync, fstatSync, mkdirSync, openSync, read } from 'node:fs';
import { join } from 'node:path';
import { LINKTYPE_ETHERNET, MAX_BLOCK, PCAP_MAX_SECONDS, PCAPNG_MAX_SECONDS, type CaptureFormat } from '../capture/format.js';
import { FrameBatch } from '../capture/batch.js';
import { CaptureFanout } from '../capture/fanout.js';
import { CaptureReader } from '../capture/reader.js';
import { verdictRuleId } from '../dataplane/verdict.js';
import { MacslotError, show } from '../errors.js';
import { RULES, type Rule } from '../filter/reference.js';
import { AtomicFile } from '../node/capture.js';
import { STDIO, count, dataPlaneFor, nicFromFile, progressBar, type Io } from './common.js';
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
  /** The client's VLANs, when the configuration uses VLANs (absent for the dropped row). */
  readonly vlans?: readonly number[];
}

/** What `macslot filter --json` prints. */
export interface FilterReport {
  readonly input: {
    readonly file: string;
    readonly format: string;
    readonly frames: number;
    readonly bytes: number;
    readonly ethernet: number;
    readonly otherLinkTypes: Record<string, number>;
    readonly skippedBlocks: number;
  };
  readonly clients: FilterRow[];
  readonly dropped: FilterRow;
}

// Input is read in chunks straight into the data plane's pool, two of them: one is filtered while the next is read.
const CHUNK = 1 << 20;
const BURST = 16384;
// Frames that straddle two chunks are copied here; it holds one largest block.
const SPILL = (MAX_BLOCK + 64 + 7) & ~7;
// Output buffers share the pool too, so each record is copied within one memory; this many bytes are shared out.
const OUTPUT_BYTES = 32 << 20;
const SAFE_NAME = /^[A-Za-z0-9._@+-]+$/;

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

/** Each output's buffer: an even share of OUTPUT_BYTES, 16 KiB to 1 MiB. */
function outputBufferBytes(outputs: number): number {
  const share = Math.floor(OUTPUT_BYTES / Math.max(outputs, 1) / 8) * 8;
  return Math.min(Math.max(share, 16 * 1024), 1 << 20);
}

/**
 * Verdict words to routes. The filter is fixed for the whole run, so a word always means the same receivers: each
 * distinct word is decoded once into a route (its receivers, its rule, the outputs written) and found again by an
 * open-addressing table in typed arrays. Frames and bytes are counted per route and spread over receivers at the end.
 */
class Routes {
  /** Outputs of route r: outputs[start[r] .. start[r + 1]). */
  start = new Int32Array(1);
  outputs = new Int32Array(0);
  frames = new Float64Array(0);
  bytes = new Float64Array(0);
  readonly receivers: number[][] = [];
  readonly rules: number[] = [];
  #keys = new Uint32Array(1024);
  #values = new Int32Array(1024);
  #shift = 22;
  readonly #decode: (word: number) => readonly number[];
  readonly #ruleOf: (word: number) => number;
  readonly #outputOf: (id: number) => number;

  constructor(decode: (word: number) => readonly number[], ruleOf: (word: number) => number, outputOf: (id: number) => number) {
    this.#decode = decode;
    this.#ruleOf = ruleOf;
    this.#outputOf = outputOf;
  }

  /** Returns the route of a verdict word, decoding it the first time. */
  find(word: number): number {
    const keys = this.#keys;
    const mask = keys.length - 1;
    for (let h = Math.imul(word, 0x9e3779b1) >>> this.#shift; ; h = (h + 1) & mask) {
      const v = this.#values[h]!;
      if (v === 0) return this.#add(word);
      if (keys[h] === word) return v - 1;
    }
  }

  #add(word: number): number {
    const r = this.rules.length;
    const ids = this.#decode(word);
    this.receivers.push([...ids]);
    this.rules.push(this.#ruleOf(word));
    const outs = ids.map(this.#outputOf).filter((x) => x >= 0);
    const start = new Int32Array(r + 2);
    start.set(this.start);
    start[r + 1] = start[r]! + outs.length;
    const outputs = new Int32Array(start[r + 1]!);
    outputs.set(this.outputs);
    outputs.set(outs, start[r]!);
    const frames = new Float64Array(r + 1);
    frames.set(this.frames);
    const bytes = new Float64Array(r + 1);
    bytes.set(this.bytes);
    this.start = start;
    this.outputs = outputs;
    this.frames = frames;
    this.bytes = bytes;
    if (2 * (r + 1) > this.#keys.length) this.#grow();
    this.#insert(word, r);
    return r;
  }

  #insert(word: number, r: number): void {
    const mask = this.#keys.length - 1;
    let h = Math.imul(word, 0x9e3779b1) >>> this.#shift;
    while (this.#values[h] !== 0) h = (h + 1) & mask;
    this.#keys[h] = word;
    this.#values[h] = r + 1;
  }

  #grow(): void {
    const keys = this.#keys;
    const values = this.#values;
    this.#keys = new Uint32Array(keys.length * 2);
    this.#values = new Int32Array(keys.length * 2);
    this.#shift--;
    for (let h = 0; h < keys.length; h++) if (values[h] !== 0) this.#insert(keys[h]!, values[h]! - 1);
  }
}

/** Runs the filter; returns the report (also printed). Throws CAPTURE_INVALID or CONFIG_INVALID; outputs never appear half-written. */
export async function runFilter(o: FilterOptions, io: Io): Promise<FilterReport> {
  // With VLANs, frames come in from the wire (port 'uplink') and are classified on (MAC, VID); each capture holds the frames
  // as they came, tags kept.
  const configured = nicFromFile(o.config, { vlans: true });
  const { nic, vlans } = configured;
  const clients = nic.clients();
  for (const c of clients) {
    if (!SAFE_NAME.test(c.name) || c.name === 'dropped')
      throw new MacslotError(
        'INVALID_ARGUMENT',
        `client name ${show(c.name)} cannot name an output file (letters, digits and . _ @ + - only; "dropped" is reserved)`,
      );
  }
  const maxId = Math.max(0, ...clients.map((c) => c.id)) + 1;
  const names = new Map(clients.map((c) => [c.id, c.name]));
  const DROPPED = maxId;
  // Output k is client k in the NIC's order, then the dropped frames when asked for; -1 for a receiver without a file.
  const outputOf = new Int32Array(maxId + 1).fill(-1);
  clients.forEach((c, k) => (outputOf[c.id] = k));
  if (o.dropped) outputOf[DROPPED] = clients.length;
  const outputs = clients.length + (o.dropped ? 1 : 0);
  const bufferBytes = outputBufferBytes(outputs);
  // The pool: two read chunks, the spill area, then the output buffers.
  const spillAt = 2 * CHUNK;
  const outputsAt = spillAt + SPILL;
  const poolBytes = outputsAt + CaptureFanout.storeBytes(outputs, bufferBytes);
  const dp = await dataPlaneFor(configured, { lanes: 1, burst: BURST, poolBytes, ringBytes: 4096, shared: false });
  const pool = dp.pool;
  const desc = dp.descriptors;
  const verdicts = dp.verdicts;
  const batch = new FrameBatch(BURST, { store: pool, spillOffset: spillAt, spillBytes: SPILL, descriptors: desc });
  const routeOf = new Int32Array(BURST);
  const routes = new Routes(
    (word) => {
      const ids = dp.decode(word).deliver;
      return ids.length === 0 ? [DROPPED] : ids;
    },
    verdictRuleId,
    (id) => outputOf[id] ?? -1,
  );
  const ext = o.format === 'pcapng' ? 'pcapng' : 'pcap';
  const files: AtomicFile[] = [];
  let fanout: CaptureFanout | undefined;
  const otherLinkTypes = new Map<number, number>();
  let ethernet = 0;

  const fd = o.capture === STDIO ? 0 : openSync(o.capture, 'r');
  const stat = fstatSync(fd);
  const size = stat.size;
  mkdirSync(o.out, { recursive: true });
  const reader = new CaptureReader(o.capture === STDIO ? 'standard input' : o.capture);
  const limit = o.count ?? Number.POSITIVE_INFINITY;
  const progress = progressBar(io, size);
  const maxSeconds = o.format === 'pcapng' ? PCAPNG_MAX_SECONDS : PCAP_MAX_SECONDS;
  // Whatever ends the run early (a signal, an error, an exit elsewhere), no partial output stays behind.
  const abortAll = (): void => files.forEach((f) => f.abort());
  const disarm = onInterrupt(abortAll);

  const open = (): void => {
    if (fanout !== undefined) return;
    // pcap keeps nanoseconds whenever the input had them.
    const format: CaptureFormat = o.format === 'pcapng' ? 'pcapng' : reader.format === 'pcap' ? 'pcap' : 'pcap-ns';
    for (const c of clients) files.push(new AtomicFile(join(o.out, `${c.name}.${ext}`)));
    if (o.dropped) files.push(new AtomicFile(join(o.out, `dropped.${ext}`)));
    const sinks = files.map((f) => (bytes: Uint8Array) => f.write(bytes));
    fanout = new CaptureFanout(sinks, { format, linkType: LINKTYPE_ETHERNET, bufferBytes, store: pool, storeOffset: outputsAt });
  };

  // One burst: classify every frame of the batch at once, route each by its verdict word, and write them all.
  const burst = (): void => {
    open();
    const n = batch.count;
    if (n === 0) return;
    dp.classifyBurst(n);
    const types = batch.linkType;
    const secs = batch.seconds;
    for (let i = 0; i < n; i++) {
      const type = types[i]!;
      if (type !== LINKTYPE_ETHERNET) {
        otherLinkTypes.set(type, (otherLinkTypes.get(type) ?? 0) + 1);
        routeOf[i] = -1;
        continue;
      }
      if (secs[i]! > maxSeconds) {
        const hint = o.format === 'pcapng' ? '' : '; --format pcapng holds it';
        const at = `${show(reader.name)} at byte offset ${batch.offset[i]}`;
        throw new MacslotError(
          'CAPTURE_INVALID',
          `${at}: timestamp ${secs[i]} s is past what a ${o.format} output holds (${maxSeconds} s)${hint}`,
        );
      }
      ethernet++;
      const r = routes.find(verdicts[i]!);
      routeOf[i] = r;
      routes.frames[r]!++;
      routes.bytes[r]! += desc[2 * i + 1]!;
    }
    fanout!.writeBatch(batch, routeOf, routes.start, routes.outputs);
    batch.reset();
  };

  // Regular files are read one chunk ahead; a pipe or FIFO is read only when needed, so nothing waits on it at the end.
  const ahead = stat.isFile();
  let half = 0;
  let pending: Promise<number> | undefined;
  try {
    pending = readChunk(fd, pool.subarray(0, CHUNK));
    for (;;) {
      const got = await pending!;
      pending = undefined;
      if (got === 0) break;
      const chunk = pool.subarray(half * CHUNK, half * CHUNK + got);
      half ^= 1;
      if (ahead) pending = readChunk(fd, pool.subarray(half * CHUNK, (half + 1) * CHUNK));
      reader.push(chunk);
      // Every frame of the chunk is classified and written before the chunk's half of the pool is read into again.
      while (reader.frames < limit && reader.nextBatch(batch, limit - reader.frames) > 0) burst();
      burst();
      progress.update(reader.position, reader.frames);
      if (reader.frames >= limit) break;
      if (!ahead) pending = readChunk(fd, pool.subarray(half * CHUNK, (half + 1) * CHUNK));
    }
    // Stopped by --count, the rest of the input is left unread rather than checked.
    if (reader.frames < limit) reader.end();
    burst();
    progress.done();
    fanout!.close();
    for (const f of files) f.commit();
  } catch (err) {
    progress.done();
    abortAll();
    throw err;
  } finally {
    // A read still in flight must end before its descriptor is closed (a regular file's read always ends).
    if (pending !== undefined) await pending.catch(() => 0);
    if (fd !== 0) closeSync(fd);
    dp.close();
    disarm();
  }

  const nr = RULES.length;
  const frames = new Float64Array(maxId + 1);
  const bytes = new Float64Array(maxId + 1);
  const rules = new Float64Array((maxId + 1) * nr);
  routes.receivers.forEach((ids, r) => {
    for (const id of ids) {
      frames[id]! += routes.frames[r]!;
      bytes[id]! += routes.bytes[r]!;
      rules[id * nr + routes.rules[r]!]! += routes.frames[r]!;
    }
  });
  const row = (id: number, name: string): FilterRow => {
    const r: Partial<Record<Rule, number>> = {};
    RULES.forEach((rule, k) => {
      const v = rules[id * nr + k]!;
      if (v > 0) r[rule] = v;
    });
    const file = outputOf[id]! >= 0 ? join(o.out, `${name}.${ext}`) : '';
    const own = id === DROPPED ? undefined : vlans?.get(id)?.vids;
    return { name, file, frames: frames[id]!, bytes: bytes[id]!, rules: r, ...(own !== undefined ? { vlans: own } : {}) };
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
  const vlanColumn = r.clients.some((c) => c.vlans !== undefined);
  const lines = [
    `${i.file}: ${i.format}, ${count(i.frames)} frames, ${count(i.bytes)} bytes`,
    `  Ethernet frames classified: ${count(i.ethernet)}`,
    `  other link types (counted, not classified): ` +
      `${other.length === 0 ? 'none' : other.map(([k, v]) => `linktype ${k}: ${count(v)}`).join(', ')}`,
    `  pcapng blocks skipped: ${count(i.skippedBlocks)}`,
    '',
    vlanColumn
      ? table(
          ['client', 'vlans', 'frames', 'bytes', 'rules', 'file'],
          [...r.clients, r.dropped].map((c) => [
            c.name,
            c.vlans?.join(', ') ?? '-',
            count(c.frames),
            count(c.bytes),
            ruleList(c.rules),
            c.file || '-',
          ]),
        )
      : table(
          ['client', 'frames', 'bytes', 'rules', 'file'],
          [...r.clients, r.dropped].map((c) => [c.name, count(c.frames), count(c.bytes), ruleList(c.rules), c.file || '-']),
        ),
  ];
  return lines.join('\n');
}
