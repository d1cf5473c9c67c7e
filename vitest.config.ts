import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^macslot$/, replacement: here('./src/index.ts') },
      { find: /^macslot\/node$/, replacement: here('./src/node/index.ts') },
      { find: /^macslot\/debug$/, replacement: here('./src/debug.ts') },
      { find: /^macslot\/postgres$/, replacement: here('./src/postgres/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
