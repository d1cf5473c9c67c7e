#!/usr/bin/env node
// Fails when a git-tracked source line is longer than the project's limit. Biome's formatter wraps code but
// cannot wrap string literals, comments or template literals, so those are checked here.
// Usage: node scripts/line-length.mjs [dir …]   (default: src test bench assembly scripts)
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const LIMIT = 140;
const DEFAULT_DIRS = ['src', 'test', 'bench', 'assembly', 'scripts'];
const EXTENSIONS = /\.(ts|mjs|js)$/;
const EXCLUDED = /^test\/fixtures\//;

const dirs = process.argv.length > 2 ? process.argv.slice(2) : DEFAULT_DIRS;
const listed = execFileSync('git', ['ls-files', '-z', '--', ...dirs], { encoding: 'utf8' });
const files = listed.split('\0').filter((file) => file !== '' && EXTENSIONS.test(file) && !EXCLUDED.test(file));

let offenders = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    continue; // tracked but deleted in the work tree
  }
  const lines = text.split(/\r?\n/);
  for (const [index, line] of lines.entries()) {
    const length = [...line].length; // code points, as an editor counts columns
    if (length > LIMIT) {
      console.log(`${file}:${index + 1}:${length}`);
      offenders++;
    }
  }
}
if (offenders > 0) {
  console.error(`${offenders} line(s) longer than ${LIMIT} characters`);
  process.exit(1);
}
