// Errors: the one typed error of the control plane, and every code it can carry.

/** Stable error codes. Match on `err.code`, never on the message. */
export type MacslotErrorCode =
  | 'INVALID_MAC'
  | 'INVALID_ARGUMENT'
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

/** Renders any input value for an error message without throwing on odd values. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value instanceof Uint8Array) return `bytes[${value.length}](${Array.from(value, (b) => b.toString(16).padStart(2, '0')).join(' ')})`;
  if (typeof value === 'bigint') return `${value}n`;
  try {
    return typeof value === 'object' && value !== null ? JSON.stringify(value) ?? String(value) : String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
