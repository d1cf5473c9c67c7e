// Test support: the README's code examples, taken as they are written.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

/** The project root. */
export const root = fileURLToPath(new URL('../..', import.meta.url));

/** One fenced code block of the README. */
export interface Block {
  /** The fence's language tag (`ts`, `js`, `sh`, `text`, …; empty when none). */
  readonly lang: string;
  readonly code: string;
  /** The nearest heading above it, e.g. `### Workers`. */
  readonly heading: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  /** The file name its first line gives (`// main.mjs`), if any. */
  readonly file: string | undefined;
  /** The block right after it in the same section, when only prose separates them. */
  next: Block | undefined;
}

/** Every fenced block of the README, in order. */
export function blocks(text = readFileSync(join(root, 'README.md'), 'utf8')): Block[] {
  const lines = text.split('\n');
  const out: Block[] = [];
  let heading = '';
  let previous: Block | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^#{1,6} /.test(line)) {
      heading = line;
      previous = undefined;
      continue;
    }
    const fence = /^```(\w*)\s*$/.exec(line);
    if (fence === null) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    expect(i, `README line ${start + 1}: the block never closes`).toBeLessThan(lines.length);
    const code = `${body.join('\n')}\n`;
    const file = /^\/\/ ([\w.-]+\.(?:ts|mts|js|mjs))\s*$/.exec(body[0] ?? '')?.[1];
    const block: Block = { lang: fence[1]!, code, heading, line: start + 1, file, next: undefined };
    if (previous !== undefined) previous.next = block;
    out.push(block);
    previous = block;
  }
  return out;
}

/** A runnable example: one or more files written side by side, the first of them run. */
export interface Example {
  readonly heading: string;
  readonly line: number;
  readonly files: readonly { name: string; code: string }[];
  /** The lines the example must print, from its `// → ` comments or the ```text block after it; undefined when it shows none. */
  readonly expected: readonly string[] | undefined;
}

/** Groups the README's `ts` and `js` blocks into examples: consecutive blocks that name their files run together. */
export function examples(all: readonly Block[] = blocks()): Example[] {
  const out: Example[] = [];
  const code = all.filter((b) => b.lang === 'ts' || b.lang === 'js');
  for (let i = 0; i < code.length; i++) {
    const first = code[i]!;
    const group = [first];
    while (
      first.file !== undefined &&
      code[i + 1]?.file !== undefined &&
      code[i + 1]!.heading === first.heading &&
      group.at(-1)!.next === code[i + 1]
    ) {
      group.push(code[++i]!);
    }
    const files = group.map((b, n) => ({ name: b.file ?? `example${n === 0 ? '' : n}.${b.lang === 'ts' ? 'ts' : 'mjs'}`, code: b.code }));
    const arrows = group.flatMap((b) => [...b.code.matchAll(/\/\/ → (.*)$/gm)].map((m) => m[1]!.trimEnd()));
    const after = group.at(-1)!.next;
    const shown = after?.lang === 'text' ? after.code.trimEnd().split('\n') : undefined;
    out.push({ heading: first.heading, line: first.line, files, expected: arrows.length > 0 ? arrows : shown });
  }
  return out;
}

/** Returns the first ```ts block after `heading` in the README; fails the test when there is none. */
export function example(heading: string): string {
  const found = blocks().find((b) => b.heading === heading && b.lang === 'ts');
  expect(found, `README has no ts block under "${heading}"`).toBeDefined();
  return found!.code;
}
