// Test support: the README's code examples, taken as they are written.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

/** The project root. */
export const root = fileURLToPath(new URL('../..', import.meta.url));

/** Returns the first ```ts block after `heading` in the README; fails the test when there is none. */
export function example(heading: string): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n${heading}\n`);
  expect(at, `README has no "${heading}" section`).toBeGreaterThan(0);
  const m = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  expect(m).not.toBeNull();
  return m![1]!;
}
