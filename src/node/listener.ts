// Node listeners: what every listener shares — its limits and their defaults, and the book of clients, refusals and releases.

import { MacslotError, show } from '../errors.js';
import { escapeText } from '../text.js';

/** Default of `maxClients`: connections (or datagram sources) one listener serves at once. */
export const DEFAULT_MAX_CLIENTS = 256;
/** Default of `frameTimeoutMs`: how long a stream peer may take to finish a frame it started, and a WebSocket peer to answer a ping. */
export const DEFAULT_FRAME_TIMEOUT_MS = 30_000;
/** Default of `handshakeTimeoutMs`: how long a WebSocket peer may take from connecting to a completed upgrade. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Default of `idleMs` for datagram listeners: a source silent this long loses its port (and the switch its client). */
export const DEFAULT_DGRAM_IDLE_MS = 300_000;

/** Limits every listener takes. */
export interface ListenerLimits {
  /** Connections (or datagram sources) served at once; more are refused and counted as `limit`. Default 256. */
  maxClients?: number;
}

/** What a listener has seen; plain data. */
export interface ListenerCounters {
  /** Where it listens. */
  readonly address: string;
  /** Connections (or datagram sources) open now. */
  readonly clients: number;
  /** Peers handed on as ports. */
  readonly accepted: number;
  /** Peers refused before they got a port, by reason (`limit`, `bad-path`, `bad-handshake`, `handshake-timeout`, `error`, …). */
  readonly refused: Readonly<Record<string, number>>;
  /** Ports the listener closed itself, by reason (`idle` for datagram sources). */
  readonly released: Readonly<Record<string, number>>;
}

/** Returns `value ?? fallback` as an integer in `min..max`; throws INVALID_ARGUMENT naming `what` otherwise. */
export function intOption(what: string, value: unknown, fallback: number, min: number, max = 2 ** 31 - 1): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new MacslotError('INVALID_ARGUMENT', `${what} must be an integer in ${min}..${max}, got ${show(value)}`);
  }
  return v;
}

/**
 * Counts one listener's clients, refusals and releases, and says the first of each reason in the log,
 * so a hostile peer (or a flood of them) costs one line per reason. Peer text in a detail is escaped.
 */
export class ListenerBook {
  /** Where the listener listens: its label until it is bound, then the real address. */
  address: string;
  readonly maxClients: number;
  readonly #log: ((line: string) => void) | undefined;
  readonly #refused: Record<string, number> = {};
  readonly #released: Record<string, number> = {};
  #clients = 0;
  #accepted = 0;

  /** Creates the book of the listener at `address` (its label until it listens). */
  constructor(address: string, maxClients: number, log: ((line: string) => void) | undefined) {
    this.address = address;
    this.maxClients = maxClients;
    this.#log = log;
  }

  /** True when another client would exceed `maxClients`. */
  get full(): boolean {
    return this.#clients >= this.maxClients;
  }

  /** Counts a connection (or source) opened. */
  opened(): void {
    this.#clients++;
  }

  /** Counts a connection (or source) gone. */
  closed(): void {
    if (this.#clients > 0) this.#clients--;
  }

  /** Counts a peer handed on as a port. */
  accepted(): void {
    this.#accepted++;
  }

  /**
   * Counts `port` accepted and runs `receive`, which hands it on. When that throws, the failure is counted as a refusal of
   * reason `error`, the port is closed, and false is returned.
   */
  handOver(port: { close(): void }, receive: () => void): boolean {
    this.accepted();
    try {
      receive();
      return true;
    } catch (err) {
      this.refuse('error', `the port's receiver failed: ${err instanceof Error ? err.message : String(err)}`);
      port.close();
      return false;
    }
  }

  /** Counts a refusal of `reason` and logs `detail` (escaped) if it is the first of its reason. Never throws. */
  refuse(reason: string, detail: string): void {
    this.#count(this.#refused, reason, 'refused', detail);
  }

  /** Counts a port the listener closed for `reason` and logs the first of each reason. Never throws. */
  release(reason: string, detail: string): void {
    this.#count(this.#released, reason, 'released', detail);
  }

  /**
   * Returns `fn` wrapped so that nothing it throws escapes into the event loop: the error is counted
   * as a refusal of reason `error`, logged once, and `onError` (e.g. destroying the socket) runs.
   */
  guard<A extends unknown[]>(fn: (...args: A) => void, onError: (...args: A) => void): (...args: A) => void {
    return (...args: A) => {
      try {
        fn(...args);
      } catch (err) {
        this.refuse('error', err instanceof Error ? err.message : String(err));
        try {
          onError(...args);
        } catch {
          // The peer is being dropped; a second failure changes nothing.
        }
      }
    };
  }

  /** Returns the counters as plain data. */
  counters(): ListenerCounters {
    return {
      address: this.address,
      clients: this.#clients,
      accepted: this.#accepted,
      refused: { ...this.#refused },
      released: { ...this.#released },
    };
  }

  #count(into: Record<string, number>, reason: string, verb: string, detail: string): void {
    const n = (into[reason] ?? 0) + 1;
    into[reason] = n;
    if (n !== 1 || this.#log === undefined) return;
    try {
      this.#log(`${escapeText(this.address)}: ${verb} a peer (${reason}): ${escapeText(detail, 1024)}; further ones are only counted`);
    } catch {
      // The log is advisory.
    }
  }
}
