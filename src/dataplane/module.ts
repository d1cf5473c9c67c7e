// Data plane: the embedded .wasm modules, decoded and compiled once. The debug build is in `macslot/debug`, so that the
// default entry (and every browser bundle of it) does not carry it.

import { MacslotError } from '../errors.js';
import { RELEASE_WASM_BASE64, UNSHARED_WASM_BASE64 } from './module.generated.js';

/** Which embedded build: `release` (optimized, shared memory; default) or `release-unshared` (for platforms without SharedArrayBuffer). */
export type Build = 'release' | 'release-unshared';

/** Returns the bytes of the embedded module. Never fails. */
export function wasmBytes(build: Build = 'release'): Uint8Array<ArrayBuffer> {
  return decodeBase64(build === 'release-unshared' ? UNSHARED_WASM_BASE64 : RELEASE_WASM_BASE64);
}

/** Decodes an embedded module's base64 text. */
export function decodeBase64(base64: string): Uint8Array<ArrayBuffer> {
  const text = atob(base64);
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
    p = compileBytes(wasmBytes(build));
    compiled.set(build, p);
  }
  return p;
}

/** Compiles a data-plane module; rejects as compileDataPlane does. */
export function compileBytes(bytes: Uint8Array<ArrayBuffer>): Promise<WebAssembly.Module> {
  return WebAssembly.compile(bytes).catch((err: unknown) => {
    throw compileError(err);
  });
}

// Browsers word a refusal by CSP differently: Chromium and Safari name the policy or 'unsafe-eval', Firefox says "CSP".
const CSP_REFUSAL = /Content Security Policy|unsafe-eval|\bCSP\b/i;

/** Names the cause of a failed compile; the platform's own message follows, shortened. */
function compileError(err: unknown): MacslotError {
  const text = (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 300);
  if (CSP_REFUSAL.test(text)) {
    return new MacslotError(
      'NOT_SUPPORTED',
      `the Content Security Policy forbids compiling WebAssembly; add 'wasm-unsafe-eval' to its script-src (${text})`,
    );
  }
  return new MacslotError('NOT_SUPPORTED', `this engine cannot compile the data plane, which needs WebAssembly SIMD and threads (${text})`);
}
