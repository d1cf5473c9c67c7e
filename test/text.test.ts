// escapeText and isPrintable: peer text made safe for one line of a log or a terminal.
import { describe, expect, it } from 'vitest';
import { ESCAPE_MAX, escapeText, isPrintable } from 'macslot';

/** Input, what escapeText shows, and whether isPrintable accepts the input as it is. */
const CASES: readonly { what: string; text: string; shown: string; printable: boolean }[] = [
  { what: 'plain ASCII', text: 'vm-a', shown: 'vm-a', printable: true },
  { what: 'accented and astral characters', text: 'é 😀 日本', shown: 'é 😀 日本', printable: true },
  { what: 'a newline forging a log line', text: 'a\nswitch: b connected', shown: 'a\\nswitch: b connected', printable: false },
  { what: 'carriage return and tab', text: 'a\rb\tc', shown: 'a\\rb\\tc', printable: false },
  { what: 'an ANSI colour sequence', text: '\u001b[31mred', shown: '\\x1b[31mred', printable: false },
  { what: 'NUL and DEL', text: '\u0000\u007f', shown: '\\x00\\x7f', printable: false },
  { what: 'a C1 control (CSI)', text: '\u009b2J', shown: '\\x9b2J', printable: false },
  { what: 'a line separator', text: 'a\u2028b', shown: 'a\\u2028b', printable: false },
  { what: 'a right-to-left override', text: 'abc\u202etxt', shown: 'abc\\u202etxt', printable: false },
  { what: 'an isolate', text: '\u2066x\u2069', shown: '\\u2066x\\u2069', printable: false },
  { what: 'a zero-width space and a BOM', text: 'a\u200bb\ufeff', shown: 'a\\u200bb\\ufeff', printable: false },
  { what: 'a lone high surrogate', text: 'a\ud800b', shown: 'a\\ud800b', printable: false },
  { what: 'a lone low surrogate', text: '\udc00', shown: '\\udc00', printable: false },
  { what: 'a backslash, doubled so no escape can be forged', text: 'a\\x1b', shown: 'a\\\\x1b', printable: true },
];

describe('escapeText', () => {
  it.each(CASES)('$what', ({ text, shown, printable }) => {
    expect(escapeText(text)).toBe(shown);
    expect(isPrintable(text)).toBe(printable);
    expect(escapeText(text)).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/);
  });

  it('caps long text and says how much was cut', () => {
    expect(escapeText('x'.repeat(ESCAPE_MAX + 10))).toBe(`${'x'.repeat(ESCAPE_MAX)}…(10 more)`);
    expect(escapeText('abcdef', 3)).toBe('abc…(3 more)');
    // A cut through a surrogate pair leaves an escaped half, never a broken character.
    expect(escapeText('ab😀', 3)).toBe('ab\\ud83d…(1 more)');
  });

  it('renders any value without throwing', () => {
    const hostile = {
      toString(): string {
        throw new Error('no');
      },
    };
    expect(escapeText(42)).toBe('42');
    expect(escapeText(undefined)).toBe('undefined');
    expect(escapeText(hostile)).toBe('[object Object]');
  });
});
