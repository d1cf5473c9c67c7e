// Data plane: the embedded .wasm modules, decoded and compiled once.

import { MacslotError } from '../errors.js';
import { DEBUG_WASM_BASE64, RELEASE_WASM_BASE64, UNSHARED_WASM_BASE64 } from './module.generated.js';

/** Which build: `release` (optimized, shared memory; default), `release-unshared` (for platforms without SharedArrayBuffer) or `debug`. */
export type Build = 'release' | 'release-unshared' | 'debug';

/** Returns the bytes of the embedded module. Never fails. */
export function wasmBytes(build: Build = 'release'): Uint8Array<ArrayBuffer> {
  const text = atob(build === 'debug' ? DEBUG_WASM_BASE64 : build === 'release-unshared' ? UNSHARED_WASM_BASE64 : RELEASE_WASM_BASE64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

const compiled = new Map<Build, Promise<WebAssembly.Module>>();

/**
 * Returns the compiled module, compiling it on first use. Rejects with NOT_SUPPORTED when the page's Content
 * Security Policy forbids compiling WebAssembly (it needs 'wasm-unsafe-eval' in script-src) or the engine lacks
 * SIMD or threads.
 */
export function compileDataPlane(build: Build = 'release'): Promise<WebAssembly.Module> {
  let p = compiled.get(build);
  if (p === undefined) {
    p = WebAssembly.compile(wasmBytes(build)).catch((err: unknown) => {
      throw compileError(err);
    });
    compiled.set(build, p);
  }
  return p;
}

// Browsers word a refusal by CSP differently: Chromium and Safari name the policy or 'unsafe-eval', Firefox says "CSP".
const CSP_REFUSAL = /Content Security Policy|unsafe-eval|\bCSP\b/i;

/** Names the cause of a failed compile; the platform's own message follows, shortened. */
function compileError(err: unknown): MacslotError {
  const text = (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 300);
  if (CSP_REFUSAL.test(text)) {
    return new MacslotError('NOT_SUPPORTED', `the Content Security Policy forbids compiling WebAssembly; add 'wasm-unsafe-eval' to its script-src (${text})`);
  }
  return new MacslotError('NOT_SUPPORTED', `this engine cannot compile the data plane, which needs WebAssembly SIMD and threads (${text})`);
}
