// Device filters: the Wasm stage (assembly/device.ts) on its own ordinary memory, and the base every device profile
// extends: single frames, zero-copy bursts, counters.

import { decodeBase64 } from '../dataplane/module.js';
import { MacslotError, show } from '../errors.js';
import { Mac, type MacLike } from '../wire/mac.js';
import { DEVICE_REASONS, deviceVerdict, type DeviceReason, type DeviceVerdict } from './reasons.js';
import { DEVICE_WASM_BASE64 } from './module.generated.js';
import { followNic, type NicFilterRequest } from './from-nic.js';
import type { Nic } from '../nic/nic.js';

/** The Wasm stage's exports. */
interface DeviceExports {
  init(): void;
  tableClear(): void;
  tableInsert(lo: number, hi: number, multi: number, ref: number): number;
  classifyBurst(count: number): number;
  statePtr(): number;
  marPtr(): number;
  countersPtr(): number;
  mtaPtr(): number;
  utaPtr(): number;
  vftaPtr(): number;
  descriptorsPtr(): number;
  verdictsPtr(): number;
  poolPtr(): number;
  poolBytes(): number;
  burstSize(): number;
  reasonCount(): number;
  memoryBytes(): number;
}

/** Device kinds, as the Wasm stage numbers them. */
export const KIND = { e1000: 0, virtio: 1, ne2k: 2, ixgbe: 3 } as const;

/** State flags of the Wasm stage, one meaning per bit (assembly/device.ts). */
export const FLAG = {
  ENABLED: 1 << 0,
  UPE: 1 << 1,
  MPE: 1 << 2,
  BAM: 1 << 3,
  VFE: 1 << 4,
  CFIEN: 1 << 5,
  CFI: 1 << 6,
  MFE: 1 << 7,
  UTA: 1 << 8,
  PROMISC: 1 << 9,
  NOMULTI: 1 << 10,
  NOUNI: 1 << 11,
  UNI_OVERFLOW: 1 << 12,
  MULTI_OVERFLOW: 1 << 13,
  MONITOR: 1 << 14,
  PRIMARY: 1 << 15,
} as const;

const PAGE = 65536;
let compiled: Promise<WebAssembly.Module> | undefined;

function compileDevices(): Promise<WebAssembly.Module> {
  compiled ??= WebAssembly.compile(decodeBase64(DEVICE_WASM_BASE64)).catch((err: unknown) => {
    compiled = undefined;
    throw new MacslotError('NOT_SUPPORTED', `this engine cannot compile the device filters (${String(err).slice(0, 300)})`);
  });
  return compiled;
}

/** The register state the Wasm stage reads: the exact table is rebuilt from `exact` before the next frame after a change. */
export interface StageState {
  flags: number;
  mo: number;
  vet: number;
  minLength: number;
  /** Longest frame stored; undefined for no limit of the filter's own. */
  maxLength?: number;
  primary: Mac | undefined;
}

/** Returns `value` as a MAC-48, or throws INVALID_MAC. */
export function mac48(value: MacLike, what: string): Mac {
  const m = Mac.from(value);
  if (m.kind !== 'mac48') throw new MacslotError('INVALID_MAC', `${what} must be a MAC-48 address, got ${show(String(value))}`);
  return m;
}

/** Throws INVALID_ARGUMENT unless `value` is an integer in 0..max. */
export function checkValue(value: unknown, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max)
    throw new MacslotError('INVALID_ARGUMENT', `${what} must be an integer in 0..${max}, got ${show(value)}`);
  return value;
}

/** Throws INVALID_REGISTER for an offset the profile does not model. */
export function badRegister(device: string, offset: unknown): MacslotError {
  return new MacslotError('INVALID_REGISTER', `${device} has no receive-filter register at offset ${show(offset)}`);
}

/** An exact-match entry: the MAC, the table half (virtio-net multicast list) and the entry number reported on a match. */
export interface ExactEntry {
  readonly mac: Mac;
  readonly multi: boolean;
  readonly entry: number;
}

/**
 * What every device profile shares: the Wasm stage, `accept(frame)`, a zero-copy burst path (write frames into `pool`,
 * describe them in `descriptors`, call `classifyBurst`, read `verdicts`), and per-reason counters.
 */
export abstract class DeviceFilter {
  /** Frames per burst. */
  readonly burst: number;
  /** The frame pool of the burst path. */
  readonly pool: Uint8Array;
  /** Pairs of (offset into `pool`, length), one pair per frame of the next burst. */
  readonly descriptors: Uint32Array;
  /** One verdict word per frame after a burst: read it with `deviceVerdict` (reason in bits 0..7, entry in bits 16..31). */
  readonly verdicts: Uint32Array;
  readonly #x: DeviceExports;
  readonly #state: Uint32Array;
  readonly #counters: BigUint64Array;
  readonly #mar: Uint8Array;
  /** MTA (e1000, ixgbe) as 128 little-endian words: bit i of the 4096 is word i >> 5, bit i & 31. */
  protected readonly mtaWords: Uint32Array;
  /** ixgbe's unicast table array, laid out as `mtaWords`. */
  protected readonly utaWords: Uint32Array;
  /** The VLAN filter table (VFTA, or virtio-net's VLAN bitmap), laid out as `mtaWords`. */
  protected readonly vftaWords: Uint32Array;
  #dirty = true;
  #unfollow: (() => void) | undefined;

  protected constructor(engine: { x: DeviceExports; memory: WebAssembly.Memory }, kind: number) {
    const x = engine.x;
    const buf = engine.memory.buffer;
    this.#x = x;
    this.burst = x.burstSize();
    this.pool = new Uint8Array(buf, x.poolPtr(), x.poolBytes());
    this.descriptors = new Uint32Array(buf, x.descriptorsPtr(), this.burst * 2);
    this.verdicts = new Uint32Array(buf, x.verdictsPtr(), this.burst);
    this.#state = new Uint32Array(buf, x.statePtr(), 8);
    this.#counters = new BigUint64Array(buf, x.countersPtr(), x.reasonCount());
    this.#mar = new Uint8Array(buf, x.marPtr(), 8);
    this.mtaWords = new Uint32Array(buf, x.mtaPtr(), 128);
    this.utaWords = new Uint32Array(buf, x.utaPtr(), 128);
    this.vftaWords = new Uint32Array(buf, x.vftaPtr(), 128);
    this.#state[0] = kind;
  }
  /** Programs the registers from `nic` now and after every change (a subclass's fromNic), until close(). */
  protected follow(nic: Nic, program: (request: NicFilterRequest) => void): void {
    this.close();
    this.#unfollow = followNic(nic, program);
  }

  /** Stops following the Nic this profile was built from (if any). Idempotent. */
  close(): void {
    this.#unfollow?.();
    this.#unfollow = undefined;
  }

  /** Compiles (once) and instantiates the Wasm stage on a fresh memory of its own. */
  protected static async engine(): Promise<{ x: DeviceExports; memory: WebAssembly.Memory }> {
    const module = await compileDevices();
    const probe = new WebAssembly.Memory({ initial: 9, maximum: 9 });
    const instance = await WebAssembly.instantiate(module, { env: { memory: probe, abort: () => undefined } });
    const x = instance.exports as unknown as DeviceExports;
    const pages = Math.ceil(x.memoryBytes() / PAGE);
    if (pages !== 9 || x.reasonCount() !== DEVICE_REASONS.length)
      throw new MacslotError('DATA_PLANE', 'the embedded device filter module does not match this library version');
    x.init();
    return { x, memory: probe };
  }

  /** The Wasm stage's view of the registers: the subclass maps its registers onto it. */
  protected abstract stageState(): StageState;

  /** Exact entries in priority order: the first of equal MACs wins. */
  protected abstract exactEntries(): Iterable<ExactEntry>;

  /** The 64-bit MAR (ne2k), byte i holding hash indices 8i..8i+7. */
  protected marBytes(): Uint8Array | undefined {
    return undefined;
  }

  /** Marks the stage out of date; the next classification reprograms it. */
  protected changed(): void {
    this.#dirty = true;
  }

  #sync(): void {
    if (!this.#dirty) return;
    const s = this.stageState();
    const st = this.#state;
    st[1] = s.flags;
    st[2] = s.mo & 3;
    st[3] = s.vet & 0xffff;
    st[4] = s.primary === undefined ? 0 : rarLow(s.primary);
    st[5] = s.primary === undefined ? 0 : rarHigh(s.primary);
    st[6] = s.minLength;
    st[7] = s.maxLength ?? 0xffffffff;
    const mar = this.marBytes();
    if (mar !== undefined) this.#mar.set(mar);
    this.#x.tableClear();
    for (const e of this.exactEntries()) this.#x.tableInsert(rarLow(e.mac), rarHigh(e.mac), e.multi ? 1 : 0, e.entry);
    this.#dirty = false;
  }

  /** Classifies one frame; never throws for any byte content. */
  accept(frame: Uint8Array): DeviceVerdict {
    if (!(frame instanceof Uint8Array)) throw new MacslotError('INVALID_ARGUMENT', `a frame must be a Uint8Array, got ${show(frame)}`);
    if (frame.length > this.pool.length) return deviceVerdict(DEVICE_REASONS.indexOf('drop-bad-descriptor') | 0xffff0000);
    this.pool.set(frame, 0);
    this.descriptors[0] = 0;
    this.descriptors[1] = frame.length;
    this.classifyBurst(1);
    return deviceVerdict(this.verdicts[0]!);
  }

  /** Classifies every frame, in bursts through the pool; returns one verdict each. */
  acceptAll(frames: readonly Uint8Array[]): DeviceVerdict[] {
    const out: DeviceVerdict[] = [];
    let i = 0;
    while (i < frames.length) {
      const n = this.load(frames.slice(i, i + this.burst));
      if (n === 0) {
        out.push(this.accept(frames[i]!));
        i++;
        continue;
      }
      this.classifyBurst(n);
      for (let k = 0; k < n; k++) out.push(deviceVerdict(this.verdicts[k]!));
      i += n;
    }
    return out;
  }

  /** Copies frames into the pool and describes them; returns how many fit (pool or burst full). */
  load(frames: readonly Uint8Array[]): number {
    let off = 0;
    let n = 0;
    for (const f of frames) {
      if (n === this.burst || off + f.length > this.pool.length) break;
      this.pool.set(f, off);
      this.descriptors[2 * n] = off;
      this.descriptors[2 * n + 1] = f.length;
      off += (f.length + 7) & ~7;
      n++;
    }
    return n;
  }

  /** Classifies the first `count` described frames into `verdicts`; returns `count`. Throws INVALID_ARGUMENT above `burst`. */
  classifyBurst(count: number): number {
    checkValue(count, this.burst, 'count');
    this.#sync();
    return this.#x.classifyBurst(count);
  }

  /** Frames classified so far, per reason. */
  counters(): Record<DeviceReason, number> {
    const out = {} as Record<DeviceReason, number>;
    DEVICE_REASONS.forEach((r, i) => {
      out[r] = Number(this.#counters[i]!);
    });
    return out;
  }
}

/** Bytes 0..3 of a MAC as a little-endian word (what RAL holds). */
function rarLow(m: Mac): number {
  return (m.byte(0) | (m.byte(1) << 8) | (m.byte(2) << 16) | (m.byte(3) << 24)) >>> 0;
}

/** Bytes 4..5 of a MAC as a little-endian half-word (what RAH[15:0] holds). */
function rarHigh(m: Mac): number {
  return m.byte(4) | (m.byte(5) << 8);
}
