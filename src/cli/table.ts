// Command line: plain-text tables for terminals and logs, whole or streamed row by row.

import { escapeText } from '../text.js';

type Cells = readonly string[];

// Cells can hold peer text (port names, client names from a URL): escaped, so no cell moves the cursor or forges a row.
const cell = (c: string | undefined): string => escapeText(c ?? '', 1024);

function widthsOf(header: Cells, rows: readonly Cells[]): number[] {
  const widths = header.map((h) => cell(h).length);
  for (const r of rows) for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i]!, cell(r[i]).length);
  return widths;
}

function lineOf(cells: Cells, widths: readonly number[]): string {
  return `  ${cells.map((c, i) => cell(c).padEnd(widths[i] ?? 0)).join('  ')}`.trimEnd();
}

/** Returns rows laid out under a header, columns padded to their widest cell. */
export function table(header: Cells, rows: readonly Cells[]): string {
  const widths = widthsOf(header, rows);
  return [
    lineOf(header, widths),
    lineOf(
      widths.map((w) => '-'.repeat(w)),
      widths,
    ),
    ...rows.map((r) => lineOf(r, widths)),
  ].join('\n');
}

/** A table printed as it goes, in constant memory. */
export interface TableStream {
  /** Adds one row. */
  row(cells: Cells): void;
  /** Prints what is still held. Idempotent. */
  end(): void;
}

/**
 * Returns a table that holds its first `batch` rows to size the columns, then prints them and every
 * later row at once; a later cell wider than its column shifts only its own line. Lines go to `out`
 * in blocks of about 64 KiB.
 */
export function tableStream(header: Cells, out: (text: string) => void, batch = 1000): TableStream {
  let held: Cells[] | undefined = [];
  let widths: number[] = [];
  let text = '';
  const emit = (line: string): void => {
    text += `${line}\n`;
    if (text.length >= 1 << 16) {
      out(text);
      text = '';
    }
  };
  const start = (): void => {
    const rows = held ?? [];
    held = undefined;
    widths = widthsOf(header, rows);
    emit(lineOf(header, widths));
    emit(
      lineOf(
        widths.map((w) => '-'.repeat(w)),
        widths,
      ),
    );
    for (const r of rows) emit(lineOf(r, widths));
  };
  return {
    row(cells) {
      if (held === undefined) return emit(lineOf(cells, widths));
      held.push(cells);
      if (held.length >= batch) start();
    },
    end() {
      if (held !== undefined) start();
      if (text.length > 0) out(text);
      text = '';
    },
  };
}
