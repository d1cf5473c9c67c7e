// `macslot/debug`: the data plane's debug build (assertions kept, names in the binary), kept out of the default
// entry so that browser bundles of `macslot` do not carry it.

import { compileBytes, decodeBase64 } from './dataplane/module.js';
import { DEBUG_WASM_BASE64 } from './dataplane/module.generated.js';

/** Returns the bytes of the debug build, which runs on shared memory. Never fails. */
export function debugWasmBytes(): Uint8Array<ArrayBuffer> {
  return decodeBase64(DEBUG_WASM_BASE64);
}

let compiled: Promise<WebAssembly.Module> | undefined;

/**
 * Returns the compiled debug build, compiling it on first use; run it with `DataPlane.create(nic, { module })`.
 * Rejects with NOT_SUPPORTED as `compileDataPlane` does.
 */
export function compileDebugDataPlane(): Promise<WebAssembly.Module> {
  compiled ??= compileBytes(debugWasmBytes());
  return compiled;
}
