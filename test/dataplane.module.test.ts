// The embedded Wasm modules: the release size budget, the single memory import, and the exact export surface of assembly/dataplane.ts.
import { describe, expect, it } from 'vitest';
import { compileDataPlane, wasmBytes } from 'macslot';
import { compileDebugDataPlane, debugWasmBytes } from 'macslot/debug';

// Every `export function` of assembly/dataplane.ts, in source order; anything else exported is surface nobody reviewed.
const FUNCTIONS = [
  'plan', 'attach', 'bankPtr', 'lanePtr', 'laneCountersPtr', 'descriptorsPtr', 'verdictsPtr', 'keysPtr', 'kindsPtr', 'poolPtr',
  'clientCountersPtr', 'ringPtr', 'stagingPtr', 'activeBank', 'bankBytes', 'tablePut', 'tableLoad', 'stagedRecords', 'tableDelete', 'bankSetFlags', 'bankSetClient',
  'bankSetMember', 'bankClearGroup', 'bankSetHashBit', 'bankReset', 'bankCopy', 'publish', 'readersOn', 'claimLane', 'releaseLane',
  'ownsLane', 'laneState', 'reclaimLane', 'setHold', 'ringResetsPtr', 'clientReset',
  'claimDelivery', 'releaseDelivery', 'classifyBurst', 'classifyKeys', 'rxBurst', 'ruleCount', 'laneCounterCount',
  'counterStripes', 'bankBroadcastPtr', 'bankPromiscPtr', 'bankGroupPtr', 'ringDataBytes', 'poolBytesPerLane',
  'clientCapacity', 'laneCount',
];
// The compiler re-exports the imported memory; it is the same object the host passed in.
const EXPORTS = [...FUNCTIONS.map((name) => ({ name, kind: 'function' })), { name: 'memory', kind: 'memory' }].sort((a, b) => a.name.localeCompare(b.name));

const BUILDS: { name: string; bytes: () => Uint8Array<ArrayBuffer>; compile: () => Promise<WebAssembly.Module>; shared: boolean; budget: number }[] = [
  { name: 'release', bytes: () => wasmBytes('release'), compile: () => compileDataPlane('release'), shared: true, budget: 32 * 1024 },
  { name: 'release-unshared', bytes: () => wasmBytes('release-unshared'), compile: () => compileDataPlane('release-unshared'), shared: false, budget: 32 * 1024 },
  // Debug (from macslot/debug) keeps assertions and names; it only has to stay loadable, so its budget is loose.
  { name: 'debug', bytes: debugWasmBytes, compile: compileDebugDataPlane, shared: true, budget: 256 * 1024 },
];

describe('embedded modules', () => {
  it('the release .wasm is at most 32 KiB', () => {
    expect(wasmBytes('release').length).toBeLessThanOrEqual(32 * 1024);
  });

  it('wasmBytes defaults to the release build', () => {
    expect(wasmBytes()).toEqual(wasmBytes('release'));
  });

  it.each(BUILDS)('$name: compiles, fits its budget, imports only env.memory, exports exactly the reviewed surface', async ({ bytes: read, compile, shared, budget }) => {
    const bytes = read();
    expect(bytes.length).toBeLessThanOrEqual(budget);
    expect(WebAssembly.validate(bytes)).toBe(true);
    const module = await compile();
    expect(WebAssembly.Module.imports(module)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    expect(WebAssembly.Module.exports(module).map(({ name, kind }) => ({ name, kind })).sort((a, b) => a.name.localeCompare(b.name))).toEqual(EXPORTS);
    // The memory's shared flag must match the module's declaration; the wrong one is a LinkError.
    expect(() => new WebAssembly.Instance(module, { env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 1, shared }) } })).not.toThrow();
    expect(() => new WebAssembly.Instance(module, { env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 1, shared: !shared }) } })).toThrow(WebAssembly.LinkError);
  });

  it.each(BUILDS)('$name: compiles once and is cached', async ({ compile }) => {
    expect(await compile()).toBe(await compile());
  });
});
