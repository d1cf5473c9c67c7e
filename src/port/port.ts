// Ports: the one small interface every frame source and sink implements (sockets, emulators, taps, the NIC's own clients).

import { MacslotError, show } from '../errors.js';
import { escapeText } from '../text.js';

/** Why a port stopped: its peer went away, it was closed locally, or it failed. */
export type PortCloseReason =
  | {
      /** Who closed it: the peer, this side, or an error. */
      readonly kind: 'peer' | 'local';
    }
  | {
      /** Who closed it: the peer, this side, or an error. */
      readonly kind: 'error';
      /** The error that closed it. */
      readonly error: Error;
    };

/**
 * A bidirectional frame port. `send` hands one frame to the peer; frames from the peer arrive at the
 * receiver set with `onFrame`. A frame passed to a receiver is only valid during the call: a receiver
 * that keeps it must copy it, because producers reuse their buffers.
 */
export interface FramePort {
  /** A name for logs and tables, e.g. `unix:/tmp/sw.sock#3` or `v86:net0`. */
  readonly name: string;
  /** Sends one frame; returns false when the frame was dropped (closed, oversized, or the peer is not reading). Never throws. */
  send(frame: Uint8Array): boolean;
  /** Sets the receiver of frames from the peer (one receiver; setting again replaces it). */
  onFrame(receiver: (frame: Uint8Array) => void): void;
  /**
   * Optional: sets a receiver that gets each frame from the peer as its place, `bytes[start, end)` (valid only during
   * the call), so no frame costs a view. Call it after `onFrame`, which it takes over from; `onFrame` again (or
   * `undefined` here) gives frames back to that receiver. Ports that do not implement it hand every frame to `onFrame`.
   */
  onFrameRange?(receiver: ((bytes: Uint8Array, start: number, end: number) => void) | undefined): void;
  /** Sets the listener called once when the port closes, for any reason. */
  onClose(listener: (reason: PortCloseReason) => void): void;
  /** Closes the port and releases what it holds. Idempotent. */
  close(): void;
  /**
   * Returns the frames this port dropped itself, by reason (framing errors, a full send queue, …). Optional: ports that never drop omit it.
   */
  drops?(): Readonly<Record<string, number>>;
}

/** Counts drops by reason and says each one once in the log, so a hostile peer costs one line per reason, not one per frame. */
export class DropCounter {
  readonly #counts: Record<string, number> = {};
  readonly #log: ((line: string) => void) | undefined;
  readonly #name: string;

  /** Creates a counter for the port called `name`; `log` receives the first drop of each reason. */
  constructor(name: string, log?: (line: string) => void) {
    this.#name = name;
    this.#log = log;
  }

  /**
   * Counts one drop of `reason`; logs `detail` when it is the first of its reason. A function detail is
   * only called then, so a flood of drops formats one message, not one per frame. Never throws.
   */
  drop(reason: string, detail: string | (() => string)): void {
    const n = (this.#counts[reason] ?? 0) + 1;
    this.#counts[reason] = n;
    if (n === 1 && this.#log !== undefined) {
      try {
        // Names and details can carry peer text (a URL path, a child's message): escaped, so no peer forges a log line.
        this.#log(
          `${escapeText(this.#name)}: dropped (${escapeText(reason)}): ${escapeText(typeof detail === 'string' ? detail : detail(), 1024)}`,
        );
      } catch {
        // A failing logger must not turn a drop into an exception on the data path.
      }
    }
  }

  /** Returns a snapshot of the counts. */
  snapshot(): Readonly<Record<string, number>> {
    return { ...this.#counts };
  }
}

// How deep this thread is inside transports' I/O callbacks that hand over frames (see ioBegin).
let ioDepth = 0;

/**
 * Marks the start of frames a transport hands over from one read of its I/O (a socket's chunk, a datagram); pair it with
 * ioEnd. Receivers may then defer their work to the end of the event loop's turn and take all frames read in that turn
 * at once; frames handed over outside such a span (a memory port, an emulator) are handled before `push` returns.
 */
export function ioBegin(): void {
  ioDepth++;
}

/** Marks the end of the span ioBegin started. */
export function ioEnd(): void {
  if (ioDepth > 0) ioDepth--;
}

/** True while a transport hands over frames read from I/O (see ioBegin). */
export function inIo(): boolean {
  return ioDepth > 0;
}

/**
 * Hands a port's incoming frames to its receiver. Frames that arrive before a receiver is set (a
 * switch attaches a connection asynchronously, while its peer may already be talking) wait as copies,
 * up to `limit`; beyond that they are dropped and counted as `no-receiver`, never lost silently.
 */
export class Inlet {
  readonly #limit: number;
  readonly #drops: DropCounter | undefined;
  #receiver: ((frame: Uint8Array) => void) | undefined;
  #range: ((bytes: Uint8Array, start: number, end: number) => void) | undefined;
  #early: Uint8Array[] = [];

  /** Creates an inlet that holds at most `limit` early frames and counts the rest in `drops`. */
  constructor(drops?: DropCounter, limit = 256) {
    this.#drops = drops;
    this.#limit = limit;
  }

  /** Sets the receiver (and forgets a range receiver) and hands it the frames that waited, in order. */
  set(receiver: (frame: Uint8Array) => void): void {
    this.#receiver = receiver;
    this.#range = undefined;
    const early = this.#early;
    this.#early = [];
    for (const f of early) this.push(f);
  }

  /** Delivers `frame` (valid during the call only); a receiver's exception stays with it. Never throws. */
  push(frame: Uint8Array): void {
    const r = this.#receiver;
    if (r === undefined) {
      if (this.#early.length < this.#limit) this.#early.push(frame.slice());
      else this.#drops?.drop('no-receiver', `${this.#limit} frames already wait for a receiver`);
      return;
    }
    try {
      r(frame);
    } catch {
      // The receiver's failure must not reach the producer (a socket's error path, an emulator's loop).
    }
  }

  /** Sets the receiver of frames as places (see FramePort.onFrameRange), after `set`; undefined gives them back to `set`'s. */
  setRange(receiver: ((bytes: Uint8Array, start: number, end: number) => void) | undefined): void {
    this.#range = this.#receiver === undefined ? undefined : receiver;
  }

  /** Delivers frame `bytes[start, end)` (valid during the call only), as a place when a range receiver is set. Never throws. */
  pushRange(bytes: Uint8Array, start: number, end: number): void {
    const r = this.#range;
    if (r === undefined) return this.push(bytes.subarray(start, end));
    try {
      r(bytes, start, end);
    } catch {
      // As push: the receiver's failure stays with it.
    }
  }

  /** Forgets the receiver and every waiting frame (the port closed). */
  clear(): void {
    this.#receiver = undefined;
    this.#range = undefined;
    this.#early = [];
  }
}

/**
 * What every transport's port shares: the inlet, the drop counts, the close listener and closing
 * exactly once. A transport implements `send` and releases itself in `dispose`.
 */
export abstract class PortBase implements FramePort {
  readonly name: string;
  protected readonly dropped: DropCounter;
  protected readonly inlet: Inlet;
  #closeListener: ((reason: PortCloseReason) => void) | undefined;
  #closed = false;

  /** Names the port; `log` receives the first drop of each reason. */
  constructor(name: string, log?: (line: string) => void) {
    this.name = name;
    this.dropped = new DropCounter(name, log);
    this.inlet = new Inlet(this.dropped);
  }

  /** Returns true once the port has closed. */
  get closed(): boolean {
    return this.#closed;
  }

  abstract send(frame: Uint8Array): boolean;

  /** Releases the transport; runs once, when the port closes. */
  protected abstract dispose(): void;

  onFrame(receiver: (frame: Uint8Array) => void): void {
    this.inlet.set(receiver);
  }

  onFrameRange(receiver: ((bytes: Uint8Array, start: number, end: number) => void) | undefined): void {
    this.inlet.setRange(receiver);
  }

  onClose(listener: (reason: PortCloseReason) => void): void {
    this.#closeListener = listener;
  }

  close(): void {
    this.shut({ kind: 'local' });
  }

  drops(): Readonly<Record<string, number>> {
    return this.dropped.snapshot();
  }

  /** Closes the port for `reason`: forgets the receiver, releases the transport, tells the listener. Idempotent. */
  shut(reason: PortCloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.inlet.clear();
    try {
      this.dispose();
    } catch {
      // The transport is already gone; closing must still complete.
    }
    const l = this.#closeListener;
    this.#closeListener = undefined;
    l?.(reason);
  }
}

/** Default of `QueueBudget`: the bytes all send queues of a switch may hold together. */
export const DEFAULT_QUEUE_BUDGET = 64 << 20;

/**
 * One memory budget shared by the send queues of many ports (every peer of a switch). A port asks
 * before it queues a frame: it is admitted while all queues together stay within `limit`, and
 * beyond that only while the port holds less than its fair share (`limit` / ports), so peers that
 * read keep receiving while those that do not are cut. All queues together hold at most twice `limit`.
 */
export class QueueBudget {
  /** The bytes all queues may hold together. */
  readonly limit: number;
  #used = 0;
  #peak = 0;
  #ports = 0;

  /** Creates a budget of `limit` bytes (default 64 MiB). Throws INVALID_ARGUMENT unless it is a positive integer. */
  constructor(limit: number = DEFAULT_QUEUE_BUDGET) {
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) {
      throw new MacslotError('INVALID_ARGUMENT', `a queue budget must be a positive integer of bytes, got ${show(limit)}`);
    }
    this.limit = limit;
  }

  /** Bytes queued now, over every share. */
  get used(): number {
    return this.#used;
  }

  /** The most bytes ever queued at once. */
  get peak(): number {
    return this.#peak;
  }

  /** Ports holding a share now. */
  get ports(): number {
    return this.#ports;
  }

  /** Returns a new share for one port; close it when the port closes, which gives back what it held. */
  share(): QueueShare {
    this.#ports++;
    return new QueueShare(this);
  }

  /** Used by QueueShare: whether a port holding `held` bytes may queue `n` more. */
  admits(held: number, n: number): boolean {
    return this.#used + n <= this.limit || held + n <= this.limit / Math.max(1, this.#ports);
  }

  /** Used by QueueShare: adds `n` (negative: removes) queued bytes. */
  add(n: number): void {
    this.#used += n;
    if (this.#used > this.#peak) this.#peak = this.#used;
  }

  /** Used by QueueShare: one port fewer. */
  leave(): void {
    this.#ports--;
  }
}

/** One port's part of a QueueBudget: what it holds now. A byte is taken when queued and given back when sent or when the port closes. */
export class QueueShare {
  readonly #budget: QueueBudget;
  #held = 0;
  #closed = false;

  /** Use `QueueBudget.share()`. */
  constructor(budget: QueueBudget) {
    this.#budget = budget;
  }

  /** Bytes this port holds. */
  get held(): number {
    return this.#held;
  }

  /** Whether `n` more bytes fit the budget for this port. */
  admits(n: number): boolean {
    return !this.#closed && this.#budget.admits(this.#held, n);
  }

  /** Counts `n` bytes queued. */
  take(n: number): void {
    if (this.#closed) return;
    this.#held += n;
    this.#budget.add(n);
  }

  /** Counts `n` bytes sent (or discarded). Ignored after close, which gave everything back. */
  give(n: number): void {
    if (this.#closed) return;
    const k = Math.min(n, this.#held);
    this.#held -= k;
    this.#budget.add(-k);
  }

  /** Gives back everything still held and leaves the budget. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#budget.add(-this.#held);
    this.#held = 0;
    this.#closed = true;
    this.#budget.leave();
  }
}

/**
 * Whether a frame of `n` bytes may join a send queue that holds `held` of at most `maxQueue` bytes and, when there is one,
 * fits the port's `share` of the queue budget. When it may not, counts the drop (`backpressure` or `queue-budget`) in `dropped`.
 */
export function sendQueueAdmits(dropped: DropCounter, n: number, held: number, maxQueue: number, share: QueueShare | undefined): boolean {
  if (held + n > maxQueue) {
    dropped.drop('backpressure', `the peer is not reading; ${held} bytes are queued (limit ${maxQueue})`);
    return false;
  }
  if (share !== undefined && !share.admits(n)) {
    dropped.drop('queue-budget', `the peer is not reading and all queues together hold their budget; ${held} bytes are queued here`);
    return false;
  }
  return true;
}
