// Capture files: the streaming pcap/pcapng reader and the writers, round trips, chunking, and a table of hostile files.
import { describe, expect, it } from 'vitest';
import {
  CaptureFanout,
  CaptureReader,
  CaptureWriter,
  FrameBatch,
  MAX_BLOCK,
  MAX_INTERFACES,
  MAX_RECORD,
  PCAPNG_MAX_SECONDS,
  PCAP_MAX_SECONDS,
  isMacslotError,
  scanCapture,
  type CaptureFormat,
} from 'macslot';

interface Rec {
  data: Uint8Array;
  sec: number;
  ns: number;
  orig?: number;
  linkType?: number;
  iface?: number;
}

const frame = (n: number, len = 60): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (n * 7 + i) & 0xff);

/** A pcap file built byte by byte, independent of the writer under test. */
function pcap(opts: { le: boolean; ns: boolean; snaplen?: number; linkType?: number }, recs: Rec[]): Uint8Array {
  const size = 24 + recs.reduce((a, r) => a + 16 + r.data.length, 0);
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  v.setUint32(0, opts.ns ? 0xa1b23c4d : 0xa1b2c3d4, opts.le);
  v.setUint16(4, 2, opts.le);
  v.setUint16(6, 4, opts.le);
  v.setUint32(16, opts.snaplen ?? 65535, opts.le);
  v.setUint32(20, opts.linkType ?? 1, opts.le);
  let p = 24;
  for (const r of recs) {
    v.setUint32(p, r.sec, opts.le);
    v.setUint32(p + 4, opts.ns ? r.ns : r.ns / 1000, opts.le);
    v.setUint32(p + 8, r.data.length, opts.le);
    v.setUint32(p + 12, r.orig ?? r.data.length, opts.le);
    b.set(r.data, p + 16);
    p += 16 + r.data.length;
  }
  return b;
}

/** pcapng blocks built by hand. */
const ng = {
  block(type: number, body: Uint8Array, le = true, lenOverride?: number, trailerOverride?: number): Uint8Array {
    const padded = (body.length + 3) & ~3;
    const len = 12 + padded;
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    v.setUint32(0, type, le);
    v.setUint32(4, lenOverride ?? len, le);
    b.set(body, 8);
    v.setUint32(len - 4, trailerOverride ?? len, le);
    return b;
  },
  shb(le = true): Uint8Array {
    const body = new Uint8Array(16);
    const v = new DataView(body.buffer);
    v.setUint32(0, 0x1a2b3c4d, le);
    v.setUint16(4, 1, le);
    v.setInt32(8, -1, le);
    v.setInt32(12, -1, le);
    return ng.block(0x0a0d0d0a, body, le);
  },
  idb(linkType: number, tsresol?: number, le = true, snaplen = 0): Uint8Array {
    const body = new Uint8Array(8 + (tsresol === undefined ? 0 : 12));
    const v = new DataView(body.buffer);
    v.setUint16(0, linkType, le);
    v.setUint32(4, snaplen, le);
    if (tsresol !== undefined) {
      v.setUint16(8, 9, le);
      v.setUint16(10, 1, le);
      v.setUint8(12, tsresol);
    }
    return ng.block(1, body, le);
  },
  epb(iface: number, hi: number, lo: number, data: Uint8Array, orig = data.length, le = true): Uint8Array {
    const body = new Uint8Array(20 + ((data.length + 3) & ~3));
    const v = new DataView(body.buffer);
    v.setUint32(0, iface, le);
    v.setUint32(4, hi, le);
    v.setUint32(8, lo, le);
    v.setUint32(12, data.length, le);
    v.setUint32(16, orig, le);
    body.set(data, 20);
    return ng.block(6, body, le);
  },
  spb(data: Uint8Array, le = true): Uint8Array {
    const body = new Uint8Array(4 + ((data.length + 3) & ~3));
    new DataView(body.buffer).setUint32(0, data.length, le);
    body.set(data, 4);
    return ng.block(3, body, le);
  },
  opb(iface: number, hi: number, lo: number, data: Uint8Array, le = true): Uint8Array {
    const body = new Uint8Array(20 + ((data.length + 3) & ~3));
    const v = new DataView(body.buffer);
    v.setUint16(0, iface, le);
    v.setUint32(4, hi, le);
    v.setUint32(8, lo, le);
    v.setUint32(12, data.length, le);
    v.setUint32(16, data.length, le);
    body.set(data, 20);
    return ng.block(2, body, le);
  },
};
const hi = (t: bigint): number => Number(t >> 32n);
const lo = (t: bigint): number => Number(t & 0xffff_ffffn);
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), (o += p.length);
  return out;
};

interface Got {
  data: number[];
  sec: number;
  ns: number;
  orig: number;
  linkType: number;
  iface: number;
  offset: number;
}
function readAll(bytes: Uint8Array, chunk = bytes.length || 1, name = 'test.pcap'): { frames: Got[]; reader: CaptureReader } {
  const reader = new CaptureReader(name);
  const frames: Got[] = [];
  for (let o = 0; o < bytes.length; o += chunk) {
    reader.push(bytes.subarray(o, o + chunk));
    while (reader.next())
      frames.push({
        data: [...reader.data],
        sec: reader.seconds,
        ns: reader.nanoseconds,
        orig: reader.originalLength,
        linkType: reader.linkType,
        iface: reader.interfaceId,
        offset: reader.offset,
      });
  }
  reader.end();
  return { frames, reader };
}

const RECS: Rec[] = [
  { data: frame(1), sec: 1_700_000_000, ns: 123_456_000 },
  { data: frame(2, 14), sec: 1_700_000_001, ns: 999_999_000 },
  { data: frame(3, 1514), sec: 0xffff_fffe, ns: 0 },
  { data: frame(4, 0), sec: 5, ns: 1000 },
];

describe('pcap reading', () => {
  it.each([
    { le: true, ns: false },
    { le: false, ns: false },
    { le: true, ns: true },
    { le: false, ns: true },
  ])('reads le=$le ns=$ns with every frame, timestamp and offset', ({ le, ns }) => {
    const { frames, reader } = readAll(pcap({ le, ns }, RECS));
    expect(reader.format).toBe(ns ? 'pcap-ns' : 'pcap');
    expect(frames.map((f) => f.data)).toEqual(RECS.map((r) => [...r.data]));
    expect(frames.map((f) => [f.sec, f.ns])).toEqual(RECS.map((r) => [r.sec, r.ns]));
    expect(frames.map((f) => f.offset)).toEqual([24, 24 + 76, 24 + 76 + 30, 24 + 76 + 30 + 1530]);
  });

  it('keeps nanoseconds that a microsecond file cannot hold apart', () => {
    const { frames } = readAll(pcap({ le: true, ns: true }, [{ data: frame(1), sec: 1, ns: 123_456_789 }]));
    expect(frames[0]!.ns).toBe(123_456_789);
  });

  it('reports snaplen truncation: captured bytes below the original length', () => {
    const { frames } = readAll(pcap({ le: true, ns: false, snaplen: 40 }, [{ data: frame(1, 40), sec: 1, ns: 0, orig: 1514 }]));
    expect(frames[0]!.data.length).toBe(40);
    expect(frames[0]!.orig).toBe(1514);
  });

  it('gives the same frames for every chunk size, records straddling chunks included', () => {
    const bytes = pcap({ le: true, ns: false }, RECS);
    const whole = readAll(bytes).frames;
    for (const chunk of [1, 2, 3, 7, 16, 17, 24, 100, 1531]) expect(readAll(bytes, chunk).frames).toEqual(whole);
  });

  it('reports link types other than Ethernet on every frame', () => {
    const { frames } = readAll(pcap({ le: true, ns: false, linkType: 101 }, RECS));
    expect(new Set(frames.map((f) => f.linkType))).toEqual(new Set([101]));
  });

  it('refuses push() before the previous chunk is drained', () => {
    const r = new CaptureReader('x');
    r.push(pcap({ le: true, ns: false }, RECS));
    expect(r.next()).toBe(true);
    expect(() => r.push(new Uint8Array(4))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('scanCapture reads async chunks and returns totals', async () => {
    const bytes = pcap({ le: true, ns: false }, RECS);
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let o = 0; o < bytes.length; o += 33) yield bytes.slice(o, o + 33);
    }
    let n = 0;
    const s = await scanCapture(chunks(), 'a.pcap', () => void n++);
    expect(s).toEqual({ format: 'pcap', frames: 4, bytes: bytes.length, skippedBlocks: 0, sections: 0 });
    expect(n).toBe(4);
  });
});

describe('pcapng reading', () => {
  const f1 = frame(1);
  const f2 = frame(2, 61);
  const f3 = frame(3, 100);
  it('reads several interfaces with their own link type and if_tsresol, several sections, SPB, OPB, and counts unknown blocks', () => {
    const bytes = concat(
      ng.shb(),
      ng.idb(1), // µs by default
      ng.idb(1, 9), // ns
      ng.idb(101, 3), // ms, raw IP
      ng.epb(0, hi(1_700_000_000_123_456n), lo(1_700_000_000_123_456n), f1), // µs
      ng.block(0x0000_0bad, new Uint8Array(8)), // unknown: skipped and counted
      ng.epb(1, hi(1_700_000_000_123_456_789n), lo(1_700_000_000_123_456_789n), f2), // ns
      ng.epb(2, hi(1_700_000_000_123n), lo(1_700_000_000_123n), f3), // ms
      ng.block(5, new Uint8Array(12)), // interface statistics: skipped
      ng.shb(false), // a big-endian section: interfaces start over
      ng.idb(1, 6, false, 64),
      ng.spb(frame(4, 80), false),
      ng.opb(0, 0, 5_000_001, f1, false),
    );
    for (const chunk of [bytes.length, 1, 5, 64]) {
      const { frames, reader } = readAll(bytes, chunk, 'multi.pcapng');
      expect(reader.format).toBe('pcapng');
      expect(reader.sections).toBe(2);
      expect(reader.skippedBlocks).toBe(2);
      expect(frames.map((f) => [f.iface, f.linkType, f.sec, f.ns, f.data.length, f.orig])).toEqual([
        [0, 1, 1_700_000_000, 123_456_000, 60, 60],
        [1, 1, 1_700_000_000, 123_456_789, 61, 61],
        [2, 101, 1_700_000_000, 123_000_000, 100, 100],
        [0, 1, 0, 0, 64, 80], // SPB: cut to the interface's snaplen, no timestamp
        [0, 1, 5, 1000, 60, 60],
      ]);
      expect(frames[1]!.data).toEqual([...f2]);
    }
  });

  it('reads binary (power of two) timestamp resolutions', () => {
    const bytes = concat(ng.shb(), ng.idb(1, 0x80 | 10), ng.epb(0, 0, 3 * 1024 + 512, f1));
    const { frames } = readAll(bytes);
    expect([frames[0]!.sec, frames[0]!.ns]).toEqual([3, 500_000_000]);
  });
});

describe('writers', () => {
  it.each(['pcap', 'pcap-ns', 'pcapng'] as CaptureFormat[])('%s round-trips frames, timestamps and original lengths', (format) => {
    const parts: Uint8Array[] = [];
    const w = new CaptureWriter((b) => parts.push(b.slice()), { format, bufferBytes: 1 });
    const recs = [...RECS, { data: frame(9, 70), sec: 1, ns: 1000, orig: 1500 }];
    for (const r of recs) w.writeFrame(r.data, r.sec, r.ns, r.orig);
    const size = w.close();
    const file = concat(...parts);
    expect(file.length).toBe(size);
    const { frames, reader } = readAll(file);
    expect(reader.format).toBe(format);
    expect(frames.map((f) => [f.data, f.sec, f.ns, f.orig])).toEqual(recs.map((r) => [[...r.data], r.sec, r.ns, r.orig ?? r.data.length]));
  });

  it('cuts frames at snaplen and keeps their original length', () => {
    const parts: Uint8Array[] = [];
    const w = new CaptureWriter((b) => parts.push(b.slice()), { snaplen: 20 });
    w.writeFrame(frame(1, 60));
    w.close();
    const { frames } = readAll(concat(...parts));
    expect([frames[0]!.data.length, frames[0]!.orig]).toEqual([20, 60]);
  });

  it('keeps 64-bit nanosecond pcapng timestamps exact', () => {
    const parts: Uint8Array[] = [];
    const w = new CaptureWriter((b) => parts.push(b.slice()), { format: 'pcapng' });
    w.writeFrame(frame(1), 0xffff_ffff, 999_999_999);
    w.close();
    const { frames } = readAll(concat(...parts));
    expect([frames[0]!.sec, frames[0]!.ns]).toEqual([0xffff_ffff, 999_999_999]);
  });

  it('writes pcapng timestamps beyond 2^32 s exactly, up to what its 64-bit nanosecond count holds; pcap stops at 2^32 - 1 s', () => {
    const parts: Uint8Array[] = [];
    const w = new CaptureWriter((b) => parts.push(b.slice()), { format: 'pcapng' });
    w.writeFrame(frame(1), 2 ** 32 + 5, 123_456_789);
    w.writeFrame(frame(2), PCAPNG_MAX_SECONDS, 999_999_999);
    expect(() => w.writeFrame(frame(3), PCAPNG_MAX_SECONDS + 1)).toThrow(/INVALID_ARGUMENT.*pcapng.*18446744072/);
    w.close();
    expect(readAll(concat(...parts)).frames.map((f) => [f.sec, f.ns])).toEqual([
      [2 ** 32 + 5, 123_456_789],
      [PCAPNG_MAX_SECONDS, 999_999_999],
    ]);
    const p = new CaptureWriter(() => {});
    p.writeFrame(frame(1), PCAP_MAX_SECONDS);
    expect(() => p.writeFrame(frame(1), PCAP_MAX_SECONDS + 1)).toThrow(/INVALID_ARGUMENT.*pcap file holds \(0\.\.4294967295 s/);
  });

  it('refuses bad timestamps, lengths and formats with the value in the message', () => {
    const w = new CaptureWriter(() => {});
    expect(() => w.writeFrame(frame(1), -1)).toThrow(/INVALID_ARGUMENT.*-1/);
    expect(() => w.write(frame(1), 50, 20)).toThrow(/INVALID_ARGUMENT.*"offset":50/);
    expect(() => new CaptureWriter(() => {}, { format: 'erf' as CaptureFormat })).toThrow(/"erf"/);
  });

  it.each([{ ns: false }, { ns: true }])('writeRecord copies pcap records byte for byte (ns: $ns)', ({ ns }) => {
    const recs = [
      { data: frame(1, 64), sec: 5, ns: 7000 },
      { data: frame(2, 61), sec: 6, ns: 9000, orig: 1500 },
      { data: frame(3, 300), sec: 7, ns: 0 },
    ];
    const src = pcap({ le: true, ns }, recs);
    const parts: Uint8Array[] = [];
    const w = new CaptureWriter((b) => parts.push(b.slice()), { format: ns ? 'pcap-ns' : 'pcap', bufferBytes: 1 });
    let p = 24;
    for (const r of recs) {
      w.writeRecord(src, p, 16 + r.data.length);
      p += 16 + r.data.length;
    }
    expect(w.close()).toBe(src.length);
    // The file headers differ only in snaplen; every record is the source's, byte for byte.
    expect(concat(...parts).subarray(24)).toEqual(src.subarray(24));
    expect(readAll(concat(...parts)).frames.map((f) => [f.data, f.sec, f.ns, f.orig])).toEqual(
      recs.map((r) => [[...r.data], r.sec, r.ns, r.orig ?? r.data.length]),
    );
  });

  it('writeRecord refuses pcapng, windows outside the source, and windows that are not one record', () => {
    const src = pcap({ le: true, ns: false }, [{ data: frame(1, 60), sec: 1, ns: 0 }]);
    expect(() => new CaptureWriter(() => {}, { format: 'pcapng' }).writeRecord(src, 24, 76)).toThrow(/INVALID_ARGUMENT.*pcapng/);
    expect(() => new CaptureWriter(() => {}).writeRecord(src, 30, 76)).toThrow(/INVALID_ARGUMENT.*"offset":30/);
    expect(() => new CaptureWriter(() => {}).writeRecord(src, 24, 70)).toThrow(/INVALID_ARGUMENT.*60-byte frame/);
    expect(() => new CaptureWriter(() => {}, { snaplen: 20 }).writeRecord(src, 24, 76)).toThrow(/INVALID_ARGUMENT.*at most 20 bytes/);
  });
});

// One named test per malformed case. Each must name the file and the byte offset, and never hang.
const good = pcap({ le: true, ns: false }, RECS.slice(0, 2));
const setU32 = (b: Uint8Array, at: number, v: number, le = true): Uint8Array => {
  const c = b.slice();
  new DataView(c.buffer).setUint32(at, v, le);
  return c;
};
const ngGood = concat(ng.shb(), ng.idb(1), ng.epb(0, 0, 0, frame(1)));
const HOSTILE: { name: string; bytes: Uint8Array; offset: number; message: RegExp }[] = [
  { name: 'wrong magic', bytes: setU32(good, 0, 0x12345678), offset: 0, message: /magic 0x12345678/ },
  { name: 'ns-3 3.24 wrong nanosecond magic', bytes: setU32(good, 0, 0xa1b23cd4), offset: 0, message: /magic 0xa1b23cd4/ },
  { name: 'empty file', bytes: new Uint8Array(0), offset: 0, message: /truncated header/ },
  { name: 'truncated pcap header', bytes: good.subarray(0, 20), offset: 0, message: /truncated header: 20 of 24/ },
  { name: 'truncated record header', bytes: good.subarray(0, 24 + 10), offset: 24, message: /truncated record: 10 of 16/ },
  { name: 'truncated record data', bytes: good.subarray(0, 24 + 16 + 30), offset: 24, message: /truncated record: 46 of 76/ },
  {
    name: 'pcap record length above 256 KiB',
    bytes: setU32(good, 24 + 8, MAX_RECORD + 1),
    offset: 24,
    message: /record length 262145 is above/,
  },
  { name: 'pcap record length of 4 GiB', bytes: setU32(good, 24 + 8, 0xffff_ffff), offset: 24, message: /record length 4294967295/ },
  { name: 'pcap version other than 2', bytes: setU32(good, 4, 0x0004_0001), offset: 4, message: /version 1/ },
  {
    name: 'pcapng block length not a multiple of 4',
    bytes: setU32(ngGood, 28 + 4, 30),
    offset: 32,
    message: /block length 30 is not a multiple of 4/,
  },
  {
    name: 'pcapng block trailer disagrees with its header',
    bytes: setU32(ngGood, 28 + 20 - 4, 24),
    offset: 44,
    message: /trailer length 24 disagrees with its header length 20/,
  },
  {
    name: 'pcapng zero block length (would loop)',
    bytes: setU32(ngGood, 28 + 4, 0),
    offset: 32,
    message: /block length 0 is below the 12-byte minimum/,
  },
  {
    name: 'pcapng block length of 4 GiB',
    bytes: setU32(ngGood, 48 + 4, 0xffff_fffc),
    offset: 52,
    message: /block length 4294967292 is above/,
  },
  {
    name: 'pcapng captured length above 256 KiB',
    bytes: setU32(ngGood, 48 + 20, MAX_RECORD + 4),
    offset: 68,
    message: /captured length 262148 is above/,
  },
  {
    name: 'pcapng captured length past its block',
    bytes: setU32(ngGood, 48 + 20, 64),
    offset: 68,
    message: /captured length 64 runs past its 92-byte block/,
  },
  {
    name: 'pcapng packet on an undescribed interface',
    bytes: setU32(ngGood, 48 + 8, 3),
    offset: 56,
    message: /interface 3 is not described/,
  },
  { name: 'pcapng bad byte-order magic', bytes: setU32(ngGood, 8, 0x11223344), offset: 8, message: /byte-order magic 0x11223344/ },
  { name: 'pcapng truncated block', bytes: ngGood.subarray(0, ngGood.length - 3), offset: 48, message: /truncated block: 89 of 92/ },
  {
    name: 'pcap microsecond fraction of a whole second',
    bytes: setU32(good, 24 + 16 + 60 + 4, 1_000_000),
    offset: 24 + 16 + 60 + 4,
    message: /microsecond fraction 1000000 is not below 1,000,000/,
  },
  {
    name: 'pcap microsecond fraction of 4 G (big-endian)',
    bytes: setU32(pcap({ le: false, ns: false }, RECS.slice(0, 1)), 28, 0xffff_ffff, false),
    offset: 28,
    message: /microsecond fraction 4294967295/,
  },
  {
    name: 'pcap nanosecond fraction of a whole second',
    bytes: setU32(pcap({ le: true, ns: true }, RECS.slice(0, 1)), 28, 1_000_000_000),
    offset: 28,
    message: /nanosecond fraction 1000000000 is not below 1,000,000,000/,
  },
  {
    name: 'pcapng timestamp too far in the future to hold exactly (resolution 1 s)',
    bytes: concat(ng.shb(), ng.idb(1, 0), ng.epb(0, 0xffff_ffff, 0xffff_ffff, frame(1))),
    offset: 28 + 32 + 12,
    message: /timestamp of \d+ s is too far in the future/,
  },
  {
    name: 'pcapng option running past its block',
    bytes: concat(ng.shb(), ng.block(1, Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 200, 0]))),
    offset: 44,
    message: /option 9 of length 200 runs past/,
  },
];

describe('hostile files', () => {
  it.each(HOSTILE)('$name', ({ bytes, offset, message }) => {
    for (const chunk of [bytes.length || 1, 3]) {
      let err: unknown;
      try {
        readAll(bytes, chunk, 'evil.pcap');
      } catch (e) {
        err = e;
      }
      expect(isMacslotError(err, 'CAPTURE_INVALID')).toBe(true);
      expect((err as Error).message).toContain(`"evil.pcap" at byte offset ${offset}:`);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('throws on a bogus 4 GiB length as soon as the 16-byte header arrives, before buffering anything more', () => {
    const r = new CaptureReader('evil.pcap');
    r.push(setU32(good, 24 + 8, 0xffff_fff0).subarray(0, 24 + 16));
    expect(() => r.next()).toThrow(/CAPTURE_INVALID/);
  });

  it(`keeps memory constant: a section describing more than ${MAX_INTERFACES} interfaces fails at the first one too many`, () => {
    const idb = ng.idb(1);
    const head = ng.shb();
    const bytes = new Uint8Array(head.length + (MAX_INTERFACES + 2) * idb.length);
    bytes.set(head, 0);
    for (let i = 0; i < MAX_INTERFACES + 2; i++) bytes.set(idb, head.length + i * idb.length);
    const tooMany = head.length + MAX_INTERFACES * idb.length;
    for (const chunk of [1 << 16, 4093]) {
      let err: unknown;
      try {
        readAll(bytes, chunk, 'many.pcapng');
      } catch (e) {
        err = e;
      }
      expect(isMacslotError(err, 'CAPTURE_INVALID')).toBe(true);
      expect((err as Error).message).toContain(
        `"many.pcapng" at byte offset ${tooMany}: more than ${MAX_INTERFACES} interfaces in one section`,
      );
    }
    // Exactly the cap is fine, the last interface included; a new section starts counting again.
    const full = concat(bytes.subarray(0, tooMany), ng.opb(MAX_INTERFACES - 1, 0, 7, frame(1)), ng.shb(), idb, ng.epb(0, 0, 9, frame(2)));
    expect(readAll(full, 1 << 16).frames.map((f) => [f.iface, f.ns])).toEqual([
      [MAX_INTERFACES - 1, 7000],
      [0, 9000],
    ]);
  });

  it('advances through 2^18 zero-length records without hanging', () => {
    const bytes = pcap(
      { le: true, ns: false },
      Array.from({ length: 1 << 18 }, () => ({ data: new Uint8Array(0), sec: 0, ns: 0 })),
    );
    expect(readAll(bytes, 1 << 16).reader.frames).toBe(1 << 18);
  });
});

/** Reads `bytes` in chunks through `nextBatch`; with `inStore`, each chunk is first placed in the batch's store (zero-copy). */
function readBatches(
  bytes: Uint8Array,
  chunk: number,
  capacity: number,
  inStore: boolean,
): { frames: Omit<Got, 'iface'>[]; records: number } {
  const region = Math.max(chunk, 1);
  const store = new Uint8Array(region + MAX_BLOCK + 64);
  const batch = new FrameBatch(capacity, { store, spillOffset: region + 64 });
  const reader = new CaptureReader('evil.pcap');
  const frames: Omit<Got, 'iface'>[] = [];
  let records = 0;
  const drain = (): void => {
    for (let i = 0; i < batch.count; i++) {
      const at = batch.descriptors[2 * i]!;
      const len = batch.descriptors[2 * i + 1]!;
      const rec = batch.record[i]!;
      if (rec >= 0) {
        // A whole record: its header says this frame's length, and the frame follows it.
        expect(new DataView(store.buffer).getUint32(rec + 8, true)).toBe(len);
        expect(rec + 16).toBe(at);
        records++;
      }
      frames.push({
        data: [...store.subarray(at, at + len)],
        sec: batch.seconds[i]!,
        ns: batch.nanoseconds[i]!,
        orig: batch.originalLength[i]!,
        linkType: batch.linkType[i]!,
        offset: batch.offset[i]!,
      });
    }
    batch.reset();
  };
  for (let o = 0; o < bytes.length; o += region) {
    const part = bytes.subarray(o, o + region);
    if (inStore) store.set(part, 0);
    reader.push(inStore ? store.subarray(0, part.length) : part);
    while (reader.nextBatch(batch) > 0) drain();
  }
  reader.end();
  return { frames, records };
}

const withoutIface = (frames: Got[]): Omit<Got, 'iface'>[] => frames.map(({ iface: _, ...f }) => f);

const BATCH_INPUTS: { name: string; bytes: Uint8Array; records: boolean }[] = [
  { name: 'pcap, little-endian, microseconds', bytes: pcap({ le: true, ns: false }, RECS), records: true },
  { name: 'pcap, little-endian, nanoseconds', bytes: pcap({ le: true, ns: true }, RECS), records: true },
  { name: 'pcap, big-endian', bytes: pcap({ le: false, ns: false }, RECS), records: false },
  { name: 'pcap of another link type', bytes: pcap({ le: true, ns: false, linkType: 101 }, RECS), records: true },
  // Copied frames fill the spill area after three: the fourth ends the batch and starts the next.
  {
    name: 'pcap of 100,000-byte frames',
    bytes: pcap(
      { le: true, ns: false },
      [1, 2, 3, 4, 5].map((n) => ({ data: frame(n, 100_000), sec: n, ns: 0 })),
    ),
    records: true,
  },
  {
    name: 'pcapng: sections, interfaces, EPB, SPB, OPB and an unknown block',
    bytes: concat(
      ng.shb(),
      ng.idb(1, 9),
      ng.idb(101),
      ng.epb(0, 0, 1_500_000_001, frame(1)),
      ng.block(0x0bad, new Uint8Array(8)),
      ng.spb(frame(2, 33)),
      ng.shb(false),
      ng.idb(1, undefined, false),
      ng.opb(0, 0, 7_000_001, frame(3), false),
      ng.epb(0, 0, 3, frame(4, 1514), 1514, false),
    ),
    records: false,
  },
];

describe('batches', () => {
  it.each(BATCH_INPUTS)('nextBatch gives what next() gives, for every chunk size and capacity: $name', ({ bytes, records }) => {
    const want = withoutIface(readAll(bytes).frames);
    for (const chunk of bytes.length > 100_000 ? [4099, 65_536, bytes.length] : [1, 3, 17, 100, bytes.length])
      for (const capacity of [1, 2, 1000])
        for (const inStore of [true, false]) {
          const got = readBatches(bytes, chunk, capacity, inStore);
          expect(got.frames, `chunk ${chunk}, capacity ${capacity}, in store ${inStore}`).toEqual(want);
          // Whole records are described only where they lie in the store, and only for little-endian pcap.
          if (!records || !inStore) expect(got.records).toBe(0);
          if (records && inStore && chunk === bytes.length) expect(got.records).toBe(want.length);
        }
  });

  it.each(HOSTILE)('a malformed file fails as next() fails, at the same offset: $name', ({ bytes, offset, message }) => {
    for (const chunk of [bytes.length || 1, 3])
      for (const inStore of [true, false]) {
        let err: unknown;
        try {
          readBatches(bytes, chunk, 1000, inStore);
        } catch (e) {
          err = e;
        }
        expect(isMacslotError(err, 'CAPTURE_INVALID')).toBe(true);
        expect((err as Error).message).toContain(`"evil.pcap" at byte offset ${offset}:`);
        expect((err as Error).message).toMatch(message);
      }
  });

  it('ends a batch before a malformed record that follows good ones; the next call throws', () => {
    const bytes = setU32(
      pcap({ le: true, ns: false }, [...RECS, ...RECS]),
      24 + RECS.reduce((a, r) => a + 16 + r.data.length, 0) + 8,
      MAX_RECORD + 1,
    );
    const store = new Uint8Array(bytes.length + MAX_BLOCK);
    store.set(bytes);
    const batch = new FrameBatch(100, { store, spillOffset: bytes.length });
    const reader = new CaptureReader('evil.pcap');
    reader.push(store.subarray(0, bytes.length));
    expect(reader.nextBatch(batch)).toBe(RECS.length);
    expect(reader.frames).toBe(RECS.length);
    batch.reset();
    expect(() => reader.nextBatch(batch)).toThrow(/record length 262145 is above/);
  });

  it('stops at max frames, and the reader fields describe the last frame added', () => {
    const bytes = pcap({ le: true, ns: false }, RECS);
    const batch = new FrameBatch(100);
    const reader = new CaptureReader('t.pcap');
    reader.push(bytes);
    expect(reader.nextBatch(batch, 2)).toBe(2);
    expect(reader.frames).toBe(2);
    expect([reader.capturedLength, reader.seconds, reader.nanoseconds]).toEqual([RECS[1]!.data.length, RECS[1]!.sec, RECS[1]!.ns]);
    expect(reader.nextBatch(batch, 0)).toBe(0);
    expect(reader.nextBatch(batch)).toBe(RECS.length - 2);
    expect(batch.count).toBe(RECS.length);
  });

  it('a frame with no room in the spill area is kept for the next batch, and push() waits for it', () => {
    const bytes = pcap(
      { le: true, ns: false },
      [1, 2, 3, 4].map((n) => ({ data: frame(n, 100_000), sec: n, ns: 0 })),
    );
    const batch = new FrameBatch(100);
    const reader = new CaptureReader('t.pcap');
    reader.push(bytes);
    expect(reader.nextBatch(batch)).toBe(3);
    expect(() => reader.push(new Uint8Array(0))).toThrow(/a frame nextBatch\(\) read is not yet returned/);
    batch.reset();
    expect(reader.nextBatch(batch)).toBe(1);
    expect(batch.seconds[0]).toBe(4);
    expect(reader.nextBatch(batch)).toBe(0);
    reader.end();
  });

  it('refuses areas that do not fit', () => {
    expect(() => new FrameBatch(0)).toThrow(/INVALID_ARGUMENT/);
    expect(() => new FrameBatch(4, { spillBytes: 100 })).toThrow(/below one largest block/);
    expect(() => new FrameBatch(4, { store: new Uint8Array(MAX_BLOCK), spillOffset: 8 })).toThrow(/outside its/);
    expect(() => new FrameBatch(4, { descriptors: new Uint32Array(7) })).toThrow(/cannot describe 4 frames/);
  });
});

describe('fanout', () => {
  // Route 0: output 0; route 1: outputs 1 and 0; route 2: nobody; -1: not routed.
  const ROUTE_START = Int32Array.from([0, 1, 3, 3]);
  const ROUTE_OUTPUTS = Int32Array.from([0, 1, 0]);
  const routeOf = (i: number): number => [0, 1, 2, -1][i % 4]!;
  const big = { data: frame(5, 5000), sec: 9, ns: 0 };
  const INPUTS = [
    {
      name: 'little-endian pcap',
      bytes: pcap({ le: true, ns: false }, [...RECS, big, ...RECS, { data: frame(6, 80), sec: 2, ns: 3000, orig: 40 }]),
    },
    { name: 'little-endian pcap-ns', bytes: pcap({ le: true, ns: true }, [...RECS, big, ...RECS]) },
    { name: 'big-endian pcap', bytes: pcap({ le: false, ns: false }, [...RECS, big]) },
    {
      name: 'pcapng',
      bytes: concat(ng.shb(), ng.idb(1, 9), ng.epb(0, 0, 1_500_000_001, frame(1)), ng.spb(frame(2, 33)), ng.epb(0, 1, 3, frame(5, 5000))),
    },
  ];
  const cases = INPUTS.flatMap((input) =>
    (['pcap', 'pcap-ns', 'pcapng'] as CaptureFormat[]).flatMap((format) =>
      [4096, 1 << 16].flatMap((bufferBytes) =>
        [true, false].map((shared) => ({ ...input, format, bufferBytes, shared, snaplen: shared ? MAX_RECORD : 1000 })),
      ),
    ),
  );

  it.each(cases)(
    'writes what CaptureWriter writes: $name as $format, $bufferBytes-byte buffers, same store $shared, snaplen $snaplen',
    ({ bytes, format, bufferBytes, shared, snaplen }) => {
      const outputs = 2;
      const spillOffset = (bytes.length + 7) & ~7;
      const storeOffset = spillOffset + MAX_BLOCK;
      const store = new Uint8Array(storeOffset + outputs * bufferBytes);
      store.set(bytes);
      const batch = new FrameBatch(1000, { store, spillOffset });
      const parts: Uint8Array[][] = [[], []];
      const fan = new CaptureFanout(
        parts.map((p) => (b: Uint8Array) => p.push(b.slice())),
        { format, bufferBytes, snaplen, ...(shared ? { store, storeOffset } : {}) },
      );
      const reader = new CaptureReader('t');
      reader.push(store.subarray(0, bytes.length));
      const routes = new Int32Array(1000);
      const want = parts.map(() => [] as Uint8Array[]);
      const writers = want.map((p) => new CaptureWriter((b) => p.push(b.slice()), { format, snaplen }));
      while (reader.nextBatch(batch) > 0) {
        for (let i = 0; i < batch.count; i++) {
          const r = routeOf(i);
          routes[i] = r;
          if (r < 0) continue;
          for (let k = ROUTE_START[r]!; k < ROUTE_START[r + 1]!; k++) {
            writers[ROUTE_OUTPUTS[k]!]!.write(
              store,
              batch.descriptors[2 * i]!,
              batch.descriptors[2 * i + 1]!,
              batch.seconds[i]!,
              batch.nanoseconds[i]!,
              batch.originalLength[i]!,
            );
          }
        }
        fan.writeBatch(batch, routes, ROUTE_START, ROUTE_OUTPUTS);
        batch.reset();
      }
      reader.end();
      fan.close();
      writers.forEach((w) => w.close());
      for (let o = 0; o < outputs; o++) {
        expect(concat(...parts[o]!)).toEqual(concat(...want[o]!));
        expect(fan.bytes[o]).toBe(writers[o]!.bytes);
        expect(fan.frames[o]).toBe(writers[o]!.frames);
      }
      expect(fan.frames[0]).toBeGreaterThan(0);
    },
  );

  it('refuses bad options, outputs out of range, timestamps a format cannot hold, and writes after close', () => {
    expect(() => new CaptureFanout([], { bufferBytes: 4100 })).toThrow(/bufferBytes 4100/);
    expect(() => new CaptureFanout([() => {}], { store: new Uint8Array(4096), storeOffset: 8, bufferBytes: 4096 })).toThrow(/do not fit/);
    expect(() => new CaptureFanout([], { format: 'pcapx' as CaptureFormat })).toThrow(/capture format/);
    const bytes = pcap({ le: false, ns: false }, [{ data: frame(1), sec: 1, ns: 0 }]);
    const batch = new FrameBatch(4);
    const reader = new CaptureReader('t');
    reader.push(bytes);
    reader.nextBatch(batch);
    const fan = new CaptureFanout([() => {}]);
    expect(() => fan.writeBatch(batch, Int32Array.of(0), Int32Array.of(0, 1), Int32Array.of(1))).toThrow(/output 1 is not 0..0/);
    batch.seconds[0] = PCAP_MAX_SECONDS + 1;
    expect(() => fan.writeBatch(batch, Int32Array.of(0), Int32Array.of(0, 1), Int32Array.of(0))).toThrow(
      /timestamp .* is outside what a pcap file holds/,
    );
    fan.close();
    expect(() => fan.writeBatch(batch, Int32Array.of(-1), Int32Array.of(0), Int32Array.of())).toThrow(/write after close/);
  });
});
