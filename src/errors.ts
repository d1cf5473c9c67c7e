// Errors: the one typed error of the control plane, and every code it can carry.

/** Stable error codes. Match on `err.code`, never on the message. */
export type MacslotErrorCode =
  | 'INVALID_MAC'
  | 'INVALID_ARGUMENT'
  // A device profile was given an offset that is not one of its receive-filter registers.
  | 'INVALID_REGISTER'
  | 'INVALID_SLOT'
  | 'NOT_SUPPORTED'
  | 'SLOT_BUSY'
  | 'NO_FREE_SLOT'
  | 'NOT_RESERVED'
  | 'NOT_OWNER'
  | 'MAC_IN_USE'
  | 'NOT_PERMITTED'
  | 'NOT_MEMBER'
  | 'CLIENT_CLOSED'
  | 'NAME_IN_USE'
  | 'TOO_MANY_CLIENTS'
  | 'BLOCK_EXHAUSTED'
  | 'RING_CORRUPT'
  | 'DATA_PLANE'
  // Capture files and the command line's configuration.
  | 'CAPTURE_INVALID'
  | 'CONFIG_INVALID'
  // The MAC manager and its stores.
  | 'QUOTA_EXCEEDED'
  | 'STORE_CORRUPT'
  | 'STORE_VERSION'
  | 'STORE_LOCKED'
  | 'STORE_IO'
  // Frame ports, their peers and the switch.
  | 'PORT_CLOSED'
  | 'PEER_INVALID'
  // A listener's address is served by a live process.
  | 'ADDRESS_IN_USE';

/** The error thrown by every control-plane call; `code` is stable, the message names the offending value. */
export class MacslotError extends Error {
  /** The stable code to match on. */
  readonly code: MacslotErrorCode;
  constructor(code: MacslotErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'MacslotError';
    this.code = code;
  }
}

/** Returns true when `err` is a MacslotError, optionally with the given code. */
export function isMacslotError(err: unknown, code?: MacslotErrorCode): err is MacslotError {
  return err instanceof MacslotError && (code === undefined || err.code === code);
}

/** Longest rendering of a value `show` returns before its `…(N characters)` tail; a message stays a few hundred characters. */
export const SHOW_MAX = 200;

/**
 * Renders any input value for an error message without throwing on odd values. The rendering is cut
 * to SHOW_MAX characters (bytes to 64), ending with `…` and the full length, so a huge input never
 * makes a huge message.
 */
export function show(value: unknown): string {
  if (typeof value === 'string') {
    return value.length <= SHOW_MAX ? JSON.stringify(value) : `${JSON.stringify(value.slice(0, SHOW_MAX))}…(${value.length} characters)`;
  }
  if (value instanceof Uint8Array) {
    const hex = Array.from(value.subarray(0, 64), (b) => b.toString(16).padStart(2, '0')).join(' ');
    return `bytes[${value.length}](${hex}${value.length > 64 ? ' …' : ''})`;
  }
  if (typeof value === 'bigint') return cut(`${value}n`);
  try {
    return cut(typeof value === 'object' && value !== null ? (JSON.stringify(value) ?? String(value)) : String(value));
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function cut(text: string): string {
  return text.length <= SHOW_MAX ? text : `${text.slice(0, SHOW_MAX)}…(${text.length} characters)`;
}

/**
 * Reports an error thrown by a caller's listener without rethrowing it. The change that emitted the event
 * has completed; nothing is thrown back into the caller, another listener or a microtask, where it would
 * end the process. Uses the platform's `reportError` where there is one (browsers), `console.error` elsewhere.
 */
export function reportListenerError(err: unknown): void {
  const g = globalThis as { reportError?: (e: unknown) => void; console?: { error(...args: unknown[]): void } };
  try {
    if (typeof g.reportError === 'function') g.reportError(err);
    else g.console?.error('macslot: an event listener threw:', err);
  } catch {
    // Reporting is best effort; it must never throw itself.
  }
}
