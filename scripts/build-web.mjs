// Build: bundles the live page (src/web) into dist/web for `macslot serve`: the page and its generator worker share one
// chunk holding the library and its embedded Wasm. Prints each file's size and the gzipped total.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const src = new URL('../src/web/', import.meta.url);
const out = new URL('../dist/web/', import.meta.url);

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [new URL('page.ts', src).pathname, new URL('worker.ts', src).pathname],
  outdir: out.pathname,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  entryNames: '[name]',
  chunkNames: 'shared-[hash]',
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(new URL('style.css', src), new URL('style.css', out));
// The page's chunk is named by its hash: the page preloads it beside page.js instead of discovering it after parsing page.js.
const chunks = readdirSync(out).filter((n) => n.startsWith('shared-') && n.endsWith('.js'));
const preload = chunks.map((n) => `<link rel="modulepreload" href="${n}">`).join('\n  ');
const html = readFileSync(new URL('index.html', src), 'utf8');
if (!html.includes('<!-- preload -->')) throw new Error('src/web/index.html lacks the <!-- preload --> marker');
writeFileSync(new URL('index.html', out), html.replace('<!-- preload -->', preload));

let total = 0;
for (const name of readdirSync(out).sort()) {
  const bytes = readFileSync(new URL(name, out));
  const gz = gzipSync(bytes, { level: 9 }).length;
  total += gz;
  console.log(`dist/web/${name}: ${bytes.length} bytes, ${gz} gzipped`);
}
console.log(`dist/web: ${total} bytes gzipped in all`);
