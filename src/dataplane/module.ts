// Data plane: the embedded .wasm modules, decoded and compiled once.

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

/** Returns the compiled module, compiling it on first use; rejects only if the engine lacks SIMD or threads. */
export function compileDataPlane(build: Build = 'release'): Promise<WebAssembly.Module> {
  let p = compiled.get(build);
  if (p === undefined) {
    p = WebAssembly.compile(wasmBytes(build));
    compiled.set(build, p);
  }
  return p;
}
