// Text: the one escape for text that came from a peer (names, paths, MACs, a child's output) before it reaches a log or a terminal.

/** Longest escaped text `escapeText` returns by default, before its `…(N more)` tail. */
export const ESCAPE_MAX = 256;

// C0 and C1 controls, DEL, line and paragraph separators, bidirectional overrides and isolates,
// zero-width and BOM code points, and lone surrogates: everything that can break a line, move the
// cursor, recolour a terminal or make text read differently from how it is stored.
// With the u flag a surrogate range matches only lone halves: a pair is one code point.
const UNSAFE_CLASS = '[\\u0000-\\u001f\\u007f-\\u009f\\u200b-\\u200f\\u2028-\\u202e\\u2066-\\u2069\\ufeff\\ud800-\\udfff]';
const UNSAFE = new RegExp(`${UNSAFE_CLASS}|\\\\`, 'gu');
const UNSAFE_ONE = new RegExp(UNSAFE_CLASS, 'u');

function escapeOne(ch: string): string {
  if (ch === '\\') return '\\\\';
  if (ch === '\n') return '\\n';
  if (ch === '\r') return '\\r';
  if (ch === '\t') return '\\t';
  const c = ch.charCodeAt(0);
  return c <= 0xff ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`;
}

/**
 * Returns `text` safe to print on one line of a log or a terminal: control characters, escape
 * sequences, line separators, bidirectional overrides, zero-width characters and lone surrogates
 * become visible `\xNN` / `\uNNNN` escapes (and `\` becomes `\\`, so an escape cannot be forged).
 * Text longer than `max` code units is cut and ends with `…(N more)`. Any non-string is rendered with
 * `String()` first. Never throws.
 */
export function escapeText(text: unknown, max = ESCAPE_MAX): string {
  let s: string;
  try {
    s = typeof text === 'string' ? text : String(text);
  } catch {
    s = Object.prototype.toString.call(text);
  }
  const cut = s.length > max ? s.slice(0, max) : s;
  const tail = s.length > max ? `…(${s.length - max} more)` : '';
  // A cut can split a surrogate pair; the lone half is then escaped like any other.
  return cut.replace(UNSAFE, escapeOne) + tail;
}

/** Returns true when `text` holds no control, separator, override, zero-width character or lone surrogate (a `\\` is printable). */
export function isPrintable(text: string): boolean {
  return !UNSAFE_ONE.test(text);
}
